//! From wire notifications to [`TurnEvent`]s: pure functions over
//! `(method, params)`, and the per-turn [`TurnDecoder`] that picks one wire
//! family, tracks open items and ends the turn exactly once.
//!
//! codex 0.72.0 reports a v2 thread's turn twice: once as legacy
//! `codex/event/<type>` envelopes and once as v2 notifications, and each agent
//! text delta three times (`agent_message_content_delta`,
//! `agent_message_delta`, `item/agentMessage/delta`). codex 0.169.0 sends only
//! v2. A decoder reads **one** family per turn, so every delta appears once:
//! [`Family::V2`] for threads started with `thread/start` (both versions send
//! full v2 for them), [`Family::Legacy`] for a stream that has only legacy
//! envelopes, and [`Family::Auto`] to lock onto whichever family speaks first.

use std::collections::HashSet;

use serde_json::Value;

use crate::event::{
    FileChange, ItemStatus, PlanStep, ReasoningPart, TokenCounts, TokenUsage, TurnEvent,
    TurnOutcome,
};

/// The prefix of codex 0.72.0's legacy event envelopes.
pub const LEGACY_PREFIX: &str = "codex/event/";

/// Which of codex's two notification families to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// v2 notifications (`turn/*`, `item/*`, `thread/*`, `error`); legacy
    /// envelopes are ignored.
    #[default]
    V2,
    /// Legacy `codex/event/*` envelopes only.
    Legacy,
    /// Whichever family sends the first turn-scoped notification.
    Auto,
}

/// Where a notification or server request belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Route<'a> {
    /// `threadId` (v2) or `conversationId` (legacy and v1).
    pub thread_id: Option<&'a str>,
    /// `turnId`, `turn.id`, or a legacy envelope's non-empty `id`.
    pub turn_id: Option<&'a str>,
}

/// Reads the thread and turn a message is about, from either family.
pub fn route_of<'a>(method: &str, params: &'a Value) -> Route<'a> {
    let s = |k: &str| params.get(k).and_then(Value::as_str);
    if method.starts_with(LEGACY_PREFIX) {
        let turn_id = s("id")
            .filter(|id| !id.is_empty())
            .or_else(|| params.pointer("/msg/turn_id").and_then(Value::as_str));
        return Route {
            thread_id: s("conversationId"),
            turn_id,
        };
    }
    Route {
        thread_id: s("threadId").or_else(|| s("conversationId")),
        turn_id: s("turnId").or_else(|| params.pointer("/turn/id").and_then(Value::as_str)),
    }
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn string(v: &Value, key: &str) -> String {
    str_of(v, key).unwrap_or_default()
}

fn u64_of(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// `snake_case` → `camelCase`.
fn camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Legacy envelopes spell codex's error info in snake_case
/// (`internal_server_error`, `{"response_stream_disconnected": …}`); v2 in
/// camelCase. Consumers see the v2 spelling from both.
fn v2_error_info(v: Option<&Value>) -> Option<Value> {
    fn convert(v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(camel(s)),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (camel(k), convert(v))).collect())
            }
            other => other.clone(),
        }
    }
    non_null(v).map(|v| convert(&v))
}

/// An error from either wire family: one codex will retry (v2
/// `willRetry: true`, legacy `stream_error`) or one that stands. The items
/// a retry abandons are filled in later by the [`TurnDecoder`].
fn error_event(message: String, codex_error_info: Option<Value>, will_retry: bool) -> TurnEvent {
    if will_retry {
        TurnEvent::Retrying {
            message,
            codex_error_info,
            abandoned_items: Vec::new(),
        }
    } else {
        TurnEvent::Error {
            message,
            codex_error_info,
        }
    }
}

fn non_null(v: Option<&Value>) -> Option<Value> {
    v.filter(|v| !v.is_null()).cloned()
}

/// Joins an argv the way codex displays it: words that need it are
/// single-quoted (`bash -lc 'echo hi && ls'`).
pub fn shell_join(argv: &[Value]) -> String {
    argv.iter()
        .map(|a| {
            let a = a.as_str().unwrap_or_default();
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%^".contains(c));
            if plain {
                a.to_owned()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decodes standard base64 (legacy output chunks); invalid input yields what
/// could be decoded.
fn base64_decode(input: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in input.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// File changes from a v2 item's `changes` array.
fn v2_changes(v: Option<&Value>) -> Vec<FileChange> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| FileChange {
                    path: string(c, "path"),
                    kind: c
                        .get("kind")
                        .and_then(|k| k.get("type").or(Some(k)))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    diff: string(c, "diff"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// File changes from a legacy `changes` map (`{path: {type, content | unified_diff}}`).
pub(crate) fn legacy_changes(v: &Value) -> Vec<FileChange> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(path, c)| FileChange {
                    path: path.clone(),
                    kind: string(c, "type"),
                    diff: str_of(c, "unified_diff")
                        .or_else(|| str_of(c, "content"))
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn token_counts_v2(v: Option<&Value>) -> TokenCounts {
    let v = v.unwrap_or(&Value::Null);
    TokenCounts {
        input_tokens: u64_of(v, "inputTokens").unwrap_or(0),
        cached_input_tokens: u64_of(v, "cachedInputTokens").unwrap_or(0),
        output_tokens: u64_of(v, "outputTokens").unwrap_or(0),
        reasoning_output_tokens: u64_of(v, "reasoningOutputTokens").unwrap_or(0),
        total_tokens: u64_of(v, "totalTokens").unwrap_or(0),
    }
}

fn token_counts_legacy(v: Option<&Value>) -> TokenCounts {
    let v = v.unwrap_or(&Value::Null);
    TokenCounts {
        input_tokens: u64_of(v, "input_tokens").unwrap_or(0),
        cached_input_tokens: u64_of(v, "cached_input_tokens").unwrap_or(0),
        output_tokens: u64_of(v, "output_tokens").unwrap_or(0),
        reasoning_output_tokens: u64_of(v, "reasoning_output_tokens").unwrap_or(0),
        total_tokens: u64_of(v, "total_tokens").unwrap_or(0),
    }
}

fn plan_steps(v: Option<&Value>) -> Vec<PlanStep> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| PlanStep {
                    step: string(s, "step"),
                    status: string(s, "status"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn text_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned).or_else(|| str_of(x, "text")))
                .collect()
        })
        .unwrap_or_default()
}

/// One v2 item, started or completed.
fn v2_item(method: &str, params: &Value, completed: bool) -> Option<TurnEvent> {
    let item = params.get("item")?;
    let id = string(item, "id");
    let status = || ItemStatus::from_wire(item.get("status").and_then(Value::as_str).unwrap_or(""));
    match (item.get("type").and_then(Value::as_str)?, completed) {
        // The user's own input echoed back: nothing new.
        ("userMessage", _) => None,
        ("agentMessage", false) | ("reasoning", false) => None,
        ("agentMessage", true) => Some(TurnEvent::AgentMessage {
            item_id: id,
            text: string(item, "text"),
        }),
        ("reasoning", true) => Some(TurnEvent::Reasoning {
            item_id: id,
            summary: text_list(item.get("summary")),
            content: text_list(item.get("content")),
        }),
        ("commandExecution", false) => Some(TurnEvent::CommandStarted {
            item_id: id,
            command: string(item, "command"),
            cwd: str_of(item, "cwd"),
        }),
        ("commandExecution", true) => Some(TurnEvent::CommandFinished {
            item_id: id,
            command: string(item, "command"),
            status: status(),
            exit_code: item.get("exitCode").and_then(Value::as_i64),
            output: str_of(item, "aggregatedOutput"),
            duration_ms: u64_of(item, "durationMs"),
        }),
        ("fileChange", false) => Some(TurnEvent::FileChangeStarted {
            item_id: id,
            changes: v2_changes(item.get("changes")),
        }),
        ("fileChange", true) => Some(TurnEvent::FileChangeFinished {
            item_id: id,
            status: status(),
            changes: v2_changes(item.get("changes")),
        }),
        ("mcpToolCall", false) => Some(TurnEvent::McpToolCallStarted {
            item_id: id,
            server: string(item, "server"),
            tool: string(item, "tool"),
            arguments: item.get("arguments").cloned().unwrap_or(Value::Null),
        }),
        ("mcpToolCall", true) => Some(TurnEvent::McpToolCallFinished {
            item_id: id,
            server: string(item, "server"),
            tool: string(item, "tool"),
            status: status(),
            result: non_null(item.get("result")),
            error: non_null(item.get("error")),
        }),
        ("webSearch", false) => None,
        ("webSearch", true) => Some(TurnEvent::WebSearch {
            item_id: id,
            query: string(item, "query"),
        }),
        _ => Some(other(method, params)),
    }
}

fn other(method: &str, params: &Value) -> TurnEvent {
    TurnEvent::Other {
        method: method.to_owned(),
        params: params.clone(),
    }
}

/// Maps one v2 notification, statelessly. Returns `None` for notifications
/// that carry nothing for a turn's consumer (echoes of the user's input, the
/// start of an agent message). `turn/completed` maps to an outcome without
/// `last_agent_message`; [`TurnDecoder`] fills it in.
pub fn map_v2(method: &str, params: &Value) -> Option<TurnEvent> {
    let s = |k: &str| string(params, k);
    Some(match method {
        "turn/started" => TurnEvent::TurnStarted {
            turn_id: params
                .pointer("/turn/id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        },
        "turn/completed" => {
            let turn = params.get("turn").unwrap_or(&Value::Null);
            let turn_id = string(turn, "id");
            let status = turn.get("status").and_then(Value::as_str).unwrap_or("");
            TurnEvent::Outcome(match status {
                "completed" => TurnOutcome::Completed {
                    turn_id,
                    last_agent_message: None,
                },
                "interrupted" => TurnOutcome::Interrupted { turn_id },
                _ => {
                    let error = turn.get("error").unwrap_or(&Value::Null);
                    TurnOutcome::Failed {
                        turn_id,
                        message: str_of(error, "message").unwrap_or_else(|| {
                            format!("turn ended with status {status:?} and no error message")
                        }),
                        codex_error_info: non_null(error.get("codexErrorInfo")),
                    }
                }
            })
        }
        "item/started" => return v2_item(method, params, false),
        "item/completed" => return v2_item(method, params, true),
        "item/agentMessage/delta" => TurnEvent::AgentMessageDelta {
            item_id: s("itemId"),
            delta: s("delta"),
        },
        "item/reasoning/summaryTextDelta" => TurnEvent::ReasoningDelta {
            item_id: s("itemId"),
            part: ReasoningPart::Summary,
            delta: s("delta"),
        },
        "item/reasoning/textDelta" => TurnEvent::ReasoningDelta {
            item_id: s("itemId"),
            part: ReasoningPart::Content,
            delta: s("delta"),
        },
        "item/reasoning/summaryPartAdded" => return None,
        "item/commandExecution/outputDelta" => TurnEvent::CommandOutputDelta {
            item_id: s("itemId"),
            delta: s("delta"),
        },
        "item/fileChange/outputDelta" => TurnEvent::FileChangeOutputDelta {
            item_id: s("itemId"),
            delta: s("delta"),
        },
        "turn/diff/updated" => TurnEvent::DiffUpdated { diff: s("diff") },
        "turn/plan/updated" => TurnEvent::PlanUpdated {
            explanation: str_of(params, "explanation"),
            plan: plan_steps(params.get("plan")),
        },
        "thread/tokenUsage/updated" => {
            let u = params.get("tokenUsage").unwrap_or(&Value::Null);
            TurnEvent::TokenUsage(TokenUsage {
                total: token_counts_v2(u.get("total")),
                last: token_counts_v2(u.get("last")),
                model_context_window: u64_of(u, "modelContextWindow"),
            })
        }
        "error" => {
            let error = params.get("error").unwrap_or(&Value::Null);
            let message = string(error, "message");
            let codex_error_info = non_null(error.get("codexErrorInfo"));
            let will_retry = params.get("willRetry").and_then(Value::as_bool) == Some(true);
            error_event(message, codex_error_info, will_retry)
        }
        "warning" => TurnEvent::Warning {
            message: str_of(params, "message")
                .or_else(|| str_of(params, "summary"))
                .unwrap_or_default(),
        },
        _ => other(method, params),
    })
}

/// Maps one legacy `codex/event/<type>` envelope, statelessly. Mirrors of
/// server requests (`exec_approval_request`, …) map to `None`: the request
/// itself becomes the approval event. `task_complete` maps to a completed
/// outcome; [`TurnDecoder`] turns it into a failure when an error came first.
pub fn map_legacy(method: &str, params: &Value) -> Option<TurnEvent> {
    let ty = method.strip_prefix(LEGACY_PREFIX)?;
    let msg = params.get("msg").unwrap_or(&Value::Null);
    let m = |k: &str| string(msg, k);
    let turn_id = string(params, "id");
    Some(match ty {
        "task_started" => TurnEvent::TurnStarted { turn_id },
        "task_complete" => TurnEvent::Outcome(TurnOutcome::Completed {
            turn_id,
            last_agent_message: str_of(msg, "last_agent_message"),
        }),
        "turn_aborted" => TurnEvent::Outcome(TurnOutcome::Interrupted { turn_id }),
        "agent_message_content_delta" | "agent_message_delta" => TurnEvent::AgentMessageDelta {
            item_id: m("item_id"),
            delta: m("delta"),
        },
        "agent_message" => TurnEvent::AgentMessage {
            item_id: String::new(),
            text: m("message"),
        },
        "item_completed" => {
            let item = msg.get("item").unwrap_or(&Value::Null);
            if item.get("type").and_then(Value::as_str) != Some("AgentMessage") {
                return None;
            }
            TurnEvent::AgentMessage {
                item_id: string(item, "id"),
                text: text_list(item.get("content")).concat(),
            }
        }
        "item_started" => return None,
        "reasoning_content_delta" | "agent_reasoning_delta" => TurnEvent::ReasoningDelta {
            item_id: m("item_id"),
            part: ReasoningPart::Summary,
            delta: m("delta"),
        },
        "reasoning_raw_content_delta" | "agent_reasoning_raw_content_delta" => {
            TurnEvent::ReasoningDelta {
                item_id: m("item_id"),
                part: ReasoningPart::Content,
                delta: m("delta"),
            }
        }
        "agent_reasoning" => TurnEvent::Reasoning {
            item_id: String::new(),
            summary: vec![m("text")],
            content: Vec::new(),
        },
        "agent_reasoning_raw_content" | "agent_reasoning_section_break" => return None,
        "exec_command_begin" => TurnEvent::CommandStarted {
            item_id: m("call_id"),
            command: shell_join(
                msg.get("command")
                    .and_then(Value::as_array)
                    .map_or(&[], |v| v),
            ),
            cwd: str_of(msg, "cwd"),
        },
        "exec_command_output_delta" => TurnEvent::CommandOutputDelta {
            item_id: m("call_id"),
            delta: String::from_utf8_lossy(&base64_decode(&m("chunk"))).into_owned(),
        },
        "exec_command_end" => {
            let exit_code = msg.get("exit_code").and_then(Value::as_i64);
            let duration = msg.get("duration").unwrap_or(&Value::Null);
            // Saturating: the numbers come from the peer, and a duration of
            // u64::MAX seconds must not panic (found by the codex_events fuzzer).
            let duration_ms = u64_of(duration, "secs").map(|secs| {
                secs.saturating_mul(1000)
                    .saturating_add(u64_of(duration, "nanos").unwrap_or(0) / 1_000_000)
            });
            TurnEvent::CommandFinished {
                item_id: m("call_id"),
                command: shell_join(
                    msg.get("command")
                        .and_then(Value::as_array)
                        .map_or(&[], |v| v),
                ),
                status: if exit_code == Some(0) {
                    ItemStatus::Completed
                } else {
                    ItemStatus::Failed
                },
                exit_code,
                output: str_of(msg, "aggregated_output"),
                duration_ms,
            }
        }
        "patch_apply_begin" => TurnEvent::FileChangeStarted {
            item_id: m("call_id"),
            changes: legacy_changes(msg.get("changes").unwrap_or(&Value::Null)),
        },
        "patch_apply_end" => TurnEvent::FileChangeFinished {
            item_id: m("call_id"),
            status: if msg.get("success").and_then(Value::as_bool) == Some(true) {
                ItemStatus::Completed
            } else {
                ItemStatus::Failed
            },
            changes: legacy_changes(msg.get("changes").unwrap_or(&Value::Null)),
        },
        "mcp_tool_call_begin" | "mcp_tool_call_end" => {
            let inv = msg.get("invocation").unwrap_or(&Value::Null);
            let (item_id, server, tool) =
                (m("call_id"), string(inv, "server"), string(inv, "tool"));
            if ty == "mcp_tool_call_begin" {
                TurnEvent::McpToolCallStarted {
                    item_id,
                    server,
                    tool,
                    arguments: inv.get("arguments").cloned().unwrap_or(Value::Null),
                }
            } else {
                let result = msg.get("result").unwrap_or(&Value::Null);
                let (status, result, error) = match (result.get("Ok"), result.get("Err")) {
                    (Some(ok), _) => (ItemStatus::Completed, Some(ok.clone()), None),
                    (_, Some(err)) => (ItemStatus::Failed, None, Some(err.clone())),
                    _ => (ItemStatus::Completed, non_null(Some(result)), None),
                };
                TurnEvent::McpToolCallFinished {
                    item_id,
                    server,
                    tool,
                    status,
                    result,
                    error,
                }
            }
        }
        "web_search_begin" => return None,
        "web_search_end" => TurnEvent::WebSearch {
            item_id: m("call_id"),
            query: m("query"),
        },
        "plan_update" => TurnEvent::PlanUpdated {
            explanation: str_of(msg, "explanation"),
            plan: plan_steps(msg.get("plan")),
        },
        "turn_diff" => TurnEvent::DiffUpdated {
            diff: m("unified_diff"),
        },
        "token_count" => {
            let info = msg.get("info").filter(|i| !i.is_null())?;
            TurnEvent::TokenUsage(TokenUsage {
                total: token_counts_legacy(info.get("total_token_usage")),
                last: token_counts_legacy(info.get("last_token_usage")),
                model_context_window: u64_of(info, "model_context_window"),
            })
        }
        "error" | "stream_error" => {
            let message = m("message");
            let codex_error_info = v2_error_info(msg.get("codex_error_info"));
            error_event(message, codex_error_info, ty == "stream_error")
        }
        "warning" => TurnEvent::Warning {
            message: m("message"),
        },
        // Mirrors of server requests, and echoes of the user's input.
        "exec_approval_request" | "apply_patch_approval_request" | "user_message" => return None,
        _ => other(method, params),
    })
}

/// An item started and not yet finished.
#[derive(Debug, Clone)]
struct OpenItem {
    id: String,
    kind: &'static str,
}

/// Turns one turn's notifications into [`TurnEvent`]s.
///
/// Feed it every notification routed to the turn, in wire order, with
/// [`decode`](TurnDecoder::decode). It reads one [`Family`], tracks items so
/// that items still open at the end are reported [`TurnEvent::ItemAbandoned`],
/// marks agent messages abandoned by a retry, fills in the completed
/// outcome's last agent message, and emits exactly one
/// [`TurnEvent::Outcome`], after which it ignores everything.
#[derive(Debug)]
pub struct TurnDecoder {
    family: Family,
    open: Vec<OpenItem>,
    file_changes: HashSet<String>,
    abandoned: HashSet<String>,
    last_agent_message: Option<String>,
    last_error: Option<(String, Option<Value>)>,
    turn_id: String,
    saw_content_delta: bool,
    saw_item_completed: bool,
    started: bool,
    finished: bool,
}

impl TurnDecoder {
    /// A decoder reading `family`.
    pub fn new(family: Family) -> Self {
        TurnDecoder {
            family,
            open: Vec::new(),
            file_changes: HashSet::new(),
            abandoned: HashSet::new(),
            last_agent_message: None,
            last_error: None,
            turn_id: String::new(),
            saw_content_delta: false,
            saw_item_completed: false,
            started: false,
            finished: false,
        }
    }

    /// Whether the outcome has been emitted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The family in use (`Auto` until the first turn-scoped notification).
    pub fn family(&self) -> Family {
        self.family
    }

    /// The turn id seen so far, or empty.
    pub fn turn_id(&self) -> &str {
        &self.turn_id
    }

    /// Sets the turn id (known from the `turn/start` response).
    pub fn set_turn_id(&mut self, turn_id: &str) {
        self.turn_id = turn_id.to_owned();
    }

    /// Decodes one notification into zero or more events.
    pub fn decode(&mut self, method: &str, params: &Value) -> Vec<TurnEvent> {
        if self.finished {
            return Vec::new();
        }
        let legacy = method.starts_with(LEGACY_PREFIX);
        if self.family == Family::Auto && route_of(method, params).turn_id.is_some() {
            self.family = if legacy { Family::Legacy } else { Family::V2 };
        }
        let mapped = match (self.family, legacy) {
            (Family::V2, false) | (Family::Auto, false) => self.before_v2(method, params),
            (Family::Legacy, true) | (Family::Auto, true) => self.before_legacy(method, params),
            // The v1 conversation API of 0.72.0 sends v2 items but no
            // `turn/started`: its legacy `task_started` stands in.
            (Family::V2, true) if method == "codex/event/task_started" => {
                map_legacy(method, params)
            }
            _ => return Vec::new(),
        };
        match mapped {
            Some(event) => self.after(event),
            None => Vec::new(),
        }
    }

    /// Item bookkeeping that only the v2 family's item notifications carry.
    fn before_v2(&mut self, method: &str, params: &Value) -> Option<TurnEvent> {
        if method == "item/started" {
            let item = params.get("item")?;
            if let Some(kind) = match item.get("type").and_then(Value::as_str) {
                Some("agentMessage") => Some("agentMessage"),
                Some("reasoning") => Some("reasoning"),
                _ => None,
            } {
                self.open(string(item, "id"), kind);
            }
        }
        map_v2(method, params)
    }

    /// Dedup of the legacy family's double text reports.
    fn before_legacy(&mut self, method: &str, params: &Value) -> Option<TurnEvent> {
        let ty = method.strip_prefix(LEGACY_PREFIX).unwrap_or_default();
        match ty {
            "agent_message_content_delta" => self.saw_content_delta = true,
            "agent_message_delta" if self.saw_content_delta => return None,
            "agent_message" if self.saw_item_completed => return None,
            "item_started" => {
                let item = params.pointer("/msg/item")?;
                if item.get("type").and_then(Value::as_str) == Some("AgentMessage") {
                    self.open(string(item, "id"), "agentMessage");
                }
            }
            "item_completed"
                if params.pointer("/msg/item/type").and_then(Value::as_str)
                    == Some("AgentMessage") =>
            {
                self.saw_item_completed = true;
            }
            "task_complete" => {
                if let Some((message, codex_error_info)) = self.last_error.take() {
                    return Some(TurnEvent::Outcome(TurnOutcome::Failed {
                        turn_id: string(params, "id"),
                        message,
                        codex_error_info,
                    }));
                }
            }
            _ => {}
        }
        map_legacy(method, params)
    }

    fn open(&mut self, id: String, kind: &'static str) {
        if !self.open.iter().any(|o| o.id == id) {
            self.open.push(OpenItem { id, kind });
        }
    }

    fn close(&mut self, id: &str) {
        self.open.retain(|o| o.id != id);
    }

    fn after(&mut self, mut event: TurnEvent) -> Vec<TurnEvent> {
        match &mut event {
            TurnEvent::TurnStarted { turn_id } => {
                if std::mem::replace(&mut self.started, true) {
                    return Vec::new();
                }
                if !turn_id.is_empty() {
                    self.turn_id.clone_from(turn_id);
                }
            }
            TurnEvent::AgentMessage { item_id, text } => {
                self.close(item_id);
                if !self.abandoned.contains(item_id.as_str()) {
                    self.last_agent_message = Some(text.clone());
                }
            }
            TurnEvent::Reasoning { item_id, .. }
            | TurnEvent::CommandFinished { item_id, .. }
            | TurnEvent::McpToolCallFinished { item_id, .. } => self.close(item_id),
            TurnEvent::FileChangeFinished { item_id, .. } => {
                self.close(item_id);
            }
            TurnEvent::CommandStarted { item_id, .. } => {
                self.open(item_id.clone(), "commandExecution")
            }
            TurnEvent::FileChangeStarted { item_id, .. } => {
                self.file_changes.insert(item_id.clone());
                self.open(item_id.clone(), "fileChange")
            }
            TurnEvent::McpToolCallStarted { item_id, .. } => {
                self.open(item_id.clone(), "mcpToolCall")
            }
            // Legacy patches report their output as command output.
            TurnEvent::CommandOutputDelta { item_id, delta }
                if self.file_changes.contains(item_id.as_str()) =>
            {
                event = TurnEvent::FileChangeOutputDelta {
                    item_id: std::mem::take(item_id),
                    delta: std::mem::take(delta),
                };
            }
            TurnEvent::Retrying {
                abandoned_items, ..
            } => {
                let messages: Vec<String> = self
                    .open
                    .iter()
                    .filter(|o| o.kind == "agentMessage")
                    .map(|o| o.id.clone())
                    .collect();
                self.open.retain(|o| o.kind != "agentMessage");
                self.abandoned.extend(messages.iter().cloned());
                *abandoned_items = messages;
            }
            TurnEvent::Error {
                message,
                codex_error_info,
            } => self.last_error = Some((message.clone(), codex_error_info.clone())),
            TurnEvent::Outcome(outcome) => {
                if let TurnOutcome::Completed {
                    last_agent_message, ..
                } = outcome
                {
                    if last_agent_message.is_none() {
                        last_agent_message.clone_from(&self.last_agent_message);
                    }
                }
                let outcome = outcome.clone();
                return self.finish(outcome);
            }
            _ => {}
        }
        vec![event]
    }

    /// Ends the turn with `outcome` (for ends the wire does not report:
    /// watchdog, server death): closes open items, then the outcome. Returns
    /// nothing if the turn already ended.
    pub fn finish(&mut self, mut outcome: TurnOutcome) -> Vec<TurnEvent> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        if let TurnOutcome::Completed { turn_id, .. }
        | TurnOutcome::Interrupted { turn_id }
        | TurnOutcome::Failed { turn_id, .. }
        | TurnOutcome::TimedOut { turn_id, .. } = &mut outcome
        {
            if turn_id.is_empty() {
                turn_id.clone_from(&self.turn_id);
            }
        }
        let mut events: Vec<TurnEvent> = self
            .open
            .drain(..)
            .map(|o| TurnEvent::ItemAbandoned {
                item_id: o.id,
                kind: o.kind.to_owned(),
            })
            .collect();
        events.push(TurnEvent::Outcome(outcome));
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shell_join_quotes_only_words_that_need_it() {
        let argv = [json!("bash"), json!("-lc"), json!("echo hi && it's")];
        assert_eq!(shell_join(&argv), r"bash -lc 'echo hi && it'\''s'");
    }

    #[test]
    fn base64_chunks_decode() {
        assert_eq!(
            base64_decode("aGVsbG8tZnJvbS1zaGVsbAo="),
            b"hello-from-shell\n"
        );
    }

    #[test]
    fn legacy_envelopes_route_by_conversation_and_turn() {
        let p = json!({"id": "0", "msg": {"type": "x"}, "conversationId": "t1"});
        assert_eq!(
            route_of("codex/event/x", &p),
            Route {
                thread_id: Some("t1"),
                turn_id: Some("0")
            }
        );
        let p = json!({"id": "", "msg": {}, "conversationId": "t1"});
        assert_eq!(
            route_of("codex/event/mcp_startup_complete", &p).turn_id,
            None
        );
    }

    #[test]
    fn v2_notifications_route_by_thread_and_turn() {
        let p = json!({"threadId": "t", "turn": {"id": "u"}});
        assert_eq!(
            route_of("turn/completed", &p),
            Route {
                thread_id: Some("t"),
                turn_id: Some("u")
            }
        );
    }

    #[test]
    fn codex_error_info_may_be_a_string_or_an_object() {
        for info in [
            json!("internalServerError"),
            json!({"responseStreamDisconnected": {}}),
        ] {
            let p = json!({"threadId": "t", "turn": {"id": "u", "status": "failed",
                "error": {"message": "m", "codexErrorInfo": info}}});
            assert_eq!(
                map_v2("turn/completed", &p),
                Some(TurnEvent::Outcome(TurnOutcome::Failed {
                    turn_id: "u".into(),
                    message: "m".into(),
                    codex_error_info: Some(info.clone()),
                }))
            );
        }
    }

    #[test]
    fn the_decoder_emits_one_outcome_and_then_nothing() {
        let mut d = TurnDecoder::new(Family::V2);
        let done = json!({"threadId": "t", "turn": {"id": "u", "status": "completed"}});
        assert_eq!(d.decode("turn/completed", &done).len(), 1);
        assert!(d.decode("turn/completed", &done).is_empty());
        assert!(d
            .finish(TurnOutcome::ServerDied {
                message: "x".into()
            })
            .is_empty());
    }

    #[test]
    fn a_retry_abandons_the_open_agent_message() {
        let mut d = TurnDecoder::new(Family::V2);
        let ids = json!({"threadId": "t", "turnId": "u"});
        d.decode(
            "item/started",
            &json!({"threadId": "t", "turnId": "u", "item": {"type": "agentMessage", "id": "m1", "text": ""}}),
        );
        let ev = d.decode(
            "error",
            &json!({"threadId": "t", "turnId": "u", "willRetry": true, "error": {"message": "Reconnecting... 1/5"}}),
        );
        assert!(
            matches!(&ev[..], [TurnEvent::Retrying { abandoned_items, .. }] if abandoned_items == &["m1"])
        );
        let _ = ids;
    }
}
