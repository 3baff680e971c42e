//! A request on its way: [`Call`] and [`TypedCall`], the futures callers
//! await; the guard that abandons a request whose caller stops waiting; and
//! the [`CancelNotification`] then sent.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

use crate::client::Client;
use crate::connection::{Answer, Connection};
use crate::error::Error;
use crate::message::{encode_notification, encode_request, RawResult, RequestId};
use crate::typed;

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
        encode_notification(&self.method, Some(&(self.params)(id))).ok()
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
    client: &'a Client,
    method: String,
    params: Option<P>,
    timeout: Option<Duration>,
}

impl<'a, P> Call<'a, P> {
    pub(crate) fn new(client: &'a Client, method: &str, params: P) -> Self {
        Call {
            client,
            method: method.to_owned(),
            params: Some(params),
            timeout: client.connection().config.request_timeout,
        }
    }

    /// Overrides the connection's default timeout for this call; `None`
    /// waits for as long as the server lives.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
}

impl<'a, P: Serialize + Send + 'a> Call<'a, P> {
    /// Leaves the result undecoded: the future yields the bytes of the
    /// response's `result` as they came (see [`RawResult`]).
    pub fn raw(self) -> RawCall<'a, P> {
        RawCall { call: self }
    }

    /// Sends the request, waits for its answer and hands its result to
    /// `decode` (with the method, for errors). Takes `self`: a borrow would
    /// ask `P: Sync` of every caller.
    async fn round_trip<T>(
        self,
        decode: fn(&str, RawResult) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let connection = self.client.connection();
        let id = connection.next_id();
        let span = tracing::debug_span!("request", method = %self.method, id);
        async move {
            let bytes = encode_request(
                &RequestId::from(id),
                &self.method,
                self.params.as_ref(),
                connection.request_size_hint(),
            )
            .map_err(|e| Error::Encode {
                method: self.method.clone(),
                source: Arc::new(e),
            })?;
            connection.saw_request_size(bytes.len());
            // Made before anything is queued, on the connection's runtime.
            let timer = self.timeout.map(|after| (connection.sleep(after), after));
            let call = async {
                // Waits while the server is not reading its input; the
                // timeout covers this wait too.
                let room = match connection.outbox.reserve(bytes.len()).await {
                    Ok(room) => room,
                    Err(_) => return Err(connection.closed_error()),
                };
                let rx = connection.register(id, bytes, room)?;
                let guard = Abandon {
                    connection,
                    id: Some(id),
                };
                // Outside tokio's cooperative budget: an answer that is
                // there is taken at once. Under the budget, a task
                // awaiting many calls (a `FuturesUnordered`) re-polls
                // every woken call each time the budget runs out, so
                // failing N pending calls at death took O(N²) polls
                // (10,000: 30 ms; 100,000: 7 s). One answer is one event;
                // it cannot starve anything.
                let answer = tokio::task::unconstrained(rx).await;
                guard.disarm();
                match answer {
                    Ok(Answer::Response(Ok(result))) => decode(&self.method, result),
                    Ok(Answer::Response(Err(error))) => Err(Error::Rpc {
                        method: self.method.clone(),
                        error,
                    }),
                    Ok(Answer::TooLarge { limit }) => Err(Error::ResponseTooLarge {
                        method: self.method.clone(),
                        limit,
                    }),
                    Ok(Answer::Closed(reason)) => Err(Error::Closed(reason)),
                    // The sender is only dropped unsent by `die` racing a
                    // removal; the connection is dead either way.
                    Err(_) => Err(connection.closed_error()),
                }
            };
            match timer {
                // Dropping `call` at the deadline drops its guard, which
                // abandons the request.
                Some((timer, after)) => tokio::select! {
                    biased;
                    result = call => result,
                    _ = timer => Err(Error::Timeout {
                        method: self.method.clone(),
                        after,
                    }),
                },
                None => call.await,
            }
        }
        .instrument(span)
        .await
    }
}

/// Decodes a result for the caller, on the caller's task: the reader only
/// hands bytes over.
fn decode<T: DeserializeOwned>(method: &str, result: RawResult) -> Result<T, Error> {
    result.deserialize().map_err(|e| Error::Decode {
        method: method.to_owned(),
        source: Arc::new(e),
    })
}

impl<'a, P: Serialize + Send + 'a> IntoFuture for Call<'a, P> {
    type Output = Result<Value, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Value, Error>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.round_trip(decode))
    }
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
    type IntoFuture = Pin<Box<dyn Future<Output = Result<RawResult, Error>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.call.round_trip(|_, raw| Ok(raw)))
    }
}

/// Removes a pending entry when its caller stops waiting.
struct Abandon<'a> {
    connection: &'a Connection,
    id: Option<i64>,
}

impl Abandon<'_> {
    fn disarm(mut self) {
        self.id = None;
    }
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.connection.abandon(id);
        }
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
    type IntoFuture = Pin<Box<dyn Future<Output = Result<R::Result, Error>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        // Straight from the frame's bytes into `R::Result`: no `Value`.
        Box::pin(self.call.round_trip(decode))
    }
}
