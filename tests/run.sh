#!/usr/bin/env bash
# tests/run.sh — the credit_ledger test suite, the one command of the README.
#
#   ./tests/run.sh                 everything, against PostgreSQL 15
#   ./tests/run.sh --quick         everything but the stress test
#   ./tests/run.sh --pg 18         against /usr/lib/postgresql/18/bin (or PG_VERSION=18)
#
# Phases, in order (see tests/README.md):
#   setup      ./setup.sh (idempotent installer)
#   unit       cargo test --lib            pure Rust unit and property tests
#   pg_test    cargo pgrx test pgNN        #[pg_test] functions, when src/ has any
#   install    cargo pgrx install          into the system PostgreSQL, then a throwaway cluster
#   regress    pg_regress                  tests/pg_regress/sql/*.sql vs expected/*.out
#   isolation  pg_isolation_regress        tests/isolation/specs/*.spec vs expected/*.out
#   stress     tests/stress (Rust)         concurrent authorize / hold-capture-release-expire
#   server     the cluster's log           no backend crashed during the run
# then a per-phase summary and one closing line `credit_ledger: N passed, M failed`.
# Exit status: 0 when nothing failed.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: tests/run.sh [--pg N] [--quick] [--release] [--no-setup] [--accept] [--keep]
  --pg N        PostgreSQL major version (default $PG_VERSION or 15); bin dir
                /usr/lib/postgresql/N/bin unless PG_BINDIR is set
  --quick       skip the stress test
  --release     build the installed extension with --release (slower build, faster run)
  --no-setup    do not run ./setup.sh first (.ci/run runs it itself)
  --accept      copy the results of failing or new regress/isolation tests over their
                expected files (review with git diff before committing!)
  --keep        keep the test cluster running and its directory after the run
Environment: PG_VERSION, PG_BINDIR, CL_BUILD_TIMEOUT (s, default 3600),
             CL_TEST_TIMEOUT (s per regress/isolation file, default 600),
             CL_STRESS_ARGS (extra arguments for the stress binary),
             CL_REGRESS_DIR / CL_ISOLATION_DIR (other test trees, default
             tests/pg_regress and tests/isolation; for trying the runner itself).
EOF
}

PG_VERSION="${PG_VERSION:-15}"
QUICK=0 SETUP=1 RELEASE=0 ACCEPT=0 KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pg) PG_VERSION="${2:?--pg needs a version}"; shift 2 ;;
    --pg=*) PG_VERSION="${1#--pg=}"; shift ;;
    --quick) QUICK=1; shift ;;
    --release) RELEASE=1; shift ;;
    --no-setup) SETUP=0; shift ;;
    --accept) ACCEPT=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "tests/run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
PG_VERSION="${PG_VERSION#pg}"
case "$PG_VERSION" in
  ''|*[!0-9]*) echo "tests/run.sh: bad PostgreSQL version '$PG_VERSION'" >&2; exit 2 ;;
esac

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/.." && pwd))"
cd "$REPO"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never
[ -t 1 ] || export NO_COLOR=1

PGBIN="${PG_BINDIR:-/usr/lib/postgresql/$PG_VERSION/bin}"
PG_CONFIG="$PGBIN/pg_config"
BUILD_TIMEOUT="${CL_BUILD_TIMEOUT:-3600}"
TEST_TIMEOUT="${CL_TEST_TIMEOUT:-600}"
OUT="$REPO/build/test-pg$PG_VERSION"          # logs, results, diffs of this run
CLUSTER="cluster-pg$PG_VERSION"
DEFAULT_PG=15                                  # the crate's default pgNN feature
FEATURES=()
if [ "$PG_VERSION" != "$DEFAULT_PG" ]; then
  FEATURES=(--no-default-features --features "pg$PG_VERSION")
fi

rm -rf "$OUT"
mkdir -p "$OUT"

# shellcheck source=tests/cluster.sh
source "$REPO/tests/cluster.sh"
PGRX_PGDATA=""
on_exit() {
  local rc=$?
  if [ "$KEEP" != 1 ]; then cluster_cleanup || true; fi
  if [ -n "$PGRX_PGDATA" ]; then rm -rf "$PGRX_PGDATA"; fi
  return "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ bookkeeping

PH_NAME=() PH_RESULT=() PH_SECS=()
TOTAL_PASS=0 TOTAL_FAIL=0
PHASE_T0=0

banner() { printf '\n==== %s ====\n' "$*"; }
phase_begin() { PHASE_T0=$SECONDS; banner "$1"; }
# record <phase> <passed> <failed> [note] — a phase with tests
record() {
  local name="$1" p="$2" f="$3" note="${4:-}"
  TOTAL_PASS=$((TOTAL_PASS + p))
  TOTAL_FAIL=$((TOTAL_FAIL + f))
  PH_NAME+=("$name")
  PH_RESULT+=("$p passed, $f failed${note:+  ($note)}")
  PH_SECS+=($((SECONDS - PHASE_T0)))
}
# record_step <phase> ok|FAILED|skipped [note] — a step that is not a test: counts only failing
record_step() {
  local name="$1" st="$2" note="${3:-}"
  [ "$st" = FAILED ] && TOTAL_FAIL=$((TOTAL_FAIL + 1))
  PH_NAME+=("$name")
  PH_RESULT+=("$st${note:+  ($note)}")
  PH_SECS+=($((SECONDS - PHASE_T0)))
}

# run_logged <log> <cmd...> — run with output to the screen and the log; returns cmd's status
run_logged() {
  local log="$1"; shift
  local rc=0
  "$@" 2>&1 | sed -u 's/\x1b\[[0-9;]*[A-Za-z]//g' | tee -a "$log" || rc=$?
  return "$rc"
}

# Sum "test result: ... N passed; M failed" lines of cargo test output: prints "N M".
cargo_counts() {
  awk '/^test result:/ {
         for (i = 1; i <= NF; i++) {
           if ($(i+1) ~ /^passed;?/) p += $i
           if ($(i+1) ~ /^failed;?/) f += $i
         }
       } END { printf "%d %d\n", p, f }' "$1"
}

has_pg_tests() { grep -rqE '#\[pg_test' src 2>/dev/null; }

# ------------------------------------------------------------------ phases

phase_setup() {
  phase_begin "setup: ./setup.sh"
  if [ "$SETUP" != 1 ]; then record_step setup skipped "--no-setup"; return 0; fi
  if run_logged "$OUT/setup.log" ./setup.sh; then
    record_step setup ok
  else
    record_step setup FAILED "see $OUT/setup.log"
    return 1
  fi
}

phase_unit() {
  phase_begin "unit: cargo test --lib ${FEATURES[*]}"
  local log="$OUT/unit.log" rc=0 skip=() name
  if has_pg_tests; then
    # the #[pg_test] wrappers (named pg_<fn>) need a server: they run in the pg_test phase
    local list
    list="$(timeout "$BUILD_TIMEOUT" cargo test --lib "${FEATURES[@]}" -- --list --format terse 2>>"$log" || true)"
    while IFS= read -r name; do
      [ -n "$name" ] && skip+=(--skip "$name")
    done < <(sed -n 's/: test$//p' <<<"$list" | grep -E '(^|::)pg_[^:]*$' || true)
    [ ${#skip[@]} -gt 0 ] && skip+=(--exact)
  fi
  run_logged "$log" timeout "$BUILD_TIMEOUT" cargo test --lib "${FEATURES[@]}" -- "${skip[@]}" || rc=$?
  local p f
  read -r p f < <(cargo_counts "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  record unit "$p" "$f" "$([ "$rc" -eq 0 ] || echo "exit $rc, see $log")"
}

phase_pg_test() {
  phase_begin "pg_test: cargo pgrx test pg$PG_VERSION"
  if ! has_pg_tests; then record_step pg_test skipped "no #[pg_test] in src/"; return 0; fi
  local log="$OUT/pg_test.log" rc=0 args=(pgrx test "pg$PG_VERSION")
  if [ "$(id -u)" -eq 0 ]; then
    # initdb refuses root: pgrx runs the test server as postgres through sudo
    PGRX_PGDATA="$(cluster_workdir "pgrx-pg$PG_VERSION" "$PGBIN")"
    args+=(--runas postgres --pgdata "$PGRX_PGDATA")
  fi
  run_logged "$log" timeout "$BUILD_TIMEOUT" cargo "${args[@]}" || rc=$?
  local p f
  p="$(grep -cE '^test (.*::)?pg_[^ ]* \.\.\. ok' "$log" || true)"
  f="$(grep -cE '^test (.*::)?pg_[^ ]* \.\.\. FAILED' "$log" || true)"
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  record pg_test "$p" "$f" "$([ "$rc" -eq 0 ] || echo "exit $rc, see $log")"
  if [ -n "$PGRX_PGDATA" ]; then rm -rf "$PGRX_PGDATA"; PGRX_PGDATA=""; fi
}

phase_install() {
  local args=(pgrx install --pg-config "$PG_CONFIG")
  [ "$RELEASE" = 1 ] && args+=(--release)
  phase_begin "install: cargo ${args[*]}"
  if [ ! -x "$PG_CONFIG" ]; then
    record_step install FAILED "$PG_CONFIG not found; is PostgreSQL $PG_VERSION installed?"
    return 1
  fi
  if ! run_logged "$OUT/install.log" timeout "$BUILD_TIMEOUT" cargo "${args[@]}"; then
    record_step install FAILED "see $OUT/install.log"
    return 1
  fi
  if ! cluster_start "$CLUSTER" "$PGBIN"; then
    record_step install FAILED "cluster did not start"
    return 1
  fi
  record_step install ok "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), PGHOST=$PGHOST"
}

# A database name from a test file name.
dbname_for() { printf 'cl_%s_%s' "$1" "$(printf '%s' "$2" | tr -c 'A-Za-z0-9_' '_')"; }

# regress_like <phase> <runner> <inputdir> <subdir> <ext> — one runner invocation per test file,
# each in its own fresh database (the runner drops and creates it), so a test cannot see
# another's wallets.
regress_like() {
  local phase="$1" runner="$2" indir="$3" sub="$4" ext="$5"
  local files=() f t od p=0 fails=() db
  phase_begin "$phase: $(basename "$runner") on $indir/$sub/*.$ext"
  if [ ! -x "$runner" ]; then
    record "$phase" 0 1 "$runner not found"
    return 0
  fi
  shopt -s nullglob
  files=("$indir/$sub"/*."$ext")
  shopt -u nullglob
  if [ ${#files[@]} -eq 0 ]; then
    record "$phase" 0 0 "no $sub/*.$ext yet"
    return 0
  fi
  for f in "${files[@]}"; do
    t="$(basename "$f" ".$ext")"
    od="$OUT/$phase/$t"
    db="$(dbname_for "$phase" "$t")"
    mkdir -p "$od"
    if timeout "$TEST_TIMEOUT" "$runner" --bindir="$PGBIN" --inputdir="$indir" --outputdir="$od" \
         --host="$PGHOST" --port="$PGPORT" --user=postgres --dbname="$db" "$t" \
         >"$od/runner.log" 2>&1; then
      p=$((p + 1))
      printf '  ok      %s\n' "$t"
      psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    else
      fails+=("$t")
      printf '  FAILED  %s   (diffs: %s)\n' "$t" "$od/regression.diffs"
      if [ -s "$od/regression.diffs" ]; then
        head -n 80 "$od/regression.diffs" | sed 's/^/    /'
      else
        tail -n 20 "$od/runner.log" | sed 's/^/    /'
      fi
      if [ "$ACCEPT" = 1 ] && [ -f "$od/results/$t.out" ]; then
        mkdir -p "$indir/expected"
        cp "$od/results/$t.out" "$indir/expected/$t.out"
        printf '  accepted %s -> %s\n' "$t" "$indir/expected/$t.out"
      fi
    fi
    if [ -f "$od/regression.diffs" ]; then cat "$od/regression.diffs" >>"$OUT/$phase.diffs"; fi
  done
  record "$phase" "$p" "${#fails[@]}" "${fails[*]:+failed: ${fails[*]}}"
}

phase_regress() {
  local runner
  runner="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress"
  regress_like regress "$runner" "${CL_REGRESS_DIR:-$REPO/tests/pg_regress}" sql sql
}

phase_isolation() {
  local runner
  runner="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/isolation/pg_isolation_regress"
  regress_like isolation "$runner" "${CL_ISOLATION_DIR:-$REPO/tests/isolation}" specs spec
}

phase_stress() {
  phase_begin "stress: tests/stress"
  if [ "$QUICK" = 1 ]; then record_step stress skipped "--quick"; return 0; fi
  local log="$OUT/stress.log" rc=0 manifest="$REPO/tests/stress/Cargo.toml"
  local target="$REPO/tests/stress/target"
  if ! run_logged "$log" env CARGO_TARGET_DIR="$target" timeout "$BUILD_TIMEOUT" \
         cargo build --locked --manifest-path "$manifest"; then
    record stress 0 1 "build failed, see $log"
    return 0
  fi
  # shellcheck disable=SC2086  # CL_STRESS_ARGS is a list of words
  run_logged "$log" timeout 1200 "$target/debug/credit_ledger_stress" --timeout-secs 900 ${CL_STRESS_ARGS:-} || rc=$?
  local p f
  p="$(grep -cE '^stress scenario=.* result=pass' "$log" || true)"
  f="$(grep -cE '^stress scenario=.* result=fail' "$log" || true)"
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  record stress "$p" "$f" "$([ "$rc" -eq 0 ] || echo "exit $rc, see $log")"
}

# The server log must show no crashed backend (a crash in the extension restarts the server
# and can hide behind a "passing" test that reconnected).
phase_server() {
  phase_begin "server: crash check of the cluster log"
  local log
  log="$(cluster_log "$CLUSTER" || true)"
  if [ -z "$log" ] || [ ! -f "$log" ]; then record_step server skipped "no cluster"; return 0; fi
  cp "$log" "$OUT/postgres.log"
  local bad
  bad="$(grep -E 'PANIC|TRAP:|was terminated by signal|server process .* exited with exit code [^0]|terminating any other active server processes' "$OUT/postgres.log" | head -n 20 || true)"
  if [ -n "$bad" ]; then
    printf '%s\n' "$bad" | sed 's/^/    /'
    record_step server FAILED "backend crash, see $OUT/postgres.log"
  else
    record_step server ok "log: $OUT/postgres.log"
  fi
}

summary() {
  local i pgv
  pgv="$("$PGBIN/postgres" --version 2>/dev/null | awk '{print $3}' || true)"
  banner "credit_ledger test summary: pg$PG_VERSION (PostgreSQL ${pgv:-?}), $((SECONDS / 60))m$((SECONDS % 60))s, output in $OUT"
  for i in "${!PH_NAME[@]}"; do
    printf '  %-10s %5ss  %s\n' "${PH_NAME[$i]}" "${PH_SECS[$i]}" "${PH_RESULT[$i]}"
  done
  echo
  # the closing line, in the plain 'N passed, M failed' form that CI reads
  printf 'credit_ledger: %d passed, %d failed\n' "$TOTAL_PASS" "$TOTAL_FAIL"
}

# ------------------------------------------------------------------ main

if phase_setup; then
  phase_unit
  phase_pg_test
  if phase_install; then
    phase_regress
    phase_isolation
    phase_stress
    phase_server
    if [ "$KEEP" = 1 ]; then
      printf '\ncluster kept: export PGHOST=%q PGPORT=%q PGUSER=postgres\n' "$PGHOST" "$PGPORT"
    else
      cluster_stop "$CLUSTER" || true
    fi
  else
    for ph in regress isolation stress; do record "$ph" 0 1 "not run: install failed"; done
  fi
fi
summary
[ "$TOTAL_FAIL" -eq 0 ]
