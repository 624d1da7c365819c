#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benchmarks: initdb + pg_ctl
# into a scratch folder under .scratch/, listening on 127.0.0.1 only, on a
# free port. PostgreSQL refuses to run as root: as root it runs as the user
# `postgres`, otherwise as yourself. Installs Debian's package if missing.
#
#   eval "$(scripts/pg.sh start [--fast])"   # exports REVIEWTIME_PG_DIR, REVIEWTIME_PG_BIN (initdb, psql…)
#                                             # and REVIEWTIME_TEST_PG=postgres://reviewtime@127.0.0.1:PORT/postgres
#   scripts/pg.sh stop "$REVIEWTIME_PG_DIR"   # stops it and deletes the folder
#
# --fast turns fsync off (tests only: a crash may lose the scratch data, which
# is thrown away anyway). Progress goes to stderr; stdout is for `eval`.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[pg] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    # The real folder (PATH may hold symlinks), which also has psql.
    dirname "$(readlink -f "$(command -v initdb)")"
    return
  fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; fi
}

# Runs a command as the user PostgreSQL runs as.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  local fast=0
  [ "${1:-}" = --fast ] && fast=1
  local bin
  bin=$(pg_bin)
  if [ -z "$bin" ]; then
    say "installing PostgreSQL from Debian's packages"
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >&2
    bin=$(pg_bin)
    [ -n "$bin" ] || { say "PostgreSQL's initdb not found after installing"; exit 1; }
  fi
  mkdir -p .scratch
  local d
  d=$(mktemp -d "$PWD/.scratch/pg.XXXXXX")
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$d"
    # The repository may sit where `postgres` cannot reach (under /root): use /tmp then.
    if ! runuser -u postgres -- test -w "$d"; then
      rmdir "$d"
      d=$(mktemp -d /tmp/reviewtime-pg.XXXXXX)
      chown postgres "$d"
    fi
  fi
  as_pg "$bin/initdb" -D "$d/data" -A trust -U reviewtime -E UTF8 --no-sync >"$d/initdb.log" 2>&1 \
    || { cat "$d/initdb.log" >&2; exit 1; }
  local opts="-c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=300"
  [ "$fast" = 1 ] && opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  local port started=0
  for _ in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 40000))
    # Taken if something answers there already.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    if as_pg "$bin/pg_ctl" -D "$d/data" -o "$opts -p $port" -l "$d/log" -w -t 60 start >/dev/null 2>&1; then
      started=1
      break
    fi
  done
  if [ "$started" != 1 ]; then
    say "PostgreSQL did not start:"; cat "$d/log" >&2 || true
    exit 1
  fi
  say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $d"
  echo "export REVIEWTIME_PG_DIR='$d'"
  echo "export REVIEWTIME_PG_BIN='$bin'"
  echo "export REVIEWTIME_TEST_PG='postgres://reviewtime@127.0.0.1:$port/postgres'"
}

stop() {
  local d=${1:?usage: scripts/pg.sh stop DIR}
  [ -d "$d/data" ] || return 0
  local bin
  bin=$(pg_bin)
  as_pg "$bin/pg_ctl" -D "$d/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  rm -rf "$d"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: scripts/pg.sh start [--fast] | stop DIR" >&2; exit 2 ;;
esac
