#!/usr/bin/env bash
# tests/ops/run_all.sh — the operational tests, one after the other:
#
#   dump_restore     tests/ops/dump_restore.sh      pg_dump -Fc / pg_restore round trip
#   upgrade          tests/upgrade/upgrade.sh       ALTER EXTENSION UPDATE from 0.1.0 = fresh install
#   explain          tests/ops/explain.sh           plans at 1M journal rows -> build/explain.txt
#   pg_cron          tests/ops/pg_cron.sh           credit_tick() scheduled by a real pg_cron (own cluster)
#   monitoring       tests/ops/monitoring.sh        promtool rule tests; postgres_exporter scraped
#   install_system   tests/ops/install_system.sh --test
#                                                   package, install, GRANTs, uninstall (own cluster; root)
#
# Needs a running cluster in PGHOST/PGPORT/PGUSER (a superuser) with the extension installed, as
# tests/run.sh exports it; pg_cron and install_system start their own clusters. Each test prints
# its details and one line `<name>: N passed, M failed`; this driver adds them up and ends with
#
#   ops: N passed, M failed
#
# (exit status 0 only when nothing failed). A test that dies or times out without its line counts
# as one failure. Logs: build/ops/<name>.log (OPS_LOG_DIR).
#
# Options: --skip NAME (repeatable), --only NAME (repeatable), --quick (explain at 200k journal
# rows instead of 1M). Environment: OPS_TIMEOUT (seconds per test, default 900), and each test's
# own knobs (OPS_EXPLAIN_ROWS, OPS_CRON_WAIT, OPS_INSTALL_SANDBOX, OPS_KEEP, PG_CONFIG, ...).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
LOGS="${OPS_LOG_DIR:-$REPO/build/ops}"
TIMEOUT="${OPS_TIMEOUT:-900}"

ALL=(dump_restore upgrade explain pg_cron monitoring install_system)
declare -A CMD=(
  [dump_restore]="$HERE/dump_restore.sh"
  [upgrade]="$REPO/tests/upgrade/upgrade.sh"
  [explain]="$HERE/explain.sh"
  [pg_cron]="$HERE/pg_cron.sh"
  [monitoring]="$HERE/monitoring.sh"
  [install_system]="$HERE/install_system.sh --test"
)
SKIP=() ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --skip) SKIP+=("${2:?--skip needs a name}"); shift 2 ;;
    --only) ONLY+=("${2:?--only needs a name}"); shift 2 ;;
    --quick) export OPS_EXPLAIN_ROWS="${OPS_EXPLAIN_ROWS:-200000}"; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "tests/ops/run_all.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
for n in "${SKIP[@]}" "${ONLY[@]}"; do
  [ -n "${CMD[$n]:-}" ] || { echo "tests/ops/run_all.sh: unknown test '$n' (${ALL[*]})" >&2; exit 2; }
done

mkdir -p "$LOGS"
total_pass=0 total_fail=0
summary=()
for name in "${ALL[@]}"; do
  if [ ${#ONLY[@]} -gt 0 ] && [[ " ${ONLY[*]} " != *" $name "* ]]; then continue; fi
  if [[ " ${SKIP[*]} " == *" $name "* ]]; then summary+=("$(printf '%-15s skipped' "$name")"); continue; fi
  log="$LOGS/$name.log"
  printf '\n==== ops: %s ====\n' "$name"
  t0=$SECONDS
  rc=0
  # shellcheck disable=SC2086
  timeout --kill-after=30 "$TIMEOUT" ${CMD[$name]} 2>&1 </dev/null | tee "$log" || rc=$?
  line="$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -n 1 || true)"
  if [ -n "$line" ]; then
    p="$(sed -E 's/^.*: ([0-9]+) passed, ([0-9]+) failed$/\1/' <<<"$line")"
    f="$(sed -E 's/^.*: ([0-9]+) passed, ([0-9]+) failed$/\2/' <<<"$line")"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  else
    p=0 f=1
    [ "$rc" -eq 124 ] && echo "ops: $name timed out after ${TIMEOUT}s"
    echo "ops: $name ended without its summary line (exit status $rc)"
  fi
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  summary+=("$(printf '%-15s %4d passed, %d failed  (%ds, log %s)' "$name" "$p" "$f" $((SECONDS - t0)) "${log#"$REPO"/}")")
done

printf '\n==== ops summary ====\n'
printf '%s\n' "${summary[@]}"
echo "ops: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
