//! `[attachments]`: upload size, per-user quota, accepted types and the upload deadline
//! (see `files`).
//!
//! Only describes and checks values; storing and serving files belongs to `files`.

use serde::{Deserialize, Serialize};

use super::{Config, Problem};

/// Content types Roost can recognise from magic bytes (`files::sniff`); `allowed_types` must
/// be a subset. WebM is always reported as `video/webm` (also when it holds only audio).
pub const KNOWN_TYPES: [&str; 11] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "video/mp4",
    "audio/mp4",
    "video/webm",
    "audio/ogg",
    "audio/mpeg",
    "text/plain",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Attachments {
    /// Largest upload in bytes; larger ones get 413 `too_large` at the edge (declared length)
    /// or while streaming. This replaces `limits.max_body_bytes` for the upload route only.
    pub max_bytes: u64,
    /// Bytes of attachments one account may have uploaded in total; past it 413
    /// `quota_exceeded`.
    pub user_quota_mb: u64,
    /// Content types accepted, as recognised from the file's first bytes (never from the
    /// client's Content-Type or file name); others get 415.
    pub allowed_types: Vec<String>,
    /// Time one upload may take, from request head to response (the other routes get
    /// `limits.request_timeout_secs`): 25 MiB over a slow Wi-Fi link needs minutes.
    pub upload_timeout_secs: u64,
    /// Unreferenced uploads younger than this are kept by retention (a client uploads first
    /// and posts the message that references the file afterwards).
    pub orphan_grace_secs: u64,
}

impl Default for Attachments {
    fn default() -> Self {
        Attachments {
            max_bytes: 25 * 1024 * 1024,
            user_quota_mb: 500,
            allowed_types: KNOWN_TYPES.iter().map(|s| (*s).to_owned()).collect(),
            upload_timeout_secs: 600,
            orphan_grace_secs: 24 * 3600,
        }
    }
}

impl Attachments {
    pub fn user_quota_bytes(&self) -> u64 {
        self.user_quota_mb.saturating_mul(1024 * 1024)
    }
}

pub(super) fn check(c: &Config, problems: &mut Vec<Problem>) {
    let a = &c.attachments;
    if a.max_bytes == 0 || a.max_bytes > 4 * 1024 * 1024 * 1024 {
        problems.push(Problem::key(
            "attachments.max_bytes",
            "must be between 1 and 4294967296",
            "the default is 26214400 (25 MiB)",
        ));
    }
    for t in &a.allowed_types {
        if !KNOWN_TYPES.contains(&t.as_str()) {
            problems.push(Problem::key(
                "attachments.allowed_types",
                &format!("{t:?} cannot be recognised from a file's content"),
                &format!("choose from {}", KNOWN_TYPES.join(", ")),
            ));
        }
    }
    if !(1..=86_400).contains(&a.upload_timeout_secs) {
        problems.push(Problem::key(
            "attachments.upload_timeout_secs",
            "must be between 1 and 86400",
            "the default is 600",
        ));
    }
}
