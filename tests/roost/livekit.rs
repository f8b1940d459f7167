//! LiveKit supervision, webhooks and the signalling proxy, with the real `roost` binary and a
//! stand-in `livekit-server` (examples/fake_livekit.rs) that tests steer through files: for the
//! faults the real server cannot be made to show on demand (a hang, ignoring SIGTERM, a crash
//! loop, a slow drain). The real server's own tests are in `livekit_real`.

use std::path::Path;
use std::time::Duration;

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const DEADLINE: Duration = Duration::from_secs(30);

/// A setup whose LiveKit is the fake, with short supervision timings.
fn with_fake(livekit_keys: &str) -> (Setup, u16) {
    with_fake_livekit(
        Setup::new(),
        &format!("health_check_interval_ms = 200\nrestart_backoff_initial_ms = 100\nrestart_backoff_max_ms = 800\n{livekit_keys}"),
    )
}

fn touch(path: &Path) {
    std::fs::write(path, "").unwrap();
}

/// Pids the fake recorded, one per start.
fn starts(setup: &Setup) -> Vec<(i32, u128)> {
    std::fs::read_to_string(fake_livekit_control_dir(setup).join("starts"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut it = l.split(' ');
            (
                it.next().unwrap().parse().unwrap(),
                it.next().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

async fn ready_json(roost: &Roost) -> (u16, Value) {
    let resp = roost.get("/ready").await;
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_livekit_and_reports_it_ready() {
    let (setup, port) = with_fake("");
    let mut roost = setup.start();
    roost.wait_for_log(|v| is_message(v, "livekit ready"), DEADLINE);
    // LiveKit's own log lines arrive under the target `livekit`, message and level kept.
    roost.wait_for_log(
        |v| v["target"] == "livekit" && is_message(v, "starting LiveKit server (fake)"),
        DEADLINE,
    );

    let (status, body) = ready_json(&roost).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["livekit"]["status"], "ok", "{body}");
    let m = roost.metrics().await;
    assert!(m.contains("roost_livekit_up 1"), "{m}");

    // What LiveKit was given: loopback HTTP, our keys, webhooks to the internal listener.
    let seen: Value = serde_json::from_str(&read(
        &fake_livekit_control_dir(&roost.setup).join("config.json"),
    ))
    .unwrap();
    assert_eq!(seen["port"], port);
    assert_eq!(seen["bind_addresses"], json!(["127.0.0.1"]));
    let (key, secret) = livekit_key_pair(&roost.setup);
    assert_eq!(seen["keys"][&key], secret.as_str());
    assert!(secret.len() >= 32);
    assert_eq!(seen["webhook"]["api_key"], key.as_str());
    assert_eq!(
        seen["webhook"]["urls"][0],
        format!(
            "http://127.0.0.1:{}/livekit/webhook",
            roost.addrs().internal.port()
        )
    );
    let yaml = roost.setup.data_dir().join("run/livekit.yaml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&yaml).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // `roost livekit config` shows the same file, secrets redacted.
    let out = roost.setup.run(&["livekit", "config"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("\"{key}\": \"<redacted>\"")),
        "{text}"
    );
    assert!(!text.contains(&secret), "secret printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_then_forces_and_leaves_no_process() {
    let (setup, _) = with_fake("");
    // A call in progress: the fake drains on the first SIGTERM until told to stop.
    touch(&fake_livekit_control_dir(&setup).join("participants"));
    let mut roost = setup.start();
    roost.wait_for_log(|v| is_message(v, "livekit ready"), DEADLINE);
    let (pid, _) = starts(&roost.setup)[0];
    assert!(process_exists(pid));

    roost.signal(Signal::SIGTERM);
    let status = roost.wait_exit(DEADLINE);
    assert!(status.success(), "{status}\n{}", roost.raw_logs());
    assert!(!process_exists(pid), "livekit outlived roost");
    let signals = read(&fake_livekit_control_dir(&roost.setup).join("signals"));
    assert_eq!(signals.lines().count(), 2, "drain, then force: {signals}");
    assert!(roost.count_logs(|v| is_message(v, "livekit still draining; forcing it to stop")) == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_livekit_that_ignores_sigterm_is_killed() {
    let (setup, _) = with_fake("");
    touch(&fake_livekit_control_dir(&setup).join("ignore-term"));
    let mut roost = setup.start();
    roost.wait_for_log(|v| is_message(v, "livekit ready"), DEADLINE);
    let (pid, _) = starts(&roost.setup)[0];
    roost.signal(Signal::SIGTERM);
    let status = roost.wait_exit(DEADLINE);
    assert!(status.success(), "{status}");
    assert!(!process_exists(pid), "livekit outlived roost");
    assert_eq!(
        roost.count_logs(|v| is_message(v, "livekit ignored the stop request; killing it")),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_livekit_is_restarted_with_growing_backoff() {
    let (setup, _) = with_fake("");
    touch(&fake_livekit_control_dir(&setup).join("crash"));
    let mut roost = setup.start();
    let restarts = roost.wait_for_logs(5, |v| is_message(v, "livekit restarting"), DEADLINE);
    let delays: Vec<u64> = restarts
        .iter()
        .take(5)
        .map(|v| v["backoff_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(delays, vec![100, 200, 400, 800, 800]);
    // The fake saw the same rhythm: later gaps between starts are longer than the first.
    let s = starts(&roost.setup);
    assert!(s.len() >= 5, "{s:?}");
    let gaps: Vec<u128> = s.windows(2).map(|w| w[1].1 - w[0].1).collect();
    assert!(gaps[3] > gaps[0] + 300, "{gaps:?}");

    // Chat is unaffected; the livekit check says what is going on.
    let (status, body) = ready_json(&roost).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["livekit"]["status"], "degraded", "{body}");
    // The proxy answers a clear 502 while LiveKit is down.
    let resp = roost.get("/rtc/validate").await;
    assert_error(
        &answer(resp).await,
        StatusCode::BAD_GATEWAY,
        "livekit_unavailable",
    );
    let m = roost.metrics().await;
    assert!(m.contains("roost_livekit_up 0"), "{m}");
    assert!(!m.contains("roost_livekit_restarts_total 0"), "{m}");

    // Fixed: the next restart comes up.
    std::fs::remove_file(fake_livekit_control_dir(&roost.setup).join("crash")).unwrap();
    roost.wait_for_log(|v| is_message(v, "livekit ready"), DEADLINE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_livekit_is_found_unhealthy_and_restarted() {
    let (setup, _) = with_fake("");
    let mut roost = setup.start();
    roost.wait_for_log(|v| is_message(v, "livekit ready"), DEADLINE);
    let (first, _) = starts(&roost.setup)[0];
    let hang = fake_livekit_control_dir(&roost.setup).join("hang");
    touch(&hang);
    let restart = roost.wait_for_log(|v| is_message(v, "livekit restarting"), DEADLINE);
    assert!(
        restart["reason"]
            .as_str()
            .unwrap()
            .contains("health checks in a row"),
        "{restart}"
    );
    std::fs::remove_file(&hang).unwrap();
    roost.wait_for_logs(2, |v| is_message(v, "livekit ready"), DEADLINE);
    wait_gone(first, DEADLINE);
    let pids: Vec<i32> = starts(&roost.setup).iter().map(|s| s.0).collect();
    assert!(pids.len() >= 2 && pids[1] != first, "{pids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_binary_disables_calls_but_not_chat() {
    let mut roost = Setup::new()
        .env("RUNTIME_DIRECTORY", "")
        .toml("[livekit]\nenabled = true\nbinary = \"/nonexistent/livekit-server\"\n")
        .start();
    roost.wait_for_log(
        |v| {
            v["reason"]
                .as_str()
                .is_some_and(|r| r.contains("/nonexistent"))
        },
        DEADLINE,
    );
    let (status, body) = ready_json(&roost).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["checks"]["livekit"]["status"], "disabled", "{body}");
    assert!(
        body["checks"]["livekit"]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/livekit-server does not exist"),
        "{body}"
    );
    let health = roost.get("/health").await;
    assert_eq!(health.status(), 200);
    let rtc = roost.get("/rtc").await;
    assert_error(
        &answer(rtc).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "livekit_disabled",
    );

    // A reload looks again, but says how to install LiveKit only once.
    roost.signal(Signal::SIGHUP);
    roost.wait_for_log(|v| is_message(v, "certificates reloaded"), DEADLINE);
    let hint = |v: &Value| {
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("calls are disabled until LiveKit is installed"))
    };
    assert_eq!(roost.count_logs(hint), 1, "{}", roost.raw_logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signalling_websocket_round_trips_through_tls() {
    let (setup, _) = with_fake("max_proxied_connections = 1\n");
    let mut roost = setup.start();
    roost.wait_for_log(|v| is_message(v, "livekit ready"), DEADLINE);

    let url = format!(
        "{}?access_token=sekrit-token-value",
        roost.https_url("/rtc")
    )
    .replace("https", "wss");
    let mut request = url.into_client_request().unwrap();
    // A client cannot choose the address LiveKit sees.
    request
        .headers_mut()
        .insert("x-forwarded-for", "6.6.6.6".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::client_async(request, tls_connect(&roost, None).await)
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    let hello: Value = match ws.next().await.unwrap().unwrap() {
        Message::Text(t) => serde_json::from_str(&t).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(hello["x_forwarded_for"], "127.0.0.1", "{hello}");
    assert_eq!(hello["x_real_ip"], "127.0.0.1");
    assert_eq!(hello["has_token"], true);
    ws.send(Message::Text("ping".into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("ping".into())
    );
    ws.send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Binary(vec![1u8, 2, 3].into())
    );

    // The one allowed proxied connection is taken: the next request is refused, in JSON.
    let resp = roost.get("/rtc/validate").await;
    assert_error(
        &answer(resp).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_call_connections",
    );
    let m = roost.metrics().await;
    assert!(m.contains("roost_livekit_proxied_connections 1"), "{m}");

    assert!(
        !roost.raw_logs().contains("sekrit-token-value"),
        "a token reached the log"
    );

    // Shutdown ends the session promptly, and roost exits.
    roost.signal(Signal::SIGTERM);
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the websocket outlived shutdown");
    assert!(roost.wait_exit(DEADLINE).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twirp_is_proxied_with_its_status() {
    let (setup, _) = with_fake("");
    let mut roost = setup.start();
    roost.wait_for_log(|v| is_message(v, "livekit ready"), DEADLINE);
    let url = roost.https_url("/twirp/livekit.RoomService/ListRooms");
    let resp = roost
        .client()
        .post(&url)
        .header("authorization", "Bearer x")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"rooms": []}));
    let resp = roost
        .client()
        .post(&url)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_accepted_when_signed_and_every_forgery_is_rejected() {
    let (setup, port) = with_fake("");
    let mut roost = setup.start();
    roost.wait_for_log(|v| is_message(v, "livekit ready"), DEADLINE);

    // LiveKit (the fake) signs and delivers a participant_joined.
    let sent = fake_livekit_webhook(
        port,
        json!({"event": "participant_joined", "room": "r1", "identity": "alice", "sid": "PA_1"}),
    )
    .await;
    assert_eq!(sent["status"], 200, "{}", roost.raw_logs());
    roost.wait_for_log(
        |v| {
            is_message(v, "LiveKit webhook")
                && v["event"] == "participant_joined"
                && v["identity"] == "alice"
        },
        DEADLINE,
    );

    let (key, secret) = livekit_key_pair(&roost.setup);
    let now = unix_secs();
    let body = r#"{"event":"participant_left","room":{"name":"r1"},"participant":{"identity":"alice","sid":"PA_1"}}"#;
    let url = roost.internal_url("/livekit/webhook");
    let post = |auth: Option<String>, body: &'static str| {
        let mut req = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/webhook+json")
            .body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let cases = [
        ("missing_auth", None),
        ("malformed", Some("garbage".to_owned())),
        (
            "unknown_key",
            Some(sign_webhook(
                "APIsomeoneelse",
                &secret,
                body,
                now + 300,
                None,
            )),
        ),
        (
            "bad_signature",
            Some(sign_webhook(&key, &"x".repeat(43), body, now + 300, None)),
        ),
        (
            "body_hash",
            Some(sign_webhook(&key, &secret, body, now + 300, Some("AAAA"))),
        ),
        (
            "expired",
            Some(sign_webhook(&key, &secret, body, now - 120, None)),
        ),
    ];
    for (reason, auth) in cases {
        assert_eq!(post(auth, body).await, 401, "{reason}");
    }
    // Tampering with the body after signing is caught too.
    let good = sign_webhook(&key, &secret, body, now + 300, None);
    assert_eq!(
        post(
            Some(good.clone()),
            r#"{"event":"room_finished","room":{"name":"r1"}}"#
        )
        .await,
        401
    );
    assert_eq!(post(Some(good.clone()), body).await, 200);
    // With LiveKit on this machine, the public listener takes no webhooks at all.
    let public = roost
        .client()
        .post(roost.https_url("/livekit/webhook"))
        .header("content-type", "application/webhook+json")
        .header("authorization", good)
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(public, 404);

    let m = roost.metrics().await;
    for reason in [
        "missing_auth",
        "malformed",
        "unknown_key",
        "bad_signature",
        "expired",
    ] {
        assert!(
            m.contains(&format!(
                "roost_livekit_webhook_rejected_total{{reason=\"{reason}\"}} 1"
            )),
            "{reason}: {m}"
        );
    }
    assert!(
        m.contains("roost_livekit_webhook_rejected_total{reason=\"body_hash\"} 2"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_keys_restarts_livekit_with_both_pairs() {
    let (setup, _) = with_fake("");
    let mut roost = setup.start();
    roost.wait_for_log(|v| is_message(v, "livekit ready"), DEADLINE);
    let old_key = livekit_key_pair(&roost.setup).0;

    let out = roost.setup.run(&["livekit", "rotate-keys"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("asked the running daemon"), "{text}");
    let new_key = livekit_key_pair(&roost.setup).0;
    assert_ne!(new_key, old_key);
    assert!(text.contains(&new_key) && text.contains(&old_key), "{text}");
    // The saved pair and the new one are 0600 like every secret, and no temporary file is left.
    let secrets = roost.setup.data_dir().join("secrets");
    assert!(secrets.join("livekit_previous_key.json").exists());
    for entry in std::fs::read_dir(&secrets).unwrap() {
        use std::os::unix::fs::PermissionsExt;
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        assert!(!name.starts_with('.'), "{name} was left behind");
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }

    roost.wait_for_log(
        |v| is_message(v, "restarting livekit with the current keys"),
        DEADLINE,
    );
    roost.wait_for_logs(2, |v| is_message(v, "livekit ready"), DEADLINE);
    let seen: Value = serde_json::from_str(&read(
        &fake_livekit_control_dir(&roost.setup).join("config.json"),
    ))
    .unwrap();
    let keys = seen["keys"].as_object().unwrap();
    assert!(
        keys.contains_key(&old_key) && keys.contains_key(&new_key),
        "{seen}"
    );
    assert_eq!(seen["webhook"]["api_key"], new_key.as_str());

    // A second rotation before the old key is dropped is refused.
    let again = roost.setup.run(&["livekit", "rotate-keys"]);
    assert_eq!(again.status.code(), Some(1));
}
