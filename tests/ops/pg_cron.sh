#!/usr/bin/env bash
# tests/ops/pg_cron.sh — credit_tick() scheduled by a real pg_cron does the lifecycle work.
#
# pg_cron must be preloaded, so this test starts its OWN throwaway cluster (tests/cluster.sh,
# name `ops-cron`, stopped and removed at exit) with
#     shared_preload_libraries = 'pg_cron'
#     cron.database_name = '<the test database>'
#     cron.use_background_workers = on     (jobs run in background workers: no connection,
#                                           password or pg_hba entry needed)
# It does not use the cluster in PGHOST; it uses that cluster's PostgreSQL (its BINDIR) when
# PGHOST is set and reachable, else $PG_BINDIR, else /usr/lib/postgresql/15/bin. Needs the
# Debian package postgresql-15-cron (setup.sh installs it) and credit_ledger installed.
#
# In one database: CREATE EXTENSION credit_ledger, pg_cron; a grant that expires 3 s before the
# next minute boundary (at least 15 s away), and an allowance (period 1 hour, rollover_cap 20)
# whose period ends at the same instant, with part of it spent; then
#     SELECT cron.schedule('credit_ledger tick', '* * * * *', 'SELECT * FROM credit_tick()');
# and nothing else calls credit_tick/credit_expire. It waits (at most OPS_CRON_WAIT seconds,
# default 150) until cron.job_run_details shows a succeeded run that started after the expiry, and
# asserts the journal shows the grant's expiry, the allowance's rollover and expiry, and the next
# period's grant, written inside that run; balances as expected; credit_verify() empty.
# Prints the README snippet it used, then `pg_cron: N passed, M failed`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/ops/lib.sh
source "$HERE/lib.sh"
ops_init pg_cron noconnect
WAIT="${OPS_CRON_WAIT:-150}"

# which PostgreSQL
bindir="${PG_BINDIR:-/usr/lib/postgresql/15/bin}"
if [ -n "${PGHOST:-}" ] && psql -X -At -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
  bindir="$(psql -X -At -d postgres -c "SELECT setting FROM pg_config WHERE name = 'BINDIR'" 2>/dev/null || echo "$bindir")"
fi
if [ -n "${PG_CONFIG:-}" ]; then bindir="$("$PG_CONFIG" --bindir)"; fi
pkglib="$("$bindir/pg_config" --pkglibdir)"
if [ ! -f "$pkglib/pg_cron.so" ]; then
  fail "pg_cron is installed for $bindir" "$pkglib/pg_cron.so not found: apt-get install postgresql-$("$bindir/pg_config" --version | grep -oE '[0-9]+' | head -n 1)-cron (./setup.sh does)"
  ops_finish
fi
ok "pg_cron found ($pkglib/pg_cron.so)"

# ---------------------------------------------------------------- our own cluster with pg_cron
db="cl_ops_pg_cron_$$"
CONF="shared_preload_libraries = 'pg_cron'
cron.database_name = '$db'
cron.use_background_workers = on
max_worker_processes = 16"
# shellcheck source=tests/cluster.sh
source "$OPS_REPO/tests/cluster.sh"
ops_on_exit "cluster_stop ops-cron"
if CLUSTER_CONF="$CONF" cluster_start ops-cron "$bindir" 2>"$OPS_REPO/build/ops-cron.start.log" \
   || CLUSTER_CONF="$CONF" cluster_start ops-cron "$bindir" 2>>"$OPS_REPO/build/ops-cron.start.log"; then
  ok "own cluster with pg_cron preloaded started ($(psql -X -At -d postgres -c 'SHOW shared_preload_libraries'))"
else
  fail "start a cluster with pg_cron preloaded" "$(tail -n 20 "$OPS_REPO/build/ops-cron.start.log")"
  ops_finish
fi
rm -f "$OPS_REPO/build/ops-cron.start.log"
q postgres "CREATE DATABASE $db" >/dev/null
q "$db" "CREATE EXTENSION credit_ledger" >/dev/null
q "$db" "CREATE EXTENSION pg_cron" >/dev/null
ok "CREATE EXTENSION credit_ledger, pg_cron (pg_cron $(q "$db" "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'"))"

# ---------------------------------------------------------------- a boundary just before a minute
# B = the next minute boundary at least 15 s away; things expire at B - 3 s; cron runs at B.
B="$(q "$db" "SELECT CASE WHEN date_trunc('minute', now()) + interval '1 minute' - now() >= interval '15 seconds'
                          THEN date_trunc('minute', now()) + interval '1 minute'
                          ELSE date_trunc('minute', now()) + interval '2 minutes' END")"
E="$(q "$db" "SELECT timestamptz '$B' - interval '3 seconds'")"
echo "next cron run at $B; grant and allowance period end at $E (now $(q "$db" 'SELECT now()'))"
qf "$db" /dev/stdin >/dev/null <<SQL
SELECT credit_rate_set(action => 'chat', credits => 1);
SELECT credit_wallet_create(wallet => 'trial_user');
SELECT credit_grant(wallet => 'trial_user', amount => 25, category => 'promotional', expires_at => '$E');
SELECT credit_grant(wallet => 'trial_user', amount => 10, category => 'purchased', unit_price => 0.01);
SELECT credit_authorize(wallet => 'trial_user', action => 'chat', quantity => 5);   -- from the promotional grant
SELECT credit_wallet_create(wallet => 'subscriber');
-- an hourly allowance whose current period ends at E: anchor = E - 1 hour
SELECT * FROM credit_allowance_set(wallet => 'subscriber', amount => 100, period => '1 hour',
                                   anchor => timestamptz '$E' - interval '1 hour', rollover_cap => 20);
SELECT credit_authorize(wallet => 'subscriber', action => 'chat', quantity => 30);
SQL
check_eq "before the boundary: trial_user has 20 promotional + 10 purchased, subscriber 70 included" "30|70" \
  "$(q "$db" "SELECT credit_balance('trial_user') || '|' || credit_balance('subscriber')")"

SNIPPET="$(cat <<'EOF'
# postgresql.conf (then restart PostgreSQL)
shared_preload_libraries = 'pg_cron'
cron.database_name = 'app'                # the database where credit_ledger is installed
cron.use_background_workers = on          # or leave it off and let pg_cron connect via cron.host

-- in database app, as a superuser:
CREATE EXTENSION pg_cron;
SELECT cron.schedule('credit_ledger tick', '* * * * *', 'SELECT * FROM credit_tick()');
-- watch it:
SELECT status, return_message, start_time FROM cron.job_run_details ORDER BY start_time DESC LIMIT 5;
EOF
)"
jobid="$(q "$db" "SELECT cron.schedule('credit_ledger tick', '* * * * *', 'SELECT * FROM credit_tick()')")"
ok "cron.schedule('credit_ledger tick', '* * * * *', 'SELECT * FROM credit_tick()') -> job $jobid"

# ---------------------------------------------------------------- wait for a run after E
ops_log "waiting for the scheduled run at $B (at most ${WAIT}s)"
t0=$SECONDS
run=""
while [ $((SECONDS - t0)) -lt "$WAIT" ]; do
  run="$(q "$db" "SELECT runid || '|' || status || '|' || coalesce(return_message, '') || '|' || start_time || '|' || coalesce(end_time::text, '')
                    FROM cron.job_run_details
                   WHERE jobid = $jobid AND start_time >= timestamptz '$E' AND status IN ('succeeded', 'failed')
                   ORDER BY start_time LIMIT 1")"
  [ -n "$run" ] && break
  sleep 2
done
echo "cron.job_run_details: $(q "$db" "SELECT count(*) || ' runs: ' || string_agg(status || ' at ' || to_char(start_time, 'HH24:MI:SS') || ' (' || coalesce(return_message, '') || ')', ', ' ORDER BY start_time) FROM cron.job_run_details WHERE jobid = $jobid")"
if [ -z "$run" ]; then
  fail "a scheduled run after the boundary within ${WAIT}s" \
    "$(q "$db" "SELECT * FROM cron.job_run_details ORDER BY start_time" 2>&1 | tail -n 5)" \
    "$(tail -n 20 "$CLUSTER_LOG" 2>/dev/null)"
  ops_finish
fi
IFS='|' read -r runid status msg start end <<<"$run"
check_eq "the scheduled credit_tick() run $runid succeeded (waited $((SECONDS - t0))s)" "succeeded" "$status"
echo "run $runid: $status, '$msg', $start .. $end"

# ---------------------------------------------------------------- what the run did
in_run="j.at >= timestamptz '$start' - interval '1 second' AND j.at <= coalesce(nullif('$end', '')::timestamptz, now())"
check_eq "journal: the trial grant's 20 unused credits expired, written by the scheduled run" "expiry|-20" \
  "$(q "$db" "SELECT j.kind || '|' || j.amount FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id
              WHERE g.category = 'promotional' AND j.kind = 'expiry' AND $in_run")"
check_eq "journal: subscriber's boundary done by the run (rollover 20 out, expiry 50, next period 100, rollover grant 20)" \
  "expiry|included|-50
grant|included|100
grant|rollover|20
rollover|included|-20" \
  "$(q "$db" "SELECT j.kind || '|' || g.category || '|' || j.amount FROM credit_ledger.journal j
              JOIN credit_ledger.grants g ON g.id = j.grant_id JOIN credit_ledger.wallets w ON w.id = j.wallet_id
              WHERE w.wallet = 'subscriber' AND $in_run ORDER BY 1")"
check_eq "allowance's next boundary moved one period on" "$(q "$db" "SELECT timestamptz '$E' + interval '1 hour'")" \
  "$(q "$db" "SELECT next_boundary FROM credit_ledger.allowances")"
check_eq "after the run: trial_user 10 (purchased), subscriber 120 (100 new + 20 rolled over)" "10|120" \
  "$(q "$db" "SELECT credit_balance('trial_user') || '|' || credit_balance('subscriber')")"
check_eq "no lifecycle entry outside the scheduled run" "0" \
  "$(q "$db" "SELECT count(*) FROM credit_ledger.journal j WHERE j.kind IN ('expiry', 'rollover') AND NOT ($in_run)")"
check_eq "credit_verify() empty" "0" "$(q "$db" 'SELECT count(*) FROM credit_verify()')"
q "$db" "SELECT cron.unschedule($jobid)" >/dev/null
ok "cron.unschedule($jobid)"

echo "README snippet (tested here, with cron.database_name = '$db'):"
printf '%s\n' "$SNIPPET" | sed 's/^/    /'
ops_finish
