#!/usr/bin/env bash
# The whole test suite: lint, native tests, wasm build of the core, the
# extension build, in-browser wasm tests, end-to-end tests. Ends with node's
# test runner summary. The server's tests and one end-to-end test also run on
# a scratch PostgreSQL (scripts/pg.sh), started here and stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
step() { printf '\n=== %s\n' "$*"; }

step "setup"
scripts/setup.sh

step "a scratch PostgreSQL for the server's tests (scripts/pg.sh)"
eval "$(scripts/pg.sh start --fast)"
trap 'scripts/pg.sh stop "$REVIEWTIME_PG_DIR"' EXIT
# The PostgreSQL tests fail, rather than skip, if the server above is missing.
export REVIEWTIME_REQUIRE_PG=1

step "format and lints"
cargo fmt --all -- --check
cargo clippy --quiet --workspace --all-targets -- -D warnings
cargo clippy --quiet --target wasm32-unknown-unknown --lib -- -D warnings

step "native tests (cargo test)"
cargo test --workspace

step "the core builds for wasm32-unknown-unknown"
cargo build --quiet -p reviewtime-core --target wasm32-unknown-unknown

step "build the server and the extension"
cargo build --quiet -p reviewtime-server
./build.sh

step "in-browser wasm tests (wasm-pack test --headless --chrome)"
tests/run-wasm.sh

step "end-to-end tests (node --test)"
# tests/e2e/review-time.test.mjs and policies.test.mjs mostly wait (a one-minute
# idle limit, a 15 s browser quit, 20 s of a login page where the API should be,
# a 5 s Retry-After), so they run one after the other beside the rest; their
# report follows the others', and the last line sums both.
mkdir -p .scratch
slow="tests/e2e/review-time.test.mjs tests/e2e/policies.test.mjs"
node --test --test-concurrency=1 $slow > .scratch/e2e-slow.log 2>&1 &
slow_pid=$!
rest=$(ls tests/e2e/*.test.mjs | grep -vxF -e tests/e2e/review-time.test.mjs -e tests/e2e/policies.test.mjs)
set +e
node --test --test-concurrency=1 $rest 2>&1 | tee .scratch/e2e-main.log
main_rc=${PIPESTATUS[0]}
wait "$slow_pid"
slow_rc=$?
set -e
printf '\n=== end-to-end tests run beside the others: %s\n' "$slow"
cat .scratch/e2e-slow.log
count() { local n; n=$(sed -n "s/^# $1 \([0-9]*\)$/\1/p" "$2" | tail -1); echo "${n:-0}"; }
passed=$(( $(count pass .scratch/e2e-main.log) + $(count pass .scratch/e2e-slow.log) ))
failed=$(( $(count fail .scratch/e2e-main.log) + $(count fail .scratch/e2e-slow.log) ))
echo "end-to-end: $passed passed, $failed failed"
[ "$main_rc" = 0 ] && [ "$slow_rc" = 0 ] && [ "$failed" = 0 ]
