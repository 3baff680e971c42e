//! A loopback mock model: just enough of the OpenAI Responses API (HTTP/1.1 +
//! server-sent events) for a real `codex app-server` to run turns with no
//! account and no network.
//!
//! [`MockModel::start`] binds `127.0.0.1:0` and answers every
//! `POST …/responses` with a [`Reply`] chosen by a script (a closure over the
//! [`ModelRequest`]); [`default_script`] reads directives from the prompt.
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

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
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
        /// The status, e.g. 500.
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
        let task = tokio::spawn(serve(listener, shared.clone()));
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

async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, shared.clone()));
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

/// The largest request body accepted (codex sends whole conversations).
const MAX_BODY: usize = 64 * 1024 * 1024;

struct HttpRequest {
    method: String,
    path: String,
    body: Vec<u8>,
}

async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<HttpRequest>> {
    let mut buf = Vec::with_capacity(8192);
    let header_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("request headers too long"));
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let path = first.next().unwrap_or_default().to_owned();
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                content_length = value.parse::<usize>().ok();
            } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut rest = buf[header_end..].to_vec();
    let body = if chunked {
        read_chunked(stream, rest).await?
    } else {
        let len = content_length.unwrap_or(0).min(MAX_BODY);
        while rest.len() < len {
            let mut chunk = vec![0u8; (len - rest.len()).min(64 * 1024)];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    };
    Ok(Some(HttpRequest { method, path, body }))
}

async fn read_chunked(stream: &mut TcpStream, mut buf: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        // Wait for a size line.
        let line_end = loop {
            if let Some(pos) = buf.windows(2).position(|w| w == b"\r\n") {
                break pos;
            }
            if buf.len() > 1024 {
                return Err(std::io::Error::other("chunk size line too long"));
            }
            fill(stream, &mut buf).await?;
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| std::io::Error::other("bad chunk size"))?;
        buf.drain(..line_end + 2);
        if size == 0 {
            return Ok(body);
        }
        // The size comes from the peer: refuse it before any arithmetic on
        // it or any read, so neither can overflow nor buffer past the cap.
        if size > MAX_BODY - body.len() {
            return Err(std::io::Error::other("request body too long"));
        }
        while buf.len() < size + 2 {
            fill(stream, &mut buf).await?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

async fn connection(mut stream: TcpStream, shared: Arc<Shared>) {
    let request = match read_request(&mut stream).await {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(target: "mock_model", "bad request: {e}");
            let body = json!({"error": {"message": format!("bad request: {e}")}}).to_string();
            let _ = write_plain(&mut stream, 400, &body).await;
            return;
        }
    };
    if request.method != "POST" || !request.path.ends_with("/responses") {
        let _ = write_plain(&mut stream, 404, r#"{"error":{"message":"not found"}}"#).await;
        return;
    }
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let model_request = ModelRequest { body };
    let reply = (shared.script)(&model_request);
    shared
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(model_request.clone());
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = respond(&mut stream, &model_request, reply, id).await {
        tracing::debug!(target: "mock_model", "response cut short: {e}");
    }
}

async fn write_plain(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        match status {
            400 => "Bad Request",
            404 => "Not Found",
            _ => "Internal Server Error",
        },
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

async fn event(stream: &mut TcpStream, data: Value) -> std::io::Result<()> {
    let ty = data["type"].as_str().unwrap_or_default().to_owned();
    let frame = format!("event: {ty}\ndata: {data}\n\n");
    stream.write_all(frame.as_bytes()).await?;
    stream.flush().await
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

async fn respond(
    stream: &mut TcpStream,
    request: &ModelRequest,
    reply: Reply,
    id: u64,
) -> std::io::Result<()> {
    if let Reply::HttpError { status } = reply {
        return write_plain(
            stream,
            status,
            r#"{"error":{"message":"mock model failure","type":"server_error"}}"#,
        )
        .await;
    }
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await?;
    let resp_id = format!("resp_{id}");
    event(
        stream,
        json!({"type": "response.created", "response": {"id": resp_id}}),
    )
    .await?;
    let completed =
        json!({"type": "response.completed", "response": {"id": resp_id, "usage": usage()}});
    match reply {
        Reply::Text { chunks, delay } => {
            message(stream, id, &chunks, delay).await?;
            event(stream, completed).await?;
        }
        Reply::Disconnect { chunks } => {
            let msg_id = format!("msg_{id}");
            event(
                stream,
                json!({"type": "response.output_item.added", "output_index": 0,
                "item": {"type": "message", "role": "assistant", "id": msg_id, "content": []}}),
            )
            .await?;
            for chunk in &chunks {
                event(
                    stream,
                    json!({"type": "response.output_text.delta", "item_id": msg_id,
                    "output_index": 0, "content_index": 0, "delta": chunk}),
                )
                .await?;
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
            event(stream, json!({"type": "response.output_item.done", "output_index": 0,
                "item": {"type": "function_call", "id": format!("fc_{id}"), "call_id": format!("call_{id}"),
                         "name": call.0, "arguments": call.1}}))
            .await?;
            event(stream, completed).await?;
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
            event(
                stream,
                json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
            )
            .await?;
            event(stream, completed).await?;
        }
        Reply::Failed { message } => {
            event(
                stream,
                json!({"type": "response.failed", "response": {"id": resp_id,
                "error": {"code": "server_error", "message": message}}}),
            )
            .await?;
        }
        Reply::Stall => {
            std::future::pending::<()>().await;
        }
        Reply::HttpError { .. } => unreachable!("answered above"),
    }
    stream.shutdown().await
}

async fn message(
    stream: &mut TcpStream,
    id: u64,
    chunks: &[String],
    delay: Duration,
) -> std::io::Result<()> {
    let msg_id = format!("msg_{id}");
    event(
        stream,
        json!({"type": "response.output_item.added", "output_index": 0,
        "item": {"type": "message", "role": "assistant", "id": msg_id, "content": []}}),
    )
    .await?;
    for chunk in chunks {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        event(
            stream,
            json!({"type": "response.output_text.delta", "item_id": msg_id,
            "output_index": 0, "content_index": 0, "delta": chunk}),
        )
        .await?;
    }
    let text: String = chunks.concat();
    event(
        stream,
        json!({"type": "response.output_item.done", "output_index": 0,
        "item": {"type": "message", "role": "assistant", "id": msg_id,
                 "content": [{"type": "output_text", "text": text}]}}),
    )
    .await
}

/// The `config.toml` that points codex at a mock model at `base_url`, with
/// retries off (a failure shows at once) and the features that reach the
/// network off.
pub fn mock_config_toml(base_url: &str) -> String {
    format!(
        r#"model = "mock-model"
model_provider = "mock"

[model_providers.mock]
name = "mock"
base_url = "{base_url}"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

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
mod tests {
    use super::*;

    async fn post(addr: &str, body: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// `host:port` of the mock, for a raw HTTP request.
    fn addr_of(model: &MockModel) -> String {
        model
            .base_url()
            .trim_start_matches("http://")
            .trim_end_matches("/v1")
            .to_owned()
    }

    fn prompt(text: &str) -> String {
        json!({"input": [{"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}]}]})
        .to_string()
    }

    #[tokio::test]
    async fn a_text_reply_streams_deltas_and_ends_the_body() {
        let model = MockModel::start_default().await.unwrap();
        let addr = addr_of(&model);
        let out = post(&addr, &prompt("say hi")).await;
        assert!(out.starts_with("HTTP/1.1 200 OK"));
        assert!(out.contains("content-type: text/event-stream"));
        let kinds: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(kinds.first(), Some(&"response.created"));
        assert_eq!(kinds.last(), Some(&"response.completed"));
        assert!(out.contains(r#""delta":" mock""#));
        assert_eq!(model.requests().len(), 1);
        assert_eq!(model.requests()[0].user_text(), "say hi");
    }

    #[tokio::test]
    async fn a_chunked_request_body_is_read() {
        let model = MockModel::start_default().await.unwrap();
        let addr = addr_of(&model);
        let body = prompt("http500");
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let req = format!(
            "POST /v1/responses HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 500"), "{out}");
    }

    /// Sends `raw` as one request and returns everything the mock answers.
    async fn exchange(addr: &str, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn a_chunk_size_near_usize_max_is_a_bad_request_not_an_overflow() {
        let model = MockModel::start_default().await.unwrap();
        let addr = addr_of(&model);
        for size in ["ffffffffffffffff", "fffffffffffffffe", "4000001"] {
            let req = format!(
                "POST /v1/responses HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n{size}\r\nxx"
            );
            let out = exchange(&addr, req.as_bytes()).await;
            assert!(out.starts_with("HTTP/1.1 400"), "{size}: {out}");
            assert!(out.contains("request body too long"), "{size}: {out}");
        }
        // The mock still serves.
        assert!(post(&addr, &prompt("hi")).await.starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn each_codex_home_is_a_fresh_private_directory() {
        use std::os::unix::fs::PermissionsExt;
        let a = CodexHome::new().unwrap();
        let b = CodexHome::new().unwrap();
        assert_ne!(a.path(), b.path());
        for home in [&a, &b] {
            let meta = std::fs::symlink_metadata(home.path()).unwrap();
            assert!(meta.is_dir() && !meta.file_type().is_symlink());
            assert_eq!(
                meta.permissions().mode() & 0o777,
                0o700,
                "{:?}",
                home.path()
            );
            assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
        }
        let path = a.path().to_owned();
        drop(a);
        assert!(!path.exists(), "removed on drop");
    }

    #[test]
    fn a_tool_output_gets_a_closing_message() {
        let req = ModelRequest {
            body: json!({"input": [
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "run: ls"}]},
                {"type": "function_call_output", "call_id": "c", "output": "ok"}
            ]}),
        };
        assert_eq!(default_script(&req), Reply::text("Command ran fine"));
    }

    #[test]
    fn the_default_script_reads_directives_from_the_prompt() {
        let req = |t: &str| ModelRequest {
            body: serde_json::from_str(&prompt(t)).unwrap(),
        };
        assert_eq!(
            default_script(&req("please run: echo hi")),
            Reply::Shell {
                command: "echo hi".into()
            }
        );
        assert_eq!(
            default_script(&req("http500")),
            Reply::HttpError { status: 500 }
        );
    }
}
