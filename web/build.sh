#!/usr/bin/env bash
# Builds the verification page (web/page, README "The verification page") into web/dist, which
# the node embeds and serves at /verify/, and which also works as a static bundle for sites
# without a node. The WebAssembly is tongban-core (web/src) built for wasm32 with paths remapped,
# so the same Rust toolchain gives the same bytes on any machine; jsQR comes from npm
# at the version package-lock.json pins.
#
#   web/build.sh          rebuild web/dist
#   web/build.sh --check  rebuild elsewhere and fail unless it equals the committed web/dist
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
check=false
[[ ${1:-} == --check ]] && check=true

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi
RUSTFLAGS="--remap-path-prefix=$root=/tongban --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
    CARGO_TARGET_DIR="$root/target/wasm" \
    cargo build --locked --quiet -p tongban-web --target wasm32-unknown-unknown --profile wasm
(cd web && npm ci --no-audit --no-fund --silent)

out=$(mktemp -d "${TMPDIR:-/tmp}/tongban-page.XXXXXX")
trap 'rm -rf "$out"' EXIT
cp web/page/index.html web/page/app.js web/page/style.css web/page/manifest.webmanifest \
    web/page/icon.svg "$out/"
cp web/node_modules/jsqr/dist/jsQR.js "$out/"
cp target/wasm/wasm32-unknown-unknown/wasm/tongban_web.wasm "$out/"
version=$(cd "$out" && cat index.html app.js style.css manifest.webmanifest icon.svg jsQR.js \
    tongban_web.wasm | sha256sum | cut -c1-16)
sed "s/@VERSION@/$version/" web/page/sw.js >"$out/sw.js"

if $check; then
    if ! diff -r "$out" web/dist >/dev/null; then
        echo "web/dist differs from a fresh build of web/page and web/src: run web/build.sh and commit" >&2
        diff -rq "$out" web/dist >&2 || true
        exit 1
    fi
    echo "web/dist is what web/build.sh builds (page version $version)"
else
    rm -rf web/dist
    mkdir -p web/dist
    cp "$out"/* web/dist/
    echo "web/dist built (page version $version, $(wc -c <web/dist/tongban_web.wasm) bytes of WebAssembly)"
fi
