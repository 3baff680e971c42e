//! Turns, watchdogs, approvals and deaths on one fake app-server: what a
//! real codex will not do on demand (go silent, die mid-turn, die in the
//! handshake, be slow but alive).

use std::time::{Duration, Instant};

use codex_adapter::event::TimeLimit;
use codex_adapter::{
    AppServer, ApprovalPolicy, Error, Sessions, ThreadOptions, TurnEvent, TurnLimits, TurnOptions,
    TurnOutcome,
};
use futures::StreamExt;
use libtest_mimic::Trial;
use mock_model::CodexHome;

use crate::fake_server as fake;
use crate::trials;

fn limits(idle_ms: u64, budget_ms: u64) -> TurnOptions {
    TurnOptions::default().limits(TurnLimits {
        idle: Duration::from_millis(idle_ms),
        budget: Duration::from_millis(budget_ms),
    })
}

async fn outcome_of(turn: codex_adapter::Turn) -> TurnOutcome {
    tokio::time::timeout(Duration::from_secs(20), turn.collect_summary())
        .await
        .expect("the turn must end")
        .outcome
}

async fn a_silent_turn_times_out_with_a_clear_error_and_frees_the_thread() {
    let server = fake(&["--turns", "silent,complete"]).spawn().await.unwrap();
    let thread = server.start_thread(ThreadOptions::default()).await.unwrap();
    let turn = thread
        .start_turn_with("hi", limits(400, 30_000))
        .await
        .unwrap();
    let outcome = outcome_of(turn).await;
    let TurnOutcome::TimedOut { limit, message, .. } = &outcome else {
        panic!("not a timeout: {outcome:?}");
    };
    assert_eq!(*limit, TimeLimit::Idle);
    assert_eq!(
        message,
        "no event from codex for 0.4 s: channel wedged; the turn was interrupted"
    );
    assert_eq!(outcome.exit_code(), 2);
    // The lock was released: the next turn on the same thread runs.
    let next = tokio::time::timeout(Duration::from_secs(5), thread.run("again"))
        .await
        .expect("the thread must be free")
        .unwrap();
    assert_eq!(next.final_text.as_deref(), Some("Hello fake"));
}

async fn a_slow_but_alive_turn_is_not_cut_off() {
    let server = fake(&["--turns", "slow"]).spawn().await.unwrap();
    let thread = server.start_thread(ThreadOptions::default()).await.unwrap();
    // Events every 300 ms against a 1.5 s idle limit.
    let turn = thread
        .start_turn_with("hi", limits(1_500, 30_000))
        .await
        .unwrap();
    assert!(outcome_of(turn).await.is_completed());
}

async fn the_turn_budget_ends_a_turn_that_keeps_talking() {
    let server = fake(&["--turns", "slow"]).spawn().await.unwrap();
    let thread = server.start_thread(ThreadOptions::default()).await.unwrap();
    let turn = thread
        .start_turn_with("hi", limits(5_000, 1_000))
        .await
        .unwrap();
    let outcome = outcome_of(turn).await;
    assert!(
        matches!(
            outcome,
            TurnOutcome::TimedOut {
                limit: TimeLimit::Budget,
                ..
            }
        ),
        "{outcome:?}"
    );
}

async fn the_app_server_dying_mid_turn_ends_every_open_turn_at_once() {
    let server = fake(&["--turns", "open,die"]).spawn().await.unwrap();
    let a = server.start_thread(ThreadOptions::default()).await.unwrap();
    let b = server.start_thread(ThreadOptions::default()).await.unwrap();
    let mut open = a
        .start_turn_with("stays open", limits(60_000, 60_000))
        .await
        .unwrap();
    assert!(matches!(
        open.next().await,
        Some(TurnEvent::TurnStarted { .. })
    ));
    let dying = b
        .start_turn_with("dies", limits(60_000, 60_000))
        .await
        .unwrap();
    let (x, y) = tokio::join!(outcome_of(open), outcome_of(dying));
    for outcome in [&x, &y] {
        let TurnOutcome::ServerDied { message } = outcome else {
            panic!("not a death: {outcome:?}");
        };
        assert!(message.contains("server exited with status 7"), "{message}");
        assert!(message.contains("simulated crash mid-turn"), "{message}");
        assert_eq!(outcome.exit_code(), 3);
    }
    // A new turn fails at once, with the same cause.
    let started = Instant::now();
    let err = a.start_turn("after death").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(200));
    assert!(err.is_server_dead(), "{err}");
    assert!(err.to_string().contains("status 7"), "{err}");
    let reason = err.close_reason().expect("a death keeps its reason");
    assert_eq!(reason.exit_status().and_then(|s| s.code()), Some(7));
    assert!(
        reason.stderr_tail().contains("simulated crash mid-turn"),
        "{reason:?}"
    );
    assert!(server.start_thread(ThreadOptions::default()).await.is_err());
}

async fn exiting_during_the_handshake_is_a_start_error_with_the_cause() {
    let err = fake(&["--handshake", "exit"]).spawn().await.unwrap_err();
    let Error::ServerDied(reason) = &err else {
        panic!("{err:?}");
    };
    let message = reason.to_string();
    assert!(message.contains("status 1"), "{message}");
    assert!(message.contains("invalid model provider"), "{message}");
    assert_eq!(reason.exit_status().and_then(|s| s.code()), Some(1));
    assert!(
        reason.stderr_tail().contains("invalid model provider"),
        "{reason:?}"
    );
}

async fn a_wedged_handshake_fails_after_its_bound() {
    let started = Instant::now();
    let err = fake(&["--handshake", "hang"])
        .handshake_timeout(Duration::from_millis(300))
        .spawn()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::HandshakeTimeout {
                method: "initialize",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("wedged at start-up"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

async fn a_missing_binary_says_where_it_looked() {
    let err = AppServer::builder()
        .codex("/nonexistent/codex")
        .spawn()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/codex"), "{err}");
    assert!(err.is_server_dead());
}

async fn the_builder_passes_codex_its_arguments_environment_and_directory() {
    let work = CodexHome::new().unwrap();
    let home = CodexHome::new().unwrap();
    let server = fake(&["--turns", "complete"])
        .env("CODEX_HOME", "/replaced/below")
        .codex_home(home.path())
        .current_dir(work.path())
        .spawn()
        .await
        .unwrap();
    let cwd = std::fs::canonicalize(work.path()).unwrap();
    assert_eq!(
        server.user_agent(),
        format!(
            "fake_app_server/0.0.1 args=[\"--turns\", \"complete\"] cwd={} CODEX_HOME={:?}",
            cwd.display(),
            Some(home.path().display().to_string())
        )
    );

    let me = std::env::current_exe().unwrap();
    let server = AppServer::builder()
        .codex(me)
        .env(crate::FAKE_APP_SERVER, "1")
        .env("CODEX_HOME", home.path())
        .env_remove("CODEX_HOME")
        .spawn()
        .await
        .unwrap();
    // Without args(), codex is told to be an app-server; env_remove undoes
    // an earlier env, as the builder's calls apply in order.
    assert_eq!(
        server.user_agent(),
        format!(
            "fake_app_server/0.0.1 args=[\"app-server\"] cwd={} CODEX_HOME=None",
            std::env::current_dir().unwrap().display()
        )
    );
}

async fn notifications_sent_before_the_turn_start_response_reach_the_turn() {
    let server = fake(&["--turns", "early"]).spawn().await.unwrap();
    let thread = server.start_thread(ThreadOptions::default()).await.unwrap();
    let summary = thread.run("hi").await.unwrap();
    assert!(summary.outcome.is_completed());
    assert_eq!(summary.final_text.as_deref(), Some("early"));
}

async fn a_second_turn_on_a_thread_waits_until_the_first_ends() {
    let server = fake(&["--turns", "silent,complete"]).spawn().await.unwrap();
    let thread = server.start_thread(ThreadOptions::default()).await.unwrap();
    let first = thread
        .start_turn_with("one", limits(800, 30_000))
        .await
        .unwrap();
    let second = {
        let thread = thread.clone();
        tokio::spawn(async move { thread.start_turn("two").await })
    };
    let first_outcome = outcome_of(first).await;
    let ended = Instant::now();
    assert!(matches!(first_outcome, TurnOutcome::TimedOut { .. }));
    let second = second.await.unwrap().unwrap();
    // The second turn could only start once the first had ended.
    assert!(second.id() != "turn-0");
    assert!(ended.elapsed() < Duration::from_secs(5));
    assert!(outcome_of(second).await.is_completed());
}

async fn dropping_a_turn_interrupts_it_and_frees_the_thread() {
    let server = fake(&["--turns", "silent,complete"]).spawn().await.unwrap();
    let thread = server.start_thread(ThreadOptions::default()).await.unwrap();
    let mut turn = thread.start_turn("one").await.unwrap();
    assert!(matches!(
        turn.next().await,
        Some(TurnEvent::TurnStarted { .. })
    ));
    drop(turn);
    let next = tokio::time::timeout(Duration::from_secs(5), thread.run("two"))
        .await
        .expect("the thread must be freed after the interrupt")
        .unwrap();
    assert!(next.outcome.is_completed());
}

async fn turns_on_two_threads_see_only_their_own_events() {
    let server = fake(&["--turns", "complete"]).spawn().await.unwrap();
    let a = server.start_thread(ThreadOptions::default()).await.unwrap();
    let b = server.start_thread(ThreadOptions::default()).await.unwrap();
    let ta = a.start_turn("a").await.unwrap();
    let tb = b.start_turn("b").await.unwrap();
    let (ida, idb) = (ta.id().to_owned(), tb.id().to_owned());
    let (ea, eb) = tokio::join!(ta.collect::<Vec<_>>(), tb.collect::<Vec<_>>());
    for (events, own) in [(&ea, &ida), (&eb, &idb)] {
        for e in events.iter() {
            if let TurnEvent::AgentMessageDelta { item_id, .. } = e {
                assert_eq!(item_id, &format!("msg-{own}"));
            }
        }
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, TurnEvent::Outcome(_)))
                .count(),
            1
        );
    }
}

async fn the_idle_watchdog_is_paused_while_an_approval_waits_for_the_caller() {
    let server = fake(&["--turns", "approve"]).spawn().await.unwrap();
    let thread = server.start_thread(ThreadOptions::default()).await.unwrap();
    let options = limits(300, 30_000).approvals(ApprovalPolicy::Ask);
    let mut turn = thread.start_turn_with("hi", options).await.unwrap();
    let approval = loop {
        match turn.next().await {
            Some(TurnEvent::ApprovalRequested(a)) => break a,
            Some(_) => {}
            None => panic!("no approval"),
        }
    };
    assert!(approval.is_pending());
    // The caller thinks for longer than the idle limit: no timeout.
    let mut outcome = None;
    let late = tokio::time::timeout(Duration::from_millis(900), turn.next()).await;
    assert!(
        late.is_err(),
        "the turn moved while the approval waited: {late:?}"
    );
    approval.accept();
    while let Some(e) = turn.next().await {
        if let TurnEvent::Outcome(o) = e {
            outcome = Some(o);
        }
    }
    assert_eq!(
        outcome,
        Some(TurnOutcome::Completed {
            turn_id: "turn-0".into(),
            last_agent_message: Some("decision: accept".into())
        })
    );
}

async fn a_dropped_approval_is_declined_not_answered_with_an_error() {
    let server = fake(&["--turns", "approve"]).spawn().await.unwrap();
    let thread = server.start_thread(ThreadOptions::default()).await.unwrap();
    let options = TurnOptions::default().approvals(ApprovalPolicy::Ask);
    let summary = thread
        .start_turn_with("hi", options)
        .await
        .unwrap()
        .collect_summary()
        .await;
    assert_eq!(summary.final_text.as_deref(), Some("decision: decline"));
}

async fn a_session_map_starts_one_thread_per_key_on_first_use() {
    let sessions = Sessions::builder(fake(&["--turns", "complete"])).build();
    let (a, b) = tokio::join!(
        sessions.thread("workspace-1"),
        sessions.thread("workspace-1")
    );
    assert_eq!(a.unwrap().id(), b.unwrap().id());
    let other = sessions.thread("workspace-2").await.unwrap();
    assert_ne!(
        other.id(),
        sessions.thread("workspace-1").await.unwrap().id()
    );
    let summary = sessions.run("workspace-1", "hi").await.unwrap();
    assert_eq!(summary.final_text.as_deref(), Some("Hello fake"));
    assert_eq!(sessions.counters().restarts, 0);
    sessions.close().await;
    assert!(matches!(
        sessions.run("workspace-1", "hi").await,
        Err(Error::Closed)
    ));
}

/// Every test of this module.
pub fn trials() -> Vec<Trial> {
    trials!("app_server":
        a_silent_turn_times_out_with_a_clear_error_and_frees_the_thread,
        a_slow_but_alive_turn_is_not_cut_off,
        the_turn_budget_ends_a_turn_that_keeps_talking,
        the_app_server_dying_mid_turn_ends_every_open_turn_at_once,
        exiting_during_the_handshake_is_a_start_error_with_the_cause,
        a_wedged_handshake_fails_after_its_bound,
        a_missing_binary_says_where_it_looked,
        the_builder_passes_codex_its_arguments_environment_and_directory,
        notifications_sent_before_the_turn_start_response_reach_the_turn,
        a_second_turn_on_a_thread_waits_until_the_first_ends,
        dropping_a_turn_interrupts_it_and_frees_the_thread,
        turns_on_two_threads_see_only_their_own_events,
        the_idle_watchdog_is_paused_while_an_approval_waits_for_the_caller,
        a_dropped_approval_is_declined_not_answered_with_an_error,
        a_session_map_starts_one_thread_per_key_on_first_use,
    )
}
