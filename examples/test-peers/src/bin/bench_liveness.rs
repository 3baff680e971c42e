//! `bench_liveness`: what N pending requests cost, and how fast they all fail
//! when the server is killed.
//!
//! ```text
//! bench_liveness [--in-flight N] [--payload BYTES] [--runtime current-thread|multi-thread] -- CMD [ARGS...]
//! ```
//!
//! `CMD` must read its stdin and never answer, e.g.
//! `sh -c 'exec cat >/dev/null'`. The tool sends N requests (params
//! `{"data": "<BYTES x's>"}`, no timeout), waits until every one is pending,
//! measures the resident set size, SIGKILLs the server, and measures the time
//! until every request has failed with `Error::Closed`. Prints one line:
//! `in_flight=N payload=B rss_before_kib=.. rss_pending_kib=.. bytes_per_pending=.. kill_to_all_failed_ms=.. peak_rss_kib=..`.

use std::future::IntoFuture;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use jsonrpc_stdio::{Client, Error, ServerCommand};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

const USAGE: &str = "usage: bench_liveness [--in-flight N] [--payload BYTES] [--runtime current-thread|multi-thread] -- CMD [ARGS...]";

fn main() -> ExitCode {
    let mut in_flight = 10_000usize;
    let mut payload = 100usize;
    let mut multi_thread = false;
    let mut command = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let parsed = match (arg.as_str(), value.as_deref()) {
            ("--", _) => {
                command = value.into_iter().chain(args.by_ref()).collect();
                Some(())
            }
            ("--in-flight", Some(v)) => v.parse().ok().map(|n| in_flight = n),
            ("--payload", Some(v)) => v.parse().ok().map(|n| payload = n),
            ("--runtime", Some(v @ ("multi-thread" | "current-thread"))) => {
                multi_thread = v == "multi-thread";
                Some(())
            }
            _ => None,
        };
        if parsed.is_none() {
            eprintln!("bench_liveness: bad argument {arg:?}\n{USAGE}");
            return ExitCode::from(64);
        }
    }
    if command.is_empty() {
        eprintln!("bench_liveness: no server command after --\n{USAGE}");
        return ExitCode::from(64);
    }
    let runtime = test_peers::bench_runtime(multi_thread);
    match runtime.block_on(run(in_flight, payload, command)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("bench_liveness: {problem}");
            ExitCode::from(2)
        }
    }
}

async fn run(n: usize, payload: usize, command: Vec<String>) -> Result<String, String> {
    let client = Client::builder()
        .request_timeout(None)
        .spawn(ServerCommand::new(&command[0]).args(&command[1..]))
        .map_err(|e| e.to_string())?;
    let pid = client.pid().ok_or("no pid")?;
    let params = json!({ "data": "x".repeat(payload) });
    // Warm up the connection so its buffers are counted in the baseline.
    let warm: FuturesUnordered<_> = (0..64)
        .map(|_| client.request("echo", &params).into_future())
        .collect();
    let _ = tokio::time::timeout(Duration::from_millis(100), warm.collect::<Vec<_>>()).await;
    let rss_before = status_kib("VmRSS")?;

    let mut pending: FuturesUnordered<_> = (0..n)
        .map(|_| client.request("echo", &params).into_future())
        .collect();
    // Polling registers every request; none can finish, the server never
    // answers. Give the writer time to hand every byte to the server.
    if let Ok(answer) = tokio::time::timeout(Duration::from_millis(300), pending.next()).await {
        return Err(format!("a request finished early: {answer:?}"));
    }
    let rss_pending = status_kib("VmRSS")?;

    let started = Instant::now();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).map_err(|e| e.to_string())?;
    let mut failed = 0;
    while let Some(answer) = pending.next().await {
        match answer {
            Err(Error::Closed(_)) => failed += 1,
            other => return Err(format!("expected Error::Closed, got {other:?}")),
        }
    }
    let to_all_failed = started.elapsed();
    if failed != n {
        return Err(format!("{failed} of {n} failed"));
    }
    let _ = client.close().await;
    Ok(format!(
        "in_flight={n} payload={payload} rss_before_kib={rss_before} rss_pending_kib={rss_pending} \
         bytes_per_pending={} kill_to_all_failed_ms={:.1} peak_rss_kib={}",
        (rss_pending.saturating_sub(rss_before) * 1024) / n.max(1) as u64,
        to_all_failed.as_secs_f64() * 1000.0,
        status_kib("VmHWM")?,
    ))
}

/// A `kB` field of `/proc/self/status`.
fn status_kib(field: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/self/status"))
}
