//! The realtime gateway as clients see it: the real binary, TLS WebSockets, resume cursors,
//! fan-out to many sockets, a stalled reader, close codes, and shutdown.

use std::time::Duration;

use crate::support::*;
use futures_util::future::join_all;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn last_seq(ready: &Value, room: i64) -> i64 {
    ready["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room_id"] == room)
        .unwrap_or_else(|| panic!("room {room} not in {ready}"))["last_seq"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_returns_exactly_the_missed_events_then_live_ones() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let room = api.room(&admin, "general", false).await;
    api.add(&admin, room, &alice).await;

    let (mut ws, ready) = api.ws_ready(&alice, None).await;
    let start = last_seq(&ready, room);
    api.say(&admin, room, "one").await;
    let seen = ws.next_event(WAIT).await;
    assert_eq!(seen["seq"], start + 1, "{seen}");
    assert_eq!(seen["type"], "message.created");
    assert_eq!(seen["data"]["body"], "one");
    let cursor = seen["seq"].as_i64().unwrap();
    drop(ws);

    // Missed while away: two posts, an edit and a delete.
    let two = api.say(&admin, room, "two").await;
    let three = api.say(&admin, room, "three").await;
    let path = |m: &Value| format!("/api/v1/rooms/{room}/messages/{}", m["id"]);
    let (s, _) = api
        .patch(&path(&two), &admin.token, json!({ "body": "two!" }))
        .await;
    assert_eq!(s, 200);
    let (s, tomb) = api.delete(&path(&three), &admin.token).await;
    assert_eq!((s.as_u16(), tomb["deleted"].clone()), (200, json!(true)));

    // Resume while more messages keep arriving: the replay and the live stream must join
    // without a gap or a duplicate.
    let (http, url, token) = (
        api.http.clone(),
        api.roost
            .https_url(&format!("/api/v1/rooms/{room}/messages")),
        admin.token.clone(),
    );
    let poster = tokio::spawn(async move {
        for i in 0..20 {
            let r = http
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({ "body": format!("live {i}") }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    });
    let (mut ws, ready) = api
        .ws_ready(&alice, Some(json!({ room.to_string(): cursor })))
        .await;
    assert_eq!(ready["resumed"], json!([room]), "{ready}");
    poster.await.unwrap();
    let (_, room_now) = api.get(&format!("/api/v1/rooms/{room}"), &admin).await;
    let last = room_now["last_seq"].as_i64().unwrap();

    let mut events = Vec::new();
    while events
        .last()
        .is_none_or(|e: &Value| e["seq"].as_i64() != Some(last))
    {
        events.push(ws.next_event(WAIT).await);
    }
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, ((cursor + 1)..=last).collect::<Vec<_>>());
    let kinds: Vec<&str> = events[..4]
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "message.created",
            "message.created",
            "message.updated",
            "message.deleted"
        ]
    );
    assert_eq!(events[2]["data"]["body"], "two!");
    let bodies: Vec<&str> = events[4..]
        .iter()
        .map(|e| e["data"]["body"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..20).map(|i| format!("live {i}")).collect();
    assert_eq!(bodies, want);

    // And nothing more arrives after the last one until something happens.
    api.say(&admin, room, "after").await;
    let next = ws.next_event(WAIT).await;
    assert_eq!(
        (next["seq"].as_i64(), &next["data"]["body"]),
        (Some(last + 1), &json!("after"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_starts_get_clear_close_codes() {
    let mut api = Api::start(
        Setup::new().toml("[gateway]\nauth_timeout_secs = 1\nresume_events_per_room = 5\nmax_connections_per_user = 2\n"),
    );
    let admin = api.admin().await;
    let room = api.room(&admin, "r", false).await;

    // No auth frame in time.
    let mut ws = api.ws().await;
    assert_eq!(ws.close_code(WAIT).await.0, 4001);
    // A wrong token.
    let mut ws = api.ws().await;
    ws.send(json!({ "op": "auth", "token": "nope" })).await;
    assert_eq!(ws.close_code(WAIT).await.0, 4001);

    // A cursor older than the 5 events kept: resync.
    for i in 0..8 {
        api.say(&admin, room, &format!("m{i}")).await;
    }
    let mut ws = api.ws().await;
    ws.send(json!({ "op": "resume", "token": admin.token, "cursors": { room.to_string(): 1 } }))
        .await;
    let (code, reason) = ws.close_code(WAIT).await;
    assert_eq!(code, 4009);
    assert!(reason.contains("resync"), "{reason}");
    // A recent one is fine.
    let (_, ready) = api
        .ws_ready(&admin, Some(json!({ room.to_string(): 7 })))
        .await;
    assert_eq!(ready["resumed"], json!([room]));

    // The per-account cap (2; one is open above).
    let (_second, _) = api.ws_ready(&admin, None).await;
    let mut third = api.ws().await;
    third
        .send(json!({ "op": "auth", "token": admin.token }))
        .await;
    assert_eq!(third.close_code(WAIT).await.0, 4029);
    eventually(WAIT, "the auth timeout counted", || async {
        let m = api
            .metric("roost_ws_disconnects_total{reason=\"auth_timeout\"}")
            .await;
        (m == Some(1.0)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_sockets_all_receive_a_message() {
    let mut api = Api::start(Setup::new().toml("[gateway]\nmax_connections_per_user = 500\n"));
    let admin = api.admin().await;
    let bob = api.member(&admin, "bob").await;
    let room = api.room(&admin, "crowd", false).await;
    api.add(&admin, room, &bob).await;

    let mut sockets = Vec::new();
    for _ in 0..200 {
        sockets.push(api.ws_ready(&bob, None).await.0);
    }
    eventually(WAIT, "200 gateway connections", || async {
        (api.metric("roost_ws_connections").await == Some(200.0)).then_some(())
    })
    .await;
    // Upgraded sockets keep their connection slot (max_connections, the per-address share).
    let open = api
        .metric("roost_open_connections{listener=\"https\"}")
        .await
        .unwrap();
    assert!(open >= 200.0, "{open} https connections counted");
    let sent = api.say(&admin, room, "hello, everyone").await;
    let received = join_all(sockets.iter_mut().map(|ws| ws.next_event(WAIT))).await;
    for event in &received {
        assert_eq!(event["data"]["id"], sent["id"]);
        assert_eq!(event["data"]["body"], "hello, everyone");
    }
    assert_eq!(received.len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_is_disconnected_while_others_keep_receiving() {
    let mut api = Api::start(Setup::new().toml("[gateway]\nqueue_capacity = 16\n"));
    let admin = api.admin().await;
    let room = api.room(&admin, "busy", false).await;

    // The stalled client: a tiny receive buffer, and it reads nothing after `ready`.
    let url = api
        .roost
        .https_url("/api/v1/gateway")
        .replace("https", "wss");
    let tls = tls_connect(&api.roost, Some(4096)).await;
    let (inner, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    let mut stalled = Ws { inner };
    stalled
        .send(json!({ "op": "auth", "token": admin.token }))
        .await;
    assert_eq!(stalled.next_json(WAIT).await["op"], "ready");

    // The healthy client reads everything, concurrently.
    let (mut healthy, _) = api.ws_ready(&admin, None).await;
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0usize);
    let reader = tokio::spawn(async move {
        let mut n = 0;
        loop {
            match healthy.next_or_end(Duration::from_secs(60)).await {
                Ok(v) if v["op"] == "event" => {
                    n += 1;
                    let _ = count_tx.send(n);
                }
                Ok(_) => {}
                Err(e) => panic!("the healthy client was disconnected: {e:?}"),
            }
        }
    });

    let body = "x".repeat(4000);
    let mut posted = 0;
    let slow = "roost_ws_disconnects_total{reason=\"slow_consumer\"}";
    loop {
        api.say(&admin, room, &body).await;
        posted += 1;
        if posted % 5 == 0 && api.metric(slow).await == Some(1.0) {
            break;
        }
        assert!(posted < 5000, "the stalled reader was never disconnected");
    }
    // The stalled client, reading at last, finds the close frame after what was buffered.
    let (code, reason) = stalled.close_code(Duration::from_secs(30)).await;
    assert_eq!(code, 4008, "{reason}");

    // Everyone else got every message, and keeps getting them.
    api.say(&admin, room, "still here").await;
    posted += 1;
    tokio::time::timeout(WAIT, count_rx.wait_for(|n| *n == posted))
        .await
        .expect("the healthy reader got every message")
        .expect("the healthy reader is running");
    assert!(!reader.is_finished());
    reader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_socket_with_1001() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(api.ws_ready(&admin, None).await.0);
    }
    let mut unauthenticated = api.ws().await;
    api.roost.signal(nix::sys::signal::Signal::SIGTERM);
    for ws in &mut sockets {
        assert_eq!(ws.close_code(WAIT).await.0, 1001);
    }
    assert_eq!(unauthenticated.close_code(WAIT).await.0, 1001);
    let status = api.roost.wait_exit(WAIT);
    assert!(status.success(), "{status}");
}

/// Frames until the next `event`; panics on any `call` frame before it.
async fn no_call_frame_before_next_event(ws: &mut Ws) -> Value {
    loop {
        let v = ws.next_json(WAIT).await;
        assert_ne!(v["op"], "call", "a call frame reached a non-member: {v}");
        if v["op"] == "event" {
            return v;
        }
    }
}

/// The next `call` frame (presence, typing and the timeline's call entries skipped).
async fn next_call(ws: &mut Ws) -> Value {
    loop {
        let v = ws.next_json(WAIT).await;
        if v["op"] == "call" {
            return v;
        }
        let call_entry = v["type"] == "message.created" && v["data"]["kind"] != "text";
        assert!(
            v["op"] != "event" || call_entry,
            "expected a call frame, got {v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn livekit_webhooks_become_call_events_for_the_rooms_members_only() {
    let (setup, port) = with_fake_livekit(Setup::new(), "");
    let mut api = Api::start(setup);
    api.roost
        .wait_for_log(|v| v["message"] == "livekit ready", WAIT);
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let bob = api.member(&admin, "bob").await;
    let room = api.room(&alice, "call", true).await;
    // Bob is in another room only, where a message will follow the call events.
    let other = api.room(&admin, "other", true).await;
    api.add(&admin, other, &bob).await;

    let (mut alice_ws, _) = api.ws_ready(&alice, None).await;
    let (mut bob_ws, _) = api.ws_ready(&bob, None).await;
    let lk_room = format!("roost-room-{room}");
    let identity = format!("user-{}", alice.id);

    // LiveKit (the fake) signs and delivers participant_joined to the internal listener.
    let sent = fake_livekit_webhook(port, json!({ "event": "participant_joined", "room": lk_room, "identity": identity, "sid": "PA_alice" })).await;
    assert_eq!(sent["status"], 200, "{}", api.roost.raw_logs());
    let joined = next_call(&mut alice_ws).await;
    assert_eq!(joined["type"], "call.participant_joined", "{joined}");
    assert_eq!(joined["room_id"], room);
    assert_eq!(joined["data"]["user_id"], alice.id);
    assert_eq!(joined["data"]["identity"], identity.as_str());
    let (s, call) = api.get(&format!("/api/v1/rooms/{room}/call"), &alice).await;
    assert_eq!(s, 200);
    let who: Vec<&Value> = call["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["user_id"])
        .collect();
    assert_eq!(who, vec![&json!(alice.id)], "{call}");

    // A webhook signed here, posted straight to /livekit/webhook: participant_left.
    let body = json!({
        "event": "participant_left",
        "room": { "name": lk_room },
        "participant": { "identity": identity, "sid": "PA_alice" },
    });
    assert_eq!(post_livekit_webhook(&api, &body).await, 200);
    let left = next_call(&mut alice_ws).await;
    assert_eq!(left["type"], "call.participant_left", "{left}");
    assert_eq!(left["room_id"], room);
    assert_eq!(left["data"]["user_id"], alice.id);
    let (_, call) = api.get(&format!("/api/v1/rooms/{room}/call"), &alice).await;
    assert_eq!(call["participants"], json!([]), "{call}");

    // Bob, not a member: neither call event came before this later message of his room.
    let later = api.say(&admin, other, "after the call").await;
    let next = no_call_frame_before_next_event(&mut bob_ws).await;
    assert_eq!(next["data"]["id"], later["id"]);
    // And he may not ask who is in the call (he cannot see the private room).
    let (s, _) = api.get(&format!("/api/v1/rooms/{room}/call"), &bob).await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_older_than_the_events_kept_by_age_is_told_to_resync() {
    let mut api = Api::start(Setup::new().toml("[retention]\nevent_days = 1\ninterval_secs = 1\n"));
    let admin = api.admin().await;
    let room = api.room(&admin, "r", false).await;
    for i in 0..5 {
        api.say(&admin, room, &format!("m{i}")).await;
    }
    let (_, now) = api.get(&format!("/api/v1/rooms/{room}"), &admin).await;
    let last = now["last_seq"].as_i64().unwrap();

    // Age the first three events by two days (the daemon's clock is real); retention then
    // drops them, and only them.
    let db = api.db();
    let two_days_ago_ms = unix_ms_ago(Duration::from_secs(2 * 86_400));
    db.execute(
        "UPDATE events SET at = ?1 WHERE room_id = ?2 AND seq <= 3",
        (two_days_ago_ms, room),
    )
    .unwrap();
    let oldest = || -> Option<i64> {
        db.query_row(
            "SELECT min(seq) FROM events WHERE room_id = ?1",
            [room],
            |r| r.get(0),
        )
        .unwrap()
    };
    eventually(WAIT, "retention to drop the old events", || async {
        (oldest() == Some(4)).then_some(())
    })
    .await;

    // Resuming from before what is kept: an explicit close, 4009, saying what to do.
    let mut ws = api.ws().await;
    ws.send(json!({ "op": "auth", "token": admin.token, "cursors": { room.to_string(): 1 } }))
        .await;
    let (code, reason) = ws.close_code(WAIT).await;
    assert_eq!(code, 4009, "{reason}");
    assert!(
        reason.contains("resync") && reason.contains("HTTP") && reason.ends_with(&room.to_string()),
        "{reason}"
    );
    // From the oldest kept one on, resume still works, and replays exactly what is missing.
    let (mut ws, ready) = api
        .ws_ready(&admin, Some(json!({ room.to_string(): 3 })))
        .await;
    assert_eq!(ready["resumed"], json!([room]), "{ready}");
    let replayed: Vec<i64> = {
        let mut v = Vec::new();
        while v.last() != Some(&last) {
            v.push(ws.next_event(WAIT).await["seq"].as_i64().unwrap());
        }
        v
    };
    assert_eq!(replayed, (4..=last).collect::<Vec<_>>());
    // Without cursors (what a client does after reloading over HTTP) it connects as usual.
    let (_, ready) = api.ws_ready(&admin, None).await;
    assert_eq!(last_seq(&ready, room), last);
}

/// Found while writing the `gateway_frame` fuzz target: a resume cursor of `i64::MIN`
/// overflowed the "events missed" subtraction, a panic in debug builds that dropped the
/// connection without a close frame. Any cursor the log cannot serve is a resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_resume_cursor_is_a_resync() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let room = api.room(&admin, "r", false).await;
    for cursor in [i64::MIN, -1, i64::MAX] {
        let mut ws = api.ws().await;
        ws.send(json!({ "op": "resume", "token": admin.token, "cursors": { room.to_string(): cursor } }))
            .await;
        assert_eq!(ws.close_code(WAIT).await.0, 4009, "cursor {cursor}");
    }
}

/// How soon a revoked sign-in's sockets must be closed. The server closes them at once for
/// changes made through it and within a second for the command line's; the rest is room for
/// a loaded test machine (before, they stayed open until the next 20 s ping).
const CLOSE_WITHIN: Duration = Duration::from_secs(3);

/// Reads `ws` until it closes: no room event may arrive first (everything before the
/// revocation was read), and the close is 4003 within [`CLOSE_WITHIN`] of `since`.
async fn closed_as_revoked(ws: &mut Ws, since: std::time::Instant, what: &str) {
    let (frames, code, reason) = ws.frames_until_close(WAIT).await;
    let events: Vec<&Value> = frames.iter().filter(|f| f["op"] == "event").collect();
    assert!(
        events.is_empty(),
        "{what}: delivered after the revocation: {events:?}"
    );
    assert_eq!(code, 4003, "{what}: {reason}");
    assert!(
        since.elapsed() < CLOSE_WITHIN,
        "{what}: closed {:?} after the revocation",
        since.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_sign_in_stops_its_sockets_at_once_with_4003() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let room = api.room(&admin, "general", false).await;
    for kind in ["logout", "password", "disable", "apikey"] {
        let who = api.member(&admin, &format!("user{kind}")).await;
        api.add(&admin, room, &who).await;
        let (key_id, signed_in) = if kind == "apikey" {
            let (id, key) = api.api_key(&who, &["read"]).await;
            (
                id,
                User {
                    token: key,
                    ..who.clone()
                },
            )
        } else {
            (0, who.clone())
        };
        let (mut ws, _) = api.ws_ready(&signed_in, None).await;

        let (status, body) = match kind {
            "logout" => api.post("/api/v1/auth/logout", &who, json!({})).await,
            "password" => {
                api.post(
                    "/api/v1/auth/password",
                    &who,
                    json!({ "current_password": MEMBER_PASSWORD, "new_password": "another password 2" }),
                )
                .await
            }
            "disable" => {
                let (s, v) = api.patch(&format!("/api/v1/users/{}", who.id), &admin.token, json!({ "disabled": true }))
                    .await;
                (s, v)
            }
            _ => {
                let (s, v) = api.delete(&format!("/api/v1/api-keys/{key_id}"), &who.token)
                    .await;
                (s, v)
            }
        };
        assert!(status.is_success(), "{kind}: {status} {body}");
        let revoked = std::time::Instant::now();
        api.say(&admin, room, &format!("after {kind}")).await;
        closed_as_revoked(&mut ws, revoked, kind).await;
    }
    eventually(WAIT, "the disconnects counted", || async {
        let m = api
            .metric("roost_ws_disconnects_total{reason=\"revoked\"}")
            .await;
        (m == Some(4.0)).then_some(())
    })
    .await;
}

/// `roost user disable` runs in another process, which does not move the daemon's store
/// generation: the gateway's periodic re-check finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_from_the_command_line_closes_sockets_within_a_second() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let (mut ws, _) = api.ws_ready(&alice, None).await;
    let out = api.roost.setup.run(&["user", "disable", "alice"]);
    assert_exit_0(&out);
    let disabled = std::time::Instant::now();
    let (_, code, reason) = ws.frames_until_close(WAIT).await;
    assert_eq!(code, 4003, "{reason}");
    assert!(
        disabled.elapsed() < CLOSE_WITHIN,
        "{:?}",
        disabled.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_too_many_frames_is_closed_with_1008() {
    let mut api = Api::start(
        Setup::new().toml("[gateway]\nclient_frames_burst = 5\nclient_frames_per_sec = 1\n"),
    );
    let admin = api.admin().await;

    // After `ready`: JSON pings, each answered, until the budget (the auth frame took one)
    // runs dry.
    let (mut ws, _) = api.ws_ready(&admin, None).await;
    for _ in 0..10 {
        ws.send(json!({ "op": "ping" })).await;
    }
    let (frames, code, reason) = ws.frames_until_close(WAIT).await;
    assert_eq!(code, 1008, "{reason}");
    assert!(frames.len() <= 5, "{frames:?}");

    // Before authenticating: WebSocket pings count as well (they are answered by the server).
    let mut ws = api.ws().await;
    for _ in 0..10 {
        use futures_util::SinkExt;
        ws.inner
            .send(tokio_tungstenite::tungstenite::Message::Ping(
                b"x".to_vec().into(),
            ))
            .await
            .unwrap();
    }
    assert_eq!(ws.close_code(WAIT).await.0, 1008);
    eventually(WAIT, "the disconnects counted", || async {
        let m = api
            .metric("roost_ws_disconnects_total{reason=\"too_many_frames\"}")
            .await;
        (m == Some(2.0)).then_some(())
    })
    .await;
}

/// The typing throttle (one per room per 2 s) used to forget every room once 256 room ids had
/// been sent, including ids of rooms the sender is not in: 256 made-up ids let the next
/// `typing` through again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_for_rooms_one_is_not_in_cannot_reset_the_throttle() {
    let mut api = Api::start(
        Setup::new().toml("[gateway]\nclient_frames_burst = 2000\nclient_frames_per_sec = 1000\n"),
    );
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let (mut watcher, _) = api.ws_ready(&admin, None).await;
    let (mut typist, _) = api.ws_ready(&alice, None).await;

    // The throttle lasts 2 s: a run that took longer than that proves nothing, so try again
    // in a room of its own.
    for attempt in 0..3 {
        let room = api.room(&admin, &format!("r{attempt}"), false).await;
        api.add(&admin, room, &alice).await;
        let started = std::time::Instant::now();
        typist
            .send(json!({ "op": "typing", "room_id": room }))
            .await;
        for other in 0..300 {
            typist
                .send(json!({ "op": "typing", "room_id": 1_000_000 + other }))
                .await;
        }
        typist
            .send(json!({ "op": "typing", "room_id": room }))
            .await;
        // Frames are handled in order: the pong says every typing above was.
        typist.send(json!({ "op": "ping" })).await;
        while typist.next_json(WAIT).await["op"] != "pong" {}
        let took = started.elapsed();
        let marker = api.say(&admin, room, &format!("marker {attempt}")).await;
        let mut typing = 0;
        loop {
            let v = watcher.next_json(WAIT).await;
            if v["op"] == "typing" {
                assert_eq!(
                    (v["room_id"].as_i64(), v["user_id"].as_i64()),
                    (Some(room), Some(alice.id))
                );
                typing += 1;
            }
            if v["op"] == "event" && v["data"]["id"] == marker["id"] {
                break;
            }
        }
        if took < Duration::from_millis(1500) {
            assert_eq!(typing, 1, "the second typing for the room got through");
            return;
        }
    }
    panic!("three attempts each took longer than the typing throttle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_keys_only_listen_and_have_slots_of_their_own() {
    let mut api =
        Api::start(Setup::new().toml(
            "[gateway]\nmax_connections_per_user = 2\nmax_api_key_connections_per_user = 2\n",
        ));
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let room = api.room(&admin, "r", false).await;
    api.add(&admin, room, &alice).await;
    let (mut watcher, _) = api.ws_ready(&admin, None).await;

    let (_, key) = api.api_key(&alice, &["read"]).await;
    let bot = User {
        token: key,
        ..alice.clone()
    };
    let (mut reader, ready) = api.ws_ready(&bot, None).await;
    assert_eq!(ready["rooms"][0]["room_id"], room, "{ready}");
    // It receives, but may not write: typing is refused with an error frame.
    reader
        .send(json!({ "op": "typing", "room_id": room }))
        .await;
    let refused = reader.next_json(WAIT).await;
    assert_eq!(
        (refused["op"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("insufficient_scope")),
        "{refused}"
    );
    // Neither its typing nor its arrival (presence) reached the room.
    let marker = api.say(&admin, room, "marker").await;
    loop {
        let v = watcher.next_json(WAIT).await;
        assert!(
            v["op"] != "typing" && v["op"] != "presence",
            "a read-only key wrote to the room: {v}"
        );
        if v["op"] == "event" && v["data"]["id"] == marker["id"] {
            break;
        }
    }
    assert_eq!(reader.next_event(WAIT).await["data"]["id"], marker["id"]);

    // Keys fill their own slots (2) ...
    let (_second, _) = api.ws_ready(&bot, None).await;
    let mut third = api.ws().await;
    third
        .send(json!({ "op": "auth", "token": bot.token }))
        .await;
    let (code, reason) = third.close_code(WAIT).await;
    assert_eq!(code, 4029, "{reason}");
    assert!(reason.contains("API key"), "{reason}");
    // ... and the person's own devices still have theirs.
    let (_phone, _) = api.ws_ready(&alice, None).await;
    let (mut laptop, _) = api.ws_ready(&alice, None).await;
    laptop.send(json!({ "op": "ping" })).await;
    assert_eq!(laptop.next_json(WAIT).await["op"], "pong");
    let mut tablet = api.ws().await;
    tablet
        .send(json!({ "op": "auth", "token": alice.token }))
        .await;
    assert_eq!(tablet.close_code(WAIT).await.0, 4029);
}

/// The next `presence` frame (room events and typing skipped).
async fn next_presence(ws: &mut Ws) -> Value {
    loop {
        let v = ws.next_json(WAIT).await;
        if v["op"] == "presence" {
            return v;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_who_meet_in_a_room_learn_that_each_other_is_online() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let bob = api.member(&admin, "bob").await;
    let room = api.room(&alice, "club", true).await;
    // Both online, sharing no room: neither knows of the other.
    let (mut alice_ws, _) = api.ws_ready(&alice, None).await;
    let (mut bob_ws, ready) = api.ws_ready(&bob, None).await;
    assert_eq!(ready["online"], json!([]), "{ready}");

    api.add(&alice, room, &bob).await;
    let heard = next_presence(&mut alice_ws).await;
    assert_eq!(
        (&heard["user_id"], &heard["status"]),
        (&json!(bob.id), &json!("online")),
        "{heard}"
    );
    let heard = next_presence(&mut bob_ws).await;
    assert_eq!(
        (&heard["user_id"], &heard["status"]),
        (&json!(alice.id), &json!("online")),
        "{heard}"
    );
}
