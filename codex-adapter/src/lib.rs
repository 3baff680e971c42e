//! Drive OpenAI's `codex app-server` from Rust: one process, many threads,
//! each turn a typed event stream that always ends.
//!
//! ```no_run
//! # async fn demo() -> Result<(), codex_adapter::Error> {
//! use futures::StreamExt;
//! use codex_adapter::{AppServer, ApprovalPolicy, ThreadOptions, TurnEvent, TurnOptions};
//!
//! let server = AppServer::builder().spawn().await?; // codex from CODEX_BIN or PATH
//! let thread = server.start_thread(ThreadOptions::default().cwd("/srv/work")).await?;
//! let mut turn = thread
//!     .start_turn_with("Run the tests", TurnOptions::default().approvals(ApprovalPolicy::Ask))
//!     .await?;
//! while let Some(event) = turn.next().await {
//!     match event {
//!         TurnEvent::AgentMessageDelta { delta, .. } => print!("{delta}"),
//!         TurnEvent::ApprovalRequested(approval) => approval.accept(),
//!         TurnEvent::Outcome(outcome) => println!("\n{outcome}"),
//!         _ => {}
//!     }
//! }
//! server.close().await;
//! # Ok(()) }
//! ```
//!
//! # Architecture
//!
//! | module | role |
//! |---|---|
//! | [`discover`] | find the codex binary (explicit, `$CODEX_BIN`, `$PATH`; npm shim → native binary) |
//! | [`AppServer`] (`server`) | spawn + bounded handshake; threads; the connection's one router, which sorts notifications and server→client requests by thread id into each running turn's inbox; per-thread turn locks |
//! | [`Turn`] (`turn`) | one turn's stream: its thread's inbox (notifications + approvals), filtered by turn id, under a watchdog |
//! | [`route`] | which thread and turn a notification or server request belongs to ([`route_of`](route::route_of)), for the router and each turn |
//! | [`decode`] | codex's wire payloads as tolerant serde structs, one module per family (legacy `codex/event/*`: [`map_legacy`](decode::map_legacy); v2 `turn/*`, `item/*`: [`map_v2`](decode::map_v2)), mapped statelessly to [`TurnEvent`]; [`TurnDecoder`](decode::TurnDecoder) reads one family per turn, dedups, tracks open items and ends a turn once |
//! | [`event`] | [`TurnEvent`], [`TurnOutcome`], [`ItemKind`](event::ItemKind) and their JSON shape |
//! | [`approval`] | [`Approval`] (a responder that declines when dropped), [`ApprovalPolicy`] |
//! | [`Sessions`] (`sessions`) | the self-healing layer: one thread per caller key (kept in a [`SessionStore`]), codex restarted on the next call after it dies (backoff, breaker), threads resumed on first use after a restart; [`Health`], [`SessionCounters`], [`SessionEvent`]s |
//! | [`options`] | typed thread/turn options and input |
//! | [`reaper`] | end every process codex left behind (child subreaper) |
//!
//! The life of a turn: [`Thread::start_turn`] takes the thread's lock and
//! registers the thread's inbox with the connection's router, **then** writes
//! `turn/start` — so nothing codex sends for the turn is lost, even before
//! the response. The router is the one subscriber of the connection: it reads
//! each notification's `threadId`/`conversationId` once and hands it, and
//! each approval request, to that thread's inbox, so a turn's queue holds
//! only its own thread's events. A full inbox drops only deltas (with a lag
//! marker); items, errors and terminal events are always queued. The [`Turn`]
//! stream reads the inbox (skipping a previous turn's stragglers by turn id)
//! under an idle/budget watchdog (`watchdog`). Each notification goes through a
//! [`TurnDecoder`](decode::TurnDecoder), which reads one wire family (codex
//! 0.72.0 sends every event twice and every text delta three times), tracks
//! items, and emits exactly one [`TurnEvent::Outcome`]. When the outcome is
//! yielded — completed, interrupted, failed, timed out, or app-server death —
//! the lock and route are released. Dropping an unfinished turn sends
//! `turn/interrupt`.
//!
//! # Failure
//!
//! | what happens | what the caller sees |
//! |---|---|
//! | codex binary missing | [`Error::NotFound`] saying where it looked and how to fix it |
//! | app-server wedged at start-up | [`Error::HandshakeTimeout`] after 30 s (configurable) |
//! | app-server exits during the handshake | [`Error::ServerDied`] with exit status and stderr tail |
//! | app-server dies mid-turn | every open turn ends at once with [`TurnOutcome::ServerDied`]; later calls fail at once ([`AppServer`]) or restart codex ([`Sessions`]) |
//! | [`Sessions`]: codex died | the next call restarts it (one restart at a time; first immediate, then 250 ms … 30 s backoff with jitter); each key's thread is resumed on first use ([`SessionEvent::Resumed`]); turns open at the death are never re-run |
//! | [`Sessions`]: `turn/start` reached an already-dead codex, no event of the turn seen | sent once more to the restarted codex ([`SessionEvent::TurnRetried`]) |
//! | [`Sessions`]: codex fails to start 5 times in 60 s | breaker open: [`Error::Unavailable`] at once, naming the last cause and the next try |
//! | [`Sessions`]: thread held by another process (newer codex's writer lock) | old codex made sure gone, resume retried once, then `thread/fork` ([`SessionEvent::Forked`]) |
//! | [`Sessions`]: thread unknown to codex (no turn of it completed) | a new thread ([`SessionEvent::Replaced`], with codex's reason) |
//! | codex overloaded (`-32001`) | [`Error::Overloaded`]; [`Sessions`] retries with backoff, 5 times by default |
//! | a turn's caller does not read its stream | only deltas are dropped past 8192 queued, with a [`TurnEvent::Error`] saying how many; never the outcome, never another thread's events |
//! | no event for 90 s / turn over 600 s | [`TurnOutcome::TimedOut`]; `turn/interrupt` sent; thread freed |
//! | model error | [`TurnEvent::Error`], then [`TurnOutcome::Failed`] with `codex_error_info` |
//! | approval not answered | a dropped [`Approval`] declines; never a JSON-RPC error (codex 0.72.0 hangs on one) |
//!
//! # `--json` output of `codex-turn`
//!
//! One JSON object per line: each [`TurnEvent`] with a snake_case `"type"`
//! (`turn_started`, `agent_message_delta`, `agent_message`,
//! `reasoning_delta`, `reasoning`, `command_started`, `command_output_delta`,
//! `command_finished`, `file_change_started`, `file_change_output_delta`,
//! `file_change_finished`, `mcp_tool_call_started`, `mcp_tool_call_finished`,
//! `web_search`, `plan_updated`, `diff_updated`, `token_usage`,
//! `approval_requested`, `retrying`, `error`, `warning`, `item_abandoned`,
//! `other`) and its fields in snake_case, then one last line
//! `{"type":"outcome","status":...,"thread_id":...}` (`codex-turn --resume
//! THREAD_ID` continues that thread) where `status` is `completed`
//! (`last_agent_message`), `interrupted`, `failed` (`message`,
//! `codex_error_info`), `timed_out` (`limit`, `after_secs`, `message`) or
//! `server_died` (`message`):
//!
//! ```
//! use codex_adapter::{TurnEvent, TurnOutcome};
//! let delta = TurnEvent::AgentMessageDelta { item_id: "msg_1".into(), delta: "Hi".into() };
//! assert_eq!(
//!     serde_json::to_string(&delta).unwrap(),
//!     r#"{"type":"agent_message_delta","item_id":"msg_1","delta":"Hi"}"#
//! );
//! let end = TurnEvent::Outcome(TurnOutcome::Completed {
//!     turn_id: "0".into(),
//!     last_agent_message: Some("Hi".into()),
//! });
//! assert_eq!(
//!     serde_json::to_string(&end).unwrap(),
//!     r#"{"type":"outcome","status":"completed","turn_id":"0","last_agent_message":"Hi"}"#
//! );
//! ```
//!
//! Unix only (Linux and macOS), like the transport it stands on.

#[cfg(not(unix))]
compile_error!("codex-adapter supports Unix only (Linux, macOS): it drives its child process through Unix pipes, process groups and signals.");

pub mod approval;
pub mod decode;
pub mod discover;
pub mod event;
pub mod options;
pub mod reaper;
pub mod route;

mod error;
mod server;
mod sessions;
mod turn;
mod watchdog;

/// The attribute that implements [`SessionStore`] (an async trait), re-exported
/// so a store needs no dependency of its own: `#[codex_adapter::async_trait]`.
pub use async_trait::async_trait;

pub use approval::{Approval, ApprovalDecision, ApprovalKind, ApprovalPolicy};
pub use error::Error;
pub use event::{TurnEvent, TurnOutcome};
pub use options::{
    AskForApproval, InputItem, SandboxMode, ThreadOptions, TurnInput, TurnLimits, TurnOptions,
};
pub use server::{AppServer, AppServerBuilder, Thread};
pub use sessions::{
    Health, MemoryStore, RestartPolicy, SessionCounters, SessionEvent, SessionRecord, SessionStore,
    Sessions, SessionsBuilder, StoreError,
};
pub use turn::{Interrupter, Turn, TurnSummary};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
