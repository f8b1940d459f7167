//! Invite codes: made by admins (API or `roost invite create`) with an expiry and a number of
//! uses; `POST /api/v1/auth/register` with a valid code creates a member and consumes one use
//! in the same transaction, so a code never admits more members than it allows.
//!
//! Codes are stored as SHA-256 hashes; the plaintext is returned once, at creation.

use std::sync::Arc;

use axum::extract::{Path, State};
use http::StatusCode;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::users::Actor;
use super::{crypto, AuthError, AuthState, CallerIp, RequireAdmin};
use crate::audit;
use crate::http::{ApiError, Json};
use crate::store::Store;

pub const MAX_USES: i64 = 1000;
/// Longest validity of an invite: 90 days.
pub const MAX_EXPIRES_SECS: i64 = 90 * 86_400;
pub const DEFAULT_EXPIRES_SECS: i64 = 7 * 86_400;
/// Live (unexpired, unrevoked, not used up) invites at once; more are refused with 409.
pub const MAX_LIVE: i64 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InviteView {
    pub id: i64,
    pub max_uses: i64,
    pub uses: i64,
    /// The admin who made it (null when made with `roost invite create`).
    #[schema(required = true)]
    pub created_by: Option<i64>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewInvite {
    #[serde(flatten)]
    pub view: InviteView,
    /// The code to hand to the invitee; shown only now.
    pub code: String,
}

const INVITE_COLUMNS: &str = "id, max_uses, uses, created_by, created_at, expires_at, revoked_at";

fn view_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<InviteView> {
    Ok(InviteView {
        id: row.get(0)?,
        max_uses: row.get(1)?,
        uses: row.get(2)?,
        created_by: row.get(3)?,
        created_at: crate::http::time::rfc3339(row.get(4)?),
        expires_at: crate::http::time::rfc3339(row.get(5)?),
        revoked: row.get::<_, Option<i64>>(6)?.is_some(),
    })
}

/// Checks the bounds of a new invite.
pub fn check_terms(max_uses: i64, expires_in_secs: i64) -> Result<(), AuthError> {
    if !(1..=MAX_USES).contains(&max_uses) {
        return Err(AuthError::invalid(
            "invalid_max_uses",
            format!("max_uses must be between 1 and {MAX_USES}"),
        ));
    }
    if !(60..=MAX_EXPIRES_SECS).contains(&expires_in_secs) {
        return Err(AuthError::invalid(
            "invalid_expiry",
            format!("expires_in_secs must be between 60 and {MAX_EXPIRES_SECS} (90 days)"),
        ));
    }
    Ok(())
}

/// Creates an invite; returns it with its code.
pub fn issue(
    conn: &Connection,
    max_uses: i64,
    expires_in_secs: i64,
    actor: &Actor,
    now_ms: i64,
) -> Result<NewInvite, AuthError> {
    check_terms(max_uses, expires_in_secs)?;
    let now = now_ms / 1000;
    let live: i64 = conn.query_row(
        "SELECT count(*) FROM invites WHERE revoked_at IS NULL AND expires_at > ?1 AND uses < max_uses",
        [now],
        |r| r.get(0),
    )?;
    if live >= MAX_LIVE {
        return Err(AuthError::conflict(
            "too_many_invites",
            format!("at most {MAX_LIVE} invites may be open at once; revoke some first"),
        ));
    }
    // 6 groups: about 118 bits, typed by hand at most once.
    let code = crypto::human_code(6);
    conn.execute(
        "INSERT INTO invites (code_hash, created_by, max_uses, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            crypto::code_hash(&code),
            actor.id,
            max_uses,
            now,
            now + expires_in_secs
        ],
    )?;
    let id = conn.last_insert_rowid();
    audit::record(
        conn,
        &actor
            .event("invite.created", now_ms)
            .target(format!("invite:{id}"))
            .detail(json!({ "max_uses": max_uses, "expires_in_secs": expires_in_secs })),
    )?;
    let view = conn.query_row(
        &format!("SELECT {INVITE_COLUMNS} FROM invites WHERE id = ?1"),
        [id],
        view_from_row,
    )?;
    Ok(NewInvite { view, code })
}

/// The newest 500 invites, newest first.
pub fn newest(conn: &Connection) -> Result<Vec<InviteView>, AuthError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INVITE_COLUMNS} FROM invites ORDER BY id DESC LIMIT 500"
    ))?;
    let rows = stmt
        .query_map([], view_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Revokes invite `id`; `NotFound` if there is none or it is revoked already.
pub fn set_revoked(
    conn: &Connection,
    id: i64,
    actor: &Actor,
    now_ms: i64,
) -> Result<(), AuthError> {
    let n = conn.execute(
        "UPDATE invites SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
        params![now_ms / 1000, id],
    )?;
    if n == 0 {
        return Err(AuthError::NotFound);
    }
    audit::record(
        conn,
        &actor
            .event("invite.revoked", now_ms)
            .target(format!("invite:{id}")),
    )?;
    Ok(())
}

/// The id of the invite with `code` if it can still admit someone, or why not. Read-only, so
/// registration can check a code before spending a password hash on it.
pub fn check(conn: &Connection, code: &str, now: i64) -> Result<i64, AuthError> {
    let hash = crypto::code_hash(code);
    let row = conn
        .query_row(
            "SELECT id, uses, max_uses, expires_at, revoked_at FROM invites WHERE code_hash = ?1",
            [hash],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )
        .optional()?;
    match row {
        None | Some((_, _, _, _, Some(_))) => Err(AuthError::invalid(
            "invalid_invite",
            "this invite code is not valid",
        )),
        Some((_, _, _, expires_at, None)) if expires_at <= now => Err(AuthError::invalid(
            "invite_expired",
            "this invite code has expired",
        )),
        Some((_, uses, max_uses, _, None)) if uses >= max_uses => Err(used_up()),
        Some((id, ..)) => Ok(id),
    }
}

fn used_up() -> AuthError {
    AuthError::conflict("invite_used_up", "this invite code has been used up")
}

/// Consumes one use of the invite with `code`, or says why it cannot be used. Call inside the
/// write that creates the account, so both happen or neither.
pub fn consume(conn: &Connection, code: &str, now: i64) -> Result<i64, AuthError> {
    let id = check(conn, code, now)?;
    // Guarded again in SQL: the writer is single, but the guard keeps this correct on its own.
    let n = conn.execute(
        "UPDATE invites SET uses = uses + 1 WHERE id = ?1 AND uses < max_uses",
        [id],
    )?;
    if n == 0 {
        return Err(used_up());
    }
    Ok(id)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateInvite)]
pub struct CreateRequest {
    /// 1 to 1000 (default 1).
    #[serde(default = "one")]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_uses: i64,
    /// 60 to 7776000 (90 days; default 7 days).
    #[serde(default = "default_expiry")]
    #[schema(minimum = 60, maximum = 7776000)]
    pub expires_in_secs: i64,
}

fn one() -> i64 {
    1
}

fn default_expiry() -> i64 {
    DEFAULT_EXPIRES_SECS
}

/// `POST /api/v1/invites {max_uses, expires_in_secs}` (admin): 201 with the code.
#[utoipa::path(
    post,
    path = "/api/v1/invites",
    operation_id = "createInvite",
    summary = "Create an invite code (admins)",
    tag = "invites",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "The invite, with its code (shown only now)",
         body = NewInvite),
        (status = 400, description = "`max_uses` or `expires_in_secs` out of bounds \
         (`invalid_max_uses`, `invalid_expiry`)", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`, `insufficient_scope`)",
         body = crate::http::ErrorBody),
        (status = 409, description = "1000 invites are open already (`too_many_invites`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn create(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    RequireAdmin(admin): RequireAdmin,
    ip: CallerIp,
    Json(req): Json<CreateRequest>,
) -> Result<(StatusCode, Json<NewInvite>), ApiError> {
    check_terms(req.max_uses, req.expires_in_secs)?;
    let actor = Actor::caller(&admin, ip);
    let now_ms = auth.now_ms();
    let invite = store
        .write(move |conn| issue(conn, req.max_uses, req.expires_in_secs, &actor, now_ms))
        .await?;
    Ok((StatusCode::CREATED, Json(invite)))
}

/// `GET /api/v1/invites` (admin): the newest 500.
#[utoipa::path(
    get,
    path = "/api/v1/invites",
    operation_id = "listInvites",
    summary = "List invites (admins)",
    tag = "invites",
    responses(
        (status = 200, description = "The newest 500 invites, newest first",
         body = Vec<InviteView>),
        (status = 403, description = "Not an admin (`forbidden`, `insufficient_scope`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn list(
    State(store): State<Store>,
    _admin: RequireAdmin,
) -> Result<Json<Vec<InviteView>>, ApiError> {
    Ok(Json(store.read(newest).await?))
}

/// `DELETE /api/v1/invites/{id}` (admin): 204.
#[utoipa::path(
    delete,
    path = "/api/v1/invites/{id}",
    operation_id = "revokeInvite",
    summary = "Revoke an invite (admins)",
    tag = "invites",
    params(("id" = i64, Path, example = 1, description = "The invite's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an admin (`forbidden`, `insufficient_scope`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such invite, or already revoked (`not_found`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn revoke(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    RequireAdmin(admin): RequireAdmin,
    ip: CallerIp,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::caller(&admin, ip);
    let now_ms = auth.now_ms();
    store
        .write(move |conn| set_revoked(conn, id, &actor, now_ms))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
