//! The two tasks behind a connection: the writer, and the reader, which also
//! watches the child process and decides the cause of death.
//!
//! The reader is the only place that reads frames, so messages are handled in
//! wire order: a notification is in its subscribers' queues before the
//! response that followed it on the wire resolves its caller.

use std::io;
use std::process::ExitStatus;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use crate::client::Shared;
use crate::error::CloseReason;
use crate::framing::{Frame, FrameCodec, Framing};
use crate::message::{encode_response, ErrorCode, ErrorObject, Message, Response};
use crate::routes::IncomingRequest;
use crate::stderr::StderrTail;

/// What the writer is asked to do.
pub(crate) enum Outgoing {
    Message(Bytes),
    /// Close the server's stdin (graceful close).
    CloseStdin,
}

/// The child process, owned by the reader task.
pub(crate) struct Process {
    pub(crate) child: tokio::process::Child,
    pub(crate) stderr_task: JoinHandle<()>,
    pub(crate) tail: Arc<Mutex<StderrTail>>,
}

/// Writes queued messages, flushing once per burst rather than per message.
/// Stops on `CloseStdin`, on shutdown, or on the first write error (reported
/// to the reader, which decides the cause of death).
pub(crate) async fn write<W: AsyncWrite>(
    writer: W,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
    framing: Framing,
    shutdown: CancellationToken,
    failed: oneshot::Sender<io::Error>,
) {
    // Outgoing frames are ours and never checked against the read limit.
    let mut sink = std::pin::pin!(FramedWrite::new(
        writer,
        FrameCodec::new(framing, usize::MAX)
    ));
    let result: io::Result<()> = async {
        loop {
            let first = tokio::select! {
                biased;
                next = queue.recv() => next,
                _ = shutdown.cancelled() => None,
            };
            let Some(Outgoing::Message(bytes)) = first else {
                break;
            };
            tracing::trace!(frame = %String::from_utf8_lossy(&bytes), "frame to server");
            sink.feed(bytes).await?;
            while let Ok(next) = queue.try_recv() {
                match next {
                    Outgoing::Message(bytes) => {
                        tracing::trace!(frame = %String::from_utf8_lossy(&bytes), "frame to server");
                        sink.feed(bytes).await?
                    }
                    Outgoing::CloseStdin => {
                        sink.flush().await?;
                        return Ok(());
                    }
                }
            }
            sink.flush().await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            let _ = sink.close().await;
        }
        Err(e) => {
            let _ = failed.send(e);
        }
    }
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

/// Reads and routes every frame; watches the child; on the first sign of
/// death decides the cause (preferring the exit status, which says most) and
/// calls [`Shared::die`]. Then reaps the child and publishes its status.
pub(crate) async fn read<R: AsyncRead>(
    shared: Arc<Shared>,
    reader: R,
    mut process: Option<Process>,
    mut write_failed: oneshot::Receiver<io::Error>,
    exit_tx: watch::Sender<Option<ExitStatus>>,
) {
    let codec = FrameCodec::new(shared.config.framing, shared.config.max_frame_length);
    let mut frames = std::pin::pin!(FramedRead::new(reader, codec));
    let grace = shared.config.exit_grace;
    let mut status: Option<ExitStatus> = None;
    let mut drain_deadline: Option<Instant> = None;
    let end = loop {
        tokio::select! {
            // Frames first: whatever the server wrote before dying is
            // delivered before its death is declared.
            biased;
            frame = frames.next() => match frame {
                Some(Ok(frame)) => {
                    handle_frame(&shared, frame);
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
            exited = wait_child(&mut process), if status.is_none() && process.is_some() => {
                status = Some(exited);
                let _ = exit_tx.send(status);
                drain_deadline = Some(Instant::now() + grace);
            }
            _ = sleep_until(drain_deadline.unwrap_or_else(Instant::now)), if drain_deadline.is_some() => {
                break End::ExitedOutputOpen;
            }
            Ok(e) = &mut write_failed => break End::WriteFailed(e),
            _ = shared.shutdown.cancelled() => break End::Shutdown,
        }
    };

    if !matches!(end, End::Shutdown) {
        if status.is_none() && process.is_some() {
            if let Ok(s) = tokio::time::timeout(grace, wait_child(&mut process)).await {
                status = Some(s);
                let _ = exit_tx.send(status);
            }
        }
        let tail = match &mut process {
            Some(p) => {
                // Let stderr reach its end so the report holds the last words.
                let _ = tokio::time::timeout(grace, &mut p.stderr_task).await;
                p.tail.lock().expect("stderr tail lock").snapshot()
            }
            None => String::new(),
        };
        let cause = match (status, end) {
            (Some(status), _) => CloseReason::Exited {
                status,
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
        shared.die(cause);
    }

    // Dead. Keep stdout drained so the server never blocks writing to it,
    // and reap the process whenever it ends.
    if status.is_none() && process.is_some() {
        let mut output_open = true;
        let reaped = loop {
            tokio::select! {
                s = wait_child(&mut process) => break s,
                frame = frames.next(), if output_open => {
                    output_open = matches!(frame, Some(Ok(_)));
                }
            }
        };
        let _ = exit_tx.send(Some(reaped));
    }
}

async fn wait_child(process: &mut Option<Process>) -> ExitStatus {
    match process {
        Some(p) => match p.child.wait().await {
            Ok(status) => status,
            // `wait` fails only if the child was already reaped elsewhere.
            Err(_) => std::os::unix::process::ExitStatusExt::from_raw(0),
        },
        None => std::future::pending().await,
    }
}

/// Routes one frame. Never blocks: every destination is a non-waiting queue.
fn handle_frame(shared: &Arc<Shared>, frame: Frame) {
    let stats = &shared.stats;
    stats.frames.fetch_add(1, Ordering::Relaxed);
    let bytes = match frame {
        Frame::Message(bytes) => bytes,
        Frame::Bad(bad) => {
            stats.bad_frames.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%bad, "skipping bad frame from server");
            return;
        }
    };
    tracing::trace!(frame = %String::from_utf8_lossy(&bytes), "frame from server");
    // The common case, one message, without the batch's `Vec`.
    if bytes.trim_ascii_start().first() != Some(&b'[') {
        match Message::parse_one(&bytes) {
            Ok(message) => route(shared, message),
            Err(e) => unparsable(shared, &bytes, &e),
        }
        return;
    }
    let messages = match Message::parse(&bytes) {
        Ok(messages) => messages,
        Err(e) => {
            unparsable(shared, &bytes, &e);
            return;
        }
    };
    for message in messages {
        match message {
            Ok(message) => route(shared, message),
            Err(e) => unparsable(shared, &bytes, &e),
        }
    }
}

fn unparsable(shared: &Shared, bytes: &[u8], error: &dyn std::fmt::Display) {
    shared.stats.unparsable.fetch_add(1, Ordering::Relaxed);
    let preview = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    tracing::warn!(%error, %preview, "skipping unparsable message from server");
}

fn route(shared: &Arc<Shared>, message: Message) {
    match message {
        Message::Response(Response {
            id: Some(id),
            result,
        }) => {
            let waiter = shared.state.lock().expect("state lock").pending.remove(&id);
            match waiter {
                Some(tx) => {
                    let _ = tx.send(Ok(result));
                }
                None => {
                    shared
                        .stats
                        .unknown_responses
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%id, "response to no pending request (late, duplicate or unknown id)");
                }
            }
        }
        Message::Response(Response { id: None, result }) => {
            shared
                .stats
                .unknown_responses
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                ?result,
                "server sent an error it could not attribute to a request"
            );
        }
        Message::Notification(n) => {
            let delivery = shared.routes.lock().expect("routes lock").deliver(n);
            if delivery.matched == 0 {
                shared
                    .stats
                    .unrouted_notifications
                    .fetch_add(1, Ordering::Relaxed);
            } else if delivery.dropped > 0 {
                shared
                    .stats
                    .lagged_notifications
                    .fetch_add(delivery.dropped, Ordering::Relaxed);
            }
        }
        Message::Request(request) => {
            let incoming = IncomingRequest::new(request, shared.clone());
            let refused = shared
                .routes
                .lock()
                .expect("routes lock")
                .dispatch(incoming);
            if let Err(incoming) = refused {
                refuse(shared, incoming);
            }
        }
    }
}

/// Answers a request no handler took, so the server never waits for it.
fn refuse(shared: &Shared, incoming: IncomingRequest) {
    let request = incoming.into_request();
    let handled = shared
        .routes
        .lock()
        .expect("routes lock")
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
    let _ = shared.send_bytes(encode_response(&request.id, &Err(error)));
}
