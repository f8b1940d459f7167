//! Administration in the browser, over the public HTTPS listener: the server's status, backups
//! run and listed from the API, and the branding icon with the web app manifest built from it.

use std::time::Duration;

use crate::support::*;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

/// A PNG header of `w`×`h` and the closing chunk: what the server checks of an icon.
fn png(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(&[0, 0, 0, 13]);
    b.extend_from_slice(b"IHDR");
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(b"\0\0\0\0IEND\xae\x42\x60\x82");
    b
}

/// `PUT /api/v1/branding/icon` with `bytes` as `content_type`.
async fn upload_icon(
    api: &Api,
    who: &User,
    content_type: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let resp = api
        .http
        .put(api.roost.https_url("/api/v1/branding/icon"))
        .bearer_auth(&who.token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get_raw(api: &Api, path: &str, etag: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = api.http.get(api.roost.https_url(path));
    if let Some(tag) = etag {
        req = req.header("if-none-match", tag);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

/// Starts a backup as `admin` and waits until it ended; returns the finished run.
async fn back_up(api: &Api, admin: &User) -> Value {
    let (status, run) = api.post("/api/v1/admin/backups", admin, Value::Null).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{run}");
    assert_eq!(run["state"], "running", "{run}");
    eventually(DEADLINE, "the backup to finish", || async {
        let (status, list) = api.get("/api/v1/admin/backups", admin).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        (list["run"]["state"] != "running").then(|| list["run"].clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_see_the_status_and_backups() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let member = api.member(&admin, "bob").await;
    for path in ["/api/v1/admin/status", "/api/v1/admin/backups"] {
        let (status, body) = api.get(path, &member).await;
        assert_error_for(path, &(status, body), StatusCode::FORBIDDEN, "forbidden");
        let (status, _) = api.get(path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let (status, body) = api
        .post("/api/v1/admin/backups", &member, Value::Null)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The member's attempt started nothing.
    let (_, list) = api.get("/api/v1/admin/backups", &admin).await;
    assert_eq!(list["backups"], serde_json::json!([]), "{list}");
    assert!(list.get("run").is_none(), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_has_what_an_owner_looks_for() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let (status, s) = api.get("/api/v1/admin/status", &admin).await;
    assert_eq!(status, StatusCode::OK, "{s}");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["uptime_secs"].is_u64(), "{s}");
    assert!(s["disk"]["free_bytes"].as_u64().unwrap() > 0, "{s}");
    assert!(
        s["disk"]["total_bytes"].as_u64().unwrap() >= s["disk"]["free_bytes"].as_u64().unwrap(),
        "{s}"
    );
    assert!(s["database_bytes"].as_u64().unwrap() > 0, "{s}");
    assert!(
        s["health"]["memory_total_bytes"].as_u64().unwrap() > 0,
        "{s}"
    );
    // What the machine does not give is absent, never null or zero.
    for (key, value) in s["health"].as_object().unwrap() {
        assert!(!value.is_null(), "{key} is null in {s}");
    }
    // The test config does not enable LiveKit.
    assert_eq!(s["livekit"]["phase"], "off", "{s}");
    assert_eq!(s["livekit"]["external"], false, "{s}");
    assert!(s["livekit"]["message"].is_string(), "{s}");
    assert!(s["last_backup"].is_null(), "{s}");
    assert_eq!(s["setup_pending"], false);
    assert!(s.get("setup_code").is_none(), "{s}");
    assert_eq!(s["counts"]["users"], 1, "{s}");

    // After a backup, its time is there.
    let run = back_up(&api, &admin).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let (_, s) = api.get("/api/v1/admin/status", &admin).await;
    assert!(s["last_backup"]["created"].is_string(), "{s}");
    assert_eq!(s["backup_run"]["state"], "succeeded", "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_run_from_the_api_is_listed_and_on_disk() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let run = back_up(&api, &admin).await;
    assert_eq!(run["state"], "succeeded", "{run}");
    let name = run["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("roost-"), "{run}");

    let (_, list) = api.get("/api/v1/admin/backups", &admin).await;
    let backups = list["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 1, "{list}");
    assert_eq!(backups[0]["name"], name.as_str());
    assert_eq!(backups[0]["verified"], true, "{list}");
    assert!(backups[0]["size_bytes"].as_u64().unwrap() > 0, "{list}");

    // The same folder `roost backup` writes, complete.
    let dir = api.roost.setup.data_dir().join("backups").join(&name);
    for file in ["roost.sqlite3", "manifest.json", "SHA256SUMS"] {
        assert!(
            dir.join(file).is_file(),
            "{file} missing in {}",
            dir.display()
        );
    }

    // A file gone from the backup shows in the list.
    std::fs::remove_file(dir.join("roost.sqlite3")).unwrap();
    let (_, list) = api.get("/api/v1/admin/backups", &admin).await;
    assert_eq!(list["backups"][0]["verified"], false, "{list}");

    let started = api.audit(&admin, "type=backup.started&actor=root").await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["actor"], "root");
    let by_nobody = api.audit(&admin, "type=backup.started&actor=bob").await;
    assert!(by_nobody.is_empty(), "{by_nobody:?}");
    let finished = api.audit(&admin, "type=backup.finished").await;
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!(finished[0]["outcome"], "success", "{finished:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_icon_is_checked_served_and_named_by_the_manifest() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let member = api.member(&admin, "bob").await;

    // Refused uploads change nothing.
    let jpeg = [b"\xff\xd8\xff\xe0\0\x10JFIF\0".as_slice(), &[0u8; 4000]].concat();
    let (status, body) = upload_icon(&api, &admin, "image/png", jpeg).await;
    assert_error(
        &(status, body),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_icon",
    );
    let mut too_big = png(512, 512);
    too_big.splice(33..33, vec![0u8; 300 * 1024]);
    let (status, body) = upload_icon(&api, &admin, "image/png", too_big).await;
    assert_error(
        &(status, body),
        StatusCode::PAYLOAD_TOO_LARGE,
        "icon_too_large",
    );
    let (status, body) = upload_icon(&api, &admin, "image/png", png(512, 300)).await;
    assert_error(
        &(status, body),
        StatusCode::BAD_REQUEST,
        "invalid_icon_size",
    );
    let (status, _) = upload_icon(&api, &member, "image/png", png(512, 512)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = get_raw(&api, "/branding/icon.png", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The default manifest until then.
    let (_, _, manifest) = get_raw(&api, "/manifest.webmanifest", None).await;
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["icons"][0]["src"], "/icon.svg", "{manifest}");

    let icon = png(512, 512);
    let (status, branding) = upload_icon(&api, &admin, "image/png", icon.clone()).await;
    assert_eq!(status, StatusCode::OK, "{branding}");
    let url = branding["icon"]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/branding/icon.png?v="), "{branding}");
    let (status, headers, bytes) = get_raw(&api, &url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, icon);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let (status, _, _) = get_raw(&api, &url, Some(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    let (status, body) = api
        .patch(
            "/api/v1/branding",
            &admin.token,
            serde_json::json!({"app_name": "Hearth", "accent_color": "#aa3366"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["icon"]["url"], url.as_str(), "the icon stays: {body}");
    let (status, headers, manifest) = get_raw(&api, "/manifest.webmanifest", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/manifest+json");
    let manifest: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["name"], "Hearth", "{manifest}");
    assert_eq!(manifest["short_name"], "Hearth", "{manifest}");
    assert_eq!(manifest["theme_color"], "#aa3366", "{manifest}");
    assert_eq!(manifest["icons"][0]["src"], url.as_str(), "{manifest}");
    assert_eq!(manifest["icons"][0]["sizes"], "512x512", "{manifest}");
    assert_eq!(manifest["icons"][0]["type"], "image/png", "{manifest}");

    let events = api.audit(&admin, "type=branding.icon_updated").await;
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_brings_the_branding_back() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let (status, _) = upload_icon(&api, &admin, "image/png", png(256, 256)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .patch(
            "/api/v1/branding",
            &admin.token,
            serde_json::json!({"app_name": "Hearth"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, before) = api.get("/api/v1/branding", None).await;
    let run = back_up(&api, &admin).await;
    let backup = api
        .roost
        .setup
        .data_dir()
        .join("backups")
        .join(run["name"].as_str().unwrap());

    // Changed after the backup: the restore must undo it.
    let (status, _) = api.delete("/api/v1/branding/icon", &admin.token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .patch(
            "/api/v1/branding",
            &admin.token,
            serde_json::json!({"app_name": "Other"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let mut roost = api.roost;
    roost.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(roost.wait_exit(DEADLINE).success());
    let setup = roost.into_setup();
    let out = setup.run(&["restore", backup.to_str().unwrap()]);
    assert_exit_0(&out);

    let api = Api::start(setup);
    let (_, after) = api.get("/api/v1/branding", None).await;
    assert_eq!(after, before);
    assert_eq!(after["app_name"], "Hearth");
    let (status, _, bytes) = get_raw(&api, after["icon"]["url"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bytes, png(256, 256));
}
