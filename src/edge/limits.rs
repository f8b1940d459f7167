//! The request body cap, enforced before any handler runs.
//!
//! A declared `Content-Length` over the cap is refused with 413 at once; a body without one
//! (chunked, HTTP/2 DATA frames) is wrapped so reading past the cap fails, which the body
//! extractors turn into 413 as well. Handlers never see more than the cap.
//!
//! One route has its own cap: uploads (`POST /api/v1/attachments`, [`UPLOAD_ROUTE`]) get
//! `[attachments] max_bytes` instead of `limits.max_body_bytes`, refused with code
//! `too_large`; the upload handler streams the body and enforces the same number again.

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};

use super::policy::EdgePolicy;
use crate::http::ApiError;

/// The route template of uploads, whose cap is `[attachments] max_bytes`.
pub const UPLOAD_ROUTE: &str = "/api/v1/attachments";

/// The request with its body capped for its route (`route`: the matched template), or the 413
/// to send instead. `api::Surface`'s route policy runs it for every request.
// The refusal is the response itself, built only on that rare path; boxing it would
// change nothing for the request that passes.
#[allow(clippy::result_large_err)]
pub fn limit_body(
    policy: &EdgePolicy,
    req: &mut Request,
    route: Option<&str>,
) -> Result<(), Response> {
    let is_upload = req.method() == http::Method::POST && route == Some(UPLOAD_ROUTE);
    let limit = if is_upload {
        usize::try_from(policy.upload_max_bytes).unwrap_or(usize::MAX)
    } else {
        policy.max_body_bytes
    };
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        if is_upload {
            return Err(ApiError::new(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the file is larger than the limit of {limit} bytes"),
            )
            .into_response());
        }
        return Err(ApiError::payload_too_large(limit).into_response());
    }
    // A request without a body (most GETs) has nothing to count; wrapping it would cost an
    // allocation per request for nothing.
    if http_body::Body::is_end_stream(req.body()) {
        return Ok(());
    }
    let body = std::mem::take(req.body_mut());
    *req.body_mut() = Body::new(http_body_util::Limited::new(body, limit));
    Ok(())
}
