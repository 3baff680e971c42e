//! What the reader met and what is in flight, for [`Client::stats`](crate::Client::stats).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of what the reader met. Cheap to bump from the reader and to
/// read at any time: each is a relaxed atomic, and no snapshot promises
/// consistency between them.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) frames: AtomicU64,
    pub(crate) bad_frames: AtomicU64,
    pub(crate) unparsable: AtomicU64,
    pub(crate) unknown_responses: AtomicU64,
    pub(crate) unrouted_notifications: AtomicU64,
    pub(crate) lagged_notifications: AtomicU64,
    pub(crate) unsent_replies: AtomicU64,
}

impl Stats {
    /// The counters now, with what is in flight.
    pub(crate) fn snapshot(&self, pending_requests: usize, queued_bytes: usize) -> ConnectionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConnectionStats {
            frames: get(&self.frames),
            bad_frames: get(&self.bad_frames),
            unparsable: get(&self.unparsable),
            unknown_responses: get(&self.unknown_responses),
            unrouted_notifications: get(&self.unrouted_notifications),
            lagged_notifications: get(&self.lagged_notifications),
            unsent_replies: get(&self.unsent_replies),
            pending_requests: pending_requests as u64,
            queued_bytes: queued_bytes as u64,
        }
    }
}

/// A snapshot of what the reader has met so far (see [`Client::stats`](crate::Client::stats)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Frames read, good or bad.
    pub frames: u64,
    /// Frames the framing rejected (too long, not UTF-8, bad header).
    pub bad_frames: u64,
    /// Frames that were not JSON, or JSON of no JSON-RPC shape.
    pub unparsable: u64,
    /// Responses whose id matched no pending request (late, duplicate, or
    /// unknown), and error responses with a null id.
    pub unknown_responses: u64,
    /// Notifications no subscriber wanted.
    pub unrouted_notifications: u64,
    /// Notifications dropped because a subscriber was full.
    pub lagged_notifications: u64,
    /// Messages this client wrote on its own — refusals of server requests
    /// nobody handles, error replies to requests dropped unanswered, cancel
    /// notifications — that could not be queued because the outgoing queue
    /// was full (each is also logged at warn).
    pub unsent_replies: u64,
    /// Requests sent and not yet answered (one still waiting for room in the
    /// outgoing queue is not counted yet).
    pub pending_requests: u64,
    /// Bytes queued for the server and not yet written to its stdin
    /// (bounded by [`Builder::max_queued_bytes`](crate::Builder::max_queued_bytes)).
    pub queued_bytes: u64,
}
