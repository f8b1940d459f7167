//! The edge as a client meets it: TLS, redirects, Host checks, limits, health and metrics.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use support::*;

async fn json(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

fn assert_error_shape(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_health_speaks_h2_and_sends_hsts() {
    let roost = Setup::new().start();
    let resp = roost.get("/health").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.version(),
        reqwest::Version::HTTP_2,
        "ALPN should pick h2"
    );
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=63072000"
    );
    let body = json(resp).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));

    let h1 = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&roost.ca_pem()).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let resp = h1.get(roost.https_url("/health")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    assert!(resp.headers().contains_key("strict-transport-security"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_and_carry_hsts() {
    let roost = Setup::new().start();
    let c = roost.client();
    let resp = c
        .get(roost.https_url("/api/v1/no/such/thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.headers().contains_key("strict-transport-security"));
    assert_error_shape(&json(resp).await, "not_found");

    let resp = c.delete(roost.https_url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_error_shape(&json(resp).await, "method_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_redirects_except_health_and_ca() {
    let roost = Setup::new().start();
    let c = roost.client();
    let resp = c
        .post(roost.http_url("/api/v1/rooms?after=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    let expected = format!(
        "https://localhost:{}/api/v1/rooms?after=5",
        roost.addrs().https.port()
    );
    assert_eq!(resp.headers()["location"], expected.as_str());

    let resp = c.get(roost.http_url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = c.get(roost.http_url("/ca.crt")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        roost.ca_pem().as_slice()
    );

    // The same CA certificate over HTTPS.
    let resp = c.get(roost.https_url("/ca.crt")).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-pem-file");
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        roost.ca_pem().as_slice()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_hosts_get_421_on_every_listener() {
    let roost = Setup::new().start();
    // A client that reached this server under a name it does not serve (DNS rebinding, a
    // stale record): the certificate does not cover it, so this client skips verification.
    let https = roost.addrs().https;
    let c = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .resolve("evil.example", https)
        .build()
        .unwrap();
    let resp = c
        .get(format!("https://evil.example:{}/health", https.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(resp.headers().contains_key("strict-transport-security"));
    assert_error_shape(&json(resp).await, "unknown_host");

    let plain = reqwest::Client::new();
    for url in [roost.http_url("/anything"), roost.internal_url("/metrics")] {
        let resp = plain
            .get(url.clone())
            .header("host", "evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::MISDIRECTED_REQUEST, "{url}");
    }
    // The names a LAN client uses are accepted.
    let resp = roost.get("/health").await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_before_any_handler() {
    let roost = Setup::new().start();
    let body = vec![b'x'; 1024 * 1024 + 1];
    for path in ["/health", "/api/v1/anything"] {
        let resp = roost
            .client()
            .post(roost.https_url(path))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_error_shape(&json(resp).await, "payload_too_large");
    }
    // A refusal made after routing is counted under the route it was refused on.
    let text = roost.metrics().await;
    assert!(
        text.contains("roost_http_requests_total{route=\"/health\",status=\"413\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_only_on_the_internal_listener() {
    let roost = Setup::new().start();
    let resp = roost.get("/metrics").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Refused before its handler (no credentials): counted under the route it asked for.
    let resp = roost.get("/api/v1/rooms/42").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let resp = reqwest::get(roost.internal_url("/metrics")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    for name in [
        "roost_build_info",
        "roost_http_requests_total",
        "roost_http_request_duration_seconds",
        "roost_db_write_batch_size",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    // Each request is counted once answered: a second scrape sees the first one.
    let text = roost.metrics().await;
    assert!(
        text.contains("roost_http_requests_total{route=\"/metrics\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("route=\"unmatched\",status=\"404\""),
        "the public 404 is counted:\n{text}"
    );
    assert!(
        text.contains("roost_http_requests_total{route=\"/api/v1/rooms/{id}\",status=\"401\"} 1"),
        "the 401 is counted under its template:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_and_health_on_public_and_internal_listeners() {
    let roost = Setup::new().start();
    for url in [roost.https_url("/ready"), roost.internal_url("/ready")] {
        let resp = roost.client().get(url.clone()).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        let body = json(resp).await;
        assert_eq!(body["status"], "ready");
        assert_eq!(body["checks"]["database"]["status"], "ok");
        assert_eq!(body["checks"]["disk"]["status"], "ok");
        assert!(body["checks"]["disk"]["free_bytes"].as_u64().unwrap() > 0);
    }
    let resp = reqwest::get(roost.internal_url("/health")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_when_disk_is_below_the_floor() {
    // No filesystem here has an exabyte free.
    let setup = Setup::new().env("ROOST_STORAGE_MIN_FREE_DISK_MB", "1000000000000");
    let roost = setup.start();
    let resp = roost.get("/ready").await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(resp).await;
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["disk"]["status"], "fail");
    assert!(body["checks"]["disk"]["message"]
        .as_str()
        .unwrap()
        .contains("min_free_disk_mb"));
    assert_eq!(body["checks"]["database"]["status"], "ok");
    // Liveness is unaffected.
    let resp = roost.get("/health").await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_holds_new_clients_until_a_slot_frees() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let setup = Setup::new();
    setup.write_config("max_connections = 2");
    let roost = setup.start();
    let http = roost.addrs().http.unwrap();
    // Two idle connections take both permits.
    let mut a = tokio::net::TcpStream::connect(http).await.unwrap();
    let b = tokio::net::TcpStream::connect(http).await.unwrap();
    a.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = a.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // A third client connects (the kernel's backlog) but is not served while the cap holds...
    let mut c = tokio::net::TcpStream::connect(http).await.unwrap();
    c.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_millis(500), c.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the third connection was served past the cap"
    );
    // ...and is served, not dropped, as soon as one slot frees.
    drop(b);
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}
