//! The gateway's wire protocol: what clients send, the close codes, and why connections end.
//!
//! Client → server (text frames, JSON):
//! - `{"op":"auth","token":"<access token or API key>"}` — first frame, within
//!   `auth_timeout_secs`; with `"cursors":{"<room_id>":<seq>,...}` it resumes those rooms.
//!   `{"op":"resume","token":...,"cursors":{...}}` is the same.
//! - `{"op":"ping"}` → `{"op":"pong"}`; `{"op":"typing","room_id":N}` (not from an API key
//!   without the `write` scope: `{"op":"error","code":"insufficient_scope"}`).
//!
//! Every frame a client sends (WebSocket pings included) takes a token from its connection's
//! bucket (`client_frames_burst`, `client_frames_per_sec`); an empty bucket closes with 1008.
//!
//! Server → client: `ready`, `event` (room events, with `room_id` and `seq`), `presence`,
//! `typing`, `call`, `directory` (public rooms the account is not in, `chat::directory`),
//! `pong`, `error`. Close codes are [`close`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// Close codes (4000-4999 are the application's).
pub mod close {
    /// The server is shutting down; reconnect (with resume) later.
    pub const GOING_AWAY: u16 = 1001;
    /// A binary frame, or a text frame that is not a known JSON op.
    pub const UNSUPPORTED: u16 = 1003;
    /// The client sent frames faster than `client_frames_burst` / `client_frames_per_sec`
    /// allow (policy violation).
    pub const POLICY: u16 = 1008;
    /// A frame larger than `max_frame_bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// No (valid) auth frame in time, or a bad or expired token.
    pub const UNAUTHENTICATED: u16 = 4001;
    /// What the connection signed in with no longer holds: the session was signed out or
    /// ended, the password changed, the account disabled, or the API key revoked. Sent at
    /// once for changes made through the daemon, within a second for the command line's.
    pub const REVOKED: u16 = 4003;
    /// The connection fell `queue_capacity` events behind: resume from the last cursor.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// A resume cursor is older than the events kept: reload history over HTTP, then
    /// connect without cursors.
    pub const RESYNC_REQUIRED: u16 = 4009;
    /// Nothing heard from the client for `idle_timeout_secs`.
    pub const IDLE: u16 = 4010;
    /// Too many connections for this account.
    pub const TOO_MANY_CONNECTIONS: u16 = 4029;
}

/// The first frame.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Hello {
    Auth {
        token: String,
        #[serde(default)]
        cursors: BTreeMap<String, i64>,
    },
    Resume {
        token: String,
        #[serde(default)]
        cursors: BTreeMap<String, i64>,
    },
}

impl Hello {
    pub fn token(&self) -> &str {
        match self {
            Hello::Auth { token, .. } | Hello::Resume { token, .. } => token,
        }
    }
    /// Cursors by room id; keys that are not room ids are ignored.
    pub fn cursors(&self) -> BTreeMap<i64, i64> {
        let (Hello::Auth { cursors, .. } | Hello::Resume { cursors, .. }) = self;
        cursors
            .iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, *v)))
            .collect()
    }
}

/// Frames after `ready`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum ClientFrame {
    Ping,
    Typing { room_id: i64 },
}

/// Why a connection ended: the label of `roost_ws_disconnects_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    ClientClosed,
    AuthTimeout,
    AuthFailed,
    Revoked,
    TooManyConnections,
    SlowConsumer,
    ResyncRequired,
    HeartbeatTimeout,
    ProtocolError,
    TooManyFrames,
    FrameTooBig,
    NetworkError,
    Shutdown,
}

impl Disconnect {
    pub fn label(self) -> &'static str {
        match self {
            Disconnect::ClientClosed => "client_closed",
            Disconnect::AuthTimeout => "auth_timeout",
            Disconnect::AuthFailed => "auth_failed",
            Disconnect::Revoked => "revoked",
            Disconnect::TooManyConnections => "too_many_connections",
            Disconnect::SlowConsumer => "slow_consumer",
            Disconnect::ResyncRequired => "resync_required",
            Disconnect::HeartbeatTimeout => "heartbeat_timeout",
            Disconnect::ProtocolError => "protocol_error",
            Disconnect::TooManyFrames => "too_many_frames",
            Disconnect::FrameTooBig => "frame_too_big",
            Disconnect::NetworkError => "network_error",
            Disconnect::Shutdown => "shutdown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_frames_parse() {
        let h: Hello = serde_json::from_str(r#"{"op":"auth","token":"t"}"#).unwrap();
        assert_eq!(h.token(), "t");
        assert!(h.cursors().is_empty());
        let h: Hello =
            serde_json::from_str(r#"{"op":"resume","token":"t","cursors":{"3":10,"x":1}}"#)
                .unwrap();
        assert_eq!(h.cursors().into_iter().collect::<Vec<_>>(), vec![(3, 10)]);
        assert!(serde_json::from_str::<Hello>(r#"{"op":"ping"}"#).is_err());
        let f: ClientFrame = serde_json::from_str(r#"{"op":"typing","room_id":2}"#).unwrap();
        assert!(matches!(f, ClientFrame::Typing { room_id: 2 }));
    }
}
