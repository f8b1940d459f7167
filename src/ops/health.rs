//! Liveness (`/health`) and readiness (`/ready`) with per-component checks.
//!
//! `/health` says only that the process answers. `/ready` says whether it can do its job:
//! the database writer takes the write lock within a deadline, and the data dir's filesystem
//! has more than `min_free_disk_mb` free. The `livekit` check is informational only.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::StatusCode;
use serde::Serialize;

use crate::config::Config;
use crate::livekit::LiveKit;
use crate::ops::vitals::Vitals;
use crate::store::Store;

/// How long the database check may take before the writer counts as unresponsive.
const DB_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health`'s body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
    /// Roost's version.
    pub version: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// `ok` or `fail`; for `livekit` also `starting`, `degraded`, `disabled`, `stopping`.
    #[schema(example = "ok")]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<u64>,
}

impl Check {
    fn ok() -> Self {
        Check {
            status: "ok",
            message: None,
            free_bytes: None,
        }
    }
    fn fail(message: impl Into<String>) -> Self {
        Check {
            status: "fail",
            message: Some(message.into()),
            free_bytes: None,
        }
    }
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
    pub checks: Checks,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Checks {
    pub database: Check,
    pub disk: Check,
    /// Informational: never makes `/ready` fail (see `livekit_check`).
    pub livekit: Check,
}

/// `GET /health`: the process answers.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "getHealth",
    summary = "Liveness: the process answers",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "The process answers",
         body = Health),
    )
)]
pub async fn health() -> Response {
    // The answer never changes, and load balancers and monitors ask often: the bytes are
    // fixed at build time (the version is a semver string, nothing to escape).
    const BODY: &str = concat!(
        r#"{"status":"ok","version":""#,
        env!("CARGO_PKG_VERSION"),
        r#""}"#
    );
    // Its length too: a `Content-Length` made per answer is an allocation (axum's, otherwise).
    static LENGTH: std::sync::LazyLock<http::HeaderValue> =
        std::sync::LazyLock::new(|| http::HeaderValue::from(BODY.len()));
    let mut resp = crate::http::json_response(StatusCode::OK, BODY);
    resp.headers_mut()
        .insert(http::header::CONTENT_LENGTH, LENGTH.clone());
    resp
}

/// `GET /ready`: the database can be written and the disk has room.
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "getReady",
    summary = "Readiness: database writable, disk above the floor",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "Not ready: see `checks`", body = Readiness),
    )
)]
pub async fn ready(
    State(store): State<Store>,
    State(config): State<Arc<Config>>,
    State(vitals): State<Arc<Vitals>>,
    State(livekit): State<Arc<LiveKit>>,
) -> Response {
    let r = readiness(&store, &config, &vitals, &livekit).await;
    let code = if r.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut resp = (code, Json(r)).into_response();
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    resp
}

pub async fn readiness(
    store: &Store,
    config: &Config,
    vitals: &Vitals,
    livekit: &LiveKit,
) -> Readiness {
    let database = match tokio::time::timeout(DB_CHECK_TIMEOUT, store.ping_writer()).await {
        Ok(Ok(())) => Check::ok(),
        Ok(Err(e)) => Check::fail(format!("database not writable: {e}")),
        Err(_) => Check::fail(format!(
            "database writer did not answer within {DB_CHECK_TIMEOUT:?}"
        )),
    };
    let disk = disk_check(config, vitals);
    let all_ok = database.is_ok() && disk.is_ok();
    Readiness {
        status: if all_ok { "ready" } else { "not_ready" },
        checks: Checks {
            database,
            disk,
            livekit: livekit_check(livekit),
        },
    }
}

/// Calls are an add-on to chat: LiveKit being off, starting or down is reported here
/// (`ok`, `starting`, `degraded`, `disabled`, `stopping`, with the reason) but never turns
/// `/ready` into a 503, which would take chat out of a load balancer or tunnel too.
pub(crate) fn livekit_check(livekit: &LiveKit) -> Check {
    use crate::livekit::Status;
    let (status, message) = match livekit.status() {
        Status::Up => ("ok", None),
        Status::Starting => ("starting", Some("livekit is starting".to_owned())),
        Status::Down(why) => ("degraded", Some(why)),
        Status::Disabled(why) => ("disabled", Some(why)),
        Status::Stopped => ("stopping", Some("roost is shutting down".to_owned())),
    };
    Check {
        status,
        message,
        free_bytes: None,
    }
}

fn disk_check(config: &Config, vitals: &Vitals) -> Check {
    let min = vitals.min_free_bytes();
    match crate::files::disk::free_bytes(config.data_dir()) {
        Ok(free) => {
            // Also sets roost_disk_free_bytes and the low-disk flag that refuses writes.
            vitals.note_disk_free(free);
            let mut c = if free >= min {
                Check::ok()
            } else {
                Check::fail(format!(
                    "{} MiB free, below storage.min_free_disk_mb = {}",
                    free / (1024 * 1024),
                    config.storage.min_free_disk_mb
                ))
            };
            c.free_bytes = Some(free);
            c
        }
        Err(e) => Check::fail(format!("cannot read free space of the data dir: {e}")),
    }
}
