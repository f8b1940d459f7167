//! The OpenAPI document a running Roost serves, and regression tests for what schemathesis
//! (scripts/robustness/schemathesis.sh) found against it.

use std::time::Duration;

use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_document_is_openapi_3_and_routes_every_documented_path() {
    let roost = Setup::new().start();
    // No credentials needed.
    let resp = roost.get("/api/v1/openapi.json").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let doc: Value = resp.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 32, "{:?}", paths.keys());

    // Every documented operation reaches a route of the real router: with placeholder ids it
    // may be refused (401, 404...), but never as an unknown path or a method the path lacks.
    let client = roost.client();
    for (path, item) in paths {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_none() {
                continue;
            }
            let concrete = path
                .split('/')
                .map(|s| if s.starts_with('{') { "1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let resp = client
                .request(
                    method.to_uppercase().parse().unwrap(),
                    roost.https_url(&concrete),
                )
                .send()
                .await
                .unwrap();
            // The gateway answers a GET over HTTP/2 (this client) with 405, as documented:
            // a WebSocket upgrade needs HTTP/1.1.
            if path != "/api/v1/gateway" {
                assert_ne!(
                    resp.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path}: not routed"
                );
            }
        }
    }
    // A handler's own 404 (no such room) is fine; a path no route matched is counted as
    // `route="unmatched"`, and every documented template must have been counted as itself.
    let metrics = roost.metrics().await;
    assert!(
        !metrics.contains("route=\"unmatched\""),
        "a documented path matched no route:\n{metrics}"
    );
    for path in paths.keys() {
        assert!(
            metrics.contains(&format!("route=\"{path}\"")),
            "{path} was not routed as its own template"
        );
    }
}

/// Reads one HTTP/1.1 response (head and a Content-Length body); its status and lowercase head.
async fn read_response<S: AsyncReadExt + Unpin>(stream: &mut S) -> (u16, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("a response within 10 s")
            .expect("the connection stays readable");
        assert_eq!(
            n,
            1,
            "the server closed the connection; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.unwrap();
    (status, head)
}

/// Finding: a request answered before its body was read (here a bad bearer token, refused by
/// the auth layer) lost its connection: the server stopped reading, closed the connection
/// without `Connection: close`, and a client still sending the body got a reset instead of the
/// 401, or found its kept-alive connection dead on the next request. The edge now reads and
/// discards a bounded rest of the body before answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_drains_the_body_and_keeps_the_connection() {
    let roost = Setup::new().start();
    let mut tls = tls_connect(&roost, None).await;
    let body = vec![b' '; 200_000];
    for round in 0..3 {
        let head = format!(
            "POST /api/v1/rooms HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer not-a-token\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).await.unwrap();
        tls.flush().await.unwrap();
        tls.write_all(&body)
            .await
            .unwrap_or_else(|e| panic!("round {round}: the server stopped reading the body: {e}"));
        tls.flush().await.unwrap();
        let (status, head) = read_response(&mut tls).await;
        assert_eq!(status, 401, "round {round}: {head}");
        assert!(!head.contains("connection: close"), "round {round}: {head}");
    }
}
