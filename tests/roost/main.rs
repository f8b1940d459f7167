//! Roost's integration tests: one test crate, so the helpers in [`support`] are compiled and
//! linked once rather than once per file. Each module is one capability as a client or an
//! operator meets it, against the real `roost` binary (started by `support` on 127.0.0.1 with
//! ephemeral ports and a temp data dir) or, for `store`, the library on a real SQLite file.
//!
//! Tests of different modules run side by side in one process, so none may change what the
//! process shares: no environment variables, current directory, umask or fixed ports; a
//! daemon gets its environment through `Setup::env` and its ports from the kernel.
//!
//! Run one module with `cargo test --test roost MODULE::`, one test with its name.

mod support;

mod abuse;
mod account;
mod admin;
mod auth;
mod backup;
mod chat;
mod cli;
mod dms;
mod edge;
mod files;
mod gateway;
mod identity;
mod lifecycle;
mod limits;
mod live_updates;
mod livekit;
mod livekit_real;
mod openapi;
mod ops;
mod reads;
mod room_directory;
mod store;
mod web;
mod web_client;
mod webhooks;
