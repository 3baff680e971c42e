//! `mcp_client` against the real `@modelcontextprotocol/server-everything`,
//! with the wire recorded. One session is run (on first use) and each test
//! asserts one behaviour of it, on what the server really answered.
//!
//! Needs `node` and `scripts/install-tools servers`. Without them the tests
//! skip with a printed reason, except under `CI=true`, where they fail.

mod live_support;

use std::sync::OnceLock;

use live_support::{ndjson_messages, request_id, responses_to, Recorded};
use serde_json::{json, Value};

const SERVER: &str = "@modelcontextprotocol/server-everything/dist/index.js";

struct Session {
    run: Recorded,
    /// Client → server messages, as written.
    sent: Vec<Value>,
    /// Server → client messages, as written.
    received: Vec<Value>,
}

/// The one recorded session, or `None` (after printing why) when the server
/// is not installed outside CI.
fn session() -> Option<&'static Session> {
    static SESSION: OnceLock<Result<Option<Session>, String>> = OnceLock::new();
    live_support::once(&SESSION, || {
        let server = live_support::installed(SERVER, "server-everything")?;
        let run = live_support::run_recorded(
            &live_support::example("mcp_client"),
            "mcp",
            &["node", server.to_str().unwrap(), "stdio"],
        );
        Some(Session {
            sent: ndjson_messages(&run.sent),
            received: ndjson_messages(&run.received),
            run,
        })
    })
}

#[test]
fn initialize_reaches_the_everything_server() {
    let Some(s) = session() else { return };
    let r = &s.run.report;
    assert_eq!(r["server_info"]["name"], "mcp-servers/everything");
    assert_eq!(r["protocol_version"], "2025-06-18");
    assert!(r["server_capabilities"]["tools"].is_object());
    assert!(r["server_capabilities"]["logging"].is_object());
    // Every message went out as one line of JSON-RPC 2.0.
    assert!(s.sent.iter().all(|m| m["jsonrpc"] == "2.0"));
    assert_eq!(s.sent[0]["method"], "initialize");
}

#[test]
fn tools_list_includes_the_tools_gated_on_our_capabilities() {
    let Some(s) = session() else { return };
    let tools: Vec<&str> = s.run.report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for tool in [
        "echo",
        "trigger-long-running-operation",
        "toggle-simulated-logging",
        // Registered only for clients that declared `roots` / `sampling`.
        "get-roots-list",
        "trigger-sampling-request",
    ] {
        assert!(tools.contains(&tool), "{tool} missing from {tools:?}");
    }
}

#[test]
fn echo_tool_returns_the_message() {
    let Some(s) = session() else { return };
    assert_eq!(s.run.report["echo"], "Echo: hello from jsonrpc-stdio");
}

#[test]
fn roots_request_is_answered_through_the_request_stream() {
    let Some(s) = session() else { return };
    let r = &s.run.report;
    assert_eq!(r["roots_answered"], 1);
    // The server acknowledged our answer in a log notification.
    assert_eq!(
        r["roots_log"],
        json!({
            "level": "info",
            "logger": "everything-server",
            "data": "Roots updated: 1 root(s) received from client"
        })
    );
    let id = request_id(&s.received, "roots/list", |_| true);
    let answers = responses_to(&s.sent, &id);
    assert_eq!(answers.len(), 1, "exactly one answer to roots/list");
    assert_eq!(answers[0]["result"]["roots"][0]["uri"], r["root_uri"]);
}

#[test]
fn sampling_request_is_answered_and_the_answer_reaches_the_tool() {
    let Some(s) = session() else { return };
    let r = &s.run.report;
    assert_eq!(
        r["sampling_prompts"],
        json!(["Resource trigger-sampling-request context: Say hello"])
    );
    let result = r["sampling_result"].as_str().unwrap();
    assert!(result.starts_with("LLM sampling result:"), "{result}");
    assert!(
        result.contains(r["sampling_model"].as_str().unwrap()),
        "{result}"
    );
    assert!(result.contains("A canned answer"), "{result}");
}

#[test]
fn progress_notifications_arrive_in_order_before_the_result() {
    let Some(s) = session() else { return };
    let r = &s.run.report;
    assert_eq!(r["progress"], json!([[1, 4], [2, 4], [3, 4], [4, 4]]));
    assert_eq!(
        r["long_running_result"],
        "Long running operation completed. Duration: 1 seconds, Steps: 4."
    );
}

#[test]
fn tool_logging_reaches_the_log_subscription() {
    let Some(s) = session() else { return };
    let log = &s.run.report["simulated_log"];
    let levels = [
        "debug",
        "info",
        "notice",
        "warning",
        "error",
        "critical",
        "alert",
        "emergency",
    ];
    assert!(levels.contains(&log["level"].as_str().unwrap()), "{log}");
    assert!(log["data"].as_str().unwrap().ends_with("message"), "{log}");
}

#[test]
fn abandoned_call_sends_notifications_cancelled_and_gets_no_answer() {
    let Some(s) = session() else { return };
    let id = request_id(&s.sent, "tools/call", |m| {
        m["params"]["_meta"]["progressToken"] == "cancel-demo"
    });
    let cancels: Vec<&Value> = s
        .sent
        .iter()
        .filter(|m| m["method"] == "notifications/cancelled")
        .collect();
    assert_eq!(cancels.len(), 1, "one cancellation: {cancels:?}");
    assert_eq!(cancels[0]["params"]["requestId"], id);
    assert!(cancels[0].get("id").is_none(), "a notification has no id");
    // The server kept reporting progress to the end but never answered.
    let last = json!({"progress": 3, "total": 3, "progressToken": "cancel-demo"});
    assert!(s.received.iter().any(|m| m["params"] == last));
    assert!(responses_to(&s.received, &id).is_empty());
    assert_eq!(s.run.report["cancel"]["late_responses"], 0);
}

#[test]
fn session_ends_with_a_clean_exit_and_no_process_left() {
    let Some(s) = session() else { return };
    let r = &s.run.report;
    assert_eq!(r["server_exit"], "exit status: 0");
    assert_eq!(r["stats"], json!({"bad_frames": 0, "unparsable": 0}));
    assert_eq!(r["refused_requests"], json!([]));
    assert!(
        s.run.leftovers.is_empty(),
        "left running: {:?}",
        s.run.leftovers
    );
}

#[test]
fn a_server_that_cannot_start_exits_2_with_the_cause() {
    let out = live_support::run_bounded(
        &live_support::example("mcp_client"),
        &["--", "/nonexistent/mcp-server"],
        "mcp-missing",
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not start server `/nonexistent/mcp-server`"),
        "{stderr}"
    );
}
