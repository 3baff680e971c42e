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
//!     println!("{}", event?.method());
//! }
//! # Ok(()) }
//! ```
//!
//! Unix only (Linux and macOS): the transport owns its child through Unix
//! pipes, process groups and signals.
//!
//! # Architecture
//!
//! | module | role |
//! |---|---|
//! | [`Client`] (`client`) | the clonable handle users hold; thin methods over the connection; the last clone dropped kills the server, never blocking |
//! | [`Builder`] (`builder`) | settings; [`spawn`](Builder::spawn) or [`connect`](Builder::connect) builds the connection and starts its two tasks |
//! | `connection` | the state every task shares and the only verbs that change it — register, resolve, expire, abandon, die, send; the pending table (each entry holds its answer and its caller's waker: a request needs no channel), the deadlines and the first cause of death live under one lock |
//! | [`Call`], [`RawCall`], [`TypedCall`], [`ResponseFuture`] (`call`) | what callers build, and the unboxed future they await: serialize, register and queue (waiting for room only when the queue is full), wait; dropped, it abandons its request and sends the [`CancelNotification`] |
//! | `driver` | the reader task (read the child's stdout a large chunk at a time, route the frames decoded from it, letting the callers they answered run every 32 frames; watch the child's exit; decide the cause of death), the writer task, and the deadline sweeper (one timer per connection, not per request) |
//! | `outbox` | the outgoing queue, bounded in bytes: requests wait for room, notifications are refused; it owns the pipe, which the writer task drains, or a caller whose request is alone in flight, when the pipe is free |
//! | `routes` | subscriber queues and server→client request queues, bounded, never blocking the reader; a notification for several subscribers is cloned, sharing its bytes; one queued behind a backlog of 256 is copied out of the read buffer it shares |
//! | [`ConnectionStats`] (`stats`) | counters of what the reader met, and what is in flight |
//! | [`message`] | ids, error codes, and classifying a frame as request, notification or response in one pass over its text, by borrowed members: a response's result and a notification's params stay bytes |
//! | [`framing`] | cutting frames out of the byte stream: newline-delimited JSON, or LSP-style `Content-Length` headers; bad frames are items, not errors; a frame too long to read still names the response it is; no UTF-8 check (the reader checks each frame once) |
//! | [`process`] | what to run ([`ServerCommand`]); `process::owner`, the one owner of a started server: spawn, watch the exit, signals, the `/proc` walks, reaping; helpers for a child subreaper |
//! | `stderr` | drains the child's stderr and keeps a bounded tail for death reports |
//! | [`Request`], [`Notification`] (`typed`) | typed methods in the spirit of `lsp-types` |
//!
//! The life of a message: the reader task cuts [`framing::Frame`]s out of
//! what it read of the child's stdout, checks each as UTF-8 once, classifies
//! it by its fields (as [`Message::parse`] does, in one pass, building no
//! `Value`), and routes it — a response to the caller waiting on that id, a
//! notification into each matching subscriber's queue, a server request to the
//! first matching request stream (or an error reply when none matches). The
//! reader never waits on a consumer, so one slow subscriber cannot stall the
//! rest. A response's result reaches its caller as bytes (a
//! [`RawResult`]): the caller decodes it, into its own type with
//! [`Client::call`], a `Value` with [`Client::request`], or not at all with
//! [`Client::request_raw`]; that decoding is also what checks the result is
//! JSON, so a large result is read once, by its caller. A notification's params, likewise, stay bytes of
//! the frame (shared by the subscribers it goes to) until the subscriber
//! reads them ([`message::Notification::params`]). Outgoing messages are
//! serialized by the caller and copied, framed, into the queue's one buffer;
//! the writer task writes them, a burst at a time, except that a request
//! alone in flight is written by its caller when the pipe is free (saving
//! the writer's wake-up, most of a sequential round trip on a multi-thread
//! runtime). A write error on either path ends the connection with its
//! cause, as any other death.
//!
//! # Liveness
//!
//! | event | what callers see |
//! |---|---|
//! | stdout EOF, read error, write error, child exit | the connection dies; the first cause is kept |
//! | death | every pending request fails at once with [`Error::Closed`] and the cause |
//! | a request after (or racing) death | fails at once: death and registration share one lock |
//! | responses read before EOF | still resolve their callers, in wire order |
//! | a response longer than [`Builder::max_frame_length`] | its caller fails at once with [`Error::ResponseTooLarge`] (id read from the frame's first or last bytes) |
//! | no response in time | [`Error::Timeout`] naming the method and duration, at the request's own deadline; the entry is removed and the [`CancelNotification`] sent |
//! | the server stops reading its stdin | at most [`Builder::max_queued_bytes`] wait in memory: `request` waits for room (within its timeout), `notify` fails with [`Error::QueueFull`]; nothing is dropped |
//! | a request future dropped | its entry is removed; the [`CancelNotification`] is sent if configured |
//! | waiting for the child fails (someone else reaped it) | [`CloseReason::WaitFailed`]; no exit status is made up |
//!
//! The child's exit is watched on its own, not inferred from EOF: a
//! grandchild may hold stdout open. When stdout ends the reader waits a short
//! grace ([`Builder::exit_grace`], 100 ms) for the exit status, so the error
//! says "server exited with status 3; last stderr: ..." rather than a bare
//! "closed". What is in flight is visible in [`Client::stats`]: requests
//! pending, bytes queued to write.
//!
//! # Bad input from the server
//!
//! None of these ends the connection, panics, or grows memory without bound;
//! each is logged (`tracing`, warn or debug) and counted in [`Client::stats`].
//!
//! | input | behaviour |
//! |---|---|
//! | blank line | skipped silently |
//! | line longer than [`Builder::max_frame_length`] | discarded as it streams in (never buffered whole); `bad_frames`; if its first or last bytes show a response, its caller fails at once ([`Error::ResponseTooLarge`]) |
//! | `Content-Length` body longer than the maximum | the same |
//! | invalid UTF-8 | frame discarded (either framing); `bad_frames` |
//! | malformed JSON, or JSON of no JSON-RPC shape | skipped; `unparsable` |
//! | a malformed response that begins `{"jsonrpc":"2.0","id":N,"result":` (e.g. truncated, or with an `error` too) | its caller fails at once with [`Error::Decode`] saying what is wrong; `unparsable` (the reader leaves a result to be checked by the decoding its caller does anyway, and the frame is read whole when that fails: members after the result are fine) |
//! | a notification whose params are JSON no `Value` holds (nested deeper than 128, a number beyond `f64`) | delivered: its params are kept as text; reading them as a `Value` fails |
//! | a batch array | each element handled as it would be alone (read as a frame of its own, its bytes shared with the batch); bad elements skipped |
//! | missing `"jsonrpc"` member | accepted (codex omits it) |
//! | response to an unknown, timed-out or already answered id | ignored; `unknown_responses` |
//! | error response with `"id": null` | logged; `unknown_responses` |
//! | error response | the caller gets [`Error::Rpc`] with code, message, data |
//! | server request no stream handles | answered `-32601 method not found` |
//! | server request whose stream is full | answered `-32603` (client overloaded) |
//! | server request dropped unanswered | answered `-32603` |
//! | notification flood to a slow subscriber | oldest kept, newest dropped, [`Error::Lagged`] in their place: the subscriber learns of the loss when it reaches that place, after the backlog it kept |
//! | server writes nothing | each request ends at its timeout |
//! | server exits, before or while answering | pending requests fail with the exit status and stderr tail |
//! | server stops reading its stdin | outgoing memory bounded (see Liveness); replies the client writes on its own that do not fit are logged and counted (`unsent_replies`) |
//! | server closes stdout but keeps running | dead after the exit grace: `OutputClosed` |
//! | server ignores stdin EOF and SIGTERM | [`Client::close`] escalates to SIGKILL of its group and descendants |
//! | server double-forks a daemon that keeps its stdio | found by who holds the server's ends of our pipes (`/proc/*/fd`) and SIGKILLed at close or drop |
//! | server floods stderr | drained continuously; lines capped; tail bounded (64 KiB) |
//!
//! # Processes
//!
//! [`Builder::spawn`] needs a tokio runtime with IO and timers; without one
//! it returns [`Error::Runtime`] and starts nothing. A spawn error names its
//! culprit: the working directory, the program and the `PATH` searched, or
//! the permission missing.
//!
//! The child leads its own process group, and one owner
//! (`process::owner`) alone starts it, waits for it, signals it and reaps
//! it; the reader only watches for the exit the owner publishes.
//! [`Client::close`] closes stdin, waits, sends SIGTERM to the group, waits,
//! then SIGKILLs the group, every descendant and every process still holding
//! the server's ends of its stdio pipes (a double-forked daemon), and reaps.
//! Dropping the last [`Client`] without `close` does the same SIGKILLs at
//! once, on a thread of its own: `Drop` never waits and never panics.
//!
//! The server is reaped only after that final kill: until then an exited
//! server stays a zombie, so its pid — its process group id — cannot be
//! reused, and no signal ever reaches a stranger's group. The exit itself is
//! learned without reaping (`waitid(WNOWAIT)`) on a small thread per server;
//! `/proc` is only read off the runtime's worker threads.

#[cfg(not(unix))]
compile_error!("jsonrpc-stdio supports Unix only (Linux, macOS): it drives its child process through Unix pipes, process groups and signals.");

pub mod framing;
pub mod message;
pub mod process;

mod builder;
mod call;
mod client;
mod connection;
mod driver;
mod error;
mod outbox;
mod routes;
mod stats;
mod stderr;
mod typed;
mod write_json;

pub use builder::{Builder, DEFAULT_MAX_QUEUED_BYTES};
pub use call::{Call, CancelNotification, RawCall, ResponseFuture, TypedCall};
pub use client::Client;
pub use error::{CloseReason, Error};
pub use framing::Framing;
pub use message::{ErrorCode, ErrorObject, Message, RawResult, RequestId};
pub use process::{descendants, ServerCommand};
pub use routes::{Filter, IncomingRequest, IncomingRequests, Subscription};
pub use stats::ConnectionStats;
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

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
