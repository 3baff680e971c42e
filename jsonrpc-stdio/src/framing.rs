//! How messages are cut out of the byte stream, and how they are written.
//!
//! A framing is a [`tokio_util::codec`] `Decoder` + `Encoder` pair chosen when
//! the connection is built ([`Framing`]). The decoder never fails for a bad
//! frame: after a `Decoder` error a `FramedRead` ends, and one malformed line
//! from the peer must not end the connection. Bad frames therefore come back
//! as [`Frame::Bad`] items; only I/O errors are decoder errors.

use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LinesCodec, LinesCodecError};

/// The default maximum frame length: 64 MiB. Real codex messages (a turn's
/// aggregated command output, a whole diff) are large; a small limit such as
/// asyncio's 64 KiB is a known failure.
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 64 * 1024 * 1024;

/// Which framing the peer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Framing {
    /// One JSON message per line (`\n`, an optional `\r` before it is dropped).
    /// Blank lines are skipped. What codex and MCP servers speak.
    #[default]
    NewlineDelimited,
}

impl std::str::FromStr for Framing {
    type Err = String;

    /// Parses the names used on command lines: `ndjson`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ndjson" | "newline" | "newline-delimited" => Ok(Framing::NewlineDelimited),
            other => Err(format!("unknown framing {other:?}; expected ndjson")),
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
    /// Longer than the configured maximum; its bytes were discarded up to the
    /// next delimiter without being buffered.
    #[error("frame longer than the maximum of {limit} bytes; discarded")]
    TooLong {
        /// The configured maximum.
        limit: usize,
    },
    /// Not valid UTF-8.
    #[error("frame is not valid UTF-8; discarded")]
    InvalidUtf8,
}

/// The codec behind a [`Framing`]: one `Decoder`/`Encoder` whatever the framing,
/// so the connection's reader and writer are not generic over it.
#[derive(Debug)]
pub struct FrameCodec {
    kind: CodecKind,
}

#[derive(Debug)]
enum CodecKind {
    Lines { lines: LinesCodec, limit: usize },
}

impl FrameCodec {
    /// A codec for `framing` that refuses frames longer than `max_frame_length`.
    pub fn new(framing: Framing, max_frame_length: usize) -> Self {
        let kind = match framing {
            Framing::NewlineDelimited => CodecKind::Lines {
                lines: LinesCodec::new_with_max_length(max_frame_length),
                limit: max_frame_length,
            },
        };
        FrameCodec { kind }
    }

    fn decode_with(
        &mut self,
        buf: &mut BytesMut,
        eof: bool,
    ) -> Result<Option<Frame>, io::Error> {
        match &mut self.kind {
            CodecKind::Lines { lines, limit } => loop {
                let line = if eof {
                    lines.decode_eof(buf)
                } else {
                    lines.decode(buf)
                };
                return match line {
                    Ok(Some(line)) if line.trim_ascii().is_empty() => continue,
                    Ok(Some(line)) => Ok(Some(Frame::Message(Bytes::from(line)))),
                    Ok(None) => Ok(None),
                    Err(LinesCodecError::MaxLineLengthExceeded) => {
                        Ok(Some(Frame::Bad(BadFrame::TooLong { limit: *limit })))
                    }
                    // `LinesCodec` consumes the line before checking UTF-8,
                    // so the stream can go on after it.
                    Err(LinesCodecError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
                        Ok(Some(Frame::Bad(BadFrame::InvalidUtf8)))
                    }
                    Err(LinesCodecError::Io(e)) => Err(e),
                };
            },
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
            CodecKind::Lines { .. } => {
                // serde_json escapes newlines inside strings and writes no
                // whitespace between tokens, so a message is always one line.
                dst.reserve(message.len() + 1);
                dst.put_slice(&message);
                dst.put_u8(b'\n');
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
        assert_eq!(frames, vec![msg("{\"a\":1}"), msg("{\"b\":2}"), msg("{\"c\":3}")]);
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
    fn invalid_utf8_is_reported_and_the_stream_goes_on() {
        let mut c = FrameCodec::new(Framing::NewlineDelimited, 100);
        let frames = decode_all(&mut c, b"{\"a\":\"\xff\xfe\"}\n{\"b\":2}\n");
        assert_eq!(frames, vec![Frame::Bad(BadFrame::InvalidUtf8), msg("{\"b\":2}")]);
    }

    #[test]
    fn encoding_appends_one_newline() {
        let mut c = FrameCodec::new(Framing::NewlineDelimited, 100);
        let mut dst = BytesMut::new();
        c.encode(Bytes::from_static(b"{}"), &mut dst).unwrap();
        assert_eq!(&dst[..], b"{}\n");
    }
}
