//! The `Content-Length` framing, fed in arbitrary reads: see
//! `checks/content_length_frames.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| jsonrpc_stdio_fuzz::content_length_frames::check(data));
