//! The legacy notification family of codex 0.72.0: `codex/event/<type>`
//! envelopes, `{"id": turn id, "msg": {"type": <type>, …}, "conversationId"}`.

use serde::Deserialize;
use serde_json::Value;

use super::{error_event, other, shell_join_words, PlanUpdate, WirePlanStep};
use super::{lenient, owned, TokenBreakdown};
use crate::event::{FileChange, ItemStatus, ReasoningPart, TokenUsage, TurnEvent, TurnOutcome};

/// The prefix of codex 0.72.0's legacy event envelopes.
pub const LEGACY_PREFIX: &str = "codex/event/";

/// The `<type>` of a `codex/event/<type>` envelope (its method names it;
/// `msg.type` repeats it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum EventType {
    TaskStarted,
    TaskComplete,
    TurnAborted,
    AgentMessageContentDelta,
    AgentMessageDelta,
    AgentMessage,
    ItemStarted,
    ItemCompleted,
    ReasoningContentDelta,
    AgentReasoningDelta,
    ReasoningRawContentDelta,
    AgentReasoningRawContentDelta,
    AgentReasoning,
    AgentReasoningRawContent,
    AgentReasoningSectionBreak,
    ExecCommandBegin,
    ExecCommandOutputDelta,
    ExecCommandEnd,
    PatchApplyBegin,
    PatchApplyEnd,
    McpToolCallBegin,
    McpToolCallEnd,
    WebSearchBegin,
    WebSearchEnd,
    PlanUpdate,
    TurnDiff,
    TokenCount,
    Error,
    StreamError,
    Warning,
    ExecApprovalRequest,
    ApplyPatchApprovalRequest,
    UserMessage,
    /// An event newer than this crate: passed on raw as [`TurnEvent::Other`].
    #[serde(other)]
    Unknown,
}

impl EventType {
    /// The type of a legacy method, `None` for a method of another family.
    pub(super) fn of(method: &str) -> Option<EventType> {
        let ty = method.strip_prefix(LEGACY_PREFIX)?;
        Some(
            EventType::deserialize(serde::de::value::BorrowedStrDeserializer::<
                serde::de::value::Error,
            >::new(ty))
            .unwrap_or(EventType::Unknown),
        )
    }
}

/// An envelope.
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
pub(super) struct Envelope<'a> {
    /// The turn id; empty for events outside a turn.
    #[serde(deserialize_with = "lenient::str")]
    pub(super) id: Option<&'a str>,
    #[serde(deserialize_with = "lenient::object")]
    pub(super) msg: Msg<'a>,
}

/// An event's `msg`: the union of the fields the event types carry.
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
pub(super) struct Msg<'a> {
    #[serde(deserialize_with = "lenient::str")]
    last_agent_message: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    item_id: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    delta: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    message: Option<&'a str>,
    #[serde(deserialize_with = "lenient::object")]
    pub(super) item: Item<'a>,
    #[serde(deserialize_with = "lenient::str")]
    text: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    call_id: Option<&'a str>,
    /// An argv; words that are no string read as empty words.
    #[serde(deserialize_with = "lenient::strs")]
    command: Vec<Option<&'a str>>,
    #[serde(deserialize_with = "lenient::str")]
    cwd: Option<&'a str>,
    /// Base64 of output bytes.
    #[serde(deserialize_with = "lenient::str")]
    chunk: Option<&'a str>,
    #[serde(deserialize_with = "lenient::i64")]
    exit_code: Option<i64>,
    #[serde(deserialize_with = "lenient::object")]
    duration: Duration,
    #[serde(deserialize_with = "lenient::str")]
    aggregated_output: Option<&'a str>,
    #[serde(deserialize_with = "lenient::entries")]
    changes: Vec<(&'a str, Change<'a>)>,
    #[serde(deserialize_with = "lenient::bool")]
    success: Option<bool>,
    #[serde(deserialize_with = "lenient::object")]
    invocation: Invocation<'a>,
    /// A Rust `Result` as serde writes it: `{"Ok": …}` or `{"Err": …}`.
    result: Option<Value>,
    #[serde(deserialize_with = "lenient::str")]
    query: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    unified_diff: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    explanation: Option<&'a str>,
    #[serde(deserialize_with = "lenient::objects")]
    plan: Vec<WirePlanStep<'a>>,
    /// `null` (no call yet) carries nothing.
    #[serde(deserialize_with = "lenient::nullable_object")]
    info: Option<TokenInfo>,
    codex_error_info: Option<Value>,
}

/// The item of `item_started` / `item_completed`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
pub(super) struct Item<'a> {
    #[serde(rename = "type", deserialize_with = "lenient::tag")]
    pub(super) kind: Option<ItemType>,
    #[serde(deserialize_with = "lenient::str")]
    id: Option<&'a str>,
    #[serde(deserialize_with = "lenient::texts")]
    content: Vec<&'a str>,
}

impl Msg<'_> {
    /// The command line as codex displays it.
    fn command_line(&self) -> String {
        shell_join_words(self.command.iter().map(|w| w.unwrap_or_default()))
    }
}

impl Item<'_> {
    pub(super) fn id(&self) -> String {
        self.id.unwrap_or_default().to_owned()
    }
}

/// A legacy item's `type`; only agent messages are read from items (the
/// others come as their own events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(super) enum ItemType {
    AgentMessage,
    #[serde(other)]
    Other,
}

/// A Rust `Duration` as serde writes it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Duration {
    #[serde(deserialize_with = "lenient::u64")]
    secs: Option<u64>,
    #[serde(deserialize_with = "lenient::u64")]
    nanos: Option<u64>,
}

impl Duration {
    fn millis(&self) -> Option<u64> {
        // Saturating: the numbers come from the peer, and a duration of
        // u64::MAX seconds must not panic (found by the codex_events fuzzer).
        self.secs.map(|secs| {
            secs.saturating_mul(1000)
                .saturating_add(self.nanos.unwrap_or(0) / 1_000_000)
        })
    }
}

/// One file of a legacy `changes` map (`{path: {type, content | unified_diff}}`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct Change<'a> {
    #[serde(rename = "type", deserialize_with = "lenient::str")]
    kind: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    unified_diff: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    content: Option<&'a str>,
}

fn file_changes(changes: &[(&str, Change)]) -> Vec<FileChange> {
    changes
        .iter()
        .map(|(path, c)| FileChange {
            path: (*path).to_owned(),
            kind: owned(c.kind),
            diff: owned(c.unified_diff.or(c.content)),
        })
        .collect()
}

/// File changes from a legacy `changes` map; anything but an object has none.
pub(crate) fn legacy_changes(v: &Value) -> Vec<FileChange> {
    let changes = lenient::entries::<_, Change>(v).unwrap_or_default();
    file_changes(&changes)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct Invocation<'a> {
    #[serde(deserialize_with = "lenient::str")]
    server: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    tool: Option<&'a str>,
    arguments: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenInfo {
    #[serde(deserialize_with = "lenient::object")]
    total_token_usage: TokenBreakdown,
    #[serde(deserialize_with = "lenient::object")]
    last_token_usage: TokenBreakdown,
    #[serde(deserialize_with = "lenient::u64")]
    model_context_window: Option<u64>,
}

/// The outcome of a legacy `mcp_tool_call_end`, whose `result` is a Rust
/// `Result`: `Ok` wins, then `Err`; anything else is taken as the result.
fn mcp_result(result: Option<Value>) -> (ItemStatus, Option<Value>, Option<Value>) {
    if let Some(Value::Object(mut m)) = result {
        if let Some(ok) = m.remove("Ok") {
            return (ItemStatus::Completed, Some(ok), None);
        }
        if let Some(err) = m.remove("Err") {
            return (ItemStatus::Failed, None, Some(err));
        }
        return (ItemStatus::Completed, Some(Value::Object(m)), None);
    }
    (ItemStatus::Completed, result, None)
}

/// Codex's text-only legacy events report a whole agent message and a whole
/// reasoning summary without an item id.
const NO_ITEM_ID: String = String::new();

/// Maps one legacy `codex/event/<type>` envelope, statelessly. Mirrors of
/// server requests (`exec_approval_request`, …) map to `None`: the request
/// itself becomes the approval event. `task_complete` maps to a completed
/// outcome; [`TurnDecoder`](super::TurnDecoder) turns it into a failure when
/// an error came first. An event type this crate does not know maps to
/// [`TurnEvent::Other`], unchanged; methods of other families to `None`.
pub fn map_legacy(method: &str, params: &Value) -> Option<TurnEvent> {
    let ty = EventType::of(method)?;
    let Envelope { id, msg } = lenient::read(params);
    let turn_id = owned(id);
    let delta = || (owned(msg.item_id), owned(msg.delta));
    Some(match ty {
        EventType::TaskStarted => TurnEvent::TurnStarted { turn_id },
        EventType::TaskComplete => TurnEvent::Outcome(TurnOutcome::Completed {
            turn_id,
            last_agent_message: msg.last_agent_message.map(str::to_owned),
        }),
        EventType::TurnAborted => TurnEvent::Outcome(TurnOutcome::Interrupted { turn_id }),
        EventType::AgentMessageContentDelta | EventType::AgentMessageDelta => {
            let (item_id, delta) = delta();
            TurnEvent::AgentMessageDelta { item_id, delta }
        }
        EventType::AgentMessage => TurnEvent::AgentMessage {
            item_id: NO_ITEM_ID,
            text: owned(msg.message),
        },
        EventType::ItemCompleted => {
            if msg.item.kind != Some(ItemType::AgentMessage) {
                return None;
            }
            TurnEvent::AgentMessage {
                item_id: msg.item.id(),
                text: msg.item.content.concat(),
            }
        }
        EventType::ItemStarted => return None,
        EventType::ReasoningContentDelta | EventType::AgentReasoningDelta => {
            let (item_id, delta) = delta();
            TurnEvent::ReasoningDelta {
                item_id,
                part: ReasoningPart::Summary,
                delta,
            }
        }
        EventType::ReasoningRawContentDelta | EventType::AgentReasoningRawContentDelta => {
            let (item_id, delta) = delta();
            TurnEvent::ReasoningDelta {
                item_id,
                part: ReasoningPart::Content,
                delta,
            }
        }
        EventType::AgentReasoning => TurnEvent::Reasoning {
            item_id: NO_ITEM_ID,
            summary: vec![owned(msg.text)],
            content: Vec::new(),
        },
        EventType::AgentReasoningRawContent | EventType::AgentReasoningSectionBreak => return None,
        EventType::ExecCommandBegin => TurnEvent::CommandStarted {
            item_id: owned(msg.call_id),
            command: msg.command_line(),
            cwd: msg.cwd.map(str::to_owned),
        },
        EventType::ExecCommandOutputDelta => TurnEvent::CommandOutputDelta {
            item_id: owned(msg.call_id),
            delta: String::from_utf8_lossy(&base64_decode(msg.chunk.unwrap_or_default()))
                .into_owned(),
        },
        EventType::ExecCommandEnd => TurnEvent::CommandFinished {
            item_id: owned(msg.call_id),
            command: msg.command_line(),
            status: if msg.exit_code == Some(0) {
                ItemStatus::Completed
            } else {
                ItemStatus::Failed
            },
            exit_code: msg.exit_code,
            output: msg.aggregated_output.map(str::to_owned),
            duration_ms: msg.duration.millis(),
        },
        EventType::PatchApplyBegin => TurnEvent::FileChangeStarted {
            item_id: owned(msg.call_id),
            changes: file_changes(&msg.changes),
        },
        EventType::PatchApplyEnd => TurnEvent::FileChangeFinished {
            item_id: owned(msg.call_id),
            status: if msg.success == Some(true) {
                ItemStatus::Completed
            } else {
                ItemStatus::Failed
            },
            changes: file_changes(&msg.changes),
        },
        EventType::McpToolCallBegin => TurnEvent::McpToolCallStarted {
            item_id: owned(msg.call_id),
            server: owned(msg.invocation.server),
            tool: owned(msg.invocation.tool),
            arguments: msg.invocation.arguments.unwrap_or(Value::Null),
        },
        EventType::McpToolCallEnd => {
            let (status, result, error) = mcp_result(msg.result);
            TurnEvent::McpToolCallFinished {
                item_id: owned(msg.call_id),
                server: owned(msg.invocation.server),
                tool: owned(msg.invocation.tool),
                status,
                result,
                error,
            }
        }
        EventType::WebSearchBegin => return None,
        EventType::WebSearchEnd => TurnEvent::WebSearch {
            item_id: owned(msg.call_id),
            query: owned(msg.query),
        },
        EventType::PlanUpdate => PlanUpdate {
            explanation: msg.explanation,
            plan: msg.plan,
        }
        .to_event(),
        EventType::TurnDiff => TurnEvent::DiffUpdated {
            diff: owned(msg.unified_diff),
        },
        EventType::TokenCount => {
            let info = msg.info?;
            TurnEvent::TokenUsage(TokenUsage {
                total: info.total_token_usage.to_event(),
                last: info.last_token_usage.to_event(),
                model_context_window: info.model_context_window,
            })
        }
        EventType::Error | EventType::StreamError => error_event(
            owned(msg.message),
            msg.codex_error_info.map(|info| v2_error_info(&info)),
            ty == EventType::StreamError,
        ),
        EventType::Warning => TurnEvent::Warning {
            message: owned(msg.message),
        },
        // Mirrors of server requests, and echoes of the user's input.
        EventType::ExecApprovalRequest
        | EventType::ApplyPatchApprovalRequest
        | EventType::UserMessage => return None,
        EventType::Unknown => other(method, params),
    })
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
/// camelCase. Consumers see the v2 spelling from both. The info is open-ended
/// JSON, so it is converted as such.
fn v2_error_info(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(camel(s)),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (camel(k), v2_error_info(v)))
                .collect(),
        ),
        other => other.clone(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(msg: Value) -> Value {
        json!({"id": "0", "conversationId": "t", "msg": msg})
    }

    #[test]
    fn base64_chunks_decode() {
        assert_eq!(
            base64_decode("aGVsbG8tZnJvbS1zaGVsbAo="),
            b"hello-from-shell\n"
        );
        assert_eq!(base64_decode("aGk*!"), b"hi");
    }

    #[test]
    fn unknown_event_types_pass_through_raw_and_other_families_are_not_mapped() {
        let p = envelope(json!({"type": "mcp_startup_update", "server": "s"}));
        for method in ["codex/event/mcp_startup_update", "codex/event/"] {
            assert_eq!(
                map_legacy(method, &p),
                Some(TurnEvent::Other {
                    method: method.into(),
                    params: p.clone()
                })
            );
        }
        assert_eq!(map_legacy("turn/started", &p), None);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let p = envelope(json!({"type": "exec_command_end", "call_id": "c",
            "command": ["bash", "-lc", "ls -a"], "exit_code": 0,
            "duration": {"secs": 1, "nanos": 500_000_000, "extra": true},
            "aggregated_output": "x", "parsed_cmd": [{"type": "list_files"}], "source": "agent"}));
        assert_eq!(
            map_legacy("codex/event/exec_command_end", &p),
            Some(TurnEvent::CommandFinished {
                item_id: "c".into(),
                command: "bash -lc 'ls -a'".into(),
                status: ItemStatus::Completed,
                exit_code: Some(0),
                output: Some("x".into()),
                duration_ms: Some(1500),
            })
        );
    }

    #[test]
    fn malformed_fields_read_as_absent() {
        let p = envelope(json!({"type": "exec_command_end", "call_id": 5,
            "command": "ls", "exit_code": "0", "duration": {"secs": u64::MAX, "nanos": -1}}));
        assert_eq!(
            map_legacy("codex/event/exec_command_end", &p),
            Some(TurnEvent::CommandFinished {
                item_id: String::new(),
                command: String::new(),
                status: ItemStatus::Failed,
                exit_code: None,
                output: None,
                duration_ms: Some(u64::MAX),
            })
        );
        for params in [json!(null), json!([1, 2]), json!({"msg": "not an object"})] {
            assert_eq!(
                map_legacy("codex/event/task_complete", &params),
                Some(TurnEvent::Outcome(TurnOutcome::Completed {
                    turn_id: String::new(),
                    last_agent_message: None
                }))
            );
        }
    }

    #[test]
    fn token_count_without_info_carries_nothing() {
        let method = "codex/event/token_count";
        assert_eq!(map_legacy(method, &envelope(json!({"info": null}))), None);
        assert_eq!(map_legacy(method, &envelope(json!({}))), None);
        assert_eq!(
            map_legacy(method, &envelope(json!({"info": "garbage"}))),
            Some(TurnEvent::TokenUsage(TokenUsage::default()))
        );
    }

    #[test]
    fn mcp_results_are_rust_results_or_taken_whole() {
        for (result, expected) in [
            (
                json!({"Ok": {"content": []}}),
                (ItemStatus::Completed, Some(json!({"content": []})), None),
            ),
            (
                json!({"Ok": null, "Err": "e"}),
                (ItemStatus::Completed, Some(Value::Null), None),
            ),
            (
                json!({"Err": "e"}),
                (ItemStatus::Failed, None, Some(json!("e"))),
            ),
            (
                json!({"other": 1}),
                (ItemStatus::Completed, Some(json!({"other": 1})), None),
            ),
            (
                json!("text"),
                (ItemStatus::Completed, Some(json!("text")), None),
            ),
            (Value::Null, (ItemStatus::Completed, None, None)),
        ] {
            let p = envelope(json!({"call_id": "c", "result": result,
                "invocation": {"server": "s", "tool": "t", "arguments": {"a": 1}}}));
            let (status, result, error) = expected;
            assert_eq!(
                map_legacy("codex/event/mcp_tool_call_end", &p),
                Some(TurnEvent::McpToolCallFinished {
                    item_id: "c".into(),
                    server: "s".into(),
                    tool: "t".into(),
                    status,
                    result,
                    error,
                })
            );
        }
    }

    #[test]
    fn patch_changes_are_a_map_of_paths() {
        let changes = json!({
            "a.txt": {"type": "add", "content": "hi\n"},
            "b.txt": {"type": "update", "unified_diff": "-x\n+y\n", "move_path": null},
            "c.txt": "not an object"});
        let files = legacy_changes(&changes);
        let summary: Vec<(&str, &str, &str)> = files
            .iter()
            .map(|c| (c.path.as_str(), c.kind.as_str(), c.diff.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("a.txt", "add", "hi\n"),
                ("b.txt", "update", "-x\n+y\n"),
                ("c.txt", "", "")
            ]
        );
        assert!(legacy_changes(&json!(["a.txt"])).is_empty());
    }

    #[test]
    fn error_info_is_respelled_in_camel_case() {
        let p = envelope(
            json!({"type": "stream_error", "message": "Reconnecting... 1/5",
            "codex_error_info": {"response_stream_disconnected": {"http_status_code": null}}}),
        );
        assert_eq!(
            map_legacy("codex/event/stream_error", &p),
            Some(TurnEvent::Retrying {
                message: "Reconnecting... 1/5".into(),
                codex_error_info: Some(
                    json!({"responseStreamDisconnected": {"httpStatusCode": null}})
                ),
                abandoned_items: vec![],
            })
        );
    }
}
