//! Target `message_roundtrip`: classification and serialization of one frame.
//!
//! The input is one frame's bytes. Whatever they are, `Message::parse` and
//! `Message::parse_one` return without panicking and agree on anything that is
//! not a batch. Every message they accept:
//! - came from a JSON object, and carries its members unchanged (method,
//!   params, result, error code, message and data);
//! - keeps its id's type: a number stays a number and a string a string, in
//!   the value, in its `Display` and on the wire;
//! - serializes (`to_vec`) to one line of JSON with `"jsonrpc":"2.0"` that
//!   parses back to the same message (a notification's params are kept as
//!   text, compared token by token).

use jsonrpc_stdio::message::{Message, RequestId, Response};
use serde_json::Value;

/// Runs every property of the target on one input. Panics on a violation.
pub fn check(data: &[u8]) {
    let single = Message::parse_one(data);
    let parsed = Message::parse(data);
    // Error texts are built from peer input too.
    if let Err(e) = &single {
        let _ = e.to_string();
    }
    // The value `serde_json` itself reads, to compare the message against.
    // `None` when it reads none (e.g. a number too large for an `f64` in a
    // member the message ignores).
    let raw: Option<Value> = serde_json::from_slice(data).ok();
    let starts_with = data.trim_ascii_start().first().copied();

    if let Ok(message) = &single {
        assert_eq!(
            starts_with,
            Some(b'{'),
            "parse_one accepted something that is not a JSON object as {message:?}"
        );
        check_message(message, raw.as_ref());
    }

    if starts_with == Some(b'[') {
        let Ok(items) = &parsed else { return };
        let raw_items = raw
            .as_ref()
            .and_then(Value::as_array)
            .expect("a batch parse accepted what serde_json reads as no array");
        assert!(!items.is_empty(), "an empty batch parsed");
        assert_eq!(items.len(), raw_items.len(), "a batch lost or gained items");
        for (item, raw_item) in items.iter().zip(raw_items) {
            match item {
                Ok(message) => check_message(message, Some(raw_item)),
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    } else {
        assert_eq!(
            parsed,
            Ok(vec![single]),
            "parse and parse_one disagree on a frame that is not a batch"
        );
    }
}

/// The properties of one accepted message; `raw` is the JSON it came from.
fn check_message(message: &Message, raw: Option<&Value>) {
    if let Some(raw) = raw {
        check_members_kept(message, raw);
    }
    let out = message.to_vec();
    assert!(
        !out.contains(&b'\n'),
        "{message:?} serialized over more than one line: the newline framing would cut it"
    );
    match serde_json::from_slice::<Value>(&out) {
        Ok(wire) => {
            assert_eq!(
                wire["jsonrpc"], "2.0",
                "to_vec wrote no \"jsonrpc\":\"2.0\""
            );
            check_id_kept(message_id(message), wire.get("id"), "on the wire");
        }
        // A notification's params are kept as text, so it may hold what
        // no `Value` holds (a number out of an `f64`'s range, nesting
        // deeper than 128), and write it back as it was; but it is JSON.
        Err(e) => {
            assert!(
                matches!(message, Message::Notification(_)) && raw.is_none(),
                "to_vec wrote what serde_json cannot read ({e}): {}",
                String::from_utf8_lossy(&out)
            );
            serde_json::from_slice::<&serde_json::value::RawValue>(&out)
                .expect("to_vec wrote invalid JSON");
        }
    }
    assert_eq!(
        Message::parse_one(&out).as_ref(),
        Ok(message),
        "the round trip changed the message; it was written as {}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(
        Message::parse(&out),
        Ok(vec![Ok(message.clone())]),
        "parse reads back a different message"
    );
}

/// The message holds what its JSON object held, member for member.
fn check_members_kept(message: &Message, raw: &Value) {
    let raw = raw
        .as_object()
        .expect("a message was read from something that is not an object");
    match message {
        Message::Request(request) => {
            assert_eq!(raw.get("method"), Some(&Value::from(&*request.method)));
            assert_eq!(raw.get("params"), request.params.as_ref());
            check_id_kept(Some(&request.id), raw.get("id"), "from the input");
        }
        Message::Notification(notification) => {
            assert_eq!(raw.get("method"), Some(&Value::from(notification.method())));
            // Kept as text: read as a `Value`, it is the member.
            let params = notification
                .params_json()
                .map(|text| serde_json::from_str::<Value>(text).expect("params read as text"));
            assert_eq!(raw.get("params"), params.as_ref());
            assert_eq!(
                raw.get("id"),
                None,
                "a notification was read from an object with an id"
            );
        }
        Message::Response(response) => {
            assert_eq!(
                raw.get("method"),
                None,
                "a response was read from an object with a method"
            );
            check_id_kept(response.id.as_ref(), raw.get("id"), "from the input");
            match &response.result {
                Ok(result) => assert_eq!(raw.get("result"), Some(result)),
                Err(error) => {
                    let raw_error = &raw["error"];
                    assert!(
                        raw_error.is_object(),
                        "an error response was read from an `error` member that is not an \
                         object: {raw_error}"
                    );
                    assert_eq!(raw_error["code"].as_i64(), Some(error.code.0));
                    assert_eq!(raw_error["message"].as_str(), Some(&*error.message));
                    let raw_data = raw_error.get("data").filter(|data| !data.is_null());
                    assert_eq!(raw_data, error.data.as_ref());
                }
            }
        }
    }
}

fn message_id(message: &Message) -> Option<&RequestId> {
    match message {
        Message::Request(request) => Some(&request.id),
        Message::Notification(_) => None,
        Message::Response(Response { id, .. }) => id.as_ref(),
    }
}

/// `id` is what `json` says, of the same type: `1` and `"1"` stay apart.
fn check_id_kept(id: Option<&RequestId>, json: Option<&Value>, place: &str) {
    match (id, json) {
        (Some(id), Some(Value::Number(n))) => {
            assert_eq!(
                id.as_i64(),
                n.as_i64(),
                "numeric id {n} read as {id} ({place})"
            );
            assert!(
                !id.to_string().starts_with('"'),
                "numeric id {id} displays quoted"
            );
        }
        (Some(id), Some(Value::String(s))) => {
            assert_eq!(
                id.as_str(),
                Some(s.as_str()),
                "string id {s:?} read as {id} ({place})"
            );
            assert!(
                id.to_string().starts_with('"'),
                "string id {id} displays unquoted"
            );
        }
        (None, None | Some(Value::Null)) => {}
        (id, json) => panic!("id {id:?} does not match {json:?} ({place})"),
    }
}
