#!/usr/bin/env bash
# credit_ledger benchmark: one command, its own throwaway PostgreSQL cluster.
#
#   bench/run.sh            full tier (W1..W6 x peers x clients 1,8,16 x sync on/off, 5 s cells, 3 rounds)
#   bench/run.sh --quick    smoke tier (a few minutes: W1,W2,W3,W4,W5, clients 1 and 8, 1 round)
#
# What it does, in order:
#   1. builds and installs the extension into --pg-bindir's PostgreSQL (cargo pgrx install --release)
#   2. initdb + starts a private cluster in /tmp/credit_ledger-bench-$$ (Unix socket only, stopped and
#      removed on exit, whatever happens)
#   3. runs bench/check_peer.sql: the PL/pgSQL peer must give the same results as the extension
#   4. loads the same data into every peer (floors, PL/pgSQL ledger, extension)
#   5. runs pgbench for every workload x variant x sync x clients cell, peers interleaved per round
#   6. runs the correctness gate (bench/sql/gate.sql) on every peer; any violation fails the run
#   7. prints the median table, ratios and targets; writes bench/results/<stamp>.csv (+ .txt)
#
# All options (see --help) after the mode are passed through to bench/lib/driver.py.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PGBIN=/usr/lib/postgresql/15/bin
INSTALL=1
KEEP=0
CHECK=1
DRIVER_ARGS=()

usage() {
  cat <<'EOF'
usage: bench/run.sh [--quick] [--pg-bindir DIR] [--no-install] [--skip-check] [--keep]
                    [--rounds N] [--duration SEC] [--clients 1,8,16] [--workloads W1,W2,...]
                    [--sync on,off] [--peers F1,F2,P1,EXT] [--memory-calls N] [--sampling-rate F]
                    [--shared-buffers SIZE]
  --quick          smoke tier: W1-W5 (W3: stacks 1,100 and fragmented), clients 1,8, 3 s cells, 1 round
  --pg-bindir DIR  PostgreSQL binaries to use (default /usr/lib/postgresql/15/bin); the extension is
                   built for that version (feature pgNN)
  --no-install     do not (re)build/install the extension (use what is installed)
  --skip-check     skip the P1-vs-extension equivalence check (not recommended)
  --keep           leave the cluster running at the end (prints how to connect and stop it)
  --rounds N       rounds per cell (median of rounds is reported); default 3 (quick: 1)
  --duration SEC   seconds per pgbench run; default 5 (quick: 3)
  --clients LIST   client counts; default 1,8,16 (quick: 1,8)
  --workloads LIST subset of W1,W2,W3,W4,W5,W6 (quick default: W1,W2,W3,W4,W5)
  --sync LIST      synchronous_commit settings; default on,off
  --peers LIST     subset of F1,F2,P1,EXT (each workload uses the peers that make sense for it)
  --memory-calls N backend memory check: N credit_authorize calls in one session (default 1000000,
                   quick 50000; 0 = skip)
EOF
}

QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; DRIVER_ARGS+=("--quick"); shift ;;
    --pg-bindir) PGBIN="$2"; shift 2 ;;
    --pg-bindir=*) PGBIN="${1#*=}"; shift ;;
    --no-install) INSTALL=0; shift ;;
    --skip-check) CHECK=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --rounds|--duration|--clients|--workloads|--sync|--peers|--memory-calls|--sampling-rate|--shared-buffers|--stack-wallets|--w6-wallets|--old-ext)
      DRIVER_ARGS+=("$1" "$2"); shift 2 ;;
    --*=*) DRIVER_ARGS+=("${1%%=*}" "${1#*=}"); shift ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[bench] FAIL: %s\n' "$*" >&2; exit 1; }

[ -x "$PGBIN/postgres" ] || die "no postgres in $PGBIN"
[ -x "$PGBIN/pgbench" ] || die "no pgbench in $PGBIN"
PGVER="$("$PGBIN/pg_config" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')"
PYTHON="$(command -v python3 || true)"
[ -n "$PYTHON" ] || die "python3 is required for the driver/report"

# --- 1. install the extension -------------------------------------------------------------------
if [ "$INSTALL" = 1 ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
  FEAT=()
  [ "$PGVER" = 15 ] || FEAT=(--no-default-features --features "pg$PGVER")
  log "cargo pgrx install --release (PostgreSQL $PGVER) ..."
  (cd "$REPO" && cargo pgrx install --release --pg-config "$PGBIN/pg_config" "${FEAT[@]}") \
    > "/tmp/credit_ledger-bench-install.$$.log" 2>&1 \
    || { tail -40 "/tmp/credit_ledger-bench-install.$$.log" >&2; die "cargo pgrx install failed (log above)"; }
  rm -f "/tmp/credit_ledger-bench-install.$$.log"
fi

# --- 2. throwaway cluster ------------------------------------------------------------------------
BASE="/tmp/credit_ledger-bench-$$"
PGDATA="$BASE/pgdata"
SOCK="$BASE"
PORT=$(( 20000 + $$ % 20000 ))   # only names the socket file inside $BASE: no TCP listener
AS_PG=()
if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); fi

cleanup() {
  local rc=$?
  if [ "$KEEP" = 1 ] && [ -f "$PGDATA/postmaster.pid" ]; then
    echo "cluster kept: psql -h $SOCK -p $PORT -U postgres bench"
    echo "stop it with: ${AS_PG[*]} $PGBIN/pg_ctl -D $PGDATA stop -m fast && rm -rf $BASE"
    exit $rc
  fi
  if [ -f "$PGDATA/postmaster.pid" ]; then
    "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" stop -m immediate -w >/dev/null 2>&1 || true
  fi
  rm -rf "$BASE"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$BASE"
[ "$(id -u)" = 0 ] && chown postgres: "$BASE"
chmod 0755 "$BASE"
log "initdb $PGDATA (PostgreSQL $PGVER)"
"${AS_PG[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null

SB=1GB
for ((i = 0; i < ${#DRIVER_ARGS[@]}; i++)); do
  [ "${DRIVER_ARGS[$i]}" = --shared-buffers ] && SB="${DRIVER_ARGS[$((i + 1))]}"
done
cat >> "$PGDATA/postgresql.conf" <<EOF

# --- credit_ledger bench ---
listen_addresses = ''
unix_socket_directories = '$SOCK'
port = $PORT
max_connections = 60
shared_buffers = $SB
work_mem = 16MB
maintenance_work_mem = 512MB
wal_buffers = 64MB
max_wal_size = 32GB
min_wal_size = 2GB
checkpoint_timeout = 1h
checkpoint_completion_target = 0.9
synchronous_commit = on
fsync = on
jit = off
track_io_timing = off
log_min_duration_statement = -1
log_checkpoints = on
EOF
log "starting cluster (socket $SOCK, port $PORT, shared_buffers $SB)"
"${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$BASE/postgres.log" -w -t 60 start >/dev/null \
  || { tail -20 "$BASE/postgres.log" >&2; die "cluster did not start"; }

export PGHOST="$SOCK" PGPORT="$PORT" PGUSER=postgres
PSQL=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1)

# --- 3. equivalence check: P1 vs the extension --------------------------------------------------
if [ "$CHECK" = 1 ]; then
  log "check_peer: PL/pgSQL peer vs extension on a shared scenario"
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE bench_check"
  CHECK_OUT="$BASE/check_peer.out"
  if ! { "${PSQL[@]}" -d bench_check -f "$HERE/plpgsql_ledger.sql" \
         && "${PSQL[@]}" -d bench_check -c "CREATE EXTENSION credit_ledger" \
         && "${PSQL[@]}" -d bench_check -f "$HERE/check_peer.sql"; } > "$CHECK_OUT" 2>&1; then
    cat "$CHECK_OUT" >&2
    die "check_peer.sql: the PL/pgSQL peer and the extension disagree (or the scenario failed)"
  fi
  grep -o 'check_peer: .*' "$CHECK_OUT" | sed 's/^/  /'
  "${PSQL[@]}" -d postgres -c "DROP DATABASE bench_check"
fi

# --- 4..7. load, run, gate, report ---------------------------------------------------------------
mkdir -p "$HERE/results"
"$PYTHON" "$HERE/lib/driver.py" --bench-dir "$HERE" --pg-bindir "$PGBIN" --base "$BASE" \
  --pgdata "$PGDATA" --host "$SOCK" --port "$PORT" --pg-version "$PGVER" "${DRIVER_ARGS[@]}"
