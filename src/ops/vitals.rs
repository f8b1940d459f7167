//! The daemon's vital signs: uptime, open connections, free disk, Pi health and the last
//! backup, kept current by one background task and read by `/status`, `/metrics` and the
//! low-disk write guard.
//!
//! [`monitor`] measures every [`MONITOR_INTERVAL`] off the async threads and selects on the
//! shutdown token. `/ready` also refreshes the low-disk flag on each call. The guard
//! ([`refuse_when_disk_low`]) answers 507 to writes under `/api/` while the flag is set,
//! so a full disk is refused at the door instead of failing inside SQLite.
//! This module reads; it never writes files or the database.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::edge::listener::OpenConnections;
use crate::http::ApiError;
use crate::metrics::Metrics;
use crate::ops::backup::{self, LastSuccess};
use crate::ops::pi::{self, PiHealth, SysRoot};

/// How often the background task measures.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(15);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FlagLabels {
    flag: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MemoryLabels {
    kind: &'static str,
}

/// The gauges this module owns, registered once at startup.
struct Gauges {
    /// Registered only on machines with a thermal zone, so a PC or VM shows no fake 0 °C.
    temperature: Option<Gauge<f64, AtomicU64>>,
    /// Registered only where the Pi firmware exposes `get_throttled`.
    throttled: Option<Family<FlagLabels, Gauge>>,
    memory_available: Gauge,
    load1: Gauge<f64, AtomicU64>,
    disk_free: Gauge,
    backup_last_success: Gauge,
    open_connections: Family<ListenerLabels, Gauge>,
    process_memory: Family<MemoryLabels, Gauge>,
}

/// What the last measurement saw.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub health: PiHealth,
    /// `None` when the data dir's free space could not be read.
    pub disk_free_bytes: Option<u64>,
}

/// Shared, read-mostly state behind `/status`, `/metrics` and the low-disk guard.
pub struct Vitals {
    started: Instant,
    started_at: OffsetDateTime,
    data_dir: PathBuf,
    backups_dir: PathBuf,
    min_free_bytes: u64,
    sys_root: SysRoot,
    connections: Vec<(&'static str, OpenConnections)>,
    low_disk: AtomicBool,
    last: RwLock<Measured>,
    gauges: Gauges,
}

impl Vitals {
    /// Registers the gauges and records the first measurement (taken by the caller with
    /// [`Vitals::measure`], off the async threads), so the low-disk flag is right before the
    /// first request.
    pub fn new(
        config: &Config,
        metrics: &Metrics,
        connections: Vec<(&'static str, OpenConnections)>,
        sys_root: SysRoot,
        first: Measured,
    ) -> Vitals {
        let temperature = first.health.cpu_temperature_celsius.map(|_| {
            let g = Gauge::<f64, AtomicU64>::default();
            metrics.register(
                "cpu_temperature_celsius",
                "CPU temperature from the preferred thermal zone (cpu-thermal on a Pi)",
                g.clone(),
            );
            g
        });
        let throttled = first.health.throttled.map(|_| {
            let f = Family::<FlagLabels, Gauge>::default();
            metrics.register(
                "throttled",
                "Raspberry Pi firmware throttling flags (1 = set): under-voltage, frequency cap, throttling, soft temperature limit; now and since boot",
                f.clone(),
            );
            f
        });
        let memory_available = Gauge::default();
        metrics.register(
            "memory_available_bytes",
            "Memory available for new allocations without swapping",
            memory_available.clone(),
        );
        let load1 = Gauge::<f64, AtomicU64>::default();
        metrics.register("load1", "One-minute load average", load1.clone());
        let backup_last_success = Gauge::default();
        metrics.register(
            "backup_last_success_timestamp_seconds",
            "Unix time of the last successful roost backup (0: none recorded)",
            backup_last_success.clone(),
        );
        let open_connections = Family::<ListenerLabels, Gauge>::default();
        metrics.register(
            "open_connections",
            "Client connections open now, by listener",
            open_connections.clone(),
        );
        let process_memory = Family::<MemoryLabels, Gauge>::default();
        metrics.register(
            "process_memory_bytes",
            "Roost's memory by kind: resident_anonymous and resident_file (RSS = their sum), \
             heap_in_use and heap_free (the C allocator's), db_page_region (SQLite's cached pages)",
            process_memory.clone(),
        );
        let min_free_gauge = Gauge::<i64>::default();
        let min_free_bytes = config.storage.min_free_disk_mb.saturating_mul(1024 * 1024);
        min_free_gauge.set(i64::try_from(min_free_bytes).unwrap_or(i64::MAX));
        metrics.register(
            "disk_min_free_bytes",
            "storage.min_free_disk_mb in bytes: below it writes are refused with 507",
            min_free_gauge,
        );
        let vitals = Vitals {
            started: Instant::now(),
            started_at: OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .expect("0 is always a valid nanosecond"),
            data_dir: config.data_dir().to_path_buf(),
            backups_dir: config.backups_dir(),
            min_free_bytes,
            sys_root,
            connections,
            low_disk: AtomicBool::new(false),
            last: RwLock::new(Measured::default()),
            gauges: Gauges {
                temperature,
                throttled,
                memory_available,
                load1,
                disk_free: metrics.disk_free_bytes.clone(),
                backup_last_success,
                open_connections,
                process_memory,
            },
        };
        vitals.record(first);
        vitals
    }

    /// Takes one measurement. Blocking (file reads, statvfs): run it off the async threads.
    pub fn measure(data_dir: &std::path::Path, sys_root: &SysRoot) -> Measured {
        Measured {
            health: pi::measure(sys_root),
            disk_free_bytes: crate::files::disk::free_bytes(data_dir).ok(),
        }
    }

    /// Stores a measurement and updates the gauges and the low-disk flag.
    pub fn record(&self, m: Measured) {
        let g = &self.gauges;
        if let (Some(gauge), Some(t)) = (&g.temperature, m.health.cpu_temperature_celsius) {
            gauge.set(t);
        }
        if let (Some(family), Some(t)) = (&g.throttled, m.health.throttled) {
            for (flag, on) in t.flags() {
                family
                    .get_or_create(&FlagLabels { flag })
                    .set(i64::from(on));
            }
        }
        if let Some(avail) = m.health.memory_available_bytes {
            g.memory_available
                .set(i64::try_from(avail).unwrap_or(i64::MAX));
        }
        if let Some(load) = m.health.load1 {
            g.load1.set(load);
        }
        if let Some(free) = m.disk_free_bytes {
            self.note_disk_free(free);
        }
        // Poisoning cannot leave a half-written value: the only write is this assignment.
        *self.last.write().unwrap_or_else(|p| p.into_inner()) = m;
    }

    /// Sets the low-disk flag from a fresh reading (also called by `/ready`).
    pub fn note_disk_free(&self, free: u64) {
        self.gauges
            .disk_free
            .set(i64::try_from(free).unwrap_or(i64::MAX));
        self.low_disk
            .store(free < self.min_free_bytes, Ordering::Relaxed);
    }

    pub fn disk_low(&self) -> bool {
        self.low_disk.load(Ordering::Relaxed)
    }

    pub fn min_free_bytes(&self) -> u64 {
        self.min_free_bytes
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn started_at(&self) -> OffsetDateTime {
        self.started_at
    }

    /// The last measurement.
    pub fn last(&self) -> Measured {
        // A poisoned lock still holds a complete value (writers only assign).
        self.last.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `(listener, open connections)` for each listener.
    pub fn connections(&self) -> Vec<(&'static str, usize)> {
        self.connections
            .iter()
            .map(|(name, open)| (*name, open.get()))
            .collect()
    }

    /// The last successful backup, read from its record (a small file; blocking).
    pub fn last_backup_blocking(&self) -> Option<LastSuccess> {
        backup::last_success(&self.backups_dir)
    }

    /// Brings the scrape-time gauges up to date: open connections (exact, from the edge's
    /// counters) and the last backup (read from `last-success.json`, which `roost backup`
    /// writes; reading it per scrape means a backup shows up at the next scrape, and a
    /// deleted record shows as 0), and where the process's memory is (`ops::memory::read`).
    pub async fn refresh_for_scrape(self: &Arc<Self>) {
        for (listener, open) in self.connections() {
            self.gauges
                .open_connections
                .get_or_create(&ListenerLabels { listener })
                .set(i64::try_from(open).unwrap_or(i64::MAX));
        }
        let me = self.clone();
        let Ok((last, memory)) = tokio::task::spawn_blocking(move || {
            (me.last_backup_blocking(), crate::ops::memory::read())
        })
        .await
        else {
            return;
        };
        self.gauges
            .backup_last_success
            .set(last.map_or(0, |l| l.created_unix));
        for (kind, bytes) in memory.figures() {
            self.gauges
                .process_memory
                .get_or_create(&MemoryLabels { kind })
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }
}

/// Measures every [`MONITOR_INTERVAL`] until `shutdown`.
pub async fn monitor(vitals: Arc<Vitals>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(MONITOR_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // immediate; startup already measured
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let (dir, root) = (vitals.data_dir.clone(), vitals.sys_root.clone());
        match tokio::task::spawn_blocking(move || Vitals::measure(&dir, &root)).await {
            Ok(m) => vitals.record(m),
            Err(e) => tracing::warn!(error = %e, "measuring the machine's health failed"),
        }
    }
}

/// The 507 to send instead of `req`, if any: writes (any method but GET, HEAD and OPTIONS)
/// under `/api/` are refused while free disk is below `storage.min_free_disk_mb`.
/// `api::Surface`'s route policy asks this for every request, after the Host check (421),
/// rate limit (429) and body cap (413), and before the handler, so a full disk is refused at
/// the door.
pub fn refuse_when_disk_low(vitals: &Vitals, req: &Request) -> Option<Response> {
    let reads = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    (!reads && vitals.disk_low() && req.uri().path().starts_with("/api/")).then(|| {
        ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient_storage",
            "the server is low on disk space; changes are refused until space is freed",
        )
        .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::State;
    use axum::middleware::Next;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    /// [`refuse_when_disk_low`] as a layer, the way `api::Surface`'s route policy applies it.
    async fn refuse_writes_when_disk_low(
        State(vitals): State<Arc<Vitals>>,
        req: Request,
        next: Next,
    ) -> Response {
        match refuse_when_disk_low(&vitals, &req) {
            Some(refused) => refused,
            None => next.run(req).await,
        }
    }

    fn vitals(min_free_mb: u64, free: u64) -> Arc<Vitals> {
        let mut config = Config::default();
        config.storage.min_free_disk_mb = min_free_mb;
        let first = Measured {
            health: PiHealth::default(),
            disk_free_bytes: Some(free),
        };
        Arc::new(Vitals::new(
            &config,
            &Metrics::new(),
            vec![("https", OpenConnections::default())],
            SysRoot::default(),
            first,
        ))
    }

    async fn status_of(v: &Arc<Vitals>, method: Method, path: &str) -> StatusCode {
        let app = Router::new()
            .route("/api/v1/things", post(|| async { "made" }))
            .layer(axum::middleware::from_fn_with_state(
                v.clone(),
                refuse_writes_when_disk_low,
            ));
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(axum::body::Body::empty())
            .unwrap();
        app.oneshot(req).await.unwrap().status()
    }

    #[tokio::test]
    async fn writes_under_api_get_507_only_while_disk_is_low() {
        let v = vitals(10, 5 * 1024 * 1024);
        assert!(v.disk_low());
        assert_eq!(
            status_of(&v, Method::POST, "/api/v1/things").await,
            StatusCode::INSUFFICIENT_STORAGE
        );
        assert_eq!(
            status_of(&v, Method::DELETE, "/api/v1/unknown").await,
            StatusCode::INSUFFICIENT_STORAGE,
            "checked before routing"
        );
        assert_eq!(
            status_of(&v, Method::GET, "/api/v1/things").await,
            StatusCode::METHOD_NOT_ALLOWED,
            "reads pass"
        );
        assert_eq!(
            status_of(&v, Method::POST, "/other").await,
            StatusCode::NOT_FOUND,
            "only /api/ is guarded"
        );

        v.note_disk_free(20 * 1024 * 1024);
        assert!(!v.disk_low());
        assert_eq!(
            status_of(&v, Method::POST, "/api/v1/things").await,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn scrape_refresh_exports_connections_and_the_last_backup() {
        let m = Metrics::new();
        let open = OpenConnections::default();
        let v = Arc::new(Vitals::new(
            &Config::default(),
            &m,
            vec![("https", open.clone())],
            SysRoot::default(),
            Measured::default(),
        ));
        v.refresh_for_scrape().await;
        let text = m.encode();
        assert!(
            text.contains("roost_open_connections{listener=\"https\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("roost_backup_last_success_timestamp_seconds 0"),
            "{text}"
        );
        for kind in [
            "resident_anonymous",
            "resident_file",
            "heap_in_use",
            "heap_free",
        ] {
            assert!(
                text.contains(&format!("roost_process_memory_bytes{{kind=\"{kind}\"}}")),
                "{kind}: {text}"
            );
        }
        assert!(
            !text.contains("cpu_temperature"),
            "no thermal zone measured: {text}"
        );
    }
}
