//! `roost restore DIR [--dry-run]`: verify a backup completely, then put it in place of the
//! current data, keeping what it replaces for rollback.
//!
//! Order matters, and is the whole point of this module:
//! 1. [`verify`] reads every file of the backup against `SHA256SUMS` and the manifest's sizes,
//!    refuses unlisted, missing, truncated or altered files and unsafe paths, and refuses a
//!    schema newer than this binary knows. Nothing outside the backup is touched until this
//!    passes, so a tampered or truncated backup changes nothing.
//! 2. The data-dir lock ([`crate::ops::lock`]) is taken, so a running daemon makes restore
//!    refuse (and a restore keeps a daemon from starting).
//! 3. The backup is staged into `<data_dir>/.restore-tmp` (same file system, so the final
//!    step is renames), each copy hash-checked again and the database checked by SQLite.
//! 4. The current database (with its `-wal`/`-shm`) and attachment store are renamed into
//!    `<data_dir>/replaced-<UTC time>/`, the staged ones renamed in, and the way back printed.
//!    If a rename fails, the ones already done are undone.
//!
//! `--dry-run` does 1, then copies the database into a temporary folder and runs SQLite's
//! `integrity_check` and row counts there; it touches nothing and needs no lock.
//! Secrets, TLS material and the configuration are not part of a backup and are left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

use time::OffsetDateTime;

use crate::config::Config;
use crate::ops::backup::{self, Manifest, Progress, ATTACHMENTS, DB_FILE, MANIFEST, SUMS};
use crate::ops::checksum;
use crate::ops::lock::{DataDirLock, LockError};
use crate::store::{inspect, migrations, StoreError};

/// Where a restore stages its copies inside the data dir.
pub const STAGING: &str = ".restore-tmp";
/// Replaced data goes to `<data_dir>/replaced-<stamp>/`.
pub const REPLACED_PREFIX: &str = "replaced-";
/// Largest `SHA256SUMS` or `manifest.json` read into memory; a real one is a few hundred
/// bytes per attachment, so this allows for hundreds of thousands of files.
const MAX_INDEX_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} is not a backup folder")]
    NotABackup(PathBuf),
    #[error("{path}: {reason}")]
    Refused { path: PathBuf, reason: String },
    #[error(
        "the backup has database schema version {found}, newer than this roost knows ({known}); \
         install the roost version that made it ({made_by}) or newer"
    )]
    SchemaTooNew {
        found: u32,
        known: u32,
        made_by: String,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("checking the database copy: {0}")]
    Database(StoreError),
    #[error("the database copy {path} is damaged: {problems}")]
    Damaged { path: PathBuf, problems: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError + '_ {
    move |error| RestoreError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn refuse(path: PathBuf, reason: impl Into<String>) -> RestoreError {
    RestoreError::Refused {
        path,
        reason: reason.into(),
    }
}

/// A backup whose every file matched its checksum and size when it was verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Relative path → SHA-256 hex, for every file but `SHA256SUMS` itself.
    pub sums: BTreeMap<String, String>,
}

impl Verified {
    /// Attachment files, as paths relative to the backup's `attachments/`.
    fn attachments(&self) -> impl Iterator<Item = (&str, &str)> {
        self.sums.iter().filter_map(|(path, hex)| {
            path.strip_prefix(ATTACHMENTS)
                .and_then(|p| p.strip_prefix('/'))
                .map(|rel| (rel, hex.as_str()))
        })
    }
}

/// Checks everything about the backup in `dir` that can be checked without restoring it.
/// Reads only; every refusal names the file at fault.
pub fn verify(dir: &Path, progress: &mut dyn Progress) -> Result<Verified, RestoreError> {
    if !dir.join(SUMS).is_file() || !dir.join(MANIFEST).is_file() {
        return Err(RestoreError::NotABackup(dir.to_path_buf()));
    }
    let sums = read_sums(dir)?;

    // The manifest first: it says what sizes to expect and which schema this is.
    let manifest_path = dir.join(MANIFEST);
    let manifest_hex = sums
        .get(MANIFEST)
        .ok_or_else(|| refuse(dir.join(SUMS), "does not list manifest.json"))?;
    check_file(&manifest_path, manifest_hex, None, &mut |_| {})?;
    let manifest: Manifest = serde_json::from_str(&read_small(&manifest_path)?)
        .map_err(|e| refuse(manifest_path.clone(), format!("not a Roost manifest: {e}")))?;
    if manifest.format != backup::FORMAT {
        return Err(refuse(
            manifest_path,
            format!(
                "backup format {} is not one this roost reads ({}); it was made by roost {}",
                manifest.format,
                backup::FORMAT,
                manifest.roost_version
            ),
        ));
    }
    let known = migrations::MIGRATIONS.last().map_or(0, |m| m.version);
    if manifest.schema_version > known {
        return Err(RestoreError::SchemaTooNew {
            found: manifest.schema_version,
            known,
            made_by: manifest.roost_version.clone(),
        });
    }

    // The manifest and the checksum file must describe the same set of files.
    let listed: BTreeMap<&str, u64> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.size))
        .collect();
    for path in sums.keys().filter(|p| p.as_str() != MANIFEST) {
        if !listed.contains_key(path.as_str()) {
            return Err(refuse(
                dir.join(path),
                "is in SHA256SUMS but not in the manifest",
            ));
        }
    }
    for path in listed.keys() {
        if !sums.contains_key(*path) {
            return Err(refuse(
                dir.join(path),
                "is in the manifest but not in SHA256SUMS",
            ));
        }
    }
    if !listed.contains_key(DB_FILE) {
        return Err(refuse(dir.join(DB_FILE), "the backup has no database"));
    }

    // Nothing on disk that the checksums do not cover (an added file is tampering too).
    for found in files_on_disk(dir)? {
        if found != SUMS && !sums.contains_key(&found) {
            return Err(refuse(dir.join(&found), "is not listed in SHA256SUMS"));
        }
    }

    // Every listed file: present, the right size, the right hash.
    let total: u64 = listed.values().sum();
    progress.begin("verifying", total);
    for (path, size) in &listed {
        check_file(&dir.join(path), &sums[*path], Some(*size), &mut |n| {
            progress.advance(n)
        })?;
    }
    progress.finish();
    Ok(Verified {
        dir: dir.to_path_buf(),
        manifest,
        sums,
    })
}

/// Parses `SHA256SUMS`, refusing malformed lines, duplicates and paths that could point
/// outside the backup or at something a backup never holds.
fn read_sums(dir: &Path) -> Result<BTreeMap<String, String>, RestoreError> {
    let path = dir.join(SUMS);
    let text = read_small(&path)?;
    let mut sums = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let (hex, file) = checksum::parse_sums_line(line)
            .map_err(|why| refuse(path.clone(), format!("line {}: {why}", n + 1)))?;
        if !safe_relative(&file) {
            return Err(refuse(
                path.clone(),
                format!(
                    "line {}: {file:?} is not a file a Roost backup holds",
                    n + 1
                ),
            ));
        }
        if sums.insert(file.clone(), hex).is_some() {
            return Err(refuse(
                path.clone(),
                format!("line {}: {file:?} is listed twice", n + 1),
            ));
        }
    }
    Ok(sums)
}

/// `roost.sqlite3`, `manifest.json` or `attachments/<relative path>`: nothing absolute, no
/// `..`, no `.` or empty components.
fn safe_relative(path: &str) -> bool {
    let normal = Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        && !path.split('/').any(str::is_empty);
    normal
        && (path == DB_FILE
            || path == MANIFEST
            || path
                .strip_prefix(ATTACHMENTS)
                .is_some_and(|rest| rest.starts_with('/')))
}

fn read_small(path: &Path) -> Result<String, RestoreError> {
    let len = std::fs::metadata(path).map_err(io(path))?.len();
    if len > MAX_INDEX_BYTES {
        return Err(refuse(
            path.to_path_buf(),
            "is too large to be a backup index",
        ));
    }
    std::fs::read_to_string(path)
        .map_err(|e| refuse(path.to_path_buf(), format!("unreadable: {e}")))
}

/// Hashes `path` and compares it (and its size, if given) with what the backup promised.
fn check_file(
    path: &Path,
    hex: &str,
    size: Option<u64>,
    on_chunk: &mut dyn FnMut(u64),
) -> Result<(), RestoreError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse(path.to_path_buf(), "is missing from the backup"))
        }
        Err(e) => return Err(io(path)(e)),
    };
    if !meta.is_file() {
        return Err(refuse(path.to_path_buf(), "is not a regular file"));
    }
    if let Some(expected) = size {
        if meta.len() != expected {
            return Err(refuse(
                path.to_path_buf(),
                format!(
                    "is {} bytes, the manifest says {expected}: the file is truncated or altered",
                    meta.len()
                ),
            ));
        }
    }
    let digest = checksum::hash_file(path, on_chunk).map_err(io(path))?;
    if digest.hex != hex {
        return Err(refuse(
            path.to_path_buf(),
            "does not match its SHA-256 in SHA256SUMS: the file was altered or damaged",
        ));
    }
    Ok(())
}

/// Every non-directory under `dir`, relative and `/`-separated (symlinks included, so they
/// are refused as unlisted or as not regular).
fn files_on_disk(dir: &Path) -> Result<BTreeSet<String>, RestoreError> {
    let mut out = BTreeSet::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&path).map_err(io(&path))? {
            let entry = entry.map_err(io(&path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if entry.file_type().map_err(io(&path))?.is_dir() {
                stack.push((entry.path(), rel));
            } else {
                out.insert(rel);
            }
        }
    }
    Ok(out)
}

/// What a dry run found.
#[derive(Debug)]
pub struct DryRunReport {
    pub schema_version: u32,
    pub row_counts: BTreeMap<String, u64>,
    pub attachments: usize,
}

/// Copies the verified database into a private temporary folder and checks it there with
/// `PRAGMA integrity_check` and row counts (which must match the manifest). Touches nothing
/// else; the temporary folder is removed.
pub fn dry_run(v: &Verified, progress: &mut dyn Progress) -> Result<DryRunReport, RestoreError> {
    let scratch = Scratch::new()?;
    let db = scratch.0.join(DB_FILE);
    copy_checked(v, DB_FILE, &db, progress)?;
    let check = check_database(&db, v)?;
    Ok(DryRunReport {
        schema_version: check.schema_version,
        row_counts: check.row_counts,
        attachments: v.attachments().count(),
    })
}

/// A private scratch folder (under `$TMPDIR`, or the staging folder), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, RestoreError> {
        let path = std::env::temp_dir().join(format!(
            "roost-restore-check-{}-{}",
            std::process::id(),
            backup::stamp(OffsetDateTime::now_utc())
        ));
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(io(&path))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies one verified file out of the backup, checking the copy's hash against the sums
/// again (the backup could change between verification and copy).
fn copy_checked(
    v: &Verified,
    rel: &str,
    dest: &Path,
    progress: &mut dyn Progress,
) -> Result<(), RestoreError> {
    let src = v.dir.join(rel);
    let digest =
        checksum::copy_hashed(&src, dest, 0o640, &mut |n| progress.advance(n)).map_err(io(&src))?;
    if digest.hex != v.sums[rel] {
        return Err(refuse(src, "changed while it was being restored"));
    }
    Ok(())
}

fn check_database(db: &Path, v: &Verified) -> Result<inspect::FileCheck, RestoreError> {
    let check = inspect::check_file(db, true).map_err(RestoreError::Database)?;
    if !check.problems.is_empty() {
        return Err(RestoreError::Damaged {
            path: v.dir.join(DB_FILE),
            problems: check.problems.join("; "),
        });
    }
    if check.schema_version != v.manifest.schema_version || check.row_counts != v.manifest.tables {
        return Err(RestoreError::Damaged {
            path: v.dir.join(DB_FILE),
            problems: "its schema version or row counts differ from the manifest".into(),
        });
    }
    Ok(check)
}

/// What a restore did.
#[derive(Debug)]
pub struct RestoreReport {
    /// Where the replaced data went; `None` when there was nothing to replace.
    pub replaced: Option<PathBuf>,
    /// Names moved into `replaced` (relative to the data dir).
    pub moved_aside: Vec<String>,
    pub attachments: usize,
}

/// Restores a verified backup into `data_dir` (database file name `db_name`). The caller
/// holds the data-dir lock.
pub fn restore(
    v: &Verified,
    data_dir: &Path,
    db_name: &str,
    _lock: &DataDirLock,
    now: OffsetDateTime,
    progress: &mut dyn Progress,
) -> Result<RestoreReport, RestoreError> {
    // Stage: a stale staging folder can only be a crashed restore's (we hold the lock).
    let staging = data_dir.join(STAGING);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(io(&staging))?;
    // Until the swap, a failure leaves the data dir as it was: the staging folder goes.
    let staging_guard = Scratch(staging.clone());
    let total: u64 = v.manifest.files.iter().map(|f| f.size).sum();
    progress.begin("restoring", total);
    copy_checked(v, DB_FILE, &staging.join(db_name), progress)?;
    let staged_attachments = staging.join(ATTACHMENTS);
    make_dir(&staged_attachments)?;
    let mut count = 0;
    for (rel, _) in v.attachments() {
        let dest = staged_attachments.join(rel);
        if let Some(parent) = dest.parent() {
            make_dir(parent)?;
        }
        copy_checked(v, &format!("{ATTACHMENTS}/{rel}"), &dest, progress)?;
        count += 1;
    }
    progress.finish();
    check_database(&staging.join(db_name), v)?;
    give_to_data_dir_owner(data_dir, &staging)?;
    sync_dirs(&staging)?;

    // Swap: current data aside, staged data in; undo on failure.
    let aside_names = [
        db_name.to_owned(),
        format!("{db_name}-wal"),
        format!("{db_name}-shm"),
        format!("{db_name}-journal"),
        ATTACHMENTS.to_owned(),
    ];
    let present: Vec<&String> = aside_names
        .iter()
        .filter(|n| std::fs::symlink_metadata(data_dir.join(n)).is_ok())
        .collect();
    let replaced = if present.is_empty() {
        None
    } else {
        Some(reserve_replaced(data_dir, now)?)
    };
    let mut done: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut plan: Vec<(PathBuf, PathBuf)> = Vec::new();
    if let Some(r) = &replaced {
        for name in &present {
            plan.push((data_dir.join(name), r.join(name)));
        }
    }
    plan.push((staging.join(db_name), data_dir.join(db_name)));
    plan.push((staged_attachments, data_dir.join(ATTACHMENTS)));
    for (from, to) in plan {
        if let Err(e) = std::fs::rename(&from, &to) {
            for (back_from, back_to) in done.iter().rev() {
                let _ = std::fs::rename(back_to, back_from);
            }
            return Err(io(&from)(e));
        }
        done.push((from, to));
    }
    drop(staging_guard);
    // The swap is done and cannot be reported as "nothing changed"; a failed directory sync
    // only means the renames might not survive a power cut in the next seconds.
    if let Err(e) = checksum::sync_dir(data_dir) {
        tracing::warn!(error = %e, "syncing the data dir after the restore");
    }
    if let Some(r) = &replaced {
        let _ = std::fs::write(
            r.join("README.txt"),
            rollback_text(data_dir, db_name, r, &present),
        );
    }
    Ok(RestoreReport {
        replaced,
        moved_aside: present.into_iter().cloned().collect(),
        attachments: count,
    })
}

fn make_dir(dir: &Path) -> Result<(), RestoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .map_err(io(dir))
}

fn reserve_replaced(data_dir: &Path, now: OffsetDateTime) -> Result<PathBuf, RestoreError> {
    let stamp = backup::stamp(now);
    for n in 0..100 {
        let path = match n {
            0 => data_dir.join(format!("{REPLACED_PREFIX}{stamp}")),
            n => data_dir.join(format!("{REPLACED_PREFIX}{stamp}-{n}")),
        };
        match DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Err(io(data_dir)(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "too many replaced-* folders for this second",
    )))
}

/// When run as root (`sudo roost restore`), hands the restored files to the data dir's owner
/// so the daemon (user roost) can open them. As any other user, files are already ours.
fn give_to_data_dir_owner(data_dir: &Path, staging: &Path) -> Result<(), RestoreError> {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let meta = std::fs::metadata(data_dir).map_err(io(data_dir))?;
    let (uid, gid) = (
        Some(nix::unistd::Uid::from_raw(meta.uid())),
        Some(nix::unistd::Gid::from_raw(meta.gid())),
    );
    let mut stack = vec![staging.to_path_buf()];
    while let Some(path) = stack.pop() {
        nix::unistd::chown(&path, uid, gid).map_err(|e| io(&path)(e.into()))?;
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(io(&path))? {
                stack.push(entry.map_err(io(&path))?.path());
            }
        }
    }
    Ok(())
}

fn sync_dirs(root: &Path) -> Result<(), RestoreError> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            if entry.file_type().map_err(io(&dir))?.is_dir() {
                stack.push(entry.path());
            }
        }
        checksum::sync_dir(&dir).map_err(io(&dir))?;
    }
    Ok(())
}

/// The commands that put the replaced data back.
pub fn rollback_text(data_dir: &Path, db_name: &str, replaced: &Path, moved: &[&String]) -> String {
    let d = data_dir.display();
    let names: Vec<&str> = moved.iter().map(|s| s.as_str()).collect();
    format!(
        "To roll back this restore (put the replaced data back):\n\
         \x20 systemctl stop roost\n\
         \x20 cd {d}\n\
         \x20 rm -rf {db_name} {db_name}-wal {db_name}-shm {ATTACHMENTS}\n\
         \x20 mv {} .\n\
         \x20 systemctl start roost\n",
        names
            .iter()
            .map(|n| format!("{}/{n}", replaced.display()))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// `roost restore DIR [--dry-run]`: returns the exit code.
pub fn command(config: &Config, dir: &Path, dry: bool) -> u8 {
    let mut reporter = backup::Reporter::for_stdout();
    let fail = |e: RestoreError| {
        eprintln!("roost restore: {e}");
        // Every failure before the swap leaves the data dir as it was (staging is removed),
        // and a failed swap is undone; say so, the operator's first question is "is it broken?".
        eprintln!("roost restore: nothing was changed");
        crate::exit::EXIT_FAILURE
    };
    if dry {
        let verified = match verify(dir, &mut reporter) {
            Ok(v) => v,
            Err(e) => return fail(e),
        };
        return match dry_run(&verified, &mut reporter) {
            Ok(r) => {
                reporter.finish();
                println!(
                    "dry run: backup {} is intact (made by roost {} at {})",
                    dir.display(),
                    verified.manifest.roost_version,
                    verified.manifest.created
                );
                println!(
                    "  every checksum matches; integrity_check ok; schema version {}",
                    r.schema_version
                );
                for (table, rows) in &r.row_counts {
                    println!("  {table}: {rows} rows");
                }
                println!("  attachments: {}", r.attachments);
                println!("nothing was changed; run without --dry-run to restore");
                crate::exit::EXIT_OK
            }
            Err(e) => fail(e),
        };
    }

    let data_dir = config.data_dir();
    // Refuse early (creating nothing) if the daemon runs; the lock below is what counts.
    if crate::ops::lock::is_held(data_dir).unwrap_or(false) {
        return fail(
            LockError::Held {
                dir: data_dir.to_path_buf(),
            }
            .into(),
        );
    }
    let verified = match verify(dir, &mut reporter) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    // A fresh machine (restore before `roost init`) has no data dir yet.
    if let Err(e) = DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(data_dir)
    {
        return fail(io(data_dir)(e));
    }
    let lock = match DataDirLock::acquire(data_dir) {
        Ok(l) => l,
        Err(e) => return fail(e.into()),
    };
    let db_name = config
        .db_path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| DB_FILE.to_owned());
    let now = OffsetDateTime::now_utc();
    match restore(&verified, data_dir, &db_name, &lock, now, &mut reporter) {
        Ok(r) => {
            reporter.finish();
            let rows: u64 = verified.manifest.tables.values().sum();
            println!(
                "restored {} (made {} by roost {}; schema version {}, {rows} rows, {} attachments) into {}",
                dir.display(),
                verified.manifest.created,
                verified.manifest.roost_version,
                verified.manifest.schema_version,
                r.attachments,
                data_dir.display()
            );
            match &r.replaced {
                Some(replaced) => {
                    let moved: Vec<&String> = r.moved_aside.iter().collect();
                    println!("the data it replaced is in {}", replaced.display());
                    print!("{}", rollback_text(data_dir, &db_name, replaced, &moved));
                }
                None => println!("there was no data to replace"),
            }
            println!("start the daemon with: systemctl start roost");
            crate::exit::EXIT_OK
        }
        Err(e) => fail(e),
    }
}

#[cfg(test)]
#[path = "restore_tests.rs"]
mod tests;
