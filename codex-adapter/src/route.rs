//! Which thread and turn a notification or server request belongs to, read
//! once by the connection's router and again by each turn.

use serde::Deserialize;
use serde_json::Value;

use crate::decode::{lenient, LEGACY_PREFIX};

/// Where a notification or server request belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Route<'a> {
    /// `threadId` (v2) or `conversationId` (legacy and v1).
    pub thread_id: Option<&'a str>,
    /// `turnId`, `turn.id`, or a legacy envelope's non-empty `id`.
    pub turn_id: Option<&'a str>,
}

/// The routing fields of either family's params; everything else is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct RoutingFields<'a> {
    #[serde(deserialize_with = "lenient::str")]
    thread_id: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    conversation_id: Option<&'a str>,
    #[serde(deserialize_with = "lenient::str")]
    turn_id: Option<&'a str>,
    #[serde(deserialize_with = "lenient::object")]
    turn: Id<'a>,
    /// A legacy envelope's turn id (empty outside a turn).
    #[serde(deserialize_with = "lenient::str")]
    id: Option<&'a str>,
    #[serde(deserialize_with = "lenient::object")]
    msg: LegacyTurnId<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct Id<'a> {
    #[serde(deserialize_with = "lenient::str")]
    id: Option<&'a str>,
}

/// Some legacy events carry their turn only inside `msg`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, bound(deserialize = "'de: 'a"))]
struct LegacyTurnId<'a> {
    #[serde(deserialize_with = "lenient::str")]
    turn_id: Option<&'a str>,
}

/// Reads the thread and turn a message is about, from either family. Params
/// that are no object, or fields of the wrong type, route nowhere.
pub fn route_of<'a>(method: &str, params: &'a Value) -> Route<'a> {
    let fields: RoutingFields<'a> = lenient::read(params);
    if method.starts_with(LEGACY_PREFIX) {
        return Route {
            thread_id: fields.conversation_id,
            turn_id: fields.id.filter(|id| !id.is_empty()).or(fields.msg.turn_id),
        };
    }
    Route {
        thread_id: fields.thread_id.or(fields.conversation_id),
        turn_id: fields.turn_id.or(fields.turn.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let p = json!({"id": "", "msg": {"turn_id": "3"}, "conversationId": "t1"});
        assert_eq!(route_of("codex/event/x", &p).turn_id, Some("3"));
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
        let p = json!({"conversationId": "c", "turnId": "u", "turn": {"id": "v"}});
        assert_eq!(
            route_of("item/started", &p),
            Route {
                thread_id: Some("c"),
                turn_id: Some("u")
            }
        );
    }

    #[test]
    fn fields_of_the_wrong_type_route_nowhere_but_do_not_hide_the_others() {
        let p = json!({"threadId": 7, "conversationId": "c", "turnId": null, "turn": "u",
            "unknown": {"deep": [1, 2]}});
        assert_eq!(
            route_of("turn/started", &p),
            Route {
                thread_id: Some("c"),
                turn_id: None
            }
        );
        for params in [json!(null), json!("t"), json!(["t", "u"]), json!(3)] {
            assert_eq!(route_of("turn/started", &params), Route::default());
            assert_eq!(route_of("codex/event/x", &params), Route::default());
        }
    }
}
