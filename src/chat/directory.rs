//! The directory of public rooms as the gateway tells it to people who are not in them: the
//! frames that make everyone's room list follow public rooms live.
//!
//! Room events reach a room's members only. Someone who may join public rooms (a member-role
//! account or an admin; never a guest) also hears, on every connection, when a public room
//! appears or changes (`room.listed`, with the room) and when a public room is made private
//! (`room.unlisted`, with its id only). A private room is never in a `room.listed` frame, and a
//! room that was private all along never in an `room.unlisted` one: its name, id and activity
//! stay with its members.
//!
//! The frame rides on the room event of the same change ([`super::RoomEvent::directory`]), so
//! the gateway sends it after that change committed, in the room's order, and holds it like any
//! event while credentials are re-checked. Frames are not replayed on resume: a client reloads
//! its room list over HTTP on every `ready`. This module only renders; it never sends.

use std::sync::Arc;

use serde::Serialize;

use super::rooms::RoomView;

#[derive(Serialize)]
struct Frame<'a> {
    op: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    room_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a RoomView>,
}

fn render(frame: &Frame<'_>) -> Arc<str> {
    // A struct of strings, numbers and booleans always serializes.
    Arc::from(serde_json::to_string(frame).expect("a directory frame serializes"))
}

/// `room.listed` for a public room as someone outside it sees it (no role, no read position),
/// or `None` for a private room or a direct message, which are never announced.
pub fn listed(room: &RoomView, at_ms: i64) -> Option<Arc<str>> {
    if room.private || room.kind != super::dms::RoomKind::Room {
        return None;
    }
    let outside = RoomView {
        my_role: None,
        read_seq: None,
        unread: None,
        missed_call_at: None,
        dm_with: None,
        hidden: None,
        last_activity: Some(crate::http::time::rfc3339_ms(at_ms)),
        ..room.clone()
    };
    Some(render(&Frame {
        op: "directory",
        kind: "room.listed",
        room_id: room.id,
        data: Some(&outside),
    }))
}

/// The frame for a change to a room that was public (`was_public`) or not before it: the room
/// as it is now if it is public, `room.unlisted` if it was public and no longer is, and nothing
/// for a room that stays private.
pub fn changed(room: &RoomView, was_public: bool, at_ms: i64) -> Option<Arc<str>> {
    if let Some(frame) = listed(room, at_ms) {
        return Some(frame);
    }
    was_public.then(|| {
        render(&Frame {
            op: "directory",
            kind: "room.unlisted",
            room_id: room.id,
            data: None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::dms::RoomKind;
    use crate::chat::rooms::RoomRole;

    fn room(private: bool) -> RoomView {
        RoomView {
            id: 7,
            kind: RoomKind::Room,
            name: "Garden".into(),
            topic: String::new(),
            private,
            guests_may_publish: false,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            last_seq: 3,
            my_role: Some(RoomRole::Owner),
            last_activity: None,
            read_seq: Some(3),
            unread: Some(0),
            missed_call_at: None,
            dm_with: None,
            hidden: None,
        }
    }

    #[test]
    fn public_rooms_are_listed_without_the_changers_own_standing() {
        let frame = listed(&room(false), 1_000).unwrap();
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["op"], "directory");
        assert_eq!(v["type"], "room.listed");
        assert_eq!(v["room_id"], 7);
        assert_eq!(v["data"]["name"], "Garden");
        assert_eq!(v["data"]["last_activity"], "1970-01-01T00:00:01Z");
        for private_field in ["my_role", "read_seq", "unread"] {
            assert!(v["data"].get(private_field).is_none(), "{v}");
        }
    }

    #[test]
    fn private_rooms_are_never_announced() {
        assert!(listed(&room(true), 0).is_none());
        assert!(
            changed(&room(true), false, 0).is_none(),
            "private all along"
        );
        let dm = RoomView {
            kind: RoomKind::Dm,
            ..room(false)
        };
        assert!(listed(&dm, 0).is_none());
        let gone = changed(&room(true), true, 0).unwrap();
        assert_eq!(
            &*gone,
            r#"{"op":"directory","type":"room.unlisted","room_id":7}"#
        );
    }
}
