//! `[retention]`: how long messages, room events (the gateway's resume log) and the audit log
//! are kept, and how often the purge runs (see `chat::retention`).
//!
//! Only describes and checks values; deleting belongs to `chat::retention`.

use serde::{Deserialize, Serialize};

use super::{Config, Problem};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    /// Messages older than this many days are deleted (0: kept forever).
    pub message_days: u64,
    /// Audit events older than this many days are deleted (0: kept forever).
    pub audit_days: u64,
    /// Room events (what the gateway replays on resume) older than this many days are deleted
    /// (0: only `[gateway] resume_events_per_room` bounds them). A client resuming from further
    /// back is told to resync (close 4009).
    pub event_days: u64,
    /// Seconds between purges (the first runs this long after startup).
    pub interval_secs: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            message_days: 0,
            audit_days: 90,
            event_days: 30,
            interval_secs: 3600,
        }
    }
}

pub(super) fn check(c: &Config, problems: &mut Vec<Problem>) {
    let r = &c.retention;
    if r.message_days > 365_000 || r.audit_days > 365_000 || r.event_days > 365_000 {
        problems.push(Problem::key(
            "retention",
            "message_days, audit_days and event_days must be at most 365000",
            "0 keeps forever",
        ));
    }
    if !(1..=7 * 86_400).contains(&r.interval_secs) {
        problems.push(Problem::key(
            "retention.interval_secs",
            "must be between 1 and 604800",
            "the default is 3600",
        ));
    }
}
