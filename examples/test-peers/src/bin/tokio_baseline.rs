//! `tokio_baseline`: what tokio itself allows at one request in flight — a
//! client written by hand on a tokio runtime, without this library.
//!
//! ```text
//! tokio_baseline [--runtime current-thread|multi-thread] SERVER REQUESTS PAYLOAD_BYTES
//! ```
//!
//! The same work as the shared floor's `raw-baseline` at concurrency 1 (a
//! pre-formatted request written, the answer line read, its id and result
//! checked with a borrowed `&RawValue`), but through tokio's pipes and
//! scheduler (`write_all`, then `read_line`, awaited in a spawned task), as
//! any async client must. No pending table, no timeout, no liveness: the
//! least an async client can do. `benches/run.sh` runs it beside the 1 in
//! flight rows, so that the library's ratio can be read against what the
//! runtime leaves. Its last line reads `tokio requests=N payload=B
//! seconds=S rps=R`.

use std::process::{ExitCode, Stdio};
use std::time::Instant;

use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const USAGE: &str =
    "usage: tokio_baseline [--runtime current-thread|multi-thread] SERVER REQUESTS PAYLOAD_BYTES";

#[derive(Deserialize)]
struct Response<'a> {
    id: u64,
    #[serde(borrow)]
    result: &'a RawValue,
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let multi_thread = match args.first().map(String::as_str) {
        Some("--runtime") => {
            let runtime = args.get(1).cloned().unwrap_or_default();
            args.drain(..2.min(args.len()));
            match runtime.as_str() {
                "multi-thread" => true,
                "current-thread" => false,
                _ => return usage(),
            }
        }
        _ => false,
    };
    let [server, requests, payload] = &args[..] else {
        return usage();
    };
    let (Ok(requests), Ok(payload)) = (requests.parse::<u64>(), payload.parse::<usize>()) else {
        return usage();
    };
    let runtime = test_peers::bench_runtime(multi_thread);
    let server = server.clone();
    // In a task, as `jrpc bench` runs: `block_on`'s own future is polled
    // outside the multi-thread runtime's workers.
    let outcome = runtime.block_on(async move {
        tokio::spawn(ping_pong(server, requests, payload))
            .await
            .unwrap_or_else(|e| Err(format!("the client task failed: {e}")))
    });
    match outcome {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("tokio_baseline: {problem}");
            ExitCode::from(2)
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(64)
}

async fn ping_pong(server: String, requests: u64, payload: usize) -> Result<String, String> {
    let mut child = tokio::process::Command::new(&server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {server}: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = BufReader::with_capacity(1 << 16, child.stdout.take().expect("piped"));
    let params = format!(r#"{{"data":"{}"}}"#, "x".repeat(payload));
    let mut request = Vec::new();
    let mut line = String::new();
    // The id is written as the library writes it: by itoa, into the
    // request's buffer, with no allocation per request.
    let mut id_buffer = itoa::Buffer::new();
    let started = Instant::now();
    for id in 0..requests {
        request.clear();
        request.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
        request.extend_from_slice(id_buffer.format(id).as_bytes());
        request.extend_from_slice(br#","method":"echo","params":"#);
        request.extend_from_slice(params.as_bytes());
        request.extend_from_slice(b"}\n");
        stdin.write_all(&request).await.map_err(|e| e.to_string())?;
        line.clear();
        if stdout
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?
            == 0
        {
            return Err(format!("the server closed its output after {id} answers"));
        }
        let response: Response = serde_json::from_str(&line).map_err(|e| e.to_string())?;
        if response.id != id || response.result.get() != params {
            return Err(format!("wrong answer to request {id}: {line}"));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(stdin);
    let _ = child.wait().await;
    Ok(format!(
        "tokio requests={requests} payload={payload} seconds={seconds:.3} rps={:.0}",
        requests as f64 / seconds
    ))
}
