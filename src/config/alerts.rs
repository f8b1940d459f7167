//! `[alerts]`: the security-alert webhook (see `limits::alerts`): where to POST and when.
//!
//! Only describes and checks values; sending belongs to `limits::alerts`.

use serde::{Deserialize, Serialize};

use super::Problem;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Alerts {
    /// http:// or https:// URL that receives a JSON POST per alert. Empty: no alerts.
    /// It often embeds a token (chat webhooks), so it is never logged.
    pub webhook_url: String,
    /// Alert when this many failed sign-ins happen within `window_secs` (0: never).
    pub auth_failures_threshold: u32,
    /// Alert when this many requests are refused by the rate limiter within `window_secs`
    /// (0: never).
    pub rate_limit_hits_threshold: u32,
    pub window_secs: u64,
    /// At most one alert of each kind per this many seconds.
    pub min_interval_secs: u64,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            webhook_url: String::new(),
            auth_failures_threshold: 20,
            rate_limit_hits_threshold: 200,
            window_secs: 300,
            min_interval_secs: 900,
        }
    }
}

/// The longest window kept: one counter per second, so this bounds the alerter's memory.
pub const MAX_WINDOW_SECS: u64 = 86_400;

pub(super) fn check(a: &Alerts, problems: &mut Vec<Problem>) {
    if !a.webhook_url.is_empty() && !valid_webhook(&a.webhook_url) {
        // The value is not echoed: webhook URLs usually carry a token.
        problems.push(Problem::key(
            "alerts.webhook_url",
            "is not an http:// or https:// URL with a host",
            "use e.g. \"https://ntfy.sh/<topic>\", or \"\" to send no alerts",
        ));
    }
    if !(1..=MAX_WINDOW_SECS).contains(&a.window_secs) {
        problems.push(Problem::key(
            "alerts.window_secs",
            &format!("must be between 1 and {MAX_WINDOW_SECS}"),
            "the default is 300",
        ));
    }
    if !(1..=MAX_WINDOW_SECS).contains(&a.min_interval_secs) {
        problems.push(Problem::key(
            "alerts.min_interval_secs",
            &format!("must be between 1 and {MAX_WINDOW_SECS}"),
            "the default is 900",
        ));
    }
}

fn valid_webhook(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some_and(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_checked_without_echoing_them() {
        let mut p = Vec::new();
        check(
            &Alerts {
                webhook_url: "ftp://secret-token@x".into(),
                window_secs: 0,
                min_interval_secs: 0,
                ..Alerts::default()
            },
            &mut p,
        );
        let locations: Vec<&str> = p.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "alerts.webhook_url",
                "alerts.window_secs",
                "alerts.min_interval_secs"
            ]
        );
        assert!(!p[0].to_string().contains("secret-token"), "{}", p[0]);
        for ok in ["https://ntfy.sh/topic", "http://127.0.0.1:9000/hook"] {
            assert!(valid_webhook(ok), "{ok}");
        }
        assert!(!valid_webhook("https://"));
    }
}
