//! `lsp_client` against a real language server (`vscode-html-language-server`
//! from `vscode-langservers-extracted`) over `Content-Length` framing, with
//! the wire recorded. One session is run (on first use) and each test asserts
//! one behaviour of it, on what the server really answered.
//!
//! Needs `node` and `scripts/install-tools servers`. Without them the tests
//! skip with a printed reason, except under `CI=true`, where they fail.

mod live_support;

use std::sync::OnceLock;

use live_support::{content_length_messages, request_id, responses_to, Recorded};
use serde_json::{json, Value};

const SERVER: &str = "vscode-langservers-extracted/bin/vscode-html-language-server";

struct Session {
    run: Recorded,
    /// Client → server frames: (header block, message).
    sent: Vec<(String, Value)>,
    /// Server → client frames: (header block, message).
    received: Vec<(String, Value)>,
}

impl Session {
    fn sent(&self) -> Vec<Value> {
        self.sent.iter().map(|(_, m)| m.clone()).collect()
    }

    fn received(&self) -> Vec<Value> {
        self.received.iter().map(|(_, m)| m.clone()).collect()
    }
}

/// The one recorded session, or `None` (after printing why) when the server
/// is not installed outside CI.
fn session() -> Option<&'static Session> {
    static SESSION: OnceLock<Result<Option<Session>, String>> = OnceLock::new();
    live_support::once(&SESSION, || {
        let server = live_support::installed(SERVER, "vscode-html-language-server")?;
        let run = live_support::run_recorded(
            &live_support::example("lsp_client"),
            "lsp",
            &["node", server.to_str().unwrap(), "--stdio"],
        );
        Some(Session {
            sent: content_length_messages(&run.sent),
            received: content_length_messages(&run.received),
            run,
        })
    })
}

#[test]
fn messages_go_out_with_content_length_headers() {
    let Some(s) = session() else { return };
    // The recorded stream parsed frame by frame to its last byte, each body
    // exactly as long as its header said; the header is that one line.
    assert!(!s.sent.is_empty());
    for (header, _) in &s.sent {
        let length = header.strip_prefix("Content-Length: ").expect(header);
        assert!(length.bytes().all(|b| b.is_ascii_digit()), "{header:?}");
    }
    assert_eq!(s.sent[0].1["method"], "initialize");
}

#[test]
fn initialize_returns_the_html_servers_capabilities() {
    let Some(s) = session() else { return };
    let caps = &s.run.report["server_capabilities"];
    assert_eq!(caps["hoverProvider"], true);
    assert_eq!(caps["documentSymbolProvider"], true);
    assert_eq!(caps["textDocumentSync"], 2, "incremental sync");
}

#[test]
fn register_capability_is_answered_through_the_request_stream() {
    let Some(s) = session() else { return };
    assert_eq!(
        s.run.report["registered"],
        json!(["workspace/didChangeWorkspaceFolders"])
    );
    let id = request_id(&s.received(), "client/registerCapability", |_| true);
    let sent = s.sent();
    let answers = responses_to(&sent, &id);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["result"], Value::Null);
    assert!(answers[0].get("error").is_none());
}

#[test]
fn configuration_answer_is_used_by_the_diagnostics() {
    let Some(s) = session() else { return };
    let r = &s.run.report;
    assert_eq!(
        r["configuration_sections"],
        json!(["css", "html", "javascript", "js/ts"])
    );
    // The server's default for an empty CSS rule is a warning (2); we
    // configured "error" (1).
    let diagnostics = r["diagnostics"].as_array().unwrap();
    let empty_rule = diagnostics
        .iter()
        .find(|d| d["code"] == "emptyRules")
        .unwrap_or_else(|| panic!("no emptyRules diagnostic in {diagnostics:?}"));
    assert_eq!(empty_rule["severity"], 1);
    assert_eq!(empty_rule["source"], "css");
    assert_eq!(empty_rule["message"], "Do not use empty rulesets");
    assert_eq!(empty_rule["range"]["start"]["line"], 4);
}

#[test]
fn hover_shows_the_selector_specificity() {
    let Some(s) = session() else { return };
    let contents = s.run.report["hover"]["contents"].to_string();
    assert!(contents.contains("<h1>"), "{contents}");
    assert!(contents.contains("Specificity"), "{contents}");
}

#[test]
fn abandoned_request_sends_cancel_request_and_the_server_answers_request_cancelled() {
    let Some(s) = session() else { return };
    let sent = s.sent();
    let id = request_id(&sent, "textDocument/completion", |_| true);
    let cancel = sent
        .iter()
        .position(|m| m["method"] == "$/cancelRequest")
        .expect("$/cancelRequest on the wire");
    assert_eq!(sent[cancel]["params"], json!({ "id": id }));
    // It went out before the settings the server was waiting for.
    let held_config = request_id(&s.received(), "workspace/configuration", |m| {
        m["params"]["items"][0]["scopeUri"] == s.run.report["cancel"]["abandoned_uri"]
    });
    let settings = sent
        .iter()
        .position(|m| m.get("method").is_none() && m["id"] == held_config)
        .expect("the held settings were sent");
    assert!(cancel < settings);
    // The server answered the abandoned request with RequestCancelled, and the
    // client counted it as a late response instead of delivering it.
    let received = s.received();
    let answers = responses_to(&received, &id);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["error"]["code"], -32800);
    assert_eq!(s.run.report["cancel"]["late_responses"], 1);
}

#[test]
fn shutdown_and_exit_end_the_server_by_itself_and_no_process_is_left() {
    let Some(s) = session() else { return };
    let r = &s.run.report;
    assert_eq!(r["shutdown"], Value::Null);
    assert_eq!(r["exited_by_itself"], "exit status: 0");
    assert_eq!(r["server_exit"], "exit status: 0");
    let sent = s.sent();
    let last = sent.last().unwrap();
    assert_eq!(last["method"], "exit");
    assert_eq!(r["stats"], json!({"bad_frames": 0, "unparsable": 0}));
    assert!(
        s.run.leftovers.is_empty(),
        "left running: {:?}",
        s.run.leftovers
    );
}
