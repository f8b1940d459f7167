//! [`Dormant`]: a future polled only after its own waker fired.
//!
//! A connection's task selects on the connection and, beside it, on futures that are almost
//! never ready: the idle deadline and the daemon's shutdown signal. A `select!` polls every
//! branch whenever the task wakes, and the connection wakes it at least once per request, so
//! each request paid for polling a timer and a cancellation token that had nothing to say
//! (about 2% of a small request's instructions). Wrapped in [`Dormant`], they are polled only
//! when something they wait for has happened.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Wraps `inner` so that it is polled the first time and then only after it asked to be.
pub fn dormant<F: Future>(inner: F) -> Dormant<F> {
    Dormant {
        // Boxed once per connection, so that `Dormant` itself is `Unpin`.
        inner: Box::pin(inner),
        signal: Arc::new(Signal {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        }),
        waker: None,
    }
}

pub struct Dormant<F> {
    inner: Pin<Box<F>>,
    signal: Arc<Signal>,
    /// The waker `inner` is polled with, made once.
    waker: Option<Waker>,
}

/// What `inner`'s waker does: note that it fired and wake the task that owns the [`Dormant`].
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> Future for Dormant<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Always the current task's waker (a compare when it is unchanged), registered before
        // the flag is read so that a wake between the two is not lost.
        this.signal.task.register(cx.waker());
        if !this.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let waker = this
            .waker
            .get_or_insert_with(|| Waker::from(this.signal.clone()));
        this.inner.as_mut().poll(&mut Context::from_waker(waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// Counts its polls; ready once `ready` is set, pending (without arranging a wake) before.
    struct Counting {
        polls: Arc<AtomicUsize>,
        ready: Arc<AtomicBool>,
    }

    impl Future for Counting {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.ready.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    #[test]
    fn the_inner_future_is_polled_first_and_then_only_when_it_woke() {
        let polls = Arc::new(AtomicUsize::new(0));
        let ready = Arc::new(AtomicBool::new(false));
        let mut fut = Box::pin(dormant(Counting {
            polls: polls.clone(),
            ready: ready.clone(),
        }));
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..5 {
            assert!(fut.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1,
            "polled once, then left alone"
        );

        // Its condition changed, but nothing woke it: still not polled.
        ready.store(true, Ordering::SeqCst);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 1);

        // Woken through the waker it was given: polled, and ready.
        fut.signal.wake_by_ref();
        assert!(fut.as_mut().poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_inside_fires_and_wakes_the_task() {
        let started = tokio::time::Instant::now();
        dormant(tokio::time::sleep(Duration::from_secs(30))).await;
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_cancellation_inside_ends_a_select_beside_a_busy_branch() {
        let token = tokio_util::sync::CancellationToken::new();
        let cancelled = dormant(token.clone().cancelled_owned());
        tokio::pin!(cancelled);
        let cancel = token.clone();
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            cancel.cancel();
        });
        // The first branch is ready at every other poll, as a busy connection is.
        loop {
            tokio::select! {
                biased;
                _ = tokio::task::yield_now() => {}
                _ = &mut cancelled => break,
            }
        }
        assert!(token.is_cancelled());
    }
}
