//! An inactivity watchdog for any stream: it fails when no item arrives
//! within an idle period, and when an overall budget runs out.
//!
//! This is the cure for a wedged app-server that is alive but silent: the
//! process is up, the pipe is open, and nothing comes. [`Turn`](crate::Turn)
//! runs its stream under one (90 s idle inside a 600 s budget by default).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use futures::Stream;
use pin_project::pin_project;
use tokio::time::{sleep, Instant, Sleep};

/// Why a watched stream was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Expired {
    /// No item for this long.
    #[error("no activity for {0:?}")]
    Idle(Duration),
    /// The whole budget is spent.
    #[error("overall budget of {0:?} spent")]
    Budget(Duration),
}

/// Wraps a stream: yields `Ok(item)` for each item, or one `Err(Expired)`
/// after which it ends. Each item resets the idle timer.
#[pin_project]
#[derive(Debug)]
pub struct Watchdog<S> {
    #[pin]
    inner: S,
    // Boxed so that a watchdog over an `Unpin` stream is `Unpin` itself and
    // `StreamExt::next` works on it without pinning.
    idle_timer: Pin<Box<Sleep>>,
    budget_timer: Option<Pin<Box<Sleep>>>,
    idle: Duration,
    budget: Option<Duration>,
    pause: Arc<PauseState>,
    done: bool,
}

#[derive(Debug, Default)]
struct PauseState {
    holders: AtomicUsize,
    /// Set when the last holder let go: the idle period starts afresh.
    resumed: AtomicBool,
    waker: AtomicWaker,
}

impl<S: Stream> Watchdog<S> {
    /// Watches `inner`: at most `idle` between items, at most `budget` in all
    /// (`None`: no overall limit). The clocks start now.
    pub fn new(inner: S, idle: Duration, budget: Option<Duration>) -> Self {
        Watchdog {
            inner,
            idle_timer: Box::pin(sleep(idle)),
            budget_timer: budget.map(|b| Box::pin(sleep(b))),
            idle,
            budget,
            pause: Arc::default(),
            done: false,
        }
    }

    /// A handle that suspends the idle timer while any [`Pause`] it made is
    /// held (e.g. while a human is asked to approve something). The budget
    /// keeps running.
    pub fn pauser(&self) -> Pauser {
        Pauser(self.pause.clone())
    }
}

/// Makes [`Pause`] guards for one [`Watchdog`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pauser(Arc<PauseState>);

impl Pauser {
    /// Suspends the idle timer until the guard (and every other) is dropped;
    /// then a full idle period starts.
    pub fn pause(&self) -> Pause {
        self.0.holders.fetch_add(1, Ordering::SeqCst);
        Pause(self.0.clone())
    }
}

/// Holds the idle timer of a [`Watchdog`] suspended while it lives.
#[derive(Debug)]
#[must_use = "the idle timer resumes as soon as the pause is dropped"]
pub struct Pause(Arc<PauseState>);

impl Drop for Pause {
    fn drop(&mut self) {
        if self.0.holders.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.resumed.store(true, Ordering::SeqCst);
            self.0.waker.wake();
        }
    }
}

/// `idle` from now; a period too long for an `Instant` (`Duration::MAX`)
/// becomes "about 30 years", as `tokio::time::sleep` does, instead of a panic.
fn after(idle: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(idle)
        .unwrap_or_else(|| now + Duration::from_secs(86400 * 365 * 30))
}

impl<S: Stream> Stream for Watchdog<S> {
    type Item = Result<S::Item, Expired>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        this.pause.waker.register(cx.waker());
        if let Poll::Ready(item) = this.inner.as_mut().poll_next(cx) {
            this.idle_timer.as_mut().reset(after(*this.idle));
            *this.done = item.is_none();
            return Poll::Ready(item.map(Ok));
        }
        if let Some(budget) = this.budget_timer.as_mut() {
            if budget.as_mut().poll(cx).is_ready() {
                *this.done = true;
                return Poll::Ready(Some(Err(Expired::Budget(this.budget.unwrap_or_default()))));
            }
        }
        if this.pause.resumed.swap(false, Ordering::SeqCst) {
            this.idle_timer.as_mut().reset(after(*this.idle));
        }
        if this.pause.holders.load(Ordering::SeqCst) > 0 {
            return Poll::Pending;
        }
        if this.idle_timer.as_mut().poll(cx).is_ready() {
            *this.done = true;
            return Poll::Ready(Some(Err(Expired::Idle(*this.idle))));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use tokio::sync::mpsc;
    use tokio_stream_shim::Receiver;

    /// A minimal `Stream` over an mpsc receiver (tokio-stream is not a dependency).
    mod tokio_stream_shim {
        use super::*;
        pub struct Receiver<T>(pub mpsc::UnboundedReceiver<T>);
        impl<T> Stream for Receiver<T> {
            type Item = T;
            fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
                self.0.poll_recv(cx)
            }
        }
    }

    // Every test runs on paused time: the sleeps below advance tokio's
    // clock instantly, they wait for nothing.
    const IDLE: Duration = Duration::from_secs(90);
    const GAP: Duration = Duration::from_secs(60);
    const BUSY_GAP: Duration = Duration::from_secs(10);
    const PAUSED_FOR: Duration = Duration::from_secs(1000);

    #[tokio::test(start_paused = true)]
    async fn every_item_resets_the_idle_timer() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut w = Watchdog::new(Receiver(rx), IDLE, None);
        let start = Instant::now();
        for i in 0..5 {
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(GAP).await;
                tx.send(i).unwrap();
            });
            assert_eq!(w.next().await, Some(Ok(i)));
        }
        assert_eq!(w.next().await, Some(Err(Expired::Idle(IDLE))));
        assert_eq!(Instant::now() - start, Duration::from_secs(5 * 60 + 90));
        assert_eq!(w.next().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_cuts_off_a_stream_that_is_busy_but_endless() {
        let busy = futures::stream::unfold(0u32, |i| async move {
            tokio::time::sleep(BUSY_GAP).await;
            Some((i, i + 1))
        });
        let w = Watchdog::new(busy, IDLE, Some(Duration::from_secs(600)));
        let items: Vec<_> = w.collect().await;
        // Items at 10 s, 20 s, ... 600 s: the one due with the budget still
        // gets through, because the stream is polled before the timers.
        assert_eq!(items.iter().filter(|i| i.is_ok()).count(), 60);
        assert_eq!(items.len(), 61);
        assert_eq!(
            items.last(),
            Some(&Err(Expired::Budget(Duration::from_secs(600))))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_the_idle_timer_and_release_restarts_it() {
        let (tx, rx) = mpsc::unbounded_channel::<u32>();
        let mut w = Watchdog::new(Receiver(rx), IDLE, None);
        let pause = w.pauser().pause();
        let start = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(PAUSED_FOR).await;
            drop(pause);
            let _keep = tx;
            std::future::pending::<()>().await;
        });
        assert_eq!(w.next().await, Some(Err(Expired::Idle(IDLE))));
        assert_eq!(Instant::now() - start, Duration::from_secs(1090));
    }

    #[tokio::test(start_paused = true)]
    async fn periods_too_long_for_an_instant_never_panic() {
        let mut w = Watchdog::new(
            futures::stream::iter([1, 2]),
            Duration::MAX,
            Some(Duration::MAX),
        );
        let pause = w.pauser().pause();
        assert_eq!(w.next().await, Some(Ok(1)));
        drop(pause);
        assert_eq!(w.next().await, Some(Ok(2)));
        assert_eq!(w.next().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_of_the_inner_stream_ends_the_watchdog() {
        let mut w = Watchdog::new(futures::stream::iter([1, 2]), IDLE, None);
        assert_eq!(w.next().await, Some(Ok(1)));
        assert_eq!(w.next().await, Some(Ok(2)));
        assert_eq!(w.next().await, None);
    }
}
