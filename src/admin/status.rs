//! `GET /api/v1/admin/status`: the server's status for admins on the HTTPS listener, the same
//! report as the loopback `/status` (`ops::status::report`), never with the setup code.

use crate::auth::RequireAdmin;
use crate::http::Json;
use crate::ops::status::{self, StatusReport};

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
pub async fn get(inputs: status::Inputs, _admin: RequireAdmin) -> Json<StatusReport> {
    Json(status::report(&inputs).await)
}
