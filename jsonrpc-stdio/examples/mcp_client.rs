//! `mcp_client`: an MCP client on `jsonrpc-stdio`, run against the reference
//! server `@modelcontextprotocol/server-everything` (newline-delimited JSON
//! over stdio). Nobody here wrote that server; this shows the transport
//! serving a protocol it was not built for.
//!
//! ```text
//! mcp_client [--json] [-- CMD [ARGS...]]
//! ```
//!
//! Without `CMD` it runs `node .tools/npm/node_modules/@modelcontextprotocol/
//! server-everything/dist/index.js stdio` from this checkout (install it with
//! `scripts/install-tools servers`).
//!
//! What it does, in order:
//! 1. Takes the server's own requests from a request stream before anything is
//!    sent, and answers `roots/list` (one root: the current directory) and
//!    `sampling/createMessage` (a canned completion); anything else gets
//!    `-32601`.
//! 2. `initialize` (declaring the `roots` and `sampling` capabilities),
//!    `notifications/initialized`, `logging/setLevel`.
//! 3. Waits for the server's `roots/list` request and for the log message
//!    (`notifications/message`) in which it acknowledges the answer.
//! 4. `tools/list`, then `tools/call` of `echo`.
//! 5. `tools/call` of `trigger-sampling-request`: mid-call the server asks
//!    this client for an LLM completion and returns what it got.
//! 6. `tools/call` of `trigger-long-running-operation` with a progress token:
//!    `notifications/progress` arrive before the result.
//! 7. `tools/call` of `toggle-simulated-logging` (on, then off): a log message.
//! 8. Abandons a long-running call at its first progress notification. The
//!    client sends `notifications/cancelled`; the server keeps reporting
//!    progress to the end, but never answers the call.
//! 9. `close`: stdin EOF, then SIGTERM/SIGKILL of the process group if needed.
//!
//! It narrates on stdout; with `--json` it prints a single JSON report of what
//! the server answered instead (the live tests read it).
//!
//! Exit status: 0 every step worked; 1 a step failed; 2 the server is not
//! installed or could not be started; 64 bad usage.

use std::future::IntoFuture;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use futures::{FutureExt, StreamExt};
use jsonrpc_stdio::{
    CancelNotification, Client, ErrorCode, Filter, Framing, IncomingRequests, Subscription,
};
use serde_json::{json, Value};

mod common;
use common::{next_matching, BoxError, Example, Narrator};

/// The MCP revision this client speaks.
const PROTOCOL_VERSION: &str = "2025-06-18";
/// The model name in our canned sampling answer; the server echoes it back.
const SAMPLING_MODEL: &str = "jsonrpc-stdio-canned-model";

fn main() -> ExitCode {
    common::main(
        Example {
            name: "mcp_client",
            server: "server-everything",
            script: "@modelcontextprotocol/server-everything/dist/index.js",
            script_args: &["stdio"],
            framing: Framing::NewlineDelimited,
            cancel: CancelNotification::mcp(),
        },
        |client, out| session(client, out).boxed(),
    )
}

/// What the server asked of this client, as the responder task saw it.
#[derive(Default)]
struct Asked {
    roots_requests: usize,
    sampling_prompts: Vec<String>,
    refused: Vec<String>,
}

/// Answers the server→client requests for as long as the connection lives.
async fn answer_server_requests(
    mut requests: IncomingRequests,
    root_uri: String,
    asked: Arc<Mutex<Asked>>,
) {
    while let Some(request) = requests.next().await {
        let answered = match request.method() {
            "roots/list" => {
                asked.lock().unwrap().roots_requests += 1;
                request.respond_ok(json!({
                    "roots": [{ "uri": root_uri, "name": "current directory" }]
                }))
            }
            "sampling/createMessage" => {
                let prompt = request
                    .params()
                    .and_then(|p| p.pointer("/messages/0/content/text"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                asked.lock().unwrap().sampling_prompts.push(prompt);
                request.respond_ok(json!({
                    "role": "assistant",
                    "content": { "type": "text", "text": "A canned answer: no model was harmed." },
                    "model": SAMPLING_MODEL,
                    "stopReason": "endTurn"
                }))
            }
            "ping" => request.respond_ok(json!({})),
            other => {
                asked.lock().unwrap().refused.push(other.to_owned());
                let message = format!("this client does not implement `{other}`");
                request.respond_err(ErrorCode::METHOD_NOT_FOUND, message)
            }
        };
        if answered.is_err() {
            return; // The connection is dead; the stream ends next.
        }
    }
}

/// The notifications already queued on `sub`, without waiting.
fn drain_queued(sub: &mut Subscription) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(Some(Ok(n))) = sub.next().now_or_never() {
        out.push(n.params().unwrap_or(Value::Null));
    }
    out
}

fn progress_of(token: &'static str) -> impl Fn(&Value) -> bool {
    move |p| p["progressToken"] == token
}

/// The text of the first content item of a `tools/call` result.
fn tool_text(result: &Value) -> String {
    result
        .pointer("/content/0/text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

async fn call_tool(client: &Client, name: &str, arguments: Value) -> Result<Value, BoxError> {
    let result = client
        .request(
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        )
        .await?;
    if result["isError"] == true {
        return Err(format!("tool `{name}` failed: {}", tool_text(&result)).into());
    }
    Ok(result)
}

async fn session(client: &Client, out: &Narrator) -> Result<Value, BoxError> {
    // Everything that listens is registered before the first message is
    // sent, so nothing the server says early can be missed.
    let asked = Arc::new(Mutex::new(Asked::default()));
    let cwd = std::env::current_dir()?;
    let root_uri = format!("file://{}", cwd.display());
    tokio::spawn(answer_server_requests(
        client.requests(Filter::All),
        root_uri.clone(),
        asked.clone(),
    ));
    let mut logs = client.subscribe(Filter::method("notifications/message"));
    let mut progress = client.subscribe(Filter::method("notifications/progress"));

    // 2. Handshake.
    let init = client
        .request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": { "roots": { "listChanged": true }, "sampling": {} },
                "clientInfo": { "name": "jsonrpc-stdio-mcp-example", "version": env!("CARGO_PKG_VERSION") }
            }),
        )
        .await?;
    out.say(format_args!(
        "initialize: {} {} (protocol {})",
        init["serverInfo"]["name"], init["serverInfo"]["version"], init["protocolVersion"]
    ));
    client.notify("notifications/initialized", json!({}))?;
    client
        .request("logging/setLevel", json!({ "level": "debug" }))
        .await?;

    // 3. The server asks for our roots on its own, then logs what it got.
    let roots_log = next_matching(&mut logs, "log acknowledging our roots", |p| {
        p["data"]
            .as_str()
            .is_some_and(|d| d.contains("Roots updated"))
    })
    .await?;
    out.say(format_args!(
        "server log after roots/list: {}",
        roots_log["data"]
    ));

    // 4. Tools.
    let tools = client.request("tools/list", json!({})).await?;
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .ok_or("tools/list returned no `tools` array")?
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    out.say(format_args!(
        "tools/list: {} tools: {}",
        names.len(),
        names.join(", ")
    ));
    let echo = call_tool(
        client,
        "echo",
        json!({ "message": "hello from jsonrpc-stdio" }),
    )
    .await?;
    out.say(format_args!("echo: {:?}", tool_text(&echo)));

    // 5. A tool that makes the server call us back.
    let sampled = call_tool(
        client,
        "trigger-sampling-request",
        json!({ "prompt": "Say hello", "maxTokens": 20 }),
    )
    .await?;
    out.say(format_args!(
        "trigger-sampling-request returned our canned completion: {:?}",
        tool_text(&sampled)
    ));

    // 6. Progress notifications. The subscription predates the call, so every
    // notification written before the result is already queued when it returns.
    let long = client
        .request(
            "tools/call",
            json!({
                "name": "trigger-long-running-operation",
                "arguments": { "duration": 1, "steps": 4 },
                "_meta": { "progressToken": "progress-demo" }
            }),
        )
        .await?;
    let steps: Vec<Value> = drain_queued(&mut progress)
        .into_iter()
        .filter(progress_of("progress-demo"))
        .map(|p| json!([p["progress"], p["total"]]))
        .collect();
    let shown: Vec<String> = steps.iter().map(|s| format!("{}/{}", s[0], s[1])).collect();
    out.say(format_args!(
        "trigger-long-running-operation: progress {}, then {:?}",
        shown.join(" "),
        tool_text(&long)
    ));

    // 7. A tool that logs.
    call_tool(client, "toggle-simulated-logging", json!({})).await?;
    let simulated = next_matching(&mut logs, "simulated log message", |p| {
        p["data"]
            .as_str()
            .is_some_and(|d| d.contains("level message") || d.contains("level-message"))
    })
    .await?;
    call_tool(client, "toggle-simulated-logging", json!({})).await?;
    out.say(format_args!(
        "toggle-simulated-logging: log at level {}: {}",
        simulated["level"], simulated["data"]
    ));

    // 8. Abandon a call: dropping its future sends `notifications/cancelled`.
    let unknown_before = client.stats().unknown_responses;
    let call = client
        .request(
            "tools/call",
            json!({
                "name": "trigger-long-running-operation",
                "arguments": { "duration": 1.5, "steps": 3 },
                "_meta": { "progressToken": "cancel-demo" }
            }),
        )
        .into_future();
    tokio::select! {
        done = call => {
            return Err(format!("the call to abandon finished first: {done:?}").into());
        }
        first = next_matching(&mut progress, "first progress of the call to abandon", progress_of("cancel-demo")) => {
            first?;
        }
    }
    // `select!` dropped the call: its pending entry is gone and
    // `notifications/cancelled` is on its way. This tool keeps reporting
    // progress to its end; a ping after the last step proves that the answer
    // the server would have sent by then was suppressed.
    let last = next_matching(&mut progress, "last progress of the abandoned call", |p| {
        p["progressToken"] == "cancel-demo" && p["progress"] == p["total"]
    })
    .await?;
    client.request("ping", json!({})).await?;
    let late_responses = client.stats().unknown_responses - unknown_before;
    out.say(format_args!(
        "abandoned call: progress went on to {}/{}, late responses after notifications/cancelled: {late_responses}",
        last["progress"], last["total"]
    ));

    let asked = asked.lock().unwrap();
    Ok(json!({
        "server_info": init["serverInfo"],
        "protocol_version": init["protocolVersion"],
        "server_capabilities": init["capabilities"],
        "roots_answered": asked.roots_requests,
        "root_uri": root_uri,
        "roots_log": roots_log,
        "tools": names,
        "echo": tool_text(&echo),
        "sampling_prompts": asked.sampling_prompts,
        "sampling_result": tool_text(&sampled),
        "sampling_model": SAMPLING_MODEL,
        "progress": steps,
        "long_running_result": tool_text(&long),
        "simulated_log": simulated,
        "cancel": {
            "progress_token": "cancel-demo",
            "last_progress": [last["progress"], last["total"]],
            "late_responses": late_responses,
        },
        "refused_requests": asked.refused,
        "stats": {
            "bad_frames": client.stats().bad_frames,
            "unparsable": client.stats().unparsable,
        },
    }))
}
