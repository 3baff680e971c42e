//! Message classification and round trip: see `checks/message_roundtrip.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| jsonrpc_stdio_fuzz::message_roundtrip::check(data));
