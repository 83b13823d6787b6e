#!/usr/bin/env bash
# Crash safety at scale (issue 14): a region of N certificates (default 1,000,000) grows by
# `tongban-node fill`, which is killed with SIGKILL at a random moment, ROUNDS times (default 20).
# NOT_VALID percent (default 10) of each chunk's certificates get a status change right after the
# chunk, so kills land in issuances and in status changes alike. `fill` prints a line once each
# chunk of 4,096 certificates is durable; after every kill:
#   - the log holds at least every acknowledged certificate (its size never falls below what was
#     acknowledged), and
#   - `tongban-node check` replays the whole log with every rule and signature and finds the
#     state on disk equal to it, row for row (exit 0).
#
#   cargo build --release -p tongban-node
#   benches/scale_crash.sh [N] [ROUNDS]
set -euo pipefail

bin=${TARGET_DIR:-target/release}
node=$bin/tongban-node
n=${1:-1000000}
rounds=${2:-20}
not_valid=${NOT_VALID:-10}
[[ -x $node ]] || { echo "build first: cargo build --release -p tongban-node" >&2; exit 2; }

dir=$(mktemp -d "${SCALE_DIR:-/tmp}/tongban-crash.XXXXXX")
trap '[[ ${KEEP:-0} == 1 ]] || rm -rf "$dir"' EXIT
"$node" init --region 341200 --name 阜阳市 --dir "$dir/node" > /dev/null
"$node" fill --dir "$dir/node" --count "$n" --not-valid "$not_valid" > /dev/null 2>&1
size() { "$node" check --dir "$dir/node" 2>/dev/null | sed -n 's/.*: \([0-9]*\) entries replayed.*/\1/p'; }
held=$(size)
echo "round | acknowledged | log size after the kill | check"
for round in $(seq 1 "$rounds"); do
    before=$held
    "$node" fill --dir "$dir/node" --count 200000 --not-valid "$not_valid" > /dev/null 2> "$dir/fill.err" &
    pid=$!
    # A random moment: 0.3 to 3 s into the fill.
    sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.3 + (r % 270) / 100 }')"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # Chunks acknowledged before the kill, certificates each ("filled K of 200000"); the filler's
    # output is shown every 5 %, so count from its last line.
    acked=$(sed -n 's/^filled \([0-9]*\) of.*/\1/p' "$dir/fill.err" | tail -1)
    acked=${acked:-0}
    if out=$("$node" check --dir "$dir/node" 2>&1); then verdict=agrees; else verdict="DIFFERS: $out"; fi
    held=$(echo "$out" | sed -n 's/.*: \([0-9]*\) entries replayed.*/\1/p')
    echo "$round | $acked | $held | $verdict"
    if [[ $verdict != agrees ]] || (( held < before + acked )); then
        echo "round $round: lost acknowledged certificates or a state that differs" >&2
        exit 1
    fi
done
echo "all $rounds kills: nothing acknowledged lost, state equal to a full replay"
