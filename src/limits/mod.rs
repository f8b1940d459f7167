//! In-process rate limiting (token buckets per action family, keyed by client IP and account)
//! and the security alerts raised when limits or sign-ins are hammered.
//!
//! Contract with `auth`: `auth::authenticate` inserts [`Account`] into a request's extensions
//! once it knows who is calling; the limiter's step ([`layer::check`], which runs after it)
//! then charges both the client IP's bucket and the account's. Nothing else reads or
//! writes it. Failed sign-ins are reported to [`alerts::AlertSink::auth_failure`].
//!
//! Map: [`bucket`] is the token arithmetic, [`table`] the bounded sharded key maps,
//! [`limiter`] the families, settings (reloadable) and metrics, [`layer`] the one place requests
//! meet the limiter, [`alerts`] the webhook. Handlers never call the limiter themselves: the
//! family is chosen here from the method and route template ([`Family::classify`]).
//!
//! Why not `governor`: its keyed store has no hard cap on keys (only after-the-fact
//! `retain_recent`), cannot check two keys as one all-or-nothing decision, and hides the
//! bucket state needed for `RateLimit-Remaining`. The GCRA core is 30 lines in [`bucket`].

pub mod alerts;
pub mod bucket;
pub mod clock;
pub mod layer;
pub mod limiter;
pub mod table;

use http::Method;

pub use clock::{Clock, FakeClock, MonotonicClock};
pub use limiter::{Decision, Limiter, Quota, Reason};

/// The authenticated account behind a request, as the limiter keys it (a stable user id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account(pub String);

/// What a request does, as far as abuse is concerned; each family has its own buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Login,
    Register,
    Refresh,
    Read,
    Write,
    Upload,
    MediaToken,
    GatewayConnect,
}

impl Family {
    pub const ALL: [Family; 8] = [
        Family::Login,
        Family::Register,
        Family::Refresh,
        Family::Read,
        Family::Write,
        Family::Upload,
        Family::MediaToken,
        Family::GatewayConnect,
    ];

    /// The name in `[rate_limits.<name>]` and in the `surface` metric label.
    pub fn name(self) -> &'static str {
        match self {
            Family::Login => "login",
            Family::Register => "register",
            Family::Refresh => "refresh",
            Family::Read => "read",
            Family::Write => "write",
            Family::Upload => "upload",
            Family::MediaToken => "media_token",
            Family::GatewayConnect => "gateway_connect",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The family of a request, from its method and route template (`http::Templates`, or
    /// the raw path when no route matched). `None`: not limited (`/health`, `/ready`,
    /// `/ca.crt`, `/metrics` and everything else outside `/api/`).
    pub fn classify(method: &Method, route: &str) -> Option<Family> {
        // Incoming webhook URLs post messages: the per-address `write` budget, besides each
        // URL's own bucket (`integrations::incoming`).
        if route == "/hooks/{token}" {
            return Some(Family::Write);
        }
        if !route.starts_with("/api/") {
            return None;
        }
        let family = match (method.as_str(), route) {
            ("POST", "/api/v1/auth/login") => Family::Login,
            ("POST", "/api/v1/auth/register" | "/api/v1/setup") => Family::Register,
            ("POST", "/api/v1/auth/refresh") => Family::Refresh,
            ("POST", "/api/v1/attachments") => Family::Upload,
            ("POST", "/api/v1/rooms/{id}/call/token") => Family::MediaToken,
            ("GET", "/api/v1/gateway") => Family::GatewayConnect,
            // OPTIONS (CORS preflight) changes nothing either.
            ("GET" | "HEAD" | "OPTIONS", _) => Family::Read,
            _ => Family::Write,
        };
        Some(family)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_map_to_families() {
        let cases = [
            ("POST", "/api/v1/auth/login", Some(Family::Login)),
            ("GET", "/api/v1/auth/login", Some(Family::Read)),
            ("POST", "/api/v1/auth/register", Some(Family::Register)),
            ("POST", "/api/v1/setup", Some(Family::Register)),
            ("POST", "/api/v1/auth/refresh", Some(Family::Refresh)),
            ("POST", "/api/v1/auth/logout", Some(Family::Write)),
            ("POST", "/api/v1/attachments", Some(Family::Upload)),
            ("GET", "/api/v1/attachments/{id}", Some(Family::Read)),
            (
                "POST",
                "/api/v1/rooms/{id}/call/token",
                Some(Family::MediaToken),
            ),
            ("GET", "/api/v1/gateway", Some(Family::GatewayConnect)),
            ("HEAD", "/api/v1/rooms", Some(Family::Read)),
            ("DELETE", "/api/v1/rooms/{id}", Some(Family::Write)),
            ("PATCH", "/api/v1/me", Some(Family::Write)),
            ("GET", "/api/v1/no-such-thing", Some(Family::Read)),
            ("GET", "/health", None),
            ("GET", "/ready", None),
            ("GET", "/ca.crt", None),
            ("GET", "/metrics", None),
            ("POST", "/livekit/webhook", None),
            ("GET", "/apix", None),
            ("POST", "/hooks/{token}", Some(Family::Write)),
        ];
        for (method, route, want) in cases {
            let got = Family::classify(&method.parse().unwrap(), route);
            assert_eq!(got, want, "{method} {route}");
        }
        for (i, f) in Family::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }
}
