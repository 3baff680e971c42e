#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time; fails on any crash.
#
#   bash fuzz/run-ci.sh
#
# Needs a nightly toolchain (`cargo +nightly`). Without one it says why and
# exits 0: the seeds are replayed by the stable `cargo test` run anyway
# (`*/tests/fuzz_corpus_replay.rs`). cargo-fuzz is installed on first use into
# the clone-local `.tools/cargo/` (never globally).
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 60); 0 runs the seeds only
#   FUZZ_TARGETS    space-separated targets to run (default: all)
#   FUZZ_SANITIZER  cargo-fuzz sanitizer (default none: every crate denies
#                   unsafe code, so a crash is a panic, which libFuzzer sees
#                   without ASan, at twice the executions per second;
#                   `address` to add ASan)
#   FUZZ_TOOLCHAIN  the nightly toolchain to use (default nightly)
#
# New inputs the fuzzer finds go to a scratch corpus, never into
# fuzz/corpus/. A crash leaves its input in fuzz/artifacts/<target>/; copy it
# to fuzz/corpus/<target>/regression-<what> so `cargo test` replays it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz_dir="$root/fuzz"
seconds=${FUZZ_SECONDS:-60}
sanitizer=${FUZZ_SANITIZER:-none}
toolchain=${FUZZ_TOOLCHAIN:-nightly}
target_dir="$fuzz_dir/target"

say() { echo "fuzz: $*"; }

if ! [[ $seconds =~ ^[0-9]+$ ]]; then
    say "FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" >&2
    exit 2
fi

if ! cargo "+$toolchain" --version >/dev/null 2>&1; then
    say "SKIPPED: no '$toolchain' toolchain (\`cargo +$toolchain --version\` fails);" \
        "cargo-fuzz needs nightly. Install it with \`rustup toolchain install nightly\`." \
        "The corpus seeds are still replayed by \`cargo test\`."
    exit 0
fi

export PATH="$root/.tools/cargo/bin:$PATH"
if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz into $root/.tools/cargo"
    if ! cargo install cargo-fuzz --locked --root "$root/.tools/cargo"; then
        say "SKIPPED: cargo-fuzz is not installed and \`cargo install cargo-fuzz\` failed" \
            "(offline?). The corpus seeds are still replayed by \`cargo test\`."
        exit 0
    fi
fi
say "$(cargo "+$toolchain" fuzz --version), $(cargo "+$toolchain" --version)"

cd "$root"
fuzz=(cargo "+$toolchain" fuzz)
build_flags=(--sanitizer "$sanitizer" --target-dir "$target_dir")

started=$SECONDS
"${fuzz[@]}" build "${build_flags[@]}"
say "built every target in $((SECONDS - started)) s"

if [[ -n ${FUZZ_TARGETS:-} ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <("${fuzz[@]}" list)
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
summary=()
failed=()
for target in "${targets[@]}"; do
    if [[ ! -d $fuzz_dir/corpus/$target ]]; then
        say "$target has no seed corpus in fuzz/corpus/$target" >&2
        failed+=("$target")
        continue
    fi
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    args=(-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 -print_final_stats=1)
    if ((seconds > 0)); then
        args+=("-max_total_time=$seconds")
    else
        args+=(-runs=0)
    fi
    case $target in
        # Long streams only slow the frame targets down; the boundaries they
        # hunt for sit within a few hundred bytes. Longer seeds are cut.
        *_frames) args+=(-max_len=4096) ;;
    esac
    case $target in
        content_length_frames) args+=("-dict=$fuzz_dir/dicts/content_length.dict") ;;
        message_roundtrip | codex_events) args+=("-dict=$fuzz_dir/dicts/json.dict") ;;
    esac
    if ((seconds > 0)); then
        say "running $target for $seconds s"
    else
        say "replaying the seeds of $target"
    fi
    status=0
    "${fuzz[@]}" run "${build_flags[@]}" "$target" "$scratch/$target" "$fuzz_dir/corpus/$target" \
        -- "${args[@]}" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if ((status == 0)); then
        summary+=("$target: ${runs:-?} executions in ${seconds} s, no crash")
    else
        # The panic (or libFuzzer's report) and the crashing input.
        pattern="panicked at|ERROR: libFuzzer|SUMMARY:|Test unit written to"
        if grep -q -E "$pattern" "$log"; then
            { grep -E -A 6 "$pattern" "$log" | grep -v -E '^ +[0-9]+: |^ +at |^0x' | head -n 40 >&2; } || true
        else
            tail -n 40 "$log" >&2
        fi
        artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
        known=""
        for seed in "$fuzz_dir/corpus/$target"/*; do
            if [[ -n $artifact ]] && cmp -s "$artifact" "$seed"; then
                known=${seed#"$root/"}
                break
            fi
        done
        if [[ -n $known ]]; then
            summary+=("$target: CRASHED on the committed seed $known: the bug it pins is not fixed")
        else
            summary+=("$target: CRASHED after ${runs:-?} executions (exit $status) on ${artifact:-an input libFuzzer did not save}; add it to fuzz/corpus/$target/ as regression-<what>")
        fi
        failed+=("$target")
    fi
done

say "summary (sanitizer $sanitizer, $((SECONDS - started)) s in all):"
for line in "${summary[@]}"; do
    say "  $line"
done
if ((${#failed[@]})); then
    say "FAILED: ${failed[*]}" >&2
    exit 1
fi
