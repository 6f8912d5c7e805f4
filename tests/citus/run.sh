#!/usr/bin/env bash
# tests/citus/run.sh — credit_ledger on a Citus cluster as it is today (issue 20, step 1):
# a coordinator and two workers on this machine, the ledger's tables on the coordinator (Citus
# "local tables"), the application's tables distributed over the workers.
#
# What it checks (one `ok`/`FAIL` line each, then `citus: N passed, M failed`):
#   1. Citus is there (tests/citus/build.sh builds the vendored 13.2.2 once per machine, or the
#      test prints `citus: skipped (...)` and passes nothing and fails nothing); three clusters
#      join (citus_set_coordinator_host, citus_add_node).
#   2. The regress scenarios core, holds, pools and lifecycle pass unchanged through the
#      coordinator (pg_regress --use-existing, one extension per scenario).
#   3. CREATE EXTENSION credit_ledger on the coordinator is propagated by Citus to both workers
#      (same version), and none of the ledger's tables is distributed; creating a wallet, a rate,
#      an asset or a rate card through a worker is refused (its copy is not the cluster's).
#   4. A spend and a write to a distributed application table in one transaction commit or roll
#      back together (Citus two-phase commit); the application's rows are spread over both
#      workers.
#   5. The usage trigger: Citus refuses it on a distributed table; forced with
#      citus.enable_unsafe_triggers it runs on a worker, whose empty ledger refuses the row (an
#      error, never a wrong bill); on a coordinator-local table it bills as on plain PostgreSQL.
#   6. 16 pgbench clients through the coordinator, each transaction = authorize on one team
#      pool's members + insert into the distributed table, while worker 1 is killed with SIGKILL
#      and restarted: afterwards every approved authorization has exactly its application row
#      and no row lacks its authorization (nothing acknowledged is lost, nothing half-done
#      survives), conservation holds and credit_verify() is empty.
#   7. credit_distribute() (0.12.0) on a filled ledger: the catalogue and wallet_keys become
#      reference tables, the fifteen wallet-keyed tables are distributed by tenant with their
#      keys (one colocation group); every row is kept; the rows are on both workers and a pool
#      with its members on one shard; a second call does nothing.
#   8. Delegation: the seven spending functions with a literal tenant, ten calls of two
#      tenants inside one BEGIN ... COMMIT through the coordinator, each sent whole to a worker
#      (citus.log_remote_commands: one statement per call, none of the ledger's own), a key's
#      replay; since 0.14.0 a run opened, spent in, read and closed the same way; a wrong tenant
#      refused, the rows and the pool's credits exact.
#   9. The regress scenarios core, holds, pools, lifecycle (0.13.0) and 24 more (0.14.0:
#      reports, runs, lanes, metrics, the overage menu, health, patterns, the docs' examples,
#      errors, the usage trigger, events, reports_agree, ...) pass on a ledger distributed right after CREATE EXTENSION: their calls name no
#      tenant, the coordinator looks it up in wallet_keys and routes every statement to the
#      tenant's shard; the report views run across the shards.
#  10. 16 pgbench clients on the distributed ledger: wallets created and granted after
#      distribution, each transaction = a delegated credit_authorize(..., tenant => ...) of a
#      solo wallet or a pool member + a row of an application table colocated with the ledger,
#      while worker 2 is killed with SIGKILL and restarted: no prepared transaction left, every
#      approved spend has its row and every row its spend, nothing acknowledged lost,
#      conservation per wallet, credit_verify() empty.
#  11. The usage trigger on an application table distributed by the same tenant, colocated with
#      the ledger: each row billed on its worker (a wallet of another tenant too), an unknown
#      wallet's row refused, credit_verify() empty; a COPY into a coordinator's table billed by
#      the trigger that fails at a later line leaves nothing of the earlier lines on the workers.
#  12. Corrections on the distributed ledger (0.14.0): a void, an adjustment, a transfer and a
#      close within one tenant with their balances; a transfer and a close into another
#      tenant's wallet on the other worker (a replay, a rollback, provenance, balances);
#      credit_statement, credit_margin_whatif, credit_health(), credit_metrics();
#      credit_verify() empty.
#  13. Events on the distributed ledger (0.14.0): a delegated spend's alert in a transaction
#      over two workers commits (no NOTIFY on a worker); a routed call's events are notified
#      from the coordinator; credit_tick's expiring_notice and a delegated call's actor.
#
# Usage: tests/citus/run.sh            (PG_CONFIG: default the system PostgreSQL 15)
# Environment: CITUS_STRESS_SECONDS (default 20), CITUS_KEEP=1 keeps the clusters.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
BINDIR="$("$PG_CONFIG" --bindir)"
STRESS_S="${CITUS_STRESS_SECONDS:-20}"
PASS=0; FAILS=0
ok()   { PASS=$((PASS + 1)); echo "ok   - $1"; }
fail() { FAILS=$((FAILS + 1)); echo "FAIL - $1"; [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/       /'; }
check_eq() { if [ "$3" = "$2" ]; then ok "$1"; else fail "$1" "expected: $2"$'\n'"got:      $3"; fi; }
finish() { echo "citus: $PASS passed, $FAILS failed"; [ "$FAILS" -eq 0 ]; }

echo "==== citus: the ledger on a Citus coordinator with two workers ===="
ver="$("$PG_CONFIG" --version | awk '{print $2}')"
case "$ver" in
  15.*|16.*|17.*) ;;
  *) echo "citus: skipped (Citus 13.2 supports PostgreSQL 15 to 17, this is $ver)"; finish; exit 0 ;;
esac
built="$(PG_CONFIG="$PG_CONFIG" bash "$REPO/tests/citus/build.sh" | tail -n 1)"
echo "$built"
case "$built" in
  "citus: ready"*) ;;
  *) echo "citus: skipped (no Citus for this PostgreSQL)"; finish; exit 0 ;;
esac

# shellcheck source=../cluster.sh
source "$REPO/tests/cluster.sh"
NODES=(citus-cx citus-w1 citus-w2)
declare -A PORT DIR
cleanup() {
  local n
  if [ "${CITUS_KEEP:-0}" = 1 ]; then echo "clusters kept: ${NODES[*]}"; return 0; fi
  for n in "${NODES[@]}"; do cluster_stop "$n" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
export CLUSTER_LISTEN=127.0.0.1
export CLUSTER_CONF="shared_preload_libraries = 'citus'
max_prepared_transactions = 100
citus.shard_count = 8"
for n in "${NODES[@]}"; do
  cluster_start "$n" "$BINDIR" >/dev/null
  PORT[$n]="$PGPORT"; DIR[$n]="$CLUSTER_DIR"
done
# every psql below talks TCP on loopback, as the nodes talk to each other
qdb() { local port="$1" db="$2"; shift 2; "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"; }
q()   { local port="$1"; shift; qdb "$port" app "$@"; }
qc()  { q "${PORT[citus-cx]}" "$@"; }
unset PGHOST PGPORT
# citus_database <name> — the database on every node, Citus in it, the workers registered in
# the coordinator's (Citus keeps its node list per database)
citus_database() {
  local db="$1" n
  for n in "${NODES[@]}"; do
    qdb "${PORT[$n]}" postgres -c "CREATE DATABASE $db" >/dev/null
    qdb "${PORT[$n]}" "$db" -c "CREATE EXTENSION citus" >/dev/null
  done
  qdb "${PORT[citus-cx]}" "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', ${PORT[citus-cx]})" \
    -c "SELECT citus_add_node('127.0.0.1', ${PORT[citus-w1]})" \
    -c "SELECT citus_add_node('127.0.0.1', ${PORT[citus-w2]})" >/dev/null
}

# committed <log prefix>: the transactions the rounds of spend_rounds committed
committed() {
  cat "$1".*.log | awk -F': ' '/number of transactions actually processed/ {split($2, a, "/"); n += a[1]} END {print n + 0}'
}
# kill_later <node> <label> <log>: in the background, a third of the stress time from now, kill
# the node's postmaster with SIGKILL and start it again ($killer: the background job)
kill_later() {
  local node="$1" label="$2" log="$3" data="${DIR[$1]}/data"
  ( sleep $((STRESS_S / 3))
    pid="$(head -n 1 "$data/postmaster.pid")"
    kill -9 "$pid"
    echo "killed $label (postmaster $pid) with SIGKILL" >"$log"
    sleep 2
    # its children exit once they notice the postmaster is gone
    for _ in $(seq 1 30); do pgrep -f "$data" >/dev/null 2>&1 || break; sleep 0.5; done
    pkill -9 -f "postgres: .*$node" 2>/dev/null || true
    rm -f "$data/postmaster.pid"
    _cl_as_pg "$BINDIR/pg_ctl" -D "$data" -l "${DIR[$node]}/postgres.log" -w -t 120 start >>"$log" 2>&1
    echo "restarted $label" >>"$log"
  ) &
  killer=$!
}
# spend_rounds <db> <log prefix> <pgbench -f arguments...>: 16 clients through the coordinator
# for the stress time. pgbench drops a client at its first error (a statement on the killed
# worker): rounds of 2 s until the time is up keep 16 clients spending before, during and
# after the kill ($round: how many)
spend_rounds() {
  local db="$1" prefix="$2" t_end=$((SECONDS + STRESS_S))
  shift 2
  round=0
  while [ "$SECONDS" -lt "$t_end" ]; do
    round=$((round + 1))
    "$BINDIR/pgbench" -n -h 127.0.0.1 -p "${PORT[citus-cx]}" -U postgres -c 16 -j 2 -T 2 \
      "$@" "$db" >"$prefix.$round.log" 2>&1 || true
  done
}

# ------------------------------------------------------------------ 1. the cluster
citus_database app
check_eq "coordinator and 2 active workers" "2" "$(qc -c "SELECT count(*) FROM citus_get_active_worker_nodes()")"

# ------------------------------------------------------------------ 2. regress scenarios
# One database per scenario, as pg_regress gives each test file; --use-existing neither creates
# nor configures it, so the settings pg_regress gives its own databases are set here. Each
# scenario creates the extension itself (Citus propagates that to the workers).
REGRESS="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress"
OUT="$REPO/build/citus"
rm -rf "$OUT"; mkdir -p "$OUT"
for t in core holds pools lifecycle; do
  db="regress_$t"
  citus_database "$db"
  for setting in "lc_messages TO 'C'" "lc_monetary TO 'C'" "lc_numeric TO 'C'" "lc_time TO 'C'" \
                 "bytea_output TO 'hex'" "timezone_abbreviations TO 'Default'" \
                 "intervalstyle TO 'postgres_verbose'"; do
    qdb "${PORT[citus-cx]}" "$db" -c "ALTER DATABASE $db SET $setting" >/dev/null
  done
  if (cd "$OUT" && PGTZ=PST8PDT PGDATESTYLE="Postgres, MDY" "$REGRESS" --use-existing \
        --host 127.0.0.1 --port "${PORT[citus-cx]}" --user postgres --dbname "$db" \
        --inputdir "$REPO/tests/pg_regress" --outputdir "$OUT/$t" --bindir "$BINDIR" "$t" \
        >"$OUT/$t.log" 2>&1); then
    ok "regress $t through the coordinator ($(qdb "${PORT[citus-w1]}" "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'credit_ledger'") on the workers too)"
  else
    fail "regress $t through the coordinator" "$(head -n 40 "$OUT/$t/regression.diffs" 2>/dev/null || tail -n 20 "$OUT/$t.log")"
  fi
done

# ------------------------------------------------------------------ 3. the extension
qc -c "CREATE EXTENSION credit_ledger" >/dev/null
cv="$(qc -c "SELECT extversion FROM pg_extension WHERE extname = 'credit_ledger'")"
for n in citus-w1 citus-w2; do
  check_eq "CREATE EXTENSION credit_ledger propagated to $n ($cv)" "$cv" \
    "$(q "${PORT[$n]}" -c "SELECT extversion FROM pg_extension WHERE extname = 'credit_ledger'")"
done
check_eq "no ledger table is distributed (they are the coordinator's)" "0" \
  "$(qc -c "SELECT count(*) FROM citus_tables WHERE table_name::text LIKE 'credit_ledger.%'")"
# a worker's copy of the ledger is not the cluster's: creating wallets, rates, assets or rate
# cards through a worker is refused (55000), so no second ledger grows there
w1err=""
for call in "credit_wallet_create(wallet => 'on_w1')" "credit_rate_set(action => 'w1_action', credits => 1)" \
            "credit_asset_define(asset => 'w1_asset')" "credit_rate_card_load('{\"name\": \"w1\", \"entries\": [{\"action\": \"w1_card\", \"credits\": 1}]}')"; do
  out="$("$BINDIR/psql" -X -q -At -h 127.0.0.1 -p "${PORT[citus-w1]}" -U postgres -d app \
           -v VERBOSITY=verbose -c "SELECT 1 FROM $call" 2>&1 || true)"
  grep -q '55000: credit_ledger runs on the Citus coordinator: this node is a worker' <<<"$out" || w1err+="$call: $out"$'\n'
done
check_eq "wallets, rates, assets and rate cards are refused on a worker (55000)" "|0|0" \
  "$w1err|$(q "${PORT[citus-w1]}" -c "SELECT count(*) FROM credit_ledger.wallets")|$(q "${PORT[citus-w1]}" -c "SELECT count(*) FROM credit_ledger.rates WHERE action = 'w1_action'")"

# ------------------------------------------------------------------ 4. one transaction, two systems
qc >/dev/null <<'SQL'
SELECT id FROM credit_rate_set(action => 'image.generate', credits => 40);
SELECT wallet FROM credit_wallet_create(wallet => 'cust_42');
SELECT amount FROM credit_grant(wallet => 'cust_42', amount => 100);
CREATE TABLE images (id bigserial, customer text NOT NULL, url text, authorization_id bigint NOT NULL,
                     PRIMARY KEY (customer, id));
SELECT create_distributed_table('images', 'customer');
SQL
qc >/dev/null <<'SQL'
BEGIN;
SELECT authorization_id FROM credit_authorize(wallet => 'cust_42', action => 'image.generate', idempotency_key => 'r1') \gset
INSERT INTO images (customer, url, authorization_id) VALUES ('cust_42', 'u1', :authorization_id);
COMMIT;
BEGIN;
SELECT authorization_id FROM credit_authorize(wallet => 'cust_42', action => 'image.generate', idempotency_key => 'r2') \gset
INSERT INTO images (customer, url, authorization_id) VALUES ('cust_42', 'u2', :authorization_id);
ROLLBACK;
SQL
check_eq "commit keeps the debit and the distributed row, rollback drops both" "60|1|1" \
  "$(qc -c "SELECT credit_balance('cust_42') || '|' || (SELECT count(*) FROM images) || '|' ||
                   (SELECT count(*) FROM credit_ledger.authorizations WHERE status = 'approved')")"

# ------------------------------------------------------------------ 5. the usage trigger
qc -c "CREATE TABLE llm_calls (customer text NOT NULL, tokens numeric NOT NULL, auth_id bigint)" \
   -c "SELECT create_distributed_table('llm_calls', 'customer')" >/dev/null
TRG="CREATE TRIGGER bill BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION credit_usage_trigger('wallet=customer', 'action_value=image.generate', 'quantity=tokens', 'authorization_id=auth_id')"
# shellcheck disable=SC2059  # the trigger statement is a format
if out="$(qc -c "$(printf "$TRG" llm_calls)" 2>&1)"; then
  fail "the usage trigger is refused on a distributed table" "$out"
else
  check_eq "the usage trigger is refused on a distributed table" "triggers are not supported on distributed tables" \
    "$(grep -o 'triggers are not supported on distributed tables' <<<"$out" | head -n 1)"
fi
# shellcheck disable=SC2059
out="$(qc -c "SET citus.enable_unsafe_triggers = on" -c "$(printf "$TRG" llm_calls)" \
          -c "INSERT INTO llm_calls VALUES ('cust_42', 1)" 2>&1 || true)"
check_eq "forced onto a distributed table it fails on the worker's empty ledger, billing nothing" \
  'wallet "cust_42" does not exist|60|0' \
  "$(grep -o 'wallet "cust_42" does not exist' <<<"$out" | head -n 1)|$(qc -c "SELECT credit_balance('cust_42') || '|' || (SELECT count(*) FROM llm_calls)")"
# shellcheck disable=SC2059
qc -c "CREATE TABLE llm_calls_local (customer text NOT NULL, tokens numeric NOT NULL, auth_id bigint)" \
   -c "$(printf "$TRG" llm_calls_local)" -c "INSERT INTO llm_calls_local VALUES ('cust_42', 1)" >/dev/null
check_eq "on a coordinator-local table the trigger bills the row" "20|1" \
  "$(qc -c "SELECT credit_balance('cust_42') || '|' || (SELECT count(*) FROM llm_calls_local WHERE auth_id IS NOT NULL)")"

# ------------------------------------------------------------------ 6. 16 clients, a worker killed
qc >/dev/null <<'SQL'
SELECT wallet FROM credit_wallet_create(wallet => 'team');
SELECT (credit_wallet_create(wallet => 'team.m' || i, parent => 'team')).wallet FROM generate_series(1, 16) i;
SELECT amount FROM credit_grant(wallet => 'team', amount => 1000000);
SELECT id FROM credit_rate_set(action => 'chat', credits => 1);
SELECT credit_wallet_lanes(wallet => 'team', lanes => 8);
SQL
cat >"$OUT/spend.sql" <<'SQL'
\set m random(1, 16)
BEGIN;
SELECT authorization_id FROM credit_authorize(wallet => 'team.m' || :m, action => 'chat', quantity => 3) \gset
INSERT INTO images (customer, url, authorization_id) VALUES ('team.m' || :m, 'x', :authorization_id);
COMMIT;
SQL
kill_later citus-w1 "worker 1" "$OUT/kill.log"
spend_rounds app "$OUT/pgbench" -f "$OUT/spend.sql"
wait "$killer" || true
cat "$OUT/kill.log" 2>/dev/null | sed 's/^/  /'
tx="$(committed "$OUT/pgbench")"
echo "  pgbench: $round rounds, $tx transactions committed"
if [ "${tx:-0}" -gt 0 ] && grep -q "restarted worker 1" "$OUT/kill.log" 2>/dev/null; then
  ok "16 clients spent through the coordinator while worker 1 was killed and restarted ($tx transactions)"
else
  fail "16 clients spent through the coordinator while worker 1 was killed and restarted" "$(tail -n 20 "$OUT/pgbench.$round.log")"
fi
# finish what the crash left prepared, then compare the two systems
for _ in $(seq 1 60); do
  qc -c "SELECT 1 FROM images LIMIT 1" >/dev/null 2>&1 && break; sleep 1
done
qc -c "SELECT recover_prepared_transactions()" >/dev/null
check_eq "no prepared transaction left on any node" "0|0|0" \
  "$(qc -c "SELECT count(*) FROM pg_prepared_xacts")|$(q "${PORT[citus-w1]}" -c "SELECT count(*) FROM pg_prepared_xacts")|$(q "${PORT[citus-w2]}" -c "SELECT count(*) FROM pg_prepared_xacts")"
check_eq "every approved spend of the team has its application row, and every row its spend" "0|0" \
  "$(qc -c "WITH a AS (SELECT a.id FROM credit_ledger.authorizations a JOIN credit_ledger.wallets w ON w.id = a.wallet_id
                          WHERE w.wallet LIKE 'team.m%' AND a.status = 'approved'),
                   i AS (SELECT authorization_id AS id FROM images WHERE customer LIKE 'team.m%')
              SELECT (SELECT count(*) FROM a WHERE id NOT IN (SELECT id FROM i)) || '|' ||
                     (SELECT count(*) FROM i WHERE id NOT IN (SELECT id FROM a))")"
approved="$(qc -c "SELECT count(*) FROM credit_ledger.authorizations a JOIN credit_ledger.wallets w ON w.id = a.wallet_id
                      WHERE w.wallet LIKE 'team.m%' AND a.status = 'approved'")"
if [ "$approved" -ge "$tx" ]; then
  ok "every commit pgbench saw acknowledged is in the ledger ($approved approved spends >= $tx commits)"
else
  fail "every commit pgbench saw acknowledged is in the ledger" "$approved approved spends < $tx commits"
fi
check_eq "conservation: the pool's 1000000 = its balance + 3 per approved spend" "1000000" \
  "$(qc -c "SELECT trim_scale(credit_balance('team') + 3 * (SELECT count(*) FROM credit_ledger.authorizations a
              JOIN credit_ledger.wallets w ON w.id = a.wallet_id WHERE w.wallet LIKE 'team.m%' AND a.status = 'approved'))")"
check_eq "the application's rows are on both workers" "2" \
  "$(qc -c "SELECT count(DISTINCT s.nodeport) FROM citus_shards s
              JOIN (SELECT DISTINCT get_shard_id_for_distribution_column('images', customer) AS shardid FROM images) x
                USING (shardid)")"
check_eq "credit_verify() empty on the coordinator" "0" "$(qc -c "SELECT count(*) FROM credit_verify()")"

# ------------------------------------------------------------------ 7. the schema distributes (0.12.0)
# Every ledger row names its tenant and every key of the wallet-keyed tables ends with it, so
# Citus accepts the tables as they are: credit_distribute() makes the catalogue and wallet_keys
# reference tables and distributes the rest by tenant, colocated with wallets, on a filled
# ledger. (Placements are read from pg_dist_placement: the citus_shards view leaves out tables
# an extension owns.)
citus_database distributed
qd() { qdb "${PORT[citus-cx]}" distributed "$@"; }
qd -c "CREATE EXTENSION credit_ledger" >/dev/null
qd >/dev/null <<'SQL'
SELECT count(*) FROM credit_rate_set(action => 'chat', credits => 10);
SELECT count(*) FROM credit_wallet_create('team');
SELECT count(*) FROM credit_grant(wallet => 'team', amount => 1000);
SELECT count(*) FROM generate_series(1, 4) i, LATERAL credit_wallet_create('team.m' || i, parent => 'team');
SELECT count(*) FROM generate_series(1, 24) i, LATERAL credit_wallet_create('solo' || i);
SELECT count(*) FROM generate_series(1, 24) i, LATERAL credit_grant(wallet => 'solo' || i, amount => 100);
SELECT count(*) FROM generate_series(1, 24) i, LATERAL credit_authorize(wallet => 'solo' || i, action => 'chat');
SELECT count(*) FROM generate_series(1, 4) i, LATERAL credit_authorize(wallet => 'team.m' || i, action => 'chat');
SQL
before="$(qd -c "SELECT (SELECT count(*) || '/' || sum(amount) FROM credit_ledger.journal) || '|' ||
                        (SELECT count(*) FROM credit_ledger.authorizations) || '|' ||
                        (SELECT count(*) FROM credit_ledger.wallet_keys)")"
check_eq "the ledger is healthy before it is distributed (credit_verify() empty)" "0" "$(qd -c "SELECT count(*) FROM credit_verify()")"
if out="$(qd -c "SELECT step || ' ' || count(*) FROM credit_distribute() GROUP BY step ORDER BY step" 2>&1)"; then
  check_eq "credit_distribute(): 4 reference tables, 15 distributed by tenant, 10 functions delegated, worker id ranges" \
    "delegated by tenant 10|distributed by tenant 15|reference table 4|worker id ranges 1" "$(tr '\n' '|' <<<"$out" | sed 's/|$//')"
else
  fail "credit_distribute()" "$(tail -n 8 <<<"$out")"
fi
check_eq "a second credit_distribute() does nothing" "already distributed" \
  "$(qd -c "SELECT step FROM credit_distribute()")"
check_eq "4 reference tables and 15 hash-distributed by tenant in one colocation group" "h|15|1|tenant  n|4|1|-" \
  "$(qd -c "SELECT string_agg(x, '  ' ORDER BY x) FROM (
              SELECT p.partmethod::text || '|' || count(*) || '|' || count(DISTINCT p.colocationid) || '|' ||
                     coalesce(min(column_to_column_name(p.logicalrelid, p.partkey)), '-') AS x
                FROM pg_dist_partition p JOIN pg_class r ON r.oid = p.logicalrelid
                JOIN pg_namespace n ON n.oid = r.relnamespace
               WHERE n.nspname = 'credit_ledger' GROUP BY p.partmethod) s")"
check_eq "every row kept (journal count/sum, authorizations, wallet keys)" "$before" \
  "$(qd -c "SELECT (SELECT count(*) || '/' || sum(amount) FROM credit_ledger.journal) || '|' ||
                   (SELECT count(*) FROM credit_ledger.authorizations) || '|' ||
                   (SELECT count(*) FROM credit_ledger.wallet_keys)")"
check_eq "the wallets' rows are on both workers, a pool and its members on one" "2|1" \
  "$(qd -c "SELECT count(DISTINCT s.nodeport) || '|' ||
                   (SELECT count(DISTINCT get_shard_id_for_distribution_column('credit_ledger.wallets', w.tenant))
                      FROM credit_ledger.wallets w WHERE w.wallet LIKE 'team%')
              FROM run_command_on_shards('credit_ledger.journal', 'SELECT count(*) FROM %s') r
              JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node s ON s.groupid = p.groupid
             WHERE r.success AND r.result::bigint > 0")"

# ------------------------------------------------------------------ 8. spends delegated to one worker
# credit_authorize and credit_hold with a literal tenant, inside the application's transaction:
# Citus sends each call whole to the worker of its tenant (one statement in
# citus.log_remote_commands), where every statement of the call stays on the tenant's shard.
deleg="$(qd 2>&1 <<'SQL' || true
SET citus.log_remote_commands = on;
SET client_min_messages = log;
BEGIN;
SELECT 'r1=' || approved || '/' || cost AS r, authorization_id AS a1 FROM credit_authorize(wallet => 'team.m1', action => 'chat', tenant => 'team') \gset
\echo :r
SELECT 'r2=' || approved || '/' || cost FROM credit_authorize(wallet => 'solo3', action => 'chat', tenant => 'solo3', idempotency_key => 'd1');
SELECT 'r3=' || approved || '/' || cost FROM credit_authorize(wallet => 'solo3', action => 'chat', tenant => 'solo3', idempotency_key => 'd1');
SELECT 'r4=' || status || '/' || cost AS r, authorization_id AS h1 FROM credit_hold(wallet => 'team.m2', action => 'chat', tenant => 'team') \gset
\echo :r
SELECT 'r5=' || status || '/' || cost FROM credit_capture(:h1, tenant => 'team');
SELECT authorization_id AS h2 FROM credit_hold(wallet => 'team.m3', action => 'chat', tenant => 'team') \gset
SELECT 'r6=' || status || '/' || cost FROM credit_release(:h2, tenant => 'team');
SELECT 'r7=' || amount || '/' || refunded_total FROM credit_refund(:a1, 4, tenant => 'team');
SELECT 'r8=' || approved || '/' || cost FROM credit_quote('solo4', 'chat', tenant => 'solo4');
-- (delegated only as a call on its own: SELECT f(...), not inside an expression)
SELECT credit_balance('solo4', tenant => 'solo4') AS b \gset
\echo r9=:b/0
COMMIT;
SQL
)"
got="$(grep -o '^r[0-9]=[a-z0-9.]*/[0-9.]*' <<<"$deleg" | tr '\n' ' ' | sed 's/ $//')"
want="r1=true/10 r2=true/10 r3=true/10 r4=held/10 r5=captured/10 r6=released/10 r7=4/4 r8=true/10 r9=90/0"
if [ "$got" = "$want" ]; then
  ok "ten calls in one transaction: approved, the key's replay the same, a hold captured, one released, a refund, a quote, a balance"
else
  fail "ten calls in one transaction: approved, the key's replay the same, a hold captured, one released, a refund, a quote, a balance" \
    "want: $want"$'\n'"got:  $got"$'\n'"$(grep -v '^ *[0-9]*: \|^ *at ' <<<"$deleg" | grep -E 'ERROR|DETAIL|HINT|CONTEXT' | head -n 8)"
fi
check_eq "each call sent whole to a worker: one statement each (all seven functions), nothing else of the ledger's" "10|7|0" \
  "$(grep -c "issuing SELECT .*public.credit_\(authorize\|hold\|capture\|release\|refund\|quote\|balance\)(" <<<"$deleg")|$(grep -o "issuing SELECT .*public.credit_\(authorize\|hold\|capture\|release\|refund\|quote\|balance\)(" <<<"$deleg" | grep -o "credit_[a-z]*(" | sort -u | wc -l)|$(grep -c "issuing .*credit_ledger\." <<<"$deleg")"
# the run functions (0.14.0): a run opened (with tenant, on the coordinator: the open writes
# the run wallet's key to wallet_keys, a reference table, which no delegated call may), spent
# in, read and closed, each of these four calls delegated whole
rdeleg="$(qd 2>&1 <<'SQL' || true
BEGIN;
SELECT 'o=' || approved || '/' || budget AS r, run_id AS run FROM credit_run_open(wallet => 'team.m4', budget => 30, tenant => 'team') \gset
\echo :r
SET citus.log_remote_commands = on;
SET client_min_messages = log;
SELECT 'a=' || approved || '/' || cost FROM credit_authorize(wallet => 'team.m4', action => 'chat', run => :run, tenant => 'team');
SELECT 'n=' || status || '/' || spent || '/' || remaining FROM credit_run(:run, tenant => 'team');
SELECT 't=' || count(*) || '/' || min(status) FROM credit_run_tree(:run, tenant => 'team');
SELECT 'c=' || status || '/' || spent || '/' || returned FROM credit_run_close(:run, tenant => 'team');
COMMIT;
SQL
)"
got="$(grep -o '^[oantc]=[a-z0-9./]*' <<<"$rdeleg" | tr '\n' ' ' | sed 's/ $//' || true)"
want="o=true/30 a=true/10 n=open/10/20 t=1/open c=closed/10/20"
if [ "$got" = "$want" ] && [ "$(grep -c "issuing SELECT .*public.credit_run\(_close\|_tree\)\?(" <<<"$rdeleg")" = 3 ] \
   && [ "$(grep -c "issuing SELECT .*public.credit_authorize(" <<<"$rdeleg")" = 1 ] && ! grep -q "issuing .*credit_ledger\." <<<"$rdeleg"; then
  ok "a run opened, then spent in, read and closed in one transaction: four calls each sent whole to the worker ($got)"
else
  fail "the run functions delegated" "want: $want (3 run calls + 1 authorize sent, nothing else of the ledger's after the open)"$'\n'"got:  $got, $(grep -c "issuing SELECT .*public.credit_run" <<<"$rdeleg") run calls sent"$'\n'"$(grep -E 'ERROR|DETAIL|HINT' <<<"$rdeleg" | head -n 6)"
fi
check_eq "a wrong tenant finds no wallet (delegated to that tenant's worker)" "wallet \"solo3\" does not exist in tenant \"team\"" \
  "$(qd -c "SELECT approved FROM credit_authorize(wallet => 'solo3', action => 'chat', tenant => 'team')" 2>&1 | grep -o 'wallet "solo3" does not exist in tenant "team"' | head -n 1)"
check_eq "the rows: team's authorizations 4 + 3 + 1 in the run, solo3's keyed call once, the pool's 1000 - 4 x 10 - 10 spent - 10 captured + 4 refunded - 10 spent in the run" "8|1|934" \
  "$(qd -c "SELECT (SELECT count(*) FROM credit_ledger.authorizations WHERE tenant = 'team') || '|' ||
                   (SELECT count(*) FROM credit_ledger.authorizations WHERE tenant = 'solo3' AND idempotency_key = 'd1') || '|' ||
                   (SELECT trim_scale(sum(g.remaining - g.held)) FROM credit_ledger.grants g
                     WHERE g.tenant = 'team' AND g.wallet_id = (SELECT w.id FROM credit_ledger.wallets w WHERE w.tenant = 'team' AND w.wallet = 'team'))")"

# ------------------------------------------------------------------ 9. the regress scenarios, distributed
# The same four scenarios as in 2, each on a ledger distributed right after CREATE EXTENSION:
# every call (none names its tenant) runs on the coordinator, which looks the tenant up in
# wallet_keys and routes each statement to the tenant's shard; the read functions, the sweeps
# and credit_verify() included. The files are run as they are, with credit_distribute() after
# CREATE EXTENSION (in the input and the expected output alike). Since 0.14.0 also reports (every
# report view, planned by Citus across the shards), runs (agent runs and sub-runs, their
# reads, a run of another wallet refused as on one node), lanes (a pool's lanes, the spend
# cap sliced over them), metrics (credit_metrics() per asset across the shards), and the
# overage menu (overage, tiers, fair_use, margins), alerts (pool_alert), monitoring (health),
# counters_prune, lifecycle_holds, lifecycle_late, limits, patterns, comments and the README's
# and docs' examples (readme_minute, readme_examples). (Not here: scenarios that move a wallet
# or transfer between tenants, refused on a distributed ledger, and those that tamper with
# rows to test credit_verify().)
for t in core holds pools lifecycle reports runs lanes metrics overage tiers fair_use margins pool_alert health \
         counters_prune lifecycle_holds lifecycle_late limits patterns comments readme_minute readme_examples \
         errors lanes_member_limits lifecycle_bounds usage_trigger events reports_agree; do
  db="dregress_$t"
  citus_database "$db"
  for setting in "lc_messages TO 'C'" "lc_monetary TO 'C'" "lc_numeric TO 'C'" "lc_time TO 'C'" \
                 "bytea_output TO 'hex'" "timezone_abbreviations TO 'Default'" \
                 "intervalstyle TO 'postgres_verbose'"; do
    qdb "${PORT[citus-cx]}" "$db" -c "ALTER DATABASE $db SET $setting" >/dev/null
  done
  mkdir -p "$OUT/dist/sql" "$OUT/dist/expected"
  distribute='CREATE EXTENSION credit_ledger;\n\\o /dev/null\nSELECT credit_distribute();\n\\o\n\\set SHOW_CONTEXT never'
  drop='SET client_min_messages = warning;\nDROP EXTENSION credit_ledger CASCADE;'
  sed -e "0,\#^CREATE EXTENSION credit_ledger;#s##$distribute#" -e "s#^DROP EXTENSION credit_ledger;\$#$drop#" \
    "$REPO/tests/pg_regress/sql/$t.sql" >"$OUT/dist/sql/$t.sql"
  sed -e "0,\#^CREATE EXTENSION credit_ledger;#s##$distribute#" -e "s#^DROP EXTENSION credit_ledger;\$#$drop#" \
    -e "/^CONTEXT:  /d" "$REPO/tests/pg_regress/expected/$t.out" >"$OUT/dist/expected/$t.out"
  if (cd "$OUT" && PGTZ=PST8PDT PGDATESTYLE="Postgres, MDY" "$REGRESS" --use-existing \
        --host 127.0.0.1 --port "${PORT[citus-cx]}" --user postgres --dbname "$db" \
        --inputdir "$OUT/dist" --outputdir "$OUT/dist/$t" --bindir "$BINDIR" "$t" \
        >"$OUT/dist/$t.log" 2>&1); then
    n="$(qdb "${PORT[citus-cx]}" "$db" -c "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'credit_ledger.%'")"
    ok "regress $t on a distributed ledger through the coordinator ($([ "$n" = 0 ] && echo "the scenario drops the extension at its end" || echo "$n ledger tables distributed or reference"))"
  else
    fail "regress $t on a distributed ledger through the coordinator" "$(head -n 40 "$OUT/dist/$t/regression.diffs" 2>/dev/null || tail -n 20 "$OUT/dist/$t.log")"
  fi
  for n in "${NODES[@]}"; do qdb "${PORT[$n]}" postgres -c "DROP DATABASE $db WITH (FORCE)" >/dev/null 2>&1 || true; done
done

# ------------------------------------------------------------------ 10. 16 clients on the distributed ledger, a worker killed
# Wallets created and granted after credit_distribute() (through the coordinator); 16 pgbench
# clients each spend with tenant => (delegated to the tenant's worker) and write an application
# row of a table distributed by the same tenant, colocated with the ledger, in one transaction;
# worker 2 is killed with SIGKILL and restarted in the middle. Afterwards: no prepared
# transaction left, every approved spend has its row and every row its spend, every commit
# pgbench saw is in the ledger, conservation per wallet, credit_verify() empty.
qd >/dev/null <<'SQL'
SELECT count(*) FROM credit_wallet_create('crew');
SELECT count(*) FROM generate_series(1, 8) i, LATERAL credit_wallet_create('crew.m' || i, parent => 'crew');
SELECT count(*) FROM credit_grant(wallet => 'crew', amount => 1000000);
SELECT count(*) FROM generate_series(1, 16) i, LATERAL credit_wallet_create('d' || i);
SELECT count(*) FROM generate_series(1, 16) i, LATERAL credit_grant(wallet => 'd' || i, amount => 100000);
CREATE TABLE spends (tenant text NOT NULL, wallet text NOT NULL, authorization_id bigint NOT NULL);
SELECT create_distributed_table('spends', 'tenant', colocate_with => 'credit_ledger.wallets');
SQL
cat >"$OUT/solo.sql" <<'SQL'
\set i random(1, 16)
BEGIN;
SELECT authorization_id FROM credit_authorize(wallet => 'd' || :i, action => 'chat', tenant => 'd' || :i) \gset
INSERT INTO spends VALUES ('d' || :i, 'd' || :i, :authorization_id);
COMMIT;
SQL
cat >"$OUT/crew.sql" <<'SQL'
\set m random(1, 8)
BEGIN;
SELECT authorization_id FROM credit_authorize(wallet => 'crew.m' || :m, action => 'chat', tenant => 'crew') \gset
INSERT INTO spends VALUES ('crew', 'crew.m' || :m, :authorization_id);
COMMIT;
SQL
kill_later citus-w2 "worker 2" "$OUT/kill2.log"
spend_rounds distributed "$OUT/dpgbench" -f "$OUT/solo.sql@1" -f "$OUT/crew.sql@1"
wait "$killer" || true
sed 's/^/  /' "$OUT/kill2.log" 2>/dev/null || true
tx="$(committed "$OUT/dpgbench")"
echo "  pgbench: $round rounds, $tx transactions committed"
if [ "${tx:-0}" -gt 0 ] && grep -q "restarted worker 2" "$OUT/kill2.log" 2>/dev/null; then
  ok "16 clients spent on the distributed ledger (delegated) while worker 2 was killed and restarted ($tx transactions)"
else
  fail "16 clients spent on the distributed ledger while worker 2 was killed and restarted" "$(tail -n 20 "$OUT/dpgbench.$round.log")"
fi
for _ in $(seq 1 60); do
  qd -c "SELECT 1 FROM spends LIMIT 1" >/dev/null 2>&1 && break; sleep 1
done
qd -c "SELECT recover_prepared_transactions()" >/dev/null
check_eq "no prepared transaction left on any node" "0|0|0" \
  "$(qd -c "SELECT count(*) FROM pg_prepared_xacts")|$(qdb "${PORT[citus-w1]}" distributed -c "SELECT count(*) FROM pg_prepared_xacts")|$(qdb "${PORT[citus-w2]}" distributed -c "SELECT count(*) FROM pg_prepared_xacts")"
spent_sql="SELECT a.id FROM credit_ledger.authorizations a JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
            WHERE (w.wallet LIKE 'crew.m%' OR w.wallet ~ '^d[0-9]+\$') AND a.status = 'approved'"
check_eq "every approved spend has its application row, and every row its spend" "0|0" \
  "$(qd -c "WITH a AS ($spent_sql), i AS (SELECT authorization_id AS id FROM spends)
              SELECT (SELECT count(*) FROM a WHERE id NOT IN (SELECT id FROM i)) || '|' ||
                     (SELECT count(*) FROM i WHERE id NOT IN (SELECT id FROM a))")"
approved="$(qd -c "SELECT count(*) FROM ($spent_sql) a")"
if [ "$approved" -ge "$tx" ]; then
  ok "every commit pgbench saw acknowledged is in the ledger ($approved approved spends >= $tx commits)"
else
  fail "every commit pgbench saw acknowledged is in the ledger" "$approved approved spends < $tx commits"
fi
check_eq "conservation: each wallet's grants = its balance + 10 per approved spend (the crew's pool for its members)" "0" \
  "$(qd -c "CREATE TEMP TABLE balances AS
               SELECT g.w, g.granted, credit_balance(g.w) AS balance FROM (
                 SELECT 'crew' AS w, 1000000 AS granted UNION ALL SELECT 'd' || i, 100000 FROM generate_series(1, 16) i) g" \
          -c "SELECT count(*) FROM balances b
                LEFT JOIN (SELECT s.tenant, count(*) AS n FROM spends s GROUP BY s.tenant) s ON s.tenant = b.w
               WHERE b.granted <> b.balance + 10 * coalesce(s.n, 0)")"
check_eq "the spends' rows are on both workers" "2" \
  "$(qd -c "SELECT count(DISTINCT s.nodeport) FROM pg_dist_placement p JOIN pg_dist_node s ON s.groupid = p.groupid
             WHERE p.shardid IN (SELECT DISTINCT get_shard_id_for_distribution_column('spends', tenant) FROM spends)")"
check_eq "credit_verify() empty on the coordinator (distributed ledger)" "0" "$(qd -c "SELECT count(*) FROM credit_verify()")"

# ------------------------------------------------------------------ 11. the usage trigger, distributed
# The application's usage table distributed by the same tenant, colocated with the ledger, the
# usage trigger on it (Citus asks for citus.enable_unsafe_triggers when it is created): the
# trigger runs with the row on its shard's worker and bills the row's wallet there. A row whose
# wallet is on another worker, or unknown, fails its insert (Citus runs no distributed query
# from a shard's trigger): nothing billed, no row.
qd >/dev/null <<'SQL'
SELECT count(*) FROM credit_rate_set(action => 'image.generate', credits => 2);
CREATE TABLE llm_calls (tenant text NOT NULL, customer text NOT NULL, tokens numeric, auth_id bigint);
SELECT create_distributed_table('llm_calls', 'tenant', colocate_with => 'credit_ledger.wallets');
SET citus.enable_unsafe_triggers = on;
CREATE TRIGGER bill BEFORE INSERT ON llm_calls FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer', 'action_value=image.generate', 'quantity=tokens', 'authorization_id=auth_id');
SQL
before_d5="$(qd -c "SELECT credit_balance('d5')")"
qd -c "BEGIN" -c "INSERT INTO llm_calls VALUES ('d5', 'd5', 3)" -c "INSERT INTO llm_calls VALUES ('d6', 'd6', 2)" \
   -c "INSERT INTO llm_calls VALUES ('d7', 'd7', 1)" -c "COMMIT" >/dev/null 2>&1 || true
check_eq "the usage trigger on a colocated distributed table bills each row on its worker" "3|3|6" \
  "$(qd -c "SELECT count(*) || '|' || count(auth_id) FROM llm_calls")|$(qd -c "SELECT trim_scale($before_d5 - credit_balance('d5'))")"
# a wallet whose shard is on the other worker than d5's
far="$(qd -c "SELECT 'd' || i FROM generate_series(1, 16) i
               WHERE (SELECT p.groupid FROM pg_dist_placement p WHERE p.shardid = get_shard_id_for_distribution_column('credit_ledger.wallets', 'd' || i))
                  <> (SELECT p.groupid FROM pg_dist_placement p WHERE p.shardid = get_shard_id_for_distribution_column('credit_ledger.wallets', 'd5'))
               LIMIT 1")"
before_far="$(qd -c "SELECT credit_balance('$far')")"
refused=0
for w in nobody "$far"; do
  e="$(qd -v VERBOSITY=verbose -c "INSERT INTO llm_calls VALUES ('d5', '$w', 1)" 2>&1 | grep '^ERROR:' | head -n 1 || true)"
  echo "  a row of d5 billing wallet $w: ${e:-no error}"
  [ -n "$e" ] && refused=$((refused + 1))
done
check_eq "a row whose wallet is unknown, or on another worker ($far), fails its insert: no row, nothing billed" "2|3|0" \
  "$refused|$(qd -c "SELECT count(*) FROM llm_calls")|$(qd -c "SELECT trim_scale($before_far - credit_balance('$far'))")"
check_eq "credit_verify() empty after the trigger's spends" "0" "$(qd -c "SELECT count(*) FROM credit_verify()")"
# A COPY into a coordinator's table billed by the trigger, failing at its second line outside a
# transaction block: the first line's spend is rolled back on its worker with the COPY. (Before
# the fix in 0.14.0's library each of the spend's statements committed on its own there: the call is a
# PL/pgSQL expression, which Citus did not count as a function call, so it sent no BEGIN; the
# approved authorization stayed, its journal entry did not.)
qd >/dev/null <<'SQL'
CREATE TABLE copy_calls (customer text, tokens numeric);
CREATE TRIGGER bill BEFORE INSERT ON copy_calls FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer', 'action_value=image.generate', 'quantity=tokens');
SQL
d5_state() {
  echo "$(qd -c "SELECT credit_balance('d5')")|$(qd -c "SELECT count(*) FROM credit_ledger.authorizations a JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant WHERE w.wallet = 'd5' AND w.tenant = 'd5'")|$(qd -c "SELECT count(*) FROM credit_ledger.journal j JOIN credit_ledger.wallets w ON w.id = j.wallet_id AND w.tenant = j.tenant WHERE w.wallet = 'd5' AND w.tenant = 'd5'")"
}
before="$(d5_state)"
printf 'd5\t1\nd5\tnot a number\n' | qd -c "COPY copy_calls FROM STDIN" >/dev/null 2>&1 || true
check_eq "a COPY billed by the trigger that fails at its second line leaves nothing on the worker (balance|authorizations|entries of d5)" \
  "$before|0" "$(d5_state)|$(qd -c "SELECT count(*) FROM copy_calls")"
printf 'd5\t1\nd5\t2\n' | qd -c "COPY copy_calls FROM STDIN" >/dev/null
check_eq "the same COPY without the bad line bills both lines (3 tokens at 2 credits)" "6" \
  "$(qd -c "SELECT trim_scale(${before%%|*} - credit_balance('d5'))")"
check_eq "credit_verify() empty after the COPYs" "0" "$(qd -c "SELECT count(*) FROM credit_verify()")"

# ------------------------------------------------------------------ 12. corrections and the DBA's reads, distributed
# Since 0.14.0 on a distributed ledger, through the coordinator (routed to the tenant's shard):
# a void, an adjustment, a transfer and a close within one tenant (a pool and its member), their
# results' balances read per tenant; a customer statement, the margin what-if,
# credit_health() and credit_metrics() across the shards.
# (the pool's 100 - the member's call of 10 = 90; void 20 -> 70; adjust -5 -> 65; 30 to the
# member -> 35; the member's close gives its 30 back, 0 left to it; the statement: opening, the
# grant, the call, the void, the adjustment, the transfer out and back in, closing 65)
qd >/dev/null <<'SQL'
SELECT count(*) FROM credit_wallet_create('fix');
SELECT count(*) FROM credit_wallet_create('fix.m1', parent => 'fix');
SELECT count(*) FROM credit_grant(wallet => 'fix', amount => 100, category => 'purchased', unit_price => 0.01);
SELECT count(*) FROM credit_authorize('fix.m1', 'chat');
SQL
fixes="$(qd 2>&1 <<'SQL' || true
SELECT g.id AS gid FROM credit_ledger.grants g WHERE g.tenant = 'fix' AND g.category = 'purchased' \gset
SELECT 'void=' || done || '/' || balance FROM credit_grant_void(:gid, 20, reason => 'chargeback');
SELECT 'adjust=' || done || '/' || balance FROM credit_adjust('fix', -5, reason => 'fix');
SELECT 'transfer=' || done || '/' || balance FROM credit_transfer('fix', 'fix.m1', 30, reason => 'give');
SELECT 'close=' || done || '/' || balance FROM credit_wallet_close('fix.m1', 'transfer', 'fix');
SELECT 'statement=' || count(*) || '/' || min(balance) FILTER (WHERE kind = 'closing') FROM credit_statement('fix', now() - interval '1 day', now() + interval '1 second');
SELECT 'whatif=' || count(*) FROM credit_margin_whatif(5);
SELECT 'health=' || count(*) FROM credit_health();
SELECT 'metrics=' || count(*) FROM credit_metrics();
SQL
)"
got="$(grep -o '^[a-z]*=[0-9./-]*' <<<"$fixes" | tr '\n' ' ' | sed 's/ $//' || true)"
want="void=20/70 adjust=-5/65 transfer=30/35 close=30/0 statement=8/65"
if [ "${got%% whatif=*}" = "$want" ] && grep -q 'whatif=[0-9]' <<<"$got" && grep -q 'health=[1-9]' <<<"$got" && grep -q 'metrics=[1-9]' <<<"$got"; then
  ok "a void, an adjustment, a transfer and a close in one tenant, a statement, the what-if, credit_health(), credit_metrics() ($got)"
else
  fail "corrections and the DBA's reads on a distributed ledger" "want: $want whatif=N health=N metrics=N"$'\n'"got:  $got"$'\n'"$(grep -E 'ERROR|DETAIL' <<<"$fixes" | head -n 6)"
fi
# A transfer and a close into a wallet of another tenant, on the other worker (0.14.0's library;
# refused before): the sending side's statements on the sender's shard, the receiving side's on
# the receiver's, one distributed transaction.
far="$(qd -c "SELECT 'd' || i FROM generate_series(1, 16) i
               WHERE (SELECT p.groupid FROM pg_dist_placement p WHERE p.shardid = get_shard_id_for_distribution_column('credit_ledger.wallets', 'd' || i))
                  <> (SELECT p.groupid FROM pg_dist_placement p WHERE p.shardid = get_shard_id_for_distribution_column('credit_ledger.wallets', 'fix'))
               LIMIT 1")"
fix0="$(qd -c "SELECT credit_balance('fix')")"; far0="$(qd -c "SELECT credit_balance('$far')")"
across="$(qd 2>&1 <<SQL || true
SELECT 'sent=' || done || '/' || to_wallet || '/' || balance FROM credit_transfer('fix', '$far', 10, reason => 'across', idempotency_key => 'x-1');
SELECT 'again=' || done || '/' || to_wallet FROM credit_transfer('fix', '$far', 10, reason => 'across', idempotency_key => 'x-1');
BEGIN;
SELECT 'rolled=' || done FROM credit_transfer('fix', '$far', 5);
ROLLBACK;
SELECT 'kept=' || string_agg(DISTINCT category || '/' || trim_scale(unit_price) || '/' || (transfer_of IS NOT NULL), ',') FROM credit_ledger.grants WHERE tenant = '$far' AND source = 'transfer' AND home_id IS NULL;
SELECT count(*) FROM credit_wallet_create('fix2');
SELECT count(*) FROM credit_grant(wallet => 'fix2', amount => 7);
SELECT 'closed=' || done || '/' || to_wallet FROM credit_wallet_close('fix2', 'transfer', '$far');
SQL
)"
check_eq "a transfer and a close into another tenant's wallet on the other worker ($far): moved, replayed, rolled back whole" \
  "sent=10/$far/55 again=10/$far rolled=5 kept=purchased/0.01/true closed=7/$far" \
  "$(grep -o '^[a-z]*=[a-z0-9./-]*' <<<"$across" | tr '\n' ' ' | sed 's/ $//' || true)$(grep -o 'ERROR: .*' <<<"$across" | head -n 1 || true)"
check_eq "balances after it: the sender 10 less, the receiver 17 more" "$(qd -c "SELECT trim_scale($fix0 - 10)")|$(qd -c "SELECT trim_scale($far0 + 17)")" \
  "$(qd -c "SELECT trim_scale(credit_balance('fix'))")|$(qd -c "SELECT trim_scale(credit_balance('$far'))")"
check_eq "credit_verify() empty after the corrections" "0" "$(qd -c "SELECT count(*) FROM credit_verify()")"

# ------------------------------------------------------------------ 13. events on a distributed ledger
# A delegated spend that writes an event (a low-balance alert) in a transaction that also
# spends on the other worker (Citus commits it in two phases): it commits, the event is a row
# (a NOTIFY on the worker would fail the PREPARE, 0.13.0 did: "cannot PREPARE a transaction
# that has executed LISTEN, UNLISTEN, or NOTIFY"). A routed call's event is notified from the
# coordinator, where the application listens (0.13.0 notified it on the worker: lost).
qd >/dev/null <<'SQL'
SELECT count(*) FROM credit_wallet_create('alert1', low_balance_threshold => 50);
SELECT count(*) FROM credit_grant(wallet => 'alert1', amount => 55);
SQL
other="$(qd -c "SELECT 'd' || i FROM generate_series(1, 16) i
                 WHERE (SELECT p.groupid FROM pg_dist_placement p WHERE p.shardid = get_shard_id_for_distribution_column('credit_ledger.wallets', 'd' || i))
                    <> (SELECT p.groupid FROM pg_dist_placement p WHERE p.shardid = get_shard_id_for_distribution_column('credit_ledger.wallets', 'alert1'))
                 LIMIT 1")"
two="$(qd 2>&1 <<SQL || true
BEGIN;
SELECT 'a1=' || approved FROM credit_authorize(wallet => 'alert1', action => 'chat', tenant => 'alert1');
SELECT 'a2=' || approved FROM credit_authorize(wallet => '$other', action => 'chat', tenant => '$other');
COMMIT;
SELECT 'rows=' || count(*) FROM credit_ledger.events WHERE kind = 'low_balance' AND tenant = 'alert1';
SQL
)"
check_eq "a delegated spend's alert in a transaction over two workers commits; the event is a row" "a1=true a2=true rows=1" \
  "$(grep -o '^[a-z0-9]*=[a-z0-9]*' <<<"$two" | tr '\n' ' ' | sed 's/ $//' || true)$(grep -o 'ERROR: .*' <<<"$two" | head -n 1 || true)"
heard="$(qd 2>&1 <<'SQL' || true
LISTEN credit_ledger;
SELECT 'adj=' || done FROM credit_adjust('alert1', -1, reason => 'test');
SELECT 'closed=' || kind FROM credit_wallet_close('alert1');
SELECT 1;
SQL
)"
check_eq "a routed call's events are notified from the coordinator (LISTEN there hears them)" "yes" \
  "$(grep -q 'Asynchronous notification "credit_ledger" with payload "[0-9]*" received' <<<"$heard" && echo yes || echo "no: $heard")"
# credit_tick's grant_expiring events use the caller's credit_ledger.expiring_notice (the
# statement runs on the workers, where the session's setting is not: read on the coordinator
# since 0.14.0's library; before, the workers' default of 7 days announced every grant)
qd >/dev/null <<'SQL'
SELECT count(*) FROM credit_wallet_create('notice1');
SELECT count(*) FROM credit_grant(wallet => 'notice1', amount => 5, expires_at => now() + interval '2 hours');
SQL
announced() { qd -c "SET credit_ledger.expiring_notice = '$1'" -c "SELECT count(*) FROM credit_tick()" \
                 -c "SELECT count(*) FROM credit_ledger.events WHERE kind = 'grant_expiring' AND tenant = 'notice1'" | tail -n 1; }
check_eq "grant_expiring follows the caller's expiring_notice on a distributed ledger (1 hour: none; 3 hours: one)" "0 1" \
  "$(announced '1 hour') $(announced '3 hours')"
# the actor of a delegated call: a SET LOCAL that Citus passes on to the worker
qd -c "SET citus.propagate_set_commands = 'local'" -c "BEGIN" -c "SET LOCAL credit_ledger.actor = 'user:42'" \
   -c "SELECT approved FROM credit_authorize(wallet => 'd9', action => 'chat', tenant => 'd9', idempotency_key => 'actor-1')" \
   -c "COMMIT" >/dev/null
check_eq "a delegated call records the actor set with SET LOCAL and citus.propagate_set_commands = local" "user:42" \
  "$(qd -c "SELECT actor FROM credit_ledger.authorizations WHERE tenant = 'd9' AND idempotency_key = 'actor-1'")"
check_eq "credit_verify() empty after the events" "0" "$(qd -c "SELECT count(*) FROM credit_verify()")"
finish
