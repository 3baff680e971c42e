//! Target `ndjson_frames`: the newline-delimited framing.
//!
//! The input is the byte stream from the peer. For several maximum lengths
//! (derived from the input, so the fuzzer reaches the exact boundary) and
//! every [`Chunking`], the frames decoded must equal what the framing
//! documents, written here the slow obvious way: split at `\n`, drop one `\r`
//! before it, skip blank lines, report a line over the maximum as
//! [`BadFrame::TooLong`] and a line of invalid UTF-8 as
//! [`BadFrame::InvalidUtf8`], then go on. Nothing may depend on where the
//! reads were cut, and [`decode_in_reads`] checks the memory bound.

use bytes::Bytes;
use jsonrpc_stdio::framing::{BadFrame, Frame, Framing, DEFAULT_MAX_FRAME_LENGTH};

use super::frames::{assert_same_frames, decode_in_reads, Chunking};

/// Runs every property of the target on one input. Panics on a violation.
pub fn check(data: &[u8]) {
    for max in max_lengths(data) {
        let expected = documented_frames(data, max);
        for chunking in Chunking::ALL {
            let got = decode_in_reads(Framing::NewlineDelimited, max, 0, data, chunking);
            assert_same_frames(&got, &expected, &format_args!("max {max}, {chunking:?}"));
        }
    }
}

/// The default, and limits placed on and just under the first and the
/// longest line, and a small one steered by the last byte.
fn max_lengths(data: &[u8]) -> Vec<usize> {
    let first = data.split(|&b| b == b'\n').next().map_or(0, <[u8]>::len);
    let longest = data
        .split(|&b| b == b'\n')
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    let small = 1 + usize::from(data.last().map_or(0, |b| b % 64));
    let mut maxes = vec![
        DEFAULT_MAX_FRAME_LENGTH,
        first,
        first.saturating_sub(1),
        longest,
        longest.saturating_sub(1),
        small,
    ];
    // A zero maximum is no configuration anyone runs.
    maxes.retain(|&max| max > 0);
    maxes.sort_unstable();
    maxes.dedup();
    maxes
}

/// What the `NewlineDelimited` docs promise, line by line. The piece after
/// the last `\n` is the unterminated tail, read at EOF like any line.
fn documented_frames(data: &[u8], max: usize) -> Vec<Frame> {
    data.split(|&b| b == b'\n')
        .filter_map(|line| {
            // The limit counts the line as sent, `\r` included.
            if line.len() > max {
                return Some(Frame::Bad(BadFrame::TooLong { limit: max }));
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match std::str::from_utf8(line) {
                Err(_) => Some(Frame::Bad(BadFrame::InvalidUtf8)),
                Ok(text) if text.trim_ascii().is_empty() => None,
                Ok(_) => Some(Frame::Message(Bytes::copy_from_slice(line))),
            }
        })
        .collect()
}
