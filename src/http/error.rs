//! The one place where failures become HTTP responses.
//!
//! Handlers return [`ApiError`]; its `IntoResponse` produces the one error shape
//! `{"error":{"code":"snake_case","message":"human text"}}`. Responses that did not come from an
//! `ApiError` (axum's own 404/405/rejections, timeouts) are rewritten into the same shape by
//! [`ensure_json`] (in the outermost layer), so a client never sees a plain-text or HTML error. The cause chain of an
//! unexpected error goes to the log with context, never to the client.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// An error a handler returns. The status and `code` are part of the API contract.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra response headers (`Retry-After`, `WWW-Authenticate`); usually empty.
    pub headers: Vec<(http::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }
    /// Adds a response header, e.g. `Retry-After` on 429/503.
    pub fn with_header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
    /// An error the client cannot fix: logged with its cause, reported as a bare 500.
    pub fn internal(context: &str, cause: &dyn std::error::Error) -> Self {
        tracing::warn!(error = %ErrorChain(cause), "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

/// The body of every 4xx and 5xx response: a stable code and a human message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: `code` is part of the API contract (clients branch on it), `message` is
/// for people and may change.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    #[schema(example = "not_found", pattern = "^[a-z0-9_]+$")]
    pub code: String,
    #[schema(example = "no such resource")]
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = error_response(self.status, self.code, &self.message);
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "error": { "code": code, "message": message } });
    let mut resp = super::json_response(status, body.to_string());
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    resp
}

/// Rewrites any error response that is not already JSON into the contract shape, keeping its
/// status and headers (e.g. `Allow` on 405, `Retry-After` on 429).
pub fn ensure_json(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (code, message) = default_code(status);
    let (mut parts, _) = resp.into_parts();
    let fresh = error_response(status, code, message);
    parts.headers.remove(header::CONTENT_LENGTH);
    let (fresh_parts, body) = fresh.into_parts();
    parts.headers.extend(fresh_parts.headers);
    Response::from_parts(parts, Body::new(body))
}

/// The code and message used for a status when nothing more specific is known.
pub(crate) fn default_code(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("bad_request", "the request is malformed"),
        401 => ("unauthorized", "missing or invalid credentials"),
        403 => ("forbidden", "not allowed"),
        404 => ("not_found", "no such resource"),
        405 => ("method_not_allowed", "this method is not allowed here"),
        408 => ("request_timeout", "the request took too long"),
        409 => ("conflict", "the request conflicts with the current state"),
        411 => ("length_required", "a Content-Length is required"),
        413 => ("payload_too_large", "the request body is too large"),
        415 => (
            "unsupported_media_type",
            "this content type is not accepted",
        ),
        421 => (
            "misdirected_request",
            "this server does not answer for that host name",
        ),
        422 => (
            "unprocessable",
            "the request body is not valid for this endpoint",
        ),
        429 => ("rate_limited", "too many requests; retry later"),
        431 => ("headers_too_large", "the request headers are too large"),
        503 => ("unavailable", "the service is not ready"),
        504 => ("timeout", "the request took too long"),
        507 => ("insufficient_storage", "the server is out of storage space"),
        s if s >= 500 => ("internal", "internal error; see the server log"),
        _ => ("bad_request", "the request was rejected"),
    }
}

/// Formats an error with its sources: "a: b: c".
pub struct ErrorChain<'a>(pub &'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}
