//! The writer's batching and savepoint rules, driven on the test thread: jobs are queued
//! first, then `Writer::run` drains them, so batch boundaries are deterministic.

use std::sync::Mutex as StdMutex;

use tokio::sync::oneshot::error::TryRecvError;

use super::*;
use crate::store::connection::open_writer;

#[derive(Debug)]
enum TestError {
    Store(StoreError),
    Refused,
}

impl From<StoreError> for TestError {
    fn from(error: StoreError) -> Self {
        TestError::Store(error)
    }
}

impl From<rusqlite::Error> for TestError {
    fn from(error: rusqlite::Error) -> Self {
        TestError::Store(error.into())
    }
}

type Answer<T> = oneshot::Receiver<Result<T, TestError>>;

struct Harness {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    writer: Writer,
    queue: mpsc::Sender<Message>,
    batches: Arc<StdMutex<Vec<usize>>>,
}

fn harness(max_batch: usize, schema: &str) -> Harness {
    harness_with(max_batch, schema, &[])
}

fn harness_with(max_batch: usize, schema: &str, before_commit: &'static [&'static str]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writer.sqlite3");
    let conn = open_writer(&path).unwrap();
    conn.execute_batch(schema).unwrap();
    let (queue, inbox) = mpsc::channel(WRITE_QUEUE_BOUND);
    let batches = Arc::new(StdMutex::new(Vec::new()));
    let seen = Arc::clone(&batches);
    let writer = Writer {
        conn,
        inbox,
        max_batch,
        before_commit,
        touched: Arc::default(),
        counters: Arc::default(),
        observer: Some(Arc::new(move |size| seen.lock().unwrap().push(size))),
        unwritable: false,
    };
    Harness {
        _dir: dir,
        path,
        writer,
        queue,
        batches,
    }
}

impl Harness {
    fn queue<T, F>(&self, work: F) -> Answer<T>
    where
        F: FnOnce(&Connection) -> Result<T, TestError> + Send + 'static,
        T: Send + 'static,
    {
        let (job, answer) = Pending::boxed(work);
        self.queue.try_send(Message::Job(job)).ok().unwrap();
        answer
    }

    /// Closes the queue and runs the writer until it has drained it.
    fn run(self) -> (WriterStats, Vec<usize>, Vec<i64>) {
        let Harness {
            _dir,
            path,
            writer,
            queue,
            batches,
        } = self;
        drop(queue);
        let counters = Arc::clone(&writer.counters);
        writer.run().unwrap();
        let stats = WriterStats {
            jobs_committed: counters.jobs_committed.load(Ordering::Relaxed),
            transactions: counters.transactions.load(Ordering::Relaxed),
        };
        let conn = Connection::open(&path).unwrap();
        let mut select = conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
        let rows = select
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<Vec<i64>, _>>()
            .unwrap();
        let batches = batches.lock().unwrap().clone();
        (stats, batches, rows)
    }
}

fn insert(x: i64) -> impl FnOnce(&Connection) -> Result<(), TestError> + Send + 'static {
    move |conn| {
        conn.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
        Ok(())
    }
}

#[test]
fn queued_jobs_are_committed_in_batches_of_at_most_max_batch() {
    let harness = harness(4, "CREATE TABLE t (x INTEGER)");
    let answers: Vec<_> = (0..10).map(|x| harness.queue(insert(x))).collect();

    let (stats, batches, rows) = harness.run();

    assert_eq!(batches, [4, 4, 2]);
    assert_eq!(
        stats,
        WriterStats {
            jobs_committed: 10,
            transactions: 3
        }
    );
    assert_eq!(rows, (0..10).collect::<Vec<_>>());
    for mut answer in answers {
        assert!(matches!(answer.try_recv(), Ok(Ok(()))));
    }
}

#[test]
fn a_failing_or_panicking_job_rolls_back_only_its_own_savepoint() {
    let harness = harness(16, "CREATE TABLE t (x INTEGER)");
    let first = harness.queue(insert(1));
    let refused = harness.queue(|conn| {
        insert(2)(conn)?;
        Err::<(), _>(TestError::Refused)
    });
    let panicked = harness.queue(|conn| -> Result<(), TestError> {
        insert(3)(conn)?;
        panic!("a bug in a write job");
    });
    let last = harness.queue(insert(4));

    let (stats, batches, rows) = harness.run();

    assert_eq!(batches, [4], "all four ran in one transaction");
    assert_eq!(rows, [1, 4]);
    assert_eq!(stats.jobs_committed, 2);
    assert!(matches!(first.blocking_recv(), Ok(Ok(()))));
    assert!(matches!(
        refused.blocking_recv(),
        Ok(Err(TestError::Refused))
    ));
    assert!(matches!(
        panicked.blocking_recv(),
        Ok(Err(TestError::Store(StoreError::Panicked)))
    ));
    assert!(matches!(last.blocking_recv(), Ok(Ok(()))));
}

#[test]
fn a_failed_commit_fails_every_caller_of_the_batch() {
    // A deferred foreign key is checked at COMMIT, not when the row is inserted.
    let harness = harness(
        16,
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE t (x INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
    );
    let innocent = harness.queue(|conn| {
        conn.execute("INSERT INTO parent (id) VALUES (1)", [])?;
        insert(1)(conn)
    });
    let orphan = harness.queue(insert(99));

    let (stats, batches, rows) = harness.run();

    assert!(rows.is_empty());
    assert!(
        batches.is_empty(),
        "the observer only sees committed batches"
    );
    assert_eq!(stats, WriterStats::default());
    for answer in [innocent, orphan] {
        match answer.blocking_recv() {
            Ok(Err(TestError::Store(StoreError::Sqlite(error)))) => assert_eq!(
                error.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation)
            ),
            other => panic!("expected the COMMIT's error, got {other:?}"),
        }
    }
}

#[test]
fn the_before_commit_statements_run_once_per_batch_after_the_jobs() {
    // Jobs queue into `pending`; the end of each batch notes how many it found (as 1000 +
    // count) and moves the queue into `t`, the way the search index is fed.
    let harness = harness_with(
        3,
        "CREATE TABLE t (x INTEGER); CREATE TABLE pending (x INTEGER);",
        &[
            "INSERT INTO t (x) SELECT 1000 + count(*) FROM pending",
            "INSERT INTO t (x) SELECT x FROM pending",
            "DELETE FROM pending",
        ],
    );
    let queue_x = |x: i64| {
        move |conn: &Connection| {
            conn.execute("INSERT INTO pending (x) VALUES (?1)", [x])?;
            Ok::<_, TestError>(())
        }
    };
    let answers: Vec<_> = (1..=5).map(|x| harness.queue(queue_x(x))).collect();

    let (_, batches, rows) = harness.run();

    assert_eq!(batches, [3, 2]);
    assert_eq!(
        rows,
        [1, 2, 3, 4, 5, 1002, 1003],
        "once per batch, after all of its jobs, with every job's change applied"
    );
    for mut answer in answers {
        assert!(matches!(answer.try_recv(), Ok(Ok(()))));
    }
}

#[test]
fn a_failing_before_commit_statement_fails_the_whole_batch() {
    let harness = harness_with(
        16,
        "CREATE TABLE t (x INTEGER); CREATE TABLE seen (x INTEGER CHECK (x < 100));",
        &["INSERT INTO seen (x) SELECT x FROM t"],
    );
    let fine = harness.queue(insert(1));
    let poison = harness.queue(insert(100));

    let (stats, batches, rows) = harness.run();

    assert!(rows.is_empty(), "nothing of the batch committed");
    assert!(batches.is_empty());
    assert_eq!(stats, WriterStats::default());
    for answer in [fine, poison] {
        assert!(
            matches!(answer.blocking_recv(), Ok(Err(TestError::Store(_)))),
            "every caller of the batch hears of the failure"
        );
    }
}

#[test]
fn no_caller_hears_back_before_the_commit() {
    let harness = harness(16, "CREATE TABLE t (x INTEGER)");
    let mut first = harness.queue(insert(1));
    // Runs after the first job, in the same transaction: its answer must not be out yet.
    let second = harness.queue(move |conn| {
        let before_commit = first.try_recv();
        insert(2)(conn)?;
        Ok((matches!(before_commit, Err(TryRecvError::Empty)), first))
    });

    let (_, batches, _) = harness.run();

    assert_eq!(batches, [2]);
    let (was_pending, first) = second.blocking_recv().unwrap().unwrap();
    assert!(was_pending, "the first caller was answered before COMMIT");
    assert!(matches!(first.blocking_recv(), Ok(Ok(()))));
}

#[test]
fn a_ping_takes_the_write_lock_without_writing() {
    let harness = harness(16, "CREATE TABLE t (x INTEGER)");
    let (reply, answer) = oneshot::channel();
    harness.queue.try_send(Message::Ping(reply)).ok().unwrap();

    let (stats, batches, rows) = harness.run();

    assert!(matches!(answer.blocking_recv(), Ok(Ok(()))));
    assert_eq!(stats, WriterStats::default());
    assert!(batches.is_empty() && rows.is_empty());
}

#[test]
fn a_write_refused_by_the_storage_fails_the_ping_until_a_commit_succeeds() {
    let mut h = harness(8, "CREATE TABLE t (x INTEGER)");
    assert!(h.writer.probe_write_lock().is_ok());
    // What a commit into a filesystem that turned read-only returns (SQLITE_IOERR_WRITE).
    let io = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_WRITE),
        None,
    );
    h.writer.note_outcome(Some(&io));
    assert!(matches!(
        h.writer.probe_write_lock(),
        Err(StoreError::Unwritable)
    ));
    // Any other failure (a constraint at COMMIT, say) says nothing about the storage.
    let busy =
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
    h.writer.note_outcome(Some(&busy));
    assert!(h.writer.probe_write_lock().is_ok());
    h.writer.note_outcome(Some(&io));
    h.writer.note_outcome(None);
    assert!(h.writer.probe_write_lock().is_ok(), "a commit clears it");
}
