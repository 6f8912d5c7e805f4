# shellcheck shell=bash
#
# tests/ops/lib.sh — helpers shared by the operational tests (tests/ops/*.sh, tests/upgrade/upgrade.sh).
# Sourced, not run. Each test script:
#
#     source "$(dirname "$0")/lib.sh"      # (tests/upgrade/upgrade.sh sources ../ops/lib.sh)
#     ops_init dump_restore                # counters, psql settings, cleanup trap
#     db="$(ops_new_db src)"               # a fresh database with a unique name, dropped at exit
#     check_eq "balances survive" "$a" "$b"
#     ops_finish                           # prints "dump_restore: N passed, M failed", exits 0/1
#
# The cluster is the one in PGHOST/PGPORT/PGUSER (a superuser). Only a Unix socket directory or a
# loopback address is accepted: these tests create and drop databases.

OPS_NAME=""
OPS_PASS=0
OPS_FAIL=0
OPS_DB_LIST=""          # file: databases created by ops_new_db (it runs in $(...) subshells)
OPS_CLEANUP_HOOKS=()
OPS_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OPS_DIR="$OPS_REPO/tests/ops"
OPS_T0=$SECONDS

# psql for scripts: no ~/.psqlrc, stop at the first error, quiet, UTC (checks match SQLSTATEs,
# never message texts, so lc_messages does not matter).
export PGTZ=UTC PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
OPS_PSQL=(psql -X -q -v ON_ERROR_STOP=1)

ops_log() { printf '[%s] %s\n' "${OPS_NAME:-ops}" "$*" >&2; }

# ops_init <name> [noconnect] — start a test: check the connection target (unless noconnect:
# a test that starts its own cluster), set the exit trap.
ops_init() {
  OPS_NAME="$1"
  if [ "${2:-}" = noconnect ]; then
    OPS_DB_LIST="$(mktemp /tmp/cl_ops_dbs.XXXXXX)"
    trap _ops_exit EXIT
    trap 'exit 130' INT TERM
    return 0
  fi
  : "${PGHOST:?$OPS_NAME: PGHOST must point at a running cluster (socket directory or loopback)}"
  export PGUSER="${PGUSER:-postgres}" PGDATABASE="${PGDATABASE:-postgres}"
  case "$PGHOST" in
    /*|localhost|127.0.0.1|::1) ;;
    *) echo "$OPS_NAME: refusing PGHOST=$PGHOST (only a Unix socket directory or loopback)" >&2
       echo "$OPS_NAME: 0 passed, 1 failed"; exit 2 ;;
  esac
  if ! "${OPS_PSQL[@]}" -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
    echo "$OPS_NAME: cannot connect (PGHOST=$PGHOST PGPORT=${PGPORT:-})" >&2
    echo "$OPS_NAME: 0 passed, 1 failed"; exit 2
  fi
  if [ "$("${OPS_PSQL[@]}" -d postgres -Atc 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user')" != t ]; then
    echo "$OPS_NAME: PGUSER=$PGUSER is not a superuser" >&2
    echo "$OPS_NAME: 0 passed, 1 failed"; exit 2
  fi
  OPS_DB_LIST="$(mktemp /tmp/cl_ops_dbs.XXXXXX)"
  trap _ops_exit EXIT
  trap 'exit 130' INT TERM
}

# ops_on_exit <command...> — run at exit (before the databases are dropped), last added first.
ops_on_exit() { OPS_CLEANUP_HOOKS+=("$*"); }

_ops_exit() {
  local rc=$? i db
  for (( i = ${#OPS_CLEANUP_HOOKS[@]} - 1; i >= 0; i-- )); do
    eval "${OPS_CLEANUP_HOOKS[$i]}" >/dev/null 2>&1 || true
  done
  if [ -n "$OPS_DB_LIST" ] && [ -f "$OPS_DB_LIST" ]; then
    if [ "${OPS_KEEP:-0}" != 1 ]; then
      while read -r db; do
        [ -n "$db" ] || continue
        "${OPS_PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 \
          || ops_log "could not drop database $db"
      done <"$OPS_DB_LIST"
    elif [ -s "$OPS_DB_LIST" ]; then
      ops_log "OPS_KEEP=1: kept databases $(paste -sd' ' "$OPS_DB_LIST")"
    fi
    rm -f "$OPS_DB_LIST"
  fi
  # a script that died before ops_finish still prints its line
  if [ -z "${_OPS_FINISHED:-}" ]; then
    OPS_FAIL=$((OPS_FAIL + 1))
    echo "FAIL: $OPS_NAME stopped early (exit status $rc)"
    echo "$OPS_NAME: $OPS_PASS passed, $OPS_FAIL failed"
    exit 1
  fi
  exit "$rc"
}

# ops_new_db <tag> [template] — create a database with a unique name, print the name.
ops_new_db() {
  local tag="$1" tmpl="${2:-template0}" db
  db="cl_ops_${OPS_NAME}_${tag}_$$_${RANDOM}"
  db="${db:0:63}"
  "${OPS_PSQL[@]}" -d postgres -c "CREATE DATABASE \"$db\" TEMPLATE $tmpl ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'" >/dev/null
  echo "$db" >>"$OPS_DB_LIST"
  printf '%s\n' "$db"
}

# q <db> <sql> — one value (or rows, |-separated), unaligned, no header.
q() { "${OPS_PSQL[@]}" -d "$1" -At -c "$2"; }

# qf <db> <file> [psql args...] — run a file.
qf() { local db="$1" f="$2"; shift 2; "${OPS_PSQL[@]}" -d "$db" -f "$f" "$@"; }

ok() { OPS_PASS=$((OPS_PASS + 1)); echo "ok   - $*"; }
fail() {
  OPS_FAIL=$((OPS_FAIL + 1))
  echo "FAIL - $1"
  shift
  local l
  for l in "$@"; do printf '       %s\n' "$l"; done
}

# check <description> <command...> — passes when the command succeeds.
check() {
  local desc="$1"; shift
  local out rc=0
  out="$("$@" 2>&1)" || rc=$?
  if [ "$rc" -eq 0 ]; then ok "$desc"; else fail "$desc" "exit status $rc" "${out:0:2000}"; fi
}

# check_eq <description> <expected> <actual>
check_eq() {
  if [ "$2" == "$3" ]; then
    ok "$1"
  else
    fail "$1" "expected: ${2:0:3000}" "actual:   ${3:0:3000}"
  fi
}

# check_diff <description> <file a> <file b> — the two files are identical (shows a diff).
check_diff() {
  if diff -q "$2" "$3" >/dev/null; then
    ok "$1"
  else
    fail "$1" "$(diff -u "$2" "$3" | head -n 60)"
  fi
}

# check_sqlstate <description> <expected sqlstate> <db> <sql> [role] — the statement fails with it.
check_sqlstate() {
  local desc="$1" want="$2" db="$3" sql="$4" role="${5:-}" out
  local pre=""
  [ -n "$role" ] && pre="SET ROLE \"$role\"; "
  out="$("${OPS_PSQL[@]}" -d "$db" -At -v VERBOSITY=verbose -c "$pre$sql" 2>&1 || true)"
  if grep -q "ERROR:  $want:" <<<"$out"; then
    ok "$desc"
  else
    fail "$desc" "wanted SQLSTATE $want from: $sql" "got: ${out:0:600}"
  fi
}

# ops_finish — the one machine-readable line; exit status 0 only without failures.
ops_finish() {
  _OPS_FINISHED=1
  echo "($OPS_NAME took $((SECONDS - OPS_T0)) s)"
  echo "$OPS_NAME: $OPS_PASS passed, $OPS_FAIL failed"
  [ "$OPS_FAIL" -eq 0 ] && exit 0
  exit 1
}

# ops_bindir — bin directory of the PostgreSQL the running server belongs to: $PG_CONFIG's
# --bindir when PG_CONFIG is given, else the server's own BINDIR (the pg_config view).
ops_bindir() {
  if [ -n "${PG_CONFIG:-}" ]; then "$PG_CONFIG" --bindir; return; fi
  q postgres "SELECT setting FROM pg_config WHERE name = 'BINDIR'"
}

# ops_ext_snapshot <db> <outfile> [journal-only] — a normalized text picture of the whole ledger
# (every credit_ledger table, ordered; sequences; balances of every wallet x asset; reports;
# credit_verify()) for comparing two databases line by line.
ops_ext_snapshot() {
  local db="$1" out="$2"
  "${OPS_PSQL[@]}" -d "$db" -At -f "$OPS_DIR/snapshot.sql" >"$out"
}
