//! Approval requests: codex asks before it runs a command or applies a patch.
//!
//! codex sends them as server→client *requests* (not notifications), in two
//! dialects: v2 (`item/commandExecution/requestApproval`,
//! `item/fileChange/requestApproval`, answered `accept`/`decline`/…) and the
//! v1 conversation API (`execCommandApproval`, `applyPatchApproval`, answered
//! `approved`/`denied`/…). An [`Approval`] hides the dialect.
//!
//! **An approval is always answered with a decision, never with a JSON-RPC
//! error**: codex 0.72.0 hangs the turn forever after an error answer. A
//! dropped [`Approval`] therefore declines.

use std::fmt;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};

use crate::event::FileChange;

/// The answer to an approval request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// Run it, this once.
    Accept,
    /// Run it, and do not ask again for the same thing in this session.
    AcceptForSession,
    /// Do not run it; the model is told and the turn goes on.
    Decline,
    /// Do not run it, and end the turn (it ends `interrupted`).
    Cancel,
}

impl ApprovalDecision {
    /// The `result` to send for a request of `dialect`.
    pub(crate) fn to_wire(self, dialect: Dialect) -> Value {
        let word = match (dialect, self) {
            (Dialect::V2, ApprovalDecision::Accept) => "accept",
            (Dialect::V2, ApprovalDecision::AcceptForSession) => "acceptForSession",
            (Dialect::V2, ApprovalDecision::Decline) => "decline",
            (Dialect::V2, ApprovalDecision::Cancel) => "cancel",
            (Dialect::V1, ApprovalDecision::Accept) => "approved",
            (Dialect::V1, ApprovalDecision::AcceptForSession) => "approved_for_session",
            (Dialect::V1, ApprovalDecision::Decline) => "denied",
            (Dialect::V1, ApprovalDecision::Cancel) => "abort",
        };
        json!({ "decision": word })
    }
}

impl std::str::FromStr for ApprovalDecision {
    type Err = String;

    /// Parses `accept`, `accept-for-session`, `decline` or `cancel`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "accept" => Ok(ApprovalDecision::Accept),
            "accept-for-session" | "accept_for_session" | "acceptForSession" => {
                Ok(ApprovalDecision::AcceptForSession)
            }
            "decline" => Ok(ApprovalDecision::Decline),
            "cancel" => Ok(ApprovalDecision::Cancel),
            other => Err(format!(
                "unknown approval decision {other:?}: expected accept, accept-for-session, decline or cancel"
            )),
        }
    }
}

/// Who answers the approvals of a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApprovalPolicy {
    /// The adapter answers every approval with this decision at once; the
    /// stream still shows each one (with [`Approval::decision`] set).
    Decide(ApprovalDecision),
    /// The caller answers: each approval appears in the stream with a live
    /// responder, and the turn's inactivity watchdog is paused until it is
    /// answered. A dropped [`Approval`] declines.
    Ask,
    /// The default: decline everything (`Decide(Decline)`).
    #[default]
    DeclineAll,
}

impl ApprovalPolicy {
    pub(crate) fn automatic(self) -> Option<ApprovalDecision> {
        match self {
            ApprovalPolicy::Decide(d) => Some(d),
            ApprovalPolicy::Ask => None,
            ApprovalPolicy::DeclineAll => Some(ApprovalDecision::Decline),
        }
    }
}

/// Which API family an approval request came from; decides the answer's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    V2,
    V1,
}

/// What codex wants to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ApprovalKind {
    /// Run a shell command.
    Command {
        /// The command line, shell-quoted. Joined from the command's item
        /// when the request itself does not carry it (codex 0.72.0).
        command: Option<String>,
        /// Where it would run.
        cwd: Option<String>,
    },
    /// Apply a patch.
    FileChange {
        /// The files it would touch, from the file change's item.
        changes: Vec<FileChange>,
        /// A directory codex asks write access to, if any.
        grant_root: Option<String>,
    },
}

type Answer = Box<dyn FnOnce(ApprovalDecision) + Send>;

/// Sends the decision back to codex; used once.
pub(crate) struct Responder(Mutex<Option<Answer>>);

impl Responder {
    pub(crate) fn new(answer: impl FnOnce(ApprovalDecision) + Send + 'static) -> Self {
        Responder(Mutex::new(Some(Box::new(answer))))
    }

    fn answer(&self, decision: ApprovalDecision) {
        let answer = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(answer) = answer {
            answer(decision);
        }
    }
}

/// An approval request in a turn's stream.
///
/// Answer with [`accept`](Approval::accept), [`accept_for_session`](Approval::accept_for_session),
/// [`decline`](Approval::decline) or [`cancel`](Approval::cancel). **Dropping
/// it unanswered declines.** When the turn's [`ApprovalPolicy`] already
/// answered, [`decision`](Approval::decision) says how and answering again does
/// nothing.
#[derive(Serialize)]
pub struct Approval {
    item_id: String,
    #[serde(flatten)]
    kind: ApprovalKind,
    reason: Option<String>,
    decision: Option<ApprovalDecision>,
    #[serde(skip)]
    responder: Option<Responder>,
    #[serde(skip)]
    hold: Option<Box<dyn Send + Sync>>,
}

impl Approval {
    pub(crate) fn new(item_id: String, kind: ApprovalKind, reason: Option<String>) -> Self {
        Approval {
            item_id,
            kind,
            reason,
            decision: None,
            responder: None,
            hold: None,
        }
    }

    pub(crate) fn with_responder(mut self, responder: Responder) -> Self {
        self.responder = Some(responder);
        self
    }

    /// Keeps `guard` alive until the approval is answered (or dropped).
    pub(crate) fn holding(mut self, guard: impl Send + Sync + 'static) -> Self {
        self.hold = Some(Box::new(guard));
        self
    }

    pub(crate) fn kind_mut(&mut self) -> &mut ApprovalKind {
        &mut self.kind
    }

    /// The item (command or file change) this approval is about; the
    /// matching `CommandStarted`/`FileChangeStarted` event came before it.
    pub fn item_id(&self) -> &str {
        &self.item_id
    }

    /// What codex wants to do.
    pub fn kind(&self) -> &ApprovalKind {
        &self.kind
    }

    /// Why codex asks, if it said.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The decision already sent, if any.
    pub fn decision(&self) -> Option<ApprovalDecision> {
        self.decision
    }

    /// Whether an answer is still owed.
    pub fn is_pending(&self) -> bool {
        self.decision.is_none() && self.responder.is_some()
    }

    /// Answers with `decision`. Does nothing if already answered.
    pub fn respond(&mut self, decision: ApprovalDecision) {
        if self.decision.is_some() {
            return;
        }
        if let Some(responder) = self.responder.take() {
            responder.answer(decision);
            self.decision = Some(decision);
        }
        self.hold = None;
    }

    /// Runs it once.
    pub fn accept(mut self) {
        self.respond(ApprovalDecision::Accept);
    }

    /// Runs it and stops asking for the same thing in this session.
    pub fn accept_for_session(mut self) {
        self.respond(ApprovalDecision::AcceptForSession);
    }

    /// Refuses; the model is told and the turn goes on.
    pub fn decline(mut self) {
        self.respond(ApprovalDecision::Decline);
    }

    /// Refuses and ends the turn (`interrupted`).
    pub fn cancel(mut self) {
        self.respond(ApprovalDecision::Cancel);
    }

    /// Records that the policy answered (used by the adapter).
    pub(crate) fn answered(mut self, decision: ApprovalDecision) -> Self {
        self.respond(decision);
        self.decision = Some(decision);
        self
    }

    /// A copy of the data, without the responder (for logs and collections).
    pub fn detached(&self) -> Approval {
        Approval {
            item_id: self.item_id.clone(),
            kind: self.kind.clone(),
            reason: self.reason.clone(),
            decision: self.decision,
            responder: None,
            hold: None,
        }
    }
}

impl Drop for Approval {
    fn drop(&mut self) {
        // Never leave codex waiting, and never answer with an error.
        self.respond(ApprovalDecision::Decline);
    }
}

impl fmt::Debug for Approval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Approval")
            .field("item_id", &self.item_id)
            .field("kind", &self.kind)
            .field("reason", &self.reason)
            .field("decision", &self.decision)
            .field("pending", &self.is_pending())
            .finish()
    }
}

/// Compares the data; the responder does not count.
impl PartialEq for Approval {
    fn eq(&self, other: &Self) -> bool {
        self.item_id == other.item_id
            && self.kind == other.kind
            && self.reason == other.reason
            && self.decision == other.decision
    }
}

/// Builds the approval data from a server→client request. Returns `None` for
/// methods that are not approvals.
pub(crate) fn approval_from_request(method: &str, params: &Value) -> Option<(Dialect, Approval)> {
    let s = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_owned);
    match method {
        "item/commandExecution/requestApproval" => Some((
            Dialect::V2,
            Approval::new(
                s("itemId").unwrap_or_default(),
                ApprovalKind::Command {
                    command: s("command"),
                    cwd: s("cwd"),
                },
                s("reason"),
            ),
        )),
        "item/fileChange/requestApproval" => Some((
            Dialect::V2,
            Approval::new(
                s("itemId").unwrap_or_default(),
                ApprovalKind::FileChange {
                    changes: Vec::new(),
                    grant_root: s("grantRoot"),
                },
                s("reason"),
            ),
        )),
        "execCommandApproval" => {
            let command = params
                .get("command")
                .and_then(Value::as_array)
                .map(|argv| crate::decode::shell_join(argv));
            Some((
                Dialect::V1,
                Approval::new(
                    s("callId").unwrap_or_default(),
                    ApprovalKind::Command {
                        command,
                        cwd: s("cwd"),
                    },
                    s("reason"),
                ),
            ))
        }
        "applyPatchApproval" => Some((
            Dialect::V1,
            Approval::new(
                s("callId").unwrap_or_default(),
                ApprovalKind::FileChange {
                    changes: params
                        .get("fileChanges")
                        .map(crate::decode::legacy_changes)
                        .unwrap_or_default(),
                    grant_root: s("grantRoot"),
                },
                s("reason"),
            ),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn recorded() -> (Responder, Arc<Mutex<Vec<ApprovalDecision>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        (Responder::new(move |d| s.lock().unwrap().push(d)), seen)
    }

    fn approval() -> Approval {
        Approval::new(
            "call_1".into(),
            ApprovalKind::Command {
                command: Some("ls".into()),
                cwd: None,
            },
            None,
        )
    }

    #[test]
    fn a_dropped_approval_declines() {
        let (r, seen) = recorded();
        drop(approval().with_responder(r));
        assert_eq!(*seen.lock().unwrap(), vec![ApprovalDecision::Decline]);
    }

    #[test]
    fn an_approval_is_answered_once() {
        let (r, seen) = recorded();
        let mut a = approval().with_responder(r);
        a.respond(ApprovalDecision::Accept);
        a.respond(ApprovalDecision::Cancel);
        drop(a);
        assert_eq!(*seen.lock().unwrap(), vec![ApprovalDecision::Accept]);
    }

    #[test]
    fn decisions_use_the_words_of_each_dialect() {
        assert_eq!(
            ApprovalDecision::AcceptForSession.to_wire(Dialect::V2),
            json!({"decision": "acceptForSession"})
        );
        assert_eq!(
            ApprovalDecision::Decline.to_wire(Dialect::V1),
            json!({"decision": "denied"})
        );
        assert_eq!(
            ApprovalDecision::Cancel.to_wire(Dialect::V1),
            json!({"decision": "abort"})
        );
    }
}
