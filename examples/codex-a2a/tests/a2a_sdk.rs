//! codex-a2a driven by the official A2A Python client (a2a-sdk), in both
//! protocol versions, against real codex (latest) and the mock model.

mod support;

use support::{Agent, ASKING};

#[test]
fn sdk_1_0_sends_streams_gets_lists_and_cancels() {
    let Some(agent) = Agent::start("sdk10", &[]) else {
        return;
    };
    let Some(out) = agent.python("basic", "1.0", &[], None) else {
        return;
    };
    assert_eq!(out["send"], "TASK_STATE_COMPLETED");
    assert_eq!(out["list"], 2);
    assert_eq!(out["cancel"]["state"], "TASK_STATE_CANCELED");
    assert!(out["cancel"]["seconds"].as_f64().unwrap() < 2.0, "{out}");
    assert_eq!(out["after_cancel"], "TASK_STATE_COMPLETED");
}

#[test]
fn sdk_0_3_sends_streams_gets_and_cancels() {
    let Some(agent) = Agent::start("sdk03", &[]) else {
        return;
    };
    let Some(out) = agent.python("basic", "0.3", &[], None) else {
        return;
    };
    assert_eq!(out["send"], "TASK_STATE_COMPLETED");
    assert_eq!(out["cancel"]["state"], "TASK_STATE_CANCELED");
    assert!(
        out["stream"]["artifact_chunks"].as_u64().unwrap() >= 2,
        "{out}"
    );
}

#[test]
fn an_approval_is_input_required_and_approve_runs_the_command() {
    let Some(agent) = Agent::start("approve", &ASKING) else {
        return;
    };
    let Some(out) = agent.python("approval", "1.0", &["approve-text"], None) else {
        return;
    };
    assert!(
        out["question"].as_str().unwrap().contains("approve"),
        "{out}"
    );
    assert_eq!(out["final"], "TASK_STATE_COMPLETED");
    assert!(
        agent.dir.join("work/approved_by_a2a.txt").exists(),
        "the approved command did not run"
    );
}

#[test]
fn a_decline_as_a_data_part_keeps_the_command_from_running() {
    let Some(agent) = Agent::start("decline", &ASKING) else {
        return;
    };
    let Some(out) = agent.python("approval", "0.3", &["decline-data"], None) else {
        return;
    };
    assert_eq!(out["final"], "TASK_STATE_COMPLETED");
    assert!(
        !agent.dir.join("work/approved_by_a2a.txt").exists(),
        "the declined command ran"
    );
}

#[test]
fn subscribe_follows_a_running_task_in_both_versions() {
    let Some(agent) = Agent::start("subscribe", &[]) else {
        return;
    };
    for version in ["1.0", "0.3"] {
        let Some(out) = agent.python("subscribe", version, &[], None) else {
            return;
        };
        assert_eq!(out["final"], "TASK_STATE_COMPLETED", "{version}: {out}");
        assert!(out["events"].as_u64().unwrap() >= 3, "{version}: {out}");
    }
}

#[test]
fn twenty_contexts_times_three_messages_at_once_are_all_answered() {
    let Some(agent) = Agent::start("twenty", &[]) else {
        return;
    };
    let Some(out) = agent.python("concurrent", "1.0", &["20", "3"], None) else {
        return;
    };
    assert_eq!(out["answered"], 60, "{out}");
    // One long-lived codex served them all.
    let health = agent.health();
    assert_eq!(health["restarts"], 0, "{health}");
    assert_eq!(health["codex"]["state"], "up", "{health}");
}

#[test]
fn the_sdk_works_with_a_bearer_token() {
    let Some(agent) = Agent::start("token", &["--token", "s3cret"]) else {
        return;
    };
    let Some(out) = agent.python("subscribe", "1.0", &[], Some("s3cret")) else {
        return;
    };
    assert_eq!(out["final"], "TASK_STATE_COMPLETED");
}
