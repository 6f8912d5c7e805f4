#!/usr/bin/env bash
# examples/demo.sh: the credit_ledger demo, in one command.
#
#   ./examples/demo.sh                 set up, install, play the story, stop the cluster
#   ./examples/demo.sh --keep          ... and keep the cluster running to explore it with psql
#   ./examples/demo.sh --pg-bindir /usr/lib/postgresql/18/bin    another PostgreSQL
#
# What it does:
#   1. ./setup.sh                  the idempotent installer (skips what is there)
#   2. cargo pgrx install          builds the extension and installs it into the PostgreSQL
#                                  of --pg-bindir (default: the system PostgreSQL 15)
#   3. a throwaway cluster         tests/cluster.sh: runs as the `postgres` user (initdb refuses
#                                  root), Unix socket only, private socket directory and port
#   4. examples/demo.sql           in a new database `credit_demo`: rate cards, wallets with
#                                  stacked grants, authorizations, quote, decline, idempotent
#                                  retry, hold/capture, refund, a team pool, balances, verify
#   5. stops and removes the cluster (unless --keep)
#
# Logs of the set-up and the build go to build/demo-logs/.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: examples/demo.sh [--keep] [--pg-bindir DIR] [--release] [--no-setup] [--no-install]
  --keep            keep the cluster running after the story; prints the psql command
  --pg-bindir DIR   PostgreSQL bin directory (default /usr/lib/postgresql/15/bin)
  --release         build the extension with --release (slower build, faster ledger)
  --no-setup        do not run ./setup.sh first
  --no-install      do not build/install the extension (use what is installed)
EOF
}

KEEP=0 SETUP=1 INSTALL=1 RELEASE=0
BINDIR="${PG_BINDIR:-/usr/lib/postgresql/15/bin}"
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) KEEP=1; shift ;;
    --pg-bindir) BINDIR="${2:?--pg-bindir needs a directory}"; shift 2 ;;
    --pg-bindir=*) BINDIR="${1#--pg-bindir=}"; shift ;;
    --release) RELEASE=1; shift ;;
    --no-setup) SETUP=0; shift ;;
    --no-install) INSTALL=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
cd "$REPO"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never
LOGS="$REPO/build/demo-logs"
mkdir -p "$LOGS"
DB=credit_demo
CLUSTER=demo

say() { printf '==> %s\n' "$*"; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }
# run_quiet <log> <cmd...>: output to the log; on failure show its tail and stop
run_quiet() {
  local log="$1"; shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" | sed 's/^/    /' >&2
    die "failed: $* (full log: $log)"
  fi
}

[ -x "$BINDIR/pg_config" ] || die "$BINDIR/pg_config not found (PostgreSQL server dev files installed there?)"
PGVER="$("$BINDIR/pg_config" --version | awk '{print $2}')"
PGMAJOR="${PGVER%%.*}"
PSQL="$BINDIR/psql"
[ -x "$PSQL" ] || PSQL="$(command -v psql)" || die "psql not found"

if [ "$SETUP" = 1 ]; then
  say "./setup.sh (idempotent: installs only what is missing)"
  ./setup.sh 2>&1 | tee "$LOGS/setup.log" | sed 's/^/    /'
  [ "${PIPESTATUS[0]}" -eq 0 ] || die "./setup.sh failed (log: $LOGS/setup.log)"
fi

if [ "$INSTALL" = 1 ]; then
  args=(pgrx install --pg-config "$BINDIR/pg_config")
  [ "$RELEASE" = 1 ] && args+=(--release)
  [ "$PGMAJOR" != 15 ] && args+=(--no-default-features --features "pg$PGMAJOR")
  [ "$(id -u)" -ne 0 ] && args+=(--sudo)
  say "cargo ${args[*]}  (the first build takes a few minutes; log: build/demo-logs/install.log)"
  run_quiet "$LOGS/install.log" cargo "${args[@]}"
fi

# The server inherits this environment: no Rust backtraces in what a client sees.
unset RUST_BACKTRACE RUST_LIB_BACKTRACE

# shellcheck disable=SC1091  # tests/cluster.sh, sourced at run time
source "$REPO/tests/cluster.sh"
on_exit() {
  local rc=$?
  if [ "$KEEP" != 1 ] || [ "$rc" -ne 0 ]; then cluster_cleanup || true; fi
  return "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" -eq 0 ]; then AS=postgres; else AS="$(id -un)"; fi
say "starting a throwaway PostgreSQL $PGVER cluster as user $AS (Unix socket only)"
cluster_start "$CLUSTER" "$BINDIR" 2>&1 || die "the cluster did not start"

"$PSQL" -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB" \
  || die "could not create database $DB"
say "database $DB created; playing examples/demo.sql"

"$PSQL" -X -v ON_ERROR_STOP=1 -P pager=off -d "$DB" -f "$HERE/demo.sql" 2>&1 \
  || die "examples/demo.sql failed"
echo

if [ "$KEEP" = 1 ]; then
  rm -f "$CLUSTER_DIR/owner.pid"   # the cluster outlives this script
  say "the cluster keeps running. Connect with:"
  printf '\n    %q -h %q -p %s -U postgres %s\n\n' "$PSQL" "$PGHOST" "$PGPORT" "$DB"
  say "stop it with:  $REPO/tests/cluster.sh stop $CLUSTER"
else
  cluster_stop "$CLUSTER" 2>&1
  say "done (run with --keep to explore the database with psql)"
fi
