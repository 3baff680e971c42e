//! Replays every committed seed of the fuzz corpus (`fuzz/corpus/<target>/`)
//! through the very checks the `cargo fuzz` targets run, so stable
//! `cargo test` covers each seed and each regression input a fuzzer found.
//! The checks live in `fuzz/checks/` (one copy, shared with the targets).

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

#[path = "../../fuzz/checks/frames.rs"]
mod frames;
#[path = "../../fuzz/checks/message_roundtrip.rs"]
mod message_roundtrip;
#[path = "../../fuzz/checks/ndjson_frames.rs"]
mod ndjson_frames;

/// Runs `check` on every seed of `target`'s corpus and fails naming each seed
/// that fails. Fails too when the corpus is missing or empty, so the replay
/// can never pass by finding nothing.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut seeds: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());

    let failed: Vec<String> = seeds
        .iter()
        .filter_map(|path| {
            let data = fs::read(path).expect("a readable seed");
            panic::catch_unwind(|| check(&data))
                .err()
                .map(|_| path.display().to_string())
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} seeds of `{target}` fail (their panics are printed above):\n{}",
        failed.len(),
        seeds.len(),
        failed.join("\n"),
    );
}

#[test]
fn every_ndjson_frames_seed_holds() {
    replay("ndjson_frames", ndjson_frames::check);
}

#[test]
fn every_message_roundtrip_seed_holds() {
    replay("message_roundtrip", message_roundtrip::check);
}
