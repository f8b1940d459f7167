//! The per-room event log: sequence numbers, the `events` table and the frame clients see.
//!
//! [`append`] gives a change the room's next sequence number (`rooms.last_seq + 1`) and writes
//! the event in the caller's transaction, so a committed change always has its event and an
//! event never exists without its change. Sequence numbers of committed events are therefore
//! contiguous per room (a rolled-back change takes its number back with it), which is what lets
//! the gateway detect and repair gaps. Only the newest `keep` events per room are kept: older
//! ones are deleted in the same statement sequence, so the table is bounded.
//!
//! This module does not publish anything: [`super::commit`] does, after COMMIT.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::ChatError;

/// A member was added to or removed from a room: the hub changes that user's subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Joined(i64),
    Left(i64),
}

/// One committed change to a room, as the gateway delivers it.
#[derive(Debug, Clone)]
pub struct RoomEvent {
    pub room_id: i64,
    pub seq: i64,
    /// `message.created`, `message.updated`, `message.deleted`, `member.joined`,
    /// `member.updated`, `member.left`, `room.updated`.
    pub kind: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The frame as sent on the websocket (rendered once, shared by every subscriber).
    pub frame: Arc<str>,
    pub member: Option<MemberChange>,
    /// The `directory` frame this change also sends to people who may see public rooms but
    /// are not in this one (a public room created, renamed, or made private: see
    /// [`super::directory`]). Set by the handler that made the change, kept in memory only:
    /// an event read back from the log has none.
    pub directory: Option<Arc<str>>,
}

/// The websocket text of an event: `{"op":"event","room_id","seq","type","at","data"}`.
/// `data` is already JSON (as stored), so it is spliced in, not re-encoded.
pub fn render(room_id: i64, seq: i64, kind: &str, at_ms: i64, data: &str) -> Arc<str> {
    // `kind` is one of a closed set of ASCII names and `at` an RFC 3339 string: neither needs
    // escaping, but serde_json does it anyway to stay safe if that ever changes.
    let kind = serde_json::Value::from(kind);
    let at = serde_json::Value::from(crate::http::time::rfc3339_ms(at_ms));
    Arc::from(format!(
        r#"{{"op":"event","room_id":{room_id},"seq":{seq},"type":{kind},"at":{at},"data":{data}}}"#
    ))
}

/// Appends an event for `room_id` inside the caller's transaction and returns it. `keep`:
/// events kept per room (older ones are deleted now).
pub fn append(
    conn: &Connection,
    room_id: i64,
    kind: &str,
    data: &impl Serialize,
    at_ms: i64,
    keep: u64,
    member: Option<MemberChange>,
) -> Result<RoomEvent, ChatError> {
    let seq: i64 = conn
        .prepare_cached(
            "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
        )?
        .query_row([room_id], |r| r.get(0))
        .optional()?
        .ok_or(ChatError::NotFound)?;
    // Serializing plain structs of strings and numbers cannot fail.
    let data = serde_json::to_string(data).expect("event data serializes");
    conn.prepare_cached(
        "INSERT INTO events (room_id, seq, type, at, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![room_id, seq, kind, at_ms, data])?;
    // Outgoing webhooks that want this event get a delivery queued in this same transaction:
    // rolled back with it, or committed with it.
    crate::outbox::enqueue(conn, kind, Some(room_id), Some(seq), at_ms, &data)?;
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    if seq > keep {
        conn.prepare_cached("DELETE FROM events WHERE room_id = ?1 AND seq <= ?2")?
            .execute(params![room_id, seq - keep])?;
    }
    Ok(RoomEvent {
        room_id,
        seq,
        frame: render(room_id, seq, kind, at_ms, &data),
        kind: kind.to_owned(),
        at_ms,
        member,
        directory: None,
    })
}

/// Where a room's log stands: its newest sequence number and the oldest one still kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    pub last_seq: i64,
    /// `None` when no event is kept (a room whose events were all pruned, or none yet).
    pub oldest_kept: Option<i64>,
}

pub fn position(conn: &Connection, room_id: i64) -> Result<Option<LogPosition>, ChatError> {
    let last: Option<i64> = conn
        .prepare_cached("SELECT last_seq FROM rooms WHERE id = ?1")?
        .query_row([room_id], |r| r.get(0))
        .optional()?;
    let Some(last_seq) = last else {
        return Ok(None);
    };
    let oldest_kept: Option<i64> = conn
        .prepare_cached("SELECT min(seq) FROM events WHERE room_id = ?1")?
        .query_row([room_id], |r| r.get(0))?;
    Ok(Some(LogPosition {
        last_seq,
        oldest_kept,
    }))
}

/// Whether events after `cursor` up to `pos.last_seq` are all still kept.
pub fn replayable(cursor: i64, pos: LogPosition) -> bool {
    if cursor > pos.last_seq || cursor < 0 {
        return false; // a cursor from the future (another server, a restored backup)
    }
    if cursor == pos.last_seq {
        return true;
    }
    pos.oldest_kept.is_some_and(|oldest| oldest <= cursor + 1)
}

/// Events of `room_id` with `after < seq <= up_to`, oldest first, at most `limit`.
pub fn range(
    conn: &Connection,
    room_id: i64,
    after: i64,
    up_to: i64,
    limit: usize,
) -> Result<Vec<RoomEvent>, ChatError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, type, at, data FROM events
          WHERE room_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        params![
            room_id,
            after,
            up_to,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |r| {
            let (seq, kind, at_ms, data): (i64, String, i64, String) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            Ok(RoomEvent {
                room_id,
                seq,
                frame: render(room_id, seq, &kind, at_ms, &data),
                member: member_change(&kind, &data),
                kind,
                at_ms,
                directory: None,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The membership change a stored event describes (for events read back from the log).
fn member_change(kind: &str, data: &str) -> Option<MemberChange> {
    let user_id = || {
        serde_json::from_str::<serde_json::Value>(data)
            .ok()?
            .get("user_id")?
            .as_i64()
    };
    match kind {
        "member.joined" => user_id().map(MemberChange::Joined),
        "member.left" => user_id().map(MemberChange::Left),
        _ => None,
    }
}

/// Every room's newest sequence number (the hub's starting point).
pub fn all_positions(conn: &Connection) -> Result<Vec<(i64, i64)>, ChatError> {
    let mut stmt = conn.prepare("SELECT id, last_seq FROM rooms")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_json_with_the_stored_data_spliced_in() {
        let f = render(
            3,
            7,
            "message.created",
            1_500,
            r#"{"id":9,"body":"hi \"x\""}"#,
        );
        let v: serde_json::Value = serde_json::from_str(&f).unwrap();
        assert_eq!(v["op"], "event");
        assert_eq!(v["room_id"], 3);
        assert_eq!(v["seq"], 7);
        assert_eq!(v["type"], "message.created");
        assert_eq!(v["at"], "1970-01-01T00:00:01.5Z");
        assert_eq!(v["data"]["body"], "hi \"x\"");
    }

    #[test]
    fn cursors_are_replayable_only_while_their_events_are_kept() {
        let pos = LogPosition {
            last_seq: 100,
            oldest_kept: Some(51),
        };
        assert!(replayable(100, pos));
        assert!(replayable(50, pos));
        assert!(!replayable(49, pos));
        assert!(!replayable(101, pos));
        assert!(!replayable(-1, pos));
        let empty = LogPosition {
            last_seq: 0,
            oldest_kept: None,
        };
        assert!(replayable(0, empty));
    }
}
