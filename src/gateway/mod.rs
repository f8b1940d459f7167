//! The realtime gateway: `GET /api/v1/gateway` upgrades to a WebSocket that carries room
//! events, presence, typing, call events and the directory of public rooms to clients (protocol in [`protocol`] and
//! docs/gateway-protocol.md).
//!
//! - [`session`]: one task per connection: authentication (first frame), resume from the
//!   `events` table, the send loop with dedup by sequence number, heartbeats, limits, close
//!   codes, shutdown.
//! - [`hub`]: the in-memory fan-out, in-order delivery, slow-consumer policy, presence, typing.
//! - [`queue`]: each connection's bounded outgoing queue (no buffer while empty).
//!
//! [`Gateway`] is the shared handle, a part of the application state its handler takes. Bounds: `[gateway] max_connections` (503
//! before the upgrade), `max_connections_per_user` and, apart, `max_api_key_connections_per_user`
//! (close 4029), `queue_capacity` per connection (close 4008), `max_frame_bytes` per client
//! frame (close 1009), `client_frames_burst`/`client_frames_per_sec` per connection (close
//! 1008). A connection whose sign-in is revoked is cut off and closed with 4003 (see `hub`,
//! [`Gateway::run_revalidation`]). Every session
//! selects on the daemon's shutdown token and closes with 1001; the daemon waits for them
//! within its grace period ([`Gateway::wait_sessions`]). This module must not write to the
//! database (it only reads events and memberships) and never publishes an uncommitted event.

pub mod hub;
pub mod protocol;
pub mod queue;
pub mod session;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::documented;
use axum::extract::ws::Utf8Bytes;
use axum::extract::FromRef;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::AuthState;
use crate::chat::RoomEvent;
use crate::config::Config;
use crate::http::Routes;
use crate::livekit::calls::CallEvent;
use crate::livekit::LiveKit;
use crate::metrics::Metrics;
use crate::store::Store;

pub use session::upgrade;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DisconnectLabels {
    pub reason: &'static str,
}

/// The gateway's metrics, registered once at startup.
#[derive(Clone, Default)]
pub struct GatewayMetrics {
    /// `roost_ws_connections`: open gateway WebSockets.
    pub connections: Gauge,
    /// `roost_ws_disconnects_total{reason}` (reasons: [`protocol::Disconnect::label`]).
    pub disconnects: Family<DisconnectLabels, Counter>,
}

impl GatewayMetrics {
    fn register(&self, metrics: &Metrics) {
        metrics.register(
            "ws_connections",
            "Open realtime gateway WebSocket connections",
            self.connections.clone(),
        );
        metrics.register(
            "ws_disconnects",
            "Gateway WebSocket connections that ended, by reason",
            self.disconnects.clone(),
        );
    }
}

/// The shared gateway handle.
pub struct Gateway {
    pub hub: Arc<hub::Hub>,
    pub metrics: GatewayMetrics,
    pub settings: crate::config::gateway::Gateway,
    sessions: TaskTracker,
    shutdown: CancellationToken,
    open: AtomicUsize,
}

/// A place under `[gateway] max_connections`, released on drop.
pub struct Admission {
    gateway: Arc<Gateway>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.gateway.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gateway {
    /// Reads every room's newest sequence number (the hub's starting point) and registers
    /// the metrics.
    pub async fn start(
        config: &Config,
        store: Store,
        metrics: &Metrics,
        shutdown: CancellationToken,
    ) -> Result<Arc<Gateway>, crate::chat::ChatError> {
        let positions = store.read(crate::chat::events::all_positions).await?;
        let m = GatewayMetrics::default();
        m.register(metrics);
        Ok(Arc::new(Gateway {
            hub: Arc::new(hub::Hub::new(
                store,
                config.gateway.queue_capacity,
                positions,
            )),
            metrics: m,
            settings: config.gateway.clone(),
            sessions: TaskTracker::new(),
            shutdown,
            open: AtomicUsize::new(0),
        }))
    }

    /// Takes a place for a new connection, or `None` at `max_connections`.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let max = self.settings.max_connections;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Admission {
                gateway: self.clone(),
            })
    }

    /// Publishes committed events (called by `chat::commit` after COMMIT).
    pub fn publish(&self, events: Vec<RoomEvent>) {
        self.hub.publish(events);
    }

    /// Passes on committed notices (a display name, a DM hidden or shown; `chat::notices`).
    pub fn notify(&self, notices: Vec<crate::chat::Notice>) {
        self.hub.notify(notices);
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Waits until every session has ended (they close with 1001 on the shutdown signal).
    pub async fn wait_sessions(&self) {
        self.sessions.close();
        self.sessions.wait().await;
    }

    pub(crate) fn track<F>(&self, session: F) -> tokio_util::task::task_tracker::TrackedFuture<F>
    where
        F: std::future::Future<Output = ()>,
    {
        self.sessions.track_future(session)
    }

    /// Background task: fills event gaps a dead publisher left (see `hub`).
    pub async fn run_gap_repair(self: Arc<Self>) {
        let mut tick = tokio::time::interval(hub::GAP_WAIT / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.shutdown.cancelled() => return,
            }
            self.hub.repair_gaps(hub::GAP_WAIT).await;
        }
    }

    /// Background task: re-checks every connection's credential when the hub holds events for
    /// it (the store's generation moved: a change to accounts, sessions or API keys), and every
    /// [`hub::REVALIDATE_EVERY`] for changes made by other processes. Time comes from `auth`'s
    /// clock, as it does for requests.
    pub async fn run_revalidation(self: Arc<Self>, auth: Arc<AuthState>) {
        let mut tick = tokio::time::interval(hub::REVALIDATE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.hub.revalidation_wanted() => {}
                _ = self.shutdown.cancelled() => return,
            }
            if let Err(e) = self.hub.revalidate(auth.now_secs()).await {
                tracing::warn!(error = %e, "gateway: re-checking credentials");
            }
        }
    }

    /// Background task: turns LiveKit's participant changes into `call.*` frames for the
    /// members of the room (LiveKit room `roost-room-N` is Roost room N, see
    /// `chat::call_mapping`).
    pub async fn run_call_events(self: Arc<Self>, livekit: Arc<LiveKit>) {
        let mut rx = livekit.calls.subscribe();
        loop {
            let event = tokio::select! {
                e = rx.recv() => e,
                _ = self.shutdown.cancelled() => return,
            };
            match event {
                Ok(e) => {
                    if let Some((room_id, frame)) = call_frame(&e) {
                        self.hub.broadcast_room(room_id, frame);
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "gateway: fell behind LiveKit call events");
                }
                Err(RecvError::Closed) => return,
            }
        }
    }
}

/// The frame for a call event, and the Roost room it belongs to.
pub fn call_frame(event: &CallEvent) -> Option<(i64, Utf8Bytes)> {
    use crate::chat::call_mapping::{participant_view, room_id_of, user_id_of};
    let (room, kind, data) = match event {
        CallEvent::Joined { room, participant } => (
            room,
            "call.participant_joined",
            serde_json::to_value(participant_view(participant)).ok()?,
        ),
        CallEvent::Left { room, identity, .. } => (
            room,
            "call.participant_left",
            serde_json::json!({ "identity": identity, "user_id": user_id_of(identity) }),
        ),
        CallEvent::Ended { room } => (room, "call.ended", serde_json::json!({})),
        // The chat's call entries (`chat::call_log`) carry these to clients, as messages.
        CallEvent::Started { .. } | CallEvent::Emptied { .. } => return None,
    };
    let room_id = room_id_of(room)?;
    let frame = serde_json::json!({ "op": "call", "type": kind, "room_id": room_id, "data": data });
    Some((room_id, Utf8Bytes::from(frame.to_string())))
}

/// Tables whose committed changes move the store's generation: what the session cache needs
/// (`auth::session_cache::WATCHED_TABLES`), and `api_keys`, so revoking a key reaches gateway
/// connections at once too (see `hub`). A key's `last_used_at` write (at most one a minute per
/// key) also moves it; that costs one re-check, not correctness.
pub const WATCHED_TABLES: &[&str] = &["users", "sessions", "api_keys"];

/// How long the daemon waits for sessions to close after the shutdown signal, at most.
pub const SESSION_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The realtime gateway's WebSocket upgrade.
pub fn routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Gateway>: FromRef<S>,
    Store: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
{
    Routes::new().api(documented!(session::upgrade))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::livekit::calls::Participant;

    #[test]
    fn the_store_watches_what_the_session_cache_needs() {
        for table in crate::auth::session_cache::WATCHED_TABLES {
            assert!(WATCHED_TABLES.contains(table), "{table}");
        }
    }

    #[test]
    fn call_events_map_to_roost_rooms() {
        let joined = CallEvent::Joined {
            room: "roost-room-4".into(),
            participant: Participant {
                identity: "user-9".into(),
                name: "Nine".into(),
                sid: "PA_x".into(),
                joined_at: 0,
            },
        };
        let (room, frame) = call_frame(&joined).unwrap();
        assert_eq!(room, 4);
        let v: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(v["type"], "call.participant_joined");
        assert_eq!(v["data"]["user_id"], 9);
        assert!(call_frame(&CallEvent::Ended {
            room: "not-ours".into()
        })
        .is_none());
    }
}
