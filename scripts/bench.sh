#!/usr/bin/env bash
# Runs every benchmark and writes BENCHMARKS.md (not part of the test command).
#   scripts/bench.sh            all seven measurements (about 10 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
scripts/setup.sh
mkdir -p .scratch
out=.scratch/bench.jsonl
: > "$out"
echo "[bench] building release server, extension and examples"
cargo build --quiet --release -p reviewtime-server -p reviewtime-core --bins --examples
./build.sh >/dev/null

echo "[bench] 7. core throughput (native)"
cargo run --quiet --release -p reviewtime-core --example throughput -- 200000 | tee -a "$out"

echo "[bench] 7. core throughput (wasm, in Chromium)"
REVIEWTIME_BENCH_EVENTS=200000 wasm-pack test --release --headless --chrome . --test throughput -- --nocapture 2>&1 \
  | grep -o '{"measure":"core_wasm"[^}]*}' | tee -a "$out"

echo "[bench] 6. server ingest and session-update latency"
data=$(mktemp -d "$PWD/.scratch/bench-server.XXXXXX")
target/release/reviewtime-server --data "$data" serve --addr 127.0.0.1:0 --exit-after 600 > "$data/log" 2>&1 &
srv=$!
trap 'kill $srv 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 100); do grep -q '^LISTENING' "$data/log" && break; sleep 0.1; done
url=$(sed -n 's/^LISTENING //p' "$data/log")
token=$(sed -n 's/^PAIRING .*token=\([^&]*\)&.*/\1/p' "$data/log")
target/release/examples/loadgen "$url" "$token" 5 | tee -a "$out"
kill $srv; wait $srv 2>/dev/null || true

echo "[bench] 1-5. extension: end-sync latency, wake-up, burst, outage, idle (about 6 minutes)"
REVIEWTIME_SERVER_BIN="$PWD/target/release/reviewtime-server" node bench/extension.mjs | tee -a "$out"

node bench/report.mjs "$out" > BENCHMARKS.md
echo "[bench] wrote BENCHMARKS.md"
