#!/usr/bin/env bash
# tests/ops/monitoring.sh — the Prometheus side of issue 23, against the running cluster:
#
#   1. promtool (Debian's `prometheus` package): `check rules` on ops/prometheus/
#      credit_ledger_alerts.yml and `test rules` on its unit tests (each alert fires on the series
#      that should fire it, after its `for`, and not on the look-alikes).
#   2. prometheus-postgres-exporter (Debian's 0.11) started on a loopback port with
#      ops/prometheus/credit_ledger_queries.yaml, connected to a fresh database as a role that holds
#      only the `reader` bundle. After a known workload /metrics is scraped: every documented
#      metric is there with the value the workload implies (numbers checked by hand, as in regress
#      `metrics`), the exporter reports no query error, and a recorded credit_verify() turns the
#      verify check from warn to ok in the next scrape.
#
# Prints details, then `monitoring: N passed, M failed`. The exporter is stopped and the database
# and role dropped at exit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/ops/lib.sh
source "$HERE/lib.sh"
ops_init monitoring

PROM="$OPS_REPO/ops/prometheus"
EXPORTER="${OPS_EXPORTER:-/usr/bin/prometheus-postgres-exporter}"

# ---- 1. the alert rules
if command -v promtool >/dev/null 2>&1; then
  if out="$(promtool check rules "$PROM/credit_ledger_alerts.yml" 2>&1)"; then
    ok "promtool check rules: $(echo "$out" | grep -o '[0-9]* rules found')"
  else
    fail "promtool check rules" "$out"
  fi
  if out="$(cd "$PROM" && promtool test rules credit_ledger_alerts_test.yml 2>&1)"; then
    ok "promtool test rules: every alert fires when it should and only then"
  else
    fail "promtool test rules" "$out"
  fi
else
  fail "promtool is installed" "./setup.sh installs Debian's prometheus package"
fi

# ---- 2. the exporter
if [ ! -x "$EXPORTER" ]; then
  fail "prometheus-postgres-exporter is installed" "./setup.sh installs it ($EXPORTER missing)"
  ops_finish
fi
db="$(ops_new_db mon)"
role="cl_ops_monitor_$$"
q "$db" "CREATE EXTENSION credit_ledger" >/dev/null
q postgres "CREATE ROLE $role LOGIN" >/dev/null
ops_on_exit "${OPS_PSQL[*]} -d postgres -c 'DROP ROLE IF EXISTS $role' >/dev/null 2>&1 || true"
ops_on_exit "${OPS_PSQL[*]} -d $db -c 'DROP OWNED BY $role' >/dev/null 2>&1 || true"
q "$db" "SELECT count(*) FROM credit_ledger_grant('$role', 'reader')" >/dev/null

# the workload of regress `metrics`: credits granted 157, spent 22, refunded 5, expired 7, one
# open hold of 10, 3 approved calls and 1 insufficient_credits; usd granted 10, spent 1.5
"${OPS_PSQL[@]}" -d "$db" >/dev/null <<'SQL'
SELECT credit_asset_define('usd', 2);
SELECT credit_rate_set(action => 'chat', credits => 2);
SELECT credit_rate_set(action => 'image', credits => 0.5, asset => 'usd');
SELECT credit_wallet_create(wallet => 'a');
SELECT credit_grant(wallet => 'a', amount => 150, unit_price => 0.01);
SELECT credit_grant(wallet => 'a', amount => 10, asset => 'usd', unit_price => 1);
SELECT authorization_id AS d1 FROM credit_authorize('a', 'chat', 10) \gset
SELECT credit_authorize('a', 'chat', 100);
SELECT credit_hold('a', 'chat', 5);
SELECT authorization_id AS h2 FROM credit_hold('a', 'chat', 4) \gset
SELECT credit_capture(:h2, 1);
SELECT credit_refund(:d1, 5);
SELECT credit_authorize('a', 'image', 3);
SELECT credit_wallet_create(wallet => 'b');
SELECT credit_grant(wallet => 'b', amount => 7, expires_at => now() + interval '1 day');
UPDATE credit_ledger.grants SET expires_at = now() - interval '1 second', effective_at = now() - interval '1 day'
 WHERE wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'b');
SELECT credit_expire();
SQL

port="" pid=""
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 20000))
  DATA_SOURCE_NAME="host=$PGHOST port=${PGPORT:-5432} user=$role dbname=$db sslmode=disable" \
    "$EXPORTER" --web.listen-address="127.0.0.1:$port" \
    --extend.query-path="$PROM/credit_ledger_queries.yaml" \
    --disable-default-metrics --disable-settings-metrics \
    --no-collector.database --no-collector.bgwriter --log.level=warn \
    >"${OPS_LOG_DIR:-/tmp}/monitoring-exporter.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do
    curl -sf "http://127.0.0.1:$port/metrics" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null && curl -sf "http://127.0.0.1:$port/metrics" >/dev/null 2>&1; then break; fi
  kill "$pid" 2>/dev/null || true
  pid=""
done
if [ -z "$pid" ]; then
  fail "the exporter serves /metrics on loopback" "$(tail -5 "${OPS_LOG_DIR:-/tmp}/monitoring-exporter.log" 2>/dev/null)"
  ops_finish
fi
ops_on_exit "kill $pid 2>/dev/null || true"
ok "the exporter serves /metrics on 127.0.0.1:$port as a role with only the reader bundle"

scrape() { curl -sf "http://127.0.0.1:$port/metrics"; }
# value <metric> <label filter...>: the sample of the one series whose labels contain every filter
value() {
  local m="$1"; shift
  local lines f
  lines="$(printf '%s\n' "$metrics" | grep -E "^$m(\{| )" || true)"
  for f in "$@"; do lines="$(printf '%s\n' "$lines" | grep -F "$f" || true)"; done
  [ "$(printf '%s\n' "$lines" | grep -c . || true)" -eq 1 ] || { echo "<$(printf '%s\n' "$lines" | grep -c . || true) series>"; return; }
  awk '{ printf "%g\n", $NF }' <<<"$lines"
}
expect() { # expect <what> <expected> <metric> <filters...>
  local what="$1" want="$2"; shift 2
  check_eq "$what" "$want" "$(value "$@")"
}

metrics="$(scrape)"
for m in credit_ledger_health_status credit_ledger_health_value credit_ledger_holds_open \
         credit_ledger_holds_credits credit_ledger_calls_last_minute credit_ledger_credits_last_minute \
         credit_ledger_liability_credits credit_ledger_liability_deferred_revenue; do
  if printf '%s\n' "$metrics" | grep -q "^# HELP $m "; then ok "metric $m is exported"; else fail "metric $m is exported" "not in /metrics"; fi
done
expect "pg_up" 1 pg_up
expect "no error in the credit_ledger queries" 0 pg_exporter_last_scrape_error
expect "open holds: 1" 1 credit_ledger_holds_open 'asset="credits"'
expect "credits held: 10" 10 credit_ledger_holds_credits 'asset="credits"'
expect "usd holds: 0" 0 credit_ledger_holds_open 'asset="usd"'
expect "approved calls of the last minute: 3" 3 credit_ledger_calls_last_minute 'asset="credits"' 'outcome="approved"'
expect "insufficient_credits declines: 1" 1 credit_ledger_calls_last_minute 'asset="credits"' 'outcome="insufficient_credits"'
expect "approved usd calls: 1" 1 credit_ledger_calls_last_minute 'asset="usd"' 'outcome="approved"'
expect "credits granted: 157" 157 credit_ledger_credits_last_minute 'asset="credits"' 'movement="granted"'
expect "credits spent: 22" 22 credit_ledger_credits_last_minute 'asset="credits"' 'movement="spent"'
expect "credits refunded: 5" 5 credit_ledger_credits_last_minute 'asset="credits"' 'movement="refunded"'
expect "credits expired: 7" 7 credit_ledger_credits_last_minute 'asset="credits"' 'movement="expired"'
expect "usd spent: 1.5" 1.5 credit_ledger_credits_last_minute 'asset="usd"' 'movement="spent"'
expect "liability: 133 credits" 133 credit_ledger_liability_credits 'asset="credits"'
expect "deferred revenue: 1.33" 1.33 credit_ledger_liability_deferred_revenue 'asset="credits"'
expect "usd liability: 8.5" 8.5 credit_ledger_liability_credits 'asset="usd"'
expect "tick lag: nothing due (0, ok)" 0 credit_ledger_health_status 'check_name="tick_lag_expiry"'
expect "verify never recorded: warn (1)" 1 credit_ledger_health_status 'check_name="verify"'

# a recorded credit_verify() shows in the next scrape
q "$db" "SELECT credit_verify_record()" >/dev/null
metrics="$(scrape)"
expect "verify recorded clean: ok (0)" 0 credit_ledger_health_status 'check_name="verify"'
expect "verify: 0 violations" 0 credit_ledger_health_value 'check_name="verify"'

ops_finish
