#!/usr/bin/env bash
# bench/citus.sh — the cost of the distributed path (issue 20): W1 (16 clients authorizing on
# 10,000 independent wallets, synchronous_commit on) on a single node against the same calls
# through a Citus coordinator with two workers, all started here on this machine and measured
# in one run, peers interleaved in every round, medians of the rounds.
#
#   bench/citus.sh [--rounds N] [--duration SEC] [--clients N] [--wallets N]
#   (environment: CITUS_BENCH_KEEP=1 leaves the four clusters running; PGBENCH_MODE=simple)
#
# Peers (one pgbench cell each per round):
#   ext single      credit_authorize on a plain PostgreSQL node (bench/run.sh's W1 call)
#   ext citus       the same calls through the coordinator, the ledger's tables on the
#                   coordinator (what ships today: docs/design.md, Citus step 1)
#   proto single    the delegation probe: a minimal spend (PL/pgSQL: lock the wallet row,
#                   check, update, journal) on tables keyed by (tenant, wallet), one node
#   proto citus     the same function and tables distributed by tenant over the two workers,
#                   the function registered with create_distributed_function(..., '$1',
#                   force_delegation => true), called inside BEGIN ... COMMIT through the
#                   coordinator: one round trip to the worker that holds the tenant
#   proto worker    the same, pgbench connected to worker 1 instead of the coordinator (Citus
#                   routes from any node: the routing work spreads over the workers)
#   ledger single  credit_authorize(..., tenant => wallet) on the plain node (W1's call naming its
#                   tenant: what the delegated peers run)
#   ledger citus   the ledger itself distributed (credit_distribute(), 0.12.0 on) and the same
#                   call through the coordinator: delegated to the worker of the tenant
#   ledger worker  the same, pgbench connected to worker 1
#   routed citus   the distributed ledger called without tenant: not delegated, the coordinator
#                   looks the tenant up and sends each statement of the call to its shard (0.13.0)
#   bare single/citus  the probe called on its own (no BEGIN ... COMMIT around it): Citus then
#                   sends the call without a coordinated transaction
#   noop single/citus  a distributed function that touches no table: the cost of the hop alone
#                   (bare - noop: the probe's three statements, which a worker runs through
#                   Citus's local execution)
#
# The probe is a minimal spend with the same shape (lock, check, update, journal): against the
# ledger's own delegated call it shows what the ledger's work adds on a worker. All nodes share this machine's cores, so this measures the
# overhead of the distributed path, not scale.
#
# Fails (exit 1) when a gate fails: delegation not seen (citus.log_remote_commands must show
# the whole call sent to one worker as one statement), the probe's rows not on both workers,
# conservation (every peer's balances + its journal = what it was given), credit_verify() not
# empty, or a peer that committed nothing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
ROUNDS=3 DURATION=5 CLIENTS=16 WALLETS=10000
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --clients) CLIENTS="$2"; shift 2 ;;
    --wallets) WALLETS="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench/citus.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
BINDIR="$("$PG_CONFIG" --bindir)"
log() { echo "[citus-bench $(date +%H:%M:%S)] $*"; }

case "$("$PG_CONFIG" --version | awk '{print $2}')" in
  15.*|16.*|17.*) ;;
  *) echo "citus bench: skipped (Citus 13.2 supports PostgreSQL 15 to 17)"; exit 0 ;;
esac
built="$(PG_CONFIG="$PG_CONFIG" bash "$REPO/tests/citus/build.sh" | tail -n 1)"
case "$built" in
  "citus: ready"*) ;;
  *) echo "citus bench: skipped (no Citus for this PostgreSQL: $built)"; exit 0 ;;
esac

# shellcheck source=../tests/cluster.sh
source "$REPO/tests/cluster.sh"
OUT="$(mktemp -d /tmp/credit_ledger-citus-bench.XXXXXX)"
chmod 755 "$OUT"
NODES=(cb-single cb-cx cb-w1 cb-w2)
declare -A PORT
cleanup() {
  local n
  if [ "${CITUS_BENCH_KEEP:-0}" = 1 ]; then echo "clusters kept: ${NODES[*]} (ports ${PORT[*]})"; return 0; fi
  for n in "${NODES[@]}"; do cluster_stop "$n" >/dev/null 2>&1 || true; done
  rm -rf "$OUT"
}
trap cleanup EXIT
export CLUSTER_LISTEN=127.0.0.1
CLUSTER_CONF="max_connections = 200" cluster_start cb-single "$BINDIR" >/dev/null
PORT[cb-single]="$PGPORT"
for n in cb-cx cb-w1 cb-w2; do
  CLUSTER_CONF="shared_preload_libraries = 'citus'
max_connections = 200
max_prepared_transactions = 200
citus.shard_count = 8" cluster_start "$n" "$BINDIR" >/dev/null
  PORT[$n]="$PGPORT"
done
unset PGHOST PGPORT
qdb() { local port="$1" db="$2"; shift 2; "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"; }
log "nodes: single :${PORT[cb-single]}, coordinator :${PORT[cb-cx]}, workers :${PORT[cb-w1]} :${PORT[cb-w2]}"

# ------------------------------------------------------------------ data
qdb "${PORT[cb-single]}" postgres -c "CREATE DATABASE bench" >/dev/null
for n in cb-cx cb-w1 cb-w2; do
  qdb "${PORT[$n]}" postgres -c "CREATE DATABASE bench" >/dev/null
  qdb "${PORT[$n]}" bench -c "CREATE EXTENSION citus" >/dev/null
done
qdb "${PORT[cb-cx]}" bench -c "SELECT citus_set_coordinator_host('127.0.0.1', ${PORT[cb-cx]})" \
  -c "SELECT citus_add_node('127.0.0.1', ${PORT[cb-w1]})" \
  -c "SELECT citus_add_node('127.0.0.1', ${PORT[cb-w2]})" >/dev/null

ext_load="
CREATE EXTENSION credit_ledger;
SELECT count(*) FROM credit_rate_set(action => 'chat', credits => 1, variant => 'haiku');
SELECT count(*) FROM generate_series(1, $WALLETS) i, LATERAL credit_wallet_create(wallet => 'w' || i);
SELECT count(*) FROM generate_series(1, $WALLETS) i, LATERAL credit_grant(wallet => 'w' || i, amount => 1000000000);
"
probe_schema="
CREATE TABLE p_wallets (tenant text NOT NULL, wallet text NOT NULL, balance numeric NOT NULL CHECK (balance >= 0),
                        PRIMARY KEY (tenant, wallet));
CREATE TABLE p_journal (tenant text NOT NULL, id bigserial, wallet text NOT NULL, amount numeric NOT NULL,
                        at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant, id));
CREATE FUNCTION p_spend(tenant text, wallet text, amount numeric) RETURNS boolean
LANGUAGE plpgsql AS \$\$
DECLARE b numeric;
BEGIN
  SELECT w.balance INTO b FROM p_wallets w WHERE w.tenant = p_spend.tenant AND w.wallet = p_spend.wallet FOR UPDATE;
  IF b IS NULL OR b < amount THEN RETURN false; END IF;
  UPDATE p_wallets w SET balance = w.balance - amount WHERE w.tenant = p_spend.tenant AND w.wallet = p_spend.wallet;
  INSERT INTO p_journal (tenant, wallet, amount) VALUES (tenant, wallet, amount);
  RETURN true;
END \$\$;
CREATE FUNCTION p_noop(tenant text) RETURNS boolean LANGUAGE plpgsql AS \$\$ BEGIN RETURN true; END \$\$;
"
probe_data="INSERT INTO p_wallets SELECT 'w' || i, 'w' || i, 1000000000 FROM generate_series(1, $WALLETS) i;"
for n in cb-cx cb-w1 cb-w2; do
  qdb "${PORT[$n]}" postgres -c "CREATE DATABASE dbench" >/dev/null
  qdb "${PORT[$n]}" dbench -c "CREATE EXTENSION citus" >/dev/null
done
qdb "${PORT[cb-cx]}" dbench -c "SELECT citus_set_coordinator_host('127.0.0.1', ${PORT[cb-cx]})" \
  -c "SELECT citus_add_node('127.0.0.1', ${PORT[cb-w1]})" \
  -c "SELECT citus_add_node('127.0.0.1', ${PORT[cb-w2]})" >/dev/null
log "loading $WALLETS wallets into a ledger on the Citus cluster and distributing it (database dbench)"
qdb "${PORT[cb-cx]}" dbench -c "$ext_load" -c "SELECT count(*) FROM credit_distribute()" >/dev/null
log "loading $WALLETS wallets into the single node and the coordinator"
qdb "${PORT[cb-single]}" bench -c "$ext_load" -c "$probe_schema" -c "$probe_data" >/dev/null
qdb "${PORT[cb-cx]}" bench -c "$ext_load" -c "$probe_schema" \
  -c "SELECT create_distributed_table('p_wallets', 'tenant')" \
  -c "SELECT create_distributed_table('p_journal', 'tenant', colocate_with => 'p_wallets')" \
  -c "SELECT create_distributed_function('p_spend(text, text, numeric)', '\$1', colocate_with => 'p_wallets', force_delegation => true)" \
  -c "SELECT create_distributed_function('p_noop(text)', '\$1', colocate_with => 'p_wallets')" \
  -c "$probe_data" >/dev/null

# ------------------------------------------------------------------ delegation seen
# One call inside a transaction block, with the coordinator logging what it sends: the whole
# call must go to one worker as one statement (no statement of the body runs from here).
sent="$(qdb "${PORT[cb-cx]}" bench -c "SET citus.log_remote_commands = on" -c "SET client_min_messages = log" \
  -c "BEGIN" -c "SELECT p_spend('w7', 'w7', 1)" -c "COMMIT" 2>&1 || true)"
GATES=0
gate() { if [ "$2" = ok ]; then echo "  gate ok   - $1"; else echo "  gate FAIL - $1: $2"; GATES=$((GATES + 1)); fi; }
if grep -q "issuing SELECT .*p_spend('w7'" <<<"$sent" && ! grep -q "issuing .*p_wallets\|issuing .*p_journal" <<<"$sent"; then
  gate "a call of p_spend inside BEGIN ... COMMIT is sent whole to one worker" ok
else
  gate "a call of p_spend inside BEGIN ... COMMIT is sent whole to one worker" "$(grep -i issuing <<<"$sent" | head -n 5)"
fi
sent="$(qdb "${PORT[cb-cx]}" dbench -c "SET citus.log_remote_commands = on" -c "SET client_min_messages = log" \
  -c "BEGIN" -c "SELECT approved FROM credit_authorize(wallet => 'w7', action => 'chat', variant => 'haiku', tenant => 'w7')" \
  -c "COMMIT" 2>&1 || true)"
if grep -q "issuing SELECT .*credit_authorize(" <<<"$sent" && ! grep -q "issuing .*credit_ledger\." <<<"$sent"; then
  gate "a call of credit_authorize with tenant inside BEGIN ... COMMIT is sent whole to one worker" ok
else
  gate "a call of credit_authorize with tenant inside BEGIN ... COMMIT is sent whole to one worker" "$(grep -i 'issuing\|ERROR' <<<"$sent" | head -n 5)"
fi

# ------------------------------------------------------------------ the cells
cat >"$OUT/ext.sql" <<'SQL'
\set w random(1, :nw)
\set q random(1, 2000)
SELECT approved FROM credit_authorize(wallet => 'w' || :w, action => 'chat', quantity => :q, variant => 'haiku');
SQL
cat >"$OUT/ledger.sql" <<'SQL'
\set w random(1, :nw)
\set q random(1, 2000)
SELECT approved FROM credit_authorize(wallet => 'w' || :w, action => 'chat', quantity => :q, variant => 'haiku', tenant => 'w' || :w);
SQL
cp "$OUT/ext.sql" "$OUT/routed.sql"
cat >"$OUT/proto.sql" <<'SQL'
\set w random(1, :nw)
\set q random(1, 2000)
BEGIN;
SELECT p_spend('w' || :w, 'w' || :w, :q);
COMMIT;
SQL
cat >"$OUT/bare.sql" <<'SQL'
\set w random(1, :nw)
\set q random(1, 2000)
SELECT p_spend('w' || :w, 'w' || :w, :q);
SQL
cat >"$OUT/noop.sql" <<'SQL'
\set w random(1, :nw)
SELECT p_noop('w' || :w);
SQL
PEERS=("ext single" "ext citus" "ledger single" "ledger citus" "ledger worker" "routed citus"
       "proto single" "proto citus" "proto worker" "bare single" "bare citus" "noop single" "noop citus")
peer_port() {
  case "$1" in
    *single) echo "${PORT[cb-single]}" ;;
    *citus) echo "${PORT[cb-cx]}" ;;
    *worker) echo "${PORT[cb-w1]}" ;;
  esac
}
# the distributed ledger is database dbench of the Citus nodes
peer_db() {
  case "$1" in
    "ledger citus"|"ledger worker"|"routed citus") echo dbench ;;
    *) echo bench ;;
  esac
}
declare -A TPS COMMITS
for r in $(seq 1 "$ROUNDS"); do
  for p in "${PEERS[@]}"; do
    script="$OUT/${p%% *}.sql"
    qdb "$(peer_port "$p")" "$(peer_db "$p")" -c "CHECKPOINT" >/dev/null
    res="$("$BINDIR/pgbench" -n -M "${PGBENCH_MODE:-prepared}" -h 127.0.0.1 -p "$(peer_port "$p")" -U postgres -c "$CLIENTS" -j 2 \
      -T "$DURATION" -D nw="$WALLETS" -f "$script" "$(peer_db "$p")" 2>&1 || true)"
    tps="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' <<<"$res" | head -n 1)"
    n="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$res")"
    if [ -z "$tps" ]; then echo "$res" | tail -n 5 | sed 's/^/    /'; tps=0; fi
    TPS["$p"]+="$tps "
    COMMITS["$p"]=$(( ${COMMITS["$p"]:-0} + ${n:-0} ))
    log "round $r  $(printf '%-13s' "$p") $(printf '%9.1f' "$tps") tps"
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
declare -A MED
echo
echo "W1 through Citus: $CLIENTS clients, $WALLETS wallets, synchronous_commit on, ${DURATION} s cells, $ROUNDS rounds (median)"
echo "machine: $(nproc) cores shared by the single node, the coordinator and both workers"
printf '%-14s %10s   %s\n' peer tps rounds
for p in "${PEERS[@]}"; do
  MED["$p"]="$(median <<<"${TPS[$p]}")"
  printf '%-14s %10.1f   %s\n' "$p" "${MED[$p]}" "${TPS[$p]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
echo
echo "ratios (same run):"
echo "  ext through the coordinator (ledger local to it) / single node   $(ratio "${MED[ext citus]}" "${MED[ext single]}")"
echo "  ledger distributed, delegated via the coordinator / single node  $(ratio "${MED[ledger citus]}" "${MED[ledger single]}")"
echo "  ledger distributed, delegated from a worker / single node        $(ratio "${MED[ledger worker]}" "${MED[ledger single]}")"
echo "  ledger distributed, no tenant (routed per statement) / single    $(ratio "${MED[routed citus]}" "${MED[ledger single]}")"
echo "  probe delegated / ledger delegated (what the ledger's work costs) $(ratio "${MED[proto citus]}" "${MED[ledger citus]}")"
echo "  probe delegated through the coordinator / probe on one node      $(ratio "${MED[proto citus]}" "${MED[proto single]}")"
echo "  probe delegated from a worker / probe on one node                $(ratio "${MED[proto worker]}" "${MED[proto single]}")"
echo "  probe alone (no transaction block), coordinator / one node       $(ratio "${MED[bare citus]}" "${MED[bare single]}")"
echo "  a function that reads nothing, coordinator / one node            $(ratio "${MED[noop citus]}" "${MED[noop single]}")"
# CPU per call: the machine's cores over the median throughput (every node shares them)
cpu() { awk -v c="$(nproc)" -v t="$1" 'BEGIN {if (t > 0) printf "%.3f", 1000 * c / t; else print "n/a"}'; }
echo
echo "machine time per call (ms: $(nproc) cores / tps; the nodes share the cores, so this is every node's work summed):"
for p in "${PEERS[@]}"; do printf '  %-14s %s\n' "$p" "$(cpu "${MED[$p]}")"; done

# ------------------------------------------------------------------ gates
echo
for p in "${PEERS[@]}"; do
  if [ "${COMMITS[$p]:-0}" -gt 0 ]; then gate "$p committed ${COMMITS[$p]} transactions" ok
  else gate "$p committed transactions" "none"; fi
done
for n in cb-single cb-cx; do
  v="$(qdb "${PORT[$n]}" bench -c "SELECT count(*) FROM credit_verify()")"
  [ "$v" = 0 ] && gate "$n: credit_verify() empty" ok || gate "$n: credit_verify() empty" "$v rows"
  c="$(qdb "${PORT[$n]}" bench -c "SELECT (SELECT sum(balance) FROM p_wallets) + (SELECT coalesce(sum(amount), 0) FROM p_journal) = $WALLETS * 1000000000::numeric")"
  [ "$c" = t ] && gate "$n: probe balances + journal = what was given" ok || gate "$n: probe conservation" "$c"
  c="$(qdb "${PORT[$n]}" bench -c "SELECT count(*) FILTER (WHERE status = 'declined') = 0 AND count(*) >= 1 FROM credit_ledger.authorizations")"
  [ "$c" = t ] && gate "$n: every call of the ledger approved" ok || gate "$n: ledger calls approved" "$c"
done
v="$(qdb "${PORT[cb-cx]}" dbench -c "SELECT count(*) FROM credit_verify()")"
[ "$v" = 0 ] && gate "distributed ledger: credit_verify() empty" ok || gate "distributed ledger: credit_verify() empty" "$v rows"
c="$(qdb "${PORT[cb-cx]}" dbench -c "SELECT count(*) FILTER (WHERE status = 'declined') = 0 AND count(*) >= 1 FROM credit_ledger.authorizations")"
[ "$c" = t ] && gate "distributed ledger: every call approved" ok || gate "distributed ledger: calls approved" "$c"
spread="$(qdb "${PORT[cb-cx]}" dbench -c "SELECT count(DISTINCT s.nodeport) FROM pg_dist_placement p JOIN pg_dist_node s ON s.groupid = p.groupid
  WHERE p.shardid IN (SELECT DISTINCT get_shard_id_for_distribution_column('credit_ledger.journal', tenant) FROM credit_ledger.journal)")"
[ "$spread" = 2 ] && gate "the distributed ledger's journal is on both workers" ok || gate "the distributed ledger's journal is on both workers" "$spread nodes"
spread="$(qdb "${PORT[cb-cx]}" bench -c "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'p_journal'::regclass AND shard_size > 8192")"
[ "$spread" = 2 ] && gate "the probe's journal is on both workers" ok || gate "the probe's journal is on both workers" "$spread nodes"
echo
if [ "$GATES" -eq 0 ]; then echo "citus bench: gates PASS"; else echo "citus bench: $GATES gate(s) FAILED"; exit 1; fi
