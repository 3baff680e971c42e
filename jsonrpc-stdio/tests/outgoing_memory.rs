//! A server that never reads its stdin must not make us buffer without
//! bound. Alone in its test binary: it measures this process's memory.

use std::time::{Duration, Instant};

use jsonrpc_stdio::{Client, Error, ServerCommand, DEFAULT_MAX_QUEUED_BYTES};
use serde_json::value::RawValue;

/// Resident and peak resident memory of this process, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

const MIB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_reads_cannot_make_us_buffer_a_gigabyte() {
    let client = Client::builder()
        .close_grace(Duration::from_millis(100), Duration::from_millis(100))
        .spawn(ServerCommand::new("sleep").arg("300"))
        .unwrap();
    // 1 MiB of params, serialized as is.
    let payload = format!("\"{}\"", "x".repeat(MIB as usize - 2));
    let params: Box<RawValue> = RawValue::from_string(payload).unwrap();
    let (start_rss, _) = memory();
    // Well above the default limit (16 MiB) and what the writer holds, far
    // below the gigabyte attempted.
    let bound = start_rss + 128 * MIB;
    let started = Instant::now();
    let (mut queued, mut refused) = (0u32, 0u32);
    for i in 0..1024u32 {
        match client.notify("fill", &params) {
            Ok(()) => queued += 1,
            Err(Error::QueueFull {
                queued: q, limit, ..
            }) => {
                assert_eq!(limit, DEFAULT_MAX_QUEUED_BYTES);
                assert!(q as u64 <= DEFAULT_MAX_QUEUED_BYTES as u64 + MIB, "{q}");
                refused += 1;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
        // Stop early rather than eat a gigabyte when there is no bound.
        if i % 16 == 0 {
            let (rss, _) = memory();
            assert!(
                rss < bound,
                "RSS grew by {} MiB after {} MiB of notifications",
                (rss - start_rss) / MIB,
                i + 1
            );
        }
    }
    let (rss, peak) = memory();
    assert!(
        rss < bound && peak < bound,
        "rss {rss}, peak {peak}, start {start_rss}"
    );
    assert!((1..=17).contains(&queued), "{queued} queued");
    assert_eq!(queued + refused, 1024);
    let stats = client.stats();
    assert!(stats.queued_bytes > 0, "{stats:?}");
    assert!(
        stats.queued_bytes <= DEFAULT_MAX_QUEUED_BYTES as u64 + MIB,
        "{stats:?}"
    );
    // Fast: refusing costs no more than serializing.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let error = client.notify("fill", &params).unwrap_err();
    assert!(
        error.to_string().contains("the server is not reading"),
        "{error}"
    );
    client.close().await.unwrap();
}
