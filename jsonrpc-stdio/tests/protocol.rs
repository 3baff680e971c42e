//! Protocol behaviour over an in-memory pipe: the test plays the server and
//! controls every byte it writes.

use std::time::Duration;

use futures::StreamExt;
use jsonrpc_stdio::{
    CancelNotification, Client, CloseReason, Error, ErrorCode, Filter, Framing, RawResult,
    RequestId,
};
use serde_json::{json, Value};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};
use tokio::task::JoinHandle;

struct FakeServer {
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    out: WriteHalf<DuplexStream>,
}

impl FakeServer {
    /// The next message the client wrote.
    async fn recv(&mut self) -> Value {
        let line = self
            .lines
            .next_line()
            .await
            .unwrap()
            .expect("client closed");
        serde_json::from_str(&line).unwrap()
    }

    /// Has `client` call `method` (null params) in a task of its own;
    /// returns the task and the id the request came with.
    async fn call(
        &mut self,
        client: &Client,
        method: &'static str,
    ) -> (JoinHandle<Result<Value, Error>>, Value) {
        let c = client.clone();
        let call = tokio::spawn(async move { c.request(method, json!(null)).await });
        (call, self.recv().await["id"].clone())
    }

    /// As [`call`](Self::call), the result kept raw.
    async fn call_raw(
        &mut self,
        client: &Client,
        method: &'static str,
    ) -> (JoinHandle<Result<RawResult, Error>>, Value) {
        let c = client.clone();
        let call = tokio::spawn(async move { c.request_raw(method, json!(null)).await });
        (call, self.recv().await["id"].clone())
    }

    async fn send(&mut self, raw: &[u8]) {
        self.out.write_all(raw).await.unwrap();
        self.out.flush().await.unwrap();
    }
}

fn pair(builder: jsonrpc_stdio::Builder) -> (Client, FakeServer) {
    let (client_end, server_end) = tokio::io::duplex(1 << 20);
    let (cr, cw) = tokio::io::split(client_end);
    let (sr, sw) = tokio::io::split(server_end);
    let client = builder.connect(cr, cw);
    let server = FakeServer {
        lines: BufReader::new(sr).lines(),
        out: sw,
    };
    (client, server)
}

fn connect() -> (Client, FakeServer) {
    pair(Client::builder())
}

#[tokio::test]
async fn requests_carry_jsonrpc_and_resolve_by_id_in_any_order() {
    let (client, mut server) = connect();
    let a = tokio::spawn({
        let c = client.clone();
        async move { c.request("a", json!({"n": 1})).await }
    });
    let first = server.recv().await;
    let b = tokio::spawn({
        let c = client.clone();
        async move { c.request("b", json!(null)).await }
    });
    let second = server.recv().await;
    assert_eq!(first["jsonrpc"], "2.0");
    assert_eq!(first["method"], "a");
    assert_eq!(first["params"], json!({"n": 1}));
    // Answer out of order, without the jsonrpc member (as codex does).
    server
        .send(format!("{{\"id\":{},\"result\":\"B\"}}\n", second["id"]).as_bytes())
        .await;
    server
        .send(format!("{{\"id\":{},\"result\":\"A\"}}\n", first["id"]).as_bytes())
        .await;
    assert_eq!(b.await.unwrap().unwrap(), json!("B"));
    assert_eq!(a.await.unwrap().unwrap(), json!("A"));
}

#[tokio::test]
async fn error_responses_reach_the_caller_with_code_message_and_data() {
    let (client, mut server) = connect();
    let call = tokio::spawn(async move { client.request("thread/start", json!({})).await });
    let req = server.recv().await;
    server
        .send(
            format!(
                "{{\"error\":{{\"code\":-32600,\"message\":\"Not initialized\",\"data\":{{\"k\":1}}}},\"id\":{}}}\n",
                req["id"]
            )
            .as_bytes(),
        )
        .await;
    let err = call.await.unwrap().unwrap_err();
    let rpc = err.rpc_error().expect("an rpc error");
    assert_eq!(rpc.code, ErrorCode::INVALID_REQUEST);
    assert_eq!(rpc.message, "Not initialized");
    assert_eq!(rpc.data, Some(json!({"k": 1})));
    assert!(err.to_string().contains("`thread/start` failed"), "{err}");
}

#[tokio::test]
async fn a_string_id_never_answers_a_numeric_request() {
    let (client, mut server) = connect();
    let c = client.clone();
    let call = tokio::spawn(async move { c.request("m", json!(null)).await });
    let req = server.recv().await;
    let id = req["id"].as_i64().unwrap();
    server
        .send(
            format!(
                "{{\"id\":\"{id}\",\"result\":\"wrong\"}}\n{{\"id\":{id},\"result\":\"right\"}}\n"
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(call.await.unwrap().unwrap(), json!("right"));
    assert_eq!(client.stats().unknown_responses, 1);
}

#[tokio::test]
async fn bad_lines_are_skipped_counted_and_the_connection_goes_on() {
    let (client, mut server) = pair(Client::builder().max_frame_length(64));
    let (call, id) = server.call(&client, "m").await;
    let mut junk = Vec::new();
    junk.extend_from_slice(b"\n   \r\n"); // blank lines: skipped silently
    junk.extend_from_slice(b"{not json\n"); // malformed
    junk.extend_from_slice(b"[1,2\n"); // malformed batch
    junk.extend_from_slice(b"{\"hello\":\"world\"}\n"); // JSON of no JSON-RPC shape
    junk.extend_from_slice(b"42\n"); // not an object
    junk.extend_from_slice(b"{\"id\":1,\"result\":\"\xff\xfe\"}\n"); // invalid UTF-8
    junk.extend_from_slice(format!("{{\"x\":\"{}\"}}\n", "y".repeat(200)).as_bytes()); // too long
    junk.extend_from_slice(b"{\"id\":999,\"result\":1}\n"); // unknown id
    junk.extend_from_slice(
        b"{\"id\":null,\"error\":{\"code\":-32700,\"message\":\"Parse error\"}}\n",
    );
    junk.extend_from_slice(format!("{{\"id\":{id},\"result\":\"ok\"}}\n").as_bytes());
    server.send(&junk).await;
    assert_eq!(call.await.unwrap().unwrap(), json!("ok"));
    let stats = client.stats();
    assert_eq!(stats.bad_frames, 2, "{stats:?}");
    assert_eq!(stats.unparsable, 4, "{stats:?}");
    assert_eq!(stats.unknown_responses, 2, "{stats:?}");
    assert!(!client.is_closed());
}

/// Has `client` call `m` twice, typed and raw, and answers them with these
/// lines (`ID` replaced by each request's id); their outcomes.
async fn answer_typed_and_raw(
    client: &Client,
    server: &mut FakeServer,
    typed_line: &str,
    raw_line: &str,
) -> (Result<Value, Error>, Result<RawResult, Error>) {
    let (typed, typed_id) = server.call(client, "m").await;
    let (raw, raw_id) = server.call_raw(client, "m").await;
    let wire = format!(
        "{}\n{}\n",
        typed_line.replace("ID", &typed_id.to_string()),
        raw_line.replace("ID", &raw_id.to_string())
    );
    server.send(wire.as_bytes()).await;
    (typed.await.unwrap(), raw.await.unwrap())
}

#[tokio::test]
async fn a_result_is_checked_by_its_caller_in_any_member_order_and_a_malformed_one_fails_at_once() {
    // The reader hands a plain envelope's result on unread (its caller's
    // decoding checks it, and reads the frame whole if it must).
    let (client, mut server) = connect();
    // Valid JSON-RPC in any member order: a server that writes "jsonrpc"
    // last must not fail its callers.
    let (typed, raw) = answer_typed_and_raw(
        &client,
        &mut server,
        r#"{"id":ID,"result":{"x":1},"jsonrpc":"2.0"}"#,
        r#"{"id":ID,"result":[1, 2],"jsonrpc":"2.0"}"#,
    )
    .await;
    assert_eq!(typed.unwrap(), json!({"x": 1}));
    assert_eq!(raw.unwrap().as_bytes(), b"[1, 2]");
    assert_eq!(client.stats().unparsable, 0);
    // A malformed one fails that caller, typed or raw, instead of leaving
    // it to its timeout.
    let (typed, raw) = answer_typed_and_raw(
        &client,
        &mut server,
        r#"{"id":ID,"result":[1,}"#,
        r#"{"jsonrpc":"2.0","id":ID,"result":1,"error":{"code":1,"message":""}}"#,
    )
    .await;
    let typed = typed.unwrap_err();
    assert!(
        matches!(&typed, Error::Decode { method, .. } if method == "m"),
        "{typed}"
    );
    let raw = raw.unwrap_err();
    assert!(matches!(&raw, Error::Decode { .. }), "{raw}");
    assert!(raw.to_string().contains("both result and error"), "{raw}");
    assert_eq!(client.stats().unparsable, 2);
    assert!(!client.is_closed());
}

#[tokio::test]
async fn a_content_length_body_of_invalid_utf8_is_a_bad_frame_too() {
    let (client, mut server) = pair(Client::builder().framing(Framing::ContentLength));
    let mut notes = client.subscribe(Filter::All);
    let mut wire = Vec::new();
    for body in [
        &b"{\"method\":\"a\",\"params\":\"\xff\xfe\"}"[..],
        b"{\"method\":\"b\",\"params\":[1, 2]}",
    ] {
        wire.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        wire.extend_from_slice(body);
    }
    server.send(&wire).await;
    let n = notes.next().await.unwrap().unwrap();
    assert_eq!(n.method(), "b");
    assert_eq!(n.params_json(), Some("[1, 2]"));
    let stats = client.stats();
    assert_eq!((stats.bad_frames, stats.unparsable), (1, 0), "{stats:?}");
}

#[tokio::test]
async fn a_duplicate_response_is_ignored() {
    let (client, mut server) = connect();
    let (call, id) = server.call(&client, "m").await;
    server
        .send(format!("{{\"id\":{id},\"result\":1}}\n{{\"id\":{id},\"result\":2}}\n").as_bytes())
        .await;
    assert_eq!(call.await.unwrap().unwrap(), json!(1));
    // The second answer is counted once the reader gets to it.
    let (ping, pid) = server.call(&client, "ping").await;
    server
        .send(format!("{{\"id\":{pid},\"result\":0}}\n").as_bytes())
        .await;
    ping.await.unwrap().unwrap();
    assert_eq!(client.stats().unknown_responses, 1);
}

#[tokio::test]
async fn a_batch_resolves_each_caller_and_delivers_each_notification() {
    let (client, mut server) = connect();
    let mut notes = client.subscribe(Filter::All);
    let (one, id1) = server.call(&client, "one").await;
    let (two, id2) = server.call(&client, "two").await;
    server
        .send(
            format!("[{{\"id\":{id2},\"result\":2}},{{\"method\":\"n\"}},\"junk\",{{\"id\":{id1},\"result\":1}}]\n")
                .as_bytes(),
        )
        .await;
    assert_eq!(one.await.unwrap().unwrap(), json!(1));
    assert_eq!(two.await.unwrap().unwrap(), json!(2));
    assert_eq!(notes.next().await.unwrap().unwrap().method(), "n");
    assert_eq!(client.stats().unparsable, 1);
}

#[tokio::test]
async fn a_batch_element_is_handled_as_it_would_be_alone() {
    // Numbers no `Value` holds, kept as the server wrote them, in a batch
    // as out of one (each element is read as a frame of its own).
    let (client, mut server) = connect();
    let mut notes = client.subscribe(Filter::All);
    let (raw, id) = server.call_raw(&client, "m").await;
    let big = "123456789012345678901234567890";
    server
        .send(
            format!(
                "[{{\"method\":\"n\",\"params\":[{big}, 1e400]}}, {{\"id\":{id},\"result\":1e400,\"jsonrpc\":\"2.0\"}}]\n"
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(raw.await.unwrap().unwrap().as_bytes(), b"1e400");
    let note = notes.next().await.unwrap().unwrap();
    assert_eq!(note.params_json(), Some(format!("[{big}, 1e400]").as_str()));
    assert_eq!(client.stats().unparsable, 0);
}

#[tokio::test]
async fn a_subscriber_sees_every_notification_written_before_the_response() {
    let (client, mut server) = connect();
    let mut notes = client.subscribe(Filter::prefix("item/"));
    let (call, id) = server.call(&client, "turn/start").await;
    let mut burst = String::new();
    for i in 0..100 {
        burst.push_str(&format!(
            "{{\"method\":\"item/delta\",\"params\":{{\"i\":{i}}}}}\n"
        ));
        burst.push_str("{\"method\":\"other/thing\"}\n");
    }
    burst.push_str(&format!("{{\"id\":{id},\"result\":{{}}}}\n"));
    server.send(burst.as_bytes()).await;
    call.await.unwrap().unwrap();
    // The response resolved; all 100 are already queued, in wire order.
    for i in 0..100 {
        let n = notes.next().await.unwrap().unwrap();
        assert_eq!(n.params::<Value>().unwrap()["i"], i);
    }
}

#[tokio::test]
async fn filters_select_by_method_and_prefix() {
    let (client, mut server) = connect();
    let mut exact = client.subscribe(Filter::method("turn/completed"));
    let mut prefix = client.subscribe(Filter::prefix("codex/event/"));
    let mut all = client.subscribe(Filter::All);
    server
        .send(b"{\"method\":\"codex/event/task_started\"}\n{\"method\":\"turn/completed\"}\n")
        .await;
    assert_eq!(
        exact.next().await.unwrap().unwrap().method(),
        "turn/completed"
    );
    assert_eq!(
        prefix.next().await.unwrap().unwrap().method(),
        "codex/event/task_started"
    );
    assert_eq!(
        all.next().await.unwrap().unwrap().method(),
        "codex/event/task_started"
    );
    assert_eq!(
        all.next().await.unwrap().unwrap().method(),
        "turn/completed"
    );
}

#[tokio::test]
async fn a_lagging_subscriber_is_told_how_many_it_lost_and_others_are_not_slowed() {
    let (client, mut server) = pair(Client::builder().subscription_capacity(4));
    let mut slow = client.subscribe(Filter::All);
    let mut burst = String::new();
    for i in 0..10 {
        burst.push_str(&format!("{{\"method\":\"n\",\"params\":{i}}}\n"));
    }
    server.send(burst.as_bytes()).await;
    // A request still gets through while the subscriber is full.
    let (call, id) = server.call(&client, "m").await;
    server
        .send(
            format!("{{\"method\":\"n\",\"params\":10}}\n{{\"id\":{id},\"result\":true}}\n")
                .as_bytes(),
        )
        .await;
    assert_eq!(call.await.unwrap().unwrap(), json!(true));
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(match slow.next().await.unwrap() {
            Ok(n) => n.params_json().unwrap().to_owned(),
            Err(Error::Lagged { skipped }) => format!("lagged {skipped}"),
            Err(e) => panic!("{e}"),
        });
    }
    assert_eq!(seen, ["0", "1", "2", "3", "lagged 7"]);
    assert_eq!(client.stats().lagged_notifications, 7);
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes() {
    let (client, mut server) = connect();
    let notes = client.subscribe(Filter::All);
    drop(notes);
    server.send(b"{\"method\":\"n\"}\n").await;
    let (call, id) = server.call(&client, "m").await;
    server
        .send(format!("{{\"id\":{id},\"result\":1}}\n").as_bytes())
        .await;
    call.await.unwrap().unwrap();
    assert_eq!(client.stats().unrouted_notifications, 1);
}

#[tokio::test]
async fn a_server_request_is_answered_by_its_handler() {
    let (client, mut server) = connect();
    let mut approvals = client.requests(Filter::method("item/commandExecution/requestApproval"));
    server
        .send(b"{\"id\":0,\"method\":\"item/commandExecution/requestApproval\",\"params\":{\"itemId\":\"x\"}}\n")
        .await;
    let req = approvals.next().await.unwrap();
    assert_eq!(req.id(), &RequestId::from(0));
    assert_eq!(req.params().unwrap()["itemId"], "x");
    req.respond_ok(json!({"decision": "accept"})).unwrap();
    let answer = server.recv().await;
    assert_eq!(
        answer,
        json!({"jsonrpc": "2.0", "id": 0, "result": {"decision": "accept"}})
    );
}

#[tokio::test]
async fn a_server_request_nobody_handles_gets_method_not_found() {
    let (_client, mut server) = connect();
    server
        .send(b"{\"id\":\"q\",\"method\":\"roots/list\"}\n")
        .await;
    let answer = server.recv().await;
    assert_eq!(answer["id"], "q");
    assert_eq!(answer["error"]["code"], -32601);
}

#[tokio::test]
async fn a_server_request_dropped_unanswered_gets_an_internal_error() {
    let (client, mut server) = connect();
    let mut requests = client.requests(Filter::All);
    server
        .send(b"{\"id\":5,\"method\":\"sampling/createMessage\"}\n")
        .await;
    drop(requests.next().await.unwrap());
    let answer = server.recv().await;
    assert_eq!(answer["id"], 5);
    assert_eq!(answer["error"]["code"], -32603);
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("without answering"));
}

#[tokio::test(start_paused = true)]
async fn a_timeout_names_the_method_and_duration_and_removes_the_entry() {
    let (client, mut server) = connect();
    let err = client
        .request("slow/method", json!(null))
        .timeout(Some(Duration::from_millis(250)))
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    let msg = err.to_string();
    assert!(
        msg.contains("slow/method") && msg.contains("250ms"),
        "{msg}"
    );
    // The late answer finds no one waiting and is counted, not delivered.
    let id = server.recv().await["id"].clone();
    server
        .send(format!("{{\"id\":{id},\"result\":1}}\n").as_bytes())
        .await;
    let (next, id) = server.call(&client, "m").await;
    server
        .send(format!("{{\"id\":{id},\"result\":2}}\n").as_bytes())
        .await;
    assert_eq!(next.await.unwrap().unwrap(), json!(2));
    assert_eq!(client.stats().unknown_responses, 1);
}

/// One sweeper times out every request of a connection: each request
/// still fails at its own deadline, whatever the order in which the
/// deadlines were set, and one without a deadline waits on.
#[tokio::test(start_paused = true)]
async fn each_request_times_out_at_its_own_deadline() {
    let (client, _server) = pair(Client::builder().request_timeout(Some(Duration::from_secs(1))));
    let start = tokio::time::Instant::now();
    let call = |timeout: Option<Option<u64>>| {
        let c = client.clone();
        tokio::spawn(async move {
            let request = c.request("m", json!(null));
            let request = match timeout {
                Some(ms) => request.timeout(ms.map(Duration::from_millis)),
                None => request,
            };
            let err = request.await.unwrap_err();
            assert!(err.is_timeout(), "{err}");
            start.elapsed()
        })
    };
    // Later deadlines first, then earlier ones: each earlier deadline
    // must wake the sweeper before the time it planned.
    let default = call(None);
    let late = call(Some(Some(3000)));
    let early = call(Some(Some(300)));
    let earliest = call(Some(Some(100)));
    let never = call(Some(None));
    assert_eq!(earliest.await.unwrap(), Duration::from_millis(100));
    assert_eq!(early.await.unwrap(), Duration::from_millis(300));
    assert_eq!(default.await.unwrap(), Duration::from_secs(1));
    assert_eq!(late.await.unwrap(), Duration::from_secs(3));
    // Paused time, moved on by hand: ten minutes later it still waits.
    tokio::time::advance(Duration::from_secs(600)).await;
    tokio::task::yield_now().await;
    assert!(
        !never.is_finished(),
        "a request without a timeout timed out"
    );
    assert_eq!(client.stats().pending_requests, 1);
}

/// Timeouts are kept by the connection's runtime: connected on one without
/// timers, a timed request is refused at once (never left waiting without a
/// deadline), and an untimed one goes.
#[test]
fn on_a_runtime_without_timers_a_timed_request_is_refused_and_an_untimed_one_goes() {
    let bare = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    bare.block_on(async {
        let (client, mut server) = connect();
        let err = client.request("timed", json!(null)).await.unwrap_err();
        assert!(matches!(err, Error::Runtime { .. }), "{err}");
        assert!(err.to_string().contains("no timers"), "{err}");
        let c = client.clone();
        let untimed = tokio::spawn(async move { c.request("m", json!(null)).timeout(None).await });
        // The refused request was never written: the first line is this one.
        let request = server.recv().await;
        assert_eq!(request["method"], "m");
        server
            .send(format!("{{\"id\":{},\"result\":7}}\n", request["id"]).as_bytes())
            .await;
        assert_eq!(untimed.await.unwrap().unwrap(), json!(7));
    });
}

#[tokio::test]
async fn an_abandoned_request_sends_the_configured_cancel_notification() {
    let (client, mut server) =
        pair(Client::builder().cancel_notification(CancelNotification::lsp()));
    let c = client.clone();
    let call = tokio::spawn(async move { c.request("textDocument/hover", json!({})).await });
    let id = server.recv().await["id"].clone();
    call.abort();
    let cancel = server.recv().await;
    assert_eq!(cancel["method"], "$/cancelRequest");
    assert_eq!(cancel["params"]["id"], id);
    // A late answer is harmless.
    server
        .send(format!("{{\"id\":{id},\"result\":null}}\n").as_bytes())
        .await;
    assert!(!client.is_closed());
}

#[tokio::test]
async fn mcp_cancel_notification_names_the_request_id() {
    let (client, mut server) =
        pair(Client::builder().cancel_notification(CancelNotification::mcp()));
    let err = client
        .request("tools/call", json!({}))
        .timeout(Some(Duration::from_millis(20)))
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    let id = server.recv().await["id"].clone();
    let cancel = server.recv().await;
    assert_eq!(cancel["method"], "notifications/cancelled");
    assert_eq!(cancel["params"]["requestId"], id);
}

#[tokio::test]
async fn output_eof_fails_pending_requests_and_ends_subscriptions() {
    let (client, mut server) = connect();
    let mut notes = client.subscribe(Filter::All);
    let calls: Vec<_> = (0..3)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move { c.request("m", json!(i)).await })
        })
        .collect();
    for _ in 0..3 {
        server.recv().await;
    }
    server.send(b"{\"method\":\"last words\"}\n").await;
    drop(server);
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert!(
            matches!(err.close_reason(), Some(CloseReason::OutputClosed { .. })),
            "{err}"
        );
    }
    assert_eq!(notes.next().await.unwrap().unwrap().method(), "last words");
    assert!(matches!(notes.next().await, Some(Err(Error::Closed(_)))));
    assert!(notes.next().await.is_none());
    assert!(client.is_closed());
    assert!(matches!(
        *client.closed().await,
        CloseReason::OutputClosed { .. }
    ));
}

#[tokio::test]
async fn after_death_every_call_fails_at_once_with_the_first_cause() {
    let (client, server) = connect();
    drop(server);
    let reason = client.closed().await;
    let err = client
        .request("m", json!(null))
        .timeout(None)
        .await
        .unwrap_err();
    assert!(err.is_closed());
    assert_eq!(err.to_string(), reason.to_string());
    assert!(client.notify("n", json!(null)).unwrap_err().is_closed());
    let mut late = client.subscribe(Filter::All);
    assert!(matches!(late.next().await, Some(Err(Error::Closed(_)))));
    let mut requests = client.requests(Filter::All);
    assert!(requests.next().await.is_none());
    // close() keeps the first cause.
    client.close().await.unwrap();
    assert!(matches!(
        *client.close_reason().unwrap(),
        CloseReason::OutputClosed { .. }
    ));
}

#[tokio::test]
async fn close_fails_pending_requests_as_closed_by_client() {
    let (client, mut server) = connect();
    let c = client.clone();
    let call = tokio::spawn(async move { c.request("m", json!(null)).timeout(None).await });
    server.recv().await;
    assert_eq!(client.close().await.unwrap(), None);
    let err = call.await.unwrap().unwrap_err();
    assert!(matches!(
        err.close_reason(),
        Some(CloseReason::ClosedByClient)
    ));
    // The server sees its input end.
    assert!(server.lines.next_line().await.unwrap().is_none());
}

#[tokio::test]
async fn racing_requests_with_death_never_hang() {
    for _ in 0..50 {
        let (client, server) = connect();
        let calls: Vec<_> = (0..20)
            .map(|i| {
                let c = client.clone();
                tokio::spawn(async move { c.request("m", json!(i)).timeout(None).await })
            })
            .collect();
        drop(server);
        for call in calls {
            let result = tokio::time::timeout(Duration::from_secs(5), call)
                .await
                .expect("a request outlived the connection");
            assert!(result.unwrap().unwrap_err().is_closed());
        }
    }
}

#[tokio::test]
async fn typed_calls_decode_the_result_or_say_why_not() {
    enum Add {}
    impl jsonrpc_stdio::Request for Add {
        const METHOD: &'static str = "add";
        type Params = (i32, i32);
        type Result = i32;
    }
    let (client, mut server) = connect();
    let c = client.clone();
    let ok = tokio::spawn(async move { c.call::<Add>((2, 3)).await });
    let req = server.recv().await;
    assert_eq!(req["method"], "add");
    assert_eq!(req["params"], json!([2, 3]));
    server
        .send(format!("{{\"id\":{},\"result\":5}}\n", req["id"]).as_bytes())
        .await;
    assert_eq!(ok.await.unwrap().unwrap(), 5);

    let c = client.clone();
    let bad = tokio::spawn(async move { c.call::<Add>((1, 1)).await });
    let req = server.recv().await;
    server
        .send(format!("{{\"id\":{},\"result\":\"two\"}}\n", req["id"]).as_bytes())
        .await;
    let err = bad.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
}

#[tokio::test]
async fn raw_results_keep_the_servers_bytes_whether_alone_or_in_a_batch() {
    let (client, mut server) = connect();
    let c = client.clone();
    let alone = tokio::spawn(async move { c.request_raw("a", json!(null)).await });
    let req = server.recv().await;
    // Spacing and key order are the server's, kept as written.
    server
        .send(
            format!(
                "{{\"id\":{},\"result\": {{\"b\":1, \"a\":[2]}} }}\n",
                req["id"]
            )
            .as_bytes(),
        )
        .await;
    let raw = alone.await.unwrap().unwrap();
    assert_eq!(raw.as_str().unwrap(), r#"{"b":1, "a":[2]}"#);
    assert_eq!(
        raw.deserialize::<Value>().unwrap(),
        json!({"a": [2], "b": 1})
    );

    // A batch takes the general path; its result is re-encoded, same value.
    let c = client.clone();
    let batched = tokio::spawn(async move { c.request("b", json!(null)).raw().await });
    let req = server.recv().await;
    server
        .send(format!("[{{\"id\":{},\"result\":{{\"x\":null}}}}]\n", req["id"]).as_bytes())
        .await;
    let raw = batched.await.unwrap().unwrap();
    assert_eq!(raw.deserialize::<Value>().unwrap(), json!({"x": null}));
}

#[tokio::test]
async fn stats_show_the_requests_pending_and_the_bytes_queued() {
    let (client, mut server) = connect();
    assert_eq!(client.stats().pending_requests, 0);
    let c = client.clone();
    let call = tokio::spawn(async move { c.request("m", json!(null)).await });
    let req = server.recv().await;
    assert_eq!(client.stats().pending_requests, 1);
    assert_eq!(client.stats().queued_bytes, 0, "written, nothing queued");
    server
        .send(format!("{{\"id\":{},\"result\":1}}\n", req["id"]).as_bytes())
        .await;
    call.await.unwrap().unwrap();
    assert_eq!(client.stats().pending_requests, 0);
}
