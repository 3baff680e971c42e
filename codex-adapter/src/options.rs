//! Typed options for threads and turns, and turn input.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::approval::ApprovalPolicy;

/// When codex asks before acting (`approvalPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AskForApproval {
    /// Ask before anything not known to be safe.
    Untrusted,
    /// Ask only when a sandboxed command fails (codex 0.72.0; later versions
    /// reject it).
    OnFailure,
    /// The model decides when to ask.
    OnRequest,
    /// Never ask.
    Never,
}

/// What commands may touch (`sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Read anything, write nothing.
    ReadOnly,
    /// Write inside the workspace.
    WorkspaceWrite,
    /// No sandbox.
    DangerFullAccess,
}

macro_rules! parse_kebab {
    ($ty:ty, $what:literal, $($word:literal => $val:expr),+) => {
        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($word => Ok($val),)+
                    other => Err(format!(
                        concat!("unknown ", $what, " {:?}: expected one of ", $($word, " "),+),
                        other
                    )),
                }
            }
        }
    };
}

parse_kebab!(AskForApproval, "approval policy",
    "untrusted" => AskForApproval::Untrusted,
    "on-failure" => AskForApproval::OnFailure,
    "on-request" => AskForApproval::OnRequest,
    "never" => AskForApproval::Never);

parse_kebab!(SandboxMode, "sandbox mode",
    "read-only" => SandboxMode::ReadOnly,
    "workspace-write" => SandboxMode::WorkspaceWrite,
    "danger-full-access" => SandboxMode::DangerFullAccess);

/// How a thread starts (`thread/start`) or resumes (`thread/resume`). Unset
/// fields take codex's defaults (seen: `on-request`, read-only sandbox).
///
/// It serializes (camelCase, unset fields omitted) so a
/// [`SessionStore`](crate::SessionStore) can keep it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ThreadOptions {
    /// The model, e.g. `gpt-5-codex`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The model provider from codex's config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_provider: Option<String>,
    /// The working directory of the thread's commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// When codex asks before acting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_policy: Option<AskForApproval>,
    /// What commands may touch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxMode>,
    /// Replaces codex's base instructions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_instructions: Option<String>,
    /// Extra developer instructions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub developer_instructions: Option<String>,
    /// Config overrides (`-c key=value` as a JSON object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

impl ThreadOptions {
    /// Sets the model.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the working directory.
    pub fn cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Sets the approval policy.
    pub fn approval_policy(mut self, policy: AskForApproval) -> Self {
        self.approval_policy = Some(policy);
        self
    }

    /// Sets the sandbox.
    pub fn sandbox(mut self, sandbox: SandboxMode) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    /// Sets the base instructions.
    pub fn base_instructions(mut self, text: impl Into<String>) -> Self {
        self.base_instructions = Some(text.into());
        self
    }

    /// Sets the developer instructions.
    pub fn developer_instructions(mut self, text: impl Into<String>) -> Self {
        self.developer_instructions = Some(text.into());
        self
    }

    /// The params of `thread/start` (and, with `threadId` added, `thread/resume`).
    pub(crate) fn to_params(&self) -> Map<String, Value> {
        let mut p = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                p.insert(k.to_owned(), v);
            }
        };
        put("model", self.model.clone().map(Value::from));
        put(
            "modelProvider",
            self.model_provider.clone().map(Value::from),
        );
        put(
            "cwd",
            self.cwd
                .as_ref()
                .map(|c| Value::from(c.display().to_string())),
        );
        put("approvalPolicy", self.approval_policy.map(|a| json!(a)));
        put("sandbox", self.sandbox.map(|s| json!(s)));
        put(
            "baseInstructions",
            self.base_instructions.clone().map(Value::from),
        );
        put(
            "developerInstructions",
            self.developer_instructions.clone().map(Value::from),
        );
        put("config", self.config.clone());
        p
    }
}

/// One piece of a turn's input.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputItem {
    /// Text.
    Text(String),
    /// An image by URL (`https:` or `data:`).
    ImageUrl(String),
    /// An image file on the machine codex runs on.
    LocalImage(PathBuf),
}

impl InputItem {
    fn to_wire(&self) -> Value {
        match self {
            InputItem::Text(text) => json!({"type": "text", "text": text}),
            InputItem::ImageUrl(url) => json!({"type": "image", "url": url}),
            InputItem::LocalImage(path) => {
                json!({"type": "localImage", "path": path.display().to_string()})
            }
        }
    }
}

/// What the user says in a turn: text and images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnInput(pub Vec<InputItem>);

impl TurnInput {
    /// Adds text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.0.push(InputItem::Text(text.into()));
        self
    }

    /// Adds an image by URL.
    pub fn image_url(mut self, url: impl Into<String>) -> Self {
        self.0.push(InputItem::ImageUrl(url.into()));
        self
    }

    /// Adds a local image file.
    pub fn local_image(mut self, path: impl Into<PathBuf>) -> Self {
        self.0.push(InputItem::LocalImage(path.into()));
        self
    }

    pub(crate) fn to_wire(&self) -> Value {
        Value::Array(self.0.iter().map(InputItem::to_wire).collect())
    }
}

impl From<&str> for TurnInput {
    fn from(text: &str) -> Self {
        TurnInput::default().text(text)
    }
}

impl From<String> for TurnInput {
    fn from(text: String) -> Self {
        TurnInput::default().text(text)
    }
}

/// The watchdog limits of a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnLimits {
    /// The longest silence between two events of the turn (default 90 s).
    /// Paused while an approval waits for the caller.
    pub idle: Duration,
    /// The longest a whole turn may take (default 600 s).
    pub budget: Duration,
}

impl Default for TurnLimits {
    fn default() -> Self {
        TurnLimits {
            idle: Duration::from_secs(90),
            budget: Duration::from_secs(600),
        }
    }
}

/// Per-turn settings. Unset fields take the server's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct TurnOptions {
    /// Who answers approvals (default: the server's, itself defaulting to
    /// declining everything).
    pub approvals: Option<ApprovalPolicy>,
    /// Watchdog limits (default: the server's, 90 s idle, 600 s budget).
    pub limits: Option<TurnLimits>,
    /// Overrides the thread's model for this turn.
    pub model: Option<String>,
    /// Overrides the thread's working directory for this turn.
    pub cwd: Option<PathBuf>,
    /// Overrides the thread's approval policy for this turn.
    pub approval_policy: Option<AskForApproval>,
}

impl TurnOptions {
    /// Sets who answers approvals.
    pub fn approvals(mut self, policy: ApprovalPolicy) -> Self {
        self.approvals = Some(policy);
        self
    }

    /// Sets the watchdog limits.
    pub fn limits(mut self, limits: TurnLimits) -> Self {
        self.limits = Some(limits);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_options_use_codex_field_names_and_words() {
        let p = ThreadOptions::default()
            .approval_policy(AskForApproval::OnFailure)
            .sandbox(SandboxMode::DangerFullAccess)
            .cwd("/w")
            .to_params();
        assert_eq!(
            Value::Object(p),
            json!({"approvalPolicy": "on-failure", "sandbox": "danger-full-access", "cwd": "/w"})
        );
    }

    #[test]
    fn input_items_use_codex_shapes() {
        let input = TurnInput::from("hi")
            .image_url("https://x/y.png")
            .local_image("/tmp/a.png");
        assert_eq!(
            input.to_wire(),
            json!([{"type": "text", "text": "hi"}, {"type": "image", "url": "https://x/y.png"},
                   {"type": "localImage", "path": "/tmp/a.png"}])
        );
    }

    #[test]
    fn unknown_words_are_refused_with_the_choices() {
        let err = "sometimes".parse::<AskForApproval>().unwrap_err();
        assert!(err.contains("untrusted"), "{err}");
        assert_eq!(
            "read-only".parse::<SandboxMode>(),
            Ok(SandboxMode::ReadOnly)
        );
    }
}
