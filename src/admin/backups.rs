//! `GET`/`POST /api/v1/admin/backups`: the complete backups in the backup folder, and a backup
//! started from the browser.
//!
//! A backup started here is the same `ops::backup::create` that `roost backup` and its timer
//! run, with the same folder and `keep`. It runs after the request has been answered 202, one at
//! a time (`ops::backup_runs::BackupRuns`); the client follows it through `GET
//! /api/v1/admin/backups`. On the daemon's shutdown signal it stops at its next file and
//! removes its partial folder. Starting and finishing are audited.

use std::sync::Arc;

use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::audit::{self, Event};
use crate::auth::users::Actor;
use crate::auth::{AuthState, CallerIp, RequireAdmin};
use crate::config::Config;
use crate::http::{ApiError, Json};
use crate::ops::backup;
use crate::ops::backup_runs::{BackupRun, BackupRuns, RunState};
use crate::store::Store;

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
pub async fn list(
    State(config): State<Arc<Config>>,
    State(runs): State<Arc<BackupRuns>>,
    _admin: RequireAdmin,
) -> Result<Json<BackupList>, ApiError> {
    let dir = config.backup_dir();
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
        run: runs.last(),
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
pub async fn start(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    State(config): State<Arc<Config>>,
    State(runs): State<Arc<BackupRuns>>,
    RequireAdmin(admin): RequireAdmin,
    ip: CallerIp,
) -> Result<(StatusCode, Json<BackupRun>), ApiError> {
    let now = OffsetDateTime::now_utc();
    let started_at = crate::http::time::rfc3339(now.unix_timestamp());
    let run = runs.begin(started_at).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "backup_running",
            "a backup is already running; wait for it to finish",
        )
    })?;
    let actor = Actor::caller(&admin, ip);
    let now_ms = auth.now_ms();
    let audited = {
        let actor = actor.clone();
        store
            .write(move |conn| {
                audit::record(
                    conn,
                    &actor.event("backup.started", now_ms).target("backup"),
                )
            })
            .await
    };
    if let Err(e) = audited {
        // Nothing ran: the slot is freed so the admin can try again.
        runs.finish(BackupRun {
            state: RunState::Failed,
            finished_at: Some(crate::http::time::rfc3339(now.unix_timestamp())),
            message: Some("the backup could not be recorded in the audit log".into()),
            ..run
        });
        return Err(e.into());
    }
    tokio::spawn(run_backup(
        store,
        auth,
        config,
        runs,
        run.clone(),
        actor,
        now,
    ));
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// Runs the backup, then audits how it ended.
async fn run_backup(
    store: Store,
    auth: Arc<AuthState>,
    config: Arc<Config>,
    runs: Arc<BackupRuns>,
    run: BackupRun,
    actor: Actor,
    now: OffsetDateTime,
) {
    let ended = runs.complete(&config, run, now).await;
    let event = finished_event(&actor, &ended, auth.now_ms());
    if let Err(e) = store.write(move |conn| audit::record(conn, &event)).await {
        tracing::warn!(error = %e, "recording the end of a backup in the audit log");
    }
}

/// The audit event of a run that ended: its name and size, or why it failed.
fn finished_event(actor: &Actor, ended: &BackupRun, now_ms: i64) -> Event {
    let event = actor.event("backup.finished", now_ms).target("backup");
    match ended.state {
        RunState::Succeeded => event.detail(json!({ "name": ended.name, "bytes": ended.bytes })),
        RunState::Failed | RunState::Running => {
            event.failure().detail(json!({ "error": ended.message }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Outcome;

    fn ended(state: RunState, message: Option<&str>) -> BackupRun {
        BackupRun {
            state,
            started_at: "2026-01-02T03:04:05Z".into(),
            finished_at: Some("2026-01-02T03:04:09Z".into()),
            name: (state == RunState::Succeeded).then(|| "roost-20260102T030405Z".into()),
            bytes: (state == RunState::Succeeded).then_some(4096),
            message: message.map(str::to_owned),
        }
    }

    /// The audit log says which backup was written and how big it is, or why none was; a
    /// warning after a written backup (pruning) does not make it a failure.
    #[test]
    fn a_finished_run_is_audited_with_its_name_or_its_reason() {
        let actor = Actor::cli();
        let written = finished_event(
            &actor,
            &ended(RunState::Succeeded, Some("pruning: permission denied")),
            7,
        );
        assert_eq!(written.kind, "backup.finished");
        assert_eq!(written.outcome, Outcome::Success);
        assert_eq!(written.at_ms, 7);
        assert_eq!(
            written.detail,
            json!({ "name": "roost-20260102T030405Z", "bytes": 4096 })
        );

        let refused = finished_event(&actor, &ended(RunState::Failed, Some("disk full")), 8);
        assert_eq!(refused.outcome, Outcome::Failure);
        assert_eq!(refused.detail, json!({ "error": "disk full" }));
    }
}
