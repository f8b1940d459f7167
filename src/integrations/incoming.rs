//! Incoming webhook URLs: a room's moderator makes one (`POST /api/v1/rooms/{id}/hooks`),
//! gets `/hooks/<token>` once, and anything that can send an HTTP POST (a doorbell, a backup
//! script, Home Assistant) posts `{"text": "..."}` to it. The message is posted by the hook's
//! own bot account (made with the hook, a member of the room, shown as a bot), with the same
//! checks as any message, through `chat::commit` (so the gateway and outgoing webhooks see it
//! like any other).
//!
//! Only the token's SHA-256 is stored; an unknown or revoked token is 404. Each URL has its own
//! token bucket (`[webhooks] incoming_burst`, `incoming_per_minute`) besides the per-address
//! `write` family every request passes, and its own body cap (`incoming_max_body_bytes`, 413).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use http::StatusCode;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{bots, IntegrationError, Integrations};
use crate::auth::crypto;
use crate::auth::users::Actor;
use crate::auth::{username, Principal};
use crate::chat::messages::{self, MessageView};
use crate::chat::rooms::{self, Access, Joining, RoomRole};
use crate::chat::{ChatError, ChatMetrics, EventSink, RoomEvent};
use crate::config::Config;
use crate::edge::policy::ClientIp;
use crate::http::time::now_ms;
use crate::http::{ApiError, Json};
use crate::store::Store;

/// Live incoming URLs per room.
pub const MAX_PER_ROOM: i64 = 20;

/// An incoming webhook URL as listed (never with its token).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncomingHookView {
    pub id: i64,
    pub room_id: i64,
    /// The bot account it posts as.
    pub bot_id: i64,
    pub bot_username: String,
    /// The name its messages show.
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// An incoming webhook URL just made: its path with the token, shown only now.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewIncomingHook {
    #[serde(flatten)]
    pub hook: IncomingHookView,
    /// `/hooks/<token>`, to append to the server's address.
    pub path: String,
    /// 64 hex digits.
    pub token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIncomingHook {
    /// The name its messages show, e.g. "Doorbell" (1-64 characters; like any display name,
    /// it may not look like another account's name).
    pub name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncomingHookList {
    pub hooks: Vec<IncomingHookView>,
}

/// What `POST /hooks/<token>` accepts.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomingPost {
    /// The message, checked like any other (`[chat] max_message_chars`, no control
    /// characters but newline and tab, not blank).
    pub text: String,
}

fn load_all(conn: &Connection, room_id: i64) -> Result<Vec<IncomingHookView>, IntegrationError> {
    let mut stmt = conn.prepare_cached(
        "SELECT h.id, h.room_id, h.bot_id, u.username, u.display_name, h.created_at
           FROM incoming_hooks h JOIN users u ON u.id = h.bot_id
          WHERE h.room_id = ?1 AND h.revoked_at IS NULL ORDER BY h.id",
    )?;
    let rows = stmt.query_map([room_id], |r| {
        Ok(IncomingHookView {
            id: r.get(0)?,
            room_id: r.get(1)?,
            bot_id: r.get(2)?,
            bot_username: r.get(3)?,
            name: r.get(4)?,
            created_at: crate::http::time::rfc3339_ms(r.get(5)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Makes an incoming URL for `room_id` with its bot, which joins the room.
fn insert(
    conn: &Connection,
    room_id: i64,
    name: &str,
    who: &Principal,
    actor: &Actor,
    keep: u64,
    events: &mut Vec<RoomEvent>,
) -> Result<NewIncomingHook, IntegrationError> {
    Access::load(conn, room_id, who)?.require_moderator()?;
    let live: i64 = conn.query_row(
        "SELECT count(*) FROM incoming_hooks WHERE room_id = ?1 AND revoked_at IS NULL",
        [room_id],
        |r| r.get(0),
    )?;
    if live >= MAX_PER_ROOM {
        return Err(IntegrationError::invalid(
            "too_many_hooks",
            format!("a room has at most {MAX_PER_ROOM} incoming webhooks; revoke one first"),
        ));
    }
    let now = now_ms();
    // A name nobody types: the hook's bot is found by its display name.
    let bot_name = format!("hook-{}", hex::encode(crypto::random_bytes::<5>()));
    let display = username::display_name(Some(name), "")
        .ok()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            IntegrationError::invalid(
                "invalid_display_name",
                "the name must be 1 to 64 characters, without hidden or control characters",
            )
        })?;
    let bot = bots::insert(conn, &bot_name, &display, actor, now)?;
    let joining = Joining {
        user_id: bot.id,
        role: RoomRole::Member,
        invited: true,
    };
    rooms::add_member(conn, room_id, joining, now, keep, events)?;
    let token = crypto::token_256();
    conn.execute(
        "INSERT INTO incoming_hooks (room_id, bot_id, token_hash, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![room_id, bot.id, crypto::sha256(&token), who.user_id, now],
    )?;
    let id = conn.last_insert_rowid();
    crate::audit::record(
        conn,
        &actor
            .event("incoming_hook.created", now)
            .target(format!("incoming_hook:{id}"))
            .detail(json!({ "room_id": room_id, "bot_id": bot.id })),
    )?;
    let hook = load_all(conn, room_id)?
        .into_iter()
        .find(|h| h.id == id)
        .ok_or(IntegrationError::NotFound)?;
    Ok(NewIncomingHook {
        hook,
        path: format!("/hooks/{token}"),
        token,
    })
}

/// Revokes the URL: its token stops working and its bot is disabled (its messages stay).
fn revoke_url(
    conn: &Connection,
    room_id: i64,
    id: i64,
    who: &Principal,
    actor: &Actor,
) -> Result<(), IntegrationError> {
    Access::load(conn, room_id, who)?.require_moderator()?;
    let now = now_ms();
    let bot: Option<i64> = conn
        .query_row(
            "UPDATE incoming_hooks SET revoked_at = ?3
              WHERE id = ?1 AND room_id = ?2 AND revoked_at IS NULL RETURNING bot_id",
            params![id, room_id, now],
            |r| r.get(0),
        )
        .optional()?;
    let bot = bot.ok_or(IntegrationError::NotFound)?;
    conn.execute(
        "UPDATE users SET disabled = 1, updated_at = ?2 WHERE id = ?1",
        params![bot, now / 1000],
    )?;
    crate::audit::record(
        conn,
        &actor
            .event("incoming_hook.revoked", now)
            .target(format!("incoming_hook:{id}"))
            .detail(json!({ "room_id": room_id })),
    )?;
    Ok(())
}

/// `POST /api/v1/rooms/{id}/hooks`.
#[utoipa::path(
    post,
    path = "/api/v1/rooms/{id}/hooks",
    operation_id = "createIncomingHook",
    summary = "Make an incoming webhook URL for a room (moderators)",
    tag = "webhooks",
    description = "Makes a bot account named `name` that joins the room, and a URL that posts \
        as it: `POST /hooks/<token>` with `{\"text\": \"...\"}`. The token is in this answer \
        only; only its hash is stored.",
    params(("id" = i64, Path, example = 1, description = "The room's id")),
    request_body = CreateIncomingHook,
    responses(
        (status = 201, description = "Made; the token is shown only now", body = NewIncomingHook),
        (status = 400, description = "A bad name (`invalid_display_name`) or too many URLs \
         (`too_many_hooks`)", body = crate::http::ErrorBody),
        (status = 403, description = "Not a moderator of the room (`forbidden`, \
         `not_a_member`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such room (`not_found`)", body = crate::http::ErrorBody),
        (status = 409, description = "The name or one like it is taken (`display_name_taken`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn create(
    State(store): State<Store>,
    State(sink): State<EventSink>,
    State(config): State<Arc<Config>>,
    who: Principal,
    ip: Option<Extension<ClientIp>>,
    Path(room_id): Path<i64>,
    Json(req): Json<CreateIncomingHook>,
) -> Result<Response, ApiError> {
    let actor = Actor::caller(&who, ip);
    let keep = config.gateway.resume_events_per_room;
    let made = crate::chat::commit_as(&store, &sink, move |conn, events| {
        insert(conn, room_id, &req.name, &who, &actor, keep, events)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

/// `GET /api/v1/rooms/{id}/hooks`.
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{id}/hooks",
    operation_id = "listIncomingHooks",
    summary = "A room's incoming webhook URLs (moderators)",
    tag = "webhooks",
    params(("id" = i64, Path, example = 1, description = "The room's id")),
    responses(
        (status = 200, description = "The live URLs (without their tokens)", body = IncomingHookList),
        (status = 403, description = "Not a moderator of the room (`forbidden`, \
         `not_a_member`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such room (`not_found`)", body = crate::http::ErrorBody),
    )
)]
pub async fn list(
    State(store): State<Store>,
    who: Principal,
    Path(room_id): Path<i64>,
) -> Result<Json<IncomingHookList>, ApiError> {
    let hooks = store
        .read(move |conn| {
            Access::load(conn, room_id, &who)?.require_moderator()?;
            load_all(conn, room_id)
        })
        .await?;
    Ok(Json(IncomingHookList { hooks }))
}

/// `DELETE /api/v1/rooms/{id}/hooks/{hook_id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/rooms/{id}/hooks/{hook_id}",
    operation_id = "revokeIncomingHook",
    summary = "Revoke an incoming webhook URL (moderators)",
    tag = "webhooks",
    params(
        ("id" = i64, Path, example = 1, description = "The room's id"),
        ("hook_id" = i64, Path, example = 1, description = "The incoming webhook's id"),
    ),
    responses(
        (status = 204, description = "Revoked: the URL answers 404 from now on and its bot is \
         disabled (its messages stay)"),
        (status = 403, description = "Not a moderator of the room (`forbidden`, \
         `not_a_member`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such room or URL (`not_found`)", body = crate::http::ErrorBody),
    )
)]
pub async fn revoke(
    State(store): State<Store>,
    who: Principal,
    ip: Option<Extension<ClientIp>>,
    Path((room_id, id)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::caller(&who, ip);
    store
        .write(move |conn| revoke_url(conn, room_id, id, &who, &actor))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /hooks/{token}`.
#[utoipa::path(
    post,
    path = "/hooks/{token}",
    operation_id = "postToIncomingHook",
    summary = "Post a message through an incoming webhook URL",
    tag = "webhooks",
    security(()),
    description = "No other credentials: the token in the path is the credential. The message is \
        posted by the URL's bot account, checked like any message. Example: `curl -sS -X POST \
        -H 'Content-Type: application/json' -d '{\"text\":\"Backup failed\"}' \
        https://roost.local/hooks/<token>`.",
    params(("token" = String, Path, description = "The token shown when the URL was made")),
    request_body = IncomingPost,
    responses(
        (status = 201, description = "Posted", body = MessageView),
        (status = 400, description = "Not the JSON `{\"text\"}` (`invalid_body`), or a text any \
         message would be refused for (`message_too_long`, `empty_message`, \
         `message_control_character`)", body = crate::http::ErrorBody),
        (status = 403, description = "The URL's bot was taken out of the room (`not_a_member`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such URL, or it was revoked (`not_found`)",
         body = crate::http::ErrorBody),
        (status = 413, description = "Larger than `[webhooks] incoming_max_body_bytes` \
         (`payload_too_large`)", body = crate::http::ErrorBody),
        (status = 429, description = "This URL's own bucket is empty (`rate_limited`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn post(
    State(chat_metrics): State<ChatMetrics>,
    State(store): State<Store>,
    State(sink): State<EventSink>,
    State(config): State<Arc<Config>>,
    State(integrations): State<Arc<Integrations>>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let cap = integrations.config().incoming_max_body_bytes;
    if body.len() > cap {
        return Err(IntegrationError::TooLarge(cap).into());
    }
    let hash = crypto::sha256(&token);
    let hook: Option<(i64, i64, i64)> = store
        .read(move |conn| {
            conn.prepare_cached(
                "SELECT h.id, h.room_id, h.bot_id FROM incoming_hooks h JOIN users u ON u.id = h.bot_id
                  WHERE h.token_hash = ?1 AND h.revoked_at IS NULL AND u.disabled = 0",
            )?
            .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()
            .map_err(IntegrationError::from)
        })
        .await?;
    let (hook_id, room_id, bot_id) = hook.ok_or(IntegrationError::NotFound)?;
    integrations
        .take_incoming_token(hook_id)
        .map_err(IntegrationError::RateLimited)?;
    let post: IncomingPost = serde_json::from_slice(&body).map_err(|e| {
        IntegrationError::invalid(
            "invalid_body",
            format!("the body must be JSON like {{\"text\": \"...\"}}: {e}"),
        )
    })?;
    let text = messages::check_body(&post.text, 0, config.chat.max_message_chars)?;
    let keep = config.gateway.resume_events_per_room;
    let messages_total = chat_metrics.messages.clone();
    let view = crate::chat::commit(&store, &sink, move |conn, events| {
        let member: Option<String> = conn
            .prepare_cached("SELECT role FROM room_members WHERE room_id = ?1 AND user_id = ?2")?
            .query_row(params![room_id, bot_id], |r| r.get(0))
            .optional()?;
        if member.is_none() {
            return Err(ChatError::forbidden(
                "not_a_member",
                "this webhook's bot is no longer a member of the room",
            ));
        }
        let now = now_ms();
        let id: i64 = conn
            .prepare_cached(
                "INSERT INTO messages (room_id, author_id, body, created_at) VALUES (?1, ?2, ?3, ?4)
                 RETURNING id",
            )?
            .query_row(params![room_id, bot_id, text, now], |r| r.get(0))?;
        let (view, event) = messages::announce_created(conn, room_id, id, now, keep, None)?;
        events.push(event);
        Ok(view)
    })
    .await?;
    messages_total.inc();
    Ok((StatusCode::CREATED, Json(view)).into_response())
}
