//! Direct messages, the people picker and mentions as clients see them, over HTTPS and the
//! gateway against the real binary.

use std::time::Duration;

use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// `who` opens (or finds) their DM with `with`: the status and the room.
async fn open_dm(api: &Api, who: &User, with: &User) -> (StatusCode, Value) {
    api.post("/api/v1/dms", who, json!({ "user_id": with.id }))
        .await
}

/// The rooms `who` lists.
async fn listed(api: &Api, who: &User) -> Vec<Value> {
    let (status, list) = api.get("/api/v1/rooms", who).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["rooms"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_share_one_dm_that_nobody_else_can_reach() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let bob = api.member(&admin, "bob").await;
    let cy = api.member(&admin, "cy1").await;

    let (status, dm) = open_dm(&api, &ann, &bob).await;
    assert_eq!(status, StatusCode::CREATED, "{dm}");
    assert_eq!(dm["kind"], "dm");
    assert_eq!(
        dm["dm_with"],
        json!({ "id": bob.id, "username": "bob", "display_name": "bob" })
    );
    let room = dm["id"].as_i64().unwrap();
    // One pair, one DM, whoever asks.
    let (status, again) = open_dm(&api, &ann, &bob).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &json!(room)));
    let (status, theirs) = open_dm(&api, &bob, &ann).await;
    assert_eq!((status, &theirs["id"]), (StatusCode::OK, &json!(room)));
    assert_eq!(theirs["dm_with"]["username"], "ann");

    // Both list it, named by the other person; nobody else lists it, admins included.
    let bobs = listed(&api, &bob).await;
    let listed_dm = bobs.iter().find(|r| r["id"] == room).expect("bob lists it");
    assert_eq!(listed_dm["kind"], "dm");
    assert_eq!(listed_dm["dm_with"]["id"], ann.id);
    for outsider in [&cy, &admin] {
        let theirs = listed(&api, outsider).await;
        assert!(theirs.iter().all(|r| r["id"] != room), "{theirs:?}");
        for r in &theirs {
            assert_eq!(r["kind"], "room", "{r}");
        }
    }

    // Both post and read; the other's post is unread until marked read.
    let hello = api.say(&ann, room, "psst, about the surprise party").await;
    api.say(&bob, room, "tell me").await;
    let bobs = listed(&api, &bob).await;
    let mine = bobs.iter().find(|r| r["id"] == room).unwrap();
    assert_eq!(mine["unread"], 1, "{mine}");
    let (status, read) = api
        .put(
            &format!("/api/v1/rooms/{room}/read"),
            &bob,
            json!({ "seq": mine["last_seq"] }),
        )
        .await;
    assert_eq!((status, &read["unread"]), (StatusCode::OK, &json!(0)));
    let (status, page) = api
        .get(&format!("/api/v1/rooms/{room}/messages"), &bob)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);

    // Its call is the two people's too.
    let (status, call) = api.get(&format!("/api/v1/rooms/{room}/call"), &ann).await;
    assert_eq!(status, StatusCode::OK, "{call}");

    // Search finds it for the two of them only.
    let (_, hits) = api.get("/api/v1/search?q=surprise", &bob).await;
    assert_eq!(hits["messages"][0]["id"], hello["id"], "{hits}");
    for outsider in [&cy, &admin] {
        let (status, hits) = api.get("/api/v1/search?q=surprise", outsider).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(hits["messages"], json!([]), "{hits}");
    }

    // Each edits and deletes their own, not the other's.
    let path = format!("/api/v1/rooms/{room}/messages/{}", hello["id"]);
    let (status, body) = api.delete(&path, &bob.token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = api
        .patch(&path, &ann.token, json!({ "body": "psst" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // To anyone else the room does not exist, whatever they try.
    for outsider in [&cy, &admin] {
        let t = Some(outsider.token.as_str());
        for (method, path, body) in [
            (Method::GET, format!("/api/v1/rooms/{room}"), None),
            (Method::GET, format!("/api/v1/rooms/{room}/messages"), None),
            (Method::GET, path.clone(), None),
            (
                Method::POST,
                format!("/api/v1/rooms/{room}/messages"),
                Some(json!({ "body": "hi" })),
            ),
            (Method::GET, format!("/api/v1/rooms/{room}/members"), None),
            (
                Method::PUT,
                format!("/api/v1/rooms/{room}/read"),
                Some(json!({ "seq": 1 })),
            ),
            (
                Method::PUT,
                format!("/api/v1/rooms/{room}/members/{}", outsider.id),
                Some(json!({})),
            ),
            (
                Method::PATCH,
                format!("/api/v1/rooms/{room}"),
                Some(json!({ "name": "mine" })),
            ),
            (Method::GET, format!("/api/v1/rooms/{room}/call"), None),
        ] {
            let (status, answer, _) = api.call(method.clone(), &path, t, body).await;
            assert_error_for(
                format!("{} {method} {path}", outsider.name),
                &(status, answer),
                StatusCode::NOT_FOUND,
                "not_found",
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_joins_leaves_renames_or_opens_up_a_dm() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let bob = api.member(&admin, "bob").await;
    let cy = api.member(&admin, "cy1").await;
    let (_, dm) = open_dm(&api, &ann, &bob).await;
    let room = dm["id"].as_i64().unwrap();

    let fixed = |status: StatusCode, body: Value, what: &str| {
        assert_error_for(what, &(status, body), StatusCode::FORBIDDEN, "dm_fixed");
    };
    for change in [
        json!({ "name": "secret club" }),
        json!({ "private": false }),
    ] {
        let (s, body) = api
            .patch(&format!("/api/v1/rooms/{room}"), &ann.token, change)
            .await;
        fixed(s, body, "changing it");
    }
    let (s, body) = api
        .put(
            &format!("/api/v1/rooms/{room}/members/{}", cy.id),
            &ann,
            json!({}),
        )
        .await;
    fixed(s, body, "adding someone");
    let (s, body) = api
        .put(
            &format!("/api/v1/rooms/{room}/members/{}", bob.id),
            &ann,
            json!({ "role": "moderator" }),
        )
        .await;
    fixed(s, body, "making a moderator");
    // Leaving (and so coming back by joining) is refused too: a DM keeps its two people.
    let (s, body) = api
        .delete(
            &format!("/api/v1/rooms/{room}/members/{}", bob.id),
            &bob.token,
        )
        .await;
    fixed(s, body, "leaving");
    let (s, body) = api
        .put(
            &format!("/api/v1/rooms/{room}/members/{}", bob.id),
            &bob,
            json!({}),
        )
        .await;
    fixed(s, body, "joining");
    let (_, members) = api
        .get(&format!("/api/v1/rooms/{room}/members"), &ann)
        .await;
    let ids: Vec<&Value> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["user_id"])
        .collect();
    assert_eq!(ids, [&json!(ann.id), &json!(bob.id)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_message_whom_and_the_people_picker_agree() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let bob = api.member(&admin, "bob").await;
    let gus = api.guest(&admin, "gus").await;
    let dee = api.member(&admin, "dee").await;
    let (s, body) = api
        .patch(
            &format!("/api/v1/users/{}", dee.id),
            &admin.token,
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    let (s, body) = open_dm(&api, &ann, &ann).await;
    assert_error(&(s, body), StatusCode::BAD_REQUEST, "dm_self");
    let (s, body) = open_dm(&api, &ann, &dee).await;
    assert_error(&(s, body), StatusCode::BAD_REQUEST, "user_disabled");
    let (s, body) = api
        .post("/api/v1/dms", &ann, json!({ "user_id": 9999 }))
        .await;
    assert_error(&(s, body), StatusCode::NOT_FOUND, "not_found");
    // A guest and someone who shares no room with them: neither way.
    for (from, to) in [(&gus, &bob), (&bob, &gus)] {
        let (s, body) = open_dm(&api, from, to).await;
        assert_error_for(
            format!("{} to {}", from.name, to.name),
            &(s, body),
            StatusCode::FORBIDDEN,
            "dm_not_allowed",
        );
    }

    let names = |page: &Value| -> Vec<String> {
        page["people"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["username"].as_str().unwrap().to_owned())
            .collect()
    };
    // Ann may message every active member and admin; not herself, the disabled or the guest.
    let (s, page) = api.get("/api/v1/people", &ann).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(names(&page), ["bob", "root"]);
    assert_eq!(
        page["people"][0],
        json!({ "id": bob.id, "username": "bob", "display_name": "bob" })
    );
    let (_, page) = api.get("/api/v1/people?q=RO", &ann).await;
    assert_eq!(names(&page), ["root"]);
    let (_, page) = api.get("/api/v1/people?q=%25", &ann).await;
    assert_eq!(names(&page), Vec::<String>::new(), "% is matched literally");
    let (_, page) = api.get("/api/v1/people?limit=1", &ann).await;
    assert_eq!(
        (names(&page), &page["has_more"]),
        (vec!["bob".to_owned()], &json!(true))
    );
    let (_, page) = api.get("/api/v1/people?limit=1&after=bob", &ann).await;
    assert_eq!(
        (names(&page), &page["has_more"]),
        (vec!["root".to_owned()], &json!(false))
    );
    let (s, body) = api
        .get(&format!("/api/v1/people?q={}", "a".repeat(65)), &ann)
        .await;
    assert_error(&(s, body), StatusCode::BAD_REQUEST, "invalid_query");
    // The guest finds nobody until they share a room.
    let (_, page) = api.get("/api/v1/people", &gus).await;
    assert_eq!(names(&page), Vec::<String>::new());

    let room = api.room(&bob, "garden", true).await;
    api.add(&bob, room, &gus).await;
    let (_, page) = api.get("/api/v1/people", &gus).await;
    assert_eq!(names(&page), ["bob"]);
    let (_, page) = api.get("/api/v1/people", &bob).await;
    assert_eq!(names(&page), ["ann", "gus", "root"]);
    let (s, dm) = open_dm(&api, &gus, &bob).await;
    assert_eq!(s, StatusCode::CREATED, "{dm}");
    let dm_room = dm["id"].as_i64().unwrap();
    // A DM is not a shared room: it does not open the way to anyone else.
    let (s, body) = open_dm(&api, &gus, &ann).await;
    assert_error(&(s, body), StatusCode::FORBIDDEN, "dm_not_allowed");
    // Made a member and back a guest, gus keeps the DM (nobody "added" anyone to it).
    api.set_role(&admin, &gus, "member").await;
    api.set_role(&admin, &gus, "guest").await;
    let theirs = listed(&api, &gus).await;
    assert!(theirs.iter().any(|r| r["id"] == dm_room), "{theirs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_dm_and_its_messages_reach_both_sockets_live() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let bob = api.member(&admin, "bob").await;
    let (mut bob_ws, _) = api.ws_ready(&bob, None).await;
    let (mut ann_ws, _) = api.ws_ready(&ann, None).await;

    let (_, dm) = open_dm(&api, &ann, &bob).await;
    let room = dm["id"].as_i64().unwrap();
    // A connection joins a room with its account's `member.joined`: Bob, added first, hears
    // both; Ann hears her own.
    for (ws, joined) in [(1, &bob), (1, &ann), (0, &ann)] {
        let ws = if ws == 1 { &mut bob_ws } else { &mut ann_ws };
        let event = ws.next_event(WAIT).await;
        assert_eq!(
            (&event["room_id"], &event["type"], &event["data"]["user_id"]),
            (&json!(room), &json!("member.joined"), &json!(joined.id)),
            "{event}"
        );
    }
    let said = api.say(&ann, room, "hello @Bob.").await;
    let event = bob_ws.next_event(WAIT).await;
    assert_eq!(
        (&event["type"], &event["data"]["id"]),
        (&json!("message.created"), &said["id"])
    );
    assert_eq!(
        event["data"]["mentions"],
        json!([{ "user_id": bob.id, "username": "bob" }])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_name_the_rooms_members_only() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let bob = api.member(&admin, "bob").await;
    api.member(&admin, "cy1").await;
    let room = api.room(&ann, "kitchen", true).await;
    api.add(&ann, room, &bob).await;

    // cy1 exists but is not in the room; nobody is called "nobody"; mail is not a mention.
    let said = api
        .say(&ann, room, "@bob @cy1 @nobody ann@bob.example (@ANN) @bob")
        .await;
    assert_eq!(
        said["mentions"],
        json!([
            { "user_id": bob.id, "username": "bob" },
            { "user_id": ann.id, "username": "ann" },
        ])
    );
    let (_, page) = api
        .get(&format!("/api/v1/rooms/{room}/messages"), &bob)
        .await;
    assert_eq!(page["messages"][0]["mentions"], said["mentions"]);
    let quiet = api.say(&bob, room, "no names here").await;
    assert_eq!(quiet["mentions"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_in_a_dm_is_for_its_two_people() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let bob = api.member(&admin, "bob").await;
    let cy = api.member(&admin, "cy1").await;
    let (_, dm) = open_dm(&api, &ann, &bob).await;
    let room = dm["id"].as_i64().unwrap();

    let (s, file) = api
        .upload(&ann, "list.txt", b"eggs, flour, candles\n".to_vec())
        .await;
    assert_eq!(s, StatusCode::CREATED, "{file}");
    let (s, msg) = api
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            &ann,
            json!({ "body": "", "attachment_ids": [file["id"]] }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{msg}");
    let path = format!("/api/v1/attachments/{}", file["id"]);
    let (s, body) = api.get(&path, &bob.token).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    for outsider in [&cy, &admin] {
        let (s, body) = api.get(&path, &outsider.token).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{}: {body}", outsider.name);
    }
}

/// Whether `who`'s room list shows room `room`: there, and not marked `hidden`.
async fn lists(api: &Api, who: &User, room: i64) -> bool {
    let rooms = listed(api, who).await;
    let Some(found) = rooms.iter().find(|r| r["id"] == room) else {
        return false;
    };
    assert!(
        found["hidden"] == json!(true) || found.get("hidden").is_none(),
        "{found}"
    );
    found.get("hidden").is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_dm_leaves_one_list_until_a_new_message_or_opening_it_again() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let bob = api.member(&admin, "bob").await;
    let cy = api.member(&admin, "cy1").await;
    let (_, dm) = open_dm(&api, &ann, &bob).await;
    let room = dm["id"].as_i64().unwrap();
    api.say(&bob, room, "see you at eight").await;
    let hide = |who: &User, body: Option<Value>| {
        let path = format!("/api/v1/dms/{room}/hidden");
        let token = who.token.clone();
        let api = &api;
        async move { api.call(Method::PUT, &path, Some(&token), body).await }
    };

    // Hidden from ann's list only, and it stays hidden (stored on the server).
    let (status, body, _) = hide(&ann, Some(json!({}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!lists(&api, &ann, room).await);
    let anns = listed(&api, &ann).await;
    let hidden = anns.iter().find(|r| r["id"] == room).expect("still hers");
    assert_eq!(hidden["hidden"], true, "{hidden}");
    assert_eq!(hidden["kind"], "dm", "{hidden}");
    assert!(lists(&api, &bob, room).await, "the other side still has it");
    let again = api.signed_in("ann", MEMBER_PASSWORD).await;
    assert!(!lists(&api, &again, room).await, "a new sign-in agrees");
    // Still a DM she is in: she reads it and hears its events.
    let (status, _) = api
        .get(&format!("/api/v1/rooms/{room}/messages"), &ann)
        .await;
    assert_eq!(status, StatusCode::OK);

    // A new message brings it back, whoever writes it.
    let (mut ann_ws, _) = api.ws_ready(&ann, None).await;
    api.say(&bob, room, "still on?").await;
    let event = ann_ws.next_event(WAIT).await;
    assert_eq!(
        (&event["room_id"], &event["type"]),
        (&json!(room), &json!("message.created"))
    );
    let mine = listed(&api, &ann).await;
    let back = mine
        .iter()
        .find(|r| r["id"] == room)
        .expect("back in the list");
    assert_eq!(back["unread"], 2, "{back}");

    // Opening the DM again brings it back too; hiding with the client's `seq` keeps a message
    // the person had not seen yet from being hidden unseen.
    let (status, _, _) = hide(&ann, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!lists(&api, &ann, room).await);
    let (status, reopened) = open_dm(&api, &ann, &bob).await;
    assert_eq!((status, &reopened["id"]), (StatusCode::OK, &json!(room)));
    assert!(lists(&api, &ann, room).await);
    let seen = back["last_seq"].as_i64().unwrap();
    api.say(&bob, room, "hello?").await;
    let (status, _, _) = hide(&ann, Some(json!({ "seq": seen }))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        lists(&api, &ann, room).await,
        "a message after `seq` shows it"
    );

    // Only a DM, only its two people, only a sensible `seq`.
    let (status, body, _) = hide(&cy, Some(json!({}))).await;
    assert_error(&(status, body), StatusCode::NOT_FOUND, "not_found");
    let (status, body, _) = hide(&ann, Some(json!({ "seq": -1 }))).await;
    assert_error(&(status, body), StatusCode::BAD_REQUEST, "invalid_seq");
    let plain = api.room(&ann, "Kitchen", false).await;
    let (status, body, _) = api
        .call(
            Method::PUT,
            &format!("/api/v1/dms/{plain}/hidden"),
            Some(&ann.token),
            Some(json!({})),
        )
        .await;
    assert_error(&(status, body), StatusCode::BAD_REQUEST, "not_a_dm");
}
