#!/usr/bin/env bash
# The storage engines side by side (issue 19): a region node on redb files and one on
# PostgreSQL (a server of this script's own on loopback, from .ci/postgres, fsync and
# synchronous_commit on), alternating, ROUNDS times. Each: `tongban-node fill` of N certificates,
# then `tongban-load` (64 connections, LOAD_SECONDS per phase) for verification with receipts and
# durable issuance, and `tongban-verify audit replay` of the node's log, which must be clean.
#
#   cargo build --release -p tongban-node -p tongban-verify
#   benches/postgres.sh            # N = 100000, ROUNDS = 2, LOAD_SECONDS = 10
#
# One Markdown table row per run on stdout. The server's data and the nodes go under a temporary
# directory in /tmp (the server runs as the postgres user when this runs as root), removed at
# the end.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${TARGET_DIR:-target/release}
node=$bin/tongban-node
load=$bin/tongban-load
verify=$bin/tongban-verify
n=${1:-100000}
rounds=${ROUNDS:-2}
seconds=${LOAD_SECONDS:-10}
[[ -x $node && -x $load && -x $verify ]] || {
    echo "build first: cargo build --release -p tongban-node -p tongban-verify" >&2; exit 2; }

work=$(mktemp -d /tmp/tongban-pg-bench.XXXXXX)
chmod 755 "$work"
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
    .ci/postgres stop "$work/pg" immediate > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
url=$(.ci/postgres start "$work/pg" "${PG_PORT:-55433}")

now_ms() { date +%s%3N; }

echo "| round | engine | fill (/s) | stored (B/cert) | verify with receipts /s (p99) | durable issuance /s (p99) | audit replay |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for round in $(seq "$rounds"); do
    for engine in redb postgres; do
        dir="$work/$engine-$round"
        token=$("$node" init --region 341200 --name 阜阳市 --dir "$dir" --listen 127.0.0.1:0 \
            | grep -o 'tb_[A-Za-z0-9_-]*')
        schema="bench_${round}"
        if [[ $engine == postgres ]]; then
            # [storage] is the last table `init` writes.
            sed -i '/^\[storage\]$/,$d' "$dir/config.toml"
            printf '[storage]\nengine = "postgres"\nurl = "%s"\nschema = "%s"\n' \
                "$url" "$schema" >> "$dir/config.toml"
        fi
        fill=$("$node" fill --dir "$dir" --count "$n" 2>/dev/null \
            | sed -n 's/.*(\([0-9]*\)\/s).*/\1/p')
        if [[ $engine == postgres ]]; then
            bytes=$(psql "$url" -Atq -c "SELECT sum(pg_total_relation_size(c.oid))
                FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
                WHERE s.nspname = '$schema' AND c.relkind = 'r'")
        else
            bytes=$(stat -c %s "$dir/log.redb")
        fi
        RUST_LOG=warn "$node" run --dir "$dir" > "$dir/out" &
        pid=$!
        until addr=$(sed -n 's|.*http://\([^ ]*\).*|\1|p' "$dir/out" | head -1) \
            && [[ -n $addr ]] && curl -sf "http://$addr/healthz" > /dev/null; do
            sleep 0.01
        done
        out=$("$load" --url "$addr" --operator-token "$token" --connections 64 \
            --seconds "$seconds")
        phase() { echo "$out" | sed -n "s|^$1.*= \([0-9]*\)/s;.*p99 \([0-9.]*\) ms.*|\1 (\2 ms)|p"; }
        started=$(now_ms)
        "$verify" audit replay "http://$addr" --json > "$dir/audit.json"
        audit_ms=$(( $(now_ms) - started ))
        audited=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["clean"], r["findings"]; print(sum(l["replayed"] for l in r["logs"]))' "$dir/audit.json")
        kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
        echo "| $round | $engine | $fill | $(( bytes / n )) | $(phase verif) | $(phase issu) | clean, $(( audited * 1000 / audit_ms )) entries/s |"
    done
done
