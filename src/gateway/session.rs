//! One gateway connection, from upgrade to close.
//!
//! 1. [`upgrade`]: a place under `max_connections` (else 503 `gateway_full`), frame and buffer
//!    limits, then the session runs as a task the gateway tracks.
//! 2. The first text frame must authenticate within `auth_timeout_secs` (else close 4001);
//!    the credential is checked by `auth` exactly as a bearer header would be.
//! 3. The connection registers with the hub (at most `max_connections_per_user` for sessions
//!    and, apart, `max_api_key_connections_per_user` for API keys, else 4029),
//!    is subscribed to the user's rooms, and only then reads where each room's log stands and
//!    the events after any resume cursors. Live events that race with this read are
//!    deduplicated by sequence number, so the client gets every missed event exactly once,
//!    in order, then live ones. A cursor older than the kept events closes with 4009.
//! 4. The loop: queued events and frames out; client frames in (ping, typing), each taking a
//!    token from the connection's [`FrameBudget`] (empty: close 1008); a server ping every
//!    `ping_interval_secs`; close 4010 after `idle_timeout_secs` of silence; 4008 when the
//!    hub kicks a slow consumer, 4003 when it finds the sign-in revoked (see `hub`); 1001 on
//!    shutdown. Every send races the kick and shutdown signals, so a client that stopped
//!    reading cannot hold a session (or the daemon's shutdown) hostage.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::hub::{Caller, Kick, Kicked, Outbound, Slots};
use super::protocol::{close, ClientFrame, Disconnect, Hello};
use super::{Admission, DisconnectLabels, Gateway};
use crate::auth::AuthState;
use crate::chat::{events, rooms, ChatError, RoomEvent};
use crate::http::ApiError;
use crate::limits::bucket::{self, Rate};
use crate::store::Store;

/// How long a close frame may take to leave, and the client's reply to arrive.
const CLOSE_FLUSH: Duration = Duration::from_secs(2);
/// A slow consumer's close frame waits behind everything already buffered for it: it gets
/// longer to drain (the connection no longer receives anything; shutdown cuts this short).
const SLOW_CLOSE_FLUSH: Duration = Duration::from_secs(15);
/// Events replayed on one resume at most; more is a resync (4009).
const MAX_REPLAY: usize = 50_000;
/// The WebSocket read buffer per connection, which every idle connection holds. Clients send
/// small frames (ping, typing, the auth frame); a larger one reserves its own length, so this
/// only sets how much is read at a time. Idle memory matters on a Pi with hundreds of
/// connections (scripts/bench/chat.sh measures it).
const READ_BUFFER: usize = 512;

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// `GET /api/v1/gateway`.
#[utoipa::path(
    get,
    path = "/api/v1/gateway",
    operation_id = "openGateway",
    summary = "Open the realtime WebSocket gateway",
    tag = "gateway",
    description = "Upgrades to a WebSocket (HTTP/1.1 `Upgrade: websocket`). Authenticate with \
        the first frame, `{\"op\":\"auth\",\"token\":...}`, within 10 s. The server sends \
        `ready`, then room events (`event`) of the rooms you are in, `presence`, `typing`, \
        `call` and `directory` frames (public rooms you are not in: `room.listed`, \
        `room.unlisted`; never a private room). The protocol is in docs/gateway-protocol.md.",
    security((), ("bearer" = [])),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade request (missing or wrong \
         `Connection`, `Upgrade`, `Sec-WebSocket-Key` or `Sec-WebSocket-Version`)",
         body = crate::http::ErrorBody),
        (status = 405, description = "A GET over HTTP/2, which cannot upgrade: connect with \
         HTTP/1.1", body = crate::http::ErrorBody),
        (status = 426, description = "The connection cannot be upgraded",
         body = crate::http::ErrorBody),
        (status = 503, description = "Too many realtime connections (`gateway_full`)",
         body = crate::http::ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn upgrade(
    State(gateway): State<Arc<Gateway>>,
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(admission) = gateway.admit() else {
        return ApiError::unavailable(
            "gateway_full",
            "the server has too many realtime connections; retry shortly",
        )
        .with_header(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("5"),
        )
        .into_response();
    };
    let max = gateway.settings.max_frame_bytes;
    ws.max_frame_size(max)
        .max_message_size(max)
        .read_buffer_size(READ_BUFFER)
        // Each event is one frame written at once; nothing is gained by batching writes.
        .write_buffer_size(0)
        .on_upgrade(move |socket| {
            let session = run(gateway.clone(), store, auth, socket, admission);
            gateway.track(session)
        })
}

async fn run(
    gateway: Arc<Gateway>,
    store: Store,
    auth: Arc<AuthState>,
    socket: WebSocket,
    admission: Admission,
) {
    let metrics = gateway.metrics.clone();
    metrics.connections.inc();
    let (tx, rx) = socket.split();
    let mut conn = Connection {
        tx,
        rx,
        shutdown: gateway.shutdown_token().clone(),
        metrics: metrics.clone(),
        counted: false,
        budget: FrameBudget::new(&gateway.settings),
    };
    let why = conn.serve(&gateway, &store, &auth).await;
    conn.count(why);
    metrics.connections.dec();
    tracing::debug!(reason = why.label(), "gateway connection ended");
    drop(admission);
}

enum Incoming {
    Text(Utf8Bytes),
    Binary,
    Closed,
    TooBig,
    Failed,
    /// The frame budget ran dry.
    TooFast,
}

/// A connection's token bucket for the frames its client sends, of any kind (JSON ops,
/// WebSocket pings and pongs): `client_frames_burst` at once, refilled at
/// `client_frames_per_sec`. Without it a client could make the server parse, answer and
/// fan out as fast as it can write; a client that runs it dry is closed with 1008.
struct FrameBudget {
    /// The bucket's theoretical arrival time (`limits::bucket`), in nanoseconds since `since`.
    tat: u64,
    since: Instant,
    rate: Rate,
}

impl FrameBudget {
    fn new(settings: &crate::config::gateway::Gateway) -> FrameBudget {
        FrameBudget {
            tat: 0,
            since: Instant::now(),
            rate: Rate {
                burst: settings.client_frames_burst.max(1),
                interval_nanos: 1_000_000_000 / u64::from(settings.client_frames_per_sec.max(1)),
            },
        }
    }

    /// Takes a token for one received frame; false when the client sends too fast.
    fn take(&mut self) -> bool {
        let now = u64::try_from(self.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        bucket::acquire(&mut self.tat, now, self.rate).allowed
    }
}

/// How a kicked connection ends.
fn kicked(kick: &Kick) -> Disconnect {
    match kick.reason.get() {
        Some(Kicked::Revoked) => Disconnect::Revoked,
        Some(Kicked::SlowConsumer) | None => Disconnect::SlowConsumer,
    }
}

fn classify(frame: Option<Result<Message, axum::Error>>) -> Option<Incoming> {
    Some(match frame {
        None | Some(Ok(Message::Close(_))) => Incoming::Closed,
        Some(Ok(Message::Text(t))) => Incoming::Text(t),
        Some(Ok(Message::Binary(_))) => Incoming::Binary,
        // Pings are answered by the WebSocket layer; both only prove the client is alive.
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => return None,
        // tungstenite's capacity error ("Space limit exceeded: Message too long") is not a
        // type axum exposes; its text is stable across versions.
        Some(Err(e)) if e.to_string().contains("too long") => Incoming::TooBig,
        Some(Err(_)) => Incoming::Failed,
    })
}

/// What the loop keeps of a connection's start.
struct Live {
    registration: super::hub::Registration,
    queue: super::hub::Outbox,
    kick: std::sync::Arc<Kick>,
    principal: crate::auth::Principal,
    delivered: HashMap<i64, i64>,
}

struct Connection {
    tx: Sink,
    rx: Stream,
    shutdown: CancellationToken,
    metrics: super::GatewayMetrics,
    /// The disconnect was counted (when the server decided to close, before the close frame
    /// drained).
    counted: bool,
    budget: FrameBudget,
}

impl Connection {
    /// Counts the disconnect in `roost_ws_disconnects_total{reason}`, once.
    fn count(&mut self, why: Disconnect) {
        if !self.counted {
            self.counted = true;
            self.metrics
                .disconnects
                .get_or_create(&DisconnectLabels {
                    reason: why.label(),
                })
                .inc();
        }
    }

    /// Sends `msg` unless `kick` or shutdown fires first.
    async fn send(&mut self, msg: Message, kick: Option<&Kick>) -> Result<(), Disconnect> {
        let kicked_signal = async {
            match kick {
                Some(k) => k.token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = self.tx.send(msg) => r.map_err(|_| Disconnect::NetworkError),
            _ = kicked_signal => Err(kick.map_or(Disconnect::SlowConsumer, kicked)),
            _ = self.shutdown.cancelled() => Err(Disconnect::Shutdown),
        }
    }

    async fn send_text(&mut self, text: String, kick: Option<&Kick>) -> Result<(), Disconnect> {
        self.send(Message::Text(Utf8Bytes::from(text)), kick).await
    }

    /// Sends a close frame (bounded wait), waits briefly for the client's reply, returns `why`.
    async fn close(&mut self, code: u16, reason: &str, why: Disconnect) -> Disconnect {
        self.count(why);
        let flush = if why == Disconnect::SlowConsumer {
            SLOW_CLOSE_FLUSH
        } else {
            CLOSE_FLUSH
        };
        // A close reason is at most 123 bytes.
        let mut reason = reason.to_owned();
        while reason.len() > 123 {
            reason.pop();
        }
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        }));
        let shutdown = self.shutdown.clone();
        let sent = tokio::select! {
            r = tokio::time::timeout(flush, self.tx.send(frame)) => r.is_ok_and(|r| r.is_ok()),
            // Shutting down: a slow consumer does not get to hold up the drain.
            _ = shutdown.cancelled(), if why != Disconnect::Shutdown => false,
        };
        if sent {
            let rx = &mut self.rx;
            let _ = tokio::time::timeout(CLOSE_FLUSH, async {
                while let Some(Ok(m)) = rx.next().await {
                    if matches!(m, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        why
    }

    /// Closes for the reasons a send can fail with.
    async fn close_for(&mut self, why: Disconnect) -> Disconnect {
        match why {
            Disconnect::SlowConsumer => {
                self.close(
                    close::SLOW_CONSUMER,
                    "too far behind: reconnect and resume from your last cursors",
                    why,
                )
                .await
            }
            Disconnect::Revoked => {
                self.close(
                    close::REVOKED,
                    "signed out: the session, password, account or API key changed; sign in again",
                    why,
                )
                .await
            }
            Disconnect::Shutdown => {
                self.close(close::GOING_AWAY, "server shutting down", why)
                    .await
            }
            other => other,
        }
    }

    async fn serve(
        &mut self,
        gateway: &Arc<Gateway>,
        store: &Store,
        auth: &AuthState,
    ) -> Disconnect {
        match self.open(gateway, store, auth).await {
            Ok(live) => self.live(gateway, live).await,
            Err(why) => why,
        }
    }

    /// Steps 1 and 2: authentication, registration, subscription, `ready` and the replay.
    /// Everything it needs only for this (the auth frame, the token, the memberships, the
    /// `ready` document) is dropped when it returns, so an idle connection does not keep it.
    async fn open(
        &mut self,
        gateway: &Arc<Gateway>,
        store: &Store,
        auth: &AuthState,
    ) -> Result<Live, Disconnect> {
        let s = &gateway.settings;

        // 1. The auth frame.
        let shutdown = self.shutdown.clone();
        let first = tokio::select! {
            r = tokio::time::timeout(Duration::from_secs(s.auth_timeout_secs), self.first_frame()) => Some(r),
            _ = shutdown.cancelled() => None,
        };
        let Some(first) = first else {
            return Err(self.close_for(Disconnect::Shutdown).await);
        };
        let text = match first {
            Err(_) => {
                return Err(self
                    .close(
                        close::UNAUTHENTICATED,
                        "authenticate first: {\"op\":\"auth\",\"token\":...}",
                        Disconnect::AuthTimeout,
                    )
                    .await)
            }
            Ok(Incoming::Text(t)) => t,
            Ok(Incoming::Closed) => return Err(Disconnect::ClientClosed),
            Ok(Incoming::Failed) => return Err(Disconnect::NetworkError),
            Ok(Incoming::TooBig) => {
                return Err(self
                    .close(close::TOO_BIG, "frame too large", Disconnect::FrameTooBig)
                    .await)
            }
            Ok(Incoming::TooFast) => return Err(self.close_too_fast().await),
            Ok(Incoming::Binary) => {
                return Err(self
                    .close(
                        close::UNAUTHENTICATED,
                        "the first frame must be a JSON auth frame",
                        Disconnect::AuthFailed,
                    )
                    .await)
            }
        };
        let Ok(hello) = serde_json::from_str::<Hello>(&text) else {
            return Err(self
                .close(
                    close::UNAUTHENTICATED,
                    "the first frame must be {\"op\":\"auth\",\"token\":...}",
                    Disconnect::AuthFailed,
                )
                .await);
        };
        // Read before the credential is checked: if it moved by the time this connection is
        // registered, a revocation may have been missed by the hub's re-check (see below).
        let checked_at = store.generation();
        let principal = match crate::auth::resolve_credential(auth, store, hello.token()).await {
            Ok(p) => p,
            Err(_) => {
                return Err(self
                    .close(
                        close::UNAUTHENTICATED,
                        "invalid or expired token",
                        Disconnect::AuthFailed,
                    )
                    .await)
            }
        };

        // 2. Register, subscribe, then read positions and what to replay.
        let caller = Caller::of(&principal);
        let slots = Slots {
            sessions: s.max_connections_per_user,
            api_keys: s.max_api_key_connections_per_user,
        };
        let Ok((registration, queue, kick)) = gateway.hub.register(caller, slots) else {
            let reason = match principal.credential {
                crate::auth::Credential::ApiKey(_) => {
                    "too many connections with this account's API keys"
                }
                crate::auth::Credential::Session(_) => "too many connections for this account",
            };
            return Err(self
                .close(
                    close::TOO_MANY_CONNECTIONS,
                    reason,
                    Disconnect::TooManyConnections,
                )
                .await);
        };
        // The rooms and where their logs stood, then the subscription: the hub skips a room
        // this user left after that read (see `Hub::subscribe`), so a leave racing with the
        // connect cannot leave a stale subscription behind.
        let user_id = principal.user_id;
        let read = store
            .read(move |conn| rooms::memberships(conn, user_id))
            .await;
        let memberships = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "gateway: reading memberships");
                return Err(self
                    .close(1011, "internal error", Disconnect::NetworkError)
                    .await);
            }
        };
        gateway.hub.subscribe(registration.conn_id, &memberships);
        // A revocation committed between the credential check and the registration, whose
        // re-check did not see this connection yet: check again before anything is sent.
        if store.generation() != checked_at {
            match crate::auth::still_valid(auth, store, &principal).await {
                Ok(true) => {}
                Ok(false) => return Err(self.close_for(Disconnect::Revoked).await),
                Err(e) => {
                    tracing::warn!(error = %e, "gateway: checking a credential again");
                    return Err(self
                        .close(1011, "internal error", Disconnect::NetworkError)
                        .await);
                }
            }
        }
        let cursors = hello.cursors();
        let keep = usize::try_from(s.resume_events_per_room).unwrap_or(usize::MAX);
        let start = store
            .read(move |conn| start_state(conn, user_id, &cursors, keep))
            .await;
        let start = match start {
            Ok(st) => st,
            Err(e) => {
                tracing::warn!(error = %e, "gateway: reading room positions");
                return Err(self
                    .close(1011, "internal error", Disconnect::NetworkError)
                    .await);
            }
        };
        if !start.resync.is_empty() {
            let list: Vec<String> = start.resync.iter().map(i64::to_string).collect();
            return Err(self
                .close(
                    close::RESYNC_REQUIRED,
                    &format!(
                        "resync required, events after your cursor are gone: reload over HTTP, reconnect without cursors for rooms {}",
                        list.join(",")
                    ),
                    Disconnect::ResyncRequired,
                )
                .await);
        }
        let delivered: HashMap<i64, i64> = start.positions.iter().copied().collect();
        let ready = json!({
            "op": "ready",
            "user_id": principal.user_id,
            "username": principal.username,
            "rooms": start.positions.iter()
                .map(|(room_id, seq)| json!({ "room_id": room_id, "last_seq": seq }))
                .collect::<Vec<_>>(),
            "resumed": start.resumed,
            "online": gateway.hub.online_in(&start.positions.iter().map(|(r, _)| *r).collect::<Vec<_>>()),
            "heartbeat_interval_secs": s.ping_interval_secs,
        });
        if let Err(why) = self.send_text(ready.to_string(), Some(&kick)).await {
            return Err(self.close_for(why).await);
        }
        for event in start.replay {
            let text = Utf8Bytes::from(event.frame.to_string());
            if let Err(why) = self.send(Message::Text(text), Some(&kick)).await {
                return Err(self.close_for(why).await);
            }
        }
        Ok(Live {
            registration,
            queue,
            kick,
            principal,
            delivered,
        })
    }

    /// Step 3: the loop, until the connection ends.
    async fn live(&mut self, gateway: &Gateway, live: Live) -> Disconnect {
        let Live {
            registration,
            queue,
            kick,
            principal,
            mut delivered,
        } = live;
        let s = &gateway.settings;
        let ping_every = Duration::from_secs(s.ping_interval_secs);
        let idle_after = Duration::from_secs(s.idle_timeout_secs);
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        loop {
            let step: Result<(), Disconnect> = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => Err(Disconnect::Shutdown),
                _ = kick.token.cancelled() => Err(kicked(&kick)),
                item = queue.pop() => match item {
                    Outbound::Event { room_id, seq, text } => {
                        if delivered.get(&room_id).is_some_and(|d| seq <= *d) {
                            Ok(()) // already sent (replayed, or older than `ready`)
                        } else {
                            delivered.insert(room_id, seq);
                            self.send(Message::Text(text), Some(&kick)).await
                        }
                    }
                    Outbound::Frame(text) => self.send(Message::Text(text), Some(&kick)).await,
                },
                frame = self.rx.next() => {
                    last_heard = Instant::now();
                    if !self.budget.take() {
                        return self.close_too_fast().await;
                    }
                    match classify(frame) {
                        None => Ok(()),
                        Some(Incoming::Closed) => return Disconnect::ClientClosed,
                        Some(Incoming::Failed) => return Disconnect::NetworkError,
                        Some(Incoming::TooBig) => {
                            return self.close(close::TOO_BIG, "frame too large", Disconnect::FrameTooBig).await
                        }
                        Some(Incoming::TooFast) => return self.close_too_fast().await,
                        Some(Incoming::Binary) => {
                            return self.close(close::UNSUPPORTED, "binary frames are not supported", Disconnect::ProtocolError).await
                        }
                        Some(Incoming::Text(t)) => match serde_json::from_str::<ClientFrame>(&t) {
                            Ok(ClientFrame::Ping) => self.send_text(r#"{"op":"pong"}"#.to_owned(), Some(&kick)).await,
                            Ok(ClientFrame::Typing { room_id }) if principal.scopes.write() => {
                                gateway.hub.typing(registration.conn_id, room_id);
                                Ok(())
                            }
                            Ok(ClientFrame::Typing { .. }) => {
                                let error = json!({
                                    "op": "error",
                                    "code": "insufficient_scope",
                                    "message": "this API key lacks the `write` scope: it may not send typing",
                                });
                                self.send_text(error.to_string(), Some(&kick)).await
                            }
                            Err(_) => {
                                let error = json!({
                                    "op": "error",
                                    "code": "unknown_op",
                                    "message": "expected {\"op\":\"ping\"} or {\"op\":\"typing\",\"room_id\":N}",
                                });
                                self.send_text(error.to_string(), Some(&kick)).await
                            }
                        },
                    }
                },
                _ = ping.tick() => {
                    if last_heard.elapsed() >= idle_after {
                        return self.close(close::IDLE, "no frames from the client; reconnect", Disconnect::HeartbeatTimeout).await;
                    }
                    self.send(Message::Ping(Default::default()), Some(&kick)).await
                }
            };
            if let Err(why) = step {
                return self.close_for(why).await;
            }
        }
    }

    /// The first frame that is not a ping or pong.
    async fn first_frame(&mut self) -> Incoming {
        loop {
            let frame = self.rx.next().await;
            if !self.budget.take() {
                return Incoming::TooFast;
            }
            if let Some(incoming) = classify(frame) {
                return incoming;
            }
        }
    }

    /// Closes a client that ran its frame budget dry.
    async fn close_too_fast(&mut self) -> Disconnect {
        self.close(
            close::POLICY,
            "too many frames: slow down and reconnect",
            Disconnect::TooManyFrames,
        )
        .await
    }
}

/// Where a connection starts: each room's newest sequence number, the events to replay for
/// the resume cursors, and rooms whose cursor is too old. Public for the `gateway_frame` fuzz
/// target only.
#[doc(hidden)]
pub struct Start {
    pub positions: Vec<(i64, i64)>,
    pub replay: Vec<RoomEvent>,
    pub resumed: Vec<i64>,
    pub resync: Vec<i64>,
}

/// Reads, in one snapshot (a read transaction), the rooms `user_id` is a member of now, where
/// their logs stand and the events after each resume cursor. Read after the hub subscription,
/// so live events can only overlap this (the session drops repeats), never leave a hole; and
/// re-reading the memberships here means nothing is replayed from a room the user has left
/// since the subscription's read. Public for the `gateway_frame` fuzz target only.
#[doc(hidden)]
pub fn start_state(
    conn: &rusqlite::Connection,
    user_id: i64,
    cursors: &std::collections::BTreeMap<i64, i64>,
    keep: usize,
) -> Result<Start, ChatError> {
    let snapshot = conn.unchecked_transaction()?;
    let rooms = rooms::memberships(&snapshot, user_id)?;
    let mut start = Start {
        positions: Vec::with_capacity(rooms.len()),
        replay: Vec::new(),
        resumed: Vec::new(),
        resync: Vec::new(),
    };
    for (room_id, _) in rooms {
        let Some(pos) = events::position(&snapshot, room_id)? else {
            continue;
        };
        start.positions.push((room_id, pos.last_seq));
        let Some(cursor) = cursors.get(&room_id).copied() else {
            continue;
        };
        // The cursor is the client's: any i64 (i64::MIN overflowed a plain subtraction).
        let missed = usize::try_from(pos.last_seq.saturating_sub(cursor)).unwrap_or(usize::MAX);
        if !events::replayable(cursor, pos) || start.replay.len() + missed > MAX_REPLAY {
            start.resync.push(room_id);
            continue;
        }
        start.replay.extend(events::range(
            &snapshot,
            room_id,
            cursor,
            pos.last_seq,
            keep,
        )?);
        start.resumed.push(room_id);
    }
    Ok(start)
}
