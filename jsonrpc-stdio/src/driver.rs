//! The two tasks behind a connection: the writer, and the reader, which also
//! watches the child process and decides the cause of death.
//!
//! The reader is the only place that reads frames, so messages are handled in
//! wire order: a notification is in its subscribers' queues before the
//! response that followed it on the wire resolves its caller.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::io::AsyncRead;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tokio_util::codec::FramedRead;

use crate::connection::{Answer, Connection};
use crate::error::CloseReason;
use crate::framing::{BadFrame, Frame, FrameCodec};
use crate::lock;
use crate::message::{
    encode_response, parse_response, ErrorCode, ErrorObject, Message, RawResult, Response,
};
use crate::process::{Exit, ExitWatch};
use crate::routes::IncomingRequest;
use crate::stderr::StderrTail;

/// What the reader watches of the child process (its owner is
/// [`ServerProcess`](crate::process::ServerProcess), held by the
/// [`Connection`]; the reader never waits on, signals or reaps the child).
pub(crate) struct Process {
    pub(crate) exit: ExitWatch,
    pub(crate) stderr_task: JoinHandle<()>,
    pub(crate) tail: Arc<Mutex<StderrTail>>,
}

/// Writes queued messages, flushing once per burst rather than per message.
/// Stops when the connection dies, dropping the pipe (which closes the
/// server's stdin, even mid-write to a server that stopped reading), or on
/// the first write error (reported to the reader, which decides the cause
/// of death). A caller may write instead when the pipe is free; see
/// [`Outbox::write_now`](crate::outbox::Outbox::write_now).
pub(crate) async fn write(connection: Arc<Connection>) {
    tokio::select! {
        _ = connection.outbox.write_all() => {}
        _ = connection.shutdown.cancelled() => {}
    }
    connection.outbox.detach();
}

/// How the read loop ended.
enum End {
    Eof,
    ReadFailed(io::Error),
    WriteFailed(io::Error),
    /// The process exited and stdout did not reach EOF within the grace
    /// period (a grandchild holds it open).
    ExitedOutputOpen,
    Shutdown,
}

/// Reads and routes every frame; watches the child's exit; on the first sign
/// of death decides the cause (preferring the exit status, which says most)
/// and calls [`Connection::die`]. Reaping is the process owner's business.
pub(crate) async fn read<R: AsyncRead>(
    connection: Arc<Connection>,
    reader: R,
    mut process: Option<Process>,
    write_failed: oneshot::Receiver<io::Error>,
) {
    let config = &connection.config;
    let codec = FrameCodec::new(config.framing, config.max_frame_length);
    let mut frames = std::pin::pin!(FramedRead::new(reader, codec));
    // The pipe, and with it the sender, is dropped as the connection dies,
    // maybe before the reader sees the death: a sender gone unsent says
    // nothing, and must not end the loop, nor be polled again once done.
    let mut write_failed = std::pin::pin!(async move {
        match write_failed.await {
            Ok(e) => e,
            Err(_) => std::future::pending().await,
        }
    });
    let grace = config.exit_grace;
    let mut exit: Option<Exit> = None;
    let mut drain_deadline: Option<Instant> = None;
    let has_process = process.is_some();
    let end = {
        // Made once, not per turn of the loop: a fresh exit watch and
        // cancellation future on every frame registered their wakers anew
        // (~700 instructions a round trip at one in flight).
        let mut exited = std::pin::pin!(wait_exit(&mut process));
        let mut shutdown = std::pin::pin!(connection.shutdown.cancelled());
        loop {
            tokio::select! {
                // Frames first: whatever the server wrote before dying is
                // delivered before its death is declared.
                biased;
                frame = frames.next() => match frame {
                    Some(Ok(frame)) => {
                        handle_frame(&connection, frame);
                        // A frame spends a unit of tokio's cooperative budget,
                        // so a long burst yields now and then and the callers
                        // and subscribers it woke run meanwhile. Otherwise a
                        // subscriber waiting in this worker's (unstealable)
                        // LIFO slot waits out the whole burst, and lags.
                        tokio::task::consume_budget().await;
                    }
                    Some(Err(e)) => break End::ReadFailed(e),
                    None => break End::Eof,
                },
                status = &mut exited, if exit.is_none() && has_process => {
                    exit = Some(status);
                    drain_deadline = Some(Instant::now() + grace);
                }
                // Built only when polled: a connection without a process never
                // touches the timer.
                _ = async { sleep_until(drain_deadline.unwrap_or_else(Instant::now)).await },
                    if drain_deadline.is_some() => {
                    break End::ExitedOutputOpen;
                }
                e = &mut write_failed => break End::WriteFailed(e),
                _ = &mut shutdown => break End::Shutdown,
            }
        }
    };

    if !matches!(end, End::Shutdown) {
        if exit.is_none() && process.is_some() {
            if let Ok(e) = tokio::time::timeout(grace, wait_exit(&mut process)).await {
                exit = Some(e);
            }
        }
        let tail = match &mut process {
            Some(p) => {
                // Let stderr reach its end so the report holds the last words.
                let _ = tokio::time::timeout(grace, &mut p.stderr_task).await;
                lock(&p.tail).snapshot()
            }
            None => String::new(),
        };
        let cause = match (exit.clone(), end) {
            (Some(Ok(status)), _) => CloseReason::Exited {
                status,
                stderr_tail: tail,
            },
            (Some(Err(error)), _) => CloseReason::WaitFailed {
                error,
                stderr_tail: tail,
            },
            (None, End::ReadFailed(error)) => CloseReason::ReadFailed {
                error,
                stderr_tail: tail,
            },
            (None, End::WriteFailed(error)) => CloseReason::WriteFailed {
                error,
                stderr_tail: tail,
            },
            (None, _) => CloseReason::OutputClosed { stderr_tail: tail },
        };
        connection.die(cause);
    }

    // Dead. Keep stdout drained until the process is gone, so it never
    // blocks writing to it while it is being closed.
    if exit.is_none() && process.is_some() {
        let mut output_open = true;
        loop {
            tokio::select! {
                _ = wait_exit(&mut process) => break,
                frame = frames.next(), if output_open => {
                    output_open = matches!(frame, Some(Ok(_)));
                }
            }
        }
    }
}

async fn wait_exit(process: &mut Option<Process>) -> Exit {
    match process {
        Some(p) => p.exit.exited().await,
        None => std::future::pending().await,
    }
}

/// Routes one frame. Never blocks: every destination is a non-waiting queue.
fn handle_frame(connection: &Arc<Connection>, frame: Frame) {
    let stats = &connection.stats;
    stats.frames.fetch_add(1, Ordering::Relaxed);
    let bytes = match frame {
        Frame::Message(bytes) => bytes,
        Frame::Bad(BadFrame::ResponseTooLong { id, limit }) => {
            stats.bad_frames.fetch_add(1, Ordering::Relaxed);
            let found = connection.resolve(&id, Answer::TooLarge { limit });
            tracing::warn!(%id, limit, found, "response too large; failing its caller");
            return;
        }
        Frame::Bad(bad) => {
            stats.bad_frames.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%bad, "skipping bad frame from server");
            return;
        }
    };
    tracing::trace!(frame = %String::from_utf8_lossy(&bytes), "frame from server");
    // The common case, a response, without building a `Value`: its result
    // stays in the frame's bytes until its caller decodes it.
    if let Some((id, result)) = parse_response(&bytes) {
        if !connection.resolve(&id, Answer::Response(result)) {
            tracing::debug!(%id, "response to no pending request (late, duplicate or unknown id)");
        }
        return;
    }
    // One message, without the batch's `Vec`.
    if bytes.trim_ascii_start().first() != Some(&b'[') {
        match Message::parse_one(&bytes) {
            Ok(message) => route(connection, message),
            Err(e) => unparsable(connection, &bytes, &e),
        }
        return;
    }
    let messages = match Message::parse(&bytes) {
        Ok(messages) => messages,
        Err(e) => {
            unparsable(connection, &bytes, &e);
            return;
        }
    };
    for message in messages {
        match message {
            Ok(message) => route(connection, message),
            Err(e) => unparsable(connection, &bytes, &e),
        }
    }
}

fn unparsable(connection: &Connection, bytes: &[u8], error: &dyn std::fmt::Display) {
    connection.stats.unparsable.fetch_add(1, Ordering::Relaxed);
    let preview = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    tracing::warn!(%error, %preview, "skipping unparsable message from server");
}

fn route(connection: &Arc<Connection>, message: Message) {
    let stats = &connection.stats;
    match message {
        Message::Response(Response {
            id: Some(id),
            result,
        }) => {
            let result = result.map(|value| RawResult::from_value(&value));
            if !connection.resolve(&id, Answer::Response(result)) {
                tracing::debug!(%id, "response to no pending request (late, duplicate or unknown id)");
            }
        }
        Message::Response(Response { id: None, result }) => {
            stats.unknown_responses.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                ?result,
                "server sent an error it could not attribute to a request"
            );
        }
        Message::Notification(n) => {
            let delivery = lock(&connection.routes).deliver(n);
            if delivery.matched == 0 {
                stats.unrouted_notifications.fetch_add(1, Ordering::Relaxed);
            } else if delivery.dropped > 0 {
                stats
                    .lagged_notifications
                    .fetch_add(delivery.dropped, Ordering::Relaxed);
            }
        }
        Message::Request(request) => {
            let incoming = IncomingRequest::new(request, connection.clone());
            let refused = lock(&connection.routes).dispatch(incoming);
            if let Err(incoming) = refused {
                refuse(connection, incoming);
            }
        }
    }
}

/// Answers a request no handler took, so the server never waits for it.
fn refuse(connection: &Connection, incoming: IncomingRequest) {
    let request = incoming.into_request();
    let handled = lock(&connection.routes)
        .handlers
        .iter()
        .any(|(f, _)| f.matches(&request.method));
    let error = if handled {
        ErrorObject::new(
            ErrorCode::INTERNAL_ERROR,
            format!("client is overloaded; `{}` refused", request.method),
        )
    } else {
        ErrorObject::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("client does not handle `{}`", request.method),
        )
    };
    tracing::debug!(method = %request.method, id = %request.id, %error, "refusing server request");
    connection.send_reply(
        "a refusal of a server request",
        encode_response(&request.id, &Err(error)),
    );
}

/// Times out requests: one task and one timer per connection, instead of a
/// timer per request (registering and clearing one cost more than the rest
/// of a request's bookkeeping). It sleeps until the earliest deadline, or
/// until a request brings an earlier one, and answers every request
/// overdue; see [`Connection::expire`].
pub(crate) async fn sweep_deadlines(connection: Arc<Connection>) {
    let mut next: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = connection.shutdown.cancelled() => return,
            // A deadline added since the last look left a permit: not lost.
            _ = connection.deadline_added() => {}
            _ = async { sleep_until(next.unwrap_or_else(Instant::now)).await }, if next.is_some() => {}
        }
        next = connection.expire(Instant::now());
    }
}
