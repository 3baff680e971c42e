//! The two A2A wire versions: what their requests say, and how the
//! service's [`model`](crate::model) looks in each.
//!
//! Both versions are served at the same URL; a request's method name tells
//! which one it speaks (`SendMessage` is 1.0, `message/send` is 0.3), so no
//! header is needed. Requests are read into the version-free types below;
//! answers are written by one writer ([`write`](mod@write)) over each version's
//! spelling, with what differs in shape in [`v1`] and [`v03`].

pub mod v03;
pub mod v1;
pub mod write;

use serde_json::{Map, Value};

use crate::model::{Artifact, Message, Part, Role, Task, TaskState, TaskStatus};
use crate::rpc::RpcError;

/// Which protocol version a call speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// A2A 1.0: PascalCase methods, proto-JSON (`ROLE_USER`, `TASK_STATE_COMPLETED`).
    V1,
    /// A2A 0.3: slash methods, `kind`-tagged JSON (`"kind": "task"`, `completed`).
    V03,
}

/// The operations both versions share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `SendMessage` / `message/send`.
    Send,
    /// `SendStreamingMessage` / `message/stream`.
    Stream,
    /// `GetTask` / `tasks/get`.
    Get,
    /// `ListTasks` (1.0 only).
    List,
    /// `CancelTask` / `tasks/cancel`.
    Cancel,
    /// `SubscribeToTask` / `tasks/resubscribe`.
    Subscribe,
    /// Push notification configs, which this agent does not offer.
    PushConfig,
    /// `GetExtendedAgentCard` / `agent/getAuthenticatedExtendedCard`.
    ExtendedCard,
}

/// The version and operation of a method name, or `None` if neither
/// version has it.
pub fn method(name: &str) -> Option<(Version, Method)> {
    use Method::*;
    use Version::*;
    Some(match name {
        "SendMessage" => (V1, Send),
        "SendStreamingMessage" => (V1, Stream),
        "GetTask" => (V1, Get),
        "ListTasks" => (V1, List),
        "CancelTask" => (V1, Cancel),
        "SubscribeToTask" => (V1, Subscribe),
        "CreateTaskPushNotificationConfig"
        | "GetTaskPushNotificationConfig"
        | "ListTaskPushNotificationConfigs"
        | "DeleteTaskPushNotificationConfig" => (V1, PushConfig),
        "GetExtendedAgentCard" => (V1, ExtendedCard),
        "message/send" => (V03, Send),
        "message/stream" => (V03, Stream),
        "tasks/get" => (V03, Get),
        "tasks/cancel" => (V03, Cancel),
        "tasks/resubscribe" => (V03, Subscribe),
        "tasks/pushNotificationConfig/set"
        | "tasks/pushNotificationConfig/get"
        | "tasks/pushNotificationConfig/list"
        | "tasks/pushNotificationConfig/delete" => (V03, PushConfig),
        "agent/getAuthenticatedExtendedCard" => (V03, ExtendedCard),
        _ => return None,
    })
}

/// A send (`SendMessage`, `message/send` and their streaming forms).
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    /// The client's message (role user).
    pub message: Message,
    /// Answer at once instead of when the task settles.
    pub return_immediately: bool,
    /// How many history messages the answer carries.
    pub history_length: Option<usize>,
}

/// `GetTask`, `CancelTask`, `SubscribeToTask` and their 0.3 forms.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskQuery {
    /// The task id.
    pub id: String,
    /// How many history messages the answer carries.
    pub history_length: Option<usize>,
}

/// `ListTasks`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListQuery {
    /// Only this context's tasks.
    pub context_id: Option<String>,
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// At most this many (default 50, at most 100).
    pub page_size: usize,
    /// Where the previous page ended.
    pub page_token: Option<String>,
    /// History messages per task (default 0 in a list).
    pub history_length: Option<usize>,
    /// Whether tasks carry their artifacts.
    pub include_artifacts: bool,
}

/// One event of a task's stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The task as it is now (the first event of a stream).
    Task(Task),
    /// A new status.
    Status {
        /// The task.
        task_id: String,
        /// Its context.
        context_id: String,
        /// The status.
        status: TaskStatus,
        /// The last event of this stream (0.3's `final`).
        last: bool,
    },
    /// A piece of an artifact.
    Artifact {
        /// The task.
        task_id: String,
        /// Its context.
        context_id: String,
        /// The artifact (or the chunk of it).
        artifact: Artifact,
        /// Append to what came before under the same artifact id.
        append: bool,
        /// The artifact is complete.
        last_chunk: bool,
    },
}

/// The params object of a call (always an object: `rpc::parse_request` sees to it).
pub(crate) fn params(value: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    value
        .as_object()
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// A required non-empty string member.
pub(crate) fn required_str(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<String, RpcError> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(RpcError::invalid_params(path, "must not be empty")),
        Some(other) => Err(RpcError::invalid_params(
            path,
            format!("must be a string, not {}", kind_of(other)),
        )),
        None => Err(RpcError::invalid_params(path, "is required")),
    }
}

/// The longest id (task, context, message) accepted.
pub const MAX_ID_LEN: usize = 256;

fn check_id(id: String, path: &str) -> Result<String, RpcError> {
    if id.len() > MAX_ID_LEN {
        return Err(RpcError::invalid_params(
            path,
            format!("an id is at most {MAX_ID_LEN} bytes, not {}", id.len()),
        ));
    }
    Ok(id)
}

/// A required id member.
pub(crate) fn required_id(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<String, RpcError> {
    check_id(required_str(obj, key, path)?, path)
}

/// An optional id member.
pub(crate) fn optional_id(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, RpcError> {
    optional_str(obj, key, path)?
        .map(|id| check_id(id, path))
        .transpose()
}

/// An optional string member (empty counts as absent, as in proto3).
pub(crate) fn optional_str(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<String>, RpcError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(RpcError::invalid_params(
            path,
            format!("must be a string, not {}", kind_of(other)),
        )),
    }
}

/// An optional non-negative integer member.
pub(crate) fn optional_count(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<usize>, RpcError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| RpcError::invalid_params(path, "must be a non-negative integer")),
        // proto-JSON allows int32 as a string.
        Some(Value::String(s)) => s
            .parse::<usize>()
            .map(Some)
            .map_err(|_| RpcError::invalid_params(path, "must be a non-negative integer")),
        Some(other) => Err(RpcError::invalid_params(
            path,
            format!("must be a non-negative integer, not {}", kind_of(other)),
        )),
    }
}

/// An optional boolean member.
pub(crate) fn optional_bool(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<bool>, RpcError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(RpcError::invalid_params(
            path,
            format!("must be true or false, not {}", kind_of(other)),
        )),
    }
}

/// An optional object member.
pub(crate) fn optional_object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, RpcError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(RpcError::invalid_params(
            path,
            format!("must be an object, not {}", kind_of(other)),
        )),
    }
}

/// The role-independent rest of a message (`parts`, ids), the same in both
/// versions but for how a part is spelled (`parse_part`).
pub(crate) fn message_of(
    o: &Map<String, Value>,
    path: &str,
    role: Role,
    parse_part: fn(&Value, &str) -> Result<Part, RpcError>,
) -> Result<Message, RpcError> {
    let parts = match o.get("parts") {
        Some(Value::Array(parts)) if !parts.is_empty() => parts
            .iter()
            .enumerate()
            .map(|(i, p)| parse_part(p, &format!("{path}.parts[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Array(_)) | None => {
            return Err(RpcError::invalid_params(
                &format!("{path}.parts"),
                "at least one part is required",
            ))
        }
        Some(_) => {
            return Err(RpcError::invalid_params(
                &format!("{path}.parts"),
                "must be an array of parts",
            ))
        }
    };
    Ok(Message {
        message_id: required_id(o, "messageId", &format!("{path}.messageId"))?,
        role,
        parts,
        context_id: optional_id(o, "contextId", &format!("{path}.contextId"))?,
        task_id: optional_id(o, "taskId", &format!("{path}.taskId"))?,
    })
}

/// "a string", "an array" … for error messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The `id` (and `historyLength`) of a task call.
pub fn task_query(params_value: &Value) -> Result<TaskQuery, RpcError> {
    let p = params(params_value);
    Ok(TaskQuery {
        id: required_id(p, "id", "id")?,
        history_length: optional_count(p, "historyLength", "historyLength")?,
    })
}
