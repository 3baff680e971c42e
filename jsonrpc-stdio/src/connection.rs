//! The connection's state, shared by every [`Client`](crate::Client) clone,
//! every call future, the reader and the writer; and the only verbs that
//! change it: [`register`](Connection::register),
//! [`resolve`](Connection::resolve), [`abandon`](Connection::abandon),
//! [`die`](Connection::die), [`send`](Connection::send).
//!
//! The liveness of the whole crate rests on three facts kept here:
//!
//! - **Death and registration share one lock** (`state`). A request is
//!   registered and its bytes queued under it, and `die` drains the pending
//!   table under it, so a request is either failed by the drain or refused at
//!   registration: none can slip in after the drain and wait forever.
//! - **The first cause of death wins.** `dead` is set once; later causes
//!   (the client's own close racing the server's exit) are ignored.
//! - **An entry is answered at most once**: by the reader (the response),
//!   the deadline sweeper (a timeout) or `die`, whichever comes first; later
//!   answers for it are ignored. Only its caller removes it: when it takes
//!   the answer, or stops waiting ([`abandon`](Connection::abandon)). The
//!   entry is the whole channel between them: the answer and the caller's
//!   waker live in it, so a request allocates nothing of its own.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::runtime::Handle as Runtime;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::builder::Builder;
use crate::error::{CloseReason, Error};
use crate::lock;
use crate::message::Notification;
use crate::message::{ErrorObject, RequestId, ResultText};
use crate::outbox::{Outbox, Refused, Reservation};
use crate::process::ServerProcess;
use crate::routes::{Filter, IncomingRequest, Queue, Routes};
use crate::stats::Stats;

/// What a pending caller is waiting for.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The server's answer, its result still undecoded.
    Response(Result<ResultText, ErrorObject>),
    /// The answer was longer than the maximum frame length; it was discarded.
    TooLarge { limit: usize },
    /// The connection died first.
    Closed(Arc<CloseReason>),
    /// The request's deadline passed first.
    TimedOut,
}

/// Hashes the ids this connection hands out (0, 1, 2, ...) with one
/// multiplication: SipHash guards tables keyed by what an attacker chooses,
/// and these keys are ours. The multiplier spreads consecutive ids over the
/// high bits, which the table's probing reads.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `i64` keys; kept correct for any other.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_i64(&mut self, n: i64) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A registered request: where its answer is left, and whom to wake then.
struct Waiter {
    answer: Option<Answer>,
    /// The caller's, from its last poll; `None` once woken.
    waker: Option<Waker>,
}

/// Keyed by the numeric id: the connection numbers its own requests, so a
/// response with any other id (a string) answers nobody.
type Pending = HashMap<i64, Waiter, BuildHasherDefault<IdHasher>>;

struct State {
    pending: Pending,
    /// Entries of `pending` not answered yet.
    unanswered: usize,
    /// Answers given since the last registration: more than one, and their
    /// callers are likely about to send as many requests again.
    answered_since_register: usize,
    /// The first cause of death. Set once, under the same lock that guards
    /// `pending`, so no request can be registered after the drain.
    dead: Option<Arc<CloseReason>>,
    /// Every timed request's deadline, earliest first. An entry outlives
    /// its request's answer (removing it would cost a search per answer):
    /// it is dropped when its time comes, or when the stale ones outnumber
    /// the live and the heap is rebuilt. Requests with the connection's
    /// default timeout are pushed in deadline order, which costs a heap
    /// one comparison each.
    deadlines: BinaryHeap<Reverse<(Instant, i64)>>,
    /// When the sweeper looks next; `None`: when told. A deadline earlier
    /// than this tells it.
    next_sweep: Option<Instant>,
}

/// One connection. One owner for each piece: `state` for the pending table
/// and the cause of death, `routes` for subscribers and handlers, `outbox`
/// for bytes on their way out, `process` for the child process. Lock order:
/// `state`, then `outbox`; `routes`, then `state`.
pub(crate) struct Connection {
    state: Mutex<State>,
    next_id: AtomicI64,
    /// Read and written by the reader as it routes; see [`Routes`].
    pub(crate) routes: Mutex<Routes>,
    /// Drained by the writer.
    pub(crate) outbox: Outbox,
    /// Wakes the deadline sweeper when a deadline comes before its next look.
    sweeper: Notify,
    /// Whether the runtime has timers, which the sweeper needs: without
    /// them no sweeper runs, and a request with a deadline is refused.
    timers: bool,
    closed: watch::Sender<Option<Arc<CloseReason>>>,
    process: Option<ServerProcess>,
    /// The runtime the connection was built on: its timers time requests,
    /// whatever awaits them.
    runtime: Runtime,
    /// Cancelled at death: the reader and writer stop on it.
    pub(crate) shutdown: CancellationToken,
    pub(crate) stats: Stats,
    pub(crate) config: Builder,
}

impl Connection {
    /// `timers`: whether `runtime` has its time driver (see `timers`).
    pub(crate) fn new(
        config: Builder,
        process: Option<ServerProcess>,
        runtime: Runtime,
        timers: bool,
    ) -> Self {
        Connection {
            state: Mutex::new(State {
                pending: Pending::default(),
                unanswered: 0,
                answered_since_register: 0,
                dead: None,
                deadlines: BinaryHeap::new(),
                next_sweep: None,
            }),
            next_id: AtomicI64::new(0),
            routes: Mutex::new(Routes::default()),
            outbox: Outbox::new(config.max_queued_bytes, config.framing),
            sweeper: Notify::new(),
            timers,
            closed: watch::channel(None).0,
            process,
            runtime,
            shutdown: CancellationToken::new(),
            stats: Stats::default(),
            config,
        }
    }

    /// The id of the next request: 0, 1, 2, ...
    pub(crate) fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a pending request and queues its bytes in the room
    /// reserved for them, atomically with respect to death. Then, when it
    /// is the only request in flight, writes it out from the caller's
    /// thread if the pipe is free (a sequential caller waits on nothing
    /// else, so the writer task's wake-up would be all of its latency);
    /// with others in flight, or others about to be sent (a burst of
    /// answers just came, so as many callers are about to send again), the
    /// writer task writes them in one burst: written alone, the first of a
    /// burst would cost the server a wake-up of its own, and split the
    /// burst from then on.
    /// A request with a `deadline` is answered [`Answer::TimedOut`] by the
    /// sweeper once it passes. `waker` is woken when the answer comes.
    ///
    /// `room`: what was reserved for the bytes, or `None` to take it now;
    /// when there is none now, nothing is registered and `Ok(false)` says so.
    pub(crate) fn register(
        &self,
        id: i64,
        bytes: &[u8],
        room: Option<Reservation<'_>>,
        deadline: Option<Instant>,
        waker: &Waker,
    ) -> Result<bool, Error> {
        let (alone, wake_sweeper) = {
            let mut st = lock(&self.state);
            if let Some(reason) = &st.dead {
                return Err(Error::Closed(reason.clone()));
            }
            // Queued under the lock: `die` cannot run between this and the
            // registration, so a registered request is always either
            // answered or failed.
            match room {
                Some(room) => {
                    self.outbox.queue(room, bytes);
                }
                None => match self.outbox.try_queue(bytes) {
                    Ok(()) => {}
                    Err(Refused::Full(_)) => return Ok(false),
                    Err(Refused::Closed) => return Err(self.closed_error_locked(&st)),
                },
            }
            st.pending.insert(
                id,
                Waiter {
                    answer: None,
                    waker: Some(waker.clone()),
                },
            );
            st.unanswered += 1;
            let wake_sweeper = deadline.is_some_and(|deadline| st.add_deadline(deadline, id));
            let burst = std::mem::take(&mut st.answered_since_register) > 1;
            (st.unanswered == 1 && !burst, wake_sweeper)
        };
        if wake_sweeper {
            self.sweeper.notify_one();
        }
        // Outside the lock: a write, even one that does not wait, is a
        // system call, and the reader resolves under this lock. A write that
        // fails here is reported to the reader like the writer task's, and
        // this request then fails with the cause of death.
        if alone {
            self.outbox.write_now();
        } else {
            self.outbox.wake_writer();
        }
        Ok(true)
    }

    /// The answer to request `id`, once there is one; the entry is gone
    /// then. Until then, `cx`'s waker is woken when it comes.
    pub(crate) fn poll_answer(&self, id: i64, cx: &mut Context<'_>) -> Poll<Answer> {
        let mut st = lock(&self.state);
        let Some(waiter) = st.pending.get_mut(&id) else {
            // Only the caller removes its entry, and it asks no more then.
            debug_assert!(false, "request {id} polled after its answer");
            return Poll::Ready(Answer::Closed(
                st.dead.clone().unwrap_or_else(closed_by_client),
            ));
        };
        if waiter.answer.is_none() {
            match &mut waiter.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        let answer = st.pending.remove(&id).and_then(|waiter| waiter.answer);
        Poll::Ready(answer.expect("an answered entry holds its answer"))
    }

    /// Hands `answer` to the caller waiting on `id`. Returns false when
    /// nobody waits on it (late, duplicate or unknown id), which is counted.
    /// The reader is the only caller, so answers go out in wire order.
    pub(crate) fn resolve(&self, id: &RequestId, answer: Answer) -> bool {
        let waiting = id
            .as_i64()
            .and_then(|id| lock(&self.state).answer(id, answer));
        match waiting {
            Some(waker) => {
                if let Some(waker) = waker {
                    waker.wake();
                }
                true
            }
            None => {
                self.stats.unknown_responses.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Forgets a request whose caller stopped waiting before its answer
    /// came; tells the server when configured to, unless the connection is
    /// dead (nobody would read it) or the answer had already come.
    pub(crate) fn abandon(&self, id: i64) {
        let was_waiting = {
            let mut st = lock(&self.state);
            let unanswered = st
                .pending
                .remove(&id)
                .is_some_and(|waiter| waiter.answer.is_none());
            if unanswered {
                st.unanswered -= 1;
            }
            unanswered && st.dead.is_none()
        };
        if was_waiting {
            self.cancel(id);
        }
    }

    /// Tells the server, when configured to, that nobody waits for the
    /// answer to request `id` any more.
    pub(crate) fn cancel(&self, id: i64) {
        if let Some(bytes) = self
            .config
            .cancel_notification
            .as_ref()
            .and_then(|cancel| cancel.encode(&RequestId::from(id)))
        {
            self.send_reply("a cancel notification", &bytes);
        }
    }

    /// For the sweeper: answers [`Answer::TimedOut`] every unanswered
    /// request whose deadline is at or before `now`. Returns when to look
    /// next (`None`: when a deadline is added).
    pub(crate) fn expire(&self, now: Instant) -> Option<Instant> {
        let mut wakers = Vec::new();
        let next = {
            let mut st = lock(&self.state);
            while let Some(&Reverse((deadline, id))) = st.deadlines.peek() {
                if deadline > now {
                    break;
                }
                st.deadlines.pop();
                if let Some(Some(waker)) = st.answer(id, Answer::TimedOut) {
                    wakers.push(waker);
                }
            }
            let next = st.deadlines.peek().map(|Reverse((deadline, _))| *deadline);
            st.next_sweep = next;
            next
        };
        wakers.into_iter().for_each(Waker::wake);
        next
    }

    /// Whether deadlines can be kept (see `timers`).
    pub(crate) fn has_timers(&self) -> bool {
        self.timers
    }

    /// The sweeper waits on this between looks.
    pub(crate) fn deadline_added(&self) -> tokio::sync::futures::Notified<'_> {
        self.sweeper.notified()
    }

    /// Marks the connection dead with `cause`, unless it already is; fails
    /// every pending request and ends every subscription. Returns the cause
    /// that won.
    pub(crate) fn die(&self, cause: CloseReason) -> Arc<CloseReason> {
        let (wakers, reason) = {
            let mut st = lock(&self.state);
            if let Some(reason) = &st.dead {
                return reason.clone();
            }
            let reason = Arc::new(cause);
            st.dead = Some(reason.clone());
            let mut wakers = Vec::with_capacity(st.unanswered);
            for waiter in st.pending.values_mut() {
                if waiter.answer.is_none() {
                    waiter.answer = Some(Answer::Closed(reason.clone()));
                    wakers.extend(waiter.waker.take());
                }
            }
            st.unanswered = 0;
            st.deadlines.clear();
            (wakers, reason)
        };
        tracing::debug!(cause = %reason, pending = wakers.len(), "connection dead");
        wakers.into_iter().for_each(Waker::wake);
        self.outbox.close();
        lock(&self.routes).close_all();
        self.closed.send_replace(Some(reason.clone()));
        self.shutdown.cancel();
        reason
    }

    /// Queues bytes for the writer if they fit, unless the connection is
    /// dead. `method` names the message in the error.
    pub(crate) fn send(&self, method: &str, bytes: &[u8]) -> Result<(), Error> {
        match self.outbox.try_push(bytes) {
            Ok(()) => Ok(()),
            Err(Refused::Full(full)) => Err(Error::QueueFull {
                method: method.to_owned(),
                queued: full.queued,
                limit: full.limit,
            }),
            Err(Refused::Closed) => Err(self.closed_error()),
        }
    }

    /// Queues a message the client writes on its own (a refusal, an error
    /// reply, a cancel notification): nobody waits on it, so when it cannot
    /// be queued it is logged and counted, never lost silently.
    pub(crate) fn send_reply(&self, what: &str, bytes: &[u8]) {
        if let Err(e) = self.send(what, bytes) {
            if !e.is_closed() {
                self.stats.unsent_replies.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "could not queue {what}");
            }
        }
    }

    /// Adds a subscriber; on a dead connection its queue is closed at once
    /// instead. Checked under the routes lock, which `die` takes after
    /// setting the cause, so a subscriber is either closed by `die` or here.
    pub(crate) fn subscribe(&self, filter: Filter) -> Arc<Queue<Notification>> {
        let queue = Queue::new(self.config.subscription_capacity);
        let mut routes = lock(&self.routes);
        if self.close_reason().is_some() {
            queue.close();
        } else {
            routes.subscribers.push((filter, queue.clone()));
        }
        queue
    }

    /// Adds a handler of server requests; as for [`subscribe`](Self::subscribe).
    pub(crate) fn handle_requests(&self, filter: Filter) -> Arc<Queue<IncomingRequest>> {
        let queue = Queue::new(self.config.request_queue_capacity);
        let mut routes = lock(&self.routes);
        if self.close_reason().is_some() {
            queue.close();
        } else {
            routes.handlers.push((filter, queue.clone()));
        }
        queue
    }

    pub(crate) fn close_reason(&self) -> Option<Arc<CloseReason>> {
        lock(&self.state).dead.clone()
    }

    /// The error of an operation refused because the connection is dead.
    pub(crate) fn closed_error(&self) -> Error {
        Error::Closed(self.close_reason().unwrap_or_else(closed_by_client))
    }

    fn closed_error_locked(&self, st: &State) -> Error {
        Error::Closed(st.dead.clone().unwrap_or_else(closed_by_client))
    }

    /// Watches for death.
    pub(crate) fn closed(&self) -> watch::Receiver<Option<Arc<CloseReason>>> {
        self.closed.subscribe()
    }

    /// Requests registered and not yet answered.
    pub(crate) fn pending_requests(&self) -> usize {
        lock(&self.state).unanswered
    }

    /// The child process, when this connection started it.
    pub(crate) fn process(&self) -> Option<&ServerProcess> {
        self.process.as_ref()
    }

    /// A timer on the connection's runtime, so a call awaited elsewhere (a
    /// runtime without timers, another executor) is timed all the same.
    pub(crate) fn sleep(&self, after: Duration) -> tokio::time::Sleep {
        let _on = self.runtime.enter();
        tokio::time::sleep(after)
    }

    /// As [`sleep`](Self::sleep), until `deadline`.
    pub(crate) fn sleep_until(&self, deadline: Instant) -> tokio::time::Sleep {
        let _on = self.runtime.enter();
        tokio::time::sleep_until(deadline)
    }
}

impl State {
    /// Leaves `answer` in request `id`'s entry unless it has one. `None`
    /// when nobody waits on `id`; else the caller's waker, if it has polled.
    fn answer(&mut self, id: i64, answer: Answer) -> Option<Option<Waker>> {
        let waiter = self.pending.get_mut(&id)?;
        if waiter.answer.is_some() {
            return None;
        }
        waiter.answer = Some(answer);
        let waker = waiter.waker.take();
        self.unanswered -= 1;
        self.answered_since_register += 1;
        Some(waker)
    }

    /// Adds a deadline; true when the sweeper must look earlier than it
    /// planned. Stale deadlines (of requests answered since) are dropped
    /// when they outnumber the live ones, so the heap stays within twice
    /// the requests in flight, whatever their rate.
    fn add_deadline(&mut self, deadline: Instant, id: i64) -> bool {
        if self.deadlines.len() > 2 * self.unanswered + 64 {
            let pending = &self.pending;
            self.deadlines.retain(|Reverse((_, id))| {
                pending
                    .get(id)
                    .is_some_and(|waiter| waiter.answer.is_none())
            });
        }
        self.deadlines.push(Reverse((deadline, id)));
        let earlier = self.next_sweep.map_or(true, |next| deadline < next);
        if earlier {
            self.next_sweep = Some(deadline);
        }
        earlier
    }
}

/// The cause reported when the connection is gone without one recorded:
/// only the client ends a connection without saying why.
pub(crate) fn closed_by_client() -> Arc<CloseReason> {
    Arc::new(CloseReason::ClosedByClient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::CancelNotification;
    use serde_json::Value;

    fn connection(config: Builder) -> Connection {
        Connection::new(config, None, Runtime::current(), true)
    }

    /// Registers request `id` as a call does: room first, then the entry.
    /// The future is its answer.
    async fn register(
        connection: &Connection,
        id: i64,
    ) -> Result<impl std::future::Future<Output = Answer> + '_, Error> {
        let bytes = format!("request {id}").into_bytes();
        let room = connection
            .outbox
            .reserve(bytes.len())
            .await
            .map_err(|_| connection.closed_error())?;
        connection.register(
            id,
            &bytes,
            Some(room),
            None,
            futures::task::noop_waker_ref(),
        )?;
        Ok(std::future::poll_fn(move |cx| {
            connection.poll_answer(id, cx)
        }))
    }

    fn exited(code: i32) -> CloseReason {
        use std::os::unix::process::ExitStatusExt;
        CloseReason::Exited {
            status: std::process::ExitStatus::from_raw(code << 8),
            stderr_tail: String::new(),
        }
    }

    #[tokio::test]
    async fn death_fails_every_pending_request_and_the_first_cause_wins() {
        let connection = connection(Builder::default());
        let first = register(&connection, 0).await.unwrap();
        let second = register(&connection, 1).await.unwrap();
        let won = connection.die(exited(3));
        let lost = connection.die(CloseReason::ClosedByClient);
        assert!(Arc::ptr_eq(&won, &lost), "a later cause replaced the first");
        for answer in [first.await, second.await] {
            match answer {
                Answer::Closed(reason) => assert!(Arc::ptr_eq(&reason, &won)),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(connection.pending_requests(), 0);
        assert!(connection.shutdown.is_cancelled());
    }

    #[tokio::test]
    async fn a_request_registered_after_death_is_refused_with_the_cause() {
        let connection = connection(Builder::default());
        connection.die(exited(5));
        let room = connection.outbox.reserve(1).await;
        assert!(room.is_err(), "a dead connection's queue gave room");
        // Room reserved before death, registered after: still refused.
        let connection = self::connection(Builder::default());
        let room = connection.outbox.reserve(1).await.unwrap();
        connection.die(exited(5));
        let refused =
            connection.register(0, b"x", Some(room), None, futures::task::noop_waker_ref());
        assert!(
            matches!(&refused, Err(Error::Closed(r)) if r.exit_status().unwrap().code() == Some(5)),
            "{refused:?}"
        );
        assert_eq!(connection.pending_requests(), 0);
    }

    #[tokio::test]
    async fn a_response_resolves_its_caller_once() {
        let connection = connection(Builder::default());
        let rx = register(&connection, 7).await.unwrap();
        let id = RequestId::from(7);
        let answer = |v: i64| Answer::Response(Ok(ResultText::from_value(&Value::from(v))));
        assert!(connection.resolve(&id, answer(1)));
        assert!(!connection.resolve(&id, answer(2)));
        assert!(matches!(rx.await, Answer::Response(Ok(v)) if v.as_bytes() == b"1"));
        // Our ids are numbers: the string "8" answers nobody, not request 8.
        let _rx = register(&connection, 8).await.unwrap();
        assert!(!connection.resolve(&RequestId::from("8"), answer(3)));
        assert_eq!(connection.pending_requests(), 1);
        let unknown = connection.stats.unknown_responses.load(Ordering::Relaxed);
        assert_eq!(unknown, 2);
    }

    #[tokio::test]
    async fn abandoning_removes_the_entry_and_sends_one_cancel() {
        let connection =
            connection(Builder::default().cancel_notification(CancelNotification::lsp()));
        let _rx = register(&connection, 0).await.unwrap();
        let queued = connection.outbox.queued_bytes();
        connection.abandon(0);
        assert_eq!(connection.pending_requests(), 0);
        assert!(
            connection.outbox.queued_bytes() > queued,
            "no cancel queued"
        );
        // Twice, or after the answer: nothing more to cancel.
        let queued = connection.outbox.queued_bytes();
        connection.abandon(0);
        assert_eq!(connection.outbox.queued_bytes(), queued);
    }

    /// Deadlines of answered requests are not searched for and removed one
    /// by one; they must still not pile up at a high request rate.
    #[tokio::test(start_paused = true)]
    async fn stale_deadlines_never_outnumber_the_live_ones_for_long() {
        let connection = connection(Builder::default());
        let deadline = Instant::now() + Duration::from_secs(60);
        let waker = futures::task::noop_waker_ref();
        for id in 0..10_000 {
            let room = connection.outbox.try_reserve(1).ok();
            connection
                .register(id, b"x", room, Some(deadline), waker)
                .unwrap();
            {
                let st = lock(&connection.state);
                let (all, live) = (st.deadlines.len(), st.unanswered);
                assert!(all <= 2 * live + 65, "{all} deadlines, {live} live");
            }
            // Four in flight: the oldest is answered as each is sent.
            if id >= 4 {
                let answer = Answer::Response(Ok(ResultText::from_value(&Value::Null)));
                assert!(connection.resolve(&RequestId::from(id - 4), answer));
            }
        }
        // Expiry answers only the live: 4 time out, none twice.
        assert_eq!(connection.expire(deadline), None);
        assert_eq!(connection.pending_requests(), 0);
        let timed_out = (9_996..10_000)
            .filter(|&id| {
                let mut cx = Context::from_waker(waker);
                matches!(
                    connection.poll_answer(id, &mut cx),
                    Poll::Ready(Answer::TimedOut)
                )
            })
            .count();
        assert_eq!(timed_out, 4);
    }

    #[tokio::test]
    async fn a_subscriber_added_after_death_is_closed_at_once() {
        use futures::StreamExt;
        let connection = Arc::new(connection(Builder::default()));
        let before = connection.subscribe(Filter::prefix(""));
        let before = crate::Subscription::new(before, connection.clone());
        connection.die(CloseReason::ClosedByClient);
        let after = connection.subscribe(Filter::prefix(""));
        let after = crate::Subscription::new(after, connection.clone());
        for subscription in [before, after] {
            let items: Vec<_> = subscription.collect().await;
            assert!(matches!(&items[..], [Err(Error::Closed(_))]), "{items:?}");
        }
        assert!(lock(&connection.routes).subscribers.is_empty());
    }
}
