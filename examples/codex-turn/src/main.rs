//! `codex-turn`: run one codex turn and stream it.
//!
//! ```text
//! codex-turn [--codex PATH] [--cwd DIR] [--model M] [--approval-policy P]
//!            [--sandbox S] [--approve accept|decline] [--idle-timeout SECS]
//!            [--turn-timeout SECS] [--json] [--mock-model] [--resume THREAD_ID] PROMPT
//! ```
//!
//! Streams the agent's text to stdout as it arrives (commands, approvals and
//! the outcome go to stderr), or with `--json` prints each event as one JSON
//! line and then one outcome line (the shape is documented in the
//! `codex_adapter` crate docs, plus the `thread_id`). The outcome names the
//! thread; `--resume THREAD_ID` continues that thread (`thread/resume`, like
//! `codex exec resume`): the model sees the conversation so far. codex keeps
//! threads in `CODEX_HOME`, and saves one only once a turn of it completed.
//! `--mock-model` runs a real codex against an
//! embedded loopback mock model with a temporary `CODEX_HOME`; otherwise
//! `CODEX_HOME` is honoured. codex is found from `--codex`, `$CODEX_BIN`,
//! `$PATH`, and last in this checkout's `.tools/` (`scripts/install-tools
//! codex`).
//!
//! Exit status: 0 completed, 1 failed (or codex refused the thread, e.g. an
//! unknown `--resume` id), 2 interrupted (Ctrl-C) or timed out, 3 the
//! app-server died or could not start, 64 bad usage.
//!
//! Ctrl-C interrupts the turn (`turn/interrupt`), and on the way out every
//! process codex started is ended: this program makes itself the subreaper
//! of its descendants, so commands codex ran in sessions of their own are
//! found and reaped too.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use codex_adapter::{
    reaper, AppServer, ApprovalDecision, ApprovalPolicy, AskForApproval, SandboxMode,
    ThreadOptions, TurnEvent, TurnLimits, TurnOptions, TurnOutcome,
};
use futures::StreamExt;
use mock_model::{CodexHome, MockModel};
use tokio::signal::unix::{signal, SignalKind};

/// Exit status for bad usage (sysexits' EX_USAGE).
const EXIT_USAGE: u8 = 64;
/// Exit status when the app-server died or could not start.
const EXIT_SERVER: u8 = 3;

const EXIT_STATUS: &str = "\
Exit status:
  0   the turn completed
  1   the turn failed, or codex refused the thread (e.g. an unknown --resume id)
  2   interrupted (Ctrl-C) or timed out
  3   the app-server died or could not start
  64  bad usage";

/// Run one codex turn through `codex app-server` and stream it.
///
/// The agent's text goes to stdout as it arrives; commands, approvals and
/// the outcome go to stderr. With `--json`, each event is one JSON line on
/// stdout, then one outcome line naming the thread. Ctrl-C interrupts the
/// turn, and every process codex started is ended on the way out.
///
/// codex is found from `--codex`, `$CODEX_BIN`, `$PATH`, and last in this
/// checkout's `.tools/` (`scripts/install-tools codex`).
#[derive(Debug, Parser)]
#[command(name = "codex-turn", version, after_help = EXIT_STATUS)]
struct Args {
    /// The codex binary to run as `codex app-server`.
    #[arg(long, value_name = "PATH")]
    codex: Option<PathBuf>,
    /// The directory the agent works in (default: the current one).
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// The model to ask (default: codex's configured one).
    #[arg(long, value_name = "M")]
    model: Option<String>,
    /// When codex asks before running a command:
    /// untrusted, on-failure, on-request or never.
    #[arg(long, value_name = "P")]
    approval_policy: Option<AskForApproval>,
    /// What commands may touch: read-only, workspace-write or danger-full-access.
    #[arg(long, value_name = "S")]
    sandbox: Option<SandboxMode>,
    /// How to answer every approval codex asks for (default: decline).
    #[arg(long, value_name = "accept|decline", value_parser = approval)]
    approve: Option<ApprovalDecision>,
    /// End the turn after this many seconds with no event from codex.
    #[arg(long = "idle-timeout", value_name = "SECS", value_parser = seconds)]
    idle: Option<Duration>,
    /// End the turn after this many seconds in all.
    #[arg(long = "turn-timeout", value_name = "SECS", value_parser = seconds)]
    budget: Option<Duration>,
    /// Print each event as one JSON line, then the outcome with its `thread_id`.
    #[arg(long)]
    json: bool,
    /// Run a real codex against an embedded loopback mock model, with a
    /// temporary CODEX_HOME: no account, no network.
    #[arg(long)]
    mock_model: bool,
    /// Continue this thread (`thread/resume`): the model sees the conversation
    /// so far. codex keeps threads in CODEX_HOME once a turn of them completed.
    #[arg(long, value_name = "THREAD_ID")]
    resume: Option<String>,
    /// What to ask; several words are joined with spaces.
    #[arg(required = true, value_name = "PROMPT")]
    prompt: Vec<String>,
}

/// `--approve` takes only the two answers a user can mean for every request.
fn approval(v: &str) -> Result<ApprovalDecision, String> {
    match v {
        "accept" | "decline" => v.parse(),
        other => Err(format!("--approve takes accept or decline, not {other:?}")),
    }
}

fn seconds(v: &str) -> Result<Duration, String> {
    // `try_from`: `1e30` or `inf` seconds is no `Duration`, and
    // `from_secs_f64` would panic on it.
    v.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("wants a positive number of seconds, not {v:?}"))
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            if let ErrorKind::DisplayHelp | ErrorKind::DisplayVersion = e.kind() {
                return ExitCode::SUCCESS;
            }
            // clap shows the usage with some errors only; a bad value deserves it too.
            if !e.render().to_string().contains("Usage:") {
                eprintln!("\n{}", Args::command().render_usage());
            }
            // clap's own status for bad usage is 2, which here means interrupted.
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Before any child exists: whatever codex leaves behind comes back to us.
    if let Err(e) = reaper::become_subreaper() {
        eprintln!("codex-turn: warning: cannot become a child subreaper ({e}); commands codex started may outlive it");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("codex-turn: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_SERVER);
        }
    };
    let code = runtime.block_on(run(args));
    ExitCode::from(code)
}

async fn run(args: Args) -> u8 {
    // The mock model and its CODEX_HOME live until the end of this function.
    let mut mock = None;
    let mut builder = AppServer::builder()
        .client_info("codex-turn", env!("CARGO_PKG_VERSION"))
        .approvals(ApprovalPolicy::Decide(
            args.approve.unwrap_or(ApprovalDecision::Decline),
        ));
    if let Some(codex) = args.codex.clone().or_else(installed_codex) {
        builder = builder.codex(codex);
    }
    if args.mock_model {
        let started = async {
            let model = MockModel::start_default().await?;
            let home = CodexHome::for_mock(&model)?;
            Ok::<_, std::io::Error>((model, home))
        };
        match started.await {
            Ok((model, home)) => {
                builder = builder.codex_home(home.path());
                mock = Some((model, home));
            }
            Err(e) => {
                eprintln!("codex-turn: cannot start the mock model: {e}");
                return EXIT_SERVER;
            }
        }
    }
    let mut limits = TurnLimits::default();
    if let Some(idle) = args.idle {
        limits.idle = idle;
    }
    if let Some(budget) = args.budget {
        limits.budget = budget;
    }
    builder = builder.turn_limits(limits);

    let server = match builder.spawn().await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("codex-turn: {e}");
            return EXIT_SERVER;
        }
    };
    let code = run_turn(&server, &args).await;
    // Graceful first (codex cleans up its commands on SIGTERM), then
    // whatever is left of the process tree.
    let _ = tokio::time::timeout(Duration::from_secs(10), server.close()).await;
    let left = reaper::end_descendants(Duration::from_secs(2)).await;
    if !left.is_empty() {
        eprintln!("codex-turn: warning: processes still running after cleanup: {left:?}");
    }
    drop(mock);
    code
}

/// When neither `--codex`, `$CODEX_BIN` nor `$PATH` has codex: the one
/// `scripts/install-tools codex` put in this checkout's `.tools/` (latest
/// first), so the README's quick start works on a fresh machine.
fn installed_codex() -> Option<PathBuf> {
    if codex_adapter::discover::find_codex(None).is_ok() {
        return None;
    }
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools");
    ["codex-latest", "codex-0.72.0"]
        .iter()
        .map(|dir| tools.join(dir).join("node_modules/.bin/codex"))
        .find(|p| p.exists())
}

async fn run_turn(server: &AppServer, args: &Args) -> u8 {
    let cwd = args.cwd.clone().or_else(|| std::env::current_dir().ok());
    let mut options = ThreadOptions::default();
    options.cwd = cwd;
    options.model.clone_from(&args.model);
    options.approval_policy = args.approval_policy;
    options.sandbox = args.sandbox;
    let thread = match &args.resume {
        Some(id) => server.resume_thread(id, options).await,
        None => server.start_thread(options).await,
    };
    let thread = match thread {
        Ok(thread) => thread,
        Err(e) => {
            eprintln!("codex-turn: {e}");
            return if e.is_server_dead() { EXIT_SERVER } else { 1 };
        }
    };
    let mut turn = match thread
        .start_turn_with(args.prompt.join(" "), TurnOptions::default())
        .await
    {
        Ok(turn) => turn,
        Err(e) => {
            eprintln!("codex-turn: {e}");
            return if e.is_server_dead() { EXIT_SERVER } else { 1 };
        }
    };
    let (mut sigint, mut sigterm) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        _ => {
            eprintln!("codex-turn: cannot install signal handlers");
            return 1;
        }
    };
    let interrupter = turn.interrupter();
    let mut interrupted = false;
    let mut stdout = std::io::stdout().lock();
    let outcome = loop {
        let event = tokio::select! {
            event = turn.next() => event,
            _ = sigint.recv(), if !interrupted => { interrupted = true; None }
            _ = sigterm.recv(), if !interrupted => { interrupted = true; None }
        };
        let event = match event {
            Some(event) => event,
            None if interrupted && !turn.is_finished() => {
                eprintln!("\ncodex-turn: interrupting the turn");
                let interrupter = interrupter.clone();
                // The stream then ends with `interrupted`; if codex does not
                // answer, the watchdog or death ends it.
                tokio::spawn(async move { interrupter.interrupt().await });
                continue;
            }
            None => break None,
        };
        if args.json {
            let line = match serde_json::to_value(&event) {
                Ok(mut value) => {
                    if let (TurnEvent::Outcome(_), Some(fields)) = (&event, value.as_object_mut()) {
                        fields.insert("thread_id".into(), thread.id().into());
                    }
                    value.to_string()
                }
                Err(e) => {
                    format!(r#"{{"type":"error","message":"cannot serialize event: {e}"}}"#)
                }
            };
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        } else {
            show(&mut stdout, &event);
        }
        if let TurnEvent::Outcome(outcome) = event {
            break Some(outcome);
        }
    };
    let outcome = outcome.unwrap_or_else(|| TurnOutcome::ServerDied {
        message: "the turn ended without an outcome".into(),
    });
    if !args.json {
        let _ = writeln!(stdout);
        eprintln!("codex-turn: {outcome} (thread {})", thread.id());
    }
    let code = outcome.exit_code();
    // Interrupted by the user counts as interrupted even if codex finished first.
    if interrupted && code == 0 {
        return 2;
    }
    code as u8
}

/// Human-readable streaming: the agent's text on stdout, the rest on stderr.
fn show(stdout: &mut impl Write, event: &TurnEvent) {
    match event {
        TurnEvent::AgentMessageDelta { delta, .. } => {
            let _ = write!(stdout, "{delta}");
            let _ = stdout.flush();
        }
        TurnEvent::AgentMessage { .. } => {
            let _ = writeln!(stdout);
        }
        TurnEvent::CommandStarted { command, .. } => eprintln!("\n$ {command}"),
        TurnEvent::CommandFinished {
            status, exit_code, ..
        } => eprintln!("  -> {status:?} (exit code {exit_code:?})"),
        TurnEvent::FileChangeStarted { changes, .. } => {
            for c in changes {
                eprintln!("\npatch: {} {}", c.kind, c.path);
            }
        }
        TurnEvent::ApprovalRequested(a) => {
            eprintln!("approval for {} answered {:?}", a.item_id(), a.decision())
        }
        TurnEvent::Retrying { message, .. } => eprintln!("\nretrying: {message}"),
        TurnEvent::Error { message, .. } => eprintln!("\nerror: {message}"),
        TurnEvent::Warning { message } => eprintln!("warning: {message}"),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[&str]) -> Result<Args, String> {
        Args::try_parse_from(std::iter::once("codex-turn").chain(s.iter().copied()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flags_and_prompt_are_parsed() {
        let a = parse(&[
            "--json",
            "--mock-model",
            "--approve",
            "accept",
            "--idle-timeout",
            "1.5",
            "Say",
            "hi",
        ])
        .unwrap();
        assert!(a.json && a.mock_model);
        assert_eq!(a.approve, Some(ApprovalDecision::Accept));
        assert_eq!(a.idle, Some(Duration::from_millis(1500)));
        assert_eq!(a.prompt.join(" "), "Say hi");
        let a = parse(&["--resume", "0199-thread", "And", "then?"]).unwrap();
        assert_eq!(a.resume.as_deref(), Some("0199-thread"));
        assert!(parse(&["--resume"])
            .unwrap_err()
            .contains("a value is required"));
        let a = parse(&["--json", "--", "--not-a-flag"]).unwrap();
        assert_eq!(a.prompt, ["--not-a-flag"]);
    }

    #[test]
    fn bad_usage_is_refused_with_a_reason() {
        assert!(parse(&[]).unwrap_err().contains("PROMPT"));
        assert!(parse(&["--approve", "maybe", "x"])
            .unwrap_err()
            .contains("accept or decline"));
        assert!(parse(&["--sandbox", "open", "x"])
            .unwrap_err()
            .contains("read-only"));
        for bad in ["-1", "0", "NaN", "inf", "-inf", "1e30", "1e20", "ten"] {
            for flag in ["--idle-timeout", "--turn-timeout"] {
                let value = format!("{flag}={bad}");
                assert!(
                    parse(&[&value, "x"]).unwrap_err().contains("positive"),
                    "{flag} {bad}"
                );
            }
        }
    }
}
