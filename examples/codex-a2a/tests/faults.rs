//! Faults: codex SIGKILLed between two messages of a context, codex-a2a
//! SIGKILLed and restarted on its state, and a cancel that must leave no
//! command of codex running. After each kill, the service is driven over
//! HTTP by hand and then by the official A2A client (a2a-sdk).

mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;
use support::{artifact_text, cmdline, descendants, signal, status_text, Agent};

/// SIGKILLs the agent's codex and waits until the agent saw it die, so the
/// next message meets a dead codex. Returns the pid it had.
fn kill_codex(agent: &Agent) -> u32 {
    let codex = agent.codex_pid();
    signal(codex, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    while agent.health()["codexPid"].as_u64() == Some(codex as u64) {
        assert!(Instant::now() < deadline, "codex {codex} did not die");
        std::thread::sleep(Duration::from_millis(20));
    }
    codex
}

#[test]
fn codex_killed_between_two_messages_heals_and_the_model_saw_the_first() {
    let Some(agent) = Agent::start("kill-codex", &[]) else {
        return;
    };
    let first = agent.send("my name is Ada", None, false);
    assert_eq!(first["status"]["state"], "TASK_STATE_COMPLETED");
    let ctx = first["contextId"].as_str().unwrap();
    let codex = kill_codex(&agent);
    let second = agent.send("recall what I said", Some(ctx), false);
    assert_eq!(
        second["status"]["state"],
        "TASK_STATE_COMPLETED",
        "{second}\n{}",
        agent.log()
    );
    assert_eq!(artifact_text(&second), "I remember: my name is Ada");
    let health = agent.health();
    assert_ne!(health["codexPid"].as_u64(), Some(codex as u64));
    assert_eq!(health["restarts"], 1, "{health}");
    assert_eq!(health["resumes"], 1, "{health}");
    assert_eq!(health["codex"]["state"], "up", "{health}");

    // Once more, through the official client: codex killed again, and the
    // SDK's next message in the context meets the dead codex.
    kill_codex(&agent);
    let first_id = first["id"].as_str().unwrap();
    let Some(out) = agent.python("recall", "1.0", &[ctx, first_id], None) else {
        return;
    };
    assert_eq!(out["earlier"], "TASK_STATE_COMPLETED", "{out}");
    assert_eq!(out["recall"], "TASK_STATE_COMPLETED", "{out}");
    // Every earlier message of the context, across both deaths of codex.
    assert_eq!(
        out["recall_text"], "I remember: my name is Ada | recall what I said",
        "{out}"
    );
    assert_eq!(agent.health()["restarts"], 2);
}

#[test]
fn codex_a2a_killed_and_restarted_keeps_tasks_and_contexts() {
    let Some(mut agent) = Agent::start("kill-agent", &[]) else {
        return;
    };
    let done = agent.send("my name is Bob", None, false);
    let (done_id, ctx) = (
        done["id"].as_str().unwrap().to_owned(),
        done["contextId"].as_str().unwrap().to_owned(),
    );
    let stalled = agent.send("stall", None, true);
    let stalled_id = stalled["id"].as_str().unwrap().to_owned();
    agent.wait_state(&stalled_id, "TASK_STATE_WORKING", Duration::from_secs(20));

    agent.kill9();
    let mut agent = agent.restart();

    let old = agent.get(&done_id);
    assert_eq!(old["status"]["state"], "TASK_STATE_COMPLETED", "{old}");
    assert_eq!(artifact_text(&old), "Hello from the mock model.");
    let lost = agent.get(&stalled_id);
    assert_eq!(lost["status"]["state"], "TASK_STATE_FAILED", "{lost}");
    let reason = status_text(&lost);
    assert!(
        reason.contains("killed or crashed") && reason.contains("working"),
        "{reason}"
    );
    // The 0.3 view of the same tasks.
    let old03 = agent.call("tasks/get", json!({"id": done_id}));
    assert_eq!(old03["status"]["state"], "completed");
    // The context goes on with its history, in a new codex.
    let next = agent.send("recall", Some(&ctx), false);
    assert_eq!(
        artifact_text(&next),
        "I remember: my name is Bob",
        "{next}\n{}",
        agent.log()
    );
    let listed = agent.call("ListTasks", json!({"contextId": ctx}));
    assert_eq!(listed["totalSize"], 2, "{listed}");

    // Killed again, and restarted on its state, the official client (0.3)
    // finds the earlier task and goes on in the context.
    agent.kill9();
    let agent = agent.restart();
    let Some(out) = agent.python("recall", "0.3", &[ctx.as_str(), done_id.as_str()], None) else {
        return;
    };
    assert_eq!(out["earlier"], "TASK_STATE_COMPLETED", "{out}");
    assert_eq!(out["earlier_text"], "Hello from the mock model.", "{out}");
    assert_eq!(out["recall"], "TASK_STATE_COMPLETED", "{out}");
    // The context's history across both deaths of the service.
    assert_eq!(
        out["recall_text"], "I remember: my name is Bob | recall",
        "{out}"
    );
}

#[test]
fn cancel_ends_the_task_within_2_s_and_leaves_no_command_running() {
    let Some(agent) = Agent::start(
        "cancel-command",
        &[
            "--approval-policy",
            "never",
            "--sandbox",
            "danger-full-access",
        ],
    ) else {
        return;
    };
    let task = agent.send("run: sleep 37", None, true);
    let id = task["id"].as_str().unwrap();
    let sleeping = || {
        descendants(agent.pid())
            .into_iter()
            .filter(|p| cmdline(*p).contains("sleep 37"))
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while sleeping().is_empty() {
        assert!(
            Instant::now() < deadline,
            "codex never ran the command:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    let canceled = agent.call("CancelTask", json!({"id": id}));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "cancel took {:?}",
        started.elapsed()
    );
    assert_eq!(
        canceled["status"]["state"], "TASK_STATE_CANCELED",
        "{canceled}"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while !sleeping().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the command outlived the cancel: {:?}",
            sleeping()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The context takes the next message.
    let next = agent.send("hi", Some(canceled["contextId"].as_str().unwrap()), false);
    assert_eq!(next["status"]["state"], "TASK_STATE_COMPLETED");
}

#[test]
fn codex_killed_mid_turn_fails_that_task_saying_so_and_the_next_is_answered() {
    let Some(agent) = Agent::start("kill-mid-turn", &[]) else {
        return;
    };
    let task = agent.send("stall", None, true);
    let id = task["id"].as_str().unwrap();
    agent.wait_state(id, "TASK_STATE_WORKING", Duration::from_secs(20));
    // Working means codex has accepted the turn: a death now is mid-turn.
    let codex = agent.codex_pid();
    signal(codex, Signal::SIGKILL);
    let failed = agent.wait_state(id, "TASK_STATE_FAILED", Duration::from_secs(10));
    assert!(
        status_text(&failed).contains("codex died during this turn"),
        "{failed}"
    );
    let ctx = failed["contextId"].as_str().unwrap();
    let next = agent.send("recall", Some(ctx), false);
    assert_eq!(
        next["status"]["state"],
        "TASK_STATE_COMPLETED",
        "{next}\n{}",
        agent.log()
    );
    // Whether codex recorded the killed turn's message before it died is
    // up to codex; the context answers either way.
    assert!(artifact_text(&next).starts_with("I remember:"), "{next}");
}
