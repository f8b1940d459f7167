//! The real `livekit-server` (the version `scripts/build-livekit.sh` pins) under Roost: it
//! starts on the configuration Roost generates, answers through Roost's `/rtc` proxy, is
//! restarted after `kill -9`, stops with Roost (even a SIGKILLed Roost), names a port already in
//! use, and takes rotated keys; the webhooks it signs put "call started" and "call ended"
//! entries in the room's timeline. Faults the real server cannot be made to show on demand (a hang,
//! ignoring SIGTERM, a crash loop, a slow drain) stay with the stand-in in `livekit`.

use std::time::{Duration, Instant};

use crate::support::*;
use base64::Engine;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

/// Generous: a debug Roost plus a 50 MB Go server on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);
/// What the tests give LiveKit to drain on shutdown.
const DRAIN_GRACE_SECS: u64 = 2;
/// The first restart's delay: long enough to ask for a call token while LiveKit is down.
const FIRST_BACKOFF_MS: u64 = 2_000;

/// LiveKit's ports for one test; each test gets its own, so tests can run side by side.
struct Ports {
    http: u16,
    rtc_tcp: u16,
}

/// A setup supervising the real server, with short supervision timings.
fn with_real(extra: &str) -> (Setup, Ports) {
    let ports = Ports {
        http: free_port(),
        rtc_tcp: free_port(),
    };
    let setup = Setup::new().env("RUNTIME_DIRECTORY", "").toml(&format!(
        "[livekit]\nenabled = true\nbinary = \"{}\"\nhttp_port = {}\nrtc_tcp_port = {}\nrtc_udp_port = {}\nhealth_check_interval_ms = 200\nrestart_backoff_initial_ms = {FIRST_BACKOFF_MS}\nrestart_backoff_max_ms = 8000\ndrain_grace_secs = {DRAIN_GRACE_SECS}\n{extra}",
        real_livekit().display(),
        ports.http,
        ports.rtc_tcp,
        free_port(),
    ));
    (setup, ports)
}

/// The pid of the n-th LiveKit Roost started (0-based), from its "livekit started" line.
fn livekit_pid(roost: &mut Roost, n: usize) -> i32 {
    let started = roost.wait_for_logs(n + 1, |v| is_message(v, "livekit started"), DEADLINE);
    started[n]["pid"].as_i64().expect("a pid") as i32
}

/// Waits until "livekit ready" was logged `n` times.
fn wait_ready(roost: &mut Roost, n: usize) {
    roost.wait_for_logs(n, |v| is_message(v, "livekit ready"), DEADLINE);
}

/// A Roost whose real LiveKit is ready, its admin, and a public room "calls" for a call.
async fn ready_with_a_room() -> (Api, User, i64) {
    let (setup, _) = with_real("");
    let mut api = Api::start(setup);
    wait_ready(&mut api.roost, 1);
    let admin = api.admin().await;
    let room = api.room(&admin, "calls", false).await;
    (api, admin, room)
}

async fn livekit_check(roost: &Roost) -> Value {
    let resp = roost.get("/ready").await;
    assert_eq!(resp.status(), 200, "LiveKit never fails /ready");
    let body: Value = resp.json().await.unwrap();
    body["checks"]["livekit"].clone()
}

/// What LiveKit itself answers to `GET /rtc/validate` through Roost's TLS proxy: 200 for a
/// token it accepts, 401 for one it refuses.
async fn validate(roost: &Roost, token: Option<&str>) -> u16 {
    let path = match token {
        Some(t) => format!("/rtc/validate?access_token={t}"),
        None => "/rtc/validate".to_owned(),
    };
    roost.get(&path).await.status().as_u16()
}

/// A call token from Roost's API for `room` as `who`.
async fn call_token(api: &Api, who: &User, room: i64) -> String {
    let (status, body) = api
        .post(&format!("/api/v1/rooms/{room}/call/token"), who, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_server_runs_on_the_generated_config_and_checks_call_tokens() {
    let (setup, _) = with_real("");
    let mut api = Api::start(setup);
    wait_ready(&mut api.roost, 1);
    api.roost.wait_for_log(
        |v| v["target"] == "livekit" && is_message(v, "starting LiveKit server"),
        DEADLINE,
    );
    let check = livekit_check(&api.roost).await;
    assert_eq!(check["status"], "ok", "{check}");
    assert_eq!(api.metric("roost_livekit_up").await, Some(1.0));

    // Through the proxy LiveKit answers for itself: no token, no entry.
    assert_eq!(validate(&api.roost, None).await, 401);
    let admin = api.admin().await;
    let room = api.room(&admin, "calls", false).await;
    let other_room = api.room(&admin, "elsewhere", false).await;
    let token = call_token(&api, &admin, room).await;
    assert_eq!(validate(&api.roost, Some(&token)).await, 200);

    // The room is in the signed grant: a token for one room rewritten to name another is
    // refused, and so is one past its expiry, though both carry Roost's key.
    let mut grant = jwt_claims(&token);
    grant["video"]["room"] = json!(format!("roost-room-{other_room}"));
    let parts: Vec<&str> = token.split('.').collect();
    let rewritten = format!(
        "{}.{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(grant.to_string()),
        parts[2]
    );
    assert_eq!(validate(&api.roost, Some(&rewritten)).await, 401);

    let (key, secret) = livekit_key_pair(&api.roost.setup);
    let mut expired = jwt_claims(&token);
    expired["nbf"] = json!(unix_secs() - 900);
    expired["exp"] = json!(unix_secs() - 600);
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &expired,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    assert_eq!(jwt_claims(&expired)["iss"], key.as_str());
    assert_eq!(validate(&api.roost, Some(&expired)).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_range_node_ip_and_turn_over_udp_and_tls_are_accepted() {
    let (setup, _) = with_real(&format!(
        "rtc_port_range_start = 51000\nrtc_port_range_end = 51100\nnode_ip = \"127.0.0.1\"\nturn_enabled = true\nturn_domain = \"roost.local\"\nturn_udp_port = {}\nturn_tls_port = {}\n",
        free_port(),
        free_port()
    ));
    let mut roost = setup.start();
    wait_ready(&mut roost, 1);
    let turn = roost.wait_for_log(
        |v| v["target"] == "livekit" && is_message(v, "Starting TURN server"),
        DEADLINE,
    );
    assert!(
        turn["fields"]
            .as_str()
            .unwrap_or("")
            .contains("turn.portTLS"),
        "{turn}"
    );
    assert_eq!(livekit_check(&roost).await["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_is_restarted_with_backoff_and_calls_wait_for_it_meanwhile() {
    let (mut api, admin, room) = ready_with_a_room().await;

    // Someone is in the call, as LiveKit's webhook reports it.
    let (key, secret) = livekit_key_pair(&api.roost.setup);
    let body = json!({
        "event": "participant_joined",
        "room": {"name": format!("roost-room-{room}")},
        "participant": {"identity": format!("user-{}", admin.id), "sid": "PA_1", "name": "root",
                        "joinedAt": unix_secs().to_string()},
    })
    .to_string();
    let status = reqwest::Client::new()
        .post(api.roost.internal_url("/livekit/webhook"))
        .header("content-type", "application/webhook+json")
        .header(
            "authorization",
            sign_webhook(&key, &secret, &body, unix_secs() + 300, None),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let call = format!("/api/v1/rooms/{room}/call");
    let (_, state) = api.get(&call, &admin).await;
    assert_eq!(
        state["participants"].as_array().unwrap().len(),
        1,
        "{state}"
    );

    let first = livekit_pid(&mut api.roost, 0);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first), Signal::SIGKILL).unwrap();
    let restarting = api
        .roost
        .wait_for_log(|v| is_message(v, "livekit restarting"), DEADLINE);
    assert!(
        restarting["reason"].as_str().unwrap().contains("signal: 9"),
        "{restarting}"
    );
    assert_eq!(
        restarting["backoff_ms"], FIRST_BACKOFF_MS,
        "the first restart waits the initial backoff"
    );
    // Meanwhile: no call tokens, with the reason; chat goes on.
    let (status, refused) = api
        .post(
            &format!("/api/v1/rooms/{room}/call/token"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "livekit_unavailable", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("livekit exited (signal: 9"),
        "{refused}"
    );
    api.say(&admin, room, "chat works while calls are down")
        .await;
    let second = livekit_pid(&mut api.roost, 1);
    assert_ne!(first, second);
    wait_ready(&mut api.roost, 2);

    let (_, state) = api.get(&call, &admin).await;
    assert_eq!(
        state["participants"],
        json!([]),
        "the killed server's call is over"
    );
    assert_eq!(api.metric("roost_livekit_restarts_total").await, Some(1.0));
    assert_eq!(livekit_check(&api.roost).await["status"], "ok");
    // The new server takes tokens again.
    let token = call_token(&api, &admin, room).await;
    assert_eq!(validate(&api.roost, Some(&token)).await, 200);
}

/// The room's timeline entries that are not plain text, oldest first.
async fn call_entries(api: &Api, who: &User, room: i64) -> Vec<Value> {
    let (status, page) = api
        .get(&format!("/api/v1/rooms/{room}/messages"), who)
        .await;
    assert_eq!(status, 200, "{page}");
    let mut entries: Vec<Value> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] != "text")
        .cloned()
        .collect();
    entries.sort_by_key(|m| m["id"].as_i64());
    entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_leaves_one_started_and_one_ended_entry_however_often_livekit_repeats_itself() {
    let (api, admin, room) = ready_with_a_room().await;
    api.say(&admin, room, "before the call").await;
    let livekit_room = json!({"name": format!("roost-room-{room}"), "sid": "RM_call1"});
    let joined = json!({
        "event": "participant_joined", "room": livekit_room,
        "participant": {"identity": format!("user-{}", admin.id), "sid": "PA_1", "name": "root",
                        "joinedAt": unix_secs().to_string()},
    });
    // LiveKit retries a delivery it thinks failed: the same event twice.
    assert_eq!(post_livekit_webhook(&api, &joined).await, 200);
    assert_eq!(post_livekit_webhook(&api, &joined).await, 200);
    let started = eventually(DEADLINE, "a call_started entry", || async {
        let entries = call_entries(&api, &admin, room).await;
        (!entries.is_empty()).then_some(entries)
    })
    .await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0]["kind"], "call_started");
    assert_eq!(started[0]["author_id"], admin.id);
    assert_eq!(started[0]["body"], "");

    let left = json!({
        "event": "participant_left", "room": livekit_room,
        "participant": {"identity": format!("user-{}", admin.id), "sid": "PA_1"},
    });
    assert_eq!(post_livekit_webhook(&api, &left).await, 200);
    let finished = json!({"event": "room_finished", "room": livekit_room});
    assert_eq!(post_livekit_webhook(&api, &finished).await, 200);
    assert_eq!(
        post_livekit_webhook(&api, &joined).await,
        200,
        "a late repeat of the join"
    );
    let entries = eventually(DEADLINE, "a call_ended entry", || async {
        let entries = call_entries(&api, &admin, room).await;
        (entries.len() >= 2).then_some(entries)
    })
    .await;
    // Give a wrongly repeated entry the time to show, by waiting for a later one to commit.
    api.say(&admin, room, "after the call").await;
    let entries_after = call_entries(&api, &admin, room).await;
    assert_eq!(entries_after, entries, "nothing posted twice");
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[1]["kind"], "call_ended");
    assert_eq!(entries[1]["author_id"], Value::Null);
    assert!(entries[1]["call_duration_secs"].as_i64().unwrap() >= 0);

    for (method, path) in [
        (
            reqwest::Method::PATCH,
            format!("/api/v1/rooms/{room}/messages/{}", entries[0]["id"]),
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/v1/rooms/{room}/messages/{}", entries[1]["id"]),
        ),
    ] {
        let (status, refused, _) = api
            .call(
                method,
                &path,
                Some(&admin.token),
                Some(json!({"body": "edited"})),
            )
            .await;
        assert_eq!(status, 409, "{refused}");
        assert_eq!(refused["error"]["code"], "call_entry", "{refused}");
    }
    let (_, found) = api
        .get(&format!("/api/v1/search?q=call&room_id={room}"), &admin)
        .await;
    // Only the two people's messages that say "call"; the entries have no text to find.
    let kinds: Vec<&Value> = found["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["kind"])
        .collect();
    assert_eq!(kinds, vec!["text", "text"], "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_within_the_grace_time() {
    let (setup, _) = with_real("");
    let mut roost = setup.start();
    wait_ready(&mut roost, 1);
    let pid = livekit_pid(&mut roost, 0);
    let asked = Instant::now();
    roost.signal(Signal::SIGTERM);
    let status = roost.wait_exit(DEADLINE);
    assert!(status.success(), "{status}\n{}", roost.raw_logs());
    // Nothing was in a call, so LiveKit needs no part of its drain grace.
    assert!(
        asked.elapsed() < Duration::from_secs(DRAIN_GRACE_SECS + 5),
        "took {:?}",
        asked.elapsed()
    );
    assert!(!process_exists(pid), "livekit outlived roost");
    let stopped = roost
        .logs()
        .into_iter()
        .find(|v| is_message(v, "livekit stopped"))
        .expect("the supervisor logs the stop");
    assert!(
        stopped["status"].as_str().unwrap().contains("(0)"),
        "LiveKit exits by itself on the first SIGTERM: {stopped}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_outlives_a_killed_roost() {
    let (setup, _) = with_real("");
    let mut roost = setup.start();
    wait_ready(&mut roost, 1);
    let pid = livekit_pid(&mut roost, 0);
    roost.signal(Signal::SIGKILL);
    roost.wait_exit(DEADLINE);
    // The parent-death signal takes LiveKit down; nothing of its process group is left.
    wait_gone(pid, DEADLINE);
    assert_eq!(
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_named_until_it_is_free() {
    let (setup, ports) = with_real("");
    // LiveKit binds its ICE/TCP port on every address.
    let squatter = std::net::TcpListener::bind(("0.0.0.0", ports.rtc_tcp)).unwrap();
    let mut roost = setup.start();
    let restarting = roost.wait_for_log(|v| is_message(v, "livekit restarting"), DEADLINE);
    let reason = restarting["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!(":{}: bind: address already in use", ports.rtc_tcp))
            && reason.contains(&format!("port {} is livekit.rtc_tcp_port", ports.rtc_tcp)),
        "{restarting}"
    );
    let check = livekit_check(&roost).await;
    assert_eq!(check["status"], "degraded", "{check}");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("livekit.rtc_tcp_port"),
        "{check}"
    );
    // Once the port is free the next restart succeeds.
    drop(squatter);
    wait_ready(&mut roost, 1);
    assert_eq!(livekit_check(&roost).await["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_take_effect_and_the_old_token_still_works_during_the_overlap() {
    let (mut api, admin, room) = ready_with_a_room().await;
    let old_token = call_token(&api, &admin, room).await;
    let old_key = jwt_claims(&old_token)["iss"].as_str().unwrap().to_owned();

    let out = api.roost.setup.run(&["livekit", "rotate-keys"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The real server reads its keys only at start, so rotation restarts it.
    api.roost.wait_for_log(
        |v| is_message(v, "restarting livekit with the current keys"),
        DEADLINE,
    );
    wait_ready(&mut api.roost, 2);

    let new_token = call_token(&api, &admin, room).await;
    assert_ne!(jwt_claims(&new_token)["iss"].as_str().unwrap(), old_key);
    assert_eq!(validate(&api.roost, Some(&new_token)).await, 200);
    // A client holding a token from before the rotation can still (re)join.
    assert_eq!(validate(&api.roost, Some(&old_token)).await, 200);
}

#[test]
fn doctor_reports_the_configured_binary_and_the_media_path() {
    let (setup, ports) = with_real("node_ip = \"127.0.0.1\"\n");
    setup.write_config("");
    let out = setup.run(&["doctor", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let check = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} check in {report:#}"))
            .clone()
    };
    let binary = check("livekit");
    assert_eq!(binary["status"], "ok", "{binary}");
    assert!(
        binary["message"]
            .as_str()
            .unwrap()
            .contains("livekit-server version 1.13.5"),
        "{binary}"
    );
    let media = check("livekit media");
    assert_eq!(
        media["status"], "warn",
        "a loopback node_ip reaches no phone: {media}"
    );
    assert!(
        media["message"].as_str().unwrap().starts_with(
            "announces 127.0.0.1 (livekit.node_ip): only this machine can reach it; media ports UDP "
        ) && media["message"]
            .as_str()
            .unwrap()
            .ends_with(&format!("ICE/TCP {}", ports.rtc_tcp)),
        "{media}"
    );
    let udp = check("udp buffer");
    assert!(
        udp["message"]
            .as_str()
            .unwrap()
            .contains("net.core.wmem_max"),
        "{udp}"
    );
}

/// A livekit-server the test runs itself, as an operator runs an external deployment.
struct ExternalLiveKit {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl ExternalLiveKit {
    fn start(http_port: u16, key: &str, secret: &str) -> ExternalLiveKit {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("livekit.yaml");
        std::fs::write(
            &config,
            format!(
                "port: {http_port}\nbind_addresses: [\"127.0.0.1\"]\nrtc:\n  tcp_port: {}\n  udp_port: {}\n  use_external_ip: false\nkeys:\n  {key}: {secret}\nlogging:\n  json: true\n",
                free_port(),
                free_port()
            ),
        )
        .unwrap();
        let child = std::process::Command::new(real_livekit())
            .arg("--config")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        ExternalLiveKit { child, _dir: dir }
    }
}

impl Drop for ExternalLiveKit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_livekit_status(roost: &Roost, status: &str) -> Value {
    eventually(DEADLINE, &format!("livekit {status}"), || async {
        let check = livekit_check(roost).await;
        (check["status"] == status).then_some(check)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_livekit_is_checked_proxied_and_signed_for_but_never_started() {
    let (key, secret) = ("APIexternal", "e".repeat(40));
    let port = free_port();
    let external = ExternalLiveKit::start(port, key, &secret);
    let setup = Setup::new().env("RUNTIME_DIRECTORY", "").toml(&format!(
        "[livekit]\nenabled = true\nexternal_url = \"http://127.0.0.1:{port}\"\napi_key = \"{key}\"\napi_secret = \"{secret}\"\nhealth_check_interval_ms = 200\n"
    ));
    let mut api = Api::start(setup);
    wait_ready(&mut api.roost, 1);
    assert_eq!(livekit_check(&api.roost).await["status"], "ok");
    assert!(
        !api.roost
            .logs()
            .iter()
            .any(|v| is_message(v, "livekit started")),
        "Roost started a LiveKit of its own:\n{}",
        api.roost.raw_logs()
    );

    // Tokens carry the external server's key, and it accepts them through Roost's proxy.
    let admin = api.admin().await;
    let room = api.room(&admin, "calls", false).await;
    let token = call_token(&api, &admin, room).await;
    assert_eq!(jwt_claims(&token)["iss"], key);
    assert_eq!(validate(&api.roost, Some(&token)).await, 200);
    // Its webhooks, signed with that key, are taken on the internal listener and, since an
    // external server cannot reach that one, on the public HTTPS listener; forged ones are not.
    let body = json!({"event": "room_started", "room": {"name": format!("roost-room-{room}")}})
        .to_string();
    let deliver = |client: reqwest::Client, url: String, auth: String| {
        let body = body.clone();
        async move {
            client
                .post(url)
                .header("content-type", "application/webhook+json")
                .header("authorization", auth)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let signed = sign_webhook(key, &secret, &body, unix_secs() + 300, None);
    let internal = api.roost.internal_url("/livekit/webhook");
    let public = api.roost.https_url("/livekit/webhook");
    let https = api.roost.client();
    assert_eq!(
        deliver(reqwest::Client::new(), internal, signed.clone()).await,
        200
    );
    assert_eq!(deliver(https.clone(), public.clone(), signed).await, 200);
    let forged = sign_webhook(key, &"f".repeat(40), &body, unix_secs() + 300, None);
    assert_eq!(deliver(https, public, forged).await, 401);
    let m = api.roost.metrics().await;
    assert!(
        m.contains("roost_livekit_webhook_rejected_total{reason=\"bad_signature\"} 1"),
        "{m}"
    );

    // When it goes away, /ready says so and tokens wait for it.
    drop(external);
    let check = wait_livekit_status(&api.roost, "degraded").await;
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains(&format!("external livekit at 127.0.0.1:{port}")),
        "{check}"
    );
    let (status, body) = api
        .post(
            &format!("/api/v1/rooms/{room}/call/token"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "livekit_unavailable");
}
