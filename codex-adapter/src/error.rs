//! What can go wrong outside a turn's stream (inside it, failures are
//! [`TurnOutcome`](crate::TurnOutcome)s).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
    /// The app-server died (now or earlier). Every later call fails the same
    /// way at once.
    #[error("codex app-server died: {0}")]
    ServerDied(String),
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

    pub(crate) fn from_rpc(method: &str, e: jsonrpc_stdio::Error) -> Error {
        if let Some(reason) = e.close_reason() {
            return Error::ServerDied(reason.to_string());
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
