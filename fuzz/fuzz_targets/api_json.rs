//! API request bodies as a client sends them: `api::Json<T>` extraction (content type, size,
//! syntax, shape) for every auth request type, then the checks the handlers run before any
//! database or password work. Every outcome must be a value or an `ApiError` with a 4xx status;
//! nothing may panic. The first byte picks the type and the content type.
#![no_main]

use std::sync::OnceLock;

use axum::extract::FromRequest;
use libfuzzer_sys::fuzz_target;
use roost::http::{ApiError, Json};
use roost::auth::{self, api_keys, invites, setup, username, users, Scopes};
use serde::de::DeserializeOwned;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fn extract<T: DeserializeOwned>(content_type: &str, body: &[u8]) -> Option<T> {
    let req = http::Request::builder()
        .method("POST")
        .uri("/api/v1/x")
        .header(http::header::CONTENT_TYPE, content_type)
        .body(axum::body::Body::from(body.to_vec()))
        .expect("a constant request");
    match runtime().block_on(Json::<T>::from_request(req, &())) {
        Ok(Json(v)) => Some(v),
        Err(e) => {
            let status = axum::response::IntoResponse::into_response(e).status();
            assert!(
                status.is_client_error(),
                "a bad body is the client's error: {status}"
            );
            None
        }
    }
}

fn names(name: &str) {
    let _ = username::normalize_username(name);
    let _ = username::display_name(Some(name), "fallback");
}

fn password(pw: &str) {
    let _ = username::check_password_length(pw, 1024);
    let _ = username::check_new_password(pw, 10, 1024);
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let content_type = match sel >> 5 {
        0 => "text/plain",
        1 => "application/json; charset=utf-8",
        2 => "application/vnd.api+json",
        _ => "application/json",
    };
    match sel & 0x0f {
        0 => {
            if let Some(r) = extract::<auth::LoginRequest>(content_type, body) {
                names(&r.username);
                password(&r.password);
            }
        }
        1 => {
            let _ = extract::<auth::RefreshRequest>(content_type, body);
        }
        2 => {
            if let Some(r) = extract::<auth::RegisterRequest>(content_type, body) {
                names(&r.username);
                password(&r.password);
            }
        }
        3 => {
            if let Some(r) = extract::<auth::PasswordRequest>(content_type, body) {
                password(&r.new_password);
            }
        }
        4 => {
            if let Some(r) = extract::<setup::SetupRequest>(content_type, body) {
                names(&r.username);
                password(&r.password);
            }
        }
        5 => {
            if let Some(r) = extract::<invites::CreateRequest>(content_type, body) {
                let _ = invites::check_terms(r.max_uses, r.expires_in_secs);
            }
        }
        6 => {
            if let Some(r) = extract::<api_keys::CreateRequest>(content_type, body) {
                names(&r.name);
                let _ = Scopes::parse(&r.scopes);
            }
        }
        7 => {
            let _ = extract::<api_keys::ConfirmRequest>(content_type, body);
        }
        8 => {
            if let Some(p) = extract::<users::UserPatch>(content_type, body) {
                if let Some(d) = p.display_name {
                    names(&d);
                }
            }
        }
        // Credentials in the Authorization header: API key shape.
        _ => {
            if let Ok(s) = std::str::from_utf8(body) {
                let _ = api_keys::parse(s);
                let _ = ApiError::bad_request("x", s);
            }
        }
    }
});
