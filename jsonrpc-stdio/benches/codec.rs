//! Framing micro-benchmarks: cutting frames out of a read buffer (newline and
//! `Content-Length`), and writing them.
//!
//! `cargo bench -p jsonrpc-stdio --bench codec`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use jsonrpc_stdio::framing::{Frame, FrameCodec, Framing};
use tokio_util::codec::{Decoder, Encoder};

/// A response as the echo server writes it, with `payload` bytes of data.
fn response(payload: usize) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":12345,"result":{{"data":"{}"}}}}"#,
        "x".repeat(payload)
    )
    .into_bytes()
}

/// `count` frames of `frame`, encoded back to back as the server would send them.
fn wire(framing: Framing, frame: &[u8], count: usize) -> BytesMut {
    let mut codec = FrameCodec::new(framing, usize::MAX);
    let mut wire = BytesMut::new();
    for _ in 0..count {
        codec
            .encode(Bytes::copy_from_slice(frame), &mut wire)
            .expect("encode");
    }
    wire
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (label, payload, count) in [("100B", 100, 256), ("60KB", 60_000, 4)] {
        let frame = response(payload);
        for framing in [Framing::NewlineDelimited, Framing::ContentLength] {
            let input = wire(framing, &frame, count);
            group.throughput(Throughput::Elements(count as u64));
            group.bench_function(format!("{framing}/{label}"), |b| {
                b.iter_batched_ref(
                    || (FrameCodec::new(framing, 64 << 20), input.clone()),
                    |(codec, buf)| {
                        let mut n = 0;
                        while let Some(Frame::Message(m)) = codec.decode(buf).expect("decode") {
                            n += m.len();
                        }
                        n
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let frame = Bytes::from(response(100));
    for framing in [Framing::NewlineDelimited, Framing::ContentLength] {
        group.throughput(Throughput::Elements(256));
        group.bench_function(format!("{framing}/100B"), |b| {
            let mut codec = FrameCodec::new(framing, usize::MAX);
            let mut dst = BytesMut::with_capacity(64 * 1024);
            b.iter(|| {
                dst.clear();
                for _ in 0..256 {
                    codec.encode(frame.clone(), &mut dst).expect("encode");
                }
                dst.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
