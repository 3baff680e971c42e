//! The mock over real HTTP: raw requests on a TCP socket, so the tests see
//! the bytes codex sees.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// `host:port` of the mock.
fn addr_of(model: &MockModel) -> String {
    model
        .base_url()
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned()
}

fn prompt(text: &str) -> String {
    json!({"input": [{"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": text}]}]})
    .to_string()
}

fn post_request(body: &str, connection: &str) -> String {
    format!(
        "POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: {connection}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A response as read off the wire, its body de-chunked.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn parse(raw: &[u8]) -> Answer {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete head");
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let status = head[9..12].parse().unwrap();
        let rest = &raw[split + 4..];
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(rest).expect("a complete chunked body")
        } else {
            rest.to_vec()
        };
        Answer {
            status,
            head,
            body: String::from_utf8(body).unwrap(),
        }
    }

    /// The SSE events: each `event:` name with its `data:` JSON.
    fn events(&self) -> Vec<(String, Value)> {
        self.body
            .split("\n\n")
            .filter(|frame| !frame.trim().is_empty())
            .map(|frame| {
                let mut name = String::new();
                let mut data = Value::Null;
                for line in frame.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = n.to_owned();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = serde_json::from_str(d).unwrap();
                    }
                }
                assert_eq!(data["type"], name.as_str(), "{frame}");
                (name, data)
            })
            .collect()
    }

    fn kinds(&self) -> Vec<String> {
        self.events().into_iter().map(|(name, _)| name).collect()
    }
}

/// A chunked body up to and including its last chunk, or `None` when it
/// has not ended.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).ok()?, 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return raw.starts_with(b"\r\n").then_some(body);
        }
        if raw.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// Sends `raw` on a fresh connection and reads until the mock closes it.
async fn exchange(addr: &str, raw: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the mock closes the connection")
        .unwrap();
    out
}

async fn post(addr: &str, body: &str) -> Answer {
    Answer::parse(&exchange(addr, post_request(body, "close").as_bytes()).await)
}

/// Reads from `s` into `buf` until `done(buf)`, failing after `limit`.
async fn read_until(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    limit: Duration,
    done: impl Fn(&[u8]) -> bool,
) {
    timeout(limit, async {
        while !done(buf) {
            let mut chunk = [0u8; 8192];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(buf));
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; got {}", String::from_utf8_lossy(buf)));
}

fn contains(buf: &[u8], needle: &str) -> bool {
    buf.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Whether `buf` holds a whole response with a chunked body.
fn complete(buf: &[u8]) -> bool {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .is_some_and(|end| dechunk(&buf[end + 4..]).is_some())
}

#[tokio::test]
async fn a_text_reply_streams_deltas_and_ends_the_body() {
    let model = MockModel::start_default().await.unwrap();
    let answer = post(&addr_of(&model), &prompt("say hi")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.head.contains("content-type: text/event-stream"));
    let kinds = answer.kinds();
    assert_eq!(kinds.first().map(String::as_str), Some("response.created"));
    assert_eq!(kinds.last().map(String::as_str), Some("response.completed"));
    let text: String = answer
        .events()
        .iter()
        .filter(|(name, _)| name == "response.output_text.delta")
        .map(|(_, data)| data["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, "Hello from the mock model.");
    assert_eq!(model.requests().len(), 1);
    assert_eq!(model.requests()[0].user_text(), "say hi");
}

#[tokio::test]
async fn the_body_ends_after_the_last_event_while_the_connection_stays_open() {
    let model = MockModel::start_default().await.unwrap();
    let mut s = TcpStream::connect(addr_of(&model)).await.unwrap();
    for turn in ["one", "two"] {
        s.write_all(post_request(&prompt(turn), "keep-alive").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        read_until(&mut s, &mut buf, Duration::from_secs(5), complete).await;
        let answer = Answer::parse(&buf);
        assert_eq!(
            answer.kinds().last().map(String::as_str),
            Some("response.completed")
        );
    }
    let texts: Vec<String> = model.requests().iter().map(|r| r.user_text()).collect();
    assert_eq!(texts, ["one", "two"]);
}

// Paused time: the pauses are measured on the mock's own clock, so the test
// takes no wall time and a busy machine cannot stretch them.
#[tokio::test(start_paused = true)]
async fn each_chunk_is_sent_after_its_delay() {
    const DELAY: Duration = Duration::from_millis(200);
    let model = MockModel::start(|_: &ModelRequest| Reply::Text {
        chunks: vec!["a".into(), "b".into(), "c".into()],
        delay: DELAY,
    })
    .await
    .unwrap();
    let mut s = TcpStream::connect(addr_of(&model)).await.unwrap();
    let sent = Instant::now();
    s.write_all(post_request(&prompt("hi"), "close").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    read_until(&mut s, &mut buf, Duration::from_secs(5), |b| {
        contains(b, "response.created")
    })
    .await;
    let created = sent.elapsed();
    read_until(&mut s, &mut buf, Duration::from_secs(5), |b| {
        contains(b, "\"delta\":\"a\"")
    })
    .await;
    let first = sent.elapsed();
    read_until(&mut s, &mut buf, Duration::from_secs(5), complete).await;
    let done = sent.elapsed();
    // Streamed, not buffered: the head and first event come before any pause.
    assert!(created < DELAY, "response.created after {created:?}");
    assert!(first >= DELAY, "first delta after {first:?}");
    assert!(done >= DELAY * 3, "body ended after {done:?}");
    assert_eq!(
        Answer::parse(&buf).kinds().last().map(String::as_str),
        Some("response.completed")
    );
}

#[tokio::test]
async fn an_http_error_reply_has_its_status_and_a_json_body() {
    for (status, expected) in [(500, 500), (429, 429), (1000, 500)] {
        let model = MockModel::start(move |_: &ModelRequest| Reply::HttpError { status })
            .await
            .unwrap();
        let answer = post(&addr_of(&model), &prompt("hi")).await;
        assert_eq!(answer.status, expected, "{answer:?}");
        assert!(answer.head.contains("content-type: application/json"));
        let body: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["error"]["message"], "mock model failure");
        assert_eq!(model.requests().len(), 1, "recorded");
    }
}

#[tokio::test]
async fn a_disconnect_ends_the_body_before_completion() {
    let model = MockModel::start_default().await.unwrap();
    let answer = post(&addr_of(&model), &prompt("disconnect")).await;
    let events = answer.events();
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "response.output_text.delta");
    assert_eq!(data["delta"], "Partial");
    assert!(!answer.kinds().iter().any(|k| k == "response.completed"));
}

#[tokio::test]
async fn a_failed_reply_ends_with_response_failed() {
    let model = MockModel::start(|_: &ModelRequest| Reply::Failed {
        message: "overloaded".into(),
    })
    .await
    .unwrap();
    let answer = post(&addr_of(&model), &prompt("hi")).await;
    let events = answer.events();
    assert_eq!(answer.kinds(), ["response.created", "response.failed"]);
    assert_eq!(
        events[1].1["response"]["error"]["message"], "overloaded",
        "{events:?}"
    );
}

// Paused time: "nothing follows" is checked over 300 ms of the runtime's
// clock, which auto-advances once both ends are idle: no wall time spent.
#[tokio::test(start_paused = true)]
async fn a_stall_holds_the_body_open_until_the_mock_is_dropped() {
    let model = MockModel::start_default().await.unwrap();
    let mut s = TcpStream::connect(addr_of(&model)).await.unwrap();
    s.write_all(post_request(&prompt("stall"), "close").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    read_until(&mut s, &mut buf, Duration::from_secs(5), |b| {
        contains(b, "response.created")
    })
    .await;
    let mut chunk = [0u8; 1024];
    assert!(
        timeout(Duration::from_millis(300), s.read(&mut chunk))
            .await
            .is_err(),
        "nothing follows response.created"
    );
    drop(model);
    let end = timeout(Duration::from_secs(5), s.read(&mut chunk))
        .await
        .expect("dropping the mock closes the connection");
    assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");
}

#[tokio::test]
async fn tool_calls_use_the_tools_the_request_offers() {
    let model = MockModel::start_default().await.unwrap();
    let addr = addr_of(&model);
    let ask = |text: &str, tools: Value| {
        json!({"tools": tools, "input": [{"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}]}]})
        .to_string()
    };
    let item = |answer: &Answer| {
        let events = answer.events();
        assert_eq!(
            answer.kinds(),
            [
                "response.created",
                "response.output_item.done",
                "response.completed"
            ]
        );
        events[1].1["item"].clone()
    };

    let shell = json!([{"type": "function", "name": "shell"}]);
    let call = item(&post(&addr, &ask("run: echo hi", shell)).await);
    assert_eq!(call["name"], "shell");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["command"], json!(["bash", "-lc", "echo hi"]));

    let exec = json!([{"type": "function", "name": "exec_command"}]);
    let call = item(&post(&addr, &ask("run: echo hi", exec)).await);
    assert_eq!(call["name"], "exec_command");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["cmd"], "echo hi");

    let custom = json!([{"type": "custom", "name": "apply_patch"}]);
    let call = item(&post(&addr, &ask("patch: a.txt", custom)).await);
    assert_eq!(call["type"], "custom_tool_call");
    assert!(call["input"]
        .as_str()
        .unwrap()
        .contains("*** Add File: a.txt"));
}

#[tokio::test]
async fn a_chunked_request_body_is_read() {
    let model = MockModel::start_default().await.unwrap();
    let body = prompt("http500");
    let req = format!(
        "POST /v1/responses HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let answer = Answer::parse(&exchange(&addr_of(&model), req.as_bytes()).await);
    assert_eq!(answer.status, 500, "{answer:?}");
    assert_eq!(model.requests()[0].user_text(), "http500");
}

/// Sends `head` and then `body_len` bytes of body, while reading the
/// answer: the mock may answer, and hang up, before the body is all sent.
async fn send_while_reading(addr: &str, head: String, body_len: usize) -> Vec<u8> {
    let s = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let block = vec![b'x'; 1 << 20];
        let mut left = body_len;
        while left > 0 {
            let n = left.min(block.len());
            wr.write_all(&block[..n]).await?;
            left -= n;
        }
        Ok::<_, std::io::Error>(wr)
    });
    let mut out = Vec::new();
    let read = timeout(Duration::from_secs(20), rd.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the mock neither answers nor hangs up");
    // The writer may have failed on the closed connection; that is fine.
    let _ = writer.await.unwrap();
    out
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_and_the_mock_serves_on() {
    let model = MockModel::start_default().await.unwrap();
    let addr = addr_of(&model);
    let too_long = MAX_BODY + 1;
    let head = format!("POST /v1/responses HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {too_long}\r\n\r\n");
    let out = send_while_reading(&addr, head, too_long).await;
    let text = String::from_utf8_lossy(&out);
    assert!(out.is_empty() || text.starts_with("HTTP/1.1 413"), "{text}");

    // A chunk size past `u64::MAX` is refused as soon as it is read.
    let req = "POST /v1/responses HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n1ffffffffffffffff\r\nxx";
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let read = timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the mock does not wait for the rest");
    let text = String::from_utf8_lossy(&out);
    assert!(
        read.is_err() || out.is_empty() || text.starts_with("HTTP/1.1 4"),
        "{text}"
    );

    assert!(model.requests().is_empty());
    assert_eq!(post(&addr, &prompt("hi")).await.status, 200);
}

#[tokio::test]
async fn the_models_listing_describes_the_configured_model() {
    let model = MockModel::start_default().await.unwrap();
    let raw = exchange(
        &addr_of(&model),
        b"GET /v1/models?client_version=0.171.0 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    let answer = Answer::parse(&raw);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.head.contains("content-type: application/json"));
    let listing: Value = serde_json::from_str(&answer.body).unwrap();
    let models = listing["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    let config = mock_config_toml(&model.base_url());
    let slug = models[0]["slug"].as_str().unwrap();
    assert!(
        config.starts_with(&format!("model = \"{slug}\"\n")),
        "{config}"
    );
    // The fields codex refuses a listing without.
    for field in [
        "display_name",
        "experimental_supported_tools",
        "priority",
        "shell_type",
        "support_verbosity",
        "supported_in_api",
        "supported_reasoning_levels",
        "truncation_policy",
        "visibility",
        "base_instructions",
    ] {
        assert!(models[0].get(field).is_some(), "{field} missing");
    }
    assert!(
        model.requests().is_empty(),
        "only model requests are recorded"
    );
}

#[tokio::test]
async fn other_paths_and_methods_are_not_found() {
    let model = MockModel::start_default().await.unwrap();
    let addr = addr_of(&model);
    for req in [
        "GET /v1/responses HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}",
    ] {
        let answer = Answer::parse(&exchange(&addr, req.as_bytes()).await);
        assert_eq!(answer.status, 404, "{req}: {answer:?}");
    }
    assert!(model.requests().is_empty());
}

#[test]
fn the_config_points_at_the_mock_and_gives_codex_credentials_for_the_listing() {
    let config = mock_config_toml("http://127.0.0.1:9/v1");
    assert!(config.contains("base_url = \"http://127.0.0.1:9/v1\"\n"));
    assert!(config.contains("[model_providers.mock.auth]\ncommand = \"echo\"\n"));
}

#[test]
fn each_codex_home_is_a_fresh_private_directory() {
    use std::os::unix::fs::PermissionsExt;
    let a = CodexHome::new().unwrap();
    let b = CodexHome::new().unwrap();
    assert_ne!(a.path(), b.path());
    for home in [&a, &b] {
        let meta = std::fs::symlink_metadata(home.path()).unwrap();
        assert!(meta.is_dir() && !meta.file_type().is_symlink());
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o700,
            "{:?}",
            home.path()
        );
        assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
    }
    let path = a.path().to_owned();
    drop(a);
    assert!(!path.exists(), "removed on drop");
}

#[test]
fn a_tool_output_gets_a_closing_message() {
    let req = ModelRequest {
        body: json!({"input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "run: ls"}]},
            {"type": "function_call_output", "call_id": "c", "output": "ok"}
        ]}),
    };
    assert_eq!(default_script(&req), Reply::text("Command ran fine"));
}

#[test]
fn the_default_script_reads_directives_from_the_prompt() {
    let req = |t: &str| ModelRequest {
        body: serde_json::from_str(&prompt(t)).unwrap(),
    };
    assert_eq!(
        default_script(&req("please run: echo hi")),
        Reply::Shell {
            command: "echo hi".into()
        }
    );
    assert_eq!(
        default_script(&req("http500")),
        Reply::HttpError { status: 500 }
    );
}
