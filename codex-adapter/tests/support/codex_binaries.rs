//! Where the live tests find the real codex binaries, and what they do when
//! one is missing: fail under `CI=true` (a missing dependency must never pass
//! as a skipped test), skip with the reason elsewhere. Part of codex-adapter's
//! test support; `codex-turn`'s tests include it through `#[path]`.

use std::path::{Path, PathBuf};

/// Each version: its name, the variable that overrides its path, and where
/// `scripts/install-tools codex` puts it, relative to the workspace root.
pub const VERSIONS: [(&str, &str, &str); 2] = [
    (
        "0.72.0",
        "CODEX_072_BIN",
        ".tools/codex-0.72.0/node_modules/@openai/codex/vendor/x86_64-unknown-linux-musl/codex/codex",
    ),
    (
        "latest",
        "CODEX_LATEST_BIN",
        ".tools/codex-latest/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex",
    ),
];

/// The codex binaries to test, or none (with the reason printed) outside CI.
pub fn binaries() -> Vec<(&'static str, PathBuf)> {
    let root = workspace_root();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let mut found = Vec::new();
    for (version, var, default) in VERSIONS {
        let path = std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(default));
        if path.is_file() {
            found.push((version, path));
        } else if ci {
            panic!(
                "codex {version} not found at {} (set {var}, or run scripts/install-tools codex)",
                path.display()
            );
        } else {
            eprintln!(
                "skipping codex {version}: not found at {} (set {var}, or run scripts/install-tools codex)",
                path.display()
            );
        }
    }
    found
}

/// The workspace root (the directory with `Cargo.lock`), whichever crate
/// includes this file and however deep it sits.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists())
        .expect("the crate lies inside the workspace")
        .to_path_buf()
}
