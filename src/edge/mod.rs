//! The edge: listening sockets, TLS, Host and client-IP policy, request limits, redirects.
//!
//! Everything a request meets before a handler. The edge knows nothing about the database
//! or chat; it hands requests carrying a [`policy::ClientIp`] to the surfaces built in `api`.
//! Its own answers are the plain-HTTP listener's: the trust page and `/ca.crt` ([`trust`]),
//! and the redirect to HTTPS ([`redirect`]).

mod dormant;
pub mod drain;
pub mod idle;
pub mod limits;
pub mod listener;
pub mod local_ca;
pub mod per_ip;
pub mod policy;
pub mod redirect;
pub mod tls;
pub mod trust;

use std::sync::Arc;

use crate::documented;
use axum::extract::FromRef;
use axum::routing::get;

use crate::http::Routes;

use self::policy::EdgePolicy;
use self::trust::CaCertificate;

/// `GET /ca.crt` on the HTTPS listener, in the API document.
pub fn ca_routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    CaCertificate: FromRef<S>,
{
    Routes::new().api(documented!(trust::certificate))
}

/// The plain-HTTP listener's own answers: `/` (the trust page, or the redirect without a local
/// CA) and `/ca.crt`. Every other path gets [`redirect::to_https`] as the surface's fallback.
pub fn plain_http_routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    CaCertificate: FromRef<S>,
    Arc<EdgePolicy>: FromRef<S>,
{
    Routes::new()
        .undocumented("/", get(trust::page))
        .undocumented("/ca.crt", get(trust::certificate))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http::{header, Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::config::Config;

    /// The parts the plain-HTTP routes take, without the rest of the daemon's state.
    #[derive(Clone)]
    struct PlainHttp {
        ca: CaCertificate,
        policy: Arc<EdgePolicy>,
    }

    impl FromRef<PlainHttp> for CaCertificate {
        fn from_ref(state: &PlainHttp) -> CaCertificate {
            state.ca.clone()
        }
    }

    impl FromRef<PlainHttp> for Arc<EdgePolicy> {
        fn from_ref(state: &PlainHttp) -> Arc<EdgePolicy> {
            state.policy.clone()
        }
    }

    fn plain_http(ca: CaCertificate) -> axum::Router {
        let state = PlainHttp {
            ca,
            policy: EdgePolicy::public(&Config::default(), 8443, &[]),
        };
        let (router, _) = plain_http_routes()
            .fallback(redirect::to_https)
            .finish(state);
        router
    }

    async fn get(router: axum::Router, path: &str) -> (StatusCode, http::HeaderMap, String) {
        let req = Request::get(path)
            .header(header::HOST, "localhost")
            .body(Body::empty())
            .unwrap();
        let resp = router.oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[tokio::test]
    async fn with_a_local_ca_plain_http_offers_its_certificate_and_the_trust_page() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let router = plain_http(CaCertificate::local(pem.to_owned()));

        let (status, headers, body) = get(router.clone(), "/ca.crt").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/x-pem-file");
        assert_eq!(body, pem);

        let (status, _, body) = get(router.clone(), "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("https://localhost:8443"), "{body}");

        let (status, headers, _) = get(router, "/rooms?x=1").await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(
            headers[header::LOCATION],
            "https://localhost:8443/rooms?x=1"
        );
    }

    #[tokio::test]
    async fn without_a_local_ca_there_is_no_certificate_and_slash_redirects() {
        let router = plain_http(CaCertificate::none());

        let (status, _, body) = get(router.clone(), "/ca.crt").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("no_local_ca"), "{body}");

        let (status, headers, _) = get(router, "/").await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(headers[header::LOCATION], "https://localhost:8443/");
    }
}
