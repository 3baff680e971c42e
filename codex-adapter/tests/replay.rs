//! Replays of real codex conversations (recorded from codex 0.72.0 and
//! 0.169.0, in `fixtures/`), through the whole adapter: a player answers the
//! adapter's requests with the recorded responses and writes the recorded
//! notifications and approval requests, waiting for each approval's answer
//! as codex does.

use std::time::Duration;

use codex_adapter::decode::{Family, TurnDecoder};
use codex_adapter::event::{ItemKind, ItemStatus};
use codex_adapter::{
    AppServer, ApprovalDecision, ApprovalKind, ApprovalPolicy, ThreadOptions, TurnEvent,
    TurnOptions, TurnOutcome,
};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn fixture(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/fixtures/{name}.jsonl", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn is_response(v: &Value) -> bool {
    v.get("method").is_none()
}

fn is_server_request(v: &Value) -> bool {
    v.get("method").is_some() && v.get("id").is_some()
}

/// How the player orders the `turn/start` response.
#[derive(Clone, Copy, PartialEq)]
enum TurnResponse {
    AsRecorded,
    /// After every notification: the adapter must buffer them.
    Last,
}

/// What the adapter answered to each approval request.
type Answers = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;

/// Plays `lines` to the adapter over an in-memory pipe. Responses 1, 2 and 3
/// of the recording answer the adapter's first three requests
/// (`initialize`, `thread/start`, `turn/start`); other responses are written
/// as recorded (the adapter ignores unknown ids).
async fn player(
    lines: Vec<Value>,
    order: TurnResponse,
    answers: Answers,
    stream: tokio::io::DuplexStream,
) {
    let (read, mut write) = tokio::io::split(stream);
    let mut from_client = BufReader::new(read).lines();
    let mut client_ids: Vec<Value> = Vec::new();
    // Read client messages until `n` requests have arrived.
    macro_rules! requests_until {
        ($n:expr) => {
            while client_ids.len() < $n {
                let Ok(Some(line)) = from_client.next_line().await else {
                    return;
                };
                let msg: Value = serde_json::from_str(&line).unwrap();
                if msg.get("method").is_some() {
                    if let Some(id) = msg.get("id") {
                        client_ids.push(id.clone());
                    }
                }
            }
        };
    }
    let write_line = |v: Value| {
        let mut text = v.to_string();
        text.push('\n');
        text
    };
    let mut deferred = None;
    let mut responses_seen = 0;
    for line in lines {
        if is_response(&line)
            && line
                .get("id")
                .and_then(Value::as_i64)
                .is_some_and(|i| (1..=3).contains(&i))
        {
            responses_seen += 1;
            requests_until!(responses_seen);
            let mut answer = line.clone();
            answer["id"] = client_ids[responses_seen - 1].clone();
            if responses_seen == 3 && order == TurnResponse::Last {
                deferred = Some(answer);
                continue;
            }
            write
                .write_all(write_line(answer).as_bytes())
                .await
                .unwrap();
            continue;
        }
        write
            .write_all(write_line(line.clone()).as_bytes())
            .await
            .unwrap();
        if is_server_request(&line) {
            // codex waits for the answer before going on.
            loop {
                let Ok(Some(reply)) = from_client.next_line().await else {
                    return;
                };
                let reply: Value = serde_json::from_str(&reply).unwrap();
                if reply.get("method").is_none() && reply.get("id") == line.get("id") {
                    answers.lock().unwrap().push(reply["result"].clone());
                    break;
                }
                if reply.get("method").is_some() && reply.get("id").is_some() {
                    client_ids.push(reply["id"].clone());
                }
            }
        }
    }
    if let Some(answer) = deferred {
        write
            .write_all(write_line(answer).as_bytes())
            .await
            .unwrap();
    }
    write.flush().await.unwrap();
    // Keep the pipe open: the adapter must end the turn on `turn/completed`,
    // not on EOF.
    std::future::pending::<()>().await;
}

struct Replay {
    events: Vec<TurnEvent>,
    answers: Vec<Value>,
}

async fn replay_with(name: &str, policy: ApprovalPolicy, order: TurnResponse) -> Replay {
    let (client_end, server_end) = tokio::io::duplex(1 << 20);
    let answers = Answers::default();
    let play = tokio::spawn(player(fixture(name), order, answers.clone(), server_end));
    let (read, write) = tokio::io::split(client_end);
    let server = AppServer::builder()
        .approvals(policy)
        .connect(read, write)
        .await
        .unwrap();
    let thread = server.start_thread(ThreadOptions::default()).await.unwrap();
    let turn = thread
        .start_turn_with("replayed", TurnOptions::default())
        .await
        .unwrap();
    let events = tokio::time::timeout(Duration::from_secs(10), turn.collect::<Vec<_>>())
        .await
        .unwrap_or_else(|_| panic!("{name}: the replayed turn did not end"));
    play.abort();
    let answers = answers.lock().unwrap().clone();
    Replay { events, answers }
}

async fn replay(name: &str, policy: ApprovalPolicy) -> Replay {
    replay_with(name, policy, TurnResponse::AsRecorded).await
}

fn outcome(events: &[TurnEvent]) -> &TurnOutcome {
    match events.last() {
        Some(TurnEvent::Outcome(o)) => o,
        other => panic!("the last event is not the outcome: {other:?}"),
    }
}

fn deltas(events: &[TurnEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::AgentMessageDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

/// The events both codex versions express, with version-specific details
/// (turn ids, the shell path, token counts, thread status, 0.72.0's second
/// finish of a declined item) left out.
fn comparable(events: &[TurnEvent]) -> Vec<String> {
    let mut finished = std::collections::HashSet::new();
    events
        .iter()
        .filter(|e| match e {
            TurnEvent::CommandFinished { item_id, .. } => finished.insert(item_id.clone()),
            _ => true,
        })
        .filter_map(|e| {
            Some(match e {
                TurnEvent::TurnStarted { .. } => "turn_started".to_owned(),
                TurnEvent::AgentMessageDelta { delta, .. } => format!("delta {delta}"),
                TurnEvent::AgentMessage { text, .. } => format!("message {text}"),
                TurnEvent::CommandStarted { command, .. } => {
                    format!("command_started {}", command.trim_start_matches("/bin/"))
                }
                TurnEvent::CommandFinished { status, .. } => format!("command_finished {status:?}"),
                TurnEvent::ApprovalRequested(a) => format!("approval {:?}", a.decision()),
                TurnEvent::FileChangeStarted { changes, .. } => {
                    format!("file_change_started {}", changes.len())
                }
                TurnEvent::FileChangeFinished { status, .. } => {
                    format!("file_change_finished {status:?}")
                }
                TurnEvent::Error {
                    message,
                    codex_error_info,
                } => {
                    // 0.169.0 writes a typographic apostrophe.
                    format!("error {} {codex_error_info:?}", message.replace('’', "'"))
                }
                TurnEvent::ItemAbandoned { kind, .. } => format!("abandoned {kind}"),
                TurnEvent::Outcome(o) => match o {
                    TurnOutcome::Completed {
                        last_agent_message, ..
                    } => {
                        format!("completed {last_agent_message:?}")
                    }
                    TurnOutcome::Interrupted { .. } => "interrupted".to_owned(),
                    TurnOutcome::Failed {
                        codex_error_info, ..
                    } => format!("failed {codex_error_info:?}"),
                    other => format!("{other:?}"),
                },
                _ => return None,
            })
        })
        .collect()
}

#[tokio::test]
async fn a_text_turn_on_072_yields_each_delta_once() {
    let r = replay("text072", ApprovalPolicy::default()).await;
    assert_eq!(deltas(&r.events), ["Hello", " from", " mock"]);
    assert_eq!(
        outcome(&r.events),
        &TurnOutcome::Completed {
            turn_id: "0".into(),
            last_agent_message: Some("Hello from mock".into())
        }
    );
}

#[tokio::test]
async fn both_codex_versions_yield_the_same_events_for_the_same_turns() {
    for scenario in [
        "text",
        "shell_untrusted_accept",
        "patch_untrusted_accept",
        "shell_untrusted_cancel",
        "http500_noretry",
        "broken_noretry",
        "failed_noretry",
        "interrupt_streaming",
    ] {
        let policy = ApprovalPolicy::Decide(if scenario.ends_with("cancel") {
            ApprovalDecision::Cancel
        } else {
            ApprovalDecision::Accept
        });
        let old = replay(&format!("{scenario}072"), policy).await;
        let new = replay(&format!("{scenario}_latest"), policy).await;
        assert_eq!(
            comparable(&old.events),
            comparable(&new.events),
            "{scenario}"
        );
    }
}

#[tokio::test]
async fn notifications_before_the_turn_start_response_are_not_lost() {
    let r = replay_with("text_latest", ApprovalPolicy::default(), TurnResponse::Last).await;
    assert!(matches!(
        r.events.first(),
        Some(TurnEvent::Other { .. } | TurnEvent::TurnStarted { .. })
    ));
    assert_eq!(deltas(&r.events), ["Hello", " from", " mock"]);
    assert!(outcome(&r.events).is_completed());
}

#[tokio::test]
async fn an_approval_is_joined_to_its_command_and_answered_with_a_decision() {
    let r = replay(
        "shell_untrusted_accept072",
        ApprovalPolicy::Decide(ApprovalDecision::Accept),
    )
    .await;
    let started = r
        .events
        .iter()
        .position(|e| matches!(e, TurnEvent::CommandStarted { .. }))
        .unwrap();
    let TurnEvent::ApprovalRequested(approval) = &r.events[started + 1] else {
        panic!("no approval after the command started: {:?}", r.events);
    };
    assert_eq!(approval.item_id(), "call_4");
    // codex 0.72.0's request has no command: it comes from the item.
    assert_eq!(
        approval.kind(),
        &ApprovalKind::Command {
            command: Some("bash -lc 'echo hello-from-shell && touch created_by_codex.txt'".into()),
            cwd: Some("/srv/codex-fixture/work".into()),
        }
    );
    assert_eq!(approval.decision(), Some(ApprovalDecision::Accept));
    assert_eq!(r.answers, [json!({"decision": "accept"})]);
    assert!(outcome(&r.events).is_completed());
}

#[tokio::test]
async fn approvals_are_declined_by_default() {
    let r = replay("shell_untrusted_decline_latest", ApprovalPolicy::default()).await;
    assert_eq!(r.answers, [json!({"decision": "decline"})]);
    assert!(r.events.iter().any(|e| matches!(
        e,
        TurnEvent::CommandFinished {
            status: ItemStatus::Declined,
            ..
        }
    )));
    assert!(outcome(&r.events).is_completed());
}

#[tokio::test]
async fn an_item_finished_twice_on_072_is_reported_twice() {
    let r = replay("shell_untrusted_decline072", ApprovalPolicy::default()).await;
    let statuses: Vec<&ItemStatus> = r
        .events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::CommandFinished { status, .. } => Some(status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, [&ItemStatus::Declined, &ItemStatus::Failed]);
    assert!(outcome(&r.events).is_completed());
}

#[tokio::test]
async fn a_cancel_decision_ends_the_turn_interrupted() {
    for name in ["shell_untrusted_cancel072", "shell_untrusted_cancel_latest"] {
        let r = replay(name, ApprovalPolicy::Decide(ApprovalDecision::Cancel)).await;
        assert_eq!(r.answers, [json!({"decision": "cancel"})], "{name}");
        assert!(
            matches!(outcome(&r.events), TurnOutcome::Interrupted { .. }),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_model_http_500_fails_the_turn_with_codex_error_info() {
    for name in ["http500_noretry072", "http500_noretry_latest"] {
        let r = replay(name, ApprovalPolicy::default()).await;
        let TurnOutcome::Failed {
            codex_error_info, ..
        } = outcome(&r.events)
        else {
            panic!("{name}: {:?}", r.events);
        };
        assert_eq!(
            codex_error_info,
            &Some(json!("internalServerError")),
            "{name}"
        );
        assert!(r
            .events
            .iter()
            .any(|e| matches!(e, TurnEvent::Error { .. })));
    }
}

#[tokio::test]
async fn retries_are_reported_and_keep_an_object_error_info() {
    let r = replay("http500_retry072", ApprovalPolicy::default()).await;
    let retries: Vec<&Option<Value>> = r
        .events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::Retrying {
                codex_error_info, ..
            } => Some(codex_error_info),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 2);
    assert_eq!(
        retries[0],
        &Some(json!({"responseStreamDisconnected": {"httpStatusCode": null}}))
    );
    assert!(matches!(outcome(&r.events), TurnOutcome::Failed { .. }));
}

#[tokio::test]
async fn items_open_at_an_interrupt_are_closed_as_abandoned() {
    for (name, kind) in [
        ("interrupt_command072", ItemKind::CommandExecution),
        ("interrupt_command_latest", ItemKind::CommandExecution),
        ("interrupt_streaming072", ItemKind::AgentMessage),
        ("interrupt_streaming_latest", ItemKind::AgentMessage),
    ] {
        let r = replay(name, ApprovalPolicy::default()).await;
        let n = r.events.len();
        assert!(
            matches!(&r.events[n - 2], TurnEvent::ItemAbandoned { kind: k, .. } if *k == kind),
            "{name}: {:?}",
            r.events
        );
        assert!(
            matches!(outcome(&r.events), TurnOutcome::Interrupted { .. }),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_patch_approval_carries_the_changes_of_its_item() {
    for name in ["patch_untrusted_accept072", "patch_untrusted_accept_latest"] {
        let r = replay(name, ApprovalPolicy::Decide(ApprovalDecision::Accept)).await;
        let approval = r
            .events
            .iter()
            .find_map(|e| match e {
                TurnEvent::ApprovalRequested(a) => Some(a),
                _ => None,
            })
            .unwrap();
        let ApprovalKind::FileChange { changes, .. } = approval.kind() else {
            panic!("{name}: not a file change: {approval:?}");
        };
        assert_eq!(
            changes[0].path, "/srv/codex-fixture/work/hello_patch.txt",
            "{name}"
        );
        assert!(r
            .events
            .iter()
            .any(|e| matches!(e, TurnEvent::DiffUpdated { .. })));
        assert!(outcome(&r.events).is_completed(), "{name}");
    }
}

/// Decodes a recorded turn's notifications with one decoder.
fn decode(name: &str, family: Family) -> Vec<TurnEvent> {
    let mut decoder = TurnDecoder::new(family);
    let mut events = Vec::new();
    for line in fixture(name) {
        if let (Some(method), None) = (line.get("method").and_then(Value::as_str), line.get("id")) {
            events.extend(decoder.decode(method, line.get("params").unwrap_or(&Value::Null)));
        }
    }
    events
}

#[test]
fn legacy_envelopes_and_v2_notifications_of_072_decode_to_the_same_events() {
    for name in [
        "text072",
        "shell_never_fullaccess072",
        "shell_untrusted_accept072",
        "patch_never072",
        "http500_noretry072",
        "http500_retry072",
        "interrupt_command072",
        "interrupt_streaming072",
        "v1api_shell_untrusted072",
    ] {
        let legacy = decode(name, Family::Legacy);
        let v2 = decode(name, Family::V2);
        assert_eq!(comparable(&legacy), comparable(&v2), "{name}");
        assert!(
            outcome(&legacy).exit_code() == outcome(&v2).exit_code(),
            "{name}"
        );
    }
}

#[test]
fn auto_family_locks_onto_the_first_family_and_never_doubles_deltas() {
    for name in ["text072", "v1api_shell_untrusted072", "text_latest"] {
        let events = decode(name, Family::Auto);
        let texts: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                TurnEvent::AgentMessage { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts.len(), 1, "{name}: {events:?}");
        let joined: String = deltas(&events).concat();
        assert_eq!(joined, texts[0], "{name}");
    }
}
