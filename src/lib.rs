//! Roost: a private chat and voice/video server for a Raspberry Pi, as one daemon.
//!
//! `main.rs` only parses the command line; everything else lives here so the tests and the
//! binary share one entry point ([`daemon::run`]). See ARCHITECTURE.md for the map.

pub mod account;
pub mod admin;
pub mod api;
pub mod audit;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod edge;
pub mod exit;
pub mod files;
pub mod gateway;
pub mod http;
pub mod integrations;
pub mod limits;
pub mod livekit;
pub mod metrics;
pub mod names;
pub mod ops;
pub mod outbox;
pub mod secret_file;
pub mod store;
#[cfg(test)]
mod test_child;
#[cfg(test)]
mod tidy;
pub mod web;

/// The version users see in `roost version`, `/health` and `roost_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
