#!/usr/bin/env bash
# The benchmark suite: jsonrpc-stdio (`jrpc bench`) against a floor that is
# not ours — the shared `raw-baseline` (two threads, a pipe, serde_json
# reading the id and keeping the result raw) — both talking to the shared
# `echo-server`, alternated round by round so machine noise hits both alike.
#
# The report (stdout) says first whether the peer is the bottleneck: for every
# scenario, how busy the echo server was while the library drove it (user +
# system CPU over its lifetime, by GNU time when /usr/bin/time exists). At most
# 80% busy passes; above it the scenario is flagged "the peer may be the
# bottleneck", and its ratio says more about the peer than about the library.
# (Without GNU time it says "not measured".) The floor's rate against the
# same server is shown beside it. Then a markdown table of medians, the
# per-round ratios' median, and each target met or not; then the liveness and
# memory checks. Progress goes to stderr.
#
# The floor lives outside this repository and is built here, never copied:
#   FLOOR_DIR      where `echo-server/` and `raw-baseline/` are
#                  (default: ../shared/bench, relative to the repository root)
#   FLOOR_TARGET   cargo target directory for building them (default: target/floor)
#
# usage: benches/run.sh                      (ROUNDS=5 by default)
#        ROUNDS=9 benches/run.sh             (more rounds on a noisy machine)
#        SCENARIOS="c64-raw c1" benches/run.sh
#        FLOOR_DIR=/path/to/bench benches/run.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
SCENARIOS=${SCENARIOS:-"c64-raw c64-typed c64-value c1-raw c1 p60k-raw p60k c1-mt-raw c1-mt notify8"}
FLOOR_DIR=${FLOOR_DIR:-../shared/bench}
FLOOR_TARGET=${FLOOR_TARGET:-target/floor}

for program in echo-server raw-baseline; do
    if [[ ! -f "$FLOOR_DIR/$program/Cargo.toml" ]]; then
        echo "benches/run.sh: the floor is missing: no $FLOOR_DIR/$program/Cargo.toml." >&2
        echo "  It is the shared echo-server and raw-baseline (not part of this repository)." >&2
        echo "  Set FLOOR_DIR to the directory holding echo-server/ and raw-baseline/." >&2
        exit 1
    fi
    cargo build --release --quiet --manifest-path "$FLOOR_DIR/$program/Cargo.toml" \
        --target-dir "$FLOOR_TARGET"
done
cargo build --release --quiet -p jrpc -p test-peers --bin jrpc --bin bench_liveness --bin tokio_baseline
T=target/release
F=$FLOOR_TARGET/release
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# name -> "requests concurrency payload runtime response notifications"
declare -A SCENARIO=(
    [c64-raw]="300000 64 100 current-thread raw 0"
    [c64-typed]="300000 64 100 current-thread typed 0"
    [c64-value]="300000 64 100 current-thread value 0"
    [c1-raw]="30000 1 100 current-thread raw 0"
    [c1]="30000 1 100 current-thread typed 0"
    [p60k]="10000 16 60000 current-thread typed 0"
    [p60k-raw]="10000 16 60000 current-thread raw 0"
    [c1-mt-raw]="30000 1 100 multi-thread raw 0"
    [c1-mt]="30000 1 100 multi-thread typed 0"
    [notify8]="100000 64 100 current-thread raw 8"
)
declare -A TITLE=(
    [c64-raw]="64 in flight, 100 B, raw responses (\`request_raw\`)"
    [c64-typed]="64 in flight, 100 B, typed responses (\`call::<R>\`)"
    [c64-value]="64 in flight, 100 B, \`Value\` responses (\`request\`)"
    [c1-raw]="1 in flight, 100 B, raw"
    [c1]="1 in flight, 100 B, typed"
    [p60k]="16 in flight, 60 KB, typed"
    [p60k-raw]="16 in flight, 60 KB, raw"
    [c1-mt-raw]="1 in flight, 100 B, raw, multi-thread runtime"
    [c1-mt]="1 in flight, 100 B, typed, multi-thread runtime"
    [notify8]="notifications (\`echo-server --notify 8\`), one subscriber, 64 in flight"
)
# The target: a ratio to the floor, or (notifications) an absolute rate.
declare -A TARGET=(
    [c64-raw]=0.5 [c64-typed]=0.5 [c64-value]=0.35 [c1-raw]=0.9 [c1]=0.9 [p60k]=0.7 [p60k-raw]=0.7 [c1-mt-raw]=0.7 [c1-mt]=0.7
    [notify8]=1000000
)

# field NAME LINE: the value of NAME=... in a summary line.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

floor_one() { # scenario -> the floor's rps
    local n c p rt mode k line
    read -r n c p rt mode k <<<"${SCENARIO[$1]}"
    line=$("$F/raw-baseline" "$F/echo-server" "$n" "$c" "$p" | tail -1) || line=""
    echo "$line" >>"$WORK/floor.$1.log"
    local value
    value=$(field rps "$line")
    echo "${value:-0}"
}

library_one() { # scenario -> the library's rps (nps with notifications)
    local n c p rt mode k line metric=rps extra=() server=("$F/echo-server")
    read -r n c p rt mode k <<<"${SCENARIO[$1]}"
    # GNU time, when there is one, reports how busy the echo server was
    # while the library drove it (user + system CPU over its lifetime).
    if [[ -x /usr/bin/time ]]; then
        server=(/usr/bin/time -f '%U %S %e' -o "$WORK/peer.$1.last" "${server[@]}")
    fi
    if ((k > 0)); then
        server+=(--notify "$k")
        extra=(--notifications "$k")
        metric=nps
    fi
    line=$("$T/jrpc" bench --runtime "$rt" --response "$mode" --requests "$n" --concurrency "$c" \
        --payload "$p" "${extra[@]}" -- "${server[@]}" | tail -1) || line=""
    # A failed run (a lost notification, a dead server) counts as 0.
    echo "$line" >>"$WORK/lib.$1.log"
    if [[ -f "$WORK/peer.$1.last" ]]; then
        awk '{ if ($3 > 0) printf "%.3f\n", ($1 + $2) / $3 }' "$WORK/peer.$1.last" >>"$WORK/peer.$1"
        rm -f "$WORK/peer.$1.last"
    fi
    local value
    value=$(field "$metric" "$line")
    echo "${value:-0}"
}

tokio_one() { # scenario -> the rate of a client written by hand on tokio, no library
    local n c p rt mode k line
    read -r n c p rt mode k <<<"${SCENARIO[$1]}"
    line=$("$T/tokio_baseline" --runtime "$rt" "$F/echo-server" "$n" "$p" | tail -1) || line=""
    local value
    value=$(field rps "$line")
    echo "${value:-0}"
}

for ((round = 1; round <= ROUNDS; round++)); do
    for name in $SCENARIOS; do
        # Notifications have no floor (raw-baseline sends none): the target is
        # absolute, and the floor's request rate shows the peer's headroom.
        base=$(floor_one "$name")
        lib=$(library_one "$name")
        echo "$base" >>"$WORK/floor.$name"
        echo "$lib" >>"$WORK/lib.$name"
        awk -v l="$lib" -v b="$base" 'BEGIN {printf "%.4f\n", (b > 0 ? l / b : 0)}' >>"$WORK/ratio.$name"
        echo "round $round $name: floor=$base library=$lib" >&2
        # At 1 in flight, also what tokio itself leaves: a hand-written
        # async client, same round.
        if [[ $name == c1-raw || $name == c1-mt-raw ]]; then
            tok=$(tokio_one "$name")
            awk -v t="$tok" -v b="$base" 'BEGIN {printf "%.4f\n", (b > 0 ? t / b : 0)}' >>"$WORK/tokio.$name"
            awk -v l="$lib" -v t="$tok" 'BEGIN {printf "%.4f\n", (t > 0 ? l / t : 0)}' >>"$WORK/libtokio.$name"
            echo "round $round $name: tokio client=$tok" >&2
        fi
    done
done

echo "## Is the peer the bottleneck?"
echo
echo "A bottleneck is busy all the time: the echo server, while the library drives it, must"
echo "be busy (user + system CPU over its lifetime, GNU time) well under 100%: at most 80%."
echo "The floor's rate against the same server, in the same rounds, is shown too: it is"
echo "what the server sustains with a faster client. (The issue's first check, floor ≥ 2x"
echo "the library, cannot hold once the library passes 0.5x the floor.)"
echo
for name in $SCENARIOS; do
    fl=$(median <"$WORK/floor.$name")
    li=$(median <"$WORK/lib.$name")
    [[ $name == notify8 ]] && li=$(awk -v l="$li" 'BEGIN {print l / 8}') # responses/s
    busy=n/a
    [[ -s "$WORK/peer.$name" ]] && busy=$(median <"$WORK/peer.$name")
    awk -v f="$fl" -v l="$li" -v b="$busy" -v t="${TITLE[$name]}" 'BEGIN {
        h = (l > 0 ? f / l : 0)
        if (b == "n/a") verdict = "(no GNU time: not measured)"
        else verdict = sprintf("echo server busy %.0f%% %s", b * 100,
            (b <= 0.8 ? "✔ not the bottleneck" : "✘ the peer may be the bottleneck"))
        printf "- %s: floor %.0f/s, library %.0f/s (floor %.1fx); %s\n", t, f, l, h, verdict
    }'
done
echo
echo "## Round trips ($ROUNDS rounds, alternating; medians; default runtime unless stated)"
echo
echo '| scenario | floor (`raw-baseline`) | jsonrpc-stdio | library / floor | target |'
echo '|---|---|---|---|---|'
for name in $SCENARIOS; do
    fl=$(median <"$WORK/floor.$name")
    li=$(median <"$WORK/lib.$name")
    ratio=$(median <"$WORK/ratio.$name")
    failed=$(grep -c '^0$' "$WORK/lib.$name" || true)
    note=""
    ((failed > 0)) && note=" ($failed of $ROUNDS runs failed)"
    if [[ $name == notify8 ]]; then
        awk -v f="$fl" -v l="$li" -v n="$note" -v t="${TITLE[$name]}" -v g="${TARGET[$name]}" 'BEGIN {
            printf "| %s | %.0f req/s | **%.0f notifications/s**%s | — | ≥ %.0f/s, in order, none lost %s |\n",
                t, f, l, n, g, (l >= g ? "✔" : "✘")
        }'
    else
        awk -v f="$fl" -v l="$li" -v r="$ratio" -v n="$note" -v t="${TITLE[$name]}" -v g="${TARGET[$name]}" 'BEGIN {
            printf "| %s | %.0f req/s | %.0f req/s%s | **%.2fx** | ≥ %.2fx %s |\n",
                t, f, l, n, r, g, (r >= g ? "✔" : "✘")
        }'
    fi
done

for name in c1-raw c1-mt-raw; do
    [[ -s "$WORK/tokio.$name" ]] || continue
    if [[ -z ${printed_tokio:-} ]]; then
        echo
        echo "What tokio itself leaves at 1 in flight: \`tokio_baseline\`, a client written by hand on"
        echo "tokio (write, await the answer line, parse it; no pending table, timeout or liveness),"
        echo "in the same rounds against the same server:"
        echo
        printed_tokio=1
    fi
    awk -v t="$(median <"$WORK/tokio.$name")" -v l="$(median <"$WORK/libtokio.$name")" -v s="${TITLE[$name]}" 'BEGIN {
        printf "- %s: the hand-written tokio client %.2fx the floor; the library %.2fx that client\n", s, t, l
    }'
done

echo
echo "## Liveness and memory (10,000 requests in flight)"
echo
echo '| runtime | kill -> all failed (ms, median of 3; ≤ 50) | bytes per pending request | peak RSS of bench_liveness (KiB) | peak RSS of `jrpc bench --concurrency 10000` (KiB; ≤ 65536) |'
echo '|---|---|---|---|---|'
SINK=(sh -c 'exec cat 3>&1 >/dev/null') # reads stdin, never answers, keeps stdout open
for rt in current-thread multi-thread; do
    for i in 1 2 3; do
        "$T/bench_liveness" --runtime "$rt" --in-flight 10000 -- "${SINK[@]}" >>"$WORK/live.$rt"
    done
    for i in 1 2 3; do
        if [[ -x /usr/bin/time ]]; then # GNU time: peak RSS in KiB
            /usr/bin/time -f '%M' -o "$WORK/time.$rt" "$T/jrpc" bench --runtime "$rt" --requests 100000 \
                --concurrency 10000 -- "$F/echo-server" >/dev/null
            cat "$WORK/time.$rt" >>"$WORK/rss.$rt"
        else
            echo "n/a" >>"$WORK/rss.$rt"
        fi
    done
    live=$(cat "$WORK/live.$rt")
    ms=$(while read -r l; do field kill_to_all_failed_ms "$l"; done <<<"$live" | median)
    per=$(while read -r l; do field bytes_per_pending "$l"; done <<<"$live" | median)
    peak=$(while read -r l; do field peak_rss_kib "$l"; done <<<"$live" | median)
    echo "| $rt | $ms | $per | $peak | $(median <"$WORK/rss.$rt") |"
done
