//! Message classification micro-benchmarks: parsing one frame into a
//! request, notification or response (what the reader task does per frame).
//!
//! `cargo bench -p jsonrpc-stdio --bench classify`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jsonrpc_stdio::Message;

fn classify(c: &mut Criterion) {
    let data_60k = "x".repeat(60_000);
    let cases: Vec<(&str, String)> = vec![
        (
            "response/100B",
            format!(
                r#"{{"jsonrpc":"2.0","id":12345,"result":{{"data":"{}"}}}}"#,
                "x".repeat(100)
            ),
        ),
        (
            "response/60KB",
            format!(r#"{{"jsonrpc":"2.0","id":12345,"result":{{"data":"{data_60k}"}}}}"#),
        ),
        (
            "error_response",
            r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"method not found","data":{"method":"x"}}}"#.into(),
        ),
        (
            "notification/echo_progress",
            r#"{"jsonrpc":"2.0","method":"echo/progress","params":{"request":12345,"seq":3}}"#
                .into(),
        ),
        (
            "notification/codex_delta",
            r#"{"method":"item/agentMessage/delta","params":{"threadId":"0199a0f6-2f0c-7c61-a6b0-7f0cbb4c2f0a","turnId":"0199a0f6-3b3c-7d12-9d7a-1e8a2c0f5e11","itemId":"msg_0001","delta":"Hello, wor"}}"#
                .into(),
        ),
        (
            "request",
            r#"{"id":0,"method":"item/commandExecution/requestApproval","params":{"threadId":"t","turnId":"u","itemId":"i","command":"ls -la","cwd":"/tmp"}}"#.into(),
        ),
        (
            "batch/4",
            r#"[{"jsonrpc":"2.0","id":1,"result":1},{"jsonrpc":"2.0","id":2,"result":2},{"jsonrpc":"2.0","method":"n","params":[]},{"jsonrpc":"2.0","id":3,"result":null}]"#.into(),
        ),
    ];
    let mut group = c.benchmark_group("classify");
    for (name, frame) in &cases {
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| Message::parse(black_box(frame.as_bytes())))
        });
    }
    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
