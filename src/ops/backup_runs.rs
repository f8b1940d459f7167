//! The backup started from the administration API (`admin::backups`): at most one at a time,
//! remembered until the next one so the browser can follow it and `/status` can report it.
//!
//! A run is the same `ops::backup::create` that `roost backup` and its timer run, with the same
//! folder and `keep`. It runs on a blocking thread ([`BackupRuns::complete`]), after the request
//! that started it has been answered (a backup of many attachments takes far longer than a
//! request may). On the daemon's shutdown signal it stops at its next file and removes its
//! partial folder. This module knows nothing of HTTP or of the audit log: the admin API that
//! starts a run answers and audits it.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::ops::backup::{self, Progress, Sources};

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
    pub fn begin(&self, started_at: String) -> Option<BackupRun> {
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

    /// Records how `run` ended, which frees the slot for the next one.
    pub fn finish(&self, run: BackupRun) {
        *self.lock() = Some(run);
    }

    /// Writes the backup `run` (from [`begin`](Self::begin)) stands for on a blocking thread,
    /// with `now` as its time, records how it ended and returns that.
    pub async fn complete(
        &self,
        config: &Config,
        run: BackupRun,
        now: OffsetDateTime,
    ) -> BackupRun {
        let mut progress = UntilShutdown(self.shutdown.clone());
        let (sources, dir, keep) = (
            Sources::for_config(config),
            config.backup_dir(),
            config.backup.keep,
        );
        let result = tokio::task::spawn_blocking(move || {
            backup::create(&sources, &dir, keep, now, &mut progress)
        })
        .await;
        let finished_at = Some(crate::http::time::rfc3339(
            OffsetDateTime::now_utc().unix_timestamp(),
        ));
        let ended = match result {
            Ok(Ok(report)) => {
                let name = report
                    .dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                for w in &report.warnings {
                    tracing::warn!(warning = %w, "backup from the administration API");
                }
                tracing::info!(dir = %report.dir.display(), bytes = report.bytes, "backup written");
                BackupRun {
                    state: RunState::Succeeded,
                    finished_at,
                    name,
                    bytes: Some(report.bytes),
                    message: (!report.warnings.is_empty()).then(|| report.warnings.join("; ")),
                    ..run
                }
            }
            Ok(Err(e)) => failed(run, finished_at, e.to_string()),
            Err(e) => failed(
                run,
                finished_at,
                format!("the backup stopped unexpectedly: {e}"),
            ),
        };
        self.finish(ended.clone());
        ended
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<BackupRun>> {
        // The guarded value is replaced whole, never left half-written: a panic elsewhere
        // while holding the lock cannot leave it inconsistent.
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The failed run.
fn failed(run: BackupRun, finished_at: Option<String>, message: String) -> BackupRun {
    tracing::warn!(error = %message, "backup from the administration API failed");
    BackupRun {
        state: RunState::Failed,
        finished_at,
        message: Some(message),
        ..run
    }
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
