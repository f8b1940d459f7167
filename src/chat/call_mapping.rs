//! How Roost's rooms and accounts are named in LiveKit, and how a LiveKit participant looks to
//! Roost's clients: Roost room `N` is LiveKit room `roost-room-N` ([`livekit_room`] /
//! [`room_id_of`]), and a user is the participant identity `user-<id>` ([`identity`] /
//! [`user_id_of`]).
//!
//! One mapping for every reader: the call handlers (`chat::calls`), the timeline's call entries
//! (`chat::call_log`), the gateway's call frames and the webhooks' call events. Pure functions:
//! no store, no HTTP.

use serde::Serialize;

const ROOM_PREFIX: &str = "roost-room-";
const IDENTITY_PREFIX: &str = "user-";

/// The LiveKit room name of Roost room `room_id`.
pub fn livekit_room(room_id: i64) -> String {
    format!("{ROOM_PREFIX}{room_id}")
}

/// The Roost room a LiveKit room name stands for (`None` for rooms Roost did not name).
pub fn room_id_of(livekit_room: &str) -> Option<i64> {
    livekit_room.strip_prefix(ROOM_PREFIX)?.parse().ok()
}

/// The participant identity of a user.
pub fn identity(user_id: i64) -> String {
    format!("{IDENTITY_PREFIX}{user_id}")
}

/// The user a participant identity stands for (`None` for participants that are not Roost
/// accounts).
pub fn user_id_of(identity: &str) -> Option<i64> {
    identity.strip_prefix(IDENTITY_PREFIX)?.parse().ok()
}

// Someone in a room's call, as the API and the gateway show them. (Not a doc comment: it
// would become the schema's description in the API document.)
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallParticipant {
    /// `user-<id>` for Roost accounts.
    pub identity: String,
    /// Null for participants that are not Roost accounts.
    #[schema(required = true)]
    pub user_id: Option<i64>,
    pub name: String,
    /// RFC 3339 (as LiveKit reported it).
    #[schema(format = DateTime)]
    pub joined_at: String,
}

/// A participant LiveKit reported, as clients see it.
pub fn participant_view(p: &crate::livekit::calls::Participant) -> CallParticipant {
    CallParticipant {
        identity: p.identity.clone(),
        user_id: user_id_of(&p.identity),
        name: p.name.clone(),
        joined_at: crate::http::time::rfc3339(p.joined_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        assert_eq!(room_id_of(&livekit_room(42)), Some(42));
        assert_eq!(room_id_of("someone-elses-room"), None);
        assert_eq!(user_id_of(&identity(7)), Some(7));
        assert_eq!(user_id_of("bot"), None);
    }
}
