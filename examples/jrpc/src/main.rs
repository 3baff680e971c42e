//! `jrpc`: curl for stdio JSON-RPC servers.
//!
//! ```text
//! jrpc call  [--timeout SECS] [--framing F] METHOD [PARAMS_JSON] -- CMD [ARGS...]
//! jrpc bench [--requests N] [--concurrency C] [--payload BYTES] [--method M] [--framing F] [--notifications K] [--runtime R] [--response value|typed|raw] -- CMD [ARGS...]
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
//! A server that dies mid-run makes it exit 2 at once with the cause, as
//! does a wrong result; otherwise its exit statuses are `call`'s (1 a
//! JSON-RPC error, 3 a request's timeout, 64 bad usage, which includes
//! `--response typed` with a method other than `echo`).
//!
//! `--runtime multi-thread` runs on tokio's multi-thread runtime (2 workers)
//! instead of the default current-thread runtime.
//!
//! `bench --response` picks how results are read: `value` (default) sends
//! `Value` params and decodes each result into a `serde_json::Value`;
//! `typed` calls a typed request (`client.call`, params and result structs,
//! the result decoded straight from the response's bytes; method `echo`
//! only); `raw` sends the params pre-serialized and keeps each result as
//! the server's bytes (`client.request_raw`). Each checks the result equals
//! the params.
//!
//! `bench --notifications K` also subscribes to `echo/progress` and expects K
//! notifications before each response (the echo server's `--notify K`), each
//! `{"request": id, "seq": i}`, in wire order, none lost; the last line then
//! ends with `notifications=T nps=R` (notifications per second). A server
//! that echoes the request's params in its notifications instead (the
//! shared floor's `echo-server --notify K`, method `echo/event`) is checked
//! the same way through the number `n` each request then carries in its
//! params: K notifications for each request, one request after another,
//! none lost or repeated. Notifications out of order, or still missing
//! 10 s after the last response, make it exit 2 with how many arrived.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use futures::stream::{FuturesUnordered, StreamExt, TryStreamExt};
use jsonrpc_stdio::{Client, Error, Filter, Framing, Request as _, ServerCommand, Subscription};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// Exit status for bad usage (sysexits' EX_USAGE).
const EXIT_USAGE: u8 = 64;

/// How long `bench --notifications` waits, once the last response is in,
/// for the notifications still missing (`--help` and the docs say 10 s).
const NOTIFICATION_GRACE: Duration = Duration::from_secs(10);

const EXIT_STATUS: &str = "\
Exit status:
  0   success
  1   the server answered with a JSON-RPC error (printed on stderr)
  2   the server died or could not be started (with the cause: exit status,
      stderr tail, or the spawn error); for bench also a wrong result, or
      notifications out of order or still missing 10 s after the last response
  3   timeout
  64  bad usage";

/// curl for stdio JSON-RPC servers.
///
/// Starts CMD, speaks JSON-RPC 2.0 to it over its stdin and stdout, and
/// either makes one call or benchmarks it. A server that dies is noticed at
/// once, with its exit status and the tail of its stderr.
#[derive(Parser)]
#[command(name = "jrpc", version, propagate_version = true, after_help = EXIT_STATUS)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Call METHOD once and print the result as JSON on stdout.
    #[command(after_help = EXIT_STATUS)]
    Call(Call),
    /// Send many requests, check every result equals its params, and print
    /// one summary line: `requests=N concurrency=C payload=B seconds=S rps=R
    /// p50_us=X p99_us=Y`.
    #[command(after_help = EXIT_STATUS)]
    Bench(Bench),
}

impl Verb {
    fn connection(&self) -> &Connection {
        match self {
            Verb::Call(c) => &c.connection,
            Verb::Bench(b) => &b.connection,
        }
    }
}

#[derive(Args)]
struct Call {
    /// The method to call.
    method: String,
    /// The params, as JSON (none when omitted).
    #[arg(value_name = "PARAMS_JSON", value_parser = json_params)]
    params: Option<Value>,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Args)]
struct Bench {
    /// How many requests to send.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    requests: usize,
    /// How many requests to keep in flight.
    #[arg(long, value_name = "C", default_value_t = 1)]
    concurrency: usize,
    /// Size of each request's `data` string, in bytes (at most 1 GiB).
    #[arg(long, value_name = "BYTES", default_value_t = 100, value_parser = payload)]
    payload: usize,
    /// The method every request calls; the server must answer `result = params`.
    #[arg(long, value_name = "M", default_value = "echo")]
    method: String,
    /// Also expect K `echo/progress` (or `echo/event`, params echoed)
    /// notifications before each response (the echo server's `--notify K`),
    /// in wire order, none lost; the summary then ends with
    /// `notifications=T nps=R`. Those still missing 10 s after the last
    /// response make it exit 2.
    #[arg(long, value_name = "K", default_value_t = 0)]
    notifications: u64,
    /// How results are read: into a `serde_json::Value`, into a typed
    /// struct (`client.call`, method `echo` only), or kept as raw bytes
    /// (`client.request_raw`).
    #[arg(long, value_enum, default_value_t = ResponseMode::Value)]
    response: ResponseMode,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Clone, Copy, ValueEnum)]
enum ResponseMode {
    /// `client.request` with `Value` params; each result decoded into a `Value`.
    Value,
    /// `client.call::<Echo>`: params and result are structs; no `Value` is built.
    Typed,
    /// `client.request_raw` with pre-serialized params; each result kept as bytes.
    Raw,
}

/// The echo server's method, as a typed request.
enum Echo {}

impl jsonrpc_stdio::Request for Echo {
    const METHOD: &'static str = "echo";
    type Params = EchoParams;
    type Result = EchoResult;
}

#[derive(Serialize)]
struct EchoParams {
    /// Leaked once per run: typed params are owned, and a fresh `String`
    /// per request would measure the allocator, not the transport.
    data: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u64>,
}

/// `EchoParams` with the data already JSON: a numbered raw request is
/// written by copying it, as the floor's client does, not by escaping the
/// payload again for each request.
#[derive(Serialize)]
struct EchoParamsRaw {
    data: &'static RawValue,
    n: Option<u64>,
}

#[derive(Deserialize)]
struct EchoResult {
    data: String,
}

/// How to reach the server; both verbs take these.
#[derive(Args)]
struct Connection {
    /// Seconds to wait for each response; 0 waits for as long as the server lives.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = timeout)]
    timeout: Timeout,
    /// How messages are delimited on the wire: `ndjson` (one per line) or
    /// `content-length` (LSP-style headers).
    #[arg(long, value_name = "F", default_value = "ndjson")]
    framing: Framing,
    /// The async runtime: one connection needs no thread pool, so the default
    /// runs everything on one thread.
    #[arg(long, value_enum, default_value_t = Runtime::CurrentThread)]
    runtime: Runtime,
    /// The server to start, and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Runtime {
    /// tokio's current-thread runtime.
    CurrentThread,
    /// tokio's multi-thread runtime with 2 workers.
    MultiThread,
}

/// `--timeout`: `None` waits forever. (A newtype, because clap reads a bare
/// `Option` as "the flag may be absent".)
#[derive(Clone, Copy)]
struct Timeout(Option<Duration>);

fn json_params(v: &str) -> Result<Value, String> {
    serde_json::from_str(v).map_err(|e| format!("PARAMS_JSON is not JSON: {e}"))
}

/// The largest `--payload`: 1 GiB. Sizes the user gives become allocations:
/// what cannot be one is refused here, as a usage error, rather than panic
/// in the middle of the run.
const MAX_PAYLOAD: usize = 1 << 30;

fn payload(v: &str) -> Result<usize, String> {
    let bytes: usize = v.parse().map_err(|_| format!("not a number: {v:?}"))?;
    if bytes > MAX_PAYLOAD {
        return Err(format!("at most {MAX_PAYLOAD} bytes, got {bytes}"));
    }
    Ok(bytes)
}

/// `--timeout SECS`: a non-negative number of seconds; 0 waits forever.
fn timeout(v: &str) -> Result<Timeout, String> {
    let bad = || format!("needs a number of seconds (0 waits forever), got {v:?}");
    let secs: f64 = v.parse().map_err(|_| bad())?;
    if secs == 0.0 {
        return Ok(Timeout(None));
    }
    // Not `from_secs_f64`: it panics on `inf`, `NaN`, negatives and `1e30`.
    Duration::try_from_secs_f64(secs)
        .map(|d| Timeout(Some(d)))
        .map_err(|_| bad())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if let Verb::Bench(b) = &cli.verb {
        if b.notifications.checked_mul(b.requests as u64).is_none() {
            let mut cli = Cli::command();
            cli.build();
            let bench = cli.find_subcommand_mut("bench").expect("bench is a verb");
            let e = bench.error(
                ErrorKind::ArgumentConflict,
                "--notifications times --requests overflows",
            );
            return usage_error(e);
        }
    }
    // One connection needs no thread pool: on the current-thread runtime a
    // response wakes its caller without a cross-thread wake-up, which at one
    // request in flight is most of the round trip (see benches/README.md).
    let runtime = match cli.verb.connection().runtime {
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    }
    .expect("tokio runtime");
    // In a task, not in `block_on`'s own future: on the multi-thread
    // runtime that future is polled on this thread, outside the pool, so
    // every response would wake it from another thread; on the
    // current-thread runtime waking it costs an extra poll of the IO driver
    // per response (two `epoll_wait`s per round trip instead of one).
    let outcome = runtime.block_on(async move {
        tokio::spawn(run(cli.verb))
            .await
            .unwrap_or_else(|e| Err(Failure(2, format!("jrpc's task failed: {e}"))))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, message)) => {
            eprintln!("jrpc: {message}");
            ExitCode::from(code)
        }
    }
}

/// `--help` and `--version` are answers, exit 0; anything else clap refuses
/// is bad usage, exit 64 rather than clap's 2, which here means a dead server.
fn usage_error(e: clap::Error) -> ExitCode {
    let _ = e.print();
    if let ErrorKind::DisplayHelp | ErrorKind::DisplayVersion = e.kind() {
        return ExitCode::SUCCESS;
    }
    // clap shows the usage with some errors only; a bad value deserves it too.
    if !e.render().to_string().contains("Usage:") {
        let mut cli = Cli::command();
        cli.build();
        let verb = std::env::args().nth(1).unwrap_or_default();
        let usage = match cli.find_subcommand(&verb) {
            Some(verb) => verb.clone().render_usage(),
            None => cli.render_usage(),
        };
        eprintln!("\n{usage}");
    }
    ExitCode::from(EXIT_USAGE)
}

/// An exit status with what to tell the user.
struct Failure(u8, String);

/// Maps a client error onto the documented exit statuses.
fn failure(error: Error) -> Failure {
    let code = match &error {
        Error::Rpc { .. } => 1,
        Error::Timeout { .. } => 3,
        _ => 2,
    };
    Failure(code, error.to_string())
}

async fn run(verb: Verb) -> Result<(), Failure> {
    let connection = verb.connection();
    let command = ServerCommand::new(&connection.command[0]).args(&connection.command[1..]);
    let client = Client::builder()
        .framing(connection.framing)
        .request_timeout(connection.timeout.0)
        .spawn(command)
        .map_err(failure)?;
    let result = match &verb {
        Verb::Call(c) => call(&client, c).await,
        Verb::Bench(b) => bench(&client, b).await,
    };
    // A server that already died keeps its cause; otherwise end it politely.
    let _ = tokio::time::timeout(Duration::from_secs(5), client.close()).await;
    result
}

async fn call(client: &Client, c: &Call) -> Result<(), Failure> {
    let params = c.params.clone().unwrap_or(Value::Null);
    let result = client.request(&c.method, params).await.map_err(failure)?;
    println!("{result}");
    Ok(())
}

async fn bench(client: &Client, o: &Bench) -> Result<(), Failure> {
    let concurrency = o.concurrency.max(1);
    if matches!(o.response, ResponseMode::Typed) && o.method != Echo::METHOD {
        return Err(Failure(
            EXIT_USAGE,
            format!(
                "--response typed calls `{}` only; use --response value or raw for other methods",
                Echo::METHOD
            ),
        ));
    }
    let data = "x".repeat(o.payload);
    let params = Params::new(Box::leak(data.into_boxed_str()), o.response);
    // With notifications, each request is numbered, so that a server that
    // echoes params in its notifications shows their order.
    let numbered = o.notifications > 0;
    let expected = o.notifications * o.requests as u64;
    // How many notifications the counter has seen, for when they stop short.
    let received = Arc::new(AtomicU64::new(0));
    let counter = (o.notifications > 0).then(|| {
        tokio::spawn(count_notifications(
            client.subscribe(Filter::prefix("echo/")),
            o.notifications,
            expected,
            received.clone(),
        ))
    });
    // `concurrency` workers, each sending its next request as soon as the
    // last is answered: `concurrency` requests in flight, and no future
    // allocated per request (as a `FuturesUnordered` of calls would).
    // Requests are numbered in the order they are sent.
    let sent = AtomicUsize::new(0);
    let per_worker = o.requests.div_ceil(concurrency);
    let worker = || async {
        // Allocated before the timed loop rather than regrown in it; a
        // `--requests` too large to allocate for at once grows as it goes.
        let mut latencies = Vec::new();
        let _ = latencies.try_reserve_exact(per_worker);
        loop {
            let n = sent.fetch_add(1, Ordering::Relaxed);
            if n >= o.requests {
                return Ok::<_, Failure>(latencies);
            }
            let n = numbered.then_some(n as u64);
            latencies.push(one(client, &o.method, o.response, &params, n).await?);
        }
    };
    let started = Instant::now();
    let mut latencies = if concurrency == 1 {
        // Awaited as it is: a `FuturesUnordered` of one would add its own
        // wake-up bookkeeping (~350 instructions) to every round trip.
        worker().await?
    } else {
        let workers: FuturesUnordered<_> =
            (0..concurrency.min(o.requests)).map(|_| worker()).collect();
        let mut latencies = Vec::with_capacity(o.requests.min(1 << 20));
        // The first failure ends the run (the other workers are dropped).
        for worker in workers.try_collect::<Vec<_>>().await? {
            latencies.extend(worker);
        }
        latencies
    };
    let notifications = match counter {
        Some(mut counter) => {
            // A server that sends fewer notifications than expected would
            // leave the counter waiting forever: once every response is in,
            // the rest must follow within the grace period.
            let Ok(counted) = tokio::time::timeout(NOTIFICATION_GRACE, &mut counter).await else {
                counter.abort();
                return Err(Failure(
                    2,
                    format!(
                        "received {} of {expected} notifications within {} s of the last \
                         response; does the server send {} per request (echo_server and the \
                         shared echo-server: --notify {})?",
                        received.load(Ordering::Relaxed),
                        NOTIFICATION_GRACE.as_secs(),
                        o.notifications,
                        o.notifications,
                    ),
                ));
            };
            Some(
                counted
                    .map_err(|e| Failure(2, format!("notification counter failed: {e}")))?
                    .map_err(|problem| Failure(2, problem))?,
            )
        }
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
    Ok(())
}

/// The params a request sends, in its mode's form only.
struct Params {
    value: Option<Value>,
    raw: Option<Box<RawValue>>,
    typed: &'static str,
    /// `typed` as JSON.
    json: &'static RawValue,
    n: Option<u64>,
}

impl Params {
    /// Unnumbered, with `data` serialized here.
    fn new(data: &'static str, mode: ResponseMode) -> Params {
        let json = serde_json::value::to_raw_value(data).expect("JSON");
        Params::numbered(data, Box::leak(json), None, mode)
    }

    /// With `data` already serialized as `json`.
    fn numbered(
        data: &'static str,
        json: &'static RawValue,
        n: Option<u64>,
        mode: ResponseMode,
    ) -> Params {
        let (value, raw) = match mode {
            ResponseMode::Value => {
                let typed = EchoParams { data, n };
                (Some(serde_json::to_value(&typed).expect("JSON")), None)
            }
            ResponseMode::Raw => {
                let raw = match n {
                    Some(_) => serde_json::value::to_raw_value(&EchoParamsRaw { data: json, n }),
                    None => serde_json::value::to_raw_value(&EchoParams { data, n }),
                };
                (None, Some(raw.expect("JSON")))
            }
            ResponseMode::Typed => (None, None),
        };
        Params {
            value,
            raw,
            typed: data,
            json,
            n,
        }
    }
}

/// One request in `mode`; its latency, once its result is checked.
async fn one(
    client: &Client,
    method: &str,
    mode: ResponseMode,
    params: &Params,
    n: Option<u64>,
) -> Result<Duration, Failure> {
    let numbered;
    let params = match n {
        Some(n) => {
            numbered = Params::numbered(params.typed, params.json, Some(n), mode);
            &numbered
        }
        None => params,
    };
    let started = Instant::now();
    // What the server answered, when it is not the params.
    let wrong = match mode {
        ResponseMode::Value => {
            let sent = params.value.as_ref().expect("built for this mode");
            let result = client.request(method, sent).await.map_err(failure)?;
            (result != *sent).then(|| result.to_string())
        }
        ResponseMode::Typed => {
            let result = client
                .call::<Echo>(EchoParams {
                    data: params.typed,
                    n: params.n,
                })
                .await
                .map_err(failure)?;
            (result.data != params.typed).then(|| format!("{{\"data\":{:?}}}", result.data))
        }
        ResponseMode::Raw => {
            let sent = params.raw.as_deref().expect("built for this mode");
            let result = client.request_raw(method, sent).await.map_err(failure)?;
            // The echo server passes params through as written.
            (result.as_bytes() != sent.get().as_bytes())
                .then(|| String::from_utf8_lossy(result.as_bytes()).into_owned())
        }
    };
    let latency = started.elapsed();
    if let Some(result) = wrong {
        return Err(Failure(
            2,
            format!("server answered with something other than the params: {result}"),
        ));
    }
    Ok(latency)
}

/// What [`count_notifications`] reads of a notification's params: the
/// request's number `n` (params echoed by the shared floor's server), or
/// `request` and `seq` (our test peer's own notifications).
#[derive(Deserialize)]
struct Counted {
    n: Option<i64>,
    request: Option<i64>,
    seq: Option<u64>,
}

/// Receives `expected` notifications, `per_request` for each request, and
/// checks they come in wire order with none lost: either
/// `{"request": id, "seq": i}`, or the request's own params with its number
/// `n`. `progress` follows the count, for a caller that stops waiting.
async fn count_notifications(
    mut subscription: Subscription,
    per_request: u64,
    expected: u64,
    progress: Arc<AtomicU64>,
) -> Result<u64, String> {
    let mut received = 0u64;
    let mut last: Option<(i64, u64)> = None;
    // Requests whose notifications were all seen, by number.
    let mut done = std::collections::HashSet::new();
    while received < expected {
        let n = match subscription.next().await {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(format!("after {received} notifications: {e}")),
            None => return Err(format!("subscription ended after {received} notifications")),
        };
        // Only the numbers are read from the params' bytes; the echoed
        // payload is skipped, never built into a `Value`.
        let unexpected = || format!("unexpected notification params: {n:?}");
        let counted: Counted = n.params().map_err(|_| unexpected())?;
        // Echoed params first: the shared floor's server numbers them `n`.
        let (request, seq) = match counted.n {
            // The position within the request is counted.
            Some(request) => match last {
                Some((r, s)) if r == request => (request, s + 1),
                _ => (request, 0),
            },
            None => match (counted.request, counted.seq) {
                (Some(request), Some(seq)) => (request, seq),
                _ => return Err(unexpected()),
            },
        };
        let in_order = match last {
            None => seq == 0,
            Some((r, s)) if seq == 0 => r != request && s + 1 == per_request,
            Some((r, s)) => r == request && s + 1 == seq && seq < per_request,
        };
        if !in_order || (seq == 0 && !done.insert(request)) {
            return Err(format!(
                "notification out of order: request {request} seq {seq} after {last:?}"
            ));
        }
        last = Some((request, seq));
        received += 1;
        progress.store(received, Ordering::Relaxed);
    }
    Ok(received)
}
