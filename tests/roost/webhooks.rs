//! Outgoing webhooks, incoming webhook URLs and bots, against the real binary. A receiver in
//! the test (an HTTP server on loopback, allowed by `[webhooks] allow_loopback`) records every
//! delivery and answers what the test tells it to. The examples of docs/integrations.md are
//! run here too, playing Home Assistant, n8n and the shell.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(30);

/// A Roost that may deliver to loopback, retrying quickly.
fn setup(extra: &str) -> Setup {
    Setup::new().toml(&format!(
        "[webhooks]\nallow_loopback = true\nfirst_retry_secs = 1\nmax_retry_secs = 1\n{extra}"
    ))
}

fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    hex::encode(ring::hmac::sign(&key, message).as_ref())
}

/// What a receiver must check: the signature over "<timestamp>.<body>" and a fresh timestamp.
fn assert_signed(d: &Delivery, secret: &str) {
    let timestamp = d.header("x-roost-timestamp");
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&d.body);
    assert_eq!(
        d.header("x-roost-signature"),
        format!("sha256={}", hmac_hex(secret, &signed))
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ts: u64 = timestamp.parse().unwrap();
    assert!(now.abs_diff(ts) < 60, "{ts} vs {now}");
}

async fn create_hook(api: &Api, admin: &User, body: Value) -> (i64, String) {
    let (status, hook) = api.post("/api/v1/webhooks", admin, body).await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    (
        hook["id"].as_i64().unwrap(),
        hook["secret"].as_str().unwrap().to_owned(),
    )
}

async fn deliveries(api: &Api, admin: &User, hook: i64) -> Vec<Value> {
    let (status, log) = api
        .get(
            &format!("/api/v1/webhooks/{hook}/deliveries?limit=200"),
            admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{log}");
    log["deliveries"].as_array().unwrap().clone()
}

fn bodies(seen: &[Delivery]) -> Vec<String> {
    seen.iter()
        .map(|d| d.json()["data"]["body"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn deliveries_are_signed_and_only_for_the_hooks_room_and_events() {
    let receiver = Receiver::start().await;
    let mut api = Api::start(setup(""));
    let admin = api.admin().await;
    let covered = api.room(&admin, "kitchen", false).await;
    let other = api.room(&admin, "garage", false).await;
    let (hook, secret) = create_hook(
        &api,
        &admin,
        json!({ "url": receiver.url("/in"), "events": ["message.created"], "room_id": covered }),
    )
    .await;
    assert!(secret.starts_with("whsec_"), "{secret}");

    api.say(&admin, other, "not for the hook").await;
    let msg = api.say(&admin, covered, "dinner is ready").await;
    // An edit is an event the hook did not ask for.
    let (status, _) = api
        .patch(
            &format!("/api/v1/rooms/{covered}/messages/{}", msg["id"]),
            &admin.token,
            json!({ "body": "dinner is ready!" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    api.say(&admin, covered, "second").await;

    let seen = receiver.wait_for(2).await;
    assert_eq!(bodies(&seen), ["dinner is ready", "second"]);
    let first = &seen[0];
    assert_eq!(first.path, "/in");
    assert_eq!(first.header("content-type"), "application/json");
    assert_eq!(first.header("x-roost-event"), "message.created");
    assert_eq!(first.header("x-roost-attempt"), "1");
    assert_signed(first, &secret);
    let body = first.json();
    assert_eq!(body["event"], "message.created");
    assert_eq!(body["room_id"], covered);
    assert_eq!(body["data"]["id"], msg["id"]);
    assert_eq!(body["data"]["author_bot"], false);
    assert!(body["seq"].as_i64().unwrap() > 0);

    let log = deliveries(&api, &admin, hook).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[1]["id"], first.header("x-roost-delivery"));
    assert_eq!(log[1]["state"], "delivered");
    assert_eq!(log[1]["last_status"], 200);
    assert_ne!(
        seen[0].header("x-roost-delivery"),
        seen[1].header("x-roost-delivery")
    );

    // The secret is shown once: never in a listing; rotating it changes what signs.
    let (_, listed) = api.get("/api/v1/webhooks", &admin).await;
    assert!(!listed.to_string().contains(&secret));
    let (status, rotated) = api
        .post(
            &format!("/api/v1/webhooks/{hook}/secret"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    api.say(&admin, covered, "third").await;
    let seen = receiver.wait_for(3).await;
    assert_signed(&seen[2], &new_secret);

    assert!(!receiver.seen().iter().any(|d| d.json()["room_id"] == other));
    let audit = api.audit(&admin, "type=webhook.created").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(!audit[0].to_string().contains(&receiver.addr.to_string()));
    assert!(
        api.metric("roost_webhook_attempts_total{result=\"delivered\"}")
            .await
            >= Some(3.0)
    );

    // Only admins manage webhooks.
    let member = api.member(&admin, "ada").await;
    let (status, _) = api.get("/api/v1/webhooks", &member).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_every_event_after_in_order_with_attempts_counted() {
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let mut api = Api::start(setup(""));
    let admin = api.admin().await;
    let room = api.room(&admin, "hall", false).await;
    let (hook, secret) = create_hook(
        &api,
        &admin,
        json!({ "url": receiver.url("/"), "events": ["message.created", "member.joined"] }),
    )
    .await;
    for text in ["one", "two", "three"] {
        api.say(&admin, room, text).await;
    }
    // The first delivery is retried while the receiver is down; the others wait behind it.
    eventually(DEADLINE, "a retried delivery", || async {
        let log = deliveries(&api, &admin, hook).await;
        let oldest = log.last()?;
        (oldest["attempts"].as_i64()? >= 2).then_some(())
    })
    .await;
    let log = deliveries(&api, &admin, hook).await;
    assert_eq!(log[0]["attempts"], 0, "later deliveries wait: {log:?}");
    assert_eq!(log.last().unwrap()["last_status"], 503);

    receiver.answer(200);
    let seen = receiver.wait_for(3).await;
    assert_eq!(bodies(&seen), ["one", "two", "three"]);
    assert!(seen[0].header("x-roost-attempt").parse::<u32>().unwrap() >= 3);
    assert_eq!(seen[1].header("x-roost-attempt"), "1");
    for d in &seen {
        assert_signed(d, &secret);
    }
    // The receiver has the bodies before the daemon has written down its answers.
    eventually(DEADLINE, "every delivery recorded as delivered", || async {
        let log = deliveries(&api, &admin, hook).await;
        log.iter().all(|d| d["state"] == "delivered").then_some(())
    })
    .await;
    assert!(
        api.metric("roost_webhook_attempts_total{result=\"failed\"}")
            .await
            >= Some(2.0)
    );
}

#[tokio::test]
async fn a_hook_that_keeps_failing_is_paused_and_sends_its_queue_when_resumed() {
    let receiver = Receiver::start().await;
    receiver.answer(500);
    let mut api = Api::start(setup("max_attempts = 2"));
    let admin = api.admin().await;
    let room = api.room(&admin, "hall", false).await;
    let (hook, _) = create_hook(
        &api,
        &admin,
        json!({ "url": receiver.url("/"), "events": ["message.created"] }),
    )
    .await;
    api.say(&admin, room, "before the pause").await;
    let paused = eventually(DEADLINE, "the hook paused", || async {
        let (_, h) = api.get(&format!("/api/v1/webhooks/{hook}"), &admin).await;
        h["paused_at"].is_string().then_some(h)
    })
    .await;
    assert!(
        paused["paused_reason"].as_str().unwrap().contains("500"),
        "{paused}"
    );
    assert_eq!(paused["pending"], 1);
    let audit = api.audit(&admin, "type=webhook.paused").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["target"], format!("webhook:{hook}"));
    assert_eq!(api.metric("roost_webhooks_paused_total").await, Some(1.0));

    // Paused, it still queues.
    api.say(&admin, room, "while paused").await;
    receiver.answer(200);
    let (status, resumed) = api
        .patch(
            &format!("/api/v1/webhooks/{hook}"),
            &admin.token,
            json!({ "paused": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    let seen = receiver.wait_for(2).await;
    assert_eq!(bodies(&seen), ["before the pause", "while paused"]);
}

/// A delivery's body is a copy of its event: retention's promise about messages holds for it.
/// One older than `[retention] message_days`, sent or still queued for a paused hook, goes
/// with the messages of its time, although the log alone would keep a sent one for
/// `[webhooks] delivery_log_days` (14 by default).
#[tokio::test]
async fn deliveries_do_not_outlive_the_messages_they_carry() {
    let receiver = Receiver::start().await;
    let mut api = Api::start(setup("[retention]\nmessage_days = 1\ninterval_secs = 1"));
    let admin = api.admin().await;
    let room = api.room(&admin, "hall", false).await;
    let (hook, _) = create_hook(
        &api,
        &admin,
        json!({ "url": receiver.url("/"), "events": ["message.created"] }),
    )
    .await;
    api.say(&admin, room, "old plans").await;
    api.say(&admin, room, "fresh plans").await;
    let seen = receiver.wait_for(2).await;
    let fresh_id = seen[1].header("x-roost-delivery").to_owned();
    eventually(DEADLINE, "both deliveries logged as delivered", || async {
        let log = deliveries(&api, &admin, hook).await;
        log.iter().all(|d| d["state"] == "delivered").then_some(())
    })
    .await;
    let (status, _) = api
        .patch(
            &format!("/api/v1/webhooks/{hook}"),
            &admin.token,
            json!({ "paused": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    api.say(&admin, room, "queued plans").await;

    // Age the old message and the queued one, with their deliveries, as if two days had passed
    // (the daemon's clock is real).
    let db = api.db();
    let two_days_ago = unix_ms_ago(Duration::from_secs(2 * 86_400));
    db.execute(
        "UPDATE messages SET created_at = ?1 WHERE body IN ('old plans', 'queued plans')",
        [two_days_ago],
    )
    .unwrap();
    let aged = db
        .execute(
            "UPDATE webhook_deliveries
                SET created_at = ?1, delivered_at = iif(delivered_at IS NULL, NULL, ?1)
              WHERE body LIKE '%old plans%' OR body LIKE '%queued plans%'",
            [two_days_ago],
        )
        .unwrap();
    assert_eq!(aged, 2);

    let log = eventually(DEADLINE, "retention to take the old deliveries", || async {
        let log = deliveries(&api, &admin, hook).await;
        (log.len() == 1).then_some(log)
    })
    .await;
    assert_eq!(log[0]["id"], fresh_id.as_str(), "{log:?}");
    let (_, shown) = api.get(&format!("/api/v1/webhooks/{hook}"), &admin).await;
    assert_eq!(shown["pending"], 0, "{shown}");
    // Nothing of the old texts is left in the database, in any table.
    let left: i64 = db
        .query_row(
            "SELECT (SELECT count(*) FROM webhook_deliveries WHERE body LIKE '%old plans%'
                        OR body LIKE '%queued plans%')
                  + (SELECT count(*) FROM messages WHERE body IN ('old plans', 'queued plans'))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn kill_9_with_deliveries_pending_loses_none() {
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let mut api = Api::start(setup("max_attempts = 100"));
    let admin = api.admin().await;
    let room = api.room(&admin, "hall", false).await;
    let (hook, secret) = create_hook(
        &api,
        &admin,
        json!({ "url": receiver.url("/"), "events": ["message.created"] }),
    )
    .await;
    let texts: Vec<String> = (0..5).map(|i| format!("message {i}")).collect();
    for t in &texts {
        api.say(&admin, room, t).await;
    }
    eventually(DEADLINE, "a failed attempt", || async {
        let log = deliveries(&api, &admin, hook).await;
        (log.last()?["attempts"].as_i64()? >= 1).then_some(())
    })
    .await;
    api.roost.signal(nix::sys::signal::Signal::SIGKILL);
    api.roost.wait_exit(DEADLINE);
    receiver.answer(200);

    let Api { roost, http } = api;
    let roost = roost.into_setup().start();
    let api = Api { roost, http };
    let seen = receiver.wait_for(5).await;
    // At least once: a repeat would carry the same delivery id; none is lost or reordered.
    let mut firsts: Vec<&Delivery> = Vec::new();
    for d in &seen {
        assert_signed(d, &secret);
        match firsts
            .iter()
            .find(|f| f.header("x-roost-delivery") == d.header("x-roost-delivery"))
        {
            Some(f) => assert_eq!(f.body, d.body),
            None => firsts.push(d),
        }
    }
    let got: Vec<String> = firsts
        .iter()
        .map(|d| d.json()["data"]["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, texts);
    let admin = api.signed_in("root", ADMIN_PASSWORD).await;
    let log = deliveries(&api, &admin, hook).await;
    assert!(log.iter().all(|d| d["state"] == "delivered"), "{log:?}");
}

/// True if the file at `path` holds `needle`'s bytes anywhere (free pages included).
fn file_holds(path: &std::path::Path, needle: &str) -> bool {
    std::fs::read(path)
        .unwrap()
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A hook's secret is in the database only sealed, with a key kept outside it and outside
/// every backup, so neither a copy of the database nor a backup can sign as this server; yet
/// deliveries are signed with it. A hook an older version stored in the clear keeps its
/// secret across the upgrade: the daemon seals it when it starts, leaving no trace of the
/// clear text in the file.
#[tokio::test]
async fn secrets_are_sealed_in_the_database_and_its_backups_and_still_sign() {
    let receiver = Receiver::start().await;
    let mut api = Api::start(setup(""));
    let admin = api.admin().await;
    let room = api.room(&admin, "hall", false).await;
    let (hook, secret) = create_hook(
        &api,
        &admin,
        json!({ "url": receiver.url("/"), "events": ["message.created"] }),
    )
    .await;
    let sealed: Vec<u8> = api
        .db()
        .query_row(
            "SELECT secret_sealed FROM webhooks WHERE id = ?1 AND secret = ''",
            [hook],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(&secret));

    // The hook as a version before sealing stored it: the secret in the clear.
    api.db()
        .execute(
            "UPDATE webhooks SET secret = ?1, secret_sealed = NULL WHERE id = ?2",
            (&secret, hook),
        )
        .unwrap();
    api.roost.signal(nix::sys::signal::Signal::SIGTERM);
    api.roost.wait_exit(DEADLINE);
    let db_file = api.roost.setup.data_dir().join("roost.sqlite3");
    assert!(file_holds(&db_file, &secret), "the old form is on disk");
    let Api { roost, http } = api;
    let api = Api {
        roost: roost.into_setup().start(),
        http,
    };
    let admin = api.signed_in("root", ADMIN_PASSWORD).await;

    api.say(&admin, room, "signed as before").await;
    let seen = receiver.wait_for(1).await;
    assert_signed(&seen[0], &secret);
    let out = api.roost.setup.run(&["backup"]);
    assert_exit_0(&out);
    let backup = backup_dir_from(&out).join("roost.sqlite3");
    assert!(!file_holds(&backup, &secret), "the secret is in the backup");
    let Api { mut roost, .. } = api;
    roost.signal(nix::sys::signal::Signal::SIGTERM);
    roost.wait_exit(DEADLINE);
    assert!(
        !file_holds(&db_file, &secret),
        "the secret is still in the database file"
    );
}

#[tokio::test]
async fn refused_addresses_are_refused_by_default() {
    let receiver = Receiver::start().await;
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let room = api.room(&admin, "hall", false).await;
    for url in [
        receiver.url("/"),
        format!("http://[::1]:{}/", receiver.addr.port()),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[fd00:ec2::254]/".to_owned(),
        "http://0.0.0.0/".to_owned(),
        "ftp://192.168.1.5/".to_owned(),
    ] {
        let (status, body) = api
            .post(
                "/api/v1/webhooks",
                &admin,
                json!({ "url": url, "events": ["message.created"] }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["error"]["code"], "webhook_url", "{body}");
    }
    // A name is checked once resolved: localhost is loopback, so nothing is sent.
    let (hook, _) = create_hook(
        &api,
        &admin,
        json!({ "url": format!("http://localhost:{}/", receiver.addr.port()),
                "events": ["message.created"] }),
    )
    .await;
    api.say(&admin, room, "stays home").await;
    let log = eventually(DEADLINE, "a refused attempt", || async {
        let log = deliveries(&api, &admin, hook).await;
        log.first()?["last_error"].is_string().then_some(log)
    })
    .await;
    assert!(
        log[0]["last_error"].as_str().unwrap().contains("loopback"),
        "{log:?}"
    );
    assert!(receiver.seen().is_empty());
}

#[tokio::test]
async fn security_alerts_reach_hooks_that_want_them_and_not_room_hooks() {
    let receiver = Receiver::start().await;
    let mut api = Api::start(setup(
        "[alerts]\nauth_failures_threshold = 3\nwindow_secs = 60\nmin_interval_secs = 3600",
    ));
    let admin = api.admin().await;
    let room = api.room(&admin, "hall", false).await;
    let (_, secret) = create_hook(
        &api,
        &admin,
        json!({ "url": receiver.url("/alerts"), "events": ["security.alert"] }),
    )
    .await;
    create_hook(
        &api,
        &admin,
        json!({ "url": receiver.url("/room"), "events": ["security.alert"], "room_id": room }),
    )
    .await;
    for name in ["mallory", "trudy", "eve"] {
        let (status, _) = api.login(name, "not the password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let seen = receiver.wait_for(1).await;
    assert_eq!(seen[0].path, "/alerts");
    assert_eq!(seen[0].header("x-roost-event"), "security.alert");
    assert_signed(&seen[0], &secret);
    let body = seen[0].json();
    assert_eq!(body["room_id"], Value::Null);
    assert_eq!(body["data"]["kind"], "auth_failures");
    assert!(body["data"]["count"].as_u64().unwrap() >= 3, "{body}");
    assert!(receiver.seen().iter().all(|d| d.path == "/alerts"));
}

#[tokio::test]
async fn calls_start_and_end_once_for_the_hooks_of_their_room() {
    let receiver = Receiver::start().await;
    let (setup, _) = with_fake_livekit(setup(""), "");
    let mut api = Api::start(setup);
    api.roost
        .wait_for_log(|v| v["message"] == "livekit ready", DEADLINE);
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let bob = api.member(&admin, "bob").await;
    let room = api.room(&admin, "kitchen", false).await;
    let other = api.room(&admin, "garage", false).await;
    let calls = json!(["call.started", "call.ended"]);
    let (_, secret) = create_hook(
        &api,
        &admin,
        json!({ "url": receiver.url("/kitchen"), "events": calls, "room_id": room }),
    )
    .await;
    // The garage's hook also wants messages: one of its room's comes after the calls, so
    // having it first proves no call event of the kitchen was queued for this hook.
    create_hook(
        &api,
        &admin,
        json!({ "url": receiver.url("/garage"), "events": ["call.started", "call.ended", "message.created"], "room_id": other }),
    )
    .await;
    let (a, b) = (format!("user-{}", alice.id), format!("user-{}", bob.id));

    // LiveKit retries a webhook it thinks was lost, so each one may come twice: late too.
    let joined = livekit_event("participant_joined", room, "RM_1", &a, "PA_a");
    let bob_joined = livekit_event("participant_joined", room, "RM_1", &b, "PA_b");
    let left = livekit_event("participant_left", room, "RM_1", &a, "PA_a");
    let finished = json!({ "event": "room_finished", "room": { "name": format!("roost-room-{room}"), "sid": "RM_1" } });
    for event in [
        &joined,
        &joined,
        &bob_joined,
        &left,
        &left,
        &finished,
        &finished,
        &joined,
        &bob_joined,
    ] {
        assert_eq!(post_livekit_webhook(&api, event).await, 200, "{event}");
    }
    // A second call: its events come after anything the repeats above could have queued.
    let second = livekit_event("participant_joined", room, "RM_2", &a, "PA_a2");
    assert_eq!(post_livekit_webhook(&api, &second).await, 200);
    let second_left = livekit_event("participant_left", room, "RM_2", &a, "PA_a2");
    assert_eq!(post_livekit_webhook(&api, &second_left).await, 200);

    let seen = eventually(DEADLINE, "the second call's end", || async {
        let seen: Vec<Delivery> = receiver
            .seen()
            .into_iter()
            .filter(|d| d.path == "/kitchen")
            .collect();
        (seen.len() >= 4).then_some(seen)
    })
    .await;
    let events: Vec<String> = seen.iter().map(|d| d.header("x-roost-event")).collect();
    assert_eq!(
        events,
        ["call.started", "call.ended", "call.started", "call.ended"],
        "{:?}",
        seen.iter().map(Delivery::json).collect::<Vec<_>>()
    );
    for d in &seen {
        assert_signed(d, &secret);
        let body = d.json();
        assert_eq!(body["event"], d.header("x-roost-event"));
        assert_eq!(body["room_id"], room);
        assert_eq!(body["seq"], Value::Null);
    }
    let started = seen[0].json();
    assert_eq!(started["data"]["first"]["user_id"], alice.id, "{started}");
    assert_eq!(started["data"]["first"]["identity"], a.as_str());
    assert_eq!(started["data"]["first"]["name"], a.as_str());
    assert_eq!(
        started["data"]["first"]["joined_at"],
        "2025-12-07T05:10:00Z"
    );
    assert_eq!(seen[2].json()["data"]["first"]["user_id"], alice.id);
    assert_eq!(seen[1].json()["data"], json!({}));

    let later = api.say(&admin, other, "after the calls").await;
    let garage = eventually(DEADLINE, "the garage's message", || async {
        receiver.seen().into_iter().find(|d| d.path == "/garage")
    })
    .await;
    assert_eq!(garage.header("x-roost-event"), "message.created");
    assert_eq!(garage.json()["data"]["id"], later["id"]);
}

#[tokio::test]
async fn the_cli_adds_a_hook_the_running_daemon_delivers_to() {
    let receiver = Receiver::start().await;
    let mut api = Api::start(setup(""));
    let admin = api.admin().await;
    let room = api.room(&admin, "hall", false).await;
    let out = api.roost.setup.run(&[
        "webhook",
        "add",
        &receiver.url("/cli"),
        "--events",
        "message.created,member.joined",
    ]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let secret = printed
        .lines()
        .find_map(|l| l.strip_prefix("secret (shown only now): "))
        .unwrap_or_else(|| panic!("no secret in {printed}"))
        .to_owned();
    api.say(&admin, room, "from the api").await;
    let seen = receiver.wait_for(1).await;
    assert_eq!(bodies(&seen), ["from the api"]);
    assert_signed(&seen[0], &secret);

    let out = api.roost.setup.run(&["webhook", "list"]);
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed.contains("/cli") && !listed.contains(&secret),
        "{listed}"
    );
    let out = api
        .roost
        .setup
        .run(&["webhook", "add", "http://127.0.0.1:1/", "--events", "nope"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let audit = api.audit(&admin, "type=webhook.created").await;
    assert_eq!(audit[0]["actor"], "cli");
}

async fn incoming_hook(api: &Api, by: &User, room: i64, name: &str) -> Value {
    let (status, hook) = api
        .post(
            &format!("/api/v1/rooms/{room}/hooks"),
            by,
            json!({ "name": name }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    hook
}

#[tokio::test]
async fn incoming_hooks_post_as_a_bot_with_their_own_limits() {
    let mut api = Api::start(Setup::new().toml(
        "[webhooks]\nincoming_max_body_bytes = 1024\nincoming_burst = 3\nincoming_per_minute = 1",
    ));
    let admin = api.admin().await;
    let member = api.member(&admin, "ada").await;
    let room = api.room(&admin, "hall", false).await;
    api.add(&admin, room, &member).await;
    let (status, body) = api
        .post(
            &format!("/api/v1/rooms/{room}/hooks"),
            &member,
            json!({ "name": "Doorbell" }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let hook = incoming_hook(&api, &admin, room, "Doorbell").await;
    let path = hook["path"].as_str().unwrap().to_owned();
    let token = hook["token"].as_str().unwrap();
    assert_eq!(path, format!("/hooks/{token}"));
    let post = |path: String, body: String| {
        let http = api.http.clone();
        let url = api.roost.https_url(&path);
        async move {
            let resp = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, msg) = post(path.clone(), r#"{"text":"ding dong"}"#.into()).await;
    assert_eq!(status, StatusCode::CREATED, "{msg}");
    assert_eq!(msg["body"], "ding dong");
    assert_eq!(msg["author_bot"], true);
    assert_eq!(msg["author_id"], hook["bot_id"]);
    let (_, members) = api
        .get(&format!("/api/v1/rooms/{room}/members"), &member)
        .await;
    let bot = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == hook["bot_id"])
        .unwrap()
        .clone();
    assert_eq!(bot["bot"], true);
    assert_eq!(bot["display_name"], "Doorbell");
    let (_, history) = api
        .get(&format!("/api/v1/rooms/{room}/messages"), &member)
        .await;
    assert!(history.to_string().contains("ding dong"));

    // Same checks as any message; bad token 404; oversized 413; its own bucket 429.
    let (status, body) = post(path.clone(), r#"{"text":"   "}"#.into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Unknown fields are refused; so is a name: it is the URL's, a message cannot borrow one.
    let (status, body) = post(path.clone(), r#"{"text":"x","name":"Mallory"}"#.into()).await;
    assert_error(&(status, body), StatusCode::BAD_REQUEST, "invalid_body");
    let (status, body) = post(
        format!("/hooks/{}", "0".repeat(64)),
        r#"{"text":"x"}"#.into(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let big = format!(r#"{{"text":"{}"}}"#, "a".repeat(2000));
    let (status, body) = post(path.clone(), big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, body) = post(path.clone(), r#"{"text":"x"}"#.into()).await;
    assert_error(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );

    // The bot cannot sign in; revoking the URL makes it 404.
    let (status, _) = api
        .login(hook["bot_username"].as_str().unwrap(), "!bot")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api
        .delete(
            &format!("/api/v1/rooms/{room}/hooks/{}", hook["id"]),
            &admin.token,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = post(path, r#"{"text":"late"}"#.into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let audit = api.audit(&admin, "type=incoming_hook.revoked").await;
    assert_eq!(audit.len(), 1);
}

#[tokio::test]
async fn bots_have_api_keys_only_and_are_marked() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let room = api.room(&admin, "hall", false).await;
    let (status, made) = api
        .post(
            "/api/v1/bots",
            &admin,
            json!({ "username": "thermostat", "display_name": "Thermostat" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["user"]["bot"], true);
    assert_eq!(made["user"]["role"], "member");
    let key = made["api_key"]["key"].as_str().unwrap().to_owned();

    // It joins a public room itself, with its key, like anyone.
    let (status, body) = api
        .put(
            &format!("/api/v1/rooms/{room}/members/{}", made["user"]["id"]),
            &key,
            json!({}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, msg) = api
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &key,
            json!({ "body": "21.5 °C" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{msg}");
    assert_eq!(msg["author_bot"], true);

    // No password sign-in, no admin scope, and a least-privilege role.
    let (status, _) = api.login("thermostat", "anything at all").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api.get("/api/v1/webhooks", &key).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = api
        .post(
            "/api/v1/bots",
            &admin,
            json!({ "username": "boss", "scopes": ["admin"] }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, users) = api.get("/api/v1/users", &admin).await;
    let listed = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "thermostat")
        .unwrap()
        .clone();
    assert_eq!(listed["bot"], true);

    // Nor can an admin make it one.
    let bot = made["user"]["id"].as_i64().unwrap();
    let (status, body) = api
        .patch(
            &format!("/api/v1/users/{bot}"),
            &admin.token,
            json!({ "role": "admin" }),
        )
        .await;
    assert_error(
        &(status, body),
        StatusCode::BAD_REQUEST,
        "bot_cannot_be_admin",
    );
    let (_, users) = api.get("/api/v1/users", &admin).await;
    let role = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == bot)
        .unwrap()["role"]
        .clone();
    assert_eq!(role, "member");
    let (_, audit) = api.get("/api/v1/audit?limit=200", &admin).await;
    assert!(!audit.to_string().contains("user.role_changed"), "{audit}");
}

/// The fenced block after `<!-- example: NAME -->` in docs/integrations.md.
fn doc_example(name: &str) -> String {
    let doc = read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/integrations.md"));
    let marker = format!("<!-- example: {name} -->");
    let after = &doc[doc.find(&marker).unwrap_or_else(|| panic!("no {marker}")) + marker.len()..];
    let start = after.find("```").unwrap();
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_owned()
}

fn write_ca(api: &Api) -> std::path::PathBuf {
    let path = api.roost.setup.dir.path().join("ca-for-examples.crt");
    std::fs::write(&path, api.roost.ca_pem()).unwrap();
    path
}

#[tokio::test]
async fn the_shell_and_home_assistant_senders_of_the_docs_post_to_a_room() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let room = api.room(&admin, "hall", false).await;
    let hook = incoming_hook(&api, &admin, room, "Backup").await;
    let url = api.roost.https_url(hook["path"].as_str().unwrap());

    // Shell: the script with its arguments, as a cron job would run it.
    let script = api.roost.setup.dir.path().join("roost-say");
    std::fs::write(&script, doc_example("shell-post")).unwrap();
    let out = std::process::Command::new("sh")
        .arg(&script)
        .args(["Backup", "failed", "on", "\"nas\"", "C:\\backup"])
        .env("ROOST_HOOK_URL", &url)
        .env("ROOST_CA", write_ca(&api))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // Home Assistant: the rest_command, sent as Home Assistant renders it for the automation.
    let yaml: Value = serde_yaml::from_str(&doc_example("home-assistant-post")).unwrap();
    let command = &yaml["rest_command"]["roost_say"];
    let action = &yaml["automation"][0]["action"][0];
    assert_eq!(action["service"], "rest_command.roost_say");
    let message = action["data"]["message"].as_str().unwrap();
    let payload = command["payload"].as_str().unwrap().replace(
        "{{ message | tojson }}",
        &serde_json::to_string(message).unwrap(),
    );
    let ha_url = command["url"]
        .as_str()
        .unwrap()
        .replace("https://roost.local/hooks/YOUR_TOKEN", &url);
    let resp = api
        .http
        .request(command["method"].as_str().unwrap().parse().unwrap(), ha_url)
        .header("content-type", command["content_type"].as_str().unwrap())
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    let (_, history) = api
        .get(&format!("/api/v1/rooms/{room}/messages"), &admin)
        .await;
    let said: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author_bot"] == true)
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert!(
        said.contains(&"Backup failed on \"nas\" C:\\backup"),
        "{said:?}"
    );
    assert!(said.contains(&"Someone is at the door"), "{said:?}");
}

#[tokio::test]
async fn the_n8n_shell_and_home_assistant_receivers_of_the_docs_accept_real_deliveries() {
    let receiver = Receiver::start().await;
    let mut api = Api::start(setup(""));
    let admin = api.admin().await;
    let room = api.room(&admin, "family", false).await;
    let (_, secret) = create_hook(
        &api,
        &admin,
        json!({ "url": receiver.url("/api/webhook/roost-family"), "events": ["message.created"],
                "room_id": room }),
    )
    .await;
    api.say(&admin, room, "home at 6").await;
    let d = receiver.wait_for(1).await.remove(0);
    let dir = api.roost.setup.dir.path();
    let body_file = dir.join("delivery.json");
    std::fs::write(&body_file, &d.body).unwrap();

    // Home Assistant's webhook trigger: its id is the path, and the templates find their values.
    let yaml: Value = serde_yaml::from_str(&doc_example("home-assistant-trigger")).unwrap();
    let trigger = &yaml["automation"][0]["trigger"][0];
    assert_eq!(
        d.path,
        format!("/api/webhook/{}", trigger["webhook_id"].as_str().unwrap())
    );
    let data = &yaml["automation"][0]["action"][0]["data"];
    assert_eq!(data["message"], "{{ trigger.json.data.body }}");
    assert_eq!(d.json()["data"]["body"], "home at 6");
    assert_eq!(d.json()["data"]["author"], "root");

    // The shell check: genuine passes, a changed body or a wrong secret fails.
    let verify = dir.join("verify-roost");
    std::fs::write(&verify, doc_example("shell-verify")).unwrap();
    let run = |secret: &str, file: &std::path::Path| {
        std::process::Command::new("sh")
            .arg(&verify)
            .args([
                secret,
                &d.header("x-roost-timestamp"),
                &d.header("x-roost-signature"),
            ])
            .arg(file)
            .status()
            .unwrap()
            .success()
    };
    assert!(run(&secret, &body_file));
    assert!(!run("whsec_wrong", &body_file));
    let tampered = dir.join("tampered.json");
    std::fs::write(
        &tampered,
        String::from_utf8_lossy(&d.body).replace("6", "7"),
    )
    .unwrap();
    assert!(!run(&secret, &tampered));

    // n8n: the Code node's check, run by node on the bytes and headers as received.
    let script = format!(
        "{}\nconst fs = require('fs');\nconst [secret, ts, sig, file, now] = process.argv.slice(2);\n\
         const ok = verifyRoost(secret, {{ 'x-roost-timestamp': ts, 'x-roost-signature': sig }}, \
         fs.readFileSync(file), Number(now));\nprocess.exit(ok ? 0 : 1);\n",
        doc_example("n8n-verify")
    );
    let js = dir.join("verify.js");
    std::fs::write(&js, script).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let node = |secret: &str, file: &std::path::Path, now: u64| {
        std::process::Command::new("node")
            .arg(&js)
            .args([
                secret,
                &d.header("x-roost-timestamp"),
                &d.header("x-roost-signature"),
            ])
            .arg(file)
            .arg(now.to_string())
            .status()
            .unwrap()
            .success()
    };
    assert!(node(&secret, &body_file, now));
    assert!(!node(&secret, &tampered, now));
    assert!(!node("whsec_wrong", &body_file, now));
    assert!(
        !node(&secret, &body_file, now + 3600),
        "a replay an hour later"
    );
}
