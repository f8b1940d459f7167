//! The chat itself: rooms and their members, messages, the per-room event log, search,
//! call tokens for a room, and retention.
//!
//! - [`rooms`]: rooms, room roles (owner, moderator, member) and who may see or change what.
//! - [`candidates`]: the accounts a room's moderators may add (the one account search they get).
//! - [`directory`]: the frames that tell people outside public rooms about them (a public room
//!   created, changed or made private), so room lists follow them live.
//! - [`dms`]: direct messages (rooms of kind `dm` between two accounts) and the people a caller
//!   may message.
//! - [`messages`]: post (with `Idempotency-Key`), edit, tombstone, list with cursors.
//! - [`mentions`]: the members a message names with `@username` (worked out when read).
//! - [`events`]: every change to a room takes the room's next sequence number and is written to
//!   the `events` table in the same transaction; the gateway replays from there on resume.
//! - [`notices`]: changes that concern an account, not one room's log (a display name, a DM
//!   hidden or shown again), passed on live and never replayed.
//! - [`reads`]: each member's read position per room and the unread counts it gives.
//! - [`search`]: FTS5 over message bodies, filtered to rooms the caller may read.
//! - [`calls`]: LiveKit call tokens and participants for a room.
//! - [`call_mapping`]: Roost room `N` is LiveKit room `roost-room-N`, a user is participant
//!   `user-<id>`; how a participant looks to clients.
//! - [`call_log`]: "call started" / "call ended" entries in the room's timeline.
//! - [`retention`]: the scheduled purge of old messages, audit events, expired credentials and
//!   unreferenced attachments.
//!
//! Every change goes through [`commit`]: one `store.write` that returns the room events it
//! produced, which are handed to the [`EventSink`] (the gateway's hub, the webhook worker's
//! wake-up; the daemon wires it) only after the transaction committed. Handlers take only the
//! parts of the application state they use (`State<Store>`, `State<EventSink>`...), so chat
//! knows neither the gateway, the webhooks nor the module that mounts its routes.
//! This module must not touch sockets or build HTTP responses itself (errors become
//! `ApiError` through [`ChatError`]), and must not publish an event that is not committed.

pub mod call_log;
pub mod call_mapping;
pub mod calls;
pub mod candidates;
pub mod directory;
pub mod dms;
pub mod events;
pub mod mentions;
pub mod messages;
pub mod notices;
pub mod reads;
pub mod retention;
pub mod rooms;
pub mod search;

use std::sync::Arc;

use crate::documented;
use axum::extract::FromRef;
use http::StatusCode;
use prometheus_client::metrics::counter::Counter;
use rusqlite::Connection;

use crate::config::Config;
use crate::http::{ApiError, Routes};
use crate::livekit::LiveKit;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

pub use events::RoomEvent;
pub use notices::Notice;

/// What can go wrong in a chat request; mapped to HTTP only by `From<ChatError> for ApiError`.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The room (or message) does not exist or the caller may not know it exists.
    #[error("no such resource")]
    NotFound,
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a chat task failed: {0}")]
    Task(String),
}

impl ChatError {
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ChatError {
        ChatError::Forbidden {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(code: &'static str, message: impl Into<String>) -> ChatError {
        ChatError::Invalid {
            code,
            message: message.into(),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ChatError {
        ChatError::Conflict {
            code,
            message: message.into(),
        }
    }
}

impl From<rusqlite::Error> for ChatError {
    fn from(e: rusqlite::Error) -> Self {
        ChatError::Store(StoreError::from(e))
    }
}

impl From<crate::auth::AuthError> for ChatError {
    fn from(e: crate::auth::AuthError) -> Self {
        match e {
            crate::auth::AuthError::Store(s) => ChatError::Store(s),
            crate::auth::AuthError::NotFound => ChatError::NotFound,
            other => ChatError::Task(other.to_string()),
        }
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        let message = e.to_string();
        match e {
            ChatError::NotFound => ApiError::not_found(),
            ChatError::Forbidden { code, .. } => {
                ApiError::new(StatusCode::FORBIDDEN, code, message)
            }
            ChatError::Invalid { code, .. } => ApiError::bad_request(code, message),
            ChatError::Conflict { code, .. } => ApiError::new(StatusCode::CONFLICT, code, message),
            ChatError::Unavailable { code, .. } => ApiError::unavailable(code, message),
            ChatError::Store(s) => ApiError::from(s),
            ChatError::Task(_) => ApiError::internal("chat", &e),
        }
    }
}

impl axum::response::IntoResponse for ChatError {
    fn into_response(self) -> axum::response::Response {
        ApiError::from(self).into_response()
    }
}

/// Runs `change` in one write transaction (group commit) and, once it has committed,
/// publishes the room events it appended through `sink`, in order.
///
/// The write and the publish run in their own task, so a client that disconnects while its
/// request is in flight cannot leave a committed event unpublished (axum drops the handler's
/// future on disconnect; a spawned task runs to the end).
pub async fn commit<T, F>(store: &Store, sink: &EventSink, change: F) -> Result<T, ChatError>
where
    F: FnOnce(&Connection, &mut Vec<RoomEvent>) -> Result<T, ChatError> + Send + 'static,
    T: Send + 'static,
{
    commit_as(store, sink, change).await
}

/// [`commit`] for a change whose errors are not [`ChatError`]s: one made outside the chat
/// module that also moves room members (an account made a guest, `admin::users`).
pub async fn commit_as<T, E, F>(store: &Store, sink: &EventSink, change: F) -> Result<T, E>
where
    F: FnOnce(&Connection, &mut Vec<RoomEvent>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    commit_noting(store, sink, move |conn, events, _notices| {
        change(conn, events)
    })
    .await
}

/// [`commit_as`] for a change that may also produce [`Notice`]s (a display name, a DM hidden):
/// they are handed to `sink` after the room events, once the transaction committed.
pub async fn commit_noting<T, E, F>(store: &Store, sink: &EventSink, change: F) -> Result<T, E>
where
    F: FnOnce(&Connection, &mut Vec<RoomEvent>, &mut Vec<Notice>) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let store = store.clone();
    let sink = sink.clone();
    let task = tokio::spawn(async move {
        let (value, events, notices) = store
            .write(move |conn| {
                let (mut events, mut notices) = (Vec::new(), Vec::new());
                let value = change(conn, &mut events, &mut notices)?;
                Ok::<_, E>((value, events, notices))
            })
            .await?;
        // Committed: now, and only now, the world may hear about it.
        sink.publish(events);
        if !notices.is_empty() {
            sink.notify(notices);
        }
        Ok(value)
    });
    match task.await {
        Ok(result) => result,
        // The write job's panic was caught by the writer; one here is the publish's.
        Err(e) if e.is_panic() => Err(E::from(StoreError::Panicked)),
        // Cancelled: the runtime is shutting down.
        Err(_) => Err(E::from(StoreError::Closed)),
    }
}

/// Where room events go once their transaction committed: the gateway's fan-out, and the
/// webhook worker's wake-up (the deliveries themselves were queued in the transaction). The
/// daemon says who listens ([`EventSink::new`]); chat only publishes, so it depends on
/// neither. Committed [`Notice`]s go the same way, to the gateway only (webhooks carry room
/// events). Cloning it is two reference counts.
#[derive(Clone)]
pub struct EventSink {
    publish: Arc<dyn Fn(Vec<RoomEvent>) + Send + Sync>,
    notify: Arc<dyn Fn(Vec<Notice>) + Send + Sync>,
}

impl EventSink {
    /// A sink that hands each committed batch, in commit order, to `publish`, and each
    /// committed change's notices to `notify`.
    pub fn new(
        publish: impl Fn(Vec<RoomEvent>) + Send + Sync + 'static,
        notify: impl Fn(Vec<Notice>) + Send + Sync + 'static,
    ) -> EventSink {
        EventSink {
            publish: Arc::new(publish),
            notify: Arc::new(notify),
        }
    }

    /// Hands `events` (committed, in order) to the listeners.
    pub fn publish(&self, events: Vec<RoomEvent>) {
        (self.publish)(events)
    }

    /// Hands `notices` (committed) to the listeners.
    pub fn notify(&self, notices: Vec<Notice>) {
        (self.notify)(notices)
    }
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSink")
    }
}

/// Chat's metrics, registered once at startup; cloning shares the same series.
#[derive(Clone, Default)]
pub struct ChatMetrics {
    /// `roost_messages_total`: messages posted (`messages::post`, incoming webhooks).
    pub messages: Counter,
}

impl ChatMetrics {
    pub fn register(metrics: &Metrics) -> ChatMetrics {
        let m = ChatMetrics::default();
        metrics.register("messages", "Messages posted", m.messages.clone());
        m
    }
}

/// A JSON body that may be absent: an empty body is `T::default()`.
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &bytes::Bytes,
) -> Result<T, ChatError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ChatError::invalid("invalid_body", format!("the JSON body is not valid: {e}")))
}

/// Rooms, members, direct messages, messages, read positions, calls and search.
pub fn routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    EventSink: FromRef<S>,
    Arc<Config>: FromRef<S>,
    Arc<LiveKit>: FromRef<S>,
    ChatMetrics: FromRef<S>,
{
    Routes::new()
        .api(documented!(rooms::list, rooms::create))
        .api(documented!(rooms::get, rooms::update))
        .api(documented!(rooms::members))
        .api(documented!(candidates::list))
        .api(documented!(rooms::put_member, rooms::delete_member))
        .api(documented!(reads::mark))
        .api(documented!(dms::open))
        .api(documented!(dms::hide))
        .api(documented!(dms::people))
        .api(documented!(messages::list, messages::post))
        .api(documented!(messages::get, messages::edit, messages::delete))
        .api(documented!(calls::participants))
        .api(documented!(calls::token))
        .api(documented!(search::search))
}
