//! The single writer: one thread that owns the only write connection and commits the jobs
//! queued to it in groups.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` each COMMIT costs an
//! fsync. So instead of every caller taking the lock and syncing, callers queue their
//! closures here, and the thread runs whatever is waiting in ONE transaction (group
//! commit), each job inside its own savepoint so one failure does not sink the others.
//! Callers hear back only after the COMMIT is durable.
//!
//! It must not run anything but write jobs: no reads for callers, no HTTP, no metrics
//! library (it reports batch sizes through a plain callback).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::hooks::Action;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, Mutex};
use tracing::{debug, error, warn};

use super::error::duplicate;
use super::job::{Job, Pending, Ran};
use super::StoreError;

/// How many writes may wait for the writer. At the limit, `write()` awaits until the
/// writer has taken a batch off the queue: backpressure on the callers, never unbounded
/// memory and never a dropped write. 4096 is 16 full batches of the default size.
pub(super) const WRITE_QUEUE_BOUND: usize = 4096;

const WRITER_THREAD_NAME: &str = "roost-db-writer";

/// Called on the writer thread with the number of jobs in each committed transaction.
/// It delays every caller of that batch, so it must be cheap (bump a histogram, no I/O).
pub type BatchObserver = Arc<dyn Fn(usize) + Send + Sync>;

/// Counters since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Jobs that returned `Ok` and whose transaction committed.
    pub jobs_committed: u64,
    /// Committed transactions (each holds one batch of jobs).
    pub transactions: u64,
}

#[derive(Default)]
struct Counters {
    jobs_committed: AtomicU64,
    transactions: AtomicU64,
    /// Committed batches that changed a watched table (`Store::generation`).
    generation: AtomicU64,
}

enum Message {
    Job(Box<dyn Job>),
    /// Take the write lock and give it back, to prove the writer is alive and not blocked.
    Ping(oneshot::Sender<Result<(), StoreError>>),
    /// Stop accepting messages; everything already queued still runs.
    Shutdown,
}

/// The async side of the writer, held by the `Store`.
pub(super) struct WriterHandle {
    queue: mpsc::Sender<Message>,
    watched_tables: &'static [&'static str],
    counters: Arc<Counters>,
    /// Taken by the first `close()`; a second `close()` waits on the lock until the
    /// thread has been joined.
    thread: Mutex<Option<JoinHandle<Result<(), StoreError>>>>,
}

impl WriterHandle {
    /// Starts the writer thread. It ends when `close()` is called or when every handle is
    /// dropped, in both cases after running what was queued.
    pub fn spawn(
        conn: Connection,
        max_batch: usize,
        before_commit: &'static [&'static str],
        watched_tables: &'static [&'static str],
        observer: Option<BatchObserver>,
    ) -> Result<WriterHandle, StoreError> {
        let (queue, inbox) = mpsc::channel(WRITE_QUEUE_BOUND);
        let counters = Arc::new(Counters::default());
        let touched = Arc::new(AtomicBool::new(false));
        if !watched_tables.is_empty() {
            let seen = Arc::clone(&touched);
            // Called by SQLite for every row a statement changes (triggers included), so it
            // only compares a name and sets a flag.
            conn.update_hook(Some(
                move |_: Action, _db: &str, table: &str, _rowid: i64| {
                    if watched_tables.contains(&table) {
                        seen.store(true, Ordering::Relaxed);
                    }
                },
            ));
        }
        let writer = Writer {
            conn,
            inbox,
            // A batch of zero would never take a job off the queue.
            max_batch: max_batch.max(1),
            before_commit,
            touched,
            counters: Arc::clone(&counters),
            observer,
            unwritable: false,
        };
        let thread = std::thread::Builder::new()
            .name(WRITER_THREAD_NAME.into())
            .spawn(move || writer.run())?;
        Ok(WriterHandle {
            queue,
            watched_tables,
            counters,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (job, answer) = Pending::boxed(work);
        if self.queue.send(Message::Job(job)).await.is_err() {
            return Err(E::from(StoreError::Closed));
        }
        // The reply is dropped unanswered only if the writer thread died.
        answer
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::Closed)))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Message::Ping(reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    pub fn stats(&self) -> WriterStats {
        WriterStats {
            jobs_committed: self.counters.jobs_committed.load(Ordering::Relaxed),
            transactions: self.counters.transactions.load(Ordering::Relaxed),
        }
    }

    pub fn generation(&self) -> u64 {
        // Acquire: pairs with the Release bump, made after the COMMIT.
        self.counters.generation.load(Ordering::Acquire)
    }

    pub fn watches(&self, table: &str) -> bool {
        self.watched_tables.contains(&table)
    }

    pub async fn close(&self) -> Result<(), StoreError> {
        // Queued behind the jobs already waiting, so they still run. An error means an
        // earlier close got there first, which is fine.
        let _ = self.queue.send(Message::Shutdown).await;
        let mut thread = self.thread.lock().await;
        let Some(handle) = thread.take() else {
            return Ok(());
        };
        match tokio::task::spawn_blocking(move || handle.join()).await {
            Ok(Ok(finished)) => finished,
            Ok(Err(_panic)) => Err(StoreError::Panicked),
            // The runtime is shutting down; the thread still finishes the queue on its own.
            Err(_cancelled) => Err(StoreError::Closed),
        }
    }

    #[cfg(test)]
    pub async fn take_thread_for_test(&self) -> JoinHandle<Result<(), StoreError>> {
        let taken = self.thread.lock().await.take();
        taken.expect("the writer thread was already joined")
    }
}

/// The thread's side: the connection and the receiving end of the queue.
struct Writer {
    conn: Connection,
    inbox: mpsc::Receiver<Message>,
    max_batch: usize,
    /// Run after the batch's jobs, outside their savepoints, before COMMIT
    /// ([`super::migrations::BEFORE_COMMIT`]).
    before_commit: &'static [&'static str],
    /// Set by the update hook when a job changed a watched table; taken at the end of each
    /// batch.
    touched: Arc<AtomicBool>,
    counters: Arc<Counters>,
    observer: Option<BatchObserver>,
    /// Set when the last write failed because the storage cannot be written (read-only or
    /// failing: [`StoreError::Unwritable`]), cleared by the next commit. Taking the write lock
    /// needs no disk write, so without this `ping_writer` (and `/ready`) would not notice.
    unwritable: bool,
}

impl Writer {
    fn run(mut self) -> Result<(), StoreError> {
        // `None` once the queue is closed (Shutdown, or every handle dropped) and empty.
        while let Some(first) = self.inbox.blocking_recv() {
            let mut messages = vec![first];
            // Whatever is already waiting joins this batch; nothing waits for more to come.
            while messages.len() < self.max_batch {
                match self.inbox.try_recv() {
                    Ok(message) => messages.push(message),
                    Err(_empty_or_closed) => break,
                }
            }
            self.handle(messages);
        }
        self.checkpoint()?;
        self.conn.close().map_err(|(_conn, error)| error)?;
        debug!("database writer stopped");
        Ok(())
    }

    fn handle(&mut self, messages: Vec<Message>) {
        let mut jobs = Vec::with_capacity(messages.len());
        let mut pings = Vec::new();
        for message in messages {
            match message {
                Message::Job(job) => jobs.push(job),
                Message::Ping(reply) => pings.push(reply),
                Message::Shutdown => self.inbox.close(),
            }
        }
        if !jobs.is_empty() {
            self.commit_batch(jobs);
        }
        for reply in pings {
            // A pinger that stopped waiting needs no answer.
            let _ = reply.send(self.probe_write_lock());
        }
    }

    /// Runs `jobs` in one transaction, each in its own savepoint, then answers every caller.
    fn commit_batch(&mut self, jobs: Vec<Box<dyn Job>>) {
        if let Err(error) = self.control("BEGIN IMMEDIATE") {
            warn!(%error, jobs = jobs.len(), "could not start a write transaction");
            self.note_outcome(Some(&error));
            for job in jobs {
                job.abandon(StoreError::from(duplicate(&error)));
            }
            return;
        }

        let mut ran: Vec<Ran> = Vec::with_capacity(jobs.len());
        let mut not_run = jobs.into_iter();
        // Set when savepoint bookkeeping itself fails: the transaction can no longer be
        // trusted to hold exactly the successful jobs, so all of it is rolled back.
        let mut broken = None;
        for job in not_run.by_ref() {
            if let Err(error) = self.control("SAVEPOINT roost_job") {
                job.abandon(StoreError::from(duplicate(&error)));
                broken = Some(error);
                break;
            }
            let outcome = job.run(&self.conn);
            let closed = if outcome.succeeded {
                self.control("RELEASE roost_job")
            } else {
                self.control("ROLLBACK TO roost_job")
                    .and_then(|()| self.control("RELEASE roost_job"))
            };
            ran.push(outcome);
            if let Err(error) = closed {
                broken = Some(error);
                break;
            }
        }

        if broken.is_none() {
            // Whatever the jobs queued for the end of the batch. A failure here leaves the
            // transaction half-finished, so none of it may commit.
            broken = self
                .before_commit
                .iter()
                .find_map(|sql| self.control(sql).err());
        }

        let committed = match broken {
            Some(error) => {
                for job in not_run {
                    job.abandon(StoreError::from(duplicate(&error)));
                }
                Err(error)
            }
            None => self.control("COMMIT"),
        };

        match committed {
            Ok(()) => {
                self.note_outcome(None);
                // Before any answer: a caller that hears back sees the new generation.
                if self.touched.swap(false, Ordering::Relaxed) {
                    self.counters.generation.fetch_add(1, Ordering::Release);
                }
                let succeeded = ran.iter().filter(|job| job.succeeded).count();
                // Counters before answers: a caller that got `Ok` sees itself counted.
                self.counters
                    .jobs_committed
                    .fetch_add(succeeded as u64, Ordering::Relaxed);
                self.counters.transactions.fetch_add(1, Ordering::Relaxed);
                self.observe(ran.len());
                for job in ran {
                    (job.deliver)(Ok(()));
                }
            }
            Err(error) => {
                // Nothing of the batch was committed.
                self.touched.store(false, Ordering::Relaxed);
                warn!(%error, jobs = ran.len(), "write batch rolled back");
                self.note_outcome(Some(&error));
                self.rollback();
                for job in ran {
                    (job.deliver)(Err(StoreError::from(duplicate(&error))));
                }
            }
        }
    }

    /// Runs one of the transaction-control statements every batch and job needs, from the
    /// statement cache: parsing them anew each time was a measurable share of a small write.
    fn control(&self, sql: &str) -> Result<(), rusqlite::Error> {
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }

    fn observe(&self, batch_size: usize) {
        if let Some(observer) = &self.observer {
            // A panicking metrics hook must not take the writer down with it.
            if catch_unwind(AssertUnwindSafe(|| observer(batch_size))).is_err() {
                warn!("the write batch observer panicked");
            }
        }
    }

    /// Ends a transaction that failed (a failed COMMIT can leave it open).
    fn rollback(&self) {
        if self.conn.is_autocommit() {
            return;
        }
        if let Err(error) = self.conn.execute_batch("ROLLBACK") {
            // The next BEGIN will fail and so will `ping_writer`, which is how /ready and
            // the watchdog learn about it.
            error!(%error, "could not roll back a failed write batch");
        }
    }

    fn probe_write_lock(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        self.conn.execute_batch("ROLLBACK")?;
        if self.unwritable {
            return Err(StoreError::Unwritable);
        }
        Ok(())
    }

    /// Remembers whether the storage refused the last write (`None`: it committed).
    fn note_outcome(&mut self, error: Option<&rusqlite::Error>) {
        self.unwritable =
            error.is_some_and(|e| matches!(StoreError::from(duplicate(e)), StoreError::Unwritable));
    }

    /// Folds the WAL back into the database and empties it, so a stopped Roost leaves one
    /// self-contained file behind.
    fn checkpoint(&self) -> Result<(), StoreError> {
        let (busy, log_frames, checkpointed): (i64, i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })?;
        if busy != 0 {
            // Nothing is lost: the WAL is replayed at the next open.
            warn!(
                log_frames,
                checkpointed, "a reader blocked the WAL checkpoint at close"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
