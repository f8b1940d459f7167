//! The edge as a client meets it: TLS, redirects, Host checks, limits, health and metrics.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn json(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
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
    assert!(resp.headers().contains_key("strict-transport-security"));
    assert_error(&answer(resp).await, StatusCode::NOT_FOUND, "not_found");

    let resp = c.delete(roost.https_url("/health")).send().await.unwrap();
    assert_error(
        &answer(resp).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
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
    assert!(resp.headers().contains_key("strict-transport-security"));
    assert_error(
        &answer(resp).await,
        StatusCode::MISDIRECTED_REQUEST,
        "unknown_host",
    );

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
async fn two_host_headers_get_400_on_every_listener() {
    let roost = Setup::new().start();
    // The first Host is one this server answers for; the second is what a proxy in front
    // might have acted on instead.
    let request = "GET /health HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    let over_tls = raw_http1(tls_connect(&roost, None).await, request).await;
    let http = tokio::net::TcpStream::connect(roost.addrs().http.unwrap());
    let plain = raw_http1(http.await.unwrap(), request).await;
    let internal = tokio::net::TcpStream::connect(roost.addrs().internal);
    let internal = raw_http1(internal.await.unwrap(), request).await;
    for (listener, (status, body)) in [("https", over_tls), ("http", plain), ("internal", internal)]
    {
        let body: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{listener}: {e}: {body}"));
        let status = StatusCode::from_u16(status).unwrap();
        assert_error_for(
            listener,
            &(status, body),
            StatusCode::BAD_REQUEST,
            "duplicate_host",
        );
    }
    // One Host is still answered.
    let one = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let (status, body) = raw_http1(tls_connect(&roost, None).await, one).await;
    assert_eq!(status, 200, "{body}");
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
        assert_error_for(
            path,
            &answer(resp).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );
    }
    // A refusal made after routing is counted under the route it was refused on.
    let text = roost.metrics().await;
    assert!(
        text.contains("roost_http_requests_total{route=\"/health\",status=\"413\"} 1"),
        "{text}"
    );
}

/// A JSON body of exactly `len` bytes.
fn json_body_of(len: usize) -> Vec<u8> {
    let mut body = br#"{"name":""#.to_vec();
    body.resize(len - 2, b'x');
    body.extend_from_slice(br#""}"#);
    body
}

/// The body cap (1 MiB by default) plus the 1 MiB that is drained beyond it.
const CAP_PLUS_DRAIN: usize = 2 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_2_mib_body_gets_its_413_over_http2() {
    let roost = Setup::new().start();
    let body = json_body_of(CAP_PLUS_DRAIN);
    // reqwest over HTTP/2 (ALPN), twice on the same connection: the refusal leaves it usable.
    let c = roost.client();
    for _ in 0..2 {
        let resp = c
            .post(roost.https_url("/api/v1/rooms"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.version(), reqwest::Version::HTTP_2);
        assert_error(
            &answer(resp).await,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );
    }
    // curl, which reported the stream's reset instead (exit 92, status 000).
    let file = roost.setup.dir.path().join("big.json");
    std::fs::write(&file, &body).unwrap();
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let (code, status, body) = curl_post(&roost, flag, &file, "/api/v1/rooms");
        assert_eq!(
            (code, status.as_str()),
            (0, &*format!("413 {version}")),
            "{flag}: {body}"
        );
        let body: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{flag}: {e}: {body}"));
        let refused = (StatusCode::PAYLOAD_TOO_LARGE, body);
        assert_error_for(
            flag,
            &refused,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        );
    }
}

/// POSTs `file` as JSON with the curl on this machine: (exit code, "<status> <HTTP version>",
/// body).
fn curl_post(
    roost: &Roost,
    flag: &str,
    file: &std::path::Path,
    path: &str,
) -> (i32, String, String) {
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            flag,
            "--max-time",
            "30",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .arg("--cacert")
        .arg(roost.setup.data_dir().join("tls/ca.crt"))
        .args(["-H", "content-type: application/json", "--data-binary"])
        .arg(format!("@{}", file.display()))
        .arg(roost.https_url(path))
        .output()
        .expect("curl is installed");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    (code, status.to_owned(), format!("{body}{stderr}"))
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

/// A Pi restarting with its users' phones online: they all reconnect at once, each from its
/// own address. Every one of them must get a TLS session and an answer; none may be reset or
/// time out (the listen backlog, the per-address cap and the handshakes in flight all had a
/// say in that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_clients_from_many_addresses_is_served() {
    const ADDRESSES: u8 = 250; // 127.0.0.2 to 127.0.0.251
    const PER_ADDRESS: usize = 2;
    let roost = Arc::new(Setup::new().start());
    let start = Arc::new(tokio::sync::Barrier::new(
        usize::from(ADDRESSES) * PER_ADDRESS,
    ));
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..usize::from(ADDRESSES) * PER_ADDRESS {
        let (roost, start) = (roost.clone(), start.clone());
        let from = std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(ADDRESSES)) as u8);
        clients.spawn(async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind((from, 0).into()).unwrap();
            start.wait().await;
            let request = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            let answer = async {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut tls = tls_connect_with(&roost, socket).await?;
                tls.write_all(request.as_bytes()).await?;
                let mut answer = Vec::new();
                // The server may close without close_notify after `Connection: close`.
                let _ = tls.read_to_end(&mut answer).await;
                std::io::Result::Ok(String::from_utf8_lossy(&answer).into_owned())
            };
            match tokio::time::timeout(Duration::from_secs(60), answer).await {
                Ok(Ok(answer)) if answer.starts_with("HTTP/1.1 200") => Ok(()),
                Ok(Ok(answer)) => Err(format!("{from}: answered {answer:?}")),
                Ok(Err(e)) => Err(format!("{from}: {e}")),
                Err(_) => Err(format!("{from}: no answer within 60 s")),
            }
        });
    }
    let mut failures = Vec::new();
    while let Some(result) = clients.join_next().await {
        if let Err(failure) = result.unwrap() {
            failures.push(failure);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} clients failed, e.g. {:?}",
        failures.len(),
        usize::from(ADDRESSES) * PER_ADDRESS,
        &failures[..failures.len().min(5)]
    );
}
