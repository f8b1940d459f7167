//! The signalling proxy: `/rtc`, `/rtc/*` and `/twirp/*` on the public HTTPS listener are
//! forwarded to LiveKit on `127.0.0.1:<http_port>` (or `livekit.external_url`'s host and port),
//! so clients need only Roost's address (plus the RTC ports for media).
//!
//! Upstream is plain HTTP/1.1, one connection per request. A WebSocket upgrade is passed
//! through as such (with its `Sec-WebSocket-*` headers): once LiveKit answers 101 the two
//! upgraded streams are spliced until either side closes, the connection idles out (the edge's
//! idle timeout, at least 60 s), or Roost shuts down. `X-Forwarded-For`/`X-Real-IP` carry the
//! client IP the edge resolved; whatever the client sent in them is dropped.
//!
//! Bounds: at most `max_proxied_connections` forwarded at once (then 503); a refused or dead
//! upstream is a JSON 502 `livekit_unavailable`. Paths are logged, query strings never (the
//! access token travels in one).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::edge::policy::ClientIp;
use crate::http::ApiError;

use super::{LiveKit, Status};

/// Time to open the loopback connection to LiveKit; longer means it is wedged.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Headers that describe one hop and are never forwarded as-is (RFC 9110 §7.6.1), plus the
/// forwarding headers this proxy sets itself.
const HOP_BY_HOP: [&str; 12] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
];

fn unavailable() -> Response {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "livekit_unavailable",
        "the call server is not answering; try again shortly",
    )
    .into_response()
}

fn wants_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

fn copy_end_to_end(from: &HeaderMap, to: &mut HeaderMap) {
    // Headers named in Connection are hop-by-hop too.
    let named: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    for (name, value) in from {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || named.iter().any(|x| x == n) {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

pub async fn forward(State(lk): State<Arc<LiveKit>>, mut req: Request) -> Response {
    if let Status::Disabled(why) = lk.status() {
        return ApiError::unavailable(
            "livekit_disabled",
            format!("calls are not available: {why}"),
        )
        .into_response();
    }
    // Bound: at the cap new signalling requests are refused; existing calls are unaffected.
    let Ok(permit) = lk.proxy_permits.clone().try_acquire_owned() else {
        return ApiError::unavailable(
            "too_many_call_connections",
            "too many call connections at once; try again shortly",
        )
        .into_response();
    };
    let upstream_authority = lk.config().livekit.upstream_authority();
    let client_ip = req
        .extensions()
        .get::<ClientIp>()
        .map(|c| c.0)
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let upgrade = wants_upgrade(req.headers());
    let path = req.uri().path().to_owned();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".into());

    let mut upstream = http::Request::builder()
        .method(req.method().clone())
        .uri(&path_and_query)
        .version(http::Version::HTTP_11);
    let headers = upstream.headers_mut().expect(
        "the builder has no error yet: method and origin-form URI come from a valid request",
    );
    copy_end_to_end(req.headers(), headers);
    headers.remove(header::HOST);
    let original_host = crate::edge::policy::request_host(&req);
    let Ok(upstream_host) = HeaderValue::from_str(&upstream_authority) else {
        tracing::warn!("livekit.external_url is not usable as a Host header");
        return unavailable();
    };
    headers.insert(header::HOST, upstream_host);
    let ip = HeaderValue::from_str(&client_ip.to_string()).expect("an IP is a valid header value");
    headers.insert(HeaderName::from_static("x-forwarded-for"), ip.clone());
    headers.insert(HeaderName::from_static("x-real-ip"), ip);
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("https"),
    );
    if let Some(host) = original_host.and_then(|h| HeaderValue::from_str(&h).ok()) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host);
    }
    let client_upgrade = if upgrade {
        let value = req.headers().get(header::UPGRADE).cloned();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(v) = value {
            headers.insert(header::UPGRADE, v);
        }
        Some(hyper::upgrade::on(&mut req))
    } else {
        None
    };
    let body = if upgrade {
        Body::empty()
    } else {
        req.into_body()
    };
    let upstream = match upstream.body(body) {
        Ok(r) => r,
        Err(_) => {
            return ApiError::bad_request("bad_request", "the request is malformed").into_response()
        }
    };

    let tcp = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect(upstream_authority.as_str()),
    )
    .await
    {
        Ok(Ok(s)) => s,
        _ => {
            tracing::debug!(%path, "livekit not reachable");
            return unavailable();
        }
    };
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = match hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(tcp))
        .await
    {
        Ok(x) => x,
        Err(_) => return unavailable(),
    };
    let shutdown = lk.shutdown.clone();
    // The upstream connection lives until its response (or upgraded stream) is done; it is
    // also cut on shutdown.
    tokio::spawn(async move {
        tokio::select! {
            _ = conn.with_upgrades() => {}
            _ = shutdown.cancelled() => {}
        }
    });
    let mut resp = match sender.send_request(upstream).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%path, error = %e, "livekit request failed");
            return unavailable();
        }
    };
    tracing::debug!(%path, status = resp.status().as_u16(), upgrade, "proxied to livekit");

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return unavailable(); // LiveKit never switches protocols unasked
        };
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        let mut out = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
        let headers = out.headers_mut().expect("a fresh builder has no error");
        copy_end_to_end(resp.headers(), headers);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(v) = resp.headers().get(header::UPGRADE) {
            headers.insert(header::UPGRADE, v.clone());
        }
        let metrics = lk.metrics.clone();
        let shutdown = lk.shutdown.clone();
        lk.proxy_sessions.spawn(async move {
            let _permit = permit;
            let (client, upstream) = match tokio::join!(client_upgrade, upstream_upgrade) {
                (Ok(c), Ok(u)) => (c, u),
                _ => return,
            };
            metrics.proxied_connections.inc();
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            tokio::select! {
                r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "call signalling connection ended");
                    }
                }
                // Detached from the HTTP connection, so shutdown must reach it directly.
                _ = shutdown.cancelled() => {}
            }
            metrics.proxied_connections.dec();
        });
        return out
            .body(Body::empty())
            .expect("status and copied headers are valid");
    }

    let (parts, body) = resp.into_parts();
    let mut out = Response::builder().status(parts.status);
    copy_end_to_end(
        &parts.headers,
        out.headers_mut().expect("a fresh builder has no error"),
    );
    // The permit is held until the response body is finished or dropped.
    let body = body.map_frame(move |frame| {
        let _held = &permit;
        frame
    });
    out.body(Body::new(body))
        .expect("status and copied headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_spoofed_forwarding_headers_are_dropped() {
        let mut from = HeaderMap::new();
        from.insert("connection", "keep-alive, x-secret-hop".parse().unwrap());
        from.insert("x-secret-hop", "1".parse().unwrap());
        from.insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
        from.insert("sec-websocket-key", "abc".parse().unwrap());
        from.insert("sec-websocket-protocol", "livekit".parse().unwrap());
        from.insert("authorization", "Bearer t".parse().unwrap());
        let mut to = HeaderMap::new();
        copy_end_to_end(&from, &mut to);
        assert!(to.get("x-secret-hop").is_none());
        assert!(to.get("x-forwarded-for").is_none());
        assert!(to.get("connection").is_none());
        assert_eq!(to["sec-websocket-key"], "abc");
        assert_eq!(to["sec-websocket-protocol"], "livekit");
        assert_eq!(to["authorization"], "Bearer t");
    }

    #[test]
    fn upgrade_needs_both_headers() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        assert!(!wants_upgrade(&h));
        h.insert("upgrade", "websocket".parse().unwrap());
        assert!(wants_upgrade(&h));
    }
}
