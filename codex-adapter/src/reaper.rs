//! Ending every process codex leaves behind.
//!
//! codex runs shell commands as its own children: 0.72.0 puts each in its own
//! process group, 0.169.0 in its own session, and 0.169.0 also starts a login
//! shell at every `thread/start`. Killing codex's process group therefore
//! misses them. A program that owns the machine's codex processes (like
//! `codex_turn`) calls [`become_subreaper`] first: then everything codex
//! leaves behind is re-parented to it instead of to init, and
//! [`end_descendants`] can find, end and reap it.
//!
//! ```no_run
//! # async fn demo() {
//! codex_adapter::reaper::become_subreaper().ok();
//! // ... run codex, close it ...
//! let left = codex_adapter::reaper::end_descendants(std::time::Duration::from_secs(2)).await;
//! assert!(left.is_empty());
//! # }
//! ```

use std::time::Duration;

/// Makes this process the reaper of its orphaned descendants (Linux
/// `PR_SET_CHILD_SUBREAPER`). A no-op elsewhere.
pub fn become_subreaper() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(())
    }
}

/// Every live (or zombie) descendant of this process.
pub fn descendants() -> Vec<u32> {
    jsonrpc_stdio::descendants(std::process::id())
}

fn signal_all(pids: &[u32], signal: nix::sys::signal::Signal) {
    for &pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
    }
}

/// Reaps the zombies among `pids` that are this process's children.
fn reap(pids: &[u32]) {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    for &pid in pids {
        let _ = waitpid(
            nix::unistd::Pid::from_raw(pid as i32),
            Some(WaitPidFlag::WNOHANG),
        );
    }
}

/// Ends every descendant of this process: SIGTERM (so a login shell can
/// clean up its locks), up to `grace` for them to go, then SIGKILL; reaps
/// what re-parented to us. Returns the pids still alive afterwards (empty
/// on success).
///
/// Call it after the app-server itself was closed and reaped: it signals
/// *every* descendant.
///
/// # Cancel safety
/// Dropping the future stops after the signals sent so far.
pub async fn end_descendants(grace: Duration) -> Vec<u32> {
    let first = descendants();
    if first.is_empty() {
        return first;
    }
    signal_all(&first, nix::sys::signal::Signal::SIGTERM);
    let survivors = wait_gone(grace).await;
    if survivors.is_empty() {
        return survivors;
    }
    signal_all(&survivors, nix::sys::signal::Signal::SIGKILL);
    wait_gone(KILL_GRACE).await
}

/// How long SIGKILLed processes get to disappear before they are reported
/// as survivors (a process in uninterruptible sleep can take a moment).
const KILL_GRACE: Duration = Duration::from_secs(1);

/// How often to look: processes give no event on their exit to a
/// non-parent, so the only way to see them go is to look again.
const POLL: Duration = Duration::from_millis(20);

/// Reaps and re-reads the descendants until none is alive or `within` has
/// passed; returns those still alive.
async fn wait_gone(within: Duration) -> Vec<u32> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = descendants();
        reap(&left);
        let alive: Vec<u32> = left.into_iter().filter(|&p| is_alive(p)).collect();
        if alive.is_empty() || tokio::time::Instant::now() >= deadline {
            return alive;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether `pid` exists and is not a zombie.
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}
