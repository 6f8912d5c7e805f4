#!/usr/bin/env bash
# examples/run_all.sh: run every language example against a running PostgreSQL with the
# credit_ledger extension installed, each in a fresh database of its own.
#
#   eval "$(tests/cluster.sh start dev)"      # or any server: PGHOST, PGPORT, PGUSER in the env
#   examples/run_all.sh                       # all of python node rust java shell portal
#   examples/run_all.sh --only python,shell
#
# Per example: prepare its toolchain (idempotent: a venv under examples/python/.venv, npm ci
# in examples/node, cargo build --locked of examples/rust, javac against Debian's
# libpostgresql-jdbc-java, installed with apt when missing; the portal: a venv under
# examples/portal/.venv, npm ci for Chart.js and Debian's chromium), CREATE DATABASE credit_ex_<lang>
# + CREATE EXTENSION credit_ledger, run it (it asserts its own outcomes; python runs three
# programs there, bill_image.py, agent_run.py then event_webhook.py), drop the database.
# Prints one line per language, then `examples: N passed, M failed`; exit status 1 on a failure.
# Logs: build/examples/<lang>.log.
set -uo pipefail

usage() {
  cat <<'EOF'
usage: examples/run_all.sh [--only LANG[,LANG...]] [--keep-db] [-v|--verbose]
  --only      run only these of: python node rust java shell portal
  --keep-db   keep each example's database (credit_ex_<lang>) afterwards
  --verbose   print every example's output, not only a failing one's
Environment: PGHOST, PGPORT, PGUSER (and PGPASSWORD) of a server where the extension is
installed; EXAMPLE_TIMEOUT (s per example program, default 600).
EOF
}

ALL=(python node rust java shell portal)
ONLY="" KEEP_DB=0 VERBOSE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="${2:?--only needs a list}"; shift 2 ;;
    --only=*) ONLY="${1#--only=}"; shift ;;
    --keep-db) KEEP_DB=1; shift ;;
    -v|--verbose) VERBOSE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
LANGS=("${ALL[@]}")
if [ -n "$ONLY" ]; then
  IFS=',' read -r -a LANGS <<<"$ONLY"
  for l in "${LANGS[@]}"; do
    case " ${ALL[*]} " in *" $l "*) ;; *) echo "run_all.sh: unknown example '$l'" >&2; exit 2 ;; esac
  done
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
LOGS="$REPO/build/examples"
mkdir -p "$LOGS"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never NO_COLOR=1
TIMEOUT="${EXAMPLE_TIMEOUT:-600}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
JDBC_JAR=/usr/share/java/postgresql.jar

# the server must be reachable before anything else
if ! psql -X -q -At -d postgres -c 'SELECT 1' >/dev/null 2>"$LOGS/connect.log"; then
  echo "run_all.sh: cannot connect to PostgreSQL (PGHOST=${PGHOST:-} PGPORT=${PGPORT:-}):" >&2
  sed 's/^/    /' "$LOGS/connect.log" >&2
  echo "examples: 0 passed, ${#LANGS[@]} failed"
  exit 1
fi

apt_install() {  # apt_install <package>...: install what is missing
  local need=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  echo "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"; }
}

sha() { sha256sum "$@" | sha256sum | cut -c1-16; }

# ------------------------------------------------------------------ per language: prepare, run

# prepare_venv <dir>: <dir>/.venv with <dir>/requirements.txt, rebuilt when the file changed
prepare_venv() {
  local dir="$1" venv="$1/.venv" stamp
  command -v python3 >/dev/null || apt_install python3 python3-venv || return 1
  stamp="$(sha "$dir/requirements.txt")"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv" || { apt_install python3-venv && python3 -m venv "$venv"; } || return 1
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$dir/requirements.txt" || return 1
    echo "$stamp" >"$venv/.requirements"
  fi
}

# prepare_npm <dir> <file that must exist after npm ci>: npm ci when package files changed
prepare_npm() {
  local dir="$1" must="$2" stamp
  command -v npm >/dev/null || apt_install nodejs npm || return 1
  stamp="$(sha "$dir/package.json" "$dir/package-lock.json")"
  if [ ! -e "$dir/node_modules/$must" ] || [ "$(cat "$dir/node_modules/.ci-stamp" 2>/dev/null)" != "$stamp" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
    echo "$stamp" >"$dir/node_modules/.ci-stamp"
  fi
}

prepare_python() { prepare_venv "$HERE/python"; }

prepare_node() { prepare_npm "$HERE/node" pg; }

prepare_rust() {
  command -v cargo >/dev/null || { echo "cargo not found (see ./setup.sh)"; return 1; }
  CARGO_TARGET_DIR="$HERE/rust/target" cargo build --locked --quiet --manifest-path "$HERE/rust/Cargo.toml"
}

prepare_java() {
  local dir="$HERE/java"
  [ -f "$JDBC_JAR" ] || apt_install libpostgresql-jdbc-java || return 1
  command -v javac >/dev/null || apt_install default-jdk-headless || return 1
  rm -rf "$dir/classes"
  javac -Xlint:all -Werror -cp "$JDBC_JAR" -d "$dir/classes" "$dir"/*.java
}

prepare_shell() { command -v psql >/dev/null; }

# the customer portal (issue 24): its Python venv, Chart.js from npm, and a headless browser
prepare_portal() {
  prepare_venv "$HERE/portal" && prepare_npm "$HERE/portal" chart.js/dist/chart.umd.js || return 1
  [ -x /usr/bin/chromium ] || apt_install chromium || return 1
}

# the programs of one example: each of PROGS is run as "${CMD[@]}" <prog>, one after the other
run_cmd() {
  case "$1" in
    python) CMD=("$HERE/python/.venv/bin/python")
            PROGS=("$HERE/python/bill_image.py" "$HERE/python/agent_run.py" "$HERE/python/event_webhook.py") ;;
    node)   CMD=(node) PROGS=("$HERE/node/bill_image.js") ;;
    rust)   CMD=() PROGS=("$HERE/rust/target/debug/bill_image") ;;
    java)   CMD=(java -cp "$HERE/java/classes:$JDBC_JAR") PROGS=(BillImage) ;;
    shell)  CMD=() PROGS=("$HERE/shell/bill_image.sh") ;;
    portal) CMD=("$HERE/portal/.venv/bin/python") PROGS=("$HERE/portal/test_portal.py") ;;
  esac
}

# ------------------------------------------------------------------ main

passed=0 failed=0 failed_names=()
for lang in "${LANGS[@]}"; do
  log="$LOGS/$lang.log" db="credit_ex_$lang" t0=$SECONDS st=ok note=""
  : >"$log"
  if ! prepare_"$lang" >>"$log" 2>&1; then
    st=FAILED note="preparing the toolchain failed"
  elif ! psql -X -q -v ON_ERROR_STOP=1 -d postgres >>"$log" 2>&1 <<SQL
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $db;
CREATE DATABASE $db;
\connect $db
CREATE EXTENSION credit_ledger;
SQL
  then
    st=FAILED note="could not create database $db with the extension"
  else
    run_cmd "$lang"
    for prog in "${PROGS[@]}"; do
      echo "---- run $(basename "$prog") ($db)" >>"$log"
      PGDATABASE="$db" timeout "$TIMEOUT" "${CMD[@]}" "$prog" >>"$log" 2>&1
      rc=$?
      if [ "$rc" -ne 0 ]; then
        st=FAILED note="$(basename "$prog"): exit $rc"
        [ "$rc" -eq 124 ] && note="$(basename "$prog"): timed out after ${TIMEOUT}s"
      fi
    done
    [ "$KEEP_DB" = 1 ] || psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >>"$log" 2>&1 || true
  fi
  if [ "$st" = ok ]; then
    passed=$((passed + 1))
    printf '  ok      %-7s %4ss  %s\n' "$lang" "$((SECONDS - t0))" "$(grep -c '^  ok ' "$log") checks"
    [ "$VERBOSE" = 1 ] && sed 's/^/      | /' "$log"
  else
    failed=$((failed + 1)) failed_names+=("$lang")
    printf '  FAILED  %-7s %4ss  %s (log: %s)\n' "$lang" "$((SECONDS - t0))" "$note" "$log"
    tail -n 40 "$log" | sed 's/^/      | /'
  fi
done

[ "$failed" -eq 0 ] || echo "failed examples: ${failed_names[*]}"
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
