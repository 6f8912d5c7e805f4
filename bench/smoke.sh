#!/usr/bin/env bash
# bench/smoke.sh — the benchmark's smoke tier as a test phase (tests/run.sh runs it on
# PostgreSQL 15; .ci/run runs tests/run.sh): `bench/run.sh --quick` on its own cluster. What is
# checked: the PL/pgSQL peer agrees with the extension on the shared scenario, every pgbench run
# succeeds with one authorization per counted call, and the correctness gate passes on every
# peer; then bench/citus.sh's smallest run and its gates (skipped without Citus). Speed is only
# printed (the targets' PASS/FAIL lines are not checked: a 2-core CI machine's timings say
# nothing). Prints `bench: N passed, M failed`.
# Environment: PGBIN (the PostgreSQL bin directory; default Debian's 15).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PGBIN="${PGBIN:-/usr/lib/postgresql/15/bin}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rc=0
"$HERE/run.sh" --quick --pg-bindir "$PGBIN" >"$log" 2>&1 || rc=$?
# the report, without the per-run progress lines
grep -v '^\[bench ' "$log" | sed -n '/^machine:/,$p'
pass=0 fail=0
check() { # check <name> <grep pattern> (in $log)
  if grep -qE "$2" "$log"; then echo "ok   - $1"; pass=$((pass + 1)); else echo "not ok - $1"; fail=$((fail + 1)); fi
}
check "P1 agrees with the extension on the shared scenario" '^  check_peer: P1 and the extension agree'
check "every pgbench run of the matrix ran" '^matrix: +[0-9]+ pgbench runs'
check "correctness gate on every peer" '^correctness gate: PASS'
if [ "$rc" -ne 0 ]; then
  echo "not ok - bench/run.sh exited $rc; its last lines:"
  tail -n 40 "$log" | sed 's/^/    /'
  fail=$((fail + 1))
fi
# the Citus bench (bench/citus.sh) in its smallest form: its gates (delegation seen,
# conservation, verify, data on both workers), not its speed
clog="$(mktemp)"
trap 'rm -f "$log" "$clog"' EXIT
crc=0
PG_CONFIG="$PGBIN/pg_config" "$HERE/citus.sh" --rounds 1 --duration 2 --wallets 2000 >"$clog" 2>&1 || crc=$?
sed -n '/^W1 through Citus/,$p' "$clog"
if grep -q '^citus bench: skipped' "$clog"; then
  grep '^citus bench: skipped' "$clog"
else
  log="$clog" check "Citus bench: every gate passes" '^citus bench: gates PASS'
  if [ "$crc" -ne 0 ]; then tail -n 20 "$clog" | sed 's/^/    /'; fi
fi
echo "bench: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
