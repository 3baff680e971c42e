//! The typed events of a turn, and how a turn ends.
//!
//! Every type here serializes to JSON with a snake_case `"type"` tag: this is
//! the stable shape `codex-turn --json` prints (see the crate docs).

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::approval::Approval;

/// One thing that happened in a turn, in the order codex reported it.
///
/// A turn's stream yields any number of these and then exactly one
/// [`TurnEvent::Outcome`], after which it ends. Both wire families of codex
/// (0.72.0's legacy `codex/event/*` envelopes and the v2 `item/*`, `turn/*`
/// notifications) map onto this one enum; each text delta appears once even
/// though codex 0.72.0 sends it three times.
#[derive(Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TurnEvent {
    /// codex started working on the turn.
    TurnStarted {
        /// codex's turn id (`"0"`, `"1"`… on 0.72.0, a UUID later).
        turn_id: String,
    },
    /// A piece of the agent's reply text, as it streams.
    AgentMessageDelta {
        /// The agent message item the text belongs to.
        item_id: String,
        /// The new text.
        delta: String,
    },
    /// A complete agent message. The last one of a turn is its answer.
    AgentMessage {
        /// The item id.
        item_id: String,
        /// The whole text.
        text: String,
    },
    /// A piece of the model's reasoning, as it streams.
    ReasoningDelta {
        /// The reasoning item.
        item_id: String,
        /// Whether this is summary text or raw reasoning content.
        part: ReasoningPart,
        /// The new text.
        delta: String,
    },
    /// A finished reasoning item.
    Reasoning {
        /// The item id.
        item_id: String,
        /// The summary paragraphs.
        summary: Vec<String>,
        /// The raw reasoning content, when the provider sends it.
        content: Vec<String>,
    },
    /// codex started (or is about to ask to start) a shell command.
    CommandStarted {
        /// The item id, which approval requests refer to.
        item_id: String,
        /// The command line, shell-quoted.
        command: String,
        /// Where it runs.
        cwd: Option<String>,
    },
    /// Output of a running command (stdout and stderr interleaved).
    CommandOutputDelta {
        /// The command item.
        item_id: String,
        /// The new output, decoded as UTF-8 (lossily).
        delta: String,
    },
    /// A command finished, was declined, or failed to run.
    CommandFinished {
        /// The item id.
        item_id: String,
        /// The command line, shell-quoted.
        command: String,
        /// How it ended.
        status: ItemStatus,
        /// The exit code, when it ran (codex reports 124 for its own timeout).
        exit_code: Option<i64>,
        /// stdout and stderr as codex aggregated them.
        output: Option<String>,
        /// How long it ran.
        duration_ms: Option<u64>,
    },
    /// codex started applying a patch.
    FileChangeStarted {
        /// The item id, which approval requests refer to.
        item_id: String,
        /// The files it touches.
        changes: Vec<FileChange>,
    },
    /// Output of applying a patch.
    FileChangeOutputDelta {
        /// The file change item.
        item_id: String,
        /// The new output.
        delta: String,
    },
    /// A patch was applied, declined, or failed.
    FileChangeFinished {
        /// The item id.
        item_id: String,
        /// How it ended.
        status: ItemStatus,
        /// The files it touched.
        changes: Vec<FileChange>,
    },
    /// codex called a tool of an MCP server.
    McpToolCallStarted {
        /// The item id.
        item_id: String,
        /// The MCP server's name.
        server: String,
        /// The tool's name.
        tool: String,
        /// The arguments, as sent.
        arguments: Value,
    },
    /// An MCP tool call finished.
    McpToolCallFinished {
        /// The item id.
        item_id: String,
        /// The MCP server's name.
        server: String,
        /// The tool's name.
        tool: String,
        /// How it ended.
        status: ItemStatus,
        /// The tool's result, if any.
        result: Option<Value>,
        /// The error, if it failed.
        error: Option<Value>,
    },
    /// codex searched the web.
    WebSearch {
        /// The item id.
        item_id: String,
        /// What it searched for.
        query: String,
    },
    /// The agent's plan changed.
    PlanUpdated {
        /// Why, if the agent said.
        explanation: Option<String>,
        /// The steps, in order.
        plan: Vec<PlanStep>,
    },
    /// The turn's aggregated diff changed.
    DiffUpdated {
        /// The whole unified diff of the turn so far.
        diff: String,
    },
    /// Token counts after a model call.
    TokenUsage(TokenUsage),
    /// codex asks for permission to run a command or apply a patch. Answer it
    /// through the [`Approval`]; dropping it declines.
    ApprovalRequested(Approval),
    /// The model call failed and codex retries it. The text streamed for the
    /// listed agent messages is abandoned: the retry starts a new message.
    Retrying {
        /// codex's message, e.g. "Reconnecting... 1/5".
        message: String,
        /// codex's error classification (a string or an object).
        codex_error_info: Option<Value>,
        /// Agent message items whose partial text is dropped.
        abandoned_items: Vec<String>,
    },
    /// An error codex reported; the turn's [`TurnEvent::Outcome`] follows
    /// if it is fatal.
    Error {
        /// What codex said.
        message: String,
        /// codex's error classification (a string or an object).
        codex_error_info: Option<Value>,
    },
    /// A warning codex reported.
    Warning {
        /// What codex said.
        message: String,
    },
    /// An item that was still open when the turn ended (for example a
    /// command running when the turn was interrupted). codex never finishes
    /// such items; this closes them.
    ItemAbandoned {
        /// The item id.
        item_id: String,
        /// The item's kind; serializes as codex's v2 spelling, e.g.
        /// `"commandExecution"`.
        kind: ItemKind,
    },
    /// A notification for this turn that no variant models, kept raw.
    Other {
        /// The JSON-RPC method.
        method: String,
        /// Its params.
        params: Value,
    },
    /// How the turn ended. Always the last event, exactly once.
    Outcome(TurnOutcome),
}

/// The kinds of item a turn can leave open (see [`TurnEvent::ItemAbandoned`]).
///
/// Serializes as codex's v2 item type (`"agentMessage"`, …), which is also
/// what [`Display`](fmt::Display) prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ItemKind {
    /// The agent's reply text.
    AgentMessage,
    /// The model's reasoning.
    Reasoning,
    /// A shell command.
    CommandExecution,
    /// A patch.
    FileChange,
    /// A call of an MCP server's tool.
    McpToolCall,
}

impl ItemKind {
    /// codex's v2 spelling of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::AgentMessage => "agentMessage",
            ItemKind::Reasoning => "reasoning",
            ItemKind::CommandExecution => "commandExecution",
            ItemKind::FileChange => "fileChange",
            ItemKind::McpToolCall => "mcpToolCall",
        }
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of reasoning text a [`TurnEvent::ReasoningDelta`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReasoningPart {
    /// The readable summary.
    Summary,
    /// The raw reasoning text.
    Content,
}

/// How an item ended. Tolerant: codex 0.72.0 can finish one item twice
/// (declined, then failed); both are reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ItemStatus {
    /// Still running.
    InProgress,
    /// Done.
    Completed,
    /// Tried and failed.
    Failed,
    /// Not run: the approval was declined.
    Declined,
    /// A status this crate does not know, kept as sent.
    #[serde(untagged)]
    Unknown(String),
}

impl ItemStatus {
    pub(crate) fn from_wire(s: &str) -> ItemStatus {
        match s {
            "inProgress" | "in_progress" => ItemStatus::InProgress,
            "completed" => ItemStatus::Completed,
            "failed" => ItemStatus::Failed,
            "declined" => ItemStatus::Declined,
            other => ItemStatus::Unknown(other.to_owned()),
        }
    }
}

/// One file touched by a patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FileChange {
    /// The file's path.
    pub path: String,
    /// `"add"`, `"delete"` or `"update"`.
    pub kind: String,
    /// The diff (or the new content, for an added file).
    pub diff: String,
}

/// One step of the agent's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlanStep {
    /// What the step does.
    pub step: String,
    /// `"pending"`, `"inProgress"` or `"completed"`, as sent.
    pub status: String,
}

/// Token counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TokenUsage {
    /// Totals for the thread so far.
    pub total: TokenCounts,
    /// The last model call alone.
    pub last: TokenCounts,
    /// The model's context window, when known.
    pub model_context_window: Option<u64>,
}

/// Token counts of one kind of total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TokenCounts {
    /// Input tokens.
    pub input_tokens: u64,
    /// Of which cached.
    pub cached_input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Of which reasoning.
    pub reasoning_output_tokens: u64,
    /// Everything.
    pub total_tokens: u64,
}

/// How a turn ended: the last event of every turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TurnOutcome {
    /// codex finished the turn.
    Completed {
        /// The turn id.
        turn_id: String,
        /// The text of the last agent message, if any.
        last_agent_message: Option<String>,
    },
    /// The turn was interrupted (by [`Turn::interrupt`](crate::Turn::interrupt),
    /// a `cancel` approval decision, or another client).
    Interrupted {
        /// The turn id.
        turn_id: String,
    },
    /// codex gave up on the turn.
    Failed {
        /// The turn id.
        turn_id: String,
        /// What codex said.
        message: String,
        /// codex's classification: a string such as `"internalServerError"`
        /// or an object such as `{"responseStreamDisconnected": {...}}`.
        codex_error_info: Option<Value>,
    },
    /// No event came for too long, or the whole turn took too long. The
    /// adapter sent `turn/interrupt` and released the thread.
    TimedOut {
        /// The turn id.
        turn_id: String,
        /// Which limit fired.
        limit: TimeLimit,
        /// The limit, in seconds.
        after_secs: f64,
        /// A sentence for humans.
        message: String,
    },
    /// The app-server process died (or its pipes closed) during the turn.
    ServerDied {
        /// The cause as the transport saw it, e.g. "server exited with
        /// status 1; last stderr: ...".
        message: String,
    },
}

/// Which watchdog limit ended a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimeLimit {
    /// No event for the idle period.
    Idle,
    /// The turn's total budget.
    Budget,
}

impl TurnOutcome {
    pub(crate) fn timed_out(turn_id: &str, limit: TimeLimit, after: Duration) -> TurnOutcome {
        let secs = after.as_secs_f64();
        let message = match limit {
            TimeLimit::Idle => format!(
                "no event from codex for {secs} s: channel wedged; the turn was interrupted"
            ),
            TimeLimit::Budget => {
                format!("the turn ran past its budget of {secs} s; the turn was interrupted")
            }
        };
        TurnOutcome::TimedOut {
            turn_id: turn_id.to_owned(),
            limit,
            after_secs: secs,
            message,
        }
    }

    /// The exit status `codex-turn` uses for this outcome: 0 completed,
    /// 1 failed, 2 interrupted or timed out, 3 app-server died.
    pub fn exit_code(&self) -> i32 {
        match self {
            TurnOutcome::Completed { .. } => 0,
            TurnOutcome::Failed { .. } => 1,
            TurnOutcome::Interrupted { .. } | TurnOutcome::TimedOut { .. } => 2,
            TurnOutcome::ServerDied { .. } => 3,
        }
    }

    /// Whether codex completed the turn.
    pub fn is_completed(&self) -> bool {
        matches!(self, TurnOutcome::Completed { .. })
    }
}

impl fmt::Display for TurnOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TurnOutcome::Completed { .. } => write!(f, "turn completed"),
            TurnOutcome::Interrupted { .. } => write!(f, "turn interrupted"),
            TurnOutcome::Failed {
                message,
                codex_error_info,
                ..
            } => {
                write!(f, "turn failed: {message}")?;
                if let Some(info) = codex_error_info {
                    write!(f, " (codex error info: {info})")?;
                }
                Ok(())
            }
            TurnOutcome::TimedOut { message, .. } => f.write_str(message),
            TurnOutcome::ServerDied { message } => write!(f, "codex app-server died: {message}"),
        }
    }
}
