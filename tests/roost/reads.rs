//! Read positions and unread counts as clients see them: one person on two devices, others
//! posting, over HTTPS against the real binary.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The room `room` as the room list shows it to `who`.
async fn listed(api: &Api, who: &User, room: i64) -> Value {
    let (status, list) = api.get("/api/v1/rooms", who).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room)
        .unwrap_or_else(|| panic!("room {room} is not in {list}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_counts_follow_a_person_across_devices() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    // Ann's second device: another sign-in, another token.
    let ann_phone = api.signed_in("ann", MEMBER_PASSWORD).await;
    let bob = api.member(&admin, "bob").await;
    let room = api.room(&ann, "kitchen", true).await;
    api.add(&ann, room, &bob).await;

    // Joining makes nothing unread.
    let r = listed(&api, &ann, room).await;
    assert_eq!(r["unread"], 0, "{r}");
    let r = listed(&api, &bob, room).await;
    assert_eq!(r["unread"], 0, "{r}");

    // Someone else's posts count, on both of Ann's devices; her own do not.
    api.say(&bob, room, "dinner?").await;
    let deleted = api.say(&bob, room, "typo").await;
    api.say(&ann, room, "yes").await;
    for device in [&ann, &ann_phone] {
        let r = listed(&api, device, room).await;
        assert_eq!(r["unread"], 2, "{r}");
    }
    // A deleted message is no longer news.
    let (status, _) = api
        .delete(
            &format!("/api/v1/rooms/{room}/messages/{}", deleted["id"]),
            &bob.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let r = listed(&api, &ann_phone, room).await;
    assert_eq!(r["unread"], 1, "{r}");
    // Bob sees Ann's message as unread.
    let r = listed(&api, &bob, room).await;
    assert_eq!(r["unread"], 1, "{r}");

    // Marking read on one device clears it on the other.
    let last_seq = listed(&api, &ann, room).await["last_seq"].as_i64().unwrap();
    let (status, read) = api
        .put(
            &format!("/api/v1/rooms/{room}/read"),
            &ann,
            json!({ "seq": last_seq }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(
        read,
        json!({ "room_id": room, "read_seq": last_seq, "unread": 0 })
    );
    let r = listed(&api, &ann_phone, room).await;
    assert_eq!(
        (r["unread"].clone(), r["read_seq"].clone()),
        (json!(0), json!(last_seq))
    );

    // The position only moves forward: an older seq (a slow device) changes nothing.
    api.say(&bob, room, "on my way").await;
    let (status, read) = api
        .put(
            &format!("/api/v1/rooms/{room}/read"),
            &ann_phone,
            json!({ "seq": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["read_seq"], last_seq);
    assert_eq!(read["unread"], 1);
    let r = listed(&api, &ann, room).await;
    assert_eq!(r["unread"], 1, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marking_read_is_for_members_and_within_the_log() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let eve = api.member(&admin, "eve").await;
    let private = api.room(&ann, "private", true).await;
    let public = api.room(&ann, "public", false).await;

    // A private room does not exist for a non-member; a public one must be joined first.
    let (status, body) = api
        .put(
            &format!("/api/v1/rooms/{private}/read"),
            &eve,
            json!({ "seq": 1 }),
        )
        .await;
    assert_error(&(status, body), StatusCode::NOT_FOUND, "not_found");
    let (status, body) = api
        .put(
            &format!("/api/v1/rooms/{public}/read"),
            &eve,
            json!({ "seq": 1 }),
        )
        .await;
    assert_error(&(status, body), StatusCode::FORBIDDEN, "not_a_member");
    // The room list says nothing about reads in rooms the caller has not joined.
    let r = listed(&api, &eve, public).await;
    assert!(
        r.get("unread").is_none() && r.get("read_seq").is_none(),
        "{r}"
    );

    // Beyond the room's newest event, or below zero: refused, clearly.
    let last_seq = listed(&api, &ann, private).await["last_seq"]
        .as_i64()
        .unwrap();
    for seq in [last_seq + 1, -1] {
        let (status, body) = api
            .put(
                &format!("/api/v1/rooms/{private}/read"),
                &ann,
                json!({ "seq": seq }),
            )
            .await;
        assert_error(&(status, body), StatusCode::BAD_REQUEST, "invalid_seq");
    }
    let (status, body) = api
        .put(
            &format!("/api/v1/rooms/{private}/read"),
            &ann,
            json!({ "seq": "all" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_entries_do_not_count_as_unread() {
    let (setup, _) = with_fake_livekit(Setup::new(), "");
    let mut api = Api::start(setup);
    api.roost.wait_for_log(
        |v| v["message"] == "livekit ready",
        std::time::Duration::from_secs(30),
    );
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let bob = api.member(&admin, "bob").await;
    let room = api.room(&ann, "kitchen", true).await;
    api.add(&ann, room, &bob).await;

    // Bob starts a call nobody answers: "call started by bob", then "call ended".
    let bob_identity = format!("user-{}", bob.id);
    for event in ["participant_joined", "participant_left"] {
        let body = livekit_event(event, room, "RM_missed", &bob_identity, "PA_bob");
        assert_eq!(post_livekit_webhook(&api, &body).await, StatusCode::OK);
    }
    let path = format!("/api/v1/rooms/{room}/messages");
    let kinds = eventually(
        std::time::Duration::from_secs(20),
        "both call entries",
        || async {
            let (_, page) = api.get(&path, &ann).await;
            let kinds: Vec<Value> = page["messages"]
                .as_array()?
                .iter()
                .map(|m| m["kind"].clone())
                .collect();
            (kinds.len() == 2).then_some(kinds)
        },
    )
    .await;
    assert_eq!(kinds, [json!("call_started"), json!("call_ended")]);
    // The entries are in the timeline, but nobody has a message to read.
    for who in [&ann, &bob] {
        let r = listed(&api, who, room).await;
        assert_eq!(r["unread"], 0, "{r}");
    }

    // What Bob writes afterwards is one unread message, not three.
    api.say(&bob, room, "call me back").await;
    let r = listed(&api, &ann, room).await;
    assert_eq!(r["unread"], 1, "{r}");
    let (status, read) = api
        .put(
            &format!("/api/v1/rooms/{room}/read"),
            &ann,
            json!({ "seq": r["last_seq"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["unread"], 0, "{read}");
}
