//! The fake app-server: a scriptable stand-in for `codex app-server`, for
//! what a real one will not do on demand (go silent, die mid-turn, die in
//! the handshake, be slow but alive). It speaks codex's v2 wire shapes. The
//! test binary becomes it when started with `CODEX_ADAPTER_FAKE_APP_SERVER=1`
//! (see [`crate::fake`]), so it is a real child process with real pipes,
//! exit statuses and stderr.
//!
//! ```text
//! fake_app_server [app-server] [--handshake ok|exit|hang] [--turns PLAN,PLAN,...]
//!                 [--once FILE] [--resume ok|unknown|held] [--lock FILE]
//! ```
//!
//! `--handshake exit` writes a line to stderr and exits 1 on `initialize`;
//! `hang` never answers it. `--once FILE` makes the first plan happen once
//! across restarts: a process that finds FILE skips it, one that does not
//! creates FILE. `--resume` answers `thread/resume` like codex does for a
//! thread it has (`ok`, the default), one it never saved (`unknown`: "no
//! rollout found"), or one another process writes (`held`: "already has an
//! active writer"); `thread/fork` always works. `--lock FILE` holds an
//! exclusive `flock` on FILE from before the handshake until the process
//! ends, so a test can wait for its end. `initialize` answers with a user
//! agent naming its arguments, working directory and `CODEX_HOME`. Each `turn/start` takes the next
//! plan (the last one repeats; default `complete`):
//!
//! | plan | what the turn does |
//! |---|---|
//! | `complete` | `turn/started`, two deltas, the message, `turn/completed` |
//! | `silent` | `turn/started`, one delta, then nothing (answers `turn/interrupt` with `{}` only) |
//! | `open` | like `silent` (a turn that stays open while another plan runs) |
//! | `die` | `turn/started`, one delta, then a stderr line and exit status 7 |
//! | `slow` | ten deltas 300 ms apart, then completes |
//! | `early` | notifications first, the `turn/start` response last, then completes |
//! | `approve` | a command item and its approval request; waits for the answer, then completes with the message "decision: ANSWER" |
//! | `vanish` | exits (status 9) without a word: a codex that died as the request arrived |
//! | `overloaded` | answers `-32001` "Server overloaded; retry later." |

use std::io::{BufRead, Write};
use std::time::Duration;

use serde_json::{json, Value};

/// The `slow` plan's pause between deltas: short of any test's idle limit,
/// so a slow-but-alive turn must not trip the watchdog.
const SLOW_GAP: Duration = Duration::from_millis(300);

fn send(out: &mut impl Write, v: Value) {
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Serves one connection on stdin/stdout; `args` as in the module docs.
pub fn serve(args: impl Iterator<Item = String>) {
    let args: Vec<String> = args.collect();
    let user_agent = user_agent(&args);
    let mut args = args.into_iter();
    let mut handshake = "ok".to_owned();
    let mut plans: Vec<String> = vec!["complete".into()];
    let mut once = None;
    let mut resume = "ok".to_owned();
    let mut lock = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--handshake" => handshake = args.next().unwrap_or_default(),
            "--turns" => {
                plans = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::to_owned)
                    .collect()
            }
            "--once" => once = args.next(),
            "--resume" => resume = args.next().unwrap_or_default(),
            "--lock" => lock = args.next(),
            _ => {}
        }
    }
    // Held, never read: the kernel lets go of it when this process ends.
    let _held = lock.map(|file| {
        let file = std::fs::File::create(file).expect("the lock file");
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| e)
            .expect("the lock is free")
    });
    if let Some(file) = once {
        if std::path::Path::new(&file).exists() {
            if plans.len() > 1 {
                plans.remove(0);
            }
        } else {
            let _ = std::fs::write(&file, "");
        }
    }
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut threads = 0;
    let mut turns = 0;
    let mut input = stdin.lock().lines();
    while let Some(line) = input.next() {
        let Ok(line) = line else { break };
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let (Some(method), id) = (msg["method"].as_str(), msg.get("id").cloned()) else {
            continue;
        };
        let Some(id) = id else { continue };
        let params = &msg["params"];
        match method {
            "initialize" => match handshake.as_str() {
                "exit" => {
                    eprintln!("fake_app_server: config.toml: invalid model provider `nope`");
                    std::process::exit(1);
                }
                "hang" => {}
                _ => send(
                    &mut out,
                    json!({"id": id, "result": {"userAgent": user_agent}}),
                ),
            },
            "thread/resume" if resume != "ok" => {
                let thread_id = params["threadId"].as_str().unwrap_or_default();
                let message = if resume == "held" {
                    format!("thread {thread_id} already has an active writer")
                } else {
                    format!("no rollout found for thread id {thread_id}")
                };
                send(
                    &mut out,
                    json!({"id": id, "error": {"code": -32600, "message": message}}),
                );
            }
            "thread/start" | "thread/resume" | "thread/fork" => {
                threads += 1;
                let thread_id = match params["threadId"].as_str() {
                    Some(id) if method == "thread/resume" => id.to_owned(),
                    Some(id) if method == "thread/fork" => format!("{id}-fork-{threads}"),
                    _ => format!("thread-{}-{threads}", std::process::id()),
                };
                let thread = json!({"id": thread_id, "path": "/dev/null", "cwd": "/", "cliVersion": "0.0.1"});
                send(
                    &mut out,
                    json!({"id": id, "result": {"thread": thread, "model": "fake"}}),
                );
                send(
                    &mut out,
                    json!({"method": "thread/started", "params": {"thread": thread}}),
                );
            }
            "turn/interrupt" => send(&mut out, json!({"id": id, "result": {}})),
            "turn/start" => {
                let thread_id = params["threadId"].as_str().unwrap_or_default().to_owned();
                let plan = plans
                    .get(turns)
                    .or(plans.last())
                    .cloned()
                    .unwrap_or_default();
                let turn_id = format!("turn-{turns}");
                turns += 1;
                if plan == "vanish" {
                    std::process::exit(9);
                }
                if plan == "overloaded" {
                    send(
                        &mut out,
                        json!({"id": id, "error": {"code": -32001, "message": "Server overloaded; retry later."}}),
                    );
                    continue;
                }
                let mut next_line = || input.next().and_then(Result::ok);
                run_turn(&mut out, id, &thread_id, &turn_id, &plan, &mut next_line);
            }
            _ => send(
                &mut out,
                json!({"id": id, "error": {"code": -32600, "message": format!("unknown method {method}")}}),
            ),
        }
    }
}

/// Names what this process was started with, so a test can check what an
/// `AppServerBuilder` passes on.
fn user_agent(args: &[String]) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    let home = std::env::var("CODEX_HOME").ok();
    format!(
        "fake_app_server/0.0.1 args={args:?} cwd={} CODEX_HOME={home:?}",
        cwd.display()
    )
}

fn run_turn(
    out: &mut impl Write,
    id: Value,
    thread_id: &str,
    turn_id: &str,
    plan: &str,
    next_line: &mut dyn FnMut() -> Option<String>,
) {
    let turn = json!({"id": turn_id, "items": [], "status": "inProgress", "error": null});
    let response = json!({"id": id, "result": {"turn": turn}});
    let ids = json!({"threadId": thread_id, "turnId": turn_id});
    let started =
        json!({"method": "turn/started", "params": {"threadId": thread_id, "turn": turn}});
    let item = |status: &str, text: &str| {
        json!({"threadId": thread_id, "turnId": turn_id,
               "item": {"type": "agentMessage", "id": format!("msg-{turn_id}"), "text": text, "status": status}})
    };
    let delta = |d: &str| {
        let mut p = ids.clone();
        p["itemId"] = json!(format!("msg-{turn_id}"));
        p["delta"] = json!(d);
        json!({"method": "item/agentMessage/delta", "params": p})
    };
    let completed = json!({"method": "turn/completed", "params": {"threadId": thread_id,
        "turn": {"id": turn_id, "items": [], "status": "completed", "error": null}}});
    if plan == "early" {
        send(out, started);
        send(
            out,
            json!({"method": "item/started", "params": item("inProgress", "")}),
        );
        send(out, delta("early"));
        send(out, response);
        send(
            out,
            json!({"method": "item/completed", "params": item("completed", "early")}),
        );
        send(out, completed);
        return;
    }
    send(out, response);
    send(out, started);
    if plan == "approve" {
        let command = json!({"type": "commandExecution", "id": "call-1", "command": "touch x",
            "cwd": "/", "status": "inProgress"});
        send(
            out,
            json!({"method": "item/started", "params": {"threadId": thread_id, "turnId": turn_id, "item": command}}),
        );
        send(
            out,
            json!({"method": "item/commandExecution/requestApproval", "id": 0,
            "params": {"threadId": thread_id, "turnId": turn_id, "itemId": "call-1", "reason": null}}),
        );
        // codex waits for the answer, saying nothing meanwhile.
        let decision = loop {
            let Some(line) = next_line() else {
                std::process::exit(0)
            };
            let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if msg.get("method").is_none() && msg["id"] == json!(0) {
                break msg["result"]["decision"]
                    .as_str()
                    .map_or_else(|| msg.to_string(), str::to_owned);
            }
        };
        let text = format!("decision: {decision}");
        send(
            out,
            json!({"method": "item/completed", "params": item("completed", &text)}),
        );
        send(out, completed);
        return;
    }
    send(
        out,
        json!({"method": "item/started", "params": item("inProgress", "")}),
    );
    match plan {
        "silent" | "open" => send(out, delta("Hel")),
        "die" => {
            send(out, delta("Hel"));
            eprintln!("fake_app_server: thread 'main' panicked: simulated crash mid-turn");
            std::process::exit(7);
        }
        "slow" => {
            for i in 0..10 {
                std::thread::sleep(SLOW_GAP);
                send(out, delta(&format!("w{i} ")));
            }
            send(
                out,
                json!({"method": "item/completed", "params": item("completed", "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 ")}),
            );
            send(out, completed);
        }
        _ => {
            send(out, delta("Hello"));
            send(out, delta(" fake"));
            send(
                out,
                json!({"method": "item/completed", "params": item("completed", "Hello fake")}),
            );
            send(out, completed);
        }
    }
}
