//! The local certificate authority for LAN use: `roost init` (and `serve` when files are
//! missing) creates a CA once, and issues from it the server certificate that the HTTPS
//! listener presents at `https://<hostname>.local`. Users import `ca.crt` on their devices.
//!
//! Invariants: the CA key and certificate are never overwritten or regenerated here — devices
//! trust them, so replacing them silently would break every client at once. The server
//! certificate is ours to reissue whenever it is missing, expiring, not covering the current
//! names, or not issued by the current CA.
//!
//! This module is file and crypto code only: it must not know about HTTP, the configuration
//! struct or the wall clock (`now` is passed in, so tests can move time).
//!
//! The parts: `authority` (the CA itself), `server` (the server certificate and when to
//! reissue it), `names` (the names it must cover), `files` (where the files live and how they
//! are written), and `ensure` here, which puts them together.

use std::path::Path;

use time::{OffsetDateTime, UtcOffset};
use x509_parser::certificate::X509Certificate;

use super::tls::{self, TlsError};

mod authority;
mod files;
mod names;
mod server;
#[cfg(test)]
mod tests;

pub use authority::CA_VALIDITY;
pub use files::LocalCaFiles;
pub use names::{machine_ips, ServerNames};

use authority::load_or_create_ca;
use files::create_private_dir;
use server::{inspect_server, issue_server, ServerState};

/// A Pi has no real-time clock: until NTP syncs it may run behind, so certificates start a
/// little in the past rather than being "not yet valid" right after a reboot.
const CLOCK_SKEW_ALLOWANCE: time::Duration = time::Duration::hours(1);

/// What `ensure` did to one certificate, for `roost init` to print and `serve` to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    Unchanged,
    Created,
    Renewed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaOutcome {
    pub ca: Issued,
    pub server: Issued,
    /// "AA:BB:.." over the CA certificate's DER, for users to compare on their devices.
    pub ca_fingerprint_sha256: String,
    pub server_not_after: OffsetDateTime,
}

/// Makes sure `tls_dir` holds a CA and a current server certificate for `names`: creates
/// what is missing and reissues the server certificate when it expires within
/// `renew_before` of `now`, does not cover `names`, or was not issued by the current CA.
///
/// A `renew_before` longer than the server validity (397 days) reissues on every call.
pub fn ensure(
    tls_dir: &Path,
    names: &ServerNames,
    renew_before: std::time::Duration,
    now: OffsetDateTime,
) -> Result<CaOutcome, TlsError> {
    let primary = names.primary().ok_or(TlsError::NoServerNames)?;
    let now = certificate_time(now);
    create_private_dir(tls_dir)?;
    let files = LocalCaFiles::in_dir(tls_dir);

    let (ca, ca_issued) = load_or_create_ca(&files, &primary, now)?;
    let (server_issued, server_not_after) =
        match inspect_server(&files, &ca, names, renew_before, now) {
            ServerState::Current { not_after } => (Issued::Unchanged, not_after),
            ServerState::Missing => (Issued::Created, issue_server(&files, &ca, names, now)?),
            ServerState::Stale { reason } => (
                Issued::Renewed { reason },
                issue_server(&files, &ca, names, now)?,
            ),
        };

    Ok(CaOutcome {
        ca: ca_issued,
        server: server_issued,
        ca_fingerprint_sha256: tls::sha256_fingerprint(&ca.cert_der),
        server_not_after,
    })
}

/// Certificates hold whole seconds in UTC; working in that form from the start makes the
/// `server_not_after` we return equal to what a later call reads back from the file.
fn certificate_time(now: OffsetDateTime) -> OffsetDateTime {
    now.to_offset(UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 is always a valid nanosecond")
}

fn parse_certificate<'a>(der: &'a [u8]) -> Result<X509Certificate<'a>, String> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, parsed)| parsed)
        .map_err(|err| err.to_string())
}
