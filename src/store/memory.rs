//! What SQLite holds in memory for the store's connections, read with `sqlite3_db_status`:
//! page caches (bounded by `cache_size`, per connection), parsed schemas and prepared
//! statements; and the rest of what SQLite has allocated in the process
//! (`sqlite3_memory_used`): readers lent out at the moment, sorters, FTS5's work memory.
//! `/metrics` reports it as `roost_db_memory_bytes{kind}`, so an operator can tell the
//! database's share of the daemon's memory from the rest.

use std::ops::Add;

use rusqlite::ffi;
use rusqlite::Connection;

/// Bytes SQLite uses for one or more connections.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DbMemory {
    pub page_cache: u64,
    pub schema: u64,
    pub statements: u64,
    /// What SQLite has allocated beyond the three figures above (see [`DbMemory::with_rest`]).
    pub other: u64,
}

impl DbMemory {
    /// The connection's current figures. Only for a connection this thread is using, or one
    /// no other thread can reach: the connections are opened without SQLite's own mutex.
    pub(super) fn of(conn: &Connection) -> DbMemory {
        DbMemory {
            page_cache: status(conn, ffi::SQLITE_DBSTATUS_CACHE_USED),
            schema: status(conn, ffi::SQLITE_DBSTATUS_SCHEMA_USED),
            statements: status(conn, ffi::SQLITE_DBSTATUS_STMT_USED),
            other: 0,
        }
    }

    /// These figures with `other` set to the rest of SQLite's allocations in this process:
    /// `sqlite3_memory_used` (every connection, busy ones included, and work memory; pages in
    /// `page_region`'s slots too, since they are allocated through SQLite's memory hooks),
    /// less the three per-connection figures.
    pub fn with_rest(self) -> DbMemory {
        // SAFETY: takes SQLite's global memory mutex (the library is built thread-safe) and
        // reads a counter; no connection is touched.
        let all = u64::try_from(unsafe { ffi::sqlite3_memory_used() }).unwrap_or(0);
        let parts = self.page_cache + self.schema + self.statements;
        DbMemory {
            other: all.saturating_sub(parts),
            ..self
        }
    }

    pub fn total(&self) -> u64 {
        self.page_cache + self.schema + self.statements + self.other
    }
}

impl Add for DbMemory {
    type Output = DbMemory;
    fn add(self, other: DbMemory) -> DbMemory {
        DbMemory {
            page_cache: self.page_cache + other.page_cache,
            schema: self.schema + other.schema,
            statements: self.statements + other.statements,
            other: self.other + other.other,
        }
    }
}

fn status(conn: &Connection, op: std::os::raw::c_int) -> u64 {
    let (mut current, mut highwater) = (0, 0);
    // SAFETY: `handle` is the open connection `conn` owns, valid for this call; the caller
    // guarantees no other thread uses it meanwhile (see `DbMemory::of`). The two out
    // pointers are live locals, and reset flag 0 changes nothing.
    let rc = unsafe { ffi::sqlite3_db_status(conn.handle(), op, &mut current, &mut highwater, 0) };
    if rc == ffi::SQLITE_OK {
        u64::try_from(current).unwrap_or(0)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_cache_grows_with_what_a_connection_reads_and_stops_at_cache_size() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("m.sqlite3")).unwrap();
        conn.execute_batch(
            "PRAGMA cache_size = -512;
             CREATE TABLE t (x BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)
             INSERT INTO t SELECT randomblob(1000) FROM n;",
        )
        .unwrap();
        let before = DbMemory::of(&conn);
        assert!(before.schema > 0, "{before:?}");
        conn.query_row("SELECT count(*) FROM t WHERE length(x) > 0", [], |_| Ok(()))
            .unwrap();
        let after = DbMemory::of(&conn);
        assert!(after.page_cache > 256 * 1024, "{after:?}");
        // The scan read ~4.4 MB of pages; the cache keeps about its 512 KiB. Not exactly: the
        // bundled SQLite is built with SQLITE_ENABLE_MEMORY_MANAGEMENT, so every connection
        // of the process shares one page group, and a connection at its cap recycles the
        // group's least recently used page, which may be another connection's (other tests
        // run beside this one): it can end above its own cap, while the process stays within
        // the sum of the caps. Seen alone: 535,898 bytes; beside the other tests: 866,650.
        assert!(after.page_cache < 2 * 1024 * 1024, "{after:?}");
        assert_eq!((before + after).schema, before.schema + after.schema);
        // SQLite's whole allocation covers at least this connection's figures.
        let whole = after.with_rest();
        assert_eq!(whole.page_cache, after.page_cache);
        assert!(
            whole.total() >= after.page_cache + after.schema + after.statements,
            "{whole:?}"
        );
    }
}
