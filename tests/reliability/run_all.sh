#!/usr/bin/env bash
# tests/reliability/run_all.sh — the reliability and security suite of credit_ledger.
#
#   tests/reliability/run_all.sh              every test at its CI size
#   tests/reliability/run_all.sh --long       the longer tiers (fuzz 200k calls, stress 32 x 25,000,
#                                             crash 40 cycles)
#   tests/reliability/run_all.sh --only fuzz  one test (fuzz, attack, stress, crash); repeatable
#
# fuzz, attack and stress run against the cluster in PGHOST / PGPORT / PGUSER (a superuser, over
# a Unix socket or loopback); when PGHOST is unset a throwaway cluster is started for them.
# crash always starts its own cluster (tests/cluster.sh) because it kills it. PostgreSQL's bin
# directory: $PGBIN (default /usr/lib/postgresql/15/bin). The extension must be installed.
#
# Each test prints one figure line `reliability <test> ... result=pass|fail`; the run ends with
#   reliability: N passed, M failed
# Exit status 0 only when nothing failed. Logs: build/reliability/<test>.log (stderr of each test).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../.." && pwd))"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
OUT="${CL_RELIABILITY_OUT:-$REPO/build/reliability}"
export PATH="$HOME/.cargo/bin:$PATH"
unset RUST_BACKTRACE   # never inherited by a server we start

LONG=0
ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --long) LONG=1; shift ;;
    --only) ONLY+=("${2:?--only needs a test name}"); shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
wanted() { [ ${#ONLY[@]} -eq 0 ] && return 0; local t; for t in "${ONLY[@]}"; do [ "$t" = "$1" ] && return 0; done; return 1; }

mkdir -p "$OUT"
BIN="$HERE/target/debug/credit_ledger_reliability"
echo "reliability: building (cargo build, log $OUT/build.log)" >&2
if ! timeout 1800 cargo build --quiet --manifest-path "$HERE/Cargo.toml" >"$OUT/build.log" 2>&1; then
  tail -n 30 "$OUT/build.log" >&2
  echo "reliability build result=fail"
  echo "reliability: 0 passed, 1 failed"
  exit 1
fi

# shellcheck source=../cluster.sh
source "$REPO/tests/cluster.sh"
trap cluster_cleanup EXIT

PASSED=0 FAILED=0
FIGURES=()

# run_test <name> <timeout seconds> <command...>: the figure line is the last stdout line
# starting with "reliability "; a missing line, a non-zero exit or a timeout is a failure.
run_test() {
  local name="$1" limit="$2"; shift 2
  local t0 rc line
  t0=$(date +%s)
  timeout --kill-after=30 "$limit" "$@" >"$OUT/$name.out" 2>"$OUT/$name.log"
  rc=$?
  line="$(grep '^reliability ' "$OUT/$name.out" | tail -n 1)"
  [ -n "$line" ] || line="reliability $name result=fail"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then line="$line timed_out_after_s=$limit"; fi
  echo "$line wall_s=$(( $(date +%s) - t0 ))"
  FIGURES+=("$line")
  if [ $rc -eq 0 ] && [[ "$line" == *"result=pass"* ]]; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1))
    echo "--- $name failed (exit $rc); last lines of $OUT/$name.log:" >&2
    tail -n 25 "$OUT/$name.log" >&2
  fi
}

if [ $LONG -eq 1 ]; then
  FUZZ_ARGS=(--calls 200000); STRESS_ARGS=(--tier long); CRASH_ARGS=(--cycles 40 --load-secs 5)
  FUZZ_T=3600 STRESS_T=3600 CRASH_T=3600
else
  FUZZ_ARGS=(--calls 20000); STRESS_ARGS=(--sessions 16 --ops 2000); CRASH_ARGS=(--cycles 10 --load-secs 3)
  FUZZ_T=600 STRESS_T=600 CRASH_T=900
fi

# the shared cluster: the caller's, or a throwaway one
if wanted fuzz || wanted attack || wanted stress; then
  if [ -z "${PGHOST:-}" ]; then
    cluster_start reliability "$PGBIN" 2>>"$OUT/cluster.log" || { echo "reliability: cannot start a cluster (see $OUT/cluster.log)" >&2; exit 2; }
  fi
  wanted fuzz && run_test fuzz "$FUZZ_T" "$BIN" fuzz "${FUZZ_ARGS[@]}"
  wanted attack && run_test attack 600 "$BIN" attack
  wanted stress && run_test stress "$STRESS_T" "$BIN" stress "${STRESS_ARGS[@]}"
fi

if wanted crash; then
  crash_test() {
    # crash recovery fsyncs the whole data directory first; syncfs does it in one call
    CLUSTER_CONF="recovery_init_sync_method = syncfs" cluster_start reliability-crash "$PGBIN" 2>>"$OUT/cluster.log" || { echo "reliability crash: cannot start a cluster" >&2; return 2; }
    "$BIN" crash --pgdata "$CLUSTER_DIR/data" --log "$CLUSTER_LOG" --pgbin "$PGBIN" "${CRASH_ARGS[@]}"
    local rc=$?
    cp "$CLUSTER_LOG" "$OUT/crash-postgres.log" 2>/dev/null || true
    cluster_stop reliability-crash >/dev/null 2>&1
    return $rc
  }
  run_test crash "$CRASH_T" bash -c "trap 'exit 143' TERM INT; $(declare -f crash_test); source '$REPO/tests/cluster.sh'; trap cluster_cleanup EXIT; BIN='$BIN' PGBIN='$PGBIN' OUT='$OUT'; CRASH_ARGS=(${CRASH_ARGS[*]}); crash_test"
fi

echo "reliability: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
