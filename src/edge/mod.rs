//! The edge: listening sockets, TLS, Host and client-IP policy, request limits, redirects.
//!
//! Everything a request meets before a handler. The edge knows nothing about the database
//! or chat; it hands requests carrying a [`policy::ClientIp`] to the routers built in `api`.

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

use axum::extract::FromRef;
use axum::routing::get;
use utoipa_axum::routes;

use crate::http::Routes;

use self::policy::EdgePolicy;
use self::trust::CaCertificate;

/// `GET /ca.crt` on the HTTPS listener, in the API document.
pub fn ca_routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    CaCertificate: FromRef<S>,
{
    Routes::new().api(routes!(trust::certificate))
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
