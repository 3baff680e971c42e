//! The server's stderr: always drained, logged line by line, tail kept.
//!
//! A child whose stderr pipe fills up blocks on its next write and stops
//! answering, so stderr is read for the whole life of the process whether or
//! not anyone looks at it. Lines are capped in length, and only a bounded tail
//! is kept, for the error that reports the server's death.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// The last lines written to stderr, at most `capacity` bytes in all.
#[derive(Debug)]
pub(crate) struct StderrTail {
    lines: VecDeque<String>,
    bytes: usize,
    capacity: usize,
}

impl StderrTail {
    pub(crate) fn new(capacity: usize) -> Self {
        StderrTail {
            lines: VecDeque::new(),
            bytes: 0,
            capacity,
        }
    }

    pub(crate) fn push(&mut self, mut line: String) {
        if line.len() > self.capacity {
            let mut cut = line.len() - self.capacity;
            while !line.is_char_boundary(cut) {
                cut += 1;
            }
            line.drain(..cut);
        }
        self.bytes += line.len() + 1;
        self.lines.push_back(line);
        while self.bytes > self.capacity + 1 {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.len() + 1;
        }
    }

    pub(crate) fn snapshot(&self) -> String {
        let mut out = String::with_capacity(self.bytes);
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// Reads `stderr` to its end, logging each line under the target
/// `jsonrpc_stdio::stderr` and keeping the tail. Lines longer than `max_line`
/// bytes are cut there (the rest of the line is read and dropped, so memory
/// stays bounded even for a flood with no newline).
pub(crate) async fn drain(
    stderr: impl AsyncRead + Unpin,
    tail: Arc<Mutex<StderrTail>>,
    max_line: usize,
    pid: Option<u32>,
) {
    let mut reader = BufReader::with_capacity(16 * 1024, stderr);
    let mut line: Vec<u8> = Vec::new();
    let mut truncated = false;
    loop {
        let chunk = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(chunk) => chunk,
        };
        let (part, used, end_of_line) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        let room = max_line.saturating_sub(line.len());
        truncated |= part.len() > room;
        line.extend_from_slice(&part[..part.len().min(room)]);
        reader.consume(used);
        if end_of_line {
            emit(&tail, &mut line, &mut truncated, pid);
        }
    }
    if !line.is_empty() {
        emit(&tail, &mut line, &mut truncated, pid);
    }
}

fn emit(tail: &Mutex<StderrTail>, line: &mut Vec<u8>, truncated: &mut bool, pid: Option<u32>) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let mut text = String::from_utf8_lossy(line).into_owned();
    if std::mem::take(truncated) {
        text.push_str(" [line truncated]");
    }
    line.clear();
    tracing::debug!(target: "jsonrpc_stdio::stderr", pid, "{text}");
    crate::lock(tail).push(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_within_capacity() {
        let mut t = StderrTail::new(10);
        for l in ["aaaa", "bbbb", "cccc"] {
            t.push(l.into());
        }
        assert_eq!(t.snapshot(), "bbbb\ncccc\n");
        t.push("x".repeat(25));
        assert_eq!(t.snapshot(), format!("{}\n", "x".repeat(10)));
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_flagged() {
        let tail = Arc::new(Mutex::new(StderrTail::new(1024)));
        let input = format!("short\n{}\nlast", "y".repeat(100));
        drain(input.as_bytes(), tail.clone(), 10, None).await;
        let snap = tail.lock().unwrap().snapshot();
        assert_eq!(snap, "short\nyyyyyyyyyy [line truncated]\nlast\n");
    }
}
