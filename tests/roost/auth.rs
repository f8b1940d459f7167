//! Accounts, sessions, API keys, invites and the audit log, as a client and an operator see
//! them: the real binary over HTTPS, and the `roost user` / `roost invite` commands beside it.

use std::time::Duration;

use crate::support::*;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn token(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_code_creates_the_first_admin_once() {
    let mut api = Api::start(Setup::new());
    let (status, body) = api
        .post(
            "/api/v1/setup",
            None,
            json!({ "setup_code": "aaaa-bbbb-cccc-dddd-eeee", "username": "root", "password": ADMIN_PASSWORD }),
        )
        .await;
    assert_error(&(status, body), StatusCode::FORBIDDEN, "invalid_setup_code");
    let code_file = api.roost.setup.data_dir().join("secrets/setup-code");
    assert!(code_file.exists(), "the code waits for root in its file");

    let admin = api.setup_admin("Root").await;
    assert!(!code_file.exists(), "a used code's file is removed");
    assert_eq!(admin["token_type"], "Bearer");
    assert_eq!(admin["expires_in"], 900);
    assert_eq!(admin["user"]["username"], "root", "normalized");
    assert_eq!(admin["user"]["role"], "admin");
    let access = token(&admin, "access_token");
    let (status, me) = api.get("/api/v1/me", &access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["role"], "admin");
    assert_eq!(me["auth"], "session");

    let line = api
        .roost
        .logs()
        .into_iter()
        .find(|v| v["setup_code"].is_string())
        .unwrap();
    let (status, body) = api
        .post(
            "/api/v1/setup",
            None,
            json!({ "setup_code": line["setup_code"], "username": "second", "password": ADMIN_PASSWORD }),
        )
        .await;
    assert_error(&(status, body), StatusCode::CONFLICT, "admin_exists");

    let events = api.audit(&access, "type=setup.admin_created").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["actor"], "root");
    assert_eq!(events[0]["client_ip"], "127.0.0.1");
    // The code is gone from the database once used.
    let left: i64 = api
        .db()
        .query_row(
            "SELECT count(*) FROM settings WHERE key = 'auth.setup_code'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}

/// `POST /api/v1/auth/refresh` as if from `from` (127.0.0.1 is a trusted proxy where used).
async fn refresh_from(api: &Api, from: &str, refresh_token: &Value) -> (StatusCode, Value) {
    let body = json!({ "refresh_token": refresh_token });
    api.post_from(from, "/api/v1/auth/refresh", body).await
}

/// Signs in as if from `from` (127.0.0.1 is a trusted proxy where used).
async fn login_from(api: &Api, from: &str, name: &str, password: &str) -> (StatusCode, Value) {
    let body = json!({ "username": name, "password": password });
    api.post_from(from, "/api/v1/auth/login", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_refresh_gets_the_same_pair_but_another_address_revokes() {
    let setup = Setup::new().toml(
        "[rate_limits]\nexempt_cidrs = [\"127.0.0.1/32\", \"198.51.100.0/24\", \"203.0.113.0/24\"]\n",
    );
    setup.write_config("trusted_proxies = [\"127.0.0.1/32\"]");
    let mut api = Api::start(setup);
    api.setup_admin("Root").await;
    const PHONE: &str = "198.51.100.7";

    // Two refreshes with the same token at once, as a client retrying on a flaky network.
    let (status, first) = login_from(&api, PHONE, "root", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let ((s1, a), (s2, b)) = tokio::join!(
        refresh_from(&api, PHONE, &first["refresh_token"]),
        refresh_from(&api, PHONE, &first["refresh_token"]),
    );
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{a} {b}");
    assert_eq!(a["refresh_token"], b["refresh_token"], "the same new pair");
    assert_eq!(a["access_token"], b["access_token"]);
    // And once more, sequentially: the answer was lost, the client asks again.
    let (status, c) = refresh_from(&api, PHONE, &first["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["refresh_token"], a["refresh_token"]);
    // The session goes on with the new token.
    let (status, next) = refresh_from(&api, PHONE, &a["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_eq!(
        api.metric("roost_auth_failures_total{reason=\"refresh_reuse\"}")
            .await,
        None,
        "no retry was taken for reuse"
    );
    // Once the new token was exchanged in turn, the first one is plain reuse again.
    let (status, body) = refresh_from(&api, PHONE, &first["refresh_token"]).await;
    assert_error(
        &(status, body),
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    );

    // The same token from another address, even at once, is reuse: the session is revoked.
    let (_, other) = login_from(&api, PHONE, "root", ADMIN_PASSWORD).await;
    let (status, renewed) = refresh_from(&api, PHONE, &other["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let (status, body) = refresh_from(&api, "203.0.113.9", &other["refresh_token"]).await;
    assert_error(
        &(status, body),
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    );
    let (status, body) = refresh_from(&api, PHONE, &renewed["refresh_token"]).await;
    assert_error_for(
        "the family is revoked",
        &(status, body),
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let mut api = Api::start(Setup::new());
    let admin = api.setup_admin("Root").await;
    let admin_access = token(&admin, "access_token");

    let (status, first) = api.login("root", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = api
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": first["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(second["access_token"], first["access_token"]);
    let (status, third) = api
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": second["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{third}");
    let live_access = token(&third, "access_token");
    assert_eq!(api.get("/api/v1/me", &live_access).await.0, StatusCode::OK);

    // Someone replays the first (already rotated) refresh token.
    let (status, body) = api
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": first["refresh_token"] }),
        )
        .await;
    assert_error(
        &(status, body),
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    );
    // The whole family is gone: the newest refresh token and a live access token.
    let (status, body) = api
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": third["refresh_token"] }),
        )
        .await;
    assert_error(
        &(status, body),
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
    let (status, body) = api.get("/api/v1/me", &live_access).await;
    assert_error(&(status, body), StatusCode::UNAUTHORIZED, "invalid_token");
    // Other sessions of the same user are untouched.
    assert_eq!(api.get("/api/v1/me", &admin_access).await.0, StatusCode::OK);

    let events = api.audit(&admin_access, "type=auth.refresh_reuse").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["outcome"], "failure");
    assert_eq!(events[0]["actor"], "root");
    assert_eq!(
        api.metric("roost_auth_failures_total{reason=\"refresh_reuse\"}")
            .await,
        Some(1.0)
    );

    // Garbage refresh tokens are a clean 401 too.
    let (status, body) = api
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": "nope" }),
        )
        .await;
    assert_error(
        &(status, body),
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_and_its_tokens() {
    let mut api = Api::start(Setup::new());
    api.setup_admin("Root").await;
    let (_, s) = api.login("root", ADMIN_PASSWORD).await;
    let access = token(&s, "access_token");
    let (status, body, _) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            Some(&access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = api.get("/api/v1/me", &access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = api
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": s["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.metric("roost_auth_failures_total{reason=\"session_revoked\"}")
            .await,
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_users_lose_live_tokens_at_once_via_api_and_cli() {
    let mut api = Api::start(Setup::new());
    let admin = token(&api.setup_admin("Root").await, "access_token");
    let member = api.register(&admin, "mia", "mia password 1").await;
    let member_access = token(&member, "access_token");
    let member_id = member["user"]["id"].as_i64().unwrap();
    assert_eq!(
        api.get("/api/v1/me", &member_access).await.0,
        StatusCode::OK
    );

    let (status, user) = api
        .patch(
            &format!("/api/v1/users/{member_id}"),
            &admin,
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["disabled"], true);
    // The access token is still within its 15 minutes, and refused.
    let (status, body) = api.get("/api/v1/me", &member_access).await;
    assert_error(&(status, body), StatusCode::UNAUTHORIZED, "invalid_token");
    let (status, body) = api.login("mia", "mia password 1").await;
    assert_error(&(status, body), StatusCode::FORBIDDEN, "account_disabled");

    // The same from the command line, while the daemon runs.
    let out = run_with_stdin(
        &api.roost.setup,
        &["user", "add", "cli-bob"],
        b"bob password 1\n",
    );
    assert_exit_0(&out);
    let (status, bob) = api.login("cli-bob", "bob password 1").await;
    assert_eq!(status, StatusCode::OK, "{bob}");
    let bob_access = token(&bob, "access_token");
    assert_eq!(api.get("/api/v1/me", &bob_access).await.0, StatusCode::OK);
    let out = api.roost.setup.run(&["user", "disable", "CLI-Bob"]);
    assert_exit_0(&out);
    // Another process's change reaches requests within the session cache's second (the
    // daemon's own changes, above, at the very next request).
    eventually(
        Duration::from_secs(3),
        "bob's token to be refused",
        || async {
            (api.get("/api/v1/me", &bob_access).await.0 == StatusCode::UNAUTHORIZED).then_some(())
        },
    )
    .await;

    // The last admin cannot lock everyone out.
    let (status, body) = api
        .patch("/api/v1/users/1", &admin, json!({ "role": "member" }))
        .await;
    assert_error(&(status, body), StatusCode::CONFLICT, "last_admin");

    let disabled = api.audit(&admin, "type=user.disabled").await;
    assert_eq!(disabled.len(), 2, "{disabled:?}");
    assert_eq!(disabled[0]["actor"], "cli");
    assert_eq!(disabled[1]["actor"], "root");
    assert!(api
        .metric("roost_auth_failures_total{reason=\"user_disabled\"}")
        .await
        .is_some_and(|n| n >= 1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_signs_out_every_session() {
    let mut api = Api::start(Setup::new());
    api.setup_admin("Root").await;
    let (_, one) = api.login("root", ADMIN_PASSWORD).await;
    let (_, two) = api.login("root", ADMIN_PASSWORD).await;
    let (one, two) = (token(&one, "access_token"), token(&two, "access_token"));

    let (status, body) = api
        .post(
            "/api/v1/auth/password",
            &one,
            json!({ "current_password": "not it at all", "new_password": "brand new password" }),
        )
        .await;
    assert_error(&(status, body), StatusCode::FORBIDDEN, "wrong_password");
    let (status, body) = api
        .post(
            "/api/v1/auth/password",
            &one,
            json!({ "current_password": ADMIN_PASSWORD, "new_password": "short" }),
        )
        .await;
    assert_error(
        &(status, body),
        StatusCode::BAD_REQUEST,
        "password_too_short",
    );

    let (status, fresh) = api
        .post(
            "/api/v1/auth/password",
            &one,
            json!({ "current_password": ADMIN_PASSWORD, "new_password": "brand new password" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(
        api.get("/api/v1/me", &one).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.get("/api/v1/me", &two).await.0,
        StatusCode::UNAUTHORIZED
    );
    let fresh = token(&fresh, "access_token");
    assert_eq!(api.get("/api/v1/me", &fresh).await.0, StatusCode::OK);
    assert_eq!(
        api.login("root", ADMIN_PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.login("root", "brand new password").await.0,
        StatusCode::OK
    );
    assert_eq!(
        api.audit(&fresh, "type=user.password_changed").await.len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_shown_once_scoped_rotated_and_revoked() {
    let mut api = Api::start(Setup::new());
    let admin = token(&api.setup_admin("Root").await, "access_token");

    let (status, created) = api
        .post(
            "/api/v1/api-keys",
            &admin,
            json!({ "name": "backup bot", "scopes": ["read"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = token(&created, "key");
    let prefix = created["prefix"].as_str().unwrap();
    assert!(key.starts_with(&format!("roost_{prefix}_")), "{key}");
    assert_eq!(
        created["last_four"].as_str().unwrap(),
        &key[key.len() - 4..]
    );
    let id = created["id"].as_i64().unwrap();

    // The key works for reads, as its owner, and is not stored in the clear.
    let (status, me) = api.get("/api/v1/me", &key).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        (me["auth"].as_str(), me["user"]["username"].as_str()),
        (Some("api_key"), Some("root"))
    );
    let secret = key.rsplit('_').next().unwrap().to_owned();
    let data = api.roost.setup.data_dir();
    for file in ["roost.sqlite3", "roost.sqlite3-wal"] {
        let bytes = std::fs::read(data.join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the key's secret is in {file}"
        );
    }
    // A read-only key may not write, nor act as an admin, nor manage keys.
    let (status, body) = api.post("/api/v1/invites", &key, json!({})).await;
    assert_error(&(status, body), StatusCode::FORBIDDEN, "insufficient_scope");
    let (status, body) = api.get("/api/v1/users", &key).await;
    assert_error(&(status, body), StatusCode::FORBIDDEN, "insufficient_scope");
    let (status, body) = api.get("/api/v1/api-keys", &key).await;
    assert_error(&(status, body), StatusCode::FORBIDDEN, "session_required");

    let (status, list) = api.get("/api/v1/api-keys", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("key").is_none(), "{list}");
    assert!(!list.to_string().contains(&secret));
    // Usage is recorded (throttled, written in the background).
    eventually(Duration::from_secs(10), "last_used_at", || async {
        let (_, list) = api.get("/api/v1/api-keys", &admin).await;
        list[0]["last_used_at"].is_string().then_some(())
    })
    .await;

    // Rotation, step one and two.
    let rotation = format!("/api/v1/api-keys/{id}/rotation");
    let (status, started) = api.post(&rotation, &admin, json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{started}");
    assert_eq!(started["expires_in"], 900);
    let (status, body) = api
        .post(
            &format!("{rotation}/confirm"),
            &admin,
            json!({ "rotation_token": "0".repeat(64) }),
        )
        .await;
    assert_error(
        &(status, body),
        StatusCode::BAD_REQUEST,
        "invalid_rotation_token",
    );
    let (status, rotated) = api
        .post(
            &format!("{rotation}/confirm"),
            &admin,
            json!({ "rotation_token": started["rotation_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rotated}");
    let new_key = token(&rotated, "key");
    assert_ne!(new_key, key);
    assert_eq!(rotated["name"], "backup bot");
    assert_eq!(rotated["scopes"], json!(["read"]));
    assert_eq!(
        api.get("/api/v1/me", &key).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api.get("/api/v1/me", &new_key).await.0, StatusCode::OK);
    let (status, body) = api
        .post(
            &format!("{rotation}/confirm"),
            &admin,
            json!({ "rotation_token": started["rotation_token"] }),
        )
        .await;
    assert_error(&(status, body), StatusCode::CONFLICT, "rotation_token_used");

    // An expired rotation token (aged in the database: the daemon's clock is real).
    let new_id = rotated["id"].as_i64().unwrap();
    let rotation = format!("/api/v1/api-keys/{new_id}/rotation");
    let (_, started) = api.post(&rotation, &admin, json!({})).await;
    api.db()
        .execute(
            "UPDATE api_key_rotations SET expires_at = expires_at - 901 WHERE used_at IS NULL",
            [],
        )
        .unwrap();
    let (status, body) = api
        .post(
            &format!("{rotation}/confirm"),
            &admin,
            json!({ "rotation_token": started["rotation_token"] }),
        )
        .await;
    assert_error(
        &(status, body),
        StatusCode::BAD_REQUEST,
        "rotation_token_expired",
    );
    assert_eq!(
        api.get("/api/v1/me", &new_key).await.0,
        StatusCode::OK,
        "an expired rotation changes nothing"
    );

    // Revoke.
    let (status, _) = api
        .delete(&format!("/api/v1/api-keys/{new_id}"), &admin)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.get("/api/v1/me", &new_key).await;
    assert_error(&(status, body), StatusCode::UNAUTHORIZED, "invalid_token");
    let (status, _) = api
        .delete(&format!("/api/v1/api-keys/{new_id}"), &admin)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let kinds: Vec<String> = api
        .audit(&admin, "type=api_key.*")
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["api_key.revoked", "api_key.rotated", "api_key.created"]
    );
    assert!(api
        .metric("roost_auth_failures_total{reason=\"api_key_revoked\"}")
        .await
        .is_some_and(|n| n >= 1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_register_members_and_roles_are_enforced() {
    let mut api = Api::start(Setup::new());
    let admin = token(&api.setup_admin("Root").await, "access_token");

    let (status, invite) = api
        .post(
            "/api/v1/invites",
            &admin,
            json!({ "max_uses": 1, "expires_in_secs": 3600 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let code = invite["code"].as_str().unwrap().to_owned();
    let (status, body) = api
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "invite_code": code.to_uppercase(), "username": "Nora", "password": "nora password 1", "display_name": "Nora N." }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["role"], "member");
    assert_eq!(body["user"]["display_name"], "Nora N.");
    let member = token(&body, "access_token");
    let (status, body) = api
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "invite_code": code, "username": "oscar", "password": "oscar password 1" }),
        )
        .await;
    assert_error(&(status, body), StatusCode::CONFLICT, "invite_used_up");
    let (status, body) = api
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "invite_code": "nope", "username": "oscar", "password": "oscar password 1" }),
        )
        .await;
    assert_error(&(status, body), StatusCode::BAD_REQUEST, "invalid_invite");
    let (status, body) = api
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "invite_code": code, "username": "x", "password": "oscar password 1" }),
        )
        .await;
    assert_error(&(status, body), StatusCode::BAD_REQUEST, "invalid_username");

    // A member is refused on admin routes; nobody anonymous gets in.
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/users"),
        (reqwest::Method::GET, "/api/v1/invites"),
        (reqwest::Method::POST, "/api/v1/invites"),
        (reqwest::Method::GET, "/api/v1/audit"),
        (reqwest::Method::PATCH, "/api/v1/users/1"),
    ] {
        let (status, body, _) = api
            .call(method.clone(), path, Some(&member), Some(json!({})))
            .await;
        assert_error_for(
            format!("{method} {path}"),
            &(status, body.clone()),
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        let (status, body, headers) = api.call(method.clone(), path, None, Some(json!({}))).await;
        assert_error_for(
            format!("{method} {path}"),
            &(status, body.clone()),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
        assert!(headers.contains_key("www-authenticate"));
    }

    // A member cannot mint an admin-scoped key either.
    let (status, body) = api
        .post(
            "/api/v1/api-keys",
            &member,
            json!({ "name": "sneaky", "scopes": ["admin"] }),
        )
        .await;
    assert_error(&(status, body), StatusCode::FORBIDDEN, "forbidden");

    // The admin sees both accounts and the invite, used up.
    let (_, users) = api.get("/api/v1/users", &admin).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root", "nora"]);
    let (_, invites) = api.get("/api/v1/invites", &admin).await;
    assert_eq!(
        (invites[0]["uses"].as_i64(), invites[0]["max_uses"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(invites[0].get("code").is_none());

    // Role changes take effect on live tokens.
    let (status, body) = api
        .patch("/api/v1/users/2", &admin, json!({ "role": "admin" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(api.get("/api/v1/users", &member).await.0, StatusCode::OK);

    // The audit log, filtered and paged.
    let used = api.audit(&admin, "type=invite.used").await;
    assert_eq!(used.len(), 1);
    assert_eq!(used[0]["actor"], "nora");
    let page1 = api.audit(&admin, "limit=2").await;
    assert_eq!(page1.len(), 2);
    let (_, first) = api.get("/api/v1/audit?limit=2", &admin).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let page2 = api.audit(&admin, &format!("limit=2&cursor={cursor}")).await;
    assert!(page2[0]["id"].as_i64() < page1[1]["id"].as_i64());
    let all = api.audit(&admin, "limit=200").await;
    let kinds: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for kind in [
        "setup.admin_created",
        "invite.created",
        "invite.used",
        "user.created",
        "user.role_changed",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let dump = serde_json::to_string(&all).unwrap();
    assert!(
        !dump.contains(&code) && !dump.contains("nora password"),
        "secrets in the audit log"
    );
    let (status, body) = api.get("/api/v1/audit?since=yesterday", &admin).await;
    assert_error(&(status, body), StatusCode::BAD_REQUEST, "invalid_query");
    let future = api.audit(&admin, "since=2999-01-01T00:00:00Z").await;
    assert!(future.is_empty());
}

/// Signs `claims` with HS256 under `key`, or leaves it unsigned with another header.
fn forge(header: &Value, claims: &Value, key: &[u8]) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let msg = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
        msg.as_bytes(),
    );
    format!("{msg}.{}", b64(sig.as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_get_401_with_distinct_reasons() {
    let mut api = Api::start(Setup::new());
    let admin = api.setup_admin("Root").await;
    let good = token(&admin, "access_token");
    let key = std::fs::read_to_string(api.roost.setup.data_dir().join("secrets/jwt_signing.key"))
        .unwrap();
    let key = key.trim_end().as_bytes().to_vec();
    let payload = |p: &str| -> Value {
        let part = p.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    let claims = payload(&good);
    let now = claims["iat"].as_i64().unwrap();
    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    let hs256 = json!({ "alg": "HS256", "typ": "JWT" });
    let cases = [
        ("alg_none", {
            let t = forge(&json!({ "alg": "none" }), &claims, &key);
            format!("{}.", t.rsplit_once('.').unwrap().0)
        }),
        (
            "bad_algorithm",
            forge(&json!({ "alg": "HS512" }), &claims, &key),
        ),
        (
            "bad_signature",
            forge(&hs256, &claims, b"some other key entirely"),
        ),
        ("bad_signature", {
            let forged = forge(&hs256, &with("role", json!("admin")), &key);
            let sig = good.rsplit('.').next().unwrap();
            format!("{}.{sig}", forged.rsplit_once('.').unwrap().0)
        }),
        (
            "token_expired",
            forge(&hs256, &with("exp", json!(now - 10)), &key),
        ),
        (
            "token_not_yet_valid",
            forge(&hs256, &with("nbf", json!(now + 600)), &key),
        ),
        (
            "bad_issuer",
            forge(&hs256, &with("iss", json!("elsewhere")), &key),
        ),
        (
            "bad_audience",
            forge(&hs256, &with("aud", json!("other-api")), &key),
        ),
        ("malformed_token", "not.a.jwt".to_owned()),
    ];
    for (reason, bad) in &cases {
        let (status, body, headers) = api
            .call(reqwest::Method::GET, "/api/v1/me", Some(bad), None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason}: {body}");
        let code = if *reason == "token_expired" {
            "token_expired"
        } else {
            "invalid_token"
        };
        assert_eq!(body["error"]["code"], code, "{reason}");
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
        // Rejected before any handler: the same on an API route that does not need a caller.
        let (status, _) = api.get("/api/v1/no-such-route", bad).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reason} before routing");
        // Outside the API, Authorization is not Roost's (LiveKit's Twirp uses it): ignored.
        let (status, _) = api.get("/health", bad).await;
        assert_eq!(status, StatusCode::OK, "{reason} on /health");
    }
    for reason in [
        "alg_none",
        "bad_algorithm",
        "token_expired",
        "token_not_yet_valid",
        "bad_issuer",
        "bad_audience",
        "malformed_token",
    ] {
        assert_eq!(
            api.metric(&format!("roost_auth_failures_total{{reason=\"{reason}\"}}"))
                .await,
            Some(2.0),
            "{reason}"
        );
    }
    assert_eq!(
        api.metric("roost_auth_failures_total{reason=\"bad_signature\"}")
            .await,
        Some(4.0)
    );
    // A correctly signed token still works, and Basic auth is not a bearer token.
    assert_eq!(api.get("/api/v1/me", &good).await.0, StatusCode::OK);
    let resp = api
        .http
        .get(api.roost.https_url("/api/v1/me"))
        .basic_auth("root", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attacker_elsewhere_cannot_lock_the_owner_out() {
    // Clients are told apart by X-Forwarded-For from the loopback "proxy"; none of them is
    // rate limited, so only the login backoff answers. (The config is written here, so the
    // rate-limit exemption `Api::start` would add is spelled out.)
    let setup = Setup::new().toml(
        "[rate_limits]\nexempt_cidrs = [\"127.0.0.1/32\", \"198.51.100.0/24\", \"203.0.113.0/24\"]\n",
    );
    setup.write_config("trusted_proxies = [\"127.0.0.1/32\"]");
    let mut api = Api::start(setup);
    let admin = api.setup_admin("Root").await;
    let admin_access = token(&admin, "access_token");
    const OWNER: &str = "198.51.100.20";

    // One address guesses: after three free failures it is refused unchecked...
    for _ in 0..4 {
        let (status, _) = login_from(&api, "203.0.113.9", "root", "wrong password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = login_from(&api, "203.0.113.9", "root", ADMIN_PASSWORD).await;
    assert_error(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "login_backoff",
    );
    // ...while the owner, elsewhere, signs in.
    let (status, body) = login_from(&api, OWNER, "root", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Many addresses guess: past the name's ceiling every address that failed is refused,
    // even with the right password; the owner's address, which never failed, is not.
    for i in 10..17 {
        let (status, _) = login_from(&api, &format!("203.0.113.{i}"), "root", "wrong").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = login_from(&api, "203.0.113.12", "root", ADMIN_PASSWORD).await;
    assert_error(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "login_backoff",
    );
    let (status, body) = login_from(&api, OWNER, "root", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for scope in ["address", "username"] {
        let refused = api
            .metric(&format!(
                "roost_auth_login_backoff_refusals_total{{scope=\"{scope}\"}}"
            ))
            .await;
        assert_eq!(refused, Some(1.0), "{scope}");
    }
    let events = api
        .audit(&admin_access, "type=auth.login_backoff&limit=50")
        .await;
    let started: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["detail"]["scope"].as_str().unwrap(),
                e["client_ip"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        started.len(),
        2,
        "one event per backoff started: {events:?}"
    );
    assert!(started.contains(&("address", "203.0.113.9")), "{started:?}");
    assert!(
        started.contains(&("username", "203.0.113.16")),
        "{started:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_back_off_per_username() {
    let mut api = Api::start(Setup::new());
    api.setup_admin("Root").await;
    for _ in 0..3 {
        let (status, body) = api.login("root", "wrong password").await;
        assert_error(
            &(status, body),
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        );
    }
    // The fourth failure starts the backoff; the next attempt is refused unchecked, even with
    // the right password.
    assert_eq!(
        api.login("ROOT", "wrong password").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body, headers) = api
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "username": "root", "password": ADMIN_PASSWORD })),
        )
        .await;
    assert_error(
        &(status, body),
        StatusCode::TOO_MANY_REQUESTS,
        "login_backoff",
    );
    assert!(headers.contains_key("retry-after"), "{headers:?}");
    // Unknown users are answered the same way as wrong passwords.
    let (status, body) = api.login("nobody-here", "wrong password").await;
    assert_error(
        &(status, body),
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    // After the delay, the right password works again.
    eventually(Duration::from_secs(10), "the backoff to end", || async {
        (api.login("root", ADMIN_PASSWORD).await.0 == StatusCode::OK).then_some(())
    })
    .await;
    let (_, s) = api.login("root", ADMIN_PASSWORD).await;
    let events = api
        .audit(&token(&s, "access_token"), "type=auth.login&limit=200")
        .await;
    let failures: Vec<&Value> = events
        .iter()
        .filter(|e| e["outcome"] == "failure")
        .collect();
    let reasons: Vec<&str> = failures
        .iter()
        .map(|e| e["detail"]["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"bad_password") && reasons.contains(&"unknown_user"),
        "{reasons:?}"
    );
    assert!(events.iter().any(|e| e["outcome"] == "success"));
    assert!(api
        .metric("roost_auth_failures_total{reason=\"login_backoff\"}")
        .await
        .is_some_and(|n| n >= 1.0));
    // Malformed bodies are clean JSON errors.
    let resp = api
        .http
        .post(api.roost.https_url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_error(
        &answer(resp).await,
        StatusCode::BAD_REQUEST,
        "malformed_json",
    );
    let resp = api
        .http
        .post(api.roost.https_url("/api/v1/auth/login"))
        .body("username=root")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, body) = api
        .post("/api/v1/auth/login", None, json!({ "username": "root" }))
        .await;
    assert_error(&(status, body), StatusCode::BAD_REQUEST, "invalid_body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_user_add_with_stdin_password_then_login_over_https() {
    let setup = Setup::new();
    setup.write_config("");
    let out = run_with_stdin(
        &setup,
        &[
            "user",
            "add",
            "Alice",
            "--role",
            "admin",
            "--display-name",
            "Alice A.",
        ],
        b"alice password 1\n",
    );
    assert_exit_0(&out);
    assert!(
        stdout(&out).contains("created admin alice"),
        "{}",
        stdout(&out)
    );
    assert!(
        !stdout(&out).contains("alice password 1"),
        "a given password is never printed"
    );
    let out = run_with_stdin(&setup, &["user", "add", "alice"], b"another password\n");
    assert_eq!(out.status.code(), Some(1), "duplicate name");
    let out = run_with_stdin(&setup, &["user", "add", "bo"], b"another password\n");
    assert_eq!(out.status.code(), Some(64), "invalid name");
    // No password piped: one is generated and printed once.
    let out = setup.run(&["user", "add", "gus", "--role", "guest"]);
    assert_exit_0(&out);
    let generated = stdout(&out)
        .lines()
        .find_map(|l| {
            l.strip_prefix("password (shown only now): ")
                .map(str::to_owned)
        })
        .expect("a generated password");

    let out = setup.run(&["user", "list", "--json"]);
    let users: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(users[0]["username"], "alice");
    assert_eq!(users[0]["display_name"], "Alice A.");
    assert_eq!(users[1]["role"], "guest");
    let out = setup.run(&["invite", "create", "--uses", "3", "--expires", "2d"]);
    assert_eq!(out.status.code(), Some(0));
    let code = stdout(&out).trim().to_owned();

    let mut api = Api::start(setup);
    // An admin exists, so no setup code is issued.
    api.roost
        .wait_for_log(|v| v["message"] == "listening", STARTUP_DEADLINE);
    assert!(api.roost.logs().iter().all(|v| v["setup_code"].is_null()));
    let (status, body) = api.login("alice", "alice password 1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(api.login("gus", &generated).await.0, StatusCode::OK);
    let (status, body) = api
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "invite_code": code, "username": "carl", "password": "carl password 1" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // `roost user passwd` with a piped password signs the user out everywhere.
    let access = token(&body, "access_token");
    let out = run_with_stdin(
        &api.roost.setup,
        &["user", "passwd", "carl"],
        b"carl password 2\n",
    );
    assert_exit_0(&out);
    assert_eq!(
        api.get("/api/v1/me", &access).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api.login("carl", "carl password 2").await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_passwords_are_one_line_of_stdin() {
    let setup = Setup::new();
    setup.write_config("");
    // A password given twice, as a person answering "password" and "again" would pipe it.
    let out = run_with_stdin(
        &setup,
        &["user", "add", "dora"],
        b"dora password 1\ndora password 1\n",
    );
    assert_eq!(out.status.code(), Some(64), "{}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("more than one line"), "{err}");
    let out = setup.run(&["user", "list", "--json"]);
    let users: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(users, json!([]), "nothing was created");

    // A Windows line ending is not part of the password.
    let out = run_with_stdin(&setup, &["user", "add", "dora"], b"dora password 1\r\n");
    assert_exit_0(&out);
    let out = run_with_stdin(
        &setup,
        &["user", "passwd", "dora"],
        b"dora password 2\ndora password 2\n",
    );
    assert_eq!(out.status.code(), Some(64), "{}", stdout(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than one line"));

    let api = Api::start(setup);
    let (status, body) = api.login("dora", "dora password 1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = api.login("dora", "dora password 2").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the refused passwd changed nothing"
    );
}
