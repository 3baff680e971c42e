//! Replays a target's committed seeds (`fuzz/corpus/<target>/`) through its
//! check function. Used by the `fuzz_corpus_replay` integration tests of the
//! crates next to `fuzz/`, so stable `cargo test` covers every seed and every
//! regression input a fuzzer found.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

/// Runs `check` on every seed of `target`'s corpus and fails naming each seed
/// that fails. Fails too when the corpus is missing or empty, so the replay
/// can never pass by finding nothing.
///
/// `manifest_dir` is the calling crate's `CARGO_MANIFEST_DIR`, a sibling of
/// `fuzz/`.
pub fn replay(manifest_dir: &str, target: &str, check: fn(&[u8])) {
    let dir = Path::new(manifest_dir)
        .parent()
        .expect("the crate sits in the workspace")
        .join("fuzz/corpus")
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
