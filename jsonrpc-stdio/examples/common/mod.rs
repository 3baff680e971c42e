//! The skeleton `lsp_client` and `mcp_client` share: the command line, the
//! default server from this checkout's `.tools/`, the connection, closing it
//! whatever happened, the report, and the exit statuses. Each example brings
//! only its protocol session.

use std::process::ExitCode;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::StreamExt;
use jsonrpc_stdio::{CancelNotification, Client, Framing, ServerCommand, Subscription};
use serde_json::{json, Value};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The longest wait for any one thing the server is expected to do.
pub const STEP: Duration = Duration::from_secs(10);

/// Where `scripts/install-tools servers` puts the npm servers.
pub const NPM_MODULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../.tools/npm/node_modules");

/// One example: its protocol's wire conventions and its default server.
pub struct Example {
    /// The program's name, for messages.
    pub name: &'static str,
    /// What the default server is called, for messages.
    pub server: &'static str,
    /// The default server's script under [`NPM_MODULES`], run with `node`.
    pub script: &'static str,
    /// The arguments after the script.
    pub script_args: &'static [&'static str],
    pub framing: Framing,
    pub cancel: CancelNotification,
}

/// The protocol session: talks to the server and returns the JSON report.
pub type Session = for<'a> fn(&'a Client, &'a Narrator) -> BoxFuture<'a, Result<Value, BoxError>>;

/// Runs `session` against the server named on the command line
/// (`[--json] [-- CMD [ARGS...]]`), or the example's default one.
///
/// Exit status: 0 every step worked; 1 a step failed; 2 the server is not
/// installed or could not be started; 64 bad usage.
pub fn main(example: Example, session: Session) -> ExitCode {
    let name = example.name;
    let mut json_report = false;
    let mut command = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json_report = true,
            "--" => command.extend(args.by_ref()),
            other => {
                eprintln!(
                    "{name}: unknown argument {other:?}\nusage: {name} [--json] [-- CMD [ARGS...]]"
                );
                return ExitCode::from(64);
            }
        }
    }
    let command = if command.is_empty() {
        let script = format!("{NPM_MODULES}/{}", example.script);
        if !std::path::Path::new(&script).exists() {
            eprintln!(
                "{name}: {} is not installed at {script}; run `scripts/install-tools servers`",
                example.server
            );
            return ExitCode::from(2);
        }
        ServerCommand::new("node")
            .arg(script)
            .args(example.script_args.iter().copied())
    } else {
        ServerCommand::new(&command[0]).args(&command[1..])
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let out = Narrator { quiet: json_report };
        let client = match Client::builder()
            .framing(example.framing)
            .request_timeout(Some(STEP))
            .cancel_notification(example.cancel)
            .close_grace(Duration::from_secs(1), Duration::from_secs(2))
            .spawn(command)
        {
            Ok(client) => client,
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::from(2);
            }
        };
        let outcome = session(&client, &out).await;
        // Always close, whatever happened: no server is left behind.
        let exit = client.close().await;
        match outcome {
            Ok(mut report) => {
                let exit = match exit {
                    Ok(Some(status)) => status.to_string(),
                    Ok(None) => "no process".to_owned(),
                    Err(e) => e.to_string(),
                };
                out.say(format_args!("closed; server {exit}"));
                report["server_exit"] = json!(exit);
                if json_report {
                    println!("{report}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                ExitCode::from(1)
            }
        }
    })
}

/// Prints progress for people, unless a JSON report was asked for.
pub struct Narrator {
    quiet: bool,
}

impl Narrator {
    pub fn say(&self, line: std::fmt::Arguments<'_>) {
        if !self.quiet {
            println!("{line}");
        }
    }
}

/// Waits (at most [`STEP`]) for the next notification on `sub` whose params
/// satisfy `wanted`, skipping the others, and returns its params.
pub async fn next_matching(
    sub: &mut Subscription,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Result<Value, BoxError> {
    let wait = async {
        while let Some(item) = sub.next().await {
            match item {
                Ok(n) => {
                    let params: Value = n.params()?;
                    if wanted(&params) {
                        return Ok(params);
                    }
                }
                Err(e) if e.is_closed() => return Err(BoxError::from(e)),
                Err(lagged) => tracing::warn!(%lagged, "subscription lagged"),
            }
        }
        Err(format!("the connection ended before {what}").into())
    };
    tokio::time::timeout(STEP, wait)
        .await
        .map_err(|_| format!("no {what} within {STEP:?}"))?
}
