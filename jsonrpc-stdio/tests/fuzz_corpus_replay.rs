//! Replays every committed seed of the fuzz corpus (`fuzz/corpus/<target>/`)
//! of the targets over this crate through the very checks the `cargo fuzz`
//! targets run, so stable `cargo test` covers each seed and each regression
//! input a fuzzer found. The checks live in `fuzz/checks/` (one copy, shared
//! with the targets; see `fuzz/README.md`).

#[path = "../../fuzz/checks/content_length_frames.rs"]
mod content_length_frames;
#[path = "../../fuzz/checks/frames.rs"]
mod frames;
#[path = "../../fuzz/checks/message_roundtrip.rs"]
mod message_roundtrip;
#[path = "../../fuzz/checks/ndjson_frames.rs"]
mod ndjson_frames;
#[path = "../../fuzz/checks/replay.rs"]
mod replay;

use replay::replay;

#[test]
fn every_ndjson_frames_seed_holds() {
    replay(
        env!("CARGO_MANIFEST_DIR"),
        "ndjson_frames",
        ndjson_frames::check,
    );
}

#[test]
fn every_content_length_frames_seed_holds() {
    replay(
        env!("CARGO_MANIFEST_DIR"),
        "content_length_frames",
        content_length_frames::check,
    );
}

#[test]
fn every_message_roundtrip_seed_holds() {
    replay(
        env!("CARGO_MANIFEST_DIR"),
        "message_roundtrip",
        message_roundtrip::check,
    );
}
