//! [`Client`]: the clonable handle users hold. Its methods are thin: the
//! state and its verbs are the [`Connection`]'s, the child's lifecycle is
//! its owner's ([`ServerProcess`]). The last clone dropped kills the server.

use std::fmt;
use std::process::ExitStatus;
use std::sync::Arc;

use serde::Serialize;

use crate::builder::Builder;
use crate::call::{Call, RawCall, TypedCall};
use crate::connection::{closed_by_client, Connection};
use crate::error::{CloseReason, Error};
use crate::message::encode_notification;
use crate::process::{ServerCommand, ServerProcess};
use crate::routes::{Filter, IncomingRequests, Subscription};
use crate::stats::ConnectionStats;
use crate::typed;
use crate::write_json::with_scratch;

/// Owns the server process on behalf of every [`Client`] clone.
struct Handle {
    connection: Arc<Connection>,
}

impl Drop for Handle {
    /// The last handle is gone: nobody can talk to the server any more. The
    /// kill is handed to a thread of its own (it walks `/proc`): `Drop`
    /// returns at once, and the kill completes even if the runtime is
    /// shutting down. Never panics.
    fn drop(&mut self) {
        self.connection.die(CloseReason::ClosedByClient);
        if let Some(process) = self.connection.process() {
            process.release_in_background();
        }
    }
}

/// A connection to a JSON-RPC server. Cheap to clone; every clone talks to the
/// same server. When the last clone is dropped the server is killed (use
/// [`close`](Self::close) to end it gracefully).
///
/// ```no_run
/// # async fn demo() -> Result<(), jsonrpc_stdio::Error> {
/// use jsonrpc_stdio::{Client, ServerCommand};
/// use serde_json::json;
///
/// let client = Client::spawn(ServerCommand::new("my-server").arg("--stdio"))?;
/// let answer = client.request("echo", json!({"x": 1})).await?;
/// client.notify("ping", json!(null))?;
/// client.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("pid", &self.pid())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Client {
    /// Settings for a new connection.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Starts `command` with default settings (see [`Builder::spawn`]).
    pub fn spawn(command: ServerCommand) -> Result<Client, Error> {
        Builder::default().spawn(command)
    }

    pub(crate) fn new(connection: Arc<Connection>) -> Client {
        Client {
            handle: Arc::new(Handle { connection }),
        }
    }

    pub(crate) fn connection(&self) -> &Arc<Connection> {
        &self.handle.connection
    }

    /// Calls `method` and returns its result. Await it directly, or set a
    /// timeout for this call first: `client.request(m, p).timeout(Some(d)).await`.
    ///
    /// Fails at once with [`Error::Closed`] when the connection is dead.
    /// While the outgoing queue is full (the server is not reading its
    /// input; see [`Builder::max_queued_bytes`]) it waits for room, within
    /// its timeout. The timeout runs on the connection's runtime, so the
    /// call may be awaited from any runtime or executor.
    ///
    /// # Cancel safety
    /// Dropping the future before its message was queued sends nothing.
    /// Dropping it later abandons the request: its pending entry is removed
    /// (a late response is ignored) and the configured
    /// [`CancelNotification`](crate::CancelNotification) is sent.
    pub fn request<'a, P: Serialize>(&'a self, method: &'a str, params: P) -> Call<'a, P> {
        Call::new(self, method, params)
    }

    /// Calls `method` and returns its result undecoded: the bytes of the
    /// response's `result`, as the server wrote them, checked to be one JSON
    /// value (if not, [`Error::Decode`](crate::Error::Decode)). For results
    /// to pass on, store, or decode later, without building a `Value`.
    ///
    /// # Cancel safety
    /// As for [`request`](Self::request).
    pub fn request_raw<'a, P: Serialize>(&'a self, method: &'a str, params: P) -> RawCall<'a, P> {
        RawCall::from(Call::new(self, method, params))
    }

    /// Calls a typed request: `R::METHOD` with `R::Params`, decoded as
    /// `R::Result`, straight from the response's bytes (no `Value` is built).
    ///
    /// # Cancel safety
    /// As for [`request`](Self::request).
    pub fn call<R: typed::Request>(&self, params: R::Params) -> TypedCall<'_, R> {
        TypedCall::new(self.request(R::METHOD, params))
    }

    /// Sends a notification. Fails at once with [`Error::Closed`] when the
    /// connection is dead, and with [`Error::QueueFull`] when the server has
    /// not read [`Builder::max_queued_bytes`] of what was sent to it (then
    /// nothing was queued; try again later, or treat the server as stuck).
    pub fn notify<P: Serialize>(&self, method: &str, params: P) -> Result<(), Error> {
        with_scratch(|bytes| {
            encode_notification(bytes, method, Some(&params)).map_err(|e| Error::Encode {
                method: method.to_owned(),
                source: Arc::new(e),
            })?;
            self.connection().send(method, bytes)
        })
    }

    /// Sends a typed notification.
    pub fn notify_typed<N: typed::Notification>(&self, params: N::Params) -> Result<(), Error> {
        self.notify(N::METHOD, params)
    }

    /// Receives the server's notifications that match `filter`, from now on.
    /// Registration is immediate: a subscription made before a request is
    /// sent sees every notification the server wrote before that request's
    /// response.
    pub fn subscribe(&self, filter: Filter) -> Subscription {
        let connection = self.connection();
        Subscription::new(connection.subscribe(filter), connection.clone())
    }

    /// Receives the server's requests whose method matches `filter`. The
    /// first registered stream whose filter matches gets each request; a
    /// request that no stream matches is answered `-32601 method not found`.
    pub fn requests(&self, filter: Filter) -> IncomingRequests {
        IncomingRequests::new(self.connection().handle_requests(filter))
    }

    /// Whether the connection is dead. Cheap.
    pub fn is_closed(&self) -> bool {
        self.connection().close_reason().is_some()
    }

    /// Why the connection died, if it did.
    pub fn close_reason(&self) -> Option<Arc<CloseReason>> {
        self.connection().close_reason()
    }

    /// Resolves when the connection dies, with the cause.
    ///
    /// # Cancel safety
    /// Cancel safe: it only watches.
    pub async fn closed(&self) -> Arc<CloseReason> {
        let mut rx = self.connection().closed();
        let reason = rx
            .wait_for(Option::is_some)
            .await
            .map(|r| r.clone())
            .ok()
            .flatten();
        reason.unwrap_or_else(closed_by_client)
    }

    /// The server's process id, when this client started it.
    pub fn pid(&self) -> Option<u32> {
        self.connection().process().map(ServerProcess::pid)
    }

    /// What the reader has met so far (bad frames, unknown ids, lag), and
    /// what is in flight now: requests pending, bytes queued to write.
    pub fn stats(&self) -> ConnectionStats {
        let connection = self.connection();
        connection.stats.snapshot(
            connection.pending_requests(),
            connection.outbox.queued_bytes(),
        )
    }

    /// Ends the connection gracefully and returns the server's exit status
    /// (`None` without a process). Pending requests fail with
    /// [`CloseReason::ClosedByClient`] at once. Then: stdin is closed; after
    /// the stdin grace the process group gets SIGTERM; after the SIGTERM
    /// grace the group, every descendant and every process still holding the
    /// server's ends of its stdio pipes get SIGKILL. Once the server has
    /// exited, whatever is left of its group and whoever still holds its
    /// pipes (a daemon it double-forked) get SIGKILL too, and it is reaped.
    /// If the connection had already died, the original cause is kept.
    ///
    /// Fails with [`Error::Wait`] only when waiting for the process failed
    /// (something else in this program reaped it): no status is invented.
    ///
    /// # Cancel safety
    /// Dropping the future stops the escalation where it is; the server is
    /// still killed when the last handle is dropped.
    pub async fn close(&self) -> Result<Option<ExitStatus>, Error> {
        let connection = self.connection();
        // Death ends the writer, which closes the server's stdin.
        connection.die(CloseReason::ClosedByClient);
        let Some(process) = connection.process() else {
            return Ok(None);
        };
        let config = &connection.config;
        let exit = process
            .end(config.stdin_close_grace, config.sigterm_grace, |after| {
                connection.sleep(after)
            })
            .await;
        exit.map(Some).map_err(|source| Error::Wait {
            pid: process.pid(),
            source,
        })
    }
}
