//! Peers the tests and benchmarks run against, and the benchmarks themselves;
//! see `src/bin/`. Never published. This library target exists so that the
//! root README's code is compiled and tested with both library crates in
//! reach, and holds what the benchmarks share.

/// The runtime a benchmark runs on: tokio's current-thread runtime, or its
/// multi-thread one with 2 workers (this machine's size, as `jrpc bench`).
pub fn bench_runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .expect("tokio runtime")
}

#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
