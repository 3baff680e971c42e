//! `jrpc` end to end: real processes, real pipes, documented exit statuses.

use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[path = "../../../jsonrpc-stdio/tests/live_support/mod.rs"]
mod live_support;

const JRPC: &str = env!("CARGO_BIN_EXE_jrpc");

/// `echo_server` from the `test-peers` crate, built once per run.
fn echo_server() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| live_support::binary("test-peers", "echo_server"))
}

fn jrpc(args: &[&str]) -> Output {
    Command::new(JRPC).args(args).output().expect("jrpc runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn call_prints_the_result_and_exits_0() {
    let out = jrpc(&["call", "echo", r#"{"a":[1,"two"]}"#, "--", echo_server()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{\"a\":[1,\"two\"]}\n");
}

#[test]
fn a_json_rpc_error_goes_to_stderr_with_exit_1() {
    let server =
        r#"read l; printf '{"id":0,"error":{"code":-32601,"message":"no such method"}}\n'"#;
    let out = jrpc(&["call", "nope", "--", "sh", "-c", server]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("no such method"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_server_that_dies_exits_2_with_status_and_stderr() {
    let out = jrpc(&[
        "call",
        "m",
        "--",
        "sh",
        "-c",
        "echo 'cannot load config' >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "jrpc: server exited with status 3; last stderr: cannot load config\n"
    );
}

#[test]
fn a_missing_binary_exits_2_with_the_spawn_error() {
    let out = jrpc(&["call", "m", "--", "/nonexistent/server"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(
        "could not start server `/nonexistent/server`: /nonexistent/server does not exist"
    ));
}

#[test]
fn a_timeout_exits_3_naming_the_method() {
    let started = Instant::now();
    let out = jrpc(&[
        "call",
        "--timeout",
        "0.3",
        "slow",
        "--",
        "sh",
        "-c",
        "cat > /dev/null",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("no response to `slow` within 300ms"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn bad_usage_exits_64_with_the_usage() {
    let out = jrpc(&["call", "m"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("Usage:"));
    let out = jrpc(&["call", "m", "{not json", "--", echo_server()]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn numbers_that_would_panic_are_usage_errors() {
    for args in [
        &["call", "--timeout", "inf", "m", "--", echo_server()][..],
        &["call", "--timeout", "1e30", "m", "--", echo_server()],
        &["call", "--timeout", "NaN", "m", "--", echo_server()],
        &["call", "--timeout", "-1", "m", "--", echo_server()],
        &[
            "bench",
            "--payload",
            "18446744073709551615",
            "--",
            echo_server(),
        ],
        &[
            "bench",
            "--requests",
            "18446744073709551615",
            "--notifications",
            "2",
            "--",
            echo_server(),
        ],
    ] {
        let out = jrpc(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(
            stderr.contains("Usage:") && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
}

#[test]
fn bench_checks_every_result_and_prints_one_summary_line() {
    let out = jrpc(&[
        "bench",
        "--requests",
        "2000",
        "--concurrency",
        "16",
        "--payload",
        "100",
        "--",
        echo_server(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap();
    let fields: Vec<(&str, &str)> = last
        .split(' ')
        .map(|kv| kv.split_once('=').expect("key=value"))
        .collect();
    let keys: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        [
            "requests",
            "concurrency",
            "payload",
            "seconds",
            "rps",
            "p50_us",
            "p99_us"
        ]
    );
    assert_eq!(fields[0].1, "2000");
    assert_eq!(fields[1].1, "16");
    assert_eq!(fields[2].1, "100");
    assert!(fields[4].1.parse::<f64>().unwrap() > 0.0);
}

#[test]
fn bench_exits_2_promptly_when_the_server_dies_mid_run() {
    let started = Instant::now();
    let out = jrpc(&[
        "bench",
        "--requests",
        "1000000",
        "--concurrency",
        "8",
        "--",
        echo_server(),
        "--exit-after",
        "500",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "server exited with status 7; last stderr: echo_server: exiting after 500 answers"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn bench_reads_results_as_values_typed_structs_or_raw_bytes_on_either_runtime() {
    for response in ["value", "typed", "raw"] {
        for runtime in ["current-thread", "multi-thread"] {
            let out = jrpc(&[
                "bench",
                "--response",
                response,
                "--runtime",
                runtime,
                "--requests",
                "500",
                "--concurrency",
                "4",
                "--",
                echo_server(),
            ]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{response} {runtime}: {}",
                text(&out.stderr)
            );
            assert!(
                text(&out.stdout).starts_with("requests=500 "),
                "{}",
                text(&out.stdout)
            );
        }
    }
    // Each mode checks what came back.
    let server = r#"read l; printf '{"id":0,"result":{"data":"tampered"}}\n'; cat > /dev/null"#;
    for response in ["typed", "raw"] {
        let out = jrpc(&[
            "bench",
            "--response",
            response,
            "--requests",
            "1",
            "--",
            "sh",
            "-c",
            server,
        ]);
        assert_eq!(out.status.code(), Some(2), "{response}");
        assert!(
            text(&out.stderr).contains("tampered"),
            "{response}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn bench_notices_a_server_that_answers_wrongly() {
    let server = r#"read l; printf '{"id":0,"result":{"data":"tampered"}}\n'; cat > /dev/null"#;
    let out = jrpc(&["bench", "--requests", "1", "--", "sh", "-c", server]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("tampered"));
}

#[test]
fn echo_server_sends_notifications_before_each_answer() {
    use std::io::Write;
    let mut child = Command::new(echo_server())
        .args(["--notify", "2"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"id\":\"a\",\"method\":\"m\",\"params\":[1]}\n{\"method\":\"note\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        text(&out.stdout),
        concat!(
            "{\"jsonrpc\":\"2.0\",\"method\":\"echo/progress\",\"params\":{\"request\":\"a\",\"seq\":0}}\n",
            "{\"jsonrpc\":\"2.0\",\"method\":\"echo/progress\",\"params\":{\"request\":\"a\",\"seq\":1}}\n",
            "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"result\":[1]}\n",
        )
    );
}
