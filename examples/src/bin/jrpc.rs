//! `jrpc`: curl for stdio JSON-RPC servers.
//!
//! ```text
//! jrpc call  [--timeout SECS] [--framing F] METHOD [PARAMS_JSON] -- CMD [ARGS...]
//! jrpc bench [--requests N] [--concurrency C] [--payload BYTES] [--method M] [--framing F] [--notifications K] [--runtime R] -- CMD [ARGS...]
//! ```
//!
//! `call` prints the result as JSON on stdout; `--timeout` is in seconds
//! (default 30, 0 waits for as long as the server lives). Exit status: 0 success; 1 the
//! server answered with a JSON-RPC error (printed on stderr); 2 the server
//! died or could not be started (with the cause: exit status, stderr tail, or
//! the spawn error); 3 timeout; 64 bad usage.
//!
//! `bench` sends N requests with C in flight, params `{"data": "xxx..."}`,
//! checks every result equals its params, and prints one last line:
//! `requests=N concurrency=C payload=B seconds=S rps=R p50_us=X p99_us=Y`.
//! A server that dies mid-run makes it exit 2 at once with the cause.
//!
//! `--runtime multi-thread` runs on tokio's multi-thread runtime (2 workers)
//! instead of the default current-thread runtime.
//!
//! `bench --notifications K` also subscribes to `echo/progress` and expects K
//! notifications before each response (the echo server's `--notify K`), each
//! `{"request": id, "seq": i}`, in wire order, none lost; the last line then
//! ends with `notifications=T nps=R` (notifications per second).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use jsonrpc_stdio::{Client, Error, Filter, Framing, ServerCommand, Subscription};
use serde_json::{json, Value};

const USAGE: &str = "usage:
  jrpc call  [--timeout SECS (0: none)] [--framing ndjson|content-length] METHOD [PARAMS_JSON] -- CMD [ARGS...]
  jrpc bench [--requests N] [--concurrency C] [--payload BYTES] [--method M] [--framing F] [--notifications K] [--runtime current-thread|multi-thread] -- CMD [ARGS...]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // One connection needs no thread pool: on the current-thread runtime a
    // response wakes its caller without a cross-thread wake-up, which at one
    // request in flight is most of the round trip (see benches/README.md).
    let multi_thread = args
        .iter()
        .take_while(|a| *a != "--")
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w[0] == "--runtime" && w[1] == "multi-thread");
    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(Failure(code, message)) => {
            eprintln!("jrpc: {message}");
            ExitCode::from(code)
        }
    }
}

/// An exit status with what to tell the user.
struct Failure(u8, String);

fn usage(problem: impl std::fmt::Display) -> Failure {
    Failure(64, format!("{problem}\n{USAGE}"))
}

/// Maps a client error onto the documented exit statuses.
fn failure(error: Error) -> Failure {
    let code = match &error {
        Error::Rpc { .. } => 1,
        Error::Timeout { .. } => 3,
        _ => 2,
    };
    Failure(code, error.to_string())
}

struct Options {
    timeout: Option<Duration>,
    framing: Framing,
    requests: usize,
    concurrency: usize,
    payload: usize,
    method: String,
    notifications: u64,
    positional: Vec<String>,
    command: Vec<String>,
}

fn parse(args: Vec<String>) -> Result<Options, Failure> {
    let mut o = Options {
        timeout: Some(Duration::from_secs(30)),
        framing: Framing::NewlineDelimited,
        requests: 100_000,
        concurrency: 1,
        payload: 100,
        method: "echo".into(),
        notifications: 0,
        positional: Vec::new(),
        command: Vec::new(),
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| usage(format!("{name} needs a value")))
        };
        fn number<T: std::str::FromStr>(name: &str, v: String) -> Result<T, Failure> {
            v.parse()
                .map_err(|_| usage(format!("{name} needs a number, got {v:?}")))
        }
        match arg.as_str() {
            "--" => {
                o.command = it.collect();
                break;
            }
            "--timeout" => o.timeout = timeout(value("--timeout")?)?,
            "--framing" => o.framing = value("--framing")?.parse().map_err(usage)?,
            "--requests" => o.requests = number("--requests", value("--requests")?)?,
            "--concurrency" => o.concurrency = number("--concurrency", value("--concurrency")?)?,
            "--payload" => o.payload = number("--payload", value("--payload")?)?,
            "--method" => o.method = value("--method")?,
            // Read by `main`, which builds the runtime before parsing.
            "--runtime" => match value("--runtime")?.as_str() {
                "current-thread" | "multi-thread" => {}
                other => return Err(usage(format!("unknown runtime {other:?}"))),
            },
            "--notifications" => {
                o.notifications = number("--notifications", value("--notifications")?)?;
            }
            flag if flag.starts_with("--") => return Err(usage(format!("unknown option {flag}"))),
            _ => o.positional.push(arg),
        }
    }
    if o.command.is_empty() {
        return Err(usage("no server command after --"));
    }
    // Sizes the user gives become allocations: refuse what cannot be one
    // here, as a usage error, rather than panic in the middle of the run.
    if o.payload > MAX_PAYLOAD {
        return Err(usage(format!(
            "--payload is at most {MAX_PAYLOAD} bytes, got {}",
            o.payload
        )));
    }
    if o.notifications.checked_mul(o.requests as u64).is_none() {
        return Err(usage("--notifications times --requests overflows"));
    }
    Ok(o)
}

/// The largest `--payload`: 1 GiB.
const MAX_PAYLOAD: usize = 1 << 30;

/// `--timeout SECS`: a non-negative number of seconds; 0 waits forever.
fn timeout(v: String) -> Result<Option<Duration>, Failure> {
    let bad = || {
        usage(format!(
            "--timeout needs a number of seconds (0 waits forever), got {v:?}"
        ))
    };
    let secs: f64 = v.parse().map_err(|_| bad())?;
    if secs == 0.0 {
        return Ok(None);
    }
    // Not `from_secs_f64`: it panics on `inf`, `NaN`, negatives and `1e30`.
    match Duration::try_from_secs_f64(secs) {
        Ok(d) => Ok(Some(d)),
        Err(_) => Err(bad()),
    }
}

async fn run(args: Vec<String>) -> Result<ExitCode, Failure> {
    let Some((verb, rest)) = args.split_first() else {
        return Err(usage("no subcommand"));
    };
    let options = parse(rest.to_vec())?;
    let command = ServerCommand::new(&options.command[0]).args(&options.command[1..]);
    let client = Client::builder()
        .framing(options.framing)
        .request_timeout(options.timeout)
        .spawn(command)
        .map_err(failure)?;
    let result = match verb.as_str() {
        "call" => call(&client, &options).await,
        "bench" => bench(&client, &options).await,
        other => Err(usage(format!("unknown subcommand {other:?}"))),
    };
    // A server that already died keeps its cause; otherwise end it politely.
    let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
    result
}

async fn call(client: &Client, o: &Options) -> Result<ExitCode, Failure> {
    let (method, params) = match o.positional.as_slice() {
        [method] => (method, Value::Null),
        [method, params] => {
            let params = serde_json::from_str(params)
                .map_err(|e| usage(format!("PARAMS_JSON is not JSON: {e}")))?;
            (method, params)
        }
        _ => return Err(usage("call takes METHOD and optionally PARAMS_JSON")),
    };
    let result = client.request(method, params).await.map_err(failure)?;
    println!("{result}");
    Ok(ExitCode::SUCCESS)
}

async fn bench(client: &Client, o: &Options) -> Result<ExitCode, Failure> {
    if !o.positional.is_empty() {
        return Err(usage("bench takes no positional arguments"));
    }
    let concurrency = o.concurrency.max(1);
    let params = json!({ "data": "x".repeat(o.payload) });
    async fn one(
        client: &Client,
        method: &str,
        params: &Value,
    ) -> Result<(Value, Duration), Error> {
        let started = Instant::now();
        let result = client.request(method, params).await?;
        Ok((result, started.elapsed()))
    }
    let counter = (o.notifications > 0).then(|| {
        let expected = o.notifications * o.requests as u64;
        tokio::spawn(count_notifications(
            client.subscribe(Filter::method("echo/progress")),
            o.notifications,
            expected,
        ))
    });
    let mut latencies = Vec::with_capacity(o.requests.min(1 << 20));
    let mut in_flight = FuturesUnordered::new();
    let mut sent = 0;
    let started = Instant::now();
    while latencies.len() < o.requests {
        while sent < o.requests && in_flight.len() < concurrency {
            in_flight.push(one(client, &o.method, &params));
            sent += 1;
        }
        let Some(answer) = in_flight.next().await else {
            break;
        };
        let (result, latency) = answer.map_err(failure)?;
        if result != params {
            return Err(Failure(
                2,
                format!("server answered with something other than the params: {result}"),
            ));
        }
        latencies.push(latency);
    }
    let notifications = match counter {
        Some(counter) => Some(
            counter
                .await
                .map_err(|e| Failure(2, format!("notification counter failed: {e}")))?
                .map_err(|problem| Failure(2, problem))?,
        ),
        None => None,
    };
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0, |d| d.as_micros())
    };
    let mut summary = format!(
        "requests={} concurrency={} payload={} seconds={:.3} rps={:.0} p50_us={} p99_us={}",
        latencies.len(),
        concurrency,
        o.payload,
        seconds,
        latencies.len() as f64 / seconds,
        pct(0.50),
        pct(0.99),
    );
    if let Some(n) = notifications {
        summary += &format!(" notifications={n} nps={:.0}", n as f64 / seconds);
    }
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// Receives `expected` notifications `{"request": id, "seq": i}`, `per_request`
/// for each request, and checks they come in wire order with none lost.
async fn count_notifications(
    mut subscription: Subscription,
    per_request: u64,
    expected: u64,
) -> Result<u64, String> {
    let mut received = 0u64;
    let mut last: Option<(i64, u64)> = None;
    while received < expected {
        let n = match subscription.next().await {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(format!("after {received} notifications: {e}")),
            None => return Err(format!("subscription ended after {received} notifications")),
        };
        let field = |name: &str| {
            n.params
                .as_ref()
                .and_then(|p| p.get(name))
                .and_then(Value::as_i64)
        };
        let (Some(request), Some(seq)) = (field("request"), field("seq")) else {
            return Err(format!("unexpected notification params: {:?}", n.params));
        };
        let seq = seq as u64;
        let in_order = match last {
            None => seq == 0,
            Some((r, s)) if seq == 0 => r < request && s + 1 == per_request,
            Some((r, s)) => r == request && s + 1 == seq,
        };
        if !in_order {
            return Err(format!(
                "notification out of order: request {request} seq {seq} after {last:?}"
            ));
        }
        last = Some((request, seq));
        received += 1;
    }
    Ok(received)
}
