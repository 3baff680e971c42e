//! `lsp_client`: a Language Server Protocol client on `jsonrpc-stdio`, run
//! against a real language server over `Content-Length` framed stdio: the HTML
//! server from the npm package `vscode-langservers-extracted`.
//!
//! ```text
//! lsp_client [--json] [-- CMD [ARGS...]]
//! ```
//!
//! Without `CMD` it runs `node .tools/npm/node_modules/vscode-langservers-extracted/
//! bin/vscode-html-language-server --stdio` from this checkout (install it with
//! `scripts/install-tools servers`). The HTML server is used rather than the
//! JSON one from the same package because it asks its client for settings
//! (`workspace/configuration`); the JSON server never does.
//!
//! What it does, in order:
//! 1. Takes the server's requests from a request stream before anything is
//!    sent: answers `workspace/configuration` (CSS lint setting
//!    `emptyRules: "error"`, so the diagnostics show the answer was used),
//!    `client/registerCapability` and `client/unregisterCapability`; anything
//!    else gets `-32601`.
//! 2. `initialize` (declaring `workspace.configuration` and
//!    `workspace.workspaceFolders`), then `initialized`; the server registers
//!    `workspace/didChangeWorkspaceFolders` dynamically.
//! 3. Opens an HTML document with an empty CSS rule and waits for
//!    `textDocument/publishDiagnostics`.
//! 4. `textDocument/hover` on a CSS selector.
//! 5. Abandons a `textDocument/completion` request while the server is waiting
//!    for this client's settings for that document: the client sends
//!    `$/cancelRequest`, then the settings; the server answers the abandoned
//!    request with `-32800 RequestCancelled`, which the client ignores as a late
//!    response.
//! 6. `shutdown`, `exit`, waits for the server to exit on its own, and closes.
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
    CancelNotification, Client, ErrorCode, Filter, Framing, IncomingRequest, IncomingRequests,
    Subscription,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

mod common;
use common::{next_matching, BoxError, Example, Narrator, STEP};

/// An HTML page whose `<style>` holds an empty rule (line 4) and a real one
/// (line 5).
const PAGE: &str = "<!DOCTYPE html>\n<html>\n<head>\n<style>\np {}\nh1 { color: red; }\n</style>\n</head>\n<body><h1>Hello</h1></body>\n</html>\n";

fn main() -> ExitCode {
    common::main(
        Example {
            name: "lsp_client",
            server: "vscode-html-language-server",
            script: "vscode-langservers-extracted/bin/vscode-html-language-server",
            script_args: &["--stdio"],
            framing: Framing::ContentLength,
            cancel: CancelNotification::lsp(),
        },
        |client, out| session(client, out).boxed(),
    )
}

/// What the responder task tells the session about the server's requests.
enum Asked {
    /// `client/registerCapability` was answered; the registered methods.
    Registered(Vec<String>),
    /// `workspace/configuration` was answered for this document.
    Configured { uri: String, sections: Vec<String> },
    /// `workspace/configuration` for the held document, not answered yet.
    Held(IncomingRequest),
}

/// The settings this client gives: CSS empty rules are errors (the server's
/// default is a warning), so the diagnostics show that the answer was used.
fn settings_for(items: &[Value]) -> Value {
    items
        .iter()
        .map(|item| match item["section"].as_str() {
            Some("css") => json!({ "lint": { "emptyRules": "error" } }),
            Some("html") => json!({ "validate": { "styles": true, "scripts": true } }),
            _ => json!({}),
        })
        .collect()
}

fn config_items(request: &IncomingRequest) -> Vec<Value> {
    request
        .params()
        .and_then(|p| p["items"].as_array())
        .cloned()
        .unwrap_or_default()
}

/// Answers the server→client requests for as long as the connection lives.
/// A `workspace/configuration` request for the document in `hold` is handed
/// to the session instead, once.
async fn answer_server_requests(
    mut requests: IncomingRequests,
    hold: Arc<Mutex<Option<String>>>,
    asked: mpsc::UnboundedSender<Asked>,
) {
    while let Some(request) = requests.next().await {
        let answered = match request.method() {
            "workspace/configuration" => {
                let items = config_items(&request);
                let uri = items
                    .first()
                    .and_then(|i| i["scopeUri"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                let mut hold = hold.lock().unwrap();
                if hold.as_deref() == Some(uri.as_str()) {
                    *hold = None;
                    let _ = asked.send(Asked::Held(request));
                    continue;
                }
                drop(hold);
                let sections = items
                    .iter()
                    .filter_map(|i| i["section"].as_str().map(str::to_owned))
                    .collect();
                let answered = request.respond_ok(settings_for(&items));
                let _ = asked.send(Asked::Configured { uri, sections });
                answered
            }
            "client/registerCapability" => {
                let methods = request
                    .params()
                    .and_then(|p| p["registrations"].as_array())
                    .map(|rs| {
                        rs.iter()
                            .filter_map(|r| r["method"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let answered = request.respond_ok(Value::Null);
                let _ = asked.send(Asked::Registered(methods));
                answered
            }
            "client/unregisterCapability" | "window/workDoneProgress/create" => {
                request.respond_ok(Value::Null)
            }
            other => {
                let message = format!("this client does not implement `{other}`");
                request.respond_err(ErrorCode::METHOD_NOT_FOUND, message)
            }
        };
        if answered.is_err() {
            return; // The connection is dead; the stream ends next.
        }
    }
}

/// Waits (at most [`STEP`]) for the next event from the responder that
/// `wanted` accepts, skipping the others.
async fn next_asked<T>(
    asked: &mut mpsc::UnboundedReceiver<Asked>,
    what: &str,
    mut wanted: impl FnMut(Asked) -> Option<T>,
) -> Result<T, BoxError> {
    let wait = async {
        while let Some(event) = asked.recv().await {
            if let Some(found) = wanted(event) {
                return Ok(found);
            }
        }
        Err(format!("the connection ended before {what}").into())
    };
    tokio::time::timeout(STEP, wait)
        .await
        .map_err(|_| format!("no {what} within {STEP:?}"))?
}

/// Waits (at most [`STEP`]) for diagnostics about `uri`.
async fn diagnostics_for(diagnostics: &mut Subscription, uri: &str) -> Result<Value, BoxError> {
    let what = format!("diagnostics for {uri}");
    let params = next_matching(diagnostics, &what, |p| p["uri"] == uri).await?;
    Ok(params["diagnostics"].clone())
}

fn open(client: &Client, uri: &str) -> Result<(), BoxError> {
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "html", "version": 1, "text": PAGE } }),
    )?;
    Ok(())
}

async fn session(client: &Client, out: &Narrator) -> Result<Value, BoxError> {
    // Everything that listens is registered before the first message is sent.
    let hold = Arc::new(Mutex::new(None));
    let (asked_tx, mut asked) = mpsc::unbounded_channel();
    tokio::spawn(answer_server_requests(
        client.requests(Filter::All),
        hold.clone(),
        asked_tx,
    ));
    let mut diagnostics = client.subscribe(Filter::method("textDocument/publishDiagnostics"));

    let root = format!("file://{}", std::env::current_dir()?.display());
    let page_uri = format!("{root}/jsonrpc-stdio-example/index.html");
    let cancel_uri = format!("{root}/jsonrpc-stdio-example/abandoned.html");

    // 2. Handshake.
    let init = client
        .request(
            "initialize",
            json!({
                "processId": std::process::id(),
                "clientInfo": { "name": "jsonrpc-stdio-lsp-example", "version": env!("CARGO_PKG_VERSION") },
                "rootUri": root,
                "workspaceFolders": [{ "uri": root, "name": "example" }],
                "capabilities": {
                    "workspace": { "configuration": true, "workspaceFolders": true },
                    "textDocument": {
                        "publishDiagnostics": {},
                        "hover": { "contentFormat": ["plaintext"] },
                        "completion": { "completionItem": { "snippetSupport": false } }
                    }
                }
            }),
        )
        .await?;
    let mut provides: Vec<&str> = init["capabilities"]
        .as_object()
        .ok_or("initialize returned no capabilities")?
        .keys()
        .map(String::as_str)
        .collect();
    provides.sort_unstable();
    out.say(format_args!(
        "initialize: server provides {}",
        provides.join(", ")
    ));
    client.notify("initialized", json!({}))?;
    let registered = next_asked(&mut asked, "client/registerCapability", |a| match a {
        Asked::Registered(methods) => Some(methods),
        _ => None,
    })
    .await?;
    out.say(format_args!(
        "client/registerCapability answered: {registered:?}"
    ));

    // 3. Diagnostics, computed with the settings this client gave.
    open(client, &page_uri)?;
    let configured = next_asked(&mut asked, "workspace/configuration", |a| match a {
        Asked::Configured { uri, sections } if uri == page_uri => Some(sections),
        _ => None,
    })
    .await?;
    out.say(format_args!(
        "workspace/configuration answered for sections {configured:?}"
    ));
    let found = diagnostics_for(&mut diagnostics, &page_uri).await?;
    for d in found.as_array().into_iter().flatten() {
        out.say(format_args!(
            "diagnostic line {} severity {}: {} ({})",
            d["range"]["start"]["line"], d["severity"], d["message"], d["code"]
        ));
    }

    // 4. An ordinary request.
    let hover = client
        .request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": page_uri }, "position": { "line": 5, "character": 0 } }),
        )
        .await?;
    out.say(format_args!("hover on `h1`: {}", hover["contents"]));

    // 5. Abandon a completion while the server waits for our settings.
    *hold.lock().unwrap() = Some(cancel_uri.clone());
    let unknown_before = client.stats().unknown_responses;
    open(client, &cancel_uri)?;
    let completion = client
        .request(
            "textDocument/completion",
            json!({ "textDocument": { "uri": cancel_uri }, "position": { "line": 5, "character": 5 } }),
        )
        .into_future();
    let held = tokio::select! {
        done = completion => {
            return Err(format!("the completion to abandon finished first: {done:?}").into());
        }
        held = next_asked(&mut asked, "workspace/configuration for the abandoned document", |a| match a {
            Asked::Held(request) => Some(request),
            _ => None,
        }) => held?,
    };
    // `select!` dropped the completion: `$/cancelRequest` is queued. The
    // settings follow it, so the server sees the cancellation first.
    held.respond_ok(settings_for(&[
        json!({ "section": "css" }),
        json!({ "section": "html" }),
        json!({ "section": "javascript" }),
        json!({ "section": "js/ts" }),
    ]))?;
    // The server answers the abandoned request before it reads this one.
    client
        .request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": cancel_uri }, "position": { "line": 5, "character": 0 } }),
        )
        .await?;
    let late_responses = client.stats().unknown_responses - unknown_before;
    out.say(format_args!(
        "abandoned completion: $/cancelRequest sent; late responses ignored: {late_responses}"
    ));

    // 6. Shut down the LSP way, and let the server exit by itself.
    let shutdown = client.request("shutdown", Value::Null).await?;
    client.notify("exit", Value::Null)?;
    let reason = tokio::time::timeout(STEP, client.closed())
        .await
        .map_err(|_| "the server did not exit after `exit`")?;
    out.say(format_args!(
        "shutdown answered {shutdown}; after exit: {reason}"
    ));

    Ok(json!({
        "server_info": init["serverInfo"],
        "server_capabilities": init["capabilities"],
        "registered": registered,
        "configuration_sections": configured,
        "diagnostics": found,
        "hover": hover,
        "cancel": {
            "abandoned_uri": cancel_uri,
            "late_responses": late_responses,
        },
        "shutdown": shutdown,
        "exited_by_itself": reason.exit_status().map(|s| s.to_string()),
        "stats": {
            "bad_frames": client.stats().bad_frames,
            "unparsable": client.stats().unparsable,
        },
    }))
}
