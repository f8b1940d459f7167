//! The one authentication layer and the extractors handlers use to require a caller.
//!
//! [`authenticate`] runs on every request under `/api/` before any handler (other paths carry
//! no Roost credentials; LiveKit's Twirp and webhooks bring their own): no `Authorization` header lets
//! the request through anonymous; `Bearer <jwt>` or `Bearer roost_...` (an API key) that
//! checks out inserts a [`Principal`] and a `limits::Account` into the request's extensions;
//! anything else is answered 401 at once, counted by reason. The session (or key) and the
//! user's state are read from the database on every request, so revocation, disabling and
//! role changes apply to tokens still within their lifetime immediately — also when the CLI
//! made the change from another process. An API key's scopes are enforced here too: `read`
//! for safe methods, `write` for the others, `admin` (with the admin role) for admin routes.
//!
//! Handlers never look at roles themselves; they take [`Principal`], [`RequireMember`],
//! [`RequireAdmin`] or [`RequireSession`].

use std::convert::Infallible;
use std::net::IpAddr;

use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http::request::Parts;
use http::{header, Method};

use super::api_keys::{self, KeyReject};
use super::session::{self, SessionState};
use super::users::Role;
use super::{AuthError, AuthState};
use crate::edge::policy::ClientIp;
use crate::http::ApiError;
use crate::limits::Account;
use crate::store::Store;

/// What an authenticated request was authenticated with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credential {
    /// An access token of this session (the `sid` claim).
    Session(String),
    /// This API key id.
    ApiKey(i64),
}

/// The caller of an authenticated request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    /// The account's role now (read from the database), not the one in the token.
    pub role: Role,
    pub credential: Credential,
    pub scopes: Scopes,
}

impl Principal {
    pub fn session_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session(sid) => Some(sid),
            Credential::ApiKey(_) => None,
        }
    }
}

/// What a credential may do on top of the role: `read` (GET/HEAD/OPTIONS), `write`
/// (everything else), `admin` (admin routes, and only with the admin role). Sessions have all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    const READ: u8 = 1;
    const WRITE: u8 = 2;
    const ADMIN: u8 = 4;
    pub const ALL: Scopes = Scopes(Self::READ | Self::WRITE | Self::ADMIN);

    /// Parses scope names; `Err(name)` for an unknown one.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Scopes, String> {
        let mut bits = 0;
        for n in names {
            bits |= match n.as_ref() {
                "read" => Self::READ,
                "write" => Self::WRITE,
                "admin" => Self::ADMIN,
                other => return Err(other.to_owned()),
            };
        }
        Ok(Scopes(bits))
    }
    pub fn from_stored(text: &str) -> Scopes {
        let names: Vec<&str> = text.split(',').filter(|s| !s.is_empty()).collect();
        Scopes::parse(&names).unwrap_or_default()
    }
    pub fn to_stored(self) -> String {
        self.names().join(",")
    }
    pub fn names(self) -> Vec<String> {
        [
            (Self::READ, "read"),
            (Self::WRITE, "write"),
            (Self::ADMIN, "admin"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.0 & bit != 0)
        .map(|(_, n)| n.to_owned())
        .collect()
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn read(self) -> bool {
        self.0 & Self::READ != 0
    }
    pub fn write(self) -> bool {
        self.0 & Self::WRITE != 0
    }
    pub fn admin(self) -> bool {
        self.0 & Self::ADMIN != 0
    }
    /// Whether an account with `role` may hand these scopes to a key it creates.
    pub fn grantable_to(self, role: Role) -> Result<(), AuthError> {
        if self.admin() && role != Role::Admin {
            return Err(AuthError::forbidden(
                "forbidden",
                "only admins can create keys with the admin scope",
            ));
        }
        Ok(())
    }
    /// Drops `admin` for accounts that are not admins.
    pub fn limited_to(self, role: Role) -> Scopes {
        if role == Role::Admin {
            self
        } else {
            Scopes(self.0 & !Self::ADMIN)
        }
    }
}

/// A step of every request (`api::Surface`): see the module documentation. Returns the request
/// with its [`Principal`] and [`Account`] when it carried valid credentials, unchanged when it
/// carried none, and the refusal when its credentials are bad or lack the scope.
pub async fn authenticate(
    auth: &AuthState,
    store: &Store,
    mut req: Request,
) -> Result<Request, Response> {
    if !carries_credentials(&req) {
        return Ok(req);
    }
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(req);
    };
    let presented = match value.to_str().ok().and_then(bearer) {
        Some(p) => p.to_owned(),
        None => {
            auth.count_failure("bad_scheme");
            return Err(
                ApiError::from(AuthError::Revoked("use `Authorization: Bearer <token>`"))
                    .into_response(),
            );
        }
    };
    let principal = resolve(auth, store, &presented)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    if let Credential::ApiKey(_) = principal.credential {
        let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        let allowed = if safe {
            principal.scopes.read()
        } else {
            principal.scopes.write()
        };
        if !allowed {
            auth.count_failure("insufficient_scope");
            let needed = if safe { "read" } else { "write" };
            return Err(ApiError::from(AuthError::forbidden(
                "insufficient_scope",
                format!("this API key lacks the `{needed}` scope"),
            ))
            .into_response());
        }
    }
    req.extensions_mut()
        .insert(Account(principal.user_id.to_string()));
    req.extensions_mut().insert(principal);
    Ok(req)
}

/// Whether [`authenticate`] has anything to check: an `Authorization` header under `/api/`.
/// Roost's credentials belong to its API. Other paths carry none (`/health`, `/ca.crt`) or
/// LiveKit's own (Twirp bearer tokens on `/twirp/*`, signed webhooks), which are not Roost
/// tokens and are checked by LiveKit and `livekit::webhook`.
pub fn carries_credentials(req: &Request) -> bool {
    req.uri().path().starts_with("/api/") && req.headers().contains_key(header::AUTHORIZATION)
}

/// Checks a presented access token or API key the same way [`authenticate`] checks a bearer
/// header (signature, expiry, session or key, account state), for callers that receive
/// credentials outside headers: the realtime gateway's first frame.
pub async fn resolve_credential(
    auth: &AuthState,
    store: &Store,
    presented: &str,
) -> Result<Principal, AuthError> {
    resolve(auth, store, presented).await
}

/// Whether what `principal` authenticated with is still good now (session not revoked or
/// expired, key not revoked, account enabled): long-lived connections ask this periodically.
pub async fn still_valid(
    auth: &AuthState,
    store: &Store,
    principal: &Principal,
) -> Result<bool, AuthError> {
    let (credential, user_id, now) = (
        principal.credential.clone(),
        principal.user_id,
        auth.now_secs(),
    );
    store
        .read(move |conn| credential_is_live(conn, &credential, user_id, now))
        .await
}

/// [`still_valid`] inside a read the caller already holds, for checking many credentials in
/// one read (the gateway re-checks every open connection when accounts or sessions change).
pub fn credential_is_live(
    conn: &rusqlite::Connection,
    credential: &Credential,
    user_id: i64,
    now: i64,
) -> Result<bool, AuthError> {
    match credential {
        Credential::Session(sid) => {
            let (state, _, _) = session::check(conn, sid, user_id, now)?;
            Ok(state == SessionState::Live)
        }
        Credential::ApiKey(key_id) => {
            let live: Option<bool> = rusqlite::OptionalExtension::optional(
                conn.prepare_cached(
                    "SELECT k.revoked_at IS NULL AND u.disabled = 0
                       FROM api_keys k JOIN users u ON u.id = k.user_id
                      WHERE k.id = ?1 AND k.user_id = ?2",
                )?
                .query_row([*key_id, user_id], |r| r.get(0)),
            )?;
            Ok(live == Some(true))
        }
    }
}

/// The credential of `Bearer <credential>` (scheme case-insensitive, as RFC 9110 says).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    let credential = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

async fn resolve(auth: &AuthState, store: &Store, presented: &str) -> Result<Principal, AuthError> {
    if presented.starts_with(api_keys::KEY_PREFIX) {
        let Some((prefix, secret)) = api_keys::parse(presented) else {
            auth.count_failure(KeyReject::Unknown.reason());
            return Err(AuthError::Revoked("this API key is not valid"));
        };
        let (prefix, secret) = (prefix.to_owned(), secret.to_owned());
        let found = store
            .read(move |conn| api_keys::authenticate(conn, &prefix, &secret))
            .await?;
        let owner = match found {
            Ok(owner) => owner,
            Err(reject) => {
                auth.count_failure(reject.reason());
                return Err(AuthError::Revoked(match reject {
                    KeyReject::Unknown => "this API key is not valid",
                    KeyReject::Revoked => "this API key has been revoked",
                    KeyReject::UserDisabled => "this account is disabled",
                }));
            }
        };
        let now = auth.now_secs();
        if auth
            .api_key_usage
            .should_write(owner.key_id, owner.last_used_at, now)
        {
            // Fire and forget: a lost `last_used_at` update is harmless, and the request
            // must not wait for the writer.
            let (store, key_id) = (store.clone(), owner.key_id);
            tokio::spawn(async move {
                if let Err(e) = store
                    .write(move |conn| api_keys::touch(conn, key_id, now))
                    .await
                {
                    tracing::debug!(error = %e, "recording API key use");
                }
            });
        }
        return Ok(Principal {
            user_id: owner.user.id,
            username: owner.user.username,
            role: owner.user.role,
            credential: Credential::ApiKey(owner.key_id),
            scopes: owner.scopes,
        });
    }

    let claims = auth.keys.verify(presented, auth.now()).map_err(|reject| {
        auth.count_failure(reject.reason());
        AuthError::InvalidToken(reject)
    })?;
    let Ok(user_id) = claims.sub.parse::<i64>() else {
        auth.count_failure(super::token::Reject::Malformed.reason());
        return Err(AuthError::InvalidToken(super::token::Reject::Malformed));
    };
    let now = auth.now_secs();
    // Read before the database is asked: a change committed in between moves it on, and the
    // entry made from this answer is never used.
    let generation = store.generation();
    if let Some(user) = auth
        .sessions
        .get(&claims.sid, user_id, generation, now, auth.now_ms())
    {
        return Ok(Principal {
            user_id: user.id,
            username: user.username,
            role: user.role,
            credential: Credential::Session(claims.sid),
            scopes: Scopes::ALL,
        });
    }
    let sid = claims.sid.clone();
    let (state, user, expires_at) = store
        .read(move |conn| session::check(conn, &sid, user_id, now))
        .await?;
    let (reason, message) = match (state, user) {
        (SessionState::Live, Some(user)) => {
            if store.watches("sessions") && store.watches("users") {
                auth.sessions
                    .insert(&claims.sid, &user, expires_at, generation, auth.now_ms());
            }
            return Ok(Principal {
                user_id: user.id,
                username: user.username,
                role: user.role,
                credential: Credential::Session(claims.sid),
                scopes: Scopes::ALL,
            });
        }
        (SessionState::Revoked, _) => ("session_revoked", "this session has been signed out"),
        (SessionState::Expired, _) => {
            ("session_expired", "this session has expired; sign in again")
        }
        (SessionState::UserDisabled, _) => ("user_disabled", "this account is disabled"),
        _ => ("session_unknown", "this session does not exist"),
    };
    auth.count_failure(reason);
    Err(AuthError::Revoked(message))
}

/// The address a request came from, as `edge::policy` resolved it (through trusted proxies),
/// for audit events and the login backoff. Handlers take this rather than the edge's own
/// extension, so modules above `auth` need not know the edge. `None` where no edge ran (a
/// router driven without a socket).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallerIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for CallerIp {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(CallerIp(
            parts.extensions.get::<ClientIp>().map(|ClientIp(ip)| *ip),
        ))
    }
}

impl From<Option<Extension<ClientIp>>> for CallerIp {
    fn from(ip: Option<Extension<ClientIp>>) -> CallerIp {
        CallerIp(ip.map(|Extension(ClientIp(ip))| ip))
    }
}

fn principal_of(parts: &Parts) -> Result<Principal, ApiError> {
    parts
        .extensions
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| AuthError::Unauthenticated.into())
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        principal_of(parts)
    }
}

/// An authenticated caller whose role is admin (and, for an API key, with the `admin` scope).
#[derive(Debug, Clone)]
pub struct RequireAdmin(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for RequireAdmin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let p = principal_of(parts)?;
        if p.role != Role::Admin {
            return Err(AuthError::forbidden("forbidden", "only admins may do this").into());
        }
        if !p.scopes.admin() {
            return Err(AuthError::forbidden(
                "insufficient_scope",
                "this API key lacks the `admin` scope",
            )
            .into());
        }
        Ok(RequireAdmin(p))
    }
}

/// An authenticated caller who is a member or an admin (not a guest).
#[derive(Debug, Clone)]
pub struct RequireMember(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for RequireMember {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let p = principal_of(parts)?;
        if p.role < Role::Member {
            return Err(AuthError::forbidden("forbidden", "guests may not do this").into());
        }
        Ok(RequireMember(p))
    }
}

/// A caller signed in with a session (access token), not an API key: for managing the account
/// itself (password, sign-out, API keys), which a leaked bot key must not be able to do.
#[derive(Debug, Clone)]
pub struct RequireSession(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for RequireSession {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let p = principal_of(parts)?;
        if p.session_id().is_none() {
            return Err(AuthError::forbidden(
                "session_required",
                "this needs a signed-in session, not an API key",
            )
            .into());
        }
        Ok(RequireSession(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_store_and_narrow() {
        let s = Scopes::parse(&["write", "read"]).unwrap();
        assert!(s.read() && s.write() && !s.admin());
        assert_eq!(s.to_stored(), "read,write");
        assert_eq!(Scopes::from_stored("read,write"), s);
        assert_eq!(Scopes::parse(&["root"]), Err("root".to_owned()));
        assert!(!Scopes::ALL.limited_to(Role::Member).admin());
        assert!(Scopes::ALL.limited_to(Role::Admin).admin());
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
