//! `codex-turn` end to end: a real codex (0.72.0 and the latest) against the
//! embedded mock model, its `--json` shape, its exit statuses, and Ctrl-C.
//!
//! Binaries: `$CODEX_072_BIN` / `$CODEX_LATEST_BIN`, defaulting to
//! `.tools/` (see `scripts/install-tools codex`). Under `CI=true` a missing
//! binary fails; elsewhere the test says why it skips.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How often to check whether a child has exited: `std::process::Child`
/// has no wait with a deadline, so the tests poll `try_wait` up to one.
const EXIT_POLL: Duration = Duration::from_millis(20);

#[path = "../../../codex-adapter/tests/support/codex_binaries.rs"]
mod codex_binaries;
use codex_binaries::binaries;

/// One real-codex test at a time (2-core machines).
static LIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn codex_turn() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_codex-turn"));
    // An empty HOME: codex's login shells then skip the machine's profile,
    // so a shell ended mid-start-up (Ctrl-C) cannot leave a stale profile
    // lock (pyenv's rehash lock) that stalls every later `bash -l`.
    let home = std::env::temp_dir().join(format!("codex-turn-test-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    cmd.current_dir(&home).env("HOME", &home);
    cmd
}

#[test]
fn json_mode_prints_one_line_per_event_then_the_outcome() {
    let _one = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    for (version, codex) in binaries() {
        let out = codex_turn()
            .args(["--json", "--mock-model", "--codex"])
            .arg(&codex)
            .arg("Say hello")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{version}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            lines.iter().all(|l| l["type"].is_string()),
            "{version}: {stdout}"
        );
        let text: String = lines
            .iter()
            .filter(|l| l["type"] == "agent_message_delta")
            .map(|l| l["delta"].as_str().unwrap())
            .collect();
        assert_eq!(text, "Hello from the mock model.", "{version}");
        let last = lines.last().unwrap();
        assert_eq!(last["type"], "outcome", "{version}");
        assert_eq!(last["status"], "completed", "{version}");
        assert_eq!(last["last_agent_message"], "Hello from the mock model.");
    }
}

#[test]
fn a_failed_turn_exits_1() {
    let _one = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    for (version, codex) in binaries() {
        let out = codex_turn()
            .args(["--mock-model", "--codex"])
            .arg(&codex)
            .arg("http500")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("turn failed"));
    }
}

#[test]
fn a_missing_codex_exits_3_with_the_reason() {
    let out = codex_turn()
        .args(["--codex", "/nonexistent/codex", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/codex"));
}

#[test]
fn bad_usage_exits_64_with_the_usage() {
    let out = codex_turn()
        .args(["--approve", "maybe", "hi"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: codex-turn"));
}

#[test]
fn durations_no_duration_can_hold_are_usage_errors_not_panics() {
    for (flag, value) in [
        ("--idle-timeout", "1e30"),
        ("--turn-timeout", "inf"),
        ("--idle-timeout", "NaN"),
    ] {
        let out = codex_turn().args([flag, value, "hi"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(flag) && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn ctrl_c_interrupts_the_turn_exits_2_and_leaves_no_process() {
    let _one = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    for (version, codex) in binaries() {
        let mut child = codex_turn()
            .args(["--json", "--mock-model", "--approval-policy", "never"])
            .args(["--sandbox", "danger-full-access", "--codex"])
            .arg(&codex)
            .arg("run: sleep 27")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Wait for the command to start (bounded by the mock's instant reply).
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let started = line.contains(r#""type":"command_started""#);
            seen.push(line);
            if started {
                break;
            }
        }
        assert!(
            seen.last().is_some_and(|l| l.contains("command_started")),
            "{version}: {seen:?}"
        );
        // Every process under codex-turn now: codex, its shells, the sleep.
        let tree = jsonrpc_stdio::descendants(child.id());
        assert!(!tree.is_empty());
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "{version}: codex-turn did not exit after Ctrl-C"
            );
            std::thread::sleep(EXIT_POLL);
        };
        assert_eq!(status.code(), Some(2), "{version}: {rest:?}");
        let last: Value = serde_json::from_str(rest.last().unwrap()).unwrap();
        assert_eq!(last["type"], "outcome");
        assert_eq!(last["status"], "interrupted", "{version}: {rest:?}");
        let left: Vec<u32> = tree.into_iter().filter(|&p| alive(p)).collect();
        assert!(
            left.is_empty(),
            "{version}: still running after Ctrl-C: {left:?}"
        );
    }
}

#[test]
fn the_outcome_names_the_thread_and_resume_continues_it_with_its_history() {
    let _one = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    // One mock model and one CODEX_HOME for both runs: codex keeps the
    // thread there between them.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let model = runtime
        .block_on(mock_model::MockModel::start_default())
        .unwrap();
    for (version, codex) in binaries() {
        let home = mock_model::CodexHome::for_mock(&model).unwrap();
        let run = |extra: &[&str], prompt: &str| {
            let out = codex_turn()
                .env("CODEX_HOME", home.path())
                .args(["--json", "--codex"])
                .arg(&codex)
                .args(extra)
                .arg(prompt)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let last: Value = stdout
                .lines()
                .last()
                .and_then(|l| serde_json::from_str(l).ok())
                .unwrap_or(Value::Null);
            (
                out.status.code(),
                last,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (code, first, stderr) = run(&[], "Remember the word tangerine");
        assert_eq!(code, Some(0), "{version}: {first}\n{stderr}");
        let thread_id = first["thread_id"]
            .as_str()
            .expect("the outcome names the thread")
            .to_owned();

        let (code, second, stderr) = run(&["--resume", &thread_id], "Which word?");
        assert_eq!(code, Some(0), "{version}: {second}\n{stderr}");
        assert_eq!(second["thread_id"], thread_id.as_str(), "{version}");
        let requests = model.requests();
        let asked = requests
            .iter()
            .rev()
            .find(|r| r.user_text() == "Which word?")
            .unwrap();
        assert_eq!(
            asked.user_texts(),
            ["Remember the word tangerine", "Which word?"],
            "{version}: the resumed thread must carry its history"
        );

        let (code, _, stderr) = run(
            &["--resume", "00000000-0000-0000-0000-000000000000"],
            "Hello?",
        );
        assert_eq!(code, Some(1), "{version}: {stderr}");
        assert!(stderr.contains("no rollout found"), "{version}: {stderr}");
    }
}
