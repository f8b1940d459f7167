//! `roost backup`: an online, consistent, verifiable copy of everything Roost stores.
//!
//! A backup is a folder `<dir>/roost-<UTC time>/` holding `roost.sqlite3` (a snapshot taken
//! with SQLite's online backup API on a separate read connection, so the daemon keeps
//! serving), `attachments/` (a byte-for-byte copy of `<data_dir>/attachments`, each copy
//! re-read and hash-checked), `manifest.json` (versions, row counts, files and sizes) and
//! `SHA256SUMS` (`sha256sum -c SHA256SUMS` works inside the folder).
//!
//! The folder is written as `.roost-<time>.partial` and renamed into place only when complete,
//! so a crash or a full disk never leaves something that looks like a backup. The database is
//! copied before the attachments: attachments are content-addressed and written before the
//! rows that name them, so every attachment the copied rows refer to is on disk by then.
//! After success, `<data_dir>/backups/last-success.json` records the time (the daemon exports
//! it as `roost_backup_last_success_timestamp_seconds`) and `--keep` prunes old backups.
//!
//! This module never deletes anything but complete `roost-*` backups beyond `keep` (never a
//! pre-migration snapshot, a partial folder or an unknown file) and never writes to the live
//! database. Restoring is `ops::restore`.

use std::collections::BTreeMap;
use std::fs::DirBuilder;
use std::io::IsTerminal;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::config::Config;
use crate::ops::checksum::{self, Digest};
use crate::store::inspect;
use crate::store::StoreError;

/// The database's name inside a backup (and in the data dir).
pub const DB_FILE: &str = "roost.sqlite3";
/// The attachment store's folder name inside a backup (and in the data dir).
pub const ATTACHMENTS: &str = "attachments";
pub const MANIFEST: &str = "manifest.json";
pub const SUMS: &str = "SHA256SUMS";
/// The record of the last successful backup, in `Config::backups_dir()`.
pub const LAST_SUCCESS: &str = "last-success.json";
/// Backup folders are named `roost-<stamp>` (optionally `-N` when two start in one second).
pub const NAME_PREFIX: &str = "roost-";
/// The layout version written in the manifest; `restore` refuses formats it does not know.
pub const FORMAT: u32 = 1;

/// How deep the attachment store may nest folders. Roost's own layout uses two levels; a
/// deeper tree is not ours and is refused rather than walked without end.
const MAX_DEPTH: usize = 16;
/// Files and folders in a backup are private: they hold every message and password hash.
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// What `manifest.json` says about a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub roost_version: String,
    /// `PRAGMA user_version` of the copied database.
    pub schema_version: u32,
    /// RFC 3339, UTC.
    pub created: String,
    pub created_unix: i64,
    /// Rows per table in the copied database.
    pub tables: BTreeMap<String, u64>,
    /// Every file of the backup except `manifest.json` and `SHA256SUMS`, sorted by path.
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the backup folder, `/`-separated.
    pub path: String,
    pub size: u64,
}

/// `last-success.json`: when the newest backup finished, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSuccess {
    pub created: String,
    pub created_unix: i64,
    pub path: PathBuf,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("there is no database at {0}; nothing to back up (run `roost init` first)")]
    NoDatabase(PathBuf),
    #[error("copying the database: {0}")]
    Database(StoreError),
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the copy of {0} does not read back as written (failing storage?)")]
    CopyMismatch(PathBuf),
    #[error("{0}: unsupported file name (not UTF-8, or contains a newline or backslash)")]
    Name(PathBuf),
    #[error("{0}: the attachment store nests deeper than {MAX_DEPTH} levels")]
    TooDeep(PathBuf),
    #[error("the backup was stopped before it was complete (Roost is shutting down)")]
    Stopped,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |error| BackupError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Where the data to back up lives.
#[derive(Debug, Clone)]
pub struct Sources {
    pub db: PathBuf,
    pub attachments: PathBuf,
    /// The `last-success.json` to update after a backup.
    pub last_success: PathBuf,
}

impl Sources {
    pub fn for_config(config: &Config) -> Sources {
        Sources {
            db: config.db_path(),
            attachments: config.data_dir().join(ATTACHMENTS),
            last_success: config.backups_dir().join(LAST_SUCCESS),
        }
    }
}

/// What a finished backup reports.
#[derive(Debug)]
pub struct BackupReport {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub bytes: u64,
    pub pruned: Vec<PathBuf>,
    /// Things that went wrong after the backup itself was safely written.
    pub warnings: Vec<String>,
}

/// Receives progress: a phase with its size in bytes, then the bytes done as they go.
pub trait Progress {
    fn begin(&mut self, what: &str, total_bytes: u64);
    fn advance(&mut self, bytes: u64);
    fn finish(&mut self);
    /// Asked after the database copy and before each attachment: `true` stops the backup
    /// there ([`BackupError::Stopped`]) and removes what it wrote. A backup in the daemon
    /// stops on its shutdown signal, so a stop never waits for a whole attachment store.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// Ignores progress (tests, library callers).
pub struct Quiet;

impl Progress for Quiet {
    fn begin(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// A progress bar on a terminal; one plain line per phase otherwise (the journal).
pub enum Reporter {
    Bar(Option<indicatif::ProgressBar>),
    Lines,
}

impl Reporter {
    pub fn for_stdout() -> Reporter {
        if std::io::stdout().is_terminal() {
            Reporter::Bar(None)
        } else {
            Reporter::Lines
        }
    }
}

impl Progress for Reporter {
    fn begin(&mut self, what: &str, total_bytes: u64) {
        match self {
            Reporter::Bar(bar) => {
                if let Some(old) = bar.take() {
                    old.finish();
                }
                let style = indicatif::ProgressStyle::with_template(
                    "{msg:<12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                // The template is a literal that is known to parse.
                .expect("a valid progress template")
                .progress_chars("=> ");
                let b = indicatif::ProgressBar::new(total_bytes).with_style(style);
                b.set_message(what.to_owned());
                *bar = Some(b);
            }
            Reporter::Lines => println!("{what}: {}", human_bytes(total_bytes)),
        }
    }
    fn advance(&mut self, bytes: u64) {
        if let Reporter::Bar(Some(b)) = self {
            b.inc(bytes);
        }
    }
    fn finish(&mut self) {
        if let Reporter::Bar(bar) = self {
            if let Some(b) = bar.take() {
                b.finish();
            }
        }
    }
}

/// `1.5 MiB`-style sizes for messages.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Removes a partial backup folder unless the backup completed.
struct PartialDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for PartialDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Writes a new backup of `sources` into `output_dir`, then keeps the newest `keep` complete
/// backups there (0: keep all). `now` names the folder and goes into the manifest.
pub fn create(
    sources: &Sources,
    output_dir: &Path,
    keep: usize,
    now: OffsetDateTime,
    progress: &mut dyn Progress,
) -> Result<BackupReport, BackupError> {
    if !sources.db.try_exists().map_err(io(&sources.db))? {
        return Err(BackupError::NoDatabase(sources.db.clone()));
    }
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(output_dir)
        .map_err(io(output_dir))?;
    // Whole seconds: the folder name and the manifest say the same time.
    let now = now
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 is always a valid nanosecond");
    let (name, partial_path) = reserve_name(output_dir, now)?;
    let mut partial = PartialDir {
        path: partial_path,
        keep: false,
    };
    let root = partial.path.clone();

    // 1. The database, as one consistent snapshot.
    let db_copy = root.join(DB_FILE);
    let estimate = file_len(&sources.db) + file_len(&wal_path(&sources.db));
    progress.begin("database", estimate);
    let mut reported = 0u64;
    let copy = inspect::online_copy(&sources.db, &db_copy, &mut |done, total| {
        let now_at = estimate
            .saturating_mul(done)
            .checked_div(total)
            .unwrap_or(0);
        progress.advance(now_at.saturating_sub(reported));
        reported = reported.max(now_at);
    })
    .map_err(BackupError::Database)?;
    let db_digest = checksum::hash_file(&db_copy, &mut |_| {}).map_err(io(&db_copy))?;
    let mut sums: BTreeMap<String, Digest> = BTreeMap::new();
    sums.insert(DB_FILE.to_owned(), db_digest);
    if progress.stop_requested() {
        return Err(BackupError::Stopped);
    }

    // 2. The attachments, each copy read back and compared.
    let mut files = Vec::new();
    walk(&sources.attachments, "", 0, &mut files)?;
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    progress.begin(&format!("{} attachments", files.len()), total);
    if !files.is_empty() || sources.attachments.is_dir() {
        make_dir(&root.join(ATTACHMENTS))?;
    }
    for (rel, _) in &files {
        if progress.stop_requested() {
            return Err(BackupError::Stopped);
        }
        let src = sources.attachments.join(rel);
        let dest = root.join(ATTACHMENTS).join(rel);
        if let Some(parent) = dest.parent() {
            make_dir(parent)?;
        }
        let written = checksum::copy_hashed(&src, &dest, FILE_MODE, &mut |n| progress.advance(n))
            .map_err(io(&src))?;
        let reread = checksum::hash_file(&dest, &mut |_| {}).map_err(io(&dest))?;
        if reread != written {
            return Err(BackupError::CopyMismatch(src));
        }
        sums.insert(format!("{ATTACHMENTS}/{rel}"), written);
    }
    progress.finish();

    // 3. The manifest and the checksums, then everything synced and renamed into place.
    let manifest = Manifest {
        format: FORMAT,
        roost_version: crate::VERSION.to_owned(),
        schema_version: copy.schema_version,
        created: now.format(&Rfc3339).unwrap_or_default(),
        created_unix: now.unix_timestamp(),
        tables: copy.row_counts,
        files: sums
            .iter()
            .map(|(path, d)| FileEntry {
                path: path.clone(),
                size: d.bytes,
            })
            .collect(),
    };
    let manifest_path = root.join(MANIFEST);
    // Serializing plain structs of strings and numbers cannot fail.
    let text = serde_json::to_string_pretty(&manifest).expect("the manifest serializes") + "\n";
    write_new(&manifest_path, text.as_bytes())?;
    let manifest_digest =
        checksum::hash_file(&manifest_path, &mut |_| {}).map_err(io(&manifest_path))?;
    sums.insert(MANIFEST.to_owned(), manifest_digest);
    let sums_text: String = sums
        .iter()
        .map(|(path, d)| checksum::sums_line(&d.hex, path))
        .collect();
    write_new(&root.join(SUMS), sums_text.as_bytes())?;
    sync_tree(&root)?;

    let final_dir = output_dir.join(&name);
    std::fs::rename(&root, &final_dir).map_err(io(&final_dir))?;
    partial.keep = true;
    checksum::sync_dir(output_dir).map_err(io(output_dir))?;
    let bytes: u64 = sums.values().map(|d| d.bytes).sum();

    // After this point the backup is safe; what fails is reported, not fatal.
    let mut warnings = Vec::new();
    let record = LastSuccess {
        created: manifest.created.clone(),
        created_unix: manifest.created_unix,
        path: final_dir.clone(),
        bytes,
    };
    if let Err(e) = write_last_success(&sources.last_success, &record) {
        warnings.push(format!(
            "could not record the backup in {}: {e}",
            sources.last_success.display()
        ));
    }
    let pruned = match prune(output_dir, keep) {
        Ok(p) => p,
        Err(e) => {
            warnings.push(format!("pruning old backups: {e}"));
            Vec::new()
        }
    };
    Ok(BackupReport {
        dir: final_dir,
        manifest,
        bytes,
        pruned,
        warnings,
    })
}

/// `roost-<stamp>` (or `roost-<stamp>-N` if taken) and its partial folder, created now so two
/// backups starting in the same second cannot pick the same name.
fn reserve_name(output_dir: &Path, now: OffsetDateTime) -> Result<(String, PathBuf), BackupError> {
    let stamp = stamp(now);
    for n in 0..100 {
        let name = match n {
            0 => format!("{NAME_PREFIX}{stamp}"),
            n => format!("{NAME_PREFIX}{stamp}-{n}"),
        };
        if output_dir.join(&name).exists() {
            continue;
        }
        let partial = output_dir.join(format!(".{name}.partial"));
        match DirBuilder::new().mode(DIR_MODE).create(&partial) {
            Ok(()) => return Ok((name, partial)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&partial)(e)),
        }
    }
    Err(io(output_dir)(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "100 backups already started in this second",
    )))
}

/// `20261122T035151Z`: sorts by time, safe in file names.
pub fn stamp(now: OffsetDateTime) -> String {
    now.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        // Only fails for a component the value lacks, and a UTC date-time has them all.
        .expect("a UTC date-time has every component of this format")
}

/// Lists regular files under `dir` as (`/`-separated relative path, size), sorted. A missing
/// `dir` is an empty store. Symlinks and special files are not Roost's and are skipped.
fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    out: &mut Vec<(String, u64)>,
) -> Result<(), BackupError> {
    if depth > MAX_DEPTH {
        return Err(BackupError::TooDeep(dir.to_path_buf()));
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && depth == 0 => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut entries: Vec<_> = entries.collect::<Result<_, _>>().map_err(io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry
            .file_name()
            .to_str()
            .filter(|n| checksum::listable(n))
            .ok_or_else(|| BackupError::Name(path.clone()))?
            .to_owned();
        // Uploads in flight live in `attachments/tmp` (`files::TMP_DIR`): not attachments yet.
        if depth == 0 && name == crate::files::TMP_DIR {
            continue;
        }
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        if meta.is_dir() {
            walk(&path, &rel, depth + 1, out)?;
        } else if meta.is_file() {
            out.push((rel, meta.len()));
        }
    }
    Ok(())
}

fn make_dir(dir: &Path) -> Result<(), BackupError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(io(dir))
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(io(path))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(path))
}

/// Syncs every folder of the new backup (files were synced as they were written).
fn sync_tree(root: &Path) -> Result<(), BackupError> {
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            if entry.file_type().map_err(io(&dir))?.is_dir() {
                dirs.push(entry.path());
            }
        }
        checksum::sync_dir(&dir).map_err(io(&dir))?;
    }
    Ok(())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Replaces `last-success.json` atomically (temp file + rename).
fn write_last_success(path: &Path, record: &LastSuccess) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(parent)?;
    }
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    // Plain structs of strings and numbers always serialize.
    let text = serde_json::to_string(record).expect("the record serializes") + "\n";
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        // 0640: the daemon (group roost) reads it even when an operator ran the backup.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        checksum::sync_dir(parent)?;
    }
    Ok(())
}

/// The last successful backup recorded in `backups_dir`, if any (a missing or unreadable
/// record is `None`: "no backup known").
pub fn last_success(backups_dir: &Path) -> Option<LastSuccess> {
    let text = std::fs::read_to_string(backups_dir.join(LAST_SUCCESS)).ok()?;
    serde_json::from_str(&text).ok()
}

/// A complete backup found in a backup folder.
#[derive(Debug, Clone)]
pub struct Found {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Complete backups in `dir`, newest first: `roost-*` folders (not symlinks) holding a
/// readable `manifest.json` and a `SHA256SUMS`. Partial folders and anything else are ignored.
pub fn list(dir: &Path) -> std::io::Result<Vec<Found>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(NAME_PREFIX) || !entry.file_type()?.is_dir() {
            continue;
        }
        let path = entry.path();
        let manifest = std::fs::read_to_string(path.join(MANIFEST))
            .ok()
            .and_then(|t| serde_json::from_str::<Manifest>(&t).ok());
        if let (Some(manifest), true) = (manifest, path.join(SUMS).is_file()) {
            found.push(Found {
                dir: path,
                manifest,
            });
        }
    }
    found.sort_by(|a, b| (b.manifest.created_unix, &b.dir).cmp(&(a.manifest.created_unix, &a.dir)));
    Ok(found)
}

impl Found {
    /// The folder's name (`roost-<stamp>`).
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Bytes of the files the manifest lists (the database copy and the attachments).
    pub fn bytes(&self) -> u64 {
        self.manifest.files.iter().map(|f| f.size).sum()
    }

    /// Whether every file the manifest lists is there with the size it was written with: a
    /// cheap check that nothing was removed or cut short since. The contents were compared
    /// with their checksums when the backup was written; `roost restore` checks them again.
    pub fn files_intact(&self) -> bool {
        self.manifest.files.iter().all(|f| {
            // A manifest names files inside its folder; anything else is not intact.
            let inside = !f.path.split('/').any(|c| c.is_empty() || c == "..");
            inside
                && std::fs::symlink_metadata(self.dir.join(&f.path))
                    .is_ok_and(|m| m.is_file() && m.len() == f.size)
        })
    }
}

/// The database file's size plus its write-ahead log's, `None` when there is no database.
pub fn database_bytes(db: &Path) -> Option<u64> {
    let main = std::fs::metadata(db).ok()?.len();
    Some(main + file_len(&wal_path(db)))
}

/// Deletes complete backups in `dir` beyond the newest `keep` (0: none). Returns what it
/// deleted.
pub fn prune(dir: &Path, keep: usize) -> std::io::Result<Vec<PathBuf>> {
    if keep == 0 {
        return Ok(Vec::new());
    }
    let mut pruned = Vec::new();
    for old in list(dir)?.into_iter().skip(keep) {
        std::fs::remove_dir_all(&old.dir)?;
        pruned.push(old.dir);
    }
    Ok(pruned)
}

/// `roost backup [--output DIR] [--keep N]`: returns the exit code.
pub fn command(config: &Config, output: Option<PathBuf>, keep: Option<usize>) -> u8 {
    let output = output.unwrap_or_else(|| config.backup_dir());
    let keep = keep.unwrap_or(config.backup.keep);
    let mut reporter = Reporter::for_stdout();
    let result = create(
        &Sources::for_config(config),
        &output,
        keep,
        OffsetDateTime::now_utc(),
        &mut reporter,
    );
    reporter.finish();
    match result {
        Ok(report) => {
            let rows: u64 = report.manifest.tables.values().sum();
            println!(
                "backup written to {} ({}; schema version {}, {} rows in {} tables, {} files)",
                report.dir.display(),
                human_bytes(report.bytes),
                report.manifest.schema_version,
                rows,
                report.manifest.tables.len(),
                report.manifest.files.len(),
            );
            for p in &report.pruned {
                println!("pruned old backup {}", p.display());
            }
            for w in &report.warnings {
                eprintln!("roost backup: warning: {w}");
            }
            crate::exit::EXIT_OK
        }
        Err(e) => {
            eprintln!("roost backup: {e}");
            crate::exit::EXIT_FAILURE
        }
    }
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
