//! What codex-adapter's integration tests share: reading turns to their
//! end, the healing events, and the processes a test started.
//!
//! Each test binary includes this module and uses part of it.
#![allow(dead_code)]

pub mod codex_binaries;

use std::time::{Duration, Instant};

use codex_adapter::{SessionEvent, Turn, TurnEvent, TurnOutcome};
use futures::StreamExt;

/// Reads a turn to its end, which must come within `within`.
pub async fn events_of(turn: Turn, within: Duration) -> Vec<TurnEvent> {
    tokio::time::timeout(within, turn.collect::<Vec<_>>())
        .await
        .unwrap_or_else(|_| panic!("the turn did not end within {within:?}"))
}

/// How a turn read by [`events_of`] ended: its last event.
pub fn outcome(events: &[TurnEvent]) -> &TurnOutcome {
    match events.last() {
        Some(TurnEvent::Outcome(o)) => o,
        other => panic!("the last event is not the outcome: {other:?}"),
    }
}

/// The agent's text deltas, in order.
pub fn deltas(events: &[TurnEvent]) -> impl Iterator<Item = &str> {
    events.iter().filter_map(|e| match e {
        TurnEvent::AgentMessageDelta { delta, .. } => Some(delta.as_str()),
        _ => None,
    })
}

/// The healing events sent so far.
pub fn drain(events: &mut tokio::sync::broadcast::Receiver<SessionEvent>) -> Vec<SessionEvent> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

pub fn sigkill(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
}

/// The state letter of `pid` in `/proc` (`R`, `S`, `Z`…), if it exists.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// Whether `pid` exists and has not exited (a zombie has).
pub fn is_running(pid: u32) -> bool {
    process_state(pid).is_some_and(|state| state != 'Z' && state != 'X')
}

/// `pid`'s command line, arguments separated by spaces.
pub fn command_line(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline).replace('\0', " ")
}

/// Waits up to `within` for `pid` to exit, on its pidfd, which becomes
/// readable when the process ends whoever its parent is. True when it has
/// (or was already reaped). Panics when pidfds cannot be had (Linux ≥ 5.3).
pub async fn wait_exited(pid: u32, within: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::io::Errno;
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    let Some(pid) = Pid::from_raw(pid as i32) else {
        return true;
    };
    let pidfd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(pidfd) => pidfd,
        Err(Errno::SRCH) => return true,
        Err(e) => {
            panic!("pidfd_open({pid:?}) failed ({e}): these tests need pidfds (Linux 5.3 or later)")
        }
    };
    let within = Timespec::try_from(within).expect("a timeout");
    tokio::task::spawn_blocking(move || {
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        matches!(poll(&mut fds, Some(&within)), Ok(1))
    })
    .await
    .unwrap_or(false)
}

/// Polls `check` until it gives a value or `within` has passed (then the
/// last `None`): for conditions nothing announces.
pub async fn poll_until<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
