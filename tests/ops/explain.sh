#!/usr/bin/env bash
# tests/ops/explain.sh — plans of the reports and of the hot path on a big ledger (1M journal rows).
#
# Against the running cluster in PGHOST/PGPORT/PGUSER (a superuser; the extension's files
# installed). Generates a ledger through the public API only (tests/ops/explain_gen.sql, in
# OPS_EXPLAIN_SESSIONS parallel sessions on disjoint wallets, committing every round): customers
# with debits of several actions/variants and refunds, streaming customers whose holds span many
# small grants (released or captured), a team pool with members, declining wallets. It stops at
# OPS_EXPLAIN_ROWS journal rows (default 1000000) or after OPS_EXPLAIN_BUDGET seconds of
# generation (default 240), whichever comes first, and says how many rows it got (at least
# OPS_EXPLAIN_MIN_ROWS, default 200000, or the test fails). Then ANALYZE and:
#
#   - EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) of reports: usage_daily for one day (all wallets),
#     usage_daily for one wallet and day, declines_daily for one wallet, pool_usage for one
#     member, grant_status for one wallet, credit_balance as of a past instant (the journal walk);
#   - the hot path as it really runs: auto_explain (log_nested_statements, log_analyze,
#     log_buffers, sent to the client as NOTICEs) around credit_authorize, credit_hold,
#     credit_capture, credit_refund, credit_quote and credit_balance on a wallet with history;
#
# asserts that no per-wallet query and no hot-path statement scans the journal sequentially (nor
# grants/authorizations on the hot path), and writes everything to build/explain.txt (override
# with OPS_EXPLAIN_OUT; build/explain-pg<N>.txt on another major version) for the README.
# Prints `explain: N passed, M failed`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/ops/lib.sh
source "$HERE/lib.sh"
ops_init explain

TARGET="${OPS_EXPLAIN_ROWS:-1000000}"
MIN_ROWS="${OPS_EXPLAIN_MIN_ROWS:-200000}"
BUDGET="${OPS_EXPLAIN_BUDGET:-240}"
SESSIONS="${OPS_EXPLAIN_SESSIONS:-$(nproc 2>/dev/null || echo 2)}"
[ "$SESSIONS" -ge 1 ] || SESSIONS=1
[ "$SESSIONS" -le 4 ] || SESSIONS=4
# build/explain.txt for PostgreSQL 15 (the supported version, the README's numbers); other
# versions write build/explain-pg<N>.txt so runs against two versions do not overwrite each other
major="$(( $(q postgres 'SHOW server_version_num') / 10000 ))"
if [ "$major" = 15 ]; then OUT="${OPS_EXPLAIN_OUT:-$OPS_REPO/build/explain.txt}"; else OUT="${OPS_EXPLAIN_OUT:-$OPS_REPO/build/explain-pg$major.txt}"; fi
mkdir -p "$(dirname "$OUT")"
WORK="$(mktemp -d /tmp/cl_ops_explain.XXXXXX)"
ops_on_exit "rm -rf '$WORK'"
FINAL_OUT="$OUT"
OUT="$WORK/explain.txt"      # written here, moved into place at the end (runs may overlap)
# sizes: rows per round ~ wallets/2 + stream_wallets * 2 * lots; the setup makes ~ 3 * wallets +
# lots * stream_wallets grants
WALLETS="${OPS_EXPLAIN_WALLETS:-2000}"
STREAMS="${OPS_EXPLAIN_STREAM_WALLETS:-500}"
LOTS="${OPS_EXPLAIN_LOTS:-30}"
MEMBERS="${OPS_EXPLAIN_MEMBERS:-40}"

db="$(ops_new_db big)"
q "$db" "CREATE EXTENSION credit_ledger" >/dev/null
qf "$db" /dev/stdin >/dev/null <<'SQL'
SELECT credit_rate_set(action => 'chat', variant => 'opus',  credits => 15,   unit => '1k tokens', vendor_cost => 0.075);
SELECT credit_rate_set(action => 'chat', variant => 'haiku', credits => 1,    unit => '1k tokens', vendor_cost => 0.004);
SELECT credit_rate_set(action => 'chat', variant => 'flash', credits => 0.5,  unit => '1k tokens', vendor_cost => 0.002);
SELECT credit_rate_set(action => 'chat', variant => 'opus',  credits => 12,   unit => '1k tokens', vendor_cost => 0.075, rate_card => 'pro');
SELECT credit_rate_set(action => 'image.generate', credits => 40, vendor_cost => 0.2);
SELECT credit_rate_set(action => 'embed', credits => 0.01, unit => 'document', vendor_cost => 0.0001);
SQL

# ---------------------------------------------------------------- generate
ops_log "generating up to $TARGET journal rows in $SESSIONS sessions (budget ${BUDGET}s)"
t0=$SECONDS
deadline="$(q "$db" "SELECT (clock_timestamp() + interval '$BUDGET seconds')::text")"
pids=()
for (( s = 0; s < SESSIONS; s++ )); do
  "${OPS_PSQL[@]}" -d "$db" \
    -c "SET ops.session = $s" -c "SET ops.sessions = $SESSIONS" -c "SET ops.wallets = $WALLETS" \
    -c "SET ops.stream_wallets = $STREAMS" -c "SET ops.lots = $LOTS" -c "SET ops.members = $MEMBERS" \
    -c "SET ops.target = $TARGET" -c "SET ops.deadline = '$deadline'" -c "SET client_min_messages = notice" \
    -f "$HERE/explain_gen.sql" >"$WORK/gen$s.out" 2>&1 &
  pids+=("$!")
done
ops_on_exit "kill ${pids[*]} 2>/dev/null"
gen_ok=1
for (( s = 0; s < SESSIONS; s++ )); do
  if ! wait "${pids[$s]}"; then gen_ok=0; fi
done
gen_secs=$((SECONDS - t0))
rows="$(q "$db" 'SELECT count(*) FROM credit_ledger.journal')"
auths="$(q "$db" 'SELECT count(*) FROM credit_ledger.authorizations')"
grants="$(q "$db" 'SELECT count(*) FROM credit_ledger.grants')"
nwallets="$(q "$db" 'SELECT count(*) FROM credit_ledger.wallets')"
rate=$(( rows / (gen_secs > 0 ? gen_secs : 1) ))
if [ "$gen_ok" = 1 ]; then
  ok "generated $rows journal rows, $auths authorizations, $grants grants, $nwallets wallets in ${gen_secs}s ($rate rows/s, $SESSIONS sessions)"
else
  fail "generator sessions" "$(tail -n 20 "$WORK"/gen*.out)"
fi
grep -h 'finished after' "$WORK"/gen*.out | sed 's/^.*NOTICE: */  /' || true
if [ "$rows" -ge "$TARGET" ]; then
  ok "journal reached the target of $TARGET rows"
  size_note="$rows journal rows"
elif [ "$rows" -ge "$MIN_ROWS" ]; then
  ok "journal has $rows rows (>= $MIN_ROWS; the ${BUDGET}s budget ran out before $TARGET)"
  size_note="$rows journal rows (NOT the $TARGET target: the ${BUDGET}s generation budget ran out at $rate rows/s)"
  echo "NOTE: plans measured at $rows journal rows, not $TARGET (generation ran out of its ${BUDGET}s budget)"
else
  fail "journal has at least $MIN_ROWS rows" "only $rows after ${gen_secs}s"
  size_note="$rows journal rows (too few)"
fi
t1=$SECONDS
q "$db" "VACUUM ANALYZE" >/dev/null
ok "VACUUM ANALYZE ($((SECONDS - t1))s)"

# ---------------------------------------------------------------- explain the reports
busy_wallet="w42"          # a customer: debits of every action and variant, refunds
stream_wallet="s7"         # a streaming customer: 30 grants, thousands of hold/release entries
member="team.m7"
broke="broke5"
day="$(q "$db" "SELECT (now() AT TIME ZONE 'UTC')::date")"
past="$(q "$db" "SELECT (min(at) + (max(at) - min(at)) / 2)::text FROM credit_ledger.journal WHERE wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = '$stream_wallet')")"
stats="$(q "$db" "SELECT 'wallet $busy_wallet: ' || (SELECT count(*) FROM credit_ledger.journal j JOIN credit_ledger.wallets w ON w.id = j.wallet_id WHERE w.wallet = '$busy_wallet') || ' journal rows, ' || (SELECT count(*) FROM credit_ledger.authorizations a JOIN credit_ledger.wallets w ON w.id = a.wallet_id WHERE w.wallet = '$busy_wallet') || ' authorizations; wallet $stream_wallet: ' || (SELECT count(*) FROM credit_ledger.journal j JOIN credit_ledger.wallets w ON w.id = j.wallet_id WHERE w.wallet = '$stream_wallet') || ' journal rows; member $member: ' || (SELECT count(*) FROM credit_ledger.journal j JOIN credit_ledger.wallets w ON w.id = j.member_id WHERE w.wallet = '$member' AND j.wallet_id <> j.member_id) || ' pool draws'")"

{
  echo "# credit_ledger EXPLAIN at scale — tests/ops/explain.sh"
  echo "# $(date -u '+%F %T') UTC; $(q "$db" 'SELECT version()')"
  echo "# machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//'))"
  echo "# ledger: $size_note, $auths authorizations, $grants grants, $nwallets wallets; generated in ${gen_secs}s through the API ($SESSIONS sessions)"
  echo "# $stats"
  echo "# extension $(q "$db" "SELECT extversion FROM pg_extension WHERE extname = 'credit_ledger'")"
} >"$OUT"

# explain_report <title> <per-wallet: yes|no> <sql>
explain_report() {
  local title="$1" per_wallet="$2" sql="$3" f
  f="$WORK/plan.$RANDOM"
  {
    echo
    echo "## $title"
    echo "$sql"
    echo
  } >>"$OUT"
  if ! "${OPS_PSQL[@]}" -d "$db" -At -c "SET statement_timeout = '120s'" -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) $sql" >"$f" 2>&1; then
    cat "$f" >>"$OUT"
    fail "EXPLAIN $title" "$(head -n 5 "$f")"
    return 0
  fi
  cat "$f" >>"$OUT"
  local seqs time
  seqs="$(grep -oE 'Seq Scan on [a-z_]+' "$f" | sort | uniq -c | awk '{print $5 "(x" $1 ")"}' | paste -sd' ' - || true)"
  time="$(grep -oE 'Execution Time: [0-9.]+ ms' "$f" | grep -oE '[0-9.]+ ms' || true)"
  echo "  $title: $time; index scans: $(grep -oE '(Index|Index Only|Bitmap Index) Scan (using|on) [a-z_]+' "$f" | awk '{print $NF}' | sort -u | paste -sd' ' -); seq scans: ${seqs:-none}"
  if [ "$per_wallet" = yes ]; then
    if grep -qE 'Seq Scan on journal\b' "$f"; then
      fail "$title: no Seq Scan on credit_ledger.journal" "$(grep -E 'Seq Scan on journal' "$f")"
    else
      ok "$title: no Seq Scan on credit_ledger.journal ($time)"
    fi
    if grep -qE 'Seq Scan on (grants|authorizations)\b' "$f"; then
      echo "  WARN: $title reads all of $(grep -oE 'Seq Scan on (grants|authorizations)' "$f" | awk '{print $4}' | sort -u | paste -sd, -) for one wallet (no index on wallet_id covering it)"
    fi
  fi
}

echo "report plans ($size_note):"
explain_report "usage_daily, one day (all wallets)" no \
  "SELECT * FROM credit_ledger.usage_daily WHERE day = '$day' ORDER BY credits DESC LIMIT 20"
explain_report "usage_daily, one wallet and day" yes \
  "SELECT * FROM credit_ledger.usage_daily WHERE wallet = '$busy_wallet' AND day = '$day'"
explain_report "declines_daily, one wallet" yes \
  "SELECT * FROM credit_ledger.declines_daily WHERE wallet = '$broke'"
explain_report "pool_usage, one member" yes \
  "SELECT * FROM credit_ledger.pool_usage WHERE member = '$member'"
explain_report "grant_status, one wallet" yes \
  "SELECT * FROM credit_ledger.grant_status WHERE wallet = '$stream_wallet'"
explain_report "wallet_balances, one wallet" yes \
  "SELECT * FROM credit_ledger.wallet_balances WHERE wallet = '$busy_wallet'"

# credit_balance(as_of) walks the journal inside a function: explain its statements with auto_explain
# ---------------------------------------------------------------- the hot path, as it runs
hot_sql() {
  cat <<SQL
\set ON_ERROR_STOP 1
LOAD 'auto_explain';
SET auto_explain.log_min_duration = -1;
-- warm up: prepare this backend's statements (the first call also plans them)
SELECT approved FROM credit_authorize(wallet => '$busy_wallet', action => 'chat', variant => 'haiku');
SELECT credit_release(authorization_id) IS NOT NULL FROM credit_hold(wallet => '$busy_wallet', action => 'chat', variant => 'haiku', quantity => 2);
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_timing = on;
SET auto_explain.log_triggers = on;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
SET auto_explain.log_min_duration = 0;
\echo ### credit_authorize(wallet => '$busy_wallet', action => 'chat', variant => 'haiku', quantity => 2)
SELECT approved FROM credit_authorize(wallet => '$busy_wallet', action => 'chat', variant => 'haiku', quantity => 2);
\echo ### credit_authorize, decline (broke wallet)
SELECT approved FROM credit_authorize(wallet => '$broke', action => 'chat', variant => 'opus');
\echo ### credit_authorize, pool member ($member)
SELECT approved FROM credit_authorize(wallet => '$member', action => 'chat', variant => 'haiku');
\echo ### credit_hold(wallet => 's7', quantity => 30) spanning lots
SELECT authorization_id AS hold_id FROM credit_hold(wallet => 's7', action => 'chat', variant => 'haiku', quantity => 30) \gset
\echo ### credit_capture(hold, quantity => 12)
SELECT status FROM credit_capture(authorization_id => :hold_id, quantity => 12);
\echo ### credit_refund of a debit
SELECT authorization_id AS auth_id FROM credit_authorize(wallet => '$busy_wallet', action => 'image.generate') \gset
SELECT amount FROM credit_refund(authorization_id => :auth_id, amount => 5);
\echo ### credit_quote
SELECT approved FROM credit_quote(wallet => '$busy_wallet', action => 'chat', variant => 'opus', quantity => 3);
\echo ### credit_balance (now)
SELECT credit_balance('$busy_wallet');
SQL
}
asof_sql() {
  cat <<SQL
\set ON_ERROR_STOP 1
LOAD 'auto_explain';
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
SET auto_explain.log_min_duration = 0;
\echo ### credit_balance($stream_wallet, as_of => $past): the history of one wallet, from the journal
SELECT credit_balance('$stream_wallet', as_of => '$past');
SQL
}
hot_out="$WORK/hot.txt"
if hot_sql | "${OPS_PSQL[@]}" -d "$db" -At >"$hot_out" 2>&1; then
  ok "hot path calls ran under auto_explain"
else
  fail "hot path calls ran under auto_explain" "$(tail -n 20 "$hot_out")"
fi
{
  echo
  echo "## hot path: every statement the functions run (auto_explain: log_nested_statements, log_analyze, log_buffers)"
  echo "# (costs are shown: auto_explain has no COSTS OFF)"
  sed -e 's/^psql:[^ ]* NOTICE:  /NOTICE:  /' "$hot_out"
} >>"$OUT"
echo "hot path:"
# one line per call: its statements' scans
awk '
  /^### / { if (name != "") print_call(); name = substr($0, 5); nstmt = 0; delete scans; next }
  /NOTICE:  duration:/ { nstmt++ }
  /(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan) / {
    s = $0; sub(/^.*-> */, "", s); sub(/^ */, "", s); sub(/  \(.*$/, "", s); sub(/ \(cost.*$/, "", s)
    scans[s]++
  }
  function print_call(  k, out) {
    out = ""
    for (k in scans) out = out (out == "" ? "" : "; ") k
    printf "  %s: %d statements; %s\n", name, nstmt, out
  }
  END { if (name != "") print_call() }
' "$hot_out"
n_stmts="$(grep -c 'NOTICE:  duration:' "$hot_out" || true)"
if [ "$n_stmts" -gt 10 ]; then ok "auto_explain captured $n_stmts hot-path statement plans"; else fail "auto_explain captured hot-path plans" "only $n_stmts"; fi
bad="$(grep -E 'Seq Scan on (journal|grants|authorizations)\b' "$hot_out" || true)"
if [ -z "$bad" ]; then
  ok "hot path: no Seq Scan on journal, grants or authorizations"
else
  fail "hot path: no Seq Scan on journal, grants or authorizations" "$(printf '%s\n' "$bad" | sort | uniq -c)"
fi
other="$(grep -oE 'Seq Scan on [a-z_]+' "$hot_out" | sort | uniq -c | awk '{print $5 "(x" $1 ")"}' | paste -sd' ' - || true)"
echo "  sequential scans on the hot path (small lookup tables, chosen by their size): ${other:-none}"

# credit_balance(as_of): a per-wallet history query inside a function
asof_out="$WORK/asof.txt"
asof_sql | "${OPS_PSQL[@]}" -d "$db" -At >"$asof_out" 2>&1 || fail "credit_balance(as_of) under auto_explain" "$(tail -n 20 "$asof_out")"
{
  echo
  echo "## credit_balance(wallet, as_of): the statements it runs (auto_explain)"
  sed -e 's/^psql:[^ ]* NOTICE:  /NOTICE:  /' "$asof_out"
} >>"$OUT"
asof_time="$(grep -oE 'duration: [0-9.]+ ms' "$asof_out" | tail -n 1 || true)"
echo "  credit_balance(as_of): $asof_time; seq scans: $(grep -oE 'Seq Scan on [a-z_]+' "$asof_out" | awk '{print $4}' | sort | uniq -c | awk '{print $2 "(x" $1 ")"}' | paste -sd' ' -)"
if grep -qE 'Seq Scan on journal\b' "$asof_out"; then
  fail "credit_balance(as_of): no Seq Scan on credit_ledger.journal" "$(grep -E 'Seq Scan on journal' "$asof_out")"
else
  ok "credit_balance(as_of): no Seq Scan on credit_ledger.journal"
fi
if grep -qE 'Seq Scan on (grants|authorizations)\b' "$asof_out"; then
  echo "  WARN: credit_balance(as_of) reads all of $(grep -oE 'Seq Scan on (grants|authorizations)' "$asof_out" | awk '{print $4}' | sort -u | paste -sd, -) for one wallet"
fi

# explained <out file> <what> <sql>: run sql with every statement it runs explained (auto_explain:
# analyze, buffers, nested statements) into the out file; a failure is a test failure
explained() {
  { cat <<'SQL'
\set ON_ERROR_STOP 1
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_analyze = on;
SET auto_explain.log_buffers = on;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
SQL
    printf '%s\n' "$3"
  } | "${OPS_PSQL[@]}" -d "$db" -At >"$1" 2>&1 || fail "$2 under auto_explain" "$(tail -n 20 "$1")"
}
# credit_health() (since 0.6.0): cheap enough for every scrape: its statements, under
# auto_explain, read no history (no Seq Scan on the journal, grants or authorizations)
health_out="$WORK/health.txt"
explained "$health_out" "credit_health()" "SELECT check_name || ' ' || status FROM credit_health();"
{
  echo
  echo "## credit_health(): the statements it runs (auto_explain)"
  sed -e 's/^psql:[^ ]* NOTICE:  /NOTICE:  /' "$health_out"
} >>"$OUT"
health_time="$(grep -oE 'duration: [0-9.]+ ms' "$health_out" | tail -n 1 || true)"
echo "  credit_health(): $health_time; checks: $(grep -cE '^[a-z_:]+ (ok|warn|fail)$' "$health_out"); seq scans: $(grep -oE 'Seq Scan on [a-z_]+' "$health_out" | awk '{print $4}' | sort | uniq -c | awk '{print $2 "(x" $1 ")"}' | paste -sd' ' -)"
if grep -qE 'Seq Scan on (journal|grants|authorizations)\b' "$health_out"; then
  fail "credit_health(): no Seq Scan on the journal, grants or authorizations" "$(grep -E 'Seq Scan on (journal|grants|authorizations)' "$health_out" | sort | uniq -c)"
elif [ "$(grep -cE '^[a-z_:]+ (ok|warn|fail)$' "$health_out")" -lt 6 ]; then
  fail "credit_health() returned its checks" "$(tail -n 20 "$health_out")"
else
  ok "credit_health(): no Seq Scan on the journal, grants or authorizations ($health_time)"
fi

# credit_metrics() (since 0.8.0, the exporter's gauges): holds read only the open holds; calls
# and credits read the last minute through BRIN indexes. This generated ledger is minutes old,
# so its last minute may be a large part of it and a sequential scan the right plan there: those
# two are reported (with the window's size), not asserted.
metrics_out="$WORK/metrics.txt"
explained "$metrics_out" "credit_metrics()" "\\echo ### holds
SELECT count(*) FROM credit_metrics('holds');
\\echo ### calls
SELECT count(*) FROM credit_metrics('calls');
\\echo ### credits
SELECT count(*) FROM credit_metrics('credits');"
{
  echo
  echo "## credit_metrics(part): the statements it runs (auto_explain)"
  sed -e 's/^psql:[^ ]* NOTICE:  /NOTICE:  /' "$metrics_out"
} >>"$OUT"
window="$(q "$db" "SELECT count(*) FROM credit_ledger.journal WHERE at > now() - interval '1 minute'")"
# the scans a part ran (its plan holds every part; the others are "never executed")
part_scans() {
  awk -v p="### $1" '$0 == p {on = 1; next} /^### / {on = 0} on' "$metrics_out" | grep -v 'never executed' || true
}
for part in holds calls credits; do
  seg="$(part_scans "$part")"
  echo "  credit_metrics('$part'): $(grep -oE 'duration: [0-9.]+ ms' <<<"$seg" | tail -n 1); scans: $(grep -oE '(Seq Scan on|Bitmap Index Scan on|Index Scan using|Index Only Scan using) [a-z_]+' <<<"$seg" | sort -u | paste -sd',' - | sed 's/,/, /g')"
done
echo "  (journal rows of the last minute now: $window of $rows)"
holds_seg="$(part_scans holds)"
if grep -qE 'Seq Scan on authorizations\b' <<<"$holds_seg"; then
  fail "credit_metrics('holds'): no Seq Scan on authorizations" "$(grep -E 'Seq Scan on authorizations' <<<"$holds_seg")"
else
  ok "credit_metrics('holds'): reads the open holds only (no Seq Scan on authorizations)"
fi

t2=$SECONDS
nv="$(q "$db" "SET statement_timeout = '300s'; SELECT count(*) FROM credit_verify()" 2>&1 | tail -n 1)"
check_eq "credit_verify() empty on the big ledger ($((SECONDS - t2))s)" "0" "$nv"

cp "$OUT" "$FINAL_OUT.tmp.$$" && mv -f "$FINAL_OUT.tmp.$$" "$FINAL_OUT"
echo "EXPLAIN output written to $FINAL_OUT ($(wc -l <"$FINAL_OUT") lines)"
ops_finish
