//! The property checks behind each fuzz target, one module per target.
//!
//! The files live in `../checks/` and are compiled twice: here, for the
//! `cargo fuzz` targets, and by the corpus replay tests of the main workspace
//! (`jsonrpc-stdio/tests/fuzz_corpus_replay.rs`,
//! `codex-adapter/tests/fuzz_corpus_replay.rs`), which run every committed
//! seed through the same functions under stable `cargo test`.

#[path = "../checks/codex_events.rs"]
pub mod codex_events;
#[path = "../checks/content_length_frames.rs"]
pub mod content_length_frames;
#[path = "../checks/frames.rs"]
pub mod frames;
#[path = "../checks/message_roundtrip.rs"]
pub mod message_roundtrip;
#[path = "../checks/ndjson_frames.rs"]
pub mod ndjson_frames;
