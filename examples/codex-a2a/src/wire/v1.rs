//! A2A 1.0 as the official SDKs speak it: proto-JSON of `lf.a2a.v1`
//! (camelCase members, enum names such as `ROLE_USER` and
//! `TASK_STATE_COMPLETED`, parts as `{"text": …}` / `{"data": …}`).
//! Only members the proto defines are written: the official Python client
//! parses answers strictly.

use serde_json::{json, Map, Value};

use super::{
    message_of, optional_bool, optional_count, optional_object, optional_str, params, required_str,
    Event, ListQuery, SendRequest, Version::V1,
};
use crate::model::{Message, Part, Role, Task, TaskState};
use crate::rpc::RpcError;

/// The proto name of a state.
pub fn state_name(state: TaskState) -> &'static str {
    match state {
        TaskState::Submitted => "TASK_STATE_SUBMITTED",
        TaskState::Working => "TASK_STATE_WORKING",
        TaskState::InputRequired => "TASK_STATE_INPUT_REQUIRED",
        TaskState::Completed => "TASK_STATE_COMPLETED",
        TaskState::Failed => "TASK_STATE_FAILED",
        TaskState::Canceled => "TASK_STATE_CANCELED",
        TaskState::Rejected => "TASK_STATE_REJECTED",
    }
}

/// A part in proto-JSON.
pub fn part(p: &Part) -> Value {
    match p {
        Part::Text { text } => json!({ "text": text }),
        Part::Data { data } => json!({ "data": data }),
        Part::File {
            url,
            raw,
            media_type,
            filename,
        } => {
            let mut o = Map::new();
            if let Some(url) = url {
                o.insert("url".into(), url.clone().into());
            }
            if let Some(raw) = raw {
                o.insert("raw".into(), raw.clone().into());
            }
            if let Some(m) = media_type {
                o.insert("mediaType".into(), m.clone().into());
            }
            if let Some(f) = filename {
                o.insert("filename".into(), f.clone().into());
            }
            Value::Object(o)
        }
    }
}

/// The result of `SendMessage`: a `SendMessageResponse` holding the task.
pub fn send_result(t: &Task) -> Value {
    json!({ "task": V1.task(t) })
}

/// One `StreamResponse`.
pub fn event(e: &Event) -> Value {
    match e {
        Event::Task(t) => json!({ "task": V1.task(t) }),
        Event::Status {
            task_id,
            context_id,
            status: s,
            ..
        } => json!({ "statusUpdate": {
            "taskId": task_id, "contextId": context_id, "status": V1.status(s),
        }}),
        Event::Artifact {
            task_id,
            context_id,
            artifact: a,
            append,
            last_chunk,
        } => json!({ "artifactUpdate": {
            "taskId": task_id, "contextId": context_id, "artifact": V1.artifact(a),
            "append": append, "lastChunk": last_chunk,
        }}),
    }
}

/// The result of `ListTasks`.
pub fn list_result(
    tasks: &[Task],
    next_page_token: Option<String>,
    page_size: usize,
    total: usize,
) -> Value {
    json!({
        "tasks": tasks.iter().map(|t| V1.task(t)).collect::<Vec<_>>(),
        "nextPageToken": next_page_token.unwrap_or_default(),
        "pageSize": page_size,
        "totalSize": total,
    })
}

fn parse_part(v: &Value, path: &str) -> Result<Part, RpcError> {
    let Some(o) = v.as_object() else {
        return Err(RpcError::invalid_params(path, "a part must be an object"));
    };
    if o.contains_key("kind") {
        // Mixing the versions is the likeliest mistake; say so.
        return Err(RpcError::invalid_params(
            &format!("{path}.kind"),
            "\"kind\" is the A2A 0.3 spelling: a 1.0 part holds exactly one of text, raw, url or \
             data ({\"text\": \"…\"}); or call the 0.3 method message/send",
        ));
    }
    let present: Vec<&str> = ["text", "raw", "url", "data"]
        .into_iter()
        .filter(|k| o.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    if present.len() != 1 {
        return Err(RpcError::invalid_params(
            path,
            format!(
                "a part holds exactly one of text, raw, url or data (found {})",
                if present.is_empty() {
                    "none".to_owned()
                } else {
                    present.join(", ")
                }
            ),
        ));
    }
    Ok(match present[0] {
        "text" => Part::Text {
            text: required_str(o, "text", &format!("{path}.text")).or_else(|e| {
                // An empty text is still text.
                if o.get("text") == Some(&Value::String(String::new())) {
                    Ok(String::new())
                } else {
                    Err(e)
                }
            })?,
        },
        "data" => Part::Data {
            data: o["data"].clone(),
        },
        _ => Part::File {
            url: optional_str(o, "url", &format!("{path}.url"))?,
            raw: optional_str(o, "raw", &format!("{path}.raw"))?,
            media_type: optional_str(o, "mediaType", &format!("{path}.mediaType"))?,
            filename: optional_str(o, "filename", &format!("{path}.filename"))?,
        },
    })
}

/// Reads a 1.0 `Message` sent by a client.
pub fn parse_message(v: Option<&Value>, path: &str) -> Result<Message, RpcError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Err(RpcError::invalid_params(path, "is required"));
    };
    let Some(o) = v.as_object() else {
        return Err(RpcError::invalid_params(path, "must be an object"));
    };
    let role = match o.get("role").and_then(Value::as_str) {
        Some("ROLE_USER") => Role::User,
        Some("ROLE_AGENT") => {
            return Err(RpcError::invalid_params(
                &format!("{path}.role"),
                "a client sends ROLE_USER messages",
            ))
        }
        Some(other) => {
            return Err(RpcError::invalid_params(
                &format!("{path}.role"),
                format!(
                    "must be ROLE_USER, not {other:?} (A2A 1.0 spells roles as proto enum names)"
                ),
            ))
        }
        None => {
            return Err(RpcError::invalid_params(
                &format!("{path}.role"),
                "is required (ROLE_USER)",
            ))
        }
    };
    message_of(o, path, role, parse_part)
}

/// Reads the params of `SendMessage` / `SendStreamingMessage`.
pub fn parse_send(params_value: &Value) -> Result<SendRequest, RpcError> {
    let p = params(params_value);
    let message = parse_message(p.get("message"), "message")?;
    let mut return_immediately = false;
    let mut history_length = None;
    if let Some(c) = optional_object(p, "configuration", "configuration")? {
        return_immediately =
            optional_bool(c, "returnImmediately", "configuration.returnImmediately")?
                .unwrap_or(false);
        history_length = optional_count(c, "historyLength", "configuration.historyLength")?;
        if c.get("taskPushNotificationConfig")
            .is_some_and(|v| !v.is_null())
        {
            return Err(RpcError {
                code: crate::rpc::code::PUSH_NOT_SUPPORTED,
                message: "Push notifications are not supported by this agent; use \
                          SendStreamingMessage or poll GetTask"
                    .into(),
                data: None,
            });
        }
    }
    Ok(SendRequest {
        message,
        return_immediately,
        history_length,
    })
}

/// Parses a 1.0 state name (`TASK_STATE_WORKING`).
pub fn parse_state(name: &str) -> Option<TaskState> {
    TaskState::ALL.into_iter().find(|s| state_name(*s) == name)
}

/// Reads the params of `ListTasks`.
pub fn parse_list(params_value: &Value) -> Result<ListQuery, RpcError> {
    let p = params(params_value);
    let state = match optional_str(p, "status", "status")? {
        None => None,
        Some(s) if s == "TASK_STATE_UNSPECIFIED" => None,
        Some(s) => Some(parse_state(&s).ok_or_else(|| {
            RpcError::invalid_params(
                "status",
                format!("{s:?} is not a TaskState (TASK_STATE_WORKING, …)"),
            )
        })?),
    };
    let page_size = match optional_count(p, "pageSize", "pageSize")? {
        None | Some(0) => 50,
        Some(n) if n > 100 => {
            return Err(RpcError::invalid_params(
                "pageSize",
                "must be between 1 and 100",
            ))
        }
        Some(n) => n,
    };
    Ok(ListQuery {
        context_id: optional_str(p, "contextId", "contextId")?,
        state,
        page_size,
        page_token: optional_str(p, "pageToken", "pageToken")?,
        history_length: optional_count(p, "historyLength", "historyLength")?,
        include_artifacts: optional_bool(p, "includeArtifacts", "includeArtifacts")?
            .unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{timestamp, Artifact, TaskStatus};

    #[test]
    fn a_send_in_proto_json_is_read() {
        let req = parse_send(&json!({
            "message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "hi"}, {"data": {"decision": "accept"}}]},
            "configuration": {"returnImmediately": true, "historyLength": 3}
        }))
        .unwrap();
        assert!(req.return_immediately);
        assert_eq!(req.history_length, Some(3));
        assert_eq!(req.message.parts[0], Part::text("hi"));
        assert_eq!(
            req.message.parts[1],
            Part::Data {
                data: json!({"decision": "accept"})
            }
        );
    }

    #[test]
    fn wrong_sends_say_what_is_wrong() {
        let err = |v: Value| parse_send(&v).unwrap_err().message;
        assert!(err(json!({})).contains("message: is required"));
        assert!(err(
            json!({"message": {"messageId": "m", "role": "user", "parts": [{"text": "x"}]}})
        )
        .contains("ROLE_USER"));
        assert!(
            err(json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": []}}))
                .contains("at least one part")
        );
        assert!(err(json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "a", "url": "b"}]}}))
            .contains("exactly one"));
        assert!(
            err(json!({"message": {"role": "ROLE_USER", "parts": [{"text": "a"}]}}))
                .contains("message.messageId")
        );
    }

    #[test]
    fn a_task_is_written_with_proto_names_only() {
        let t = Task {
            id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus {
                state: TaskState::Completed,
                message: None,
                timestamp: timestamp(std::time::UNIX_EPOCH),
            },
            history: vec![],
            artifacts: vec![Artifact {
                artifact_id: "a".into(),
                name: Some("response".into()),
                parts: vec![Part::text("x")],
            }],
            created_at: timestamp(std::time::UNIX_EPOCH),
        };
        assert_eq!(
            V1.task(&t),
            json!({"id": "t", "contextId": "c",
                   "status": {"state": "TASK_STATE_COMPLETED", "timestamp": "1970-01-01T00:00:00.000Z"},
                   "artifacts": [{"artifactId": "a", "name": "response", "parts": [{"text": "x"}]}]})
        );
    }
}
