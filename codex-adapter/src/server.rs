//! The app-server process, its handshake, its threads, and the one router
//! per connection that hands each notification and server→client request
//! (approval) to the running turn of its thread.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use jsonrpc_stdio::{Client, CloseReason, ErrorCode, Filter, IncomingRequest, ServerCommand};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::approval::{approval_from_request, ApprovalDecision, ApprovalPolicy};
use crate::decode::Family;
use crate::error::Error;
use crate::options::{ThreadOptions, TurnInput, TurnLimits, TurnOptions};
use crate::turn::{Turn, TurnSummary};

/// Settings for an [`AppServer`]. Start from [`AppServer::builder`].
#[derive(Debug, Clone)]
pub struct AppServerBuilder {
    /// What to run. Its program is the codex path as given, or `codex`
    /// until a spawn finds one (see `codex_given`).
    command: ServerCommand,
    /// Whether [`codex`](Self::codex) named the program; if not, each spawn
    /// looks for codex again (`$CODEX_BIN`, then `$PATH`), so a builder made
    /// early sees the environment of the moment it starts codex.
    codex_given: bool,
    /// Whether `command` still needs the default argument `app-server`:
    /// [`args`](Self::args) replaces it.
    default_args: bool,
    client_name: String,
    client_version: String,
    handshake_timeout: Duration,
    request_timeout: Duration,
    limits: TurnLimits,
    approvals: ApprovalPolicy,
    family: Family,
}

impl Default for AppServerBuilder {
    fn default() -> Self {
        AppServerBuilder {
            command: ServerCommand::new("codex"),
            codex_given: false,
            default_args: true,
            client_name: "codex_adapter".into(),
            client_version: env!("CARGO_PKG_VERSION").into(),
            handshake_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            limits: TurnLimits::default(),
            approvals: ApprovalPolicy::default(),
            family: Family::V2,
        }
    }
}

impl AppServerBuilder {
    /// The codex binary (default: `$CODEX_BIN`, then `codex` on `$PATH`; see
    /// [`find_codex`](crate::discover::find_codex)).
    pub fn codex(mut self, path: impl Into<PathBuf>) -> Self {
        self.command = self.command.with_program(path.into());
        self.codex_given = true;
        self
    }

    /// The arguments, in place of the default `app-server`; a later call
    /// adds to them.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.command = self.command.args(args);
        self.default_args = false;
        self
    }

    /// Sets an environment variable of the app-server (e.g. an API key).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.command = self.command.env(key, value);
        self
    }

    /// Removes an environment variable from the app-server's environment.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.command = self.command.env_remove(key);
        self
    }

    /// Sets `CODEX_HOME` (config, sessions, auth) for the app-server.
    pub fn codex_home(self, dir: impl Into<PathBuf>) -> Self {
        let dir: PathBuf = dir.into();
        self.env("CODEX_HOME", dir)
    }

    /// The app-server's working directory.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.command = self.command.current_dir(dir);
        self
    }

    /// The `clientInfo` sent in `initialize`.
    pub fn client_info(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.client_name = name.into();
        self.client_version = version.into();
        self
    }

    /// The bound on each handshake step (default 30 s).
    pub fn handshake_timeout(mut self, after: Duration) -> Self {
        self.handshake_timeout = after;
        self
    }

    /// The bound on `thread/start`, `turn/start` and other calls (default 30 s).
    pub fn request_timeout(mut self, after: Duration) -> Self {
        self.request_timeout = after;
        self
    }

    /// The default watchdog limits of turns (default 90 s idle, 600 s budget).
    pub fn turn_limits(mut self, limits: TurnLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The default approval policy of turns (default: decline everything).
    pub fn approvals(mut self, policy: ApprovalPolicy) -> Self {
        self.approvals = policy;
        self
    }

    /// Which notification family turns read (default [`Family::V2`], right
    /// for every codex that has `thread/start`).
    pub fn family(mut self, family: Family) -> Self {
        self.family = family;
        self
    }

    /// Starts `codex app-server` and completes the handshake.
    ///
    /// # Cancel safety
    /// Dropping the future kills the process if it was started.
    pub async fn spawn(self) -> Result<AppServer, Error> {
        let given = self.codex_given.then(|| Path::new(self.command.program()));
        let program = crate::discover::find_codex(given)?;
        let mut command = self.command.clone().with_program(program);
        if self.default_args {
            command = command.arg("app-server");
        }
        let client = Client::builder()
            .request_timeout(Some(self.request_timeout))
            .subscription_capacity(ROUTER_CAPACITY)
            .spawn(command)
            .map_err(Error::Spawn)?;
        self.handshake(client).await
    }

    /// Speaks to an app-server over any pair of streams (a socket, a
    /// `tokio::io::duplex` in tests) and completes the handshake.
    ///
    /// # Cancel safety
    /// Dropping the future drops the connection.
    pub async fn connect<R, W>(self, reader: R, writer: W) -> Result<AppServer, Error>
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let client = Client::builder()
            .request_timeout(Some(self.request_timeout))
            .subscription_capacity(ROUTER_CAPACITY)
            .connect(reader, writer);
        self.handshake(client).await
    }

    async fn handshake(self, client: Client) -> Result<AppServer, Error> {
        let params =
            json!({"clientInfo": {"name": self.client_name, "version": self.client_version}});
        let init = client
            .request("initialize", params)
            .timeout(Some(self.handshake_timeout))
            .await
            .map_err(|e| match e {
                jsonrpc_stdio::Error::Timeout { after, .. } => Error::HandshakeTimeout {
                    method: "initialize",
                    after,
                },
                e => Error::from_rpc("initialize", e),
            })?;
        client
            .notify("initialized", Value::Null)
            .map_err(|e| Error::from_rpc("initialized", e))?;
        let user_agent = init
            .get("userAgent")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(AppServer::new(client, user_agent, self))
    }
}

/// A request from codex waiting for an answer. Dropped unanswered, an
/// approval is declined (never answered with an error: codex 0.72.0 would
/// hang), and anything else gets "method not found".
pub(crate) struct Pending(Option<IncomingRequest>);

impl Pending {
    pub(crate) fn take(mut self) -> IncomingRequest {
        self.0.take().expect("taken once")
    }
}

impl From<IncomingRequest> for Pending {
    fn from(req: IncomingRequest) -> Self {
        Pending(Some(req))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(req) = self.0.take() {
            answer_unrouted(req, ApprovalDecision::Decline);
        }
    }
}

/// Answers a request no turn takes: approvals get `decision`, anything else
/// "method not found".
fn answer_unrouted(req: IncomingRequest, decision: ApprovalDecision) {
    let params = req.params().cloned().unwrap_or(Value::Null);
    match approval_from_request(req.method(), &params) {
        Some((dialect, _)) => {
            tracing::debug!(
                method = req.method(),
                ?decision,
                "answering approval with no turn to ask"
            );
            let _ = req.respond_ok(decision.to_wire(dialect));
        }
        None => {
            let message = format!("codex-adapter does not handle `{}`", req.method());
            let _ = req.respond_err(ErrorCode::METHOD_NOT_FOUND, message);
        }
    }
}

/// How far the connection's router may fall behind the reader before
/// notifications are lost (for every thread at once). The router only moves
/// messages from one queue to another, so it stays far from this.
const ROUTER_CAPACITY: usize = 1 << 16;

/// How many progress notifications (deltas) a running turn may leave unread
/// before the newest are dropped and a lag marker takes their place.
/// Everything else — items, errors, terminal events, approvals — is always
/// queued: a turn never loses how it ended.
pub(crate) const INBOX_CAPACITY: usize = 8192;

/// What the connection's router hands a thread's running turn, in wire order.
pub(crate) enum Routed {
    Note(String, Value),
    Request(Pending),
    /// This many progress notifications were dropped here.
    Lagged(u64),
}

/// Whether a notification is progress that a slow reader may lose (a text
/// or output delta), as opposed to one that changes what the turn is:
/// items, errors, and terminal events (`turn/completed`,
/// `codex/event/task_complete`, `codex/event/turn_aborted`, …) are never
/// dropped.
pub(crate) fn is_progress(method: &str) -> bool {
    let ty = method.rsplit('/').next().unwrap_or(method);
    ty.ends_with("delta") || ty.ends_with("Delta")
}

/// The sending side of one thread's inbox, held by the router.
struct Inbox {
    /// Which registration this is: a turn's [`RouteGuard`] removes only its
    /// own inbox, never a later turn's of the same thread.
    id: u64,
    tx: mpsc::UnboundedSender<Routed>,
    queued: Arc<AtomicUsize>,
    skipped: u64,
}

impl Inbox {
    /// Queues `item` unless it is progress and the inbox is full. Returns
    /// the item back when the receiver is gone.
    fn offer(&mut self, item: Routed, droppable: bool) -> Result<(), Routed> {
        if droppable && self.queued.load(Ordering::Acquire) >= INBOX_CAPACITY {
            self.skipped += 1;
            return Ok(());
        }
        if self.skipped > 0 {
            let skipped = std::mem::take(&mut self.skipped);
            self.queued.fetch_add(1, Ordering::AcqRel);
            if self.tx.send(Routed::Lagged(skipped)).is_err() {
                return Err(item);
            }
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        self.tx.send(item).map_err(|e| e.0)
    }
}

/// The receiving side of one thread's inbox, read by its turn.
pub(crate) struct InboxReceiver {
    rx: mpsc::UnboundedReceiver<Routed>,
    queued: Arc<AtomicUsize>,
}

impl InboxReceiver {
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Routed>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(_)) = &polled {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
        polled
    }

    /// Waits for the router to close this inbox (it does once the
    /// connection died and everything before the death was routed) and
    /// says whether any notification arrived.
    pub(crate) async fn drain_saw_note(&mut self) -> bool {
        let mut saw = false;
        while let Some(item) = self.rx.recv().await {
            saw |= matches!(item, Routed::Note(..));
        }
        saw
    }
}

impl futures::Stream for InboxReceiver {
    type Item = Routed;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Routed>> {
        self.get_mut().poll_recv(cx)
    }
}

/// Thread id → the inbox of its running turn. `open` turns false when the
/// router ends (the connection died): later routes get a closed inbox.
#[derive(Default)]
struct RouteTable {
    inboxes: HashMap<String, Inbox>,
    closed: bool,
}

type Routes = Mutex<RouteTable>;

/// The one place per connection where codex's messages are sorted by
/// thread: each notification and server→client request goes to the inbox
/// of its thread's running turn, or is dropped (notifications) / answered
/// by default (requests) when no turn of that thread runs. Notifications
/// are read first, so an approval never overtakes the `item/started` it
/// follows on the wire.
async fn route_messages(
    mut notes: jsonrpc_stdio::Subscription,
    mut requests: jsonrpc_stdio::IncomingRequests,
    routes: std::sync::Weak<Routes>,
    default_decision: ApprovalDecision,
) {
    let (mut notes_open, mut requests_open) = (true, true);
    while notes_open || requests_open {
        tokio::select! {
            biased;
            note = notes.next(), if notes_open => match note {
                Some(Ok(n)) => {
                    // Decoded once, here: routing and the turn's decoder
                    // both read the `Value`. Absent params read as `null`.
                    // Params no `Value` can hold (nested deeper than 128)
                    // are skipped, as the connection itself once did.
                    let params: Value = match n.params() {
                        Ok(params) => params,
                        Err(error) => {
                            tracing::warn!(method = n.method(), %error, "skipping a notification whose params cannot be read");
                            continue;
                        }
                    };
                    let method = n.method();
                    let thread = crate::decode::route_of(method, &params).thread_id.map(str::to_owned);
                    let (Some(thread), Some(routes)) = (thread, routes.upgrade()) else { continue };
                    let mut table = routes.lock().expect("routes");
                    if let Some(inbox) = table.inboxes.get_mut(&thread) {
                        let droppable = is_progress(method);
                        if inbox.offer(Routed::Note(method.to_owned(), params), droppable).is_err() {
                            table.inboxes.remove(&thread);
                        }
                    }
                }
                Some(Err(jsonrpc_stdio::Error::Lagged { skipped })) => {
                    tracing::warn!(skipped, "codex-adapter's router fell behind the connection");
                    if let Some(routes) = routes.upgrade() {
                        for inbox in routes.lock().expect("routes").inboxes.values_mut() {
                            let _ = inbox.offer(Routed::Lagged(skipped), false);
                        }
                    }
                }
                Some(Err(_)) | None => notes_open = false,
            },
            req = requests.next(), if requests_open => match req {
                Some(req) => {
                    let params = req.params().cloned().unwrap_or(Value::Null);
                    let thread = crate::decode::route_of(req.method(), &params).thread_id.map(str::to_owned);
                    let Some(routes) = routes.upgrade() else {
                        answer_unrouted(req, default_decision);
                        continue;
                    };
                    let mut table = routes.lock().expect("routes");
                    let inbox = thread.as_ref().and_then(|t| table.inboxes.get_mut(t));
                    let refused = match inbox {
                        Some(inbox) => inbox.offer(Routed::Request(Pending(Some(req))), false).err(),
                        None => Some(Routed::Request(Pending(Some(req)))),
                    };
                    drop(table);
                    if let Some(Routed::Request(pending)) = refused {
                        answer_unrouted(pending.take(), default_decision);
                    }
                }
                None => requests_open = false,
            },
        }
    }
    // Everything sent before the death is routed: close every inbox, so
    // each turn drains its own and then sees the death.
    if let Some(routes) = routes.upgrade() {
        let mut table = routes.lock().expect("routes");
        table.closed = true;
        table.inboxes.clear();
    }
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    user_agent: String,
    pub(crate) request_timeout: Duration,
    pub(crate) limits: TurnLimits,
    pub(crate) approvals: ApprovalPolicy,
    pub(crate) family: Family,
    /// Thread id → the inbox of its running turn. Owned here; a turn's
    /// [`RouteGuard`] removes its entry. The router holds it weakly.
    routes: Arc<Routes>,
    /// Thread id → its turn lock. One lock per thread id, however many
    /// [`Thread`] handles exist.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    router: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.router.abort();
    }
}

/// A running `codex app-server`: one process, many threads. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), codex_adapter::Error> {
/// use codex_adapter::{AppServer, ThreadOptions};
///
/// let server = AppServer::builder().spawn().await?;
/// let thread = server.start_thread(ThreadOptions::default()).await?;
/// let summary = thread.run("Say hello").await?;
/// println!("{:?}", summary.final_text);
/// server.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AppServer {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AppServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppServer")
            .field("pid", &self.inner.client.pid())
            .field("user_agent", &self.inner.user_agent)
            .finish_non_exhaustive()
    }
}

impl AppServer {
    /// Settings for a new app-server.
    pub fn builder() -> AppServerBuilder {
        AppServerBuilder::default()
    }

    fn new(client: Client, user_agent: String, b: AppServerBuilder) -> AppServer {
        let routes: Arc<Routes> = Arc::default();
        // Subscribing before any thread exists means nothing can arrive
        // unrouted-by-accident.
        let default_decision = b.approvals.automatic().unwrap_or(ApprovalDecision::Decline);
        let router = tokio::spawn(route_messages(
            client.subscribe(Filter::All),
            client.requests(Filter::All),
            Arc::downgrade(&routes),
            default_decision,
        ));
        let inner = Inner {
            client,
            user_agent,
            request_timeout: b.request_timeout,
            limits: b.limits,
            approvals: b.approvals,
            family: b.family,
            routes,
            locks: Mutex::new(HashMap::new()),
            router,
        };
        AppServer {
            inner: Arc::new(inner),
        }
    }

    /// What codex said it is in `initialize` (e.g. `codex_cli_rs/0.72.0 …`).
    pub fn user_agent(&self) -> &str {
        &self.inner.user_agent
    }

    /// The app-server's process id, when this adapter started it.
    pub fn pid(&self) -> Option<u32> {
        self.inner.client.pid()
    }

    /// The JSON-RPC connection, for calls this crate does not wrap.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Why the app-server died, if it did: its exit status or signal and
    /// the tail of its stderr, or the read or write that failed.
    pub fn death(&self) -> Option<Arc<CloseReason>> {
        self.inner.client.close_reason()
    }

    /// Resolves when the app-server dies, with the cause.
    ///
    /// # Cancel safety
    /// Cancel safe: it only watches.
    pub async fn died(&self) -> Arc<CloseReason> {
        self.inner.client.closed().await
    }

    /// Ends the app-server gracefully (close stdin, SIGTERM, SIGKILL, reap).
    /// Open turns end with [`TurnOutcome::ServerDied`](crate::TurnOutcome::ServerDied).
    ///
    /// # Cancel safety
    /// Dropping the future stops waiting; the process is still killed when
    /// the last handle is dropped.
    pub async fn close(&self) -> Option<std::process::ExitStatus> {
        self.inner.client.close().await.ok().flatten()
    }

    pub(crate) async fn call(&self, method: &str, params: Value) -> Result<Value, Error> {
        if let Some(reason) = self.inner.client.close_reason() {
            return Err(Error::ServerDied(reason));
        }
        self.inner
            .client
            .request(method, params)
            .timeout(Some(self.inner.request_timeout))
            .await
            .map_err(|e| Error::from_rpc(method, e))
    }

    /// Starts a thread (`thread/start`).
    ///
    /// # Cancel safety
    /// Dropping the future may leave an unused thread in codex.
    pub async fn start_thread(&self, options: ThreadOptions) -> Result<Thread, Error> {
        let result = self
            .call("thread/start", Value::Object(options.to_params()))
            .await?;
        self.thread_from("thread/start", &result)
    }

    /// Resumes a thread by id (`thread/resume`): codex loads it from
    /// `CODEX_HOME`, and the model sees its conversation in the next turn.
    /// codex saves a thread only once a turn of it completed; an unknown id
    /// is [`Error::Refused`] ("no rollout found …"), and so is, on newer
    /// codex, a thread another process holds ("… already has an active
    /// writer").
    ///
    /// # Cancel safety
    /// Dropping the future may leave the thread loaded in codex.
    pub async fn resume_thread(
        &self,
        thread_id: &str,
        options: ThreadOptions,
    ) -> Result<Thread, Error> {
        self.attach_thread("thread/resume", thread_id, options)
            .await
    }

    /// Forks a thread (`thread/fork`, codex newer than 0.72.0): a new
    /// thread with a copy of its history, for when the original cannot be
    /// resumed because another process holds it.
    ///
    /// # Errors
    /// codex 0.72.0 has no `thread/fork`: it answers with
    /// [`Error::Refused`].
    ///
    /// # Cancel safety
    /// Dropping the future may leave the fork in codex.
    pub async fn fork_thread(
        &self,
        thread_id: &str,
        options: ThreadOptions,
    ) -> Result<Thread, Error> {
        self.attach_thread("thread/fork", thread_id, options).await
    }

    /// `thread/resume` or `thread/fork` of an existing thread.
    async fn attach_thread(
        &self,
        method: &str,
        thread_id: &str,
        options: ThreadOptions,
    ) -> Result<Thread, Error> {
        let mut params = options.to_params();
        params.insert("threadId".into(), thread_id.into());
        // The history stays in codex (the model sees it); newer codex would
        // otherwise send all of it back. 0.72.0 ignores the field.
        params.insert("excludeTurns".into(), true.into());
        let result = self.call(method, Value::Object(params)).await?;
        self.thread_from(method, &result)
    }

    fn thread_from(&self, method: &str, result: &Value) -> Result<Thread, Error> {
        let id = result
            .pointer("/thread/id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Protocol {
                method: method.into(),
                detail: format!("no thread.id in {result}"),
            })?
            .to_owned();
        let lock = self
            .inner
            .locks
            .lock()
            .expect("locks")
            .entry(id.clone())
            .or_default()
            .clone();
        Ok(Thread {
            id,
            model: result
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_owned),
            server: self.clone(),
            lock,
        })
    }

    /// Registers the inbox of `thread_id`'s turn: from now on the router
    /// hands it that thread's notifications and requests.
    pub(crate) fn route(&self, thread_id: &str) -> (RouteGuard, InboxReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        static NEXT_INBOX: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT_INBOX.fetch_add(1, Ordering::Relaxed);
        let mut table = self.inner.routes.lock().expect("routes");
        if !table.closed {
            let inbox = Inbox {
                id,
                tx,
                queued: queued.clone(),
                skipped: 0,
            };
            table.inboxes.insert(thread_id.to_owned(), inbox);
        }
        drop(table);
        (
            RouteGuard {
                server: Arc::downgrade(&self.inner),
                thread_id: thread_id.to_owned(),
                id,
            },
            InboxReceiver { rx, queued },
        )
    }
}

/// Removes a turn's request route when the turn ends.
pub(crate) struct RouteGuard {
    server: std::sync::Weak<Inner>,
    thread_id: String,
    id: u64,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.server.upgrade() {
            let mut table = inner.routes.lock().expect("routes");
            if table.inboxes.get(&self.thread_id).map(|i| i.id) == Some(self.id) {
                table.inboxes.remove(&self.thread_id);
            }
        }
    }
}

/// A codex thread (a conversation). Cheap to clone; one turn runs at a time.
#[derive(Clone)]
pub struct Thread {
    id: String,
    model: Option<String>,
    pub(crate) server: AppServer,
    pub(crate) lock: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Thread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thread")
            .field("id", &self.id)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Thread {
    /// codex's thread id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The model codex chose for the thread, as it reported it.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The app-server this thread lives in.
    pub fn server(&self) -> &AppServer {
        &self.server
    }

    /// Starts a turn with default options. See [`start_turn_with`](Self::start_turn_with).
    ///
    /// # Cancel safety
    /// As for [`start_turn_with`](Self::start_turn_with).
    pub async fn start_turn(&self, input: impl Into<TurnInput>) -> Result<Turn, Error> {
        self.start_turn_with(input, TurnOptions::default()).await
    }

    /// Starts a turn and returns its event stream. Waits while another turn
    /// of this thread runs; fails at once if the app-server is dead.
    ///
    /// # Cancel safety
    /// Dropping the future while it waits for the thread's lock does nothing.
    /// Dropping it after `turn/start` was sent does not leave the turn
    /// running unattended: the turn is interrupted as soon as codex names it.
    pub async fn start_turn_with(
        &self,
        input: impl Into<TurnInput>,
        options: TurnOptions,
    ) -> Result<Turn, Error> {
        Turn::start(self, input.into(), options).await
    }

    /// Runs a whole turn and collects it (see [`Turn::collect_summary`]).
    ///
    /// # Cancel safety
    /// Dropping the future interrupts the turn.
    pub async fn run(&self, input: impl Into<TurnInput>) -> Result<TurnSummary, Error> {
        Ok(self.start_turn(input).await?.collect_summary().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbox() -> (Inbox, InboxReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let inbox = Inbox {
            id: 0,
            tx,
            queued: queued.clone(),
            skipped: 0,
        };
        (inbox, InboxReceiver { rx, queued })
    }

    fn note(method: &str) -> Routed {
        Routed::Note(method.into(), Value::Null)
    }

    #[test]
    fn only_deltas_are_progress() {
        for m in [
            "item/agentMessage/delta",
            "item/commandExecution/outputDelta",
            "codex/event/agent_message_delta",
            "codex/event/exec_command_output_delta",
        ] {
            assert!(is_progress(m), "{m}");
        }
        for m in [
            "turn/completed",
            "codex/event/task_complete",
            "codex/event/turn_aborted",
            "item/completed",
            "error",
        ] {
            assert!(!is_progress(m), "{m}");
        }
    }

    #[tokio::test]
    async fn a_full_inbox_drops_deltas_but_never_how_the_turn_ends() {
        let (mut inbox, mut rx) = inbox();
        for _ in 0..INBOX_CAPACITY + 10 {
            inbox
                .offer(note("item/agentMessage/delta"), true)
                .ok()
                .unwrap();
        }
        inbox
            .offer(note("turn/completed"), is_progress("turn/completed"))
            .ok()
            .unwrap();
        drop(inbox);
        let mut deltas = 0;
        let mut seen = Vec::new();
        while let Some(item) = futures::StreamExt::next(&mut rx).await {
            match item {
                Routed::Note(m, _) if m == "item/agentMessage/delta" => deltas += 1,
                Routed::Note(m, _) => seen.push(m),
                Routed::Lagged(n) => seen.push(format!("lagged {n}")),
                Routed::Request(_) => unreachable!(),
            }
        }
        assert_eq!(deltas, INBOX_CAPACITY);
        assert_eq!(seen, ["lagged 10", "turn/completed"]);
        assert_eq!(rx.queued.load(Ordering::Acquire), 0);
    }
}
