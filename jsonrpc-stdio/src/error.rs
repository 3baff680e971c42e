//! What can go wrong, and why a connection died.

use std::fmt;
use std::io;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use crate::message::ErrorObject;

/// Everything a call on a [`Client`](crate::Client) can fail with.
///
/// Match on the variant, or ask the predicates ([`is_closed`](Self::is_closed),
/// [`is_timeout`](Self::is_timeout), [`rpc_error`](Self::rpc_error)), which keep
/// working as variants are added.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server could not be started. No process was left behind.
    #[error("could not start server `{program}`: {problem}")]
    Spawn {
        /// The program as given.
        program: String,
        /// Which part of the command failed and why, e.g. "its working
        /// directory /srv/x does not exist" or "program not found on PATH
        /// (/usr/bin:/bin)".
        problem: String,
        /// What the OS said.
        #[source]
        source: Arc<io::Error>,
    },
    /// The call needs a tokio runtime it did not find (see
    /// [`Builder::spawn`](crate::Builder::spawn)): nothing was started. Or a
    /// request with a timeout was made on a connection whose runtime has
    /// no timers (see [`Builder::connect`](crate::Builder::connect)):
    /// nothing was sent.
    #[error("jsonrpc-stdio needs a tokio runtime with IO and timers enabled: {problem}")]
    Runtime {
        /// What is missing.
        problem: &'static str,
    },
    /// A notification (or reply) could not be queued: the outgoing queue
    /// holds its limit of bytes the server has not read yet. Nothing was
    /// queued; the connection goes on. A request waits for room instead.
    #[error(
        "cannot send `{method}`: {queued} bytes are already waiting for the server to read its input (limit {limit}); the server is not reading"
    )]
    QueueFull {
        /// The method, or `response` for an answer to the server.
        method: String,
        /// The bytes queued when it was refused.
        queued: usize,
        /// The configured limit ([`Builder::max_queued_bytes`](crate::Builder::max_queued_bytes)).
        limit: usize,
    },
    /// The server's response was longer than
    /// [`Builder::max_frame_length`](crate::Builder::max_frame_length); it
    /// was discarded as it streamed in and its caller failed at once (its id
    /// was read from the response's first or last bytes).
    #[error("`{method}` failed: response too large (limit {limit} bytes); it was discarded")]
    ResponseTooLarge {
        /// The method called.
        method: String,
        /// The configured maximum frame length.
        limit: usize,
    },
    /// How the server process ended could not be learned: waiting for it
    /// failed (typically because something else in this program reaped it:
    /// SIGCHLD ignored, or a `waitpid(-1)`).
    #[error("could not wait for server process {pid}: {source}")]
    Wait {
        /// Its process id.
        pid: u32,
        /// What the OS said.
        #[source]
        source: Arc<io::Error>,
    },
    /// The connection is dead: the server exited, closed its output, or the
    /// client closed it. Every pending and later call fails with the same cause.
    #[error("{0}")]
    Closed(Arc<CloseReason>),
    /// No response within the request's timeout. The pending entry was
    /// removed; a late response is ignored.
    #[error("no response to `{method}` within {after:?}; the server may be stuck or overloaded")]
    Timeout {
        /// The method called.
        method: String,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The server answered with an error object.
    #[error("`{method}` failed: {error}")]
    Rpc {
        /// The method called.
        method: String,
        /// What the server answered.
        error: ErrorObject,
    },
    /// The params could not be serialized to JSON.
    #[error("could not serialize the params of `{method}`: {source}")]
    Encode {
        /// The method called.
        method: String,
        /// What serde_json said.
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// The result did not have the type the caller asked for, or was no
    /// JSON at all: a malformed response (then also counted as
    /// `unparsable` in [`Client::stats`](crate::Client::stats)).
    #[error("the result of `{method}` could not be decoded: {source}")]
    Decode {
        /// The method called.
        method: String,
        /// What serde_json said.
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// A subscriber fell behind and `skipped` notifications were dropped for
    /// it (oldest first kept). The subscription goes on after this.
    #[error("subscriber fell behind; {skipped} notifications were dropped")]
    Lagged {
        /// How many notifications this subscriber lost.
        skipped: u64,
    },
}

impl Error {
    /// The connection is dead (see [`close_reason`](Self::close_reason)).
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Closed(_))
    }

    /// The request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// The error object the server answered with, if it did.
    pub fn rpc_error(&self) -> Option<&ErrorObject> {
        match self {
            Error::Rpc { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Why the connection died, if that is what this error is about.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match self {
            Error::Closed(reason) => Some(reason),
            _ => None,
        }
    }
}

/// Why a connection died. The first cause observed wins and is kept.
#[derive(Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// The server process exited.
    Exited {
        /// Its exit status (code or signal).
        status: ExitStatus,
        /// The last lines it wrote to stderr.
        stderr_tail: String,
    },
    /// The server closed its output (EOF on stdout) but did not exit within
    /// the grace period, or there is no process to watch.
    OutputClosed {
        /// The last lines it wrote to stderr.
        stderr_tail: String,
    },
    /// Reading from the server failed.
    ReadFailed {
        /// What the OS said.
        error: io::Error,
        /// The last lines it wrote to stderr.
        stderr_tail: String,
    },
    /// Writing to the server failed (typically: it closed its stdin).
    WriteFailed {
        /// What the OS said.
        error: io::Error,
        /// The last lines it wrote to stderr.
        stderr_tail: String,
    },
    /// Waiting for the server process failed, so whether and how it ended is
    /// unknown (something else in this program reaped it). It is treated as
    /// gone and its process group is never signalled again.
    WaitFailed {
        /// What the OS said.
        error: Arc<io::Error>,
        /// The last lines it wrote to stderr.
        stderr_tail: String,
    },
    /// [`Client::close`](crate::Client::close) was called, or the last handle
    /// was dropped.
    ClosedByClient,
}

impl CloseReason {
    /// Everything kept of the server's stderr (up to the configured tail size).
    pub fn stderr_tail(&self) -> &str {
        match self {
            CloseReason::Exited { stderr_tail, .. }
            | CloseReason::OutputClosed { stderr_tail }
            | CloseReason::ReadFailed { stderr_tail, .. }
            | CloseReason::WriteFailed { stderr_tail, .. }
            | CloseReason::WaitFailed { stderr_tail, .. } => stderr_tail,
            CloseReason::ClosedByClient => "",
        }
    }

    /// The exit status, when the server's exit is what ended the connection.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        match self {
            CloseReason::Exited { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// How much of the stderr tail an error message quotes; the whole tail is in
/// [`CloseReason::stderr_tail`].
const QUOTED_STDERR: usize = 2048;

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Exited { status, .. } => match (status.code(), signal_of(status)) {
                (Some(code), _) => write!(f, "server exited with status {code}")?,
                (None, Some(sig)) => write!(f, "server was killed by signal {sig}")?,
                (None, None) => write!(f, "server exited ({status})")?,
            },
            CloseReason::OutputClosed { .. } => write!(
                f,
                "server closed its output (stdout EOF) and is not answering"
            )?,
            CloseReason::ReadFailed { error, .. } => {
                write!(f, "reading from the server failed: {error}")?
            }
            CloseReason::WriteFailed { error, .. } => {
                write!(f, "writing to the server failed: {error}")?
            }
            CloseReason::WaitFailed { error, .. } => {
                write!(f, "could not wait for the server process: {error}")?
            }
            CloseReason::ClosedByClient => return write!(f, "connection closed by the client"),
        }
        let tail = self.stderr_tail().trim_end();
        if tail.is_empty() {
            write!(f, "; it wrote nothing to stderr")
        } else {
            let mut start = tail.len().saturating_sub(QUOTED_STDERR);
            while !tail.is_char_boundary(start) {
                start += 1;
            }
            let ellipsis = if start > 0 { "..." } else { "" };
            write!(f, "; last stderr: {ellipsis}{}", &tail[start..])
        }
    }
}

fn signal_of(status: &ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exit_message_names_status_and_stderr() {
        let r = CloseReason::Exited {
            status: ExitStatus::from_raw(3 << 8),
            stderr_tail: "boom\n".into(),
        };
        assert_eq!(
            r.to_string(),
            "server exited with status 3; last stderr: boom"
        );
        let r = CloseReason::Exited {
            status: ExitStatus::from_raw(9),
            stderr_tail: String::new(),
        };
        assert_eq!(
            r.to_string(),
            "server was killed by signal 9; it wrote nothing to stderr"
        );
    }

    #[test]
    fn long_stderr_is_quoted_from_its_end() {
        let tail = format!("{}END", "é".repeat(3000));
        let r = CloseReason::OutputClosed { stderr_tail: tail };
        let s = r.to_string();
        assert!(s.ends_with("END"));
        assert!(s.contains("last stderr: ..."));
        assert!(s.len() < QUOTED_STDERR + 200);
    }
}
