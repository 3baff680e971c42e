//! The server process: how it is started and how it is ended.
//!
//! The child leads its own process group, so one signal reaches everything it
//! started in that group. Servers such as codex also start commands in their
//! own sessions, out of the group's reach; the final kill therefore also walks
//! `/proc` for the child's descendants while they are still its descendants.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::Stdio;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

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

    pub(crate) fn to_tokio(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            // The connection decides when the process dies (close, drop).
            .kill_on_drop(false);
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
        cmd
    }
}

/// Signals the process group led by `pid`.
pub(crate) fn signal_group(pid: u32, signal: Signal) {
    let _ = killpg(Pid::from_raw(pid as i32), signal);
}

/// SIGKILLs what is left of the server: its process group and, while the
/// server itself has not been reaped, every descendant found under `/proc`,
/// wherever its group or session. Descendants are listed first: once the
/// leader dies they are re-parented and can no longer be found. After the
/// leader is reaped its pid may be reused, so only the group is signalled
/// (a process group id is not reused while any member lives).
pub(crate) fn kill_remains(pid: u32, leader_reaped: bool) {
    let descendants = if leader_reaped {
        Vec::new()
    } else {
        descendants(pid)
    };
    signal_group(pid, Signal::SIGKILL);
    for d in descendants {
        let _ = kill(Pid::from_raw(d as i32), Signal::SIGKILL);
    }
}

/// Every live descendant of `root`, read from `/proc/*/stat` (Linux). Empty
/// where `/proc` is not mounted.
pub fn descendants(root: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name (field 2) is in parentheses and may itself hold
        // spaces or parentheses: the fields that follow start after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parent_of
                .iter()
                .filter(|&&(_, ppid)| ppid == parent)
                .map(|&(pid, _)| pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}
