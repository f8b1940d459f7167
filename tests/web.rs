//! The web client as a browser meets it: index.html on the client's paths with its policy,
//! hashed assets cached for good in their compressed variants, JSON 404s for anything unknown.

mod support;

use std::io::Read;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;
use support::*;

const EXPECTED_POLICY: [&str; 10] = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "media-src 'self' blob:",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "connect-src 'self' wss://localhost:",
];

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
        .to_str()
        .unwrap()
}

/// The first `/assets/…` path index.html names in a `src="…"` or `href="…"`.
fn first_asset(index: &str) -> String {
    let start = index.find("\"/assets/").expect("index.html names an asset") + 1;
    let len = index[start..].find('"').expect("the attribute closes");
    index[start..start + len].to_owned()
}

async fn assert_json_404(roost: &Roost, path: &str) {
    let resp = roost.get(path).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    assert_eq!(header(resp.headers(), "content-type"), "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_is_served_at_root_and_at_its_own_paths() {
    let roost = Setup::new().start();
    let resp = roost.get("/").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    assert!(headers.contains_key("etag"));
    assert!(headers.contains_key("strict-transport-security"));
    assert_eq!(header(&headers, "x-frame-options"), "DENY");
    let policy = header(&headers, "content-security-policy");
    for part in EXPECTED_POLICY {
        assert!(policy.contains(part), "{part} missing from {policy}");
    }
    let port = roost.addrs().https.port();
    assert!(
        policy.contains(&format!("wss://localhost:{port}")),
        "{policy}"
    );
    assert!(!policy.contains("unsafe"), "{policy}");
    let index = resp.text().await.unwrap();
    assert!(index.contains("<script type=\"module\""), "{index}");
    // No inline script: every script tag loads a file.
    assert!(!index.contains("<script>"), "{index}");

    for path in ["/rooms/3", "/invite/abc123", "/setup"] {
        let resp = roost.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(header(resp.headers(), "cache-control"), "no-cache");
        assert_eq!(resp.text().await.unwrap(), index, "{path}");
    }

    // HEAD: the same headers and length, no body (HTTP/1.1, where the length is on the wire).
    let h1 = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&roost.ca_pem()).unwrap())
        .http1_only()
        .build()
        .unwrap();
    let resp = h1.head(roost.https_url("/rooms/3")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(resp.headers(), "content-length"),
        index.len().to_string()
    );
    assert!(resp.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_immutable_with_etags_and_precompressed_variants() {
    let roost = Setup::new().start();
    let c = roost.client();
    let index = roost.get("/").await.text().await.unwrap();
    let asset = first_asset(&index);

    let plain = roost.get(&asset).await;
    assert_eq!(plain.status(), StatusCode::OK);
    let headers = plain.headers().clone();
    assert_eq!(
        header(&headers, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&headers, "vary"), "Accept-Encoding");
    assert!(!headers.contains_key("content-encoding"));
    assert!(
        header(&headers, "content-type").starts_with("text/javascript")
            || header(&headers, "content-type").starts_with("text/css"),
        "{headers:?}"
    );
    let etag = header(&headers, "etag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    let plain = plain.bytes().await.unwrap();

    // A client that has it gets 304 and no body.
    let resp = c
        .get(roost.https_url(&asset))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(resp.headers(), "etag"), etag);
    assert!(resp.bytes().await.unwrap().is_empty());

    // br preferred when both are accepted; each variant has its own tag and unpacks to the
    // same bytes.
    let br = c
        .get(roost.https_url(&asset))
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(header(br.headers(), "content-encoding"), "br");
    assert_eq!(header(br.headers(), "vary"), "Accept-Encoding");
    let br_etag = header(br.headers(), "etag").to_owned();
    assert_ne!(br_etag, etag);
    let packed = br.bytes().await.unwrap();
    assert!(packed.len() < plain.len());
    let mut unpacked = Vec::new();
    brotli::Decompressor::new(&packed[..], 4096)
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, plain);

    let gz = c
        .get(roost.https_url(&asset))
        .header("accept-encoding", "br;q=0, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(header(gz.headers(), "content-encoding"), "gzip");
    let gz_etag = header(gz.headers(), "etag").to_owned();
    let packed = gz.bytes().await.unwrap();
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, plain);
    assert!(![&etag, &br_etag].contains(&&gz_etag));

    // The requests are counted under the assets' template and the client paths' label.
    let text = roost.metrics().await;
    assert!(
        text.contains("route=\"/assets/{*file}\",status=\"200\""),
        "{text}"
    );
    assert!(
        text.contains("route=\"/{client_path}\",status=\"200\""),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_files_and_api_paths_are_json_404s_never_the_client() {
    let roost = Setup::new().start();
    for path in [
        "/assets/nope.js",
        "/assets/",
        "/x.png",
        "/nested/page.html",
        "/api/v1/nope",
        "/api",
        "/metrics",
        "/status",
    ] {
        assert_json_404(&roost, path).await;
    }
    // Only reads are the client's: a write to a client path is not found either.
    let resp = roost
        .client()
        .post(roost.https_url("/rooms/3"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
}
