//! How messages are cut out of the byte stream, and how they are written.
//!
//! A framing is a [`tokio_util::codec`] `Decoder` + `Encoder` pair chosen when
//! the connection is built ([`Framing`]). The decoder never fails for a bad
//! frame: after a `Decoder` error a `FramedRead` ends, and one malformed line
//! from the peer must not end the connection. Bad frames therefore come back
//! as [`Frame::Bad`] items; only I/O errors are decoder errors.
//!
//! Two framings exist:
//!
//! - [`Framing::NewlineDelimited`]: one message per line (codex, MCP servers).
//! - [`Framing::ContentLength`]: LSP's `Content-Length: N` headers, a blank
//!   line, then N bytes (language servers). Its rules for bad input are
//!   listed on the variant.
//!
//! In both, memory stays bounded by the configured maximum frame length (plus
//! [`MAX_HEADER_LENGTH`] for headers): the decoder never buffers or reserves
//! more than that, whatever a peer claims. A frame is not checked for JSON or
//! UTF-8 here: the connection checks each frame as UTF-8 once (discarding
//! one that is not as [`BadFrame::InvalidUtf8`]), then parses it.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use jsonrpc_stdio::framing::{Frame, FrameCodec, Framing};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let framing: Framing = "content-length".parse().unwrap();
//! let mut codec = FrameCodec::new(framing, 1024);
//! let mut wire = BytesMut::new();
//! codec.encode(Bytes::from_static(b"{}"), &mut wire).unwrap();
//! assert_eq!(&wire[..], b"Content-Length: 2\r\n\r\n{}");
//! assert_eq!(
//!     codec.decode(&mut wire).unwrap(),
//!     Some(Frame::Message(Bytes::from_static(b"{}")))
//! );
//! ```

mod content_length;
mod lines;
mod oversized;

use std::{fmt, io};

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The default maximum frame length: 64 MiB. Real codex messages (a turn's
/// aggregated command output, a whole diff) are large; a small limit such as
/// asyncio's 64 KiB is a known failure.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 64 * 1024 * 1024;

/// The most bytes one `Content-Length` header block may take, blank line
/// included: 8 KiB. Real headers are under 100 bytes; anything longer is
/// junk and is resynchronised past (see [`Framing::ContentLength`]).
pub const MAX_HEADER_LENGTH: usize = 8 * 1024;

/// Which framing the peer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Framing {
    /// One JSON message per line (`\n`, an optional `\r` before it is dropped).
    /// Blank lines are skipped. What codex and MCP servers speak.
    ///
    /// A line longer than the maximum frame length (counting a `\r`) is
    /// discarded as it streams in, never buffered whole, and reported once:
    /// as [`BadFrame::ResponseTooLong`] when its first (or last) bytes show a
    /// response and its id (see [`BadFrame::too_long`]), which happens as
    /// soon as its first bytes arrive when the id comes first; otherwise as
    /// [`BadFrame::TooLong`]. A line is not checked for UTF-8 (nor JSON)
    /// here: a line of invalid UTF-8 is a [`Frame::Message`], which the
    /// connection discards as [`BadFrame::InvalidUtf8`]. A blank line is one
    /// of ASCII whitespace only. The last line needs no `\n`.
    #[default]
    NewlineDelimited,
    /// LSP base-protocol framing: header lines `Name: value\r\n`, a blank line
    /// `\r\n`, then exactly `Content-Length` bytes of body. What language
    /// servers speak over stdio. Outgoing messages get a `Content-Length`
    /// header only.
    ///
    /// Incoming input is read by these rules; none ends the stream:
    ///
    /// - **Headers.** `Content-Length` (any case) is required, once, as a
    ///   decimal number. `Content-Type` and any other well-formed header
    ///   (`token: visible ASCII`) are accepted and ignored. Whitespace and
    ///   blank lines before a header are skipped (a server that ends its
    ///   bodies with a newline still works).
    /// - **Too long.** A body whose `Content-Length` is above the maximum
    ///   frame length is discarded as it arrives, never buffered, and the
    ///   next frame follows it. It is reported once, as for newline-delimited
    ///   lines: [`BadFrame::ResponseTooLong`] when its first (or last) bytes
    ///   show a response and its id, else [`BadFrame::TooLong`] — as soon as
    ///   its first bytes decide it, or at the end of the body.
    /// - **Malformed header.** A line that is not `Name: value`, a line ended by
    ///   a bare `\n`, a missing, duplicated, non-numeric or overflowing
    ///   `Content-Length`, or a header block longer than [`MAX_HEADER_LENGTH`]
    ///   gives one [`BadFrame::MalformedHeader`]. The decoder then
    ///   *resynchronises*: it drops the first byte of the offending line and
    ///   discards everything up to the next `Content-Length:` (any case),
    ///   which starts the next header. Junk lines before a header (a stray log
    ///   line on stdout) thus cost one `MalformedHeader` and no real message;
    ///   the body of a frame whose header is malformed is skipped with it.
    ///   While it searches, resync keeps at most 14 bytes buffered between
    ///   reads.
    /// - **Not JSON.** A body is delivered as a [`Frame::Message`] whatever it
    ///   holds (an empty body included); the message parser rejects it.
    /// - **End of stream.** Ending inside a header, a body or a skipped body
    ///   gives one [`BadFrame::Truncated`], and the partial bytes are dropped
    ///   (a skipped body not yet reported is reported first, from its first
    ///   bytes alone).
    ///   Ending while resynchronising gives nothing more.
    /// - **Chunking.** How the input is split into reads never changes the
    ///   frames decoded.
    ContentLength,
}

impl fmt::Display for Framing {
    /// The canonical command-line name: `ndjson` or `content-length`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framing::NewlineDelimited => "ndjson",
            Framing::ContentLength => "content-length",
        })
    }
}

impl std::str::FromStr for Framing {
    type Err = String;

    /// Parses the names used on command lines: `ndjson` (also `newline`,
    /// `newline-delimited`) and `content-length` (also `lsp`).
    ///
    /// ```
    /// use jsonrpc_stdio::framing::Framing;
    /// assert_eq!("ndjson".parse(), Ok(Framing::NewlineDelimited));
    /// assert_eq!("content-length".parse(), Ok(Framing::ContentLength));
    /// assert!("xml".parse::<Framing>().unwrap_err().contains("content-length"));
    /// ```
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ndjson" | "newline" | "newline-delimited" => Ok(Framing::NewlineDelimited),
            "content-length" | "lsp" => Ok(Framing::ContentLength),
            other => Err(format!(
                "unknown framing {other:?}; expected ndjson or content-length"
            )),
        }
    }
}

/// One decoded unit of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The bytes of one message (or batch), not yet parsed.
    Message(Bytes),
    /// A frame that could not be cut out; the stream goes on after it.
    Bad(BadFrame),
}

/// A frame the framing could not deliver. Each is skipped, counted and logged;
/// none ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadFrame {
    /// Longer than the configured maximum; its bytes are discarded without
    /// being buffered: up to the next newline (newline-delimited), or the
    /// declared number of body bytes (`Content-Length`).
    #[error("frame longer than the maximum of {limit} bytes; discarded")]
    TooLong {
        /// The configured maximum.
        limit: usize,
    },
    /// A response longer than the configured maximum, whose id could be
    /// read from its first (or last) bytes: its caller is failed at once
    /// with [`Error::ResponseTooLarge`](crate::Error::ResponseTooLarge). Its
    /// bytes are discarded as for [`TooLong`](Self::TooLong).
    #[error("response to request {id} longer than the maximum of {limit} bytes; discarded")]
    ResponseTooLong {
        /// The id of the request it answers.
        id: crate::message::RequestId,
        /// The configured maximum.
        limit: usize,
    },
    /// Not valid UTF-8. The codecs do not check it, and deliver such a frame
    /// as a [`Frame::Message`]: the connection's reader, which checks every
    /// frame of either framing once before parsing it, discards it as this
    /// (logged and counted in `bad_frames`).
    #[error("frame is not valid UTF-8; discarded")]
    InvalidUtf8,
    /// A `Content-Length` header block that cannot be read; the input was
    /// skipped up to the next `Content-Length:` header.
    #[error("malformed Content-Length header ({reason}); skipped to the next header")]
    MalformedHeader {
        /// What was wrong, e.g. "no Content-Length header".
        reason: &'static str,
    },
    /// The stream ended inside a frame (`Content-Length` framing); its partial
    /// bytes were dropped.
    #[error("the stream ended inside a frame; its partial bytes were dropped")]
    Truncated,
}

/// The codec behind a [`Framing`]: one `Decoder`/`Encoder` whatever the framing,
/// so the connection's reader and writer are not generic over it.
#[derive(Debug)]
pub struct FrameCodec {
    kind: CodecKind,
}

#[derive(Debug)]
enum CodecKind {
    Lines(lines::LineCodec),
    ContentLength(content_length::ContentLengthCodec),
}

impl FrameCodec {
    /// A codec for `framing` that refuses frames longer than `max_frame_length`.
    pub fn new(framing: Framing, max_frame_length: usize) -> Self {
        let kind = match framing {
            Framing::NewlineDelimited => CodecKind::Lines(lines::LineCodec::new(max_frame_length)),
            Framing::ContentLength => {
                CodecKind::ContentLength(content_length::ContentLengthCodec::new(max_frame_length))
            }
        };
        FrameCodec { kind }
    }

    fn decode_with(&mut self, buf: &mut BytesMut, eof: bool) -> Result<Option<Frame>, io::Error> {
        match &mut self.kind {
            CodecKind::Lines(codec) if eof => Ok(codec.decode_eof(buf)),
            CodecKind::Lines(codec) => Ok(codec.decode(buf)),
            CodecKind::ContentLength(codec) if eof => Ok(codec.decode_eof(buf)),
            CodecKind::ContentLength(codec) => Ok(codec.decode(buf)),
        }
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, io::Error> {
        self.decode_with(buf, false)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, io::Error> {
        self.decode_with(buf, true)
    }
}

/// Writes one already-serialized message.
impl Encoder<Bytes> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, message: Bytes, dst: &mut BytesMut) -> Result<(), io::Error> {
        match &self.kind {
            CodecKind::Lines(_) => {
                // serde_json escapes newlines inside strings and writes no
                // whitespace between tokens, so a message is always one line.
                dst.reserve(message.len() + 1);
                dst.put_slice(&message);
                dst.put_u8(b'\n');
            }
            CodecKind::ContentLength(_) => {
                content_length::ContentLengthCodec::encode(&message, dst);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut FrameCodec, input: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            out.push(f);
        }
        while let Some(f) = codec.decode_eof(&mut buf).unwrap() {
            out.push(f);
        }
        out
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn lines_are_frames_and_blank_lines_are_skipped() {
        let mut c = FrameCodec::new(Framing::NewlineDelimited, 100);
        let frames = decode_all(&mut c, b"{\"a\":1}\r\n\n  \r\n{\"b\":2}\n{\"c\":3}");
        assert_eq!(
            frames,
            vec![msg("{\"a\":1}"), msg("{\"b\":2}"), msg("{\"c\":3}")]
        );
    }

    #[test]
    fn an_oversized_line_is_reported_and_the_stream_goes_on() {
        let mut c = FrameCodec::new(Framing::NewlineDelimited, 8);
        let frames = decode_all(&mut c, b"{\"a\":\"0123456789\"}\n{\"b\":2}\n");
        assert_eq!(
            frames,
            vec![Frame::Bad(BadFrame::TooLong { limit: 8 }), msg("{\"b\":2}")]
        );
    }

    #[test]
    fn invalid_utf8_is_left_to_the_parser_and_the_stream_goes_on() {
        let mut c = FrameCodec::new(Framing::NewlineDelimited, 100);
        let frames = decode_all(&mut c, b"{\"a\":\"\xff\xfe\"}\n{\"b\":2}\n");
        assert_eq!(
            frames,
            vec![
                Frame::Message(Bytes::from_static(b"{\"a\":\"\xff\xfe\"}")),
                msg("{\"b\":2}")
            ]
        );
    }

    #[test]
    fn encoding_appends_one_newline() {
        let mut c = FrameCodec::new(Framing::NewlineDelimited, 100);
        let mut dst = BytesMut::new();
        c.encode(Bytes::from_static(b"{}"), &mut dst).unwrap();
        assert_eq!(&dst[..], b"{}\n");
    }
}
