//! Opening SQLite connections with the pragmas every Roost connection needs.
//!
//! This is the only place that opens a connection to the live database, so the durability
//! and locking settings cannot be forgotten by a new caller. It does not decide who writes:
//! that is the writer's job.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// How long a connection waits for a lock held by another connection (a reader that blocks
/// a checkpoint, `roost backup` or `roost migrate` in another process) before it fails with
/// `SQLITE_BUSY`.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if needed) the one connection allowed to write.
pub(super) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    // No SQLITE_OPEN_URI: a configured path that happens to start with `file:` stays a path.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    configure(&conn)?;
    // Every job runs in its own savepoint, whose undo log ("statement journal") SQLite would
    // otherwise write to a temporary file: an extra write() per page a job touches. In
    // memory it is bounded by what one batch changes (the writer's `max_batch` jobs).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

/// Opens a connection that can only read. The database must already exist (the writer
/// created it), so a wrong path fails instead of creating an empty file.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    // Read-write at the file level: a WAL reader must be able to update the `-shm` index.
    // `query_only` below is what keeps it from writing to the database.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    configure(&conn)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Prepared statements each connection keeps (rusqlite's default is 16): enough for the
/// distinct statements of the hot paths (authentication, posting, reading a room) to stay
/// parsed. Each costs a few KiB of the connection's memory.
const STATEMENT_CACHE: usize = 64;

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // First, so that switching to WAL waits for other connections' locks too.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotWal(mode));
    }
    // FULL: with WAL, every COMMIT fsyncs the log, so an acknowledged write survives a power
    // cut (NORMAL would only keep the database consistent, and lose the last commits).
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pragma_i64(conn: &Connection, name: &str) -> i64 {
        conn.pragma_query_value(None, name, |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn writer_and_readers_get_the_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roost.sqlite3");
        let writer = open_writer(&path).unwrap();
        let reader = open_reader(&path).unwrap();

        for conn in [&writer, &reader] {
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |row| row.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            assert_eq!(pragma_i64(conn, "foreign_keys"), 1);
            assert_eq!(pragma_i64(conn, "synchronous"), 2, "2 is FULL");
            assert_eq!(pragma_i64(conn, "busy_timeout"), 5000);
        }
        assert_eq!(pragma_i64(&writer, "query_only"), 0);
        assert_eq!(pragma_i64(&writer, "temp_store"), 2, "2 is MEMORY");
        assert_eq!(pragma_i64(&reader, "query_only"), 1);

        writer.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let refused = reader.execute("INSERT INTO t VALUES (1)", []);
        assert!(refused.is_err(), "a reader must not write");
    }

    #[test]
    fn a_reader_does_not_create_a_missing_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.sqlite3");
        assert!(open_reader(&path).is_err());
        assert!(!path.exists());
    }
}
