//! Integrations with the rest of the house: signed outgoing webhooks, incoming webhook URLs
//! and bot accounts.
//!
//! - [`outgoing`]: admins register webhooks (`/api/v1/webhooks`, `roost webhook`), each with
//!   the events it wants and optionally one room; [`enqueue`] queues a delivery row per
//!   matching hook inside the transaction that writes the event (called by
//!   `chat::events::append`), so a rolled-back change is never delivered and a committed one is
//!   never lost.
//! - [`delivery`]: the worker that sends queued deliveries, per hook in order, with signatures,
//!   a per-attempt timeout, backoff with jitter and pausing of a hook that keeps failing.
//! - [`address`]: where a delivery may go (checked after DNS resolution; the connection is
//!   made to the checked address).
//! - [`incoming`]: a room's incoming webhook URLs (`POST /hooks/<token>`), which post as a bot.
//! - [`bots`]: bot accounts (no password, API keys only).
//!
//! This module never publishes room events itself (it goes through `chat::commit`), never logs
//! a webhook's URL, secret or an incoming token, and only the worker sends HTTP requests.

pub mod address;
pub mod bots;
pub mod calls;
pub mod cli;
pub mod delivery;
pub mod incoming;
pub mod outgoing;

use std::sync::Arc;

use http::StatusCode;
use rusqlite::{params, Connection};

use crate::auth::AuthError;
use crate::chat::ChatError;
use crate::http::ApiError;
use crate::store::StoreError;

use crate::api::AppState;
use crate::http::Routes;
pub use delivery::Integrations;
use utoipa_axum::routes;

/// The events a webhook may ask for. Room events carry the room's id; `security.alert` is
/// raised by `limits::alerts` and belongs to no room (a hook with a room filter never gets it).
pub const EVENTS: &[&str] = &[
    "message.created",
    "message.updated",
    "message.deleted",
    "member.joined",
    "member.left",
    "call.started",
    "call.ended",
    "security.alert",
];

/// What can go wrong in an integrations request; mapped to HTTP only by
/// `From<IntegrationError> for ApiError`.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    #[error("no such resource")]
    NotFound,
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("the request body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    #[error("too many posts to this webhook URL; retry in {0} s")]
    RateLimited(u64),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntegrationError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> IntegrationError {
        IntegrationError::Invalid {
            code,
            message: message.into(),
        }
    }
}

impl From<rusqlite::Error> for IntegrationError {
    fn from(e: rusqlite::Error) -> Self {
        IntegrationError::Store(StoreError::from(e))
    }
}

impl From<IntegrationError> for ApiError {
    fn from(e: IntegrationError) -> Self {
        let message = e.to_string();
        match e {
            IntegrationError::NotFound => ApiError::not_found(),
            IntegrationError::Invalid { code, .. } => ApiError::bad_request(code, message),
            IntegrationError::TooLarge(limit) => ApiError::payload_too_large(limit),
            IntegrationError::RateLimited(secs) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
                    .with_header(http::header::RETRY_AFTER, http::HeaderValue::from(secs))
            }
            IntegrationError::Chat(e) => ApiError::from(e),
            IntegrationError::Auth(e) => ApiError::from(e),
            IntegrationError::Store(e) => ApiError::from(e),
        }
    }
}

impl axum::response::IntoResponse for IntegrationError {
    fn into_response(self) -> axum::response::Response {
        ApiError::from(self).into_response()
    }
}

/// The JSON body every delivery of an event carries (the same for every hook, and on every
/// attempt): `{"event","room_id","seq","at","data"}`. `data` is the event's JSON as the
/// gateway sends it, spliced in as stored.
pub fn delivery_body(
    event: &str,
    room_id: Option<i64>,
    seq: Option<i64>,
    at_ms: i64,
    data: &str,
) -> String {
    let event = serde_json::Value::from(event);
    let at = serde_json::Value::from(crate::http::time::rfc3339_ms(at_ms));
    let room_id = serde_json::Value::from(room_id);
    let seq = serde_json::Value::from(seq);
    format!(r#"{{"event":{event},"room_id":{room_id},"seq":{seq},"at":{at},"data":{data}}}"#)
}

/// Queues a delivery of `event` for every webhook that wants it (its event list, and its room
/// filter when `room_id` is given), inside the caller's transaction. Cheap when no hook wants
/// it: one scan of the (small, at most `outgoing::MAX_WEBHOOKS` rows) `webhooks` table.
/// A hook with a room filter never gets an event of no room (`room_id` None). Returns how
/// many were queued.
pub fn enqueue(
    conn: &Connection,
    event: &str,
    room_id: Option<i64>,
    seq: Option<i64>,
    at_ms: i64,
    data: &str,
) -> Result<usize, StoreError> {
    let mut hooks = conn.prepare_cached(
        "SELECT id FROM webhooks
          WHERE instr(events, ',' || ?1 || ',') > 0
            AND (room_id IS NULL OR room_id = ?2)",
    )?;
    let ids: Vec<i64> = hooks
        .query_map(params![event, room_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Ok(0);
    }
    let body = delivery_body(event, room_id, seq, at_ms, data);
    let mut insert = conn.prepare_cached(
        "INSERT INTO webhook_deliveries (webhook_id, delivery_id, event, body, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?;
    for id in &ids {
        insert.execute(params![
            id,
            crate::auth::crypto::id_128(),
            event,
            body,
            at_ms
        ])?;
    }
    Ok(ids.len())
}

/// The wall clock in Unix milliseconds.
pub fn now_ms() -> i64 {
    crate::chat::now_ms()
}

/// A shared, cheaply cloned handle (for `AppState`).
pub type Handle = Arc<Integrations>;

/// Incoming webhook URLs, outgoing webhooks and bot accounts.
pub fn routes() -> Routes<AppState> {
    Routes::new()
        .api(routes!(incoming::list_handler, incoming::create_handler))
        .api(routes!(incoming::revoke_handler))
        .api(routes!(incoming::post_handler))
        .api(routes!(outgoing::list_handler, outgoing::create_handler))
        .api(routes!(
            outgoing::get_handler,
            outgoing::update_handler,
            outgoing::delete_handler
        ))
        .api(routes!(outgoing::rotate_handler))
        .api(routes!(outgoing::deliveries_handler))
        .api(routes!(bots::create_handler))
}
