//! Target `codex_events`: codex's notifications mapped to typed turn events.
//!
//! The input is what an app-server wrote, one JSON-RPC message per line.
//! Each notification's `(method, params)` goes through the pure mappings
//! (`route_of`, `map_v2`, `map_legacy`), as sent and with every number in
//! its params replaced by an extreme (`u64::MAX`, `i64::MIN`, `-1`,
//! `f64::MAX`); any other JSON value on a line is tried as the params of
//! every method the mappings know. Then the whole
//! sequence goes through a `TurnDecoder` of each family, as one turn.
//!
//! Whatever the JSON: nothing panics; a method no variant models comes back
//! as `TurnEvent::Other` with its method and params unchanged; `map_legacy`
//! ignores methods outside `codex/event/`; every event serializes to a JSON
//! object with a string `"type"` (the `codex-turn --json` shape); and a turn
//! ends exactly once: one `Outcome`, last, preceded only by the
//! `ItemAbandoned` events that close what was open, and nothing after it.

use codex_adapter::decode::{map_legacy, map_v2, Family, TurnDecoder, LEGACY_PREFIX};
use codex_adapter::route::route_of;
use codex_adapter::{TurnEvent, TurnOutcome};
use jsonrpc_stdio::message::Message;
use serde_json::Value;

/// Every method the mappings read, so that arbitrary params reach each arm.
const KNOWN_METHODS: &[&str] = &[
    "turn/started",
    "turn/completed",
    "item/started",
    "item/completed",
    "item/agentMessage/delta",
    "item/reasoning/summaryTextDelta",
    "item/reasoning/textDelta",
    "item/reasoning/summaryPartAdded",
    "item/commandExecution/outputDelta",
    "item/fileChange/outputDelta",
    "turn/diff/updated",
    "turn/plan/updated",
    "thread/tokenUsage/updated",
    "error",
    "warning",
    "codex/event/task_started",
    "codex/event/task_complete",
    "codex/event/turn_aborted",
    "codex/event/agent_message_content_delta",
    "codex/event/agent_message_delta",
    "codex/event/agent_message",
    "codex/event/item_started",
    "codex/event/item_completed",
    "codex/event/reasoning_content_delta",
    "codex/event/agent_reasoning_delta",
    "codex/event/reasoning_raw_content_delta",
    "codex/event/agent_reasoning_raw_content_delta",
    "codex/event/agent_reasoning",
    "codex/event/agent_reasoning_raw_content",
    "codex/event/agent_reasoning_section_break",
    "codex/event/exec_command_begin",
    "codex/event/exec_command_output_delta",
    "codex/event/exec_command_end",
    "codex/event/patch_apply_begin",
    "codex/event/patch_apply_end",
    "codex/event/mcp_tool_call_begin",
    "codex/event/mcp_tool_call_end",
    "codex/event/web_search_begin",
    "codex/event/web_search_end",
    "codex/event/plan_update",
    "codex/event/turn_diff",
    "codex/event/token_count",
    "codex/event/error",
    "codex/event/stream_error",
    "codex/event/warning",
    "codex/event/exec_approval_request",
    "codex/event/apply_patch_approval_request",
    "codex/event/user_message",
    "codex/event/",
    "no/such/method",
];

/// Numbers a field may hold, tried in place of every number of a
/// notification: a recorded `"secs": 3` must not be the only value that works.
const EXTREME_NUMBERS: [fn() -> Value; 4] = [
    || Value::from(u64::MAX),
    || Value::from(i64::MIN),
    || Value::from(-1),
    || Value::from(f64::MAX),
];

/// `value` with every number replaced by `number()`.
fn with_numbers(value: &Value, number: fn() -> Value) -> Value {
    match value {
        Value::Number(_) => number(),
        Value::Array(items) => items.iter().map(|v| with_numbers(v, number)).collect(),
        Value::Object(members) => members
            .iter()
            .map(|(k, v)| (k.clone(), with_numbers(v, number)))
            .collect(),
        other => other.clone(),
    }
}

/// Runs every property of the target on one input. Panics on a violation.
pub fn check(data: &[u8]) {
    let mut notes: Vec<(String, Value)> = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        match Message::parse_one(line) {
            Ok(Message::Notification(n)) => {
                // As the adapter's router reads them: absent params are
                // `null`, and params no `Value` holds are skipped.
                let Ok(params) = n.params::<Value>() else {
                    continue;
                };
                check_mapping(n.method(), &params);
                for extreme in EXTREME_NUMBERS {
                    check_mapping(n.method(), &with_numbers(&params, extreme));
                }
                notes.push((n.method().to_owned(), params));
            }
            // Server requests (approvals) are routed by the same function.
            Ok(Message::Request(r)) => {
                let _ = route_of(&r.method, r.params.as_ref().unwrap_or(&Value::Null));
            }
            _ => {
                if let Ok(params) = serde_json::from_slice::<Value>(line) {
                    for method in KNOWN_METHODS {
                        check_mapping(method, &params);
                    }
                }
            }
        }
    }
    for family in [Family::V2, Family::Legacy, Family::Auto] {
        check_turn(family, &notes);
    }
}

/// The stateless mappings of one notification.
fn check_mapping(method: &str, params: &Value) {
    let _ = route_of(method, params);
    if let Some(event) = map_v2(method, params) {
        check_event(&event, method, params);
    }
    if let Some(event) = map_legacy(method, params) {
        assert!(
            method.starts_with(LEGACY_PREFIX),
            "map_legacy mapped {method:?}, which is no legacy envelope"
        );
        check_event(&event, method, params);
    }
}

/// One event from `(method, params)`: kept whole if unmodelled, and printable.
fn check_event(event: &TurnEvent, method: &str, params: &Value) {
    if let TurnEvent::Other {
        method: m,
        params: p,
    } = event
    {
        assert_eq!(m, method, "Other changed the method");
        assert_eq!(p, params, "Other changed the params of {method:?}");
    }
    check_serializes(event);
}

/// The `codex-turn --json` shape: an object with a string `"type"`.
fn check_serializes(event: &TurnEvent) {
    let json =
        serde_json::to_value(event).unwrap_or_else(|e| panic!("{event:?} does not serialize: {e}"));
    assert!(
        json.get("type").is_some_and(Value::is_string),
        "{event:?} serializes without a string \"type\": {json}"
    );
}

/// All `notes` as one turn, then the end a watchdog would give it.
fn check_turn(family: Family, notes: &[(String, Value)]) {
    let mut decoder = TurnDecoder::new(family);
    let mut events = Vec::new();
    for (method, params) in notes {
        let was_finished = decoder.is_finished();
        let new = decoder.decode(method, params);
        assert!(
            !was_finished || new.is_empty(),
            "{family:?}: {new:?} came after the turn's outcome"
        );
        events.extend(new);
    }
    events.extend(decoder.finish(TurnOutcome::Interrupted {
        turn_id: String::new(),
    }));
    assert!(
        decoder.is_finished(),
        "{family:?}: finish() left the turn open"
    );
    if let Some((method, params)) = notes.first() {
        assert_eq!(
            decoder.decode(method, params),
            vec![],
            "{family:?}: an event after the outcome"
        );
    }

    let outcomes = events
        .iter()
        .filter(|e| matches!(e, TurnEvent::Outcome(_)))
        .count();
    assert_eq!(outcomes, 1, "{family:?}: {outcomes} outcomes in {events:?}");
    assert!(
        matches!(events.last(), Some(TurnEvent::Outcome(_))),
        "{family:?}: the outcome is not the last event: {events:?}"
    );
    // What `finish` closes comes right before the outcome, nowhere else.
    let closing = events[..events.len() - 1]
        .iter()
        .rev()
        .take_while(|e| matches!(e, TurnEvent::ItemAbandoned { .. }))
        .count();
    let abandoned = events
        .iter()
        .filter(|e| matches!(e, TurnEvent::ItemAbandoned { .. }))
        .count();
    assert_eq!(
        abandoned, closing,
        "{family:?}: an item abandoned mid-turn: {events:?}"
    );
    for event in &events {
        check_serializes(event);
    }
}
