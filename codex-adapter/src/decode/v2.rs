//! The v2 notification family (`turn/*`, `item/*`, `thread/tokenUsage/updated`,
//! `error`, `warning`): what every codex sends for threads started with
//! `thread/start`, and all that codex after 0.72.0 sends.

use serde::Deserialize;
use serde_json::Value;

use super::{error_event, other, PlanUpdate};
use super::{lenient, owned, TokenBreakdown};
use crate::event::{
    FileChange, ItemKind, ItemStatus, ReasoningPart, TokenUsage, TurnEvent, TurnOutcome,
};

/// The v2 methods a turn's consumer cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum Method {
    #[serde(rename = "turn/started")]
    TurnStarted,
    #[serde(rename = "turn/completed")]
    TurnCompleted,
    #[serde(rename = "item/started")]
    ItemStarted,
    #[serde(rename = "item/completed")]
    ItemCompleted,
    #[serde(rename = "item/agentMessage/delta")]
    AgentMessageDelta,
    #[serde(rename = "item/reasoning/summaryTextDelta")]
    ReasoningSummaryTextDelta,
    #[serde(rename = "item/reasoning/textDelta")]
    ReasoningTextDelta,
    #[serde(rename = "item/reasoning/summaryPartAdded")]
    ReasoningSummaryPartAdded,
    #[serde(rename = "item/commandExecution/outputDelta")]
    CommandExecutionOutputDelta,
    #[serde(rename = "item/fileChange/outputDelta")]
    FileChangeOutputDelta,
    #[serde(rename = "turn/diff/updated")]
    TurnDiffUpdated,
    #[serde(rename = "turn/plan/updated")]
    TurnPlanUpdated,
    #[serde(rename = "thread/tokenUsage/updated")]
    ThreadTokenUsageUpdated,
    #[serde(rename = "error")]
    Error,
    #[serde(rename = "warning")]
    Warning,
    #[serde(other)]
    Unknown,
}

impl Method {
    fn of(method: &str) -> Method {
        Method::deserialize(serde::de::value::BorrowedStrDeserializer::<
            serde::de::value::Error,
        >::new(method))
        .unwrap_or(Method::Unknown)
    }
}

/// A v2 `ThreadItem`'s `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) enum ItemType {
    UserMessage,
    AgentMessage,
    Reasoning,
    CommandExecution,
    FileChange,
    McpToolCall,
    WebSearch,
    /// An item type newer than this crate: passed on raw as
    /// [`TurnEvent::Other`].
    #[serde(other)]
    Unknown,
}

/// `item/started` and `item/completed`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct ItemParams<'a> {
    #[serde(deserialize_with = "lenient::object")]
    item: Item<'a>,
}

/// A `ThreadItem`: the union of the fields its types carry.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct Item<'a> {
    /// Absent (or no string): the notification carries nothing.
    #[serde(rename = "type", deserialize_with = "lenient::tag")]
    kind: Option<ItemType>,
    #[serde(deserialize_with = "lenient::str")]
    id: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    status: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    text: Option<&'a str>,
    #[serde(deserialize_with = "lenient::texts")]
    summary: Vec<&'a str>,
    #[serde(deserialize_with = "lenient::texts")]
    content: Vec<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    command: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    cwd: Option<&'a str>,
    #[serde(deserialize_with = "lenient::i64")]
    exit_code: Option<i64>,
    #[serde(deserialize_with = "lenient::str")]
    aggregated_output: Option<&'a str>,
    #[serde(deserialize_with = "lenient::u64")]
    duration_ms: Option<u64>,
    #[serde(deserialize_with = "lenient::objects")]
    changes: Vec<Change<'a>>,
    #[serde(deserialize_with = "lenient::str")]
    server: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    tool: Option<&'a str>,
    arguments: Option<Value>,
    result: Option<Value>,
    error: Option<Value>,
    #[serde(deserialize_with = "lenient::str")]
    query: Option<&'a str>,
}

impl Item<'_> {
    fn id(&self) -> String {
        self.id.unwrap_or_default().to_owned()
    }

    fn status(&self) -> ItemStatus {
        ItemStatus::from_wire(self.status.unwrap_or_default())
    }

    fn changes(&self) -> Vec<FileChange> {
        self.changes.iter().map(Change::to_event).collect()
    }
}

/// One file of a `fileChange` item.
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct Change<'a> {
    #[serde(deserialize_with = "lenient::str")]
    path: Option<&'a str>,
    #[serde(deserialize_with = "change_kind")]
    kind: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    diff: Option<&'a str>,
}

impl Change<'_> {
    fn to_event(&self) -> FileChange {
        FileChange {
            path: self.path.unwrap_or_default().to_owned(),
            kind: self.kind.unwrap_or_default().to_owned(),
            diff: self.diff.unwrap_or_default().to_owned(),
        }
    }
}

/// A change's kind: `"add"` in older schemas, `{"type": "add", …}` in newer.
fn change_kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de str>, D::Error> {
    lenient::str_or_member(d, "type")
}

/// The deltas of `item/*/…Delta` notifications.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct Delta<'a> {
    #[serde(deserialize_with = "lenient::str")]
    item_id: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    delta: Option<&'a str>,
}

/// `turn/started` and `turn/completed`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct TurnParams<'a> {
    #[serde(deserialize_with = "lenient::object")]
    turn: Turn<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct Turn<'a> {
    #[serde(deserialize_with = "lenient::str")]
    id: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    status: Option<&'a str>,
    #[serde(deserialize_with = "lenient::object")]
    error: TurnError<'a>,
}

/// A `TurnError`, of a failed turn or of an `error` notification.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct TurnError<'a> {
    #[serde(deserialize_with = "lenient::str")]
    message: Option<&'a str>,
    codex_error_info: Option<Value>,
}

/// `error`: a model call failed; codex may retry it.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct ErrorParams<'a> {
    #[serde(deserialize_with = "lenient::object")]
    error: TurnError<'a>,
    #[serde(deserialize_with = "lenient::bool")]
    will_retry: Option<bool>,
}

/// `warning`: newer codex says `message`, some builds `summary`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct WarningParams<'a> {
    #[serde(deserialize_with = "lenient::str")]
    message: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    summary: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct DiffParams<'a> {
    #[serde(deserialize_with = "lenient::str")]
    diff: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TokenUsageParams {
    #[serde(deserialize_with = "lenient::object")]
    token_usage: ThreadTokenUsage,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ThreadTokenUsage {
    #[serde(deserialize_with = "lenient::object")]
    total: TokenBreakdown,
    #[serde(deserialize_with = "lenient::object")]
    last: TokenBreakdown,
    #[serde(deserialize_with = "lenient::u64")]
    model_context_window: Option<u64>,
}

/// One v2 item, started or completed.
fn item_event(method: &str, params: &Value, completed: bool) -> Option<TurnEvent> {
    let ItemParams { item } = lenient::read(params);
    Some(match (item.kind?, completed) {
        // The user's own input echoed back: nothing new.
        (ItemType::UserMessage, _) => return None,
        (ItemType::AgentMessage | ItemType::Reasoning | ItemType::WebSearch, false) => return None,
        (ItemType::AgentMessage, true) => TurnEvent::AgentMessage {
            item_id: item.id(),
            text: owned(item.text),
        },
        (ItemType::Reasoning, true) => TurnEvent::Reasoning {
            item_id: item.id(),
            summary: item.summary.iter().map(|s| (*s).to_owned()).collect(),
            content: item.content.iter().map(|s| (*s).to_owned()).collect(),
        },
        (ItemType::CommandExecution, false) => TurnEvent::CommandStarted {
            item_id: item.id(),
            command: owned(item.command),
            cwd: item.cwd.map(str::to_owned),
        },
        (ItemType::CommandExecution, true) => TurnEvent::CommandFinished {
            item_id: item.id(),
            command: owned(item.command),
            status: item.status(),
            exit_code: item.exit_code,
            output: item.aggregated_output.map(str::to_owned),
            duration_ms: item.duration_ms,
        },
        (ItemType::FileChange, false) => TurnEvent::FileChangeStarted {
            item_id: item.id(),
            changes: item.changes(),
        },
        (ItemType::FileChange, true) => TurnEvent::FileChangeFinished {
            item_id: item.id(),
            status: item.status(),
            changes: item.changes(),
        },
        (ItemType::McpToolCall, false) => TurnEvent::McpToolCallStarted {
            item_id: item.id(),
            server: owned(item.server),
            tool: owned(item.tool),
            arguments: item.arguments.unwrap_or(Value::Null),
        },
        (ItemType::McpToolCall, true) => TurnEvent::McpToolCallFinished {
            item_id: item.id(),
            server: owned(item.server),
            tool: owned(item.tool),
            status: item.status(),
            result: item.result,
            error: item.error,
        },
        (ItemType::WebSearch, true) => TurnEvent::WebSearch {
            item_id: item.id(),
            query: owned(item.query),
        },
        (ItemType::Unknown, _) => other(method, params),
    })
}

/// The item an `item/started` opens, for the kinds whose start maps to no
/// event but whose end the [`TurnDecoder`](super::TurnDecoder) must track.
pub(super) fn silently_opened(method: &str, params: &Value) -> Option<(String, ItemKind)> {
    if Method::of(method) != Method::ItemStarted {
        return None;
    }
    let ItemParams { item } = lenient::read(params);
    let kind = match item.kind? {
        ItemType::AgentMessage => ItemKind::AgentMessage,
        ItemType::Reasoning => ItemKind::Reasoning,
        _ => return None,
    };
    Some((item.id(), kind))
}

/// Maps one v2 notification, statelessly. Returns `None` for notifications
/// that carry nothing for a turn's consumer (echoes of the user's input, the
/// start of an agent message). `turn/completed` maps to an outcome without
/// `last_agent_message`; [`TurnDecoder`](super::TurnDecoder) fills it in.
/// A method or item type this crate does not know maps to
/// [`TurnEvent::Other`], unchanged.
pub fn map_v2(method: &str, params: &Value) -> Option<TurnEvent> {
    let delta = || -> (String, String) {
        let d: Delta = lenient::read(params);
        (owned(d.item_id), owned(d.delta))
    };
    Some(match Method::of(method) {
        Method::TurnStarted => {
            let TurnParams { turn } = lenient::read(params);
            TurnEvent::TurnStarted {
                turn_id: owned(turn.id),
            }
        }
        Method::TurnCompleted => {
            let TurnParams { turn } = lenient::read(params);
            let turn_id = owned(turn.id);
            let status = turn.status.unwrap_or_default();
            TurnEvent::Outcome(match status {
                "completed" => TurnOutcome::Completed {
                    turn_id,
                    last_agent_message: None,
                },
                "interrupted" => TurnOutcome::Interrupted { turn_id },
                _ => TurnOutcome::Failed {
                    turn_id,
                    message: turn.error.message.map_or_else(
                        || format!("turn ended with status {status:?} and no error message"),
                        str::to_owned,
                    ),
                    codex_error_info: turn.error.codex_error_info,
                },
            })
        }
        Method::ItemStarted => return item_event(method, params, false),
        Method::ItemCompleted => return item_event(method, params, true),
        Method::AgentMessageDelta => {
            let (item_id, delta) = delta();
            TurnEvent::AgentMessageDelta { item_id, delta }
        }
        Method::ReasoningSummaryTextDelta => {
            let (item_id, delta) = delta();
            TurnEvent::ReasoningDelta {
                item_id,
                part: ReasoningPart::Summary,
                delta,
            }
        }
        Method::ReasoningTextDelta => {
            let (item_id, delta) = delta();
            TurnEvent::ReasoningDelta {
                item_id,
                part: ReasoningPart::Content,
                delta,
            }
        }
        Method::ReasoningSummaryPartAdded => return None,
        Method::CommandExecutionOutputDelta => {
            let (item_id, delta) = delta();
            TurnEvent::CommandOutputDelta { item_id, delta }
        }
        Method::FileChangeOutputDelta => {
            let (item_id, delta) = delta();
            TurnEvent::FileChangeOutputDelta { item_id, delta }
        }
        Method::TurnDiffUpdated => {
            let DiffParams { diff } = lenient::read(params);
            TurnEvent::DiffUpdated { diff: owned(diff) }
        }
        Method::TurnPlanUpdated => lenient::read::<PlanUpdate>(params).to_event(),
        Method::ThreadTokenUsageUpdated => {
            let TokenUsageParams { token_usage: u } = lenient::read(params);
            TurnEvent::TokenUsage(TokenUsage {
                total: u.total.to_event(),
                last: u.last.to_event(),
                model_context_window: u.model_context_window,
            })
        }
        Method::Error => {
            let ErrorParams { error, will_retry } = lenient::read(params);
            error_event(
                owned(error.message),
                error.codex_error_info,
                will_retry == Some(true),
            )
        }
        Method::Warning => {
            let WarningParams { message, summary } = lenient::read(params);
            TurnEvent::Warning {
                message: owned(message.or(summary)),
            }
        }
        Method::Unknown => other(method, params),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::TokenCounts;
    use serde_json::json;

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
    fn unknown_methods_and_item_types_pass_through_raw() {
        let p = json!({"threadId": "t", "anything": [1]});
        assert_eq!(
            map_v2("thread/compacted", &p),
            Some(TurnEvent::Other {
                method: "thread/compacted".into(),
                params: p.clone()
            })
        );
        let p = json!({"item": {"type": "imageView", "id": "i", "path": "/x.png"}});
        for method in ["item/started", "item/completed"] {
            assert_eq!(
                map_v2(method, &p),
                Some(TurnEvent::Other {
                    method: method.into(),
                    params: p.clone()
                })
            );
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let p = json!({"threadId": "t", "turnId": "u", "item": {
            "type": "commandExecution", "id": "c", "command": "ls", "cwd": "/w",
            "status": "completed", "exitCode": 0, "durationMs": 5,
            "aggregatedOutput": "x", "processId": "42", "commandActions": [{"type": "listFiles"}],
            "newField": {"nested": true}}});
        assert_eq!(
            map_v2("item/completed", &p),
            Some(TurnEvent::CommandFinished {
                item_id: "c".into(),
                command: "ls".into(),
                status: ItemStatus::Completed,
                exit_code: Some(0),
                output: Some("x".into()),
                duration_ms: Some(5),
            })
        );
    }

    #[test]
    fn an_item_without_a_string_type_carries_nothing() {
        for item in [
            json!({"id": "x"}),
            json!({"type": 3}),
            json!("agentMessage"),
        ] {
            assert_eq!(map_v2("item/completed", &json!({ "item": item })), None);
        }
        assert_eq!(map_v2("item/completed", &json!({})), None);
        assert_eq!(map_v2("item/completed", &json!(null)), None);
    }

    #[test]
    fn fields_of_the_wrong_type_read_as_absent() {
        let p = json!({"item": {"type": "commandExecution", "id": 1, "command": ["ls"],
            "status": false, "exitCode": 1.5, "durationMs": -3, "aggregatedOutput": {}}});
        assert_eq!(
            map_v2("item/completed", &p),
            Some(TurnEvent::CommandFinished {
                item_id: String::new(),
                command: String::new(),
                status: ItemStatus::Unknown(String::new()),
                exit_code: None,
                output: None,
                duration_ms: None,
            })
        );
        let p = json!({"item": {"type": "reasoning", "id": "r",
            "summary": ["a", {"text": "b"}, {"text": 1}, 2, null],
            "content": "not a list"}});
        assert_eq!(
            map_v2("item/completed", &p),
            Some(TurnEvent::Reasoning {
                item_id: "r".into(),
                summary: vec!["a".into(), "b".into()],
                content: vec![],
            })
        );
    }

    #[test]
    fn file_change_kinds_come_as_names_or_tagged_objects() {
        let p = json!({"item": {"type": "fileChange", "id": "f", "status": "completed",
            "changes": [
                {"path": "a", "kind": "add", "diff": "+x"},
                {"path": "b", "kind": {"type": "update", "move_path": null}, "diff": "-y"},
                {"path": "c", "kind": 5},
                "not an object"]}});
        let Some(TurnEvent::FileChangeFinished { changes, .. }) = map_v2("item/completed", &p)
        else {
            panic!("no file change")
        };
        let kinds: Vec<(&str, &str)> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.kind.as_str()))
            .collect();
        assert_eq!(kinds, [("a", "add"), ("b", "update"), ("c", ""), ("", "")]);
    }

    #[test]
    fn a_turn_completed_without_a_known_status_fails_the_turn() {
        let p = json!({"turn": {"id": "u", "status": "weird"}});
        assert_eq!(
            map_v2("turn/completed", &p),
            Some(TurnEvent::Outcome(TurnOutcome::Failed {
                turn_id: "u".into(),
                message: "turn ended with status \"weird\" and no error message".into(),
                codex_error_info: None,
            }))
        );
        assert!(matches!(
            map_v2("turn/completed", &json!("garbage")),
            Some(TurnEvent::Outcome(TurnOutcome::Failed { turn_id, .. })) if turn_id.is_empty()
        ));
    }

    #[test]
    fn only_a_true_will_retry_is_a_retry() {
        for (will_retry, retry) in [
            (json!(true), true),
            (json!("true"), false),
            (json!(1), false),
        ] {
            let p = json!({"error": {"message": "m"}, "willRetry": will_retry});
            assert_eq!(
                matches!(map_v2("error", &p), Some(TurnEvent::Retrying { .. })),
                retry
            );
        }
    }

    #[test]
    fn missing_or_malformed_token_counts_are_zero() {
        let p = json!({"threadId": "t", "turnId": "u", "tokenUsage": {
            "total": {"inputTokens": 10, "outputTokens": "5", "totalTokens": -1},
            "last": [1, 2], "modelContextWindow": 1000}});
        assert_eq!(
            map_v2("thread/tokenUsage/updated", &p),
            Some(TurnEvent::TokenUsage(TokenUsage {
                total: TokenCounts {
                    input_tokens: 10,
                    ..TokenCounts::default()
                },
                last: TokenCounts::default(),
                model_context_window: Some(1000),
            }))
        );
    }
}
