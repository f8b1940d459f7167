//! The request body cap, enforced before any handler runs.
//!
//! A declared `Content-Length` over the cap is refused with 413 at once; a body without one
//! (chunked, HTTP/2 DATA frames) is wrapped so reading past the cap fails, which the body
//! extractors turn into 413 as well. Handlers never see more than the cap.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::policy::EdgePolicy;
use crate::api::ApiError;

pub async fn body_limit(
    State(policy): State<Arc<EdgePolicy>>,
    req: Request,
    next: Next,
) -> Response {
    let limit = policy.max_body_bytes;
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return ApiError::payload_too_large(limit).into_response();
    }
    let req = req.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next.run(req).await
}
