//! Looking at a database file from outside the daemon: a consistent online copy, row counts
//! for every table, and SQLite's own integrity checks. Used by `roost backup`, `restore`,
//! `doctor` and `/status`.
//!
//! These functions open their own connections on a path (the running daemon's writer and read
//! pool are in another process, or untouched). They never write to the source database: its
//! connection is opened with `query_only`, and a copy is written only to a new file. They know
//! nothing about which tables exist; tables are discovered from `sqlite_master`.
//! Everything here blocks (file I/O, SQLite): call it from the CLI or `spawn_blocking`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::connection::BUSY_TIMEOUT;
use super::StoreError;

/// Pages copied per step of the online backup: small enough for a progress bar to move,
/// large enough that the per-step overhead does not matter (256 × 4 KiB = 1 MiB).
const PAGES_PER_STEP: std::os::raw::c_int = 256;

/// How often a busy or locked step is retried before the backup gives up. The source holds a
/// read transaction, so only the destination (a new private file) could be locked: this is a
/// guard against looping forever, not an expected path.
const MAX_BUSY_RETRIES: u32 = 100;

/// Row counts by table name, sorted by name.
pub type RowCounts = BTreeMap<String, u64>;

/// What an online copy produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// `PRAGMA user_version` of the copy.
    pub schema_version: u32,
    /// Rows of every table in the copy.
    pub row_counts: RowCounts,
    /// Size of the copy in bytes.
    pub bytes: u64,
}

/// Copies the live database at `source` into the new file `dest` with SQLite's online backup
/// API, while other processes (the daemon) keep writing.
///
/// The copy is one consistent snapshot: the source connection holds a single read transaction
/// for the whole copy (with WAL, that blocks no writer), so the backup never restarts because
/// of concurrent writes. The copy is switched to `journal_mode=DELETE` so it is one
/// self-contained file, is checked with `PRAGMA quick_check`, and is synced to disk.
/// `progress(copied_pages, total_pages)` is called after each step.
pub fn online_copy(
    source: &Path,
    dest: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CopyReport, StoreError> {
    if dest.try_exists()? {
        return Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} already exists", dest.display()),
        )));
    }
    let mut src = open_source(source)?;
    // Deferred, then a read: the snapshot starts here and lasts until the copy is done.
    let tx = src.transaction()?;
    tx.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;

    let mut dst = Connection::open_with_flags(
        dest,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    {
        let backup = Backup::new(&tx, &mut dst)?;
        let mut busy = 0;
        loop {
            let step = backup.step(PAGES_PER_STEP)?;
            let p = backup.progress();
            let total = u64::try_from(p.pagecount).unwrap_or(0);
            let remaining = u64::try_from(p.remaining).unwrap_or(0);
            progress(total.saturating_sub(remaining), total);
            match step {
                StepResult::Done => break,
                StepResult::More => busy = 0,
                StepResult::Busy | StepResult::Locked => {
                    busy += 1;
                    if busy > MAX_BUSY_RETRIES {
                        return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                            Some("the backup stayed busy; try again".into()),
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                // StepResult is non-exhaustive; any other answer is treated as "not done yet".
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    tx.finish()?;
    drop(src);

    // One file, no -wal beside it: the daemon switches a restored file back to WAL on open.
    let mode: String = dst.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(StoreError::NotWal(mode));
    }
    let problems = check(&dst, "quick_check")?;
    if !problems.is_empty() {
        return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!(
                "the copy failed quick_check: {}",
                problems.join("; ")
            )),
        )));
    }
    let schema_version = dst.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let row_counts = row_counts(&dst)?;
    dst.close().map_err(|(_, e)| e)?;
    let file = std::fs::File::open(dest)?;
    file.sync_all()?;
    Ok(CopyReport {
        schema_version,
        row_counts,
        bytes: file.metadata()?.len(),
    })
}

/// Rows of every ordinary table (internal `sqlite_*` tables and virtual tables excluded;
/// an FTS index is counted through its shadow tables).
pub fn row_counts(conn: &Connection) -> Result<RowCounts, StoreError> {
    let names = {
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name",
        )?;
        let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
        names.collect::<Result<Vec<_>, _>>()?
    };
    let mut counts = RowCounts::new();
    for name in names {
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM {}", quote_identifier(&name)),
            [],
            |r| r.get(0),
        )?;
        counts.insert(name, u64::try_from(n).unwrap_or(0));
    }
    Ok(counts)
}

/// Rows of each of `tables` that exists; missing tables are left out (used by `/status`
/// for tables other modules may or may not have created yet).
pub fn counts_of(conn: &Connection, tables: &[&str]) -> Result<RowCounts, StoreError> {
    let mut counts = RowCounts::new();
    for &table in tables {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )?;
        if exists {
            let n: i64 = conn.query_row(
                &format!("SELECT count(*) FROM {}", quote_identifier(table)),
                [],
                |r| r.get(0),
            )?;
            counts.insert(table.to_owned(), u64::try_from(n).unwrap_or(0));
        }
    }
    Ok(counts)
}

/// The result of SQLite's own consistency check of a database file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// The messages SQLite printed; empty when it said "ok".
    pub problems: Vec<String>,
    pub schema_version: u32,
    pub row_counts: RowCounts,
}

/// Runs `PRAGMA integrity_check` (`full`) or `quick_check` on the file at `path`, read-only,
/// plus its schema version and row counts. Works on the live database (a read transaction in
/// WAL mode) and on a copy.
pub fn check_file(path: &Path, full: bool) -> Result<FileCheck, StoreError> {
    let conn = open_source(path)?;
    let problems = check(
        &conn,
        if full {
            "integrity_check"
        } else {
            "quick_check"
        },
    )?;
    Ok(FileCheck {
        problems,
        schema_version: conn.pragma_query_value(None, "user_version", |r| r.get(0))?,
        row_counts: row_counts(&conn)?,
    })
}

/// At most this many problem lines are read back from a check (SQLite's own default is 100).
const MAX_CHECK_LINES: usize = 20;

/// The problems `PRAGMA <pragma>` reports; empty when SQLite says "ok".
fn check(conn: &Connection, pragma: &str) -> Result<Vec<String>, rusqlite::Error> {
    let mut stmt = conn.prepare(&format!("PRAGMA {pragma}({MAX_CHECK_LINES})"))?;
    let lines = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    if lines.len() == 1 && lines[0] == "ok" {
        Ok(Vec::new())
    } else {
        Ok(lines)
    }
}

/// A connection that reads only: read-write at the file level so a WAL reader can use the
/// `-shm` index (as the store's read pool does), `query_only` so it cannot write, and no
/// CREATE so a wrong path fails instead of making an empty database.
fn open_source(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// `"name"` with embedded quotes doubled: table names come from the database itself, but a
/// name is still never pasted into SQL unquoted.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make_db(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(
            "CREATE TABLE a (x INTEGER); CREATE TABLE \"odd \"\"name\" (y TEXT);
             INSERT INTO a VALUES (1), (2), (3); INSERT INTO \"odd \"\"name\" VALUES ('z');
             PRAGMA user_version = 4;",
        )
        .unwrap();
        conn
    }

    #[test]
    fn online_copy_is_consistent_self_contained_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("live.sqlite3");
        let live = make_db(&src);
        let dest = dir.path().join("copy.sqlite3");
        let mut calls = 0;
        let report = online_copy(&src, &dest, &mut |done, total| {
            calls += 1;
            assert!(done <= total);
        })
        .unwrap();
        assert!(calls >= 1);
        assert_eq!(report.schema_version, 4);
        assert_eq!(
            report.row_counts,
            RowCounts::from([("a".into(), 3), ("odd \"name".into(), 1)])
        );
        assert!(!dir.path().join("copy.sqlite3-wal").exists());
        // The source is untouched and still writable by its own connection.
        live.execute("INSERT INTO a VALUES (4)", []).unwrap();
        let again = check_file(&dest, true).unwrap();
        assert!(again.problems.is_empty());
        assert_eq!(again.row_counts["a"], 3);
        // An existing destination is never overwritten.
        assert!(online_copy(&src, &dest, &mut |_, _| {}).is_err());
    }

    #[test]
    fn counts_of_skips_missing_tables() {
        let dir = tempfile::tempdir().unwrap();
        let conn = make_db(&dir.path().join("db.sqlite3"));
        let counts = counts_of(&conn, &["a", "users"]).unwrap();
        assert_eq!(counts, RowCounts::from([("a".into(), 3)]));
    }

    #[test]
    fn a_damaged_file_is_reported_not_opened_blindly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        drop(make_db(&path));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(100);
        std::fs::write(&path, bytes).unwrap();
        let _ = std::fs::remove_file(dir.path().join("db.sqlite3-wal"));
        if let Ok(c) = check_file(&path, true) {
            assert!(!c.problems.is_empty(), "a truncated file passed the check");
        }
    }
}
