#!/usr/bin/env bash
# Issue 16's per-core figures, side by side in one run on this machine: `tongban-verify bulk` over
# COUNT valid certificates on 1 and 2 threads, built as released (curve25519-dalek's AVX-512 IFMA
# backend compiled in, chosen at run time where the CPU has it) and built without that backend
# (AVX2 at best), rounds alternating, beside `openssl speed ed25519` verify on one core before and
# after. Prints each run's backend, rate and peak RSS, then the medians and the ratios the issue
# names: per core against OpenSSL, IFMA against AVX2, 2 threads against 1.
#
#   benches/bulk.sh [COUNT]     # COUNT defaults to 400000; ROUNDS=3 rounds; ~6 minutes
#
# Both builds carry `gen` (`--features testkit`), which makes the certificates; the verify path
# is the same code with or without it. The second build goes to target/avx2.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-400000}
rounds=${ROUNDS:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/tongban-bulk.XXXXXX")
trap 'rm -rf "$work"' EXIT

cargo build --locked --release --quiet -p tongban-verify --features testkit
cp target/release/tongban-verify "$work/ifma"
RUSTFLAGS='--cfg curve25519_dalek_backend="simd"' CARGO_TARGET_DIR=target/avx2 \
    cargo build --locked --release --quiet -p tongban-verify --features testkit
cp target/avx2/release/tongban-verify "$work/avx2"

"$work/ifma" gen "$work/set" --count "$count" --mix valid=100 > /dev/null
status=()
for list in "$work"/set/status-*.tsl; do status+=(--status "$list"); done

openssl_rate() {
    # The "verify/s" column of the Ed25519 line.
    openssl speed -seconds 5 ed25519 2>/dev/null | awk '/Ed25519/ {print $NF}'
}
# One run: prints "backend rate rss_kb".
run() {
    /usr/bin/time -f "rss_kb=%M" "$work/$1" bulk "$work/set/certificates.tbb" \
        --trust "$work/set/bundle.tbt" "${status[@]}" --now 1784937600 --threads "$2" \
        2>&1 > /dev/null |
        awk '/"summary"/ {
                 match($0, /"ed25519_backend":"[a-z0-9]+"/); b = substr($0, RSTART + 19, RLENGTH - 20)
                 match($0, /"per_second":[0-9.]+/); r = substr($0, RSTART + 13, RLENGTH - 13)
             }
             /^rss_kb=/ { sub("rss_kb=", ""); k = $0 }
             END { if (b == "" || r == "") exit 1; print b, r, k }'
}

before=$(openssl_rate)
results="$work/results"
for round in $(seq "$rounds"); do
    for threads in 1 2; do
        for build in ifma avx2; do
            line=$(run "$build" "$threads")
            read -r backend rate rss <<< "$line"
            echo "round $round, $threads thread(s), $build build: backend $backend, $rate/s, peak RSS $((rss / 1024)) MiB"
            echo "$build $threads $rate" >> "$results"
        done
    done
done
after=$(openssl_rate)
echo "openssl speed ed25519 verify (1 core): ${before}/s before, ${after}/s after"
awk -v a="$before" -v b="$after" '
    { rates[$1 " " $2] = rates[$1 " " $2] " " $3 }
    function median(list,    n, v, i, j, t) {
        n = split(list, v, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return v[int((n + 1) / 2)]
    }
    END {
        o = (a + b) / 2
        i1 = median(rates["ifma 1"]); i2 = median(rates["ifma 2"])
        v1 = median(rates["avx2 1"]); v2 = median(rates["avx2 2"])
        printf "medians: released build %.0f/s (1 thread), %.0f/s (2); without IFMA %.0f/s, %.0f/s\n", i1, i2, v1, v2
        printf "per core against openssl: released build %.2fx, without IFMA %.2fx\n", i1 / o, v1 / o
        printf "IFMA build / AVX2 build, 1 thread: %.2fx\n", i1 / v1
        printf "2 threads / 1 thread: released build %.2fx, without IFMA %.2fx\n", i2 / i1, v2 / v1
    }' "$results"
