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

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::lock;

pub(crate) struct Outbox {
    state: Mutex<State>,
    limit: usize,
    /// Wakes the writer when a message is queued or the queue closes.
    writer: Notify,
    /// Wakes the requests waiting for room.
    room: Notify,
}

struct State {
    messages: VecDeque<Bytes>,
    /// Queued, reserved, or being written.
    bytes: usize,
    closed: bool,
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
    pub(crate) fn new(limit: usize) -> Self {
        Outbox {
            state: Mutex::new(State {
                messages: VecDeque::new(),
                bytes: 0,
                closed: false,
            }),
            limit,
            writer: Notify::new(),
            room: Notify::new(),
        }
    }

    /// Bytes queued or being written.
    pub(crate) fn queued_bytes(&self) -> usize {
        lock(&self.state).bytes
    }

    fn try_reserve(&self, len: usize) -> Result<Reservation<'_>, Refused> {
        let mut st = lock(&self.state);
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
        Ok(Reservation { outbox: self, len })
    }

    /// Waits until `len` bytes fit, and holds them.
    ///
    /// # Cancel safety
    /// Cancel safe: nothing is held until it returns.
    pub(crate) async fn reserve(&self, len: usize) -> Result<Reservation<'_>, Refused> {
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

    /// Queues `message` in the room `reservation` holds.
    pub(crate) fn push_reserved(&self, mut reservation: Reservation<'_>, message: Bytes) {
        debug_assert_eq!(reservation.len, message.len());
        let mut st = lock(&self.state);
        if st.closed {
            return; // The reservation gives its room back.
        }
        reservation.len = 0;
        st.messages.push_back(message);
        drop(st);
        self.writer.notify_one();
    }

    /// Queues `message` if it fits now.
    pub(crate) fn try_push(&self, message: Bytes) -> Result<(), Refused> {
        let reservation = self.try_reserve(message.len())?;
        self.push_reserved(reservation, message);
        Ok(())
    }

    /// Ends the queue: later pushes are refused, waiters wake, the writer
    /// stops. What was queued is dropped with the connection.
    pub(crate) fn close(&self) {
        let mut st = lock(&self.state);
        st.closed = true;
        st.messages.clear();
        drop(st);
        self.writer.notify_one();
        self.room.notify_waiters();
    }

    /// For the writer: everything queued, or `None` once closed.
    pub(crate) async fn take_batch(&self, batch: &mut Vec<Bytes>) -> Option<()> {
        loop {
            let notified = self.writer.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = lock(&self.state);
                if st.closed {
                    return None;
                }
                if !st.messages.is_empty() {
                    batch.extend(st.messages.drain(..));
                    return Some(());
                }
            }
            notified.await;
        }
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

    fn msg(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn a_full_queue_refuses_and_a_lone_oversized_message_goes() {
        let q = Outbox::new(10);
        q.try_push(msg(6)).unwrap();
        assert!(matches!(
            q.try_push(msg(5)),
            Err(Refused::Full(Full {
                queued: 6,
                limit: 10
            }))
        ));
        q.try_push(msg(4)).unwrap();
        assert_eq!(q.queued_bytes(), 10);
        q.written(10);
        q.try_push(msg(100)).unwrap();
        assert_eq!(q.queued_bytes(), 100);
    }

    #[test]
    fn an_unused_reservation_gives_its_room_back() {
        let q = Outbox::new(10);
        let r = q.try_reserve(8).unwrap();
        assert!(q.try_push(msg(5)).is_err());
        drop(r);
        assert_eq!(q.queued_bytes(), 0);
        q.try_push(msg(5)).unwrap();
    }

    #[tokio::test]
    async fn a_reservation_waits_for_room_and_close_wakes_it() {
        let q = std::sync::Arc::new(Outbox::new(10));
        q.try_push(msg(10)).unwrap();
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.reserve(5).await.map(|r| r.len).map_err(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        q.written(10);
        assert_eq!(waiter.await.unwrap(), Ok(5));

        q.try_push(msg(10)).unwrap();
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { matches!(q.reserve(5).await, Err(Refused::Closed)) }
        });
        tokio::task::yield_now().await;
        q.close();
        assert!(waiter.await.unwrap());
    }
}
