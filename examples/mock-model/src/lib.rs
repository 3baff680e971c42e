//! A loopback mock model: just enough of the OpenAI Responses API (HTTP/1.1 +
//! server-sent events) for a real `codex app-server` to run turns with no
//! account and no network.
//!
//! [`MockModel::start`] binds `127.0.0.1:0` and serves (axum on hyper's
//! HTTP/1.1) every `POST …/responses` with a [`Reply`] chosen by a script (a
//! closure over the [`ModelRequest`]); [`default_script`] reads directives
//! from the prompt. `GET …/models` lists the metadata of the one model,
//! `mock-model`, so codex does not fall back to (and warn about) defaults.
//! [`CodexHome`] writes a temporary `CODEX_HOME` whose `config.toml` points
//! codex at the mock. Each response ends its HTTP body after the last event:
//! codex 0.72.0 only ends a turn when the body closes.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mock_model::{CodexHome, MockModel};
//!
//! let model = MockModel::start_default().await?;
//! let home = CodexHome::for_mock(&model)?; // a temp dir, removed on drop
//! // spawn `codex app-server` with CODEX_HOME=home.path() ...
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::stream::{self, StreamExt};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// What the mock answers to one model request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// An assistant message streamed in `chunks`, `delay` apart.
    Text {
        /// The deltas, in order; the message is their concatenation.
        chunks: Vec<String>,
        /// The pause before each chunk.
        delay: Duration,
    },
    /// A shell command tool call (`shell` on codex 0.72.0, `exec_command`
    /// later: whichever the request offers).
    Shell {
        /// The command line, run with `bash -lc`.
        command: String,
    },
    /// An `apply_patch` call with this patch (`*** Begin Patch` …).
    Patch {
        /// The patch text.
        patch: String,
    },
    /// An HTTP error status with a JSON body.
    HttpError {
        /// The status, e.g. 500 (one outside 100–999 is sent as 500).
        status: u16,
    },
    /// Streams `chunks` of a message, then closes the body before
    /// `response.completed`.
    Disconnect {
        /// The text streamed before the break.
        chunks: Vec<String>,
    },
    /// A `response.failed` event.
    Failed {
        /// The error message.
        message: String,
    },
    /// Sends `response.created` and then nothing, holding the connection open.
    Stall,
}

impl Reply {
    /// A message streamed word by word (each word keeps its leading space).
    pub fn text(text: &str) -> Reply {
        Reply::Text {
            chunks: split_words(text),
            delay: Duration::ZERO,
        }
    }
}

fn split_words(text: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c == ' ' && !cur.is_empty() {
            chunks.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        chunks.push(cur);
    }
    chunks
}

/// One request codex made to the model.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// The JSON body.
    pub body: Value,
}

impl ModelRequest {
    /// The text of the last user message in the request's input.
    pub fn user_text(&self) -> String {
        let mut last = String::new();
        for item in self.input() {
            if item.get("role").and_then(Value::as_str) == Some("user") {
                if let Some(parts) = item.get("content").and_then(Value::as_array) {
                    let text: String = parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect();
                    if !text.starts_with('<') {
                        last = text;
                    }
                }
            }
        }
        last
    }

    /// The text of every user message in the request's input, in order:
    /// the conversation the model was shown (codex's own `<…>` context
    /// messages left out). A resumed thread's request repeats the earlier
    /// turns' texts.
    pub fn user_texts(&self) -> Vec<String> {
        self.input()
            .iter()
            .filter(|item| item.get("role").and_then(Value::as_str) == Some("user"))
            .filter_map(|item| item.get("content").and_then(Value::as_array))
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<String>()
            })
            .filter(|text| !text.starts_with('<'))
            .collect()
    }

    /// The output of the tool call this request answers, when its last
    /// input item is one.
    pub fn tool_output(&self) -> Option<String> {
        let last = self.input().last()?;
        let ty = last.get("type").and_then(Value::as_str)?;
        if !ty.ends_with("call_output") {
            return None;
        }
        let output = last.get("output")?;
        Some(match output {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    /// The names of the tools offered, with their kind (`function`, `custom`).
    pub fn tools(&self) -> Vec<(String, String)> {
        self.body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| {
                        let name = t.get("name").and_then(Value::as_str)?;
                        let ty = t.get("type").and_then(Value::as_str).unwrap_or("function");
                        Some((name.to_owned(), ty.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn input(&self) -> &[Value] {
        self.body
            .get("input")
            .and_then(Value::as_array)
            .map_or(&[], |v| v)
    }
}

/// The script of [`MockModel::start_default`]. After a tool call it answers
/// "Command ran fine". Otherwise it reads the last user message:
///
/// | prompt contains | reply |
/// |---|---|
/// | `run: CMD` | a shell call running `CMD` (the rest of the line) |
/// | `patch: FILE` | an `apply_patch` adding `FILE` with one line |
/// | `http500` | HTTP 500 |
/// | `disconnect` | "Partial" then the body closes before completion |
/// | `slow` | 20 words, 100 ms apart |
/// | `stall` | `response.created`, then silence |
/// | anything else | "Hello from the mock model." |
pub fn default_script(request: &ModelRequest) -> Reply {
    if request.tool_output().is_some() {
        return Reply::text("Command ran fine");
    }
    let text = request.user_text();
    if let Some(rest) = text.split("run: ").nth(1) {
        return Reply::Shell {
            command: rest.lines().next().unwrap_or_default().trim().to_owned(),
        };
    }
    if let Some(rest) = text.split("patch: ").nth(1) {
        let file = rest.split_whitespace().next().unwrap_or("hello_patch.txt");
        return Reply::Patch {
            patch: format!(
                "*** Begin Patch\n*** Add File: {file}\n+hello from apply_patch\n*** End Patch\n"
            ),
        };
    }
    if text.contains("http500") {
        return Reply::HttpError { status: 500 };
    }
    if text.contains("disconnect") {
        return Reply::Disconnect {
            chunks: vec!["Partial".into()],
        };
    }
    if text.contains("slow") {
        return Reply::Text {
            chunks: (1..=20).map(|i| format!("w{i} ")).collect(),
            delay: Duration::from_millis(100),
        };
    }
    if text.contains("stall") {
        return Reply::Stall;
    }
    Reply::text("Hello from the mock model.")
}

type Script = Arc<dyn Fn(&ModelRequest) -> Reply + Send + Sync>;

struct Shared {
    script: Script,
    requests: Mutex<Vec<ModelRequest>>,
    next_id: AtomicU64,
}

/// A running mock model server. Dropping it stops the server and closes
/// every open connection.
pub struct MockModel {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl MockModel {
    /// Starts a server on `127.0.0.1:0` that answers with `script`.
    ///
    /// # Cancel safety
    /// Dropping the future before it resolves leaves nothing running.
    pub async fn start(
        script: impl Fn(&ModelRequest) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<MockModel> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            script: Arc::new(script),
            requests: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        });
        let task = tokio::spawn(serve(listener, router(shared.clone())));
        Ok(MockModel { addr, shared, task })
    }

    /// Starts a server that answers with [`default_script`].
    ///
    /// # Cancel safety
    /// Dropping the future before it resolves leaves nothing running.
    pub async fn start_default() -> std::io::Result<MockModel> {
        Self::start(default_script).await
    }

    /// The base URL to configure codex with (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<ModelRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for MockModel {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every
        // connection task.
        self.task.abort();
    }
}

/// A pause after a failed `accept` (e.g. out of file descriptors), so the
/// loop does not spin on an error that persists.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Accepts connections and serves each with hyper's HTTP/1.1 (codex speaks
/// nothing else to a plain-HTTP provider). Not `axum::serve`: it spawns
/// connections on their own, so dropping it would leave a stalled response
/// streaming; here every connection lives in one `JoinSet` that dies with
/// this task.
async fn serve(listener: TcpListener, router: Router) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let service = TowerToHyperService::new(router.clone());
                    connections.spawn(async move {
                        let conn = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
                        if let Err(e) = conn.await {
                            tracing::debug!(target: "mock_model", "connection ended: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(target: "mock_model", "accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reap finished connections so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The largest request body accepted (codex sends whole conversations; axum's
/// default limit is 2 MiB).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Every path goes to one handler that matches on the path's end, as codex
/// may put any prefix before `/responses` and `/models`.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if method == Method::GET && path.ends_with("/models") {
        return json_response(StatusCode::OK, model_catalog().to_string());
    }
    if method != Method::POST || !path.ends_with("/responses") {
        return json_response(
            StatusCode::NOT_FOUND,
            r#"{"error":{"message":"not found"}}"#.to_owned(),
        );
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let request = ModelRequest { body };
    let reply = (shared.script)(&request);
    shared
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(request.clone());
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    respond(&request, reply, id)
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The slug `mock_config_toml` selects and `GET …/models` describes.
const MODEL_SLUG: &str = "mock-model";

/// The `GET …/models` listing: metadata for [`MODEL_SLUG`], so codex's
/// models manager knows the slug and does not warn that it runs on
/// fallback metadata. The values
/// are codex's own fallback ones, so requests keep their tools and limits;
/// only the base instructions are a line of ours instead of codex's long
/// prompt, which a mock does not read.
fn model_catalog() -> Value {
    json!({"models": [{
        "slug": MODEL_SLUG,
        "display_name": MODEL_SLUG,
        "description": "A loopback stand-in for the OpenAI Responses API.",
        "default_reasoning_level": null,
        "supported_reasoning_levels": [],
        "shell_type": "default",
        "visibility": "list",
        "supported_in_api": true,
        "priority": 0,
        "base_instructions": "You are mock-model, a scripted stand-in for a model.",
        "supports_reasoning_summaries": false,
        "support_verbosity": false,
        "truncation_policy": {"mode": "bytes", "limit": 10_000},
        "supports_parallel_tool_calls": false,
        "context_window": 272_000,
        "max_context_window": 272_000,
        "effective_context_window_percent": 95,
        "experimental_supported_tools": [],
        "input_modalities": ["text", "image"],
        "web_search_tool_type": "text"
    }]})
}

/// One SSE event, named after its `type` as the Responses API does.
fn event(data: Value) -> Event {
    let ty = data["type"].as_str().unwrap_or_default().to_owned();
    Event::default().event(ty).data(data.to_string())
}

fn usage() -> Value {
    json!({
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 107
    })
}

/// What a streamed reply sends: events, each after its pause, and whether
/// the body then ends or stays open.
struct Events {
    steps: Vec<(Duration, Value)>,
    hold_open: bool,
}

impl Events {
    fn now(&mut self, data: Value) {
        self.steps.push((Duration::ZERO, data));
    }
}

fn respond(request: &ModelRequest, reply: Reply, id: u64) -> Response {
    if let Reply::HttpError { status } = reply {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return json_response(
            status,
            r#"{"error":{"message":"mock model failure","type":"server_error"}}"#.to_owned(),
        );
    }
    let mut out = Events {
        steps: Vec::new(),
        hold_open: false,
    };
    let resp_id = format!("resp_{id}");
    out.now(json!({"type": "response.created", "response": {"id": resp_id}}));
    let completed =
        json!({"type": "response.completed", "response": {"id": resp_id, "usage": usage()}});
    match reply {
        Reply::Text { chunks, delay } => {
            message(&mut out, id, &chunks, delay);
            out.now(completed);
        }
        Reply::Disconnect { chunks } => {
            let msg_id = format!("msg_{id}");
            out.now(
                json!({"type": "response.output_item.added", "output_index": 0,
                "item": {"type": "message", "role": "assistant", "id": msg_id, "content": []}}),
            );
            for chunk in &chunks {
                out.now(
                    json!({"type": "response.output_text.delta", "item_id": msg_id,
                    "output_index": 0, "content_index": 0, "delta": chunk}),
                );
            }
        }
        Reply::Shell { command } => {
            let tools = request.tools();
            let call = if tools.iter().any(|(n, _)| n == "shell") {
                (
                    "shell",
                    json!({"command": ["bash", "-lc", command]}).to_string(),
                )
            } else {
                ("exec_command", json!({"cmd": command}).to_string())
            };
            out.now(json!({"type": "response.output_item.done", "output_index": 0,
                "item": {"type": "function_call", "id": format!("fc_{id}"), "call_id": format!("call_{id}"),
                         "name": call.0, "arguments": call.1}}));
            out.now(completed);
        }
        Reply::Patch { patch } => {
            let tools = request.tools();
            let item = match tools.iter().find(|(n, _)| n == "apply_patch") {
                Some((_, kind)) if kind == "custom" => json!({"type": "custom_tool_call",
                    "id": format!("ctc_{id}"), "call_id": format!("call_{id}"), "name": "apply_patch", "input": patch}),
                Some(_) => json!({"type": "function_call", "id": format!("fc_{id}"),
                    "call_id": format!("call_{id}"), "name": "apply_patch",
                    "arguments": json!({"input": patch}).to_string()}),
                None if tools.iter().any(|(n, _)| n == "shell") => json!({"type": "function_call",
                    "id": format!("fc_{id}"), "call_id": format!("call_{id}"), "name": "shell",
                    "arguments": json!({"command": ["apply_patch", patch]}).to_string()}),
                None => json!({"type": "function_call", "id": format!("fc_{id}"),
                    "call_id": format!("call_{id}"), "name": "exec_command",
                    "arguments": json!({"cmd": format!("apply_patch <<'PATCH'\n{patch}PATCH\n")}).to_string()}),
            };
            out.now(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
            out.now(completed);
        }
        Reply::Failed { message } => {
            out.now(
                json!({"type": "response.failed", "response": {"id": resp_id,
                "error": {"code": "server_error", "message": message}}}),
            );
        }
        Reply::Stall => out.hold_open = true,
        Reply::HttpError { .. } => unreachable!("answered above"),
    }
    sse(out)
}

/// Streams the events, each after its pause. The body ends after the last
/// event (codex 0.72.0 ends a turn only then) unless it is held open. The
/// stream is polled by the connection task, so a dropped connection or
/// server stops it: nothing outlives either.
fn sse(script: Events) -> Response {
    let events = stream::iter(script.steps).then(|(delay, data)| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok::<_, Infallible>(event(data))
    });
    let tail = if script.hold_open {
        stream::pending().left_stream()
    } else {
        stream::empty().right_stream()
    };
    Sse::new(events.chain(tail)).into_response()
}

fn message(out: &mut Events, id: u64, chunks: &[String], delay: Duration) {
    let msg_id = format!("msg_{id}");
    out.now(
        json!({"type": "response.output_item.added", "output_index": 0,
        "item": {"type": "message", "role": "assistant", "id": msg_id, "content": []}}),
    );
    for chunk in chunks {
        out.steps.push((
            delay,
            json!({"type": "response.output_text.delta", "item_id": msg_id,
                "output_index": 0, "content_index": 0, "delta": chunk}),
        ));
    }
    let text: String = chunks.concat();
    out.now(
        json!({"type": "response.output_item.done", "output_index": 0,
        "item": {"type": "message", "role": "assistant", "id": msg_id,
                 "content": [{"type": "output_text", "text": text}]}}),
    );
}

/// The `config.toml` that points codex at a mock model at `base_url`, with
/// retries off (a failure shows at once) and the features that reach the
/// network off.
///
/// The provider's `auth` command is there so codex fetches the model's
/// metadata from the mock's `GET …/models`: codex asks a provider for its
/// models only when it has credentials, and without metadata it warns
/// before every first turn. `echo` prints a token nobody checks; codex
/// 0.72.0 ignores the table.
pub fn mock_config_toml(base_url: &str) -> String {
    format!(
        r#"model = "{MODEL_SLUG}"
model_provider = "mock"

[model_providers.mock]
name = "mock"
base_url = "{base_url}"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[model_providers.mock.auth]
command = "echo"
args = ["mock-token"]

[features]
plugins = false
remote_plugin = false
apps = false
"#
    )
}

/// A temporary `CODEX_HOME` directory, removed on drop.
///
/// Always a fresh directory made by [`tempfile`] (random name, created with
/// `mkdir`, mode 0700): never one that already existed, so nobody else on
/// the machine can plant a `config.toml` in it or point it elsewhere.
#[derive(Debug)]
pub struct CodexHome {
    dir: tempfile::TempDir,
}

impl CodexHome {
    /// An empty temporary directory.
    pub fn new() -> std::io::Result<CodexHome> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("codex-home-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()?;
        Ok(CodexHome { dir })
    }

    /// A temporary home whose `config.toml` points at `model`.
    pub fn for_mock(model: &MockModel) -> std::io::Result<CodexHome> {
        let home = CodexHome::new()?;
        std::fs::write(
            home.path().join("config.toml"),
            mock_config_toml(&model.base_url()),
        )?;
        Ok(home)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests;
