//! Bot accounts: an integration's identity. A bot has no password (it cannot sign in, so it
//! has no session and cannot manage its own account), uses API keys only, is a `member` (never
//! more unless an admin makes it so), and is marked `bot: true` in user and member lists and
//! `author_bot: true` on its messages. Admins create one with its first key
//! (`POST /api/v1/bots`); an incoming webhook URL gets one of its own ([`super::incoming`]).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http::StatusCode;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::IntegrationError;
use crate::auth::api_keys::{self, NewKey};
use crate::auth::users::{self, Actor, NewUser, User};
use crate::auth::{username, AuthError, RequireAdmin, Role, Scopes};
use crate::edge::policy::ClientIp;
use crate::http::time::now_ms;
use crate::http::{ApiError, Json};
use crate::store::Store;

/// Inserts a bot account named `username` showing `display_name` (both already normalized),
/// in the caller's transaction.
pub fn insert(
    conn: &Connection,
    username: &str,
    display_name: &str,
    actor: &Actor,
    now_ms: i64,
) -> Result<User, IntegrationError> {
    let new = NewUser {
        username: username.to_owned(),
        display_name: display_name.to_owned(),
        role: Role::Member,
        // Not a PHC string: nothing ever verifies against it (`users::credentials` skips
        // bots), and no password hashes to it.
        password_hash: "!bot".into(),
    };
    let user = users::insert(conn, &new, now_ms / 1000)?;
    conn.execute("UPDATE users SET kind = 'bot' WHERE id = ?1", [user.id])?;
    crate::audit::record(
        conn,
        &actor
            .event("bot.created", now_ms)
            .target(format!("user:{}", user.id))
            .detail(json!({ "username": user.username })),
    )?;
    users::by_id(conn, user.id)?.ok_or(IntegrationError::NotFound)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBot {
    /// 3-32 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit.
    pub username: String,
    /// Defaults to the username.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The first key's scopes: some of `read`, `write` (default both; `admin` is refused: a
    /// bot is a member).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// A bot just made, with its first API key (shown only now).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewBot {
    pub user: User,
    pub api_key: NewKey,
}

/// `POST /api/v1/bots`.
#[utoipa::path(
    post,
    path = "/api/v1/bots",
    operation_id = "createBot",
    summary = "Create a bot account with its first API key (admins)",
    tag = "users",
    description = "A bot has no password and cannot sign in; it reads and writes through the \
        API and the gateway with its API key, within its role (`member`) and the key's scopes. \
        It is shown with `bot: true` in user and member lists and `author_bot: true` on its \
        messages. It joins rooms like anyone (public rooms itself, private ones when added).",
    request_body = CreateBot,
    responses(
        (status = 201, description = "The bot and its first key, shown only now", body = NewBot),
        (status = 400, description = "A bad username (`invalid_username`), display name \
         (`invalid_display_name`) or scope (`invalid_scope`)", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`), or the `admin` scope asked \
         for (`forbidden`)", body = crate::http::ErrorBody),
        (status = 409, description = "The name or one like it is taken (`username_taken`, \
         `display_name_taken`)", body = crate::http::ErrorBody),
    )
)]
pub async fn create(
    State(store): State<Store>,
    RequireAdmin(who): RequireAdmin,
    ip: Option<Extension<ClientIp>>,
    Json(req): Json<CreateBot>,
) -> Result<Response, ApiError> {
    let name = username::normalize_username(&req.username).map_err(AuthError::from)?;
    let display =
        username::display_name(req.display_name.as_deref(), &name).map_err(AuthError::from)?;
    let scope_names = req
        .scopes
        .unwrap_or_else(|| vec!["read".into(), "write".into()]);
    let scopes = Scopes::parse(&scope_names).map_err(|unknown| {
        ApiError::bad_request("invalid_scope", format!("unknown scope {unknown:?}"))
    })?;
    let actor = Actor::caller(&who, ip);
    let made = store
        .write(move |conn| {
            let now = now_ms();
            let user = insert(conn, &name, &display, &actor, now)?;
            let api_key = api_keys::issue(conn, &user, &name, scopes, &actor, now)?;
            Ok::<_, IntegrationError>(NewBot { user, api_key })
        })
        .await?;
    Ok((StatusCode::CREATED, Json(made)).into_response())
}
