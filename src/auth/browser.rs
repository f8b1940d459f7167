//! Browser sessions: the web client's refresh token lives in an HttpOnly cookie instead of the
//! page's memory, and every request the cookie authenticates is guarded against cross-site
//! request forgery.
//!
//! The web client sends `X-Roost-Client: web` on every API request. Sign-ins with it (setup,
//! login, register, password change) put the refresh token in the `roost_refresh` cookie
//! (`HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth`) and leave it out of the body;
//! refresh and logout with it read the cookie. The guard ([`Browser`]): a request with the
//! header must have an `Origin` equal to the server's own (when it has one; browsers send it
//! on every POST), and a cookie is read only from a request with the header. A cross-site page
//! cannot add that header without a CORS preflight, which Roost never grants. Refusals are
//! 403 `csrf`. Requests without the header (bearer clients, bots) are not affected.
//!
//! This module reads headers and writes `Set-Cookie`; it does not touch the store.

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, StatusCode};

use super::sign_in::TokenResponse;
use super::AuthError;
use crate::http::{ApiError, Json};

/// The header the web client sends on every API request; its value is `web`.
pub const CLIENT_HEADER: &str = "x-roost-client";
/// The refresh token's cookie.
pub const REFRESH_COOKIE: &str = "roost_refresh";
/// Browsers send the cookie only under this path: the sign-in endpoints.
const COOKIE_PATH: &str = "/api/v1/auth";
/// Longer values are not refresh tokens (they are 43 characters); not worth a lookup.
const MAX_COOKIE_VALUE: usize = 128;

/// What a request says about being the web client, after the CSRF guard passed.
#[derive(Debug, Default)]
pub struct Browser {
    /// `X-Roost-Client: web` was sent (and the Origin, if any, is this server's).
    pub web: bool,
    /// The `roost_refresh` cookie's value; read only when `web`.
    refresh_cookie: Option<String>,
    /// A `roost_refresh` cookie came without the header.
    cookie_without_header: bool,
}

impl Browser {
    /// The refresh token the cookie carries, for a request the guard let through. A cookie on
    /// a request without the header is refused, not ignored: only a forged request sends one.
    pub fn cookie_token(&self) -> Result<Option<&str>, AuthError> {
        if self.cookie_without_header {
            return Err(csrf(
                "a session cookie needs the X-Roost-Client: web header",
            ));
        }
        Ok(self.refresh_cookie.as_deref())
    }

    /// The sign-in answer: with the header, the refresh token goes into the cookie and out of
    /// the body.
    pub fn session_answer(&self, status: StatusCode, mut tokens: TokenResponse) -> Response {
        let cookie = match (self.web, tokens.refresh_token.take()) {
            (true, Some(token)) => Some(set_cookie(&token, tokens.refresh_expires_in)),
            (false, token) => {
                tokens.refresh_token = token;
                None
            }
            (true, None) => None,
        };
        let mut resp = Json(tokens).into_response();
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        // Tokens are never stored by a cache.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(cookie) = cookie {
            headers.insert(header::SET_COOKIE, cookie);
        }
        resp
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Browser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let web = parts
            .headers
            .get(CLIENT_HEADER)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"web"));
        let cookie = refresh_cookie(&parts.headers);
        if !web {
            return Ok(Browser {
                web,
                refresh_cookie: None,
                cookie_without_header: cookie.is_some(),
            });
        }
        // Every Origin header must be ours: a second one must not slip another site past.
        let mut origins = parts.headers.get_all(header::ORIGIN).iter().peekable();
        if origins.peek().is_some() {
            let authority = request_authority(parts);
            let ours = origins.all(|origin| {
                let origin = origin.to_str().unwrap_or("");
                authority
                    .as_ref()
                    .is_some_and(|authority| same_origin(origin, authority))
            });
            if !ours {
                return Err(csrf("the request's Origin is not this server").into());
            }
        }
        Ok(Browser {
            web,
            refresh_cookie: cookie,
            cookie_without_header: false,
        })
    }
}

fn csrf(message: &'static str) -> AuthError {
    AuthError::forbidden("csrf", message)
}

/// `Set-Cookie` that clears the refresh cookie (sign-out, a refused refresh).
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path={COOKIE_PATH}; Max-Age=0"
    ))
    .expect("a fixed ASCII cookie is a valid header value")
}

fn set_cookie(token: &str, max_age_secs: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={token}; HttpOnly; Secure; SameSite=Strict; Path={COOKIE_PATH}; \
         Max-Age={}",
        max_age_secs.max(0)
    ))
    .expect("a refresh token is URL-safe base64, a valid cookie value")
}

/// The value of the `roost_refresh` cookie in any `Cookie` header (HTTP/2 may split them).
fn refresh_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|value| !value.is_empty() && value.len() <= MAX_COOKIE_VALUE)
        .map(str::to_owned)
}

/// The authority the request was made to (`:authority` or `Host`), whose host the edge has
/// already checked against the allowlist.
fn request_authority(parts: &Parts) -> Option<http::uri::Authority> {
    if let Some(authority) = parts.uri.authority() {
        return Some(authority.clone());
    }
    parts.headers.get(header::HOST)?.to_str().ok()?.parse().ok()
}

/// Whether `origin` (`https://host[:port]`) is the HTTPS origin of `authority`. Only https:
/// the browser sessions exist only on the HTTPS listener.
fn same_origin(origin: &str, authority: &http::uri::Authority) -> bool {
    let Some(rest) = origin.strip_prefix("https://") else {
        return false;
    };
    let Ok(origin) = rest.parse::<http::uri::Authority>() else {
        return false;
    };
    let host = |a: &http::uri::Authority| a.host().trim_end_matches('.').to_ascii_lowercase();
    origin.as_str().len() == rest.len()
        && host(&origin) == host(authority)
        && origin.port_u16().unwrap_or(443) == authority.port_u16().unwrap_or(443)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_by_host_and_port_over_https_only() {
        let authority = |s: &str| s.parse::<http::uri::Authority>().unwrap();
        assert!(same_origin(
            "https://roost.local",
            &authority("roost.local")
        ));
        assert!(same_origin(
            "https://ROOST.local:443",
            &authority("roost.local")
        ));
        assert!(same_origin(
            "https://localhost:8443",
            &authority("localhost:8443")
        ));
        assert!(!same_origin(
            "https://localhost:8444",
            &authority("localhost:8443")
        ));
        assert!(!same_origin(
            "http://roost.local",
            &authority("roost.local")
        ));
        assert!(!same_origin(
            "https://evil.example",
            &authority("roost.local")
        ));
        assert!(!same_origin("null", &authority("roost.local")));
        assert!(!same_origin(
            "https://roost.local/x",
            &authority("roost.local")
        ));
    }

    #[test]
    fn the_refresh_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; roost_refresh=abc"),
        );
        assert_eq!(refresh_cookie(&headers).as_deref(), Some("abc"));
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("roost_refresh="));
        assert_eq!(refresh_cookie(&headers), None);
    }
}
