//! Calls: the co-located LiveKit media server, and everything Roost does around it.
//!
//! - [`supervisor`] writes LiveKit's config ([`yaml`], with the address [`lan`] picks), runs `livekit-server` ([`process`]),
//!   health-checks and restarts it, and stops it on shutdown; its state is [`Status`].
//! - [`keys`] owns the API key pairs (generation, rotation); [`tokens`] mints call tokens.
//! - [`webhook`] verifies LiveKit's webhooks and feeds [`calls::Registry`] (who is in which
//!   call, with a broadcast for the realtime gateway).
//! - [`proxy`] forwards `/rtc` and `/twirp` from the public listener to LiveKit.
//!
//! [`LiveKit`] is the shared handle the daemon builds once and the HTTP state carries. This
//! module must not serve chat or touch the database, and nothing outside [`supervisor`] starts
//! a process. It knows nothing of the daemon, `ops` or the command line (`roost livekit` is
//! `cli::livekit`, over [`keys`] and [`yaml`]). LiveKit trouble never fails Roost itself: it only shows up as the `livekit`
//! check in `/ready` (which stays 200 when chat is fine) and in metrics.

pub mod calls;
pub mod keys;
pub mod lan;
pub mod process;
pub mod proxy;
pub mod supervisor;
pub mod tokens;
pub mod webhook;
pub mod yaml;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::FromRef;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{watch, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::metrics::Metrics;

use self::keys::KeyRing;
use self::tokens::{CallGrant, MintedToken, TokenError};
use crate::http::Routes;

/// What LiveKit is doing, as `/ready` and the call endpoints see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Calls are off: by configuration, or because LiveKit cannot run here (the reason says
    /// which and what to do).
    Disabled(String),
    /// Started, not yet answering its health check.
    Starting,
    /// Answering its health check.
    Up,
    /// Crashed or unhealthy; a restart is pending or under way.
    Down(String),
    /// Roost is shutting down.
    Stopped,
}

impl Status {
    pub fn is_up(&self) -> bool {
        matches!(self, Status::Up)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub reason: &'static str,
}

/// LiveKit's metrics (registered into the shared registry at startup).
#[derive(Clone, Default)]
pub struct LiveKitMetrics {
    pub up: Gauge,
    pub restarts: Counter,
    pub webhook_rejected: Family<RejectLabels, Counter>,
    pub proxied_connections: Gauge,
    /// Call tokens handed out (`chat::calls`).
    pub tokens_issued: Counter,
}

impl LiveKitMetrics {
    fn register(&self, metrics: &Metrics) {
        metrics.register(
            "livekit_up",
            "1 while the supervised LiveKit server answers its health check",
            self.up.clone(),
        );
        metrics.register(
            "livekit_restarts",
            "Times the supervisor restarted LiveKit",
            self.restarts.clone(),
        );
        metrics.register(
            "livekit_webhook_rejected",
            "LiveKit webhooks refused, by reason",
            self.webhook_rejected.clone(),
        );
        metrics.register(
            "livekit_proxied_connections",
            "Signalling connections currently proxied to LiveKit",
            self.proxied_connections.clone(),
        );
        metrics.register(
            "media_tokens_issued",
            "Call tokens issued to room members",
            self.tokens_issued.clone(),
        );
    }
}

/// Why a call cannot be set up right now.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("calls are not available: {0}")]
    Unavailable(String),
    /// LiveKit is down or being restarted: a token now would only fail to connect.
    #[error("the call server is down: {0}")]
    Down(String),
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// The shared handle: configuration, keys, status, the call registry and proxy limits.
pub struct LiveKit {
    config: Arc<Config>,
    keys: watch::Sender<Option<Arc<KeyRing>>>,
    status: watch::Sender<Status>,
    pub calls: calls::Registry,
    pub metrics: LiveKitMetrics,
    /// Bounds proxied signalling connections (`max_proxied_connections`).
    proxy_permits: Arc<Semaphore>,
    /// Upgraded WebSocket sessions, so the daemon can wait for them on shutdown.
    proxy_sessions: TaskTracker,
    shutdown: CancellationToken,
    /// Set by SIGHUP: re-read keys (and look for the binary again).
    reload: Notify,
    runtime_dir: PathBuf,
}

/// Where the generated LiveKit config goes: systemd's `RuntimeDirectory=` (`/run/roost`) when
/// given, else `<data_dir>/run`.
pub fn runtime_dir(config: &Config, runtime_directory: Option<&str>) -> PathBuf {
    match runtime_directory.and_then(|v| v.split(':').next()) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => config.data_dir().join("run"),
    }
}

impl LiveKit {
    /// Builds the handle; nothing is started until [`supervisor::run`].
    pub fn new(
        config: Arc<Config>,
        metrics: &Metrics,
        runtime_dir: PathBuf,
        shutdown: CancellationToken,
    ) -> Arc<LiveKit> {
        let (status, keys) = if !config.livekit.enabled {
            (Status::Disabled("livekit.enabled is false".into()), None)
        } else {
            match keys::load(&config, SystemTime::now()) {
                Ok(ring) => (Status::Starting, Some(Arc::new(ring))),
                Err(e) => (Status::Disabled(e.to_string()), None),
            }
        };
        let lk = LiveKit {
            proxy_permits: Arc::new(Semaphore::new(config.livekit.max_proxied_connections)),
            config,
            keys: watch::Sender::new(keys),
            status: watch::Sender::new(status),
            calls: calls::Registry::new(),
            metrics: LiveKitMetrics::default(),
            proxy_sessions: TaskTracker::new(),
            shutdown,
            reload: Notify::new(),
            runtime_dir,
        };
        lk.metrics.register(metrics);
        Arc::new(lk)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Follows status changes (for `/ready`-like watchers and tests).
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    pub(crate) fn set_status(&self, status: Status) {
        self.metrics.up.set(i64::from(status.is_up()));
        self.status.send_replace(status);
    }

    /// The key pairs in force, if LiveKit is configured.
    pub fn keys(&self) -> Option<Arc<KeyRing>> {
        self.keys.borrow().clone()
    }

    pub(crate) fn set_keys(&self, ring: Arc<KeyRing>) {
        self.keys.send_replace(Some(ring));
    }

    /// Asks the supervisor to re-read the keys (and retry a missing binary); used on SIGHUP.
    pub fn request_reload(&self) {
        self.reload.notify_one();
    }

    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }

    pub fn config_path(&self) -> PathBuf {
        self.runtime_dir.join("livekit.yaml")
    }

    /// Mints a call token with the current key and the configured lifetime (or `requested`,
    /// if shorter; never above five minutes).
    pub fn mint(
        &self,
        grant: &CallGrant<'_>,
        requested: Option<Duration>,
    ) -> Result<MintedToken, CallError> {
        match self.status() {
            Status::Disabled(why) => return Err(CallError::Unavailable(why)),
            Status::Down(why) => return Err(CallError::Down(why)),
            Status::Stopped => return Err(CallError::Down("Roost is shutting down".into())),
            // While starting, LiveKit is moments away; the client's connect retries until then.
            Status::Starting | Status::Up => {}
        }
        let ring = self
            .keys()
            .ok_or_else(|| CallError::Unavailable("LiveKit keys are not loaded".into()))?;
        let ttl = tokens::effective_ttl(
            requested,
            Duration::from_secs(self.config.livekit.token_ttl_secs),
        );
        Ok(tokens::mint(&ring.current, grant, ttl, SystemTime::now())?)
    }

    /// The `wss://` URL clients connect to for calls: `livekit.public_url`, else
    /// `server.public_url` as wss, else the host the client reached Roost by.
    pub fn client_url(&self, request_host: &str) -> String {
        let l = &self.config.livekit;
        if !l.public_url.is_empty() {
            return l.public_url.replacen("https://", "wss://", 1);
        }
        if let Some(rest) = self.config.server.public_url.strip_prefix("https://") {
            return format!("wss://{}", rest.trim_end_matches('/'));
        }
        format!("wss://{request_host}")
    }

    /// Waits for proxied WebSocket sessions to end (they stop on the shutdown signal).
    pub async fn wait_proxy_sessions(&self) {
        self.proxy_sessions.close();
        self.proxy_sessions.wait().await;
    }
}

/// LiveKit's signalling and API paths, proxied to the local server (not part of Roost's API
/// document).
pub fn proxy_routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<LiveKit>: FromRef<S>,
{
    let forward = || axum::routing::any(proxy::forward);
    Routes::new()
        .undocumented("/rtc", forward())
        .undocumented("/rtc/{*rest}", forward())
        .undocumented("/twirp/{*rest}", forward())
}

/// The webhook receiver: on the internal listener, and on the public one for an external LiveKit.
pub fn webhook_routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<LiveKit>: FromRef<S>,
{
    Routes::new().undocumented("/livekit/webhook", axum::routing::post(webhook::receive))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(config: Config) -> Arc<LiveKit> {
        LiveKit::new(
            Arc::new(config),
            &Metrics::new(),
            PathBuf::from("/nonexistent"),
            CancellationToken::new(),
        )
    }

    #[test]
    fn disabled_or_keyless_means_no_tokens_with_a_reason() {
        let mut c = Config::default();
        c.livekit.enabled = false;
        let lk = handle(c);
        assert_eq!(
            lk.status(),
            Status::Disabled("livekit.enabled is false".into())
        );
        let perms = tokens::Permissions::for_role(
            tokens::CallRole::Member,
            tokens::RoomCallPolicy::default(),
        );
        let grant = CallGrant {
            identity: "u",
            name: "",
            metadata: None,
            room: "r",
            permissions: &perms,
        };
        assert!(matches!(
            lk.mint(&grant, None),
            Err(CallError::Unavailable(_))
        ));

        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::default();
        c.storage.data_dir = dir.path().into();
        let lk = handle(c);
        match lk.status() {
            Status::Disabled(why) => assert!(why.contains("roost init"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_tokens_while_livekit_is_down_and_the_reason_is_given() {
        let mut c = Config::default();
        c.livekit.api_key = "APItest".into();
        c.livekit.api_secret = crate::config::Secret::new("s".repeat(43));
        let lk = handle(c);
        let perms = tokens::Permissions::for_role(
            tokens::CallRole::Member,
            tokens::RoomCallPolicy::default(),
        );
        let grant = CallGrant {
            identity: "u",
            name: "",
            metadata: None,
            room: "r",
            permissions: &perms,
        };
        assert!(lk.mint(&grant, None).is_ok(), "starting: {:?}", lk.status());
        lk.set_status(Status::Down(
            "livekit exited (signal: 9); restarting in 1000 ms".into(),
        ));
        match lk.mint(&grant, None) {
            Err(CallError::Down(why)) => assert!(why.contains("signal: 9"), "{why}"),
            other => panic!("{other:?}"),
        }
        lk.set_status(Status::Up);
        assert!(lk.mint(&grant, None).is_ok());
    }

    #[test]
    fn client_url_prefers_overrides_then_the_request_host() {
        let mut c = Config::default();
        c.livekit.enabled = false;
        assert_eq!(
            handle(c.clone()).client_url("roost.local:8443"),
            "wss://roost.local:8443"
        );
        c.server.public_url = "https://chat.example.org/".into();
        assert_eq!(handle(c.clone()).client_url("x"), "wss://chat.example.org");
        c.livekit.public_url = "wss://media.example.org".into();
        assert_eq!(handle(c).client_url("x"), "wss://media.example.org");
    }

    #[test]
    fn runtime_dir_prefers_systemds() {
        let c = Config::default();
        assert_eq!(
            runtime_dir(&c, Some("/run/roost:/run/other")),
            PathBuf::from("/run/roost")
        );
        assert_eq!(runtime_dir(&c, None), PathBuf::from("/var/lib/roost/run"));
    }
}
