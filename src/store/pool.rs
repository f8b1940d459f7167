//! A fixed set of read-only connections, lent out one closure at a time.
//!
//! With WAL, readers see the last committed state and never block the writer, so reads
//! skip the writer's queue entirely. Reads run on tokio's blocking threads. This module
//! must not open a connection that can write (they all have `query_only=ON`).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connection::open_reader;
use super::StoreError;

pub(super) struct ReadPool {
    shared: Arc<Shared>,
}

struct Shared {
    /// One permit per connection: a read waits here when all of them are lent out, so at
    /// most `size` reads run at once and the rest queue (in FIFO order) for a connection.
    /// Closed by `close()`, which fails waiting and later reads with `Closed`.
    permits: Arc<Semaphore>,
    /// Idle connections. Until `close()`, holding a permit guarantees one is here.
    idle: Mutex<Vec<Connection>>,
}

impl Shared {
    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // Poisoning needs a panic while the lock is held, and nothing that can panic runs
        // under it (push, pop, clear); the Vec is consistent either way.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ReadPool {
    /// Opens `size` connections now, so a bad path or permission fails at startup rather
    /// than on the first read.
    pub fn open(path: &Path, size: usize) -> Result<ReadPool, StoreError> {
        // Zero connections would make every read wait forever.
        let size = size.max(1);
        let idle = (0..size)
            .map(|_| open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReadPool {
            shared: Arc::new(Shared {
                permits: Arc::new(Semaphore::new(size)),
                idle: Mutex::new(idle),
            }),
        })
    }

    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let permit = Arc::clone(&self.shared.permits)
            .acquire_owned()
            .await
            .map_err(|_closed| E::from(StoreError::Closed))?;
        let shared = Arc::clone(&self.shared);
        // The connection goes back to the pool from the blocking thread, so it is not lost
        // if the caller stops waiting, nor if `work` panics (the guard's Drop runs on unwind).
        let task = tokio::task::spawn_blocking(move || match Lent::take(shared, permit) {
            Some(lent) => work(lent.conn()),
            None => Err(E::from(StoreError::Closed)),
        });
        match task.await {
            Ok(result) => result,
            Err(failed) if failed.is_panic() => Err(E::from(StoreError::Panicked)),
            // Cancelled: the runtime is shutting down.
            Err(_cancelled) => Err(E::from(StoreError::Closed)),
        }
    }

    /// What SQLite holds for the idle connections. Under the pool's lock, so none of them is
    /// lent out (and used by another thread) while it is read.
    pub fn idle_memory(&self) -> super::DbMemory {
        self.shared
            .idle()
            .iter()
            .map(super::DbMemory::of)
            .fold(super::DbMemory::default(), |sum, m| sum + m)
    }

    /// Refuses new reads and closes idle connections; connections still lent out are
    /// closed when their read finishes.
    pub fn close(&self) {
        // Under the lock, so a connection coming back cannot slip in after the clear.
        let mut idle = self.shared.idle();
        self.shared.permits.close();
        idle.clear();
    }
}

/// A connection out of the pool, returned on drop.
struct Lent {
    conn: Option<Connection>,
    shared: Arc<Shared>,
    /// Released after `drop` has put the connection back, so the next permit holder is
    /// sure to find one.
    _permit: OwnedSemaphorePermit,
}

impl Lent {
    /// `None` only if `close()` emptied the pool after this permit was granted: the pool
    /// starts with one connection per permit and every lent connection is put back before
    /// its permit is released.
    fn take(shared: Arc<Shared>, permit: OwnedSemaphorePermit) -> Option<Lent> {
        let conn = shared.idle().pop()?;
        Some(Lent {
            conn: Some(conn),
            shared,
            _permit: permit,
        })
    }

    fn conn(&self) -> &Connection {
        // `conn` is only taken out in `drop`.
        self.conn
            .as_ref()
            .expect("a lent connection is present until dropped")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut idle = self.shared.idle();
        // After close(), connections are not kept: dropping one closes it.
        if !self.shared.permits.is_closed() {
            idle.push(conn);
        }
    }
}
