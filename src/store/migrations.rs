//! Embedded, forward-only schema migrations. The schema version lives in
//! `PRAGMA user_version`; migration N takes the database from version N-1 to N.
//!
//! Before a database that already holds data is migrated, a snapshot is written with
//! `VACUUM INTO`, so a bad migration can be undone by restoring it. A database newer than
//! this binary is refused, never "migrated down". This module runs before the writer
//! starts (or from `roost migrate`); it knows nothing about the writer, the read pool or
//! the tables' meaning; the only other code of the crate it calls is `names` (pure text
//! functions migration 11 calls from SQL).

use std::fs::{DirBuilder, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use time::macros::format_description;
use time::OffsetDateTime;
use tracing::info;

use super::connection::{open_writer, BUSY_TIMEOUT};
use super::StoreError;

/// One schema step. `sql` runs inside a transaction together with the `user_version` bump,
/// so it must not contain BEGIN/COMMIT (and `PRAGMA foreign_keys` has no effect in it).
/// Foreign keys are off while it runs, so a step may rebuild a table that others refer to
/// (SQLite's procedure for changes ALTER TABLE cannot make); before COMMIT, `foreign_key_check`
/// must find no dangling reference, or the step is rolled back. So a step that deletes rows
/// deletes their dependants itself: ON DELETE actions do not fire.
#[derive(Debug)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// The production schema, oldest first. Versions start at 1 and have no gaps; the SQL of
/// migration N lives in `migrations/NNNN_name.sql`. Never edit a released entry: add one.
pub static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "settings",
        sql: include_str!("migrations/0001_settings.sql"),
    },
    Migration {
        version: 2,
        name: "accounts",
        sql: include_str!("migrations/0002_accounts.sql"),
    },
    Migration {
        version: 3,
        name: "audit",
        sql: include_str!("migrations/0003_audit.sql"),
    },
    Migration {
        version: 4,
        name: "chat",
        sql: include_str!("migrations/0004_chat.sql"),
    },
    Migration {
        version: 5,
        name: "search",
        sql: include_str!("migrations/0005_search.sql"),
    },
    Migration {
        version: 6,
        name: "attachments",
        sql: include_str!("migrations/0006_attachments.sql"),
    },
    Migration {
        version: 7,
        name: "search_queue",
        sql: include_str!("migrations/0007_search_queue.sql"),
    },
    Migration {
        version: 8,
        name: "search_vocab",
        sql: include_str!("migrations/0008_search_vocab.sql"),
    },
    Migration {
        version: 9,
        name: "member_invited",
        sql: include_str!("migrations/0009_member_invited.sql"),
    },
    Migration {
        version: 10,
        name: "users_autoincrement",
        sql: include_str!("migrations/0010_users_autoincrement.sql"),
    },
    Migration {
        version: 11,
        name: "name_keys",
        sql: include_str!("migrations/0011_name_keys.sql"),
    },
    Migration {
        version: 12,
        name: "read_markers",
        sql: include_str!("migrations/0012_read_markers.sql"),
    },
    Migration {
        version: 13,
        name: "direct_messages",
        sql: include_str!("migrations/0013_direct_messages.sql"),
    },
    Migration {
        version: 14,
        name: "call_entries",
        sql: include_str!("migrations/0014_call_entries.sql"),
    },
    Migration {
        version: 15,
        name: "webhooks",
        sql: include_str!("migrations/0015_webhooks.sql"),
    },
    Migration {
        version: 16,
        name: "hidden_dms",
        sql: include_str!("migrations/0016_hidden_dms.sql"),
    },
    Migration {
        version: 17,
        name: "sealed_webhook_secrets",
        sql: include_str!("migrations/0017_sealed_webhook_secrets.sql"),
    },
    Migration {
        version: 18,
        name: "call_attendees",
        sql: include_str!("migrations/0018_call_attendees.sql"),
    },
];

/// Registers the SQL functions migrations may call on `conn` (migration 11): `roost_name_key
/// (text)` is `names::key`; `roost_clean_name(text)` is `names::clean`, NULL where it refuses
/// the text. Both pure and deterministic.
fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("roost_name_key", 1, flags, |ctx| {
        Ok(crate::names::key(&ctx.get::<String>(0)?))
    })?;
    conn.create_scalar_function("roost_clean_name", 1, flags, |ctx| {
        Ok(crate::names::clean(&ctx.get::<String>(0)?).ok())
    })
}

/// Statements the writer runs at the end of every batch of the production schema: after the
/// last job's savepoint, before COMMIT, in the same transaction. Each must be cheap when
/// there is nothing to do. If one fails, the whole batch is rolled back and every caller
/// gets the error. They live here because they name tables of the migrations above.
pub static BEFORE_COMMIT: &[&str] = &[
    // Migration 7: apply queued search index changes in order, then empty the queue. A NULL
    // in the `messages_fts` column is an ordinary insert; 'delete' removes the old text.
    "INSERT INTO messages_fts (messages_fts, rowid, body)
       SELECT CASE remove WHEN 1 THEN 'delete' END, message_id, body
         FROM search_queue ORDER BY id",
    "DELETE FROM search_queue",
];

/// Where a database stands, for `roost migrate --check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub current: u32,
    pub latest: u32,
    /// `(version, name)` of each migration not applied yet, oldest first.
    pub pending: Vec<(u32, &'static str)>,
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub from: u32,
    pub to: u32,
    /// The pre-migration copy; `None` when nothing was pending or the database was empty.
    pub snapshot: Option<PathBuf>,
}

/// Reports the production migrations' status without writing anything. A missing file is
/// version 0 with everything pending, and is not created.
pub fn status(db_path: &Path) -> Result<MigrationStatus, StoreError> {
    status_with(db_path, MIGRATIONS)
}

/// [`status`] against another migration list (tests).
pub fn status_with(
    db_path: &Path,
    migrations: &'static [Migration],
) -> Result<MigrationStatus, StoreError> {
    check_order(migrations);
    let current = if db_path.try_exists()? {
        // READ_ONLY without CREATE: looking must not change anything on disk.
        let conn = Connection::open_with_flags(
            db_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        user_version(&conn)?
    } else {
        0
    };
    let latest = latest(migrations);
    if current > latest {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known: latest,
        });
    }
    Ok(MigrationStatus {
        current,
        latest,
        pending: pending(migrations, current)
            .map(|migration| (migration.version, migration.name))
            .collect(),
    })
}

/// Snapshots (if the database holds data) and applies the production migrations; for
/// `roost migrate`. Creates the database if it does not exist.
pub fn apply(db_path: &Path, backups_dir: &Path) -> Result<MigrationReport, StoreError> {
    apply_with(db_path, backups_dir, MIGRATIONS)
}

/// [`apply`] with another migration list (tests).
pub fn apply_with(
    db_path: &Path,
    backups_dir: &Path,
    migrations: &'static [Migration],
) -> Result<MigrationReport, StoreError> {
    let mut conn = open_writer(db_path)?;
    migrate(&mut conn, migrations, backups_dir)
}

/// Brings the database on `conn` up to the newest of `migrations`.
pub(super) fn migrate(
    conn: &mut Connection,
    migrations: &[Migration],
    backups_dir: &Path,
) -> Result<MigrationReport, StoreError> {
    check_order(migrations);
    let from = user_version(conn)?;
    let to = latest(migrations);
    if from > to {
        return Err(StoreError::SchemaTooNew {
            found: from,
            known: to,
        });
    }
    if from == to {
        return Ok(MigrationReport {
            from,
            to,
            snapshot: None,
        });
    }
    // Version 0 is a database nothing was ever written to: nothing to keep.
    let snapshot = match from {
        0 => None,
        _ => Some(snapshot(conn, backups_dir, from)?),
    };
    register_functions(conn)?;
    for migration in pending(migrations, from) {
        apply_one(conn, migration)?;
    }
    Ok(MigrationReport { from, to, snapshot })
}

/// Applies one step with foreign keys off (see [`Migration`]), and turns them on again
/// whatever happened.
fn apply_one(conn: &mut Connection, migration: &Migration) -> Result<(), StoreError> {
    let failed = |source| StoreError::Migration {
        version: migration.version,
        name: migration.name,
        source,
    };
    // Outside any transaction: SQLite ignores this pragma inside one.
    conn.pragma_update(None, "foreign_keys", false)
        .map_err(failed)?;
    let applied = apply_in_transaction(conn, migration);
    let restored = conn
        .pragma_update(None, "foreign_keys", true)
        .map_err(failed);
    applied.and(restored)
}

fn apply_in_transaction(conn: &mut Connection, migration: &Migration) -> Result<(), StoreError> {
    let failed = |source| StoreError::Migration {
        version: migration.version,
        name: migration.name,
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed)?;
    // Another process (`roost migrate` beside a starting daemon) may have got here first;
    // the IMMEDIATE transaction makes this check and the step below one unit.
    if user_version(&tx)? >= migration.version {
        return Ok(());
    }
    tx.execute_batch(migration.sql).map_err(failed)?;
    if let Some(dangling) = first_dangling_reference(&tx).map_err(failed)? {
        // Dropping the transaction rolls the step back.
        return Err(failed(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
            Some(format!("foreign_key_check after the migration: {dangling}")),
        )));
    }
    tx.pragma_update(None, "user_version", migration.version)
        .map_err(failed)?;
    tx.commit().map_err(failed)?;
    info!(
        version = migration.version,
        name = migration.name,
        "applied database migration"
    );
    Ok(())
}

/// Writes `<backups_dir>/pre-migrate-<from>-<UTC time>.sqlite3`, a consistent copy of the
/// database as it is now, and syncs it to disk.
fn snapshot(conn: &Connection, backups_dir: &Path, from: u32) -> Result<PathBuf, StoreError> {
    let stamp = OffsetDateTime::now_utc()
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        // Only fails for a component the value lacks, and a UTC date-time has them all.
        .expect("a UTC date-time has every component of this format");
    let path = backups_dir.join(format!("pre-migrate-{from}-{stamp}.sqlite3"));
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Snapshot {
        path: path.clone(),
        source,
    };

    // 0700: a snapshot holds everything the database does (password hashes, messages).
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(backups_dir)
        .map_err(|error| failed(error.into()))?;
    let target = path
        .to_str()
        .ok_or_else(|| failed("the path is not valid UTF-8".into()))?;
    // VACUUM INTO refuses to overwrite an existing file, so a snapshot is never clobbered.
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(|error| failed(error.into()))?;
    // Durable before the first migration touches the original.
    File::open(&path)
        .and_then(|file| file.sync_all())
        .and_then(|()| File::open(backups_dir)?.sync_all())
        .map_err(|error| failed(error.into()))?;

    info!(path = %path.display(), from_version = from, "wrote pre-migration snapshot");
    Ok(path)
}

/// The first row `PRAGMA foreign_key_check` reports, described, if any.
fn first_dangling_reference(conn: &Connection) -> Result<Option<String>, rusqlite::Error> {
    let mut check = conn.prepare("PRAGMA foreign_key_check")?;
    let mut rows = check.query([])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let (table, rowid, parent): (String, Option<i64>, String) =
        (row.get(0)?, row.get(1)?, row.get(2)?);
    let rowid = rowid.map_or_else(|| "a row".to_owned(), |id| format!("rowid {id}"));
    Ok(Some(format!(
        "{rowid} of {table} refers to a missing row of {parent}"
    )))
}

fn user_version(conn: &Connection) -> Result<u32, rusqlite::Error> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

fn latest(migrations: &[Migration]) -> u32 {
    migrations.last().map_or(0, |migration| migration.version)
}

fn pending(migrations: &[Migration], current: u32) -> impl Iterator<Item = &Migration> {
    migrations
        .iter()
        .filter(move |migration| migration.version > current)
}

/// A list that skips or repeats a version would silently skip a schema step; that is a bug
/// in this binary (the production list is checked by a unit test), so it stops here.
fn check_order(migrations: &[Migration]) {
    for (index, migration) in migrations.iter().enumerate() {
        assert_eq!(
            migration.version as usize,
            index + 1,
            "migration {:?} is out of order: versions must be 1, 2, 3, ... without gaps",
            migration.name
        );
    }
}

#[cfg(test)]
#[path = "migrations_tests.rs"]
mod tests;
