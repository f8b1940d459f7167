//! API keys for bots and integrations: `roost_<prefix>_<secret>`, shown once, stored as the
//! SHA-256 of the secret with the prefix (to find the row) and the last four characters (to
//! recognise it in a list). Keys carry scopes (`read`, `write`, `admin`) that narrow what the
//! owner's role allows; they never widen it.
//!
//! Two-step rotation: `POST .../rotation` issues a single-use rotation token valid
//! [`ROTATION_TTL_SECS`]; `POST .../rotation/confirm` with it returns the new key once and
//! revokes the old one in the same transaction. `last_used_at` is written at most once per
//! [`USAGE_WRITE_INTERVAL_SECS`] per key, not on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use http::StatusCode;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::principal::Scopes;
use super::users::{self, Actor, User};
use super::{crypto, AuthError, AuthState, CallerIp, RequireSession};
use crate::audit;
use crate::http::{ApiError, Json};
use crate::store::Store;

pub const KEY_PREFIX: &str = "roost_";
pub const ROTATION_TTL_SECS: i64 = 15 * 60;
pub const USAGE_WRITE_INTERVAL_SECS: i64 = 60;
/// Live keys one user may hold; creating more is refused with 409 `too_many_keys`.
pub const MAX_KEYS_PER_USER: i64 = 50;
const NAME_MAX: usize = 64;

/// A key as listed (never with its secret).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub last_four: String,
    /// Some of `read`, `write`, `admin`.
    pub scopes: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Null until the key is first used (updated at most once a minute).
    #[schema(format = DateTime, required = true)]
    pub last_used_at: Option<String>,
}

/// A key just made: its view plus the full key, returned exactly once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewKey {
    #[serde(flatten)]
    pub view: ApiKeyView,
    /// `roost_<prefix>_<secret>`, sent as `Authorization: Bearer <key>`; shown only now.
    pub key: String,
}

const KEY_COLUMNS: &str = "id, name, prefix, last_four, scopes, created_at, last_used_at";

fn view_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyView> {
    let scopes: String = row.get(4)?;
    Ok(ApiKeyView {
        id: row.get(0)?,
        name: row.get(1)?,
        prefix: row.get(2)?,
        last_four: row.get(3)?,
        scopes: Scopes::from_stored(&scopes).names(),
        created_at: crate::http::time::rfc3339(row.get(5)?),
        last_used_at: row
            .get::<_, Option<i64>>(6)?
            .map(crate::http::time::rfc3339),
    })
}

/// Splits a presented key into its prefix and secret, if it has the shape of one.
pub fn parse(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (prefix, secret) = rest.split_once('_')?;
    let hexish = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    (prefix.len() == 8 && secret.len() == 64 && hexish(prefix) && hexish(secret))
        .then_some((prefix, secret))
}

fn insert_key(
    conn: &Connection,
    user_id: i64,
    name: &str,
    scopes: Scopes,
    now: i64,
) -> Result<NewKey, AuthError> {
    let secret = crypto::token_256();
    // 32 random bits; a collision with an existing prefix is retried (UNIQUE constraint).
    for _ in 0..4 {
        let prefix = hex::encode(crypto::random_bytes::<4>());
        let inserted = conn.execute(
            "INSERT INTO api_keys (user_id, name, prefix, secret_hash, last_four, scopes, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (prefix) DO NOTHING",
            params![
                user_id,
                name,
                prefix,
                crypto::sha256(&secret),
                &secret[secret.len() - 4..],
                scopes.to_stored(),
                now
            ],
        )?;
        if inserted == 1 {
            let id = conn.last_insert_rowid();
            let view = conn.query_row(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"),
                [id],
                view_from_row,
            )?;
            return Ok(NewKey {
                view,
                key: format!("{KEY_PREFIX}{prefix}_{secret}"),
            });
        }
    }
    Err(AuthError::conflict(
        "try_again",
        "could not allocate a key prefix; retry",
    ))
}

/// Creates a key for `user`; the `admin` scope only for admins (403 otherwise).
pub fn issue(
    conn: &Connection,
    user: &User,
    name: &str,
    scopes: Scopes,
    actor: &Actor,
    now_ms: i64,
) -> Result<NewKey, AuthError> {
    let live: i64 = conn.query_row(
        "SELECT count(*) FROM api_keys WHERE user_id = ?1 AND revoked_at IS NULL",
        [user.id],
        |r| r.get(0),
    )?;
    if live >= MAX_KEYS_PER_USER {
        return Err(AuthError::conflict(
            "too_many_keys",
            format!("at most {MAX_KEYS_PER_USER} API keys per account; revoke one first"),
        ));
    }
    scopes.grantable_to(user.role)?;
    let key = insert_key(conn, user.id, name, scopes, now_ms / 1000)?;
    audit::record(
        conn,
        &actor
            .event("api_key.created", now_ms)
            .target(format!("api_key:{}", key.view.id))
            .detail(json!({ "name": name, "prefix": key.view.prefix, "scopes": key.view.scopes })),
    )?;
    Ok(key)
}

/// A user's live keys, newest first.
pub fn live_keys(conn: &Connection, user_id: i64) -> Result<Vec<ApiKeyView>, AuthError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ?1 AND revoked_at IS NULL ORDER BY id DESC"
    ))?;
    let keys = stmt
        .query_map([user_id], view_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(keys)
}

/// Revokes key `id` of `user_id`; `NotFound` if it is not theirs or already revoked.
pub fn set_revoked(
    conn: &Connection,
    user_id: i64,
    id: i64,
    actor: &Actor,
    now_ms: i64,
) -> Result<(), AuthError> {
    let n = conn.execute(
        "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND user_id = ?3 AND revoked_at IS NULL",
        params![now_ms / 1000, id, user_id],
    )?;
    if n == 0 {
        return Err(AuthError::NotFound);
    }
    audit::record(
        conn,
        &actor
            .event("api_key.revoked", now_ms)
            .target(format!("api_key:{id}")),
    )?;
    Ok(())
}

/// Step one of rotation: a single-use token for key `id`, valid 15 minutes.
pub fn issue_rotation_token(
    conn: &Connection,
    user_id: i64,
    id: i64,
    now: i64,
) -> Result<(String, i64), AuthError> {
    let live: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL)",
        params![id, user_id],
        |r| r.get(0),
    )?;
    if !live {
        return Err(AuthError::NotFound);
    }
    // Expired rotation tokens of this key are of no further use.
    conn.execute(
        "DELETE FROM api_key_rotations WHERE api_key_id = ?1 AND expires_at <= ?2 - 86400",
        params![id, now],
    )?;
    let token = crypto::token_256();
    let expires_at = now + ROTATION_TTL_SECS;
    conn.execute(
        "INSERT INTO api_key_rotations (token_hash, api_key_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![crypto::sha256(&token), id, now, expires_at],
    )?;
    Ok((token, expires_at))
}

/// Step two: the new key, and the old one revoked — or why not.
#[derive(Debug)]
pub enum Confirmed {
    Rotated(NewKey),
    UnknownToken,
    Expired,
    AlreadyUsed,
    KeyRevoked,
}

pub fn rotate(
    conn: &Connection,
    user: &User,
    id: i64,
    token: &str,
    actor: &Actor,
    now_ms: i64,
) -> Result<Confirmed, AuthError> {
    let now = now_ms / 1000;
    let row = conn
        .query_row(
            "SELECT r.expires_at, r.used_at, k.revoked_at, k.name, k.scopes
               FROM api_key_rotations r JOIN api_keys k ON k.id = r.api_key_id
              WHERE r.token_hash = ?1 AND r.api_key_id = ?2 AND k.user_id = ?3",
            params![crypto::sha256(token), id, user.id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((expires_at, used_at, revoked_at, name, scopes)) = row else {
        return Ok(Confirmed::UnknownToken);
    };
    if used_at.is_some() {
        return Ok(Confirmed::AlreadyUsed);
    }
    if expires_at <= now {
        return Ok(Confirmed::Expired);
    }
    if revoked_at.is_some() {
        return Ok(Confirmed::KeyRevoked);
    }
    conn.execute(
        "UPDATE api_key_rotations SET used_at = ?1 WHERE token_hash = ?2",
        params![now, crypto::sha256(token)],
    )?;
    // The owner's role may have dropped since; scopes never exceed it.
    let scopes = Scopes::from_stored(&scopes).limited_to(user.role);
    let new = insert_key(conn, user.id, &name, scopes, now)?;
    conn.execute(
        "UPDATE api_keys SET revoked_at = ?1, replaced_by = ?2 WHERE id = ?3",
        params![now, new.view.id, id],
    )?;
    audit::record(
        conn,
        &actor
            .event("api_key.rotated", now_ms)
            .target(format!("api_key:{id}"))
            .detail(json!({ "replaced_by": new.view.id, "prefix": new.view.prefix })),
    )?;
    Ok(Confirmed::Rotated(new))
}

/// The account behind a presented key, if the key is live and its owner enabled.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub key_id: i64,
    pub user: User,
    pub scopes: Scopes,
    pub last_used_at: Option<i64>,
}

/// Why a presented key does not authenticate (metric reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyReject {
    Unknown,
    Revoked,
    UserDisabled,
}

impl KeyReject {
    pub fn reason(self) -> &'static str {
        match self {
            KeyReject::Unknown => "api_key_unknown",
            KeyReject::Revoked => "api_key_revoked",
            KeyReject::UserDisabled => "user_disabled",
        }
    }
}

/// Looks up `prefix` and checks `secret` against its hash.
pub fn authenticate(
    conn: &Connection,
    prefix: &str,
    secret: &str,
) -> Result<Result<KeyOwner, KeyReject>, AuthError> {
    let row = conn
        .query_row(
            "SELECT id, user_id, secret_hash, scopes, last_used_at, revoked_at FROM api_keys WHERE prefix = ?1",
            [prefix],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            },
        )
        .optional()?;
    let Some((key_id, user_id, hash, scopes, last_used_at, revoked_at)) = row else {
        return Ok(Err(KeyReject::Unknown));
    };
    if !crypto::matches_stored(&hash, secret) {
        return Ok(Err(KeyReject::Unknown));
    }
    if revoked_at.is_some() {
        return Ok(Err(KeyReject::Revoked));
    }
    match users::by_id(conn, user_id)? {
        Some(user) if !user.disabled => Ok(Ok(KeyOwner {
            key_id,
            scopes: Scopes::from_stored(&scopes).limited_to(user.role),
            user,
            last_used_at,
        })),
        _ => Ok(Err(KeyReject::UserDisabled)),
    }
}

pub fn touch(conn: &Connection, key_id: i64, now: i64) -> Result<(), AuthError> {
    conn.execute(
        "UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2",
        params![now, key_id],
    )?;
    Ok(())
}

/// Decides when `last_used_at` is worth a write: at most once a minute per key, also when
/// many requests with the same key arrive together.
#[derive(Debug, Default)]
pub struct UsageThrottle {
    /// Key id -> when we last scheduled a write. Bounded by [`UsageThrottle::MAX_KEYS`]; at
    /// the cap it is cleared, which costs at most one extra write per key.
    last_write: Mutex<HashMap<i64, i64>>,
}

impl UsageThrottle {
    pub const MAX_KEYS: usize = 10_000;

    /// True if the caller should write `last_used_at = now` for `key_id`.
    pub fn should_write(&self, key_id: i64, stored: Option<i64>, now: i64) -> bool {
        if stored.is_some_and(|t| now - t < USAGE_WRITE_INTERVAL_SECS) {
            return false;
        }
        let mut map = self
            .last_write
            .lock()
            .expect("usage lock is never poisoned: nothing panics while holding it");
        if map.len() >= Self::MAX_KEYS {
            map.clear();
        }
        match map.get(&key_id) {
            Some(t) if now - t < USAGE_WRITE_INTERVAL_SECS => false,
            _ => {
                map.insert(key_id, now);
                true
            }
        }
    }
}

// ---- HTTP ----

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateApiKey)]
pub struct CreateRequest {
    /// 1 to 64 characters, no control characters.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// At least one of `read`, `write`, `admin` (admins only).
    #[schema(value_type = Vec<ScopeName>, min_items = 1)]
    pub scopes: Vec<String>,
}

/// A scope an API key may carry.
// For the OpenAPI document only: requests carry plain strings, which `Scopes::parse` checks
// (an unknown one is 400 `invalid_scope`).
#[derive(utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum ScopeName {
    Read,
    Write,
    Admin,
}

/// `POST /api/v1/api-keys {name, scopes[]}`: 201 with the key, shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    operation_id = "createApiKey",
    summary = "Create an API key",
    tag = "api-keys",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "The key, shown only now", body = NewKey),
        (status = 400, description = "A bad name (`invalid_name`) or scope list \
         (`invalid_scope`)", body = crate::http::ErrorBody),
        (status = 403, description = "The `admin` scope asked by a non-admin (`forbidden`), or \
         the caller used an API key (`session_required`)", body = crate::http::ErrorBody),
        (status = 409, description = "50 live keys already (`too_many_keys`), or no free prefix \
         (`try_again`)", body = crate::http::ErrorBody),
    )
)]
pub async fn create(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    RequireSession(who): RequireSession,
    ip: CallerIp,
    Json(req): Json<CreateRequest>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(
            AuthError::invalid("invalid_name", "a key name must be 1 to 64 characters").into(),
        );
    }
    let scopes = Scopes::parse(&req.scopes).map_err(|bad| {
        AuthError::invalid(
            "invalid_scope",
            format!("unknown scope {bad:?}; use read, write or admin"),
        )
    })?;
    if scopes.is_empty() {
        return Err(AuthError::invalid("invalid_scope", "give the key at least one scope").into());
    }
    let actor = Actor::caller(&who, ip);
    let now_ms = auth.now_ms();
    let user_id = who.user_id;
    let key = store
        .write(move |conn| {
            let user = users::by_id(conn, user_id)?.ok_or(AuthError::NotFound)?;
            issue(conn, &user, &name, scopes, &actor, now_ms)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// `GET /api/v1/api-keys`: the caller's live keys.
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    operation_id = "listApiKeys",
    summary = "List the caller's API keys",
    tag = "api-keys",
    responses(
        (status = 200, description = "The caller's live keys, newest first",
         body = Vec<ApiKeyView>),
        (status = 403, description = "Signed in with an API key: keys are managed from a session \
         (`session_required`)", body = crate::http::ErrorBody),
    )
)]
pub async fn list(
    State(store): State<Store>,
    RequireSession(who): RequireSession,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    let user_id = who.user_id;
    Ok(Json(
        store.read(move |conn| live_keys(conn, user_id)).await?,
    ))
}

/// `DELETE /api/v1/api-keys/{id}`: 204.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    operation_id = "revokeApiKey",
    summary = "Revoke an API key",
    tag = "api-keys",
    params(("id" = i64, Path, example = 1, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Signed in with an API key: keys are managed from a session \
         (`session_required`)", body = crate::http::ErrorBody),
        (status = 404, description = "Not one of the caller's live keys (`not_found`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn revoke(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    RequireSession(who): RequireSession,
    ip: CallerIp,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::caller(&who, ip);
    let (user_id, now_ms) = (who.user_id, auth.now_ms());
    store
        .write(move |conn| set_revoked(conn, user_id, id, &actor, now_ms))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RotationStarted {
    /// Single use; confirm with it within 15 minutes.
    pub rotation_token: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Seconds.
    pub expires_in: i64,
}

/// `POST /api/v1/api-keys/{id}/rotation`: 201 with a single-use rotation token.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys/{id}/rotation",
    operation_id = "startApiKeyRotation",
    summary = "Start rotating an API key",
    tag = "api-keys",
    params(("id" = i64, Path, example = 1, description = "The key's id")),
    responses(
        (status = 201, description = "A rotation token for the key", body = RotationStarted),
        (status = 403, description = "Signed in with an API key: keys are managed from a session \
         (`session_required`)", body = crate::http::ErrorBody),
        (status = 404, description = "Not one of the caller's live keys (`not_found`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn start_rotation(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    RequireSession(who): RequireSession,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<RotationStarted>), ApiError> {
    let (user_id, now) = (who.user_id, auth.now_secs());
    let (token, expires_at) = store
        .write(move |conn| issue_rotation_token(conn, user_id, id, now))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RotationStarted {
            rotation_token: token,
            expires_at: crate::http::time::rfc3339(expires_at),
            expires_in: ROTATION_TTL_SECS,
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ConfirmApiKeyRotation)]
pub struct ConfirmRequest {
    pub rotation_token: String,
}

/// `POST /api/v1/api-keys/{id}/rotation/confirm {rotation_token}`: 201 with the new key.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys/{id}/rotation/confirm",
    operation_id = "confirmApiKeyRotation",
    summary = "Finish rotating an API key: the new key replaces the old",
    tag = "api-keys",
    params(("id" = i64, Path, example = 1, description = "The key's id")),
    request_body = ConfirmRequest,
    responses(
        (status = 201, description = "The new key (shown only now); the old one is revoked",
         body = NewKey),
        (status = 400, description = "The rotation token is not valid for this key \
         (`invalid_rotation_token`) or has expired (`rotation_token_expired`)",
         body = crate::http::ErrorBody),
        (status = 403, description = "Signed in with an API key: keys are managed from a session \
         (`session_required`)", body = crate::http::ErrorBody),
        (status = 409, description = "The token was used already (`rotation_token_used`) or the \
         key was revoked meanwhile (`api_key_revoked`)", body = crate::http::ErrorBody),
    )
)]
pub async fn confirm_rotation(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    RequireSession(who): RequireSession,
    ip: CallerIp,
    Path(id): Path<i64>,
    Json(req): Json<ConfirmRequest>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let actor = Actor::caller(&who, ip);
    let (user_id, now_ms) = (who.user_id, auth.now_ms());
    let outcome = store
        .write(move |conn| {
            let user = users::by_id(conn, user_id)?.ok_or(AuthError::NotFound)?;
            rotate(conn, &user, id, &req.rotation_token, &actor, now_ms)
        })
        .await?;
    match outcome {
        Confirmed::Rotated(key) => Ok((StatusCode::CREATED, Json(key))),
        Confirmed::UnknownToken => Err(AuthError::invalid(
            "invalid_rotation_token",
            "this rotation token is not valid for this key",
        )
        .into()),
        Confirmed::Expired => Err(AuthError::invalid(
            "rotation_token_expired",
            "this rotation token has expired; start the rotation again",
        )
        .into()),
        Confirmed::AlreadyUsed => Err(AuthError::conflict(
            "rotation_token_used",
            "this rotation token was already used",
        )
        .into()),
        Confirmed::KeyRevoked => Err(AuthError::conflict(
            "api_key_revoked",
            "this key was revoked; create a new one",
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_only_in_their_exact_shape() {
        let secret = "ab".repeat(32);
        let key = format!("roost_0123abcd_{secret}");
        assert_eq!(parse(&key), Some(("0123abcd", secret.as_str())));
        assert_eq!(parse("roost_0123abcd_short"), None);
        assert_eq!(parse(&format!("roost_0123abc_{secret}")), None);
        assert_eq!(parse(&format!("other_0123abcd_{secret}")), None);
        assert_eq!(parse(&format!("roost_0123abcz_{secret}")), None);
    }

    #[test]
    fn usage_writes_are_throttled_per_key() {
        let t = UsageThrottle::default();
        assert!(t.should_write(1, None, 1000));
        assert!(!t.should_write(1, None, 1010), "scheduled a moment ago");
        assert!(!t.should_write(1, Some(1000), 1030));
        assert!(t.should_write(2, None, 1030), "other keys are independent");
        assert!(t.should_write(1, Some(1000), 1061));
    }
}
