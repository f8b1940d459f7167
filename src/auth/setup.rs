//! The first admin on a fresh Roost: a one-time setup code.
//!
//! When `serve` starts and no enabled admin exists, a new random code is issued (replacing any
//! earlier one), its SHA-256 stored in `settings` with a 24-hour expiry, and the plaintext kept
//! in the running daemon's memory, logged once, and written to [`CODE_FILE`] in the secrets
//! folder (0600, owned by the daemon's user) for `sudo roost status` and the console. `POST
//! /api/v1/setup` with the code creates the admin and deletes the code in one transaction; once
//! any admin exists it answers 409 and the file is removed. `roost user add NAME --role admin`
//! is the other way in and needs no code.
//!
//! The plaintext must reach only root, the daemon's user and the physical console: no HTTP
//! answer carries it (not even the loopback `/status`, which any local process can ask), and
//! no file holding it is readable by other users.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::browser::Browser;
use super::sign_in::{create_signed_in, issue_session, Signup, TokenResponse};
use super::users::{self, Actor, Role};
use super::{crypto, AuthError, AuthState, CallerIp};
use crate::audit;
use crate::config::Config;
use crate::http::{ApiError, Json};
use crate::store::Store;

/// The `settings` key holding `{"hash": hex, "expires_at": unix}`.
pub const SETTINGS_KEY: &str = "auth.setup_code";
pub const SETUP_CODE_TTL_SECS: i64 = 24 * 3600;

/// A setup code this daemon issued, for `roost status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingSetup {
    pub code: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The file in `secrets/` holding the pending code (one line), while no admin exists.
pub const CODE_FILE: &str = "setup-code";

/// Where the daemon of `config` keeps its pending setup code.
pub fn code_file(config: &Config) -> PathBuf {
    config.secrets_dir().join(CODE_FILE)
}

/// Writes the code for `roost status` and the console: 0600 in the 0700 secrets folder,
/// atomically (a reader sees the old code or the new one, never a torn line).
pub(super) fn write_code_file(path: &Path, code: &str) -> std::io::Result<()> {
    crate::secret_file::replace(path, format!("{code}\n").as_bytes())
}

/// Removes the code file once an admin exists (absent already is fine).
pub fn remove_code_file(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The code in the file, `None` when there is none. Permission denied is an error: the
/// caller says to run as root.
pub fn read_code_file(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_owned()).filter(|c| !c.is_empty())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    hash: String,
    expires_at: i64,
}

/// Issues a new code if no enabled admin exists; clears a stale one if one does.
pub async fn issue_if_no_admin(
    auth: &Arc<AuthState>,
    store: &Store,
) -> Result<Option<PendingSetup>, AuthError> {
    let code = crypto::human_code(5);
    let now = auth.now_secs();
    let pending = PendingSetup {
        code: code.clone(),
        expires_at: now + SETUP_CODE_TTL_SECS,
    };
    let stored = serde_json::to_string(&Stored {
        hash: hex::encode(crypto::code_hash(&code)),
        expires_at: pending.expires_at,
    })
    .expect("a struct of a string and an integer serializes");
    store
        .write(move |conn| {
            if users::admin_exists(conn)? {
                conn.execute("DELETE FROM settings WHERE key = ?1", [SETTINGS_KEY])?;
                return Ok::<_, AuthError>(None);
            }
            conn.execute(
                "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![SETTINGS_KEY, stored, now],
            )?;
            Ok(Some(pending))
        })
        .await
}

/// 409 `admin_exists` once there is an enabled admin: setup is over.
fn no_admin_yet(conn: &Connection) -> Result<(), AuthError> {
    if users::admin_exists(conn)? {
        return Err(AuthError::conflict(
            "admin_exists",
            "an admin account already exists",
        ));
    }
    Ok(())
}

/// Why a setup attempt failed.
fn check_code(conn: &Connection, code: &str, now: i64) -> Result<(), AuthError> {
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [SETTINGS_KEY],
            |r| r.get(0),
        )
        .optional()?;
    let invalid = || AuthError::forbidden("invalid_setup_code", "this setup code is not valid");
    let stored: Stored = value
        .and_then(|v| serde_json::from_str(&v).ok())
        .ok_or_else(invalid)?;
    if stored.expires_at <= now {
        return Err(AuthError::forbidden(
            "setup_code_expired",
            "this setup code has expired; restart roost to get a new one",
        ));
    }
    let stored_hash = hex::decode(&stored.hash).map_err(|_| invalid())?;
    if !crypto::matches_stored(&stored_hash, &crypto::normalize_code(code)) {
        return Err(invalid());
    }
    Ok(())
}

/// `GET /api/v1/setup`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SetupStatus {
    /// Whether the first admin still has to be created (with the setup code from the console
    /// or the journal).
    pub needed: bool,
}

/// `GET /api/v1/setup`: whether the first admin still has to be created, so the web client
/// knows to offer setup instead of sign-in. Never the code itself.
#[utoipa::path(
    get,
    path = "/api/v1/setup",
    operation_id = "getSetupStatus",
    summary = "Whether the first admin still has to be created",
    tag = "auth",
    security(()),
    responses(
        (status = 200, description = "`needed` is true until an admin exists", body = SetupStatus),
    )
)]
pub async fn status(State(store): State<Store>) -> Result<Json<SetupStatus>, ApiError> {
    let exists = store.read(users::admin_exists).await?;
    Ok(Json(SetupStatus { needed: !exists }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupRequest {
    /// The code the daemon logged at startup (`sudo roost status`, or
    /// `journalctl -u roost | grep setup_code`).
    pub setup_code: String,
    /// 3 to 32 of `a-z`, `0-9`, `.`, `_`, `-`, starting with a letter or digit (stored
    /// lowercase).
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$")]
    pub username: String,
    pub password: String,
    /// 1 to 64 characters without control characters; the username when absent or blank.
    #[schema(max_length = 64)]
    pub display_name: Option<String>,
}

/// `POST /api/v1/setup {setup_code, username, password, display_name?}`: creates the first
/// admin and signs them in (201 with tokens); 409 `admin_exists` once there is an admin.
#[utoipa::path(
    post,
    path = "/api/v1/setup",
    operation_id = "setupFirstAdmin",
    summary = "Create the first admin with the one-time setup code",
    tag = "auth",
    security((), ("bearer" = [])),
    request_body = SetupRequest,
    responses(
        (status = 201, description = "The first admin was created and signed in",
         body = TokenResponse),
        (status = 400, description = "A bad username (`invalid_username`), display name \
         (`invalid_display_name`) or password (`password_too_short`, `password_too_long`, \
         `password_too_weak`)",
         body = crate::http::ErrorBody),
        (status = 403, description = "The setup code is not valid (`invalid_setup_code`) or has \
         expired (`setup_code_expired`)", body = crate::http::ErrorBody),
        (status = 409, description = "An admin exists already (`admin_exists`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn complete(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    ip: CallerIp,
    browser: Browser,
    Json(req): Json<SetupRequest>,
) -> Result<Response, ApiError> {
    let signup = Signup::check(
        &auth,
        &req.username,
        req.display_name.as_deref(),
        req.password,
    )?;
    // Cheap checks first, so a guessed code costs no hash.
    let (code, now) = (req.setup_code.clone(), auth.now_secs());
    store
        .read(move |conn| {
            no_admin_yet(conn)?;
            check_code(conn, &code, now)
        })
        .await
        .inspect_err(|e| {
            if matches!(e, AuthError::Forbidden { .. }) {
                auth.count_failure("setup_code_invalid");
            }
        })?;
    let new = signup.hash(&auth, Role::Admin).await?;
    let (code, now_ms) = (req.setup_code, auth.now_ms());
    let refresh_ttl = auth.settings.refresh_ttl.as_secs() as i64;
    let (user, issued) = store
        .write(move |conn| {
            // Checked again inside the write: two racing setups cannot both succeed.
            no_admin_yet(conn)?;
            check_code(conn, &code, now_ms / 1000)?;
            let (user, issued) = create_signed_in(conn, &new, now_ms / 1000, refresh_ttl)?;
            conn.execute("DELETE FROM settings WHERE key = ?1", [SETTINGS_KEY])?;
            let actor = Actor::new_account(&user, ip);
            audit::record(
                conn,
                &actor
                    .event("setup.admin_created", now_ms)
                    .target(format!("user:{}", user.id))
                    .detail(json!({ "username": user.username })),
            )?;
            Ok::<_, AuthError>((user, issued))
        })
        .await?;
    auth.clear_pending_setup().await;
    tracing::info!(username = %user.username, "first admin created with the setup code");
    Ok(browser.session_answer(StatusCode::CREATED, issue_session(&auth, user, issued)))
}
