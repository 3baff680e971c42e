//! JSON-RPC 2.0 messages, classified by their fields.
//!
//! Peers in the wild are loose: codex omits `"jsonrpc":"2.0"` on everything it
//! writes. A message is therefore classified by which of `id`, `method`,
//! `result` and `error` it carries, never by the `jsonrpc` member. Everything
//! this crate writes carries `"jsonrpc":"2.0"`.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// A request id: a number or a string. `1` and `"1"` are different ids.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(IdRepr);

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
enum IdRepr {
    Number(i64),
    String(String),
}

impl RequestId {
    /// The id as a number, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            IdRepr::Number(n) => Some(n),
            IdRepr::String(_) => None,
        }
    }

    /// The id as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.0 {
            IdRepr::Number(_) => None,
            IdRepr::String(s) => Some(s),
        }
    }
}

impl From<i64> for RequestId {
    fn from(n: i64) -> Self {
        RequestId(IdRepr::Number(n))
    }
}

impl From<String> for RequestId {
    fn from(s: String) -> Self {
        RequestId(IdRepr::String(s))
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        RequestId(IdRepr::String(s.to_owned()))
    }
}

/// Quotes string ids so that `1` and `"1"` read differently in logs and errors.
impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            IdRepr::Number(n) => write!(f, "{n}"),
            IdRepr::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A JSON-RPC error code. An open set: servers define their own codes, so this
/// is a number with the standard codes as constants rather than a closed enum.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub i64);

impl ErrorCode {
    /// Invalid JSON was received by the server.
    pub const PARSE_ERROR: ErrorCode = ErrorCode(-32700);
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: ErrorCode = ErrorCode(-32600);
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: ErrorCode = ErrorCode(-32601);
    /// Invalid method parameters.
    pub const INVALID_PARAMS: ErrorCode = ErrorCode(-32602);
    /// Internal JSON-RPC error.
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(-32603);
    /// LSP: the request was cancelled by the client.
    pub const REQUEST_CANCELLED: ErrorCode = ErrorCode(-32800);

    fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::PARSE_ERROR => "parse error",
            Self::INVALID_REQUEST => "invalid request",
            Self::METHOD_NOT_FOUND => "method not found",
            Self::INVALID_PARAMS => "invalid params",
            Self::INTERNAL_ERROR => "internal error",
            Self::REQUEST_CANCELLED => "request cancelled",
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{} ({name})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The `error` member of an error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// What kind of error.
    pub code: ErrorCode,
    /// A short description, from the server.
    pub message: String,
    /// Anything else the server attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ErrorObject {
    /// An error with no `data`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
            data: None,
        }
    }
}

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {}: {}", self.code, self.message)?;
        if let Some(data) = &self.data {
            write!(f, " (data: {data})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ErrorObject {}

/// A request: a call that expects a response with the same id.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Chosen by the sender; echoed in the response.
    pub id: RequestId,
    /// The method to call.
    pub method: String,
    /// `None` when the member was absent.
    pub params: Option<Value>,
}

/// A notification: a method call that gets no response.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The method, e.g. `turn/completed`.
    pub method: String,
    /// `None` when the member was absent.
    pub params: Option<Value>,
}

/// A response to a request, successful or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the request answered. `None` for an error the server could not
    /// attribute to a request (`"id": null`, e.g. after a parse error).
    pub id: Option<RequestId>,
    /// The `result` member, or the `error` member.
    pub result: Result<Value, ErrorObject>,
}

/// Any JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A call that expects an answer.
    Request(Request),
    /// A call that expects none.
    Notification(Notification),
    /// An answer.
    Response(Response),
}

/// Why a well-formed JSON value is not a JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShapeError {
    /// The text is not JSON at all, or not an object.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// An object with none of the combinations of `id`, `method`, `result`,
    /// `error` that make a request, notification or response.
    #[error("JSON of no JSON-RPC shape: {0}")]
    NoShape(&'static str),
    /// A batch array with no elements (the spec calls it invalid).
    #[error("empty batch")]
    EmptyBatch,
}

/// Every member a message may carry. `Option<Option<Value>>`-like handling
/// (via [`present`]) tells `"result": null` (a valid result) from no `result`.
#[derive(Deserialize)]
struct Wire {
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default, deserialize_with = "present")]
    params: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
}

/// Maps a present member to `Some`, even when its value is `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn id_from(value: Value) -> Result<Option<RequestId>, ShapeError> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(|n| Some(RequestId::from(n)))
            .ok_or(ShapeError::NoShape("id is not an integer")),
        Value::String(s) => Ok(Some(RequestId::from(s))),
        _ => Err(ShapeError::NoShape("id is neither a number nor a string")),
    }
}

impl Message {
    /// Classifies one JSON object (not a batch).
    pub fn from_value(value: Value) -> Result<Message, ShapeError> {
        if !value.is_object() {
            return Err(ShapeError::NoShape("not an object"));
        }
        let wire: Wire =
            serde_json::from_value(value).map_err(|e| ShapeError::NotJson(e.to_string()))?;
        Self::from_wire(wire)
    }

    fn from_wire(wire: Wire) -> Result<Message, ShapeError> {
        match (wire.method, wire.id) {
            (Some(method), Some(id)) => {
                let id = id_from(id)?.ok_or(ShapeError::NoShape("request with a null id"))?;
                Ok(Message::Request(Request {
                    id,
                    method,
                    params: wire.params,
                }))
            }
            (Some(method), None) => Ok(Message::Notification(Notification {
                method,
                params: wire.params,
            })),
            (None, id) => {
                let id = match id {
                    Some(id) => id_from(id)?,
                    None => None,
                };
                let result = match (wire.result, wire.error) {
                    (Some(result), None) => Ok(result),
                    // Checked first: serde would also fill the struct from
                    // an array, field by field (found by the fuzzer).
                    (None, Some(error)) if !error.is_object() => {
                        return Err(ShapeError::NoShape("error member is not an object"))
                    }
                    (None, Some(error)) => Err(serde_json::from_value::<ErrorObject>(error)
                        .map_err(|_| ShapeError::NoShape("malformed error object"))?),
                    (Some(_), Some(_)) => return Err(ShapeError::NoShape("both result and error")),
                    (None, None) => return Err(ShapeError::NoShape("no method, result or error")),
                };
                if id.is_none() && result.is_ok() {
                    return Err(ShapeError::NoShape("result without an id"));
                }
                Ok(Message::Response(Response { id, result }))
            }
        }
    }

    /// Parses one frame: a single message or a batch array.
    ///
    /// A batch yields one entry per element, each classified on its own, so
    /// one bad element does not hide the good ones.
    pub fn parse(bytes: &[u8]) -> Result<Vec<Result<Message, ShapeError>>, ShapeError> {
        let trimmed = bytes.trim_ascii_start();
        if trimmed.first() == Some(&b'[') {
            let items: Vec<Value> =
                serde_json::from_slice(bytes).map_err(|e| ShapeError::NotJson(e.to_string()))?;
            if items.is_empty() {
                return Err(ShapeError::EmptyBatch);
            }
            Ok(items.into_iter().map(Message::from_value).collect())
        } else {
            Ok(vec![Self::parse_one(bytes)])
        }
    }

    /// Parses one frame that holds a single message (not a batch).
    pub fn parse_one(bytes: &[u8]) -> Result<Message, ShapeError> {
        // A derived struct also reads a JSON array, field by field, so
        // `[7,"shutdown"]` would pass for a request: only objects get in.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(match serde_json::from_slice::<de::IgnoredAny>(bytes) {
                Ok(_) => ShapeError::NoShape("not an object"),
                Err(e) => ShapeError::NotJson(e.to_string()),
            });
        }
        // Checked as UTF-8 once, whole, then read from a `str`: from a
        // slice, serde_json checks every string (keys included) on its own.
        // Invalid UTF-8 is read from the slice, for serde_json's error.
        let wire: Result<Wire, _> = match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(bytes),
        };
        let wire = wire.map_err(|e| {
            if e.is_data() {
                ShapeError::NoShape("not an object of JSON-RPC members")
            } else {
                ShapeError::NotJson(e.to_string())
            }
        })?;
        Self::from_wire(wire)
    }

    /// Serializes the message as one line of JSON (no trailing newline), with
    /// `"jsonrpc":"2.0"`.
    pub fn to_vec(&self) -> Vec<u8> {
        // Serializing a `Value` tree with string keys cannot fail.
        serde_json::to_vec(self).expect("a JSON-RPC message always serializes")
    }
}

/// A response's `result`, still as the bytes it had in the frame: the
/// caller decodes it into whatever it wants (a typed result, a [`Value`]),
/// or keeps it raw. The reader never builds a [`Value`] for it.
///
/// Always one complete JSON value (checked when the frame was read).
#[derive(Clone, PartialEq, Eq)]
pub struct RawResult(Bytes);

impl RawResult {
    /// The JSON text of the result.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The JSON text of the result as a `str` (checked as UTF-8 here, which
    /// is cheap next to parsing it).
    pub fn as_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.0)
    }

    /// Decodes the result into `T`.
    pub fn deserialize<T: de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.0)
    }

    /// The bytes, shared with the frame they were read from.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }

    pub(crate) fn from_value(value: &Value) -> RawResult {
        // A `Value` always serializes.
        RawResult(Bytes::from(
            serde_json::to_vec(value).expect("a JSON value always serializes"),
        ))
    }
}

impl fmt::Debug for RawResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawResult({})", String::from_utf8_lossy(&self.0))
    }
}

/// The members a response is told apart by, borrowed from the frame.
/// `present_raw` keeps `"result": null` (a result) apart from no `result`.
#[derive(Deserialize)]
struct ResponseWire<'a> {
    #[serde(default)]
    id: Option<WireId>,
    /// Read only for whether it is there. A `null` method reads as absent
    /// here as in [`Wire`].
    #[serde(default)]
    method: Option<de::IgnoredAny>,
    #[serde(default, borrow, deserialize_with = "present_raw")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present_raw")]
    error: Option<&'a RawValue>,
}

fn present_raw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// An id read in place, without a [`RawValue`] and a second parse. What
/// [`Message::parse`] does not take as an id (a float such as `1e3` or
/// `-0`, `null`, ...) is `Other`.
enum WireId {
    Number(i64),
    String(String),
    Other,
}

impl<'de> Deserialize<'de> for WireId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = WireId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_i64<E>(self, n: i64) -> Result<WireId, E> {
                Ok(WireId::Number(n))
            }
            fn visit_u64<E>(self, n: u64) -> Result<WireId, E> {
                Ok(i64::try_from(n).map_or(WireId::Other, WireId::Number))
            }
            fn visit_f64<E>(self, _: f64) -> Result<WireId, E> {
                Ok(WireId::Other)
            }
            fn visit_str<E>(self, s: &str) -> Result<WireId, E> {
                Ok(WireId::String(s.to_owned()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<WireId, E> {
                Ok(WireId::Other)
            }
            fn visit_unit<E>(self) -> Result<WireId, E> {
                Ok(WireId::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<WireId, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(WireId::Other)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<WireId, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(WireId::Other)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Reads a frame that is a plain response to a request — an object with an
/// integer or string id and exactly one of `result` and `error` — without
/// building a [`Value`]: the result stays a slice of the frame. Anything
/// else (requests, notifications, batches, odd shapes, bad JSON) gives
/// `None`, and [`Message::parse`] decides what it is, so the two agree on
/// every input this accepts.
pub(crate) fn parse_response(frame: &Bytes) -> Option<(RequestId, Result<RawResult, ErrorObject>)> {
    if frame.trim_ascii_start().first() != Some(&b'{') {
        return None;
    }
    // A notification or request would be read whole before its `method`
    // turned it away, then again by the general parser. A `"method"` (even
    // inside a result) sends the frame there at once; an escaped key is
    // still caught by the parse below.
    // Only the first bytes are searched, where servers write it: a large
    // response is not scanned twice, and a later `method` is caught below.
    let head = &frame[..frame.len().min(64)];
    static METHOD: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    // Built once: building a finder costs more than searching 64 bytes.
    let method = METHOD.get_or_init(|| memchr::memmem::Finder::new(b"\"method\""));
    if method.find(head).is_some() {
        return None;
    }
    // Checked as UTF-8 once, whole: read from a `str`, serde_json checks
    // neither each key nor the raw result again.
    let text = std::str::from_utf8(frame).ok()?;
    let wire: ResponseWire<'_> = serde_json::from_str(text).ok()?;
    if wire.method.is_some() {
        return None;
    }
    let id = match wire.id? {
        WireId::Number(n) => RequestId::from(n),
        WireId::String(s) => RequestId::from(s),
        WireId::Other => return None,
    };
    let result = match (wire.result, wire.error) {
        (Some(result), None) => Ok(RawResult(frame.slice_ref(result.get().as_bytes()))),
        (None, Some(error)) if error.get().starts_with('{') => {
            Err(serde_json::from_str::<ErrorObject>(error.get()).ok()?)
        }
        _ => return None,
    };
    Some((id, result))
}

#[derive(Serialize)]
struct OutRequest<'a, P: ?Sized> {
    jsonrpc: &'static str,
    id: &'a RequestId,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a P>,
}

#[derive(Serialize)]
struct OutNotification<'a, P: ?Sized> {
    jsonrpc: &'static str,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a P>,
}

#[derive(Serialize)]
struct OutResponse<'a> {
    jsonrpc: &'static str,
    id: &'a Option<RequestId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorObject>,
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Message::Request(r) => OutRequest {
                jsonrpc: "2.0",
                id: &r.id,
                method: &r.method,
                params: r.params.as_ref(),
            }
            .serialize(s),
            Message::Notification(n) => OutNotification {
                jsonrpc: "2.0",
                method: &n.method,
                params: n.params.as_ref(),
            }
            .serialize(s),
            Message::Response(r) => OutResponse {
                jsonrpc: "2.0",
                id: &r.id,
                result: r.result.as_ref().ok(),
                error: r.result.as_ref().err(),
            }
            .serialize(s),
        }
    }
}

/// Reads one message (an object; see [`Message::from_value`]).
impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Message::from_value(Value::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// Appends a request to `out`, serialized straight from borrowed parts
/// (no [`Value`] for the params first). On an error `out` may hold part of
/// it.
pub(crate) fn encode_request<P: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    id: &RequestId,
    method: &str,
    params: Option<&P>,
) -> serde_json::Result<()> {
    // The envelope by hand, the method and params by serde_json: the same
    // bytes as serializing an `OutRequest`, without four escaped keys and a
    // map serializer per request.
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    match id.as_i64() {
        Some(n) => crate::write_json::write_i64(out, n),
        None => crate::write_json::write(out, id)?,
    }
    out.extend_from_slice(br#","method":"#);
    crate::write_json::write_string(out, method);
    if let Some(params) = params {
        out.extend_from_slice(br#","params":"#);
        crate::write_json::write(out, params)?;
    }
    out.push(b'}');
    Ok(())
}

/// Serializes a notification straight from borrowed parts.
pub(crate) fn encode_notification<P: Serialize + ?Sized>(
    method: &str,
    params: Option<&P>,
) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&OutNotification {
        jsonrpc: "2.0",
        method,
        params,
    })
}

/// Serializes a response to a server→client request.
pub(crate) fn encode_response(id: &RequestId, result: &Result<Value, ErrorObject>) -> Vec<u8> {
    let id = Some(id.clone());
    serde_json::to_vec(&OutResponse {
        jsonrpc: "2.0",
        id: &id,
        result: result.as_ref().ok(),
        error: result.as_ref().err(),
    })
    .expect("a JSON-RPC response always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(s: &str) -> Result<Message, ShapeError> {
        Message::parse_one(s.as_bytes())
    }

    #[test]
    fn numeric_and_string_ids_stay_distinct() {
        let a = RequestId::from(1);
        let b = RequestId::from("1");
        assert_ne!(a, b);
        assert_eq!(a.to_string(), "1");
        assert_eq!(b.to_string(), "\"1\"");
        assert_eq!(serde_json::to_string(&a).unwrap(), "1");
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"1\"");
    }

    #[test]
    fn messages_without_jsonrpc_member_are_classified_by_fields() {
        assert!(matches!(
            one(r#"{"id":0,"method":"item/commandExecution/requestApproval","params":{}}"#),
            Ok(Message::Request(r)) if r.id == RequestId::from(0)
        ));
        assert!(matches!(
            one(r#"{"method":"turn/started","params":{"x":1}}"#),
            Ok(Message::Notification(n)) if n.method == "turn/started"
        ));
        assert!(matches!(
            one(r#"{"id":"a","result":null}"#),
            Ok(Message::Response(Response {
                id: Some(_),
                result: Ok(Value::Null)
            }))
        ));
    }

    #[test]
    fn error_responses_keep_code_message_and_data() {
        let m = one(r#"{"error":{"code":-32600,"message":"Not initialized","data":[1]},"id":7}"#)
            .unwrap();
        let Message::Response(Response {
            id: Some(id),
            result: Err(e),
        }) = m
        else {
            panic!("not an error response: {m:?}")
        };
        assert_eq!(id, RequestId::from(7));
        assert_eq!(e.code, ErrorCode::INVALID_REQUEST);
        assert_eq!(e.message, "Not initialized");
        assert_eq!(e.data, Some(json!([1])));
    }

    #[test]
    fn error_with_null_id_is_an_unattributed_response() {
        let m =
            one(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#)
                .unwrap();
        assert!(matches!(
            m,
            Message::Response(Response {
                id: None,
                result: Err(_)
            })
        ));
    }

    #[test]
    fn shapeless_json_is_rejected_with_a_reason() {
        assert!(matches!(one("{}"), Err(ShapeError::NoShape(_))));
        assert!(matches!(one("[1"), Err(ShapeError::NotJson(_))));
        assert!(matches!(one("42"), Err(ShapeError::NoShape(_))));
        assert!(matches!(
            one(r#"{"id":1.5,"result":1}"#),
            Err(ShapeError::NoShape(_))
        ));
        assert!(matches!(
            one(r#"{"id":1,"result":1,"error":{"code":1,"message":""}}"#),
            Err(ShapeError::NoShape(_))
        ));
        assert!(matches!(
            one(r#"{"result":1}"#),
            Err(ShapeError::NoShape(_))
        ));
        assert!(matches!(
            one(r#"[7,"shutdown"]"#),
            Err(ShapeError::NoShape(_))
        ));
        assert!(matches!(
            one(r#"{"id":1,"error":[-32600,"Invalid request"]}"#),
            Err(ShapeError::NoShape(_))
        ));
        assert!(serde_json::from_str::<Message>(r#"[7,"shutdown"]"#).is_err());
    }

    #[test]
    fn batches_yield_each_element() {
        let items = Message::parse(br#"[{"method":"a"},{"id":1,"result":2},7]"#).unwrap();
        assert_eq!(items.len(), 3);
        assert!(matches!(items[0], Ok(Message::Notification(_))));
        assert!(matches!(items[1], Ok(Message::Response(_))));
        assert!(items[2].is_err());
        assert_eq!(Message::parse(b" []"), Err(ShapeError::EmptyBatch));
    }

    #[test]
    fn the_response_fast_path_agrees_with_the_general_parser() {
        let frames = [
            r#"{"id":1,"result":{"a":[1,2]}}"#,
            r#" {"jsonrpc":"2.0","result":null,"id":"x"}"#,
            r#"{"id":7,"error":{"code":-32600,"message":"no","data":[1]}}"#,
            r#"{"id":-3,"result":"s"}"#,
        ];
        for frame in frames {
            let bytes = Bytes::from(frame);
            let (id, result) = parse_response(&bytes).expect(frame);
            let Ok(Message::Response(Response {
                id: Some(want_id),
                result: want,
            })) = Message::parse_one(frame.as_bytes())
            else {
                panic!("{frame}: not a response to the general parser");
            };
            assert_eq!(id, want_id, "{frame}");
            match (result, want) {
                (Ok(raw), Ok(value)) => assert_eq!(raw.deserialize::<Value>().unwrap(), value),
                (Err(e), Err(want)) => assert_eq!(e, want),
                (got, want) => panic!("{frame}: {got:?} vs {want:?}"),
            }
        }
        // Everything else is left to the general parser, which rejects or
        // classifies it otherwise.
        let others = [
            r#"{"id":1,"method":"m"}"#,
            r#"{"id":1,"m\u0065thod":"m"}"#,
            r#"{"method":"m","params":{}}"#,
            r#"[{"id":1,"result":1}]"#,
            r#"{"id":null,"error":{"code":1,"message":""}}"#,
            r#"{"id":-0,"result":1}"#,
            r#"{"id":1e3,"result":1}"#,
            r#"{"id":1.5,"result":1}"#,
            r#"{"id":18446744073709551615,"result":1}"#,
            r#"{"id":[1],"result":1}"#,
            r#"{"id":1,"error":[-32600,"x"]}"#,
            r#"{"id":1,"result":1,"error":{"code":1,"message":""}}"#,
            r#"{"id":1}"#,
            r#"{"id":1,"result":1,"result":2}"#,
            r#"{"id":1,"result":tru}"#,
            r#"{"result":1}"#,
        ];
        for frame in others {
            assert!(parse_response(&Bytes::from(frame)).is_none(), "{frame}");
        }
    }

    #[test]
    fn a_request_is_encoded_as_its_struct_would_be() {
        let params = json!({"a": [1, "two\n"], "b": null});
        for id in [RequestId::from(7), RequestId::from("x\"y")] {
            for (method, params) in [("echo", Some(&params)), ("m/\u{1}é", None)] {
                let mut ours = Vec::new();
                encode_request(&mut ours, &id, method, params).unwrap();
                let theirs = serde_json::to_vec(&OutRequest {
                    jsonrpc: "2.0",
                    id: &id,
                    method,
                    params,
                })
                .unwrap();
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    String::from_utf8(theirs).unwrap()
                );
            }
        }
    }

    #[test]
    fn round_trip_adds_jsonrpc_and_keeps_everything_else() {
        let text = r#"{"id":"x","method":"m","params":{"a":[1,2]}}"#;
        let m = one(text).unwrap();
        let out = m.to_vec();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(Message::parse_one(&out).unwrap(), m);
    }
}
