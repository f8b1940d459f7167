//! Writing a file that holds a secret or a key, so that no one ever sees it half-written or
//! more widely readable than it should be, and a power cut leaves the old file or the new one.
//!
//! The bytes go to a new temporary file in the target's directory (created 0600 with
//! `create_new` under a name no other writer uses), are synced, and only then take the
//! target's name: by `rename` when the file may be replaced, by a hard link when it may only
//! be created (a link fails when the name exists, so "create, never overwrite" holds even
//! against a concurrent writer). Then the directory is synced, because a new name is durable
//! only once its directory entry is. After an error the temporary file is removed; a crash
//! may leave one behind (hidden, 0600), but never a partial file under the target's name.
//!
//! Every secret file Roost writes goes through [`SecretFile::write`]; the local CA writes its
//! certificates the same way, with a wider [`mode`](SecretFile::mode).
//!
//! A leaf: nothing of Roost is imported here, so any module may use it. It never logs, and
//! its errors carry no file contents.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The mode of a file holding a secret: its owner (the daemon's user) and root only.
pub const SECRET_MODE: u32 = 0o600;

/// How many temporary names one write tries before giving up. Only a leftover of a writer
/// that crashed with the same process id takes a name, so a handful of tries always suffices;
/// the bound keeps a directory full of leftovers from looping forever.
const TEMP_NAME_TRIES: u32 = 64;

/// Numbers the temporary files of this process, so two threads writing the same target do
/// not share one (the process id in the name separates processes).
static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);

/// What a write does when the target already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replace it atomically: a reader opens either the old file or the new one.
    Replace,
    /// Keep it and fail with [`io::ErrorKind::AlreadyExists`], also when it appeared while
    /// the new file was being written: for keys and the CA, which nothing may overwrite.
    Keep,
}

/// How to write one secret file: its mode, whether an existing file is replaced, and who
/// owns it. Build one with [`replacing`](Self::replacing) or
/// [`create_only`](Self::create_only), then call [`write`](Self::write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretFile {
    mode: u32,
    existing: Existing,
    owner: Option<(u32, u32)>,
}

impl SecretFile {
    /// Mode 0600, replacing an existing file.
    pub const fn replacing() -> Self {
        SecretFile {
            mode: SECRET_MODE,
            existing: Existing::Replace,
            owner: None,
        }
    }

    /// Mode 0600, never replacing an existing file.
    pub const fn create_only() -> Self {
        SecretFile {
            mode: SECRET_MODE,
            existing: Existing::Keep,
            owner: None,
        }
    }

    /// The file's final mode, set exactly whatever the umask. The file is 0600 until its
    /// bytes are complete and only then gets this mode (a certificate beside its key: 0644).
    pub const fn mode(self, mode: u32) -> Self {
        SecretFile { mode, ..self }
    }

    /// Owner and group of the file, set before it takes its name: a file root writes for the
    /// daemon's user must never exist under its name owned by root. Changing the owner needs
    /// root; the caller decides when to ask.
    pub const fn owner(self, uid: u32, gid: u32) -> Self {
        SecretFile {
            owner: Some((uid, gid)),
            ..self
        }
    }

    /// Writes `bytes` to `path` as described in the module documentation. With
    /// [`Existing::Keep`], an existing `path` is an [`io::ErrorKind::AlreadyExists`] error and
    /// is left as it was.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let (dir, name) = split(path)?;
        let (temp, file) = create_temp(dir, name)?;
        let result = self.fill_and_commit(file, &temp, path, bytes);
        if result.is_err() {
            // Best effort: the error that matters is the one returned. After a successful
            // rename the temporary name is gone already, and removing it fails harmlessly.
            let _ = fs::remove_file(&temp);
        }
        result?;
        sync_dir(dir)
    }

    fn fill_and_commit(
        &self,
        mut file: File,
        temp: &Path,
        path: &Path,
        bytes: &[u8],
    ) -> io::Result<()> {
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
        file.write_all(bytes)?;
        // Stated exactly: the umask may have narrowed the creation mode (even below what the
        // owner needs to read the file), and a certificate must end up readable by all.
        file.set_permissions(Permissions::from_mode(self.mode))?;
        file.sync_all()?;
        drop(file);
        match self.existing {
            Existing::Replace => fs::rename(temp, path),
            Existing::Keep => {
                fs::hard_link(temp, path)?;
                fs::remove_file(temp)
            }
        }
    }
}

/// Creates `path` holding `bytes`, mode 0600, unless it exists. True if it wrote the file,
/// false if a file was there already (and is left as it was).
pub fn create(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    match SecretFile::create_only().write(path, bytes) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Replaces `path` (or creates it) with `bytes`, mode 0600.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    SecretFile::replacing().write(path, bytes)
}

/// The directory the file goes in (where its temporary file goes too) and its name.
fn split(path: &Path) -> io::Result<(&Path, &OsStr)> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

/// A new, empty 0600 file in `dir` named after the target: hidden, with this process's id
/// and a counter, so neither a concurrent `roost init` and `roost serve` nor two threads ever
/// write into the same temporary file. `create_new` never opens a file someone else made
/// (nor follows a planted symlink).
fn create_temp(dir: &Path, name: &OsStr) -> io::Result<(PathBuf, File)> {
    let mut last_error = None;
    for _ in 0..TEMP_NAME_TRIES {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(
            ".{}.{}-{n}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(SECRET_MODE)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            // A leftover of a crashed writer that had our process id: take the next number.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.expect("the loop runs at least once and only continues after an error"))
}

/// Makes the directory's entries (the new name, the removed temporary one) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_new_file_is_0600_and_nothing_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        assert!(create(&path, b"secret").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"secret");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(names_in(dir.path()), ["key"]);
    }

    #[test]
    fn replacing_swaps_the_contents_and_resets_a_loosened_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("setup-code");
        fs::write(&path, "old\n").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        replace(&path, b"new\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new\n");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(names_in(dir.path()), ["setup-code"]);
    }

    #[test]
    fn create_only_refuses_to_overwrite_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");
        fs::write(&path, "the key devices trust").unwrap();
        assert!(!create(&path, b"another key").unwrap());
        let err = SecretFile::create_only()
            .write(&path, b"another key")
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"the key devices trust");
        assert_eq!(names_in(dir.path()), ["ca.key"]);
    }

    #[test]
    fn a_failed_replace_leaves_the_target_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A rename cannot put a file over a directory that holds something: the write fails
        // after the temporary file was complete.
        let path = dir.path().join("server.key");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), "kept").unwrap();
        assert!(replace(&path, b"key").is_err());
        assert_eq!(fs::read(path.join("inside")).unwrap(), b"kept");
        assert_eq!(names_in(dir.path()), ["server.key"]);

        let missing = dir.path().join("no-such-dir").join("key");
        assert!(replace(&missing, b"key").is_err());
        assert_eq!(names_in(dir.path()), ["server.key"]);
    }

    #[test]
    fn the_owner_is_set_before_the_file_takes_its_name() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("livekit_api_secret");
        fs::write(&path, "old").unwrap();
        // A user and group nobody is: root may give a file to them, nobody else may, and then
        // the write fails after the temporary file exists.
        let stranger = u32::MAX - 1;
        let result = SecretFile::replacing()
            .owner(stranger, stranger)
            .write(&path, b"new");
        if nix::unistd::geteuid().is_root() {
            result.unwrap();
            let meta = fs::metadata(&path).unwrap();
            assert_eq!((meta.uid(), meta.gid()), (stranger, stranger));
            assert_eq!(fs::read(&path).unwrap(), b"new");
        } else {
            assert!(result.is_err());
            assert_eq!(fs::read(&path).unwrap(), b"old");
        }
        assert_eq!(names_in(dir.path()), ["livekit_api_secret"]);
    }

    #[test]
    fn a_certificate_mode_is_applied_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        SecretFile::create_only()
            .mode(0o644)
            .write(&path, b"certificate")
            .unwrap();
        assert_eq!(mode(&path), 0o644);
    }

    #[test]
    fn a_reader_sees_the_old_contents_or_the_new_never_a_mix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt_signing.key");
        let (a, b) = (vec![b'a'; 16 * 1024], vec![b'b'; 16 * 1024]);
        replace(&path, &a).unwrap();
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                for round in 0..50 {
                    replace(&path, if round % 2 == 0 { &b } else { &a }).unwrap();
                }
            });
            while !writer.is_finished() {
                let seen = fs::read(&path).unwrap();
                assert!(
                    seen == a || seen == b,
                    "a torn file of {} bytes",
                    seen.len()
                );
            }
        });
        assert_eq!(names_in(dir.path()), ["jwt_signing.key"]);
    }

    #[test]
    fn concurrent_creators_write_the_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt_signing.key");
        let written: Vec<bool> = std::thread::scope(|scope| {
            let writers: Vec<_> = (0..8u8)
                .map(|i| {
                    let path = &path;
                    scope.spawn(move || create(path, &[b'0' + i; 32]).unwrap())
                })
                .collect();
            writers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(written.iter().filter(|w| **w).count(), 1);
        let kept = fs::read(&path).unwrap();
        assert!(kept.len() == 32 && kept.iter().all(|c| *c == kept[0]));
        assert_eq!(names_in(dir.path()), ["jwt_signing.key"]);
    }

    /// The umask is one per process: the check runs in a child test process of its own, so
    /// changing it cannot touch files other tests create meanwhile.
    #[test]
    fn the_mode_holds_whatever_the_umask() {
        let Some(umask) = crate::test_child::alone(
            "secret_file::tests::the_mode_holds_whatever_the_umask",
            "ROOST_SECRET_FILE_UMASK",
            &["0", "277"],
        ) else {
            return;
        };
        let umask = u32::from_str_radix(&umask, 8).unwrap();
        let umask = nix::sys::stat::Mode::from_bits_truncate(umask);
        nix::sys::stat::umask(umask);
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("server.key"), dir.path().join("server.crt"));
        replace(&key, b"key").unwrap();
        SecretFile::replacing()
            .mode(0o644)
            .write(&cert, b"certificate")
            .unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&cert), 0o644);
    }
}
