//! Processes: what to run ([`ServerCommand`]), and the one owner of a
//! started server (`owner`), which alone waits for it, signals it, finds
//! what it started and reaps. Everything read from `/proc` is read by
//! `procfs`.
//!
//! The functions here are for a program that owns the processes its servers
//! leave behind: [`become_subreaper`], then [`end_orphans`] on the way out.

mod owner;
mod procfs;

pub(crate) use owner::{Exit, ExitWatch, ServerProcess, Spawned};

use owner::StartError;

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use crate::error::Error;

/// What to run: program, arguments, environment and working directory.
///
/// ```
/// use jsonrpc_stdio::ServerCommand;
/// let cmd = ServerCommand::new("codex")
///     .arg("app-server")
///     .env("CODEX_HOME", "/tmp/codex-home")
///     .env_remove("OPENAI_API_KEY")
///     .current_dir("/tmp");
/// assert_eq!(cmd.program(), "codex");
/// ```
#[derive(Debug, Clone)]
pub struct ServerCommand {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    env_clear: bool,
    cwd: Option<PathBuf>,
}

impl ServerCommand {
    /// Runs `program` (looked up on `PATH` when it has no `/`).
    pub fn new(program: impl Into<OsString>) -> Self {
        ServerCommand {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_clear: false,
            cwd: None,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the server.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Removes an environment variable the server would otherwise inherit.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env.push((key.into(), None));
        self
    }

    /// Starts the server with an empty environment (plus what
    /// [`env`](Self::env) sets, before or after this call).
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self.env.retain(|(_, v)| v.is_some());
        self
    }

    /// Runs the server in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// The program, as given.
    pub fn program(&self) -> &OsStr {
        &self.program
    }

    /// The same command running another program: for a launcher that knows
    /// the arguments and environment before it has found the program.
    pub fn with_program(mut self, program: impl Into<OsString>) -> Self {
        self.program = program.into();
        self
    }

    /// Starts the server through its owner (see [`ServerProcess::start`]).
    /// A failure names the culprit: the working directory, the program and
    /// the `PATH` searched, or the permission missing.
    pub(crate) fn spawn(&self) -> Result<Spawned, Error> {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args);
        if self.env_clear {
            cmd.env_clear();
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        ServerProcess::start(cmd).map_err(|e| match e {
            StartError::Spawn(e) => self.spawn_error(e),
            StartError::Watch(e) => Error::Spawn {
                program: self.program.to_string_lossy().into_owned(),
                problem: format!("could not watch it: {e}"),
                source: Arc::new(e),
            },
        })
    }

    /// The `PATH` the child searches: its own when set here, else ours.
    fn search_path(&self) -> Option<OsString> {
        match self.env.iter().rev().find(|(k, _)| k == "PATH") {
            Some((_, v)) => v.clone(),
            None if self.env_clear => None,
            None => std::env::var_os("PATH"),
        }
    }

    /// Where the program file is, if it exists: the path as given (from the
    /// working directory), or the first match on the search path.
    fn located(&self) -> Option<PathBuf> {
        let program = Path::new(&self.program);
        if self.program.to_string_lossy().contains('/') {
            let path = match &self.cwd {
                Some(dir) if program.is_relative() => dir.join(program),
                _ => program.to_path_buf(),
            };
            return path.is_file().then_some(path);
        }
        std::env::split_paths(&self.search_path()?)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    }

    /// Says which part of the command the OS refused. `spawn` reports a
    /// missing working directory and a missing program with the same
    /// `ENOENT`, so the directory is looked at first.
    fn spawn_error(&self, error: io::Error) -> Error {
        let program = self.program.to_string_lossy().into_owned();
        let is_path = program.contains('/');
        let cwd_problem = self
            .cwd
            .as_deref()
            .and_then(|dir| match std::fs::metadata(dir) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Some(format!(
                    "its working directory {} does not exist",
                    dir.display()
                )),
                Err(e) => Some(format!(
                    "its working directory {} cannot be read: {e}",
                    dir.display()
                )),
                Ok(m) if !m.is_dir() => Some(format!(
                    "its working directory {} is not a directory",
                    dir.display()
                )),
                Ok(_) if nix::unistd::access(dir, nix::unistd::AccessFlags::X_OK).is_err() => {
                    Some(format!(
                        "permission denied entering its working directory {}",
                        dir.display()
                    ))
                }
                Ok(_) => None,
            });
        let problem = match (error.kind(), cwd_problem) {
            (io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied, Some(cwd)) => cwd,
            _ if error.raw_os_error() == Some(nix::libc::ENOTDIR) && self.cwd.is_some() => {
                format!(
                    "its working directory {} is not a directory",
                    self.cwd.as_deref().unwrap_or(Path::new("")).display()
                )
            }
            // `exec` also says ENOENT when the file is there but its `#!`
            // interpreter (or its dynamic loader) is not.
            (io::ErrorKind::NotFound, None) if self.located().is_some() => format!(
                "{} exists but could not be executed: the interpreter on its #! line, or a loader it needs, is missing",
                self.located().unwrap_or_default().display()
            ),
            (io::ErrorKind::NotFound, None) if is_path => match &self.cwd {
                Some(dir) if !Path::new(&self.program).is_absolute() => format!(
                    "{program} does not exist (relative to its working directory {})",
                    dir.display()
                ),
                _ => format!("{program} does not exist"),
            },
            (io::ErrorKind::NotFound, None) => match self.search_path() {
                Some(path) if !path.is_empty() => format!(
                    "program not found on PATH ({})",
                    path.to_string_lossy()
                ),
                _ => "program not found: PATH is empty or unset, so only a path with `/` can be run".into(),
            },
            (io::ErrorKind::PermissionDenied, None) => format!(
                "permission denied: {program} is not executable by this user, or a directory on the way to it is not searchable"
            ),
            _ => error.to_string(),
        };
        Error::Spawn {
            program,
            problem,
            source: Arc::new(error),
        }
    }
}

/// Every live (or zombie) descendant of `root`, read from `/proc/*/stat`
/// (Linux); empty where `/proc` is not mounted. A process counts only while
/// its chain of parents up to `root` holds.
///
/// Blocking: it reads the file system, so call it off the async runtime's
/// worker threads (`tokio::task::spawn_blocking`).
pub fn descendants(root: u32) -> Vec<u32> {
    procfs::descendants(root, &[])
}

/// Makes this process the reaper of its orphaned descendants (Linux
/// `PR_SET_CHILD_SUBREAPER`): then what a server's commands leave behind is
/// re-parented here instead of to init, and [`end_orphans`] can find, end and
/// reap it. A no-op elsewhere. Call it before starting any server.
pub fn become_subreaper() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(())
    }
}

/// How long SIGKILLed processes get to disappear before they are reported
/// as survivors (a process in uninterruptible sleep can take a moment).
const KILL_GRACE: Duration = Duration::from_secs(1);

/// How often to look: processes give no event on their exit to a
/// non-parent, so the only way to see them go is to look again.
const POLL: Duration = Duration::from_millis(20);

/// Ends every descendant of this process that no live
/// [`Client`](crate::Client) owns — neither a server still running nor
/// anything below one (their owners end those): SIGTERM (so a login shell can
/// clean up its locks), up to `grace` for them to go, then SIGKILL; reaps
/// what was re-parented here. Returns the pids still alive afterwards (empty
/// on success). Meant for a program that called [`become_subreaper`], on its
/// way out.
///
/// `/proc` is read on tokio's blocking pool, never on the runtime's workers.
///
/// # Cancel safety
/// Dropping the future stops after the signals sent so far.
pub async fn end_orphans(grace: Duration) -> Vec<u32> {
    let first = unowned_descendants().await;
    if first.is_empty() {
        return first;
    }
    signal_all(&first, Signal::SIGTERM);
    let survivors = wait_gone(grace).await;
    if survivors.is_empty() {
        return survivors;
    }
    signal_all(&survivors, Signal::SIGKILL);
    wait_gone(KILL_GRACE).await
}

/// Reaps the orphans re-parented here (see [`become_subreaper`]) that have
/// already exited, signalling nothing. A long-running subreaper calls it
/// whenever a child exits (SIGCHLD), or zombies pile up until
/// [`end_orphans`] runs on the way out; the servers that live
/// [`Client`](crate::Client)s own are left to their owners. Returns how many
/// were reaped.
///
/// Only for a program whose own children are all started through
/// [`Client`](crate::Client): a child started any other way is an orphan
/// here, and its exit status is taken.
///
/// # Cancel safety
/// Dropping the future may leave some zombies for the next call.
pub async fn reap_orphans() -> usize {
    tokio::task::spawn_blocking(|| {
        let owned = owner::owned();
        let me = std::process::id();
        procfs::descendants(me, &owned)
            .into_iter()
            .filter(|&pid| procfs::stat(pid).is_some_and(|s| s.ppid == me && s.is_dead()))
            // Looked up again just before the wait: a server adopted since
            // the walk began is its owner's to reap. (A server is adopted
            // microseconds after its spawn; it cannot exec and exit sooner.)
            .filter(|pid| !owner::owned().contains(pid))
            .filter(|&pid| waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)).is_ok())
            .count()
    })
    .await
    .unwrap_or_default()
}

/// Our descendants outside every owned server's subtree, reaping the
/// zombies among our own children as it goes.
async fn unowned_descendants() -> Vec<u32> {
    tokio::task::spawn_blocking(|| {
        let owned = owner::owned();
        let found = procfs::descendants(std::process::id(), &owned);
        let me = std::process::id();
        for &pid in &found {
            if procfs::stat(pid).is_some_and(|s| s.ppid == me && s.is_dead()) {
                let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
            }
        }
        found.into_iter().filter(|&p| procfs::is_alive(p)).collect()
    })
    .await
    .unwrap_or_default()
}

fn signal_all(pids: &[u32], signal: Signal) {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid as i32), signal);
    }
}

/// Looks again until no unowned descendant is alive or `within` has passed;
/// returns those still alive.
async fn wait_gone(within: Duration) -> Vec<u32> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let alive = unowned_descendants().await;
        if alive.is_empty() || tokio::time::Instant::now() >= deadline {
            return alive;
        }
        tokio::time::sleep(POLL).await;
    }
}
