#!/usr/bin/env bash
# Issue 16's many-core figure: `tongban-verify bulk` over COUNT valid certificates on 1, 2, 4, 8,
# … threads up to the machine's cores, rounds alternating, beside `openssl speed -multi N ed25519`
# verify on as many processes. Prints each run's rate and peak RSS, then the medians and each
# thread count's speed-up over one thread (target: 16 threads ≥ 13× one).
#
#   benches/cores.sh [COUNT]     # COUNT defaults to 1000000; ROUNDS=3; THREADS="1 2 4 …" to choose
#
# A machine without Rust (a lent many-core one) runs a binary built elsewhere: build it with
# `cargo build --release -p tongban-verify --features testkit`, copy target/release/tongban-verify
# to target/device/, carry that folder and run `BIN=target/device/tongban-verify benches/cores.sh`.
# Without BIN the script builds the release binary itself. `gen` (the testkit feature) makes the
# certificates; the verify path is the same code with or without it.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
rounds=${ROUNDS:-3}
cores=$(nproc)
if [ -z "${THREADS:-}" ]; then
    THREADS=""
    for n in 1 2 4 8 16 32 64 128 256; do
        [ "$n" -le "$cores" ] && THREADS="$THREADS $n"
    done
    case " $THREADS " in *" $cores "*) ;; *) THREADS="$THREADS $cores" ;; esac
fi
if [ -z "${BIN:-}" ]; then
    cargo build --locked --release --quiet -p tongban-verify --features testkit
    BIN=target/release/tongban-verify
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/tongban-cores.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cores cores;" \
    "avx512ifma: $(grep -q avx512ifma /proc/cpuinfo && echo yes || echo no)"
"$BIN" gen "$work/set" --count "$count" --mix valid=100 > /dev/null
status=()
for list in "$work"/set/status-*.tsl; do status+=(--status "$list"); done

# Peak RSS needs GNU time; without it the runs go on and RSS reads "-".
timed=()
[ -x /usr/bin/time ] && timed=(/usr/bin/time -f "rss_kb=%M")

# One run: prints "backend rate rss_kb".
run() {
    "${timed[@]}" "$BIN" bulk "$work/set/certificates.tbb" --trust "$work/set/bundle.tbt" \
        "${status[@]}" --now 1784937600 --threads "$1" 2>&1 > /dev/null |
        awk '/"summary"/ {
                 match($0, /"ed25519_backend":"[a-z0-9]+"/); b = substr($0, RSTART + 19, RLENGTH - 20)
                 match($0, /"per_second":[0-9.]+/); r = substr($0, RSTART + 13, RLENGTH - 13)
             }
             /^rss_kb=/ { sub("rss_kb=", ""); k = $0 }
             END { if (b == "" || r == "") exit 1; print b, r, (k == "" ? "-" : k) }'
}

# openssl's verify/s on N processes: the Ed25519 line's last column.
openssl_rate() {
    if ! command -v openssl > /dev/null; then
        echo "-"
        return
    fi
    openssl speed -seconds 3 -multi "$1" ed25519 2>/dev/null | awk '/Ed25519/ {r = $NF} END {print (r == "" ? "-" : r)}'
}

results="$work/results"
for round in $(seq "$rounds"); do
    for threads in $THREADS; do
        read -r backend rate rss <<< "$(run "$threads")"
        echo "round $round, $threads thread(s): backend $backend, $rate/s, peak RSS ${rss} kB"
        echo "$threads $rate" >> "$results"
    done
done
for threads in $THREADS; do
    echo "openssl $threads $(openssl_rate "$threads")" >> "$results"
done
awk '
    $1 == "openssl" { openssl[$2] = $3; next }
    { rates[$1] = rates[$1] " " $2; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
    function median(list,    m, v, i, j, t) {
        m = split(list, v, " ")
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
        return v[int((m + 1) / 2)]
    }
    END {
        one = median(rates[order[1]])
        printf "%8s %14s %10s %18s %10s\n", "threads", "certificates/s", "vs 1", "openssl verify/s", "ours/ossl"
        for (i = 1; i <= n; i++) {
            t = order[i]; r = median(rates[t]); o = openssl[t]
            printf "%8d %14.0f %9.2fx %18s %10s\n", t, r, r / one, o, (o == "-" || o == "" ? "-" : sprintf("%.2fx", r / o))
        }
    }' "$results"
