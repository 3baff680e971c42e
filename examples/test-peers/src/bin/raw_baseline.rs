//! `raw_baseline`: our earlier baseline for `jrpc bench`, no longer the
//! floor it is measured against: `benches/run.sh` uses the shared floor's
//! `raw-baseline` (`../shared/bench`) and no longer runs this one, which
//! serializes every request and parses every result into a `Value` (see
//! benches/README.md).
//!
//! ```text
//! raw_baseline [--requests N] [--concurrency C] [--payload BYTES] [--method M] [--notifications K] -- CMD [ARGS...]
//! ```
//!
//! Does the work of `jrpc bench` with no async runtime and no pending table:
//! one thread serializes requests (`serde_json`) and writes them to the
//! server's stdin, flushing once per burst; another reads stdout line by
//! line, parses each response (`serde_json`) and checks that its result equals
//! the params. `--concurrency` is a window: the writer sends request `i` only
//! after response `i - C` arrived. Responses must come back in order (the echo
//! server answers in order), which is what lets the reader do without a table.
//!
//! `--notifications K` expects K notifications before each response (the echo
//! server's `--notify K`) and checks they arrive in order; the last line then
//! also reports `notifications=` and `nps=` (notifications per second).
//!
//! Prints one last line in `jrpc bench`'s format:
//! `requests=N concurrency=C payload=B seconds=S rps=R p50_us=X p99_us=Y`.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

const USAGE: &str = "usage: raw_baseline [--requests N] [--concurrency C] [--payload BYTES] [--method M] [--notifications K] -- CMD [ARGS...]";

struct Options {
    requests: usize,
    concurrency: usize,
    payload: usize,
    method: String,
    notify: u64,
    command: Vec<String>,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        requests: 100_000,
        concurrency: 1,
        payload: 100,
        method: "echo".into(),
        notify: 0,
        command: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        fn number<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{name} needs a number, got {v:?}"))
        }
        match arg.as_str() {
            "--" => {
                o.command = it.collect();
                break;
            }
            "--requests" => o.requests = number("--requests", value("--requests")?)?,
            "--concurrency" => o.concurrency = number("--concurrency", value("--concurrency")?)?,
            "--payload" => o.payload = number("--payload", value("--payload")?)?,
            "--method" => o.method = value("--method")?,
            "--notifications" => o.notify = number("--notifications", value("--notifications")?)?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.command.is_empty() {
        return Err("no server command after --".into());
    }
    o.concurrency = o.concurrency.max(1);
    Ok(o)
}

#[derive(Serialize)]
struct Params<'a> {
    data: &'a str,
}

#[derive(Serialize)]
struct OutRequest<'a> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    params: &'a Params<'a>,
}

/// A response or a notification; which one is told by `id`.
#[derive(Deserialize)]
struct Incoming {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    params: Option<Progress>,
}

#[derive(Deserialize)]
struct Progress {
    request: u64,
    seq: u64,
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(problem) => {
            eprintln!("raw_baseline: {problem}\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    match run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("raw_baseline: {problem}");
            ExitCode::from(2)
        }
    }
}

fn run(o: &Options) -> Result<(), String> {
    let mut child = Command::new(&o.command[0])
        .args(&o.command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", o.command[0]))?;
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");

    let data = "x".repeat(o.payload);
    let expected = serde_json::json!({ "data": data });
    // Send times in nanoseconds since `epoch`, indexed by request id.
    let sent_at: Arc<Vec<AtomicU64>> =
        Arc::new((0..o.requests).map(|_| AtomicU64::new(0)).collect());
    // One credit per answered request: the window.
    let (credit_tx, credit_rx) = mpsc::channel::<()>();
    let epoch = Instant::now();

    let writer = {
        let sent_at = sent_at.clone();
        let (requests, concurrency, method) = (o.requests, o.concurrency, o.method.clone());
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut out = BufWriter::with_capacity(256 * 1024, stdin);
            let params = Params { data: &data };
            let mut credits = concurrency;
            let mut next = 0;
            while next < requests {
                if credits == 0 {
                    if credit_rx.recv().is_err() {
                        break;
                    }
                    credits += 1;
                    credits += credit_rx.try_iter().count();
                }
                // Burst: everything the window allows now, one flush.
                while credits > 0 && next < requests {
                    sent_at[next].store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    let request = OutRequest {
                        jsonrpc: "2.0",
                        id: next as u64,
                        method: &method,
                        params: &params,
                    };
                    serde_json::to_writer(&mut out, &request)?;
                    out.write_all(b"\n")?;
                    credits -= 1;
                    next += 1;
                }
                out.flush()?;
            }
            Ok(())
        })
    };

    let mut input = BufReader::with_capacity(256 * 1024, stdout);
    let mut line = Vec::new();
    let mut latencies = Vec::with_capacity(o.requests);
    let mut notifications = 0u64;
    let mut next_seq = 0u64;
    while latencies.len() < o.requests {
        line.clear();
        if input
            .read_until(b'\n', &mut line)
            .map_err(|e| e.to_string())?
            == 0
        {
            return Err(format!(
                "server closed stdout after {} responses",
                latencies.len()
            ));
        }
        let msg: Incoming = serde_json::from_slice(&line).map_err(|e| format!("bad line: {e}"))?;
        let expected_id = latencies.len() as u64;
        match msg.id {
            Some(id) => {
                if id != expected_id || msg.result.as_ref() != Some(&expected) {
                    return Err(format!(
                        "unexpected response: {}",
                        String::from_utf8_lossy(&line)
                    ));
                }
                if next_seq != o.notify {
                    return Err(format!(
                        "request {id}: {next_seq} of {} notifications",
                        o.notify
                    ));
                }
                next_seq = 0;
                let now = epoch.elapsed().as_nanos() as u64;
                latencies.push(now - sent_at[id as usize].load(Ordering::Relaxed));
                let _ = credit_tx.send(());
            }
            None => {
                let p = msg.params.ok_or("notification without params")?;
                if p.request != expected_id || p.seq != next_seq {
                    return Err(format!(
                        "notification out of order: {}",
                        String::from_utf8_lossy(&line)
                    ));
                }
                next_seq += 1;
                notifications += 1;
            }
        }
    }
    let seconds = epoch.elapsed().as_secs_f64();
    drop(credit_tx);
    writer
        .join()
        .expect("writer thread")
        .map_err(|e| format!("write failed: {e}"))?;
    let _ = child.kill();
    let _ = child.wait();

    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0, |ns| ns / 1000)
    };
    let mut summary = format!(
        "requests={} concurrency={} payload={} seconds={:.3} rps={:.0} p50_us={} p99_us={}",
        latencies.len(),
        o.concurrency,
        o.payload,
        seconds,
        latencies.len() as f64 / seconds,
        pct(0.50),
        pct(0.99),
    );
    if o.notify > 0 {
        summary += &format!(
            " notifications={notifications} nps={:.0}",
            notifications as f64 / seconds
        );
    }
    println!("{summary}");
    Ok(())
}
