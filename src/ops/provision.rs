//! First-run provisioning shared by `roost init` and `roost serve`: the data dir, generated
//! secrets (the access tokens' signing key, the key webhook secrets are sealed with, LiveKit's
//! API key pair, see `livekit::keys`), the local CA and server certificate.
//!
//! Idempotent and conservative: an existing key, certificate or secret is never overwritten
//! (only an expiring or mismatched *server* certificate is re-issued by the CA). Reports what
//! it did so `init` can print it.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::edge::local_ca::{self, CaOutcome, ServerNames};
use crate::secret_file;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read or write secret {path}: {source}")]
    Secret {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    LiveKitKeys(#[from] crate::livekit::keys::KeyError),
    #[error(transparent)]
    Tls(#[from] crate::edge::tls::TlsError),
}

/// What provisioning found or made.
#[derive(Debug)]
pub struct Provisioned {
    pub created: Vec<PathBuf>,
    /// `None` when the operator supplies certificates (`tls.cert_file`).
    pub ca: Option<CaOutcome>,
}

pub fn provision(config: &Config) -> Result<Provisioned, ProvisionError> {
    let mut created = Vec::new();
    for (dir, mode) in [
        (config.data_dir().to_path_buf(), 0o750),
        (config.secrets_dir(), 0o700),
        (config.backups_dir(), 0o700),
    ] {
        if !dir.exists() {
            DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(&dir)
                .map_err(|source| ProvisionError::Create {
                    path: dir.clone(),
                    source,
                })?;
            created.push(dir);
        }
    }
    // The access tokens' signing key, and the key webhook secrets are sealed with.
    for key in [
        crate::auth::token::key_path(config),
        config.webhook_key_path(),
    ] {
        if write_new_secret(&key)? {
            created.push(key);
        }
    }
    created.extend(crate::livekit::keys::provision(config)?);
    let ca = if config.local_ca_mode() {
        Some(ensure_certificates(config)?)
    } else {
        None
    };
    Ok(Provisioned { created, ca })
}

/// The names the server certificate covers: hostname, hostname.local, localhost, the
/// machine's IPs and any configured allowed host.
pub fn server_names(config: &Config) -> ServerNames {
    let mut extra: Vec<String> = config.server.allowed_hosts.clone();
    if let Some(rest) = config.server.public_url.strip_prefix("https://") {
        if let Ok(a) = rest.trim_end_matches('/').parse::<http::uri::Authority>() {
            extra.push(a.host().to_owned());
        }
    }
    extra.retain(|h| h.parse::<std::net::IpAddr>().is_err());
    ServerNames::for_host(&config.hostname(), &extra)
}

/// Makes sure the local CA and a current server certificate exist (local CA mode only).
pub fn ensure_certificates(config: &Config) -> Result<CaOutcome, ProvisionError> {
    let renew_before = Duration::from_secs(u64::from(config.tls.renew_before_days) * 86_400);
    Ok(local_ca::ensure(
        &config.tls_dir(),
        &server_names(config),
        renew_before,
        time::OffsetDateTime::now_utc(),
    )?)
}

/// Writes 32 random bytes (base64) to `path` with mode 0600 unless it exists. True if written.
/// A crash while writing leaves no file (see [`secret_file`]), so the next start makes one.
fn write_new_secret(path: &Path) -> Result<bool, ProvisionError> {
    use base64::Engine;
    let err = |source| ProvisionError::Secret {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| err(std::io::Error::other("the system random generator failed")))?;
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    // Create-only: never replaces an existing secret, even if two inits race.
    secret_file::create(path, text.as_bytes()).map_err(err)
}
