//! Finding the `codex` binary to run.
//!
//! Order: an explicit path, then `$CODEX_BIN`, then `codex` on `$PATH`. When
//! the path found is npm's node shim (`node_modules/.bin/codex` →
//! `@openai/codex/bin/codex.js`), the native binary inside the package is
//! used instead: the shim forwards SIGTERM but not SIGKILL, so killing it
//! would orphan the real codex. Where the native binary lives:
//!
//! | codex | native binary |
//! |---|---|
//! | 0.72.0 | `@openai/codex/vendor/<triple>/codex/codex` |
//! | later | `@openai/codex-<os>-<arch>/vendor/<triple>/bin/codex` (a sibling package) |

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Why no codex binary could be found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(String);

/// The target triple of the npm package's native binaries on this machine.
fn target_triple() -> Option<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("x86_64-unknown-linux-musl"),
        ("linux", "aarch64") => Some("aarch64-unknown-linux-musl"),
        ("macos", "x86_64") => Some("x86_64-apple-darwin"),
        ("macos", "aarch64") => Some("aarch64-apple-darwin"),
        _ => None,
    }
}

/// The npm platform package that holds the native binary for this machine.
fn platform_package() -> Option<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("codex-linux-x64"),
        ("linux", "aarch64") => Some("codex-linux-arm64"),
        ("macos", "x86_64") => Some("codex-darwin-x64"),
        ("macos", "aarch64") => Some("codex-darwin-arm64"),
        _ => None,
    }
}

/// Whether `path` is the npm node shim rather than a native binary.
fn is_node_shim(path: &Path) -> bool {
    if path.extension().is_some_and(|e| e == "js") {
        return true;
    }
    let mut head = [0u8; 64];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = std::io::Read::read(&mut f, &mut head).unwrap_or(0);
    let head = String::from_utf8_lossy(&head[..n]);
    head.starts_with("#!") && head.lines().next().is_some_and(|l| l.contains("node"))
}

/// For the npm shim at `shim`, the native binary in its package, if present.
pub fn native_for_shim(shim: &Path) -> Option<PathBuf> {
    let shim = std::fs::canonicalize(shim).ok()?;
    // .../node_modules/@openai/codex/bin/codex.js
    let package = shim.parent()?.parent()?;
    let triple = target_triple()?;
    let mut candidates = vec![package
        .join("vendor")
        .join(triple)
        .join("codex")
        .join("codex")];
    if let Some(platform) = platform_package() {
        let vendor = |base: &Path| {
            base.join(platform)
                .join("vendor")
                .join(triple)
                .join("bin")
                .join("codex")
        };
        // Nested under the package, or a sibling in the same scope.
        candidates.push(vendor(&package.join("node_modules").join("@openai")));
        if let Some(scope) = package.parent() {
            candidates.push(vendor(scope));
        }
    }
    candidates.push(
        package
            .join("vendor")
            .join(triple)
            .join("bin")
            .join("codex"),
    );
    candidates.into_iter().find(|c| c.is_file())
}

fn on_path(name: &str, path_var: Option<OsString>) -> Option<PathBuf> {
    std::env::split_paths(&path_var?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Finds the codex binary: `explicit`, then `$CODEX_BIN`, then `codex` on
/// `$PATH`, preferring the native binary over npm's node shim.
///
/// ```no_run
/// let codex = codex_adapter::discover::find_codex(None)?;
/// println!("running {}", codex.display());
/// # Ok::<(), codex_adapter::discover::NotFound>(())
/// ```
pub fn find_codex(explicit: Option<&Path>) -> Result<PathBuf, NotFound> {
    find_codex_in(
        explicit,
        std::env::var_os("CODEX_BIN"),
        std::env::var_os("PATH"),
    )
}

fn find_codex_in(
    explicit: Option<&Path>,
    codex_bin: Option<OsString>,
    path_var: Option<OsString>,
) -> Result<PathBuf, NotFound> {
    let (found, from) = if let Some(p) = explicit {
        (p.to_path_buf(), "the explicit path")
    } else if let Some(p) = codex_bin.filter(|p| !p.is_empty()) {
        (PathBuf::from(p), "$CODEX_BIN")
    } else if let Some(p) = on_path("codex", path_var) {
        (p, "$PATH")
    } else {
        return Err(NotFound(
            "codex not found: pass its path (--codex PATH), set CODEX_BIN, or put `codex` on PATH \
             (scripts/install-tools codex installs the pinned versions into .tools/)"
                .into(),
        ));
    };
    if !found.is_file() {
        return Err(NotFound(format!(
            "codex not found at {} (from {from}): no such file",
            found.display()
        )));
    }
    // The child may run in another working directory, where a relative path
    // would name a different file (or none).
    let found = std::path::absolute(&found).unwrap_or(found);
    if is_node_shim(&found) {
        return Ok(native_for_shim(&found).unwrap_or(found));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn an_explicit_path_wins_over_codex_bin_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a/codex");
        let b = dir.path().join("b/codex");
        write(&a, "\x7fELF");
        write(&b, "\x7fELF");
        let found = find_codex_in(Some(&a), Some(b.clone().into()), None).unwrap();
        assert_eq!(found, a);
        let found = find_codex_in(None, Some(b.clone().into()), None).unwrap();
        assert_eq!(found, b);
        let path = std::env::join_paths([dir.path().join("a")]).unwrap();
        assert_eq!(find_codex_in(None, None, Some(path)).unwrap(), a);
    }

    #[test]
    fn a_relative_path_is_made_absolute_so_a_child_cwd_cannot_change_it() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("codex");
        write(&bin, "\x7fELF");
        let cwd = std::env::current_dir().unwrap();
        let relative = pathdiff(&bin, &cwd);
        let found = find_codex_in(Some(&relative), None, None).unwrap();
        assert!(found.is_absolute(), "{}", found.display());
        assert_eq!(
            std::fs::canonicalize(found).unwrap(),
            std::fs::canonicalize(bin).unwrap()
        );
    }

    /// `path` relative to `base` (both absolute), through `..` as needed.
    fn pathdiff(path: &Path, base: &Path) -> PathBuf {
        let ups = base.components().count() - 1;
        let mut rel: PathBuf = std::iter::repeat("..").take(ups).collect();
        rel.extend(path.components().skip(1));
        rel
    }

    #[test]
    fn nothing_found_says_how_to_fix_it() {
        let err = find_codex_in(None, None, Some("/nonexistent".into())).unwrap_err();
        assert!(err.to_string().contains("CODEX_BIN"), "{err}");
        let err = find_codex_in(Some(Path::new("/no/such/codex")), None, None).unwrap_err();
        assert!(err.to_string().contains("/no/such/codex"), "{err}");
    }

    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[test]
    fn the_npm_shim_resolves_to_the_native_binary_of_either_layout() {
        let dir = tempfile::tempdir().unwrap();
        let nm = dir.path().join("old/node_modules");
        let shim = nm.join("@openai/codex/bin/codex.js");
        write(&shim, "#!/usr/bin/env node\n");
        let native = nm.join("@openai/codex/vendor/x86_64-unknown-linux-musl/codex/codex");
        write(&native, "\x7fELF");
        let link = nm.join(".bin/codex");
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink("../@openai/codex/bin/codex.js", &link).unwrap();
        assert_eq!(
            find_codex_in(Some(&link), None, None).unwrap(),
            std::fs::canonicalize(&native).unwrap()
        );

        let nm = dir.path().join("new/node_modules");
        let shim = nm.join("@openai/codex/bin/codex.js");
        write(&shim, "#!/usr/bin/env node\n");
        let native = nm.join("@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex");
        write(&native, "\x7fELF");
        assert_eq!(
            find_codex_in(Some(&shim), None, None).unwrap(),
            std::fs::canonicalize(&native).unwrap()
        );
    }
}
