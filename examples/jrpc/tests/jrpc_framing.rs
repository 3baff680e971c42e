//! `jrpc --framing` against real servers: `content-length` for a language
//! server, `ndjson` for an MCP server, and what a mismatch or a bad name does.
//!
//! Needs `node` and `scripts/install-tools servers`. Without them the live
//! tests skip with a printed reason, except under `CI=true`, where they fail.

#[path = "../../../jsonrpc-stdio/tests/live_support/mod.rs"]
mod live_support;

use serde_json::Value;

const LSP_SERVER: &str = "vscode-langservers-extracted/bin/vscode-html-language-server";
const MCP_SERVER: &str = "@modelcontextprotocol/server-everything/dist/index.js";
const MCP_INITIALIZE: &str = r#"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"jrpc-test","version":"0"}}"#;

fn jrpc(args: &[&str], marker: &str) -> (Option<i32>, String, String) {
    let out = live_support::run_bounded(env!("CARGO_BIN_EXE_jrpc"), args, marker);
    let leftovers = live_support::processes_marked(marker);
    assert!(leftovers.is_empty(), "left running: {leftovers:?}");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `jrpc call --framing FRAMING --timeout SECS initialize PARAMS -- node SERVER ARG`.
fn initialize(
    framing: &str,
    timeout_secs: &str,
    params: &str,
    server: &std::path::Path,
    server_arg: &str,
    marker: &str,
) -> (Option<i32>, String, String) {
    let server = server.to_str().unwrap();
    jrpc(
        &[
            "call",
            "--framing",
            framing,
            "--timeout",
            timeout_secs,
            "initialize",
            params,
            "--",
            "node",
            server,
            server_arg,
        ],
        marker,
    )
}

#[test]
fn content_length_framing_calls_a_language_server() {
    let Some(server) = live_support::installed(LSP_SERVER, "vscode-html-language-server") else {
        return;
    };
    let (code, stdout, stderr) = initialize(
        "content-length",
        "20",
        r#"{"processId":null,"rootUri":null,"capabilities":{}}"#,
        &server,
        "--stdio",
        "jrpc-content-length",
    );
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["capabilities"]["hoverProvider"], true, "{result}");
    assert_eq!(result["capabilities"]["textDocumentSync"], 2, "{result}");
}

#[test]
fn ndjson_framing_calls_an_mcp_server() {
    let Some(server) = live_support::installed(MCP_SERVER, "server-everything") else {
        return;
    };
    let (code, stdout, stderr) = initialize(
        "ndjson",
        "20",
        MCP_INITIALIZE,
        &server,
        "stdio",
        "jrpc-ndjson",
    );
    assert_eq!(code, Some(0), "stderr: {stderr}");
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["serverInfo"]["name"], "mcp-servers/everything");
}

#[test]
fn mismatched_framing_times_out_instead_of_hanging() {
    // An NDJSON server never sends a `Content-Length` header, so no frame
    // arrives; the call ends at its timeout with exit status 3.
    let Some(server) = live_support::installed(MCP_SERVER, "server-everything") else {
        return;
    };
    let (code, _, stderr) = initialize(
        "content-length",
        "2",
        MCP_INITIALIZE,
        &server,
        "stdio",
        "jrpc-mismatch",
    );
    assert_eq!(code, Some(3), "stderr: {stderr}");
    assert!(
        stderr.contains("no response to `initialize` within 2s"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_framing_is_a_usage_error_naming_both_framings() {
    let (code, _, stderr) = jrpc(
        &["call", "--framing", "xml", "ping", "--", "true"],
        "jrpc-bad-framing",
    );
    assert_eq!(code, Some(64));
    assert!(stderr.contains(r#"unknown framing "xml""#), "{stderr}");
    assert!(stderr.contains("ndjson or content-length"), "{stderr}");
}
