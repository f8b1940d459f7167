//! Operating the daemon: health and readiness, Prometheus metrics, systemd notification,
//! logging setup, disk checks, backup and restore, diagnosis (`doctor`, `status`) and the
//! Pi's own health.
//!
//! `ops` observes the other modules; it never changes chat data (restore replaces the whole
//! data set, with the daemon stopped) and never serves the public API by itself (its handlers
//! are mounted by `api`).

pub mod backup;
pub mod backup_runs;
pub mod checksum;
pub mod doctor;
pub mod health;
pub mod lock;
pub mod logging;
pub mod memory;
pub mod notify;
pub mod pi;
pub mod provision;
pub mod restore;
pub mod scrape;
pub mod status;
pub mod vitals;

use std::sync::Arc;

use crate::documented;
use axum::extract::FromRef;
use axum::routing::get;

use crate::auth::AuthState;
use crate::config::Config;
use crate::http::Routes;
use crate::livekit::LiveKit;
use crate::metrics::Metrics;
use crate::store::Store;

use self::backup_runs::BackupRuns;
use self::vitals::Vitals;

/// Liveness and readiness, on every listener that answers them.
pub fn health_routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    Arc<Config>: FromRef<S>,
    Arc<Vitals>: FromRef<S>,
    Arc<LiveKit>: FromRef<S>,
{
    Routes::new()
        .api(documented!(health::health))
        .api(documented!(health::ready))
}

/// The internal listener's monitoring: `/metrics` and `/status` (not part of the API document).
pub fn monitoring_routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    Arc<Config>: FromRef<S>,
    Arc<Vitals>: FromRef<S>,
    Arc<Metrics>: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
    Arc<LiveKit>: FromRef<S>,
    Arc<BackupRuns>: FromRef<S>,
{
    Routes::new()
        .undocumented("/metrics", get(scrape::metrics))
        .undocumented("/status", get(status::status))
}
