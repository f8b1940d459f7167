//! Notices: committed changes that concern an account rather than one room's log, so they
//! take no sequence number and are never replayed. Clients learn of them live over the
//! gateway, and from their next HTTP load otherwise.
//!
//! - A person's display name changed (`user.updated`): every connection that shares a room
//!   with them, and their own, hears it once, however many rooms they share.
//! - A person hid a direct message, or it came back to their list (`dm.hidden`, `dm.shown`):
//!   only that person's own connections hear it.
//!
//! A notice is rendered here, in the transaction that made the change, and handed to the
//! [`EventSink`](super::EventSink) only after COMMIT ([`super::commit_noting`]). This module
//! knows nothing about connections: the gateway's hub works out who hears it.

use std::sync::Arc;

use rusqlite::Connection;
use serde_json::json;

use super::ChatError;
use crate::auth::users::User;

/// Who a notice goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// The account's own connections only.
    Own(i64),
    /// The account's own connections and every connection subscribed to one of `rooms` (the
    /// rooms the account is in, read in the transaction of the change).
    SharingRooms { user_id: i64, rooms: Vec<i64> },
}

/// One committed change for the gateway to pass on, its frame rendered once.
#[derive(Debug, Clone)]
pub struct Notice {
    pub audience: Audience,
    pub frame: Arc<str>,
}

/// `user`'s display name changed: `{"op":"user","type":"user.updated","user_id","data":{id,
/// username, display_name}}` to everyone who shares a room with them, and to them.
pub fn renamed(conn: &Connection, user: &User) -> Result<Notice, ChatError> {
    let rooms = conn
        .prepare_cached("SELECT room_id FROM room_members WHERE user_id = ?1")?
        .query_map([user.id], |r| r.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    let frame = json!({
        "op": "user",
        "type": "user.updated",
        "user_id": user.id,
        "data": {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
        },
    });
    Ok(Notice {
        audience: Audience::SharingRooms {
            user_id: user.id,
            rooms,
        },
        frame: Arc::from(frame.to_string()),
    })
}

/// `user_id` hid direct message `room_id` up to event `seq`: `{"op":"dm","type":"dm.hidden",
/// "room_id","data":{"seq"}}` to their own connections.
pub fn dm_hidden(user_id: i64, room_id: i64, seq: i64) -> Notice {
    let frame =
        json!({ "op": "dm", "type": "dm.hidden", "room_id": room_id, "data": { "seq": seq } });
    Notice {
        audience: Audience::Own(user_id),
        frame: Arc::from(frame.to_string()),
    }
}

/// `user_id` opened a direct message they had hidden: `{"op":"dm","type":"dm.shown",
/// "room_id"}` to their own connections.
pub fn dm_shown(user_id: i64, room_id: i64) -> Notice {
    let frame = json!({ "op": "dm", "type": "dm.shown", "room_id": room_id });
    Notice {
        audience: Audience::Own(user_id),
        frame: Arc::from(frame.to_string()),
    }
}
