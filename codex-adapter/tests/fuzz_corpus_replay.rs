//! Replays every committed seed of the `codex_events` fuzz corpus
//! (`fuzz/corpus/codex_events/`) through the very check the `cargo fuzz`
//! target runs, so stable `cargo test` covers each seed and each regression
//! input a fuzzer found. The check lives in `fuzz/checks/` (one copy, shared
//! with the target; see `fuzz/README.md`).

#[path = "../../fuzz/checks/codex_events.rs"]
mod codex_events;
#[path = "../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn every_codex_events_seed_holds() {
    replay::replay(
        env!("CARGO_MANIFEST_DIR"),
        "codex_events",
        codex_events::check,
    );
}
