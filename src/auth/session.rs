//! Sessions and their refresh tokens in the database.
//!
//! A session is one sign-in; its id is the `sid` of every access token issued for it and the
//! family id of its refresh tokens. Refreshing exchanges a refresh token for a new one (the
//! old one is marked rotated, not deleted). Presenting a rotated token again means it was
//! copied: the whole session is revoked, which also ends its access tokens at once because
//! every authenticated request checks the session row. (A retry moments after the exchange,
//! from the same address, is answered by `auth::refresh_grace` before it gets here.)
//!
//! Functions take a `&Connection` to run inside the caller's `store.write` closure. Outcomes
//! that must commit changes (reuse revokes the family) are returned as `Ok` values, because an
//! `Err` from a write closure rolls its changes back.

use rusqlite::{params, Connection, OptionalExtension};

use super::crypto;
use super::users::{self, User};
use super::AuthError;

/// A new session's credentials, returned once to the client.
#[derive(Debug, Clone)]
pub struct Issued {
    pub session_id: String,
    pub refresh_token: String,
    /// The instant (Unix seconds) the refresh token's expiry was counted from: what the
    /// answer counts `refresh_expires_in` (and the cookie's Max-Age) from too, so the client
    /// is told the lifetime that was stored, not one a clock tick later.
    pub issued_at: i64,
    pub refresh_expires_at: i64,
}

/// Starts a session for `user_id` with its first refresh token.
pub fn create(
    conn: &Connection,
    user_id: i64,
    now: i64,
    refresh_ttl_secs: i64,
) -> Result<Issued, AuthError> {
    let session_id = crypto::id_128();
    let refresh_token = crypto::token_256();
    let expires_at = now + refresh_ttl_secs;
    conn.execute(
        "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![session_id, user_id, now, expires_at],
    )?;
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![crypto::sha256(&refresh_token), session_id, now, expires_at],
    )?;
    Ok(Issued {
        session_id,
        refresh_token,
        issued_at: now,
        refresh_expires_at: expires_at,
    })
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Refreshed {
    /// A new refresh token for the same session.
    Rotated {
        user: User,
        issued: Issued,
    },
    /// Not a token we know (or its session is gone).
    Unknown,
    Expired,
    /// The session was revoked, or its user disabled.
    Inactive,
    /// An already-rotated token: the session has now been revoked.
    Reused {
        user_id: i64,
        session_id: String,
    },
}

/// Exchanges `refresh_token` for a new one, detecting reuse.
pub fn rotate(
    conn: &Connection,
    refresh_token: &str,
    now: i64,
    refresh_ttl_secs: i64,
) -> Result<Refreshed, AuthError> {
    let hash = crypto::sha256(refresh_token);
    let row = conn
        .query_row(
            "SELECT t.session_id, t.expires_at, t.rotated_at, s.user_id, s.revoked_at
               FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
              WHERE t.token_hash = ?1",
            [&hash],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((session_id, expires_at, rotated_at, user_id, revoked_at)) = row else {
        return Ok(Refreshed::Unknown);
    };
    if rotated_at.is_some() {
        if revoked_at.is_none() {
            revoke(conn, &session_id, "refresh_reuse", now)?;
        }
        return Ok(Refreshed::Reused {
            user_id,
            session_id,
        });
    }
    if revoked_at.is_some() {
        return Ok(Refreshed::Inactive);
    }
    if expires_at <= now {
        return Ok(Refreshed::Expired);
    }
    let Some(user) = users::by_id(conn, user_id)?.filter(|u| !u.disabled) else {
        return Ok(Refreshed::Inactive);
    };
    conn.execute(
        "UPDATE refresh_tokens SET rotated_at = ?1 WHERE token_hash = ?2",
        params![now, hash],
    )?;
    let refresh_token = crypto::token_256();
    let new_expiry = now + refresh_ttl_secs;
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![crypto::sha256(&refresh_token), session_id, now, new_expiry],
    )?;
    conn.execute(
        "UPDATE sessions SET expires_at = ?1 WHERE id = ?2",
        params![new_expiry, session_id],
    )?;
    Ok(Refreshed::Rotated {
        user,
        issued: Issued {
            session_id,
            refresh_token,
            issued_at: now,
            refresh_expires_at: new_expiry,
        },
    })
}

/// True if `refresh_token` is known and has not been exchanged: the newest of its family.
pub fn is_newest(conn: &Connection, refresh_token: &str) -> Result<bool, AuthError> {
    let rotated: Option<Option<i64>> = conn
        .query_row(
            "SELECT rotated_at FROM refresh_tokens WHERE token_hash = ?1",
            [crypto::sha256(refresh_token)],
            |r| r.get(0),
        )
        .optional()?;
    Ok(matches!(rotated, Some(None)))
}

/// The session (id, user id) a refresh token belongs to, whether or not it is still usable:
/// signing out with an old cookie still ends its session.
pub fn of_refresh_token(
    conn: &Connection,
    refresh_token: &str,
) -> Result<Option<(String, i64)>, AuthError> {
    Ok(conn
        .query_row(
            "SELECT s.id, s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
              WHERE t.token_hash = ?1",
            [crypto::sha256(refresh_token)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Revokes one session (idempotent). True if it was live.
pub fn revoke(
    conn: &Connection,
    session_id: &str,
    reason: &str,
    now: i64,
) -> Result<bool, AuthError> {
    let n = conn.execute(
        "UPDATE sessions SET revoked_at = ?1, revoked_reason = ?2 WHERE id = ?3 AND revoked_at IS NULL",
        params![now, reason, session_id],
    )?;
    Ok(n > 0)
}

/// Revokes every live session of a user; returns how many.
pub fn revoke_user_sessions(
    conn: &Connection,
    user_id: i64,
    reason: &str,
    now: i64,
) -> Result<usize, AuthError> {
    Ok(conn.execute(
        "UPDATE sessions SET revoked_at = ?1, revoked_reason = ?2 WHERE user_id = ?3 AND revoked_at IS NULL",
        params![now, reason, user_id],
    )?)
}

/// Why a session does not authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Live,
    Revoked,
    Expired,
    Unknown,
    UserDisabled,
}

/// Looks up the session `sid` claims, and the user's current state. Requests with an access
/// token ask this through `auth::session_cache`, so revocation and disabling through the
/// daemon take effect at the next request, and changes made by another process (the CLI)
/// within `session_cache::TTL_MS`. With the state: the user when live, and when the session
/// expires (Unix seconds; 0 when not found).
pub fn check(
    conn: &Connection,
    session_id: &str,
    user_id: i64,
    now: i64,
) -> Result<(SessionState, Option<User>, i64), AuthError> {
    // Runs for most authenticated requests: from the statement cache.
    let row = conn
        .prepare_cached("SELECT user_id, expires_at, revoked_at FROM sessions WHERE id = ?1")?
        .query_row([session_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })
        .optional()?;
    let Some((owner, expires_at, revoked_at)) = row else {
        return Ok((SessionState::Unknown, None, 0));
    };
    if owner != user_id {
        return Ok((SessionState::Unknown, None, 0));
    }
    if revoked_at.is_some() {
        return Ok((SessionState::Revoked, None, expires_at));
    }
    if expires_at <= now {
        return Ok((SessionState::Expired, None, expires_at));
    }
    match users::by_id(conn, user_id)? {
        Some(u) if u.disabled => Ok((SessionState::UserDisabled, None, expires_at)),
        Some(u) => Ok((SessionState::Live, Some(u), expires_at)),
        None => Ok((SessionState::Unknown, None, expires_at)),
    }
}

/// Deletes sessions that ended more than `keep_secs` ago (revoked or expired) with their
/// refresh tokens, and expired refresh tokens of live sessions: the tables stay as large as
/// the sessions in use. Returns rows deleted.
pub fn prune(conn: &Connection, now: i64, keep_secs: i64) -> Result<usize, AuthError> {
    let cutoff = now - keep_secs;
    let sessions = conn.execute(
        "DELETE FROM sessions WHERE expires_at < ?1 OR (revoked_at IS NOT NULL AND revoked_at < ?1)",
        [cutoff],
    )?;
    let tokens = conn.execute("DELETE FROM refresh_tokens WHERE expires_at < ?1", [cutoff])?;
    Ok(sessions + tokens)
}
