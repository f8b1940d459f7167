//! One connection's outgoing queue: bounded, filled by the hub without waiting, drained by the
//! connection's session.
//!
//! Why not `tokio::sync::mpsc`: a bounded tokio channel allocates its first block of 32 slots
//! and its cache-padded shared state up front, about 2 KiB per connection whether or not
//! anything is ever queued, and keeps blocks after a burst. Most gateway connections are idle
//! most of the time, so here an empty queue owns no buffer: it allocates when something is
//! queued and gives the memory back once it has drained after a burst.
//!
//! Bound: at most `capacity` items; [`Queue::try_push`] refuses more (the hub then kicks the
//! connection as a slow consumer). Wake-ups are never lost: [`Notify::notify_one`] leaves a
//! permit when the session is not waiting, and the session checks the queue before waiting.
//! This module knows nothing about WebSockets or rooms.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// Capacity kept after the queue drains; a larger buffer (left by a burst) is freed.
const KEEP_WHEN_EMPTY: usize = 4;

pub struct Queue<T> {
    items: Mutex<VecDeque<T>>,
    ready: Notify,
    capacity: usize,
}

/// The queue was full: the item is handed back.
#[derive(Debug)]
pub struct Full<T>(pub T);

impl<T> Queue<T> {
    pub fn new(capacity: usize) -> Queue<T> {
        Queue {
            items: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            capacity,
        }
    }

    fn items(&self) -> MutexGuard<'_, VecDeque<T>> {
        // Only push, pop and reassignment run under the lock; none of them panics halfway, so
        // a poisoned queue is still consistent.
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` unless `capacity` items are waiting already. Never waits.
    pub fn try_push(&self, item: T) -> Result<(), Full<T>> {
        {
            let mut items = self.items();
            if items.len() >= self.capacity {
                return Err(Full(item));
            }
            items.push_back(item);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// The oldest item, waiting until there is one. Cancel-safe: dropping the future loses
    /// nothing.
    pub async fn pop(&self) -> T {
        loop {
            if let Some(item) = self.try_pop() {
                return item;
            }
            self.ready.notified().await;
        }
    }

    /// The oldest item, if any.
    pub fn try_pop(&self) -> Option<T> {
        let mut items = self.items();
        let item = items.pop_front()?;
        if items.is_empty() && items.capacity() > KEEP_WHEN_EMPTY {
            *items = VecDeque::new();
        }
        Some(item)
    }

    pub fn len(&self) -> usize {
        self.items().len()
    }

    /// Items that may be queued while the queue stays at most half full.
    pub fn room_below_half(&self) -> usize {
        (self.capacity / 2).saturating_sub(self.len())
    }

    pub fn is_empty(&self) -> bool {
        self.items().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn bounded_in_order_and_empty_queues_own_no_buffer() {
        let q = Queue::new(3);
        for i in 0..3 {
            q.try_push(i).unwrap();
        }
        assert!(matches!(q.try_push(9), Err(Full(9))));
        assert_eq!((q.pop().await, q.pop().await, q.pop().await), (0, 1, 2));
        assert!(q.is_empty());
        let big = Queue::new(1000);
        for i in 0..500 {
            big.try_push(i).unwrap();
        }
        for _ in 0..500 {
            big.pop().await;
        }
        assert_eq!(big.items().capacity(), 0, "the burst's buffer is freed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_pop_wakes_and_no_wakeup_is_lost() {
        let q = Arc::new(Queue::new(8));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { (q.pop().await, q.pop().await) }
        });
        tokio::task::yield_now().await;
        q.try_push(1).unwrap();
        q.try_push(2).unwrap();
        assert_eq!(waiter.await.unwrap(), (1, 2));
        // Pushed while nobody waits: the next pop finds it at once.
        q.try_push(3).unwrap();
        assert_eq!(q.pop().await, 3);
        // A pop cancelled while waiting takes nothing with it.
        let cancelled = tokio::time::timeout(std::time::Duration::from_millis(1), q.pop()).await;
        assert!(cancelled.is_err());
        q.try_push(4).unwrap();
        assert_eq!(q.pop().await, 4);
    }
}
