//! The service's own model of A2A tasks, independent of the wire version.
//!
//! Both protocol versions ([`crate::wire::v1`], [`crate::wire::v03`]) map
//! onto these types, and the store keeps them as JSON in this (snake_case,
//! versionless) shape, so a task written by a 0.3 client reads the same
//! through 1.0.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Accepted, waiting for its context's running turn.
    Submitted,
    /// Its codex turn runs.
    Working,
    /// codex asks for an approval; the client answers on the same task.
    InputRequired,
    /// The turn completed; the agent's text is an artifact.
    Completed,
    /// The turn failed, or the service lost it; the status says why.
    Failed,
    /// Canceled by the client.
    Canceled,
    /// Refused before it ran.
    Rejected,
}

impl TaskState {
    /// Every state, for parsing and docs.
    pub const ALL: [TaskState; 7] = [
        TaskState::Submitted,
        TaskState::Working,
        TaskState::InputRequired,
        TaskState::Completed,
        TaskState::Failed,
        TaskState::Canceled,
        TaskState::Rejected,
    ];

    /// A terminal task never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Failed | TaskState::Canceled | TaskState::Rejected
        )
    }

    /// Where a blocking send returns: terminal, or waiting for the client.
    pub fn is_settled(self) -> bool {
        self.is_terminal() || self == TaskState::InputRequired
    }

    /// The name kept in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Submitted => "submitted",
            TaskState::Working => "working",
            TaskState::InputRequired => "input_required",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Canceled => "canceled",
            TaskState::Rejected => "rejected",
        }
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The A2A client.
    User,
    /// This agent.
    Agent,
}

/// One piece of a message or artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// Structured data (any JSON value).
    Data {
        /// The data.
        data: Value,
    },
    /// A file, by URL or inline base64 bytes.
    File {
        /// Where the file is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// The file's bytes, base64.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw: Option<String>,
        /// Its media type (`image/png`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_type: Option<String>,
        /// Its name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
    },
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Part {
        Part::Text { text: text.into() }
    }
}

/// A message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The sender's id for it.
    pub message_id: String,
    /// Who wrote it.
    pub role: Role,
    /// Its content.
    pub parts: Vec<Part>,
    /// The context it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// The task it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

impl Message {
    /// An agent message with one text part, in `task` of `context`.
    pub fn agent_text(text: impl Into<String>, context: &str, task: &str) -> Message {
        Message {
            message_id: uuid::Uuid::new_v4().to_string(),
            role: Role::Agent,
            parts: vec![Part::text(text)],
            context_id: Some(context.to_owned()),
            task_id: Some(task.to_owned()),
        }
    }

    /// The text parts, joined by newlines.
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n")
    }
}

/// An output of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Its id, stable across streamed chunks.
    pub artifact_id: String,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its content.
    pub parts: Vec<Part>,
}

/// A task's state, with the message that explains it and when it was set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The state.
    pub state: TaskState,
    /// Why (the approval asked for, the failure's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// When, RFC 3339 UTC with milliseconds.
    pub timestamp: String,
}

impl TaskStatus {
    /// `state` now, explained by `message`.
    pub fn now(state: TaskState, message: Option<Message>) -> TaskStatus {
        TaskStatus {
            state,
            message,
            timestamp: timestamp(SystemTime::now()),
        }
    }
}

/// One task: one codex turn of one context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The task id.
    pub id: String,
    /// The context (↔ codex thread) it runs in.
    pub context_id: String,
    /// Its current state.
    pub status: TaskStatus,
    /// The messages exchanged in it, oldest first.
    pub history: Vec<Message>,
    /// Its outputs.
    pub artifacts: Vec<Artifact>,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

impl Task {
    /// This task with at most the last `n` history messages (`None`: all).
    pub fn with_history_length(&self, n: Option<usize>) -> Task {
        let mut task = self.clone();
        if let Some(n) = n {
            let skip = task.history.len().saturating_sub(n);
            task.history.drain(..skip);
        }
        task
    }
}

/// `t` as ISO 8601 in UTC with millisecond precision
/// (`2025-10-28T10:30:00.000Z`), the form A2A asks for.
pub fn timestamp(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(1_700_000_000_123_456_789);
        assert_eq!(timestamp(t), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn history_length_keeps_the_newest() {
        let msg = |i: usize| Message {
            message_id: i.to_string(),
            role: Role::User,
            parts: vec![Part::text("x")],
            context_id: None,
            task_id: None,
        };
        let task = Task {
            id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus::now(TaskState::Working, None),
            history: (0..5).map(msg).collect(),
            artifacts: vec![],
            created_at: timestamp(SystemTime::now()),
        };
        let short = task.with_history_length(Some(2));
        assert_eq!(short.history.len(), 2);
        assert_eq!(short.history[0].message_id, "3");
        assert_eq!(task.with_history_length(None).history.len(), 5);
    }

    #[test]
    fn only_finished_states_are_terminal() {
        let terminal: Vec<_> = TaskState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal.len(), 4);
        assert!(TaskState::InputRequired.is_settled());
        assert!(!TaskState::Working.is_settled());
    }
}
