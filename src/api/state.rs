//! The application state and the parts of it a handler may ask for.
//!
//! Handlers take only what they use: `State<Store>`, `State<Arc<AuthState>>`... (axum's
//! `FromRef`), never the whole [`AppState`], so a capability module does not depend on the
//! module that assembles the surfaces. Each part's `FromRef` impl is here, beside the state it
//! is taken from; a module whose handlers need a new part adds the field and its impl here.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::auth::AuthState;
use crate::chat::{ChatMetrics, EventSink};
use crate::config::Config;
use crate::edge::policy::EdgePolicy;
use crate::edge::trust::CaCertificate;
use crate::files::Files;
use crate::gateway::Gateway;
use crate::integrations;
use crate::limits::alerts::AlertSink;
use crate::limits::Limiter;
use crate::livekit::LiveKit;
use crate::metrics::Metrics;
use crate::ops::backup_runs::BackupRuns;
use crate::ops::vitals::Vitals;
use crate::store::Store;

/// Everything a handler may need, behind one `Arc`: every middleware layer clones the state on
/// every request, so a clone must be one reference count, not one per field. Fields are reached
/// through `Deref` (`app.store`, `app.config`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The shared services behind [`AppState`].
#[derive(Clone)]
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub edge: Arc<EdgePolicy>,
    /// The local CA certificate offered at `/ca.crt`; none with operator certificates.
    pub ca: CaCertificate,
    /// Uptime, connections, disk and Pi health (`ops::vitals`), for `/status` and `/metrics`.
    pub vitals: Arc<Vitals>,
    /// Keys, password hasher, login backoff and the pending setup code.
    pub auth: Arc<AuthState>,
    /// Charged only by `limits::layer::check` in the surface's route policy, never by handlers.
    pub limiter: Arc<Limiter>,
    /// Where failed sign-ins and rate-limit refusals are reported (security alerts).
    pub alerts: AlertSink,
    /// Calls: LiveKit's status, keys, call registry and proxy limits.
    pub livekit: Arc<LiveKit>,
    /// The realtime gateway: hub (fan-out, presence), connection caps, metrics.
    pub gateway: Arc<Gateway>,
    /// The attachment store on disk.
    pub files: Arc<Files>,
    /// The backup started from the administration API (`admin::backups`): one at a time.
    pub backup_runs: Arc<BackupRuns>,
    /// Outgoing webhooks' worker and client, incoming webhook URLs' buckets.
    pub integrations: integrations::Handle,
    /// Where chat publishes room events after commit (the gateway, the webhook worker).
    pub events: EventSink,
    /// Chat's counters (`roost_messages_total`).
    pub chat_metrics: ChatMetrics,
}

impl FromRef<AppState> for Arc<Config> {
    fn from_ref(app: &AppState) -> Arc<Config> {
        app.config.clone()
    }
}

impl FromRef<AppState> for Store {
    fn from_ref(app: &AppState) -> Store {
        app.store.clone()
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(app: &AppState) -> Arc<Metrics> {
        app.metrics.clone()
    }
}

impl FromRef<AppState> for Arc<EdgePolicy> {
    fn from_ref(app: &AppState) -> Arc<EdgePolicy> {
        app.edge.clone()
    }
}

impl FromRef<AppState> for Arc<Vitals> {
    fn from_ref(app: &AppState) -> Arc<Vitals> {
        app.vitals.clone()
    }
}

impl FromRef<AppState> for Arc<AuthState> {
    fn from_ref(app: &AppState) -> Arc<AuthState> {
        app.auth.clone()
    }
}

impl FromRef<AppState> for Arc<Limiter> {
    fn from_ref(app: &AppState) -> Arc<Limiter> {
        app.limiter.clone()
    }
}

impl FromRef<AppState> for AlertSink {
    fn from_ref(app: &AppState) -> AlertSink {
        app.alerts.clone()
    }
}

impl FromRef<AppState> for Arc<LiveKit> {
    fn from_ref(app: &AppState) -> Arc<LiveKit> {
        app.livekit.clone()
    }
}

impl FromRef<AppState> for Arc<Gateway> {
    fn from_ref(app: &AppState) -> Arc<Gateway> {
        app.gateway.clone()
    }
}

impl FromRef<AppState> for Arc<Files> {
    fn from_ref(app: &AppState) -> Arc<Files> {
        app.files.clone()
    }
}

impl FromRef<AppState> for Arc<BackupRuns> {
    fn from_ref(app: &AppState) -> Arc<BackupRuns> {
        app.backup_runs.clone()
    }
}

impl FromRef<AppState> for integrations::Handle {
    fn from_ref(app: &AppState) -> integrations::Handle {
        app.integrations.clone()
    }
}

impl FromRef<AppState> for EventSink {
    fn from_ref(app: &AppState) -> EventSink {
        app.events.clone()
    }
}

impl FromRef<AppState> for CaCertificate {
    fn from_ref(app: &AppState) -> CaCertificate {
        app.ca.clone()
    }
}

impl FromRef<AppState> for ChatMetrics {
    fn from_ref(app: &AppState) -> ChatMetrics {
        app.chat_metrics.clone()
    }
}
