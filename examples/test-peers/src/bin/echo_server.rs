//! A newline-delimited JSON-RPC echo server: answers every request with
//! `result = params`.
//!
//! ```text
//! echo_server [--notify N] [--exit-after K]
//! ```
//! - `--notify N`: before each answer, send N notifications
//!   `{"method":"echo/progress","params":{"request":<id>,"seq":<i>}}`.
//! - `--exit-after K`: exit with status 7 after answering K requests (to test
//!   how clients handle a server that dies mid-run).
//!
//! Params are passed through as raw JSON, never re-serialized; output is
//! flushed only when no more input is already buffered, so pipelined clients
//! get batched writes.

use std::io::{self, BufRead, BufWriter, Write};

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

fn main() {
    let mut notify = 0u64;
    let mut exit_after = u64::MAX;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{name} needs a number")))
        };
        match arg.as_str() {
            "--notify" => notify = number("--notify"),
            "--exit-after" => exit_after = number("--exit-after"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if let Err(e) = serve(notify, exit_after) {
        // A closed pipe is how clients say goodbye.
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("echo_server: {e}");
            std::process::exit(1);
        }
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("echo_server: {problem}\nusage: echo_server [--notify N] [--exit-after K]");
    std::process::exit(64);
}

fn serve(notify: u64, exit_after: u64) -> io::Result<()> {
    let stdin = io::stdin();
    let mut input = io::BufReader::with_capacity(256 * 1024, stdin.lock());
    let mut out = BufWriter::with_capacity(256 * 1024, io::stdout().lock());
    let mut line = Vec::new();
    let mut answered = 0u64;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return out.flush();
        }
        let Ok(msg) = serde_json::from_slice::<Incoming>(&line) else {
            eprintln!("echo_server: skipping a line that is not a JSON object");
            continue;
        };
        // Notifications (no id) get no answer.
        let Some(id) = msg.id else { continue };
        for seq in 0..notify {
            writeln!(
                out,
                "{{\"jsonrpc\":\"2.0\",\"method\":\"echo/progress\",\"params\":{{\"request\":{},\"seq\":{seq}}}}}",
                id.get()
            )?;
        }
        let params = msg.params.map_or("null", RawValue::get);
        writeln!(
            out,
            "{{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":{params}}}",
            id.get()
        )?;
        answered += 1;
        if answered >= exit_after {
            out.flush()?;
            eprintln!("echo_server: exiting after {answered} answers as asked");
            std::process::exit(7);
        }
        if input.buffer().is_empty() {
            out.flush()?;
        }
    }
}
