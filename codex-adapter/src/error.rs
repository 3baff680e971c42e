//! What can go wrong outside a turn's stream (inside it, failures are
//! [`TurnOutcome`](crate::TurnOutcome)s).

use std::time::Duration;

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

impl Error {
    /// Whether the app-server is dead (or could not be started): nothing on
    /// this adapter will work again.
    pub fn is_server_dead(&self) -> bool {
        matches!(
            self,
            Error::ServerDied(_)
                | Error::Spawn(_)
                | Error::NotFound(_)
                | Error::HandshakeTimeout { .. }
        )
    }

    pub(crate) fn from_rpc(method: &str, e: jsonrpc_stdio::Error) -> Error {
        if let Some(reason) = e.close_reason() {
            return Error::ServerDied(reason.to_string());
        }
        if let Some(obj) = e.rpc_error() {
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
