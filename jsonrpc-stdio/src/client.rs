//! The client handle, its builder, and the state every task shares.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::runtime::Handle as Runtime;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::driver;
use crate::error::{CloseReason, Error};
use crate::framing::{Framing, DEFAULT_MAX_FRAME_LENGTH};
use crate::lock;
use crate::message::{encode_notification, encode_request, ErrorObject, RequestId};
use crate::outbox::{Outbox, Refused, Reservation};
use crate::process::{ServerCommand, ServerProcess, Spawned};
use crate::routes::{Filter, IncomingRequests, Queue, Routes, Subscription};
use crate::stderr::StderrTail;
use crate::typed;

/// What a pending caller is waiting for.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The server's answer.
    Response(Result<Value, ErrorObject>),
    /// The answer was longer than the maximum frame length; it was discarded.
    TooLarge { limit: usize },
    /// The connection died first.
    Closed(Arc<CloseReason>),
}

/// The default bound of the outgoing queue: 16 MiB.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

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

impl fmt::Debug for CancelNotification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CancelNotification")
            .field(&self.method)
            .finish()
    }
}

/// Connection settings. Start from [`Client::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    pub(crate) framing: Framing,
    pub(crate) max_frame_length: usize,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) cancel_notification: Option<CancelNotification>,
    pub(crate) subscription_capacity: usize,
    pub(crate) request_queue_capacity: usize,
    pub(crate) stderr_tail_bytes: usize,
    pub(crate) stderr_max_line: usize,
    pub(crate) exit_grace: Duration,
    pub(crate) stdin_close_grace: Duration,
    pub(crate) sigterm_grace: Duration,
    pub(crate) max_queued_bytes: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            framing: Framing::default(),
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            request_timeout: Some(Duration::from_secs(60)),
            cancel_notification: None,
            subscription_capacity: 4096,
            request_queue_capacity: 256,
            stderr_tail_bytes: 64 * 1024,
            stderr_max_line: 16 * 1024,
            exit_grace: Duration::from_millis(100),
            stdin_close_grace: Duration::from_secs(2),
            sigterm_grace: Duration::from_secs(3),
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
        }
    }
}

impl Builder {
    /// How messages are framed on the wire (default: one JSON per line).
    pub fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }

    /// The longest frame accepted from the server (default 64 MiB). Longer
    /// frames are discarded as they stream in, never buffered whole; a
    /// response among them fails its caller at once with
    /// [`Error::ResponseTooLarge`] (its id is read from its first or last
    /// bytes).
    pub fn max_frame_length(mut self, bytes: usize) -> Self {
        self.max_frame_length = bytes;
        self
    }

    /// The default timeout of every request (default 60 s); `None` waits for
    /// as long as the server lives. A call can override it.
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// A notification to send when a request is abandoned (default: none).
    pub fn cancel_notification(mut self, cancel: CancelNotification) -> Self {
        self.cancel_notification = Some(cancel);
        self
    }

    /// How many notifications a subscriber may fall behind before it starts
    /// losing them (default 4096). Memory per subscriber is bounded by this.
    pub fn subscription_capacity(mut self, n: usize) -> Self {
        self.subscription_capacity = n;
        self
    }

    /// How many unanswered server→client requests may queue per handler
    /// before more are refused with an error reply (default 256).
    pub fn request_queue_capacity(mut self, n: usize) -> Self {
        self.request_queue_capacity = n;
        self
    }

    /// How much of the server's stderr to keep for death reports (default
    /// 64 KiB).
    pub fn stderr_tail_bytes(mut self, bytes: usize) -> Self {
        self.stderr_tail_bytes = bytes;
        self
    }

    /// How long to wait, when stdout ends, for the exit status (and, when the
    /// process exits, for stdout and stderr to drain) before declaring the
    /// cause (default 100 ms). Bounds how late a death can be reported.
    pub fn exit_grace(mut self, grace: Duration) -> Self {
        self.exit_grace = grace;
        self
    }

    /// How many bytes of outgoing messages may wait for the server to read
    /// its stdin (default 16 MiB, [`DEFAULT_MAX_QUEUED_BYTES`]). When they do
    /// not fit, [`Client::request`] waits for room (within its timeout) and
    /// [`Client::notify`] fails at once with [`Error::QueueFull`]; nothing is
    /// dropped. One message larger than the limit is sent alone, once the
    /// queue is empty.
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// [`Client::close`]: how long to wait after closing stdin before SIGTERM,
    /// and after SIGTERM before SIGKILL (defaults 2 s and 3 s).
    pub fn close_grace(mut self, after_stdin: Duration, after_sigterm: Duration) -> Self {
        self.stdin_close_grace = after_stdin;
        self.sigterm_grace = after_sigterm;
        self
    }

    /// Starts `command` and connects to its stdio.
    ///
    /// Must be called inside a tokio runtime with IO and timers enabled
    /// (`enable_all`); the connection's tasks and timers run on it, whatever
    /// runtime (or executor) later awaits its calls. Outside one, or on one
    /// without IO or timers, it returns [`Error::Runtime`] and starts
    /// nothing. Any other failure is an [`Error::Spawn`] that names the
    /// culprit (working directory, program and `PATH`, permission); no
    /// process is left behind.
    pub fn spawn(self, command: ServerCommand) -> Result<Client, Error> {
        let runtime = runtime_with_io_and_timers()?;
        let Spawned {
            process,
            stdin,
            stdout,
            stderr,
        } = command.spawn()?;
        let pid = process.pid();
        let pipes = (|| {
            Ok::<_, std::io::Error>((
                tokio::process::ChildStdin::from_std(stdin)?,
                tokio::process::ChildStdout::from_std(stdout)?,
                tokio::process::ChildStderr::from_std(stderr)?,
            ))
        })();
        let (stdin, stdout, stderr) = match pipes {
            Ok(pipes) => pipes,
            Err(e) => {
                process.release_in_background();
                return Err(Error::Spawn {
                    program: command.program().to_string_lossy().into_owned(),
                    problem: format!("could not register its pipes with the runtime: {e}"),
                    source: Arc::new(e),
                });
            }
        };
        let tail = Arc::new(Mutex::new(StderrTail::new(self.stderr_tail_bytes)));
        let span = tracing::debug_span!("jsonrpc", pid);
        let stderr_task = runtime.spawn(
            crate::stderr::drain(stderr, tail.clone(), self.stderr_max_line, Some(pid))
                .instrument(span.clone()),
        );
        let watch = driver::Process {
            exit: process.exit(),
            stderr_task,
            tail,
        };
        Ok(self.start(stdout, stdin, Some((process, watch)), runtime, span))
    }

    /// Connects over any byte streams: a socket, `tokio::io::duplex`, the
    /// stdio of a process started elsewhere. Without a process, the end of
    /// `reader` is the end of the connection.
    ///
    /// # Panics
    /// Outside a tokio runtime. Request timeouts need the runtime's timers:
    /// on a runtime without them the first timed request panics, before
    /// anything is sent.
    pub fn connect<R, W>(self, reader: R, writer: W) -> Client
    where
        R: AsyncRead + Send + 'static,
        W: AsyncWrite + Send + 'static,
    {
        let span = tracing::debug_span!("jsonrpc");
        self.start(reader, writer, None, Runtime::current(), span)
    }

    fn start<R, W>(
        self,
        reader: R,
        writer: W,
        process: Option<(ServerProcess, driver::Process)>,
        runtime: Runtime,
        span: tracing::Span,
    ) -> Client
    where
        R: AsyncRead + Send + 'static,
        W: AsyncWrite + Send + 'static,
    {
        let (closed_tx, _) = watch::channel(None);
        let (process, watch) = process.unzip();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: HashMap::new(),
                dead: None,
            }),
            next_id: AtomicI64::new(0),
            routes: Mutex::new(Routes::default()),
            outbox: Outbox::new(self.max_queued_bytes),
            closed: closed_tx,
            process,
            runtime: runtime.clone(),
            shutdown: CancellationToken::new(),
            stats: Stats::default(),
            config: self,
        });
        let (write_failed_tx, write_failed_rx) = oneshot::channel();
        runtime.spawn(
            driver::write(
                writer,
                shared.clone(),
                shared.config.framing,
                write_failed_tx,
            )
            .instrument(span.clone()),
        );
        runtime
            .spawn(driver::read(shared.clone(), reader, watch, write_failed_rx).instrument(span));
        Client {
            handle: Arc::new(Handle { shared }),
        }
    }
}

/// The current runtime, if it has what a connection needs.
///
/// tokio has no way to ask whether a runtime's IO or time driver is
/// enabled; using a disabled one panics. So the two are probed here, before
/// any process starts, and the panic becomes an error. (The panic hook still
/// prints tokio's message, which says exactly what to enable.)
fn runtime_with_io_and_timers() -> Result<Runtime, Error> {
    let runtime = Runtime::try_current().map_err(|_| Error::Runtime {
        problem: "Builder::spawn was called outside of one",
    })?;
    let timers = std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO)));
    if timers.is_err() {
        return Err(Error::Runtime {
            problem: "this runtime has no timers (build it with enable_all or enable_time)",
        });
    }
    let io = std::panic::catch_unwind(|| drop(tokio::net::UnixStream::pair()));
    if io.is_err() {
        return Err(Error::Runtime {
            problem: "this runtime has no IO driver (build it with enable_all or enable_io)",
        });
    }
    Ok(runtime)
}

/// Counters of what the reader met. Cheap to read at any time.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) frames: AtomicU64,
    pub(crate) bad_frames: AtomicU64,
    pub(crate) unparsable: AtomicU64,
    pub(crate) unknown_responses: AtomicU64,
    pub(crate) unrouted_notifications: AtomicU64,
    pub(crate) lagged_notifications: AtomicU64,
    pub(crate) unsent_replies: AtomicU64,
}

/// A snapshot of what the reader has met so far (see [`Client::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Frames read, good or bad.
    pub frames: u64,
    /// Frames the framing rejected (too long, not UTF-8, bad header).
    pub bad_frames: u64,
    /// Frames that were not JSON, or JSON of no JSON-RPC shape.
    pub unparsable: u64,
    /// Responses whose id matched no pending request (late, duplicate, or
    /// unknown), and error responses with a null id.
    pub unknown_responses: u64,
    /// Notifications no subscriber wanted.
    pub unrouted_notifications: u64,
    /// Notifications dropped because a subscriber was full.
    pub lagged_notifications: u64,
    /// Messages this client wrote on its own — refusals of server requests
    /// nobody handles, error replies to requests dropped unanswered, cancel
    /// notifications — that could not be queued because the outgoing queue
    /// was full (each is also logged at warn).
    pub unsent_replies: u64,
    /// Requests sent and not yet answered (one still waiting for room in the
    /// outgoing queue is not counted yet).
    pub pending_requests: u64,
    /// Bytes queued for the server and not yet written to its stdin
    /// (bounded by [`Builder::max_queued_bytes`]).
    pub queued_bytes: u64,
}

pub(crate) struct State {
    pub(crate) pending: HashMap<RequestId, oneshot::Sender<Answer>>,
    /// The first cause of death. Set once, under the same lock that guards
    /// `pending`, so no request can be registered after the drain.
    pub(crate) dead: Option<Arc<CloseReason>>,
}

/// State shared by the handles, the reader and the writer. One owner for each
/// piece: `state` for the pending table and the cause of death, `routes` for
/// subscribers, `outbox` for bytes on their way out, `process` for the child
/// process. Lock order: `state`, then `outbox`.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    next_id: AtomicI64,
    pub(crate) routes: Mutex<Routes>,
    pub(crate) outbox: Outbox,
    closed: watch::Sender<Option<Arc<CloseReason>>>,
    process: Option<ServerProcess>,
    /// The runtime the connection was built on: its timers time requests,
    /// whatever awaits them.
    runtime: Runtime,
    pub(crate) shutdown: CancellationToken,
    pub(crate) stats: Stats,
    pub(crate) config: Builder,
}

impl Shared {
    /// Marks the connection dead with `cause`, unless it already is; fails
    /// every pending request and ends every subscription. Returns the cause
    /// that won.
    pub(crate) fn die(&self, cause: CloseReason) -> Arc<CloseReason> {
        let (pending, reason) = {
            let mut st = crate::lock(&self.state);
            if let Some(reason) = &st.dead {
                return reason.clone();
            }
            let reason = Arc::new(cause);
            st.dead = Some(reason.clone());
            (std::mem::take(&mut st.pending), reason)
        };
        tracing::debug!(cause = %reason, pending = pending.len(), "connection dead");
        for (_, tx) in pending {
            let _ = tx.send(Answer::Closed(reason.clone()));
        }
        self.outbox.close();
        crate::lock(&self.routes).close_all();
        self.closed.send_replace(Some(reason.clone()));
        self.shutdown.cancel();
        reason
    }

    pub(crate) fn close_reason(&self) -> Option<Arc<CloseReason>> {
        crate::lock(&self.state).dead.clone()
    }

    /// Queues bytes for the writer if they fit, unless the connection is
    /// dead. `method` names the message in the error.
    pub(crate) fn send_bytes(&self, method: &str, bytes: Vec<u8>) -> Result<(), Error> {
        match self.outbox.try_push(Bytes::from(bytes)) {
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
    pub(crate) fn send_reply(&self, what: &str, bytes: Vec<u8>) {
        if let Err(e) = self.send_bytes(what, bytes) {
            if !e.is_closed() {
                self.stats.unsent_replies.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "could not queue {what}");
            }
        }
    }

    fn closed_error(&self) -> Error {
        Error::Closed(self.close_reason().unwrap_or_else(closed_by_client))
    }

    /// Registers a pending request and queues its bytes in the room
    /// reserved for them, atomically with respect to death.
    fn register(
        &self,
        id: RequestId,
        bytes: Vec<u8>,
        room: Reservation<'_>,
    ) -> Result<oneshot::Receiver<Answer>, Error> {
        let (tx, rx) = oneshot::channel();
        let mut st = lock(&self.state);
        if let Some(reason) = &st.dead {
            return Err(Error::Closed(reason.clone()));
        }
        st.pending.insert(id, tx);
        // Queued under the lock: `die` cannot run between the two, so a
        // registered request is always either answered or failed.
        self.outbox.push_reserved(room, Bytes::from(bytes));
        Ok(rx)
    }

    /// A timer on the connection's runtime, so a call awaited elsewhere (a
    /// runtime without timers, another executor) is timed all the same.
    fn sleep(&self, after: Duration) -> tokio::time::Sleep {
        let _on = self.runtime.enter();
        tokio::time::sleep(after)
    }

    /// Forgets an abandoned request; tells the server when configured to.
    fn abandon(&self, id: &RequestId) {
        let was_pending = {
            let mut st = crate::lock(&self.state);
            st.pending.remove(id).is_some() && st.dead.is_none()
        };
        if was_pending {
            if let Some(cancel) = &self.config.cancel_notification {
                if let Ok(bytes) = encode_notification(&cancel.method, Some(&(cancel.params)(id))) {
                    self.send_reply("a cancel notification", bytes);
                }
            }
        }
    }
}

fn closed_by_client() -> Arc<CloseReason> {
    Arc::new(CloseReason::ClosedByClient)
}

/// Owns the server process on behalf of every [`Client`] clone.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    /// The last handle is gone: nobody can talk to the server any more. The
    /// kill is handed to a thread of its own (it walks `/proc`): `Drop`
    /// returns at once, and the kill completes even if the runtime is
    /// shutting down. Never panics.
    fn drop(&mut self) {
        self.shared.die(CloseReason::ClosedByClient);
        if let Some(process) = &self.shared.process {
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

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
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
    /// [`CancelNotification`] is sent.
    pub fn request<P: Serialize>(&self, method: &str, params: P) -> Call<'_, P> {
        Call {
            client: self,
            method: method.to_owned(),
            params: Some(params),
            timeout: self.shared().config.request_timeout,
        }
    }

    /// Calls a typed request: `R::METHOD` with `R::Params`, decoded as
    /// `R::Result`.
    ///
    /// # Cancel safety
    /// As for [`request`](Self::request).
    pub fn call<R: typed::Request>(&self, params: R::Params) -> TypedCall<'_, R> {
        TypedCall {
            call: self.request(R::METHOD, params),
            result: std::marker::PhantomData,
        }
    }

    /// Sends a notification. Fails at once with [`Error::Closed`] when the
    /// connection is dead, and with [`Error::QueueFull`] when the server has
    /// not read [`Builder::max_queued_bytes`] of what was sent to it (then
    /// nothing was queued; try again later, or treat the server as stuck).
    pub fn notify<P: Serialize>(&self, method: &str, params: P) -> Result<(), Error> {
        let bytes = encode_notification(method, Some(&params)).map_err(|e| Error::Encode {
            method: method.to_owned(),
            source: Arc::new(e),
        })?;
        self.shared().send_bytes(method, bytes)
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
        let shared = self.shared();
        let queue = Queue::new(shared.config.subscription_capacity);
        let mut routes = crate::lock(&shared.routes);
        if shared.close_reason().is_some() {
            queue.close();
        } else {
            routes.subscribers.push((filter, queue.clone()));
        }
        drop(routes);
        Subscription::new(queue, shared.clone())
    }

    /// Receives the server's requests whose method matches `filter`. The
    /// first registered stream whose filter matches gets each request; a
    /// request that no stream matches is answered `-32601 method not found`.
    pub fn requests(&self, filter: Filter) -> IncomingRequests {
        let shared = self.shared();
        let queue = Queue::new(shared.config.request_queue_capacity);
        let mut routes = crate::lock(&shared.routes);
        if shared.close_reason().is_some() {
            queue.close();
        } else {
            routes.handlers.push((filter, queue.clone()));
        }
        drop(routes);
        IncomingRequests::new(queue)
    }

    /// Whether the connection is dead. Cheap.
    pub fn is_closed(&self) -> bool {
        self.shared().close_reason().is_some()
    }

    /// Why the connection died, if it did.
    pub fn close_reason(&self) -> Option<Arc<CloseReason>> {
        self.shared().close_reason()
    }

    /// Resolves when the connection dies, with the cause.
    ///
    /// # Cancel safety
    /// Cancel safe: it only watches.
    pub async fn closed(&self) -> Arc<CloseReason> {
        let mut rx = self.shared().closed.subscribe();
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
        self.shared().process.as_ref().map(ServerProcess::pid)
    }

    /// What the reader has met so far (bad frames, unknown ids, lag), and
    /// what is in flight now: requests pending, bytes queued to write.
    pub fn stats(&self) -> ConnectionStats {
        let shared = self.shared();
        let s = &shared.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConnectionStats {
            unsent_replies: get(&s.unsent_replies),
            pending_requests: lock(&shared.state).pending.len() as u64,
            queued_bytes: shared.outbox.queued_bytes() as u64,
            frames: get(&s.frames),
            bad_frames: get(&s.bad_frames),
            unparsable: get(&s.unparsable),
            unknown_responses: get(&s.unknown_responses),
            unrouted_notifications: get(&s.unrouted_notifications),
            lagged_notifications: get(&s.lagged_notifications),
        }
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
        let shared = self.shared();
        // Death ends the writer, which closes the server's stdin.
        shared.die(CloseReason::ClosedByClient);
        let Some(process) = &shared.process else {
            return Ok(None);
        };
        let pid = process.pid();
        let exit = process.exit();
        let wait = |grace: Option<Duration>| {
            let mut exit = exit.clone();
            let timer = grace.map(|g| shared.sleep(g));
            async move {
                let exited = async {
                    let exit = exit
                        .wait_for(Option::is_some)
                        .await
                        .ok()
                        .and_then(|e| e.clone());
                    match exit {
                        Some(exit) => Some(exit),
                        None => std::future::pending().await,
                    }
                };
                match timer {
                    Some(timer) => tokio::select! {
                        exit = exited => exit,
                        _ = timer => None,
                    },
                    None => exited.await,
                }
            }
        };
        let mut exited = wait(Some(shared.config.stdin_close_grace)).await;
        if exited.is_none() {
            tracing::debug!(pid, "server ignored stdin EOF; sending SIGTERM");
            process.signal_group(nix::sys::signal::Signal::SIGTERM);
            exited = wait(Some(shared.config.sigterm_grace)).await;
        }
        if exited.is_none() {
            tracing::debug!(pid, "server ignored SIGTERM; sending SIGKILL");
            process.kill_all().await;
            exited = wait(None).await;
        }
        process.release().await;
        match exited {
            Some(Ok(status)) => Ok(Some(status)),
            Some(Err(source)) => Err(Error::Wait { pid, source }),
            // The owner publishes an exit before it can be dropped.
            None => Err(Error::Wait {
                pid,
                source: Arc::new(std::io::Error::other("the process watcher is gone")),
            }),
        }
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

impl<P> Call<'_, P> {
    /// Overrides the connection's default timeout for this call; `None`
    /// waits for as long as the server lives.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
}

impl<'a, P: Serialize + Send + 'a> IntoFuture for Call<'a, P> {
    type Output = Result<Value, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Value, Error>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        let shared = self.client.shared();
        let id = RequestId::from(shared.next_id.fetch_add(1, Ordering::Relaxed));
        let span = tracing::debug_span!("request", method = %self.method, %id);
        Box::pin(
            async move {
                let bytes =
                    encode_request(&id, &self.method, self.params.as_ref()).map_err(|e| {
                        Error::Encode {
                            method: self.method.clone(),
                            source: Arc::new(e),
                        }
                    })?;
                // Made before anything is queued, on the connection's runtime.
                let timer = self.timeout.map(|after| (shared.sleep(after), after));
                let call = async {
                    // Waits while the server is not reading its input; the
                    // timeout covers this wait too.
                    let room = match shared.outbox.reserve(bytes.len()).await {
                        Ok(room) => room,
                        Err(_) => return Err(shared.closed_error()),
                    };
                    let rx = shared.register(id.clone(), bytes, room)?;
                    let guard = Abandon {
                        shared,
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
                        Ok(Answer::Response(Ok(value))) => Ok(value),
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
                        Err(_) => Err(shared.closed_error()),
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
            .instrument(span),
        )
    }
}

/// Removes a pending entry when its caller stops waiting.
struct Abandon<'a> {
    shared: &'a Shared,
    id: Option<RequestId>,
}

impl Abandon<'_> {
    fn disarm(mut self) {
        self.id = None;
    }
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.shared.abandon(&id);
        }
    }
}

/// A typed request being built; await it to send it. See [`Client::call`].
#[must_use = "a request is sent only when awaited"]
pub struct TypedCall<'a, R: typed::Request> {
    call: Call<'a, R::Params>,
    result: std::marker::PhantomData<fn() -> R::Result>,
}

impl<R: typed::Request> TypedCall<'_, R> {
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
        let fut = self.call.into_future();
        Box::pin(async move {
            let value = fut.await?;
            serde_json::from_value(value).map_err(|e| Error::Decode {
                method: R::METHOD.to_owned(),
                source: Arc::new(e),
            })
        })
    }
}
