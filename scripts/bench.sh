#!/usr/bin/env bash
# Runs the benchmarks and writes BENCHMARKS.md (not part of the test command).
#   scripts/bench.sh            the whole set in one go (about 15 minutes): builds the release
#                               server and extension; the .wasm's size and parts (tracked in
#                               bench/size-history.json); core throughput, native and wasm; server
#                               ingest; ReviewTime beside generated floor extensions, alternated
#                               round by round (worker wake, tab close, page shown, idle popup:
#                               bench/floor.mjs); commit cost as the queue grows and requests per
#                               activity (bench/commit.mjs); burst, outage, idle (bench/extension.mjs).
#                               BENCHMARKS.md also shows the last `memory` run and the last soak.
#   scripts/bench.sh server     only the server ingest on SQLite, and on PostgreSQL with one and two
#                               instances (about 2 minutes); rewrites only that section of BENCHMARKS.md
#   scripts/bench.sh memory     only the server's resident memory: one long-lived release server
#                               under steady load for 30 minutes (MEMORY_MINUTES), RSS from /proc;
#                               keeps the figures in bench/memory-run.json, which BENCHMARKS.md shows
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
part=${1:-all}
case "$part" in
  all|server|memory) ;;
  *) echo "usage: scripts/bench.sh [server|memory]" >&2; exit 2 ;;
esac
scripts/setup.sh
mkdir -p .scratch
out=.scratch/bench.jsonl
[ "$part" = server ] && out=.scratch/bench-server.jsonl
: > "$out"

# Release binaries (CARGO_TARGET_DIR is honoured).
rel="${CARGO_TARGET_DIR:-$PWD/target}/release"
pids=()
scratch_dirs=()
pg_dir=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  [ -n "$pg_dir" ] && scripts/pg.sh stop "$pg_dir"
  for d in "${scratch_dirs[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

# Starts a release server with the given global options; LOG gets its output.
start_server() {
  local log=$1; shift
  # The load generator is one address and one token far past any user's pace:
  # the rate limits (which protect a real server) are off for the measurement.
  REVIEWTIME_RATE_BURST=0 REVIEWTIME_ADDRESS_RATE_BURST=0 \
    "$rel/reviewtime-server" "$@" serve --addr 127.0.0.1:0 --exit-after 900 > "$log" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do grep -q '^LISTENING' "$log" && return 0; sleep 0.1; done
  echo "[bench] server did not start:" >&2; cat "$log" >&2; exit 1
}
listening() { sed -n 's/^LISTENING //p' "$1"; }
token_of() { sed -n 's/^PAIRING .*token=\([^&]*\)&.*/\1/p' "$1"; }
stop_servers() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pids=()
}

# 6: ingest through the batch endpoint (1 and 16 clients) and session-update latency, on
# SQLite, then on a scratch PostgreSQL with its default (durable) settings: one instance,
# then two instances sharing a database, each row on a fresh database.
server_bench() {
  local d
  d=$(mktemp -d "$PWD/.scratch/bench-server.XXXXXX")
  scratch_dirs+=("$d")
  # Other work on the machine lowers every figure: record how busy it was.
  echo "{\"measure\":\"server_bench_load\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$out"
  echo "[bench] 6. server ingest and session-update latency: SQLite"
  start_server "$d/sqlite.log" --data "$d/sqlite"
  "$rel/examples/loadgen" "$(listening "$d/sqlite.log")" "$(token_of "$d/sqlite.log")" 4 sqlite 3 | tee -a "$out"
  stop_servers

  eval "$(scripts/pg.sh start)"
  pg_dir=$REVIEWTIME_PG_DIR
  "$REVIEWTIME_PG_BIN/psql" -q "$REVIEWTIME_TEST_PG" -c 'CREATE DATABASE bench1' -c 'CREATE DATABASE bench2'
  local base=${REVIEWTIME_TEST_PG%/postgres}
  "$REVIEWTIME_PG_BIN/postgres" --version | awk '{print "{\"measure\":\"postgres_version\",\"version\":\"" $3 "\"}"}' >> "$out"
  echo "[bench] 6. server ingest and session-update latency: PostgreSQL, one instance"
  start_server "$d/pg1.log" --data "$d/pg1" --database "$base/bench1"
  "$rel/examples/loadgen" "$(listening "$d/pg1.log")" "$(token_of "$d/pg1.log")" 4 postgres 3 | tee -a "$out"
  stop_servers
  echo "[bench] 6. server ingest and session-update latency: PostgreSQL, two instances on one database"
  start_server "$d/pg2a.log" --data "$d/pg2" --database "$base/bench2"
  start_server "$d/pg2b.log" --data "$d/pg2" --database "$base/bench2"
  "$rel/examples/loadgen" "$(listening "$d/pg2a.log"),$(listening "$d/pg2b.log")" "$(token_of "$d/pg2a.log")" 4 postgres 3 | tee -a "$out"
  stop_servers
  scripts/pg.sh stop "$pg_dir"
  pg_dir=
}

if [ "$part" = memory ]; then
  echo "[bench] building the release server"
  cargo build --quiet --release -p reviewtime-server --bins
  echo "[bench] server memory: one process under steady load for ${MEMORY_MINUTES:-30} minutes"
  REVIEWTIME_SERVER_BIN="$rel/reviewtime-server" node bench/memory.mjs | tee .scratch/bench-memory.jsonl
  grep '"measure":"server_memory"' .scratch/bench-memory.jsonl > bench/memory-run.json
  echo "[bench] wrote bench/memory-run.json (scripts/bench.sh without arguments puts it in BENCHMARKS.md)"
  exit 0
fi

if [ "$part" = server ]; then
  echo "[bench] building the release server and its load generator"
  cargo build --quiet --release -p reviewtime-server --bins --examples
  server_bench
  node bench/report.mjs --server "$out" BENCHMARKS.md
  echo "[bench] rewrote the server-ingest section of BENCHMARKS.md"
  exit 0
fi

# Each step's wall time goes into the record: the whole run must fit in 20 minutes.
run_started=$(date +%s)
step_started=$run_started
step() {
  local now; now=$(date +%s)
  [ -n "${step_name:-}" ] && echo "{\"measure\":\"bench_step\",\"step\":\"$step_name\",\"seconds\":$((now - step_started))}" >> "$out"
  step_name=$1; step_started=$now
  echo "[bench] $1"
}

step "build: release server, core examples, release extension"
cargo build --quiet --release -p reviewtime-server -p reviewtime-core --bins --examples
./build.sh >/dev/null
# The benchmarks load a copy of dist/, so a rebuild by someone else during the run cannot pull it away.
bench_dist=$(mktemp -d "$PWD/.scratch/bench-dist.XXXXXX")
scratch_dirs+=("$bench_dist")
cp -r dist/. "$bench_dist"
export REVIEWTIME_DIST=$bench_dist REVIEWTIME_SERVER_BIN="$rel/reviewtime-server"
echo "{\"measure\":\"run_info\",\"commit\":\"$(git rev-parse --short HEAD)\",\"dirty\":$([ -z "$(git status --porcelain -- src crates extension manifest.json Cargo.toml Cargo.lock)" ] && echo false || echo true),\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >> "$out"

step "size: the release .wasm, its largest parts, the change since the last run"
node bench/size.mjs "$bench_dist/wasm/reviewtime_ext_bg.wasm" \
  "${CARGO_TARGET_DIR:-$PWD/target}/wasm32-unknown-unknown/release/reviewtime_ext.wasm" bench/size-history.json | tee -a "$out"

step "core throughput (native)"
cargo run --quiet --release -p reviewtime-workload --example throughput -- 200000 | tee -a "$out"

step "core throughput (wasm, in Chromium)"
REVIEWTIME_BENCH_EVENTS=200000 wasm-pack test --release --headless --chrome . --test throughput -- --nocapture 2>&1 \
  | grep -o '{"measure":"core_wasm"[^}]*}' | tee -a "$out"

step "server ingest: SQLite, PostgreSQL, one and two instances"
server_bench

step "beside the floor: tab close, page shown, worker wake, idle popup (alternated round by round)"
ROUNDS=${ROUNDS:-40} node bench/floor.mjs | tee -a "$out"

step "cost as work grows: commit time and bytes per event with 0, 1,000, 10,000 queued; bursts of 3 and 100"
node bench/commit.mjs | tee -a "$out"

step "extension: popup paint, burst of 10,000, outage, idle (about 5 minutes)"
node bench/extension.mjs | tee -a "$out"

step "report"
echo "{\"measure\":\"bench_total\",\"seconds\":$(( $(date +%s) - run_started ))}" >> "$out"
node bench/report.mjs "$out" > BENCHMARKS.md
echo "[bench] wrote BENCHMARKS.md in $(( $(date +%s) - run_started )) s"
