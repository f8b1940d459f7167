//! The one place requests meet the rate limiter: [`check`], which `api::Surface`'s route
//! policy runs for every request on every router.
//!
//! It picks the family from the method and route template, reads the client IP (`ClientIp`,
//! resolved by the edge) and the [`Account`] (inserted by the auth middleware, which must run
//! before this layer), and either refuses with 429 or passes the request on. Limited
//! responses carry `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds);
//! refusals also carry `Retry-After` (whole seconds, at least 1). Handlers never call the
//! limiter themselves.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::limiter::{Decision, Limiter, Quota};
use super::{Account, Family};
use crate::edge::policy::ClientIp;
use crate::http::ApiError;

pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Charges the request to its family's buckets, given the matched route template (`None`: no route matched; the path is classified instead). `Ok` carries the
/// quota to report on the answer ([`add_quota_headers`]); `Err` is the 429 to send instead.
// The refusal is the response itself, built only on that rare path; boxing it would
// change nothing for the request that passes.
#[allow(clippy::result_large_err)]
pub fn check(
    limiter: &Limiter,
    req: &Request,
    route: Option<&str>,
) -> Result<Option<Quota>, Response> {
    let route = route.unwrap_or_else(|| req.uri().path());
    let Some(family) = Family::classify(req.method(), route) else {
        return Ok(None);
    };
    // `edge::policy::admit` runs before this layer on every router. Were it ever
    // missing, all such requests would share one bucket: limited, never unlimited.
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map(|c| c.0)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match limiter.check(family, ip, req.extensions().get::<Account>()) {
        Decision::Unlimited => Ok(None),
        Decision::Allowed(quota) => Ok(Some(quota)),
        Decision::Refused { quota, .. } => {
            let retry_after = whole_seconds(quota.wait);
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests; retry in {retry_after} s"),
            )
            .into_response();
            let headers = resp.headers_mut();
            set_quota_headers(headers, &quota);
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(retry_after));
            Err(resp)
        }
    }
}

/// Puts `RateLimit-*` on an answer the limiter let through.
pub fn add_quota_headers(resp: &mut Response, quota: Option<&Quota>) {
    if let Some(quota) = quota {
        set_quota_headers(resp.headers_mut(), quota);
    }
}

fn set_quota_headers(headers: &mut HeaderMap, quota: &Quota) {
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(quota.limit));
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(quota.remaining));
    headers.insert(
        RATELIMIT_RESET,
        HeaderValue::from(quota.wait.as_nanos().div_ceil(1_000_000_000) as u64),
    );
}

/// Seconds to wait, rounded up and never 0 (a client retrying "in 0 s" would be refused).
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_nanos().div_ceil(1_000_000_000) as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::rate_limits::{FamilyLimit, RateLimits};
    use crate::limits::alerts::AlertSink;
    use crate::limits::clock::FakeClock;
    use crate::metrics::Metrics;
    use axum::body::Body;
    use axum::extract::State;
    use axum::middleware::Next;
    use axum::routing::{get, post};
    use axum::Router;
    use std::sync::Arc;
    use tower::ServiceExt;

    /// The templates of the routes in [`app`].
    const ROUTES: [&str; 3] = ["/api/v1/rooms/{id}", "/api/v1/auth/login", "/health"];

    /// [`check`] and [`add_quota_headers`] as a layer, the way `api`'s surface applies them:
    /// with the template the path matches.
    pub async fn enforce(
        State(limiter): State<Arc<Limiter>>,
        req: Request,
        next: Next,
    ) -> Response {
        let mut templates = matchit::Router::new();
        for template in ROUTES {
            templates.insert(template, template).unwrap();
        }
        let route = templates.at(req.uri().path()).ok().map(|m| *m.value);
        match check(&limiter, &req, route) {
            Err(refused) => refused,
            Ok(quota) => {
                let mut resp = next.run(req).await;
                add_quota_headers(&mut resp, quota.as_ref());
                resp
            }
        }
    }

    /// A router shaped like `api`'s: the test layer stands in for the edge (ClientIp from
    /// `x-test-ip`) and for auth (Account from `x-test-account`), outside the limiter.
    fn app(limiter: Arc<Limiter>) -> Router {
        Router::new()
            .route(ROUTES[0], get(|| async { "room" }))
            .route(ROUTES[1], post(|| async { "welcome" }))
            .route(ROUTES[2], get(|| async { "ok" }))
            .fallback(|| async { ApiError::not_found() })
            .layer(axum::middleware::from_fn_with_state(limiter, enforce))
            .layer(axum::middleware::from_fn(
                |mut req: Request, next: Next| async move {
                    let ip = req.headers()["x-test-ip"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    req.extensions_mut().insert(ClientIp(ip));
                    if let Some(a) = req.headers().get("x-test-account") {
                        let a = Account(a.to_str().unwrap().to_owned());
                        req.extensions_mut().insert(a);
                    }
                    next.run(req).await
                },
            ))
    }

    fn limiter(clock: Arc<FakeClock>) -> Arc<Limiter> {
        let mut c = RateLimits::default();
        let tiny = FamilyLimit {
            burst: 2,
            per_minute: 600,
            per_ip_multiplier: 2,
            enabled: true,
        };
        c.read = tiny;
        c.login = tiny;
        Arc::new(Limiter::new(
            &c,
            clock,
            &Metrics::new(),
            AlertSink::disabled(),
        ))
    }

    async fn call(
        app: &Router,
        method: &str,
        path: &str,
        ip: &str,
        account: Option<&str>,
    ) -> Response {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-test-ip", ip);
        if let Some(a) = account {
            req = req.header("x-test-account", a);
        }
        app.clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn header(resp: &Response, name: &str) -> String {
        resp.headers()[name].to_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn refusals_are_429_with_headers_and_recover() {
        let clock = FakeClock::new();
        let app = app(limiter(clock.clone()));
        // Route templates, not paths, pick the bucket: two rooms share the read family.
        for (path, remaining) in [("/api/v1/rooms/1", "3"), ("/api/v1/rooms/2", "2")] {
            let resp = call(&app, "GET", path, "192.0.2.1", None).await;
            assert_eq!(resp.status(), 200);
            assert_eq!(header(&resp, "ratelimit-limit"), "4");
            assert_eq!(header(&resp, "ratelimit-remaining"), remaining);
        }
        // Unknown /api/ paths are limited too (read), and so would be a scanner's 404s.
        for _ in 0..2 {
            let resp = call(&app, "GET", "/api/v1/nope", "192.0.2.1", None).await;
            assert_eq!(resp.status(), 404);
        }
        let resp = call(&app, "GET", "/api/v1/rooms/1", "192.0.2.1", None).await;
        assert_eq!(resp.status(), 429);
        assert_eq!(header(&resp, "retry-after"), "1", "50 ms rounds up to 1 s");
        assert_eq!(header(&resp, "ratelimit-limit"), "4");
        assert_eq!(header(&resp, "ratelimit-remaining"), "0");
        assert_eq!(header(&resp, "ratelimit-reset"), "1");
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "rate_limited");
        // Not limited: health, and other families.
        for _ in 0..10 {
            let resp = call(&app, "GET", "/health", "192.0.2.1", None).await;
            assert_eq!(resp.status(), 200);
            assert!(resp.headers().get("ratelimit-limit").is_none());
        }
        let resp = call(&app, "POST", "/api/v1/auth/login", "192.0.2.1", None).await;
        assert_eq!(resp.status(), 200);
        clock.advance(Duration::from_millis(50));
        let resp = call(&app, "GET", "/api/v1/rooms/1", "192.0.2.1", None).await;
        assert_eq!(resp.status(), 200);
    }

    #[tokio::test]
    async fn authenticated_requests_are_limited_per_account_across_addresses() {
        let app = app(limiter(FakeClock::new()));
        for ip in ["192.0.2.1", "198.51.100.1"] {
            let resp = call(&app, "POST", "/api/v1/auth/login", ip, Some("u1")).await;
            assert_eq!(resp.status(), 200);
            assert_eq!(
                header(&resp, "ratelimit-limit"),
                "2",
                "account bucket binds"
            );
        }
        let resp = call(
            &app,
            "POST",
            "/api/v1/auth/login",
            "203.0.113.1",
            Some("u1"),
        )
        .await;
        assert_eq!(resp.status(), 429);
        assert_eq!(header(&resp, "ratelimit-limit"), "2");
        // Another account from the same address is fine; so is the anonymous household.
        let resp = call(
            &app,
            "POST",
            "/api/v1/auth/login",
            "203.0.113.1",
            Some("u2"),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let resp = call(&app, "POST", "/api/v1/auth/login", "192.0.2.1", None).await;
        assert_eq!(resp.status(), 200);
    }

    #[test]
    fn retry_after_is_whole_seconds_at_least_one() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(60)), 60);
    }
}
