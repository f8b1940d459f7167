//! How a store failure reads to a client. It lives here, where both the store and the HTTP
//! vocabulary are known, so that `store` stays free of HTTP and `http` free of the store.

use http::StatusCode;

use crate::http::ApiError;
use crate::store::StoreError;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                "the server is out of storage space",
            ),
            StoreError::Closed => Self::unavailable("shutting_down", "the server is shutting down"),
            StoreError::Unwritable => {
                tracing::warn!("a request failed: the database's storage cannot be written");
                Self::unavailable(
                    "storage_unavailable",
                    "the server cannot write to its storage; reading still works",
                )
            }
            other => Self::internal("database error", &other),
        }
    }
}
