//! The store's typed error, and the one place that decides which SQLite failures mean
//! "out of storage".
//!
//! It knows nothing about HTTP: the API layer maps [`StoreError::Full`] to 507 and the rest
//! to 500. Nothing here logs; callers decide what is worth a log line. Causes are exposed
//! through `source()`, not repeated in `Display`, so a printed chain says each thing once.

use std::path::PathBuf;

use rusqlite::ffi;

/// Everything that can go wrong inside the store itself. Application errors from write and
/// read closures travel in the caller's own error type, which must be `From<StoreError>`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported `SQLITE_FULL`: the disk (or the database's size limit) is full.
    /// Checked on every path, the COMMIT of a write batch included.
    #[error("the database is full or the disk is out of space")]
    Full,

    /// SQLite could not write (or read) the file: `SQLITE_READONLY` or `SQLITE_IOERR`, e.g.
    /// the filesystem turned read-only under a failing SD card. Not the caller's fault and not
    /// fixed by retrying soon; the operator has to repair the storage.
    #[error("the database's storage cannot be written (read-only or failing)")]
    Unwritable,

    /// Any other SQLite failure.
    #[error(transparent)]
    Sqlite(rusqlite::Error),

    /// The writer has stopped (after [`Store::close`](super::Store::close), or because its
    /// thread ended); no more writes are accepted.
    #[error("the database writer has stopped")]
    Closed,

    /// A write or read closure panicked. The panic's own message went to stderr through the
    /// panic hook; its database changes were rolled back.
    #[error("a database job panicked")]
    Panicked,

    /// The database was written by a newer roost than this one.
    #[error(
        "database schema version {found} is newer than this roost ({known}); \
         install a newer roost or restore a backup"
    )]
    SchemaTooNew { found: u32, known: u32 },

    /// The copy taken before migrating could not be written, so nothing was migrated.
    #[error("could not write the pre-migration snapshot {path}")]
    Snapshot {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// One migration failed; it and every later one were not applied.
    #[error("migration {version} ({name}) failed")]
    Migration {
        version: u32,
        name: &'static str,
        source: rusqlite::Error,
    },

    /// SQLite could not put the database in WAL mode (e.g. a filesystem without shared
    /// memory); without WAL, readers would block the writer.
    #[error("could not switch the database to WAL mode (journal_mode is {0:?})")]
    NotWal(String),

    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ffi::ErrorCode::DiskFull) => StoreError::Full,
            Some(ffi::ErrorCode::ReadOnly | ffi::ErrorCode::SystemIoFailure) => {
                StoreError::Unwritable
            }
            _ => StoreError::Sqlite(error),
        }
    }
}

/// A copy of a SQLite error for every caller of a failed batch: `rusqlite::Error` is not
/// `Clone`, and a failed BEGIN or COMMIT must reach each of them with its code intact (so
/// `SQLITE_FULL` still becomes [`StoreError::Full`]).
pub(super) fn duplicate(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_full_becomes_full() {
        let full = rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_FULL), None);
        assert!(matches!(
            StoreError::from(duplicate(&full)),
            StoreError::Full
        ));

        let busy = rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_BUSY), None);
        assert!(matches!(StoreError::from(busy), StoreError::Sqlite(_)));
    }

    #[test]
    fn io_errors_and_read_only_storage_become_unwritable() {
        // 778 = SQLITE_IOERR_WRITE, what a write into a filesystem that turned read-only gives
        // (seen by scripts/robustness/diskfull.py); 8 = SQLITE_READONLY.
        for code in [
            ffi::SQLITE_IOERR_WRITE,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_READONLY,
        ] {
            let e = rusqlite::Error::SqliteFailure(ffi::Error::new(code), None);
            assert!(
                matches!(StoreError::from(duplicate(&e)), StoreError::Unwritable),
                "{code}"
            );
        }
    }

    #[test]
    fn schema_too_new_message_tells_the_user_what_to_do() {
        let error = StoreError::SchemaTooNew { found: 7, known: 5 };
        assert_eq!(
            error.to_string(),
            "database schema version 7 is newer than this roost (5); \
             install a newer roost or restore a backup"
        );
    }
}
