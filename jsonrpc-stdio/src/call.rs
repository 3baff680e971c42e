//! A request on its way: [`Call`], [`RawCall`] and [`TypedCall`], what
//! callers build; the [`ResponseFuture`] they await, which sends the request,
//! waits for its answer and, dropped early, abandons it; and the
//! [`CancelNotification`] then sent.
//!
//! A request costs no task, no channel and no timer of its own: its answer
//! and waker live in its pending entry, and one sweeper per connection
//! times out every request (see `Connection::expire`). Only a request that
//! must wait for room in the outgoing queue (the server is not reading)
//! boxes that wait.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::client::Client;
use crate::connection::{Answer, Connection};
use crate::error::Error;
use crate::message::{
    encode_notification, encode_request, Misread, RawResult, RequestId, ResultText,
};
use crate::typed;
use crate::write_json::with_scratch;

/// The notification sent when a request is abandoned (dropped or timed out),
/// so the server can stop working on it.
#[derive(Clone)]
pub struct CancelNotification {
    method: String,
    params: fn(&RequestId) -> Value,
}

impl CancelNotification {
    /// `method` with params built from the abandoned request's id.
    pub fn new(method: impl Into<String>, params: fn(&RequestId) -> Value) -> Self {
        CancelNotification {
            method: method.into(),
            params,
        }
    }

    /// LSP's `$/cancelRequest` with `{"id": id}`.
    pub fn lsp() -> Self {
        Self::new("$/cancelRequest", |id| serde_json::json!({ "id": id }))
    }

    /// MCP's `notifications/cancelled` with `{"requestId": id, "reason": ...}`.
    pub fn mcp() -> Self {
        Self::new(
            "notifications/cancelled",
            |id| serde_json::json!({ "requestId": id, "reason": "request abandoned by the client" }),
        )
    }
}

impl CancelNotification {
    /// The notification abandoning `id`, or `None` when its params cannot
    /// be encoded (then nothing is sent: the request is forgotten all the
    /// same).
    pub(crate) fn encode(&self, id: &RequestId) -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        encode_notification(&mut bytes, &self.method, Some(&(self.params)(id))).ok()?;
        Some(bytes)
    }
}

impl fmt::Debug for CancelNotification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CancelNotification")
            .field(&self.method)
            .finish()
    }
}

/// A request being built; await it to send it. See [`Client::request`].
#[must_use = "a request is sent only when awaited"]
pub struct Call<'a, P> {
    connection: &'a Connection,
    method: &'a str,
    params: P,
    timeout: Option<Duration>,
}

impl<'a, P> Call<'a, P> {
    pub(crate) fn new(client: &'a Client, method: &'a str, params: P) -> Self {
        let connection = &**client.connection();
        Call {
            connection,
            method,
            params,
            timeout: connection.config.request_timeout,
        }
    }

    /// Overrides the connection's default timeout for this call; `None`
    /// waits for as long as the server lives.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Leaves the result undecoded: the future yields the bytes of the
    /// response's `result` as they came (see [`RawResult`]).
    pub fn raw(self) -> RawCall<'a, P> {
        RawCall { call: self }
    }

    fn into_response<T>(self, decode: Decode<T>) -> ResponseFuture<'a, P, T> {
        ResponseFuture {
            connection: self.connection,
            method: self.method,
            timeout: self.timeout,
            decode,
            stage: Stage::Unsent(self.params),
        }
    }
}

impl<'a, P: Serialize + Send + 'a> IntoFuture for Call<'a, P> {
    type Output = Result<Value, Error>;
    type IntoFuture = ResponseFuture<'a, P, Value>;

    fn into_future(self) -> Self::IntoFuture {
        self.into_response(decode)
    }
}

/// How a result becomes what its caller asked for.
type Decode<T> = fn(ResultText) -> Result<T, Misread>;

/// Decodes a result for the caller, on the caller's task: the reader only
/// hands bytes over, which decoding also checks are JSON (see
/// [`ResultText`]).
fn decode<T: DeserializeOwned>(result: ResultText) -> Result<T, Misread> {
    result.deserialize()
}

/// A request whose result is kept undecoded; await it to send it. See
/// [`Client::request_raw`] and [`Call::raw`].
#[must_use = "a request is sent only when awaited"]
pub struct RawCall<'a, P> {
    call: Call<'a, P>,
}

impl<'a, P> From<Call<'a, P>> for RawCall<'a, P> {
    fn from(call: Call<'a, P>) -> Self {
        RawCall { call }
    }
}

impl<P> RawCall<'_, P> {
    /// Overrides the connection's default timeout for this call.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.call = self.call.timeout(timeout);
        self
    }
}

impl<'a, P: Serialize + Send + 'a> IntoFuture for RawCall<'a, P> {
    type Output = Result<RawResult, Error>;
    type IntoFuture = ResponseFuture<'a, P, RawResult>;

    fn into_future(self) -> Self::IntoFuture {
        self.call.into_response(ResultText::into_raw)
    }
}

/// A typed request being built; await it to send it. See [`Client::call`].
#[must_use = "a request is sent only when awaited"]
pub struct TypedCall<'a, R: typed::Request> {
    call: Call<'a, R::Params>,
    result: PhantomData<fn() -> R::Result>,
}

impl<'a, R: typed::Request> TypedCall<'a, R> {
    pub(crate) fn new(call: Call<'a, R::Params>) -> Self {
        TypedCall {
            call,
            result: PhantomData,
        }
    }

    /// Overrides the default timeout for this call.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.call = self.call.timeout(timeout);
        self
    }
}

impl<'a, R> IntoFuture for TypedCall<'a, R>
where
    R: typed::Request,
    R::Params: Send + 'a,
    R::Result: DeserializeOwned + 'a,
{
    type Output = Result<R::Result, Error>;
    type IntoFuture = ResponseFuture<'a, R::Params, R::Result>;

    fn into_future(self) -> Self::IntoFuture {
        // Straight from the frame's bytes into `R::Result`: no `Value`.
        self.call.into_response(decode)
    }
}

/// A request on its way: sent when first polled, ready with its decoded
/// result. What [`Call`], [`RawCall`] and [`TypedCall`] become when awaited.
///
/// # Cancel safety
/// Dropped before its first poll, it has sent nothing. Dropped while it
/// waits for room in the outgoing queue, it gives the room back and sends
/// nothing. Dropped later, it abandons its request: the pending entry goes
/// (a late response is ignored) and the configured [`CancelNotification`]
/// is sent.
#[must_use = "a request is sent only when awaited"]
pub struct ResponseFuture<'a, P, T> {
    connection: &'a Connection,
    method: &'a str,
    timeout: Option<Duration>,
    decode: Decode<T>,
    stage: Stage<'a, P>,
}

enum Stage<'a, P> {
    /// Not polled yet: nothing sent.
    Unsent(P),
    /// Waiting for room in the outgoing queue; registers the request once
    /// there is room. Rare (the server is not reading), so boxed.
    Queuing(Pin<Box<dyn Future<Output = Result<i64, Error>> + Send + 'a>>),
    /// Registered and queued: waiting for the answer to this id.
    Sent(i64),
    Done,
}

// Nothing in it is ever pinned: the params are moved out by the first poll,
// and the boxed wait is pinned on the heap. So it may move between polls
// whatever `P` is, and callers need not pin it.
impl<P, T> Unpin for ResponseFuture<'_, P, T> {}

impl<'a, P: Serialize + Send + 'a, T> Future for ResponseFuture<'a, P, T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.stage {
                Stage::Unsent(_) => {
                    let Stage::Unsent(params) = std::mem::replace(&mut this.stage, Stage::Done)
                    else {
                        unreachable!("matched above")
                    };
                    match this.send(params, cx) {
                        // Registered with this poll's waker: nothing to
                        // look at before it is woken.
                        Ok(stage @ Stage::Sent(_)) => {
                            this.stage = stage;
                            return Poll::Pending;
                        }
                        Ok(stage) => this.stage = stage,
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                Stage::Queuing(queuing) => match queuing.as_mut().poll(cx) {
                    Poll::Ready(Ok(id)) => this.stage = Stage::Sent(id),
                    Poll::Ready(Err(e)) => {
                        this.stage = Stage::Done;
                        return Poll::Ready(Err(e));
                    }
                    Poll::Pending => return Poll::Pending,
                },
                // No cooperative budget is spent here: an answer that is
                // there is taken at once. Under the budget, a task awaiting
                // many calls (a `FuturesUnordered`) re-polls every woken
                // call each time the budget runs out, so failing N pending
                // calls at death took O(N²) polls. One answer is one event;
                // it cannot starve anything.
                Stage::Sent(id) => {
                    let id = *id;
                    let answer = std::task::ready!(this.connection.poll_answer(id, cx));
                    this.stage = Stage::Done;
                    return Poll::Ready(this.finish(id, answer));
                }
                Stage::Done => panic!("a ResponseFuture polled after it completed"),
            }
        }
    }
}

impl<'a, P: Serialize + Send + 'a, T> ResponseFuture<'a, P, T> {
    /// Serializes the request, then registers and queues it when there is
    /// room (nearly always), or starts waiting for room.
    fn send(&mut self, params: P, cx: &Context<'_>) -> Result<Stage<'a, P>, Error> {
        let connection = self.connection;
        let method = self.method;
        let timeout = self.timeout;
        if timeout.is_some() && !connection.has_timers() {
            return Err(Error::Runtime {
                problem: "the client's runtime has no timers, which a request timeout needs (build it with enable_all or enable_time, or call without a timeout)",
            });
        }
        let id = connection.next_id();
        tracing::trace!(method, id, "request");
        with_scratch(|bytes| {
            encode_request(bytes, &RequestId::from(id), method, Some(&params)).map_err(|e| {
                Error::Encode {
                    method: method.to_owned(),
                    source: Arc::new(e),
                }
            })?;
            // The timeout counts from here, and covers a wait for room.
            let deadline = timeout.map(|after| Instant::now() + after);
            if connection.register(id, bytes, None, deadline, cx.waker())? {
                return Ok(Stage::Sent(id));
            }
            // No room now (the server is not reading): wait for it.
            let bytes = bytes.clone();
            Ok(Stage::Queuing(Box::pin(async move {
                let queued = async {
                    let Ok(room) = connection.outbox.reserve(bytes.len()).await else {
                        return Err(connection.closed_error());
                    };
                    // Registered with a waker that does nothing: the answer
                    // is polled right after, with the caller's.
                    let waker = futures::task::noop_waker_ref();
                    connection.register(id, &bytes, Some(room), deadline, waker)?;
                    Ok(id)
                };
                match deadline.zip(timeout) {
                    Some((deadline, after)) => tokio::select! {
                        biased;
                        queued = queued => queued,
                        _ = connection.sleep_until(deadline) => Err(Error::Timeout {
                            method: method.to_owned(),
                            after,
                        }),
                    },
                    None => queued.await,
                }
            })))
        })
    }

    fn finish(&self, id: i64, answer: Answer) -> Result<T, Error> {
        let method = self.method;
        match answer {
            Answer::Response(Ok(result)) => (self.decode)(result).map_err(|misread| {
                let e = match misread {
                    Misread::Decode(e) => e,
                    Misread::Malformed(e) => {
                        let stats = &self.connection.stats;
                        stats.unparsable.fetch_add(1, Ordering::Relaxed);
                        e
                    }
                };
                Error::Decode {
                    method: method.to_owned(),
                    source: Arc::new(e),
                }
            }),
            Answer::Response(Err(error)) => Err(Error::Rpc {
                method: method.to_owned(),
                error,
            }),
            Answer::TooLarge { limit } => Err(Error::ResponseTooLarge {
                method: method.to_owned(),
                limit,
            }),
            Answer::Closed(reason) => Err(Error::Closed(reason)),
            Answer::TimedOut => {
                // The server may still be working on it: tell it to stop.
                self.connection.cancel(id);
                Err(Error::Timeout {
                    method: method.to_owned(),
                    after: self.timeout.unwrap_or_default(),
                })
            }
        }
    }
}

impl<P, T> Drop for ResponseFuture<'_, P, T> {
    fn drop(&mut self) {
        if let Stage::Sent(id) = self.stage {
            self.connection.abandon(id);
        }
    }
}

impl<P, T> fmt::Debug for ResponseFuture<'_, P, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match &self.stage {
            Stage::Unsent(_) => "unsent",
            Stage::Queuing(_) => "waiting for room",
            Stage::Sent(_) => "sent",
            Stage::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("method", &self.method)
            .field("stage", &stage)
            .finish()
    }
}

// A request can be awaited in a spawned task: its future is `Send` when its
// params are.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<ResponseFuture<'static, Value, Value>>();
    send::<ResponseFuture<'static, &'static serde_json::value::RawValue, RawResult>>();
};
