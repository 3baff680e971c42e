//! Target `content_length_frames`: the LSP `Content-Length` framing.
//!
//! The input is used twice:
//! - as the peer's byte stream: for several maximum lengths (one on and one
//!   just under the first length a header declares), every [`Chunking`]
//!   decodes the same frames as one single read, and [`decode_in_reads`]
//!   checks that nothing more than the maximum plus [`MAX_HEADER_LENGTH`] is
//!   buffered and that a length a header merely claims is never reserved;
//! - as bodies (one per line) framed by the codec's own encoder: however
//!   that is cut into reads, each body comes back unchanged, or as
//!   [`BadFrame::too_long`]'s verdict when it is over the maximum, and the
//!   stream goes on.

use bytes::{Bytes, BytesMut};
use jsonrpc_stdio::framing::{
    BadFrame, Frame, FrameCodec, Framing, DEFAULT_MAX_FRAME_LENGTH, MAX_HEADER_LENGTH,
};
use tokio_util::codec::Encoder;

use super::frames::{assert_same_frames, decode_in_reads, Chunking};

/// Runs every property of the target on one input. Panics on a violation.
pub fn check(data: &[u8]) {
    check_stream(data);
    check_encoded_bodies(data);
}

fn check_stream(data: &[u8]) {
    let declared = declared_length(data);
    let maxes = limits([
        declared.unwrap_or(0),
        declared.unwrap_or(0).saturating_sub(1),
        small_limit(data),
    ]);
    for max in maxes {
        let whole = decode_in_reads(
            Framing::ContentLength,
            max,
            MAX_HEADER_LENGTH,
            data,
            Chunking::Whole,
        );
        for &chunking in &Chunking::ALL[1..] {
            let got = decode_in_reads(
                Framing::ContentLength,
                max,
                MAX_HEADER_LENGTH,
                data,
                chunking,
            );
            assert_same_frames(
                &got,
                &whole,
                &format_args!("stream, max {max}, {chunking:?} against one read"),
            );
        }
    }
}

fn check_encoded_bodies(data: &[u8]) {
    let bodies: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let mut wire = BytesMut::new();
    let mut encoder = FrameCodec::new(Framing::ContentLength, DEFAULT_MAX_FRAME_LENGTH);
    for body in &bodies {
        encoder
            .encode(Bytes::copy_from_slice(body), &mut wire)
            .expect("encoding into memory cannot fail");
    }
    let longest = bodies.iter().map(|b| b.len()).max().unwrap_or(0);
    for max in limits([longest, longest.saturating_sub(1), small_limit(data)]) {
        let expected: Vec<Frame> = bodies
            .iter()
            .map(|body| {
                if body.len() <= max {
                    Frame::Message(Bytes::copy_from_slice(body))
                } else {
                    Frame::Bad(BadFrame::too_long(body, max))
                }
            })
            .collect();
        for chunking in Chunking::ALL {
            let got = decode_in_reads(
                Framing::ContentLength,
                max,
                MAX_HEADER_LENGTH,
                &wire,
                chunking,
            );
            assert_same_frames(
                &got,
                &expected,
                &format_args!("encoded bodies, max {max}, {chunking:?}"),
            );
        }
    }
}

/// The default and `extra`, without zero (no one runs a zero maximum) or
/// repeats.
fn limits<const N: usize>(extra: [usize; N]) -> Vec<usize> {
    let mut maxes = vec![DEFAULT_MAX_FRAME_LENGTH];
    maxes.extend(extra);
    maxes.retain(|&max| max > 0);
    maxes.sort_unstable();
    maxes.dedup();
    maxes
}

/// A small maximum steered by the last byte.
fn small_limit(data: &[u8]) -> usize {
    1 + usize::from(data.last().map_or(0, |b| b % 64))
}

/// The number after the first `Content-Length:` (any case), if it fits.
fn declared_length(data: &[u8]) -> Option<usize> {
    const NAME: &[u8] = b"content-length:";
    let at = data
        .windows(NAME.len())
        .position(|w| w.eq_ignore_ascii_case(NAME))?;
    let value = data[at + NAME.len()..].trim_ascii_start();
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&value[..digits]).ok()?.parse().ok()
}
