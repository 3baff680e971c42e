//! Ending every process codex leaves behind.
//!
//! codex runs shell commands as its own children: 0.72.0 puts each in its own
//! process group, 0.169.0 in its own session, and 0.169.0 also starts a login
//! shell at every `thread/start`. Killing codex's process group therefore
//! misses them. A program that owns the machine's codex processes (like
//! `codex-turn`) calls [`become_subreaper`] first: then everything codex
//! leaves behind is re-parented to it instead of to init, and
//! [`end_descendants`] can find, end and reap it.
//!
//! These are [`jsonrpc_stdio::process`]'s, the one owner of server
//! processes, under the names this crate has always given them.
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

pub use jsonrpc_stdio::process::{become_subreaper, reap_orphans};

/// Every live (or zombie) descendant of this process.
///
/// Blocking: it reads `/proc`.
pub fn descendants() -> Vec<u32> {
    jsonrpc_stdio::process::descendants(std::process::id())
}

/// Ends every descendant of this process that no live app-server connection
/// owns: SIGTERM, up to `grace`, then SIGKILL; reaps what re-parented to us.
/// Returns the pids still alive afterwards (empty on success). See
/// [`jsonrpc_stdio::process::end_orphans`].
///
/// # Cancel safety
/// Dropping the future stops after the signals sent so far.
pub async fn end_descendants(grace: Duration) -> Vec<u32> {
    jsonrpc_stdio::process::end_orphans(grace).await
}
