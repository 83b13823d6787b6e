#!/usr/bin/env bash
# The scale run of issue 14: for each size N, a region of N certificates made by
# `tongban-node fill`, then what an operator sees: disk per certificate, start to healthy, RSS
# after the start and after load, the status list (its size, the node's first build of it, and
# `tongban-verify fetch` downloading and loading it), verification and issuance under load
# (`tongban-load`, 64 connections), `tongban-verify audit replay` of the whole log from the
# node (entries/s and peak RSS), and `tongban-node check` (a full replay of the log compared with
# the state). NOT_VALID percent of the certificates (default 10) get a logged status change
# (revoked, cancelled, suspended, expired in turn), as a region's list looks after years.
#
#   cargo build --release -p tongban-node
#   benches/scale.sh 1000000 3000000       # default: 1000000
#   SUITE=sm2 benches/scale.sh 100000      # the region in the national suite (default ed25519)
#
# Each size gets a fresh directory under ${SCALE_DIR:-/tmp}, removed at the end unless KEEP=1.
# Results go to stdout as one Markdown table row per size.
set -euo pipefail

bin=${TARGET_DIR:-target/release}
node=$bin/tongban-node
load=$bin/tongban-load
verify=$bin/tongban-verify
seconds=${LOAD_SECONDS:-20}
not_valid=${NOT_VALID:-10}
[[ -x $node && -x $load && -x $verify ]] || {
    echo "build first: cargo build --release -p tongban-node -p tongban-verify" >&2; exit 2; }

rss() { awk '/^VmRSS/ {print int($2/1024)}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {print int($2/1024)}' "/proc/$1/status"; }
now_ms() { date +%s%3N; }

echo "| certificates | fill (/s) | disk (B/cert) | start to healthy | RSS started | status list (first build; fetch + load) | RSS after load (peak) | verify /s (p99) | issue /s (p99) | audit replay (/s; peak RSS) | check |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for n in "${@:-1000000}"; do
    dir=$(mktemp -d "${SCALE_DIR:-/tmp}/tongban-scale.XXXXXX")
    trap 'kill "${pid:-0}" 2>/dev/null || true; [[ ${KEEP:-0} == 1 ]] || rm -rf "$dir"' EXIT
    token=$("$node" init --region 341200 --name 阜阳市 --dir "$dir/node" --listen 127.0.0.1:0 \
        --suite "${SUITE:-ed25519}" | grep -o 'tb_[A-Za-z0-9_-]*')
    fill_rate=$("$node" fill --dir "$dir/node" --count "$n" --not-valid "$not_valid" 2>/dev/null \
        | sed -n 's/.*(\([0-9]*\)\/s).*/\1/p')
    bytes=$(stat -c %s "$dir/node/log.redb")

    started=$(now_ms)
    RUST_LOG=warn "$node" run --dir "$dir/node" > "$dir/out" &
    pid=$!
    until addr=$(sed -n 's|.*http://\([^ ]*\).*|\1|p' "$dir/out" | head -1) && [[ -n $addr ]] \
        && curl -sf "http://$addr/healthz" > /dev/null; do
        sleep 0.01
    done
    healthy=$(( $(now_ms) - started ))
    rss_started=$(rss "$pid")

    list_started=$(now_ms)
    list_bytes=$(curl -sf "http://$addr/v1/status-list" | wc -c)
    list_built=$(( $(now_ms) - list_started ))
    fetch_started=$(now_ms)
    "$verify" fetch "http://$addr" "$dir/fetched" > /dev/null
    fetched=$(( $(now_ms) - fetch_started ))
    list="$(( list_bytes / 1024 )) KiB (${list_built} ms; ${fetched} ms)"

    out=$("$load" --url "$addr" --operator-token "$token" --connections 64 --seconds "$seconds")
    phase() { echo "$out" | sed -n "s|^$1.*= \([0-9]*\)/s;.*p99 \([0-9.]*\) ms.*|\1 (\2 ms)|p"; }
    verified=$(phase verif)
    issue=$(phase issu)
    rss_after="$(rss "$pid") ($(hwm "$pid"))"

    # The audit reads the node's tiles and checkpoints over HTTP, as an auditor would; its
    # temporary state file goes to the same disk as the region.
    audit_started=$(now_ms)
    TMPDIR=$dir /usr/bin/time -f '%M' -o "$dir/audit.rss" \
        "$verify" audit replay "http://$addr" --json > "$dir/audit.json"
    audit_ms=$(( $(now_ms) - audit_started ))
    audited=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["clean"], r["findings"]; print(sum(l["replayed"] for l in r["logs"]))' "$dir/audit.json")
    audit="$(( audited * 1000 / audit_ms )) ($(( $(tail -1 "$dir/audit.rss") / 1024 )) MiB)"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

    check_started=$(now_ms)
    "$node" check --dir "$dir/node" > /dev/null 2>&1
    check=$(( ($(now_ms) - check_started) / 1000 ))

    echo "| $n | $fill_rate | $(( bytes / n )) | ${healthy} ms | ${rss_started} MiB | $list | ${rss_after} MiB | $verified | $issue | $audit | ${check} s |"
    [[ ${KEEP:-0} == 1 ]] || rm -rf "$dir"
    trap - EXIT
done
