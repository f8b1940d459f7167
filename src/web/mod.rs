//! The browser client, served from the binary: the files `build.rs` built from `web/` and
//! embedded, each with its content type, strong ETag and pre-compressed gzip/brotli variants.
//!
//! - `/assets/…` (content-hashed names): `Cache-Control: public, max-age=31536000, immutable`.
//! - Root files Vite copied from `web/public/` (the built-in icon), the service worker `/sw.js`
//!   (written by `web/vite.config.ts`; at the root, so its scope is the whole client without a
//!   `Service-Worker-Allowed` header) and `index.html` itself: `no-cache` (revalidated with the
//!   ETag each time, so a new build's worker is found at the next load). The web app manifest is
//!   made from the branding on each request.
//! - `/` and every client path (a GET outside the server's own prefixes whose last segment has
//!   no extension): `index.html`, so a reload on `/rooms/3` opens the client there.
//! - Anything else, including an unknown asset, `/x.png` or an unknown `/api/` path: the JSON
//!   404, never `index.html` (a script tag pointing at a missing file must fail, not run HTML).
//!
//! Every answer carries the client's Content-Security-Policy (the service worker is governed by
//! its own script's header). Nothing here compresses, reads a file or touches the store: a
//! request picks bytes that were made at build time.

use std::sync::Arc;

use crate::documented;
use axum::body::{Body, Bytes};
use axum::extract::{FromRef, Request};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};

use crate::auth::AuthState;
use crate::http::{ApiError, Routes};
use crate::store::Store;

pub mod branding;
pub mod icon;

/// One representation of an embedded file.
pub struct Variant {
    /// Strong, quoted, different for each encoding of the same file.
    pub etag: &'static str,
    pub bytes: &'static [u8],
}

/// A file of the built client (`build.rs` writes the table).
pub struct EmbeddedFile {
    /// The URL path it is served at: `/index.html`, `/assets/index-1a2b.js`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub identity: Variant,
    pub gzip: Option<Variant>,
    pub br: Option<Variant>,
}

mod embedded {
    use super::{EmbeddedFile, Variant};
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

/// The route template of the hashed files.
pub const ASSETS_ROUTE: &str = "/assets/{*file}";
/// The metrics and rate-limit label of the client's own paths, which no route template
/// matches (they are answered by the router's fallback).
pub const CLIENT_PATH_LABEL: &str = "/{client_path}";

const INDEX: &str = "/index.html";

/// Prefixes of what the server itself answers: a path under one of them is never a client path.
/// The internal listener's own paths are among them, so asking the public one for them is a
/// plain 404 rather than the client.
const SERVER_PREFIXES: [&str; 11] = [
    "/api",
    "/assets",
    "/rtc",
    "/twirp",
    "/health",
    "/ready",
    "/ca.crt",
    "/metrics",
    "/status",
    "/livekit",
    "/branding",
];

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

fn find(path: &str) -> Option<&'static EmbeddedFile> {
    let files = embedded::FILES;
    files
        .binary_search_by(|f| f.path.cmp(path))
        .ok()
        .map(|i| &files[i])
}

/// Whether `path` is one of the client's own pages (answered with `index.html`).
pub fn is_client_path(path: &str) -> bool {
    let under_server_prefix = SERVER_PREFIXES.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    });
    let last_segment = path.rsplit('/').next().unwrap_or("");
    !under_server_prefix && !last_segment.contains('.')
}

/// The label the surface gives a request no route template matched: the client's paths share
/// one; an embedded root file has its own path (a fixed, small set); anything else is
/// unmatched.
pub fn label(path: &str) -> Option<&'static str> {
    if is_client_path(path) {
        return Some(CLIENT_PATH_LABEL);
    }
    find(path)
        .filter(|f| !f.path.starts_with("/assets/"))
        .map(|f| f.path)
}

/// `GET /assets/{*file}`: a hashed file, cached for a year.
pub async fn asset(req: Request) -> Response {
    match find(req.uri().path()) {
        Some(file) => respond(file, &req, IMMUTABLE),
        None => ApiError::not_found().into_response(),
    }
}

/// What answers the paths no route matched on the HTTPS listener: the client's pages, the
/// root files from `web/public/`, or the JSON 404.
pub async fn fallback(req: Request) -> Response {
    let path = req.uri().path();
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return ApiError::not_found().into_response();
    }
    let file = if is_client_path(path) {
        find(INDEX)
    } else {
        find(path).filter(|f| !f.path.starts_with("/assets/"))
    };
    match file {
        Some(file) => respond(file, &req, NO_CACHE),
        None => ApiError::not_found().into_response(),
    }
}

/// The answer for `file`: the variant the client accepts, or 304 when its ETag matches.
fn respond(file: &'static EmbeddedFile, req: &Request, cache_control: HeaderValue) -> Response {
    let headers = req.headers();
    let accepted = AcceptEncoding::parse(headers);
    let (variant, encoding) = match (&file.br, &file.gzip) {
        (Some(br), _) if accepted.br => (br, Some("br")),
        (_, Some(gzip)) if accepted.gzip => (gzip, Some("gzip")),
        _ => (&file.identity, None),
    };
    let mut resp = Response::new(Body::empty());
    let out = resp.headers_mut();
    out.insert(header::ETAG, HeaderValue::from_static(variant.etag));
    out.insert(header::CACHE_CONTROL, cache_control);
    if file.gzip.is_some() || file.br.is_some() {
        out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        client_policy(request_authority(req).as_deref()),
    );
    if none_match(headers, variant.etag) {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return resp;
    }
    let out = resp.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    if let Some(encoding) = encoding {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    // HEAD: the length of what GET would send, and no body.
    out.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(variant.bytes.len()),
    );
    if req.method() != Method::HEAD {
        *resp.body_mut() = Body::from(Bytes::from_static(variant.bytes));
    }
    resp
}

/// Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 13.1.2) or is `*`.
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// Which encodings the client takes; `q=0` refuses one.
#[derive(Debug, Default, PartialEq)]
struct AcceptEncoding {
    br: bool,
    gzip: bool,
}

impl AcceptEncoding {
    fn parse(headers: &HeaderMap) -> AcceptEncoding {
        let mut accepted = AcceptEncoding::default();
        let items = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','));
        for item in items {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            let wanted = !refused;
            match coding.as_str() {
                "br" => accepted.br = wanted,
                "gzip" | "x-gzip" => accepted.gzip = wanted,
                "*" => {
                    accepted.br = wanted;
                    accepted.gzip = wanted;
                }
                _ => {}
            }
        }
        accepted
    }
}

/// The request's own authority for `connect-src wss://…`, from the URI (`:authority`,
/// HTTP/2) or `Host` (HTTP/1.1). `edge::policy::admit` has already checked its host against
/// the allowlist; only a plain host name or address and a port reach the header.
fn request_authority(req: &Request) -> Option<String> {
    match req.uri().authority() {
        Some(a) => authority_for_policy(a.as_str()),
        None => authority_for_policy(req.headers().get(header::HOST)?.to_str().ok()?),
    }
}

fn authority_for_policy(raw: &str) -> Option<String> {
    let authority: http::uri::Authority = raw.parse().ok()?;
    let host = authority.host();
    let host_ok = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !host_ok {
        return None;
    }
    Some(match authority.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The client's Content-Security-Policy: its own scripts and styles only (no inline script),
/// images and media also from `blob:`/`data:` (previews before upload), connections to the
/// origin and its WebSocket gateway, and its own service worker (`/sw.js`: named, rather than
/// left to the `script-src` fallback, so narrowing that one cannot silently drop the offline
/// shell).
fn client_policy(authority: Option<&str>) -> HeaderValue {
    let wss = authority.map(|a| format!(" wss://{a}")).unwrap_or_default();
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
         media-src 'self' blob:; connect-src 'self'{wss}; worker-src 'self'; object-src 'none'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    );
    HeaderValue::from_str(&policy).expect("the policy is built from checked ASCII")
}

/// Branding, the manifest and the icon; the client's assets (not part of the API document).
/// The client's pages are the HTTPS surface's fallback ([`fallback`]).
pub fn routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
{
    Routes::new()
        .api(documented!(branding::get, branding::update))
        .api(documented!(icon::upload, icon::remove))
        .api(documented!(icon::serve))
        .api(documented!(branding::manifest))
        .undocumented(ASSETS_ROUTE, axum::routing::get(asset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_paths_are_outside_the_servers_prefixes_and_have_no_extension() {
        for path in [
            "/",
            "/rooms/3",
            "/invite/abc",
            "/setup",
            "/apix",
            "/healthy",
        ] {
            assert!(is_client_path(path), "{path}");
        }
        for path in [
            "/api",
            "/api/v1/nope",
            "/assets/x",
            "/rtc",
            "/twirp/x",
            "/health",
            "/ready",
            "/ca.crt",
            "/metrics",
            "/status",
            "/x.png",
            "/manifest.webmanifest",
            "/branding",
            "/branding/icon",
            "/rooms/a.b",
        ] {
            assert!(!is_client_path(path), "{path}");
        }
    }

    #[test]
    fn accept_encoding_honours_q_zero_and_the_wildcard() {
        let parse = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            AcceptEncoding::parse(&h)
        };
        assert_eq!(
            parse("gzip, deflate, br"),
            AcceptEncoding {
                br: true,
                gzip: true
            }
        );
        assert_eq!(
            parse("br;q=0, gzip;q=0.5"),
            AcceptEncoding {
                br: false,
                gzip: true
            }
        );
        assert_eq!(
            parse("*"),
            AcceptEncoding {
                br: true,
                gzip: true
            }
        );
        assert_eq!(parse("identity"), AcceptEncoding::default());
        assert_eq!(
            AcceptEncoding::parse(&HeaderMap::new()),
            AcceptEncoding::default()
        );
    }

    #[test]
    fn the_policy_names_only_a_checked_authority() {
        assert_eq!(
            authority_for_policy("roost.local:8443").as_deref(),
            Some("roost.local:8443")
        );
        assert_eq!(
            authority_for_policy("[::1]:443").as_deref(),
            Some("[::1]:443")
        );
        assert_eq!(authority_for_policy("a;b"), None);
        let policy = client_policy(Some("roost.local"));
        let policy = policy.to_str().unwrap();
        assert!(
            policy.contains("connect-src 'self' wss://roost.local;"),
            "{policy}"
        );
        assert!(policy.contains("script-src 'self';"), "{policy}");
    }

    #[test]
    fn the_table_is_sorted_and_holds_index_html() {
        let files = embedded::FILES;
        assert!(files.windows(2).all(|w| w[0].path < w[1].path));
        assert!(find(INDEX).is_some());
    }
}
