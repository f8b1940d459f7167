//! Read positions kept on the server: how far each member has read each room, so unread counts
//! follow a person across devices.
//!
//! A read position is a room event sequence number (the `seq` of the gateway's frames and of
//! `last_seq` in room answers). It only moves forward: a lower one is ignored, so two devices
//! that mark read out of order never move each other back. Joining a room (or creating it)
//! sets the position to the joining event, so a room's history before that counts as read.
//! An unread count is the number of messages by others after the position that are not
//! deleted, capped at [`MAX_UNREAD`] so that a long-unread room costs a bounded scan. Only what
//! people wrote counts (`kind = 'text'`, bots' posts included): a room's call entries ("call
//! started", "call ended") are its record of calls, shown in the timeline, not words someone has
//! to read, so they never raise the count (the web client's live count follows the same rule).
//!
//! A missed call is the newest call after the read position (its `call_started` entry) that
//! has ended (its `call_ended` entry) and that the member neither started nor joined
//! (`call_attendees`); a call still going on is not missed yet. The room list shows it until
//! the member reads past it, so it clears on every device when they open the room.
//!
//! This module knows nothing about sockets and publishes no event: a read position is private
//! to its owner, and the room event log is shared by every member.

use axum::extract::{Path, State};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::rooms::Access;
use super::{commit, ChatError, EventSink};
use crate::auth::Principal;
use crate::http::time::now_ms;
use crate::http::{ApiError, Json};
use crate::store::Store;

/// The highest unread count reported: the count query stops after this many messages, so a
/// room unread for a long time costs no more than one with 999 new messages. Clients show it
/// as "999+".
pub const MAX_UNREAD: i64 = 999;

/// A member's read position in a room and the unread count it gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReadState {
    /// The room event sequence number read up to (0: nothing read yet).
    pub read_seq: i64,
    /// Messages by others after `read_seq` that are not deleted, at most 999. Call entries
    /// (`kind` `call_started`, `call_ended`) are not counted.
    #[schema(maximum = 999)]
    pub unread: i64,
    /// When the newest call after `read_seq` that has ended and that the caller neither
    /// started nor joined started: a missed call. Absent when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub missed_call_at: Option<String>,
}

/// `user_id`'s read position in `room_id` and the unread count after it.
pub fn state(conn: &Connection, user_id: i64, room_id: i64) -> Result<ReadState, ChatError> {
    let read_seq: i64 = conn
        .prepare_cached("SELECT seq FROM room_reads WHERE user_id = ?1 AND room_id = ?2")?
        .query_row(params![user_id, room_id], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    // The inner LIMIT bounds the rows scanned (the `messages_room_seq` index gives them in
    // order; call entries passed over are at most two per call); a deleted account's messages
    // (author NULL) are someone else's.
    let unread: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM (
                SELECT 1 FROM messages
                 WHERE room_id = ?1 AND seq > ?2 AND deleted_at IS NULL
                   AND author_id IS NOT ?3 AND kind = 'text'
                 LIMIT ?4)",
        )?
        .query_row(params![room_id, read_seq, user_id, MAX_UNREAD], |r| {
            r.get(0)
        })?;
    // The partial index `messages_call_started` holds only call entries, so this passes over
    // the calls after the position the member took part in, nothing else.
    let missed_call_at: Option<i64> = conn
        .prepare_cached(
            "SELECT m.created_at FROM messages m INDEXED BY messages_call_started
              WHERE m.room_id = ?1 AND m.seq > ?2 AND m.kind = 'call_started'
                AND m.author_id IS NOT ?3
                AND NOT EXISTS (SELECT 1 FROM call_attendees a
                                 WHERE a.message_id = m.id AND a.user_id = ?3)
                AND EXISTS (SELECT 1 FROM messages e
                             WHERE e.room_id = m.room_id AND e.call_sid = m.call_sid
                               AND e.kind = 'call_ended')
              ORDER BY m.seq DESC LIMIT 1",
        )?
        .query_row(params![room_id, read_seq, user_id], |r| r.get(0))
        .optional()?;
    Ok(ReadState {
        read_seq,
        unread,
        missed_call_at: missed_call_at.map(crate::http::time::rfc3339_ms),
    })
}

/// Moves `user_id`'s read position in `room_id` forward to `seq` (never back); returns the
/// position now stored. In the caller's transaction.
pub fn advance(
    conn: &Connection,
    user_id: i64,
    room_id: i64,
    seq: i64,
    now: i64,
) -> Result<i64, ChatError> {
    let stored = conn
        .prepare_cached(
            "INSERT INTO room_reads (user_id, room_id, seq, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id, room_id) DO UPDATE
                SET seq = max(seq, excluded.seq), updated_at = excluded.updated_at
             RETURNING seq",
        )?
        .query_row(params![user_id, room_id, seq, now], |r| r.get(0))?;
    Ok(stored)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// The room event sequence number read up to: a message's event `seq`, or the room's
    /// `last_seq` to mark everything read. 0 to the room's `last_seq`.
    #[schema(minimum = 0)]
    pub seq: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadAnswer {
    pub room_id: i64,
    #[serde(flatten)]
    pub state: ReadState,
}

/// `PUT /api/v1/rooms/{id}/read`: records how far the caller has read the room.
#[utoipa::path(
    put,
    path = "/api/v1/rooms/{id}/read",
    operation_id = "markRoomRead",
    summary = "Record how far the caller has read a room",
    description = "The read position only moves forward: a `seq` lower than the stored one \
        is ignored and the answer says the stored position. The room list shows each room's \
        `read_seq` and `unread` (messages by others after it, not deleted, counted up to 999 \
        only, to bound the count's cost; call entries are not counted), and `missed_call_at` \
        while an ended call the caller did not take part in is after it, on every device of the \
        account.",
    tag = "rooms",
    params(("id" = i64, Path, example = 1, description = "The room's id")),
    request_body = MarkRead,
    responses(
        (status = 200, description = "The stored read position and the unread count after it",
         body = ReadAnswer),
        (status = 400, description = "A body that is not valid (`invalid_body`), or a `seq` \
         below 0 or beyond the room's `last_seq` (`invalid_seq`)", body = crate::http::ErrorBody),
        (status = 403, description = "A public room the caller has not joined (`not_a_member`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such room, or one the caller may not see (`not_found`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn mark(
    State(store): State<Store>,
    State(sink): State<EventSink>,
    who: Principal,
    Path(room_id): Path<i64>,
    Json(req): Json<MarkRead>,
) -> Result<Json<ReadAnswer>, ApiError> {
    let state = commit(&store, &sink, move |conn, _events| {
        let access = Access::load(conn, room_id, &who)?;
        access.require_member()?;
        if req.seq < 0 || req.seq > access.room.last_seq {
            return Err(ChatError::invalid(
                "invalid_seq",
                format!(
                    "seq must be between 0 and the room's last_seq ({})",
                    access.room.last_seq
                ),
            ));
        }
        advance(conn, who.user_id, room_id, req.seq, now_ms())?;
        state(conn, who.user_id, room_id)
    })
    .await?;
    Ok(Json(ReadAnswer { room_id, state }))
}
