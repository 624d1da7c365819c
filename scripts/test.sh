#!/usr/bin/env bash
# The whole test suite: lint, native tests, wasm build of the core, the
# extension build, in-browser wasm tests, end-to-end tests. Ends with node's
# test runner summary.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
step() { printf '\n=== %s\n' "$*"; }

step "setup"
scripts/setup.sh

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
node --test --test-concurrency=1 tests/e2e/
