//! What changes about people and calls reaches every open screen live: a new display name
//! (`user.updated`), a DM hidden or opened again on another device (`dm.hidden`, `dm.shown`),
//! and the room list's missed calls, over HTTPS and the gateway against the real binary.

use std::time::Duration;

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// The frames `ws` receives up to and including the `message.created` whose body is `marker`
/// (posted after what the test is looking for, so everything before it has arrived).
async fn frames_until_message(ws: &mut Ws, marker: &str) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = ws.next_json(WAIT).await;
        let done = frame["op"] == "event"
            && frame["type"] == "message.created"
            && frame["data"]["body"] == marker;
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

/// The frames of operation `op` among `frames`.
fn of_op<'a>(frames: &'a [Value], op: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["op"] == op).collect()
}

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
async fn a_new_display_name_reaches_everyone_sharing_a_room_once() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let ann_phone = api.signed_in("ann", MEMBER_PASSWORD).await;
    let bob = api.member(&admin, "bob").await;
    let cat = api.member(&admin, "cat").await;
    // Bob shares two rooms with Ann: he still hears of her new name once.
    let kitchen = api.room(&ann, "kitchen", true).await;
    let garden = api.room(&ann, "garden", true).await;
    api.add(&ann, kitchen, &bob).await;
    api.add(&ann, garden, &bob).await;
    // Cat shares none.
    let attic = api.room(&cat, "attic", true).await;

    let (mut bob_ws, _) = api.ws_ready(&bob, None).await;
    let (mut phone_ws, _) = api.ws_ready(&ann_phone, None).await;
    let (mut cat_ws, _) = api.ws_ready(&cat, None).await;

    let (status, user) = api
        .patch(
            &format!("/api/v1/users/{}", ann.id),
            &admin,
            json!({ "display_name": "Annie" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    api.say(&ann, kitchen, "after the rename").await;
    api.say(&cat, attic, "cat's own").await;

    let bobs = frames_until_message(&mut bob_ws, "after the rename").await;
    let renames = of_op(&bobs, "user");
    assert_eq!(renames.len(), 1, "one frame however many rooms: {bobs:?}");
    assert_eq!(renames[0]["type"], "user.updated");
    assert_eq!(renames[0]["user_id"], ann.id);
    assert_eq!(renames[0]["data"]["display_name"], "Annie");
    assert_eq!(renames[0]["data"]["username"], "ann");
    // The message after it carries the new name too.
    let message = bobs.last().unwrap();
    assert_eq!(message["data"]["author_display_name"], "Annie", "{message}");

    // The person's own other device hears it as well.
    let phone = frames_until_message(&mut phone_ws, "after the rename").await;
    assert_eq!(of_op(&phone, "user").len(), 1, "{phone:?}");

    // Someone who shares no room with her hears nothing of it.
    let cats = frames_until_message(&mut cat_ws, "cat's own").await;
    assert!(of_op(&cats, "user").is_empty(), "{cats:?}");

    // Asking for the same name again changes nothing, and says nothing.
    let (status, _) = api
        .patch(
            &format!("/api/v1/users/{}", ann.id),
            &admin,
            json!({ "display_name": "Annie" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    api.say(&ann, garden, "same name").await;
    let bobs = frames_until_message(&mut bob_ws, "same name").await;
    assert!(of_op(&bobs, "user").is_empty(), "{bobs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hiding_a_dm_and_opening_it_again_reach_the_persons_other_devices() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let ann_phone = api.signed_in("ann", MEMBER_PASSWORD).await;
    let bob = api.member(&admin, "bob").await;
    let (status, dm) = api
        .post("/api/v1/dms", &ann, json!({ "user_id": bob.id }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{dm}");
    let dm = dm["id"].as_i64().unwrap();
    api.say(&bob, dm, "hello").await;
    let (mut phone_ws, _) = api.ws_ready(&ann_phone, None).await;
    let (mut bob_ws, _) = api.ws_ready(&bob, None).await;

    let (status, body) = api
        .put(&format!("/api/v1/dms/{dm}/hidden"), &ann, json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let hidden = phone_ws.next_op("dm", WAIT).await;
    assert_eq!(hidden["op"], "dm", "{hidden}");
    assert_eq!(hidden["type"], "dm.hidden", "{hidden}");
    assert_eq!(hidden["room_id"], dm, "{hidden}");
    assert_eq!(listed(&api, &ann_phone, dm).await["hidden"], true);

    // Opening it again brings it back on the other device too.
    let (status, body) = api
        .post("/api/v1/dms", &ann, json!({ "user_id": bob.id }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shown = phone_ws.next_op("dm", WAIT).await;
    assert_eq!(shown["type"], "dm.shown", "{shown}");
    assert_eq!(shown["room_id"], dm, "{shown}");
    assert!(listed(&api, &ann_phone, dm).await.get("hidden").is_none());

    // The other person hears of neither: their list never changed.
    api.say(&ann, dm, "marker").await;
    let bobs = frames_until_message(&mut bob_ws, "marker").await;
    assert!(of_op(&bobs, "dm").is_empty(), "{bobs:?}");
    // Opening a DM that was not hidden says nothing either.
    let (status, _) = api
        .post("/api/v1/dms", &ann, json!({ "user_id": bob.id }))
        .await;
    assert_eq!(status, StatusCode::OK);
    api.say(&ann, dm, "marker 2").await;
    let phone = frames_until_message(&mut phone_ws, "marker 2").await;
    assert!(of_op(&phone, "dm").is_empty(), "{phone:?}");
}

/// Posts LiveKit's webhook `event` (`participant_joined`, `participant_left`) for `who` in the
/// call of `room`, LiveKit session `room_sid`.
async fn call_webhook(api: &Api, event: &str, room: i64, room_sid: &str, who: &User) {
    let identity = format!("user-{}", who.id);
    let sid = format!("PA_{}_{room_sid}", who.id);
    let body = livekit_event(event, room, room_sid, &identity, &sid);
    assert_eq!(post_livekit_webhook(api, &body).await, StatusCode::OK);
}

/// Waits until room `room` has `n` call entries (the call log writes them in the background).
async fn call_entries(api: &Api, who: &User, room: i64, n: usize) {
    let path = format!("/api/v1/rooms/{room}/messages");
    eventually(WAIT, "the call entries", || async {
        let (_, page) = api.get(&path, who).await;
        let calls = page["messages"]
            .as_array()?
            .iter()
            .filter(|m| m["kind"] != "text")
            .count();
        (calls == n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_someone_was_not_in_shows_as_missed_until_they_read_past_it() {
    let (setup, _) = with_fake_livekit(Setup::new(), "");
    let mut api = Api::start(setup);
    api.roost
        .wait_for_log(|v| v["message"] == "livekit ready", Duration::from_secs(30));
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let bob = api.member(&admin, "bob").await;
    let cat = api.member(&admin, "cat").await;
    let room = api.room(&ann, "kitchen", true).await;
    api.add(&ann, room, &bob).await;
    api.add(&ann, room, &cat).await;

    // Bob calls; Cat answers, Ann does not.
    call_webhook(&api, "participant_joined", room, "RM_one", &bob).await;
    call_entries(&api, &bob, room, 1).await;
    call_webhook(&api, "participant_joined", room, "RM_one", &cat).await;
    // A call still going on is not missed yet.
    let anns = listed(&api, &ann, room).await;
    assert!(anns.get("missed_call_at").is_none(), "{anns}");
    call_webhook(&api, "participant_left", room, "RM_one", &cat).await;
    call_webhook(&api, "participant_left", room, "RM_one", &bob).await;
    call_entries(&api, &bob, room, 2).await;

    let anns = listed(&api, &ann, room).await;
    let missed = anns["missed_call_at"]
        .as_str()
        .unwrap_or_else(|| panic!("{anns}"));
    assert!(missed.ends_with('Z'), "a time: {missed}");
    assert_eq!(
        anns["unread"], 0,
        "call entries are still not unread: {anns}"
    );
    // The caller and the one who answered missed nothing.
    for who in [&bob, &cat] {
        let r = listed(&api, who, room).await;
        assert!(r.get("missed_call_at").is_none(), "{}: {r}", who.name);
    }

    // Reading the room clears it, in the answer and in the list.
    let (status, read) = api
        .put(
            &format!("/api/v1/rooms/{room}/read"),
            &ann,
            json!({ "seq": anns["last_seq"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert!(read.get("missed_call_at").is_none(), "{read}");
    assert!(listed(&api, &ann, room)
        .await
        .get("missed_call_at")
        .is_none());
}
