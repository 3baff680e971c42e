//! The newline-delimited decoder. Like `tokio_util`'s `LinesCodec` with a
//! maximum length, except that a line over the maximum is not merely
//! skipped: its first and last bytes are kept ([`Oversized`]) so that a
//! response among them fails its caller at once. The rules are documented
//! on [`Framing::NewlineDelimited`](super::Framing::NewlineDelimited).

use bytes::{Buf, BytesMut};

use super::oversized::Oversized;
use super::{BadFrame, Frame};

#[derive(Debug)]
pub(super) struct LineCodec {
    limit: usize,
    /// Bytes at the front of the buffer known to hold no `\n`.
    scanned: usize,
    /// The line being discarded, when it outgrew the limit.
    discarding: Option<Oversized>,
}

impl LineCodec {
    pub(super) fn new(limit: usize) -> Self {
        LineCodec {
            limit,
            scanned: 0,
            discarding: None,
        }
    }

    /// The next frame, or `None` when more input is needed. Never fails.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        loop {
            // memchr: SIMD, where a byte loop is 7x slower on 60 KB lines.
            let newline = memchr::memchr(b'\n', &buf[self.scanned..]).map(|i| i + self.scanned);
            if let Some(oversized) = &mut self.discarding {
                let end = newline.unwrap_or(buf.len());
                let early = oversized.feed(&buf[..end]);
                buf.advance(newline.map_or(end, |i| i + 1));
                self.scanned = 0;
                if newline.is_none() {
                    return early.map(Frame::Bad);
                }
                let last = oversized.finish();
                self.discarding = None;
                match early.or(last) {
                    Some(bad) => return Some(Frame::Bad(bad)),
                    None => continue,
                }
            }
            let Some(i) = newline else {
                if buf.len() > self.limit {
                    // Longer than the limit whatever follows: discard it as
                    // it streams in.
                    self.discarding = Some(Oversized::new(self.limit));
                    continue;
                }
                self.scanned = buf.len();
                return None;
            };
            self.scanned = 0;
            let mut line = buf.split_to(i + 1);
            line.truncate(i);
            if let Some(frame) = self.line(line) {
                return Some(frame);
            }
        }
    }

    /// Like [`decode`](Self::decode); then what is left is the last line.
    pub(super) fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        if let Some(frame) = self.decode(buf) {
            return Some(frame);
        }
        self.scanned = 0;
        if let Some(mut oversized) = self.discarding.take() {
            let early = oversized.feed(buf);
            buf.clear();
            return early.or_else(|| oversized.finish()).map(Frame::Bad);
        }
        if buf.is_empty() {
            return None;
        }
        self.line(buf.split())
    }

    /// One whole line, without its `\n`.
    fn line(&self, mut line: BytesMut) -> Option<Frame> {
        // The limit counts the line as sent, `\r` included.
        if line.len() > self.limit {
            return Some(Frame::Bad(BadFrame::too_long(&line, self.limit)));
        }
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        // Not checked as UTF-8 here: the connection's reader checks each
        // frame once, whatever its framing, and parses the `str` it gets.
        if line.trim_ascii().is_empty() {
            None
        } else {
            Some(Frame::Message(line.freeze()))
        }
    }
}
