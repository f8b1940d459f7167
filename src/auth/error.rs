//! The errors of `auth`, and their one mapping to HTTP (through `ApiError`).
//!
//! Codes are part of the API contract: clients branch on `invalid_token` vs `token_expired`,
//! `login_backoff`, `busy` and so on. Messages never say whether an account exists.

use http::{header, HeaderValue, StatusCode};

use super::password::HashError;
use super::token::Reject;
use super::username::RuleError;
use crate::http::ApiError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credentials where they are required.
    #[error("sign in first")]
    Unauthenticated,
    /// A bearer token that failed verification.
    #[error("{0}")]
    InvalidToken(Reject),
    /// A well-formed token or key that is no longer good (revoked session, disabled user,
    /// unknown or revoked API key).
    #[error("{0}")]
    Revoked(&'static str),
    /// A 401 with its own code (refresh-token failures).
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    /// Wrong username or password (deliberately not saying which).
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    #[error(
        "too many failed sign-ins for this account from this address; retry in {retry_after_secs} s"
    )]
    Backoff { retry_after_secs: u64 },
    #[error("too many password checks are in progress; retry shortly")]
    Busy,
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("no such resource")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

impl AuthError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> AuthError {
        AuthError::Invalid {
            code,
            message: message.into(),
        }
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> AuthError {
        AuthError::Conflict {
            code,
            message: message.into(),
        }
    }
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> AuthError {
        AuthError::Unauthorized {
            code,
            message: message.into(),
        }
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> AuthError {
        AuthError::Forbidden {
            code,
            message: message.into(),
        }
    }
}

impl From<rusqlite::Error> for AuthError {
    fn from(e: rusqlite::Error) -> Self {
        AuthError::Store(StoreError::from(e))
    }
}

impl From<HashError> for AuthError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => AuthError::Busy,
            HashError::Failed(m) => AuthError::Hash(m),
        }
    }
}

impl From<RuleError> for AuthError {
    fn from(e: RuleError) -> Self {
        let code = match e {
            RuleError::Username => "invalid_username",
            RuleError::DisplayName | RuleError::DisplayNameRefused(_) => "invalid_display_name",
            RuleError::PasswordTooShort(_) => "password_too_short",
            RuleError::PasswordControlCharacter | RuleError::PasswordRepeated => {
                "password_too_weak"
            }
            RuleError::PasswordTooLong(_) => "password_too_long",
        };
        AuthError::invalid(code, e.to_string())
    }
}

fn bearer_challenge(error: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer realm=\"roost\", error=\"{error}\""))
        .expect("an ASCII challenge is a valid header value")
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        match e {
            AuthError::Unauthenticated => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message).with_header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"roost\""),
                )
            }
            AuthError::InvalidToken(Reject::Expired) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "token_expired", message)
                    .with_header(header::WWW_AUTHENTICATE, bearer_challenge("invalid_token"))
            }
            AuthError::InvalidToken(_) | AuthError::Revoked(_) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", message)
                    .with_header(header::WWW_AUTHENTICATE, bearer_challenge("invalid_token"))
            }
            AuthError::Unauthorized { code, .. } => {
                ApiError::new(StatusCode::UNAUTHORIZED, code, message)
            }
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
            }
            AuthError::Forbidden { code, .. } => {
                ApiError::new(StatusCode::FORBIDDEN, code, message)
            }
            AuthError::Backoff { retry_after_secs } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "login_backoff", message).with_header(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs.max(1)),
                )
            }
            AuthError::Busy => ApiError::unavailable("busy", message)
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("1")),
            AuthError::Invalid { code, .. } => ApiError::bad_request(code, message),
            AuthError::Conflict { code, .. } => ApiError::new(StatusCode::CONFLICT, code, message),
            AuthError::NotFound => ApiError::not_found(),
            AuthError::Store(e) => ApiError::from(e),
            AuthError::Hash(_) => ApiError::internal("password hashing", &e),
        }
    }
}

impl axum::response::IntoResponse for AuthError {
    fn into_response(self) -> axum::response::Response {
        ApiError::from(self).into_response()
    }
}
