//! Roost's embedded database: one SQLite file in WAL mode, one writer thread with group
//! commit, a small pool of read connections, and forward-only migrations.
//!
//! The rest of Roost sees a small typed API: `write` and `read` take a closure that runs on
//! a connection, off the async threads. This module knows nothing about HTTP, users or
//! rooms (their tables arrive as migrations), or any metrics library (batch sizes go out
//! through [`StoreOptions::batch_observer`]).
//!
//! Map: `connection` opens connections with the pragmas; `writer` is the writer thread and
//! `job` the type-erased write closure it runs; `pool` lends read connections;
//! `migrations` holds the schema steps and the pre-migration snapshot; `inspect` copies,
//! counts and checks a database file from outside the daemon (backup, doctor); `error` the
//! [`StoreError`].

mod connection;
mod error;
pub mod inspect;
mod job;
mod memory;
pub mod migrations;
pub mod page_region;
mod pool;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;

pub use error::StoreError;
pub use memory::DbMemory;
pub use migrations::{Migration, MigrationReport, MigrationStatus, MIGRATIONS};
pub use writer::{BatchObserver, WriterStats};

use pool::ReadPool;
use writer::WriterHandle;

pub const DEFAULT_READ_CONNECTIONS: usize = 4;
pub const DEFAULT_MAX_WRITE_BATCH: usize = 256;

/// How to open a [`Store`]. Build with [`StoreOptions::new`], then adjust fields.
#[derive(Clone)]
pub struct StoreOptions {
    /// Read connections, i.e. reads that can run at once; more reads wait for a free one.
    /// At least 1 (0 is treated as 1).
    pub read_connections: usize,
    /// Most jobs committed in one transaction. At least 1 (0 is treated as 1).
    pub max_write_batch: usize,
    /// Where pre-migration snapshots go (created 0700 when first needed).
    pub backups_dir: PathBuf,
    /// Called on the writer thread with the job count of each committed transaction, jobs
    /// whose savepoint was rolled back included (the metrics hook for
    /// `roost_db_write_batch_size`). It delays that batch's callers, so keep it cheap.
    pub batch_observer: Option<BatchObserver>,
    /// Tables whose changes [`Store::generation`] counts: after a commit that inserted,
    /// updated or deleted a row of one of them, the generation is bumped before any caller
    /// of that batch hears back. Only writes through this store are seen; a cache built on
    /// the generation must also expire on its own for changes made by other processes.
    pub watched_tables: &'static [&'static str],
}

impl StoreOptions {
    pub fn new(backups_dir: impl Into<PathBuf>) -> StoreOptions {
        StoreOptions {
            read_connections: DEFAULT_READ_CONNECTIONS,
            max_write_batch: DEFAULT_MAX_WRITE_BATCH,
            backups_dir: backups_dir.into(),
            batch_observer: None,
            watched_tables: &[],
        }
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("read_connections", &self.read_connections)
            .field("max_write_batch", &self.max_write_batch)
            .field("backups_dir", &self.backups_dir)
            .field("batch_observer", &self.batch_observer.is_some())
            .field("watched_tables", &self.watched_tables)
            .finish()
    }
}

/// The open database. Cheap to clone; all clones share one writer and one read pool.
///
/// Dropping the last clone without [`close`](Store::close) still stops the writer thread
/// once it has run what was queued, but does not wait for it.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    writer: WriterHandle,
    readers: ReadPool,
    schema_version: u32,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings it to the production
    /// schema, snapshotting it first if it holds data.
    pub fn open(path: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        Store::open_with(path, opts, MIGRATIONS, migrations::BEFORE_COMMIT)
    }

    /// [`open`](Store::open) with another schema (tests): its migrations and the statements
    /// the writer runs before each COMMIT.
    pub fn open_with(
        path: &Path,
        opts: StoreOptions,
        migrations: &'static [Migration],
        before_commit: &'static [&'static str],
    ) -> Result<Store, StoreError> {
        // Migrate on the future writer's connection, before anyone else can see the file.
        let mut conn = connection::open_writer(path)?;
        let report = migrations::migrate(&mut conn, migrations, &opts.backups_dir)?;
        let readers = ReadPool::open(path, opts.read_connections)?;
        let writer = WriterHandle::spawn(
            conn,
            opts.max_write_batch,
            before_commit,
            opts.watched_tables,
            opts.batch_observer,
        )?;
        Ok(Store {
            inner: Arc::new(Inner {
                writer,
                readers,
                schema_version: report.to,
            }),
        })
    }

    /// Runs `f` on the writer thread inside a savepoint of the current batch's transaction.
    /// `Ok` means committed and durable. If `f` returns `Err`, only its own changes are
    /// rolled back and the error comes back as is. `f` must not BEGIN, COMMIT or ROLLBACK.
    ///
    /// Dropping the returned future does not cancel a write already queued.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.inner.writer.write(f).await
    }

    /// Runs `f` on a read-only connection on a blocking thread, once one is free. It sees
    /// every write that has returned `Ok`.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.inner.readers.read(f).await
    }

    /// A round trip through the writer queue that takes the write lock and releases it
    /// without writing. A hung writer makes this never return: callers (`/ready`, the
    /// watchdog) wrap it in their own timeout.
    pub async fn ping_writer(&self) -> Result<(), StoreError> {
        self.inner.writer.ping().await
    }

    /// What SQLite holds in memory for the writer and the idle readers (a reader lent out at
    /// this moment is not counted). Goes through the writer's queue like a write, and
    /// writes nothing.
    pub async fn memory(&self) -> Result<DbMemory, StoreError> {
        let writer = self
            .write(|conn| Ok::<_, StoreError>(DbMemory::of(conn)))
            .await?;
        Ok((writer + self.inner.readers.idle_memory()).with_rest())
    }

    pub fn stats(&self) -> WriterStats {
        self.inner.writer.stats()
    }

    /// Counts committed batches that changed a row of [`StoreOptions::watched_tables`]. A
    /// value read before a read of those tables is stale once this has moved on: the
    /// change that moved it is committed and visible to every later read.
    pub fn generation(&self) -> u64 {
        self.inner.writer.generation()
    }

    /// Whether [`generation`](Self::generation) follows changes to `table`.
    pub fn watches(&self, table: &str) -> bool {
        self.inner.writer.watches(table)
    }

    /// The schema version after opening (`PRAGMA user_version`).
    pub fn schema_version(&self) -> u32 {
        self.inner.schema_version
    }

    /// Stops taking reads and writes, finishes the writes already queued, checkpoints and
    /// truncates the WAL, and waits for the writer thread. Calling it again returns `Ok`.
    pub async fn close(&self) -> Result<(), StoreError> {
        // Readers first, so none holds a snapshot that would block the final checkpoint.
        self.inner.readers.close();
        self.inner.writer.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static NUMBERS: &[Migration] = &[Migration {
        version: 1,
        name: "numbers",
        sql: "CREATE TABLE numbers (n INTEGER NOT NULL);",
    }];

    fn open(dir: &Path) -> Store {
        let opts = StoreOptions::new(dir.join("backups"));
        Store::open_with(&dir.join("roost.sqlite3"), opts, NUMBERS, &[]).unwrap()
    }

    #[tokio::test]
    async fn writes_run_on_the_named_writer_thread_and_reads_see_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());

        let thread = store
            .write(|conn| {
                conn.execute("INSERT INTO numbers (n) VALUES (7)", [])?;
                Ok::<_, StoreError>(std::thread::current().name().map(str::to_owned))
            })
            .await
            .unwrap();
        assert_eq!(thread.as_deref(), Some("roost-db-writer"));

        let (n, query_only): (i64, i64) = store
            .read(|conn| {
                let n = conn.query_row("SELECT n FROM numbers", [], |row| row.get(0))?;
                let query_only = conn.pragma_query_value(None, "query_only", |row| row.get(0))?;
                Ok::<_, StoreError>((n, query_only))
            })
            .await
            .unwrap();
        assert_eq!((n, query_only), (7, 1));
        assert_eq!(store.schema_version(), 1);
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn the_generation_moves_with_committed_changes_to_watched_tables_only() {
        static TWO: &[Migration] = &[Migration {
            version: 1,
            name: "two",
            sql: "CREATE TABLE watched (n INTEGER); CREATE TABLE other (n INTEGER);",
        }];
        let dir = tempfile::tempdir().unwrap();
        let mut opts = StoreOptions::new(dir.path().join("backups"));
        opts.watched_tables = &["watched"];
        let store = Store::open_with(&dir.path().join("roost.sqlite3"), opts, TWO, &[]).unwrap();
        assert!(store.watches("watched") && !store.watches("other"));
        let write = |sql: &'static str| {
            store.write(move |conn| {
                conn.execute(sql, [])?;
                Ok::<_, StoreError>(())
            })
        };

        let start = store.generation();
        write("INSERT INTO other (n) VALUES (1)").await.unwrap();
        assert_eq!(store.generation(), start, "an unwatched table");
        write("INSERT INTO watched (n) VALUES (1)").await.unwrap();
        assert_eq!(
            store.generation(),
            start + 1,
            "seen as soon as the write returns"
        );
        write("UPDATE watched SET n = 2").await.unwrap();
        write("DELETE FROM watched WHERE n = 2").await.unwrap();
        assert_eq!(store.generation(), start + 3);
        let failed = store
            .write(|conn| {
                conn.execute("INSERT INTO watched (n) VALUES (3)", [])?;
                conn.execute("INSERT INTO no_such_table (n) VALUES (3)", [])?;
                Ok::<_, StoreError>(())
            })
            .await;
        assert!(failed.is_err());
        assert!(
            store.generation() >= start + 3,
            "a rolled-back change may move it (a harmless miss), never back"
        );
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn reads_and_writes_after_close_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.close().await.unwrap();

        let read = store.read(|_| Ok::<_, StoreError>(())).await;
        assert!(matches!(read, Err(StoreError::Closed)));
        let write = store.write(|_| Ok::<_, StoreError>(())).await;
        assert!(matches!(write, Err(StoreError::Closed)));
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_panicking_read_gives_its_connection_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = StoreOptions::new(dir.path().join("backups"));
        opts.read_connections = 1;
        let store =
            Store::open_with(&dir.path().join("roost.sqlite3"), opts, NUMBERS, &[]).unwrap();

        let panicked = store
            .read(|_| -> Result<(), StoreError> { panic!("a bug in a read") })
            .await;
        assert!(matches!(panicked, Err(StoreError::Panicked)));
        // With one connection, this only completes if the panic returned it to the pool.
        let count: i64 = store
            .read(|conn| {
                Ok::<_, StoreError>(
                    conn.query_row("SELECT count(*) FROM numbers", [], |row| row.get(0))?,
                )
            })
            .await
            .unwrap();
        assert_eq!(count, 0);
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn dropping_the_store_without_close_still_runs_the_queue_and_ends_the_writer() {
        use futures_util::FutureExt;

        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let thread = store.inner.writer.take_thread_for_test().await;
        // One poll queues the job; then nobody is left waiting for it.
        let _ = store
            .write(|conn| {
                conn.execute("INSERT INTO numbers (n) VALUES (1)", [])?;
                Ok::<_, StoreError>(())
            })
            .now_or_never();

        drop(store);
        let joined = tokio::task::spawn_blocking(move || thread.join());
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), joined).await;
        assert!(matches!(ended, Ok(Ok(Ok(Ok(()))))), "{ended:?}");

        let conn = Connection::open(dir.path().join("roost.sqlite3")).unwrap();
        let count: i64 = conn
            .query_row("SELECT count(*) FROM numbers", [], |row| row.get(0))
            .unwrap();
        assert_eq!(count, 1, "the queued write was lost");
    }
}
