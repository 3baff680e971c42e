//! [`ServerProcess`]: the one owner of a server process. It starts it, learns
//! of its exit, signals it, finds what it started, kills it all, and reaps.
//!
//! Three rules make its signals safe and its methods cheap:
//!
//! - **The leader is reaped last.** Its exit is learned without reaping it
//!   (`waitid(WNOWAIT)`); it is reaped only once the client has let go (close,
//!   or the last handle dropped) and the final kill is done. Until then it is
//!   at worst a zombie, so its pid — which is also its process group id —
//!   cannot be reused: a signal to the group cannot reach a stranger, however
//!   late. The group is signalled and the leader reaped under one lock, and
//!   never the one after the other.
//! - **Blocking work has threads of its own.** Waiting for the exit is the
//!   only job of one small thread per server. Walking `/proc` runs on the
//!   releasing thread, or on tokio's blocking pool when `close` awaits it;
//!   never on the runtime's workers, and never inside `Drop`, which returns at
//!   once.
//! - **Nothing is invented.** A wait that fails is reported as that failure,
//!   and the group of a leader that someone else reaped is never signalled.
//!
//! What belongs to the server: its process group; every descendant, found
//! through `/proc` while the leader lives (its children lose that link when
//! it dies); and any process, wherever it was re-parented, that still holds
//! the server's ends of our stdio pipes — a daemon that double-forked out of
//! the group and the session still has them unless it closed them.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::sync::watch;

use super::procfs::{self, PipeEnd};
use crate::lock;

/// How the server ended, as far as anyone could learn.
pub(crate) type Exit = Result<ExitStatus, Arc<io::Error>>;

/// Servers started here and not yet reaped: the subreaper helpers leave them
/// (and what they started) to their owners.
static OWNED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub(crate) fn owned() -> Vec<u32> {
    lock(&OWNED).clone()
}

/// The one owner of a server process; clones share it.
#[derive(Clone)]
pub(crate) struct ServerProcess {
    inner: Arc<Owner>,
}

struct Owner {
    pid: u32,
    /// The server's ends of our stdin, stdout and stderr pipes.
    pipes: Vec<PipeEnd>,
    leader: Mutex<Leader>,
    exit: watch::Sender<Option<Exit>>,
}

struct Leader {
    /// `Some` until the leader is reaped (or lost to someone else's wait).
    child: Option<Child>,
    /// The leader has exited (it may be a zombie still).
    exited: bool,
    /// The client let go; the final kill is under way or done.
    releasing: bool,
    /// The final kill is done: the leader is reaped as soon as it has exited.
    released: bool,
}

/// A started server and our ends of its pipes.
pub(crate) struct Spawned {
    pub(crate) process: ServerProcess,
    pub(crate) stdin: ChildStdin,
    pub(crate) stdout: ChildStdout,
    pub(crate) stderr: ChildStderr,
}

/// Why a server could not be started.
pub(crate) enum StartError {
    /// The OS refused to start it.
    Spawn(io::Error),
    /// It started, but its exit could not be watched; it was killed and
    /// reaped.
    Watch(io::Error),
}

impl ServerProcess {
    /// Starts `command` with its three stdio piped, leading a process group
    /// of its own (the group every signal here is sent to), and takes
    /// ownership of it.
    pub(crate) fn start(mut command: Command) -> Result<Spawned, StartError> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let child = command.spawn().map_err(StartError::Spawn)?;
        Self::adopt(child).map_err(StartError::Watch)
    }

    /// Takes ownership of a just-started child whose three stdio are piped,
    /// and starts the thread that waits for its exit. On failure the child
    /// is killed and reaped before the error is returned.
    fn adopt(mut child: Child) -> io::Result<Spawned> {
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            kill_and_reap(child);
            return Err(io::Error::other("the server's stdio is not piped"));
        };
        let pid = child.id();
        let pipes = [
            (stdin.as_raw_fd(), false),
            (stdout.as_raw_fd(), true),
            (stderr.as_raw_fd(), true),
        ]
        .into_iter()
        .filter_map(|(fd, write)| {
            Some(PipeEnd {
                inode: procfs::pipe_inode(fd)?,
                write,
            })
        })
        .collect();
        lock(&OWNED).push(pid);
        let inner = Arc::new(Owner {
            pid,
            pipes,
            leader: Mutex::new(Leader {
                child: Some(child),
                exited: false,
                releasing: false,
                released: false,
            }),
            exit: watch::Sender::new(None),
        });
        let waiter = inner.clone();
        let started = std::thread::Builder::new()
            .name(format!("jsonrpc-wait-{pid}"))
            .stack_size(64 * 1024)
            .spawn(move || waiter.wait_for_exit());
        if let Err(e) = started {
            if let Some(child) = inner.lock().child.take() {
                kill_and_reap(child);
            }
            unown(pid);
            return Err(e);
        }
        Ok(Spawned {
            process: ServerProcess { inner },
            stdin,
            stdout,
            stderr,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Learns of the exit.
    pub(crate) fn exit(&self) -> ExitWatch {
        ExitWatch(self.inner.exit.subscribe())
    }

    /// Ends a server whose stdin the caller has closed, and returns how it
    /// ended: up to `after_stdin` for it to exit on its own; then SIGTERM to
    /// its group and up to `after_sigterm`; then SIGKILL to everything that
    /// belongs to it. Then [`release`](Self::release). `sleep` makes the
    /// timers, so they run on the connection's runtime whatever awaits this.
    ///
    /// # Cancel safety
    /// Dropping the future stops the escalation where it is; a kill already
    /// begun goes on.
    pub(crate) async fn end(
        &self,
        after_stdin: Duration,
        after_sigterm: Duration,
        sleep: impl Fn(Duration) -> tokio::time::Sleep,
    ) -> Exit {
        let mut watch = self.exit();
        let mut exit = watch.within(sleep(after_stdin)).await;
        if exit.is_none() {
            tracing::debug!(
                pid = self.pid(),
                "server ignored stdin EOF; sending SIGTERM"
            );
            self.inner.signal_group(Signal::SIGTERM);
            exit = watch.within(sleep(after_sigterm)).await;
        }
        let exit = match exit {
            Some(exit) => exit,
            None => {
                tracing::debug!(pid = self.pid(), "server ignored SIGTERM; sending SIGKILL");
                self.kill_all().await;
                watch.exited().await
            }
        };
        self.release().await;
        exit
    }

    /// SIGKILLs the server and everything that belongs to it (see the module
    /// docs). Walks `/proc` on tokio's blocking pool.
    ///
    /// # Cancel safety
    /// The kill goes on if the future is dropped.
    async fn kill_all(&self) {
        let owner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || owner.kill_all()).await;
    }

    /// The client is done with the server: kills what is left of it and
    /// reaps the leader once it has exited. Walks `/proc` on tokio's blocking
    /// pool. Idempotent.
    ///
    /// # Cancel safety
    /// The release goes on if the future is dropped.
    async fn release(&self) {
        let owner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || owner.release()).await;
    }

    /// [`release`](Self::release) from `Drop`: on a thread of its own, so
    /// the caller never waits, and so it completes even while the runtime
    /// shuts down. If no thread can be started, the group is SIGKILLed here
    /// (no `/proc` walk) and the waiting thread reaps.
    pub(crate) fn release_in_background(&self) {
        if self.inner.lock().releasing {
            return;
        }
        let owner = self.inner.clone();
        let started = std::thread::Builder::new()
            .name(format!("jsonrpc-kill-{}", self.inner.pid))
            .spawn(move || owner.release());
        if started.is_err() {
            self.inner.signal_group(Signal::SIGKILL);
            let mut leader = self.inner.lock();
            leader.releasing = true;
            leader.released = true;
            if leader.exited {
                self.inner.reap(&mut leader);
            }
        }
    }
}

/// Learns of the server's exit, published by the owner's waiting thread:
/// watching it waits on nothing but that publication.
#[derive(Clone)]
pub(crate) struct ExitWatch(watch::Receiver<Option<Exit>>);

impl ExitWatch {
    /// Resolves once the server has exited.
    ///
    /// # Cancel safety
    /// Cancel safe: it only watches.
    pub(crate) async fn exited(&mut self) -> Exit {
        let exit = self
            .0
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|exit| exit.clone());
        match exit {
            Some(exit) => exit,
            // Only if the owner went without publishing an exit, which its
            // waiting thread always does before it ends (a published exit
            // is seen even after the owner is gone).
            None => std::future::pending().await,
        }
    }

    /// The exit, if it comes before `timer`.
    async fn within(&mut self, timer: tokio::time::Sleep) -> Option<Exit> {
        tokio::select! {
            exit = self.exited() => Some(exit),
            _ = timer => None,
        }
    }
}

impl Owner {
    /// The leader's state. A panic elsewhere while this was held changes
    /// nothing here (every update is one assignment), so poison is ignored:
    /// `Drop` must never panic over it.
    fn lock(&self) -> MutexGuard<'_, Leader> {
        lock(&self.leader)
    }

    fn signal_group(&self, signal: Signal) {
        let leader = self.lock();
        if leader.child.is_some() {
            let _ = killpg(Pid::from_raw(self.pid as i32), signal);
        }
    }

    /// The body of the waiting thread: learns of the exit without reaping,
    /// then reaps at once only if the client already let go.
    fn wait_for_exit(&self) {
        let pid = Pid::from_raw(self.pid as i32);
        let waited = loop {
            match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Err(Errno::EINTR) => continue,
                other => break other,
            }
        };
        let mut leader = self.lock();
        leader.exited = true;
        let exit = match waited {
            Ok(WaitStatus::Exited(_, code)) => Ok(ExitStatus::from_raw((code & 0xff) << 8)),
            Ok(WaitStatus::Signaled(_, signal, core)) => Ok(ExitStatus::from_raw(
                signal as i32 | if core { 0x80 } else { 0 },
            )),
            // A status `waitid` cannot describe (a real-time signal), or no
            // status at all (someone else reaped it: SIGCHLD ignored, a
            // `waitpid(-1)` elsewhere). Ask once more, reaping: whatever
            // comes back is the truth, and the group is not signalled again.
            other => {
                let error = match other {
                    Ok(status) => io::Error::other(format!("unexpected wait status {status:?}")),
                    Err(errno) => io::Error::from(errno),
                };
                let reaped = leader.child.take().map(|mut c| c.try_wait());
                unown(self.pid);
                match reaped {
                    Some(Ok(Some(status))) => Ok(status),
                    _ => Err(Arc::new(error)),
                }
            }
        };
        if leader.released {
            self.reap(&mut leader);
        }
        drop(leader);
        if let Err(e) = &exit {
            tracing::warn!(pid = self.pid, error = %e, "could not wait for the server process");
        }
        self.exit.send_replace(Some(exit));
    }

    /// Reaps the exited leader (under the lock every group signal takes).
    fn reap(&self, leader: &mut Leader) {
        if let Some(mut child) = leader.child.take() {
            if let Err(e) = child.try_wait() {
                tracing::debug!(pid = self.pid, error = %e, "reaping the server failed");
            }
            unown(self.pid);
        }
    }

    /// SIGKILLs the group, the descendants and the holders of our pipes.
    /// Blocking (`/proc`).
    fn kill_all(&self) {
        let leader_alive = {
            let leader = self.lock();
            leader.child.is_some() && !leader.exited
        };
        // Listed before the kill: once the leader dies they are re-parented
        // and no longer found from it.
        let descendants = if leader_alive {
            procfs::descendants(self.pid, &[])
        } else {
            Vec::new()
        };
        self.signal_group(Signal::SIGKILL);
        let holders = procfs::holders(&self.pipes);
        let mut killed = Vec::new();
        for pid in descendants.into_iter().chain(holders) {
            if pid != self.pid && !killed.contains(&pid) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                killed.push(pid);
            }
        }
        if !killed.is_empty() {
            tracing::debug!(pid = self.pid, ?killed, "killed what the server left");
        }
        reap_our_orphans(&killed);
    }

    /// See [`ServerProcess::release`]. Blocking (`/proc`).
    fn release(&self) {
        {
            let mut leader = self.lock();
            if leader.releasing {
                return;
            }
            leader.releasing = true;
        }
        // The leader stays unreaped through the kill, even if it exits
        // meanwhile, so the kill still reaches its group.
        self.kill_all();
        let mut leader = self.lock();
        leader.released = true;
        if leader.exited {
            self.reap(&mut leader);
        }
        // Otherwise the waiting thread reaps when the SIGKILL lands.
    }
}

fn unown(pid: u32) {
    lock(&OWNED).retain(|&p| p != pid);
}

/// For a child that was never handed to an owner.
fn kill_and_reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Processes that were re-parented to this one (a child subreaper) become
/// our zombies when killed: reap them, giving each a moment to die.
fn reap_our_orphans(killed: &[u32]) {
    let me = std::process::id();
    let owned = owned();
    let mut ours: Vec<u32> = killed
        .iter()
        .copied()
        .filter(|&p| !owned.contains(&p) && procfs::stat(p).is_some_and(|s| s.ppid == me))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(1);
    while !ours.is_empty() && Instant::now() < deadline {
        ours.retain(|&p| {
            !matches!(
                waitpid(Pid::from_raw(p as i32), Some(WaitPidFlag::WNOHANG)),
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) | Err(_)
            )
        });
        if !ours.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::procfs::WALKERS;
    use crate::{lock, Client, ServerCommand};

    #[test]
    fn close_and_drop_never_walk_proc_on_the_runtime_thread() {
        // A current-thread runtime runs everything on this thread: a walk
        // recorded here ran on the runtime (or inside `Drop`).
        let me = std::thread::current().id();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let stubborn = || {
            ServerCommand::new("sh")
                .arg("-c")
                .arg("trap '' TERM; sleep 300 & while :; do sleep 0.05; done")
        };
        runtime.block_on(async {
            let grace = Duration::from_millis(50);
            let closed = Client::builder()
                .close_grace(grace, grace)
                .spawn(stubborn())
                .unwrap();
            // Escalates to the SIGKILL of the group and the descendants.
            let status = closed.close().await.unwrap().unwrap();
            assert!(!status.success());
            let dropped = Client::spawn(stubborn()).unwrap();
            let pid = dropped.pid().unwrap();
            drop(dropped);
            let deadline = Instant::now() + Duration::from_secs(10);
            while super::procfs::is_alive(pid) {
                assert!(Instant::now() < deadline, "the dropped server lives on");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let walkers = lock(&WALKERS).clone();
        assert!(!walkers.is_empty(), "nothing walked /proc");
        assert!(
            !walkers.contains(&me),
            "/proc was walked on the runtime's thread"
        );
    }
}
