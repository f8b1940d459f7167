//! `GET /metrics` on the internal listener: Prometheus text by default, OpenMetrics when asked
//! for (`metrics::exposition`).
//!
//! The readings that are not counted as things happen (the machine's vitals, SQLite's memory)
//! are taken when a scrape asks, so an idle daemon does no work for them. It only reads.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use crate::metrics::Metrics;
use crate::ops::vitals::Vitals;
use crate::store::Store;

/// `GET /metrics`.
pub async fn metrics(
    State(vitals): State<Arc<Vitals>>,
    State(store): State<Store>,
    State(metrics): State<Arc<Metrics>>,
    headers: http::HeaderMap,
) -> Response {
    vitals.refresh_for_scrape().await;
    match store.memory().await {
        Ok(memory) => metrics.set_db_memory(&memory),
        // The database's own health is `/ready`'s to report; the scrape goes on without it.
        Err(e) => tracing::debug!(error = %e, "no database memory reading for /metrics"),
    }
    crate::metrics::exposition::respond(&metrics, &headers)
}
