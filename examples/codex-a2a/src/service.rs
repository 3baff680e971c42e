//! The A2A task life over codex turns: submit, queue per context, run,
//! approvals, cancel, subscribe, shutdown — every change written to the
//! store and broadcast to the task's subscribers.
//!
//! Each task that is not finished has a [`Live`] record here; the store
//! holds every task. A task's runner waits for its context's turn lock (a
//! FIFO tokio mutex: messages of one context run in order), so a context
//! never runs two turns at once, and at most `queue_depth` tasks wait
//! behind the running one: the next send gets a busy error at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codex_adapter::{
    Approval, ApprovalDecision, ApprovalKind, ApprovalPolicy, Interrupter, TurnEvent, TurnInput,
    TurnLimits, TurnOptions, TurnOutcome,
};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use crate::codex::Codex;
use crate::model::{timestamp, Artifact, Message, Part, Role, Task, TaskState, TaskStatus};
use crate::rpc::RpcError;
use crate::store::Store;
use crate::wire::{Event, ListQuery, SendRequest};

/// How the service treats tasks.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// An approval nobody answers is declined after this long.
    pub approval_timeout: Duration,
    /// How many tasks may wait behind a context's running turn.
    pub queue_depth: usize,
    /// How long a cancel waits for codex to confirm the interrupt before
    /// recording the task canceled anyway.
    pub cancel_wait: Duration,
    /// Watchdog limits of each turn (the adapter's defaults when `None`).
    pub turn_limits: Option<TurnLimits>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            approval_timeout: Duration::from_secs(300),
            queue_depth: 8,
            cancel_wait: Duration::from_millis(1500),
            turn_limits: None,
        }
    }
}

/// The reason written into tasks found unfinished at start-up.
pub const RESTART_REASON: &str =
    "codex-a2a stopped (it was killed or crashed) while this task was not finished; \
     send the message again to retry";

/// The task service. Cheap to clone.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    codex: Codex,
    config: ServiceConfig,
    live: Mutex<HashMap<String, Arc<Live>>>,
    contexts: Mutex<HashMap<String, Arc<ContextSlot>>>,
    draining: AtomicBool,
    /// Signalled whenever a live task finishes.
    finished: tokio::sync::Notify,
}

/// A context's turn lock and how many of its tasks are pending (running or
/// queued).
#[derive(Default)]
struct ContextSlot {
    turn: tokio::sync::Mutex<()>,
    pending: AtomicUsize,
}

/// A task that is not finished: its state, its subscribers, and the
/// handles that act on its turn.
pub struct Live {
    task: Mutex<Task>,
    /// Taken by each write of the task to the store (see [`persist`]).
    writes: tokio::sync::Mutex<()>,
    updates: broadcast::Sender<Event>,
    state: watch::Sender<TaskState>,
    control: Mutex<Control>,
}

#[derive(Default)]
struct Control {
    /// The approval codex waits for, numbered so a late timeout cannot
    /// answer a newer one.
    approval: Option<(u64, Approval)>,
    approvals_seen: u64,
    interrupter: Option<Interrupter>,
    cancel_requested: bool,
    shutting_down: bool,
}

/// Subscribers that fall this far behind get a fresh snapshot.
const UPDATES_CAPACITY: usize = 1024;

impl Live {
    fn new(task: Task) -> Arc<Live> {
        let (state, _) = watch::channel(task.status.state);
        let (updates, _) = broadcast::channel(UPDATES_CAPACITY);
        Arc::new(Live {
            task: Mutex::new(task),
            writes: tokio::sync::Mutex::new(()),
            updates,
            state,
            control: Mutex::new(Control::default()),
        })
    }

    /// The task now.
    pub fn snapshot(&self) -> Task {
        self.task.lock().expect("task").clone()
    }

    /// The task now, and every change from now on (atomically: nothing
    /// is missed or seen twice).
    pub fn subscribe(&self) -> (Task, broadcast::Receiver<Event>) {
        let task = self.task.lock().expect("task");
        (task.clone(), self.updates.subscribe())
    }

    /// Waits until the task is finished or waits for the client.
    ///
    /// # Cancel safety
    /// Cancel safe: it only watches.
    pub async fn settled(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(|s| s.is_settled()).await;
    }

    fn state(&self) -> TaskState {
        *self.state.borrow()
    }

    /// Sets a new status (unless the task is already finished) and tells
    /// subscribers. Returns the task to persist, or `None` if it was
    /// already finished.
    fn set_status(
        &self,
        state: TaskState,
        message: Option<Message>,
        edit: impl FnOnce(&mut Task),
    ) -> Option<Task> {
        let mut task = self.task.lock().expect("task");
        if task.status.state.is_terminal() {
            return None;
        }
        edit(&mut task);
        task.status = TaskStatus::now(state, message);
        let _ = self.updates.send(Event::Status {
            task_id: task.id.clone(),
            context_id: task.context_id.clone(),
            status: task.status.clone(),
            last: state.is_settled(),
        });
        self.state.send_replace(state);
        Some(task.clone())
    }

    /// Appends a delta of the agent's text to the streamed artifact.
    fn append_text(&self, artifact_id: &str, delta: &str) {
        let mut task = self.task.lock().expect("task");
        if task.status.state.is_terminal() {
            return;
        }
        let append = match task
            .artifacts
            .iter_mut()
            .find(|a| a.artifact_id == artifact_id)
        {
            Some(a) => {
                match a.parts.first_mut() {
                    Some(Part::Text { text }) => text.push_str(delta),
                    _ => a.parts = vec![Part::text(delta)],
                }
                true
            }
            None => {
                task.artifacts.push(response_artifact(artifact_id, delta));
                false
            }
        };
        let _ = self.updates.send(Event::Artifact {
            task_id: task.id.clone(),
            context_id: task.context_id.clone(),
            artifact: response_artifact(artifact_id, delta),
            append,
            last_chunk: false,
        });
    }

    /// The text streamed so far into the artifact.
    fn streamed_text(&self, artifact_id: &str) -> String {
        let task = self.task.lock().expect("task");
        task.artifacts
            .iter()
            .filter(|a| a.artifact_id == artifact_id)
            .flat_map(|a| &a.parts)
            .filter_map(|p| match p {
                Part::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Replaces the streamed artifact with the final text.
    fn final_artifact(&self, artifact_id: &str, text: &str) {
        let mut task = self.task.lock().expect("task");
        if task.status.state.is_terminal() {
            return;
        }
        let artifact = response_artifact(artifact_id, text);
        task.artifacts.retain(|a| a.artifact_id != artifact_id);
        task.artifacts.push(artifact.clone());
        let _ = self.updates.send(Event::Artifact {
            task_id: task.id.clone(),
            context_id: task.context_id.clone(),
            artifact,
            append: false,
            last_chunk: true,
        });
    }
}

fn response_artifact(id: &str, text: &str) -> Artifact {
    Artifact {
        artifact_id: id.to_owned(),
        name: Some("response".into()),
        parts: vec![Part::text(text)],
    }
}

/// Decrements a context's pending count when its task's runner ends.
struct Pending {
    inner: Arc<Inner>,
    context: String,
    slot: Arc<ContextSlot>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut contexts = self.inner.contexts.lock().expect("contexts");
        if self.slot.pending.fetch_sub(1, Ordering::SeqCst) == 1 {
            contexts.remove(&self.context);
        }
    }
}

impl Service {
    /// A service over `codex`, keeping state in `store`.
    pub fn new(store: Store, codex: Codex, config: ServiceConfig) -> Service {
        Service {
            inner: Arc::new(Inner {
                store,
                codex,
                config,
                live: Mutex::new(HashMap::new()),
                contexts: Mutex::new(HashMap::new()),
                draining: AtomicBool::new(false),
                finished: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The codex of this service.
    pub fn codex(&self) -> &Codex {
        &self.inner.codex
    }

    /// How many tasks are not finished.
    pub fn live_tasks(&self) -> usize {
        self.inner.live.lock().expect("live").len()
    }

    fn live(&self, id: &str) -> Option<Arc<Live>> {
        self.inner.live.lock().expect("live").get(id).cloned()
    }

    /// Handles a send: a new task (queued on its context), or the answer
    /// to the approval a task waits for. Returns the task's live record.
    ///
    /// # Cancel safety
    /// Once the task is recorded its runner is spawned: dropping the
    /// future does not lose or stop it.
    pub async fn submit(&self, req: &SendRequest) -> Result<Arc<Live>, RpcError> {
        if self.inner.draining.load(Ordering::SeqCst) {
            return Err(RpcError::busy(
                "SHUTTING_DOWN",
                "codex-a2a is shutting down and takes no new messages; retry against the restarted service".into(),
            ));
        }
        if let Some(task_id) = &req.message.task_id {
            return self.answer(task_id, &req.message).await;
        }
        let input = turn_input(&req.message)?;
        let context_id = req
            .message
            .context_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let slot = {
            let mut contexts = self.inner.contexts.lock().expect("contexts");
            let slot = contexts.entry(context_id.clone()).or_default().clone();
            let pending = slot.pending.load(Ordering::SeqCst);
            if pending > self.inner.config.queue_depth {
                return Err(RpcError::busy(
                    "CONTEXT_BUSY",
                    format!(
                        "Context {context_id:?} is busy: a turn is running and {} more messages wait \
                         (the queue depth, --queue-depth); retry when one of its tasks finishes",
                        pending - 1
                    ),
                ));
            }
            slot.pending.fetch_add(1, Ordering::SeqCst);
            slot
        };
        let pending = Pending {
            inner: self.inner.clone(),
            context: context_id.clone(),
            slot: slot.clone(),
        };
        let task_id = uuid::Uuid::new_v4().to_string();
        let mut message = req.message.clone();
        message.context_id = Some(context_id.clone());
        message.task_id = Some(task_id.clone());
        let task = Task {
            id: task_id.clone(),
            context_id: context_id.clone(),
            status: TaskStatus::now(TaskState::Submitted, None),
            history: vec![message],
            artifacts: vec![],
            created_at: timestamp(std::time::SystemTime::now()),
        };
        self.inner
            .store
            .create_task(&task)
            .await
            .map_err(|e| RpcError::internal(format!("cannot record the task: {e}")))?;
        let live = Live::new(task);
        self.inner
            .live
            .lock()
            .expect("live")
            .insert(task_id, live.clone());
        tokio::spawn(run(self.inner.clone(), live.clone(), pending, input));
        Ok(live)
    }

    /// A follow-up message on `task_id`: the answer to its approval.
    async fn answer(&self, task_id: &str, message: &Message) -> Result<Arc<Live>, RpcError> {
        let Some(live) = self.live(task_id) else {
            return match self.stored(task_id).await? {
                Some(task) => Err(RpcError::invalid_params(
                    "message.taskId",
                    format!(
                        "task {task_id:?} is {} and takes no more messages; to continue the \
                         conversation send a new message (no taskId) with contextId {:?}",
                        crate::wire::Version::V1.state_name(task.status.state),
                        task.context_id
                    ),
                )),
                None => Err(RpcError::task_not_found(task_id)),
            };
        };
        let snapshot = live.snapshot();
        if let Some(ctx) = &message.context_id {
            if ctx != &snapshot.context_id {
                return Err(RpcError::invalid_params(
                    "message.contextId",
                    format!(
                        "task {task_id:?} belongs to context {:?}, not {ctx:?}",
                        snapshot.context_id
                    ),
                ));
            }
        }
        if snapshot.status.state != TaskState::InputRequired {
            return Err(RpcError::invalid_params(
                "message.taskId",
                format!(
                    "task {task_id:?} is {} and waits for no input; to queue another turn on this \
                     context send a new message (no taskId) with contextId {:?}",
                    crate::wire::Version::V1.state_name(snapshot.status.state),
                    snapshot.context_id
                ),
            ));
        }
        let decision = parse_decision(message)?;
        let approval = live.control.lock().expect("control").approval.take();
        let Some((_, mut approval)) = approval else {
            return Err(RpcError::invalid_params(
                "message.taskId",
                "the approval this task waited for was already answered (or timed out)",
            ));
        };
        let mut message = message.clone();
        message.context_id = Some(snapshot.context_id.clone());
        message.task_id = Some(task_id.to_owned());
        let note = match decision {
            ApprovalDecision::Accept => "approved; codex goes on",
            _ => "declined; codex goes on without it",
        };
        let msg = Message::agent_text(note, &snapshot.context_id, task_id);
        // Working first, then the answer: codex may ask the next approval
        // at once, and that input-required must not be overwritten.
        live.set_status(TaskState::Working, Some(msg), |t| t.history.push(message));
        approval.respond(decision);
        persist(&self.inner, &live).await;
        Ok(live)
    }

    async fn stored(&self, id: &str) -> Result<Option<Task>, RpcError> {
        self.inner
            .store
            .task(id)
            .await
            .map_err(|e| RpcError::internal(format!("cannot read the task: {e}")))
    }

    /// `GetTask`.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn get(&self, id: &str, history_length: Option<usize>) -> Result<Task, RpcError> {
        if let Some(live) = self.live(id) {
            return Ok(live.snapshot().with_history_length(history_length));
        }
        match self.stored(id).await? {
            Some(task) => Ok(task.with_history_length(history_length)),
            None => Err(RpcError::task_not_found(id)),
        }
    }

    /// `ListTasks`: a page of tasks (newest first), the total, the next
    /// page's token.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn list(
        &self,
        q: &ListQuery,
    ) -> Result<(Vec<Task>, usize, Option<String>), RpcError> {
        let (tasks, total, next) = self
            .inner
            .store
            .list_tasks(q)
            .await
            .map_err(|e| RpcError::internal(format!("cannot list tasks: {e}")))?;
        let tasks = tasks
            .into_iter()
            .map(|t| {
                // A live task's record is fresher than its last write.
                let mut t = self.live(&t.id).map(|l| l.snapshot()).unwrap_or(t);
                if !q.include_artifacts {
                    t.artifacts.clear();
                }
                t.with_history_length(q.history_length)
            })
            .collect();
        Ok((tasks, total, next))
    }

    /// `SubscribeToTask`: the live record of a task that is not finished.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads.
    pub async fn subscribe(&self, id: &str) -> Result<Arc<Live>, RpcError> {
        if let Some(live) = self.live(id) {
            return Ok(live);
        }
        match self.stored(id).await? {
            Some(task) => Err(RpcError::unsupported(format!(
                "task {id:?} is {}: a finished task has no updates to subscribe to; read it with GetTask",
                crate::wire::Version::V1.state_name(task.status.state)
            ))),
            None => Err(RpcError::task_not_found(id)),
        }
    }

    /// `CancelTask`: interrupts the task's turn (declining a pending
    /// approval) and returns it canceled, within `cancel_wait` (or sooner).
    ///
    /// # Cancel safety
    /// Once the interrupt is sent, dropping the future does not undo it;
    /// the task ends canceled.
    pub async fn cancel(&self, id: &str) -> Result<Task, RpcError> {
        let Some(live) = self.live(id) else {
            return match self.stored(id).await? {
                Some(task) => Err(RpcError::not_cancelable(
                    id,
                    crate::wire::Version::V1.state_name(task.status.state),
                )),
                None => Err(RpcError::task_not_found(id)),
            };
        };
        let (approval, interrupter) = {
            let mut control = live.control.lock().expect("control");
            let state = live.state();
            if state.is_terminal() {
                return Err(RpcError::not_cancelable(
                    id,
                    crate::wire::Version::V1.state_name(state),
                ));
            }
            control.cancel_requested = true;
            (control.approval.take(), control.interrupter.clone())
        };
        if live.state() == TaskState::Submitted {
            // Not started: its runner will find it finished and skip it.
            let msg = Message::agent_text(
                "canceled before it started",
                &live.snapshot().context_id,
                id,
            );
            finish(&self.inner, &live, TaskState::Canceled, Some(msg), |_| {}).await;
            return Ok(live.snapshot());
        }
        if let Some((_, approval)) = approval {
            // `cancel` makes codex interrupt the turn, like turn/interrupt.
            approval.cancel();
        }
        if let Some(interrupter) = interrupter {
            tokio::spawn(async move {
                if let Err(e) = interrupter.interrupt().await {
                    tracing::warn!(error = %e, "turn/interrupt failed");
                }
            });
        }
        let mut state = live.state.subscribe();
        let confirmed = tokio::time::timeout(
            self.inner.config.cancel_wait,
            state.wait_for(|s| s.is_terminal()),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        if !confirmed {
            let msg = Message::agent_text(
                "canceled; codex had not confirmed the interrupt yet",
                &live.snapshot().context_id,
                id,
            );
            finish(&self.inner, &live, TaskState::Canceled, Some(msg), |_| {}).await;
        }
        Ok(live.snapshot())
    }

    /// Stops taking messages, gives running turns `grace` to finish, then
    /// interrupts the rest and records them failed, and ends codex.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the service refusing new messages.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.draining.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + grace;
        while self.live_tasks() > 0 {
            let finished = self.inner.finished.notified();
            if tokio::time::timeout_at(deadline, finished).await.is_err() {
                break;
            }
        }
        let left: Vec<Arc<Live>> = self
            .inner
            .live
            .lock()
            .expect("live")
            .values()
            .cloned()
            .collect();
        if !left.is_empty() {
            tracing::info!(
                tasks = left.len(),
                "grace over; interrupting the turns still running"
            );
        }
        for live in &left {
            let (approval, interrupter) = {
                let mut control = live.control.lock().expect("control");
                control.shutting_down = true;
                (control.approval.take(), control.interrupter.clone())
            };
            if let Some((_, approval)) = approval {
                approval.cancel();
            }
            if let Some(interrupter) = interrupter {
                tokio::spawn(async move { interrupter.interrupt().await });
            }
        }
        // The interrupted turns end and are recorded by their runners;
        // whatever has not ended by then is recorded here.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while self.live_tasks() > 0 {
            let finished = self.inner.finished.notified();
            if tokio::time::timeout_at(deadline, finished).await.is_err() {
                break;
            }
        }
        for live in left {
            let msg = Message::agent_text(
                SHUTDOWN_REASON,
                &live.snapshot().context_id,
                &live.snapshot().id,
            );
            finish(&self.inner, &live, TaskState::Failed, Some(msg), |_| {}).await;
        }
        self.inner.codex.close().await;
        self.inner.store.close().await;
    }
}

const SHUTDOWN_REASON: &str =
    "codex-a2a was shut down while this task was not finished; its turn was interrupted. \
     Send the message again to retry";

/// Writes the task as it is now. Writes of one task take turns and each
/// writes the latest state, so a slow write can never land after (and
/// undo) a newer one. A failure is logged: the task goes on in memory, and
/// the next write may succeed.
async fn persist(inner: &Inner, live: &Live) {
    let _turn = live.writes.lock().await;
    let task = live.snapshot();
    if let Err(e) = inner.store.save_task(&task).await {
        tracing::error!(task = %task.id, error = %e, "cannot record the task's state");
    }
}

/// Ends a task (once: later calls do nothing), records it, and drops its
/// live record.
async fn finish(
    inner: &Inner,
    live: &Arc<Live>,
    state: TaskState,
    message: Option<Message>,
    edit: impl FnOnce(&mut Task),
) {
    let Some(task) = live.set_status(state, message, edit) else {
        return;
    };
    persist(inner, live).await;
    inner.live.lock().expect("live").remove(&task.id);
    inner.finished.notify_waiters();
}

/// What codex gets from a client message.
fn turn_input(message: &Message) -> Result<TurnInput, RpcError> {
    let mut input = TurnInput::default();
    for (i, part) in message.parts.iter().enumerate() {
        input = match part {
            Part::Text { text } => input.text(text.clone()),
            Part::Data { data } => input.text(data.to_string()),
            Part::File {
                url: Some(url),
                media_type,
                ..
            } if media_type
                .as_deref()
                .is_none_or(|m| m.starts_with("image/")) =>
            {
                input.image_url(url.clone())
            }
            Part::File { .. } => {
                return Err(RpcError::content_type(format!(
                    "message.parts[{i}]: codex takes text, data and images by URL; this file part \
                     (inline bytes, or a non-image media type) cannot be passed on"
                )))
            }
        };
    }
    Ok(input)
}

/// Reads the answer to an approval: text `approve`/`decline`, or a data
/// part `{"decision": "accept"|"decline"}`.
fn parse_decision(message: &Message) -> Result<ApprovalDecision, RpcError> {
    for part in &message.parts {
        let word = match part {
            Part::Text { text } => text
                .trim()
                .trim_end_matches(['.', '!'])
                .to_ascii_lowercase(),
            Part::Data { data } => match data.get("decision").and_then(Value::as_str) {
                Some(d) => d.to_ascii_lowercase(),
                None => continue,
            },
            Part::File { .. } => continue,
        };
        match word.as_str() {
            "approve" | "approved" | "accept" | "accepted" | "yes" | "y" => {
                return Ok(ApprovalDecision::Accept)
            }
            "decline" | "declined" | "deny" | "denied" | "reject" | "no" | "n" => {
                return Ok(ApprovalDecision::Decline)
            }
            _ => {}
        }
    }
    Err(RpcError::invalid_params(
        "message.parts",
        "this task waits for an approval: answer with the text \"approve\" or \"decline\", \
         or a data part {\"decision\": \"accept\"} / {\"decision\": \"decline\"}",
    ))
}

/// The input-required status message of an approval: a sentence, and the
/// same as data.
fn approval_message(approval: &Approval, context: &str, task: &str, timeout: Duration) -> Message {
    let (what, data) = match approval.kind() {
        ApprovalKind::Command { command, cwd } => (
            format!(
                "codex asks to run the command `{}`{}",
                command.as_deref().unwrap_or("(not shown)"),
                cwd.as_deref()
                    .map(|c| format!(" in {c}"))
                    .unwrap_or_default()
            ),
            json!({ "kind": "command", "command": command, "cwd": cwd }),
        ),
        ApprovalKind::FileChange {
            changes,
            grant_root,
        } => (
            format!(
                "codex asks to apply a patch to {}",
                changes
                    .iter()
                    .map(|c| format!("{} ({})", c.path, c.kind))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            json!({ "kind": "patch", "changes": changes, "grantRoot": grant_root }),
        ),
        _ => (
            "codex asks for an approval".to_owned(),
            json!({ "kind": "other" }),
        ),
    };
    let reason = approval
        .reason()
        .map(|r| format!(" Reason: {r}."))
        .unwrap_or_default();
    let text = format!(
        "{what}.{reason} Answer on this task with \"approve\" or \"decline\" (or a data part \
         {{\"decision\": \"accept\"|\"decline\"}}); it is declined after {} s without an answer.",
        timeout.as_secs()
    );
    let mut data = data;
    data["reason"] = approval.reason().into();
    data["itemId"] = approval.item_id().into();
    Message {
        message_id: uuid::Uuid::new_v4().to_string(),
        role: Role::Agent,
        parts: vec![
            Part::text(text),
            Part::Data {
                data: json!({ "approval": data }),
            },
        ],
        context_id: Some(context.to_owned()),
        task_id: Some(task.to_owned()),
    }
}

/// Runs one task: waits for its context's turn, runs the codex turn, and
/// records how it went.
async fn run(inner: Arc<Inner>, live: Arc<Live>, pending: Pending, input: TurnInput) {
    let slot = pending.slot.clone();
    let _turn = slot.turn.lock().await;
    let snapshot = live.snapshot();
    let (task_id, context_id) = (snapshot.id.clone(), snapshot.context_id.clone());
    if live.state().is_terminal() {
        return; // canceled while queued
    }
    if inner.draining.load(Ordering::SeqCst) {
        let msg = Message::agent_text(SHUTDOWN_REASON, &context_id, &task_id);
        finish(&inner, &live, TaskState::Failed, Some(msg), |_| {}).await;
        return;
    }
    let mut options = TurnOptions::default().approvals(ApprovalPolicy::Ask);
    if let Some(limits) = inner.config.turn_limits {
        options = options.limits(limits);
    }
    let mut turn = match inner.codex.start_turn(&context_id, input, options).await {
        Ok(turn) => turn,
        Err(e) => {
            let msg = Message::agent_text(
                format!("codex could not start the turn: {e}"),
                &context_id,
                &task_id,
            );
            finish(&inner, &live, TaskState::Failed, Some(msg), |_| {}).await;
            return;
        }
    };
    // Working once codex has the turn: a client that sees it knows the
    // task is past any restart of codex and running.
    if live.set_status(TaskState::Working, None, |_| {}).is_some() {
        persist(&inner, &live).await;
    }
    {
        let mut control = live.control.lock().expect("control");
        control.interrupter = Some(turn.interrupter());
        if control.cancel_requested || control.shutting_down {
            let interrupter = turn.interrupter();
            tokio::spawn(async move { interrupter.interrupt().await });
        }
    }
    let artifact_id = uuid::Uuid::new_v4().to_string();
    let mut outcome = None;
    while let Some(event) = turn.next().await {
        match event {
            TurnEvent::AgentMessageDelta { delta, .. } => live.append_text(&artifact_id, &delta),
            TurnEvent::ApprovalRequested(approval) => {
                on_approval(&inner, &live, approval, &context_id, &task_id).await;
            }
            TurnEvent::Outcome(o) => {
                outcome = Some(o);
                break;
            }
            _ => {}
        }
    }
    // No approval outlives its turn.
    live.control.lock().expect("control").approval = None;
    let (cancel_requested, shutting_down) = {
        let c = live.control.lock().expect("control");
        (c.cancel_requested, c.shutting_down)
    };
    let outcome = outcome.unwrap_or(TurnOutcome::ServerDied {
        message: "the turn's event stream ended without an outcome".into(),
    });
    let say = |text: String| Some(Message::agent_text(text, &context_id, &task_id));
    match outcome {
        TurnOutcome::Completed {
            last_agent_message, ..
        } => {
            // codex names the last agent message; without one, what was
            // streamed stands.
            let text = last_agent_message.unwrap_or_else(|| live.streamed_text(&artifact_id));
            live.final_artifact(&artifact_id, &text);
            let reply = Message::agent_text(text, &context_id, &task_id);
            finish(&inner, &live, TaskState::Completed, None, |t| {
                t.history.push(reply)
            })
            .await;
        }
        _ if cancel_requested => {
            finish(
                &inner,
                &live,
                TaskState::Canceled,
                say("canceled; codex interrupted the turn".into()),
                |_| {},
            )
            .await;
        }
        _ if shutting_down => {
            finish(
                &inner,
                &live,
                TaskState::Failed,
                say(SHUTDOWN_REASON.into()),
                |_| {},
            )
            .await;
        }
        TurnOutcome::Interrupted { .. } => {
            finish(
                &inner,
                &live,
                TaskState::Failed,
                say("codex interrupted the turn".into()),
                |_| {},
            )
            .await;
        }
        TurnOutcome::Failed { message, .. } => {
            finish(
                &inner,
                &live,
                TaskState::Failed,
                say(format!("codex failed the turn: {message}")),
                |_| {},
            )
            .await;
        }
        TurnOutcome::TimedOut { message, .. } => {
            finish(
                &inner,
                &live,
                TaskState::Failed,
                say(format!("the turn timed out: {message}")),
                |_| {},
            )
            .await;
        }
        TurnOutcome::ServerDied { message } => {
            let text = format!(
                "codex died during this turn ({message}); it is restarted for the next message, \
                 which continues this context with its history"
            );
            finish(&inner, &live, TaskState::Failed, say(text), |_| {}).await;
        }
        other => {
            finish(
                &inner,
                &live,
                TaskState::Failed,
                say(format!("the turn ended: {other}")),
                |_| {},
            )
            .await;
        }
    }
    drop(pending);
}

/// Parks an approval for the client: the task turns input-required, and
/// the approval is declined after the timeout.
async fn on_approval(
    inner: &Arc<Inner>,
    live: &Arc<Live>,
    approval: Approval,
    context: &str,
    task_id: &str,
) {
    let timeout = inner.config.approval_timeout;
    let message = approval_message(&approval, context, task_id, timeout);
    let seq = {
        let mut control = live.control.lock().expect("control");
        if control.cancel_requested || control.shutting_down {
            approval.cancel();
            return;
        }
        control.approvals_seen += 1;
        let seq = control.approvals_seen;
        control.approval = Some((seq, approval));
        seq
    };
    if live
        .set_status(TaskState::InputRequired, Some(message), |_| {})
        .is_some()
    {
        persist(inner, live).await;
    }
    let (inner, live) = (inner.clone(), live.clone());
    let (context, task_id) = (context.to_owned(), task_id.to_owned());
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        let expired = {
            let mut control = live.control.lock().expect("control");
            match &control.approval {
                Some((s, _)) if *s == seq => control.approval.take(),
                _ => None,
            }
        };
        if let Some((_, approval)) = expired {
            let msg = Message::agent_text(
                format!(
                    "nobody answered the approval within {} s (--approval-timeout): declined",
                    timeout.as_secs()
                ),
                &context,
                &task_id,
            );
            // Working first, then the answer (see `Service::answer`).
            live.set_status(TaskState::Working, Some(msg), |_| {});
            approval.decline();
            persist(&inner, &live).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(parts: Vec<Part>) -> Message {
        Message {
            message_id: "m".into(),
            role: Role::User,
            parts,
            context_id: None,
            task_id: None,
        }
    }

    #[test]
    fn decisions_come_as_words_or_data() {
        let d = |parts| parse_decision(&user(parts));
        assert_eq!(
            d(vec![Part::text(" Approve. ")]).unwrap(),
            ApprovalDecision::Accept
        );
        assert_eq!(
            d(vec![Part::text("decline")]).unwrap(),
            ApprovalDecision::Decline
        );
        assert_eq!(
            d(vec![Part::Data {
                data: json!({"decision": "accept"})
            }])
            .unwrap(),
            ApprovalDecision::Accept
        );
        assert_eq!(
            d(vec![Part::Data {
                data: json!({"decision": "decline"})
            }])
            .unwrap(),
            ApprovalDecision::Decline
        );
        let err = d(vec![Part::text("maybe later")]).unwrap_err();
        assert_eq!(err.code, crate::rpc::code::INVALID_PARAMS);
        assert!(err.message.contains("approve"));
    }

    #[test]
    fn files_other_than_image_urls_are_refused() {
        let file = |url: Option<&str>, mt: &str| Part::File {
            url: url.map(str::to_owned),
            raw: url.is_none().then(|| "aGk=".to_owned()),
            media_type: Some(mt.into()),
            filename: None,
        };
        assert!(turn_input(&user(vec![
            Part::text("hi"),
            file(Some("http://x/a.png"), "image/png")
        ]))
        .is_ok());
        assert_eq!(
            turn_input(&user(vec![file(None, "image/png")]))
                .unwrap_err()
                .code,
            crate::rpc::code::CONTENT_TYPE_NOT_SUPPORTED
        );
        assert_eq!(
            turn_input(&user(vec![file(Some("http://x/a.pdf"), "application/pdf")]))
                .unwrap_err()
                .code,
            crate::rpc::code::CONTENT_TYPE_NOT_SUPPORTED
        );
    }
}
