#!/usr/bin/env bash
# Sets everything up, builds the extension into dist/, and runs the server on
# 127.0.0.1 with its embedded SQLite database under ./data (the default), or
# on PostgreSQL with --database postgres://… (or REVIEWTIME_DATABASE).
#   scripts/start.sh [--addr 127.0.0.1:8787] [--data ./data] [--database URL]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$HOME/.cargo/bin:$PATH"
addr=127.0.0.1:8787
data=data
while [ $# -gt 0 ]; do
  case "$1" in
    --addr) addr=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --database) export REVIEWTIME_DATABASE=$2; shift 2 ;;
    *) echo "usage: scripts/start.sh [--addr HOST:PORT] [--data DIR] [--database URL]" >&2; exit 2 ;;
  esac
done
scripts/setup.sh
cargo build --quiet --release -p reviewtime-server
./build.sh
cat <<MSG

ReviewTime is built.
  Extension:  $PWD/dist
    Load it: open chrome://extensions, turn on Developer mode, "Load unpacked", choose that folder.
  Dashboard:  http://$addr/
  Pairing:    the server prints a PAIRING link on its first start (also saved in $data/pairing-link.txt).
    Open the extension's Options, paste the link, Save. Open the same link in a browser to sign in to the dashboard.
  New link for another person: target/release/reviewtime-server --data $data user add NAME --server http://$addr

Starting the server (Ctrl-C stops it)...
MSG
[ -f "$data/pairing-link.txt" ] && echo "PAIRING $(cat "$data/pairing-link.txt")"
exec target/release/reviewtime-server --data "$data" serve --addr "$addr"
