//! The command line: help, version, and the documented exit statuses.

use std::process::Command;

fn codex_a2a() -> Command {
    Command::new(env!("CARGO_BIN_EXE_codex-a2a"))
}

#[test]
fn help_lists_the_options_and_the_exit_statuses() {
    let out = codex_a2a().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--listen",
        "--state",
        "--mock-model",
        "--approval-timeout",
        "--token",
        "CODEX_HOME",
        "Exit status",
    ] {
        assert!(
            help.contains(word),
            "--help does not mention {word}:\n{help}"
        );
    }
    let out = codex_a2a().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("codex-a2a "));
}

#[test]
fn bad_usage_exits_2_saying_why() {
    let out = codex_a2a()
        .args(["--approval-timeout", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("positive number of seconds"));
}

#[test]
fn a_state_that_cannot_be_opened_exits_4() {
    let out = codex_a2a()
        .args([
            "--state",
            "/proc/no/such/dir/state.db",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open the state database"));
}

#[test]
fn a_missing_codex_exits_3_saying_where_it_looked() {
    let dir = std::env::temp_dir().join(format!("codex-a2a-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = codex_a2a()
        .args([
            "--codex",
            "/no/such/codex",
            "--listen",
            "127.0.0.1:0",
            "--state",
        ])
        .arg(dir.join("state.db"))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/codex"));
}

#[test]
fn a_second_service_on_the_same_state_exits_4() {
    let dir = std::env::temp_dir().join(format!("codex-a2a-cli-twice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.db");
    // codex is only started on the first message: /bin/true passes for it.
    let mut first = codex_a2a()
        .args(["--codex", "/bin/true", "--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(first.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("listening on "), "{line}");
    let second = codex_a2a()
        .args(["--codex", "/bin/true", "--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let status = first.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        second.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(String::from_utf8_lossy(&second.stderr).contains("another codex-a2a"));
    assert_eq!(status.code(), Some(0));
}
