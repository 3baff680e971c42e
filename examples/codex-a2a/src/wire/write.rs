//! One writer for what both versions share in shape — messages, statuses,
//! artifacts and tasks — spelled per version. What differs in shape (parts,
//! stream events, the send and list results) stays in [`v1`](mod@super::v1) and
//! [`v03`](mod@super::v03).

use serde_json::{Map, Value};

use super::{v03, v1, Version};
use crate::model::{Artifact, Message, Part, Role, Task, TaskState, TaskStatus};

impl Version {
    /// This version's name of a task state.
    pub fn state_name(self, state: TaskState) -> &'static str {
        match self {
            Version::V1 => v1::state_name(state),
            Version::V03 => v03::state_name(state),
        }
    }

    fn role_name(self, role: Role) -> &'static str {
        match (self, role) {
            (Version::V1, Role::User) => "ROLE_USER",
            (Version::V1, Role::Agent) => "ROLE_AGENT",
            (Version::V03, Role::User) => "user",
            (Version::V03, Role::Agent) => "agent",
        }
    }

    /// 0.3 tags messages and tasks with a `kind`; 1.0's proto-JSON has none.
    fn tagged(self, object: &mut Map<String, Value>, kind: &str) {
        if self == Version::V03 {
            object.insert("kind".into(), kind.into());
        }
    }

    /// A part.
    pub fn part(self, part: &Part) -> Value {
        match self {
            Version::V1 => v1::part(part),
            Version::V03 => v03::part(part),
        }
    }

    fn parts(self, parts: &[Part]) -> Value {
        parts.iter().map(|p| self.part(p)).collect()
    }

    /// A message.
    pub fn message(self, m: &Message) -> Value {
        let mut o = Map::new();
        self.tagged(&mut o, "message");
        o.insert("messageId".into(), m.message_id.clone().into());
        o.insert("role".into(), self.role_name(m.role).into());
        o.insert("parts".into(), self.parts(&m.parts));
        insert_some(&mut o, "contextId", &m.context_id);
        insert_some(&mut o, "taskId", &m.task_id);
        Value::Object(o)
    }

    /// A status.
    pub fn status(self, s: &TaskStatus) -> Value {
        let mut o = Map::new();
        o.insert("state".into(), self.state_name(s.state).into());
        o.insert("timestamp".into(), s.timestamp.clone().into());
        if let Some(m) = &s.message {
            o.insert("message".into(), self.message(m));
        }
        Value::Object(o)
    }

    /// An artifact.
    pub fn artifact(self, a: &Artifact) -> Value {
        let mut o = Map::new();
        o.insert("artifactId".into(), a.artifact_id.clone().into());
        o.insert("parts".into(), self.parts(&a.parts));
        insert_some(&mut o, "name", &a.name);
        Value::Object(o)
    }

    /// A task.
    pub fn task(self, t: &Task) -> Value {
        let mut o = Map::new();
        self.tagged(&mut o, "task");
        o.insert("id".into(), t.id.clone().into());
        o.insert("contextId".into(), t.context_id.clone().into());
        o.insert("status".into(), self.status(&t.status));
        // proto3 JSON leaves out empty repeated fields; 0.3 clients expect both lists.
        let always = self == Version::V03;
        if always || !t.artifacts.is_empty() {
            let artifacts = t.artifacts.iter().map(|a| self.artifact(a)).collect();
            o.insert("artifacts".into(), artifacts);
        }
        if always || !t.history.is_empty() {
            let history = t.history.iter().map(|m| self.message(m)).collect();
            o.insert("history".into(), history);
        }
        Value::Object(o)
    }
}

fn insert_some(object: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        object.insert(key.into(), v.clone().into());
    }
}
