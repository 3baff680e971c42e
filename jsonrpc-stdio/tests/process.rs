//! Liveness against real child processes and real pipes. Each server is a
//! small `sh` script, written out in the test, so the fault it shows is plain
//! to read. The client numbers its requests 0, 1, 2, ..., which the scripts
//! rely on to answer.

use std::time::{Duration, Instant};

mod children;

use children::{announced_pid, wait_exited};
use futures::StreamExt;
use jsonrpc_stdio::{Client, CloseReason, Filter, ServerCommand};
use serde_json::json;

fn sh(script: &str) -> ServerCommand {
    ServerCommand::new("sh").arg("-c").arg(script)
}

fn spawn(script: &str) -> Client {
    Client::builder()
        .close_grace(Duration::from_millis(300), Duration::from_millis(300))
        .spawn(sh(script))
        .expect("sh starts")
}

/// Whether `pid` is gone (or a zombie no one here can reap: re-parented to
/// init, which reaps it in its own time; or being reaped: `X`, seen for a
/// moment before its entry goes).
fn is_gone(pid: u32) -> bool {
    matches!(state_of(pid), None | Some('Z' | 'X'))
}

/// Waits until `condition` holds, failing after 10 s with `what`. Only for
/// what gives this test no event: a process our client owns being reaped or
/// stopping.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits for `pid` to end (see [`wait_exited`]). Fails after 10 s.
async fn wait_gone(pid: u32) {
    assert!(
        wait_exited(pid, Duration::from_secs(10)).await,
        "process {pid} still running"
    );
    assert!(is_gone(pid), "process {pid} exited but is not gone");
}

#[tokio::test]
async fn exit_fails_every_pending_request_with_status_and_stderr() {
    let client = spawn("read a; read b; echo 'fatal: model not found' >&2; exit 3");
    let calls: Vec<_> = (0..2)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { c.request("m", json!(i)).timeout(None).await })
        })
        .collect();
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "server exited with status 3; last stderr: fatal: model not found"
        );
        assert_eq!(
            err.close_reason().unwrap().exit_status().unwrap().code(),
            Some(3)
        );
    }
}

#[tokio::test]
async fn responses_written_before_exit_still_resolve_their_callers() {
    let client = spawn(
        r#"read a; read b; printf '{"id":0,"result":"first"}\n{"id":1,"result":"second"}\n'; exit 0"#,
    );
    let (a, b) = tokio::join!(
        client.request("a", json!(null)),
        client.request("b", json!(null))
    );
    assert_eq!(a.unwrap(), json!("first"));
    assert_eq!(b.unwrap(), json!("second"));
    let reason = client.closed().await;
    assert_eq!(reason.exit_status().unwrap().code(), Some(0));
}

#[tokio::test]
async fn a_request_after_death_fails_at_once() {
    let client = spawn("exit 5");
    let reason = client.closed().await;
    let started = Instant::now();
    let err = client
        .request("m", json!(null))
        .timeout(None)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(50));
    assert_eq!(err.to_string(), reason.to_string());
    assert!(err.to_string().starts_with("server exited with status 5"));
}

#[tokio::test]
async fn a_server_that_exits_before_answering_fails_the_request() {
    let client = spawn("exit 0");
    let err = client
        .request("initialize", json!({}))
        .timeout(None)
        .await
        .unwrap_err();
    assert!(err.is_closed(), "{err}");
}

#[tokio::test]
async fn a_missing_program_is_a_spawn_error_that_names_it() {
    let err = Client::spawn(ServerCommand::new("/nonexistent/codex")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("could not start server `/nonexistent/codex`"),
        "{msg}"
    );
    assert!(!err.is_closed());
}

#[tokio::test]
async fn closing_stdout_while_running_fails_pending_requests() {
    let client = spawn("read a; exec 1>&-; exec sleep 30");
    let pid = client.pid().unwrap();
    let err = client
        .request("m", json!(null))
        .timeout(None)
        .await
        .unwrap_err();
    assert!(
        matches!(err.close_reason(), Some(CloseReason::OutputClosed { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("closed its output"), "{err}");
    // The dead connection still ends the process when closed.
    let status = client.close().await.unwrap().unwrap();
    assert!(!status.success());
    wait_gone(pid).await;
}

#[tokio::test]
async fn exit_is_seen_even_when_a_grandchild_holds_stdout_open() {
    let client = spawn("read a; sleep 30 & exit 4");
    let started = Instant::now();
    let err = client
        .request("m", json!(null))
        .timeout(None)
        .await
        .unwrap_err();
    assert_eq!(
        err.close_reason().unwrap().exit_status().unwrap().code(),
        Some(4)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_killed_server_fails_every_pending_request_at_once() {
    let client = spawn("cat > /dev/null");
    let calls: Vec<_> = (0..1000)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { c.request("m", json!(i)).timeout(None).await })
        })
        .collect();
    tokio::task::yield_now().await;
    let pid = client.pid().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    for call in calls {
        let err = tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("a request outlived the server")
            .unwrap()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "server was killed by signal 9; it wrote nothing to stderr"
        );
    }
}

#[tokio::test]
async fn close_is_graceful_when_the_server_exits_on_stdin_eof() {
    let client = spawn("cat > /dev/null; exit 0");
    let started = Instant::now();
    let status = client.close().await.unwrap().unwrap();
    assert!(status.success());
    assert!(started.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn close_escalates_to_sigkill_when_the_server_ignores_eof_and_sigterm() {
    let client = spawn("trap '' TERM; while :; do sleep 0.05; done");
    let pid = client.pid().unwrap();
    let status = client.close().await.unwrap().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
    wait_gone(pid).await;
}

#[tokio::test]
async fn close_sends_sigterm_to_a_server_that_ignores_stdin_eof() {
    let client = spawn("while :; do sleep 0.05; done");
    let status = client.close().await.unwrap().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15));
}

/// Starts a server that reports a background child's pid as a notification,
/// then serves until its input ends.
async fn server_with_grandchild(start_child: &str) -> (Client, u32, u32) {
    let client = spawn(&format!(
        r#"{start_child} & printf '{{"method":"child","params":%s}}\n' $!; cat > /dev/null"#
    ));
    let mut notes = client.subscribe(Filter::method("child"));
    let grandchild = announced_pid(&mut notes).await;
    let pid = client.pid().unwrap();
    (client, pid, grandchild)
}

#[tokio::test]
async fn dropping_the_client_kills_the_server_and_its_grandchildren() {
    let (client, pid, grandchild) = server_with_grandchild("sleep 300").await;
    assert!(!is_gone(grandchild));
    drop(client);
    wait_gone(pid).await;
    wait_gone(grandchild).await;
}

#[tokio::test]
async fn dropping_the_client_kills_a_grandchild_in_its_own_session() {
    let (client, pid, grandchild) = server_with_grandchild("setsid sleep 300").await;
    drop(client);
    wait_gone(pid).await;
    wait_gone(grandchild).await;
}

#[tokio::test]
async fn close_leaves_no_grandchild_behind() {
    let (client, pid, grandchild) = server_with_grandchild("sleep 300").await;
    let status = client.close().await.unwrap().unwrap();
    assert!(status.success(), "{status}");
    wait_gone(pid).await;
    wait_gone(grandchild).await;
}

#[tokio::test]
async fn a_stderr_flood_never_blocks_the_server_and_the_tail_stays_bounded() {
    // 8 MiB of stderr with no newline, then 20,000 lines, then an answer.
    let client = spawn(
        r#"head -c 8388608 /dev/zero | tr '\0' x >&2; seq 1 20000 >&2; read a; printf '{"id":0,"result":"done"}\n'; echo bye >&2; exit 1"#,
    );
    let answer = client
        .request("m", json!(null))
        .timeout(Some(Duration::from_secs(30)))
        .await;
    assert_eq!(answer.unwrap(), json!("done"));
    let reason = client.closed().await;
    let tail = reason.stderr_tail();
    assert!(tail.len() <= 64 * 1024 + 1, "tail is {} bytes", tail.len());
    assert!(
        tail.ends_with("19999\n20000\nbye\n"),
        "{}",
        &tail[tail.len() - 40..]
    );
}

#[tokio::test]
async fn env_and_cwd_reach_the_server() {
    let dir = std::env::temp_dir();
    let cmd = sh(r#"read a; printf '{"id":0,"result":["%s","%s","%s"]}\n' "$GREETING" "$(pwd)" "${HOME:-unset}""#)
        .env_clear()
        .env("GREETING", "hello")
        .env("PATH", "/usr/bin:/bin")
        .current_dir(&dir);
    let client = Client::spawn(cmd).unwrap();
    let answer = client.request("m", json!(null)).await.unwrap();
    let dir = dir.canonicalize().unwrap();
    assert_eq!(answer, json!(["hello", dir.to_str().unwrap(), "unset"]));
}

/// The state letter of `pid` (`Z` for a zombie), or `None` once it is gone.
fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next())
}

/// A server that double-forks a daemon into a session of its own (it is
/// re-parented away from the server at once), reports its pid, and serves
/// until its input ends. The daemon keeps the server's stdout and stderr.
async fn server_with_daemon() -> (Client, u32, u32) {
    let (client, pid, daemon) = server_with_grandchild_script(
        r#"( setsid sleep 300 & printf '{"method":"child","params":%s}\n' $! ); cat > /dev/null"#,
    )
    .await;
    let parent = std::fs::read_to_string(format!("/proc/{daemon}/stat")).unwrap();
    assert!(
        !parent.contains(&format!(") S {pid} ")),
        "the daemon should have left its parent: {parent}"
    );
    (client, pid, daemon)
}

async fn server_with_grandchild_script(script: &str) -> (Client, u32, u32) {
    let client = spawn(script);
    let mut notes = client.subscribe(Filter::method("child"));
    let child = announced_pid(&mut notes).await;
    let pid = client.pid().unwrap();
    (client, pid, child)
}

#[tokio::test]
async fn close_ends_a_double_forked_daemon_that_kept_the_pipes() {
    let (client, pid, daemon) = server_with_daemon().await;
    assert!(!is_gone(daemon));
    let status = client.close().await.unwrap().unwrap();
    assert!(status.success(), "{status}");
    wait_gone(pid).await;
    wait_gone(daemon).await;
}

#[tokio::test]
async fn dropping_the_client_ends_a_double_forked_daemon() {
    let (client, pid, daemon) = server_with_daemon().await;
    drop(client);
    wait_gone(pid).await;
    wait_gone(daemon).await;
}

#[tokio::test]
async fn an_exited_server_stays_unreaped_until_the_client_lets_go() {
    // While the leader is a zombie its pid, which is also its process group
    // id, cannot be reused: signalling the group stays safe, however late.
    let client = spawn("exit 3");
    let pid = client.pid().unwrap();
    // The owner publishes the exit only after deciding whether to reap: an
    // exit seen here is one it chose not to reap.
    let reason = client.closed().await;
    assert_eq!(reason.exit_status().unwrap().code(), Some(3));
    assert_eq!(state_of(pid), Some('Z'), "reaped while the client holds it");
    let status = client.close().await.unwrap().unwrap();
    assert_eq!(status.code(), Some(3));
    assert_eq!(state_of(pid), None, "close reaps");
}

#[tokio::test]
async fn dropping_a_client_of_an_exited_server_reaps_it() {
    let client = spawn("exit 0");
    let pid = client.pid().unwrap();
    client.closed().await;
    drop(client);
    until("never reaped", || state_of(pid).is_none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_stolen_by_someone_else_never_reports_a_made_up_status() {
    // Something else in the program reaps the server (a `waitpid` of its
    // own): the connection must report the truth (status 7) or that it
    // could not know, never "exited with status 0".
    let client = spawn("read a; exit 7");
    let pid = nix::unistd::Pid::from_raw(client.pid().unwrap() as i32);
    let (waiting, thief_waits) = tokio::sync::oneshot::channel();
    let thief = std::thread::spawn(move || {
        let _ = waiting.send(());
        nix::sys::wait::waitpid(pid, None)
    });
    // The thief's `waitpid` starts a step after its signal; the server
    // exits only after a round trip through its stdin. (Even a later
    // `waitpid` would steal: the owner leaves the zombie until close.)
    thief_waits.await.unwrap();
    client.notify("go", json!(null)).unwrap();
    let stolen = thief.join().unwrap();
    assert!(
        matches!(stolen, Ok(nix::sys::wait::WaitStatus::Exited(_, 7))),
        "{stolen:?}"
    );
    let reason = client.closed().await;
    match &*reason {
        CloseReason::Exited { status, .. } => assert_eq!(status.code(), Some(7), "{reason}"),
        CloseReason::WaitFailed { .. } => {
            assert!(reason.to_string().contains("could not wait"), "{reason}")
        }
        other => panic!("unexpected cause: {other}"),
    }
    match client.close().await {
        Ok(Some(status)) => assert_eq!(status.code(), Some(7)),
        Err(e) => assert!(e.to_string().contains("could not wait"), "{e}"),
        Ok(None) => panic!("a spawned server has a status"),
    }
}

#[test]
fn spawn_outside_a_runtime_is_an_error_and_starts_nothing() {
    let dir = std::env::temp_dir().join(format!("jsonrpc-no-runtime-{}", std::process::id()));
    let marker = dir.join("started");
    std::fs::create_dir_all(&dir).unwrap();
    // A process started by mistake would still be running, its environment
    // naming the marker (kept across the `exec`), when `spawn` returns
    // (which it does only after the exec): looked for at once, no waiting.
    let touch = || sh(r#"touch "$JSONRPC_MARKER"; exec sleep 300"#).env("JSONRPC_MARKER", &marker);
    let started = || {
        let me = std::process::id();
        jsonrpc_stdio::descendants(me).into_iter().any(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                String::from_utf8_lossy(&environ).contains(&*marker.to_string_lossy())
            })
        })
    };
    let err = Client::spawn(touch()).unwrap_err();
    assert!(matches!(err, jsonrpc_stdio::Error::Runtime { .. }), "{err}");
    assert!(err.to_string().contains("tokio runtime"), "{err}");
    assert!(!started(), "a process was started");

    for (what, runtime) in [
        (
            "IO",
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build(),
        ),
        (
            "timers",
            tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build(),
        ),
    ] {
        let err = runtime
            .unwrap()
            .block_on(async { Client::spawn(touch()) })
            .unwrap_err();
        assert!(matches!(err, jsonrpc_stdio::Error::Runtime { .. }), "{err}");
        let expected = if what == "IO" { "no IO" } else { "no timers" };
        assert!(err.to_string().contains(expected), "{err}");
        assert!(!started(), "a process was started without {what}");
    }
    assert!(!marker.exists(), "a process was started");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_awaited_on_a_runtime_without_timers_is_still_timed() {
    let client = spawn(r#"read a; printf '{"id":0,"result":"answered"}\n'; cat > /dev/null"#);
    let c = client.clone();
    let (answered, timed_out) = tokio::task::spawn_blocking(move || {
        let bare = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        bare.block_on(async {
            let answered = c
                .request("a", json!(null))
                .timeout(Some(Duration::from_secs(10)))
                .await;
            let timed_out = c
                .request("b", json!(null))
                .timeout(Some(Duration::from_millis(100)))
                .await;
            (answered, timed_out)
        })
    })
    .await
    .unwrap();
    assert_eq!(answered.unwrap(), json!("answered"));
    assert!(timed_out.unwrap_err().is_timeout());
}

#[tokio::test]
async fn a_missing_working_directory_is_named_not_the_program() {
    let err = Client::spawn(sh("true").current_dir("/nonexistent/work dir")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("working directory /nonexistent/work dir does not exist"),
        "{msg}"
    );
    assert!(!msg.contains("PATH"), "{msg}");

    let file = std::env::current_exe().unwrap();
    let err = Client::spawn(sh("true").current_dir(&file)).unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
}

#[tokio::test]
async fn a_missing_program_names_the_program_and_the_path_searched() {
    let err = Client::spawn(ServerCommand::new("no-such-server-xyz").env("PATH", "/opt/a:/opt/b"))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`no-such-server-xyz`"), "{msg}");
    assert!(msg.contains("not found on PATH (/opt/a:/opt/b)"), "{msg}");

    let err = Client::spawn(ServerCommand::new("/nonexistent/codex")).unwrap_err();
    assert!(
        err.to_string()
            .contains("/nonexistent/codex does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn a_program_without_execute_permission_says_permission_denied() {
    let dir = std::env::temp_dir().join(format!("jsonrpc-noexec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("server.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let err = Client::spawn(ServerCommand::new(&script)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("permission denied"), "{msg}");
    assert!(msg.contains("not executable"), "{msg}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A waker that panics: user code that runs while the client holds a lock.
/// It says so first, so the test knows when the lock is being poisoned.
struct PanickingWaker {
    woken: tokio::sync::Notify,
}

impl futures::task::ArcWake for PanickingWaker {
    fn wake_by_ref(waker: &std::sync::Arc<Self>) {
        waker.woken.notify_one();
        panic!("a user's waker panicked");
    }
}

#[tokio::test]
async fn dropping_the_client_after_a_panic_poisoned_its_locks_does_not_panic() {
    let client = spawn(r#"read a; printf '{"method":"n"}\n'; cat > /dev/null"#);
    let pid = client.pid().unwrap();
    let mut notes = client.subscribe(Filter::method("n"));
    let panicking = std::sync::Arc::new(PanickingWaker {
        woken: tokio::sync::Notify::new(),
    });
    let waker = futures::task::waker(panicking.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(futures::Stream::poll_next(std::pin::Pin::new(&mut notes), &mut cx).is_pending());
    // The notification wakes that waker from inside the reader, which
    // holds the routes lock: the panic poisons it. Once it is woken, the
    // lock is poisoned before anyone else can take it, `Drop` included.
    client.notify("go", json!(null)).unwrap();
    tokio::time::timeout(Duration::from_secs(10), panicking.woken.notified())
        .await
        .expect("the notification never came");
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(client)));
    assert!(dropped.is_ok(), "Drop panicked");
    wait_gone(pid).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_makes_requests_wait_and_notifications_fail_until_the_server_reads() {
    const LIMIT: usize = 64 * 1024;
    // Stops itself at once; once continued, answers request 0.
    let client = Client::builder()
        .max_queued_bytes(LIMIT)
        .close_grace(Duration::from_millis(300), Duration::from_millis(300))
        .spawn(sh(
            r#"kill -STOP $$; while read -r l; do case "$l" in *'"id":0'*) printf '{"id":0,"result":"sent"}\n';; esac; done"#,
        ))
        .unwrap();
    let pid = client.pid().unwrap();
    until("the server never stopped", || state_of(pid) == Some('T')).await;
    // The pipe fills first, then our queue. The pauses are the scenario's:
    // they let the writer, on the other worker, push into the pipe until it
    // is full; a queue that filled first would drain into it later, and the
    // request below would find room at once.
    let chunk = "y".repeat(4096);
    let mut sent = 0;
    let full = loop {
        match client.notify("fill", json!({ "data": chunk })) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 10_000, "the queue never filled");
        if sent % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    assert!(
        matches!(full, jsonrpc_stdio::Error::QueueFull { limit: LIMIT, .. }),
        "{full}"
    );
    assert!(full.to_string().contains("`fill`"), "{full}");
    let queued = client.stats().queued_bytes;
    assert!(queued > 0 && queued <= LIMIT as u64, "{queued}");

    // A request as large waits for room rather than failing or growing the
    // queue.
    let c = client.clone();
    let params = json!({ "data": chunk });
    let mut call = tokio::spawn(async move { c.request("r", params).timeout(None).await });
    // Nothing to wait for: what is checked is that nothing happens.
    let early = tokio::time::timeout(Duration::from_millis(200), &mut call).await;
    assert!(early.is_err(), "{early:?}");
    assert_eq!(client.stats().pending_requests, 0, "not sent yet");
    assert!(client.stats().queued_bytes <= LIMIT as u64);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGCONT,
    )
    .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the request never went out")
        .unwrap();
    assert_eq!(answer.unwrap(), json!("sent"));
    assert_eq!(client.stats().pending_requests, 0);
    assert_eq!(client.stats().queued_bytes, 0);
    client.notify("fill", json!({ "data": chunk })).unwrap();
}

/// The request the client writes for `method` with id `id` and null params.
fn request_bytes(id: u32, method: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":null}}"#)
}

async fn expect_too_large(client: &Client, method: &str) {
    let started = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(method, json!(null)).timeout(None),
    )
    .await
    .expect("the caller of a too-large response waited")
    .unwrap_err();
    assert!(
        matches!(
            &err,
            jsonrpc_stdio::Error::ResponseTooLarge { limit: 1024, .. }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("response too large (limit 1024 bytes)"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_response_too_large_fails_its_caller_at_once_newline_delimited() {
    // 200 kB responses: the id first, then the id last; then a small one.
    let big = "head -c 200000 /dev/zero | tr '\\0' x";
    let client = Client::builder()
        .max_frame_length(1024)
        .spawn(sh(&format!(
            r#"read a; printf '{{"id":0,"result":"'; {big}; printf '"}}\n'
               read b; printf '{{"jsonrpc":"2.0","result":{{"text":"'; {big}; printf '"}},"id":1}}\r\n'
               read c; printf '{{"id":2,"result":"small"}}\n'; cat > /dev/null"#
        )))
        .unwrap();
    expect_too_large(&client, "big").await;
    expect_too_large(&client, "big-id-last").await;
    assert_eq!(
        client.request("small", json!(null)).await.unwrap(),
        json!("small")
    );
    assert_eq!(client.stats().bad_frames, 2);
    assert_eq!(client.stats().pending_requests, 0);
}

#[tokio::test]
async fn a_response_too_large_fails_its_caller_at_once_content_length() {
    let framed = |body: &str| format!("Content-Length: {}\r\n\r\n{body}", body.len());
    let consume = |id, method| {
        format!(
            "dd bs=1 count={} of=/dev/null 2>/dev/null",
            framed(&request_bytes(id, method)).len()
        )
    };
    let body_len = r#"{"id":0,"result":""}"#.len() + 200_000;
    let client = Client::builder()
        .framing(jsonrpc_stdio::Framing::ContentLength)
        .max_frame_length(1024)
        .spawn(sh(&format!(
            r#"{}; printf 'Content-Length: {body_len}\r\n\r\n{{"id":0,"result":"'; head -c 200000 /dev/zero | tr '\0' x; printf '"}}'
               {}; printf '{}'; cat > /dev/null"#,
            consume(0, "big"),
            consume(1, "small"),
            framed(r#"{"id":1,"result":"small"}"#).replace('\r', "\\r").replace('\n', "\\n"),
        )))
        .unwrap();
    expect_too_large(&client, "big").await;
    assert_eq!(
        client.request("small", json!(null)).await.unwrap(),
        json!("small")
    );
    assert_eq!(client.stats().bad_frames, 1);
}

#[tokio::test]
async fn a_script_whose_interpreter_is_missing_is_not_called_missing_itself() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("jsonrpc-nointerp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("server");
    std::fs::write(&script, "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    for cmd in [
        ServerCommand::new(&script),
        ServerCommand::new("server").env("PATH", &dir),
    ] {
        let err = Client::spawn(cmd).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "{} exists but could not be executed",
                script.display()
            )),
            "{msg}"
        );
        assert!(msg.contains("#! line"), "{msg}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// A request that is the only one in flight is written by its caller when the
// pipe is free (no writer task involved). These check that path keeps the
// liveness contract.

/// Our end of the pipe that is `pid`'s stdin, as a path to open it by.
fn our_end_of_stdin(pid: u32) -> std::path::PathBuf {
    let pipe = std::fs::read_link(format!("/proc/{pid}/fd/0")).expect("the server's stdin");
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|fd| fd.unwrap().path())
        .find(|fd| std::fs::read_link(fd).is_ok_and(|link| link == pipe))
        .expect("our end of the server's stdin")
}

/// Returns once no process holds the read end of the pipe whose write end
/// `ours` is: the kernel reports an error on a writer then (ENXIO on
/// opening one, POLLERR on an open one).
fn until_nobody_reads(ours: &std::path::Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let writer = match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(ours)
    {
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => return,
        other => other.expect("a writer of the pipe"),
    };
    // No events asked for: only the error (the last reader gone) wakes it.
    let mut fds = [rustix::event::PollFd::new(
        &writer,
        rustix::event::PollFlags::empty(),
    )];
    let timeout = rustix::event::Timespec {
        tv_sec: 10,
        tv_nsec: 0,
    };
    let ready = rustix::event::poll(&mut fds, Some(&timeout)).expect("poll");
    assert_eq!(
        ready, 1,
        "a process other than the server kept reading its stdin"
    );
}

#[tokio::test]
async fn a_caller_writing_to_a_server_that_closed_its_stdin_fails_with_the_cause() {
    // Stops reading but keeps running and keeps stdout open: only the write
    // can tell that the server is gone.
    let client = spawn(r#"read -r go; exec 0<&-; printf '{"method":"closed"}\n'; sleep 30"#);
    let stdin = our_end_of_stdin(client.pid().unwrap());
    let mut closed = client.subscribe(Filter::method("closed"));
    client.notify("go", json!(null)).unwrap();
    tokio::time::timeout(Duration::from_secs(10), closed.next())
        .await
        .expect("the server never closed its stdin")
        .expect("a notification")
        .unwrap();
    // A child another test spawned meanwhile may still hold a copy of the
    // pipe's read end (until its exec closes it): a write would then land in
    // the pipe, and wait for an answer like any other.
    tokio::task::spawn_blocking(move || until_nobody_reads(&stdin))
        .await
        .unwrap();
    let started = Instant::now();
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        client.request("m", json!(null)).timeout(None),
    )
    .await
    .expect("a caller whose write failed waited")
    .unwrap_err();
    let reason = err.close_reason().expect("closed");
    assert!(
        matches!(reason, CloseReason::WriteFailed { error, .. } if error.kind() == std::io::ErrorKind::BrokenPipe),
        "{err}"
    );
    // The exit grace and the stderr grace, nothing more.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // And every later call fails at once with the same cause.
    let again = client.request("m", json!(null)).await.unwrap_err();
    assert!(std::ptr::eq(again.close_reason().unwrap(), reason));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_callers_racing_a_kill_all_fail_at_once_with_the_cause() {
    // Answers each request by its id, one line at a time.
    let client = spawn(r#"exec sed -u 's/.*"id":\([0-9]*\).*/{"id":\1,"result":null}/'"#);
    // Each caller says when it has 25 answers: then all are going, on both
    // workers, some alone in flight.
    let (going, mut all_going) = tokio::sync::mpsc::channel::<()>(4);
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let c = client.clone();
            let going = going.clone();
            tokio::spawn(async move {
                let mut answered = 0u64;
                loop {
                    match c.request("m", json!(null)).timeout(None).await {
                        Ok(_) => answered += 1,
                        Err(e) => return (answered, e),
                    }
                    if answered == 25 {
                        let _ = going.send(()).await;
                    }
                }
            })
        })
        .collect();
    for _ in 0..4 {
        tokio::time::timeout(Duration::from_secs(10), all_going.recv())
            .await
            .expect("no caller got 25 answers");
    }
    let pid = client.pid().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    let killed = Instant::now();
    for caller in callers {
        let (answered, err) = tokio::time::timeout(Duration::from_secs(5), caller)
            .await
            .expect("a caller outlived the server")
            .unwrap();
        assert!(answered > 0);
        assert_eq!(
            err.to_string(),
            "server was killed by signal 9; it wrote nothing to stderr"
        );
    }
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "{:?}",
        killed.elapsed()
    );
}
