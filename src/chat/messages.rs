//! Messages: post (safe to retry with `Idempotency-Key`), edit, delete (a tombstone stays),
//! get, and list with `before`/`after` cursors.
//!
//! A post checks membership, the body (`[chat] max_message_chars`, no control characters but
//! newline and tab, CRLF stored as LF) and that every attachment it references was uploaded by
//! the poster, then inserts the message, its attachment links, the `message.created` event and
//! the idempotency key in one transaction.
//! The same key from the same user returns the original message with 200 instead of posting
//! again (201 the first time). Edits are the author's; deletes the author's or a moderator's.
//! This module never publishes an event itself (see [`super::commit`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::events;
use super::rooms::Access;
use super::{commit, ChatError, ChatMetrics, EventSink, RoomEvent};
use crate::auth::Principal;
use crate::config::Config;
use crate::http::time::now_ms;
use crate::http::{ApiError, Json, Query};
use crate::store::Store;

/// Largest page of `GET .../messages`.
pub const MAX_PAGE: usize = 100;
const DEFAULT_PAGE: usize = 50;
/// Attachments one message may reference.
pub const MAX_ATTACHMENTS: usize = 10;
/// Longest `Idempotency-Key` accepted.
const MAX_KEY_LEN: usize = 128;

/// An attachment as a message shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttachmentRef {
    pub id: i64,
    pub name: String,
    pub content_type: String,
    pub size: i64,
}

/// What a timeline entry is: a person's message, or an entry Roost posts about the room's call
/// (`chat::call_log`), which has an empty body and cannot be edited or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
    /// `author` started a call in the room.
    CallStarted,
    /// The room's call ended (no author); `call_duration_secs` says how long it lasted.
    CallEnded,
}

impl MessageKind {
    fn from_column(kind: &str) -> MessageKind {
        match kind {
            "call_started" => MessageKind::CallStarted,
            "call_ended" => MessageKind::CallEnded,
            _ => MessageKind::Text,
        }
    }
}

/// A message as the API and the gateway show it. A deleted message keeps its id, room, author
/// and times with an empty body and no attachments.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Message)]
pub struct MessageView {
    pub id: i64,
    pub room_id: i64,
    /// Null if the account was deleted.
    #[schema(required = true)]
    pub author_id: Option<i64>,
    /// The author's username (null if the account was deleted).
    #[schema(required = true)]
    pub author: Option<String>,
    /// The author's display name, the name people see (null if the account was deleted). Read
    /// when the message is: pages, `GET` and search give the name the author has now; an event
    /// gives the name the author had when it happened.
    #[schema(required = true)]
    pub author_display_name: Option<String>,
    /// The author is a bot (an integration or an incoming webhook), not a person.
    pub author_bot: bool,
    pub body: String,
    pub attachments: Vec<AttachmentRef>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Null until the first edit.
    #[schema(format = DateTime, required = true)]
    pub edited_at: Option<String>,
    pub deleted: bool,
    /// The room's members named with `@username` in the body (members now, each once, in the
    /// order named; at most 20 names are looked up). Empty for a deleted message.
    pub mentions: Vec<super::mentions::Mention>,
    pub kind: MessageKind,
    /// For `call_ended`: how long the call lasted, in seconds; null otherwise.
    #[schema(required = true)]
    pub call_duration_secs: Option<i64>,
    /// The SHA-256 (lowercase hex) of the `Idempotency-Key` the message was posted with, so the
    /// author's client can match its pending send with the stored message, whichever of the
    /// post's answer and the `message.created` event comes first. Only in those two (absent
    /// elsewhere, and when the post had no key). The digest, not the key, because every member
    /// of the room receives the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key_sha256: Option<String>,
}

const MESSAGE_COLUMNS: &str = "m.id, m.room_id, m.author_id, u.username, m.body, m.created_at, \
     m.edited_at, m.deleted_at, m.kind, m.call_secs, coalesce(u.kind = 'bot', 0), u.display_name";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<MessageView> {
    let edited: Option<i64> = row.get(6)?;
    let deleted: Option<i64> = row.get(7)?;
    Ok(MessageView {
        id: row.get(0)?,
        room_id: row.get(1)?,
        author_id: row.get(2)?,
        author: row.get(3)?,
        author_display_name: row.get(11)?,
        author_bot: row.get(10)?,
        body: row.get(4)?,
        attachments: Vec::new(),
        created_at: crate::http::time::rfc3339_ms(row.get(5)?),
        edited_at: edited.map(crate::http::time::rfc3339_ms),
        deleted: deleted.is_some(),
        mentions: Vec::new(),
        kind: MessageKind::from_column(&row.get::<_, String>(8)?),
        call_duration_secs: row.get(9)?,
        idempotency_key_sha256: None,
    })
}

/// Fills in the attachments and mentions of `messages`.
fn decorate(conn: &Connection, messages: Vec<MessageView>) -> Result<Vec<MessageView>, ChatError> {
    let mut messages = with_attachments(conn, messages)?;
    super::mentions::fill(conn, &mut messages)?;
    Ok(messages)
}

/// Fills in the attachments of `messages` (one query for the whole page).
fn with_attachments(
    conn: &Connection,
    mut messages: Vec<MessageView>,
) -> Result<Vec<MessageView>, ChatError> {
    let (Some(lo), Some(hi)) = (
        messages.iter().map(|m| m.id).min(),
        messages.iter().map(|m| m.id).max(),
    ) else {
        return Ok(messages);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT ma.message_id, a.id, a.name, a.content_type, a.size
           FROM message_attachments ma JOIN attachments a ON a.id = ma.attachment_id
          WHERE ma.message_id BETWEEN ?1 AND ?2 ORDER BY ma.message_id, ma.position",
    )?;
    let mut by_message: HashMap<i64, Vec<AttachmentRef>> = HashMap::new();
    let rows = stmt.query_map(params![lo, hi], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            AttachmentRef {
                id: r.get(1)?,
                name: r.get(2)?,
                content_type: r.get(3)?,
                size: r.get(4)?,
            },
        ))
    })?;
    for row in rows {
        let (message_id, a) = row?;
        by_message.entry(message_id).or_default().push(a);
    }
    for m in &mut messages {
        if let Some(list) = by_message.remove(&m.id) {
            m.attachments = list;
        }
    }
    Ok(messages)
}

pub fn load(conn: &Connection, room_id: i64, id: i64) -> Result<MessageView, ChatError> {
    let m = conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN users u ON u.id = m.author_id
              WHERE m.id = ?1 AND m.room_id = ?2"
        ))?
        .query_row(params![id, room_id], message_from_row)
        .optional()?
        .ok_or(ChatError::NotFound)?;
    Ok(decorate(conn, vec![m])?.remove(0))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// At most `[chat] max_message_chars` characters; may be empty with an attachment.
    #[serde(default)]
    pub body: String,
    /// At most 10 attachments uploaded by the poster.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub attachment_ids: Vec<i64>,
}

/// The body as it is stored: each CRLF becomes LF (what a Windows client sends for a line
/// break); then at most `max_chars` characters, no control character but newline and tab (a
/// NUL, an escape sequence or a bare CR would reach other people's screens and terminals), and
/// not blank unless the message has attachments.
pub(crate) fn check_body(
    body: &str,
    attachments: usize,
    max_chars: usize,
) -> Result<String, ChatError> {
    let body = body.replace("\r\n", "\n");
    if let Some(c) = body
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return Err(ChatError::invalid(
            "message_control_character",
            format!(
                "a message may not contain control characters other than newline and tab \
                 (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    if body.chars().count() > max_chars {
        return Err(ChatError::invalid(
            "message_too_long",
            format!("a message has at most {max_chars} characters"),
        ));
    }
    if body.trim().is_empty() && attachments == 0 {
        return Err(ChatError::invalid(
            "empty_message",
            "a message needs text or an attachment",
        ));
    }
    Ok(body)
}

/// Call entries are the room's record of its calls, not anyone's words: nobody edits or
/// deletes them.
fn refuse_call_entry(current: &MessageView) -> Result<(), ChatError> {
    if current.kind == MessageKind::Text {
        return Ok(());
    }
    Err(ChatError::conflict(
        "call_entry",
        "call started and call ended entries cannot be edited or deleted",
    ))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ChatError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
        .ok_or_else(|| {
            ChatError::invalid(
                "invalid_idempotency_key",
                format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// `POST /api/v1/rooms/{id}/messages`: 201 with the message; 200 with the original message
/// when the `Idempotency-Key` was seen before from this user.
#[utoipa::path(
    post,
    path = "/api/v1/rooms/{id}/messages",
    operation_id = "postMessage",
    summary = "Post a message",
    tag = "messages",
    params(
        ("id" = i64, Path, example = 1, description = "The room's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 128 visible ASCII \
         characters; a repeat from the same account returns the original message (200)"),
    ),
    request_body = PostMessage,
    responses(
        (status = 201, description = "Posted", body = MessageView),
        (status = 200, description = "A repeat of an earlier post with the same \
         `Idempotency-Key`: the original message", body = MessageView),
        (status = 400, description = "Too long (`message_too_long`), empty (`empty_message`), \
         a control character other than newline and tab (`message_control_character`; CRLF is \
         stored as LF), too many or unknown attachments (`too_many_attachments`, `unknown_attachment`), or a \
         bad `Idempotency-Key` (`invalid_idempotency_key`)", body = crate::http::ErrorBody),
        (status = 403, description = "Not a member of the room (`not_a_member`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such room or message, or a room the caller may not see \
         (`not_found`)", body = crate::http::ErrorBody),
        (status = 409, description = "The `Idempotency-Key` was used for a post to another room \
         (`idempotency_key_reused`)", body = crate::http::ErrorBody),
    )
)]
// Each argument is an axum extractor: one part of the state it uses, or one part of the
// request. Bundling them would only hide what the handler depends on.
#[allow(clippy::too_many_arguments)]
pub async fn post(
    State(chat_metrics): State<ChatMetrics>,
    State(store): State<Store>,
    State(sink): State<EventSink>,
    State(config): State<Arc<Config>>,
    who: Principal,
    Path(room_id): Path<i64>,
    headers: HeaderMap,
    Json(req): Json<PostMessage>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    if req.attachment_ids.len() > MAX_ATTACHMENTS {
        return Err(ChatError::invalid(
            "too_many_attachments",
            format!("a message has at most {MAX_ATTACHMENTS} attachments"),
        )
        .into());
    }
    let body = check_body(
        &req.body,
        req.attachment_ids.len(),
        config.chat.max_message_chars,
    )?;
    let keep = config.gateway.resume_events_per_room;
    let messages_total = chat_metrics.messages.clone();
    let (created, view) = commit(&store, &sink, move |conn, events| {
        if let Some(key) = &key {
            let seen: Option<i64> = conn
                .prepare_cached(
                    "SELECT message_id FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
                )?
                .query_row(params![who.user_id, key], |r| r.get(0))
                .optional()?;
            if let Some(message_id) = seen {
                let original: Option<i64> = conn
                    .query_row(
                        "SELECT room_id FROM messages WHERE id = ?1",
                        [message_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if original != Some(room_id) {
                    return Err(ChatError::conflict(
                        "idempotency_key_reused",
                        "this Idempotency-Key was used for a post to another room",
                    ));
                }
                let mut original = load(conn, room_id, message_id)?;
                original.idempotency_key_sha256 = Some(key_digest(key));
                return Ok((false, original));
            }
        }
        Access::load(conn, room_id, &who)?.require_member()?;
        for id in &req.attachment_ids {
            let uploader: Option<Option<i64>> = conn
                .prepare_cached("SELECT uploader_id FROM attachments WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            if uploader != Some(Some(who.user_id)) {
                return Err(ChatError::invalid(
                    "unknown_attachment",
                    format!("attachment {id} does not exist or was not uploaded by you"),
                ));
            }
        }
        let now = now_ms();
        let id: i64 = conn
            .prepare_cached(
                "INSERT INTO messages (room_id, author_id, body, created_at) VALUES (?1, ?2, ?3, ?4)
                 RETURNING id",
            )?
            .query_row(params![room_id, who.user_id, body, now], |r| r.get(0))?;
        for (position, attachment) in req.attachment_ids.iter().enumerate() {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO message_attachments (message_id, attachment_id, position)
                 VALUES (?1, ?2, ?3)",
            )?
            .execute(params![id, attachment, position as i64])?;
        }
        if let Some(key) = &key {
            conn.prepare_cached(
                "INSERT INTO idempotency_keys (user_id, key, message_id, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![who.user_id, key, id, now])?;
        }
        let (view, event) = announce_created(conn, room_id, id, now, keep, key.as_deref())?;
        events.push(event);
        Ok((true, view))
    })
    .await?;
    if created {
        messages_total.inc();
        Ok((StatusCode::CREATED, Json(view)).into_response())
    } else {
        Ok((StatusCode::OK, Json(view)).into_response())
    }
}

/// What the author's client matches its pending send by: the key's SHA-256 in hex. Every member
/// of the room sees it, and learns nothing of the key from it.
fn key_digest(key: &str) -> String {
    hex::encode(crate::auth::crypto::sha256(key))
}

/// Writes the `message.created` event of message `id`, just inserted (with its attachments),
/// and gives the message its sequence number; the caller's transaction. `idempotency_key`: the
/// key it was posted with, whose digest the event carries.
pub(crate) fn announce_created(
    conn: &Connection,
    room_id: i64,
    id: i64,
    now: i64,
    keep: u64,
    idempotency_key: Option<&str>,
) -> Result<(MessageView, RoomEvent), ChatError> {
    let mut view = load(conn, room_id, id)?;
    view.idempotency_key_sha256 = idempotency_key.map(key_digest);
    let event = events::append(conn, room_id, "message.created", &view, now, keep, None)?;
    // Unread counts compare a message's event sequence number with read positions.
    conn.prepare_cached("UPDATE messages SET seq = ?2 WHERE id = ?1")?
        .execute(params![id, event.seq])?;
    Ok((view, event))
}

/// `GET /api/v1/rooms/{id}/messages/{message_id}`.
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{id}/messages/{message_id}",
    operation_id = "getMessage",
    summary = "Get a message",
    tag = "messages",
    params(
        ("id" = i64, Path, example = 1, description = "The room's id"),
        ("message_id" = i64, Path, example = 1, description = "The message's id"),
    ),
    responses(
        (status = 200, description = "The message (a tombstone if deleted)", body = MessageView),
        (status = 403, description = "A public room the caller has not joined (`not_a_member`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such room or message, or a room the caller may not see \
         (`not_found`)", body = crate::http::ErrorBody),
    )
)]
pub async fn get(
    State(store): State<Store>,
    who: Principal,
    Path((room_id, id)): Path<(i64, i64)>,
) -> Result<Json<MessageView>, ApiError> {
    let view = store
        .read(move |conn| {
            Access::load(conn, room_id, &who)?.require_read()?;
            load(conn, room_id, id)
        })
        .await?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    pub body: String,
}

/// `PATCH /api/v1/rooms/{id}/messages/{message_id}`: the author edits the body.
#[utoipa::path(
    patch,
    path = "/api/v1/rooms/{id}/messages/{message_id}",
    operation_id = "editMessage",
    summary = "Edit a message",
    tag = "messages",
    params(
        ("id" = i64, Path, example = 1, description = "The room's id"),
        ("message_id" = i64, Path, example = 1, description = "The message's id"),
    ),
    request_body = EditMessage,
    responses(
        (status = 200, description = "The edited message", body = MessageView),
        (status = 400, description = "Too long (`message_too_long`), empty (`empty_message`), \
         or a control character other than newline and tab (`message_control_character`; CRLF \
         is stored as LF)", body = crate::http::ErrorBody),
        (status = 403, description = "Not the author (`forbidden`), or not a member \
         (`not_a_member`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such room or message, or a room the caller may not see \
         (`not_found`)", body = crate::http::ErrorBody),
        (status = 409, description = "The message was deleted (`message_deleted`), or is a \
         call entry (`call_entry`)", body = crate::http::ErrorBody),
    )
)]
pub async fn edit(
    State(store): State<Store>,
    State(sink): State<EventSink>,
    State(config): State<Arc<Config>>,
    who: Principal,
    Path((room_id, id)): Path<(i64, i64)>,
    Json(req): Json<EditMessage>,
) -> Result<Json<MessageView>, ApiError> {
    let max = config.chat.max_message_chars;
    let keep = config.gateway.resume_events_per_room;
    let view = commit(&store, &sink, move |conn, events| {
        Access::load(conn, room_id, &who)?.require_member()?;
        let current = load(conn, room_id, id)?;
        refuse_call_entry(&current)?;
        if current.author_id != Some(who.user_id) {
            return Err(ChatError::forbidden(
                "forbidden",
                "only the author may edit a message",
            ));
        }
        if current.deleted {
            return Err(ChatError::conflict(
                "message_deleted",
                "a deleted message cannot be edited",
            ));
        }
        let body = check_body(&req.body, current.attachments.len(), max)?;
        let now = now_ms();
        conn.execute(
            "UPDATE messages SET body = ?2, edited_at = ?3 WHERE id = ?1",
            params![id, body, now],
        )?;
        let view = load(conn, room_id, id)?;
        events.push(events::append(
            conn,
            room_id,
            "message.updated",
            &view,
            now,
            keep,
            None,
        )?);
        Ok(view)
    })
    .await?;
    Ok(Json(view))
}

/// `DELETE /api/v1/rooms/{id}/messages/{message_id}`: the author or a moderator; the message
/// becomes a tombstone (returned, 200). Deleting a tombstone again changes nothing.
#[utoipa::path(
    delete,
    path = "/api/v1/rooms/{id}/messages/{message_id}",
    operation_id = "deleteMessage",
    summary = "Delete a message (a tombstone stays)",
    tag = "messages",
    params(
        ("id" = i64, Path, example = 1, description = "The room's id"),
        ("message_id" = i64, Path, example = 1, description = "The message's id"),
    ),
    responses(
        (status = 200, description = "The tombstone", body = MessageView),
        (status = 403, description = "Neither the author nor a moderator (`forbidden`), or not \
         a member (`not_a_member`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such room or message, or a room the caller may not see \
         (`not_found`)", body = crate::http::ErrorBody),
        (status = 409, description = "A call entry (`call_entry`), which stays as it is",
         body = crate::http::ErrorBody),
    )
)]
pub async fn delete(
    State(store): State<Store>,
    State(sink): State<EventSink>,
    State(config): State<Arc<Config>>,
    who: Principal,
    Path((room_id, id)): Path<(i64, i64)>,
) -> Result<Json<MessageView>, ApiError> {
    let keep = config.gateway.resume_events_per_room;
    let view = commit(&store, &sink, move |conn, events| {
        let access = Access::load(conn, room_id, &who)?;
        access.require_read()?;
        let current = load(conn, room_id, id)?;
        refuse_call_entry(&current)?;
        let own = current.author_id == Some(who.user_id) && access.is_member();
        if !own && !access.can_moderate() {
            return Err(ChatError::forbidden(
                "forbidden",
                "only the author and the room's moderators may delete a message",
            ));
        }
        if current.deleted {
            return Ok(current);
        }
        let now = now_ms();
        conn.execute(
            "UPDATE messages SET body = '', deleted_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        // The files are no longer shown; retention deletes them once nothing references them.
        conn.execute(
            "DELETE FROM message_attachments WHERE message_id = ?1",
            [id],
        )?;
        let view = load(conn, room_id, id)?;
        events.push(events::append(
            conn,
            room_id,
            "message.deleted",
            &view,
            now,
            keep,
            None,
        )?);
        Ok(view)
    })
    .await?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Messages older than this message id.
    pub before: Option<i64>,
    /// Messages newer than this message id (not with `before`).
    pub after: Option<i64>,
    /// Page size, 1 to 100 (default 50; other values are clamped).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = MessagePage)]
pub struct Page {
    /// Oldest first.
    pub messages: Vec<MessageView>,
    /// More messages exist beyond this page in the direction asked (older for `before` and
    /// the default, newer for `after`).
    pub has_more: bool,
}

/// `GET /api/v1/rooms/{id}/messages?before=&after=&limit=`: the newest `limit` (default 50,
/// at most 100) messages, or those right before/after a message id; tombstones included.
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{id}/messages",
    operation_id = "listMessages",
    summary = "List a room's messages",
    tag = "messages",
    params(
        ("id" = i64, Path, example = 1, description = "The room's id"),
        ListQuery,
    ),
    responses(
        (status = 200, description = "A page of messages, oldest first", body = Page),
        (status = 400, description = "Both `before` and `after`, or a bad value \
         (`invalid_query`)", body = crate::http::ErrorBody),
        (status = 403, description = "A public room the caller has not joined (`not_a_member`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such room, or one the caller may not see (`not_found`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn list(
    State(store): State<Store>,
    who: Principal,
    Path(room_id): Path<i64>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    if q.before.is_some() && q.after.is_some() {
        return Err(
            ChatError::invalid("invalid_query", "give `before` or `after`, not both").into(),
        );
    }
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let page = store
        .read(move |conn| {
            Access::load(conn, room_id, &who)?.require_read()?;
            page(conn, room_id, q.before, q.after, limit)
        })
        .await?;
    Ok(Json(page))
}

/// One page of a room's messages (see [`list`]).
pub fn page(
    conn: &Connection,
    room_id: i64,
    before: Option<i64>,
    after: Option<i64>,
    limit: usize,
) -> Result<Page, ChatError> {
    let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    let mut messages: Vec<MessageView> = if let Some(after) = after {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN users u ON u.id = m.author_id
              WHERE m.room_id = ?1 AND m.id > ?2 ORDER BY m.id ASC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![room_id, after, fetch], message_from_row)?;
        rows.collect::<Result<_, _>>()?
    } else {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m LEFT JOIN users u ON u.id = m.author_id
              WHERE m.room_id = ?1 AND m.id < ?2 ORDER BY m.id DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![room_id, before.unwrap_or(i64::MAX), fetch],
            message_from_row,
        )?;
        let mut newest_first: Vec<MessageView> = rows.collect::<Result<_, _>>()?;
        let more = newest_first.len() > limit;
        newest_first.truncate(limit);
        newest_first.reverse();
        let messages = decorate(conn, newest_first)?;
        return Ok(Page {
            messages,
            has_more: more,
        });
    };
    let has_more = messages.len() > limit;
    messages.truncate(limit);
    Ok(Page {
        messages: decorate(conn, messages)?,
        has_more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_bounded_and_not_blank() {
        assert!(check_body("hi", 0, 4).is_ok());
        assert!(check_body("héllo", 0, 5).is_ok(), "characters, not bytes");
        assert!(matches!(
            check_body("hello!", 0, 5),
            Err(ChatError::Invalid {
                code: "message_too_long",
                ..
            })
        ));
        assert!(check_body("  ", 0, 5).is_err());
        assert!(
            check_body("", 1, 5).is_ok(),
            "an attachment alone is a message"
        );
    }

    #[test]
    fn bodies_keep_newlines_and_tabs_and_nothing_else_that_controls() {
        assert_eq!(check_body("a\tb\nc", 0, 10).unwrap(), "a\tb\nc");
        assert_eq!(check_body("a\r\nb\r\n", 0, 10).unwrap(), "a\nb\n");
        for bad in ["nul\0", "\u{1b}[2J", "bare\rcr", "del\u{7f}", "c1\u{85}"] {
            assert!(
                matches!(
                    check_body(bad, 0, 100),
                    Err(ChatError::Invalid {
                        code: "message_control_character",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        // Counted after CRLF became LF.
        assert!(check_body("a\r\nb", 0, 3).is_ok());
    }
}
