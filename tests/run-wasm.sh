#!/usr/bin/env bash
# Runs the wasm shell's in-browser tests against the real server on 127.0.0.1.
# The server stops with this script (trap) and, as a backstop, by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d "$PWD/.scratch/wasm.XXXXXX" 2>/dev/null || { mkdir -p .scratch; mktemp -d "$PWD/.scratch/wasm.XXXXXX"; })
target/debug/reviewtime-server --data "$scratch/data" serve --addr 127.0.0.1:0 --exit-after 600 >"$scratch/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 100); do
  url=$(sed -n 's/^LISTENING //p' "$scratch/server.log")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$scratch/server.log"; echo "server did not start" >&2; exit 1; }
REVIEWTIME_TEST_SERVER=$url wasm-pack test --headless --chrome . 2>&1
