//! Integrations with the rest of the house: signed outgoing webhooks, incoming webhook URLs
//! and bot accounts.
//!
//! - [`outgoing`]: admins register webhooks (`/api/v1/webhooks`, `roost webhook`), each with
//!   the events it wants and optionally one room; `outbox::enqueue` queues a delivery row per
//!   matching hook inside the transaction that writes the event (`chat::events::append` calls
//!   it), so a rolled-back change is never delivered and a committed one is never lost.
//! - [`delivery`]: the worker that sends queued deliveries, per hook in order, with signatures,
//!   a per-attempt timeout, backoff with jitter and pausing of a hook that keeps failing.
//! - [`address`]: where a delivery may go (checked after DNS resolution; the connection is
//!   made to the checked address).
//! - [`incoming`]: a room's incoming webhook URLs (`POST /hooks/<token>`), which post as a bot.
//! - [`bots`]: bot accounts (no password, API keys only).
//! - [`sealing`]: outgoing webhook secrets sealed at rest, with a key kept out of the database.
//!
//! This module never publishes room events itself (it goes through `chat::commit`), never logs
//! a webhook's URL, secret or an incoming token, never stores a secret or token in the clear
//! (outgoing secrets are sealed, incoming tokens hashed), and only the worker sends HTTP
//! requests.

pub mod address;
pub mod bots;
pub mod calls;
pub mod cli;
pub mod delivery;
pub mod incoming;
pub mod outgoing;
pub mod sealing;

use std::sync::Arc;

use crate::documented;
use axum::extract::FromRef;
use http::StatusCode;

use crate::auth::AuthError;
use crate::chat::{ChatError, ChatMetrics, EventSink};
use crate::config::Config;
use crate::http::{ApiError, Routes};
use crate::store::{Store, StoreError};

pub use delivery::Integrations;

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
    #[error(transparent)]
    Sealing(#[from] sealing::SealError),
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
            IntegrationError::Sealing(e) => ApiError::internal("webhook secret sealing", &e),
        }
    }
}

impl axum::response::IntoResponse for IntegrationError {
    fn into_response(self) -> axum::response::Response {
        ApiError::from(self).into_response()
    }
}

/// The shared handle to the worker, the delivery client and the incoming URLs' buckets: the
/// part of the application state the webhook handlers take.
pub type Handle = Arc<Integrations>;

/// Incoming webhook URLs, outgoing webhooks and bot accounts.
pub fn routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    EventSink: FromRef<S>,
    Arc<Config>: FromRef<S>,
    Handle: FromRef<S>,
    ChatMetrics: FromRef<S>,
{
    Routes::new()
        .api(documented!(incoming::list, incoming::create))
        .api(documented!(incoming::revoke))
        .api(documented!(incoming::post))
        .api(documented!(outgoing::list, outgoing::create))
        .api(documented!(
            outgoing::get,
            outgoing::update,
            outgoing::delete
        ))
        .api(documented!(outgoing::rotate))
        .api(documented!(outgoing::deliveries))
        .api(documented!(bots::create))
}
