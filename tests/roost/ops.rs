//! Operating a running Roost: `roost status`, `roost doctor`, the metrics an owner scrapes,
//! writes refused with 507 when the disk is low, and one daemon per data dir.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;

/// Runs a `roost` subcommand against a running daemon's config, pointing the internal address
/// at the port it actually bound (the config asks for port 0).
fn run_against(roost: &Roost, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(roost.setup.config_path())
        .env(
            "ROOST_SERVER_INTERNAL_ADDR",
            roost.addrs().internal.to_string(),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_the_running_daemon() {
    let roost = Setup::new().start();
    let out = run_against(&roost, &["status", "--json"]);
    assert_exit_0(&out);
    let s: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    // The test config does not enable LiveKit; status says so, with the reason.
    assert_eq!(s["livekit"]["state"], "disabled", "{s}");
    assert!(
        s["livekit"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{s}"
    );
    // No admin yet: the pending one-time setup code is shown to the daemon's user (as to
    // root), the same one the log gave, read from its 0600 file.
    assert_eq!(s["setup_pending"], true);
    let logged = roost
        .logs()
        .into_iter()
        .find_map(|v| v["setup_code"].as_str().map(String::from))
        .expect("the code is logged once");
    assert_eq!(s["setup_code"].as_str(), Some(logged.as_str()), "{s}");
    let code_file = roost.setup.data_dir().join("secrets/setup-code");
    assert_eq!(read(&code_file).trim(), logged);
    let mode = std::fs::metadata(&code_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "only root and the daemon's user may read the code"
    );
    // Any local process may ask the loopback listener: its answer never carries the code.
    let resp = reqwest::get(roost.internal_url("/status")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.unwrap();
    assert!(!body.contains(&logged), "{body}");
    assert!(!body.contains("setup_code"), "{body}");
    assert!(body.contains("\"setup_pending\":true"), "{body}");
    assert_eq!(s["disk"]["low"], false);
    assert!(s["disk"]["free_bytes"].as_u64().unwrap() > 0, "{s}");
    assert!(s["connections"]["internal"].as_u64().unwrap() >= 1, "{s}");
    assert!(
        s["health"]["memory_total_bytes"].as_u64().unwrap() > 0,
        "{s}"
    );
    assert!(s["last_backup"].is_null(), "{s}");
    // Every counted table exists now (an older schema leaves missing ones out; see
    // `store::inspect::counts_of`).
    assert_eq!(
        s["counts"],
        serde_json::json!({"users": 0, "rooms": 0, "messages": 0}),
        "{s}"
    );

    let out = run_against(&roost, &["status"]);
    assert_exit_0(&out);
    let text = stdout(&out);
    for needle in [
        "connections",
        "disk",
        "livekit      disabled (",
        "last backup",
        &format!("setup code {logged}"),
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }

    // The /status route lives only on the internal listener.
    let resp = roost.get("/status").await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[test]
fn status_without_a_daemon_says_so() {
    let s = Setup::new();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    s.write_config("");
    let out = Command::new(BIN)
        .args(["status", "--config"])
        .arg(s.config_path())
        .env("ROOST_SERVER_INTERNAL_ADDR", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not answering"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_a_running_roost_and_fails_on_a_readable_key() {
    let roost = Setup::new().start();
    let out = run_against(&roost, &["doctor", "--json"]);
    let report: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    let status_of = |report: &Value, name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} check in {report}"))["status"]
            .clone()
    };
    for name in [
        "config",
        "certificates",
        "ca",
        "database",
        "permissions",
        "ports",
    ] {
        assert_eq!(status_of(&report, name), "ok", "{name}: {report:#}");
    }
    for name in ["clock", "disk", "livekit", "udp buffer", "backup"] {
        assert!(status_of(&report, name).is_string(), "{name}");
    }
    // Exit code and worst status agree.
    let failed = report["status"] == "fail";
    assert_eq!(
        out.status.code(),
        Some(if failed { 1 } else { 0 }),
        "{report:#}"
    );

    let key = roost.setup.data_dir().join("secrets/jwt_signing.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run_against(&roost, &["doctor"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("FAIL  permissions"), "{text}");
    assert!(
        text.contains(&format!("chmod 600 {}", key.display())),
        "{text}"
    );
}

#[test]
fn doctor_with_a_broken_config_fails_but_still_checks_the_machine() {
    let s = Setup::new();
    s.write_config("max_connections = 0");
    let out = s.run(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], "config");
    assert!(
        names.contains(&"clock") && names.contains(&"udp buffer"),
        "{names:?}"
    );
    assert!(!names.contains(&"database"), "needs a config: {names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_disk_refuses_api_writes_with_507_before_routing() {
    // A threshold no disk meets: the daemon sees "low disk" from its first measurement.
    let roost = Setup::new()
        .env("ROOST_STORAGE_MIN_FREE_DISK_MB", "1000000000")
        .start();
    let c = roost.client();
    for path in ["/api/v1/anything", "/api/v1/rooms/1/messages"] {
        let resp = c
            .post(roost.https_url(path))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INSUFFICIENT_STORAGE, "{path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "insufficient_storage", "{body}");
    }
    // Reads still work (and unknown paths are still 404), and /ready says why.
    let resp = c
        .get(roost.https_url("/api/v1/anything"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = c.get(roost.https_url("/ready")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["checks"]["disk"]["status"], "fail", "{body}");
    let status: Value = reqwest::get(roost.internal_url("/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["disk"]["low"], true, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_pass_when_disk_is_fine() {
    let roost = Setup::new().start();
    let resp = roost
        .client()
        .post(roost.https_url("/api/v1/anything"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_speak_prometheus_text_unless_openmetrics_is_asked_for() {
    let roost = Setup::new().start();
    let http = reqwest::Client::new();
    let resp = http
        .get(roost.internal_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    for needle in [
        "# TYPE roost_http_requests_total counter",
        "roost_memory_available_bytes ",
        "roost_load1 ",
        "roost_backup_last_success_timestamp_seconds 0",
        "roost_open_connections{listener=\"internal\"} 1",
        "roost_disk_min_free_bytes ",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    assert!(!text.contains("# EOF"));
    let free = text
        .lines()
        .find_map(|l| l.strip_prefix("roost_disk_free_bytes "))
        .unwrap();
    assert!(free.parse::<u64>().unwrap() > 0, "measured at startup");
    // The schema is parsed on every connection that has run a statement (migrations, the
    // writer's own), so SQLite's share is never zero on a running daemon.
    let schema = text
        .lines()
        .find_map(|l| l.strip_prefix("roost_db_memory_bytes{kind=\"schema\"} "))
        .unwrap_or_else(|| panic!("no roost_db_memory_bytes in:\n{text}"));
    assert!(schema.parse::<u64>().unwrap() > 0, "{schema}");
    assert!(text.contains("roost_db_memory_bytes{kind=\"page_cache\"} "));
    // SQLite's pages come from the daemon's own region (store::page_region), not the heap:
    // the migrations and the writer have read some. Only the slots that held a page are
    // resident, not the whole region (~12 MiB, every cache full), which an idle daemon
    // would otherwise carry.
    let region = text
        .lines()
        .find_map(|l| l.strip_prefix("roost_process_memory_bytes{kind=\"db_page_region\"} "))
        .unwrap_or_else(|| panic!("no page-cache region in:\n{text}"));
    let region: u64 = region.parse().unwrap();
    assert!((1..2 << 20).contains(&region), "{region}");

    let resp = http
        .get(roost.internal_url("/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(resp.text().await.unwrap().ends_with("# EOF\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_data_dir_is_refused() {
    let roost = Setup::new().start();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(roost.setup.config_path())
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another roost process is using the data dir"),
        "{}",
        stderr(&out)
    );
    // The first one is unharmed.
    let resp = reqwest::get(roost.internal_url("/health")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
