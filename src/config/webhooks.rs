//! `[webhooks]`: outgoing webhook delivery (retries, timeouts, where deliveries may go, which
//! certificate authorities are trusted), the delivery log's retention, and incoming webhook
//! URLs' body cap and rate.
//!
//! Only describes and checks values; sending and receiving belong to `integrations`.

use serde::{Deserialize, Serialize};

use super::{Config, Problem};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webhooks {
    /// Attempts per delivery before the hook is paused (the delivery stays queued and is sent
    /// once an admin resumes the hook).
    pub max_attempts: u32,
    /// Wait before the first retry; each later retry waits twice as long (with up to 25%
    /// random jitter), at most `max_retry_secs`.
    pub first_retry_secs: u64,
    pub max_retry_secs: u64,
    /// How long one attempt may take (connect, TLS, answer) before it counts as failed.
    pub attempt_timeout_secs: u64,
    /// Hooks being delivered to at the same time (each hook's deliveries go one after another,
    /// in order).
    pub max_concurrent: usize,
    /// Deliveries to loopback addresses (127.0.0.0/8, ::1). Off: such a hook is refused, also
    /// when a name resolves to loopback. For tests and for a receiver on this machine.
    pub allow_loopback: bool,
    /// Deliveries to link-local addresses (169.254.0.0/16, fe80::/10). The cloud metadata
    /// addresses (169.254.169.254, fd00:ec2::254) stay refused either way.
    pub allow_link_local: bool,
    /// Trust this server's local CA for https receivers (another box with a certificate it
    /// issued), besides the system's roots.
    pub trust_local_ca: bool,
    /// A PEM file of further CA certificates to trust for https receivers ("": none).
    pub ca_file: String,
    /// Sent deliveries are kept in the hook's log this many days (0: no limit of its own).
    /// Queued ones stay until sent. Neither outlives `[retention] message_days` when that is
    /// set: a delivery's body is a copy of its event (`chat::retention`).
    pub delivery_log_days: u64,
    /// Largest body `POST /hooks/<token>` accepts; more is 413.
    pub incoming_max_body_bytes: usize,
    /// Each incoming webhook URL's own bucket: this many posts at once, refilled at
    /// `incoming_per_minute`.
    pub incoming_burst: u32,
    pub incoming_per_minute: u32,
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks {
            max_attempts: 5,
            first_retry_secs: 1,
            max_retry_secs: 300,
            attempt_timeout_secs: 10,
            max_concurrent: 8,
            allow_loopback: false,
            allow_link_local: false,
            trust_local_ca: true,
            ca_file: String::new(),
            delivery_log_days: 14,
            incoming_max_body_bytes: 16 * 1024,
            incoming_burst: 20,
            incoming_per_minute: 60,
        }
    }
}

pub(super) fn check(c: &Config, problems: &mut Vec<Problem>) {
    let w = &c.webhooks;
    if !(1..=100).contains(&w.max_attempts) {
        problems.push(Problem::key(
            "webhooks.max_attempts",
            "must be between 1 and 100",
            "the default is 5",
        ));
    }
    if !(1..=3600).contains(&w.first_retry_secs) {
        problems.push(Problem::key(
            "webhooks.first_retry_secs",
            "must be between 1 and 3600",
            "the default is 1",
        ));
    }
    if w.max_retry_secs < w.first_retry_secs || w.max_retry_secs > 86_400 {
        problems.push(Problem::key(
            "webhooks.max_retry_secs",
            "must be at least first_retry_secs and at most 86400",
            "the default is 300",
        ));
    }
    if !(1..=300).contains(&w.attempt_timeout_secs) {
        problems.push(Problem::key(
            "webhooks.attempt_timeout_secs",
            "must be between 1 and 300",
            "the default is 10",
        ));
    }
    if !(1..=256).contains(&w.max_concurrent) {
        problems.push(Problem::key(
            "webhooks.max_concurrent",
            "must be between 1 and 256",
            "the default is 8",
        ));
    }
    if w.delivery_log_days > 365_000 {
        problems.push(Problem::key(
            "webhooks.delivery_log_days",
            "must be at most 365000",
            "0 keeps the log forever",
        ));
    }
    if !(16..=1024 * 1024).contains(&w.incoming_max_body_bytes) {
        problems.push(Problem::key(
            "webhooks.incoming_max_body_bytes",
            "must be between 16 and 1048576",
            "the default is 16384",
        ));
    }
    if w.incoming_burst == 0 || w.incoming_per_minute == 0 {
        problems.push(Problem::key(
            "webhooks.incoming_burst",
            "incoming_burst and incoming_per_minute must be at least 1",
            "the defaults are 20 and 60",
        ));
    }
    if !w.ca_file.is_empty() && !std::path::Path::new(&w.ca_file).is_file() {
        problems.push(Problem::key(
            "webhooks.ca_file",
            "is not a readable file",
            "give a PEM file of CA certificates, or \"\"",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_nonsense_is_reported() {
        let mut p = Vec::new();
        check(&Config::default(), &mut p);
        assert!(p.is_empty(), "{p:?}");
        let mut c = Config::default();
        c.webhooks.max_attempts = 0;
        c.webhooks.first_retry_secs = 10;
        c.webhooks.max_retry_secs = 5;
        c.webhooks.incoming_max_body_bytes = 1;
        check(&c, &mut p);
        assert_eq!(p.len(), 3, "{p:?}");
    }
}
