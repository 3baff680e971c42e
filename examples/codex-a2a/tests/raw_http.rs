//! codex-a2a over plain HTTP: the 0.3 request the original service's
//! clients sent, the card, auth, every bad input, the busy queue, the
//! approval timeout, and a graceful SIGTERM.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{answer, artifact_text, status_text, uuid, Agent, ASKING};

#[test]
fn a_plain_0_3_message_send_is_answered_as_the_original_clients_expect() {
    let Some(agent) = Agent::start("plain03", &[]) else {
        return;
    };
    let body = json!({
        "jsonrpc": "2.0", "id": "req-1", "method": "message/send",
        "params": {"message": {"kind": "message", "messageId": uuid(), "role": "user",
                               "parts": [{"kind": "text", "text": "Hello"}]}}
    });
    let answer: Value = agent.post_raw(body.to_string(), None).json().unwrap();
    assert_eq!(answer["id"], "req-1");
    let task = &answer["result"];
    assert_eq!(task["kind"], "task", "{answer}");
    assert_eq!(task["status"]["state"], "completed");
    assert_eq!(task["artifacts"][0]["parts"][0]["kind"], "text");
    assert_eq!(
        task["artifacts"][0]["parts"][0]["text"],
        "Hello from the mock model."
    );
    assert_eq!(task["history"][0]["role"], "user");
    // A second message in the same context, the same way.
    let ctx = task["contextId"].as_str().unwrap();
    let again = agent.call(
        "message/send",
        json!({"message": {"kind": "message", "messageId": uuid(), "role": "user", "contextId": ctx,
                           "parts": [{"kind": "text", "text": "recall"}]}}),
    );
    assert_eq!(
        again["artifacts"][0]["parts"][0]["text"],
        "I remember: Hello"
    );
    // And a 0.3 non-blocking send answers before the turn is done.
    let quick = agent.call(
        "message/send",
        json!({"message": {"kind": "message", "messageId": uuid(), "role": "user",
                           "parts": [{"kind": "text", "text": "slow"}]},
               "configuration": {"blocking": false}}),
    );
    assert!(
        matches!(
            quick["status"]["state"].as_str(),
            Some("submitted" | "working")
        ),
        "{quick}"
    );
}

#[test]
fn the_card_declares_both_versions_and_is_served_without_a_token() {
    let Some(agent) = Agent::start("card", &["--token", "t0k"]) else {
        return;
    };
    let card: Value = reqwest::blocking::get(format!("{}.well-known/agent-card.json", agent.url))
        .unwrap()
        .json()
        .unwrap();
    let versions: Vec<&str> = card["supportedInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["protocolVersion"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.0", "0.3"]);
    assert_eq!(card["supportedInterfaces"][0]["url"], agent.url);
    assert_eq!(card["url"], agent.url);
    assert_eq!(card["protocolVersion"], "0.3.0");
    assert_eq!(card["capabilities"]["streaming"], true);
    assert!(card["securitySchemes"]["bearer"].is_object());
}

#[test]
fn without_the_token_every_request_but_the_card_is_401() {
    let Some(agent) = Agent::start("auth", &["--token", "t0k"]) else {
        return;
    };
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}).to_string();
    for token in [None, Some("wrong")] {
        let resp = agent.post_raw(body.clone(), token);
        assert_eq!(resp.status(), 401, "token {token:?}");
        assert!(resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
    }
    let health = reqwest::blocking::get(format!("{}health", agent.url)).unwrap();
    assert_eq!(health.status(), 401);
    let ok: Value = agent.post_raw(body, Some("t0k")).json().unwrap();
    assert_eq!(ok["error"]["code"], -32001, "{ok}");
}

/// Sends `body` and returns the JSON-RPC error object.
fn error_of(agent: &Agent, body: &str) -> Value {
    let resp = agent.post_raw(body.to_owned(), None);
    assert_eq!(resp.status(), 200, "{body}");
    let answer: Value = resp.json().unwrap();
    assert_eq!(answer["jsonrpc"], "2.0");
    assert!(answer.get("result").is_none(), "{body} succeeded: {answer}");
    answer["error"].clone()
}

#[test]
fn every_bad_input_gets_its_error_and_the_store_keeps_everything() {
    let Some(agent) = Agent::start("bad", &[]) else {
        return;
    };
    let done = agent.send("Hello", None, false);
    let (done_id, ctx) = (
        done["id"].as_str().unwrap(),
        done["contextId"].as_str().unwrap(),
    );
    let rpc = |method: &str, params: Value| {
        json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params}).to_string()
    };
    let msg = |parts: Value| json!({"message": {"messageId": uuid(), "role": "ROLE_USER", "parts": parts}});

    // Malformed JSON, and JSON that is no request.
    assert_eq!(
        error_of(&agent, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ")["code"],
        -32700
    );
    assert_eq!(error_of(&agent, "\u{1}\u{2}")["code"], -32700);
    assert_eq!(error_of(&agent, "[1, 2]")["code"], -32600);
    assert_eq!(
        error_of(&agent, r#"{"id": 1, "method": "GetTask"}"#)["code"],
        -32600
    );
    // Unknown method.
    let e = error_of(&agent, &rpc("tasks/explode", json!({})));
    assert_eq!(e["code"], -32601);
    assert!(
        e["message"].as_str().unwrap().contains("SendMessage"),
        "{e}"
    );
    // Invalid params, each saying what is wrong.
    for (params, says) in [
        (json!({}), "message: is required"),
        (
            json!({"message": {"messageId": uuid(), "contextId": "c".repeat(300), "role": "ROLE_USER", "parts": [{"text": "x"}]}}),
            "at most 256",
        ),
        (json!({"message": "hi"}), "message: must be an object"),
        (msg(json!([])), "at least one part"),
        (msg(json!([{"text": 5}])), "message.parts[0].text"),
        (msg(json!([{"kind": "text", "text": "x"}])), "0.3 spelling"),
        (
            msg(json!([{"text": "x", "data": {}}])),
            "exactly one of text",
        ),
        (
            json!({"message": {"messageId": uuid(), "role": "user", "parts": [{"text": "x"}]}}),
            "ROLE_USER",
        ),
        (
            json!({"message": {"role": "ROLE_USER", "parts": [{"text": "x"}]}}),
            "message.messageId",
        ),
        (
            json!({"message": {"messageId": uuid(), "role": "ROLE_USER", "parts": [{"text": "x"}]},
                "configuration": {"returnImmediately": "yes"}}),
            "configuration.returnImmediately",
        ),
    ] {
        let e = error_of(&agent, &rpc("SendMessage", params.clone()));
        assert_eq!(e["code"], -32602, "{params}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains(says),
            "{params}: {e} should say {says:?}"
        );
        assert_eq!(
            e["data"][0]["@type"],
            "type.googleapis.com/google.rpc.BadRequest"
        );
    }
    let e = error_of(&agent, &rpc("GetTask", json!({"id": 7})));
    assert_eq!(e["code"], -32602);
    let e = error_of(&agent, &rpc("ListTasks", json!({"status": "DONE"})));
    assert_eq!(e["code"], -32602);
    let e = error_of(
        &agent,
        &rpc(
            "message/send",
            json!({"message": {"messageId": "m", "role": "user", "parts": [{"text": "x"}]}}),
        ),
    );
    assert!(e["message"].as_str().unwrap().contains("kind"), "{e}");
    // A file codex cannot take.
    let e = error_of(
        &agent,
        &rpc(
            "SendMessage",
            msg(json!([{"raw": "aGk=", "mediaType": "application/pdf"}])),
        ),
    );
    assert_eq!(e["code"], -32005);
    // Unknown task, in every method that names one.
    for (method, params) in [
        ("GetTask", json!({"id": "nope"})),
        ("CancelTask", json!({"id": "nope"})),
        ("SubscribeToTask", json!({"id": "nope"})),
        ("tasks/get", json!({"id": "nope"})),
        ("tasks/cancel", json!({"id": "nope"})),
        (
            "SendMessage",
            json!({"message": {"messageId": uuid(), "role": "ROLE_USER", "taskId": "nope", "parts": [{"text": "approve"}]}}),
        ),
    ] {
        let e = error_of(&agent, &rpc(method, params));
        assert_eq!(e["code"], -32001, "{method}: {e}");
        assert_eq!(e["data"][0]["reason"], "TASK_NOT_FOUND");
    }
    // A finished task: not cancelable, no subscription, no more messages.
    let e = error_of(&agent, &rpc("CancelTask", json!({"id": done_id})));
    assert_eq!(e["code"], -32002, "{e}");
    assert_eq!(
        error_of(&agent, &rpc("tasks/cancel", json!({"id": done_id})))["code"],
        -32002
    );
    assert_eq!(
        error_of(&agent, &rpc("SubscribeToTask", json!({"id": done_id})))["code"],
        -32004
    );
    let follow_up = json!({"message": {"messageId": uuid(), "role": "ROLE_USER", "taskId": done_id, "parts": [{"text": "more"}]}});
    let e = error_of(&agent, &rpc("SendMessage", follow_up));
    assert_eq!(e["code"], -32602);
    assert!(
        e["message"].as_str().unwrap().contains(ctx),
        "it says how to continue: {e}"
    );
    // An unknown A2A-Version.
    let resp = reqwest::blocking::Client::new()
        .post(&agent.url)
        .header("A2A-Version", "9.9")
        .body(rpc("GetTask", json!({"id": done_id})))
        .send()
        .unwrap();
    assert_eq!(resp.json::<Value>().unwrap()["error"]["code"], -32009);
    // A body over the limit (10 MiB): HTTP 413, with a JSON-RPC error.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{{"message":{{"messageId":"m","role":"ROLE_USER","parts":[{{"text":"{}"}}]}}}}}}"#,
        "x".repeat(11 * 1024 * 1024)
    );
    let resp = agent.post_raw(huge, None);
    assert_eq!(resp.status(), 413);
    let answer: Value = resp.json().unwrap();
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit"),
        "{answer}"
    );
    // Nothing was lost or half-written: the one task, still whole.
    let listed = agent.call("ListTasks", json!({"includeArtifacts": true}));
    assert_eq!(listed["totalSize"], 1, "{listed}");
    assert_eq!(
        artifact_text(&listed["tasks"][0]),
        "Hello from the mock model."
    );
    assert_eq!(
        agent.get(done_id)["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
    // And the service still answers.
    assert_eq!(
        agent.send("Hello again", Some(ctx), false)["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
}

#[test]
fn a_full_context_queue_answers_busy_at_once() {
    let Some(agent) = Agent::start("busy", &["--queue-depth", "1"]) else {
        return;
    };
    let ctx = uuid();
    let running = agent.send("slow one", Some(&ctx), true);
    let queued = agent.send("slow two", Some(&ctx), true);
    let started = Instant::now();
    let answer = agent.rpc(
        "SendMessage",
        json!({"message": {"messageId": uuid(), "role": "ROLE_USER", "contextId": ctx, "parts": [{"text": "three"}]}}),
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the busy answer waited"
    );
    assert_eq!(answer["error"]["code"], -32000, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("busy"),
        "{answer}"
    );
    assert_eq!(answer["error"]["data"][0]["reason"], "CONTEXT_BUSY");
    // Another context is not affected.
    assert_eq!(
        agent.send("hi", None, false)["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
    // The queued one runs after the running one, in order.
    let first = agent.wait_state(
        running["id"].as_str().unwrap(),
        "TASK_STATE_COMPLETED",
        Duration::from_secs(30),
    );
    let second = agent.wait_state(
        queued["id"].as_str().unwrap(),
        "TASK_STATE_COMPLETED",
        Duration::from_secs(30),
    );
    assert!(artifact_text(&first).starts_with("w1 "));
    assert!(artifact_text(&second).starts_with("w1 "));
}

#[test]
fn an_unanswered_approval_is_declined_after_the_timeout() {
    let Some(agent) = Agent::start(
        "approval-timeout",
        &[&ASKING[..], &["--approval-timeout", "1"]].concat(),
    ) else {
        return;
    };
    let task = agent.send_for_approval("run: touch timed_out.txt");
    assert!(status_text(&task).contains("touch timed_out.txt"), "{task}");
    let data = &task["status"]["message"]["parts"][1]["data"]["approval"];
    assert_eq!(data["kind"], "command", "{task}");
    agent.wait_state(
        task["id"].as_str().unwrap(),
        "TASK_STATE_COMPLETED",
        Duration::from_secs(20),
    );
    assert!(
        !agent.dir.join("work/timed_out.txt").exists(),
        "the command ran without approval"
    );
}

#[test]
fn sigterm_lets_a_short_turn_finish_and_exits_0() {
    let Some(mut agent) = Agent::start("sigterm-finish", &[]) else {
        return;
    };
    let task = agent.send("slow", None, true);
    // Working: codex has the turn, which streams for about 2 s.
    agent.wait_state(
        task["id"].as_str().unwrap(),
        "TASK_STATE_WORKING",
        Duration::from_secs(20),
    );
    let started = Instant::now();
    let status = agent.sigterm(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", agent.log());
    assert!(started.elapsed() < Duration::from_secs(8));
    let agent = agent.restart();
    let task = agent.get(task["id"].as_str().unwrap());
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{task}");
}

#[test]
fn sigterm_interrupts_a_turn_past_the_grace_and_records_it() {
    let Some(mut agent) = Agent::start("sigterm-grace", &["--grace", "1"]) else {
        return;
    };
    let task = agent.send("stall", None, true);
    let id = task["id"].as_str().unwrap().to_owned();
    agent.wait_state(&id, "TASK_STATE_WORKING", Duration::from_secs(20));
    let started = Instant::now();
    let status = agent.sigterm(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", agent.log());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}",
        started.elapsed()
    );
    // New connections are refused once it is gone; the task was recorded.
    let agent = agent.restart();
    let task = agent.get(&id);
    assert_eq!(task["status"]["state"], "TASK_STATE_FAILED", "{task}");
    assert!(status_text(&task).contains("shut down"), "{task}");
}

#[test]
fn cancel_of_a_task_waiting_for_approval_cancels_it_and_the_command() {
    let Some(agent) = Agent::start("cancel-approval", &ASKING) else {
        return;
    };
    let task = agent.send_for_approval("run: touch never.txt");
    let started = Instant::now();
    let canceled = agent.call("CancelTask", json!({"id": task["id"]}));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        canceled["status"]["state"], "TASK_STATE_CANCELED",
        "{canceled}"
    );
    // An answer now comes too late, and says so.
    let late = agent.rpc(
        "SendMessage",
        answer(&task["id"], json!({"text": "approve"})),
    );
    assert_eq!(late["error"]["code"], -32602, "{late}");
    assert!(!agent.dir.join("work/never.txt").exists());
    let ctx = canceled["contextId"].as_str().unwrap();
    assert_eq!(
        agent.send("hi", Some(ctx), false)["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
}

#[test]
fn a_0_3_message_stream_is_kind_tagged_server_sent_events_ending_final() {
    let Some(agent) = Agent::start("stream03", &[]) else {
        return;
    };
    let body = json!({
        "jsonrpc": "2.0", "id": 5, "method": "message/stream",
        "params": {"message": {"kind": "message", "messageId": uuid(), "role": "user",
                               "parts": [{"kind": "text", "text": "Hello"}]}}
    });
    let resp = agent.post_raw(body.to_string(), None);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = resp.text().unwrap();
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .collect();
    assert!(
        events.iter().all(|e| e["id"] == 5 && e["jsonrpc"] == "2.0"),
        "{text}"
    );
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["result"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"task"), "{kinds:?}");
    assert!(kinds.contains(&"artifact-update"), "{kinds:?}");
    let last = &events.last().unwrap()["result"];
    assert_eq!(last["kind"], "status-update", "{text}");
    assert_eq!(last["final"], true);
    assert_eq!(last["status"]["state"], "completed");
    // Every chunk but the first appends to the same artifact; the last one
    // carries the whole text.
    let chunks: Vec<&Value> = events
        .iter()
        .map(|e| &e["result"])
        .filter(|r| r["kind"] == "artifact-update")
        .collect();
    assert_eq!(chunks[0]["append"], false);
    assert!(chunks[1..chunks.len() - 1]
        .iter()
        .all(|c| c["append"] == true));
    let whole = chunks.last().unwrap();
    assert_eq!(whole["lastChunk"], true);
    assert_eq!(
        whole["artifact"]["parts"][0]["text"],
        "Hello from the mock model."
    );
}

#[test]
fn a_patch_approval_names_the_files_and_approve_applies_it() {
    let Some(agent) = Agent::start(
        "patch-approval",
        &["--approval-policy", "untrusted", "--sandbox", "read-only"],
    ) else {
        return;
    };
    let task = agent.send_for_approval("patch: notes.txt");
    let question = status_text(&task);
    assert!(
        question.contains("apply a patch to") && question.contains("notes.txt (add)"),
        "{task}"
    );
    let data = &task["status"]["message"]["parts"][1]["data"]["approval"];
    assert_eq!(data["kind"], "patch", "{task}");
    assert!(
        data["changes"][0]["diff"]
            .as_str()
            .unwrap()
            .contains("hello from apply_patch"),
        "{task}"
    );
    let done = agent.call(
        "SendMessage",
        answer(&task["id"], json!({"data": {"decision": "accept"}})),
    );
    assert_eq!(
        done["task"]["status"]["state"], "TASK_STATE_COMPLETED",
        "{done}"
    );
    assert!(
        agent.dir.join("work/notes.txt").exists(),
        "the approved patch was not applied"
    );
}

#[test]
fn ctrl_c_stops_the_service_with_status_0() {
    let Some(mut agent) = Agent::start("sigint", &[]) else {
        return;
    };
    assert_eq!(
        agent.send("hi", None, false)["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
    let status = agent.stop(nix::sys::signal::Signal::SIGINT, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", agent.log());
}

#[test]
fn a_silent_turn_fails_after_the_idle_timeout_and_the_context_goes_on() {
    let Some(agent) = Agent::start("idle", &["--idle-timeout", "1"]) else {
        return;
    };
    let started = Instant::now();
    let task = agent.send("stall", None, false);
    assert_eq!(task["status"]["state"], "TASK_STATE_FAILED", "{task}");
    assert!(status_text(&task).contains("timed out"), "{task}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let ctx = task["contextId"].as_str().unwrap();
    assert_eq!(
        agent.send("hi", Some(ctx), false)["status"]["state"],
        "TASK_STATE_COMPLETED"
    );
}

#[test]
fn a_1_0_subscriber_follows_a_task_through_its_approval_to_the_end() {
    let Some(agent) = Agent::start("subscribe-approval", &ASKING) else {
        return;
    };
    let task = agent.send_for_approval("run: touch watched.txt");
    let id = task["id"].as_str().unwrap().to_owned();
    let body =
        json!({"jsonrpc": "2.0", "id": 3, "method": "SubscribeToTask", "params": {"id": id}});
    let url = agent.url.clone();
    let (subscribed, on_subscribed) = std::sync::mpsc::channel();
    let watcher = std::thread::spawn(move || {
        let response = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
            .post(url)
            .body(body.to_string())
            .send()
            .unwrap();
        let mut text = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(response)) {
            let line = line.unwrap();
            if line.starts_with("data: ") {
                let _ = subscribed.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    // The first event (the task as it is) means the subscription is in place.
    on_subscribed
        .recv_timeout(Duration::from_secs(20))
        .expect("SubscribeToTask sent no first event");
    agent.call(
        "SendMessage",
        answer(&id.into(), json!({"text": "approve"})),
    );
    let text = watcher.join().unwrap();
    let states: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .filter_map(|e| {
            let r = &e["result"];
            r["task"]["status"]["state"]
                .as_str()
                .or(r["statusUpdate"]["status"]["state"].as_str())
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        states.first().map(String::as_str),
        Some("TASK_STATE_INPUT_REQUIRED"),
        "{text}"
    );
    assert!(
        states.iter().any(|s| s == "TASK_STATE_WORKING"),
        "{states:?}"
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("TASK_STATE_COMPLETED"),
        "{states:?}"
    );
    assert!(
        agent.dir.join("work/watched.txt").exists(),
        "the approved command did not run: {states:?}\n{}",
        agent.log()
    );
}
