#!/usr/bin/env bash
# Verification with receipts through one process and through two (issue 19): a region node on
# PostgreSQL (a server of this script's own on loopback, fsync and synchronous_commit on) run by
# a sequencer and a standby on the same database. The standby verifies from the database and
# forwards each receipt item to the sequencer, which logs it. Alternating, ROUNDS times:
# `tongban-load` verify phase (64 connections, LOAD_SECONDS) against the sequencer alone, then
# against both (connections split between them).
#
#   cargo build --release -p tongban-node
#   benches/front_ends.sh            # N = 50000 certificates filled first, ROUNDS = 2
#
# One Markdown table row per run on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${TARGET_DIR:-target/release}
node=$bin/tongban-node
load=$bin/tongban-load
n=${1:-50000}
rounds=${ROUNDS:-2}
seconds=${LOAD_SECONDS:-10}
[[ -x $node && -x $load ]] || { echo "build first: cargo build --release -p tongban-node" >&2; exit 2; }

work=$(mktemp -d /tmp/tongban-front-ends.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    .ci/postgres stop "$work/pg" immediate > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
url=$(.ci/postgres start "$work/pg" "${PG_PORT:-55434}")

dir="$work/node"
token=$("$node" init --region 341200 --name 阜阳市 --dir "$dir" --listen 127.0.0.1:0 \
    | grep -o 'tb_[A-Za-z0-9_-]*')
sed -i '/^\[storage\]$/,$d' "$dir/config.toml"
printf '[storage]\nengine = "postgres"\nurl = "%s"\nschema = "front_ends"\n' "$url" >> "$dir/config.toml"
"$node" fill --dir "$dir" --count "$n" > /dev/null 2>&1

# Starts a process of the node, logging to $1; sets $addr once it answers. (Not in a command
# substitution: its pid must reach `pids` in this shell, for the cleanup.)
start() {
    RUST_LOG=warn "$node" run --dir "$dir" --listen 127.0.0.1:0 > "$1" 2>&1 &
    pids+=($!)
    addr=
    until addr=$(sed -n 's|.*http://\([^ ]*\).*|\1|p' "$1" | head -1) && [[ -n $addr ]] \
        && curl -sf "http://$addr/healthz" > /dev/null; do
        sleep 0.05
    done
}
start "$work/sequencer.out"
sequencer=$addr
start "$work/standby.out"
standby=$addr
curl -sf "http://$standby/healthz" | grep -q '"role":"standby"' \
    || { echo "the second process is not a standby" >&2; exit 1; }

echo "| round | front ends | verify with receipts /s (p99) |"
echo "| --- | --- | --- |"
for round in $(seq "$rounds"); do
    for urls in "$sequencer" "$sequencer,$standby"; do
        out=$("$load" --url "$urls" --operator-token "$token" --connections 64 \
            --seconds "$seconds" --phases verify)
        figure=$(echo "$out" | sed -n 's|^verif.*= \([0-9]*\)/s;.*p99 \([0-9.]*\) ms.*|\1 (\2 ms)|p')
        echo "| $round | $(echo "$urls" | tr ',' '\n' | wc -l) | $figure |"
    done
done
