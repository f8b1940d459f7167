//! The administration API that spans capabilities: what an admin does that belongs to no
//! single capability module, or that changes several of them at once.
//!
//! - [`users`]: `PATCH /api/v1/users/{id}`. The account change is `auth`'s; an account made a
//!   guest also leaves the rooms nobody added it to and is a plain member of the others
//!   (`chat::rooms`). Both happen in one transaction through `chat::commit_as`, so `auth`
//!   knows nothing of rooms.
//! - [`audit_log`]: `GET /api/v1/audit`, the API's view of `audit::list`.
//! - [`status`]: `GET /api/v1/admin/status`, the loopback `/status` report (`ops::status`).
//! - [`backups`]: `GET`/`POST /api/v1/admin/backups`: the backup folder, and a backup started
//!   from the browser (`ops::backup_runs`).
//!
//! Every handler requires an admin (`auth::RequireAdmin`: the admin role and, for an API key,
//! the `admin` scope), and every change is audited. This module keeps no state of its own and
//! sits above the capabilities it calls: none of them uses it.

pub mod audit_log;
pub mod backups;
pub mod status;
pub mod users;

use std::sync::Arc;

use crate::documented;
use axum::extract::{FromRef, FromRequestParts};

use crate::auth::AuthState;
use crate::chat::EventSink;
use crate::config::Config;
use crate::http::Routes;
use crate::ops::backup_runs::BackupRuns;
use crate::store::Store;

/// The administration API's routes on the HTTPS surface.
pub fn routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    Arc<Config>: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
    EventSink: FromRef<S>,
    Arc<BackupRuns>: FromRef<S>,
    crate::ops::status::Inputs: FromRequestParts<S>,
{
    Routes::new()
        .api(documented!(users::update))
        .api(documented!(audit_log::list))
        .api(documented!(status::get))
        .api(documented!(backups::list, backups::start))
}
