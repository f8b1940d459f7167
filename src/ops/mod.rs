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
