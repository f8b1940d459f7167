//! A caller's write closure and its reply channel, erased to one type so writes of any
//! result and error type can share the writer's queue.
//!
//! A job knows how to run against a connection and how to answer its caller; it does not
//! know about transactions or savepoints (the writer wraps it in those) and never answers
//! before the writer says how the batch ended.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::StoreError;

/// Answers a job's caller once the fate of its batch is known: `Ok(())` if the batch
/// committed (the job's own result is then delivered), `Err` if it did not.
pub(super) type Deliver = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// What running a job left behind.
pub(super) struct Ran {
    /// The closure returned `Ok`; its savepoint is kept. On `Err` (or a panic) the writer
    /// rolls the savepoint back, and the caller gets its own error whatever the batch does.
    pub succeeded: bool,
    pub deliver: Deliver,
}

pub(super) trait Job: Send {
    /// Runs the caller's closure on the writer's connection, inside a savepoint.
    fn run(self: Box<Self>, conn: &Connection) -> Ran;

    /// Answers the caller without running the closure: its batch could not start.
    fn abandon(self: Box<Self>, error: StoreError);
}

/// The one implementation of [`Job`]: a closure plus where its result goes.
pub(super) struct Pending<F, T, E> {
    work: F,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Pending<F, T, E>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    /// A job and the receiver its caller waits on.
    pub fn boxed(work: F) -> (Box<dyn Job>, oneshot::Receiver<Result<T, E>>) {
        let (reply, answer) = oneshot::channel();
        (Box::new(Pending { work, reply }), answer)
    }
}

impl<F, T, E> Job for Pending<F, T, E>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Ran {
        let Pending { work, reply } = *self;
        // AssertUnwindSafe: after a panic the closure is gone and the writer rolls its
        // savepoint back, so no state the panic may have left half-done is used again.
        let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_panic| Err(E::from(StoreError::Panicked)));
        let succeeded = result.is_ok();
        let deliver: Deliver = Box::new(move |batch: Result<(), StoreError>| {
            let answer = match (result, batch) {
                // A failed job's own error says more than the batch's; its changes were
                // rolled back either way.
                (Err(own), _) => Err(own),
                (Ok(value), Ok(())) => Ok(value),
                (Ok(_), Err(batch)) => Err(E::from(batch)),
            };
            // The caller may have stopped waiting (its future was dropped); the write
            // stands regardless, and there is nobody left to tell.
            let _ = reply.send(answer);
        });
        Ran { succeeded, deliver }
    }

    fn abandon(self: Box<Self>, error: StoreError) {
        // As in `run`: a caller that stopped waiting needs no answer.
        let _ = self.reply.send(Err(E::from(error)));
    }
}
