//! The `Content-Length` decoder: an incremental state machine over the bytes
//! `FramedRead` hands it. The rules it implements are documented on
//! [`Framing::ContentLength`](super::Framing::ContentLength).

use std::fmt::Write as _;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::oversized::Oversized;
use super::{BadFrame, Frame, MAX_HEADER_LENGTH};

/// The header name resynchronisation looks for, lower-cased.
const NEEDLE: &[u8] = b"content-length:";

pub(super) const HEADER_TOO_LONG: &str = "header longer than the maximum";
pub(super) const BARE_LF: &str = "header line not ended by CRLF";
pub(super) const NOT_A_HEADER_LINE: &str = "not a `Name: value` header line";
pub(super) const INVALID_LENGTH: &str = "Content-Length is not a decimal number";
pub(super) const DUPLICATE_LENGTH: &str = "Content-Length given twice";
pub(super) const MISSING_LENGTH: &str = "no Content-Length header";

#[derive(Debug)]
enum State {
    /// Reading header lines. `size` counts the bytes of the lines consumed so
    /// far (0: nothing of this header yet); `scanned` counts the bytes at the
    /// front of the buffer known to hold no `\n`, so a line arriving one byte
    /// at a time is not rescanned from its start.
    Header {
        length: Option<u64>,
        size: usize,
        scanned: usize,
    },
    /// Waiting for a body of `length` bytes (at most the maximum).
    Body { length: usize },
    /// Discarding the `remaining` bytes of an oversized body as they arrive,
    /// keeping its first and last bytes to report it.
    Skip {
        remaining: u64,
        oversized: Box<Oversized>,
    },
    /// Discarding bytes up to the next `Content-Length:` after a bad header.
    Resync,
}

const FRESH_HEADER: State = State::Header {
    length: None,
    size: 0,
    scanned: 0,
};

#[derive(Debug)]
pub(super) struct ContentLengthCodec {
    state: State,
    limit: usize,
}

impl ContentLengthCodec {
    pub(super) fn new(limit: usize) -> Self {
        ContentLengthCodec {
            state: FRESH_HEADER,
            limit,
        }
    }

    /// The next frame, or `None` when more input is needed. Never fails.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        loop {
            match &mut self.state {
                State::Header {
                    length,
                    size,
                    scanned,
                } => {
                    if *size == 0 {
                        // Whitespace between frames (a stray newline after a
                        // body) is skipped, as blank lines are in NDJSON.
                        let ws = buf
                            .iter()
                            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                            .count();
                        buf.advance(ws);
                    }
                    let newline = buf[*scanned..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map(|i| i + *scanned);
                    let Some(i) = newline else {
                        if *size + buf.len() > MAX_HEADER_LENGTH {
                            return Some(self.resync(buf, HEADER_TOO_LONG));
                        }
                        *scanned = buf.len();
                        return None;
                    };
                    // The length check comes first so that the outcome does not
                    // depend on how the input was split into reads.
                    if *size + i + 1 > MAX_HEADER_LENGTH {
                        return Some(self.resync(buf, HEADER_TOO_LONG));
                    }
                    if i == 0 || buf[i - 1] != b'\r' {
                        return Some(self.resync(buf, BARE_LF));
                    }
                    let line = &buf[..i - 1];
                    if line.is_empty() {
                        // The blank line: the header is complete.
                        let Some(n) = *length else {
                            return Some(self.resync(buf, MISSING_LENGTH));
                        };
                        buf.advance(2);
                        match usize::try_from(n) {
                            Ok(n) if n <= self.limit => {
                                self.state = State::Body { length: n };
                            }
                            _ => {
                                self.state = State::Skip {
                                    remaining: n,
                                    oversized: Box::new(Oversized::new(self.limit)),
                                };
                            }
                        }
                        continue;
                    }
                    match parse_header_line(line) {
                        Err(reason) => return Some(self.resync(buf, reason)),
                        Ok(Header::ContentLength(_)) if length.is_some() => {
                            return Some(self.resync(buf, DUPLICATE_LENGTH));
                        }
                        Ok(Header::ContentLength(n)) => *length = Some(n),
                        Ok(Header::Other) => {}
                    }
                    buf.advance(i + 1);
                    *size += i + 1;
                    *scanned = 0;
                }
                State::Body { length } => {
                    if buf.len() < *length {
                        return None;
                    }
                    let body = buf.split_to(*length).freeze();
                    self.state = FRESH_HEADER;
                    return Some(Frame::Message(body));
                }
                State::Skip {
                    remaining,
                    oversized,
                } => {
                    let n = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
                    let early = oversized.feed(&buf[..n]);
                    buf.advance(n);
                    *remaining -= n as u64;
                    if *remaining > 0 {
                        return early.map(Frame::Bad);
                    }
                    let last = oversized.finish();
                    self.state = FRESH_HEADER;
                    if let Some(bad) = early.or(last) {
                        return Some(Frame::Bad(bad));
                    }
                }
                State::Resync => {
                    match find_needle(buf) {
                        Some(p) => {
                            buf.advance(p);
                            self.state = FRESH_HEADER;
                        }
                        None => {
                            // Keep a tail that may be the start of a split name.
                            buf.advance(buf.len().saturating_sub(NEEDLE.len() - 1));
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// Like [`decode`](Self::decode), then reports a frame cut short by the
    /// end of the stream as [`BadFrame::Truncated`] (once).
    pub(super) fn decode_eof(&mut self, buf: &mut BytesMut) -> Option<Frame> {
        if let Some(frame) = self.decode(buf) {
            return Some(frame);
        }
        // A skipped body cut short is reported (once) before its truncation.
        if let State::Skip { oversized, .. } = &mut self.state {
            if let Some(bad) = oversized.truncated() {
                return Some(Frame::Bad(bad));
            }
        }
        let inside_frame = match self.state {
            State::Header { size, .. } => size > 0 || !buf.is_empty(),
            State::Body { .. } | State::Skip { .. } => true,
            // The junk being skipped was reported when resync began.
            State::Resync => false,
        };
        buf.clear();
        self.state = FRESH_HEADER;
        inside_frame.then_some(Frame::Bad(BadFrame::Truncated))
    }

    /// Reports a bad header and starts skipping to the next `Content-Length:`.
    /// The first buffered byte is always dropped so the same header cannot be
    /// found again at the same place.
    fn resync(&mut self, buf: &mut BytesMut, reason: &'static str) -> Frame {
        if !buf.is_empty() {
            buf.advance(1);
        }
        self.state = State::Resync;
        Frame::Bad(BadFrame::MalformedHeader { reason })
    }

    pub(super) fn encode(message: &Bytes, dst: &mut BytesMut) {
        dst.reserve(message.len() + 32);
        write!(dst, "Content-Length: {}\r\n\r\n", message.len())
            .expect("writing to a BytesMut cannot fail");
        dst.put_slice(message);
    }
}

enum Header {
    ContentLength(u64),
    Other,
}

/// Parses one header line (without its CRLF): an HTTP token, `:`, a value of
/// visible ASCII, spaces and tabs. Only `Content-Length` is interpreted.
fn parse_header_line(line: &[u8]) -> Result<Header, &'static str> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(NOT_A_HEADER_LINE)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    let is_token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if name.is_empty() || !name.iter().all(is_token) {
        return Err(NOT_A_HEADER_LINE);
    }
    if !value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(NOT_A_HEADER_LINE);
    }
    if !name.eq_ignore_ascii_case(b"content-length") {
        return Ok(Header::Other);
    }
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(INVALID_LENGTH);
    }
    digits
        .iter()
        .try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .map(Header::ContentLength)
        .ok_or(INVALID_LENGTH)
}

/// Where `Content-Length:` (any case) starts in `buf`.
fn find_needle(buf: &[u8]) -> Option<usize> {
    buf.windows(NEEDLE.len())
        .position(|w| w.eq_ignore_ascii_case(NEEDLE))
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use futures::StreamExt;
    use tokio_util::codec::{Decoder, Encoder, FramedRead};

    use super::*;
    use crate::framing::{FrameCodec, Framing};

    fn codec(limit: usize) -> FrameCodec {
        FrameCodec::new(Framing::ContentLength, limit)
    }

    /// Feeds `chunks` one read at a time, as `FramedRead` does, then ends the stream.
    fn feed<'a>(codec: &mut FrameCodec, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<Frame> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        while let Some(f) = codec.decode_eof(&mut buf).unwrap() {
            out.push(f);
        }
        out
    }

    fn decode_all(limit: usize, input: &[u8]) -> Vec<Frame> {
        feed(&mut codec(limit), [input])
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn malformed(reason: &'static str) -> Frame {
        Frame::Bad(BadFrame::MalformedHeader { reason })
    }

    fn frame(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    #[test]
    fn a_frame_is_exactly_its_declared_body_bytes() {
        let input = format!("{}{}", frame(r#"{"a":1}"#), frame(r#"{"b":"é"}"#));
        assert_eq!(
            decode_all(100, input.as_bytes()),
            vec![msg(r#"{"a":1}"#), msg(r#"{"b":"é"}"#)]
        );
    }

    #[test]
    fn header_names_are_case_insensitive_and_content_type_is_ignored() {
        let input = b"content-length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}\
                      Content-Type: x\r\nCONTENT-LENGTH:\t3 \r\nX-Other: y\r\n\r\n[1]";
        assert_eq!(decode_all(100, input), vec![msg("{}"), msg("[1]")]);
    }

    #[test]
    fn whitespace_and_blank_lines_between_frames_are_skipped() {
        let input = format!("\r\n\n {}\n\r\n{}\n", frame("{}"), frame("[]"));
        assert_eq!(
            decode_all(100, input.as_bytes()),
            vec![msg("{}"), msg("[]")]
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_still_a_message() {
        let input = format!("{}{}", frame("not json\r\n\r\n"), frame(""));
        assert_eq!(
            decode_all(100, input.as_bytes()),
            vec![msg("not json\r\n\r\n"), msg("")]
        );
    }

    #[test]
    fn a_body_of_exactly_the_maximum_is_accepted() {
        let body = "x".repeat(10);
        assert_eq!(decode_all(10, frame(&body).as_bytes()), vec![msg(&body)]);
    }

    #[test]
    fn an_oversized_body_is_skipped_as_it_arrives_and_the_stream_goes_on() {
        let mut c = codec(100);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(b"Content-Length: 1000000\r\n\r\n");
        // Junk, not a response: reported at its end.
        let chunk = [b'x'; 4096];
        let mut sent = 0;
        while sent < 1_000_000 {
            let n = chunk.len().min(1_000_000 - sent);
            buf.extend_from_slice(&chunk[..n]);
            sent += n;
            let expected =
                (sent == 1_000_000).then_some(Frame::Bad(BadFrame::TooLong { limit: 100 }));
            assert_eq!(c.decode(&mut buf).unwrap(), expected);
            assert!(buf.is_empty(), "skipped bytes are never buffered");
        }
        buf.extend_from_slice(frame("{}").as_bytes());
        assert_eq!(c.decode(&mut buf).unwrap(), Some(msg("{}")));
    }

    #[test]
    fn an_oversized_response_names_its_id_as_soon_as_its_first_bytes_do() {
        let mut c = codec(16);
        let mut buf = BytesMut::new();
        let body = format!(r#"{{"id":"r-9","result":"{}"}}"#, "z".repeat(100));
        buf.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        buf.extend_from_slice(&body.as_bytes()[..20]);
        assert_eq!(
            c.decode(&mut buf).unwrap(),
            Some(Frame::Bad(BadFrame::ResponseTooLong {
                id: crate::message::RequestId::from("r-9"),
                limit: 16
            }))
        );
        buf.extend_from_slice(&body.as_bytes()[20..]);
        buf.extend_from_slice(frame("{}").as_bytes());
        assert_eq!(c.decode(&mut buf).unwrap(), Some(msg("{}")));

        // Cut short: reported from its first bytes, then truncated.
        let input = "Content-Length: 500\r\n\r\n{\"id\":3,\"error\":";
        assert_eq!(
            decode_all(16, input.as_bytes()),
            vec![
                Frame::Bad(BadFrame::ResponseTooLong {
                    id: crate::message::RequestId::from(3),
                    limit: 16
                }),
                Frame::Bad(BadFrame::Truncated)
            ]
        );
    }

    #[test]
    fn a_claimed_length_is_never_allocated() {
        let mut c = codec(crate::framing::DEFAULT_MAX_FRAME_LENGTH);
        let mut buf = BytesMut::from(&b"Content-Length: 18446744073709551615\r\n\r\n{}"[..]);
        let cap = buf.capacity();
        assert_eq!(
            c.decode(&mut buf).unwrap(),
            Some(Frame::Bad(BadFrame::TooLong {
                limit: crate::framing::DEFAULT_MAX_FRAME_LENGTH
            }))
        );
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= cap);

        // A length within the maximum is not reserved up front either.
        let mut c = codec(crate::framing::DEFAULT_MAX_FRAME_LENGTH);
        let mut buf = BytesMut::from(&b"Content-Length: 60000000\r\n\r\n{"[..]);
        let cap = buf.capacity();
        assert_eq!(c.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= cap);
    }

    #[test]
    fn a_length_that_overflows_is_malformed() {
        let input = format!(
            "Content-Length: 99999999999999999999999\r\n\r\n{{}}{}",
            frame("[]")
        );
        assert_eq!(
            decode_all(100, input.as_bytes()),
            vec![malformed(INVALID_LENGTH), msg("[]")]
        );
    }

    #[test]
    fn a_non_numeric_length_is_malformed_and_its_body_is_skipped() {
        for bad in ["abc", "-1", "+2", "1 2", "0x10", ""] {
            let input = format!("Content-Length: {bad}\r\n\r\n{{\"lost\":1}}{}", frame("[]"));
            assert_eq!(
                decode_all(100, input.as_bytes()),
                vec![malformed(INVALID_LENGTH), msg("[]")],
                "Content-Length: {bad:?}"
            );
        }
    }

    #[test]
    fn a_missing_length_is_malformed_and_resyncs_to_the_next_header() {
        let input = format!("Content-Type: x\r\n\r\n{{\"lost\":1}}{}", frame("[]"));
        assert_eq!(
            decode_all(100, input.as_bytes()),
            vec![malformed(MISSING_LENGTH), msg("[]")]
        );
    }

    #[test]
    fn a_duplicate_length_is_malformed() {
        let input = format!(
            "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{{}}{}",
            frame("[]")
        );
        assert_eq!(
            decode_all(100, input.as_bytes()),
            vec![malformed(DUPLICATE_LENGTH), msg("[]")]
        );
    }

    #[test]
    fn a_junk_line_before_a_header_costs_one_bad_frame_and_no_message() {
        let input = format!("{}Listening on stdio\r\n{}", frame("{}"), frame("[]"));
        assert_eq!(
            decode_all(100, input.as_bytes()),
            vec![msg("{}"), malformed(NOT_A_HEADER_LINE), msg("[]")]
        );
        let input = format!("debug: started\n{}", frame("[]"));
        assert_eq!(
            decode_all(100, input.as_bytes()),
            vec![malformed(BARE_LF), msg("[]")]
        );
    }

    #[test]
    fn a_header_line_ended_by_a_bare_lf_is_malformed() {
        let input = format!("Content-Length: 2\n\n{{}}{}", frame("[]"));
        assert_eq!(
            decode_all(100, input.as_bytes()),
            vec![malformed(BARE_LF), msg("[]")]
        );
    }

    #[test]
    fn a_header_line_with_a_bad_name_or_value_is_malformed() {
        for line in ["Content Length: 2", ": 2", "Content-Length 2", "X-A: \u{1}"] {
            let input = format!("{line}\r\n\r\n{}", frame("[]"));
            assert_eq!(
                decode_all(100, input.as_bytes()),
                vec![malformed(NOT_A_HEADER_LINE), msg("[]")],
                "{line:?}"
            );
        }
    }

    #[test]
    fn an_endless_header_is_malformed_once_and_memory_stays_bounded() {
        let mut c = codec(100);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let chunk = [b'a'; 1000];
        for _ in 0..1000 {
            buf.extend_from_slice(&chunk);
            while let Some(f) = c.decode(&mut buf).unwrap() {
                out.push(f);
            }
            assert!(buf.len() <= MAX_HEADER_LENGTH + chunk.len());
        }
        buf.extend_from_slice(frame("{}").as_bytes());
        while let Some(f) = c.decode(&mut buf).unwrap() {
            out.push(f);
        }
        assert_eq!(out, vec![malformed(HEADER_TOO_LONG), msg("{}")]);
    }

    #[test]
    fn a_header_block_at_the_size_cap_is_accepted_and_one_byte_more_is_not() {
        // "Content-Length: 2\r\n" + "X: <pad>\r\n" + "\r\n" == MAX_HEADER_LENGTH.
        let fixed = "Content-Length: 2\r\n".len() + "X: \r\n".len() + 2;
        let pad = "p".repeat(MAX_HEADER_LENGTH - fixed);
        let at_cap = format!("Content-Length: 2\r\nX: {pad}\r\n\r\n{{}}");
        assert_eq!(at_cap.len(), MAX_HEADER_LENGTH + 2);
        assert_eq!(decode_all(100, at_cap.as_bytes()), vec![msg("{}")]);
        let over = format!("Content-Length: 2\r\nX: {pad}p\r\n\r\n{{}}{}", frame("[]"));
        assert_eq!(
            decode_all(100, over.as_bytes()),
            vec![malformed(HEADER_TOO_LONG), msg("[]")]
        );
    }

    #[test]
    fn eof_inside_a_body_is_truncated() {
        assert_eq!(
            decode_all(100, b"Content-Length: 10\r\n\r\n{\"a\""),
            vec![Frame::Bad(BadFrame::Truncated)]
        );
    }

    #[test]
    fn eof_inside_a_header_is_truncated() {
        for input in [
            &b"Content-Len"[..],
            b"Content-Length: 2\r\n",
            b"Content-Length: 2\r\n\r",
        ] {
            assert_eq!(
                decode_all(100, input),
                vec![Frame::Bad(BadFrame::Truncated)],
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn eof_inside_a_skipped_body_is_truncated_after_too_long() {
        assert_eq!(
            decode_all(4, b"Content-Length: 10\r\n\r\n{\"a\":"),
            vec![
                Frame::Bad(BadFrame::TooLong { limit: 4 }),
                Frame::Bad(BadFrame::Truncated)
            ]
        );
    }

    #[test]
    fn eof_while_resynchronising_adds_nothing() {
        assert_eq!(
            decode_all(100, b"garbage\r\nmore garbage"),
            vec![malformed(NOT_A_HEADER_LINE)]
        );
    }

    #[test]
    fn eof_between_frames_is_clean() {
        let input = format!("{}\r\n", frame("{}"));
        assert_eq!(decode_all(100, input.as_bytes()), vec![msg("{}")]);
        assert_eq!(decode_all(100, b""), vec![]);
    }

    /// Every behaviour above in one stream.
    fn mixed_input() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(frame(r#"{"jsonrpc":"2.0","method":"a"}"#).as_bytes());
        v.extend_from_slice(b"\r\nstray log line\n");
        v.extend_from_slice(b"Content-Type: application/json\r\ncontent-length: 3\r\n\r\n[1]");
        v.extend_from_slice(b"Content-Length: 40\r\n\r\n");
        v.extend_from_slice(&[b'z'; 40]);
        v.extend_from_slice(b"Content-Length: x\r\n\r\n{\"lost\":true}");
        v.extend_from_slice(&[b'q'; MAX_HEADER_LENGTH + 10]);
        v.extend_from_slice(frame("not json").as_bytes());
        v.extend_from_slice(b"Content-Length: 2\n\n{}");
        v.extend_from_slice(frame("{\"é\":\"ü\"}").as_bytes());
        v.extend_from_slice(b"Content-Length: 30\r\n\r\n{\"cut");
        v
    }

    #[test]
    fn the_mixed_stream_decodes_to_the_documented_frames() {
        assert_eq!(
            decode_all(32, &mixed_input()),
            vec![
                msg(r#"{"jsonrpc":"2.0","method":"a"}"#),
                malformed(BARE_LF),
                msg("[1]"),
                Frame::Bad(BadFrame::TooLong { limit: 32 }),
                malformed(INVALID_LENGTH),
                msg("not json"),
                malformed(BARE_LF),
                msg("{\"é\":\"ü\"}"),
                Frame::Bad(BadFrame::Truncated),
            ]
        );
    }

    #[test]
    fn arbitrary_chunk_splits_give_identical_frames() {
        let input = mixed_input();
        let whole = decode_all(32, &input);
        // Every two-way split.
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(feed(&mut codec(32), [a, b]), whole, "split at {at}");
        }
        // One byte at a time.
        assert_eq!(feed(&mut codec(32), input.chunks(1)), whole);
        // Pseudo-random chunk sizes (a fixed LCG, so failures reproduce).
        for seed in 0..300u64 {
            let mut state = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let mut chunks = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let n = ((state >> 33) as usize % 64 + 1).min(rest.len());
                let (c, r) = rest.split_at(n);
                chunks.push(c);
                rest = r;
            }
            assert_eq!(feed(&mut codec(32), chunks), whole, "seed {seed}");
        }
    }

    #[test]
    fn encoding_writes_the_byte_length_header_then_the_body() {
        let mut c = codec(100);
        let mut dst = BytesMut::new();
        c.encode(Bytes::from_static("{\"é\":1}".as_bytes()), &mut dst)
            .unwrap();
        assert_eq!(&dst[..], "Content-Length: 8\r\n\r\n{\"é\":1}".as_bytes());
    }

    #[test]
    fn encoded_messages_decode_back_unchanged() {
        let mut c = codec(1000);
        let mut wire = BytesMut::new();
        let bodies = ["{}", "", "[1,2]", "{\"s\":\"a\\nb\"}"];
        for b in bodies {
            c.encode(Bytes::copy_from_slice(b.as_bytes()), &mut wire)
                .unwrap();
        }
        let frames = feed(&mut codec(1000), [&wire[..]]);
        assert_eq!(frames, bodies.map(msg).to_vec());
    }

    #[tokio::test]
    async fn a_framed_read_goes_on_after_bad_frames_and_ends_cleanly() {
        let input = mixed_input();
        let frames: Vec<_> = FramedRead::new(&input[..], codec(32)).collect().await;
        let frames: Vec<Frame> = frames.into_iter().map(Result::unwrap).collect();
        assert_eq!(frames, decode_all(32, &input));
        assert_eq!(frames.len(), 9);
    }
}
