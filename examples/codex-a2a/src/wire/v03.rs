//! A2A 0.3: `kind`-tagged JSON (`"kind": "task"`, parts
//! `{"kind": "text", …}`, states `completed`, `input-required`), the
//! version the original service's clients speak.

use serde_json::{json, Map, Value};

use super::{
    message_of, optional_bool, optional_count, optional_object, optional_str, params, Event,
    SendRequest, Version::V03,
};
use crate::model::{Message, Part, Role, TaskState};
use crate::rpc::RpcError;

/// The 0.3 name of a state.
pub fn state_name(state: TaskState) -> &'static str {
    match state {
        TaskState::Submitted => "submitted",
        TaskState::Working => "working",
        TaskState::InputRequired => "input-required",
        TaskState::Completed => "completed",
        TaskState::Failed => "failed",
        TaskState::Canceled => "canceled",
        TaskState::Rejected => "rejected",
    }
}

/// A part, `kind`-tagged.
pub fn part(p: &Part) -> Value {
    match p {
        Part::Text { text } => json!({ "kind": "text", "text": text }),
        // 0.3 data parts hold an object.
        Part::Data { data } if data.is_object() => json!({ "kind": "data", "data": data }),
        Part::Data { data } => json!({ "kind": "data", "data": { "value": data } }),
        Part::File {
            url,
            raw,
            media_type,
            filename,
        } => {
            let mut f = Map::new();
            if let Some(url) = url {
                f.insert("uri".into(), url.clone().into());
            }
            if let Some(raw) = raw {
                f.insert("bytes".into(), raw.clone().into());
            }
            if let Some(m) = media_type {
                f.insert("mimeType".into(), m.clone().into());
            }
            if let Some(n) = filename {
                f.insert("name".into(), n.clone().into());
            }
            json!({ "kind": "file", "file": f })
        }
    }
}

/// One event of `message/stream` / `tasks/resubscribe`.
pub fn event(e: &Event) -> Value {
    match e {
        Event::Task(t) => V03.task(t),
        Event::Status {
            task_id,
            context_id,
            status: s,
            last,
        } => json!({
            "kind": "status-update", "taskId": task_id, "contextId": context_id,
            "status": V03.status(s), "final": last,
        }),
        Event::Artifact {
            task_id,
            context_id,
            artifact: a,
            append,
            last_chunk,
        } => json!({
            "kind": "artifact-update", "taskId": task_id, "contextId": context_id,
            "artifact": V03.artifact(a), "append": append, "lastChunk": last_chunk,
        }),
    }
}

fn parse_part(v: &Value, path: &str) -> Result<Part, RpcError> {
    let Some(o) = v.as_object() else {
        return Err(RpcError::invalid_params(path, "a part must be an object"));
    };
    match o.get("kind").and_then(Value::as_str) {
        Some("text") => match o.get("text") {
            Some(Value::String(text)) => Ok(Part::text(text.clone())),
            _ => Err(RpcError::invalid_params(
                &format!("{path}.text"),
                "a text part needs a string \"text\"",
            )),
        },
        Some("data") => match o.get("data") {
            Some(data @ Value::Object(_)) => Ok(Part::Data { data: data.clone() }),
            _ => Err(RpcError::invalid_params(
                &format!("{path}.data"),
                "a data part needs an object \"data\"",
            )),
        },
        Some("file") => {
            let Some(f) = optional_object(o, "file", &format!("{path}.file"))? else {
                return Err(RpcError::invalid_params(
                    &format!("{path}.file"),
                    "is required",
                ));
            };
            let url = optional_str(f, "uri", &format!("{path}.file.uri"))?;
            let raw = optional_str(f, "bytes", &format!("{path}.file.bytes"))?;
            if url.is_some() == raw.is_some() {
                return Err(RpcError::invalid_params(
                    &format!("{path}.file"),
                    "a file holds exactly one of uri or bytes",
                ));
            }
            Ok(Part::File {
                url,
                raw,
                media_type: optional_str(f, "mimeType", &format!("{path}.file.mimeType"))?,
                filename: optional_str(f, "name", &format!("{path}.file.name"))?,
            })
        }
        Some(other) => Err(RpcError::invalid_params(
            &format!("{path}.kind"),
            format!("{other:?} is not a part kind (text, data, file)"),
        )),
        None => Err(RpcError::invalid_params(
            &format!("{path}.kind"),
            "is required (text, data or file)",
        )),
    }
}

/// Reads a 0.3 `Message` sent by a client.
pub fn parse_message(v: Option<&Value>, path: &str) -> Result<Message, RpcError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Err(RpcError::invalid_params(path, "is required"));
    };
    let Some(o) = v.as_object() else {
        return Err(RpcError::invalid_params(path, "must be an object"));
    };
    if let Some(kind) = o.get("kind") {
        if kind != "message" {
            return Err(RpcError::invalid_params(
                &format!("{path}.kind"),
                "must be \"message\"",
            ));
        }
    }
    let role = match o.get("role").and_then(Value::as_str) {
        Some("user") => Role::User,
        Some(other) => {
            return Err(RpcError::invalid_params(
                &format!("{path}.role"),
                format!("must be \"user\", not {other:?}"),
            ))
        }
        None => {
            return Err(RpcError::invalid_params(
                &format!("{path}.role"),
                "is required (\"user\")",
            ))
        }
    };
    message_of(o, path, role, parse_part)
}

/// Reads the params of `message/send` / `message/stream`.
pub fn parse_send(params_value: &Value) -> Result<SendRequest, RpcError> {
    let p = params(params_value);
    let message = parse_message(p.get("message"), "message")?;
    let mut blocking = true;
    let mut history_length = None;
    if let Some(c) = optional_object(p, "configuration", "configuration")? {
        blocking = optional_bool(c, "blocking", "configuration.blocking")?.unwrap_or(true);
        history_length = optional_count(c, "historyLength", "configuration.historyLength")?;
        if c.get("pushNotificationConfig")
            .is_some_and(|v| !v.is_null())
        {
            return Err(RpcError {
                code: crate::rpc::code::PUSH_NOT_SUPPORTED,
                message: "Push notifications are not supported by this agent; use \
                          message/stream or poll tasks/get"
                    .into(),
                data: None,
            });
        }
    }
    Ok(SendRequest {
        message,
        return_immediately: !blocking,
        history_length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Task, TaskStatus};

    #[test]
    fn a_send_as_the_original_clients_sent_it_is_read() {
        let req = parse_send(&json!({
            "message": {"kind": "message", "messageId": "m1", "role": "user",
                        "parts": [{"kind": "text", "text": "hi"}], "contextId": "c1"},
            "configuration": {"blocking": false}
        }))
        .unwrap();
        assert!(req.return_immediately);
        assert_eq!(req.message.context_id.as_deref(), Some("c1"));
        assert_eq!(req.message.text(), "hi");
    }

    #[test]
    fn parts_need_a_known_kind() {
        let err = parse_send(
            &json!({"message": {"messageId": "m", "role": "user", "parts": [{"text": "x"}]}}),
        )
        .unwrap_err();
        assert!(
            err.message.contains("message.parts[0].kind"),
            "{}",
            err.message
        );
    }

    #[test]
    fn states_use_kebab_names() {
        assert_eq!(state_name(TaskState::InputRequired), "input-required");
        let t = Task {
            id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus::now(TaskState::Completed, None),
            history: vec![],
            artifacts: vec![],
            created_at: String::new(),
        };
        assert_eq!(V03.task(&t)["kind"], "task");
        assert_eq!(V03.task(&t)["status"]["state"], "completed");
        assert_eq!(V03.task(&t)["history"], json!([]));
    }
}
