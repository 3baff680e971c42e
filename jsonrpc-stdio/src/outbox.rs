//! The outgoing queue: serialized messages waiting for the writer task,
//! bounded in bytes.
//!
//! A server that stops reading its stdin fills the pipe, then this queue.
//! Bytes count from the moment a message is queued until the writer has
//! handed them to the OS, so the bound covers the writer's batch too. When a
//! message does not fit, a notification or reply is refused at once
//! ([`Full`]) and a request waits for room ([`Outbox::reserve`]); nothing is
//! dropped. A message larger than the whole limit still goes, alone, once
//! the queue is empty: it could never go otherwise.
//!
//! Messages are copied into one buffer as they are queued, framed (a
//! newline, or a `Content-Length` header), and the writer swaps that buffer
//! for its own and writes it with plain writes: per message, a `memcpy`
//! instead of an allocation freed in a batch (which glibc's per-thread cache
//! does not hold, so each cost a trip into the main allocator).
//!
//! The queue also owns the pipe (its [`Sink`]), so that whoever finds it
//! free can write: the writer task, or a caller whose request is the only
//! one in flight ([`Outbox::write_now`]). Writing from the caller saves the
//! writer task's wake-up, which on a multi-thread runtime is a wake-up of
//! another thread and most of a sequential round trip. A caller never
//! waits on the pipe: what it cannot write at once, the writer task writes.
//! Either way the bytes leave in queue order, because both drain the one
//! queue under the one `sink` lock. Lock order: `sink`, then `state`.

use std::io::{self, Write as _};
use std::pin::Pin;
use std::sync::{Mutex, TryLockError};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::{oneshot, Notify};

use crate::framing::Framing;
use crate::lock;

/// A buffer that grew past this for one large message is let go once
/// written, rather than kept that large for the connection's life.
const KEEP_CAPACITY: usize = 1 << 20;

pub(crate) struct Outbox {
    state: Mutex<State>,
    /// The pipe; `None` before [`attach`](Self::attach) and after death or
    /// a write error (dropping it closes the server's stdin).
    sink: Mutex<Option<Sink>>,
    framing: Framing,
    limit: usize,
    /// Wakes the writer when a message is queued or the queue closes.
    writer: Notify,
    /// Wakes the requests waiting for room.
    room: Notify,
}

struct State {
    /// Framed messages, in order, not yet taken by a writer.
    queue: Vec<u8>,
    /// The room the messages in `queue` hold (their unframed lengths).
    queue_room: usize,
    /// Queued, reserved, or being written.
    bytes: usize,
    closed: bool,
}

/// The write end of the connection, with what is on its way into it.
struct Sink {
    writer: Pin<Box<dyn AsyncWrite + Send>>,
    /// The last buffer taken from the queue, being written.
    writing: Vec<u8>,
    /// How much of `writing` the OS has.
    written: usize,
    /// The room the messages in `writing` hold, given back once all of
    /// it is written.
    writing_room: usize,
    /// Bytes went out since the last flush.
    unflushed: bool,
    /// Tells the reader, which decides the cause of death, that a write failed.
    failed: Option<oneshot::Sender<io::Error>>,
    /// The writer task waits for the pipe to take more: its waker is the
    /// one registered with the pipe, and a caller's poll (with a waker
    /// that does nothing) would replace it, and the writer never wake.
    writer_waits: bool,
}

/// The queue holds its limit; nothing was queued.
#[derive(Debug)]
pub(crate) struct Full {
    pub(crate) queued: usize,
    pub(crate) limit: usize,
}

/// Why a message was not queued.
#[derive(Debug)]
pub(crate) enum Refused {
    Full(Full),
    /// The connection is dead.
    Closed,
}

/// Room held for one message; given back when dropped unused.
pub(crate) struct Reservation<'a> {
    outbox: &'a Outbox,
    len: usize,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.len > 0 {
            self.outbox.written(self.len);
        }
    }
}

impl Outbox {
    pub(crate) fn new(limit: usize, framing: Framing) -> Self {
        Outbox {
            state: Mutex::new(State {
                queue: Vec::new(),
                queue_room: 0,
                bytes: 0,
                closed: false,
            }),
            sink: Mutex::new(None),
            framing,
            limit,
            writer: Notify::new(),
            room: Notify::new(),
        }
    }

    /// Bytes queued or being written.
    pub(crate) fn queued_bytes(&self) -> usize {
        lock(&self.state).bytes
    }

    /// Holds `len` bytes if they fit now.
    pub(crate) fn try_reserve(&self, len: usize) -> Result<Reservation<'_>, Refused> {
        self.take_room(&mut lock(&self.state), len)?;
        Ok(Reservation { outbox: self, len })
    }

    fn take_room(&self, st: &mut State, len: usize) -> Result<(), Refused> {
        if st.closed {
            return Err(Refused::Closed);
        }
        if st.bytes > 0 && st.bytes.saturating_add(len) > self.limit {
            return Err(Refused::Full(Full {
                queued: st.bytes,
                limit: self.limit,
            }));
        }
        st.bytes += len;
        Ok(())
    }

    /// Appends `message` to the queue, framed, in room already taken.
    fn append(&self, st: &mut State, message: &[u8]) {
        st.queue_room += message.len();
        let queue = &mut st.queue;
        match self.framing {
            // serde_json escapes newlines inside strings and writes no
            // whitespace between tokens, so a message is always one line.
            Framing::NewlineDelimited => {
                queue.reserve(message.len() + 1);
                queue.extend_from_slice(message);
                queue.push(b'\n');
            }
            Framing::ContentLength => {
                let _ = write!(queue, "Content-Length: {}\r\n\r\n", message.len());
                queue.extend_from_slice(message);
            }
        }
    }

    /// Waits until `len` bytes fit, and holds them.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is held until it returns.
    pub(crate) async fn reserve(&self, len: usize) -> Result<Reservation<'_>, Refused> {
        // Room is there nearly always: take it without registering for a
        // wake-up first.
        match self.try_reserve(len) {
            Err(Refused::Full(_)) => {}
            other => return other,
        }
        loop {
            // Registered before the check, so a wake-up between the two is
            // not lost.
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_reserve(len) {
                Err(Refused::Full(_)) => notified.await,
                other => return other,
            }
        }
    }

    /// Copies `message`, framed, into the queue, in the room `reservation`
    /// holds, waking nobody: the caller follows with
    /// [`write_now`](Self::write_now) or [`wake_writer`](Self::wake_writer).
    /// False when the queue is closed (then the room is given back).
    pub(crate) fn queue(&self, mut reservation: Reservation<'_>, message: &[u8]) -> bool {
        debug_assert_eq!(reservation.len, message.len());
        let mut st = lock(&self.state);
        if st.closed {
            return false;
        }
        // The room is the queue's now: the reservation gives nothing back.
        reservation.len = 0;
        self.append(&mut st, message);
        true
    }

    /// Queues `message` if it fits now, waking nobody (as
    /// [`queue`](Self::queue)): room and queue under one lock.
    pub(crate) fn try_queue(&self, message: &[u8]) -> Result<(), Refused> {
        let mut st = lock(&self.state);
        self.take_room(&mut st, message.len())?;
        self.append(&mut st, message);
        Ok(())
    }

    /// Queues `message` if it fits now, and wakes the writer task.
    pub(crate) fn try_push(&self, message: &[u8]) -> Result<(), Refused> {
        self.try_queue(message)?;
        self.writer.notify_one();
        Ok(())
    }

    /// Ends the queue: later pushes are refused, waiters wake, the writer
    /// stops. What was queued is dropped with the connection.
    pub(crate) fn close(&self) {
        let mut st = lock(&self.state);
        st.closed = true;
        st.queue = Vec::new();
        drop(st);
        self.writer.notify_one();
        self.room.notify_waiters();
    }

    /// Gives the queue its pipe; `failed` learns of the first write error.
    pub(crate) fn attach<W: AsyncWrite + Send + 'static>(
        &self,
        writer: W,
        framing: Framing,
        failed: oneshot::Sender<io::Error>,
    ) {
        debug_assert_eq!(framing, self.framing);
        *lock(&self.sink) = Some(Sink {
            writer: Box::pin(writer),
            writing: Vec::new(),
            written: 0,
            writing_room: 0,
            unflushed: false,
            failed: Some(failed),
            writer_waits: false,
        });
    }

    /// Drops the pipe, closing the server's stdin, even mid-write to a
    /// server that stopped reading.
    pub(crate) fn detach(&self) {
        let sink = lock(&self.sink).take();
        drop(sink);
    }

    /// Wakes the writer task to write what is queued.
    pub(crate) fn wake_writer(&self) {
        self.writer.notify_one();
    }

    /// For a caller that has just queued: writes the queue out on this
    /// thread if nobody else is writing and the pipe takes it without
    /// waiting; otherwise (or for what is left) wakes the writer task.
    /// Never blocks: the lock is only ever held for writes that do not wait.
    pub(crate) fn write_now(&self) {
        let done = match self.sink.try_lock() {
            Ok(sink) if sink.as_ref().is_some_and(|s| s.writer_waits) => false,
            Ok(mut sink) => {
                let waker = futures::task::noop_waker_ref();
                // A `Pending` leaves the no-op waker registered with the
                // pipe until the writer task, woken below, polls it with
                // its own.
                let mut cx = Context::from_waker(waker);
                self.poll_out(&mut sink, &mut cx, false).is_ready()
            }
            // Whoever holds it may already have looked at the queue: the
            // writer task looks again.
            Err(TryLockError::WouldBlock) | Err(TryLockError::Poisoned(_)) => false,
        };
        if !done {
            self.writer.notify_one();
        }
    }

    /// For the writer task: writes everything queued, waiting on the pipe
    /// as needed, then waits for more. Returns when the queue is closed or
    /// a write failed (the reader has been told).
    pub(crate) async fn write_all(&self) {
        loop {
            let notified = self.writer.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let result =
                std::future::poll_fn(|cx| self.poll_out(&mut lock(&self.sink), cx, true)).await;
            if result.is_err() || lock(&self.state).closed {
                return;
            }
            notified.await;
        }
    }

    /// Drains the queue into the pipe as far as it goes without waiting. On
    /// a write error the pipe is dropped and the reader told; `Err` then.
    /// `by_writer`: the writer task's waker is in `cx`.
    fn poll_out(
        &self,
        sink: &mut Option<Sink>,
        cx: &mut Context<'_>,
        by_writer: bool,
    ) -> Poll<Result<(), ()>> {
        let Some(s) = sink.as_mut() else {
            return Poll::Ready(Err(()));
        };
        let drained = self.poll_drain(s, cx);
        if by_writer {
            s.writer_waits = drained.is_pending();
        }
        match drained {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => {
                if let Some(failed) = s.failed.take() {
                    let _ = failed.send(e);
                }
                *sink = None;
                Poll::Ready(Err(()))
            }
        }
    }

    fn poll_drain(&self, sink: &mut Sink, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if sink.written == sink.writing.len() {
                if sink.writing_room > 0 {
                    self.written(std::mem::take(&mut sink.writing_room));
                }
                if sink.writing.capacity() > KEEP_CAPACITY {
                    sink.writing = Vec::new();
                }
                sink.writing.clear();
                sink.written = 0;
                let mut st = lock(&self.state);
                if st.closed || st.queue.is_empty() {
                    break;
                }
                // The emptied buffer goes back to the queue: after the
                // first few bursts, queuing allocates nothing.
                std::mem::swap(&mut st.queue, &mut sink.writing);
                sink.writing_room = std::mem::take(&mut st.queue_room);
                drop(st);
                tracing::trace!(frames = %String::from_utf8_lossy(&sink.writing), "to server");
            }
            match sink
                .writer
                .as_mut()
                .poll_write(cx, &sink.writing[sink.written..])
            {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    sink.written += n;
                    sink.unflushed = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        // Once per burst, not per message.
        if sink.unflushed {
            std::task::ready!(sink.writer.as_mut().poll_flush(cx))?;
            sink.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// For the writer: `len` bytes reached the OS; their room is free.
    pub(crate) fn written(&self, len: usize) {
        let mut st = lock(&self.state);
        st.bytes = st.bytes.saturating_sub(len);
        drop(st);
        self.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn msg(n: usize) -> Vec<u8> {
        vec![b'x'; n]
    }

    #[test]
    fn a_full_queue_refuses_and_a_lone_oversized_message_goes() {
        let q = Outbox::new(10, Framing::ContentLength);
        q.try_push(&msg(6)).unwrap();
        assert!(matches!(
            q.try_push(&msg(5)),
            Err(Refused::Full(Full {
                queued: 6,
                limit: 10
            }))
        ));
        q.try_push(&msg(4)).unwrap();
        assert_eq!(q.queued_bytes(), 10);
        q.written(10);
        q.try_push(&msg(100)).unwrap();
        assert_eq!(q.queued_bytes(), 100);
    }

    #[test]
    fn an_unused_reservation_gives_its_room_back() {
        let q = Outbox::new(10, Framing::ContentLength);
        let r = q.try_reserve(8).unwrap();
        assert!(q.try_push(&msg(5)).is_err());
        drop(r);
        assert_eq!(q.queued_bytes(), 0);
        q.try_push(&msg(5)).unwrap();
    }

    #[tokio::test]
    async fn a_reservation_waits_for_room_and_close_wakes_it() {
        let q = std::sync::Arc::new(Outbox::new(10, Framing::ContentLength));
        q.try_push(&msg(10)).unwrap();
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.reserve(5).await.map(|r| r.len).map_err(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        q.written(10);
        assert_eq!(waiter.await.unwrap(), Ok(5));

        q.try_push(&msg(10)).unwrap();
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { matches!(q.reserve(5).await, Err(Refused::Closed)) }
        });
        tokio::task::yield_now().await;
        q.close();
        assert!(waiter.await.unwrap());
    }
    #[test]
    fn a_huge_message_does_not_keep_its_buffers_once_written() {
        let q = Outbox::new(8 << 20, Framing::NewlineDelimited);
        let (failed, _failed) = oneshot::channel();
        q.attach(tokio::io::sink(), Framing::NewlineDelimited, failed);
        q.try_push(&vec![b'x'; 2 << 20]).unwrap();
        q.try_push(b"small").unwrap();
        q.write_now();
        assert_eq!(q.queued_bytes(), 0);
        let writing = lock(&q.sink).as_ref().map(|s| s.writing.capacity());
        assert!(writing.unwrap() <= KEEP_CAPACITY, "{writing:?}");
        assert!(lock(&q.state).queue.capacity() <= KEEP_CAPACITY);
    }

    /// Takes at most 7 bytes per write, and says `Pending` (waking at once)
    /// every other call: every chunk is split, and resumed by the writer.
    struct Trickle {
        out: std::sync::Arc<Mutex<Vec<u8>>>,
        calls: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.calls += 1;
            if self.calls % 2 == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = buf.len().min(7);
            lock(&self.out).extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn split_writes_deliver_every_frame_whole_and_in_order_and_free_the_room() {
        for (framing, expected) in [
            (
                Framing::ContentLength,
                &b"Content-Length: 5\r\n\r\nfirstContent-Length: 0\r\n\r\nContent-Length: 30\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"[..],
            ),
            (
                Framing::NewlineDelimited,
                &b"first\n\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"[..],
            ),
        ] {
            let out = std::sync::Arc::new(Mutex::new(Vec::new()));
            let q = std::sync::Arc::new(Outbox::new(1000, framing));
            let (failed, _failed) = oneshot::channel();
            q.attach(Trickle { out: out.clone(), calls: 0 }, framing, failed);
            let writer = tokio::spawn({
                let q = q.clone();
                async move { q.write_all().await }
            });
            // One caller's direct write, then two for the writer task.
            let room = q.reserve(5).await.unwrap_or_else(|_| panic!("room"));
            q.queue(room, b"first");
            q.write_now();
            q.try_push(&[]).unwrap();
            q.try_push(&[b'x'; 30]).unwrap();
            q.wake_writer();
            // The whole limit fits again only once every byte was written:
            // the writer's `written` is the event.
            let all_written = tokio::time::timeout(Duration::from_secs(5), q.reserve(1000)).await;
            assert!(all_written.is_ok(), "{framing}: stuck");
            drop(all_written);
            assert_eq!(&lock(&out)[..], expected, "{framing}");
            q.close();
            writer.await.unwrap();
        }
    }
}
