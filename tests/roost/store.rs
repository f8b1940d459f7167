//! The store against a real SQLite file in a temp dir: group commit, savepoint isolation,
//! migration snapshots, checkpoint on close, the writer ping.
//!
//! Batching tests are deterministic: a first job holds the writer until every other write
//! is known to be in the queue (its future has been polled once, which is when `write`
//! enqueues), so the batch boundaries are exact rather than timing-dependent.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use roost::store::{Migration, Store, StoreError, StoreOptions};
use rusqlite::Connection;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

/// How long any wait in these tests may take before it counts as a hang.
const DEADLINE: Duration = Duration::from_secs(30);

static ITEMS: &[Migration] = &[Migration {
    version: 1,
    name: "items",
    sql: "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL);",
}];

static ITEMS_THEN_TAGS: &[Migration] = &[
    Migration {
        version: 1,
        name: "items",
        sql: "CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL);",
    },
    Migration {
        version: 2,
        name: "tags",
        sql: "CREATE TABLE tags (item_id INTEGER NOT NULL REFERENCES items (id));",
    },
];

/// A caller's own error type, as the chat or auth modules will have.
#[derive(Debug)]
enum AppError {
    Store(StoreError),
    Rejected(i64),
    WriterNotReleased,
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        AppError::Store(error)
    }
}

impl From<rusqlite::Error> for AppError {
    fn from(error: rusqlite::Error) -> Self {
        AppError::Store(error.into())
    }
}

struct Fixture {
    _root: tempfile::TempDir,
    db: PathBuf,
    backups: PathBuf,
    batches: Arc<Mutex<Vec<usize>>>,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().unwrap();
        Fixture {
            db: root.path().join("roost.sqlite3"),
            backups: root.path().join("backups"),
            batches: Arc::default(),
            _root: root,
        }
    }

    fn open(&self, migrations: &'static [Migration]) -> Store {
        let mut opts = StoreOptions::new(&self.backups);
        let batches = Arc::clone(&self.batches);
        opts.batch_observer = Some(Arc::new(move |size| batches.lock().unwrap().push(size)));
        Store::open_with(&self.db, opts, migrations, &[]).unwrap()
    }

    fn batches(&self) -> Vec<usize> {
        self.batches.lock().unwrap().clone()
    }
}

fn insert(conn: &Connection, id: i64) -> Result<(), AppError> {
    conn.execute(
        "INSERT INTO items (id, label) VALUES (?1, ?2)",
        (id, format!("item {id}")),
    )?;
    Ok(())
}

async fn item_ids(store: &Store) -> Vec<i64> {
    store
        .read(|conn| {
            let mut select = conn.prepare("SELECT id FROM items ORDER BY id")?;
            let ids = select.query_map([], |row| row.get(0))?;
            Ok::<_, AppError>(ids.collect::<Result<Vec<i64>, _>>()?)
        })
        .await
        .unwrap()
}

/// A write job that keeps the writer busy until `release` is called.
struct HeldWriter {
    release: mpsc::Sender<()>,
    job: JoinHandle<Result<(), AppError>>,
}

/// Queues `work` and returns once the writer is running it and blocked: writes queued from
/// now on wait behind it and are drained together when it is released.
async fn hold_writer<F>(store: &Store, work: F) -> HeldWriter
where
    F: FnOnce(&Connection) -> Result<(), AppError> + Send + 'static,
{
    let (entered, writer_busy) = oneshot::channel();
    let (release, released) = mpsc::channel();
    let store = store.clone();
    let job = tokio::spawn(async move {
        store
            .write(move |conn| {
                work(conn)?;
                let _ = entered.send(());
                released
                    .recv_timeout(DEADLINE)
                    .map_err(|_| AppError::WriterNotReleased)
            })
            .await
    });
    tokio::time::timeout(DEADLINE, writer_busy)
        .await
        .unwrap()
        .unwrap();
    HeldWriter { release, job }
}

impl HeldWriter {
    async fn release(self) -> Result<(), AppError> {
        self.release.send(()).unwrap();
        self.job.await.unwrap()
    }
}

/// Counts writes whose future has been polled once, i.e. that are in the writer's queue.
#[derive(Clone, Default)]
struct QueuedWrites {
    count: Arc<AtomicUsize>,
    changed: Arc<Notify>,
}

impl QueuedWrites {
    /// Spawns a task running `store.write(work)`.
    fn spawn<T, F>(&self, store: &Store, work: F) -> JoinHandle<Result<T, AppError>>
    where
        F: FnOnce(&Connection) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let store = store.clone();
        tokio::spawn(CountFirstPoll {
            inner: Box::pin(async move { store.write(work).await }),
            queued: Some(self.clone()),
        })
    }

    async fn wait_for(&self, expected: usize) {
        let all_queued = async {
            while self.count.load(Ordering::SeqCst) < expected {
                self.changed.notified().await;
            }
        };
        tokio::time::timeout(DEADLINE, all_queued)
            .await
            .expect("writes did not reach the queue");
    }
}

struct CountFirstPoll<F> {
    inner: Pin<Box<F>>,
    queued: Option<QueuedWrites>,
}

impl<F: Future> Future for CountFirstPoll<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let output = self.inner.as_mut().poll(cx);
        // The first poll of `write` sends the job (the queue has room for all of them).
        if let Some(queued) = self.queued.take() {
            queued.count.fetch_add(1, Ordering::SeqCst);
            queued.changed.notify_one();
        }
        output
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_writes_are_group_committed() {
    let fixture = Fixture::new();
    let store = fixture.open(ITEMS);
    let queued = QueuedWrites::default();

    let first = hold_writer(&store, |conn| insert(conn, 0)).await;
    let rest: Vec<_> = (1..1000)
        .map(|id| queued.spawn(&store, move |conn| insert(conn, id)))
        .collect();
    queued.wait_for(999).await;
    first.release().await.unwrap();
    for write in rest {
        write.await.unwrap().unwrap();
    }

    let stats = store.stats();
    assert_eq!(stats.jobs_committed, 1000);
    assert!(stats.transactions < 1000);
    // The held job alone, then the 999 queued behind it in batches of max_write_batch.
    assert_eq!(fixture.batches(), [1, 256, 256, 256, 231]);
    assert_eq!(stats.transactions, 5);

    store.close().await.unwrap();
    let reopened = fixture.open(ITEMS);
    assert_eq!(item_ids(&reopened).await, (0..1000).collect::<Vec<_>>());
    reopened.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_job_in_a_batch_fails_alone() {
    let fixture = Fixture::new();
    let store = fixture.open(ITEMS);
    let queued = QueuedWrites::default();

    let first = hold_writer(&store, |_| Ok(())).await;
    let writes: Vec<_> = (1..=9)
        .map(|id| {
            queued.spawn(&store, move |conn| {
                insert(conn, id)?;
                if id == 5 {
                    return Err(AppError::Rejected(id));
                }
                Ok(id)
            })
        })
        .collect();
    queued.wait_for(9).await;
    first.release().await.unwrap();

    let mut outcomes = Vec::new();
    for write in writes {
        outcomes.push(write.await.unwrap());
    }
    assert_eq!(
        fixture.batches(),
        [1, 9],
        "the nine writes shared a transaction"
    );
    for (id, outcome) in (1..=9).zip(&outcomes) {
        match (id, outcome) {
            (5, Err(AppError::Rejected(5))) => {}
            (5, other) => panic!("write 5 should fail with its own error, got {other:?}"),
            (id, Ok(returned)) => assert_eq!(*returned, id),
            (id, Err(error)) => panic!("write {id} failed: {error:?}"),
        }
    }
    assert_eq!(item_ids(&store).await, [1, 2, 3, 4, 6, 7, 8, 9]);
    assert_eq!(
        store.stats().jobs_committed,
        9,
        "8 writes plus the holding job"
    );
    store.close().await.unwrap();
}

fn snapshots_in(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => panic!("reading {}: {error}", dir.display()),
    }
}

#[tokio::test]
async fn migrating_a_database_with_data_snapshots_it_first() {
    let fixture = Fixture::new();
    let store = fixture.open(ITEMS);
    assert_eq!(store.schema_version(), 1);
    store.write(|conn| insert(conn, 42)).await.unwrap();
    store.close().await.unwrap();
    assert!(snapshots_in(&fixture.backups).is_empty());

    let store = fixture.open(ITEMS_THEN_TAGS);
    assert_eq!(store.schema_version(), 2);
    store.close().await.unwrap();

    let snapshots = snapshots_in(&fixture.backups);
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let name = snapshots[0].file_name().unwrap().to_str().unwrap();
    let stamp = name
        .strip_prefix("pre-migrate-1-")
        .and_then(|rest| rest.strip_suffix(".sqlite3"))
        .unwrap_or_else(|| panic!("unexpected snapshot name {name}"));
    assert_eq!(stamp.len(), "20261122T031500Z".len(), "{stamp}");
    assert!(
        stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T',
        "{stamp}"
    );

    let snapshot = Connection::open(&snapshots[0]).unwrap();
    let version: u32 = snapshot
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 1);
    let label: String = snapshot
        .query_row("SELECT label FROM items WHERE id = 42", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(label, "item 42");
    let tags_tables: i64 = snapshot
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'tags'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(tags_tables, 0, "the snapshot is from before the migration");
}

#[tokio::test]
async fn migrating_a_fresh_database_writes_no_snapshot() {
    let fixture = Fixture::new();
    let store = fixture.open(ITEMS_THEN_TAGS);
    assert_eq!(store.schema_version(), 2);
    store.close().await.unwrap();
    assert!(snapshots_in(&fixture.backups).is_empty());
}

#[tokio::test]
async fn close_leaves_an_empty_wal() {
    let fixture = Fixture::new();
    let store = fixture.open(ITEMS);
    for id in 0..100 {
        store.write(move |conn| insert(conn, id)).await.unwrap();
    }
    assert_eq!(item_ids(&store).await.len(), 100);

    store.close().await.unwrap();

    let wal = fixture.db.with_file_name("roost.sqlite3-wal");
    let wal_len = std::fs::metadata(&wal).map_or(0, |meta| meta.len());
    assert_eq!(wal_len, 0, "{} still holds frames", wal.display());
    drop(store);
    let count: i64 = Connection::open(&fixture.db)
        .unwrap()
        .query_row("SELECT count(*) FROM items", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 100);
}

#[tokio::test]
async fn ping_writer_answers_until_close() {
    let fixture = Fixture::new();
    let store = fixture.open(ITEMS);
    let stats_before = store.stats();
    tokio::time::timeout(DEADLINE, store.ping_writer())
        .await
        .unwrap()
        .unwrap();

    store.close().await.unwrap();

    assert_eq!(store.stats(), stats_before, "a ping writes nothing");
    assert!(matches!(store.ping_writer().await, Err(StoreError::Closed)));
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_full_database_is_reported_as_full() {
    let fixture = Fixture::new();
    let store = fixture.open(ITEMS);
    // Cap the file at its current size: the next page SQLite needs fails with SQLITE_FULL,
    // as a full disk would.
    store
        .write(|conn| {
            let pages: i64 = conn.pragma_query_value(None, "page_count", |row| row.get(0))?;
            conn.pragma_update(None, "max_page_count", pages)?;
            Ok::<_, AppError>(())
        })
        .await
        .unwrap();

    let big = "x".repeat(1 << 20);
    let refused = store
        .write(move |conn| {
            conn.execute("INSERT INTO items (id, label) VALUES (1, ?1)", [big])?;
            Ok::<_, AppError>(())
        })
        .await;

    assert!(
        matches!(refused, Err(AppError::Store(StoreError::Full))),
        "{refused:?}"
    );
    store.close().await.unwrap();
}
