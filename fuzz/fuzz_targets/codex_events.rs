//! codex notifications to turn events: see `checks/codex_events.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| jsonrpc_stdio_fuzz::codex_events::check(data));
