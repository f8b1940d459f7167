//! The sign-in endpoints: login, refresh, logout, register (with an invite), password change
//! and `GET /api/v1/me`; and the steps of making an account that `register` shares with the
//! first admin's setup (`Signup`, `create_signed_in`).
//!
//! Order of work in each: cheap checks first (shape, lengths, backoff, invite validity), then
//! the password hash (bounded by the hasher), then one `store.write` that makes the change and
//! its audit event together. Failures never say whether an account exists.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use http::{header, HeaderMap, StatusCode};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::browser::{self, Browser};
use super::session::{self, Issued, Refreshed};
use super::users::{self, Actor, NewUser, Role, User};
use super::{invites, username, AuthError, AuthState, CallerIp, Principal, RequireSession};
use crate::audit::{self, Event};
use crate::http::{ApiError, Json};
use crate::store::Store;

/// Sessions that ended longer ago than this are deleted by the periodic prune.
const KEEP_ENDED_SESSIONS_SECS: i64 = 7 * 86_400;
/// Longest attempted username kept for backoff and audit (longer input is cut).
const ATTEMPT_NAME_MAX: usize = 64;

/// What a successful sign-in, refresh, setup or registration returns.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = SessionTokens)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Single use: exchange it at `/api/v1/auth/refresh` for a new pair. Absent when the
    /// request carried `X-Roost-Client: web`: the token is in the `roost_refresh` cookie then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    pub user: User,
}

/// Signs an access token for a session just created or refreshed. Both lifetimes count from
/// the one instant the session's expiry was stored at (`Issued::issued_at`), not from a
/// second reading of the clock: a second boundary passed in between would otherwise tell the
/// client (and the cookie's Max-Age) one second less than was stored.
pub(super) fn issue_session(auth: &AuthState, user: User, issued: Issued) -> TokenResponse {
    let issued_at = UNIX_EPOCH + Duration::from_secs(u64::try_from(issued.issued_at).unwrap_or(0));
    let (access_token, exp) =
        auth.keys
            .issue(user.id, user.role.as_str(), &issued.session_id, issued_at);
    TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: exp - issued.issued_at,
        refresh_token: Some(issued.refresh_token),
        refresh_expires_in: issued.refresh_expires_at - issued.issued_at,
        user,
    }
}

/// Refuses an attempt while `name` from `ip` is backed off, counting it by scope.
fn check_backoff(auth: &AuthState, name: &str, ip: Option<IpAddr>) -> Result<(), AuthError> {
    auth.backoff.check(name, ip).map_err(|refused| {
        auth.count_backoff_refusal(refused.scope);
        AuthError::Backoff {
            retry_after_secs: refused.wait.as_secs_f64().ceil() as u64,
        }
    })
}

/// Records a failed password for `name` from `ip`; returns an `auth.login_backoff` audit event
/// for each backoff this failure started (the address's, the username's ceiling).
fn backoff_failure(
    auth: &AuthState,
    (user_id, name): (Option<i64>, &str),
    ip: Option<IpAddr>,
    now_ms: i64,
) -> Vec<Event> {
    let failure = auth.backoff.record_failure(name, ip);
    failure
        .backed_off
        .into_iter()
        .map(|(scope, delay)| {
            Event::new("auth.login_backoff")
                .at_ms(now_ms)
                .failure()
                .actor(user_id, name)
                .ip(ip)
                .detail(json!({
                    "scope": scope.as_str(),
                    "retry_after_secs": delay.as_secs_f64().ceil() as u64,
                }))
        })
        .collect()
}

/// An account asked for over the API: `register` (with an invite) and `setup::complete` (the
/// first admin) take it through the same steps. `Signup::check` looks at its shape only (no
/// database, no hash); then the caller's own checks that cost a read (invite, setup code, a
/// taken name); then `Signup::hash` (bounded by the hasher); then the caller's write, which
/// makes the account and its first session with [`create_signed_in`].
pub(super) struct Signup {
    /// Normalized (lowercase).
    pub name: String,
    display_name: String,
    password: String,
}

impl Signup {
    pub(super) fn check(
        auth: &AuthState,
        username: &str,
        display_name: Option<&str>,
        password: String,
    ) -> Result<Signup, AuthError> {
        let name = username::normalize_username(username)?;
        let display_name = username::display_name(display_name, &name)?;
        let s = &auth.settings;
        username::check_new_password(&password, s.min_password_length, s.max_password_length)?;
        Ok(Signup {
            name,
            display_name,
            password,
        })
    }

    /// Hashes the password: the new account's row, with `role`.
    pub(super) async fn hash(self, auth: &AuthState, role: Role) -> Result<NewUser, AuthError> {
        let password_hash = auth.hasher.hash(self.password).await?;
        Ok(NewUser {
            username: self.name,
            display_name: self.display_name,
            role,
            password_hash,
        })
    }
}

/// Inside a sign-up's write: the account and its first session (refresh token valid
/// `refresh_ttl` seconds), so the caller's checks and audit events commit with them or not at all.
pub(super) fn create_signed_in(
    conn: &Connection,
    new: &NewUser,
    now: i64,
    refresh_ttl: i64,
) -> Result<(User, Issued), AuthError> {
    let user = users::insert(conn, new, now)?;
    let issued = session::create(conn, user.id, now, refresh_ttl)?;
    Ok((user, issued))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// `POST /api/v1/auth/login {username, password}`.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    operation_id = "login",
    summary = "Sign in with a username and password",
    tag = "auth",
    security((), ("bearer" = [])),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "A password longer than `auth.max_password_length` \
         (`password_too_long`), or a malformed body", body = crate::http::ErrorBody),
        (status = 401, description = "Wrong username or password (`invalid_credentials`), or a \
         bad `Authorization` header", body = crate::http::ErrorBody),
        (status = 403, description = "The account is disabled (`account_disabled`)",
         body = crate::http::ErrorBody),
        (status = 429, description = "Too many failed sign-ins for this account from this \
         address, or for this account from many addresses (`login_backoff`), or too many \
         requests from this address (`rate_limited`)", body = crate::http::ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn login(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    CallerIp(ip): CallerIp,
    browser: Browser,
    Json(req): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    username::check_password_length(&req.password, auth.settings.max_password_length)
        .map_err(AuthError::from)?;
    // A name that breaks the rules cannot exist; it is handled like an unknown one.
    let normalized = username::normalize_username(&req.username).ok();
    let attempted: String = normalized.clone().unwrap_or_else(|| {
        req.username
            .trim()
            .to_ascii_lowercase()
            .chars()
            .take(ATTEMPT_NAME_MAX)
            .collect()
    });
    check_backoff(&auth, &attempted, ip)?;
    let found = match normalized {
        Some(name) => {
            store
                .read(move |conn| users::credentials(conn, &name))
                .await?
        }
        None => None,
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let matched = auth
        .hasher
        .verify(hash, req.password)
        .await
        .map_err(AuthError::from)?;

    let now_ms = auth.now_ms();
    let failure = |reason: &'static str, user_id: Option<i64>| {
        Event::new("auth.login")
            .at_ms(now_ms)
            .failure()
            .actor(user_id, attempted.clone())
            .ip(ip)
            .detail(json!({ "reason": reason }))
    };
    let user = match user {
        Some(user) if matched => user,
        other => {
            let reason = if other.is_some() {
                "bad_password"
            } else {
                "unknown_user"
            };
            auth.count_failure(reason);
            let user_id = other.map(|u| u.id);
            let mut events = vec![failure(reason, user_id)];
            events.extend(backoff_failure(&auth, (user_id, &attempted), ip, now_ms));
            store
                .write(move |conn| events.iter().try_for_each(|e| audit::record(conn, e)))
                .await?;
            return Err(AuthError::InvalidCredentials.into());
        }
    };
    if user.disabled {
        auth.count_failure("user_disabled");
        let event = failure("user_disabled", Some(user.id));
        store.write(move |conn| audit::record(conn, &event)).await?;
        return Err(AuthError::forbidden("account_disabled", "this account is disabled").into());
    }
    auth.backoff.record_success(&attempted, ip);

    let refresh_ttl = auth.settings.refresh_ttl.as_secs() as i64;
    let prune = auth.prune_due(now_ms / 1000);
    let (user_id, name) = (user.id, user.username.clone());
    let issued = store
        .write(move |conn| {
            let now = now_ms / 1000;
            if prune {
                session::prune(conn, now, KEEP_ENDED_SESSIONS_SECS)?;
            }
            let issued = session::create(conn, user_id, now, refresh_ttl)?;
            audit::record(
                conn,
                &Event::new("auth.login")
                    .at_ms(now_ms)
                    .actor(Some(user_id), name)
                    .ip(ip)
                    .detail(json!({ "session": issued.session_id })),
            )?;
            Ok::<_, AuthError>(issued)
        })
        .await?;
    Ok(browser.session_answer(StatusCode::OK, issue_session(&auth, user, issued)))
}

/// The body of a refresh. The web client (`X-Roost-Client: web`) sends no body or `{}`: its
/// refresh token is the `roost_refresh` cookie.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Required unless the request carries `X-Roost-Client: web`.
    pub refresh_token: Option<String>,
}

/// `POST /api/v1/auth/refresh {refresh_token}`: a new access token and a new refresh token.
/// Presenting a refresh token that was already exchanged revokes its whole session, unless it
/// is a retry: the same token from the same address within 10 s of its exchange gets the same
/// pair again (`auth::refresh_grace`).
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    operation_id = "refreshSession",
    summary = "Exchange a refresh token for a new token pair",
    tag = "auth",
    security((), ("bearer" = []), ("refresh_cookie" = [])),
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new access token and refresh token; the same pair again \
         for a retry (the same token from the same address within 10 s of its exchange)",
         body = TokenResponse),
        (status = 401, description = "The refresh token is not valid (`invalid_refresh_token`), \
         has expired (`refresh_token_expired`) or was already used (later than 10 s after, or \
         from another address), which signs the session out (`refresh_token_reused`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn refresh(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    CallerIp(ip): CallerIp,
    browser: Browser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: RefreshRequest = if body.is_empty() {
        RefreshRequest::default()
    } else {
        crate::http::extract::json_body(&headers, &body)?
    };
    let (token, from_cookie) = match req.refresh_token {
        Some(token) => (token, false),
        None => match browser.cookie_token()? {
            Some(token) => (token.to_owned(), true),
            None if browser.web => {
                return Err(AuthError::unauthorized(
                    "invalid_refresh_token",
                    "there is no session cookie; sign in",
                )
                .into())
            }
            None => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    "missing field `refresh_token`",
                ))
            }
        },
    };
    match rotate_refresh(&store, &auth, ip, token).await {
        Ok(tokens) => Ok(browser.session_answer(StatusCode::OK, tokens)),
        // A cookie that no longer works is cleared, so the browser stops sending it.
        Err(refused) if from_cookie && refused.status == StatusCode::UNAUTHORIZED => {
            let mut resp = refused.into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, browser::clear_cookie());
            Ok(resp)
        }
        Err(refused) => Err(refused),
    }
}

/// Exchanges `refresh_token` for a new session answer (see [`refresh`]).
async fn rotate_refresh(
    store: &Store,
    auth: &Arc<AuthState>,
    ip: Option<IpAddr>,
    refresh_token: String,
) -> Result<TokenResponse, ApiError> {
    if refresh_token.len() > 128 {
        auth.count_failure("refresh_invalid");
        return Err(invalid_refresh().into());
    }
    let (now_ms, ttl) = (auth.now_ms(), auth.settings.refresh_ttl.as_secs() as i64);
    let state = auth.clone();
    let exchange = store
        .write(move |conn| exchange_refresh(conn, &state, &refresh_token, ip, now_ms, ttl))
        .await?;
    match exchange {
        Exchange::Issued(pair) => Ok(pair),
        Exchange::Reused { session_id } => {
            auth.count_failure("refresh_reuse");
            tracing::warn!(
                session = %session_id,
                "a refresh token was used twice; the session has been revoked"
            );
            Err(AuthError::unauthorized(
                "refresh_token_reused",
                "this refresh token was already used; the session has been signed out",
            )
            .into())
        }
        Exchange::Expired => {
            auth.count_failure("refresh_expired");
            Err(AuthError::unauthorized(
                "refresh_token_expired",
                "this refresh token has expired; sign in again",
            )
            .into())
        }
        Exchange::Invalid => {
            auth.count_failure("refresh_invalid");
            Err(invalid_refresh().into())
        }
    }
}

/// What presenting a refresh token to `refresh` led to.
enum Exchange {
    /// A new pair, or, for a retry within the grace window, the pair the first try got.
    Issued(TokenResponse),
    /// An exchanged token again, outside the grace window: the session is revoked.
    Reused {
        session_id: String,
    },
    Expired,
    Invalid,
}

/// A pair handed out by a refresh, kept for the grace window with the session it belongs to.
#[derive(Clone)]
pub(crate) struct RecentExchange {
    session_id: String,
    pair: TokenResponse,
}

/// Inside the refresh's write: exchanges `refresh_token`, or answers a retry of an exchange
/// made moments ago from the same address (a lost answer, two racing requests) with the same
/// pair while its session still stands and that pair's refresh token is unused. Both run on
/// the writer, in order, so a retry always sees the first exchange's rotation and its
/// remembered pair together.
fn exchange_refresh(
    conn: &Connection,
    auth: &AuthState,
    refresh_token: &str,
    ip: Option<IpAddr>,
    now_ms: i64,
    ttl: i64,
) -> Result<Exchange, AuthError> {
    let now = now_ms / 1000;
    let old_hash = super::crypto::sha256(refresh_token);
    if let Some((recent, elapsed)) = auth.refresh_grace.replay(&old_hash, ip, now_ms) {
        let (state, _, _) = session::check(conn, &recent.session_id, recent.pair.user.id, now)?;
        // Once the pair's own refresh token was exchanged, its holder clearly got the answer:
        // this is no retry, but reuse.
        if state == session::SessionState::Live
            && session::is_newest(
                conn,
                recent.pair.refresh_token.as_deref().unwrap_or_default(),
            )?
        {
            let mut pair = recent.pair;
            pair.expires_in -= elapsed;
            pair.refresh_expires_in -= elapsed;
            return Ok(Exchange::Issued(pair));
        }
    }
    match session::rotate(conn, refresh_token, now, ttl)? {
        Refreshed::Rotated { user, issued } => {
            let session_id = issued.session_id.clone();
            let pair = issue_session(auth, user, issued);
            let recent = RecentExchange {
                session_id,
                pair: pair.clone(),
            };
            auth.refresh_grace.remember(old_hash, ip, now_ms, recent);
            Ok(Exchange::Issued(pair))
        }
        Refreshed::Reused {
            user_id,
            session_id,
        } => {
            let name = users::by_id(conn, user_id)?.map(|u| u.username);
            audit::record(
                conn,
                &Event::new("auth.refresh_reuse")
                    .at_ms(now_ms)
                    .failure()
                    .actor(Some(user_id), name.unwrap_or_default())
                    .target(format!("session:{session_id}"))
                    .ip(ip)
                    .detail(json!({ "action": "session revoked" })),
            )?;
            Ok(Exchange::Reused { session_id })
        }
        Refreshed::Expired => Ok(Exchange::Expired),
        Refreshed::Unknown | Refreshed::Inactive => Ok(Exchange::Invalid),
    }
}

fn invalid_refresh() -> AuthError {
    AuthError::unauthorized("invalid_refresh_token", "this refresh token is not valid")
}

/// `POST /api/v1/auth/logout`: ends the caller's session (its refresh token and every access
/// token of it). 204. With `X-Roost-Client: web`, the session of the `roost_refresh` cookie
/// (and of the access token, if one is sent) ends and the cookie is cleared.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    operation_id = "logout",
    summary = "Sign out this session",
    tag = "auth",
    security(("bearer" = []), ("refresh_cookie" = [])),
    responses(
        (status = 204, description = "Signed out; with `X-Roost-Client: web`, `Set-Cookie` \
         clears `roost_refresh`"),
        (status = 403, description = "Signed in with an API key, not a session \
         (`session_required`); a session cookie without `X-Roost-Client: web` or with another \
         site's `Origin` (`csrf`)", body = crate::http::ErrorBody),
    )
)]
pub async fn logout(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    who: Option<Extension<Principal>>,
    browser: Browser,
    CallerIp(client): CallerIp,
) -> Result<Response, ApiError> {
    let cookie = browser.cookie_token()?.map(str::to_owned);
    let who = who.map(|Extension(who)| who);
    if let Some(who) = &who {
        if who.session_id().is_none() {
            return Err(AuthError::forbidden(
                "session_required",
                "this needs a signed-in session, not an API key",
            )
            .into());
        }
    } else if !browser.web {
        return Err(AuthError::Unauthenticated.into());
    }
    let bearer_sid = who.as_ref().and_then(|w| w.session_id()).map(str::to_owned);
    let now_ms = auth.now_ms();
    store
        .write(move |conn| {
            let mut ended = Vec::new();
            if let (Some(sid), Some(who)) = (bearer_sid, &who) {
                ended.push((sid, who.user_id, who.username.clone()));
            }
            if let Some(token) = cookie {
                if let Some((sid, user_id)) = session::of_refresh_token(conn, &token)? {
                    let name = users::by_id(conn, user_id)?
                        .map(|u| u.username)
                        .unwrap_or_default();
                    if !ended.iter().any(|(s, _, _)| *s == sid) {
                        ended.push((sid, user_id, name));
                    }
                }
            }
            for (sid, user_id, name) in ended {
                if session::revoke(conn, &sid, "logout", now_ms / 1000)? {
                    audit::record(
                        conn,
                        &Event::new("auth.logout")
                            .at_ms(now_ms)
                            .actor(Some(user_id), name)
                            .ip(client)
                            .target(format!("session:{sid}")),
                    )?;
                }
            }
            Ok::<_, AuthError>(())
        })
        .await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if browser.web {
        resp.headers_mut()
            .insert(header::SET_COOKIE, browser::clear_cookie());
    }
    Ok(resp)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub invite_code: String,
    /// 3 to 32 of `a-z`, `0-9`, `.`, `_`, `-`, starting with a letter or digit (stored
    /// lowercase).
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$")]
    pub username: String,
    pub password: String,
    /// 1 to 64 characters (stored in NFKC) without control or invisible characters, each word
    /// in one script, not like another account's name; the username when absent or blank.
    #[schema(max_length = 64)]
    pub display_name: Option<String>,
}

/// `POST /api/v1/auth/register {invite_code, username, password, display_name?}`: creates a
/// member, consuming one use of the invite, and signs them in (201).
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    operation_id = "register",
    summary = "Create a member account with an invite code",
    tag = "auth",
    security((), ("bearer" = [])),
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account was created and signed in", body = TokenResponse),
        (status = 400, description = "A bad username (`invalid_username`), display name \
         (`invalid_display_name`) or password (`password_too_short`, `password_too_long`, \
         `password_too_weak`), or an invite code that is not valid (`invalid_invite`) or has \
         expired (`invite_expired`)",
         body = crate::http::ErrorBody),
        (status = 409, description = "The username is taken or looks like another account's \
         name (`username_taken`), the display name does (`display_name_taken`), or the invite is \
         used up (`invite_used_up`)", body = crate::http::ErrorBody),
    )
)]
pub async fn register(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    ip: CallerIp,
    browser: Browser,
    Json(req): Json<RegisterRequest>,
) -> Result<Response, ApiError> {
    let signup = Signup::check(
        &auth,
        &req.username,
        req.display_name.as_deref(),
        req.password,
    )?;
    if req.invite_code.len() > 64 {
        return Err(AuthError::invalid("invalid_invite", "this invite code is not valid").into());
    }
    // A dry run of the invite and the name in a read first, so bad requests cost no hash.
    {
        let (code, name, now) = (
            req.invite_code.clone(),
            signup.name.clone(),
            auth.now_secs(),
        );
        store
            .read(move |conn| {
                invites::check(conn, &code, now)?;
                if users::by_username(conn, &name)?.is_some() {
                    return Err(AuthError::conflict(
                        "username_taken",
                        "that username is already taken",
                    ));
                }
                Ok(())
            })
            .await?;
    }
    let new = signup.hash(&auth, Role::Member).await?;
    let (now_ms, ttl) = (auth.now_ms(), auth.settings.refresh_ttl.as_secs() as i64);
    let code = req.invite_code;
    let (user, issued) = store
        .write(move |conn| {
            let now = now_ms / 1000;
            let invite_id = invites::consume(conn, &code, now)?;
            let (user, issued) = create_signed_in(conn, &new, now, ttl)?;
            let actor = Actor::new_account(&user, ip);
            audit::record(
                conn,
                &actor
                    .event("invite.used", now_ms)
                    .target(format!("invite:{invite_id}")),
            )?;
            audit::record(
                conn,
                &actor
                    .event("user.created", now_ms)
                    .target(format!("user:{}", user.id))
                    .detail(json!({ "username": user.username, "role": user.role, "via": "invite", "invite": invite_id })),
            )?;
            Ok::<_, AuthError>((user, issued))
        })
        .await?;
    Ok(browser.session_answer(StatusCode::CREATED, issue_session(&auth, user, issued)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// `POST /api/v1/auth/password {current_password, new_password}`: changes the password, signs
/// out every session of the account (this one included) and returns a fresh session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password",
    operation_id = "changePassword",
    summary = "Change the password (signs out every other session)",
    tag = "auth",
    request_body = PasswordRequest,
    responses(
        (status = 200, description = "Changed; every other session is signed out and this is \
         the new one", body = TokenResponse),
        (status = 400, description = "The new password is too short, too long, or has a \
         control character or only one character repeated (`password_too_short`, \
         `password_too_long`, `password_too_weak`)", body = crate::http::ErrorBody),
        (status = 403, description = "The current password is wrong (`wrong_password`), or the \
         caller used an API key (`session_required`)", body = crate::http::ErrorBody),
        (status = 429, description = "Too many wrong passwords for this account \
         (`login_backoff`) or requests (`rate_limited`)", body = crate::http::ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn change_password(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    RequireSession(who): RequireSession,
    ip: CallerIp,
    browser: Browser,
    Json(req): Json<PasswordRequest>,
) -> Result<Response, ApiError> {
    let s = &auth.settings;
    username::check_password_length(&req.current_password, s.max_password_length)
        .map_err(AuthError::from)?;
    username::check_new_password(
        &req.new_password,
        s.min_password_length,
        s.max_password_length,
    )
    .map_err(AuthError::from)?;
    let address = ip.0;
    check_backoff(&auth, &who.username, address)?;
    let user_id = who.user_id;
    let stored = store
        .read(move |conn| users::password_hash(conn, user_id))
        .await?;
    if !auth
        .hasher
        .verify(stored, req.current_password)
        .await
        .map_err(AuthError::from)?
    {
        auth.count_failure("bad_password");
        let events = backoff_failure(
            &auth,
            (Some(who.user_id), &who.username),
            address,
            auth.now_ms(),
        );
        if !events.is_empty() {
            store
                .write(move |conn| events.iter().try_for_each(|e| audit::record(conn, e)))
                .await?;
        }
        return Err(
            AuthError::forbidden("wrong_password", "the current password is not right").into(),
        );
    }
    auth.backoff.record_success(&who.username, address);
    let new_hash = auth
        .hasher
        .hash(req.new_password)
        .await
        .map_err(AuthError::from)?;
    let actor = Actor::caller(&who, ip);
    let (now_ms, ttl) = (auth.now_ms(), auth.settings.refresh_ttl.as_secs() as i64);
    let (user, issued) = store
        .write(move |conn| {
            users::set_password(conn, user_id, &new_hash, &actor, now_ms)?;
            let user = users::by_id(conn, user_id)?.ok_or(AuthError::NotFound)?;
            let issued = session::create(conn, user_id, now_ms / 1000, ttl)?;
            Ok::<_, AuthError>((user, issued))
        })
        .await?;
    Ok(browser.session_answer(StatusCode::OK, issue_session(&auth, user, issued)))
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MeResponse {
    pub user: User,
    /// `session` or `api_key`.
    #[schema(example = "session")]
    pub auth: String,
    pub scopes: Vec<String>,
}

/// `GET /api/v1/me`: the caller's account.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    operation_id = "getMe",
    summary = "The caller's account",
    tag = "auth",
    responses(
        (status = 200, description = "The caller's account and credential",
         body = MeResponse),
    )
)]
pub async fn me(State(store): State<Store>, who: Principal) -> Result<Json<MeResponse>, ApiError> {
    let user_id = who.user_id;
    let user = store
        .read(move |conn| users::by_id(conn, user_id))
        .await?
        .ok_or(AuthError::Unauthenticated)?;
    Ok(Json(MeResponse {
        user,
        auth: match who.credential {
            super::Credential::Session(_) => "session".into(),
            super::Credential::ApiKey(_) => "api_key".into(),
        },
        scopes: who.scopes.names(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::metrics::Metrics;
    use crate::store::StoreOptions;

    /// A sign-in whose answer is built a second after its session was stored (a slow write,
    /// a second boundary) still tells the client the whole configured lifetime, the one the
    /// session row was given.
    #[tokio::test]
    async fn lifetimes_count_from_the_instant_the_session_was_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.auth.argon2_memory_kib = 64;
        config.auth.argon2_iterations = 1;
        std::fs::create_dir_all(config.secrets_dir()).unwrap();
        std::fs::write(super::super::token::key_path(&config), "k".repeat(43)).unwrap();
        let store =
            Store::open(&config.db_path(), StoreOptions::new(config.backups_dir())).unwrap();
        let clock = super::super::FakeClock::at_unix(1_000_000);
        let auth = AuthState::new(&config, &Metrics::new(), Arc::new(clock.clone()))
            .await
            .unwrap();
        let refresh_ttl = i64::try_from(auth.settings.refresh_ttl.as_secs()).unwrap();
        let access_ttl = i64::try_from(auth.settings.access_ttl.as_secs()).unwrap();

        let now = auth.now_secs();
        let (user, issued) = store
            .write(move |conn| {
                let new = NewUser {
                    username: "ada".into(),
                    display_name: "Ada".into(),
                    role: Role::Member,
                    password_hash: "x".into(),
                };
                create_signed_in(conn, &new, now, refresh_ttl)
            })
            .await
            .unwrap();
        clock.advance(Duration::from_secs(1));
        let session_id = issued.session_id.clone();
        let answer = issue_session(&auth, user, issued);

        let stored: i64 = store
            .read(move |conn| {
                conn.query_row(
                    "SELECT expires_at FROM sessions WHERE id = ?1",
                    [session_id],
                    |r| r.get(0),
                )
                .map_err(AuthError::from)
            })
            .await
            .unwrap();
        assert_eq!(stored, now + refresh_ttl);
        assert_eq!(answer.refresh_expires_in, refresh_ttl);
        assert_eq!(answer.expires_in, access_ttl);
        store.close().await.unwrap();
    }
}
