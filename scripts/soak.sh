#!/usr/bin/env bash
# The soak run (not in CI): 30 minutes of continuous review sessions with random
# worker kills, server restarts and error bursts. Writes bench/soak-summary.md,
# which scripts/bench.sh includes in BENCHMARKS.md.
#   SOAK_MINUTES=30 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
scripts/setup.sh
cargo build --quiet --release -p reviewtime-server
./build.sh >/dev/null
REVIEWTIME_SERVER_BIN="$PWD/target/release/reviewtime-server" SOAK_SUMMARY=bench/soak-summary.md node bench/soak.mjs
[ -f BENCHMARKS.md ] && [ -f .scratch/bench.jsonl ] && node bench/report.mjs .scratch/bench.jsonl > BENCHMARKS.md || true
echo "[soak] wrote bench/soak-summary.md"
