//! JSON-RPC 2.0 messages, classified by their fields.
//!
//! Peers in the wild are loose: codex omits `"jsonrpc":"2.0"` on everything it
//! writes. A message is therefore classified by which of `id`, `method`,
//! `result` and `error` it carries, never by the `jsonrpc` member. Everything
//! this crate writes carries `"jsonrpc":"2.0"`.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
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
///
/// Its params stay the JSON text they were on the wire, undecoded, until
/// they are asked for: a server may send them by the hundred thousand a
/// second, and each subscriber wants its own type (or only some of them).
/// Read them as any type with [`params`](Self::params), as a [`Value`] with
/// `params::<Value>()`, or as text with [`params_json`](Self::params_json).
///
/// Read by the connection, the method and params are slices of the frame
/// they came in (shared, reference-counted bytes): a clone, one per matching
/// subscriber, copies nothing. Holding a notification holds the read buffer
/// its frame lies in (up to 32 KiB), unless it was copied out as it queued
/// behind a backlog; keep what you decoded instead when keeping many for
/// long.
///
/// ```
/// use jsonrpc_stdio::message::{Message, Notification};
/// use serde::Deserialize;
/// use serde_json::{json, Value};
///
/// let frame = br#"{"method":"turn/started","params":{"turn":{"id":"t1"},"extra":[1,2]}}"#;
/// let Ok(Message::Notification(n)) = Message::parse_one(frame) else { panic!() };
/// assert_eq!(n.method(), "turn/started");
///
/// // Into a type of your own: only what it names is read.
/// #[derive(Deserialize)]
/// struct TurnStarted<'a> { #[serde(borrow)] turn: Turn<'a> }
/// #[derive(Deserialize)]
/// struct Turn<'a> { id: &'a str }
/// assert_eq!(n.params::<TurnStarted>().unwrap().turn.id, "t1");
///
/// // Into a `Value`, or as the text the server wrote.
/// assert_eq!(n.params::<Value>().unwrap()["extra"], json!([1, 2]));
/// assert_eq!(n.params_json(), Some(r#"{"turn":{"id":"t1"},"extra":[1,2]}"#));
///
/// // Absent params read as `null`.
/// let bare = Notification::new("initialized", None);
/// assert_eq!(bare.params_json(), None);
/// assert_eq!(bare.params::<Option<u32>>().unwrap(), None);
/// ```
#[derive(Clone)]
pub struct Notification {
    /// UTF-8 text that holds the method (unescaped) and the params: the
    /// frame, or a buffer of the notification's own. One buffer, so a
    /// clone or a drop counts one reference, not two.
    text: Bytes,
    method: Range<usize>,
    /// JSON text of exactly one value, checked when it was read; `None`
    /// when the member was absent.
    params: Option<Range<usize>>,
}

impl Notification {
    /// A notification of `method` with `params` (`None`: no `params`
    /// member), e.g. to test a consumer or forward one.
    pub fn new(method: impl Into<String>, params: Option<Value>) -> Self {
        // A `Value` always serializes.
        let params = params.map(|p| p.to_string());
        Notification::own(&method.into(), params.as_deref())
    }

    /// A notification in a buffer of its own.
    fn own(method: &str, params: Option<&str>) -> Self {
        let mut text = BytesMut::with_capacity(method.len() + params.map_or(0, str::len));
        text.extend_from_slice(method.as_bytes());
        if let Some(params) = params {
            text.extend_from_slice(params.as_bytes());
        }
        Notification {
            text: text.freeze(),
            method: 0..method.len(),
            params: params.map(|p| method.len()..method.len() + p.len()),
        }
    }

    /// A notification whose method and params lie in `frame`, its text.
    fn in_frame(frame: &Bytes, method: &str, params: Option<&str>) -> Self {
        let offset = |part: &str| {
            let start = part.as_ptr() as usize - frame.as_ptr() as usize;
            start..start + part.len()
        };
        Notification {
            text: frame.clone(),
            method: offset(method),
            params: params.map(offset),
        }
    }

    /// The method, e.g. `turn/completed`.
    pub fn method(&self) -> &str {
        // Short: checking it again is cheaper than carrying a `String`.
        std::str::from_utf8(&self.text[self.method.clone()]).expect("a method is read as a str")
    }

    /// The method's bytes, unchecked: what subscribers are matched by.
    pub(crate) fn method_bytes(&self) -> &[u8] {
        &self.text[self.method.clone()]
    }

    fn params_slice(&self) -> Option<&[u8]> {
        self.params.clone().map(|range| &self.text[range])
    }

    /// Decodes the params into `T`, which may borrow from them (`&str`
    /// fields, `&RawValue`; as with any serde_json input, a `&str` cannot
    /// borrow a string with escapes: a `#[serde(borrow)] Cow<str>` can,
    /// copying only those).
    /// Absent params read as `null`: so `Option<T>` and `Value` accept
    /// them, a struct does not.
    ///
    /// The params were checked as JSON when the frame was read, but
    /// decoding can still fail: a type that does not fit, a number out of
    /// range for the type (or for an `f64`, in a `Value`), or a `Value`
    /// nested deeper than serde_json's limit of 128.
    pub fn params<'a, T: Deserialize<'a>>(&'a self) -> serde_json::Result<T> {
        serde_json::from_slice(self.params_slice().unwrap_or(b"null"))
    }

    /// The params as the JSON text the server wrote (whitespace included),
    /// or `None` when the member was absent.
    pub fn params_json(&self) -> Option<&str> {
        self.params_slice()
            .map(|p| std::str::from_utf8(p).expect("params are read as a str"))
    }

    /// The params' JSON text as bytes shared with the buffer they were read
    /// into (no copy), or `None` when the member was absent.
    pub fn params_bytes(&self) -> Option<Bytes> {
        self.params.clone().map(|range| self.text.slice(range))
    }

    /// The same notification in a buffer of its own, so that it no longer
    /// keeps the (larger) buffer it was read into.
    pub(crate) fn detached(self) -> Notification {
        Notification::own(self.method(), self.params_json())
    }
}

/// Equal when the methods are, and the params are the same JSON text but
/// for whitespace between tokens: `{"a": 1}` equals `{"a":1}`, but not
/// `{"a":1.0}`, nor the same members in another order.
impl PartialEq for Notification {
    fn eq(&self, other: &Self) -> bool {
        self.method() == other.method()
            && match (self.params_slice(), other.params_slice()) {
                (Some(a), Some(b)) => same_json_tokens(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl fmt::Debug for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notification")
            .field("method", &self.method())
            .field("params", &self.params_json().map(Json))
            .finish()
    }
}

/// Shows JSON text as itself, not as a quoted string.
struct Json<'a>(&'a str);

impl fmt::Debug for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Whether two JSON texts are the same tokens, whitespace between them
/// aside. Whitespace inside strings counts.
fn same_json_tokens(a: &[u8], b: &[u8]) -> bool {
    fn tokens(text: &[u8]) -> impl Iterator<Item = u8> + '_ {
        let (mut in_string, mut escaped) = (false, false);
        text.iter().copied().filter(move |&c| {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == b'\\' {
                    escaped = true;
                } else if c == b'"' {
                    in_string = false;
                }
                true
            } else {
                in_string = c == b'"';
                !matches!(c, b' ' | b'\t' | b'\n' | b'\r')
            }
        })
    }
    a == b || tokens(a).eq(tokens(b))
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

/// Every member a message is told apart by, borrowed from its text: nothing
/// is decoded before the kind of message is known, and a response's result
/// or a notification's params never are. The `present_*` readers keep
/// `"result": null` (a result) apart from no `result`, and `"id": null`
/// apart from no `id`.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(default, deserialize_with = "present_id")]
    id: Option<WireId>,
    /// A `null` method reads as absent.
    #[serde(default, borrow, deserialize_with = "method_name")]
    method: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "present_raw")]
    params: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present_raw")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present_raw")]
    error: Option<&'a RawValue>,
}

fn present_raw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

fn present_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<WireId>, D::Error> {
    WireId::deserialize(d).map(Some)
}

/// A method borrowed from the frame unless it has escapes; `null` is none.
fn method_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Visitor;
    impl<'de> de::Visitor<'de> for Visitor {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a method name")
        }
        fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(s)))
        }
        fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(s.to_owned())))
        }
        fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(s)))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(Visitor)
}

/// An id read in place, without a [`RawValue`] and a second parse.
enum WireId {
    Number(i64),
    String(String),
    Null,
    /// A number that is no `i64`: a float such as `1e3` or `-0`, or too large.
    NotInteger,
    /// A boolean, array or object.
    Other,
}

impl WireId {
    /// The id, `None` for `null`, or why it is none.
    fn into_request_id(self) -> Result<Option<RequestId>, ShapeError> {
        match self {
            WireId::Number(n) => Ok(Some(RequestId::from(n))),
            WireId::String(s) => Ok(Some(RequestId::from(s))),
            WireId::Null => Ok(None),
            WireId::NotInteger => Err(ShapeError::NoShape("id is not an integer")),
            WireId::Other => Err(ShapeError::NoShape("id is neither a number nor a string")),
        }
    }
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
                Ok(i64::try_from(n).map_or(WireId::NotInteger, WireId::Number))
            }
            fn visit_f64<E>(self, _: f64) -> Result<WireId, E> {
                Ok(WireId::NotInteger)
            }
            fn visit_str<E>(self, s: &str) -> Result<WireId, E> {
                Ok(WireId::String(s.to_owned()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<WireId, E> {
                Ok(WireId::Other)
            }
            fn visit_unit<E>(self) -> Result<WireId, E> {
                Ok(WireId::Null)
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

/// A message as the reader routes it: a response's result and a
/// notification's method and params still bytes of the frame.
pub(crate) enum Incoming {
    Request(Request),
    Notification(Notification),
    Response {
        /// `None`: an error the server could not attribute (`"id": null`).
        id: Option<RequestId>,
        result: Result<ResultText, ErrorObject>,
    },
}

impl Incoming {
    /// The message read from `text` (which this was read from).
    fn into_message(self, text: &str) -> Result<Message, ShapeError> {
        Ok(match self {
            Incoming::Request(r) => Message::Request(r),
            Incoming::Notification(n) => Message::Notification(n),
            Incoming::Response { id, result } => Message::Response(Response {
                id,
                result: match result {
                    Ok(result) => match serde_json::from_slice(&result.bytes) {
                        Ok(value) => Ok(value),
                        // Not one value: read whole, the frame says what
                        // it is (maybe a message with a member after the
                        // result), or what is wrong with it.
                        Err(_) if result.unchecked.is_some() => {
                            return read_wire(text, None)?.into_message(text)
                        }
                        Err(e) => return Err(ShapeError::NotJson(e.to_string())),
                    },
                    Err(e) => Err(e),
                },
            }),
        })
    }
}

/// The two envelopes most frames are, member for member as servers write
/// them (`"jsonrpc"` optional: codex omits it): a notification
/// `{"jsonrpc":"2.0","method":"M","params":P}` with an unescaped method,
/// and a response `{"jsonrpc":"2.0","id":N,"result":R}` with a plain
/// integer id. Matched by their bytes, so that serde_json reads only the
/// params (checked as one JSON value, and kept as text); the envelope read
/// through [`Wire`] cost as much again. The result is not read at all: it is
/// whatever follows `"result":`, a [`ResultText`] checked by whoever takes
/// it, which reads the frame through [`Wire`] when it is no single value
/// (another member may follow it). Anything else, or any doubt, is `None`,
/// and [`read_object`] reads it through [`Wire`], which classifies these two
/// the same (unit-tested).
fn read_plain(text: &str, frame: Option<&Bytes>) -> Option<Incoming> {
    let members = text.trim_ascii().strip_prefix('{')?.strip_suffix('}')?;
    let members = members
        .strip_prefix(r#""jsonrpc":"2.0","#)
        .unwrap_or(members);
    if let Some(rest) = members.strip_prefix(r#""method":""#) {
        let (method, rest) = rest.split_once('"')?;
        // An escape (or a raw control character, which is no JSON) leaves
        // it to serde_json.
        if method.bytes().any(|b| b == b'\\' || b < 0x20) {
            return None;
        }
        let params = rest.strip_prefix(r#","params":"#)?;
        // Exactly one value: anything after it (another member) fails.
        let params = serde_json::from_str::<&RawValue>(params).ok()?.get();
        return Some(Incoming::Notification(match frame {
            Some(frame) => Notification::in_frame(frame, method, Some(params)),
            None => Notification::own(method, Some(params)),
        }));
    }
    let rest = members.strip_prefix(r#""id":"#)?;
    let (id, rest) = rest.split_once(',')?;
    let id = plain_integer(id)?;
    // JSON's whitespace only: anything else around it is for the check.
    let result = rest
        .strip_prefix(r#""result":"#)?
        .trim_matches([' ', '\t', '\n', '\r']);
    if result.is_empty() {
        return None;
    }
    // The frame goes with it, to be read whole if the result turns out to
    // be no single value (maybe a member after it); without one (a parse),
    // a copy of the text.
    let frame = match frame {
        Some(frame) => frame.clone(),
        None => Bytes::copy_from_slice(text.as_bytes()),
    };
    let start = result.as_ptr() as usize - text.as_ptr() as usize;
    Some(Incoming::Response {
        id: Some(RequestId::from(id)),
        result: Ok(ResultText {
            bytes: frame.slice(start..start + result.len()),
            unchecked: Some(frame),
        }),
    })
}

/// An id that is plainly an `i64`: `0`, or up to 18 digits not starting
/// with `0`, maybe negative. serde_json reads `-0` as a float, so not that.
fn plain_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let plain = digits == "0" && digits.len() == text.len()
        || (1..=18).contains(&digits.len())
            && !digits.starts_with('0')
            && digits.bytes().all(|b| b.is_ascii_digit());
    if plain {
        text.parse().ok()
    } else {
        None
    }
}

/// Classifies the JSON object `text` by its members, in one pass over it
/// (by its bytes for the common envelopes, [`read_plain`], else through
/// [`Wire`]). What the message keeps of it (a response's result, a
/// notification's method and params) is sliced from `frame`, which `text`
/// must be (the frame, checked as UTF-8), or copied when there is no frame.
/// The one classifier: [`Message::parse`] goes through it too.
pub(crate) fn read_object(text: &str, frame: Option<&Bytes>) -> Result<Incoming, ShapeError> {
    match read_plain(text, frame) {
        Some(incoming) => Ok(incoming),
        None => read_wire(text, frame),
    }
}

/// [`read_object`] for any object, through [`Wire`].
fn read_wire(text: &str, frame: Option<&Bytes>) -> Result<Incoming, ShapeError> {
    let share = |part: &str| match frame {
        Some(frame) => frame.slice_ref(part.as_bytes()),
        None => Bytes::copy_from_slice(part.as_bytes()),
    };
    debug_assert!(frame.map_or(true, |frame| frame.as_ptr() == text.as_ptr()));
    let wire: Wire<'_> = serde_json::from_str(text).map_err(|e| {
        if e.is_data() {
            ShapeError::NoShape("not an object of JSON-RPC members")
        } else {
            ShapeError::NotJson(e.to_string())
        }
    })?;
    match (wire.method, wire.id) {
        (Some(method), Some(id)) => {
            let id = id
                .into_request_id()?
                .ok_or(ShapeError::NoShape("request with a null id"))?;
            let params = match wire.params {
                Some(params) => Some(
                    serde_json::from_str(params.get())
                        .map_err(|e| ShapeError::NotJson(e.to_string()))?,
                ),
                None => None,
            };
            Ok(Incoming::Request(Request {
                id,
                method: method.into_owned(),
                params,
            }))
        }
        (Some(method), None) => {
            let params = wire.params.map(RawValue::get);
            Ok(Incoming::Notification(match (frame, method) {
                (Some(frame), Cow::Borrowed(method)) => {
                    Notification::in_frame(frame, method, params)
                }
                // Unescaped, the method is no longer in the frame.
                (_, method) => Notification::own(&method, params),
            }))
        }
        (None, id) => {
            let id = match id {
                Some(id) => id.into_request_id()?,
                None => None,
            };
            let result = match (wire.result, wire.error) {
                (Some(result), None) => Ok(ResultText {
                    bytes: share(result.get()),
                    unchecked: None,
                }),
                // Checked first: serde would also fill the struct from
                // an array, field by field (found by the fuzzer).
                (None, Some(error)) if !error.get().starts_with('{') => {
                    return Err(ShapeError::NoShape("error member is not an object"))
                }
                (None, Some(error)) => Err(error_object(error.get())?),
                (Some(_), Some(_)) => return Err(ShapeError::NoShape("both result and error")),
                (None, None) => return Err(ShapeError::NoShape("no method, result or error")),
            };
            if id.is_none() && result.is_ok() {
                return Err(ShapeError::NoShape("result without an id"));
            }
            Ok(Incoming::Response { id, result })
        }
    }
}

/// Reads an `error` member's object. One with a repeated member is read as
/// a `Value` first, whose last one wins, as it always was.
fn error_object(text: &str) -> Result<ErrorObject, ShapeError> {
    serde_json::from_str(text)
        .or_else(|_| serde_json::from_str::<Value>(text).and_then(serde_json::from_value))
        .map_err(|_| ShapeError::NoShape("malformed error object"))
}

impl Message {
    /// Classifies one JSON object (not a batch).
    pub fn from_value(value: Value) -> Result<Message, ShapeError> {
        if !value.is_object() {
            return Err(ShapeError::NoShape("not an object"));
        }
        // Through its text, by the classifier frames go through.
        let text = value.to_string();
        read_object(&text, None)?.into_message(&text)
    }

    /// Parses one frame: a single message or a batch array.
    ///
    /// A batch yields one entry per element, each classified on its own, so
    /// one bad element does not hide the good ones.
    ///
    /// A notification's method and params are copied out of `bytes` (the
    /// connection's reader shares them with its frame instead).
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
        let text = std::str::from_utf8(bytes)
            .map_err(|e| ShapeError::NotJson(format!("invalid UTF-8: {e}")))?;
        read_object(text, None)?.into_message(text)
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
/// Always one complete JSON value (checked before the caller gets it).
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
}

/// A response's result as the reader leaves it for its caller: the frame's
/// bytes after `"result":`. Read through [`Wire`], it was checked as one
/// JSON value on the way; matched by its bytes ([`read_plain`]), it was not,
/// and it is checked by whoever takes it: decoding it into a type reads it
/// anyway, so a large result is read once, not twice (once by the reader to
/// check it, once by its caller to decode it).
#[derive(Debug)]
pub(crate) struct ResultText {
    bytes: Bytes,
    /// `None` once checked. Else the frame it was cut from: a result that
    /// is no single JSON value may be the byte match misreading a frame
    /// with a member after the result (`{"id":1,"result":2,"jsonrpc":"2.0"}`),
    /// so the frame is then read whole.
    unchecked: Option<Bytes>,
}

/// Why a result could not be taken.
#[derive(Debug)]
pub(crate) enum Misread {
    /// It is JSON, but not of the type asked for.
    Decode(serde_json::Error),
    /// The response it came in is no JSON, or no JSON-RPC response.
    Malformed(serde_json::Error),
}

impl ResultText {
    /// A [`RawResult`], checked to be one JSON value.
    pub(crate) fn into_raw(self) -> Result<RawResult, Misread> {
        if self.unchecked.is_none() {
            return Ok(RawResult(self.bytes));
        }
        // Skipped, not kept: a `RawValue` would check its UTF-8 again.
        self.read(|bytes| {
            serde_json::from_slice::<de::IgnoredAny>(bytes)?;
            Ok(RawResult(bytes.clone()))
        })
    }

    /// Decodes the result into `T`, which checks it is one JSON value.
    pub(crate) fn deserialize<T: de::DeserializeOwned>(&self) -> Result<T, Misread> {
        self.read(|bytes| serde_json::from_slice(bytes))
    }

    /// `read` applied to the result; to the one its frame holds, read
    /// whole, when an unchecked result is no JSON value.
    fn read<T>(&self, read: impl Fn(&Bytes) -> serde_json::Result<T>) -> Result<T, Misread> {
        let error = match read(&self.bytes) {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let Some(frame) = self
            .unchecked
            .as_ref()
            .filter(|_| error.is_syntax() || error.is_eof())
        else {
            return Err(Misread::Decode(error));
        };
        let malformed = |why: &dyn fmt::Display| {
            Misread::Malformed(de::Error::custom(format_args!("malformed response: {why}")))
        };
        // The frame was checked as UTF-8 before it was matched.
        let text = std::str::from_utf8(frame).map_err(|e| malformed(&e))?;
        match read_wire(text, Some(frame)) {
            Ok(Incoming::Response {
                result: Ok(result), ..
            }) => read(&result.bytes).map_err(Misread::Decode),
            Ok(_) => Err(malformed(&"it is a request or notification too")),
            Err(ShapeError::NotJson(_)) => Err(Misread::Malformed(error)),
            Err(shape) => Err(malformed(&shape)),
        }
    }

    #[cfg(test)]
    pub(crate) fn from_value(value: &Value) -> ResultText {
        // A `Value` always serializes.
        ResultText {
            bytes: Bytes::from(serde_json::to_vec(value).expect("a JSON value always serializes")),
            unchecked: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for RawResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawResult({})", String::from_utf8_lossy(&self.0))
    }
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
            Message::Notification(n) => {
                let params = n
                    .params_json()
                    .map(one_line)
                    .transpose()
                    .map_err(serde::ser::Error::custom)?;
                OutNotification {
                    jsonrpc: "2.0",
                    method: n.method(),
                    params: params.as_deref(),
                }
                .serialize(s)
            }
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

/// The JSON text `text` as written, on one line: a line break in JSON text
/// lies between tokens (within a string it is escaped), so it is made a
/// space, and a message stays one line of the newline-delimited framing.
fn one_line(text: &str) -> serde_json::Result<Box<RawValue>> {
    RawValue::from_string(text.replace(['\n', '\r'], " "))
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
    encode_call(out, Some(id), method, params)
}

/// As [`encode_request`], for a notification.
pub(crate) fn encode_notification<P: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    method: &str,
    params: Option<&P>,
) -> serde_json::Result<()> {
    encode_call(out, None, method, params)
}

/// A request (with an id) or a notification. The envelope by hand, the
/// method and params by [`write_json`](crate::write_json): the same bytes as
/// serializing an `OutRequest` or `OutNotification`, without escaping four
/// keys and running a map serializer per message.
fn encode_call<P: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    id: Option<&RequestId>,
    method: &str,
    params: Option<&P>,
) -> serde_json::Result<()> {
    out.extend_from_slice(br#"{"jsonrpc":"2.0","#);
    if let Some(id) = id {
        out.extend_from_slice(br#""id":"#);
        crate::write_json::write(out, id)?;
        out.push(b',');
    }
    out.extend_from_slice(br#""method":"#);
    crate::write_json::write_str(out, method);
    if let Some(params) = params {
        out.extend_from_slice(br#","params":"#);
        crate::write_json::write(out, params)?;
    }
    out.push(b'}');
    Ok(())
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
            Ok(Message::Notification(n)) if n.method() == "turn/started"
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

    /// What the reader routes, read from a frame it shares.
    fn read(frame: &str) -> (Bytes, Result<Incoming, ShapeError>) {
        let bytes = Bytes::copy_from_slice(frame.as_bytes());
        let text = std::str::from_utf8(&bytes).unwrap();
        let incoming = read_object(text, Some(&bytes));
        (bytes.clone(), incoming)
    }

    fn within(part: &[u8], frame: &[u8]) -> bool {
        frame.as_ptr_range().contains(&part.as_ptr()) && part.len() <= frame.len()
    }

    #[test]
    fn a_response_read_by_the_reader_is_a_slice_of_its_frame_and_agrees_with_parse() {
        let frames = [
            r#"{"id":1,"result":{"a":[1,2]}}"#,
            r#" {"jsonrpc":"2.0","result":null,"id":"x"}"#,
            r#"{"id":7,"error":{"code":-32600,"message":"no","data":[1]}}"#,
            r#"{"id":7,"error":{"code":1,"code":-32600,"message":"no"}}"#,
            r#"{"id":-3,"result":"s"}"#,
        ];
        for frame in frames {
            let (bytes, incoming) = read(frame);
            let Ok(Incoming::Response {
                id: Some(id),
                result,
            }) = incoming
            else {
                panic!("{frame}: not a response");
            };
            let Ok(Message::Response(Response {
                id: Some(want_id),
                result: want,
            })) = Message::parse_one(frame.as_bytes())
            else {
                panic!("{frame}: not a response to parse_one");
            };
            assert_eq!(id, want_id, "{frame}");
            match (result, want) {
                (Ok(text), Ok(value)) => {
                    assert!(within(text.as_bytes(), &bytes), "{frame}: result copied");
                    assert_eq!(text.deserialize::<Value>().unwrap(), value);
                    let raw = text.into_raw().unwrap();
                    assert!(within(raw.as_bytes(), &bytes), "{frame}: result copied");
                    assert_eq!(raw.deserialize::<Value>().unwrap(), value);
                }
                (Err(e), Err(want)) => assert_eq!(e, want),
                (got, want) => panic!("{frame}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn the_plain_envelopes_read_by_their_bytes_agree_with_the_struct() {
        let plain = [
            r#"{"jsonrpc":"2.0","method":"echo/event","params":{"data":"x\"}","n":1}}"#,
            r#"{"method":"a/b","params":[1, 2] }"#,
            " {\"method\":\"\u{e9}\",\"params\":null}\r\t",
            r#"{"jsonrpc":"2.0","id":0,"result":null}"#,
            r#"{"id":-5,"result":{"a":"}"}}"#,
            r#"{"jsonrpc":"2.0","id":123456789012345678,"result":"s"}"#,
            "{\"id\":2,\"result\": [1, 2]\r\n }",
        ];
        for frame in plain {
            let bytes = Bytes::copy_from_slice(frame.as_bytes());
            let text = std::str::from_utf8(&bytes).unwrap();
            let fast = read_plain(text, Some(&bytes)).expect(frame);
            let slow = read_wire(text, Some(&bytes)).expect(frame);
            match (fast, slow) {
                (Incoming::Notification(fast), Incoming::Notification(slow)) => {
                    assert_eq!(fast.method(), slow.method(), "{frame}");
                    assert_eq!(fast.params_json(), slow.params_json(), "{frame}");
                    assert!(within(&fast.params_bytes().unwrap(), &bytes));
                }
                (
                    Incoming::Response {
                        id: Some(fast_id),
                        result: Ok(fast),
                    },
                    Incoming::Response {
                        id: Some(slow_id),
                        result: Ok(slow),
                    },
                ) => {
                    assert_eq!(fast_id, slow_id, "{frame}");
                    assert!(
                        fast.unchecked.is_some() && slow.unchecked.is_none(),
                        "{frame}"
                    );
                    let (fast, slow) = (fast.into_raw().unwrap(), slow.into_raw().unwrap());
                    assert_eq!(fast, slow, "{frame}");
                    assert!(within(fast.as_bytes(), &bytes));
                }
                _ => panic!("{frame}: classified otherwise"),
            }
            // Without a frame to share, the same message.
            assert_eq!(
                read_plain(text, None).unwrap().into_message(text),
                read_wire(text, None).unwrap().into_message(text),
                "{frame}"
            );
        }
        // Anything else, or any doubt, is left to the struct.
        let others = [
            r#"{"method":"a\/b","params":1}"#,
            "{\"method\":\"a\u{1}\",\"params\":1}",
            r#"{"jsonrpc":"2.0","method":"m","params":1,"id":3}"#,
            r#"{"method":"m","params":1,"params":2}"#,
            r#"{"method":"m","params":{}"#,
            r#"{"jsonrpc":"2.0","method":"m"}"#,
            r#"{"jsonrpc":"2.0","method":"m","params":tru}"#,
            r#"{"id":-0,"result":1}"#,
            r#"{"id":01,"result":1}"#,
            r#"{"id":-,"result":1}"#,
            r#"{"id":1234567890123456789,"result":1}"#,
            r#"{"id":"1","result":1}"#,
            r#"{"id":1,"result": }"#,
            r#"{"id": 1,"result":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":""}}"#,
        ];
        for frame in others {
            assert!(read_plain(frame, None).is_none(), "{frame}");
        }
    }

    #[test]
    fn a_plain_response_whose_result_is_not_one_value_fails_its_check_and_parse_says_why() {
        let frames = [
            (
                r#"{"id":1,"result":1,"error":{"code":1,"message":""}}"#,
                ShapeError::NoShape("both result and error"),
            ),
            (
                r#"{"id":1,"result":1}}"#,
                ShapeError::NotJson(String::new()),
            ),
            (
                r#"{"id":1,"result":[1,}"#,
                ShapeError::NotJson(String::new()),
            ),
            (
                r#"{"id":1,"result":"a\x"}"#,
                ShapeError::NotJson(String::new()),
            ),
            // A form feed is no JSON whitespace.
            (
                "{\"id\":1,\"result\":1\u{c}}",
                ShapeError::NotJson(String::new()),
            ),
        ];
        for (frame, want) in frames {
            // The reader hands it on unread: its caller's check fails.
            let Some(Incoming::Response {
                id: Some(id),
                result: Ok(text),
            }) = read_plain(frame, None)
            else {
                panic!("{frame}: not read by its bytes");
            };
            assert_eq!(id, RequestId::from(1));
            let malformed = |e: Misread| match e {
                Misread::Malformed(e) => e.to_string(),
                other => panic!("{frame}: {other:?}"),
            };
            let said = malformed(text.deserialize::<Value>().unwrap_err());
            if let ShapeError::NoShape(why) = &want {
                assert!(said.contains(why), "{frame}: {said}");
            }
            assert_eq!(malformed(text.into_raw().unwrap_err()), said, "{frame}");
            // Parsed, the frame is read whole, and the error is the frame's.
            match (one(frame), want) {
                (Err(ShapeError::NotJson(_)), ShapeError::NotJson(_)) => {}
                (got, want) => assert_eq!(got, Err(want), "{frame}"),
            }
        }
    }

    #[test]
    fn a_plain_looking_response_with_a_member_after_the_result_is_read_whole() {
        for (frame, want) in [
            (r#"{"id":1,"result":{"x":1},"jsonrpc":"2.0"}"#, r#"{"x":1}"#),
            (
                r#"{"jsonrpc":"2.0","id":1,"result":[1, 2] ,"extra":{}}"#,
                "[1, 2]",
            ),
        ] {
            let bytes = Bytes::copy_from_slice(frame.as_bytes());
            let Some(Incoming::Response {
                result: Ok(text), ..
            }) = read_plain(frame, Some(&bytes))
            else {
                panic!("{frame}: not read by its bytes");
            };
            let value = serde_json::from_str::<Value>(want).unwrap();
            assert_eq!(text.deserialize::<Value>().unwrap(), value, "{frame}");
            let raw = text.into_raw().unwrap();
            assert_eq!(raw.as_bytes(), want.as_bytes(), "{frame}");
            assert!(within(raw.as_bytes(), &bytes), "{frame}: result copied");
            assert!(
                matches!(one(frame), Ok(Message::Response(r)) if r.result == Ok(value)),
                "{frame}"
            );
        }
        // A response that is a request too answers its caller with why.
        let frame = r#"{"id":1,"result":null,"method":"m","params":{}}"#;
        let Some(Incoming::Response {
            result: Ok(text), ..
        }) = read_plain(frame, None)
        else {
            panic!("{frame}: not read by its bytes");
        };
        let Err(Misread::Malformed(e)) = text.deserialize::<Value>() else {
            panic!("{frame}: taken");
        };
        assert!(
            e.to_string().contains("a request or notification too"),
            "{e}"
        );
    }

    #[test]
    fn odd_ids_and_shapes_are_told_apart() {
        assert!(matches!(
            one(r#"{"id":1,"m\u0065thod":"m"}"#),
            Ok(Message::Request(r)) if r.method == "m" && r.params.is_none()
        ));
        assert!(matches!(
            one(r#"{"method":"m","id":null}"#),
            Err(ShapeError::NoShape("request with a null id"))
        ));
        assert!(matches!(
            one(r#"{"method":null,"params":1}"#),
            Err(ShapeError::NoShape("no method, result or error"))
        ));
        for id in ["-0", "1e3", "1.5", "18446744073709551615"] {
            assert_eq!(
                one(&format!(r#"{{"id":{id},"result":1}}"#)),
                Err(ShapeError::NoShape("id is not an integer")),
                "{id}"
            );
        }
        for id in ["[1]", "true", "{}"] {
            assert_eq!(
                one(&format!(r#"{{"id":{id},"result":1}}"#)),
                Err(ShapeError::NoShape("id is neither a number nor a string")),
                "{id}"
            );
        }
        for frame in [
            r#"{"id":1,"result":1,"result":2}"#,
            r#"{"id":1,"method":5}"#,
        ] {
            assert_eq!(
                one(frame),
                Err(ShapeError::NoShape("not an object of JSON-RPC members")),
                "{frame}"
            );
        }
        assert!(matches!(
            one(r#"{"id":1,"result":tru}"#),
            Err(ShapeError::NotJson(_))
        ));
        assert!(matches!(
            Message::parse_one(b"{\"method\":\"m\",\"x\":\"\xff\"}"),
            Err(ShapeError::NotJson(e)) if e.contains("UTF-8")
        ));
    }

    #[test]
    fn a_notification_keeps_its_params_as_text_shared_with_the_frame() {
        let frame = r#"{"method":"turn/started","params": {"a" : [1, 2.50], "s":"x y"} }"#;
        let (bytes, incoming) = read(frame);
        let Ok(Incoming::Notification(n)) = incoming else {
            panic!("not a notification");
        };
        assert_eq!(n.method(), "turn/started");
        assert_eq!(n.params_json(), Some(r#"{"a" : [1, 2.50], "s":"x y"}"#));
        assert!(within(&n.params_bytes().unwrap(), &bytes));
        assert!(within(n.method().as_bytes(), &bytes));
        assert_eq!(
            n.params::<Value>().unwrap(),
            json!({"a": [1, 2.5], "s": "x y"})
        );
        // A clone and a detached copy: the same notification.
        let clone = n.clone();
        assert_eq!(
            clone.params_bytes().unwrap().as_ptr(),
            n.params_bytes().unwrap().as_ptr()
        );
        let detached = n.clone().detached();
        assert!(!within(&detached.params_bytes().unwrap(), &bytes));
        assert!(!within(detached.method().as_bytes(), &bytes));
        assert_eq!(detached, n);
        assert_eq!(format!("{detached:?}"), format!("{n:?}"));
        // Equal whatever the whitespace between tokens; not otherwise.
        let compact = Notification::new("turn/started", Some(json!({"a": [1, 2.50], "s": "x y"})));
        assert_ne!(compact, n, "2.5 is not 2.50");
        let same = one(r#"{"params":{"a":[1,2.50],"s":"x y"},"method":"turn/started"}"#).unwrap();
        assert_eq!(same, Message::Notification(n.clone()));
        let other_string = one(r#"{"method":"turn/started","params":{"a":[1,2.50],"s":"xy"}}"#);
        assert_ne!(other_string.unwrap(), Message::Notification(n));
    }

    #[test]
    fn a_notification_method_with_escapes_and_params_absent_or_null() {
        let (_, incoming) = read(r#"{"method":"a\/b"}"#);
        let Ok(Incoming::Notification(n)) = incoming else {
            panic!("not a notification");
        };
        assert_eq!(n.method(), "a/b");
        assert_eq!(n.params_json(), None);
        assert_eq!(n.params::<Value>().unwrap(), Value::Null);
        assert!(n.params::<Vec<u8>>().is_err());
        let Ok(Message::Notification(null)) = one(r#"{"method":"a/b","params":null}"#) else {
            panic!("not a notification");
        };
        assert_eq!(null.params_json(), Some("null"));
        assert_ne!(null, n, "null params are not absent params");
    }

    #[test]
    fn params_no_value_holds_are_delivered_and_fail_only_when_read() {
        let deep = format!(
            r#"{{"method":"m","params":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        for frame in [r#"{"method":"m","params":1e400}"#, deep.as_str()] {
            let Ok(Message::Notification(n)) = one(frame) else {
                panic!("{frame}: not a notification");
            };
            assert!(n.params::<Value>().is_err(), "{frame}");
            assert!(n.params::<de::IgnoredAny>().is_ok(), "{frame}");
            let out = Message::Notification(n.clone()).to_vec();
            assert_eq!(Message::parse_one(&out), Ok(Message::Notification(n)));
        }
    }

    #[test]
    fn a_notification_is_written_on_one_line() {
        let frame = "{\"method\":\"m\",\"params\":[1,\r\n 2, \"a b\"]}";
        let m = one(frame).unwrap();
        let out = m.to_vec();
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            r#"{"jsonrpc":"2.0","method":"m","params":[1,   2, "a b"]}"#
        );
        assert_eq!(Message::parse_one(&out).unwrap(), m);
    }

    #[test]
    fn requests_and_notifications_are_encoded_as_their_structs_would_be() {
        let params = json!({"a": [1, "two\n"], "b": null});
        for id in [RequestId::from(7), RequestId::from("x\"y")] {
            for (method, params) in [("echo", Some(&params)), ("m/\u{1}é", None)] {
                let mut request = Vec::new();
                encode_request(&mut request, &id, method, params).unwrap();
                let mut notification = Vec::new();
                encode_notification(&mut notification, method, params).unwrap();
                for (ours, theirs) in [
                    (
                        request,
                        serde_json::to_vec(&OutRequest {
                            jsonrpc: "2.0",
                            id: &id,
                            method,
                            params,
                        }),
                    ),
                    (
                        notification,
                        serde_json::to_vec(&OutNotification {
                            jsonrpc: "2.0",
                            method,
                            params,
                        }),
                    ),
                ] {
                    assert_eq!(
                        String::from_utf8(ours).unwrap(),
                        String::from_utf8(theirs.unwrap()).unwrap()
                    );
                }
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
