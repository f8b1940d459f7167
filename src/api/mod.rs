//! The HTTP surface: which routes exist on which listener, and the layers every request
//! passes through.
//!
//! Each capability module owns its handlers and offers them as `routes()` ([`Routes`]); this
//! module merges them into the three surfaces ([`router`], [`internal_router`],
//! [`redirect_router`]), the only places a surface is made, and holds the [`AppState`] whose
//! parts the handlers take (`api::state`). A module's own router tests (`oneshot`) mount its
//! `routes()` on a state of just the parts it needs. It knows nothing about sockets or TLS
//! (that is `edge`), and nothing but `daemon` uses it.

pub mod openapi;
mod state;
mod store_error;

pub use state::{AppState, Shared};

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::FutureExt;
use http::{header, HeaderValue, StatusCode};

use crate::config::Config;
use crate::http::{Routes, Templates};
use crate::{account, admin, auth, chat, edge, files, gateway, integrations, livekit, ops, web};

use crate::http::{error, ApiError};

/// Sent on every HTTPS response unless the handler set the header itself.
const SECURITY_HEADERS: [(header::HeaderName, &str); 4] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'",
    ),
];

/// Every route of the HTTPS surface, from the modules that own them. The OpenAPI document is
/// made from the same value ([`openapi::document`]), so it lists exactly these routes (but the
/// ones mounted `undocumented`: LiveKit's proxied paths and the client's assets).
pub(crate) fn public_routes() -> Routes<AppState> {
    Routes::new()
        .merge(ops::health_routes())
        .merge(edge::ca_routes())
        .api(openapi::route())
        .merge(auth::routes())
        .merge(account::routes())
        .merge(admin::routes())
        .merge(web::routes())
        .merge(chat::routes())
        .merge(integrations::routes())
        .merge(files::routes())
        .merge(gateway::routes())
        .merge(livekit::proxy_routes())
}

/// The public HTTPS surface.
pub fn router(state: AppState) -> Surface {
    let hsts = HeaderValue::from_str(&format!("max-age={}", state.config.tls.hsts_max_age_secs))
        .expect("a decimal number is a valid header value");
    let mut routes = public_routes();
    if !state.config.livekit.external_url.is_empty() {
        // An external LiveKit runs on other machines and cannot reach the loopback-only
        // internal listener; its webhooks are signed with its key and checked the same way.
        routes = routes.merge(livekit::webhook_routes());
    }
    // The client's pages and root files, else the JSON 404.
    let routes = routes.fallback(web::fallback);
    // HSTS and JSON errors wrap everything, including 421s; a write under /api/ gets 507
    // while disk is low (ops::vitals).
    surface(routes, &state, Some(hsts), true, true)
}

/// The loopback-only internal surface: monitoring, `/status` and LiveKit's webhooks.
pub fn internal_router(state: AppState) -> Surface {
    let routes = ops::health_routes()
        .merge(ops::monitoring_routes())
        .merge(livekit::webhook_routes())
        .fallback(not_found);
    surface(routes, &state, None, false, false)
}

/// Plain HTTP: `/ca.crt` and `/health` answered, `/` the trust page (`edge::trust`) while
/// there is a local CA, everything else sent to HTTPS with 308.
pub fn redirect_router(state: AppState) -> Surface {
    let routes = edge::plain_http_routes()
        .undocumented("/health", get(ops::health::health))
        .fallback(edge::redirect::to_https);
    surface(routes, &state, None, false, false)
}

/// Builds the [`Surface`] around `routes`: every request passes, in this order, security
/// headers (HTTPS), metrics + JSON errors + body drain, panic guard, deadline (408), client IP
/// and Host check (421), authentication, then for the route template its path matches: rate
/// limit (429), body cap (413), low disk (507, when `disk_guard`); then the router and the
/// handler. The limiter runs after authentication because it keys on the `limits::Account`
/// that `auth::authenticate` inserts. With `serves_client`, the web client's paths that no
/// template matches get their label from `web::label`.
///
/// Every step is a plain call in [`SurfaceParts::handle`]; the route template comes from
/// [`Templates`], not from the router. As axum layers (`middleware::from_fn`, or a
/// layer around each route), the steps cloned and boxed the services below them on every
/// request, which was most of the CPU of a small request.
fn surface(
    routes: Routes<AppState>,
    state: &AppState,
    hsts: Option<HeaderValue>,
    disk_guard: bool,
    serves_client: bool,
) -> Surface {
    let (router, templates) = routes.finish(state.clone());
    Surface(Arc::new(SurfaceParts {
        app: state.clone(),
        router,
        templates,
        disk_guard,
        serves_client,
        hsts,
    }))
}

/// One listener's whole HTTP surface, as a `tower::Service` the edge serves: the steps every
/// request passes before routing (see [`surface`]), then the routes. Cloning it (once
/// per request) is one reference count.
#[derive(Clone)]
pub struct Surface(Arc<SurfaceParts>);

struct SurfaceParts {
    app: AppState,
    router: Router,
    templates: Templates,
    /// Whether writes are refused while disk is low (507).
    disk_guard: bool,
    /// Whether the fallback serves the web client (`web::fallback`), whose paths are labelled
    /// by `web::label`.
    serves_client: bool,
    /// `Strict-Transport-Security` and [`SECURITY_HEADERS`] on every answer (HTTPS only).
    hsts: Option<HeaderValue>,
}

impl tower::Service<Request> for Surface {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    /// For router tests without sockets: the request counts as coming from loopback.
    fn call(&mut self, req: Request) -> Self::Future {
        let surface = self.0.clone();
        let loopback = IpAddr::from([127, 0, 0, 1]);
        Box::pin(async move { Ok(surface.handle(loopback, req).await) })
    }
}

/// How the listeners call a [`Surface`]: with the connection's peer. The request's future is
/// boxed: unboxed it costs as much in copies as the allocation saves (callgrind), and it would
/// make every open connection's state as large as a request in flight.
impl crate::edge::listener::Serve for Surface {
    fn serve(
        &self,
        peer: std::net::SocketAddr,
        req: Request,
    ) -> impl Future<Output = Response> + Send + 'static + use<> {
        let surface = self.0.clone();
        Box::pin(async move { surface.handle(peer.ip(), req).await })
    }
}

impl SurfaceParts {
    async fn handle(&self, peer: IpAddr, mut req: Request) -> Response {
        let started = Instant::now();
        // A body the handler leaves unread is drained before the answer (edge::drain).
        let unread = crate::edge::drain::track(&mut req, self.app.edge.max_body_bytes);
        // The template the path matches labels the answer, whichever step gave it.
        let path = req.uri().path();
        let route = self.templates.matching(path).or_else(|| {
            self.serves_client
                .then(|| crate::web::label(path))
                .flatten()
        });
        let resp = or_500_on_panic(self.admit_and_route(peer, req, route, started)).await;
        // Every error leaves in the JSON shape, whichever step answered.
        let mut resp = unread.finish(error::ensure_json(resp)).await;
        set_content_length(&mut resp);
        self.app
            .metrics
            .record_request(route, resp.status(), started.elapsed());
        if let Some(hsts) = &self.hsts {
            security_headers(&mut resp, hsts);
        }
        resp
    }

    /// Deadline, client IP and Host, credentials, the route policy, then the router.
    async fn admit_and_route(
        &self,
        peer: IpAddr,
        mut req: Request,
        route: Option<&'static str>,
        started: Instant,
    ) -> Response {
        let deadline = request_deadline(&self.app.config, &req);
        let steps = async {
            if let Err(refused) = crate::edge::policy::admit(&self.app.edge, peer, &mut req) {
                return refused.into_response();
            }
            // Only requests that carry credentials wait on the database; the others skip the
            // (boxed) credential check, so every request's future stays small.
            let authenticated = if auth::carries_credentials(&req) {
                Box::pin(auth::authenticate(&self.app.auth, &self.app.store, req)).await
            } else {
                Ok(req)
            };
            let req = match authenticated {
                Ok(req) => req,
                Err(refused) => return refused,
            };
            let mut req = req;
            let quota = match self.admit_to_route(&mut req, route) {
                Ok(quota) => quota,
                Err(refused) => return refused,
            };
            // A router is always ready (axum), so it is called without `oneshot`'s readiness
            // state machine. Its panics are caught here too, so that the 500 still carries
            // the quota.
            let answer = tower::Service::call(&mut self.router.clone(), req)
                .map(|r| r.unwrap_or_else(|never| match never {}));
            let mut resp = or_500_on_panic(answer).await;
            crate::limits::layer::add_quota_headers(&mut resp, quota.as_ref());
            resp
        };
        let mut steps = std::pin::pin!(steps);
        // Most answers are ready on the first poll (nothing to wait for): they need no timer,
        // whose setting up and tearing down was a visible part of a small request's cost.
        let first = std::future::poll_fn(|cx| Poll::Ready(steps.as_mut().poll(cx))).await;
        if let Poll::Ready(resp) = first {
            return resp;
        }
        let deadline = tokio::time::Instant::from_std(started) + deadline;
        match tokio::time::timeout_at(deadline, steps).await {
            Ok(resp) => resp,
            Err(_) => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request took too long",
            )
            .into_response(),
        }
    }
}

/// `answer`'s response, or a 500 if it panics. The panic message goes to the log (by the
/// panic hook); the client gets the JSON error shape on the way out.
async fn or_500_on_panic(answer: impl Future<Output = Response>) -> Response {
    std::panic::AssertUnwindSafe(answer)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!("a request handler panicked");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
}

impl SurfaceParts {
    /// The route policy: rate limit, body cap, low disk (when `disk_guard`), by the route
    /// template. The quota `req` was charged to (its body is now capped), or the refusal.
    // The refusal is the response itself, built only on that rare path; boxing it would
    // change nothing for the request that passes.
    #[allow(clippy::result_large_err)]
    fn admit_to_route(
        &self,
        req: &mut Request,
        route: Option<&str>,
    ) -> Result<Option<crate::limits::Quota>, Response> {
        let app = &self.app;
        let quota = crate::limits::layer::check(&app.limiter, req, route)?;
        // A request charged to the limiter reports its quota whatever the answer.
        let with_quota = |mut refused: Response| {
            crate::limits::layer::add_quota_headers(&mut refused, quota.as_ref());
            refused
        };
        crate::edge::limits::limit_body(&app.edge, req, route).map_err(with_quota)?;
        if self.disk_guard {
            if let Some(refused) = crate::ops::vitals::refuse_when_disk_low(&app.vitals, req) {
                return Err(with_quota(refused));
            }
        }
        Ok(quota)
    }
}

/// Gives a response of known size its `Content-Length`. axum does this for what the router
/// answers; answers made before routing (421, 401, 408...) would otherwise go out chunked, and
/// an HTTP/1.1 client that reads by length would not find their end.
fn set_content_length(resp: &mut Response) {
    use http_body::Body as _;
    let status = resp.status();
    // These never carry a body, nor a length (RFC 9110, 8.6).
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return;
    }
    let headers = resp.headers();
    if headers.contains_key(header::CONTENT_LENGTH)
        || headers.contains_key(header::TRANSFER_ENCODING)
    {
        return;
    }
    if let Some(len) = resp.body().size_hint().exact() {
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
}

/// HSTS on every HTTPS response, and [`SECURITY_HEADERS`] unless the handler set them: the
/// API answers JSON to programs; nothing it serves is meant to be framed, sniffed or to run
/// scripts. A handler that serves other content (attachments) sets its own values.
fn security_headers(resp: &mut Response, hsts: &HeaderValue) {
    // Answers made by `json_response` have room for these; others grow their map once.
    let headers = resp.headers_mut();
    headers.reserve(SECURITY_HEADERS.len() + 1);
    headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    for (name, value) in SECURITY_HEADERS {
        // One lookup for "unless set" and the insert.
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
}

/// Unknown paths on the HTTPS and internal listeners.
async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// How long a request may take before it is answered 408: `limits.request_timeout_secs`,
/// except for uploads, which get `[attachments] upload_timeout_secs`: a 25 MiB file over a
/// weak Wi-Fi link takes minutes, and the upload handler reads the whole body before it answers.
fn request_deadline(config: &Config, req: &Request) -> Duration {
    // Before routing: the upload route's template is a plain path.
    let is_upload =
        req.method() == http::Method::POST && req.uri().path() == crate::edge::limits::UPLOAD_ROUTE;
    if is_upload {
        Duration::from_secs(config.attachments.upload_timeout_secs)
    } else {
        config.request_timeout()
    }
}
