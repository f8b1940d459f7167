//! What a person may be called and sign in with, as clients and the operator see it: the rules
//! for new passwords and for names (the real binary over HTTPS, and `roost user` beside it).

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Weak passwords and what each is refused with.
const WEAK: [(&str, &str, &str); 4] = [
    (
        "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        "password_too_weak",
        "control characters",
    ),
    (
        "            ",
        "password_too_short",
        "not counting spaces at either end",
    ),
    (
        "aaaaaaaaaaaaaaaa",
        "password_too_weak",
        "one character repeated",
    ),
    (
        "line one\nline two",
        "password_too_weak",
        "control characters",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_passwords_are_refused_everywhere_one_is_set() {
    let mut api = Api::start(Setup::new());

    // The first admin's setup.
    let line = api
        .roost
        .wait_for_log(|v| v["setup_code"].is_string(), STARTUP_DEADLINE);
    let code = line["setup_code"].as_str().unwrap().to_owned();
    for (password, want_code, want_text) in WEAK {
        let (s, body) = api
            .post(
                "/api/v1/setup",
                None,
                json!({ "setup_code": code, "username": "root", "password": password }),
            )
            .await;
        let refusal = (s, body);
        let message = assert_error_for(
            format!("{password:?}"),
            &refusal,
            StatusCode::BAD_REQUEST,
            want_code,
        );
        assert!(message.contains(want_text), "{password:?}: {message}");
    }
    let admin = api.admin().await;

    // Registration with an invite.
    let (_, invite) = api
        .post("/api/v1/invites", &admin, json!({ "max_uses": 1 }))
        .await;
    for (password, want_code, _) in WEAK {
        let (s, body) = api
            .post(
                "/api/v1/auth/register",
                None,
                json!({ "invite_code": invite["code"], "username": "alice", "password": password }),
            )
            .await;
        assert_error(&(s, body), StatusCode::BAD_REQUEST, want_code);
    }

    // A password change.
    for (password, want_code, _) in WEAK {
        let (s, body) = api
            .post(
                "/api/v1/auth/password",
                &admin,
                json!({ "current_password": ADMIN_PASSWORD, "new_password": password }),
            )
            .await;
        assert_error(&(s, body), StatusCode::BAD_REQUEST, want_code);
    }
    // Still the old password.
    api.signed_in("root", ADMIN_PASSWORD).await;

    // `roost user add` and `roost user passwd`, the password piped in (one line: how a
    // second line is read is the command's own rule).
    let setup = &api.roost.setup;
    for (password, _, want_text) in &WEAK[..3] {
        let input = format!("{password}\n");
        for args in [&["user", "add", "bob"][..], &["user", "passwd", "root"][..]] {
            let out = run_with_stdin(setup, args, input.as_bytes());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(64),
                "{args:?} {password:?}: {stderr}"
            );
            assert!(
                stderr.contains(want_text),
                "{args:?} {password:?}: {stderr}"
            );
        }
    }
    let (s, body) = api.login("bob", "aaaaaaaaaaaaaaaa").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    api.signed_in("root", ADMIN_PASSWORD).await;
}

/// `PATCH /api/v1/users/{id}` with a new display name, as `admin`.
async fn rename(api: &Api, admin: &User, user: &User, display_name: &str) -> (StatusCode, Value) {
    let (s, body) = api
        .patch(
            &format!("/api/v1/users/{}", user.id),
            &admin.token,
            json!({ "display_name": display_name }),
        )
        .await;
    (s, body)
}

/// Registers `name` with an invite from `admin`: the raw answer.
async fn try_register(api: &Api, admin: &User, body: Value) -> (StatusCode, Value) {
    let (_, invite) = api
        .post("/api/v1/invites", admin, json!({ "max_uses": 1 }))
        .await;
    let mut body = body;
    body["invite_code"] = invite["code"].clone();
    body["password"] = json!(MEMBER_PASSWORD);
    api.post("/api/v1/auth/register", None, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_cannot_hide_characters_or_pass_for_another_account() {
    let mut api = Api::start(Setup::new());
    let admin = api.admin().await;
    let alice = api.member(&admin, "alice").await;
    let bob = api.member(&admin, "bob").await;

    // Hidden and direction-changing characters, and words mixing scripts, are named.
    for (name, named) in [
        ("bob\u{202E}gpj.exe", "U+202E"),
        ("\u{200B}bob", "U+200B"),
        ("bo\u{FEFF}b", "U+FEFF"),
        ("bob\u{2066}", "U+2066"),
        ("b\u{0}ob", "U+0000"),
        ("\u{410}lice", "mixes letters of different scripts"),
    ] {
        let (s, body) = rename(&api, &admin, &bob, name).await;
        let refusal = (s, body);
        let message = assert_error_for(
            format!("{name:?}"),
            &refusal,
            StatusCode::BAD_REQUEST,
            "invalid_display_name",
        );
        assert!(message.contains(named), "{name:?}: {message}");
    }
    // Another account's name, in any case or compatibility form, is taken; so is a username.
    for name in ["ALICE", "ａｌｉｃｅ", "Root", "  alice  "] {
        let (s, body) = rename(&api, &admin, &bob, name).await;
        assert_error_for(
            format!("{name:?}"),
            &(s, body),
            StatusCode::CONFLICT,
            "display_name_taken",
        );
    }
    // A name of its own is stored in NFKC and then held: alice cannot take it either.
    let (s, body) = rename(&api, &admin, &bob, "Ｂｏｂ Ｂｕｉｌｄｅｒ").await;
    assert_eq!(
        (s, &body["display_name"]),
        (StatusCode::OK, &json!("Bob Builder"))
    );
    let (s, body) = rename(&api, &admin, &alice, "bob  builder").await;
    assert_error(&(s, body), StatusCode::CONFLICT, "display_name_taken");
    // Emoji sequences are not hiding anything.
    let (s, body) = rename(&api, &admin, &alice, "Alice ❤️ 👩🏽‍💻").await;
    assert_eq!(
        (s, &body["display_name"]),
        (StatusCode::OK, &json!("Alice ❤️ 👩🏽‍💻"))
    );
    // Whatever he shows, his username's look stays his.
    let (s, body) = rename(&api, &admin, &alice, "BOB").await;
    assert_error(&(s, body), StatusCode::CONFLICT, "display_name_taken");

    // Registration: a username like an existing name, or a display name like one.
    let (s, body) = try_register(&api, &admin, json!({ "username": "a1ice" })).await;
    assert_error(&(s, body), StatusCode::CONFLICT, "username_taken");
    let (s, body) = try_register(
        &api,
        &admin,
        json!({ "username": "bobb" , "display_name": "Bob builder" }),
    )
    .await;
    assert_error(&(s, body), StatusCode::CONFLICT, "display_name_taken");
    let (s, body) = try_register(
        &api,
        &admin,
        json!({ "username": "carol", "display_name": "Car\u{200D}ol" }),
    )
    .await;
    assert_error(&(s, body), StatusCode::BAD_REQUEST, "invalid_display_name");
    // Nothing of the refused sign-ups was left behind: the name is still free.
    let (s, body) = try_register(&api, &admin, json!({ "username": "carol" })).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");

    // Room names and topics: the same characters are refused; names are stored in NFKC.
    let (s, body) = api
        .post("/api/v1/rooms", &alice, json!({ "name": "lobby\u{202E}" }))
        .await;
    let refusal = (s, body);
    let message = assert_error(&refusal, StatusCode::BAD_REQUEST, "invalid_name");
    assert!(message.contains("U+202E"), "{message}");
    let (s, body) = api
        .post(
            "/api/v1/rooms",
            &alice,
            json!({ "name": "lobby", "topic": "rules\u{200B} inside" }),
        )
        .await;
    assert_error(&(s, body), StatusCode::BAD_REQUEST, "invalid_topic");
    let (s, room) = api
        .post(
            "/api/v1/rooms",
            &alice,
            json!({ "name": "ｌｏｂｂｙ", "topic": "line one\nline two" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{room}");
    assert_eq!(
        (&room["name"], &room["topic"]),
        (&json!("lobby"), &json!("line one\nline two"))
    );
}
