#!/usr/bin/env bash
# Builds dist/: the unpacked extension Chrome loads.
#   ./build.sh            release build (size-optimised wasm)
#   ./build.sh --dev      debug build (faster, bigger)
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
profile=--release
[ "${1:-}" = "--dev" ] && profile=--dev
rm -rf pkg
wasm-pack --quiet build "$profile" --target web --out-dir pkg --no-typescript --no-pack . >/dev/null
rm -rf dist
mkdir -p dist/wasm
cp manifest.json dist/
cp -r extension/. dist/
cp pkg/reviewtime_ext.js pkg/reviewtime_ext_bg.wasm dist/wasm/
raw=$(stat -c %s dist/wasm/reviewtime_ext_bg.wasm)
gz=$(gzip -9 -c dist/wasm/reviewtime_ext_bg.wasm | wc -c)
echo "built dist/ (wasm: $raw bytes raw, $gz bytes gzip)"
