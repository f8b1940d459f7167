//! Outgoing webhooks as data: create, list, change, pause and resume, rotate the secret, delete,
//! and each hook's delivery log; the admin API over them (`/api/v1/webhooks`). The same
//! functions serve `roost webhook` (they take a `&Connection` and an `Actor`).
//!
//! A hook's secret is returned only by the answer that created or rotated it, and stored only
//! sealed (`sealing`). Audit events name the hook (`webhook:<id>`) and its events, never its
//! URL (which often carries a token).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http::StatusCode;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::address::{self, AddressPolicy};
use super::sealing::Sealer;
use super::{IntegrationError, Integrations, EVENTS};
use crate::audit;
use crate::auth::users::Actor;
use crate::auth::RequireAdmin;
use crate::edge::policy::ClientIp;
use crate::http::time::now_ms;
use crate::http::{ApiError, Json, Query};
use crate::store::Store;

/// At most this many outgoing webhooks (each event is queued once per hook, in the
/// transaction that writes it).
pub const MAX_WEBHOOKS: i64 = 50;
const MAX_URL_CHARS: usize = 2000;
const MAX_DESCRIPTION_CHARS: usize = 200;
/// Prefix of a hook secret, so it is recognisable in a configuration file.
const SECRET_PREFIX: &str = "whsec_";

/// A webhook as the API shows it (never with its secret).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    /// Some of `message.created`, `message.updated`, `message.deleted`, `member.joined`,
    /// `member.left`, `call.started`, `call.ended`, `security.alert`.
    pub events: Vec<String>,
    /// Only this room's events; null: every room (and `security.alert`).
    #[schema(required = true)]
    pub room_id: Option<i64>,
    pub description: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Set when the hook kept failing (or an admin paused it): nothing is sent until it is
    /// resumed; its queue is kept.
    #[schema(format = DateTime, required = true)]
    pub paused_at: Option<String>,
    #[schema(required = true)]
    pub paused_reason: Option<String>,
    /// Failed attempts in a row.
    pub failures: i64,
    /// Deliveries queued for it.
    pub pending: i64,
}

/// A webhook just made (or its secret just rotated), with the secret shown only now.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_` and 64 hex digits: the HMAC-SHA256 key of `X-Roost-Signature` (its UTF-8
    /// bytes, prefix included).
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// http:// or https://; private LAN addresses are fine, loopback and link-local are
    /// refused unless the server's `[webhooks]` config allows them.
    pub url: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub room_id: Option<i64>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// true pauses the hook; false resumes it (its queue is sent from the oldest delivery).
    pub paused: Option<bool>,
}

/// One entry of a hook's delivery log.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// The `X-Roost-Delivery` header: the same on every attempt.
    pub id: String,
    pub event: String,
    /// `pending` (queued or being retried) or `delivered`.
    pub state: String,
    pub attempts: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime, required = true)]
    pub last_attempt_at: Option<String>,
    /// The receiver's HTTP status at the last attempt; null when it did not answer.
    #[schema(required = true)]
    pub last_status: Option<u16>,
    #[schema(required = true)]
    pub last_error: Option<String>,
    #[schema(format = DateTime, required = true)]
    pub delivered_at: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<DeliveryView>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// 1 to 200 (default 50).
    pub limit: Option<u32>,
}

const COLUMNS: &str = "w.id, w.url, w.events, w.room_id, w.description, w.created_at, \
    w.paused_at, w.paused_reason, w.failures, \
    (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.state = 'pending')";

fn view_from_row(row: &Row<'_>) -> rusqlite::Result<WebhookView> {
    let events: String = row.get(2)?;
    let paused_at: Option<i64> = row.get(6)?;
    Ok(WebhookView {
        id: row.get(0)?,
        url: row.get(1)?,
        events: events
            .split(',')
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect(),
        room_id: row.get(3)?,
        description: row.get(4)?,
        created_at: crate::http::time::rfc3339_ms(row.get(5)?),
        paused_at: paused_at.map(crate::http::time::rfc3339_ms),
        paused_reason: row.get(7)?,
        failures: row.get(8)?,
        pending: row.get(9)?,
    })
}

/// The stored form of an event list (",a,b,"), after checking it.
fn stored_events(events: &[String]) -> Result<String, IntegrationError> {
    if events.is_empty() {
        return Err(IntegrationError::invalid(
            "webhook_events",
            format!("name at least one event of: {}", EVENTS.join(", ")),
        ));
    }
    let mut out = String::from(",");
    for event in events {
        if !EVENTS.contains(&event.as_str()) {
            return Err(IntegrationError::invalid(
                "webhook_events",
                format!("unknown event; the events are: {}", EVENTS.join(", ")),
            ));
        }
        if !out.contains(&format!(",{event},")) {
            out.push_str(event);
            out.push(',');
        }
    }
    Ok(out)
}

fn check_url(url: &str, policy: AddressPolicy) -> Result<(), IntegrationError> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(IntegrationError::invalid(
            "webhook_url",
            format!("the URL has at most {MAX_URL_CHARS} characters"),
        ));
    }
    address::check_url(url, policy).map_err(|why| IntegrationError::invalid("webhook_url", why))
}

fn check_description(description: &str) -> Result<(), IntegrationError> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS
        || description.chars().any(char::is_control)
    {
        return Err(IntegrationError::invalid(
            "webhook_description",
            format!(
                "a description has at most {MAX_DESCRIPTION_CHARS} characters and no control \
                 characters"
            ),
        ));
    }
    Ok(())
}

fn new_secret() -> String {
    format!("{SECRET_PREFIX}{}", crate::auth::crypto::token_256())
}

pub fn load(conn: &Connection, id: i64) -> Result<WebhookView, IntegrationError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM webhooks w WHERE w.id = ?1"),
        [id],
        view_from_row,
    )
    .optional()?
    .ok_or(IntegrationError::NotFound)
}

pub fn load_all(conn: &Connection) -> Result<Vec<WebhookView>, IntegrationError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM webhooks w ORDER BY w.id"))?;
    let rows = stmt.query_map([], view_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Registers a webhook; its secret is in the answer, and stored only sealed by `sealer`.
pub fn insert(
    conn: &Connection,
    req: &CreateWebhook,
    policy: AddressPolicy,
    sealer: &Sealer,
    actor: &Actor,
    now: i64,
) -> Result<WebhookWithSecret, IntegrationError> {
    check_url(&req.url, policy)?;
    let events = stored_events(&req.events)?;
    check_description(&req.description)?;
    if let Some(room_id) = req.room_id {
        let exists: Option<i64> = conn
            .query_row("SELECT id FROM rooms WHERE id = ?1", [room_id], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_none() {
            return Err(IntegrationError::invalid(
                "unknown_room",
                format!("room {room_id} does not exist"),
            ));
        }
    }
    let count: i64 = conn.query_row("SELECT count(*) FROM webhooks", [], |r| r.get(0))?;
    if count >= MAX_WEBHOOKS {
        return Err(IntegrationError::invalid(
            "too_many_webhooks",
            format!("at most {MAX_WEBHOOKS} webhooks; delete one first"),
        ));
    }
    let secret = new_secret();
    conn.execute(
        "INSERT INTO webhooks
           (url, events, room_id, description, secret, secret_sealed, created_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, '', ?5, ?6, ?7, ?7)",
        params![
            req.url,
            events,
            req.room_id,
            req.description,
            sealer.seal(&secret),
            actor.id,
            now
        ],
    )?;
    let id = conn.last_insert_rowid();
    audit::record(
        conn,
        &actor
            .event("webhook.created", now)
            .target(format!("webhook:{id}"))
            .detail(json!({ "events": req.events, "room_id": req.room_id })),
    )?;
    Ok(WebhookWithSecret {
        webhook: load(conn, id)?,
        secret,
    })
}

/// Changes a webhook; `paused: false` resumes it (its failures reset, its oldest queued
/// delivery due now).
pub fn change(
    conn: &Connection,
    id: i64,
    req: &UpdateWebhook,
    policy: AddressPolicy,
    actor: &Actor,
    now: i64,
) -> Result<WebhookView, IntegrationError> {
    let before = load(conn, id)?;
    if let Some(url) = &req.url {
        check_url(url, policy)?;
        conn.execute(
            "UPDATE webhooks SET url = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, url, now],
        )?;
    }
    if let Some(events) = &req.events {
        let stored = stored_events(events)?;
        conn.execute(
            "UPDATE webhooks SET events = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, stored, now],
        )?;
    }
    if let Some(description) = &req.description {
        check_description(description)?;
        conn.execute(
            "UPDATE webhooks SET description = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, description, now],
        )?;
    }
    let mut kind = "webhook.updated";
    match req.paused {
        Some(true) if before.paused_at.is_none() => {
            conn.execute(
                "UPDATE webhooks SET paused_at = ?2, paused_reason = 'paused by an admin' WHERE id = ?1",
                params![id, now],
            )?;
            kind = "webhook.paused";
        }
        Some(false) if before.paused_at.is_some() => {
            resume(conn, id, now)?;
            kind = "webhook.resumed";
        }
        _ => {}
    }
    audit::record(
        conn,
        &actor
            .event(kind, now)
            .target(format!("webhook:{id}"))
            .detail(json!({
                "url_changed": req.url.is_some(),
                "events": req.events,
                "paused": req.paused,
            })),
    )?;
    load(conn, id)
}

fn resume(conn: &Connection, id: i64, now: i64) -> Result<(), IntegrationError> {
    conn.execute(
        "UPDATE webhooks SET paused_at = NULL, paused_reason = NULL, failures = 0 WHERE id = ?1",
        [id],
    )?;
    conn.execute(
        "UPDATE webhook_deliveries SET next_attempt_at = ?2
          WHERE webhook_id = ?1 AND state = 'pending' AND next_attempt_at > ?2",
        params![id, now],
    )?;
    Ok(())
}

/// A new secret for the hook, stored sealed by `sealer`; the old one stops signing at once.
pub fn rotate_secret(
    conn: &Connection,
    id: i64,
    sealer: &Sealer,
    actor: &Actor,
    now: i64,
) -> Result<WebhookWithSecret, IntegrationError> {
    let secret = new_secret();
    let changed = conn.execute(
        "UPDATE webhooks SET secret = '', secret_sealed = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, sealer.seal(&secret), now],
    )?;
    if changed == 0 {
        return Err(IntegrationError::NotFound);
    }
    audit::record(
        conn,
        &actor
            .event("webhook.secret_rotated", now)
            .target(format!("webhook:{id}")),
    )?;
    Ok(WebhookWithSecret {
        webhook: load(conn, id)?,
        secret,
    })
}

/// Deletes the hook with its queue and log.
pub fn remove(conn: &Connection, id: i64, actor: &Actor, now: i64) -> Result<(), IntegrationError> {
    conn.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?1", [id])?;
    if conn.execute("DELETE FROM webhooks WHERE id = ?1", [id])? == 0 {
        return Err(IntegrationError::NotFound);
    }
    audit::record(
        conn,
        &actor
            .event("webhook.deleted", now)
            .target(format!("webhook:{id}")),
    )?;
    Ok(())
}

/// The hook's newest `limit` deliveries.
pub fn delivery_log(
    conn: &Connection,
    id: i64,
    limit: u32,
) -> Result<Vec<DeliveryView>, IntegrationError> {
    load(conn, id)?;
    let mut stmt = conn.prepare_cached(
        "SELECT delivery_id, event, state, attempts, created_at, last_attempt_at, last_status,
                last_error, delivered_at
           FROM webhook_deliveries WHERE webhook_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![id, limit], |r| {
        let last_attempt: Option<i64> = r.get(5)?;
        let delivered: Option<i64> = r.get(8)?;
        Ok(DeliveryView {
            id: r.get(0)?,
            event: r.get(1)?,
            state: r.get(2)?,
            attempts: r.get(3)?,
            created_at: crate::http::time::rfc3339_ms(r.get(4)?),
            last_attempt_at: last_attempt.map(crate::http::time::rfc3339_ms),
            last_status: r.get(6)?,
            last_error: r.get(7)?,
            delivered_at: delivered.map(crate::http::time::rfc3339_ms),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `POST /api/v1/webhooks`.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    operation_id = "createWebhook",
    summary = "Register an outgoing webhook (admins)",
    tag = "webhooks",
    description = "Each delivery is a JSON POST `{\"event\",\"room_id\",\"seq\",\"at\",\"data\"}` \
        with the headers `X-Roost-Delivery` (the same on every attempt), `X-Roost-Event`, \
        `X-Roost-Attempt`, `X-Roost-Timestamp` (Unix seconds) and `X-Roost-Signature: \
        sha256=<hex HMAC-SHA256 of \"<timestamp>.<raw body>\" keyed with the secret>`. The \
        secret is in this answer only.",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Registered; the secret is shown only now", body = WebhookWithSecret),
        (status = 400, description = "A bad or refused URL (`webhook_url`), unknown events \
         (`webhook_events`), a bad description (`webhook_description`), an unknown room \
         (`unknown_room`), or too many hooks (`too_many_webhooks`)", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::http::ErrorBody),
    )
)]
pub async fn create(
    State(store): State<Store>,
    State(integrations): State<Arc<Integrations>>,
    RequireAdmin(who): RequireAdmin,
    ip: Option<Extension<ClientIp>>,
    Json(req): Json<CreateWebhook>,
) -> Result<Response, ApiError> {
    let actor = Actor::caller(&who, ip);
    let policy = integrations.policy();
    let sealer = integrations.sealer();
    let made = store
        .write(move |conn| insert(conn, &req, policy, &sealer, &actor, now_ms()))
        .await?;
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

/// `GET /api/v1/webhooks`.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    operation_id = "listWebhooks",
    summary = "List the outgoing webhooks (admins)",
    tag = "webhooks",
    responses(
        (status = 200, description = "Every webhook, oldest first", body = WebhookList),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::http::ErrorBody),
    )
)]
pub async fn list(
    State(store): State<Store>,
    RequireAdmin(_): RequireAdmin,
) -> Result<Json<WebhookList>, ApiError> {
    let webhooks = store.read(load_all).await?;
    Ok(Json(WebhookList { webhooks }))
}

/// `GET /api/v1/webhooks/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    operation_id = "getWebhook",
    summary = "Get an outgoing webhook (admins)",
    tag = "webhooks",
    params(("id" = i64, Path, example = 1, description = "The webhook's id")),
    responses(
        (status = 200, description = "The webhook", body = WebhookView),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such webhook (`not_found`)", body = crate::http::ErrorBody),
    )
)]
pub async fn get(
    State(store): State<Store>,
    RequireAdmin(_): RequireAdmin,
    Path(id): Path<i64>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(store.read(move |conn| load(conn, id)).await?))
}

/// `PATCH /api/v1/webhooks/{id}`.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    operation_id = "updateWebhook",
    summary = "Change, pause or resume an outgoing webhook (admins)",
    tag = "webhooks",
    params(("id" = i64, Path, example = 1, description = "The webhook's id")),
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "The webhook as it is now", body = WebhookView),
        (status = 400, description = "A bad or refused URL (`webhook_url`), unknown events \
         (`webhook_events`) or a bad description (`webhook_description`)", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such webhook (`not_found`)", body = crate::http::ErrorBody),
    )
)]
pub async fn update(
    State(store): State<Store>,
    State(integrations): State<Arc<Integrations>>,
    RequireAdmin(who): RequireAdmin,
    ip: Option<Extension<ClientIp>>,
    Path(id): Path<i64>,
    Json(req): Json<UpdateWebhook>,
) -> Result<Json<WebhookView>, ApiError> {
    let actor = Actor::caller(&who, ip);
    let policy = integrations.policy();
    let view = store
        .write(move |conn| change(conn, id, &req, policy, &actor, now_ms()))
        .await?;
    integrations.wake();
    Ok(Json(view))
}

/// `DELETE /api/v1/webhooks/{id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    operation_id = "deleteWebhook",
    summary = "Delete an outgoing webhook with its queue and log (admins)",
    tag = "webhooks",
    params(("id" = i64, Path, example = 1, description = "The webhook's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such webhook (`not_found`)", body = crate::http::ErrorBody),
    )
)]
pub async fn delete(
    State(store): State<Store>,
    RequireAdmin(who): RequireAdmin,
    ip: Option<Extension<ClientIp>>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::caller(&who, ip);
    store
        .write(move |conn| remove(conn, id, &actor, now_ms()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/webhooks/{id}/secret`.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/secret",
    operation_id = "rotateWebhookSecret",
    summary = "Give an outgoing webhook a new secret (admins)",
    tag = "webhooks",
    params(("id" = i64, Path, example = 1, description = "The webhook's id")),
    responses(
        (status = 200, description = "The new secret, shown only now; deliveries from now on \
         are signed with it", body = WebhookWithSecret),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such webhook (`not_found`)", body = crate::http::ErrorBody),
    )
)]
pub async fn rotate(
    State(store): State<Store>,
    State(integrations): State<Arc<Integrations>>,
    RequireAdmin(who): RequireAdmin,
    ip: Option<Extension<ClientIp>>,
    Path(id): Path<i64>,
) -> Result<Json<WebhookWithSecret>, ApiError> {
    let actor = Actor::caller(&who, ip);
    let sealer = integrations.sealer();
    let made = store
        .write(move |conn| rotate_secret(conn, id, &sealer, &actor, now_ms()))
        .await?;
    Ok(Json(made))
}

/// `GET /api/v1/webhooks/{id}/deliveries`.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    operation_id = "listWebhookDeliveries",
    summary = "An outgoing webhook's delivery log (admins)",
    tag = "webhooks",
    params(("id" = i64, Path, example = 1, description = "The webhook's id"), DeliveryQuery),
    responses(
        (status = 200, description = "The newest deliveries first: queued ones and those sent \
         within `[webhooks] delivery_log_days`, none older than `[retention] message_days` \
         when that is set", body = DeliveryList),
        (status = 403, description = "Not an admin (`forbidden`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such webhook (`not_found`)", body = crate::http::ErrorBody),
    )
)]
pub async fn deliveries(
    State(store): State<Store>,
    RequireAdmin(_): RequireAdmin,
    Path(id): Path<i64>,
    Query(q): Query<DeliveryQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let deliveries = store
        .read(move |conn| delivery_log(conn, id, limit))
        .await?;
    Ok(Json(DeliveryList { deliveries }))
}
