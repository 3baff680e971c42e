//! From wire notifications to [`TurnEvent`]s: pure functions over
//! `(method, params)`, one per wire family ([`map_v2`], [`map_legacy`]), and
//! the per-turn [`TurnDecoder`] that picks one family, tracks open items and
//! ends the turn exactly once.
//!
//! codex 0.72.0 reports a v2 thread's turn twice: once as legacy
//! `codex/event/<type>` envelopes and once as v2 notifications, and each agent
//! text delta three times (`agent_message_content_delta`,
//! `agent_message_delta`, `item/agentMessage/delta`). codex 0.169.0 sends only
//! v2. A decoder reads **one** family per turn, so every delta appears once:
//! [`Family::V2`] for threads started with `thread/start` (both versions send
//! full v2 for them), [`Family::Legacy`] for a stream that has only legacy
//! envelopes, and [`Family::Auto`] to lock onto whichever family speaks first.
//!
//! Payloads are read into serde structs that borrow from the params. A
//! peer's bad input is ordinary input: unknown fields are ignored, a field of
//! the wrong JSON type reads as absent, params that are no object read as
//! all-absent, and a method, event type or item type this crate does not
//! know comes back as [`TurnEvent::Other`] with its method and params
//! unchanged.

mod legacy;
pub(crate) mod lenient;
mod turn_decoder;
mod v2;

use serde::Deserialize;
use serde_json::Value;

use crate::event::{PlanStep, TokenCounts, TurnEvent};

#[doc(no_inline)]
pub use crate::route::{route_of, Route};
pub(crate) use legacy::legacy_changes;
pub use legacy::{map_legacy, LEGACY_PREFIX};
pub use turn_decoder::TurnDecoder;
pub use v2::map_v2;

/// Which of codex's two notification families to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
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

/// A notification no variant models, kept whole for the consumer.
fn other(method: &str, params: &Value) -> TurnEvent {
    TurnEvent::Other {
        method: method.to_owned(),
        params: params.clone(),
    }
}

/// Joins an argv the way codex displays it: words that need it are
/// single-quoted (`bash -lc 'echo hi && ls'`). Words that are no string are
/// empty words.
pub fn shell_join(argv: &[Value]) -> String {
    shell_join_words(argv.iter().map(|a| a.as_str().unwrap_or_default()))
}

fn shell_join_words<'a>(words: impl Iterator<Item = &'a str>) -> String {
    words
        .map(|a| {
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

/// A plan update; both families spell it alike (v2 params, legacy `msg`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct PlanUpdate<'a> {
    #[serde(deserialize_with = "lenient::str")]
    explanation: Option<&'a str>,
    #[serde(deserialize_with = "lenient::objects")]
    plan: Vec<WirePlanStep<'a>>,
}

impl PlanUpdate<'_> {
    fn to_event(&self) -> TurnEvent {
        TurnEvent::PlanUpdated {
            explanation: self.explanation.map(str::to_owned),
            plan: self
                .plan
                .iter()
                .map(|s| PlanStep {
                    step: s.step.unwrap_or_default().to_owned(),
                    status: s.status.unwrap_or_default().to_owned(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct WirePlanStep<'a> {
    #[serde(deserialize_with = "lenient::str")]
    step: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    status: Option<&'a str>,
}

/// Token counts as both families spell them: legacy `input_tokens`, v2
/// `inputTokens`. A count of the wrong type counts as missing.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenBreakdown {
    #[serde(alias = "inputTokens", deserialize_with = "lenient::u64")]
    input_tokens: Option<u64>,
    #[serde(alias = "cachedInputTokens", deserialize_with = "lenient::u64")]
    cached_input_tokens: Option<u64>,
    #[serde(alias = "outputTokens", deserialize_with = "lenient::u64")]
    output_tokens: Option<u64>,
    #[serde(alias = "reasoningOutputTokens", deserialize_with = "lenient::u64")]
    reasoning_output_tokens: Option<u64>,
    #[serde(alias = "totalTokens", deserialize_with = "lenient::u64")]
    total_tokens: Option<u64>,
}

impl TokenBreakdown {
    /// A missing count is zero.
    fn to_event(&self) -> TokenCounts {
        TokenCounts {
            input_tokens: self.input_tokens.unwrap_or(0),
            cached_input_tokens: self.cached_input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
            reasoning_output_tokens: self.reasoning_output_tokens.unwrap_or(0),
            total_tokens: self.total_tokens.unwrap_or(0),
        }
    }
}

/// A wire string the event needs owned; missing is empty.
fn owned(s: Option<&str>) -> String {
    s.unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shell_join_quotes_only_words_that_need_it() {
        let argv = [
            json!("bash"),
            json!("-lc"),
            json!("echo hi && it's"),
            json!(3),
        ];
        assert_eq!(shell_join(&argv), r"bash -lc 'echo hi && it'\''s' ''");
    }

    #[test]
    fn plan_updates_read_alike_from_both_families() {
        let plan = json!([{"step": "a", "status": "completed", "extra": 1},
            {"step": 2}, "no step"]);
        let expected = || TurnEvent::PlanUpdated {
            explanation: Some("why".into()),
            plan: vec![
                PlanStep {
                    step: "a".into(),
                    status: "completed".into(),
                },
                PlanStep {
                    step: String::new(),
                    status: String::new(),
                },
                PlanStep {
                    step: String::new(),
                    status: String::new(),
                },
            ],
        };
        assert_eq!(
            map_v2(
                "turn/plan/updated",
                &json!({"threadId": "t", "turnId": "u", "explanation": "why", "plan": plan})
            ),
            Some(expected())
        );
        assert_eq!(
            map_legacy(
                "codex/event/plan_update",
                &json!({"id": "0", "msg": {"type": "plan_update", "explanation": "why", "plan": plan}})
            ),
            Some(expected())
        );
    }
}
