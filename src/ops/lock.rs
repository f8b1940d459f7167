//! The data-dir lock: `<data_dir>/roost.lock`, held with `flock(2)` by `roost serve` for its
//! whole life and by `roost restore` while it swaps files.
//!
//! It keeps two daemons off one data dir and keeps `restore` from replacing a database under
//! a running daemon. The kernel drops the lock when the holder exits, however it exits, so a
//! crash never leaves a stale lock behind. The file itself is never deleted (deleting a lock
//! file while another process waits on it would let two holders in). This module only locks;
//! it does not decide what the holder may do.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The lock file's name inside the data dir.
pub const LOCK_FILE: &str = "roost.lock";

/// How long [`DataDirLock::acquire`] retries a held lock. A `doctor` or `status` probe holds
/// it for microseconds; a daemon or a restore holds it for good, and then we give up.
const ACQUIRE_PATIENCE: Duration = Duration::from_secs(1);
const RETRY_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another roost process is using the data dir {dir} (a running daemon, or `roost restore`); \
         stop it first (systemctl stop roost)"
    )]
    Held { dir: PathBuf },
    #[error("cannot open the lock file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: Errno },
}

/// An exclusive hold on a data dir; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _flock: Flock<File>,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock on `data_dir` (which must exist), creating the lock file if needed.
    /// Fails with [`LockError::Held`] if another process keeps it for longer than a probe.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| LockError::Open {
                path: path.clone(),
                source,
            })?;
        let deadline = std::time::Instant::now() + ACQUIRE_PATIENCE;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(flock) => {
                    return Ok(DataDirLock {
                        _flock: flock,
                        path,
                    })
                }
                Err((f, Errno::EWOULDBLOCK)) if std::time::Instant::now() < deadline => {
                    file = f;
                    std::thread::sleep(RETRY_EVERY);
                }
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(LockError::Held {
                        dir: data_dir.to_path_buf(),
                    })
                }
                Err((_, source)) => return Err(LockError::Lock { path, source }),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether some process holds the lock on `data_dir` right now, without creating anything:
/// `Ok(false)` when the lock file does not exist (no daemon has ever run there).
///
/// It briefly takes a shared lock to find out; [`DataDirLock::acquire`] waits out such probes.
pub fn is_held(data_dir: &Path) -> std::io::Result<bool> {
    let file = match File::open(data_dir.join(LOCK_FILE)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_probe) => Ok(false),
        Err((_, Errno::EWOULDBLOCK)) => Ok(true),
        Err((_, e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_held(dir.path()).unwrap());
        assert!(
            !dir.path().join(LOCK_FILE).exists(),
            "probing creates nothing"
        );

        let first = DataDirLock::acquire(dir.path()).unwrap();
        assert!(is_held(dir.path()).unwrap());
        let second = DataDirLock::acquire(dir.path());
        assert!(matches!(second, Err(LockError::Held { .. })), "{second:?}");
        drop(first);

        assert!(!is_held(dir.path()).unwrap());
        let again = DataDirLock::acquire(dir.path()).unwrap();
        assert_eq!(again.path(), dir.path().join(LOCK_FILE));
    }
}
