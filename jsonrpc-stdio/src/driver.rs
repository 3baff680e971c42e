//! The two tasks behind a connection: the writer, and the reader, which also
//! watches the child process and decides the cause of death.
//!
//! The reader is the only place that reads frames, so messages are handled in
//! wire order: a notification is in its subscribers' queues before the
//! response that followed it on the wire resolves its caller.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tokio_util::codec::Decoder;

use crate::connection::{Answer, Connection};
use crate::error::CloseReason;
use crate::framing::{BadFrame, Frame, FrameCodec};
use crate::lock;
use crate::message::{
    encode_response, read_object, ErrorCode, ErrorObject, Incoming, Message, Notification,
    ShapeError,
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

/// A sign of death the reader watches for beside the output.
enum Sign {
    Exited(Exit),
    /// The grace period after the exit passed, and stdout is still open.
    DrainOver,
    WriteFailed(io::Error),
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
    let mut codec = FrameCodec::new(config.framing, config.max_frame_length);
    let mut reader = std::pin::pin!(reader);
    let mut buf = BytesMut::new();
    let mut since_yield = 0;
    let grace = config.exit_grace;
    let mut exit: Option<Exit> = None;
    let end = {
        // The signs of death, each polled only when it has woken: polled
        // beside the read on every wake-up, the exit watch, the write
        // failure and the shutdown registered their wakers anew each time
        // (~450 instructions a round trip at one in flight). Made once, not
        // per turn of the loop.
        let mut signs: FuturesUnordered<Pin<Box<dyn Future<Output = Sign> + Send + '_>>> =
            FuturesUnordered::new();
        if process.is_some() {
            signs.push(Box::pin(async {
                Sign::Exited(wait_exit(&mut process).await)
            }));
        }
        // The pipe, and with it the sender, is dropped as the connection
        // dies, maybe before the reader sees the death: a sender gone
        // unsent says nothing, and must not end the loop.
        signs.push(Box::pin(async move {
            match write_failed.await {
                Ok(e) => Sign::WriteFailed(e),
                Err(_) => std::future::pending().await,
            }
        }));
        signs.push(Box::pin(async {
            connection.shutdown.cancelled().await;
            Sign::Shutdown
        }));
        loop {
            // Every frame already read, in one go: one wake-up and one pass
            // of the `select!` below per read, not per frame.
            while let Some(frame) = decode(&mut codec, &mut buf) {
                handle_frame(&connection, frame);
                // A long burst yields now and then, so that the callers and
                // subscribers it woke run meanwhile. Otherwise a subscriber
                // waiting in this worker's (unstealable) LIFO slot waits out
                // the whole burst, and lags.
                since_yield += 1;
                if since_yield == FRAMES_PER_YIELD {
                    since_yield = 0;
                    tokio::task::yield_now().await;
                }
            }
            // Room for a whole read: `reserve` copies at most the partial
            // frame at the end, into a new buffer if frames handed out still
            // share this one.
            if buf.capacity() - buf.len() < READ_CHUNK / 2 {
                buf.reserve(READ_CHUNK);
            }
            tokio::select! {
                // Frames first: whatever the server wrote before dying is
                // delivered before its death is declared.
                biased;
                read = reader.read_buf(&mut buf) => match read {
                    Ok(0) => {
                        // The end: what is left is the last frames.
                        while let Some(frame) = decode_eof(&mut codec, &mut buf) {
                            handle_frame(&connection, frame);
                        }
                        break End::Eof;
                    }
                    Ok(_) => {}
                    Err(e) => break End::ReadFailed(e),
                },
                Some(sign) = signs.next() => match sign {
                    Sign::Exited(status) => {
                        exit = Some(status);
                        // A grandchild may hold stdout open: read on only
                        // for the grace period. (A connection without a
                        // process never touches the timer.)
                        let drained = Instant::now() + grace;
                        signs.push(Box::pin(async move {
                            sleep_until(drained).await;
                            Sign::DrainOver
                        }));
                    }
                    Sign::DrainOver => break End::ExitedOutputOpen,
                    Sign::WriteFailed(e) => break End::WriteFailed(e),
                    Sign::Shutdown => break End::Shutdown,
                },
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
        let mut discard = [0; 8192];
        loop {
            tokio::select! {
                _ = wait_exit(&mut process) => break,
                read = reader.read(&mut discard), if output_open => {
                    output_open = matches!(read, Ok(n) if n > 0);
                }
            }
        }
    }
}

/// How much room the reader leaves for each `read`: a burst of small
/// messages (responses at 64 in flight, notifications) arrives in a few
/// reads, where `FramedRead`'s 8 KiB buffer, which it only ensures has room
/// for one more byte, often took a read for a few hundred.
const READ_CHUNK: usize = 32 * 1024;

/// Frames handled between two yields of the reader. Yielding lets the
/// callers those frames answered send their next requests before the rest
/// of the burst is routed, so the server works on them meanwhile instead of
/// waiting for the whole burst: at 64 in flight, 100 B, raw, requests/s
/// went from 0.42x the floor's (yielding every 128 frames) to 0.57-0.66x.
/// Fewer frames between yields cost more writes and wake-ups than they
/// overlap (every 16: ~0.56x).
const FRAMES_PER_YIELD: u32 = 32;

/// The next frame in `buf`. The codecs never fail: a bad frame is a frame.
fn decode(codec: &mut FrameCodec, buf: &mut BytesMut) -> Option<Frame> {
    codec.decode(buf).unwrap_or(None)
}

/// The next frame in `buf`, the last of the stream.
fn decode_eof(codec: &mut FrameCodec, buf: &mut BytesMut) -> Option<Frame> {
    codec.decode_eof(buf).unwrap_or(None)
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
    // The one UTF-8 check of a frame (the codecs make none): the parser
    // reads the `str`, and checks neither a key nor a result again.
    let Ok(text) = std::str::from_utf8(&bytes) else {
        stats.bad_frames.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(bad = %BadFrame::InvalidUtf8, "skipping bad frame from server");
        return;
    };
    tracing::trace!(frame = text, "frame from server");
    match text.trim_ascii_start().as_bytes().first() {
        // One message (the common case), read in one pass without building
        // a `Value`: a response's result and a notification's params stay
        // bytes until their receiver decodes them.
        Some(b'{') => match read_object(text, Some(&bytes)) {
            Ok(incoming) => route(connection, incoming),
            Err(e) => unparsable(connection, &bytes, &e),
        },
        // A batch: each element read as a frame of its own (its bytes
        // shared with this one), so it is handled as it would be alone.
        Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(elements) if elements.is_empty() => {
                unparsable(connection, &bytes, &ShapeError::EmptyBatch)
            }
            Ok(elements) => {
                for element in elements {
                    let element = element.get();
                    let part = bytes.slice_ref(element.as_bytes());
                    if !element.starts_with('{') {
                        let e = ShapeError::NoShape("not an object");
                        unparsable(connection, &part, &e);
                        continue;
                    }
                    match read_object(element, Some(&part)) {
                        Ok(incoming) => route(connection, incoming),
                        Err(e) => unparsable(connection, &part, &e),
                    }
                }
            }
            Err(e) => unparsable(connection, &bytes, &e),
        },
        // Not an object: `parse_one` says what is wrong with it.
        _ => {
            if let Err(e) = Message::parse_one(&bytes) {
                unparsable(connection, &bytes, &e);
            }
        }
    }
}

fn unparsable(connection: &Connection, bytes: &[u8], error: &dyn std::fmt::Display) {
    connection.stats.unparsable.fetch_add(1, Ordering::Relaxed);
    let preview = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    tracing::warn!(%error, %preview, "skipping unparsable message from server");
}

fn route(connection: &Arc<Connection>, message: Incoming) {
    let stats = &connection.stats;
    match message {
        Incoming::Response {
            id: Some(id),
            result,
        } => {
            if !connection.resolve(&id, Answer::Response(result)) {
                tracing::debug!(%id, "response to no pending request (late, duplicate or unknown id)");
            }
        }
        Incoming::Response { id: None, result } => {
            stats.unknown_responses.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                ?result,
                "server sent an error it could not attribute to a request"
            );
        }
        Incoming::Notification(n) => deliver(connection, n),
        Incoming::Request(request) => {
            let incoming = IncomingRequest::new(request, connection.clone());
            let refused = lock(&connection.routes).dispatch(incoming);
            if let Err(incoming) = refused {
                refuse(connection, incoming);
            }
        }
    }
}

fn deliver(connection: &Connection, n: Notification) {
    let stats = &connection.stats;
    let delivery = lock(&connection.routes).deliver(n);
    if delivery.matched == 0 {
        stats.unrouted_notifications.fetch_add(1, Ordering::Relaxed);
    } else if delivery.dropped > 0 {
        stats
            .lagged_notifications
            .fetch_add(delivery.dropped, Ordering::Relaxed);
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
        &encode_response(&request.id, &Err(error)),
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
