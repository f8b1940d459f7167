//! Operating the daemon: health and readiness, Prometheus metrics, systemd notification,
//! logging setup and disk checks.
//!
//! `ops` observes the other modules; it never changes chat data and never serves the public
//! API by itself (its handlers are mounted by `api`).

pub mod disk;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod provision;
