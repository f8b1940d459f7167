//! The administration API, on the public HTTPS listener for admins only: the server's status
//! (`GET /api/v1/admin/status`, the same report as the loopback `/status`), the list of
//! backups and a backup started from the browser (`GET`/`POST /api/v1/admin/backups`).
//!
//! A backup started here is the same `ops::backup::create` that `roost backup` and its timer
//! run, with the same folder and `keep`. It runs on a blocking thread after the request has
//! been answered 202 (a backup of many attachments takes far longer than a request may), one
//! at a time ([`BackupRuns`]); the client follows it through `GET /api/v1/admin/backups`. On
//! the daemon's shutdown signal it stops at its next file and removes its partial folder.
//! Starting and finishing are audited. Nothing here reads or answers the setup code.

use std::sync::Mutex;

use axum::extract::State;
use axum::Extension;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::api::AppState;
use crate::auth::users::Actor;
use crate::auth::RequireAdmin;
use crate::edge::policy::ClientIp;
use crate::http::{ApiError, Json};
use crate::ops::backup::{self, Progress, Sources};
use crate::ops::status::{self, StatusReport};

/// Where a backup run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
}

/// A backup started through the administration API.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupRun {
    pub state: RunState,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub started_at: String,
    /// RFC 3339; absent while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// The backup's folder name (`roost-<UTC time>`), once it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Bytes written, once it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Why it failed, or what went wrong after the backup was safely written (pruning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The one backup run the daemon remembers: the running one, else the last one. At most one
/// runs at a time, so a second click cannot double the disk and I/O load.
pub struct BackupRuns {
    last: Mutex<Option<BackupRun>>,
    /// The daemon's shutdown signal: a running backup stops at its next file (and removes
    /// its partial folder) rather than hold the process up until it is done.
    shutdown: CancellationToken,
}

/// Stops a backup on the daemon's shutdown signal.
struct UntilShutdown(CancellationToken);

impl Progress for UntilShutdown {
    fn begin(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
    fn stop_requested(&self) -> bool {
        self.0.is_cancelled()
    }
}

impl BackupRuns {
    pub fn new(shutdown: CancellationToken) -> BackupRuns {
        BackupRuns {
            last: Mutex::new(None),
            shutdown,
        }
    }

    /// The running or last run, if any.
    pub fn last(&self) -> Option<BackupRun> {
        self.lock().clone()
    }

    /// Records a new run as started, unless one is running (then `None`).
    fn begin(&self, started_at: String) -> Option<BackupRun> {
        let mut last = self.lock();
        if last.as_ref().is_some_and(|r| r.state == RunState::Running) {
            return None;
        }
        let run = BackupRun {
            state: RunState::Running,
            started_at,
            finished_at: None,
            name: None,
            bytes: None,
            message: None,
        };
        *last = Some(run.clone());
        Some(run)
    }

    fn finish(&self, run: BackupRun) {
        *self.lock() = Some(run);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<BackupRun>> {
        // The guarded value is replaced whole, never left half-written: a panic elsewhere
        // while holding the lock cannot leave it inconsistent.
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `GET /api/v1/admin/status` (admin).
#[utoipa::path(
    get,
    path = "/api/v1/admin/status",
    operation_id = "getServerStatus",
    summary = "The server's status: version, uptime, disk, memory, temperature, LiveKit, \
               backups (admins)",
    tag = "admin",
    responses(
        (status = 200, description = "The status report. Readings the machine does not give \
         (temperature and throttling off a Raspberry Pi) are absent, not zero", body = StatusReport),
        (status = 403, description = "Not an admin (`forbidden`, `insufficient_scope`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn status_handler(inputs: status::Inputs, _admin: RequireAdmin) -> Json<StatusReport> {
    Json(status::report(&inputs).await)
}

/// A complete backup in the backup folder.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupView {
    /// The folder's name, `roost-<UTC time>`.
    pub name: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Bytes of the database copy and the attachments.
    pub size_bytes: u64,
    /// Every file the manifest lists is present with its recorded size (contents were
    /// checked against their SHA-256 when written; `roost restore` checks them again).
    pub verified: bool,
    pub schema_version: u32,
}

/// `GET /api/v1/admin/backups`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BackupList {
    /// Newest first.
    pub backups: Vec<BackupView>,
    /// The backup started from this API: running, or how the last one ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<BackupRun>,
}

/// `GET /api/v1/admin/backups` (admin).
#[utoipa::path(
    get,
    path = "/api/v1/admin/backups",
    operation_id = "listBackups",
    summary = "The complete backups in the backup folder, and the running one (admins)",
    tag = "admin",
    responses(
        (status = 200, description = "Backups, newest first, and the run started from this API",
         body = BackupList),
        (status = 403, description = "Not an admin (`forbidden`, `insufficient_scope`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn list_handler(
    State(app): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<BackupList>, ApiError> {
    let dir = app.config.backup_dir();
    let found = tokio::task::spawn_blocking(move || {
        backup::list(&dir).map(|found| {
            found
                .iter()
                .map(|f| BackupView {
                    name: f.name(),
                    created_at: f.manifest.created.clone(),
                    size_bytes: f.bytes(),
                    verified: f.files_intact(),
                    schema_version: f.manifest.schema_version,
                })
                .collect::<Vec<_>>()
        })
    })
    .await
    .map_err(|e| ApiError::internal("listing backups", &e))?
    .map_err(|e| ApiError::internal("listing backups", &e))?;
    Ok(Json(BackupList {
        backups: found,
        run: app.backup_runs.last(),
    }))
}

/// `POST /api/v1/admin/backups` (admin): starts a backup and answers 202 at once.
#[utoipa::path(
    post,
    path = "/api/v1/admin/backups",
    operation_id = "startBackup",
    summary = "Back up now, as `roost backup` does (admins)",
    description = "Answers 202 as soon as the backup has started; it goes on after the answer. \
        Follow it with `GET /api/v1/admin/backups` (`run`): `running`, then `succeeded` with its \
        name, or `failed` with the reason. Old backups beyond `[backup] keep` are pruned after \
        a success, as by `roost backup`.",
    tag = "admin",
    responses(
        (status = 202, description = "The backup has started", body = BackupRun),
        (status = 403, description = "Not an admin (`forbidden`, `insufficient_scope`)",
         body = crate::http::ErrorBody),
        (status = 409, description = "A backup started here is still running \
         (`backup_running`)", body = crate::http::ErrorBody),
    )
)]
pub async fn start_handler(
    State(app): State<AppState>,
    RequireAdmin(admin): RequireAdmin,
    ip: Option<Extension<ClientIp>>,
) -> Result<(StatusCode, Json<BackupRun>), ApiError> {
    let now = OffsetDateTime::now_utc();
    let started_at = crate::http::time::rfc3339(now.unix_timestamp());
    let run = app.backup_runs.begin(started_at).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "backup_running",
            "a backup is already running; wait for it to finish",
        )
    })?;
    let actor = Actor::caller(&admin, ip);
    let now_ms = app.auth.now_ms();
    let audited = {
        let actor = actor.clone();
        app.store
            .write(move |conn| {
                crate::audit::record(
                    conn,
                    &actor.event("backup.started", now_ms).target("backup"),
                )
            })
            .await
    };
    if let Err(e) = audited {
        // Nothing ran: the slot is freed so the admin can try again.
        app.backup_runs.finish(BackupRun {
            state: RunState::Failed,
            finished_at: Some(crate::http::time::rfc3339(now.unix_timestamp())),
            message: Some("the backup could not be recorded in the audit log".into()),
            ..run
        });
        return Err(e.into());
    }
    tokio::spawn(run_backup(app.clone(), run.clone(), actor, now));
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// Runs the backup on a blocking thread, records how it ended and audits it.
async fn run_backup(app: AppState, run: BackupRun, actor: Actor, now: OffsetDateTime) {
    let config = app.config.clone();
    let mut progress = UntilShutdown(app.backup_runs.shutdown.clone());
    let result = tokio::task::spawn_blocking(move || {
        backup::create(
            &Sources::for_config(&config),
            &config.backup_dir(),
            config.backup.keep,
            now,
            &mut progress,
        )
    })
    .await;
    let finished_at = Some(crate::http::time::rfc3339(
        OffsetDateTime::now_utc().unix_timestamp(),
    ));
    let (ended, event) = match result {
        Ok(Ok(report)) => {
            let name = report
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            for w in &report.warnings {
                tracing::warn!(warning = %w, "backup from the administration API");
            }
            tracing::info!(dir = %report.dir.display(), bytes = report.bytes, "backup written");
            let event = actor
                .event("backup.finished", app.auth.now_ms())
                .target("backup")
                .detail(json!({ "name": name, "bytes": report.bytes }));
            let ended = BackupRun {
                state: RunState::Succeeded,
                finished_at,
                name,
                bytes: Some(report.bytes),
                message: (!report.warnings.is_empty()).then(|| report.warnings.join("; ")),
                ..run
            };
            (ended, event)
        }
        Ok(Err(e)) => failed(&app, &actor, run, finished_at, e.to_string()),
        Err(e) => failed(
            &app,
            &actor,
            run,
            finished_at,
            format!("the backup stopped unexpectedly: {e}"),
        ),
    };
    app.backup_runs.finish(ended);
    if let Err(e) = app
        .store
        .write(move |conn| crate::audit::record(conn, &event))
        .await
    {
        tracing::warn!(error = %e, "recording the end of a backup in the audit log");
    }
}

/// The failed run and its audit event.
fn failed(
    app: &AppState,
    actor: &Actor,
    run: BackupRun,
    finished_at: Option<String>,
    message: String,
) -> (BackupRun, crate::audit::Event) {
    tracing::warn!(error = %message, "backup from the administration API failed");
    let event = actor
        .event("backup.finished", app.auth.now_ms())
        .target("backup")
        .failure()
        .detail(json!({ "error": message }));
    let ended = BackupRun {
        state: RunState::Failed,
        finished_at,
        message: Some(message),
        ..run
    };
    (ended, event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_at_a_time() {
        let runs = BackupRuns::new(CancellationToken::new());
        let run = runs.begin("t0".into()).unwrap();
        assert!(runs.begin("t1".into()).is_none());
        runs.finish(BackupRun {
            state: RunState::Failed,
            ..run
        });
        assert_eq!(runs.last().unwrap().state, RunState::Failed);
        assert!(runs.begin("t2".into()).is_some());
    }
}
