//! What can go wrong outside a turn's stream (inside it, failures are
//! [`TurnOutcome`](crate::TurnOutcome)s).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jsonrpc_stdio::CloseReason;

/// An error from starting the app-server, a thread, or a turn.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No codex binary was found.
    #[error(transparent)]
    NotFound(#[from] crate::discover::NotFound),
    /// The process could not be started.
    #[error("could not start codex app-server: {0}")]
    Spawn(#[source] jsonrpc_stdio::Error),
    /// A handshake step did not answer in time: the app-server is wedged at
    /// start-up.
    #[error(
        "codex app-server did not answer `{method}` within {after:?}: it is wedged at start-up; \
         check its stderr (RUST_LOG=debug) and CODEX_HOME"
    )]
    HandshakeTimeout {
        /// `initialize`.
        method: &'static str,
        /// The bound.
        after: Duration,
    },
    /// The app-server died (now or earlier), or this program closed the
    /// connection. Every later call on the same [`AppServer`](crate::AppServer)
    /// fails the same way at once. The transport's reason keeps the exit
    /// status or signal and the stderr tail ([`CloseReason::exit_status`],
    /// [`CloseReason::stderr_tail`]).
    #[error("{}", died_message(.0))]
    ServerDied(Arc<CloseReason>),
    /// codex answered a request with an error.
    #[error("codex refused `{method}`: {message}")]
    Refused {
        /// The method.
        method: String,
        /// codex's message.
        message: String,
    },
    /// codex said it is overloaded (`-32001`, "retry later"). [`Sessions`](crate::Sessions)
    /// retries these with backoff, a bounded number of times.
    #[error("codex is overloaded and refused `{method}`: {message}; retry later")]
    Overloaded {
        /// The method.
        method: String,
        /// codex's message.
        message: String,
    },
    /// The supervisor's breaker is open: codex failed to start too often
    /// in a short time. Calls fail at once until `retry_at`.
    #[error(
        "codex is unavailable: {cause}; the next start will be tried in {}s",
        secs_until(*retry_at)
    )]
    Unavailable {
        /// Why the last start failed.
        cause: String,
        /// When the next start will be tried.
        retry_at: SystemTime,
    },
    /// The [`SessionStore`](crate::SessionStore) failed.
    #[error(transparent)]
    Store(Arc<crate::sessions::StoreError>),
    /// [`Sessions::close`](crate::Sessions::close) was called.
    #[error("the codex sessions were closed")]
    Closed,
    /// A request got no answer in time.
    #[error("codex did not answer `{method}` within {after:?}; it may be stuck")]
    Timeout {
        /// The method.
        method: String,
        /// The bound.
        after: Duration,
    },
    /// codex answered with something this crate cannot read.
    #[error("unexpected answer to `{method}`: {detail}")]
    Protocol {
        /// The method.
        method: String,
        /// What was wrong.
        detail: String,
    },
}

/// codex's JSON-RPC error code for "server overloaded; retry later".
pub(crate) const OVERLOADED: i64 = -32001;

/// What happened and what to do: a dead app-server never answers again, so
/// the caller needs a new one.
fn died_message(reason: &CloseReason) -> String {
    match reason {
        CloseReason::ClosedByClient => "the connection to codex app-server was closed by this \
             program (AppServer::close, or its last handle dropped); start a new app-server"
            .into(),
        // The reason goes last: it ends with codex's stderr, often long.
        reason => format!(
            "codex app-server died; start a new one (Sessions restarts it on the next \
             call): {reason}"
        ),
    }
}

fn secs_until(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::now())
        .map_or(0, |d| d.as_secs_f64().ceil() as u64)
}

impl Error {
    /// Whether the app-server is dead, could not be started, or is not
    /// available ([`Sessions`](crate::Sessions) breaker open, or closed).
    /// On a plain [`AppServer`](crate::AppServer) nothing will work again;
    /// [`Sessions`](crate::Sessions) restarts codex on a later call.
    pub fn is_server_dead(&self) -> bool {
        matches!(
            self,
            Error::ServerDied(_)
                | Error::Spawn(_)
                | Error::NotFound(_)
                | Error::HandshakeTimeout { .. }
                | Error::Unavailable { .. }
                | Error::Closed
        )
    }

    /// Why the app-server's connection ended, when that is what this error
    /// is about: exit status or signal, stderr tail.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match self {
            Error::ServerDied(reason) => Some(reason),
            _ => None,
        }
    }

    pub(crate) fn from_rpc(method: &str, e: jsonrpc_stdio::Error) -> Error {
        if let jsonrpc_stdio::Error::Closed(reason) = e {
            return Error::ServerDied(reason);
        }
        if let Some(obj) = e.rpc_error() {
            if obj.code == jsonrpc_stdio::ErrorCode(OVERLOADED) {
                return Error::Overloaded {
                    method: method.to_owned(),
                    message: obj.message.clone(),
                };
            }
            return Error::Refused {
                method: method.to_owned(),
                message: obj.message.clone(),
            };
        }
        match e {
            jsonrpc_stdio::Error::Timeout { after, .. } => Error::Timeout {
                method: method.to_owned(),
                after,
            },
            other => Error::Protocol {
                method: method.to_owned(),
                detail: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    #[test]
    fn a_death_keeps_its_status_and_stderr_and_says_what_to_do() {
        let err = Error::ServerDied(Arc::new(CloseReason::Exited {
            status: ExitStatus::from_raw(7 << 8),
            stderr_tail: "thread 'main' panicked\n".into(),
        }));
        let reason = err.close_reason().expect("a death has a reason");
        assert_eq!(reason.exit_status().and_then(|s| s.code()), Some(7));
        assert_eq!(reason.stderr_tail(), "thread 'main' panicked\n");
        assert_eq!(
            err.to_string(),
            "codex app-server died; start a new one (Sessions restarts it on the next call): \
             server exited with status 7; last stderr: thread 'main' panicked"
        );
        assert!(err.is_server_dead());
    }

    #[test]
    fn a_connection_this_program_closed_is_not_called_a_crash() {
        let err = Error::ServerDied(Arc::new(CloseReason::ClosedByClient));
        assert!(err.to_string().contains("closed by this program"), "{err}");
        assert!(!err.to_string().contains("died"), "{err}");
    }

    #[test]
    fn a_transport_close_becomes_server_died_with_the_same_reason() {
        let reason = Arc::new(CloseReason::OutputClosed {
            stderr_tail: String::new(),
        });
        let err = Error::from_rpc("turn/start", jsonrpc_stdio::Error::Closed(reason.clone()));
        let Error::ServerDied(kept) = &err else {
            panic!("{err:?}")
        };
        assert!(Arc::ptr_eq(kept, &reason));
    }
}
