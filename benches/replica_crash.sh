#!/usr/bin/env bash
# SIGKILL of a replicating node, again and again while it catches up on a region of N entries
# (issue 14): a testnet of two regions, the first filled with `tongban-node fill` (N certificates,
# 10 % of them then changed in status), the second catching up on it from scratch and killed
# with SIGKILL at a random moment K times. After each restart its replica holds at least what it
# held before the kill (the size it published, which it publishes only once durable); at the end
# both nodes are stopped and `tongban-node check --origin` must find the replica's tree and state
# in step and its state equal to the origin's, row for row.
#
#   cargo build --release -p tongban-testnet
#   benches/replica_crash.sh 1000000 20          # default: 200000 10
set -euo pipefail

bin=${TARGET_DIR:-target/release}
testnet=$bin/tongban-testnet
[[ -x $testnet ]] || { echo "build first: cargo build --release -p tongban-testnet" >&2; exit 2; }
n=${1:-200000}
kills=${2:-10}

field() { python3 -c "import json,sys; d=json.load(open('$1/testnet.json')); print(d['nodes'][$2]['$3'])"; }
replica_size() { curl -sf --max-time 2 "$1/v1/federation/regions/341200" \
    | python3 -c "import json,sys; print(json.load(sys.stdin)['size'])"; }

dir=$(mktemp -d "${SCALE_DIR:-/tmp}/tongban-replica-crash.XXXXXX")
trap '"$testnet" down --dir "$dir" > /dev/null 2>&1 || true; [[ ${KEEP:-0} == 1 ]] || rm -rf "$dir"' EXIT
"$testnet" up --regions 2 --dir "$dir" > /dev/null
"$testnet" down --dir "$dir" > /dev/null
"$testnet" node fill --dir "$dir/341200" --count "$n" --not-valid 10 > /dev/null 2>&1
rm -rf "$dir/370100/replicas"
"$testnet" up --dir "$dir" > /dev/null
origin=$(curl -sf "$(field "$dir" 0 api)/healthz" | python3 -c "import json,sys; print(json.load(sys.stdin)['log_size'])")
echo "origin: $origin entries; $kills kills of the replicating node"

for round in $(seq 1 "$kills"); do
    api=$(field "$dir" 1 api)
    pid=$(field "$dir" 1 pid)
    sleep "$(python3 -c "import random; print(round(random.uniform(0.2, 3.0), 2))")"
    seen=$(replica_size "$api" || echo 0)
    kill -9 "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
    "$testnet" up --dir "$dir" > /dev/null
    api=$(field "$dir" 1 api)
    until after=$(replica_size "$api"); do sleep 0.05; done
    if (( after < seen )); then
        echo "round $round: the replica held $seen entries before the kill and $after after" >&2
        exit 1
    fi
    echo "round $round: killed at $seen or more of $origin, restarted holding $after"
done

api=$(field "$dir" 1 api)
until size=$(replica_size "$api") && (( size >= origin )); do sleep 0.2; done
"$testnet" down --dir "$dir" > /dev/null
"$testnet" node check --dir "$dir/370100" --origin "$dir/341200"
