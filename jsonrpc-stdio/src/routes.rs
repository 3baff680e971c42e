//! Where server-initiated messages go: notification subscribers and
//! server→client request handlers.
//!
//! Each subscriber has its own bounded queue, filled by the reader without
//! waiting: a slow subscriber can never stall the reader, other subscribers or
//! responses. When a queue is full the newest notification is dropped and a
//! lag marker takes its place, so the subscriber learns exactly where, and how
//! many, it lost.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use futures::Stream;
use serde::Serialize;
use serde_json::Value;

use crate::connection::Connection;
use crate::error::Error;
use crate::message::{encode_response, ErrorCode, ErrorObject, Notification, Request, RequestId};

/// Which methods a subscription or request handler receives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Filter {
    /// Every method.
    All,
    /// Exactly this method.
    Method(String),
    /// Every method that starts with this prefix, e.g. `codex/event/`.
    Prefix(String),
}

impl Filter {
    /// Exactly `method`.
    pub fn method(method: impl Into<String>) -> Self {
        Filter::Method(method.into())
    }

    /// Every method starting with `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Filter::Prefix(prefix.into())
    }

    pub(crate) fn matches(&self, method: &str) -> bool {
        self.matches_bytes(method.as_bytes())
    }

    /// As [`matches`](Self::matches), on a method's bytes: a notification's
    /// method is matched against every subscriber without being checked as
    /// UTF-8 again for each.
    pub(crate) fn matches_bytes(&self, method: &[u8]) -> bool {
        match self {
            Filter::All => true,
            Filter::Method(m) => m.as_bytes() == method,
            Filter::Prefix(p) => method.starts_with(p.as_bytes()),
        }
    }
}

/// How many notifications a subscriber's queue holds that share the read
/// buffer (32 KiB) their frame is in. One behind them is copied into a
/// buffer of its own as it is queued: a subscriber that keeps up copies
/// nothing, and one that lags keeps at most this many read buffers alive,
/// not one per notification in its backlog.
const SHARED_BACKLOG: usize = 256;

/// A bounded queue written by the reader without waiting and read by one
/// consumer. Overflow turns into a lag marker instead of blocking: the
/// marker takes the place of the lost items, after the backlog that was
/// kept, so the consumer learns of a loss when it reaches that point.
pub(crate) struct Queue<T> {
    state: Mutex<QueueState<T>>,
    waker: AtomicWaker,
    capacity: usize,
    /// Set when the consumer went away; the reader drops the route. Written
    /// only under the `state` lock (so `offer` and `abandon` agree on who
    /// owns an item), read without it by the reader's per-message sweep.
    abandoned: AtomicBool,
}

struct QueueState<T> {
    items: VecDeque<Slot<T>>,
    /// Set when the connection died or the routes were dropped; the consumer
    /// drains what is queued, then ends.
    closed: bool,
}

enum Slot<T> {
    Item(T),
    Lagged(u64),
}

/// What happened to an item offered to a queue.
pub(crate) enum Offer<T> {
    Queued,
    /// The queue was full; the item was counted as lost.
    Dropped,
    /// The consumer is gone; the item is handed back.
    Abandoned(T),
}

impl<T> Queue<T> {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::new(),
                closed: false,
            }),
            waker: AtomicWaker::new(),
            capacity: capacity.max(1),
            abandoned: AtomicBool::new(false),
        })
    }

    /// Queues `item`, or counts it lost when the queue is full. An item
    /// queued behind [`SHARED_BACKLOG`] others goes through `backlogged`
    /// first.
    pub(crate) fn offer(&self, item: T, backlogged: impl FnOnce(T) -> T) -> Offer<T> {
        let mut st = crate::lock(&self.state);
        if self.abandoned.load(Ordering::Relaxed) {
            return Offer::Abandoned(item);
        }
        let offer = if st.items.len() < self.capacity {
            let item = if st.items.len() >= SHARED_BACKLOG {
                backlogged(item)
            } else {
                item
            };
            st.items.push_back(Slot::Item(item));
            Offer::Queued
        } else {
            match st.items.back_mut() {
                Some(Slot::Lagged(n)) => *n += 1,
                _ => st.items.push_back(Slot::Lagged(1)),
            }
            Offer::Dropped
        };
        drop(st);
        self.waker.wake();
        offer
    }

    /// Like [`offer`](Self::offer), but never drops: a full queue refuses.
    pub(crate) fn offer_or_refuse(&self, item: T) -> Result<(), T> {
        let mut st = crate::lock(&self.state);
        if self.abandoned.load(Ordering::Relaxed) || st.items.len() >= self.capacity {
            return Err(item);
        }
        st.items.push_back(Slot::Item(item));
        drop(st);
        self.waker.wake();
        Ok(())
    }

    pub(crate) fn close(&self) {
        crate::lock(&self.state).closed = true;
        self.waker.wake();
    }

    pub(crate) fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// Marks the consumer gone and returns what it never took.
    fn abandon(&self) -> Vec<T> {
        let mut st = crate::lock(&self.state);
        self.abandoned.store(true, Ordering::Relaxed);
        std::mem::take(&mut st.items)
            .into_iter()
            .filter_map(|s| match s {
                Slot::Item(t) => Some(t),
                Slot::Lagged(_) => None,
            })
            .collect()
    }

    fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Result<T, u64>>> {
        self.waker.register(cx.waker());
        let mut st = crate::lock(&self.state);
        match st.items.pop_front() {
            Some(Slot::Item(t)) => Poll::Ready(Some(Ok(t))),
            Some(Slot::Lagged(n)) => Poll::Ready(Some(Err(n))),
            None if st.closed => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

/// How one notification fared.
#[derive(Default)]
pub(crate) struct Delivery {
    pub(crate) matched: u64,
    pub(crate) dropped: u64,
}

/// The routes the reader delivers to. Owned by the [`Connection`]; cleared on death.
#[derive(Default)]
pub(crate) struct Routes {
    pub(crate) subscribers: Vec<(Filter, Arc<Queue<Notification>>)>,
    pub(crate) handlers: Vec<(Filter, Arc<Queue<IncomingRequest>>)>,
}

impl Routes {
    /// Hands `n` to every matching subscriber, in registration order. The
    /// last one gets the original, the others a clone (which shares its
    /// bytes).
    pub(crate) fn deliver(&mut self, n: Notification) -> Delivery {
        self.subscribers.retain(|(_, q)| !q.is_abandoned());
        let mut delivery = Delivery::default();
        let Some(last) = self
            .subscribers
            .iter()
            .rposition(|(f, _)| f.matches_bytes(n.method_bytes()))
        else {
            return delivery;
        };
        let mut offer = |queue: &Queue<Notification>, n| {
            delivery.matched += 1;
            if let Offer::Dropped = queue.offer(n, Notification::detached) {
                delivery.dropped += 1;
            }
        };
        for (filter, queue) in &self.subscribers[..last] {
            if filter.matches_bytes(n.method_bytes()) {
                offer(queue, n.clone());
            }
        }
        offer(&self.subscribers[last].1, n);
        delivery
    }

    /// Finds the first handler for `req`, or hands it back.
    pub(crate) fn dispatch(&mut self, req: IncomingRequest) -> Result<(), IncomingRequest> {
        self.handlers.retain(|(_, q)| !q.is_abandoned());
        let Some((_, q)) = self.handlers.iter().find(|(f, _)| f.matches(req.method())) else {
            return Err(req);
        };
        q.offer_or_refuse(req)
    }

    pub(crate) fn close_all(&mut self) {
        for (_, q) in self.subscribers.drain(..) {
            q.close();
        }
        for (_, q) in self.handlers.drain(..) {
            q.close();
        }
    }
}

/// Server notifications that match a [`Filter`], in wire order.
///
/// Yields `Ok(notification)`; `Err(Error::Lagged { skipped })` where this
/// subscriber fell too far behind and lost notifications; and, when the
/// connection dies, a last `Err(Error::Closed(reason))` after everything
/// queued before the death. Dropping it unsubscribes.
///
/// When a subscriber learns of a lag: the marker sits in the place of the
/// lost notifications, after the backlog it kept (the oldest
/// [`Builder::subscription_capacity`](crate::Builder::subscription_capacity)
/// ones). So it comes once those are read, and what follows it was received
/// after the loss.
#[must_use = "a subscription receives nothing unless polled"]
pub struct Subscription {
    queue: Arc<Queue<Notification>>,
    connection: Arc<Connection>,
    finished: bool,
}

impl Subscription {
    pub(crate) fn new(queue: Arc<Queue<Notification>>, connection: Arc<Connection>) -> Self {
        Subscription {
            queue,
            connection,
            finished: false,
        }
    }
}

impl Stream for Subscription {
    type Item = Result<Notification, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.queue.poll_next(cx) {
            Poll::Ready(Some(Ok(n))) => Poll::Ready(Some(Ok(n))),
            Poll::Ready(Some(Err(skipped))) => Poll::Ready(Some(Err(Error::Lagged { skipped }))),
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(
                    self.connection
                        .close_reason()
                        .map(|r| Err(Error::Closed(r))),
                )
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.queue.abandon();
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

/// Server→client requests that match a [`Filter`], in wire order. Ends when
/// the connection dies. Dropping it answers every request still queued with an
/// internal error, and later ones with "method not found".
#[must_use = "requests queue up unanswered unless this is polled"]
pub struct IncomingRequests {
    queue: Arc<Queue<IncomingRequest>>,
}

impl IncomingRequests {
    pub(crate) fn new(queue: Arc<Queue<IncomingRequest>>) -> Self {
        IncomingRequests { queue }
    }
}

impl Stream for IncomingRequests {
    type Item = IncomingRequest;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<IncomingRequest>> {
        match self.queue.poll_next(cx) {
            Poll::Ready(Some(Ok(r))) => Poll::Ready(Some(r)),
            Poll::Ready(Some(Err(_))) => unreachable!("request queues refuse, never lag"),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for IncomingRequests {
    fn drop(&mut self) {
        // Dropping each unanswered request answers it with an internal error.
        drop(self.queue.abandon());
    }
}

impl fmt::Debug for IncomingRequests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingRequests").finish_non_exhaustive()
    }
}

/// A request from the server, waiting for this client's answer.
///
/// Answer it with [`respond`](Self::respond) (or the `respond_*` helpers).
/// Dropped unanswered, it answers itself with an internal error (`-32603`), so
/// the server is never left waiting.
pub struct IncomingRequest {
    request: Request,
    connection: Arc<Connection>,
    answered: bool,
}

impl IncomingRequest {
    pub(crate) fn new(request: Request, connection: Arc<Connection>) -> Self {
        IncomingRequest {
            request,
            connection,
            answered: false,
        }
    }

    /// The id the server chose (its own id space).
    pub fn id(&self) -> &RequestId {
        &self.request.id
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.request.method
    }

    /// The params, or `None` when absent.
    pub fn params(&self) -> Option<&Value> {
        self.request.params.as_ref()
    }

    /// The whole request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Takes the request out without answering it (the caller answers).
    pub(crate) fn into_request(mut self) -> Request {
        self.answered = true;
        self.request.clone()
    }

    /// Sends the answer. Fails when the connection is dead, or with
    /// [`Error::QueueFull`] when the server has stopped reading its input
    /// (then the answer was not queued).
    pub fn respond(mut self, result: Result<Value, ErrorObject>) -> Result<(), Error> {
        self.answered = true;
        self.connection.send(
            &self.request.method,
            &encode_response(&self.request.id, &result),
        )
    }

    /// Answers with a result.
    pub fn respond_ok(self, result: impl Serialize) -> Result<(), Error> {
        match serde_json::to_value(result) {
            Ok(v) => self.respond(Ok(v)),
            Err(e) => {
                let method = self.request.method.clone();
                let err = ErrorObject::new(ErrorCode::INTERNAL_ERROR, "could not encode result");
                self.respond(Err(err))?;
                Err(Error::Encode {
                    method,
                    source: Arc::new(e),
                })
            }
        }
    }

    /// Answers with an error.
    pub fn respond_err(self, code: ErrorCode, message: impl Into<String>) -> Result<(), Error> {
        self.respond(Err(ErrorObject::new(code, message)))
    }
}

impl Drop for IncomingRequest {
    fn drop(&mut self) {
        if !self.answered {
            let err = ErrorObject::new(
                ErrorCode::INTERNAL_ERROR,
                format!("client dropped `{}` without answering", self.request.method),
            );
            self.connection.send_reply(
                "an error reply to a request dropped unanswered",
                &encode_response(&self.request.id, &Err(err)),
            );
        }
    }
}

impl fmt::Debug for IncomingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingRequest")
            .field("id", &self.request.id)
            .field("method", &self.request.method)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_queued_behind_the_shared_backlog_goes_through_backlogged() {
        let queue = Queue::<usize>::new(SHARED_BACKLOG + 2);
        let mut copied = Vec::new();
        for i in 0..SHARED_BACKLOG + 3 {
            queue.offer(i, |i| {
                copied.push(i);
                i
            });
        }
        // The last one found the queue full: dropped, never copied.
        assert_eq!(copied, [SHARED_BACKLOG, SHARED_BACKLOG + 1]);
    }
}
