//! Shared by the tests that watch a server's children: the pid a server
//! announces of the process it started, and waiting for a process to end.

use std::time::Duration;

use futures::StreamExt;

/// The pid the server announced in its first `child` notification.
pub async fn announced_pid(notes: &mut jsonrpc_stdio::Subscription) -> u32 {
    let note = notes
        .next()
        .await
        .expect("subscribed")
        .expect("a notification");
    note.params().expect("a pid")
}

/// Waits up to `within` for `pid` to exit, on its pidfd, which becomes
/// readable when the process ends whoever its parent is. True when it has,
/// or was already reaped. Panics when pidfds cannot be had (Linux ≥ 5.3):
/// then nothing here could tell.
#[allow(dead_code)] // not every test crate that shares this waits
pub async fn wait_exited(pid: u32, within: Duration) -> bool {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    use rustix::io::Errno;
    use rustix::process::{pidfd_open, Pid, PidfdFlags};
    let pidfd = match pidfd_open(
        Pid::from_raw(pid as i32).expect("a pid"),
        PidfdFlags::empty(),
    ) {
        Ok(pidfd) => pidfd,
        Err(Errno::SRCH) => return true,
        Err(e) => {
            panic!("pidfd_open({pid}) failed ({e}): these tests need pidfds (Linux 5.3 or later)")
        }
    };
    let within = Timespec::try_from(within).expect("a timeout");
    tokio::task::spawn_blocking(move || {
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        poll(&mut fds, Some(&within)).expect("poll on a pidfd") == 1
    })
    .await
    .expect("the wait ran")
}
