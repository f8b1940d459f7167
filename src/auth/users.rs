//! Accounts in the database, and the admin's list of them (`GET /api/v1/users`; changing one,
//! `PATCH /api/v1/users/{id}`, is `admin::users`, since it also moves rooms).
//!
//! Functions here take a `&Connection` so they compose inside one `store.write` closure with
//! the audit event and session revocation that go with a change. Disabling a user or changing
//! their password revokes all their sessions in the same transaction, so the change and the
//! revocation are visible together (to the daemon and to the CLI alike). The last enabled
//! admin can be neither demoted nor disabled.
//!
//! No two accounts have names that look alike: each account holds the look-alike key
//! (`names::key`) of its username and of its display name in `name_keys`, whose primary key
//! keeps one account per key. A name whose key another account holds is refused (409). An
//! account may always show its own username, even where an older account's username looked
//! like it before migration 11 (which kept the older account's claim).

use std::net::IpAddr;

use axum::extract::State;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{session, username, AuthError, CallerIp, Principal, RequireAdmin};
use crate::audit::{self, Event};
use crate::http::{ApiError, Json};
use crate::store::Store;

/// What an account may do. Ordered: a guest < a member < an admin.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Guest,
    Member,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Guest => "guest",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "guest" => Some(Role::Guest),
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// An account as the API shows it (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// A bot account (`integrations::bots`, an incoming webhook): no password, API keys only.
    #[serde(default)]
    pub bot: bool,
}

const USER_COLUMNS: &str = "id, username, display_name, role, disabled, created_at, kind = 'bot'";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = row.get(3)?;
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        display_name: row.get(2)?,
        // The CHECK constraint admits only these three.
        role: Role::parse(&role).unwrap_or(Role::Guest),
        disabled: row.get(4)?,
        created_at: crate::http::time::rfc3339(row.get(5)?),
        bot: row.get(6)?,
    })
}

/// A new account, already validated and with its password hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
}

/// Inserts an account; `username_taken` (409) if the normalized name exists or looks like
/// another account's name, `display_name_taken` (409) if the display name does.
pub fn insert(conn: &Connection, new: &NewUser, now: i64) -> Result<User, AuthError> {
    let inserted = conn.execute(
        "INSERT INTO users (username, display_name, role, password_hash, disabled, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)
         ON CONFLICT (username) DO NOTHING",
        params![new.username, new.display_name, new.role.as_str(), new.password_hash, now],
    )?;
    if inserted == 0 {
        return Err(AuthError::conflict(
            "username_taken",
            "that username is already taken",
        ));
    }
    let id = conn.last_insert_rowid();
    if !claim_name_key(conn, id, &crate::names::key(&new.username))? {
        return Err(AuthError::conflict(
            "username_taken",
            "that username looks too much like another account's name; choose another",
        ));
    }
    if !claim_name_key(conn, id, &crate::names::key(&new.display_name))? {
        return Err(display_name_taken());
    }
    by_id(conn, id)?.ok_or(AuthError::NotFound)
}

fn display_name_taken() -> AuthError {
    AuthError::conflict(
        "display_name_taken",
        "another account already has this name or one that looks like it; choose another \
         display name",
    )
}

/// Gives `key` to account `id` unless another account holds it; true if `id` holds it now.
fn claim_name_key(conn: &Connection, id: i64, key: &str) -> Result<bool, AuthError> {
    conn.prepare_cached(
        "INSERT INTO name_keys (key, user_id) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
    )?
    .execute(params![key, id])?;
    let holder: i64 = conn
        .prepare_cached("SELECT user_id FROM name_keys WHERE key = ?1")?
        .query_row([key], |r| r.get(0))?;
    Ok(holder == id)
}

/// Account `id` (named `username`) shows `display_name` from now on: its old display name's
/// key is given up and the new one claimed; `display_name_taken` if another account holds it.
fn claim_display_name(
    conn: &Connection,
    id: i64,
    username: &str,
    display_name: &str,
) -> Result<(), AuthError> {
    let own = crate::names::key(username);
    conn.execute(
        "DELETE FROM name_keys WHERE user_id = ?1 AND key != ?2",
        params![id, own],
    )?;
    let wanted = crate::names::key(display_name);
    // Its own username's look is always its to show.
    if wanted != own && !claim_name_key(conn, id, &wanted)? {
        return Err(display_name_taken());
    }
    Ok(())
}

pub fn by_id(conn: &Connection, id: i64) -> Result<Option<User>, AuthError> {
    // Runs on every authenticated request: from the statement cache.
    Ok(conn
        .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
        .query_row([id], user_from_row)
        .optional()?)
}

pub fn by_username(conn: &Connection, username: &str) -> Result<Option<User>, AuthError> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
            [username],
            user_from_row,
        )
        .optional()?)
}

/// The account and its password hash, for sign-in. A bot has no password: it is not found
/// here, so signing in as one fails like an unknown name (and takes as long).
pub fn credentials(conn: &Connection, username: &str) -> Result<Option<(User, String)>, AuthError> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?1 AND kind = 'person'"
            ),
            [username],
            |row| Ok((user_from_row(row)?, row.get::<_, String>(7)?)),
        )
        .optional()?)
}

pub fn password_hash(conn: &Connection, id: i64) -> Result<Option<String>, AuthError> {
    Ok(conn
        .query_row("SELECT password_hash FROM users WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Every account, oldest first.
pub fn all(conn: &Connection) -> Result<Vec<User>, AuthError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))?;
    let users = stmt
        .query_map([], user_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(users)
}

/// True if an enabled admin exists.
pub fn admin_exists(conn: &Connection) -> Result<bool, AuthError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND disabled = 0)",
        [],
        |r| r.get(0),
    )?)
}

fn other_enabled_admins(conn: &Connection, id: i64) -> Result<i64, AuthError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?1",
        [id],
        |r| r.get(0),
    )?)
}

/// Who made a change, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Option<i64>,
    pub name: String,
    pub ip: Option<IpAddr>,
}

impl Actor {
    /// The operator at the command line.
    pub fn cli() -> Actor {
        Actor {
            id: None,
            name: "cli".into(),
            ip: None,
        }
    }

    /// The signed-in caller of a request, from the address it came from.
    pub fn caller(who: &Principal, ip: impl Into<CallerIp>) -> Actor {
        Actor {
            id: Some(who.user_id),
            name: who.username.clone(),
            ip: ip.into().0,
        }
    }

    /// Someone whose account was just made (registration, the first admin's setup), from the
    /// address the request came from.
    pub fn new_account(user: &User, CallerIp(ip): CallerIp) -> Actor {
        Actor {
            id: Some(user.id),
            name: user.username.clone(),
            ip,
        }
    }

    pub fn event(&self, kind: &'static str, now_ms: i64) -> Event {
        Event::new(kind)
            .at_ms(now_ms)
            .actor(self.id, self.name.clone())
            .ip(self.ip)
    }
}

/// A change to an account; `None` fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub role: Option<Role>,
    /// Disabling signs the account out everywhere at once.
    pub disabled: Option<bool>,
    /// 1 to 64 characters (stored in NFKC) without control or invisible characters, each word
    /// in one script, and not like another account's name; blank resets it to the username.
    #[schema(max_length = 64)]
    pub display_name: Option<String>,
}

/// Applies `patch` to user `id`, with its audit events (a display name that does not change
/// records none); disabling revokes all sessions.
pub fn update(
    conn: &Connection,
    id: i64,
    patch: &UserPatch,
    actor: &Actor,
    now_ms: i64,
) -> Result<User, AuthError> {
    let before = by_id(conn, id)?.ok_or(AuthError::NotFound)?;
    // A bot acts on a key anyone holding it can use, unattended: it never administers.
    if before.bot && patch.role == Some(Role::Admin) {
        return Err(AuthError::invalid(
            "bot_cannot_be_admin",
            "a bot account cannot be an admin; it can be a member or a guest",
        ));
    }
    let now = now_ms / 1000;
    let target = format!("user:{id}");
    let loses_admin = before.role == Role::Admin
        && !before.disabled
        && (patch.role.is_some_and(|r| r != Role::Admin) || patch.disabled == Some(true));
    if loses_admin && other_enabled_admins(conn, id)? == 0 {
        return Err(AuthError::conflict(
            "last_admin",
            "this is the last enabled admin; make another admin first",
        ));
    }
    if let Some(name) = &patch.display_name {
        let name = username::display_name(Some(name), &before.username)?;
        claim_display_name(conn, id, &before.username, &name)?;
        if name != before.display_name {
            conn.execute(
                "UPDATE users SET display_name = ?1, updated_at = ?2 WHERE id = ?3",
                params![name, now, id],
            )?;
            audit::record(
                conn,
                &actor
                    .event("user.renamed", now_ms)
                    .target(target.clone())
                    .detail(json!({
                        "username": before.username,
                        "from": before.display_name,
                        "to": name,
                    })),
            )?;
        }
    }
    if let Some(role) = patch.role.filter(|r| *r != before.role) {
        conn.execute(
            "UPDATE users SET role = ?1, updated_at = ?2 WHERE id = ?3",
            params![role.as_str(), now, id],
        )?;
        audit::record(
            conn,
            &actor
                .event("user.role_changed", now_ms)
                .target(target.clone())
                .detail(json!({ "username": before.username, "from": before.role, "to": role })),
        )?;
    }
    if let Some(disabled) = patch.disabled.filter(|d| *d != before.disabled) {
        conn.execute(
            "UPDATE users SET disabled = ?1, updated_at = ?2 WHERE id = ?3",
            params![disabled, now, id],
        )?;
        if disabled {
            // API keys need no revoking: a disabled user's keys are refused while disabled.
            session::revoke_user_sessions(conn, id, "user_disabled", now)?;
        }
        audit::record(
            conn,
            &actor
                .event(
                    if disabled {
                        "user.disabled"
                    } else {
                        "user.enabled"
                    },
                    now_ms,
                )
                .target(target.clone())
                .detail(json!({ "username": before.username })),
        )?;
    }
    by_id(conn, id)?.ok_or(AuthError::NotFound)
}

/// Sets a new password hash and revokes every session of the user, with the audit event.
pub fn set_password(
    conn: &Connection,
    id: i64,
    password_hash: &str,
    actor: &Actor,
    now_ms: i64,
) -> Result<(), AuthError> {
    let now = now_ms / 1000;
    let changed = conn.execute(
        "UPDATE users SET password_hash = ?1, updated_at = ?2 WHERE id = ?3",
        params![password_hash, now, id],
    )?;
    if changed == 0 {
        return Err(AuthError::NotFound);
    }
    session::revoke_user_sessions(conn, id, "password_changed", now)?;
    audit::record(
        conn,
        &actor
            .event("user.password_changed", now_ms)
            .target(format!("user:{id}")),
    )?;
    Ok(())
}

/// `GET /api/v1/users` (admin).
#[utoipa::path(
    get,
    path = "/api/v1/users",
    operation_id = "listUsers",
    summary = "List accounts (admins)",
    tag = "users",
    responses(
        (status = 200, description = "Every account, oldest first", body = Vec<User>),
        (status = 403, description = "Not an admin (`forbidden`), or an API key without the \
         `admin` scope (`insufficient_scope`)", body = crate::http::ErrorBody),
    )
)]
pub async fn list(
    State(store): State<Store>,
    _admin: RequireAdmin,
) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(store.read(all).await?))
}
