//! Drives a [`FrameCodec`] the way `FramedRead` does, over one byte stream cut
//! into reads at arbitrary points, and checks what must hold whatever the cut:
//! no decoder error, no frame over the maximum, and a buffer that never holds
//! more than the maximum (plus the framing's header allowance) once the
//! decoder has taken what it can.
//!
//! Shared by the frame fuzz targets and the corpus replay test; included with
//! `#[path]`, so it names every crate by its absolute path.

use bytes::BytesMut;
use jsonrpc_stdio::framing::{Frame, FrameCodec, Framing};
use tokio_util::codec::Decoder;

/// What the read buffer's capacity may exceed twice its peak length by. A
/// codec may reserve a little ahead; it must not reserve what a header
/// merely claims.
const CAPACITY_SLACK: usize = 64 * 1024;

/// How a stream is cut into reads. Every cut must decode to the same frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// One read holding everything.
    Whole,
    /// One byte per read: every boundary falls everywhere once.
    Bytewise,
    /// 1 to 16 bytes, the length taken from the byte a read starts at, so the
    /// fuzzer steers the cuts by the bytes it writes.
    Small,
    /// Lengths spread over twice the maximum, so reads straddle the limit.
    AroundLimit,
}

impl Chunking {
    /// Every way of cutting, the reference (`Whole`) first.
    pub const ALL: [Chunking; 4] = [
        Chunking::Whole,
        Chunking::Bytewise,
        Chunking::Small,
        Chunking::AroundLimit,
    ];

    /// The length of the read that starts at `pos` (at least 1, at most what
    /// is left).
    fn read_len(self, data: &[u8], pos: usize, max: usize) -> usize {
        let left = data.len() - pos;
        let byte = usize::from(data[pos]);
        let len = match self {
            Chunking::Whole => left,
            Chunking::Bytewise => 1,
            Chunking::Small => 1 + byte % 16,
            Chunking::AroundLimit => {
                let span = max.min(1 << 16) * 2 + 1;
                1 + byte.wrapping_mul(131) % span
            }
        };
        len.clamp(1, left)
    }
}

/// Decodes `data` with a fresh codec for `framing` and `max`, fed in reads cut
/// by `chunking`, then at EOF, exactly as `FramedRead` calls the decoder:
/// `decode` until it yields nothing after each read, then `decode_eof` until
/// it yields nothing.
///
/// Panics if the decoder fails (in memory there is no I/O, and a bad frame
/// must come back as [`Frame::Bad`], never as an error that ends the stream),
/// if a frame exceeds `max`, if more than `max + header_allowance` bytes stay
/// buffered once the decoder has taken what it can, or if the buffer's
/// capacity outgrows the bytes actually received.
pub fn decode_in_reads(
    framing: Framing,
    max: usize,
    header_allowance: usize,
    data: &[u8],
    chunking: Chunking,
) -> Vec<Frame> {
    let mut codec = FrameCodec::new(framing, max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut peak = 0;
    let mut pos = 0;
    while pos < data.len() {
        let len = chunking.read_len(data, pos, max);
        buf.extend_from_slice(&data[pos..pos + len]);
        pos += len;
        peak = peak.max(buf.len());
        loop {
            let frame = codec.decode(&mut buf);
            check_capacity(&buf, peak, max);
            match frame {
                Ok(Some(frame)) => push_frame(&mut frames, frame, max),
                Ok(None) => break,
                Err(e) => panic!("decode failed after {pos} bytes ({chunking:?}, max {max}): {e}"),
            }
        }
        assert!(
            buf.len() <= max.saturating_add(header_allowance),
            "{} bytes stay buffered after {pos} bytes, over the maximum of {max} \
             (+ {header_allowance} for a header) ({chunking:?})",
            buf.len(),
        );
    }
    loop {
        let frame = codec.decode_eof(&mut buf);
        check_capacity(&buf, peak, max);
        match frame {
            Ok(Some(frame)) => push_frame(&mut frames, frame, max),
            Ok(None) => break,
            Err(e) => panic!("decode_eof failed ({chunking:?}, max {max}): {e}"),
        }
    }
    frames
}

fn push_frame(frames: &mut Vec<Frame>, frame: Frame, max: usize) {
    if let Frame::Message(bytes) = &frame {
        assert!(
            bytes.len() <= max,
            "a frame of {} bytes came through a maximum of {max}",
            bytes.len()
        );
    }
    frames.push(frame);
}

fn check_capacity(buf: &BytesMut, peak: usize, max: usize) {
    assert!(
        buf.capacity() <= peak.saturating_mul(2).saturating_add(CAPACITY_SLACK),
        "the read buffer has a capacity of {} bytes after at most {peak} bytes were \
         buffered (max {max}): it reserved what was claimed, not what arrived",
        buf.capacity(),
    );
}

/// Asserts `got` and `expected` are the same frames, naming the first
/// difference rather than printing two whole streams.
pub fn assert_same_frames(got: &[Frame], expected: &[Frame], context: &dyn std::fmt::Display) {
    if let Some(i) = (0..got.len().min(expected.len())).find(|&i| got[i] != expected[i]) {
        panic!(
            "frame {i} differs ({context}):\n     got: {:?}\nexpected: {:?}",
            Short(&got[i]),
            Short(&expected[i]),
        );
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "{} frames instead of {} ({context}); first extra: {:?}",
        got.len(),
        expected.len(),
        got.get(expected.len())
            .or(expected.get(got.len()))
            .map(Short),
    );
}

/// A frame for a failure message: long messages cut to their first bytes.
struct Short<'a>(&'a Frame);

impl std::fmt::Debug for Short<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Frame::Message(bytes) if bytes.len() > 200 => write!(
                f,
                "Message({} bytes: {:?}...)",
                bytes.len(),
                bytes.slice(..200)
            ),
            frame => write!(f, "{frame:?}"),
        }
    }
}
