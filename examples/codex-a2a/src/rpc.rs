//! JSON-RPC 2.0 over HTTP: reading a request body, and the errors A2A
//! defines on top of JSON-RPC's own.

use serde_json::{json, Value};

/// The standard and A2A error codes this service answers with.
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON, but not a JSON-RPC request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method in either protocol version.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The params are wrong; the message says which and why.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Something failed inside this service (the store, codex).
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The context is busy: its queue of waiting messages is full. Also
    /// used when codex is unavailable or the service is shutting down:
    /// a JSON-RPC server error, retry later.
    pub const SERVER_BUSY: i64 = -32000;
    /// A2A `TaskNotFoundError`.
    pub const TASK_NOT_FOUND: i64 = -32001;
    /// A2A `TaskNotCancelableError`.
    pub const TASK_NOT_CANCELABLE: i64 = -32002;
    /// A2A `PushNotificationNotSupportedError`.
    pub const PUSH_NOT_SUPPORTED: i64 = -32003;
    /// A2A `UnsupportedOperationError`.
    pub const UNSUPPORTED_OPERATION: i64 = -32004;
    /// A2A `ContentTypeNotSupportedError`.
    pub const CONTENT_TYPE_NOT_SUPPORTED: i64 = -32005;
    /// A2A `VersionNotSupportedError`.
    pub const VERSION_NOT_SUPPORTED: i64 = -32009;
}

/// A JSON-RPC error answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct RpcError {
    /// The code (see [`code`]).
    pub code: i64,
    /// What happened and what to do.
    pub message: String,
    /// Details, as A2A 1.0 wants them: a list of `google.rpc` objects.
    pub data: Option<Value>,
}

impl RpcError {
    fn with_reason(code: i64, reason: &str, message: String, metadata: Value) -> RpcError {
        RpcError {
            code,
            message,
            data: Some(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "a2a-protocol.org",
                "metadata": metadata,
            }])),
        }
    }

    /// `-32700`: the body is not JSON.
    pub fn parse(detail: impl std::fmt::Display) -> RpcError {
        RpcError {
            code: code::PARSE_ERROR,
            message: format!("Invalid JSON payload: {detail}"),
            data: None,
        }
    }

    /// `-32600`: not a JSON-RPC 2.0 request.
    pub fn invalid_request(detail: impl Into<String>) -> RpcError {
        RpcError {
            code: code::INVALID_REQUEST,
            message: format!("Invalid JSON-RPC request: {}", detail.into()),
            data: None,
        }
    }

    /// `-32601`: no such method.
    pub fn method_not_found(method: &str) -> RpcError {
        RpcError {
            code: code::METHOD_NOT_FOUND,
            message: format!(
                "Method not found: {method:?}. A2A 1.0 methods: SendMessage, SendStreamingMessage, \
                 GetTask, ListTasks, CancelTask, SubscribeToTask; A2A 0.3 methods: message/send, \
                 message/stream, tasks/get, tasks/cancel, tasks/resubscribe"
            ),
            data: None,
        }
    }

    /// `-32602`: `field` is wrong because of `why`.
    pub fn invalid_params(field: &str, why: impl Into<String>) -> RpcError {
        let why = why.into();
        RpcError {
            code: code::INVALID_PARAMS,
            message: if field.is_empty() {
                format!("Invalid parameters: {why}")
            } else {
                format!("Invalid parameters: {field}: {why}")
            },
            data: Some(json!([{
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": why}],
            }])),
        }
    }

    /// `-32603`: this service failed.
    pub fn internal(detail: impl std::fmt::Display) -> RpcError {
        RpcError {
            code: code::INTERNAL_ERROR,
            message: format!("Internal error: {detail}"),
            data: None,
        }
    }

    /// `-32000`: come back later.
    pub fn busy(reason: &str, message: String) -> RpcError {
        RpcError::with_reason(code::SERVER_BUSY, reason, message, json!({}))
    }

    /// `-32001`: no task with this id.
    pub fn task_not_found(id: &str) -> RpcError {
        RpcError::with_reason(
            code::TASK_NOT_FOUND,
            "TASK_NOT_FOUND",
            format!("Task not found: {id:?}"),
            json!({ "taskId": id }),
        )
    }

    /// `-32002`: the task is already finished.
    pub fn not_cancelable(id: &str, state: &str) -> RpcError {
        RpcError::with_reason(
            code::TASK_NOT_CANCELABLE,
            "TASK_NOT_CANCELABLE",
            format!("Task {id:?} cannot be canceled: it is already {state}"),
            json!({ "taskId": id, "state": state }),
        )
    }

    /// `-32004`: not something this agent does.
    pub fn unsupported(message: String) -> RpcError {
        RpcError::with_reason(
            code::UNSUPPORTED_OPERATION,
            "UNSUPPORTED_OPERATION",
            message,
            json!({}),
        )
    }

    /// `-32005`: a part this agent cannot pass to codex.
    pub fn content_type(message: String) -> RpcError {
        RpcError::with_reason(
            code::CONTENT_TYPE_NOT_SUPPORTED,
            "CONTENT_TYPE_NOT_SUPPORTED",
            message,
            json!({}),
        )
    }

    /// `-32009`: an `A2A-Version` this agent does not speak.
    pub fn version(requested: &str) -> RpcError {
        RpcError::with_reason(
            code::VERSION_NOT_SUPPORTED,
            "VERSION_NOT_SUPPORTED",
            format!("A2A version {requested:?} is not supported; this agent speaks 1.0 and 0.3"),
            json!({ "requested": requested, "supported": ["1.0", "0.3"] }),
        )
    }

    /// The error object of a response.
    pub fn to_json(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

/// A parsed JSON-RPC request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Its id (string, number or null), echoed in the answer.
    pub id: Value,
    /// The method.
    pub method: String,
    /// The params (`{}` when absent).
    pub params: Value,
}

/// Reads one JSON-RPC 2.0 request from an HTTP body. On error, also the id
/// to answer with (null when it could not be read).
pub fn parse_request(body: &[u8]) -> Result<Request, (Value, RpcError)> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| (Value::Null, RpcError::parse(e)))?;
    let Value::Object(mut object) = value else {
        let what = if value.is_array() {
            "batch requests are not supported; send one request per HTTP request"
        } else {
            "the body must be a JSON object"
        };
        return Err((Value::Null, RpcError::invalid_request(what)));
    };
    let id = object.remove("id").unwrap_or(Value::Null);
    let id_ok = matches!(id, Value::String(_) | Value::Number(_) | Value::Null);
    let id = if id_ok { id } else { Value::Null };
    if !id_ok {
        return Err((
            id,
            RpcError::invalid_request("\"id\" must be a string, a number or null"),
        ));
    }
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((id, RpcError::invalid_request("\"jsonrpc\" must be \"2.0\"")));
    }
    let method = match object.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err((id, RpcError::invalid_request("\"method\" must be a string"))),
    };
    let params = match object.remove("params") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(p @ Value::Object(_)) => p,
        Some(_) => return Err((id, RpcError::invalid_params("params", "must be an object"))),
    };
    Ok(Request { id, method, params })
}

/// A success answer.
pub fn result(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

/// An error answer.
pub fn error(id: &Value, error: &RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": error.to_json() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_read() {
        let r =
            parse_request(br#"{"jsonrpc":"2.0","id":7,"method":"GetTask","params":{"id":"x"}}"#)
                .unwrap();
        assert_eq!(r.id, json!(7));
        assert_eq!(r.method, "GetTask");
        assert_eq!(r.params["id"], "x");
    }

    #[test]
    fn bad_bodies_get_their_codes() {
        let code_of = |b: &[u8]| parse_request(b).unwrap_err().1.code;
        assert_eq!(code_of(b"{not json"), code::PARSE_ERROR);
        assert_eq!(code_of(b"[]"), code::INVALID_REQUEST);
        assert_eq!(code_of(br#"{"id":1,"method":"x"}"#), code::INVALID_REQUEST);
        assert_eq!(
            code_of(br#"{"jsonrpc":"2.0","id":1}"#),
            code::INVALID_REQUEST
        );
        assert_eq!(
            code_of(br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#),
            code::INVALID_PARAMS
        );
        let (id, _) = parse_request(br#"{"jsonrpc":"1.0","id":"a","method":"x"}"#).unwrap_err();
        assert_eq!(id, "a");
    }

    #[test]
    fn a2a_errors_carry_error_info() {
        let e = RpcError::task_not_found("t1");
        assert_eq!(e.code, -32001);
        assert_eq!(e.to_json()["data"][0]["reason"], "TASK_NOT_FOUND");
        assert_eq!(e.to_json()["data"][0]["metadata"]["taskId"], "t1");
    }
}
