#!/usr/bin/env bash
# What a replica costs (issue 14, specs/federation.md §5): a testnet of two regions, the first
# filled with N certificates by `tongban-node fill` while the network is down; then the second
# region's node catches up on it from scratch. Prints, per size: the catch-up (entries/s), the
# replica file's size per replicated entry beside the origin's log per entry, the replicating
# node's RSS after the catch-up, and its start to healthy and RSS after a restart.
#
#   cargo build --release -p tongban-testnet
#   benches/replica.sh 200000 1000000        # default: 200000
#
# Each size gets a fresh directory under ${SCALE_DIR:-/tmp}, removed at the end unless KEEP=1.
set -euo pipefail

bin=${TARGET_DIR:-target/release}
testnet=$bin/tongban-testnet
[[ -x $testnet ]] || { echo "build first: cargo build --release -p tongban-testnet" >&2; exit 2; }

rss() { awk '/^VmRSS/ {print int($2/1024)}' "/proc/$1/status"; }
now_ms() { date +%s%3N; }
field() { python3 -c "import json,sys; d=json.load(open('$1/testnet.json')); print(d['nodes'][$2]['$3'])"; }
replica_size() { curl -sf "$1/v1/federation/regions/341200" | python3 -c "import json,sys; print(json.load(sys.stdin)['size'])"; }

echo "| entries | catch-up (entries/s) | origin log (B/entry) | replica file (B/entry) | RSS after catch-up | restart to healthy | RSS after restart |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for n in "${@:-200000}"; do
    dir=$(mktemp -d "${SCALE_DIR:-/tmp}/tongban-replica.XXXXXX")
    trap '"$testnet" down --dir "$dir" > /dev/null 2>&1 || true; [[ ${KEEP:-0} == 1 ]] || rm -rf "$dir"' EXIT
    "$testnet" up --regions 2 --dir "$dir" > /dev/null
    "$testnet" down --dir "$dir" > /dev/null
    "$testnet" node fill --dir "$dir/341200" --count "$n" --not-valid 10 > /dev/null 2>&1
    entries=$(( n + n / 10 ))
    rm -rf "$dir/370100/replicas"

    started=$(now_ms)
    "$testnet" up --dir "$dir" > /dev/null
    api=$(field "$dir" 1 api)
    until size=$(replica_size "$api") && (( size >= entries )); do sleep 0.2; done
    caught=$(( $(now_ms) - started ))
    pid=$(field "$dir" 1 pid)
    rss_caught=$(rss "$pid")
    origin=$(stat -c %s "$dir/341200/log.redb")
    replica=$(stat -c %s "$dir/370100/replicas/341200-1.redb")

    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    started=$(now_ms)
    "$testnet" up --dir "$dir" > /dev/null
    api=$(field "$dir" 1 api)
    until curl -sf "$api/healthz" > /dev/null; do sleep 0.01; done
    healthy=$(( $(now_ms) - started ))
    rss_started=$(rss "$(field "$dir" 1 pid)")

    echo "| $size | $(( size * 1000 / caught )) | $(( origin / size )) | $(( replica / size )) | $rss_caught MiB | $healthy ms | $rss_started MiB |"
    "$testnet" down --dir "$dir" > /dev/null
    trap - EXIT
    [[ ${KEEP:-0} == 1 ]] || rm -rf "$dir"
done
