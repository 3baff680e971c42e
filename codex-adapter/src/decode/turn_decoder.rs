//! The per-turn state over the stateless mappings: one family, open items,
//! retries, and exactly one outcome.

use std::collections::HashSet;

use serde_json::Value;

use super::legacy::{self, EventType};
use super::{lenient, map_legacy, map_v2, route_of, v2, Family, LEGACY_PREFIX};
use crate::event::{ItemKind, TurnEvent, TurnOutcome};

/// An item started and not yet finished.
#[derive(Debug, Clone)]
struct OpenItem {
    id: String,
    kind: ItemKind,
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
            (Family::V2, true) if EventType::of(method) == Some(EventType::TaskStarted) => {
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
        if let Some((id, kind)) = v2::silently_opened(method, params) {
            self.open(id, kind);
        }
        map_v2(method, params)
    }

    /// Dedup of the legacy family's double text reports.
    fn before_legacy(&mut self, method: &str, params: &Value) -> Option<TurnEvent> {
        let ty = EventType::of(method)?;
        match ty {
            EventType::AgentMessageContentDelta => self.saw_content_delta = true,
            EventType::AgentMessageDelta if self.saw_content_delta => return None,
            EventType::AgentMessage if self.saw_item_completed => return None,
            EventType::ItemStarted | EventType::ItemCompleted | EventType::TaskComplete => {
                let envelope: legacy::Envelope = lenient::read(params);
                let agent_message = envelope.msg.item.kind == Some(legacy::ItemType::AgentMessage);
                match ty {
                    EventType::ItemStarted if agent_message => {
                        self.open(envelope.msg.item.id(), ItemKind::AgentMessage);
                    }
                    EventType::ItemCompleted if agent_message => self.saw_item_completed = true,
                    EventType::TaskComplete => {
                        if let Some((message, codex_error_info)) = self.last_error.take() {
                            return Some(TurnEvent::Outcome(TurnOutcome::Failed {
                                turn_id: envelope.id.unwrap_or_default().to_owned(),
                                message,
                                codex_error_info,
                            }));
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        map_legacy(method, params)
    }

    fn open(&mut self, id: String, kind: ItemKind) {
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
            | TurnEvent::McpToolCallFinished { item_id, .. }
            | TurnEvent::FileChangeFinished { item_id, .. } => self.close(item_id),
            TurnEvent::CommandStarted { item_id, .. } => {
                self.open(item_id.clone(), ItemKind::CommandExecution)
            }
            TurnEvent::FileChangeStarted { item_id, .. } => {
                self.file_changes.insert(item_id.clone());
                self.open(item_id.clone(), ItemKind::FileChange)
            }
            TurnEvent::McpToolCallStarted { item_id, .. } => {
                self.open(item_id.clone(), ItemKind::McpToolCall)
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
                    .filter(|o| o.kind == ItemKind::AgentMessage)
                    .map(|o| o.id.clone())
                    .collect();
                self.open.retain(|o| o.kind != ItemKind::AgentMessage);
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
                kind: o.kind,
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
    }

    #[test]
    fn items_open_at_the_end_are_abandoned_with_their_kind() {
        let mut d = TurnDecoder::new(Family::V2);
        for item in [
            json!({"type": "reasoning", "id": "r"}),
            json!({"type": "commandExecution", "id": "c", "command": "ls"}),
            json!({"type": "mcpToolCall", "id": "m", "server": "s", "tool": "t"}),
        ] {
            d.decode("item/started", &json!({"turnId": "u", "item": item}));
        }
        let events = d.finish(TurnOutcome::Interrupted {
            turn_id: String::new(),
        });
        let abandoned: Vec<(&str, ItemKind)> = events
            .iter()
            .filter_map(|e| match e {
                TurnEvent::ItemAbandoned { item_id, kind } => Some((item_id.as_str(), *kind)),
                _ => None,
            })
            .collect();
        assert_eq!(
            abandoned,
            [
                ("r", ItemKind::Reasoning),
                ("c", ItemKind::CommandExecution),
                ("m", ItemKind::McpToolCall)
            ]
        );
        assert_eq!(
            serde_json::to_value(&events[1]).unwrap(),
            json!({"type": "item_abandoned", "item_id": "c", "kind": "commandExecution"})
        );
    }

    #[test]
    fn a_legacy_error_before_task_complete_fails_the_turn() {
        let mut d = TurnDecoder::new(Family::Legacy);
        let envelope = |msg: Value| json!({"id": "0", "conversationId": "t", "msg": msg});
        d.decode(
            "codex/event/item_started",
            &envelope(json!({"type": "item_started", "item": {"type": "AgentMessage", "id": "a"}})),
        );
        d.decode(
            "codex/event/error",
            &envelope(json!({"type": "error", "message": "boom",
                "codex_error_info": {"http_connection_failed": {"http_status_code": 500}}})),
        );
        let events = d.decode(
            "codex/event/task_complete",
            &envelope(json!({"type": "task_complete", "last_agent_message": null})),
        );
        assert_eq!(
            events,
            [
                TurnEvent::ItemAbandoned {
                    item_id: "a".into(),
                    kind: ItemKind::AgentMessage
                },
                TurnEvent::Outcome(TurnOutcome::Failed {
                    turn_id: "0".into(),
                    message: "boom".into(),
                    codex_error_info: Some(
                        json!({"httpConnectionFailed": {"httpStatusCode": 500}})
                    ),
                })
            ]
        );
    }
}
