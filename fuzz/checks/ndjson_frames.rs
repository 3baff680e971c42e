//! Target `ndjson_frames`: the newline-delimited framing.
//!
//! The input is the byte stream from the peer. For several maximum lengths
//! (derived from the input, so the fuzzer reaches the exact boundary) and
//! every [`Chunking`], the frames decoded must equal what the framing
//! documents, written here the slow obvious way: split at `\n`, drop one `\r`
//! before it, skip blank lines, report a line over the maximum as
//! [`BadFrame::too_long`] (a response's id read from its first or last
//! bytes, attributed only to the response it is), deliver every other line
//! as it is (invalid UTF-8 included: the connection checks it), then go on.
//! Nothing may depend on where the reads were cut, and [`decode_in_reads`]
//! checks the memory bound.

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
                let bad = BadFrame::too_long(line, max);
                assert_attributed_soundly(line, &bad);
                return Some(Frame::Bad(bad));
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            // Not checked for UTF-8: the connection does that, once.
            (!line.trim_ascii().is_empty()).then(|| Frame::Message(Bytes::copy_from_slice(line)))
        })
        .collect()
}

/// A too-long line is only ever attributed to the id of the response it is:
/// when the whole line reads as a message, a `ResponseTooLong` verdict must
/// name that response's id.
fn assert_attributed_soundly(line: &[u8], bad: &BadFrame) {
    let BadFrame::ResponseTooLong { id, .. } = bad else {
        return;
    };
    if let Ok(message) = jsonrpc_stdio::Message::parse_one(line) {
        match message {
            jsonrpc_stdio::Message::Response(r) => assert_eq!(
                r.id.as_ref(),
                Some(id),
                "a too-long response attributed to the wrong id"
            ),
            // A request that also carries `result` or `error` is malformed;
            // which of the two it is cannot be told from its first bytes.
            _ if carries_an_answer(line) => {}
            other => panic!("a too-long {other:?} was attributed to request {id}"),
        }
    }
}

fn carries_an_answer(line: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|v| {
            v.as_object()
                .map(|o| o.contains_key("result") || o.contains_key("error"))
        })
        .unwrap_or(false)
}
