//! The local CA's files: their names in the TLS directory, the directory itself (0700), and
//! writing them through `secret_file` (keys 0600, certificates 0644).

use std::fs::{self, DirBuilder, Permissions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::edge::tls::TlsError;
use crate::secret_file::SecretFile;

const DIR_MODE: u32 = 0o700;
/// Certificates are public; `ca.crt` is even served over plain HTTP for device import.
pub(super) const CERT_MODE: u32 = 0o644;

/// Where the local CA keeps its files inside the TLS directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCaFiles {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// Leaf followed by the CA, so clients that trust the CA get a complete chain.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl LocalCaFiles {
    pub fn in_dir(tls_dir: &Path) -> Self {
        LocalCaFiles {
            ca_cert: tls_dir.join("ca.crt"),
            ca_key: tls_dir.join("ca.key"),
            server_cert: tls_dir.join("server.crt"),
            server_key: tls_dir.join("server.key"),
        }
    }
}

pub(super) fn create_private_dir(tls_dir: &Path) -> Result<(), TlsError> {
    let unwritable = |source| TlsError::Unwritable {
        path: tls_dir.to_owned(),
        source,
    };
    if tls_dir.is_dir() {
        // An existing directory is the operator's choice; the keys inside are 0600 anyway.
        return Ok(());
    }
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(tls_dir)
        .map_err(unwritable)?;
    // The umask can only have narrowed the mode, but state it exactly.
    fs::set_permissions(tls_dir, Permissions::from_mode(DIR_MODE)).map_err(unwritable)
}

pub(super) fn exists(path: &Path) -> Result<bool, TlsError> {
    path.try_exists().map_err(|source| TlsError::Unreadable {
        path: path.to_owned(),
        source,
    })
}

/// Writes one of the CA's files through [`SecretFile`], so a reader (or a crash) never sees a
/// half-written key, and a key never exists on disk, even empty, with wider permissions.
pub(super) fn write_file(path: &Path, contents: &[u8], how: SecretFile) -> Result<(), TlsError> {
    how.write(path, contents)
        .map_err(|source| TlsError::Unwritable {
            path: path.to_owned(),
            source,
        })
}
