#!/usr/bin/env bash
# Issue 15's first speed figure, side by side in one run on this machine: one SM2 verification by
# tongban-core (RustCrypto sm2's group operations with our tables, core/src/sm2_tables.rs; through
# the certificate path and alone) against `openssl speed sm2` verify on one core. Prints OpenSSL's
# rate, ours, the ratio, and what a key's first verification costs (it builds the key's table).
#
#   benches/sm2.sh            # about 2 minutes after the bench is built
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --locked -p tongban-benches --bench verify --no-run > /dev/null 2>&1

openssl_rate() {
    # The "verify/s" column of the sm2 line (OpenSSL 3: "sign    verify    sign/s verify/s").
    openssl speed -seconds 5 sm2 2>/dev/null | awk '/^ *256 bits SM2/ {print $NF}'
}
ours() {
    # criterion's median time for the named function, in microseconds.
    cargo bench --locked -p tongban-benches --bench verify -- --noplot "sm2 certificate/$1" 2>/dev/null \
        | awk '{ for (i = 1; i <= NF; i++) if ($i == "time:") {
                   v = $(i + 3); u = $(i + 4)
                   if (u == "ms") v *= 1000; if (u == "ns") v /= 1000; if (u == "s") v *= 1e6
                   print v; exit } }'
}
before=$(openssl_rate)
strict=$(ours "verify_strict only")
# criterion takes the name as a regular expression: the parentheses are escaped.
full=$(ours "verify \\(all steps\\)")
first=$(ours "first verification by a new key")
after=$(openssl_rate)
echo "openssl speed sm2 verify (1 core): ${before}/s before, ${after}/s after"
awk -v s="$strict" -v f="$full" -v c="$first" -v a="$before" -v b="$after" 'BEGIN {
    o = (a + b) / 2;
    printf "tongban-core SM2 verify_strict: %.1f us = %.0f/s (%.2fx openssl)\n", s, 1e6 / s, 1e6 / s / o;
    printf "tongban-core sm2 certificate, all steps: %.1f us = %.0f/s (%.2fx openssl)\n", f, 1e6 / f, 1e6 / f / o;
    printf "a key'"'"'s first verification (builds its table): %.1f us\n", c;
}'
