//! The newline-delimited framing, fed in arbitrary reads: see
//! `checks/ndjson_frames.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| jsonrpc_stdio_fuzz::ndjson_frames::check(data));
