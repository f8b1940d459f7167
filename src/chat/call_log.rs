//! The room's record of its calls: a `call_started` entry when someone joins a call nobody was
//! in ("Call started by Ana"), a `call_ended` entry with the call's length when the last person
//! leaves or LiveKit ends the call ("Call ended · 12 min").
//!
//! The entries are messages (`messages.kind`, migration 14) with an empty body, so they page
//! and sync through `message.created` events like messages; they never count as unread
//! (`chat::reads`) and search never finds them. Each is posted at most once per LiveKit room
//! session (`call_sid`, LiveKit's room sid): a unique index makes a repeated webhook, or a late
//! one, a no-op.
//!
//! Who joins a call is recorded with its `call_started` entry (`call_attendees`, migration 18):
//! a call someone took part in is not a missed call in their room list (`chat::reads`).
//!
//! This module listens to `livekit::calls::Registry` (fed by LiveKit's webhooks) and writes
//! through [`commit`](super::commit); it never talks to LiveKit.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::call_mapping::{room_id_of, user_id_of};
use super::events::{self, RoomEvent};
use super::messages::{self, MessageKind};
use super::{commit, ChatError, EventSink};
use crate::config::Config;
use crate::http::time::now_ms;
use crate::livekit::calls::CallEvent;
use crate::livekit::LiveKit;
use crate::store::Store;

/// Background task: turns the call registry's `Started`/`Emptied` into timeline entries, and
/// its `Joined` into who took part, until `shutdown`. One task, so a `Joined` is recorded after
/// the `Started` that came before it.
pub async fn run(
    store: Store,
    sink: EventSink,
    livekit: Arc<LiveKit>,
    config: Arc<Config>,
    shutdown: CancellationToken,
) {
    let mut rx = livekit.calls.subscribe();
    loop {
        let event = tokio::select! {
            e = rx.recv() => e,
            _ = shutdown.cancelled() => return,
        };
        let (room, room_sid, kind, by) = match event {
            Ok(CallEvent::Started { room, room_sid, by }) => (
                room,
                room_sid,
                MessageKind::CallStarted,
                user_id_of(&by.identity),
            ),
            Ok(CallEvent::Emptied { room, room_sid }) => {
                (room, room_sid, MessageKind::CallEnded, None)
            }
            Ok(CallEvent::Joined { room, participant }) => {
                let (Some(room_id), Some(user_id)) =
                    (room_id_of(&room), user_id_of(&participant.identity))
                else {
                    continue;
                };
                let noted = store
                    .write(move |conn| record_attendance(conn, room_id, user_id))
                    .await;
                if let Err(e) = noted {
                    tracing::warn!(room_id, error = %e, "could not record who joined a call");
                }
                continue;
            }
            Ok(_) => continue,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "call log fell behind LiveKit call events");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(room_id) = room_id_of(&room) else {
            continue; // a LiveKit room Roost did not name
        };
        let keep = config.gateway.resume_events_per_room;
        let posted = commit(&store, &sink, move |conn, events| {
            if let Some(event) = record(conn, room_id, &room_sid, kind, by, now_ms(), keep)? {
                events.push(event);
            }
            Ok(())
        })
        .await;
        if let Err(e) = posted {
            tracing::warn!(room_id, error = %e, "could not record a call entry");
        }
    }
}

/// Posts a call entry of `kind` to `room_id` for LiveKit room session `room_sid` at `now_ms`,
/// with `by` as the author of a `call_started`. Returns its `message.created` event, or `None`
/// when the room is gone or this session already has that entry.
pub fn record(
    conn: &Connection,
    room_id: i64,
    room_sid: &str,
    kind: MessageKind,
    by: Option<i64>,
    now_ms: i64,
    keep: u64,
) -> Result<Option<RoomEvent>, ChatError> {
    let room_exists = conn
        .prepare_cached("SELECT 1 FROM rooms WHERE id = ?1")?
        .query_row([room_id], |_| Ok(()))
        .optional()?
        .is_some();
    if !room_exists {
        return Ok(None);
    }
    // Without a sid (a sender other than LiveKit) the entry cannot be matched: post it anyway.
    let call_sid = Some(room_sid).filter(|s| !s.is_empty());
    let (column, author, secs) = match kind {
        MessageKind::CallStarted => {
            // The author must still have an account (a deleted one leaves no name to show).
            let author: Option<i64> = match by {
                Some(id) => conn
                    .prepare_cached("SELECT id FROM users WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?,
                None => None,
            };
            ("call_started", author, None)
        }
        MessageKind::CallEnded => {
            let started: Option<i64> = conn
                .prepare_cached(
                    "SELECT created_at FROM messages
                      WHERE room_id = ?1 AND call_sid = ?2 AND kind = 'call_started'",
                )?
                .query_row(params![room_id, call_sid], |r| r.get(0))
                .optional()?;
            let secs = started.map(|at| (now_ms - at).max(0) / 1000);
            ("call_ended", None, secs)
        }
        MessageKind::Text => return Ok(None),
    };
    let id: Option<i64> = conn
        .prepare_cached(
            "INSERT INTO messages (room_id, author_id, body, created_at, kind, call_sid, call_secs)
             VALUES (?1, ?2, '', ?3, ?4, ?5, ?6)
             ON CONFLICT DO NOTHING RETURNING id",
        )?
        .query_row(
            params![room_id, author, now_ms, column, call_sid, secs],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = id else {
        return Ok(None); // this session's entry exists: a repeated or late webhook
    };
    let view = messages::load(conn, room_id, id)?;
    let event = events::append(conn, room_id, "message.created", &view, now_ms, keep, None)?;
    // Unread counts compare a message's event sequence number with read positions.
    conn.prepare_cached("UPDATE messages SET seq = ?2 WHERE id = ?1")?
        .execute(params![id, event.seq])?;
    Ok(Some(event))
}

/// Records that `user_id` took part in the call going on in `room_id`: the newest
/// `call_started` entry that has no `call_ended` yet. Nothing when there is none (the entry
/// could not be posted) or the account is gone; a repeat is a no-op.
pub fn record_attendance(conn: &Connection, room_id: i64, user_id: i64) -> Result<(), ChatError> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO call_attendees (message_id, user_id)
         SELECT m.id, u.id FROM messages m JOIN users u ON u.id = ?2
          WHERE m.id = (SELECT id FROM messages
                         WHERE room_id = ?1 AND kind = 'call_started'
                         ORDER BY seq DESC LIMIT 1)
            AND NOT EXISTS (SELECT 1 FROM messages e
                             WHERE e.room_id = m.room_id AND e.call_sid = m.call_sid
                               AND e.kind = 'call_ended')",
    )?
    .execute(params![room_id, user_id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &std::path::Path) -> Connection {
        let path = dir.join("roost.sqlite3");
        crate::store::migrations::apply(&path, &dir.join("backups")).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, username, display_name, role, password_hash, created_at,
                                updated_at)
               VALUES (7, 'ana', 'Ana', 'member', 'x', 0, 0);
             INSERT INTO rooms (id, name, visibility, created_at, updated_at)
               VALUES (1, 'family', 'public', 0, 0);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn each_entry_is_posted_once_per_livekit_room_session() {
        let dir = tempfile::tempdir().unwrap();
        let conn = db(dir.path());
        let started = record(
            &conn,
            1,
            "RM_a",
            MessageKind::CallStarted,
            Some(7),
            1_000,
            100,
        );
        assert!(started.unwrap().is_some());
        // LiveKit repeats a webhook, or it arrives again after a restart: nothing new.
        let again = record(
            &conn,
            1,
            "RM_a",
            MessageKind::CallStarted,
            Some(7),
            2_000,
            100,
        );
        assert!(again.unwrap().is_none());
        let ended = record(&conn, 1, "RM_a", MessageKind::CallEnded, None, 721_000, 100);
        assert!(ended.unwrap().is_some());
        let ended_again = record(&conn, 1, "RM_a", MessageKind::CallEnded, None, 900_000, 100);
        assert!(ended_again.unwrap().is_none());
        // The next call in the room is a new LiveKit session.
        assert!(record(
            &conn,
            1,
            "RM_b",
            MessageKind::CallStarted,
            Some(7),
            1_000_000,
            100
        )
        .unwrap()
        .is_some());

        let entries: Vec<(String, Option<i64>, Option<i64>, String)> = conn
            .prepare("SELECT kind, author_id, call_secs, body FROM messages ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            entries,
            vec![
                ("call_started".into(), Some(7), None, String::new()),
                ("call_ended".into(), None, Some(720), String::new()),
                ("call_started".into(), Some(7), None, String::new()),
            ]
        );
        let view = messages::load(&conn, 1, 2).unwrap();
        assert_eq!(view.kind, MessageKind::CallEnded);
        assert_eq!(view.call_duration_secs, Some(720));
        // A room that is gone gets nothing.
        assert!(
            record(&conn, 9, "RM_c", MessageKind::CallStarted, Some(7), 1, 100)
                .unwrap()
                .is_none()
        );
    }
}
