//! Rooms, messages, search, call tokens and retention as clients and the operator see them:
//! the real binary over HTTPS, and what is left in the database and on disk.

use std::time::Duration;

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_post_returns_the_original_and_never_a_duplicate() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let room = api.room(&admin, "general", false).await;
    let path = format!("/api/v1/rooms/{room}/messages");
    let post = |key: &'static str, body: &'static str| {
        let req = api
            .http
            .post(api.roost.https_url(&path))
            .bearer_auth(&admin.token)
            .header("Idempotency-Key", key)
            .json(&json!({ "body": body }));
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };

    let (first, original) = post("k-1", "hello").await;
    assert_eq!(first, StatusCode::CREATED, "{original}");
    // A retry (even with another body, as a buggy client might send) gets the original.
    let (again, repeat) = post("k-1", "hello again").await;
    assert_eq!(again, StatusCode::OK);
    assert_eq!(repeat["id"], original["id"]);
    assert_eq!(repeat["body"], "hello");
    let (other, fresh) = post("k-2", "hello").await;
    assert_eq!(other, StatusCode::CREATED);
    assert_ne!(fresh["id"], original["id"]);

    let (status, page) = api.get(&path, &admin).await;
    assert_eq!(status, StatusCode::OK);
    let bodies: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["hello", "hello"]);
    // Two messages, two events after the owner joined: the sequence moved by exactly that.
    let (_, r) = api.get(&format!("/api/v1/rooms/{room}"), &admin).await;
    assert_eq!(r["last_seq"], 3, "{r}");
    assert_eq!(api.metric("roost_messages_total").await, Some(2.0));

    // Without LiveKit (no binary here), call tokens are refused, clearly.
    let (status, body) = api
        .post(
            &format!("/api/v1/rooms/{room}/call/token"),
            &admin,
            json!({}),
        )
        .await;
    assert_error(
        &(status, body),
        StatusCode::SERVICE_UNAVAILABLE,
        "calls_disabled",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_edits_tombstones_and_who_may_do_what() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let bob = api.member(&admin, "bob").await;
    let room = api.room(&alice, "alice's", true).await;

    // A private room is invisible to others; a member cannot post before being added.
    let (status, _) = api.get(&format!("/api/v1/rooms/{room}"), &bob).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &bob,
            json!({ "body": "hi" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    api.add(&alice, room, &bob).await;

    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            api.say(&alice, room, &format!("m{i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let page = |q: String| {
        let who = bob.clone();
        let api = &api;
        async move {
            let (s, v) = api
                .get(&format!("/api/v1/rooms/{room}/messages?{q}"), &who)
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let bodies: Vec<String> = v["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["body"].as_str().unwrap().to_owned())
                .collect();
            (bodies, v["has_more"].as_bool().unwrap())
        }
    };
    assert_eq!(
        page("limit=3".into()).await,
        (vec!["m4".into(), "m5".into(), "m6".into()], true)
    );
    assert_eq!(
        page(format!("limit=3&before={}", ids[4])).await,
        (vec!["m1".into(), "m2".into(), "m3".into()], true)
    );
    assert_eq!(
        page(format!("limit=3&after={}", ids[4])).await,
        (vec!["m5".into(), "m6".into()], false)
    );

    // Bob may not edit or delete Alice's message; she may; the tombstone stays listed.
    let msg = format!("/api/v1/rooms/{room}/messages/{}", ids[0]);
    let (s, _) = api.patch(&msg, &bob.token, json!({ "body": "x" })).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api.delete(&msg, &bob.token).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, tomb) = api.delete(&msg, &alice.token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (tomb["deleted"].clone(), tomb["body"].clone()),
        (json!(true), json!(""))
    );
    assert_eq!(
        page(format!("before={}", ids[1])).await.0,
        vec![String::new()]
    );

    // Too long is refused with a clear code.
    let (s, body) = api
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &alice,
            json!({ "body": "é".repeat(4001) }),
        )
        .await;
    assert_error(&(s, body), StatusCode::BAD_REQUEST, "message_too_long");

    // Bob leaves; he can no longer read.
    let (s, _) = api
        .delete(
            &format!("/api/v1/rooms/{room}/members/{}", bob.id),
            &bob.token,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api
        .get(&format!("/api/v1/rooms/{room}/messages"), &bob)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_only_what_the_caller_may_read() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let bob = api.member(&admin, "bob").await;
    let secret = api.room(&alice, "secret", true).await;
    let open = api.room(&alice, "open", false).await;
    api.say(&alice, secret, "the pineapple plan is on").await;
    api.say(&alice, open, "pineapples for everyone").await;
    let gone = api.say(&alice, open, "pineapple pizza, deleted").await;

    let search = |who: User, q: &'static str| {
        let api = &api;
        async move {
            let (s, v) = api.get(&format!("/api/v1/search?q={q}"), &who).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let mut bodies: Vec<String> = v["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["body"].as_str().unwrap().to_owned())
                .collect();
            bodies.sort();
            bodies
        }
    };
    let (s, _) = api
        .delete(
            &format!("/api/v1/rooms/{open}/messages/{}", gone["id"]),
            &alice.token,
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // Alice sees both rooms (prefix match on the last word), never the tombstone.
    assert_eq!(
        search(alice.clone(), "pineapple").await,
        ["pineapples for everyone", "the pineapple plan is on"]
    );
    // Bob is in neither room: nothing, not even from the public one he has not joined.
    assert!(search(bob.clone(), "pineapple").await.is_empty());
    // Admins read everything.
    assert_eq!(search(admin.clone(), "pineapple").await.len(), 2);
    // Once added to the secret room, Bob finds that message, and only in rooms he is in.
    api.add(&alice, secret, &bob).await;
    assert_eq!(
        search(bob.clone(), "PINEAPPLE").await,
        ["the pineapple plan is on"]
    );
    let (s, v) = api
        .get(&format!("/api/v1/search?q=pineapple&room_id={open}"), &bob)
        .await;
    assert_eq!(
        (s, v["messages"].as_array().unwrap().len()),
        (StatusCode::OK, 0)
    );
    // FTS5 syntax in the query is just words.
    assert!(search(alice.clone(), "NEAR(\"x").await.is_empty());

    // `roost search rebuild` works beside the running daemon, and search still answers.
    let out = api.roost.setup.run(&["search", "rebuild"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 messages"));
    assert_eq!(search(bob, "plan").await, ["the pineapple plan is on"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_tokens_are_scoped_to_the_room_and_refused_to_non_members() {
    let (setup, _) = with_fake_livekit(Setup::new(), "");
    let mut api = Api::start(setup);
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let bob = api.member(&admin, "bob").await;
    let room = api.room(&alice, "call", false).await;
    let private = api.room(&alice, "quiet", true).await;

    let (s, body) = api
        .post(
            &format!("/api/v1/rooms/{room}/call/token"),
            &alice,
            json!({ "ttl_secs": 120 }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let c = jwt_claims(body["token"].as_str().unwrap());
    assert_eq!(c["video"]["room"], format!("roost-room-{room}"));
    assert_eq!(c["video"]["roomJoin"], true);
    assert_eq!(c["sub"], format!("user-{}", alice.id));
    assert_eq!(body["identity"], c["sub"]);
    assert_eq!(c["video"]["canPublish"], true, "the owner publishes");
    assert_eq!(c["exp"].as_u64().unwrap() - c["nbf"].as_u64().unwrap(), 120);
    assert!(body["url"].as_str().unwrap().starts_with("wss://"));

    // Not a member: 403 for a room Bob can see, 404 for one he cannot.
    let (s, body) = api
        .post(&format!("/api/v1/rooms/{room}/call/token"), &bob, json!({}))
        .await;
    assert_error(&(s, body), StatusCode::FORBIDDEN, "not_a_member");
    let (s, _) = api
        .post(
            &format!("/api/v1/rooms/{private}/call/token"),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Issued tokens are audited (never the token itself) and counted.
    let (s, audit) = api
        .get("/api/v1/audit?type=media.token.issue", &admin)
        .await;
    assert_eq!(s, StatusCode::OK);
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{audit}");
    assert_eq!(events[0]["detail"]["room"], format!("roost-room-{room}"));
    assert!(
        !audit.to_string().contains(".ey"),
        "no token in the audit log"
    );
    assert_eq!(
        api.metric("roost_media_tokens_issued_total").await,
        Some(1.0)
    );
    let (s, call) = api.get(&format!("/api/v1/rooms/{room}/call"), &alice).await;
    assert_eq!(
        (s, call["participants"].clone()),
        (StatusCode::OK, json!([]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_what_it_should_and_keeps_the_rest() {
    let mut api = Api::start(Setup::new().toml(
        "[retention]\nmessage_days = 1\naudit_days = 1\ninterval_secs = 1\n[attachments]\norphan_grace_secs = 5\n",
    ));
    let admin = api.admin().await;
    let room = api.room(&admin, "r", false).await;
    let old = api.say(&admin, room, "old news").await;
    let recent = api.say(&admin, room, "fresh news").await;
    let upload = |bytes: &'static [u8]| {
        let req = api
            .http
            .post(api.roost.https_url("/api/v1/attachments?name=a.txt"))
            .bearer_auth(&admin.token)
            .body(bytes);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let orphan = upload(b"nobody will reference this").await;
    let kept = upload(b"a message shows this").await;
    let (s, shown) = api
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &admin,
            json!({ "body": "see attached", "attachment_ids": [kept["id"]] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{shown}");
    let (_, invite) = api.post("/api/v1/invites", &admin, json!({})).await;

    // Age some rows as if time had passed (the daemon's clock is real).
    let db = api.db();
    let two_days_ago_ms = unix_ms_ago(Duration::from_secs(2 * 86_400));
    db.execute(
        "UPDATE messages SET created_at = ?1 WHERE id = ?2",
        (two_days_ago_ms, old["id"].as_i64()),
    )
    .unwrap();
    db.execute(
        "UPDATE attachments SET created_at = ?1 WHERE id = ?2",
        (two_days_ago_ms, orphan["id"].as_i64()),
    )
    .unwrap();
    db.execute(
        "INSERT INTO audit_log (at, type, outcome) VALUES (?1, 'test.old', 'success')",
        [two_days_ago_ms],
    )
    .unwrap();
    db.execute(
        "UPDATE invites SET expires_at = 1 WHERE id = ?1",
        [invite["id"].as_i64()],
    )
    .unwrap();

    let store = api.roost.setup.data_dir().join("attachments");
    let file_of = |v: &Value| {
        let sha = v["sha256"].as_str().unwrap().to_owned();
        store.join(&sha[..2]).join(&sha[2..4]).join(&sha)
    };
    assert!(file_of(&orphan).exists() && file_of(&kept).exists());
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    eventually(WAIT, "retention to purge", || async {
        let done = count(&format!(
            "SELECT count(*) FROM messages WHERE id = {}",
            old["id"]
        )) == 0
            && count("SELECT count(*) FROM audit_log WHERE type = 'test.old'") == 0
            && count(&format!(
                "SELECT count(*) FROM invites WHERE id = {}",
                invite["id"]
            )) == 0
            && count(&format!(
                "SELECT count(*) FROM attachments WHERE id = {}",
                orphan["id"]
            )) == 0
            && !file_of(&orphan).exists();
        done.then_some(())
    })
    .await;
    // What is young or in use stays.
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM messages WHERE id = {}",
            recent["id"]
        )),
        1
    );
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM attachments WHERE id = {}",
            kept["id"]
        )),
        1
    );
    assert!(file_of(&kept).exists());
    assert!(count("SELECT count(*) FROM audit_log") > 0);
    let line = api.roost.wait_for_log(
        |v| v["message"] == "retention: removed expired data" && v["messages"] == 1,
        WAIT,
    );
    assert_eq!(line["level"], "INFO");
    // The message is gone from search too.
    let (_, hits) = api.get("/api/v1/search?q=news", &admin).await;
    assert_eq!(hits["messages"].as_array().unwrap().len(), 1, "{hits}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_read_and_post_only_where_they_were_added() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let bob = api.member(&admin, "bob").await;
    let gus = api.guest(&admin, "gus").await;
    let invited = api.room(&alice, "with gus", true).await;
    let public = api.room(&alice, "lobby", false).await;
    let hidden = api.room(&alice, "secret", true).await;
    api.add(&alice, invited, &gus).await;
    api.say(&alice, public, "lobby pancakes").await;
    api.say(&alice, hidden, "secret pancakes").await;

    // Listing: only the room they were added to; a member also sees the public room.
    let (_, list) = api.get("/api/v1/rooms", &gus).await;
    let ids: Vec<i64> = list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![invited], "{list}");
    let (_, list) = api.get("/api/v1/rooms", &bob).await;
    assert!(list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == public));

    // Everywhere else: 404, as if the room did not exist, for reading, posting and joining.
    for room in [public, hidden] {
        for path in [
            format!("/api/v1/rooms/{room}"),
            format!("/api/v1/rooms/{room}/messages"),
            format!("/api/v1/rooms/{room}/members"),
            format!("/api/v1/rooms/{room}/call"),
        ] {
            assert_eq!(
                api.get(&path, &gus).await.0,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        let (s, _) = api
            .post(
                &format!("/api/v1/rooms/{room}/messages"),
                &gus,
                json!({ "body": "hello?" }),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "post to {room}");
        let (s, _) = api
            .put(
                &format!("/api/v1/rooms/{room}/members/{}", gus.id),
                &gus,
                json!({}),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "self-join {room}");
    }
    // A member may join the public room by themselves; the guest could not.
    let (s, _) = api
        .put(
            &format!("/api/v1/rooms/{public}/members/{}", bob.id),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // No rooms of their own, and no adding others where they are.
    let (s, body) = api
        .post("/api/v1/rooms", &gus, json!({ "name": "mine" }))
        .await;
    assert_error(&(s, body), StatusCode::FORBIDDEN, "forbidden");
    let (s, _) = api
        .put(
            &format!("/api/v1/rooms/{invited}/members/{}", bob.id),
            &gus,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Where they were added: read and post.
    let said = api.say(&gus, invited, "guest pancakes").await;
    let (s, page) = api
        .get(&format!("/api/v1/rooms/{invited}/messages"), &gus)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        page["messages"].as_array().unwrap().last().unwrap()["id"],
        said["id"]
    );
    // Search sees only that room.
    let (_, hits) = api.get("/api/v1/search?q=pancakes", &gus).await;
    let rooms: Vec<&Value> = hits["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["room_id"])
        .collect();
    assert_eq!(rooms, vec![&json!(invited)], "{hits}");

    // The gateway: subscribed to that room only.
    let (mut gus_ws, ready) = api.ws_ready(&gus, None).await;
    let ready_rooms: Vec<&Value> = ready["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["room_id"])
        .collect();
    assert_eq!(ready_rooms, vec![&json!(invited)], "{ready}");
    let (mut alice_ws, _) = api.ws_ready(&alice, None).await;
    api.say(&alice, public, "not for gus").await;
    api.say(&alice, hidden, "not for gus either").await;
    let for_gus = api.say(&alice, invited, "for gus").await;
    let first = gus_ws.next_event(WAIT).await;
    assert_eq!(first["data"]["id"], for_gus["id"], "{first}");
    // Typing in a room they are not in goes nowhere; in theirs it reaches the others.
    gus_ws
        .send(json!({ "op": "typing", "room_id": public }))
        .await;
    gus_ws
        .send(json!({ "op": "typing", "room_id": invited }))
        .await;
    let typing = loop {
        let v = alice_ws.next_json(WAIT).await;
        if v["op"] == "typing" {
            break v;
        }
    };
    assert_eq!(
        (&typing["room_id"], &typing["user_id"]),
        (&json!(invited), &json!(gus.id))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_made_a_guest_keeps_only_the_rooms_someone_added_them_to() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let bob = api.member(&admin, "bob").await;
    // Joined alone, created, and added by alice (a public and a private room).
    let lobby = api.room(&alice, "lobby", false).await;
    let join = format!("/api/v1/rooms/{lobby}/members/{}", bob.id);
    assert_eq!(api.put(&join, &bob, json!({})).await.0, StatusCode::CREATED);
    let garden = api.room(&bob, "bob's garden", false).await;
    let porch = api.room(&alice, "porch", false).await;
    let secret = api.room(&alice, "secret", true).await;
    api.add(&alice, porch, &bob).await;
    api.add(&alice, secret, &bob).await;
    let (mut alice_ws, _) = api.ws_ready(&alice, None).await;
    let (mut bob_ws, _) = api.ws_ready(&bob, None).await;

    api.set_role(&admin, &bob, "guest").await;

    // The others see bob leave the room he had joined alone.
    let left = alice_ws.next_event(WAIT).await;
    assert_eq!(
        (&left["type"], &left["room_id"], &left["data"]["user_id"]),
        (&json!("member.left"), &json!(lobby), &json!(bob.id)),
        "{left}"
    );
    // What he may still see: the rooms he was added to, nothing else.
    let (_, list) = api.get("/api/v1/rooms", &bob).await;
    let mut ids: Vec<i64> = list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![porch, secret], "{list}");
    for room in [lobby, garden] {
        let path = format!("/api/v1/rooms/{room}/messages");
        assert_eq!(
            api.get(&path, &bob).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let (_, members) = api
        .get(&format!("/api/v1/rooms/{lobby}/members"), &alice)
        .await;
    assert!(
        !members.to_string().contains("\"bob\""),
        "bob is still listed: {members}"
    );
    // His open socket no longer carries the rooms he left; it still carries the others.
    api.say(&alice, lobby, "not for bob").await;
    let for_bob = api.say(&alice, porch, "for bob").await;
    loop {
        let event = bob_ws.next_event(WAIT).await;
        if event["type"] != "message.created" {
            continue; // his own member.left frames may come first
        }
        assert_eq!(event["data"]["id"], for_bob["id"], "{event}");
        break;
    }
    // The audit log says which rooms and why.
    let events = api.audit(&admin, "limit=50").await;
    let rooms_left = events
        .iter()
        .find(|e| e["type"] == "user.rooms_left")
        .expect("a user.rooms_left event");
    let mut rooms: Vec<i64> = rooms_left["detail"]["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_i64().unwrap())
        .collect();
    rooms.sort_unstable();
    let mut expected = vec![lobby, garden];
    expected.sort_unstable();
    assert_eq!(rooms, expected, "{rooms_left}");

    // Added back by the room's owner, he stays through the next demotion.
    api.add(&alice, lobby, &bob).await;
    api.set_role(&admin, &bob, "member").await;
    api.set_role(&admin, &bob, "guest").await;
    let path = format!("/api/v1/rooms/{lobby}/messages");
    assert_eq!(api.get(&path, &bob).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_is_never_more_than_a_plain_member_of_a_room() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let bob = api.member(&admin, "bob").await;
    let carol = api.member(&admin, "carol").await;
    let gus = api.guest(&admin, "gus").await;
    let room = api.room(&alice, "porch", true).await;
    api.add(&alice, room, &carol).await;

    // Neither the owner nor an admin can make a guest a moderator: not when adding it...
    let gus_path = format!("/api/v1/rooms/{room}/members/{}", gus.id);
    for by in [&alice, &admin] {
        let (s, body) = api.put(&gus_path, by, json!({ "role": "moderator" })).await;
        assert_error(&(s, body), StatusCode::BAD_REQUEST, "guest_room_role");
    }
    // ...nor once it is a member.
    api.add(&alice, room, &gus).await;
    let (s, body) = api
        .put(&gus_path, &alice, json!({ "role": "moderator" }))
        .await;
    assert_error(&(s, body), StatusCode::BAD_REQUEST, "guest_room_role");
    let (_, members) = api
        .get(&format!("/api/v1/rooms/{room}/members"), &alice)
        .await;
    let gus_row = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == gus.id)
        .unwrap();
    assert_eq!(gus_row["role"], "member", "{members}");
    // So it cannot remove anyone.
    let (s, _) = api
        .delete(
            &format!("/api/v1/rooms/{room}/members/{}", carol.id),
            &gus.token,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A moderator made a guest stays in the room it was added to, as a plain member.
    api.add(&alice, room, &bob).await;
    let bob_path = format!("/api/v1/rooms/{room}/members/{}", bob.id);
    let (s, body) = api
        .put(&bob_path, &alice, json!({ "role": "moderator" }))
        .await;
    assert_eq!((s, &body["role"]), (StatusCode::OK, &json!("moderator")));
    let (mut alice_ws, _) = api.ws_ready(&alice, None).await;
    api.set_role(&admin, &bob, "guest").await;
    let updated = alice_ws.next_event(WAIT).await;
    assert_eq!(
        (
            &updated["type"],
            &updated["data"]["user_id"],
            &updated["data"]["role"]
        ),
        (&json!("member.updated"), &json!(bob.id), &json!("member")),
        "{updated}"
    );
    let (s, _) = api
        .delete(
            &format!("/api/v1/rooms/{room}/members/{}", carol.id),
            &bob.token,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a guest removed a member");
    let (s, _) = api
        .patch(
            &format!("/api/v1/rooms/{room}"),
            &bob.token,
            json!({ "topic": "mine now" }),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a guest changed the room");
    let events = api.audit(&admin, "limit=50").await;
    let dropped = events
        .iter()
        .find(|e| e["type"] == "user.room_roles_dropped")
        .expect("a user.room_roles_dropped event");
    assert_eq!(
        dropped["detail"]["rooms"],
        json!([{ "room_id": room, "from": "moderator" }]),
        "{dropped}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_bodies_refuse_control_characters_but_newline_and_tab() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let room = api.room(&admin, "lobby", false).await;
    let path = format!("/api/v1/rooms/{room}/messages");
    for bad in ["nul \0 here", "\u{1b}[2J\u{1b}[Hcleared", "over\rwritten"] {
        let refused = api.post(&path, &admin, json!({ "body": bad })).await;
        let body = &refused.1;
        assert_error_for(
            format!("{bad:?}"),
            &refused,
            StatusCode::BAD_REQUEST,
            "message_control_character",
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("other than newline and tab"),
            "{body}"
        );
    }
    // Newlines and tabs stay; CRLF is stored as LF.
    let said = api.say(&admin, room, "one\r\ntwo\tthree\nfour").await;
    assert_eq!(said["body"], "one\ntwo\tthree\nfour", "{said}");
    // Edits follow the same rule.
    let edit = format!("{path}/{}", said["id"]);
    let (s, body) = api
        .patch(&edit, &admin.token, json!({ "body": "sneaky \u{7}" }))
        .await;
    assert_error(
        &(s, body),
        StatusCode::BAD_REQUEST,
        "message_control_character",
    );
    let (s, body) = api
        .patch(&edit, &admin.token, json!({ "body": "fixed\r\nline" }))
        .await;
    assert_eq!((s, &body["body"]), (StatusCode::OK, &json!("fixed\nline")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_find_the_people_they_may_add_and_no_one_else_does() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let bob = api.member(&admin, "bob").await;
    let _bobby = api.member(&admin, "bobby").await;
    let dora = api.member(&admin, "dora").await;
    let room = api.room(&alice, "alice's", true).await;
    let (s, body) = api
        .patch(
            &format!("/api/v1/users/{}", dora.id),
            &admin.token,
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let names = |list: &Value| -> Vec<String> {
        list["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["username"].as_str().unwrap().to_owned())
            .collect()
    };
    let path = format!("/api/v1/rooms/{room}/candidates");

    // The owner sees enabled accounts outside the room, by username; not members, not dora.
    let (s, all) = api.get(&path, &alice).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    assert_eq!(names(&all), ["bob", "bobby", "root"], "{all}");
    assert_eq!(all["candidates"][0]["account_role"], "member");
    let (_, some) = api.get(&format!("{path}?q=BOB"), &alice).await;
    assert_eq!(names(&some), ["bob", "bobby"], "{some}");
    // What is typed is text, not a LIKE pattern.
    let (_, none) = api.get(&format!("{path}?q=b%25b"), &alice).await;
    assert_eq!(names(&none), Vec::<String>::new(), "{none}");
    let (s, body) = api
        .get(&format!("{path}?q={}", "b".repeat(101)), &alice)
        .await;
    assert_error(&(s, body), StatusCode::BAD_REQUEST, "invalid_query");

    // Once added, bob is no candidate, and as a plain member he may not search.
    api.add(&alice, room, &bob).await;
    let (_, after) = api.get(&path, &alice).await;
    assert_eq!(names(&after), ["bobby", "root"], "{after}");
    let (s, body) = api.get(&path, &bob).await;
    assert_error(&(s, body), StatusCode::FORBIDDEN, "forbidden");
    // Someone who may not see the private room learns nothing, not even that it exists.
    let outsider = api.member(&admin, "carol").await;
    let (s, _) = api.get(&path, &outsider).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Admins manage every room.
    let (s, by_admin) = api.get(&path, &admin).await;
    assert_eq!(s, StatusCode::OK, "{by_admin}");
    assert_eq!(names(&by_admin), ["bobby", "carol", "root"], "{by_admin}");
}

/// The lowercase hex SHA-256 of `text`.
fn sha256_hex(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_name_their_author_and_let_the_sender_match_its_pending_send() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let gran = api.member(&admin, "gran1").await;
    let bob = api.member(&admin, "bob").await;
    let rename = |to: &'static str| {
        let (api, admin, id) = (&api, &admin, gran.id);
        async move {
            let (status, user) = api
                .patch(
                    &format!("/api/v1/users/{id}"),
                    admin,
                    json!({ "display_name": to }),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{user}");
        }
    };
    rename("Grandma").await;
    let room = api.room(&admin, "family", false).await;
    api.add(&admin, room, &gran).await;
    api.add(&admin, room, &bob).await;
    let (mut bob_ws, _) = api.ws_ready(&bob, None).await;

    let path = format!("/api/v1/rooms/{room}/messages");
    let post = || {
        let req = api
            .http
            .post(api.roost.https_url(&path))
            .bearer_auth(&gran.token)
            .header("Idempotency-Key", "send-7f3a")
            .json(&json!({ "body": "hello, family" }));
        async move { answer(req.send().await.unwrap()).await }
    };
    let (status, posted) = post().await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    assert_eq!(posted["author"], "gran1");
    assert_eq!(posted["author_display_name"], "Grandma");
    // The sender's client matches its pending send by the key's digest...
    let digest = sha256_hex("send-7f3a");
    assert_eq!(posted["idempotency_key_sha256"], digest, "{posted}");
    // ... which the event carries too, for whichever comes first. Other members see the
    // digest, never the key.
    let event = bob_ws.next_event(WAIT).await;
    assert_eq!(event["type"], "message.created", "{event}");
    assert_eq!(event["data"]["id"], posted["id"]);
    assert_eq!(event["data"]["author_display_name"], "Grandma");
    assert_eq!(event["data"]["idempotency_key_sha256"], digest);
    assert!(!event.to_string().contains("send-7f3a"), "{event}");
    // A retry gets the original, with the same digest.
    let (status, repeat) = post().await;
    assert_eq!(status, StatusCode::OK, "{repeat}");
    assert_eq!(repeat["id"], posted["id"]);
    assert_eq!(repeat["idempotency_key_sha256"], digest);
    // Without a key there is nothing to match.
    let plain = api.say(&gran, room, "no key").await;
    assert!(plain.get("idempotency_key_sha256").is_none(), "{plain}");

    // A display name changed later shows wherever messages are read again: history, one
    // message, search. The digest belongs to the post and its event only.
    rename("Granny").await;
    let (status, page) = api.get(&path, &bob).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let first = &page["messages"][0];
    assert_eq!(first["author_display_name"], "Granny", "{page}");
    assert!(first.get("idempotency_key_sha256").is_none(), "{first}");
    let (_, one) = api.get(&format!("{path}/{}", posted["id"]), &bob).await;
    assert_eq!(one["author_display_name"], "Granny", "{one}");
    let (status, found) = api.get("/api/v1/search?q=family", &bob).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(
        found["messages"][0]["author_display_name"], "Granny",
        "{found}"
    );
}
