//! `heal_latency`: how long a user of [`Sessions`] waits after codex is
//! SIGKILLed — from the kill to the first token of the next turn on the same
//! key (restart, `thread/resume`, `turn/start`, the model's first delta).
//!
//! ```text
//! heal_latency SAMPLES CODEX_BINARY...
//! ```
//!
//! Each codex runs against the embedded loopback mock model with a temporary
//! `CODEX_HOME`. For each sample: a turn completes on one key, codex is
//! SIGKILLed, and the next turn on the key is timed to its first text delta.
//! Each kill counts as a death of its own (`stable_after` zero): the first
//! restart after a death is immediate, while repeated deaths within a minute
//! back off by design. Prints every sample, then min / median / max per
//! binary. Exit status: 0,
//! 1 when a turn fails, 64 bad usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use codex_adapter::{reaper, AppServer, RestartPolicy, Sessions, TurnEvent, TurnOptions};
use futures::StreamExt;
use mock_model::{CodexHome, MockModel};

const USAGE: &str = "usage: heal_latency SAMPLES CODEX_BINARY...";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let samples = args.next().and_then(|n| n.parse::<usize>().ok());
    // Absolute: codex runs in a directory of its own.
    let binaries: Vec<PathBuf> = args
        .map(|a| std::path::absolute(&a).unwrap_or_else(|_| a.into()))
        .collect();
    let (Some(samples), false) = (samples.filter(|n| *n > 0), binaries.is_empty()) else {
        eprintln!("{USAGE}");
        return ExitCode::from(64);
    };
    let _ = reaper::become_subreaper();
    for codex in &binaries {
        match measure(codex, samples).await {
            Ok(mut times) => {
                times.sort();
                println!(
                    "{}: SIGKILL -> first token of the next turn: min {:?}, median {:?}, max {:?} ({samples} samples)",
                    codex.display(),
                    times[0],
                    times[times.len() / 2],
                    times[times.len() - 1]
                );
            }
            Err(e) => {
                eprintln!("heal_latency: {}: {e}", codex.display());
                return ExitCode::from(1);
            }
        }
        reaper::end_descendants(Duration::from_secs(2)).await;
    }
    ExitCode::SUCCESS
}

async fn measure(codex: &PathBuf, samples: usize) -> Result<Vec<Duration>, String> {
    let model = MockModel::start_default()
        .await
        .map_err(|e| e.to_string())?;
    let home = CodexHome::for_mock(&model).map_err(|e| e.to_string())?;
    let work = CodexHome::new().map_err(|e| e.to_string())?;
    let server = AppServer::builder()
        .codex(codex)
        .codex_home(home.path())
        .env("HOME", work.path())
        .current_dir(work.path());
    // Each kill is measured as a death of its own: by default, codex dying
    // again within 60 s of its start is a crash loop and backs off
    // (0, 250 ms, 500 ms, … 30 s), which would be measured instead.
    let policy = RestartPolicy::default().stable_after(Duration::ZERO);
    let sessions = Sessions::builder(server).restart_policy(policy).build();
    let mut times = Vec::new();
    for i in 0..samples {
        let summary = sessions
            .run("chat", format!("Remember sample {i}"))
            .await
            .map_err(|e| e.to_string())?;
        if !summary.outcome.is_completed() {
            return Err(format!("turn ended {}", summary.outcome));
        }
        let pid = sessions
            .server()
            .and_then(|s| s.pid())
            .ok_or("codex is not running")?;
        let killed = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .map_err(|e| e.to_string())?;
        let mut turn = sessions
            .start_turn("chat", "Say hello", TurnOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut first = None;
        while let Some(event) = turn.next().await {
            match event {
                TurnEvent::AgentMessageDelta { .. } if first.is_none() => {
                    first = Some(killed.elapsed())
                }
                TurnEvent::Outcome(o) if !o.is_completed() => {
                    return Err(format!("turn ended {o}"));
                }
                _ => {}
            }
        }
        let took = first.ok_or("the turn streamed no text")?;
        println!("{}: sample {i}: {took:?}", codex.display());
        times.push(took);
    }
    sessions.close().await;
    Ok(times)
}
