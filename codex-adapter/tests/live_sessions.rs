//! Live tests of the healing [`Sessions`]: the real codex binaries, 0.72.0
//! and the latest, each against the in-repo loopback mock model, SIGKILLed
//! between turns, during turns and at random, failing to start, and flooded
//! by other threads while a turn waits on a person.
//!
//! Binaries are found as in `live.rs` (`tests/support/codex_binaries.rs`):
//! under `CI=true` a missing one fails the test; elsewhere the test says why
//! it skips. One live test runs at a time (2-core machines).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codex_adapter::{
    reaper, AppServer, ApprovalPolicy, AskForApproval, Error, Health, RestartPolicy, SandboxMode,
    SessionEvent, SessionStore, Sessions, ThreadOptions, TurnEvent, TurnOptions, TurnOutcome,
};
use futures::StreamExt;
use mock_model::{default_script, CodexHome, MockModel, ModelRequest, Reply};

mod support;
use support::codex_binaries::binaries;
use support::{
    command_line, deltas, drain, outcome, poll_until, process_state, sigkill, wait_exited,
};

/// How long a live turn may take before the test calls it hung.
const TURN_BOUND: Duration = Duration::from_secs(60);

/// One live test at a time: each starts real codex processes.
static LIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Deltas in each flood turn of the isolation test.
const FLOOD: usize = 3000;

/// The tests' model: `flood` streams [`FLOOD`] numbered deltas at once,
/// `steady` five words 60 ms apart; anything else as [`default_script`].
fn script(request: &ModelRequest) -> Reply {
    let text = request.user_text();
    if request.tool_output().is_none() && text.contains("flood") {
        return Reply::Text {
            chunks: (0..FLOOD).map(|i| format!("{i} ")).collect(),
            delay: Duration::ZERO,
        };
    }
    if request.tool_output().is_none() && text.contains("steady") {
        return Reply::Text {
            chunks: ["One", " two", " three", " four", " five."]
                .map(String::from)
                .to_vec(),
            delay: Duration::from_millis(60),
        };
    }
    default_script(request)
}

/// Real codex behind [`Sessions`], with a fresh mock model, home and work
/// directory.
struct Rig {
    sessions: Sessions,
    model: MockModel,
    work: CodexHome,
    home: CodexHome,
}

fn server(codex: &Path, home: &CodexHome, work: &CodexHome) -> codex_adapter::AppServerBuilder {
    // HOME is an empty directory: codex's login shells then run no profile
    // (see live.rs).
    AppServer::builder()
        .codex(codex)
        .codex_home(home.path())
        .env("HOME", work.path())
        .current_dir(work.path())
}

impl Rig {
    async fn start(codex: &Path, policy: RestartPolicy) -> Rig {
        reaper::become_subreaper().unwrap();
        let model = MockModel::start(script).await.unwrap();
        let home = CodexHome::for_mock(&model).unwrap();
        let work = CodexHome::new().unwrap();
        let sessions = Sessions::builder(server(codex, &home, &work))
            .thread_options(ThreadOptions::default().cwd(work.path()))
            .restart_policy(policy)
            .build();
        Rig {
            sessions,
            model,
            work,
            home,
        }
    }

    /// SIGKILLs the running codex; returns its pid.
    fn kill(&self) -> u32 {
        let pid = self
            .sessions
            .server()
            .and_then(|s| s.pid())
            .expect("codex runs");
        sigkill(pid);
        pid
    }

    /// The user texts the model was shown in the request for `prompt`.
    fn conversation_of(&self, prompt: &str) -> Vec<String> {
        let requests = self.model.requests();
        let request = requests
            .iter()
            .rev()
            .find(|r| r.user_text() == prompt && r.tool_output().is_none())
            .unwrap_or_else(|| panic!("the model never got {prompt:?}"));
        request.user_texts()
    }

    /// Closes codex and checks that nothing it started is left running.
    async fn finish(self, version: &str) {
        self.sessions.close().await;
        assert_eq!(self.sessions.status(), Health::Closed);
        let left = settle().await;
        // Reap anyway, so one failure does not leak into the next test.
        reaper::end_descendants(Duration::from_secs(3)).await;
        assert!(
            left.is_empty(),
            "{version}: processes left running: {left:?}"
        );
        drop((self.model, self.home, self.work));
    }
}

/// The live descendants of this process (with their command lines), once
/// there are none or after 3 s: what outlived codex. Each end is awaited on
/// the process's pidfd.
async fn settle() -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let alive: Vec<u32> = reaper::descendants()
            .into_iter()
            .filter(|&pid| match process_state(pid) {
                Some('Z' | 'X') => {
                    // Reap our zombie children as we go.
                    let _ = nix::sys::wait::waitpid(
                        nix::unistd::Pid::from_raw(pid as i32),
                        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                    );
                    false
                }
                Some(_) => true,
                None => false,
            })
            .collect();
        let Some(&first) = alive.first() else {
            return Vec::new();
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !wait_exited(first, left).await {
            return alive
                .iter()
                .map(|pid| format!("{pid} {}", command_line(*pid)))
                .collect();
        }
    }
}

async fn events_of(turn: codex_adapter::Turn) -> Vec<TurnEvent> {
    support::events_of(turn, TURN_BOUND).await
}

/// Starts a turn on `key` and waits for its first text delta: the time a
/// user waits for the first token.
async fn first_token(sessions: &Sessions, key: &str, prompt: &str) -> Vec<TurnEvent> {
    let mut turn = sessions
        .start_turn(key, prompt, TurnOptions::default())
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(e) = tokio::time::timeout(Duration::from_secs(60), turn.next())
        .await
        .expect("the live turn must go on")
    {
        let delta = matches!(e, TurnEvent::AgentMessageDelta { .. });
        events.push(e);
        if delta {
            break;
        }
    }
    events.extend(events_of(turn).await);
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_killed_between_turns_the_next_turn_resumes_with_the_history() {
    let _one = LIVE.lock().await;
    for (version, codex) in binaries() {
        let rig = Rig::start(&codex, RestartPolicy::default()).await;
        let mut healing = rig.sessions.events();
        let first = rig
            .sessions
            .run("chat", "Remember the word aubergine")
            .await;
        assert!(first.unwrap().outcome.is_completed(), "{version}");
        let thread_id = rig.sessions.thread("chat").await.unwrap().id().to_owned();

        let killed = Instant::now();
        let pid = rig.kill();
        let events = first_token(&rig.sessions, "chat", "Which word?").await;
        let to_first_token = killed.elapsed();
        println!("codex {version}: SIGKILL between turns -> first token of the next turn after {to_first_token:?}");
        assert!(outcome(&events).is_completed(), "{version}: {events:?}");
        assert_eq!(
            rig.conversation_of("Which word?"),
            ["Remember the word aubergine", "Which word?"],
            "{version}: the model must see the earlier turn"
        );
        let counters = rig.sessions.counters();
        assert_eq!((counters.restarts, counters.resumes), (1, 1), "{version}");
        assert_eq!(counters.replacements + counters.forks, 0, "{version}");
        let healed = drain(&mut healing);
        assert!(
            healed
                .iter()
                .any(|e| matches!(e, SessionEvent::Died { pid: Some(p), .. } if *p == pid)),
            "{version}: {healed:?}"
        );
        assert!(
            healed.contains(&SessionEvent::Resumed {
                key: "chat".into(),
                thread_id: thread_id.clone()
            }),
            "{version}: {healed:?}"
        );
        assert!(
            matches!(rig.sessions.status(), Health::Up { restarts: 1, pid: Some(p), .. } if p != pid),
            "{version}: {:?}",
            rig.sessions.status()
        );
        rig.finish(version).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_killed_during_a_turn_that_turn_dies_at_once_and_the_next_resumes() {
    let _one = LIVE.lock().await;
    for (version, codex) in binaries() {
        let rig = Rig::start(&codex, RestartPolicy::default()).await;
        let first = rig.sessions.run("chat", "Remember the word quince").await;
        assert!(first.unwrap().outcome.is_completed(), "{version}");

        let mut turn = rig
            .sessions
            .start_turn("chat", "slow story", TurnOptions::default())
            .await
            .unwrap();
        while let Some(e) = turn.next().await {
            if matches!(e, TurnEvent::AgentMessageDelta { .. }) {
                break;
            }
        }
        let killed = Instant::now();
        rig.kill();
        let events = events_of(turn).await;
        let died_after = killed.elapsed();
        let TurnOutcome::ServerDied { message } = outcome(&events) else {
            panic!("{version}: {events:?}");
        };
        println!("codex {version}: SIGKILL mid-turn -> ServerDied after {died_after:?}");
        assert!(message.contains("signal 9"), "{version}: {message}");
        assert!(
            died_after < Duration::from_secs(1),
            "{version}: {died_after:?}"
        );

        let events = first_token(&rig.sessions, "chat", "Which word?").await;
        let to_first_token = killed.elapsed();
        println!("codex {version}: SIGKILL mid-turn -> first token of the next turn after {to_first_token:?}");
        assert!(outcome(&events).is_completed(), "{version}: {events:?}");
        let seen = rig.conversation_of("Which word?");
        assert_eq!(
            seen.first().map(String::as_str),
            Some("Remember the word quince"),
            "{version}: {seen:?}"
        );
        assert_eq!(
            seen.last().map(String::as_str),
            Some("Which word?"),
            "{version}: {seen:?}"
        );
        let counters = rig.sessions.counters();
        assert_eq!(counters.restarts, 1, "{version}");
        assert_eq!(
            counters.turn_retries, 0,
            "{version}: a turn that ran is never re-run"
        );
        rig.finish(version).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_chaos_16_keys_5_turns_3_kills_every_turn_ends_and_history_survives() {
    const KEYS: usize = 16;
    const TURNS: usize = 5;
    const KILLS: usize = 3;
    let _one = LIVE.lock().await;
    for (version, codex) in binaries() {
        let started = Instant::now();
        let rig = Rig::start(&codex, RestartPolicy::default()).await;
        // Start codex before the storm, so the first kill has a target.
        rig.sessions.thread("warm-up").await.unwrap();
        let sessions = rig.sessions.clone();
        let workers: Vec<_> = (0..KEYS)
            .map(|k| {
                let sessions = sessions.clone();
                tokio::spawn(async move {
                    let key = format!("key-{k}");
                    let mut completed = Vec::new();
                    let mut died = 0;
                    for t in 0..TURNS {
                        let prompt = format!("steady {key} turn-{t}");
                        let turn =
                            sessions.start_turn(&key, prompt.as_str(), TurnOptions::default());
                        let ended = match turn.await {
                            Ok(turn) => {
                                tokio::time::timeout(
                                    Duration::from_secs(90),
                                    turn.collect_summary(),
                                )
                                .await
                                .unwrap_or_else(|_| panic!("{key} turn {t} hangs"))
                                .outcome
                            }
                            Err(Error::ServerDied(reason)) => TurnOutcome::ServerDied {
                                message: reason.to_string(),
                            },
                            Err(e) => panic!("{key} turn {t}: {e}"),
                        };
                        match ended {
                            TurnOutcome::Completed { .. } => completed.push(prompt),
                            TurnOutcome::ServerDied { .. } => died += 1,
                            other => panic!("{key} turn {t} ended {other:?}"),
                        }
                    }
                    (key, completed, died)
                })
            })
            .collect();
        let killer = {
            let sessions = sessions.clone();
            let mut restarts = sessions.events();
            tokio::spawn(async move {
                let mut killed = Vec::new();
                while killed.len() < KILLS {
                    // A random moment in this codex's life: the chaos itself.
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(150..1200))).await;
                    match sessions.server().and_then(|s| s.pid()) {
                        Some(pid) if !killed.contains(&pid) => {
                            sigkill(pid);
                            killed.push(pid);
                        }
                        _ => restart_after(&mut restarts, &killed).await,
                    }
                }
                killed
            })
        };
        let mut results = Vec::new();
        for worker in workers {
            results.push(worker.await.unwrap());
        }
        let killed = killer.await.unwrap();
        assert_eq!(killed.len(), KILLS, "{version}");
        let died: usize = results.iter().map(|r| r.2).sum();
        let completed: usize = results.iter().map(|r| r.1.len()).sum();
        println!(
            "codex {version}: chaos: {completed} turns completed, {died} ended by a kill, in {:?}",
            started.elapsed()
        );
        assert!(died >= 1, "{version}: no turn was caught by a kill");

        // After the last kill, one more turn on every key completes with
        // its key's history.
        let finals = results.iter().map(|(key, done, _)| {
            let sessions = sessions.clone();
            let key = key.clone();
            async move {
                let prompt = format!("final {key}");
                let summary = sessions.run(&key, prompt.as_str()).await.unwrap();
                assert!(
                    summary.outcome.is_completed(),
                    "{key}: {:?}",
                    summary.outcome
                );
                (key, prompt, done.last().cloned())
            }
        });
        for (key, prompt, last_done) in futures::future::join_all(finals).await {
            let seen = rig.conversation_of(&prompt);
            if let Some(last_done) = last_done {
                assert!(
                    seen.contains(&last_done),
                    "{version} {key}: lost {last_done:?}; the model saw {seen:?}"
                );
            }
            assert!(
                seen.iter()
                    .all(|t| t.contains(&format!("{key} ")) || *t == prompt),
                "{version} {key}: another key's text in {seen:?}"
            );
        }
        let counters = rig.sessions.counters();
        println!(
            "codex {version}: chaos counters {counters:?}; total {:?}",
            started.elapsed()
        );
        assert_eq!(counters.restarts, KILLS as u64, "{version}: {counters:?}");
        rig.finish(version).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_the_breaker_opens_after_five_failed_starts_and_a_working_codex_heals() {
    let _one = LIVE.lock().await;
    for (version, codex) in binaries() {
        let rig_dir = CodexHome::new().unwrap();
        let failing = rig_dir.path().join("failing");
        std::fs::write(&failing, "").unwrap();
        let wrapper = wrapper_script(rig_dir.path(), &failing, &codex);
        let open_for = Duration::from_secs(2);
        let policy = RestartPolicy::default()
            .backoff(Duration::from_millis(20), Duration::from_millis(100))
            .breaker(5, Duration::from_secs(60), open_for);
        let rig = Rig::start(&wrapper, policy).await;
        let mut healing = rig.sessions.events();

        for attempt in 1..=5 {
            let err = rig.sessions.run("chat", "Say hello").await.unwrap_err();
            assert!(
                err.close_reason()
                    .and_then(|r| r.exit_status())
                    .and_then(|s| s.code())
                    == Some(1)
                    && err.to_string().contains("exited with status 1"),
                "{version} attempt {attempt}: {err}"
            );
        }
        let asked = Instant::now();
        let err = rig.sessions.run("chat", "Say hello").await.unwrap_err();
        assert!(
            asked.elapsed() < Duration::from_millis(50),
            "{version}: the open breaker waited"
        );
        let Error::Unavailable { cause, retry_at } = &err else {
            panic!("{version}: {err}");
        };
        assert!(cause.contains("refusing to start"), "{version}: {cause}");
        assert!(*retry_at > std::time::SystemTime::now(), "{version}");
        assert!(
            matches!(rig.sessions.status(), Health::Unavailable { .. }),
            "{version}"
        );
        assert_eq!(rig.sessions.counters().start_failures, 5, "{version}");
        let opened = drain(&mut healing);
        assert!(
            opened
                .iter()
                .any(|e| matches!(e, SessionEvent::BreakerOpened { .. })),
            "{version}: {opened:?}"
        );

        // The binary works again; once the breaker's time is up, the next
        // call starts it.
        std::fs::remove_file(&failing).unwrap();
        // The status says when the breaker's time is up: wait for that
        // moment, then for the status to say so (at once, bar rounding).
        if let Health::Unavailable { until, .. } = rig.sessions.status() {
            let left = until
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            tokio::time::sleep(left).await;
        }
        let closed = poll_until(open_for, || {
            (!matches!(rig.sessions.status(), Health::Unavailable { .. })).then_some(())
        })
        .await;
        assert!(closed.is_some(), "{version}: the breaker stayed open");
        let summary = rig.sessions.run("chat", "Say hello").await.unwrap();
        assert!(summary.outcome.is_completed(), "{version}");
        assert!(
            matches!(rig.sessions.status(), Health::Up { .. }),
            "{version}"
        );
        rig.finish(version).await;
    }
}

/// Waits for a codex not in `killed` to be started: the next to kill.
async fn restart_after(
    events: &mut tokio::sync::broadcast::Receiver<SessionEvent>,
    killed: &[u32],
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = tokio::time::timeout(TURN_BOUND, events.recv())
            .await
            .expect("a killed codex is restarted while turns need it");
        match event {
            Ok(SessionEvent::Restarted { pid: Some(pid), .. }) if !killed.contains(&pid) => return,
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => panic!("the sessions closed during the chaos"),
        }
    }
}

/// A codex that exits 1 at start while `failing` exists, and is `codex`
/// otherwise.
fn wrapper_script(dir: &Path, failing: &Path, codex: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("codex-wrapper");
    let script = format!(
        "#!/bin/sh\nif [ -e '{}' ]; then echo 'codex-wrapper: refusing to start' >&2; exit 1; fi\nexec '{}' \"$@\"\n",
        failing.display(),
        codex.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_a_turn_waiting_on_a_person_is_untouched_by_six_flooding_threads() {
    let _one = LIVE.lock().await;
    for (version, codex) in binaries() {
        let rig = Rig::start(&codex, RestartPolicy::default()).await;
        let untrusted = ThreadOptions::default()
            .cwd(rig.work.path())
            .approval_policy(AskForApproval::Untrusted)
            .sandbox(SandboxMode::DangerFullAccess);
        let mut waiting = rig
            .sessions
            .start_turn_with_thread(
                "person",
                untrusted,
                "run: touch approved.txt",
                TurnOptions::default().approvals(ApprovalPolicy::Ask),
            )
            .await
            .unwrap();
        let mut before = Vec::new();
        let approval = loop {
            match tokio::time::timeout(Duration::from_secs(60), waiting.next()).await {
                Ok(Some(TurnEvent::ApprovalRequested(a))) => break a,
                Ok(Some(e)) => before.push(e),
                other => panic!("{version}: no approval: {other:?} after {before:?}"),
            }
        };

        let floods: Vec<_> = (0..6)
            .map(|i| {
                let sessions = rig.sessions.clone();
                tokio::spawn(async move {
                    let key = format!("flood-{i}");
                    let turn = sessions
                        .start_turn(&key, "flood", TurnOptions::default())
                        .await
                        .unwrap();
                    events_of(turn).await
                })
            })
            .collect();
        let held = Instant::now();
        // The person thinks for 5 s while the floods stream: the scenario,
        // not a wait for the floods (joined below).
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut flooded = Vec::new();
        for flood in floods {
            flooded.push(flood.await.unwrap());
        }
        // Held for 5 s while the others streamed: now the person answers.
        assert!(held.elapsed() >= Duration::from_secs(5));
        approval.accept();
        let rest = events_of(waiting).await;
        assert!(outcome(&rest).is_completed(), "{version}: {rest:?}");
        let errors: Vec<_> = rest
            .iter()
            .filter(|e| matches!(e, TurnEvent::Error { .. }))
            .collect();
        assert!(errors.is_empty(), "{version}: {errors:?}");
        assert!(rig.work.path().join("approved.txt").exists(), "{version}");

        let expected: String = (0..FLOOD).map(|i| format!("{i} ")).collect();
        for (i, events) in flooded.iter().enumerate() {
            assert!(outcome(events).is_completed(), "{version} flood-{i}");
            assert!(
                !events.iter().any(|e| matches!(e, TurnEvent::Error { .. })),
                "{version} flood-{i}: a flood turn lost events"
            );
            assert_eq!(
                deltas(events).collect::<String>(),
                expected,
                "{version} flood-{i}: deltas lost or mixed"
            );
        }
        rig.finish(version).await;
    }
}

/// A service that restarts finds its conversations in its store; if an old
/// codex of it still holds a thread, newer codex refuses to resume it (its
/// per-thread writer lock) and the thread continues in a fork. codex 0.72.0
/// has no such lock (it resumes) and no `thread/fork` at all (refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_a_thread_still_held_by_another_codex_is_forked_with_its_history() {
    let _one = LIVE.lock().await;
    for (version, codex) in binaries() {
        reaper::become_subreaper().unwrap();
        let model = MockModel::start(script).await.unwrap();
        let home = CodexHome::for_mock(&model).unwrap();
        let work = CodexHome::new().unwrap();
        // The old codex: it ran a turn and is still alive.
        let old = server(&codex, &home, &work).spawn().await.unwrap();
        let thread = old
            .start_thread(ThreadOptions::default().cwd(work.path()))
            .await
            .unwrap();
        assert!(thread
            .run("Remember the word medlar")
            .await
            .unwrap()
            .outcome
            .is_completed());

        let fork = old.fork_thread(thread.id(), ThreadOptions::default()).await;
        if version == "0.72.0" {
            let err = fork.unwrap_err();
            assert!(
                matches!(&err, Error::Refused { message, .. } if message.contains("thread/fork")),
                "{version}: {err}"
            );
        } else {
            assert_ne!(fork.unwrap().id(), thread.id(), "{version}");
        }

        let store = Arc::new(codex_adapter::MemoryStore::default());
        store
            .save(
                "chat",
                &codex_adapter::SessionRecord::new(
                    thread.id(),
                    ThreadOptions::default().cwd(work.path()),
                ),
            )
            .await
            .unwrap();
        let sessions = Sessions::builder(server(&codex, &home, &work))
            .store(store.clone())
            .build();
        let mut healing = sessions.events();
        let summary = sessions.run("chat", "Which word?").await.unwrap();
        assert!(
            summary.outcome.is_completed(),
            "{version}: {:?}",
            summary.outcome
        );
        let seen = {
            let requests = model.requests();
            requests
                .iter()
                .rev()
                .find(|r| r.user_text() == "Which word?")
                .unwrap()
                .user_texts()
        };
        assert_eq!(
            seen,
            ["Remember the word medlar", "Which word?"],
            "{version}"
        );
        let healed = drain(&mut healing);
        let counters = sessions.counters();
        let now = store.load("chat").await.unwrap().unwrap().thread_id;
        if version == "0.72.0" {
            assert_eq!(
                (counters.resumes, counters.forks),
                (1, 0),
                "{version}: {healed:?}"
            );
            assert_eq!(now, thread.id());
        } else {
            assert_eq!(
                (counters.resumes, counters.forks),
                (0, 1),
                "{version}: {healed:?}"
            );
            assert!(
                healed.contains(&SessionEvent::Forked {
                    key: "chat".into(),
                    from: thread.id().to_owned(),
                    thread_id: now.clone()
                }),
                "{version}: {healed:?}"
            );
        }
        sessions.close().await;
        old.close().await;
        let left = settle().await;
        reaper::end_descendants(Duration::from_secs(3)).await;
        assert!(
            left.is_empty(),
            "{version}: processes left running: {left:?}"
        );
    }
}
