//! `GET /status` on the internal listener, and `roost status [--json]`, which asks it.
//!
//! The report is what an owner wants at a glance: version, uptime, connections, how much is
//! stored, disk, temperature, load, LiveKit, the last backup and whether first-run setup is
//! still pending. Counts appear only for tables that exist (other modules create them).
//! The handler only reads, and never answers the setup code itself: any local process may ask
//! the loopback listener. The command talks HTTP to loopback, adds the code from the daemon's
//! 0600 code file when its user may read it (root, or the daemon's user), and prints.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::AuthState;
use crate::config::Config;
use crate::ops::backup::{human_bytes, LastSuccess};
use crate::ops::backup_runs::{BackupRun, BackupRuns};
use crate::ops::pi::PiHealth;
use crate::ops::vitals::Vitals;
use crate::store::{inspect, Store};

/// Tables whose row counts `/status` reports when they exist.
pub const COUNTED_TABLES: [&str; 3] = ["users", "rooms", "messages"];
/// How long counting may take before `/status` answers without counts.
const COUNT_TIMEOUT: Duration = Duration::from_secs(3);
/// `roost status`'s deadline for connecting and for the whole answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of an answer `roost status` reads (a real one is about a kilobyte).
const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusReport {
    pub version: String,
    pub uptime_secs: u64,
    pub started_at: String,
    /// Open connections by listener (`https`, `http`, `internal`).
    pub connections: BTreeMap<String, usize>,
    /// Rows of `users`, `rooms` and `messages`, for those that exist.
    pub counts: BTreeMap<String, u64>,
    pub disk: Disk,
    pub health: PiHealth,
    pub livekit: LiveKit,
    pub last_backup: Option<LastBackup>,
    /// The backup started from the administration API, if one ran since the daemon started:
    /// running, or how it ended (`roost backup` runs in its own process and is not seen here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_run: Option<BackupRun>,
    /// Size of the database file and its write-ahead log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_bytes: Option<u64>,
    /// True while no administrator exists and the one-time setup code is valid.
    pub setup_pending: bool,
    /// The one-time setup code. Never sent by the daemon (any local process may ask `/status`):
    /// `roost status` adds it from the daemon's 0600 code file when it may read it (root, or
    /// the daemon's user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Disk {
    /// Free space for the daemon on the data dir's filesystem.
    pub free_bytes: Option<u64>,
    /// Size of that filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    pub min_free_bytes: u64,
    /// Writes are refused with 507 while this is true.
    pub low: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LiveKit {
    /// As in `/ready`'s `livekit` check: ok, starting, degraded, disabled or stopping.
    pub state: String,
    /// In an owner's words: running, starting, restarting (down, a restart is pending), off
    /// or stopping.
    #[serde(default)]
    pub phase: String,
    /// True when `livekit.external_url` names a server Roost does not run (it only checks it).
    #[serde(default)]
    pub external: bool,
    /// Why, when it is not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LastBackup {
    pub created: String,
    pub age_secs: i64,
    pub path: String,
}

impl LastBackup {
    pub fn from_record(l: &LastSuccess, now: OffsetDateTime) -> LastBackup {
        LastBackup {
            created: l.created.clone(),
            age_secs: now.unix_timestamp() - l.created_unix,
            path: l.path.display().to_string(),
        }
    }
}

/// The parts of the daemon a status report reads, taken from the handler's state: `/status`
/// and the administration API's status both extract it.
#[derive(Clone)]
pub struct Inputs {
    pub store: Store,
    pub config: Arc<Config>,
    pub vitals: Arc<Vitals>,
    /// Whether first-run setup is pending.
    pub auth: Arc<AuthState>,
    pub livekit: Arc<crate::livekit::LiveKit>,
    pub backup_runs: Arc<BackupRuns>,
}

impl<S> FromRequestParts<S> for Inputs
where
    S: Send + Sync,
    Store: FromRef<S>,
    Arc<Config>: FromRef<S>,
    Arc<Vitals>: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
    Arc<crate::livekit::LiveKit>: FromRef<S>,
    Arc<BackupRuns>: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        _: &mut http::request::Parts,
        state: &S,
    ) -> Result<Inputs, Self::Rejection> {
        Ok(Inputs {
            store: Store::from_ref(state),
            config: Arc::from_ref(state),
            vitals: Arc::from_ref(state),
            auth: Arc::from_ref(state),
            livekit: Arc::from_ref(state),
            backup_runs: Arc::from_ref(state),
        })
    }
}

/// `GET /status`.
pub async fn status(inputs: Inputs) -> Response {
    let mut resp = Json(report(&inputs).await).into_response();
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// The status report `GET /status` and the administration API's `GET /api/v1/admin/status`
/// answer (never with the setup code).
pub async fn report(inputs: &Inputs) -> StatusReport {
    let counts = tokio::time::timeout(
        COUNT_TIMEOUT,
        inputs
            .store
            .read(|conn| inspect::counts_of(conn, &COUNTED_TABLES)),
    )
    .await;
    let counts = match counts {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "status: counting rows");
            BTreeMap::new()
        }
        Err(_) => {
            tracing::warn!("status: counting rows took too long; answering without counts");
            BTreeMap::new()
        }
    };
    let vitals = inputs.vitals.clone();
    let db_path = inputs.config.db_path();
    let (fresh_free, total, last, database_bytes) = tokio::task::spawn_blocking(move || {
        (
            crate::files::disk::free_bytes(vitals.data_dir()).ok(),
            crate::files::disk::total_bytes(vitals.data_dir()).ok(),
            vitals.last_backup_blocking(),
            crate::ops::backup::database_bytes(&db_path),
        )
    })
    .await
    .unwrap_or((None, None, None, None));
    if let Some(free) = fresh_free {
        inputs.vitals.note_disk_free(free);
    }
    let now = OffsetDateTime::now_utc();
    // A status report without the setup state is still useful: a failed lookup is logged only.
    let setup_pending = match inputs.auth.pending_setup(&inputs.store).await {
        Ok(pending) => pending.is_some(),
        Err(e) => {
            tracing::warn!(error = %e, "reading the pending setup state");
            false
        }
    };
    StatusReport {
        version: crate::VERSION.to_owned(),
        uptime_secs: inputs.vitals.uptime().as_secs(),
        started_at: inputs
            .vitals
            .started_at()
            .format(&Rfc3339)
            .unwrap_or_default(),
        connections: inputs
            .vitals
            .connections()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        counts,
        disk: Disk {
            free_bytes: fresh_free.or(inputs.vitals.last().disk_free_bytes),
            total_bytes: total,
            min_free_bytes: inputs.vitals.min_free_bytes(),
            low: inputs.vitals.disk_low(),
        },
        health: inputs.vitals.last().health,
        livekit: {
            let check = crate::ops::health::livekit_check(&inputs.livekit);
            LiveKit {
                state: check.status.to_owned(),
                phase: livekit_phase(&inputs.livekit.status()).to_owned(),
                external: !inputs.config.livekit.external_url.is_empty(),
                message: check.message,
            }
        },
        last_backup: last.as_ref().map(|l| LastBackup::from_record(l, now)),
        backup_run: inputs.backup_runs.last(),
        database_bytes,
        setup_pending,
        setup_code: None,
    }
}

/// LiveKit's state in an owner's words ([`LiveKit::phase`]).
fn livekit_phase(status: &crate::livekit::Status) -> &'static str {
    use crate::livekit::Status;
    match status {
        Status::Up => "running",
        Status::Starting => "starting",
        // The supervisor restarts a managed server with backoff, and keeps checking an
        // external one until it answers again.
        Status::Down(_) => "restarting",
        Status::Disabled(_) => "off",
        Status::Stopped => "stopping",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(
        "the daemon is not answering on {addr} ({error}); is it running? (systemctl status roost)"
    )]
    Unreachable {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("the daemon at {addr} answered {status}: {body}")]
    Http {
        addr: SocketAddr,
        status: u16,
        body: String,
    },
    #[error("the daemon's answer is not a status report: {0}")]
    Parse(String),
}

/// Fetches `/status` from the internal listener with a plain HTTP/1.1 request (loopback only,
/// so no TLS); returns the JSON body.
pub fn fetch(addr: SocketAddr) -> Result<String, StatusError> {
    let unreachable = |error| StatusError::Unreachable { addr, error };
    // A configured 0.0.0.0/[::] would not be loopback and fails validation; connect as given.
    let mut stream = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(CLIENT_TIMEOUT)))
        .map_err(unreachable)?;
    stream
        .write_all(
            b"GET /status HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        )
        .map_err(unreachable)?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut raw)
        .map_err(unreachable)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| StatusError::Parse("no HTTP header".into()))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StatusError::Parse("no HTTP status".into()))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    if status != 200 {
        return Err(StatusError::Http { addr, status, body });
    }
    Ok(body)
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut rest: &str) -> Result<String, StatusError> {
    let mut out = String::new();
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .ok_or_else(|| StatusError::Parse("bad chunk".into()))?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| StatusError::Parse("bad chunk size".into()))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = after
            .get(..size)
            .ok_or_else(|| StatusError::Parse("short chunk".into()))?;
        out.push_str(chunk);
        rest = after
            .get(size..)
            .and_then(|r| r.strip_prefix("\r\n"))
            .ok_or_else(|| StatusError::Parse("bad chunk end".into()))?;
    }
}

/// `roost status [--json]`: returns the exit code.
pub fn command(config: &Config, json: bool) -> u8 {
    let body = match fetch(config.internal_addr()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("roost status: {e}");
            return crate::exit::EXIT_FAILURE;
        }
    };
    let mut value = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("roost status: {}", StatusError::Parse(e.to_string()));
            return crate::exit::EXIT_FAILURE;
        }
    };
    if value["setup_pending"] == serde_json::Value::Bool(true) {
        if let Some(code) = setup_code_for_this_user(config) {
            value["setup_code"] = serde_json::Value::String(code);
        }
    }
    if json {
        println!("{value}");
        return crate::exit::EXIT_OK;
    }
    match serde_json::from_value::<StatusReport>(value) {
        Ok(report) => {
            print!("{}", render(&report));
            crate::exit::EXIT_OK
        }
        Err(e) => {
            eprintln!("roost status: {}", StatusError::Parse(e.to_string()));
            crate::exit::EXIT_FAILURE
        }
    }
}

/// The pending setup code from the daemon's code file, when this user may read it; otherwise
/// `None` (the report then says to ask as root).
fn setup_code_for_this_user(config: &Config) -> Option<String> {
    let path = crate::auth::setup::code_file(config);
    match crate::auth::setup::read_code_file(&path) {
        Ok(code) => code,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => None,
        Err(e) => {
            eprintln!("roost status: reading {}: {e}", path.display());
            None
        }
    }
}

/// The human form of a status report.
pub fn render(r: &StatusReport) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<13}{v}\n"));
    line(
        "roost",
        format!(
            "{}, up {} (since {})",
            r.version,
            duration(r.uptime_secs),
            r.started_at
        ),
    );
    line(
        "connections",
        r.connections
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    if !r.counts.is_empty() {
        line(
            "stored",
            r.counts
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    let disk = match r.disk.free_bytes {
        Some(free) => format!(
            "{} free{} (minimum {}){}",
            human_bytes(free),
            r.disk
                .total_bytes
                .map(|t| format!(" of {}", human_bytes(t)))
                .unwrap_or_default(),
            human_bytes(r.disk.min_free_bytes),
            if r.disk.low {
                "; LOW: writes are refused"
            } else {
                ""
            }
        ),
        None => "free space unknown".into(),
    };
    line("disk", disk);
    if let Some(bytes) = r.database_bytes {
        line("database", human_bytes(bytes));
    }
    let h = &r.health;
    let temp = match (h.cpu_temperature_celsius, &h.thermal_zone) {
        (Some(t), Some(z)) => format!("{t:.1} °C ({z})"),
        _ => "not available".into(),
    };
    line("temperature", temp);
    if let Some(t) = &h.throttled {
        line("throttling", t.describe());
    }
    if let (Some(l1), Some(l5), Some(l15)) = (h.load1, h.load5, h.load15) {
        line("load", format!("{l1:.2} {l5:.2} {l15:.2}"));
    }
    if let (Some(a), Some(t)) = (h.memory_available_bytes, h.memory_total_bytes) {
        line(
            "memory",
            format!("{} available of {}", human_bytes(a), human_bytes(t)),
        );
    }
    line(
        "livekit",
        match &r.livekit.message {
            Some(why) => format!("{} ({why})", r.livekit.state),
            None => r.livekit.state.clone(),
        },
    );
    line(
        "last backup",
        match &r.last_backup {
            Some(b) => format!(
                "{} ({} ago) {}",
                b.created,
                duration(b.age_secs.max(0) as u64),
                b.path
            ),
            None => "none recorded (run roost backup, or enable roost-backup.timer)".into(),
        },
    );
    match (&r.setup_pending, &r.setup_code) {
        (true, Some(code)) => line(
            "setup",
            format!("pending: create the first admin with setup code {code}"),
        ),
        (true, None) => line(
            "setup",
            "pending: run `sudo roost status` to see the one-time setup code".into(),
        ),
        (false, _) => {}
    }
    out
}

/// `3d 4h`, `2h 5m`, `4m 3s`.
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(5), "0m 5s");
        assert_eq!(duration(7260), "2h 1m");
        assert_eq!(duration(3 * 86_400 + 4 * 3600), "3d 4h");
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(
            dechunk("4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n").unwrap(),
            "{\"a\":1}"
        );
        assert!(dechunk("zz\r\n").is_err());
    }

    #[test]
    fn the_human_form_names_what_matters() {
        let r = StatusReport {
            version: "0.1.0".into(),
            uptime_secs: 65,
            started_at: "2026-11-22T03:00:00Z".into(),
            connections: BTreeMap::from([("https".into(), 2)]),
            counts: BTreeMap::from([("users".into(), 3)]),
            disk: Disk {
                free_bytes: Some(1 << 30),
                total_bytes: Some(4 << 30),
                min_free_bytes: 256 << 20,
                low: false,
            },
            health: PiHealth {
                cpu_temperature_celsius: Some(48.3),
                thermal_zone: Some("cpu-thermal".into()),
                ..PiHealth::default()
            },
            livekit: LiveKit {
                state: "disabled".into(),
                phase: "off".into(),
                external: false,
                message: Some("no livekit-server binary".into()),
            },
            last_backup: None,
            backup_run: None,
            database_bytes: Some(1 << 20),
            setup_pending: true,
            setup_code: Some("ABCD-EFGH".into()),
        };
        let text = render(&r);
        let without_code = render(&StatusReport {
            setup_code: None,
            ..r.clone()
        });
        assert!(
            without_code.contains("run `sudo roost status` to see the one-time setup code"),
            "{without_code}"
        );
        for needle in [
            "0.1.0, up 1m 5s",
            "https 2",
            "3 users",
            "1.0 GiB free of 4.0 GiB",
            "database     1.0 MiB",
            "48.3 °C (cpu-thermal)",
            "disabled",
            "none recorded",
            "setup code ABCD-EFGH",
        ] {
            assert!(text.contains(needle), "{needle:?} missing:\n{text}");
        }
    }
}
