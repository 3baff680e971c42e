//! A JSON-RPC 2.0 client for servers that speak over a child process's stdio,
//! built so that no caller can wait forever on a dead peer.
//!
//! ```no_run
//! # async fn demo() -> Result<(), jsonrpc_stdio::Error> {
//! use futures::StreamExt;
//! use jsonrpc_stdio::{Client, Filter, ServerCommand};
//! use serde_json::json;
//!
//! let client = Client::spawn(ServerCommand::new("codex").arg("app-server"))?;
//! let mut events = client.subscribe(Filter::prefix("turn/"));
//! let result = client.request("initialize", json!({"clientInfo": {"name": "demo", "version": "1"}})).await?;
//! while let Some(event) = events.next().await {
//!     println!("{}", event?.method);
//! }
//! # Ok(()) }
//! ```
//!
//! # Architecture
//!
//! | module | role |
//! |---|---|
//! | [`message`] | ids, error codes, and classifying a JSON value as request, notification or response |
//! | [`framing`] | cutting frames out of the byte stream: newline-delimited JSON, or LSP-style `Content-Length` headers; bad frames are items, not errors |
//! | [`Client`] (`client`) | the clonable handle; the pending table and the first cause of death live in one lock |
//! | `driver` | the reader task (route frames, watch the child, decide the cause of death) and the writer task |
//! | `routes` | subscriber queues and server→client request queues, bounded, never blocking the reader |
//! | [`ServerCommand`] (`process`) | what to run; process-group and process-tree signals |
//! | `stderr` | drains the child's stderr and keeps a bounded tail for death reports |
//! | [`watchdog`] | an idle-and-budget watchdog for any stream |
//! | [`Request`], [`Notification`] (`typed`) | typed methods in the spirit of `lsp-types` |
//!
//! The life of a message: the reader task pulls a [`framing::Frame`] from the
//! child's stdout, [`Message::parse`] classifies it by its fields, and the
//! reader routes it — a response to the caller waiting on that id, a
//! notification into each matching subscriber's queue, a server request to the
//! first matching request stream (or an error reply when none matches). The
//! reader never waits on a consumer, so one slow subscriber cannot stall the
//! rest. Outgoing messages are serialized by the caller and queued to the writer
//! task, which flushes once per burst.
//!
//! # Liveness
//!
//! | event | what callers see |
//! |---|---|
//! | stdout EOF, read error, write error, child exit | the connection dies; the first cause is kept |
//! | death | every pending request fails at once with [`Error::Closed`] and the cause |
//! | a request after (or racing) death | fails at once: death and registration share one lock |
//! | responses read before EOF | still resolve their callers, in wire order |
//! | no response in time | [`Error::Timeout`] naming the method and duration; the entry is removed |
//! | a request future dropped | its entry is removed; the [`CancelNotification`] is sent if configured |
//!
//! The child's exit is watched on its own, not inferred from EOF: a
//! grandchild may hold stdout open. When stdout ends the reader waits a short
//! grace ([`Builder::exit_grace`], 100 ms) for the exit status, so the error
//! says "server exited with status 3; last stderr: ..." rather than a bare
//! "closed".
//!
//! # Bad input from the server
//!
//! None of these ends the connection, panics, or grows memory without bound;
//! each is logged (`tracing`, warn or debug) and counted in [`Client::stats`].
//!
//! | input | behaviour |
//! |---|---|
//! | blank line | skipped silently |
//! | line longer than [`Builder::max_frame_length`] | discarded as it streams in (never buffered whole); `bad_frames` |
//! | invalid UTF-8 | line discarded; `bad_frames` |
//! | malformed JSON, or JSON of no JSON-RPC shape | skipped; `unparsable` |
//! | a batch array | each element handled on its own; bad elements skipped |
//! | missing `"jsonrpc"` member | accepted (codex omits it) |
//! | response to an unknown, timed-out or already answered id | ignored; `unknown_responses` |
//! | error response with `"id": null` | logged; `unknown_responses` |
//! | error response | the caller gets [`Error::Rpc`] with code, message, data |
//! | server request no stream handles | answered `-32601 method not found` |
//! | server request whose stream is full | answered `-32603` (client overloaded) |
//! | server request dropped unanswered | answered `-32603` |
//! | notification flood to a slow subscriber | oldest kept, newest dropped, [`Error::Lagged`] in their place |
//! | server writes nothing | each request ends at its timeout |
//! | server exits, before or while answering | pending requests fail with the exit status and stderr tail |
//! | server closes stdout but keeps running | dead after the exit grace: `OutputClosed` |
//! | server ignores stdin EOF and SIGTERM | [`Client::close`] escalates to SIGKILL of its group and descendants |
//! | server floods stderr | drained continuously; lines capped; tail bounded (64 KiB) |
//!
//! # Processes
//!
//! The child leads its own process group. [`Client::close`] closes stdin,
//! waits, sends SIGTERM to the group, waits, then SIGKILLs the group and every
//! descendant, and always reaps. Dropping the last [`Client`] without `close`
//! SIGKILLs at once, synchronously (no task is spawned in `Drop`).

pub mod framing;
pub mod message;
pub mod process;
pub mod watchdog;

mod client;
mod driver;
mod error;
mod outbox;
mod routes;
mod stderr;
mod typed;

pub use client::{
    Builder, Call, CancelNotification, Client, ConnectionStats, TypedCall, DEFAULT_MAX_QUEUED_BYTES,
};
pub use error::{CloseReason, Error};
pub use framing::Framing;
pub use message::{ErrorCode, ErrorObject, Message, RequestId};
pub use process::{descendants, ServerCommand};
pub use routes::{Filter, IncomingRequest, IncomingRequests, Subscription};
pub use typed::{Notification, Request};

/// Locks `mutex`, ignoring poison. A panic elsewhere while it was held (a
/// user's waker or `tracing` subscriber can run under these locks) leaves
/// nothing half-done in the state they guard, and `Drop` impls take them:
/// they must not panic for someone else's panic.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
