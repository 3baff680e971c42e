//! A frame too long to read: kept are its first [`HEAD`] and last [`TAIL`]
//! bytes, enough to tell whether it is a response and to which request, so
//! that its caller fails at once instead of waiting out its timeout.
//!
//! The rules (the same whether the frame arrives in one read or byte by
//! byte):
//!
//! - The first bytes are read as the start of a JSON object, member by
//!   member. A member `method` means a request or notification: not a
//!   response. An `id` member counts once the byte after its value (`,` or
//!   `}`) is in, so `12` is never taken for the start of `123`. An `id`
//!   together with a `result` or `error` member is a response to that id.
//!   This, a `method` member, or an object that closes without them, is
//!   decided as soon as the first bytes show it, before the rest arrives.
//! - Otherwise, at the end of the frame, a frame whose first bytes had a
//!   `result` or `error` member and whose last bytes are `"id": <id> }` (the
//!   last member of the outermost object, as when the id is serialized after
//!   a large result) is a response to that id.
//! - Anything else — a batch, not JSON, an id that is not a number or a
//!   string — is a plain [`BadFrame::TooLong`].

use std::collections::VecDeque;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::BadFrame;
use crate::message::RequestId;

/// How many of a frame's first bytes are kept.
pub(super) const HEAD: usize = 4096;
/// How many of a frame's last bytes are kept.
pub(super) const TAIL: usize = 1024;

/// What the first bytes of a frame say.
#[derive(Debug, Default)]
struct HeadProbe {
    /// A committed `id` (its value was followed by `,` or `}`).
    id: Option<RequestId>,
    /// An `id` whose value was read but not yet seen to end.
    tentative: Option<RequestId>,
    method: bool,
    answer: bool,
}

enum Verdict {
    Response(RequestId),
    NotResponse,
    Undecided,
}

impl HeadProbe {
    /// Reads what `bytes` say; also whether the object closed within them.
    ///
    /// Any other error settles nothing before the frame ends: on a prefix,
    /// serde_json reports some cut values (`-` of `-3`) as syntax errors,
    /// and the verdict must not depend on where the reads were cut.
    fn read(bytes: &[u8]) -> (HeadProbe, bool) {
        let mut probe = HeadProbe::default();
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let closed = de.deserialize_map(&mut probe).is_ok();
        (probe, closed)
    }

    fn verdict(&self, finished: bool) -> Verdict {
        if self.method {
            return Verdict::NotResponse;
        }
        match &self.id {
            Some(id) if self.answer => Verdict::Response(id.clone()),
            _ if finished => Verdict::NotResponse,
            _ => Verdict::Undecided,
        }
    }
}

impl<'de> Visitor<'de> for &mut HeadProbe {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON-RPC object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        loop {
            let key = map.next_key::<String>()?;
            // The key (or the `}`) after an id ends its value.
            if let Some(id) = self.tentative.take() {
                self.id.get_or_insert(id);
            }
            let Some(key) = key else { return Ok(()) };
            match key.as_str() {
                "method" => {
                    self.method = true;
                    return Err(de::Error::custom("not a response"));
                }
                "id" => self.tentative = Some(map.next_value::<RequestId>()?),
                "result" | "error" => {
                    self.answer = true;
                    if self.id.is_some() {
                        return Err(de::Error::custom("decided"));
                    }
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
    }
}

/// Reads `"id": <id> }` backwards from the end of `tail`.
fn id_at_end(tail: &[u8]) -> Option<RequestId> {
    let ws = |b: &u8| b.is_ascii_whitespace();
    let trim_end = |s: &[u8]| -> usize { s.len() - s.iter().rev().take_while(|b| ws(b)).count() };
    let mut end = trim_end(tail);
    if end == 0 || tail[end - 1] != b'}' {
        return None;
    }
    end = trim_end(&tail[..end - 1]);
    let value_end = end;
    let value_start = if tail.get(end.checked_sub(1)?) == Some(&b'"') {
        // A string: back to the quote that opens it (one not escaped).
        let mut i = end - 1;
        loop {
            i = tail[..i].iter().rposition(|&b| b == b'"')?;
            let backslashes = tail[..i].iter().rev().take_while(|&&b| b == b'\\').count();
            if backslashes % 2 == 0 {
                break i;
            }
        }
    } else {
        end - tail[..end]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_digit() || **b == b'-')
            .count()
    };
    if value_start == value_end {
        return None;
    }
    let id: RequestId = serde_json::from_slice(&tail[value_start..value_end]).ok()?;
    let before = &tail[..trim_end(&tail[..value_start])];
    let before = before.strip_suffix(b":")?;
    let before = &before[..trim_end(before)];
    let before = before.strip_suffix(b"\"id\"")?;
    let before = &before[..trim_end(before)];
    matches!(before.last(), Some(b',' | b'{')).then_some(id)
}

/// The first and last bytes of a frame being discarded, and whether it has
/// been reported yet.
#[derive(Debug)]
pub(super) struct Oversized {
    limit: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    reported: bool,
}

impl Oversized {
    pub(super) fn new(limit: usize) -> Self {
        Oversized {
            limit,
            head: Vec::new(),
            tail: VecDeque::new(),
            reported: false,
        }
    }

    /// Takes the next bytes of the frame; returns its report as soon as its
    /// first bytes show it is a response, or that it is not.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Option<BadFrame> {
        let room = HEAD.saturating_sub(self.head.len());
        let grew = room > 0 && !bytes.is_empty();
        self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
        let keep = &bytes[bytes.len().saturating_sub(TAIL)..];
        self.tail.extend(keep);
        let excess = self.tail.len().saturating_sub(TAIL);
        self.tail.drain(..excess);
        if self.reported || !grew {
            return None;
        }
        let (probe, closed) = HeadProbe::read(&self.head);
        let report = match probe.verdict(false) {
            Verdict::Response(id) => BadFrame::ResponseTooLong {
                id,
                limit: self.limit,
            },
            Verdict::NotResponse => BadFrame::TooLong { limit: self.limit },
            Verdict::Undecided if closed => BadFrame::TooLong { limit: self.limit },
            Verdict::Undecided => return None,
        };
        self.reported = true;
        Some(report)
    }

    /// The frame ended: its report, unless it was made already.
    pub(super) fn finish(&mut self) -> Option<BadFrame> {
        self.report(true)
    }

    /// The stream ended inside the frame: its report from its first bytes
    /// alone (its last bytes are not its end), unless it was made already.
    pub(super) fn truncated(&mut self) -> Option<BadFrame> {
        self.report(false)
    }

    fn report(&mut self, complete: bool) -> Option<BadFrame> {
        if std::mem::replace(&mut self.reported, true) {
            return None;
        }
        let (probe, _) = HeadProbe::read(&self.head);
        let id = match probe.verdict(true) {
            Verdict::Response(id) => Some(id),
            _ if complete && probe.answer && !probe.method => {
                let tail: Vec<u8> = self.tail.iter().copied().collect();
                id_at_end(&tail)
            }
            _ => None,
        };
        Some(match id {
            Some(id) => BadFrame::ResponseTooLong {
                id,
                limit: self.limit,
            },
            None => BadFrame::TooLong { limit: self.limit },
        })
    }
}

impl BadFrame {
    /// What a whole frame longer than `limit` is reported as (see
    /// [`Framing`](super::Framing)): [`BadFrame::ResponseTooLong`] when its
    /// first or last bytes show a response and its id, [`BadFrame::TooLong`]
    /// otherwise. The decoders reach the same verdict however the frame is
    /// split into reads, and without keeping more than its first 4 KiB and
    /// last 1 KiB.
    ///
    /// ```
    /// use jsonrpc_stdio::framing::BadFrame;
    /// use jsonrpc_stdio::RequestId;
    ///
    /// let big = format!(r#"{{"id":7,"result":"{}"}}"#, "x".repeat(100));
    /// assert_eq!(
    ///     BadFrame::too_long(big.as_bytes(), 64),
    ///     BadFrame::ResponseTooLong { id: RequestId::from(7), limit: 64 }
    /// );
    /// let id_last = format!(r#"{{"result":"{}","id":"a"}}"#, "x".repeat(100));
    /// assert_eq!(
    ///     BadFrame::too_long(id_last.as_bytes(), 64),
    ///     BadFrame::ResponseTooLong { id: RequestId::from("a"), limit: 64 }
    /// );
    /// let request = format!(r#"{{"id":7,"method":"m","params":"{}"}}"#, "x".repeat(100));
    /// assert_eq!(BadFrame::too_long(request.as_bytes(), 64), BadFrame::TooLong { limit: 64 });
    /// ```
    pub fn too_long(frame: &[u8], limit: usize) -> BadFrame {
        let mut oversized = Oversized::new(limit);
        oversized
            .feed(frame)
            .or_else(|| oversized.finish())
            .unwrap_or(BadFrame::TooLong { limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(frame: &str) -> BadFrame {
        BadFrame::too_long(frame.as_bytes(), 8)
    }

    fn response(id: impl Into<RequestId>) -> BadFrame {
        BadFrame::ResponseTooLong {
            id: id.into(),
            limit: 8,
        }
    }

    const TOO_LONG: BadFrame = BadFrame::TooLong { limit: 8 };

    #[test]
    fn a_response_is_recognised_by_its_first_bytes() {
        assert_eq!(verdict(r#"{"id":12,"result":{"a":1}}"#), response(12));
        assert_eq!(
            verdict(r#"{"jsonrpc":"2.0","id":"x\"y","error":{"code":1}}"#),
            response("x\"y")
        );
        assert_eq!(verdict(r#" { "result" : 1 , "id" : -3 } "#), response(-3));
    }

    #[test]
    fn an_id_is_taken_only_once_its_value_has_ended() {
        let mut o = Oversized::new(8);
        assert_eq!(o.feed(br#"{"id":12"#), None);
        assert_eq!(o.feed(br#"3,"result":"#), Some(response(123)));
    }

    #[test]
    fn requests_batches_and_junk_are_plain_too_long() {
        for frame in [
            r#"{"id":1,"method":"m","params":[]}"#,
            r#"{"method":"m","id":1,"result":1}"#,
            r#"[{"id":1,"result":1}]"#,
            r#"not json at all"#,
            r#"{"id":null,"error":{"code":1}}"#,
            r#"{"id":1.5,"result":1}"#,
            r#"{"result":{"id":5}}"#,
            r#"{"result":"\"id\":5}"}"#,
            r#"{"other":1,"id":5}"#,
        ] {
            assert_eq!(verdict(frame), TOO_LONG, "{frame}");
        }
    }

    #[test]
    fn the_id_is_read_from_the_end_when_a_large_result_comes_first() {
        let big = "y".repeat(3 * HEAD);
        assert_eq!(
            verdict(&format!(r#"{{"result":"{big}","id":41}}"#)),
            response(41)
        );
        assert_eq!(
            verdict(&format!(
                "{{\"error\":{{\"data\":\"{big}\"}} , \"id\" : \"a\\\\\" }}\r\n"
            )),
            response("a\\")
        );
        assert_eq!(
            verdict(&format!(r#"{{"params":"{big}","id":41}}"#)),
            TOO_LONG
        );
    }

    #[test]
    fn any_split_gives_the_same_verdict() {
        let frames = [
            r#"{"id":123,"result":[1,2,3]}"#.to_string(),
            format!(r#"{{"result":"{}","id":"z"}}"#, "q".repeat(HEAD + 10)),
            r#"{"id":5,"method":"x"}"#.to_string(),
        ];
        for frame in &frames {
            let whole = verdict(frame);
            for step in [1, 2, 3, 7, 64, 1000] {
                let mut o = Oversized::new(8);
                let mut reports: Vec<BadFrame> = frame
                    .as_bytes()
                    .chunks(step)
                    .filter_map(|c| o.feed(c))
                    .collect();
                reports.extend(o.finish());
                assert_eq!(reports, vec![whole.clone()], "step {step}: {frame:.40}");
            }
        }
    }
}
