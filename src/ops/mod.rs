//! Operating the daemon: health and readiness, Prometheus metrics, systemd notification,
//! logging setup, disk checks, backup and restore, diagnosis (`doctor`, `status`) and the
//! Pi's own health.
//!
//! `ops` observes the other modules; it never changes chat data (restore replaces the whole
//! data set, with the daemon stopped) and never serves the public API by itself (its handlers
//! are mounted by `api`).

pub mod admin;
pub mod backup;
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
pub mod status;
pub mod vitals;

use utoipa_axum::routes;

use crate::api::AppState;
use crate::http::Routes;

/// Liveness and readiness, on every listener that answers them.
pub fn health_routes() -> Routes<AppState> {
    Routes::new()
        .api(routes!(health::health))
        .api(routes!(health::ready))
}

/// The internal listener's `/status`.
pub fn status_routes() -> Routes<AppState> {
    Routes::new().undocumented("/status", axum::routing::get(status::status))
}

/// The administration API of the HTTPS surface.
pub fn admin_routes() -> Routes<AppState> {
    Routes::new()
        .api(routes!(admin::status_handler))
        .api(routes!(admin::list_handler, admin::start_handler))
}
