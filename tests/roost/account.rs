//! A person manages their own account (`/api/v1/me`): a new display name, checked like the
//! admin's rename, reaches everyone sharing a room with them at once and is audited; a bad or
//! taken name is refused with a clear error and changes nothing.

use std::time::Duration;

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_renames_themselves_and_everyone_sharing_a_room_sees_it() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let gran = api.member(&admin, "gran1").await;
    let bob = api.member(&admin, "bob").await;
    let kitchen = api.room(&gran, "kitchen", true).await;
    api.add(&gran, kitchen, &bob).await;
    let (mut bob_ws, _) = api.ws_ready(&bob, None).await;

    // Full-width letters are stored as NFKC makes them, like the admin's rename.
    let (status, user) = api
        .patch("/api/v1/me", &gran, json!({ "display_name": "Ｇrandma" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["display_name"], "Grandma");
    assert_eq!(user["username"], "gran1");
    assert_eq!(user["role"], "member");

    let renamed = bob_ws.next_op("user", WAIT).await;
    assert_eq!(renamed["type"], "user.updated", "{renamed}");
    assert_eq!(renamed["user_id"], gran.id, "{renamed}");
    assert_eq!(renamed["data"]["display_name"], "Grandma", "{renamed}");

    let (status, me) = api.get("/api/v1/me", &gran).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["display_name"], "Grandma");
    let message = api.say(&gran, kitchen, "hello").await;
    assert_eq!(message["author_display_name"], "Grandma", "{message}");

    let audited = api.audit(&admin, "type=user.renamed").await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["actor"], "gran1", "{}", audited[0]);
    assert_eq!(audited[0]["target"], format!("user:{}", gran.id));
    assert_eq!(audited[0]["detail"]["from"], "gran1", "{}", audited[0]);
    assert_eq!(audited[0]["detail"]["to"], "Grandma", "{}", audited[0]);

    // A blank name goes back to the username.
    let (status, user) = api
        .patch("/api/v1/me", &gran, json!({ "display_name": "  " }))
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["display_name"], "gran1");

    // The admin's rename of her is audited the same way, under the admin's name.
    let (status, user) = api
        .patch(
            &format!("/api/v1/users/{}", gran.id),
            &admin,
            json!({ "display_name": "Gran" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    let audited = api.audit(&admin, "type=user.renamed").await;
    assert_eq!(audited.len(), 3, "{audited:?}");
    assert_eq!(audited[0]["actor"], "root", "{}", audited[0]);
    assert_eq!(audited[0]["detail"]["to"], "Gran", "{}", audited[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_taken_name_is_refused_and_changes_nothing() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let ann = api.member(&admin, "ann").await;
    let _bob = api.member(&admin, "bob").await;

    let hidden = api
        .patch(
            "/api/v1/me",
            &ann,
            json!({ "display_name": "Ann\u{202e}nimda" }),
        )
        .await;
    assert_error(&hidden, StatusCode::BAD_REQUEST, "invalid_display_name");
    let long = api
        .patch(
            "/api/v1/me",
            &ann,
            json!({ "display_name": "a".repeat(65) }),
        )
        .await;
    assert_error(&long, StatusCode::BAD_REQUEST, "invalid_display_name");
    // Another account's name, or one that only looks like it.
    let taken = api
        .patch("/api/v1/me", &ann, json!({ "display_name": "BOB" }))
        .await;
    assert_error(&taken, StatusCode::CONFLICT, "display_name_taken");
    // Only the display name is a person's own to change: never their role.
    let role = api
        .patch(
            "/api/v1/me",
            &ann,
            json!({ "display_name": "Ann", "role": "admin" }),
        )
        .await;
    assert_error(&role, StatusCode::BAD_REQUEST, "invalid_body");
    // A key that may only read cannot rename its owner.
    let (_, read_key) = api.api_key(&ann, &["read"]).await;
    let read_only = api
        .patch("/api/v1/me", &read_key, json!({ "display_name": "Annie" }))
        .await;
    assert_error(&read_only, StatusCode::FORBIDDEN, "insufficient_scope");

    let (status, me) = api.get("/api/v1/me", &ann).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["display_name"], "ann");
    assert_eq!(me["user"]["role"], "member");
    assert!(api.audit(&admin, "type=user.renamed").await.is_empty());
}
