//! `codex-a2a`: serve OpenAI codex as an A2A agent (see the crate docs).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use codex_a2a::codex::Codex;
use codex_a2a::http::{self, AppState};
use codex_a2a::service::{Service, ServiceConfig, RESTART_REASON};
use codex_a2a::store::Store;
use codex_adapter::{
    reaper, AppServer, ApprovalPolicy, AskForApproval, SandboxMode, ThreadOptions, TurnLimits,
};
use mock_model::{mock_config_toml, MockModel};
use tokio::signal::unix::{signal, SignalKind};

/// Exit status when the service was stopped by SIGTERM or Ctrl-C.
const EXIT_OK: u8 = 0;
/// Exit status when an unexpected error stopped the service.
const EXIT_INTERNAL: u8 = 1;
/// Exit status for bad usage (clap's).
const _EXIT_USAGE: u8 = 2;
/// Exit status when codex (or the mock model) cannot be found or started.
const EXIT_CODEX: u8 = 3;
/// Exit status when the state database cannot be opened.
const EXIT_STATE: u8 = 4;
/// Exit status when the listen address cannot be bound.
const EXIT_LISTEN: u8 = 5;

const AFTER_HELP: &str = "\
Examples:
  codex-a2a --mock-model --state /tmp/a2a.db            # no account needed
  codex-a2a --listen 127.0.0.1:8080 --state a2a.db --cwd ~/project --token \"$TOKEN\"

Environment:
  CODEX_BIN         the codex binary (after --codex; then codex on PATH)
  CODEX_HOME        codex's home (config, auth, threads); with --mock-model a home
                    beside the state database is used instead
  CODEX_A2A_TOKEN   the bearer token (same as --token)

Exit status:
  0  stopped by SIGTERM or Ctrl-C (after the grace, running turns interrupted and recorded)
  1  an unexpected error stopped the service
  2  bad usage
  3  codex (or the mock model) cannot be found or started
  4  the state database cannot be opened
  5  the listen address cannot be bound";

/// Serve OpenAI codex as an A2A agent (A2A 1.0 and 0.3 over JSON-RPC).
///
/// One codex app-server serves every context: each A2A context is a codex
/// thread that keeps its history (across codex crashes and restarts of this
/// program), each message one codex turn. Tasks and contexts live in a
/// SQLite database. Prints `listening on http://ADDR` once it accepts
/// requests; the agent card is at /.well-known/agent-card.json.
#[derive(Debug, Parser)]
#[command(name = "codex-a2a", version, about, long_about, after_help = AFTER_HELP)]
struct Args {
    /// Address to listen on (loopback by default: put a proxy with TLS in
    /// front to serve others).
    #[arg(long, default_value = "127.0.0.1:41241", value_name = "ADDR")]
    listen: SocketAddr,

    /// The SQLite database of contexts and tasks (created if missing).
    #[arg(long, default_value = "codex-a2a.db", value_name = "PATH")]
    state: PathBuf,

    /// The codex binary (default: $CODEX_BIN, then codex on PATH).
    #[arg(long, value_name = "PATH")]
    codex: Option<PathBuf>,

    /// Run codex against an embedded loopback mock model: no account, no
    /// network. Its CODEX_HOME is <STATE>.codex-home.
    #[arg(long)]
    mock_model: bool,

    /// The directory codex works in (default: the current directory).
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,

    /// When codex asks before running a command.
    #[arg(long, value_name = "P", value_parser = ["untrusted", "on-failure", "on-request", "never"])]
    approval_policy: Option<String>,

    /// What commands may touch.
    #[arg(long, value_name = "S", value_parser = ["read-only", "workspace-write", "danger-full-access"])]
    sandbox: Option<String>,

    /// Decline an approval nobody answered after this many seconds.
    #[arg(long, default_value_t = 300.0, value_name = "SECS", value_parser = positive_secs)]
    approval_timeout: f64,

    /// Fail a turn after this many seconds without an event from codex.
    #[arg(long, default_value_t = 90.0, value_name = "SECS", value_parser = positive_secs)]
    idle_timeout: f64,

    /// Fail a turn that runs longer than this many seconds.
    #[arg(long, default_value_t = 600.0, value_name = "SECS", value_parser = positive_secs)]
    turn_timeout: f64,

    /// Require `Authorization: Bearer TOKEN` on every request but the card.
    #[arg(
        long,
        env = "CODEX_A2A_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,

    /// How many messages may wait behind a context's running turn; more
    /// get a busy error at once.
    #[arg(long, default_value_t = 8, value_name = "N")]
    queue_depth: usize,

    /// The largest request body accepted, in bytes (larger: HTTP 413).
    #[arg(long, default_value_t = 10 * 1024 * 1024, value_name = "BYTES")]
    max_body: usize,

    /// On SIGTERM or Ctrl-C, how long running turns may go on before they
    /// are interrupted.
    #[arg(long, default_value_t = 10.0, value_name = "SECS", value_parser = nonnegative_secs)]
    grace: f64,

    /// The URL the agent card announces (default: http://ADDR/).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,

    /// Log more (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && v < 1e9 => Ok(v),
        _ => Err(format!("wants a positive number of seconds, not {s:?}")),
    }
}

fn nonnegative_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() && v < 1e9 => Ok(v),
        _ => Err(format!("wants a number of seconds (0 or more), not {s:?}")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let level = match args.verbose {
        0 => tracing::Level::INFO,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Before any child exists: whatever codex leaves behind comes back to
    // us, and is ended on the way out.
    if let Err(e) = reaper::become_subreaper() {
        tracing::warn!(
            "cannot become a child subreaper ({e}); commands codex started may outlive it"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("codex-a2a: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    ExitCode::from(runtime.block_on(run(args)))
}

/// When neither `--codex`, `$CODEX_BIN` nor `$PATH` has codex: the one
/// `scripts/install-tools codex` put in this checkout's `.tools/`, so the
/// README's command works on a fresh machine.
fn installed_codex() -> Option<PathBuf> {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools");
    ["codex-latest", "codex-0.72.0"]
        .iter()
        .map(|dir| tools.join(dir).join("node_modules/.bin/codex"))
        .find(|p| p.exists())
}

/// The home of codex under `--mock-model`: beside the database, so codex's
/// threads (and so the contexts' history) survive a restart.
fn mock_home(state: &Path) -> PathBuf {
    let mut name = state
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".codex-home");
    state.with_file_name(name)
}

/// Reaps, as each exits, what codex's commands leave behind and re-parent to
/// us (the subreaper): otherwise their zombies pile up for the life of the
/// service.
async fn reap_orphans_as_they_exit() {
    let Ok(mut child_exits) = signal(SignalKind::child()) else {
        tracing::warn!("cannot watch SIGCHLD; orphans are reaped only at shutdown");
        return;
    };
    while child_exits.recv().await.is_some() {
        reaper::reap_orphans().await;
    }
}

async fn run(args: Args) -> u8 {
    tokio::spawn(reap_orphans_as_they_exit());
    let store = match Store::open(&args.state).await {
        Ok(store) => store,
        Err(e) => {
            let hint = if e.to_string().contains("locked") {
                " (is another codex-a2a serving from it? one state, one service)"
            } else {
                ""
            };
            eprintln!(
                "codex-a2a: cannot open the state database {}: {e}{hint}",
                args.state.display()
            );
            return EXIT_STATE;
        }
    };
    match store.fail_unfinished(RESTART_REASON).await {
        Ok(failed) if !failed.is_empty() => {
            tracing::warn!(
                tasks = failed.len(),
                "tasks unfinished at the last stop are now failed"
            );
        }
        Ok(_) => {}
        Err(e) => {
            eprintln!(
                "codex-a2a: cannot recover the state database {}: {e}",
                args.state.display()
            );
            return EXIT_STATE;
        }
    }

    let codex_path = match codex_adapter::discover::find_codex(args.codex.as_deref()) {
        Ok(path) => path,
        Err(e) => match installed_codex().filter(|_| args.codex.is_none()) {
            Some(path) => path,
            None => {
                eprintln!("codex-a2a: {e}");
                return EXIT_CODEX;
            }
        },
    };
    let limits = TurnLimits {
        idle: Duration::from_secs_f64(args.idle_timeout),
        budget: Duration::from_secs_f64(args.turn_timeout),
    };
    let mut builder = AppServer::builder()
        .codex(&codex_path)
        .client_info("codex-a2a", env!("CARGO_PKG_VERSION"))
        .approvals(ApprovalPolicy::Ask)
        .turn_limits(limits);
    // The mock model lives as long as this function.
    let mut _mock = None;
    if args.mock_model {
        let home = mock_home(&args.state);
        let started = async {
            let model = MockModel::start(codex_a2a::mock_script).await?;
            std::fs::create_dir_all(&home)?;
            std::fs::write(
                home.join("config.toml"),
                mock_config_toml(&model.base_url()),
            )?;
            Ok::<_, std::io::Error>(model)
        };
        match started.await {
            Ok(model) => {
                builder = builder.codex_home(&home);
                _mock = Some(model);
            }
            Err(e) => {
                eprintln!(
                    "codex-a2a: cannot start the mock model in {}: {e}",
                    home.display()
                );
                return EXIT_CODEX;
            }
        }
    }
    let mut thread_options = ThreadOptions::default();
    thread_options.cwd = args.cwd.clone().or_else(|| std::env::current_dir().ok());
    thread_options.approval_policy = args
        .approval_policy
        .as_deref()
        .map(|p| p.parse::<AskForApproval>().expect("clap checked it"));
    thread_options.sandbox = args
        .sandbox
        .as_deref()
        .map(|s| s.parse::<SandboxMode>().expect("clap checked it"));

    let codex = Codex::new(builder, thread_options, store.clone());
    let service = Service::new(
        store,
        codex,
        ServiceConfig {
            approval_timeout: Duration::from_secs_f64(args.approval_timeout),
            queue_depth: args.queue_depth,
            turn_limits: Some(limits),
            ..ServiceConfig::default()
        },
    );

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("codex-a2a: cannot listen on {}: {e}", args.listen);
            return EXIT_LISTEN;
        }
    };
    let addr = listener.local_addr().unwrap_or(args.listen);
    let url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}/"));
    let state = AppState {
        service: service.clone(),
        card: Arc::new(http::agent_card(&url, args.token.is_some())),
        token: args.token.as_deref().map(Arc::from),
        max_body: args.max_body,
    };
    let (mut sigterm, mut sigint) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("codex-a2a: cannot install the signal handlers");
            return EXIT_INTERNAL;
        }
    };
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, http::router(state)).with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    let mut server = tokio::spawn(std::future::IntoFuture::into_future(server));
    println!("listening on http://{addr}");
    tracing::info!(%url, codex = %codex_path.display(), state = %args.state.display(), "codex-a2a serving");

    let code = tokio::select! {
        _ = sigterm.recv() => { tracing::info!("SIGTERM: shutting down"); EXIT_OK }
        _ = sigint.recv() => { tracing::info!("Ctrl-C: shutting down"); EXIT_OK }
        served = &mut server => {
            tracing::error!(?served, "the HTTP server stopped");
            EXIT_INTERNAL
        }
    };
    // Stop accepting; running turns get the grace, then are interrupted
    // and recorded; streams end with their tasks.
    let _ = stop_tx.send(true);
    service.shutdown(Duration::from_secs_f64(args.grace)).await;
    if tokio::time::timeout(Duration::from_secs(3), &mut server)
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown; closing them");
        server.abort();
    }
    let left = reaper::end_descendants(Duration::from_secs(2)).await;
    if !left.is_empty() {
        tracing::warn!(?left, "processes still running after cleanup");
    }
    code
}
