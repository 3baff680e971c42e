//! `codex-a2a`: OpenAI codex as an A2A (Agent2Agent) agent that never
//! wedges. One long-lived `codex app-server` serves every context; each A2A
//! context is a codex thread, each task one codex turn; all state lives in
//! SQLite and survives a SIGKILL of this program or of codex.
//!
//! # Architecture
//!
//! | module | role |
//! |---|---|
//! | [`http`] | axum: the agent card, JSON-RPC of both A2A versions at one URL, SSE streams, bearer auth, body limit |
//! | [`rpc`] | JSON-RPC 2.0 request parsing and the A2A error codes |
//! | [`wire`] | A2A 1.0 ([`wire::v1`], proto-JSON) and 0.3 ([`wire::v03`], `kind`-tagged) reading and writing |
//! | [`service`] | the task life: submit, per-context FIFO queue, run a turn, approvals, cancel, subscribe, shutdown |
//! | [`codex`] | all access to codex: codex-adapter's self-healing `Sessions` keyed by context id (one app-server; context ↔ thread, resumed after codex dies or a restart), the thread map in the store |
//! | [`store`] | SQLite (sqlx): contexts and tasks, each change one transaction |
//! | [`model`] | the versionless task, message, part and artifact types |
//!
//! The life of a message: [`http`] reads the body (413 past the limit),
//! [`rpc`] parses the request (-32700/-32600), the method name picks the
//! version, [`wire`] reads the params (-32602 naming the field), and
//! [`service::Service::submit`] records a `submitted` task in the store and
//! spawns its runner. The runner waits for its context's turn lock (at
//! most `--queue-depth` wait; beyond, the send fails at once with a busy
//! error), marks the task `working`, and starts a codex turn in the
//! context's thread through [`codex`]. Text deltas become artifact chunks;
//! an approval turns the task `input-required` until the client answers on
//! the same task (or `--approval-timeout` declines it); the turn's outcome
//! makes the task `completed` (the text as an artifact), `failed` (with the
//! reason) or `canceled`. Every state change is one store transaction and
//! one event to the task's subscribers (SSE).
//!
//! Besides JSON-RPC at `/` and the card at `/.well-known/agent-card.json`,
//! `GET /health` reports codex's health, its pid and the healing counters.
//!
//! # Failure
//!
//! | what happens | what the client sees |
//! |---|---|
//! | codex dies between messages | the next message starts a new codex and resumes the context's thread with its history |
//! | codex dies mid-turn | that task `failed`, saying so; the next message is answered as above |
//! | this program is SIGKILLed | after a restart on the same `--state`: old tasks readable, contexts continue, tasks that were unfinished are `failed` with the reason |
//! | SIGTERM / Ctrl-C | no new connections; running turns get `--grace` (10 s), then are interrupted and recorded `failed`; exit 0 |
//! | a context's queue is full | `-32000` "context … is busy", at once |
//! | cancel | `turn/interrupt`; the task is `canceled` within 2 s |

pub mod codex;
pub mod http;
pub mod model;
pub mod rpc;
pub mod service;
pub mod store;
pub mod wire;

use mock_model::{default_script, ModelRequest, Reply};
use serde_json::Value;

/// The script of `--mock-model`: codex-adapter's
/// [`default_script`], plus one directive to show what the model was sent:
/// a prompt containing `recall` is answered with every earlier user
/// message of the conversation (`I remember: first | second`), so a test
/// can see that a resumed thread kept its history.
pub fn mock_script(request: &ModelRequest) -> Reply {
    if request.tool_output().is_none() && request.user_text().contains("recall") {
        let mut said: Vec<String> = user_messages(&request.body);
        said.pop(); // the `recall` message itself
        return Reply::text(&format!("I remember: {}", said.join(" | ")));
    }
    default_script(request)
}

/// The text of each user message in a Responses API request, oldest first,
/// without the environment context codex adds (text starting with `<`).
fn user_messages(body: &Value) -> Vec<String> {
    let Some(input) = body.get("input").and_then(Value::as_array) else {
        return Vec::new();
    };
    input
        .iter()
        .filter(|item| item.get("role").and_then(Value::as_str) == Some("user"))
        .filter_map(|item| {
            let text: String = item
                .get("content")?
                .as_array()?
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!text.starts_with('<') && !text.is_empty()).then_some(text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recall_lists_the_earlier_user_messages() {
        let msg = |role: &str, text: &str| json!({"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]});
        let request = ModelRequest {
            body: json!({"input": [
                msg("user", "<environment_context>x</environment_context>"),
                msg("user", "my name is Ada"),
                msg("assistant", "Hello"),
                msg("user", "recall what I said"),
            ]}),
        };
        assert_eq!(
            mock_script(&request),
            Reply::text("I remember: my name is Ada")
        );
    }
}
