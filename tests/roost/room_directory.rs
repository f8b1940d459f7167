//! The directory of public rooms on the gateway: people outside a public room hear when it is
//! created, renamed or made private (`{"op":"directory"}` frames), so their room lists follow
//! it without a reload; a private room is never announced to anyone outside it.

use std::time::Duration;

use crate::support::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// The frames `ws` receives up to the `message.created` event whose body is `marker`, that
/// event left out. `marker` is posted (by someone) in a room the connection's account is in
/// *after* the change under test, so everything the change sent comes before it.
async fn frames_before(ws: &mut Ws, marker: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let frame = ws.next_json(WAIT).await;
        if frame["op"] == "event"
            && frame["type"] == "message.created"
            && frame["data"]["body"] == marker
        {
            return seen;
        }
        seen.push(frame);
    }
}

fn directory(frames: &[Value]) -> Vec<&Value> {
    frames.iter().filter(|f| f["op"] == "directory").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_rooms_reach_everyone_outside_them_and_private_ones_nobody() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let bob = api.member(&admin, "bob").await;
    let gus = api.guest(&admin, "gus").await;
    // A room all three are in, where the markers are posted.
    let lobby = api.room(&ann, "Lobby", true).await;
    api.add(&ann, lobby, &bob).await;
    api.add(&ann, lobby, &gus).await;
    let (mut bob_ws, _) = api.ws_ready(&bob, None).await;
    let (mut gus_ws, _) = api.ws_ready(&gus, None).await;
    let (mut ann_ws, _) = api.ws_ready(&ann, None).await;

    // A public room: bob hears of it, as his list would show it after a reload.
    let garden = api.room(&ann, "Garden", false).await;
    let hidden = api.room(&ann, "Surprise party", true).await;
    api.say(&ann, lobby, "one").await;
    let bobs = frames_before(&mut bob_ws, "one").await;
    let heard = directory(&bobs);
    assert_eq!(heard.len(), 1, "only the public room: {bobs:?}");
    assert_eq!(heard[0]["type"], "room.listed");
    assert_eq!(heard[0]["room_id"], garden);
    let (_, listed) = api.get(&format!("/api/v1/rooms/{garden}"), &bob).await;
    for field in ["id", "name", "kind", "private", "topic", "last_seq"] {
        assert_eq!(heard[0]["data"][field], listed[field], "{field}");
    }
    assert!(heard[0]["data"].get("my_role").is_none(), "{}", heard[0]);
    assert!(
        bobs.iter()
            .all(|f| f.to_string().find("Surprise").is_none()),
        "the private room is not even named: {bobs:?}"
    );
    // Its creator has the room's own events instead; a guest, who cannot join public rooms,
    // hears of none.
    let anns = frames_before(&mut ann_ws, "one").await;
    assert!(directory(&anns).is_empty(), "{anns:?}");
    assert!(anns
        .iter()
        .any(|f| f["type"] == "member.joined" && f["room_id"] == garden));
    let guss = frames_before(&mut gus_ws, "one").await;
    assert!(directory(&guss).is_empty(), "{guss:?}");

    // Renamed: bob's list follows. Changing the private room tells him nothing.
    let (status, _) = api
        .patch(
            &format!("/api/v1/rooms/{garden}"),
            &ann,
            json!({ "name": "Vegetable garden" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = api
        .patch(
            &format!("/api/v1/rooms/{hidden}"),
            &ann,
            json!({ "name": "Still a surprise" }),
        )
        .await;
    assert_eq!(status, 200);
    api.say(&ann, lobby, "two").await;
    let bobs = frames_before(&mut bob_ws, "two").await;
    let heard = directory(&bobs);
    assert_eq!(heard.len(), 1, "{bobs:?}");
    assert_eq!(
        (&heard[0]["type"], &heard[0]["data"]["name"]),
        (&json!("room.listed"), &json!("Vegetable garden"))
    );

    // Made private: it leaves bob's list, and is gone from it over HTTP too. Made public
    // again: it is back.
    let (status, _) = api
        .patch(
            &format!("/api/v1/rooms/{garden}"),
            &ann,
            json!({ "private": true }),
        )
        .await;
    assert_eq!(status, 200);
    api.say(&ann, lobby, "three").await;
    let bobs = frames_before(&mut bob_ws, "three").await;
    assert_eq!(
        directory(&bobs),
        vec![&json!({ "op": "directory", "type": "room.unlisted", "room_id": garden })]
    );
    let (_, list) = api.get("/api/v1/rooms", &bob).await;
    assert!(list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["id"] != garden));
    let (status, _) = api
        .patch(
            &format!("/api/v1/rooms/{hidden}"),
            &ann,
            json!({ "private": false }),
        )
        .await;
    assert_eq!(status, 200);
    api.say(&ann, lobby, "four").await;
    let bobs = frames_before(&mut bob_ws, "four").await;
    let heard = directory(&bobs);
    assert_eq!(heard.len(), 1, "{bobs:?}");
    assert_eq!(
        (&heard[0]["type"], &heard[0]["room_id"]),
        (&json!("room.listed"), &json!(hidden))
    );
    let guss = frames_before(&mut gus_ws, "four").await;
    assert!(directory(&guss).is_empty(), "{guss:?}");
}

/// An account made a guest stops hearing of public rooms on the connection it already has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_made_a_guest_stops_hearing_of_public_rooms() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let bob = api.member(&admin, "bob").await;
    let lobby = api.room(&ann, "Lobby", true).await;
    api.add(&ann, lobby, &bob).await;
    let (mut bob_ws, _) = api.ws_ready(&bob, None).await;

    api.set_role(&admin, &bob, "guest").await;
    let garden = api.room(&ann, "Garden", false).await;
    api.say(&ann, lobby, "after").await;
    let bobs = frames_before(&mut bob_ws, "after").await;
    assert!(directory(&bobs).is_empty(), "{bobs:?}");
    let (_, list) = api.get("/api/v1/rooms", &bob).await;
    assert!(list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["id"] != garden));
}
