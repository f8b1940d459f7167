//! `[gateway]`: the realtime WebSocket gateway's bounds (see `gateway`).
//!
//! Only describes and checks values; connections, fan-out and resume belong to `gateway`.

use serde::{Deserialize, Serialize};

use super::{Config, Problem};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gateway {
    /// Open gateway connections at most; more are refused with 503 before the upgrade.
    pub max_connections: usize,
    /// Open gateway connections per account signed in with a session (the person's devices);
    /// one more is closed with 4029 after auth.
    pub max_connections_per_user: usize,
    /// Open gateway connections per account made with its API keys, counted apart from
    /// `max_connections_per_user` so keys cannot take the person's own slots; one more: 4029.
    pub max_api_key_connections_per_user: usize,
    /// Events queued for one connection; a client that falls this far behind is closed with
    /// 4008 and must resume.
    pub queue_capacity: usize,
    /// Largest frame (or reassembled message) a client may send, in bytes; larger: close 1009.
    pub max_frame_bytes: usize,
    /// Seconds a new connection has to send its `auth` frame; then close 4001.
    pub auth_timeout_secs: u64,
    /// Seconds between server pings.
    pub ping_interval_secs: u64,
    /// Seconds without any frame from the client before it is closed (4010).
    pub idle_timeout_secs: u64,
    /// Events kept per room for resume; a cursor older than this gets close 4009 (resync).
    pub resume_events_per_room: u64,
    /// Frames a client may send in a burst (any kind: JSON ops, WebSocket pings and pongs);
    /// the bucket refills at `client_frames_per_sec`. A client that runs it dry is closed with
    /// 1008 (policy violation).
    pub client_frames_burst: u32,
    /// Frames per second a client may keep sending (see `client_frames_burst`).
    pub client_frames_per_sec: u32,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            max_connections: 2048,
            max_connections_per_user: 16,
            max_api_key_connections_per_user: 4,
            queue_capacity: 256,
            max_frame_bytes: 64 * 1024,
            auth_timeout_secs: 10,
            ping_interval_secs: 20,
            idle_timeout_secs: 60,
            resume_events_per_room: 10_000,
            client_frames_burst: 40,
            client_frames_per_sec: 10,
        }
    }
}

pub(super) fn check(c: &Config, problems: &mut Vec<Problem>) {
    let g = &c.gateway;
    let mut need = |ok: bool, key: &str, what: &str, hint: &str| {
        if !ok {
            problems.push(Problem::key(&format!("gateway.{key}"), what, hint));
        }
    };
    need(
        (1..=1_000_000).contains(&g.max_connections),
        "max_connections",
        "must be between 1 and 1000000",
        "the default is 2048",
    );
    need(
        g.max_connections_per_user >= 1,
        "max_connections_per_user",
        "must be at least 1",
        "the default is 16",
    );
    need(
        (1..=1024).contains(&g.max_api_key_connections_per_user),
        "max_api_key_connections_per_user",
        "must be between 1 and 1024",
        "the default is 4",
    );
    need(
        (1..=100_000).contains(&g.client_frames_burst),
        "client_frames_burst",
        "must be between 1 and 100000",
        "the default is 40",
    );
    need(
        (1..=10_000).contains(&g.client_frames_per_sec),
        "client_frames_per_sec",
        "must be between 1 and 10000",
        "the default is 10",
    );
    need(
        (8..=65_536).contains(&g.queue_capacity),
        "queue_capacity",
        "must be between 8 and 65536",
        "the default is 256",
    );
    need(
        (1024..=16 * 1024 * 1024).contains(&g.max_frame_bytes),
        "max_frame_bytes",
        "must be between 1024 and 16777216",
        "the default is 65536",
    );
    need(
        (1..=300).contains(&g.auth_timeout_secs),
        "auth_timeout_secs",
        "must be between 1 and 300",
        "the default is 10",
    );
    need(
        g.ping_interval_secs >= 1 && g.ping_interval_secs < g.idle_timeout_secs,
        "ping_interval_secs",
        "must be at least 1 and below idle_timeout_secs",
        "the defaults are 20 and 60",
    );
    // The edge closes any connection that moves no byte for `limits.idle_timeout_secs`
    // (`edge::idle`), upgraded ones included: a quiet gateway connection stays open only
    // because the server pings it more often than that.
    need(
        g.ping_interval_secs < c.limits.idle_timeout_secs,
        "ping_interval_secs",
        "must be below limits.idle_timeout_secs, or quiet gateway connections are cut without a close frame",
        "the defaults are 20 and 120",
    );
    need(
        g.idle_timeout_secs <= 3600,
        "idle_timeout_secs",
        "must be at most 3600",
        "the default is 60",
    );
    need(
        (1..=10_000_000).contains(&g.resume_events_per_room),
        "resume_events_per_room",
        "must be between 1 and 10000000",
        "the default is 10000",
    );
}
