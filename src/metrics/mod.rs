//! Prometheus metrics (all named `roost_*`), exposed only on the internal listener.
//!
//! One [`Metrics`] value is made at startup and shared through the application state; there is
//! no global registry. Label values come from closed sets (matched route templates, status
//! codes, fixed reasons), never from client input, so series cannot grow without bound.

pub mod exposition;

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route template (`/api/v1/rooms/{id}`), or `unmatched`.
    pub route: RouteLabel,
    pub status: u16,
}

/// A route template as a label value: one of the surface's templates, which are `'static`,
/// so a label costs no copy.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum RouteLabel {
    Matched(&'static str),
    Unmatched,
}

impl RouteLabel {
    pub fn as_str(&self) -> &str {
        match self {
            RouteLabel::Matched(template) => template,
            RouteLabel::Unmatched => "unmatched",
        }
    }
}

impl prometheus_client::encoding::EncodeLabelValue for RouteLabel {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder,
    ) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DbMemoryLabels {
    /// `page_cache`, `schema`, `statements` or `other`.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_request_duration: Histogram,
    pub db_write_batch_size: Histogram,
    pub disk_free_bytes: Gauge,
    pub db_memory_bytes: Family<DbMemoryLabels, Gauge>,
}

impl Metrics {
    /// Counts an answered request by route template and status, and times it. `route` is the
    /// template the request's path matches, whichever step answered; without one it counts as
    /// `unmatched`.
    pub fn record_request(
        &self,
        route: Option<&'static str>,
        status: http::StatusCode,
        elapsed: std::time::Duration,
    ) {
        let route = route.map_or(RouteLabel::Unmatched, RouteLabel::Matched);
        self.http_requests
            .get_or_create(&HttpLabels {
                route,
                status: status.as_u16(),
            })
            .inc();
        self.http_request_duration.observe(elapsed.as_secs_f64());
    }

    /// Sets `roost_db_memory_bytes` from a reading of [`crate::store::Store::memory`].
    pub fn set_db_memory(&self, memory: &crate::store::DbMemory) {
        for (kind, bytes) in [
            ("page_cache", memory.page_cache),
            ("schema", memory.schema),
            ("statements", memory.statements),
            ("other", memory.other),
        ] {
            self.db_memory_bytes
                .get_or_create(&DbMemoryLabels { kind })
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("roost");
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: crate::VERSION.into(),
            })
            .set(1);
        registry.register("build_info", "Roost build information", build_info);

        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            http_requests.clone(),
        );
        // 1 ms .. ~16 s
        let http_request_duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "http_request_duration_seconds",
            "Time from request head to response head",
            http_request_duration.clone(),
        );
        let db_write_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "db_write_batch_size",
            "Write jobs committed per database transaction (group commit)",
            db_write_batch_size.clone(),
        );
        let disk_free_bytes = Gauge::default();
        registry.register(
            "disk_free_bytes",
            "Free bytes on the data dir's filesystem",
            disk_free_bytes.clone(),
        );

        let db_memory_bytes = Family::<DbMemoryLabels, Gauge>::default();
        registry.register(
            "db_memory_bytes",
            "Memory SQLite holds for the database connections (writer and idle readers), by kind",
            db_memory_bytes.clone(),
        );

        Metrics {
            registry: Mutex::new(registry),
            http_requests,
            http_request_duration,
            db_write_batch_size,
            disk_free_bytes,
            db_memory_bytes,
        }
    }

    /// Lets later modules add their own metrics at startup.
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        self.registry
            .lock()
            .expect("metrics registry lock is never poisoned: no code panics while holding it")
            .register(name, help, metric);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self
            .registry
            .lock()
            .expect("metrics registry lock is never poisoned: no code panics while holding it");
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("encoding into a String");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
