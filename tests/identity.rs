//! What a person may be called and sign in with, as clients and the operator see it: the rules
//! for new passwords and for names (the real binary over HTTPS, and `roost user` beside it).

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;

/// The error code and message of a refusal, after checking its status.
fn refused(status: StatusCode, body: &Value, want: StatusCode) -> (String, String) {
    assert_eq!(status, want, "{body}");
    (
        body["error"]["code"].as_str().unwrap_or_default().to_owned(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Weak passwords and what each is refused with.
const WEAK: [(&str, &str, &str); 4] = [
    ("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", "password_too_weak", "control characters"),
    ("            ", "password_too_short", "not counting spaces at either end"),
    ("aaaaaaaaaaaaaaaa", "password_too_weak", "one character repeated"),
    ("line one\nline two", "password_too_weak", "control characters"),
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
        let (got, message) = refused(s, &body, StatusCode::BAD_REQUEST);
        assert_eq!(got, want_code, "{password:?}: {body}");
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
        assert_eq!(
            refused(s, &body, StatusCode::BAD_REQUEST).0,
            want_code,
            "{body}"
        );
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
        assert_eq!(
            refused(s, &body, StatusCode::BAD_REQUEST).0,
            want_code,
            "{body}"
        );
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
            assert_eq!(out.status.code(), Some(64), "{args:?} {password:?}: {stderr}");
            assert!(stderr.contains(want_text), "{args:?} {password:?}: {stderr}");
        }
    }
    let (s, body) = api.login("bob", "aaaaaaaaaaaaaaaa").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    api.signed_in("root", ADMIN_PASSWORD).await;
}
