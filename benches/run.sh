#!/usr/bin/env bash
# The round-trip benchmark suite: jsonrpc-stdio (`jrpc bench`) against the raw
# baseline (`raw_baseline`: two threads, no runtime, no pending table), both
# talking to the same echo server, alternated in the same run so machine noise
# hits both alike. Prints a markdown table of medians and ratios
# (library / baseline, median of the per-round ratios), then the liveness and
# memory checks.
#
# usage: benches/run.sh            (ROUNDS=5 by default)
#        ROUNDS=9 benches/run.sh   (more rounds on a noisy machine)
#        SCENARIOS="c1 c64" benches/run.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
SCENARIOS=${SCENARIOS:-"c1 c64 p60k notify8"}
RUNTIMES=${RUNTIMES:-"current-thread multi-thread"}

cargo build --release --quiet -p jrpc -p test-peers \
    --bin jrpc --bin raw_baseline --bin echo_server --bin bench_liveness
T=target/release
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# name -> "requests concurrency payload notifications"
declare -A SCENARIO=(
    [c1]="30000 1 100 0"
    [c64]="300000 64 100 0"
    [p60k]="10000 16 60000 0"
    [notify8]="100000 64 100 8"
)
declare -A TITLE=(
    [c1]="sequential, 1 in flight, 100 B"
    [c64]="pipelined, 64 in flight, 100 B"
    [p60k]="60 KB payload, 16 in flight"
    [notify8]="notifications (echo_server --notify 8), 64 in flight"
)

# field NAME LINE: the value of NAME=... in a bench summary line.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }

run_one() { # kind scenario -> prints the metric (rps, or nps for notify8)
    local kind=$1 name=$2 n c p k metric=rps line
    read -r n c p k <<<"${SCENARIO[$name]}"
    local server=("$T/echo_server")
    local extra=()
    if ((k > 0)); then
        server+=(--notify "$k")
        extra=(--notifications "$k")
        metric=nps
    fi
    case $kind in
        baseline) line=$("$T/raw_baseline" --requests "$n" --concurrency "$c" --payload "$p" "${extra[@]}" -- "${server[@]}" | tail -1) || line="" ;;
        *) line=$("$T/jrpc" bench --runtime "$kind" --requests "$n" --concurrency "$c" --payload "$p" "${extra[@]}" -- "${server[@]}" | tail -1) || line="" ;;
    esac
    # A failed run (a lost notification, a dead server) counts as 0.
    echo "$line" >>"$WORK/$kind.$name.log"
    local value
    value=$(field "$metric" "$line")
    echo "${value:-0}"
}

for ((round = 1; round <= ROUNDS; round++)); do
    for name in $SCENARIOS; do
        base=$(run_one baseline "$name")
        echo "$base" >>"$WORK/baseline.$name"
        for rt in $RUNTIMES; do
            lib=$(run_one "$rt" "$name")
            echo "$lib" >>"$WORK/$rt.$name"
            awk -v l="$lib" -v b="$base" 'BEGIN {printf "%.4f\n", l / b}' >>"$WORK/ratio.$rt.$name"
        done
        echo "round $round $name: baseline=$base $(for rt in $RUNTIMES; do printf '%s=%s ' "$rt" "$(tail -1 "$WORK/$rt.$name")"; done)" >&2
    done
done

echo
echo "## Round trips ($ROUNDS rounds, alternating; medians)"
echo
printf '| scenario | metric | baseline |'
for rt in $RUNTIMES; do printf ' jrpc %s | ratio |' "$rt"; done
echo
printf '|---|---|---|'
for rt in $RUNTIMES; do printf -- '---|---|'; done
echo
for name in $SCENARIOS; do
    metric="requests/s"
    [[ $name == notify8 ]] && metric="notifications/s"
    printf '| %s | %s | %.0f |' "${TITLE[$name]}" "$metric" "$(median <"$WORK/baseline.$name")"
    for rt in $RUNTIMES; do
        failed=$(grep -c '^0$' "$WORK/$rt.$name" || true)
        note=""
        ((failed > 0)) && note=" ($failed of $ROUNDS runs failed)"
        printf ' %.0f%s | **%.0f%%** |' "$(median <"$WORK/$rt.$name")" "$note" \
            "$(median <"$WORK/ratio.$rt.$name" | awk '{print $1 * 100}')"
    done
    echo
done

echo
echo "## Liveness and memory (10,000 requests in flight)"
echo
echo '| runtime | kill -> all failed (ms, median of 3) | bytes per pending request | peak RSS of bench_liveness (KiB) | peak RSS of `jrpc bench -c 10000` (KiB) |'
echo '|---|---|---|---|---|'
SINK=(sh -c 'exec cat 3>&1 >/dev/null') # reads stdin, never answers, keeps stdout open
for rt in $RUNTIMES; do
    for i in 1 2 3; do
        "$T/bench_liveness" --runtime "$rt" --in-flight 10000 -- "${SINK[@]}" >>"$WORK/live.$rt"
    done
    for i in 1 2 3; do
        if [[ -x /usr/bin/time ]]; then # GNU time: peak RSS in KiB
            /usr/bin/time -f '%M' -o "$WORK/time.$rt" "$T/jrpc" bench --runtime "$rt" --requests 100000 \
                --concurrency 10000 -- "$T/echo_server" >/dev/null
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
