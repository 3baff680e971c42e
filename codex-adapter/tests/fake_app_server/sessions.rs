//! The healing [`Sessions`] against the fake app-server, for the faults a
//! real codex will not show on demand: dying as a `turn/start` arrives,
//! being overloaded, refusing to resume a thread (unknown, or held by
//! another process), and many callers meeting one death.

use std::time::Duration;

use codex_adapter::{
    Error, RestartPolicy, SessionEvent, Sessions, SessionsBuilder, TurnOptions, TurnOutcome,
};
use libtest_mimic::Trial;
use mock_model::CodexHome;

use crate::support::drain;
use crate::{fake_server, trials};

fn fake(args: &[&str]) -> SessionsBuilder {
    Sessions::builder(fake_server(args)).restart_policy(
        RestartPolicy::default()
            .backoff(Duration::from_millis(5), Duration::from_millis(20))
            .overload_retries(3, Duration::from_millis(5)),
    )
}

/// A path for `--once` (in a directory removed on drop).
fn once_file(dir: &CodexHome) -> String {
    dir.path().join("once").display().to_string()
}

async fn a_turn_start_that_reached_a_dead_codex_is_sent_once_more_to_a_new_one() {
    let dir = CodexHome::new().unwrap();
    let sessions = fake(&["--once", &once_file(&dir), "--turns", "vanish,complete"]).build();
    let mut healing = sessions.events();
    let first = sessions.thread("chat").await.unwrap().id().to_owned();
    let summary = sessions.run("chat", "hi").await.unwrap();
    assert_eq!(summary.final_text.as_deref(), Some("Hello fake"));
    let counters = sessions.counters();
    assert_eq!(
        (counters.turn_retries, counters.restarts, counters.resumes),
        (1, 1, 1)
    );
    let healed = drain(&mut healing);
    assert!(
        healed
            .iter()
            .any(|e| matches!(e, SessionEvent::TurnRetried { key, .. } if key == "chat")),
        "{healed:?}"
    );
    assert!(healed.contains(&SessionEvent::Resumed {
        key: "chat".into(),
        thread_id: first
    }));
    sessions.close().await;
}

async fn a_turn_that_ran_when_codex_died_ends_server_died_and_is_not_run_again() {
    let dir = CodexHome::new().unwrap();
    let sessions = fake(&["--once", &once_file(&dir), "--turns", "die,complete"]).build();
    let summary = sessions.run("chat", "hi").await.unwrap();
    let TurnOutcome::ServerDied { message } = &summary.outcome else {
        panic!("{:?}", summary.outcome);
    };
    assert!(message.contains("status 7"), "{message}");
    assert_eq!(sessions.counters().turn_retries, 0);
    let again = sessions.run("chat", "hi").await.unwrap();
    assert!(again.outcome.is_completed(), "{:?}", again.outcome);
    assert_eq!(sessions.counters().restarts, 1);
    sessions.close().await;
}

async fn an_overloaded_codex_is_retried_with_backoff_a_bounded_number_of_times() {
    let sessions = fake(&["--turns", "overloaded,overloaded,complete"]).build();
    let summary = sessions.run("chat", "hi").await.unwrap();
    assert!(summary.outcome.is_completed());
    assert_eq!(sessions.counters().overload_retries, 2);
    sessions.close().await;

    let sessions = fake(&["--turns", "overloaded"]).build();
    let err = sessions.run("chat", "hi").await.unwrap_err();
    assert!(matches!(err, Error::Overloaded { .. }), "{err}");
    assert!(err.to_string().contains("retry later"), "{err}");
    assert_eq!(sessions.counters().overload_retries, 3);
    sessions.close().await;
}

/// A thread whose first turn kills codex, and whose resume the restarted
/// codex answers as `resume` says (`unknown`, `held`). Returns the sessions
/// after a second, completed turn, the healing events of both, and the
/// thread's first id.
async fn resumed_after_a_death(resume: &str) -> (Sessions, Vec<SessionEvent>, String) {
    let dir = CodexHome::new().unwrap();
    let sessions = fake(&[
        "--once",
        &once_file(&dir),
        "--resume",
        resume,
        "--turns",
        "die,complete",
    ])
    .build();
    let mut healing = sessions.events();
    let old = sessions.thread("chat").await.unwrap().id().to_owned();
    sessions.run("chat", "hi").await.unwrap();
    let summary = sessions.run("chat", "hi").await.unwrap();
    assert!(summary.outcome.is_completed(), "{resume}");
    (sessions, drain(&mut healing), old)
}

async fn a_thread_codex_cannot_find_is_replaced_and_the_caller_is_told_why() {
    let (sessions, healing, old) = resumed_after_a_death("unknown").await;
    let new = sessions.thread("chat").await.unwrap().id().to_owned();
    assert_ne!(new, old);
    let replaced = healing
        .into_iter()
        .find_map(|e| match e {
            SessionEvent::Replaced {
                old: o,
                thread_id,
                reason,
                ..
            } => Some((o, thread_id, reason)),
            _ => None,
        })
        .expect("a Replaced event");
    assert_eq!(
        (replaced.0.as_str(), replaced.1.as_str()),
        (old.as_str(), new.as_str())
    );
    assert!(replaced.2.contains("no rollout found"), "{}", replaced.2);
    assert_eq!(sessions.counters().replacements, 1);
    sessions.close().await;
}

async fn a_thread_held_by_another_process_is_retried_once_then_forked() {
    let (sessions, healing, old) = resumed_after_a_death("held").await;
    let forked = healing
        .into_iter()
        .find_map(|e| match e {
            SessionEvent::Forked {
                from, thread_id, ..
            } => Some((from, thread_id)),
            _ => None,
        })
        .expect("a Forked event");
    assert_eq!(forked.0, old);
    assert_eq!(sessions.thread("chat").await.unwrap().id(), forked.1);
    let counters = sessions.counters();
    assert_eq!((counters.forks, counters.resumes), (1, 0));
    sessions.close().await;
}

async fn callers_meeting_one_death_wait_on_one_restart() {
    let dir = CodexHome::new().unwrap();
    let sessions = fake(&["--once", &once_file(&dir), "--turns", "die,complete"]).build();
    let died = sessions.run("k0", "hi").await.unwrap();
    assert!(matches!(died.outcome, TurnOutcome::ServerDied { .. }));
    let runs = (0..8).map(|i| {
        let sessions = sessions.clone();
        async move {
            sessions
                .start_turn(&format!("k{i}"), "hi", TurnOptions::default())
                .await
                .unwrap()
                .collect_summary()
                .await
        }
    });
    for summary in futures::future::join_all(runs).await {
        assert!(summary.outcome.is_completed(), "{:?}", summary.outcome);
    }
    assert_eq!(sessions.counters().restarts, 1);
    sessions.close().await;
}

async fn dropping_the_last_handle_ends_codex() {
    let dir = CodexHome::new().unwrap();
    let lock = dir.path().join("alive");
    let sessions = fake(&["--lock", &lock.display().to_string(), "--turns", "complete"]).build();
    sessions.thread("chat").await.unwrap();
    let pid = sessions.server().and_then(|s| s.pid()).unwrap();
    drop(sessions);
    // The fake holds the lock for its whole life: getting it is its end.
    let (ended, end) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let file = std::fs::File::open(lock).expect("the lock file");
        let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive);
        let _ = ended.send(held.is_ok());
    });
    let outlived = tokio::time::timeout(Duration::from_secs(5), end).await;
    assert!(
        matches!(outlived, Ok(Ok(true))),
        "codex {pid} outlived its Sessions"
    );
}

/// A store kept elsewhere (here: a map shared with the test, standing in
/// for a service's database) lets new `Sessions` — a restarted service —
/// resume the keys' threads.
async fn a_store_of_the_callers_own_carries_keys_across_sessions() {
    use codex_adapter::{SessionRecord, SessionStore, StoreError};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Shared(Mutex<HashMap<String, SessionRecord>>);

    #[codex_adapter::async_trait]
    impl SessionStore for Shared {
        async fn load(&self, key: &str) -> Result<Option<SessionRecord>, StoreError> {
            Ok(self.0.lock().unwrap().get(key).cloned())
        }
        async fn save(&self, key: &str, record: &SessionRecord) -> Result<(), StoreError> {
            self.0.lock().unwrap().insert(key.into(), record.clone());
            Ok(())
        }
        async fn remove(&self, key: &str) -> Result<(), StoreError> {
            self.0.lock().unwrap().remove(key);
            Ok(())
        }
    }

    let store = Arc::new(Shared::default());
    let first = fake(&[]).store(store.clone()).build();
    let thread_id = first.thread("chat").await.unwrap().id().to_owned();
    first.close().await;

    let second = fake(&[]).store(store.clone()).build();
    let mut healing = second.events();
    assert_eq!(second.thread("chat").await.unwrap().id(), thread_id);
    assert_eq!(
        drain(&mut healing),
        [SessionEvent::Resumed {
            key: "chat".into(),
            thread_id
        }]
    );
    second.forget("chat").await.unwrap();
    assert!(store.load("chat").await.unwrap().is_none());
    second.close().await;
}

async fn each_call_makes_one_start_and_the_breaker_then_fails_calls_at_once() {
    let sessions = fake(&["--handshake", "exit"])
        .restart_policy(
            RestartPolicy::default()
                .backoff(Duration::from_millis(5), Duration::from_millis(20))
                .breaker(3, Duration::from_secs(60), Duration::from_secs(60)),
        )
        .build();
    for call in 1..=3u64 {
        let err = sessions.run("chat", "hi").await.unwrap_err();
        assert!(matches!(err, Error::ServerDied(_)), "call {call}: {err}");
        assert_eq!(sessions.counters().start_failures, call);
    }
    let asked = std::time::Instant::now();
    let err = sessions.run("chat", "hi").await.unwrap_err();
    assert!(asked.elapsed() < Duration::from_millis(50));
    let Error::Unavailable { cause, .. } = &err else {
        panic!("{err}")
    };
    assert!(cause.contains("invalid model provider"), "{cause}");
    assert_eq!(sessions.counters().start_failures, 3);
}

/// Every test of this module.
pub fn trials() -> Vec<Trial> {
    trials!("sessions":
        a_turn_start_that_reached_a_dead_codex_is_sent_once_more_to_a_new_one,
        a_turn_that_ran_when_codex_died_ends_server_died_and_is_not_run_again,
        an_overloaded_codex_is_retried_with_backoff_a_bounded_number_of_times,
        a_thread_codex_cannot_find_is_replaced_and_the_caller_is_told_why,
        a_thread_held_by_another_process_is_retried_once_then_forked,
        callers_meeting_one_death_wait_on_one_restart,
        dropping_the_last_handle_ends_codex,
        a_store_of_the_callers_own_carries_keys_across_sessions,
        each_call_makes_one_start_and_the_breaker_then_fails_calls_at_once,
    )
}
