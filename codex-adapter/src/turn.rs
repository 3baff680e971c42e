//! A running turn: a `Stream` of [`TurnEvent`]s that ends with exactly one
//! [`TurnEvent::Outcome`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::watchdog::{Expired, Pauser, Watchdog};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use jsonrpc_stdio::Client;
use serde_json::{json, Value};
use tokio::sync::{oneshot, OwnedMutexGuard};

use crate::approval::{approval_from_request, ApprovalKind, ApprovalPolicy, Responder};
use crate::decode::TurnDecoder;
use crate::error::Error;
use crate::event::{FileChange, TimeLimit, TokenUsage, TurnEvent, TurnOutcome};
use crate::options::{TurnInput, TurnLimits, TurnOptions};
use crate::route::route_of;
use crate::server::{Pending, RouteGuard, Routed, Thread};

/// How long a dropped or expired turn's `turn/interrupt` may take.
const INTERRUPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why `turn/start` failed, and whether codex can have run any of it.
pub(crate) struct StartFailure {
    pub(crate) error: Error,
    /// The app-server was dead and no event of the turn ever arrived: the
    /// turn did not run, and may be sent again to a new app-server.
    pub(crate) unseen: bool,
}

impl From<Error> for StartFailure {
    fn from(error: Error) -> Self {
        StartFailure {
            error,
            unseen: false,
        }
    }
}

/// What a turn holds while it runs; dropping it frees the thread.
struct Held {
    // Fields drop in order: the route goes before the lock frees the
    // thread for its next turn.
    _route: RouteGuard,
    _lock: OwnedMutexGuard<()>,
}

/// What is known of an item, to join approvals to it.
#[derive(Default)]
struct ItemInfo {
    command: Option<String>,
    cwd: Option<String>,
    changes: Vec<FileChange>,
}

/// Sends `turn/interrupt` for one turn. Cheap to clone; usable while the
/// [`Turn`] itself is being polled elsewhere.
#[derive(Clone, Debug)]
pub struct Interrupter {
    client: Client,
    thread_id: String,
    turn_id: String,
    timeout: Duration,
}

impl Interrupter {
    /// Asks codex to interrupt the turn and waits for its acknowledgement.
    /// The turn's stream then ends with [`TurnOutcome::Interrupted`].
    ///
    /// # Cancel safety
    /// Dropping the future may or may not have sent the request.
    pub async fn interrupt(&self) -> Result<(), Error> {
        self.client
            .request(
                "turn/interrupt",
                json!({"threadId": self.thread_id, "turnId": self.turn_id}),
            )
            .timeout(Some(self.timeout))
            .await
            .map(drop)
            .map_err(|e| Error::from_rpc("turn/interrupt", e))
    }

    /// Sends `turn/interrupt` from a task of its own, holding `hold` until
    /// codex answers (or the bound passes). Does nothing outside a runtime.
    fn spawn<H: Send + 'static>(self, hold: H) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let timeout = self.timeout.min(INTERRUPT_TIMEOUT);
            let _ = self
                .client
                .request(
                    "turn/interrupt",
                    json!({"threadId": self.thread_id, "turnId": self.turn_id}),
                )
                .timeout(Some(timeout))
                .await;
            drop(hold);
        });
    }
}

/// A running turn: a [`Stream`] of [`TurnEvent`]s ending with exactly one
/// [`TurnEvent::Outcome`].
///
/// * Events are routed to it by thread id (and turn id), so concurrent turns
///   on other threads never see each other's events. Everything codex sent
///   after `turn/start` was written is delivered, even notifications that
///   came before the `turn/start` response.
/// * A watchdog ends it with [`TurnOutcome::TimedOut`] after the idle
///   period with no event of this turn (paused while an approval waits for
///   the caller) or after the total budget; codex is sent `turn/interrupt`.
/// * If the app-server dies, it ends at once with
///   [`TurnOutcome::ServerDied`] and the cause.
/// * Dropping it before the outcome sends `turn/interrupt`; the thread's
///   lock is held until codex acknowledges, so the next turn starts clean.
#[must_use = "a turn does nothing for the caller unless its events are polled"]
pub struct Turn {
    thread_id: String,
    turn_id: String,
    interrupter: Interrupter,
    events: Pin<Box<Watchdog<BoxStream<'static, Routed>>>>,
    pauser: Pauser,
    decoder: TurnDecoder,
    queue: VecDeque<TurnEvent>,
    approvals: ApprovalPolicy,
    items: HashMap<String, ItemInfo>,
    held: Option<Held>,
    server_death: Client,
    done: bool,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("thread_id", &self.thread_id)
            .field("turn_id", &self.turn_id)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Turn {
    pub(crate) async fn start(
        thread: &Thread,
        input: TurnInput,
        options: TurnOptions,
    ) -> Result<Turn, Error> {
        Self::start_checked(thread, input, options)
            .await
            .map_err(|f| f.error)
    }

    /// Like [`start`](Self::start), but says whether a failed start may be
    /// sent again to a new app-server.
    pub(crate) async fn start_checked(
        thread: &Thread,
        input: TurnInput,
        options: TurnOptions,
    ) -> Result<Turn, StartFailure> {
        let inner = &thread.server.inner;
        let client = inner.client.clone();
        let dead = |client: &Client| {
            client.close_reason().map(|r| StartFailure {
                error: Error::ServerDied(r),
                unseen: true,
            })
        };
        if let Some(e) = dead(&client) {
            return Err(e);
        }
        let lock = tokio::select! {
            guard = thread.lock.clone().lock_owned() => guard,
            reason = client.closed() => return Err(StartFailure {
                error: Error::ServerDied(reason),
                unseen: true,
            }),
        };
        if let Some(e) = dead(&client) {
            return Err(e);
        }
        // Route before turn/start is written: nothing codex says about this
        // turn can be missed.
        let (route, mut inbox) = thread.server.route(thread.id());

        let mut params = json!({"threadId": thread.id(), "input": input.to_wire()});
        if let Some(model) = &options.model {
            params["model"] = json!(model);
        }
        if let Some(cwd) = &options.cwd {
            params["cwd"] = json!(cwd.display().to_string());
        }
        if let Some(policy) = options.approval_policy {
            params["approvalPolicy"] = json!(policy);
        }
        let result =
            match send_turn_start(&client, thread.id(), params, inner.request_timeout).await {
                Ok(result) => result,
                Err(error @ Error::ServerDied(_)) => {
                    // Codex died before answering. If nothing of this
                    // thread arrived after turn/start was written, the
                    // turn never ran. The router closes the inbox once
                    // everything before the death is routed.
                    let unseen = !inbox.drain_saw_note().await;
                    return Err(StartFailure { error, unseen });
                }
                Err(error) => return Err(error.into()),
            };
        let turn_id = result
            .pointer("/turn/id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Protocol {
                method: "turn/start".into(),
                detail: format!("no turn.id in {result}"),
            })?
            .to_owned();

        let limits: TurnLimits = options.limits.unwrap_or(inner.limits);
        let own_turn = turn_id.clone();
        // The inbox holds only this thread's messages; a late one of the
        // thread's previous turn is skipped by its turn id.
        let routed = inbox.filter(move |item| {
            futures::future::ready(match item {
                Routed::Note(method, params) => route_of(method, params)
                    .turn_id
                    .map_or(true, |t| t == own_turn),
                _ => true,
            })
        });
        let events = Watchdog::new(routed.boxed(), limits.idle, Some(limits.budget));
        let pauser = events.pauser();
        let mut decoder = TurnDecoder::new(inner.family);
        decoder.set_turn_id(&turn_id);
        Ok(Turn {
            interrupter: Interrupter {
                client: client.clone(),
                thread_id: thread.id().to_owned(),
                turn_id: turn_id.clone(),
                timeout: inner.request_timeout,
            },
            thread_id: thread.id().to_owned(),
            turn_id,
            events: Box::pin(events),
            pauser,
            decoder,
            queue: VecDeque::new(),
            approvals: options.approvals.unwrap_or(inner.approvals),
            items: HashMap::new(),
            held: Some(Held {
                _route: route,
                _lock: lock,
            }),
            server_death: client,
            done: false,
        })
    }

    /// codex's turn id.
    pub fn id(&self) -> &str {
        &self.turn_id
    }

    /// The thread's id.
    pub fn thread_id(&self) -> &str {
        &self.thread_id
    }

    /// Whether the outcome has been yielded (the stream is over).
    pub fn is_finished(&self) -> bool {
        self.done
    }

    /// A handle that interrupts this turn from anywhere.
    pub fn interrupter(&self) -> Interrupter {
        self.interrupter.clone()
    }

    /// Asks codex to interrupt the turn; keep polling the stream for the
    /// [`TurnOutcome::Interrupted`] outcome.
    ///
    /// # Cancel safety
    /// Dropping the future may or may not have sent the request.
    pub async fn interrupt(&self) -> Result<(), Error> {
        self.interrupter.interrupt().await
    }

    /// Reads the whole turn and sums it up. Approvals are answered by the
    /// turn's policy (an [`ApprovalPolicy::Ask`] approval is dropped here, so
    /// it is declined).
    ///
    /// # Cancel safety
    /// Dropping the future drops the turn, which interrupts it.
    pub async fn collect_summary(mut self) -> TurnSummary {
        let mut summary = TurnSummary {
            outcome: TurnOutcome::ServerDied {
                message: "the turn's stream ended without an outcome".into(),
            },
            final_text: None,
            items: Vec::new(),
            approvals: Vec::new(),
            token_usage: None,
            diff: None,
            errors: Vec::new(),
        };
        let mut abandoned: HashSet<String> = HashSet::new();
        while let Some(event) = self.next().await {
            match event {
                TurnEvent::Outcome(outcome) => {
                    if let TurnOutcome::Completed {
                        last_agent_message: Some(text),
                        ..
                    } = &outcome
                    {
                        summary.final_text = Some(text.clone());
                    }
                    summary.outcome = outcome;
                }
                TurnEvent::AgentMessage { item_id, text } => {
                    if !abandoned.contains(&item_id) {
                        summary.final_text = Some(text.clone());
                    }
                    summary
                        .items
                        .push(TurnEvent::AgentMessage { item_id, text });
                }
                TurnEvent::Retrying {
                    message,
                    codex_error_info,
                    abandoned_items,
                } => {
                    abandoned.extend(abandoned_items.iter().cloned());
                    summary.errors.push(message.clone());
                    let _ = (codex_error_info, abandoned_items);
                }
                TurnEvent::Error { message, .. } => summary.errors.push(message),
                TurnEvent::TokenUsage(usage) => summary.token_usage = Some(usage),
                TurnEvent::DiffUpdated { diff } => summary.diff = Some(diff),
                TurnEvent::ApprovalRequested(approval) => {
                    summary.approvals.push(approval.detached())
                }
                e @ (TurnEvent::Reasoning { .. }
                | TurnEvent::CommandFinished { .. }
                | TurnEvent::FileChangeFinished { .. }
                | TurnEvent::McpToolCallFinished { .. }
                | TurnEvent::WebSearch { .. }
                | TurnEvent::ItemAbandoned { .. }) => summary.items.push(e),
                _ => {}
            }
        }
        summary
    }

    /// Ends the turn with `outcome` unless it already ended.
    fn end_with(&mut self, outcome: TurnOutcome) {
        let events = self.decoder.finish(outcome);
        self.queue.extend(events);
    }

    fn on_request(&mut self, pending: Pending) {
        let req = pending.take();
        let params = req.params().cloned().unwrap_or(Value::Null);
        let Some((dialect, mut approval)) = approval_from_request(req.method(), &params) else {
            // Not an approval: show it, and answer "method not found" (the
            // request is dropped inside a `Pending`).
            self.queue.push_back(TurnEvent::Other {
                method: req.method().to_owned(),
                params,
            });
            drop(Pending::from(req));
            return;
        };
        if let Some(info) = self.items.get(approval.item_id()) {
            match approval.kind_mut() {
                ApprovalKind::Command { command, cwd } => {
                    if command.is_none() {
                        command.clone_from(&info.command);
                    }
                    if cwd.is_none() {
                        cwd.clone_from(&info.cwd);
                    }
                }
                ApprovalKind::FileChange { changes, .. } => {
                    if changes.is_empty() {
                        changes.clone_from(&info.changes);
                    }
                }
            }
        }
        let responder = Responder::new(move |decision: crate::ApprovalDecision| {
            let _ = req.respond_ok(decision.to_wire(dialect));
        });
        let approval = approval.with_responder(responder);
        let approval = match self.approvals.automatic() {
            Some(decision) => approval.answered(decision),
            None => approval.holding(self.pauser.pause()),
        };
        self.queue.push_back(TurnEvent::ApprovalRequested(approval));
    }

    fn absorb(&mut self, events: Vec<TurnEvent>) {
        for event in &events {
            match event {
                TurnEvent::CommandStarted {
                    item_id,
                    command,
                    cwd,
                } => {
                    let info = self.items.entry(item_id.clone()).or_default();
                    info.command = Some(command.clone());
                    info.cwd.clone_from(cwd);
                }
                TurnEvent::FileChangeStarted { item_id, changes } => {
                    self.items.entry(item_id.clone()).or_default().changes = changes.clone();
                }
                _ => {}
            }
        }
        self.queue.extend(events);
    }
}

/// Sends `turn/start` from a task of its own, so that a caller who stops
/// waiting does not leave the turn running unattended: the task then
/// interrupts it.
async fn send_turn_start(
    client: &Client,
    thread_id: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, Error> {
    let (tx, rx) = oneshot::channel();
    let client = client.clone();
    let thread_id = thread_id.to_owned();
    tokio::spawn(async move {
        let result = client
            .request("turn/start", params)
            .timeout(Some(timeout))
            .await;
        if let Err(Ok(unclaimed)) = tx.send(result) {
            if let Some(turn_id) = unclaimed.pointer("/turn/id").and_then(Value::as_str) {
                let _ = client
                    .request(
                        "turn/interrupt",
                        json!({"threadId": thread_id, "turnId": turn_id}),
                    )
                    .timeout(Some(INTERRUPT_TIMEOUT))
                    .await;
            }
        }
    });
    match rx.await {
        Ok(result) => result.map_err(|e| Error::from_rpc("turn/start", e)),
        Err(_) => Err(Error::Protocol {
            method: "turn/start".into(),
            detail: "the task sending it was cancelled (is the runtime shutting down?)".into(),
        }),
    }
}

impl Stream for Turn {
    type Item = TurnEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<TurnEvent>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.queue.pop_front() {
                if matches!(event, TurnEvent::Outcome(_)) {
                    // However the turn ended, the thread is free now.
                    this.done = true;
                    this.held = None;
                }
                return Poll::Ready(Some(event));
            }
            if this.done {
                return Poll::Ready(None);
            }
            let raw = match this.events.as_mut().poll_next(cx) {
                Poll::Ready(raw) => raw,
                Poll::Pending => return Poll::Pending,
            };
            match raw {
                Some(Ok(Routed::Note(method, params))) => {
                    let events = this.decoder.decode(&method, &params);
                    this.absorb(events);
                }
                Some(Ok(Routed::Request(pending))) => this.on_request(pending),
                Some(Ok(Routed::Lagged(skipped))) => this.queue.push_back(TurnEvent::Error {
                    message: format!(
                        "this turn's reader fell behind and lost {skipped} progress \
                         notifications (deltas); poll the turn stream promptly"
                    ),
                    codex_error_info: None,
                }),
                Some(Err(expired)) => {
                    let (limit, after) = match expired {
                        Expired::Idle(d) => (TimeLimit::Idle, d),
                        Expired::Budget(d) => (TimeLimit::Budget, d),
                    };
                    // The channel may be wedged: do not wait for codex to
                    // acknowledge before freeing the thread.
                    this.interrupter.clone().spawn(());
                    let turn_id = this.turn_id.clone();
                    this.end_with(TurnOutcome::timed_out(&turn_id, limit, after));
                }
                None => {
                    let message = this
                        .server_death
                        .close_reason()
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "the connection to codex ended".into());
                    this.end_with(TurnOutcome::ServerDied { message });
                }
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if !self.done {
            if let Some(held) = self.held.take() {
                self.interrupter.clone().spawn(held);
            }
        }
    }
}

/// A whole turn, summed up by [`Turn::collect_summary`].
#[derive(Debug)]
#[non_exhaustive]
pub struct TurnSummary {
    /// How it ended.
    pub outcome: TurnOutcome,
    /// The last agent message (text abandoned by a retry does not count).
    pub final_text: Option<String>,
    /// Finished items (agent messages, reasoning, commands, file changes,
    /// MCP calls, web searches) and abandoned ones, in order.
    pub items: Vec<TurnEvent>,
    /// Every approval request and how it was answered.
    pub approvals: Vec<crate::Approval>,
    /// The last token usage reported.
    pub token_usage: Option<TokenUsage>,
    /// The turn's final diff, if it changed files.
    pub diff: Option<String>,
    /// Error and retry messages, in order.
    pub errors: Vec<String>,
}
