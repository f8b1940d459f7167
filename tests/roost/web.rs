//! The web client as a browser meets it: index.html on the client's paths with its policy,
//! hashed assets cached for good in their compressed variants, JSON 404s for anything unknown.

use std::io::Read;

use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;

const EXPECTED_POLICY: [&str; 11] = [
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
    "worker-src 'self'",
];

/// The first `/assets/…` path index.html names in a `src="…"` or `href="…"`.
fn first_asset(index: &str) -> String {
    let start = index.find("\"/assets/").expect("index.html names an asset") + 1;
    let len = index[start..].find('"').expect("the attribute closes");
    index[start..start + len].to_owned()
}

async fn assert_json_404(roost: &Roost, path: &str) {
    let resp = roost.get(path).await;
    assert_eq!(header(resp.headers(), "content-type"), "application/json");
    assert_error_for(
        path,
        &answer(resp).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
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

    // The installable app: the manifest (made from the branding) and its built-in icon, no-cache.
    assert!(
        index.contains("<link rel=\"manifest\" href=\"/manifest.webmanifest\""),
        "{index}"
    );
    let resp = roost.get("/manifest.webmanifest").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(resp.headers(), "content-type"),
        "application/manifest+json"
    );
    assert_eq!(header(resp.headers(), "cache-control"), "no-cache");
    let manifest: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(manifest["start_url"], "/");
    assert_eq!(manifest["icons"][0]["src"], "/icon.svg");
    let resp = roost.get("/icon.svg").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(resp.headers(), "content-type"), "image/svg+xml");

    // The offline shell's service worker: at the root (its scope is the whole client), as
    // JavaScript, revalidated at every load so a new build is found, naming this build's files.
    let resp = roost.get("/sw.js").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(resp.headers(), "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header(resp.headers(), "cache-control"), "no-cache");
    assert!(!resp.headers().contains_key("service-worker-allowed"));
    let worker = resp.text().await.unwrap();
    assert!(worker.contains(&first_asset(&index)), "{worker}");
    assert!(!worker.contains("__ROOST_"), "{worker}");

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
    assert_error(&answer(resp).await, StatusCode::NOT_FOUND, "not_found");
}

/// A request as the web client sends it: `X-Roost-Client: web`, this server's `Origin` and, if
/// given, the refresh cookie.
fn from_browser(api: &Api, path: &str, cookie: Option<&str>) -> reqwest::RequestBuilder {
    let port = api.roost.addrs().https.port();
    from_page(api, path, cookie, &format!("https://localhost:{port}"))
}

/// The same from a page whose origin is `origin`.
fn from_page(api: &Api, path: &str, cookie: Option<&str>, origin: &str) -> reqwest::RequestBuilder {
    let mut req = api
        .http
        .post(api.roost.https_url(path))
        .header("x-roost-client", "web")
        .header("origin", origin);
    if let Some(token) = cookie {
        req = req.header("cookie", format!("theme=dark; roost_refresh={token}"));
    }
    req
}

/// The `roost_refresh` value a response sets, after checking the cookie's attributes.
fn set_refresh_cookie(resp: &reqwest::Response, max_age: i64) -> String {
    let cookie = header(resp.headers(), "set-cookie");
    let token = cookie
        .strip_prefix("roost_refresh=")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("not the refresh cookie: {cookie}"));
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/v1/auth"] {
        assert!(
            cookie.split("; ").any(|a| a == attribute),
            "{attribute} missing: {cookie}"
        );
    }
    let cookie_max_age = cookie
        .split("; ")
        .find_map(|a| a.strip_prefix("Max-Age="))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("no Max-Age: {cookie}"));
    assert_lifetime(cookie_max_age, max_age, cookie);
    token.to_owned()
}

/// Asserts that `left`, seconds of a token's life the server reported, is exactly its full
/// `lifetime`: the daemon counts it from the instant it stored the session, however long the
/// answer took after that.
#[track_caller]
fn assert_lifetime(left: i64, lifetime: i64, context: impl std::fmt::Display) {
    assert_eq!(left, lifetime, "{left} s left, not {lifetime}: {context}");
}

fn assert_cleared(resp: &reqwest::Response) {
    let cookie = header(resp.headers(), "set-cookie");
    assert!(
        cookie.starts_with("roost_refresh=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_session_keeps_its_refresh_token_in_a_guarded_cookie() {
    let mut api = Api::start(Setup::new());
    let (status, body) = api.get("/api/v1/setup", None).await;
    assert_eq!(
        (status, &body),
        (StatusCode::OK, &serde_json::json!({"needed": true}))
    );

    // The first admin from the browser: the refresh token goes into the cookie only.
    let code = api.setup_code();
    let resp = from_browser(&api, "/api/v1/setup", None)
        .json(&serde_json::json!({"setup_code": code, "username": "root", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(header(resp.headers(), "cache-control"), "no-store");
    set_refresh_cookie(&resp, 30 * 86_400);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    let (status, body) = api.get("/api/v1/setup", None).await;
    assert_eq!(
        (status, &body),
        (StatusCode::OK, &serde_json::json!({"needed": false}))
    );

    // Signing in from the browser: the same.
    let resp = from_browser(&api, "/api/v1/auth/login", None)
        .json(&serde_json::json!({"username": "root", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let max_age = 30 * 86_400;
    let cookie = set_refresh_cookie(&resp, max_age);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_lifetime(body["refresh_expires_in"].as_i64().unwrap(), max_age, &body);
    assert!(body["access_token"].is_string(), "{body}");

    // After a reload: refresh with the cookie and no body rotates it.
    let resp = from_browser(&api, "/api/v1/auth/refresh", Some(&cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let rotated = set_refresh_cookie(&resp, max_age);
    assert_ne!(rotated, cookie);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (status, me) = api.get("/api/v1/me", &access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    // `{}` is a body-less refresh too.
    let resp = from_browser(&api, "/api/v1/auth/refresh", Some(&rotated))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let current = set_refresh_cookie(&resp, max_age);

    // The cookie is worth nothing without the header or from another site.
    let resp = api
        .http
        .post(api.roost.https_url("/api/v1/auth/refresh"))
        .header("cookie", format!("roost_refresh={current}"))
        .send()
        .await
        .unwrap();
    assert_error(&answer(resp).await, StatusCode::FORBIDDEN, "csrf");
    for origin in ["https://evil.example", "http://localhost", "null"] {
        let resp = from_page(&api, "/api/v1/auth/refresh", Some(&current), origin)
            .send()
            .await
            .unwrap();
        assert_error_for(origin, &answer(resp).await, StatusCode::FORBIDDEN, "csrf");
    }
    // A second Origin does not slip another site past the check.
    let resp = from_browser(&api, "/api/v1/auth/logout", Some(&current))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // Signing out ends the cookie's session and clears the cookie.
    let resp = from_browser(&api, "/api/v1/auth/logout", Some(&current))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_cleared(&resp);
    let (status, _) = api.get("/api/v1/me", &access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let resp = from_browser(&api, "/api/v1/auth/refresh", Some(&current))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_cleared(&resp);
    // No cookie at all: not signed in.
    let resp = from_browser(&api, "/api/v1/auth/refresh", None)
        .send()
        .await
        .unwrap();
    assert_error(
        &answer(resp).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_cookie_signs_the_session_out_and_bearer_clients_are_unchanged() {
    let mut api = Api::start(Setup::new());
    api.setup_admin("root").await;
    // Without the header: tokens in the body, no cookie.
    let resp = api
        .http
        .post(api.roost.https_url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "root", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!resp.headers().contains_key("set-cookie"));
    let body: Value = resp.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = api
        .post(
            "/api/v1/auth/refresh",
            None,
            serde_json::json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string(), "{body}");
    // A bearer client's empty refresh names what is missing.
    let resp = api
        .http
        .post(api.roost.https_url("/api/v1/auth/refresh"))
        .send()
        .await
        .unwrap();
    assert_error(&answer(resp).await, StatusCode::BAD_REQUEST, "invalid_body");

    // A browser's cookie presented twice (copied): the session ends, the cookie is cleared.
    let resp = from_browser(&api, "/api/v1/auth/login", None)
        .json(&serde_json::json!({"username": "root", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let first = set_refresh_cookie(&resp, 30 * 86_400);
    let resp = from_browser(&api, "/api/v1/auth/refresh", Some(&first))
        .send()
        .await
        .unwrap();
    let second = set_refresh_cookie(&resp, 30 * 86_400);
    // The new cookie is used in turn, so the first one is no retry within the grace window
    // (same address, 10 s) but reuse.
    let resp = from_browser(&api, "/api/v1/auth/refresh", Some(&second))
        .send()
        .await
        .unwrap();
    let third = set_refresh_cookie(&resp, 30 * 86_400);
    let resp = from_browser(&api, "/api/v1/auth/refresh", Some(&first))
        .send()
        .await
        .unwrap();
    assert_cleared(&resp);
    assert_error(
        &answer(resp).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    );
    let resp = from_browser(&api, "/api/v1/auth/refresh", Some(&third))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_root_is_a_trust_page_while_there_is_a_local_ca() {
    let mut roost = Setup::new().start();
    let line = roost.wait_for_log(
        |v| v["fingerprint"].is_string(),
        std::time::Duration::from_secs(10),
    );
    let fingerprint = line["fingerprint"].as_str().unwrap().to_owned();
    let c = roost.client();
    let resp = c.get(roost.http_url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    let policy = header(&headers, "content-security-policy");
    assert!(
        policy.starts_with("default-src 'none'; style-src 'sha256-"),
        "{policy}"
    );
    assert!(!policy.contains("script"), "{policy}");
    let page = resp.text().await.unwrap();
    assert!(!page.contains("<script"), "{page}");
    assert!(page.contains("href=\"/ca.crt\""), "{page}");
    assert!(
        page.contains(&fingerprint),
        "{fingerprint} missing from {page}"
    );
    let https = roost.https_url("/");
    assert!(page.contains(&format!("href=\"{https}\"")), "{page}");
    for system in ["iPhone", "Android", "Windows", "macOS", "Linux"] {
        assert!(page.contains(system), "{system} missing");
    }
    // Every other path still goes to HTTPS.
    let resp = c.get(roost.http_url("/rooms/3")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        header(resp.headers(), "location"),
        roost.https_url("/rooms/3")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_root_redirects_with_a_public_certificate() {
    let setup = Setup::new();
    let (cert, key) = (
        setup.dir.path().join("cert.pem"),
        setup.dir.path().join("key.pem"),
    );
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&cert, issued.cert.pem()).unwrap();
    std::fs::write(&key, issued.key_pair.serialize_pem()).unwrap();
    let roost = setup
        .toml(&format!(
            "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            cert.display(),
            key.display()
        ))
        .start();
    let resp = client_trusting(issued.cert.pem().as_bytes())
        .get(roost.http_url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(header(resp.headers(), "location"), roost.https_url("/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_set_the_branding_everyone_reads() {
    let mut api = Api::start(Setup::new());
    let (status, body) = api.get("/api/v1/branding", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["app_name"], "Roost", "{body}");
    let admin = api.admin().await;
    let member = api.member(&admin, "bob").await;
    let patch = |who: &User, body: Value| {
        let token = who.token.clone();
        let api = &api;
        async move {
            let (status, body) = api.patch("/api/v1/branding", &token, body).await;
            (status, body)
        }
    };
    let change = serde_json::json!({"app_name": "Our Club", "accent_color": "#AA3366"});
    let (status, body) = patch(&member, change.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = patch(&admin, change).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let want = serde_json::json!({"app_name": "Our Club", "accent_color": "#aa3366"});
    assert_eq!(body, want);
    let (status, body) = api.get("/api/v1/branding", None).await;
    assert_eq!((status, &body), (StatusCode::OK, &want));
    for (bad, code) in [
        (
            serde_json::json!({"accent_color": "red"}),
            "invalid_accent_color",
        ),
        (
            serde_json::json!({"app_name": "a\u{202e}b"}),
            "invalid_app_name",
        ),
    ] {
        assert_error(&patch(&admin, bad).await, StatusCode::BAD_REQUEST, code);
    }
    let events = api.audit(&admin, "type=branding.updated").await;
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_list_carries_each_rooms_last_activity() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let quiet = api.room(&admin, "quiet", false).await;
    let busy = api.room(&admin, "busy", false).await;
    let message = api.say(&admin, busy, "hello").await;
    let (status, list) = api.get("/api/v1/rooms", &admin).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let activity = |id: i64| {
        list["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .and_then(|r| r["last_activity"].as_str())
            .unwrap_or_else(|| panic!("no last_activity for room {id} in {list}"))
            .to_owned()
    };
    assert_eq!(
        activity(busy),
        message["created_at"].as_str().unwrap(),
        "{message}"
    );
    // RFC 3339 strings of one format sort as times do.
    assert!(activity(quiet) <= activity(busy));
}
