//! The plain-HTTP listener's answer to everything but `/health`, `/ca.crt` and `/` (the trust
//! page, `edge::trust`, while there is a local CA): a 308 to the
//! same path on the HTTPS origin (308 keeps the method and body, unlike 301/302).
//!
//! The target host is the request's own (already checked against the allowlist), so a
//! redirect can never send a client to a host of the attacker's choosing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};

use super::policy::{request_host, EdgePolicy};
use crate::http::ApiError;

/// Every other path on plain HTTP: the 308 to the same path on HTTPS.
pub async fn to_https(State(policy): State<Arc<EdgePolicy>>, req: Request) -> Response {
    let Some(host) = request_host(&req) else {
        return ApiError::bad_request("missing_host", "the request has no Host").into_response();
    };
    let location = https_location(&policy, &host, req.uri());
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, location)],
    )
        .into_response()
}

fn https_location(policy: &EdgePolicy, host: &str, uri: &http::Uri) -> String {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    format!("{}{path}", https_origin(policy, host))
}

/// `https://host[:port]` for a host the allowlist accepted (IPv6 in brackets).
pub fn https_origin(policy: &EdgePolicy, host: &str) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let port = match policy.https_port {
        443 => String::new(),
        p => format!(":{p}"),
    };
    format!("https://{host}{port}")
}
