#!/usr/bin/env bash
# tests/ops/dump_restore.sh — a populated ledger survives pg_dump / pg_restore.
#
# Against the running cluster in PGHOST/PGPORT/PGUSER (a superuser; the extension's files
# installed). Builds a realistic ledger (tests/ops/fixture.sql: versioned rates, a rate card,
# a team pool with a pool-limited member, grants of several categories with expiry, approved and
# declined authorizations of every reason, holds captured/released/expired/open, refunds, an
# allowance, app tables billed by credit_usage_trigger), then:
#
#   1. pg_dump -Fc + pg_restore into an empty database: every ledger row, every sequence, every
#      balance, every report and credit_verify() are identical (tests/ops/snapshot.sql, diffed);
#      the app rows were not billed again (the triggers are created after the data); the next
#      credit_authorize gets the same id in both databases, after the old maximum; the usage
#      trigger bills new rows; the journal is still append-only.
#   2. the DBA's other route, pg_restore --schema-only then a --data-only dump restored with the
#      triggers enabled: the usage triggers fire on every restored app row, and still nothing is
#      billed twice (rows carrying an authorization id are skipped, rows with an idempotency key
#      replay their first authorization).
#   3. the extension installed in its own schema (CREATE EXTENSION ... SCHEMA billing): the same
#      round trip, restored into billing, the app's trigger still bills.
#   4. what a user changed on the rows CREATE EXTENSION makes (the asset `credits`, the rate card
#      `default`, kept out of the dump by pg_extension_config_dump filters) survives too.
#
# Prints details, then `dump_restore: N passed, M failed`; exit status 0 only without failures.
# Creates databases cl_ops_dump_restore_* and drops them at exit (OPS_KEEP=1 keeps them).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/ops/lib.sh
source "$HERE/lib.sh"
ops_init dump_restore

BIN="$(ops_bindir)"
WORK="$(mktemp -d /tmp/cl_ops_dump.XXXXXX)"
ops_on_exit "rm -rf '$WORK'"

app_tables_md5() {
  q "$1" "SELECT md5(string_agg(x, E'\n' ORDER BY x)) FROM (
            SELECT 'llm_calls ' || t::text AS x FROM public.llm_calls t
            UNION ALL SELECT 'image_jobs ' || t::text FROM public.image_jobs t
            UNION ALL SELECT 'ops_holds ' || t::text FROM public.ops_holds t) s"
}
journal_line() { q "$1" "SELECT count(*) || ' rows, sum(amount) ' || coalesce(sum(amount), 0) || ', sum(held) ' || coalesce(sum(held), 0) || ', md5 ' || md5(coalesce(string_agg(j::text, E'\n' ORDER BY j.id), '')) FROM credit_ledger.journal j"; }
auth_line() { q "$1" "SELECT count(*) || ' rows, max id ' || max(id) || ', md5 ' || md5(string_agg(a::text, E'\n' ORDER BY a.id)) FROM credit_ledger.authorizations a"; }
balances() { grep '^balance|' "$1" || true; }

# ---------------------------------------------------------------- the source ledger
src="$(ops_new_db src)"
ops_log "filling $src"
q "$src" "CREATE EXTENSION credit_ledger" >/dev/null
qf "$src" "$OPS_DIR/fixture.sql" >"$WORK/fixture.out"
ops_ext_snapshot "$src" "$WORK/src.snap"
check_eq "source ledger is healthy (credit_verify() empty)" "verify.rows|0" "$(grep '^verify.rows|' "$WORK/src.snap")"
echo "source: journal $(journal_line "$src")"
echo "source: authorizations $(auth_line "$src")"
echo "source: $(grep -c '^balance|' "$WORK/src.snap") wallet x asset balances, $(q "$src" 'SELECT count(*) FROM public.llm_calls') billed llm_calls rows"

# ---------------------------------------------------------------- 1. pg_dump -Fc / pg_restore
# (pg_dump warns that wallets references itself (parent_id): the extension's tables are loaded
# into existing tables with their foreign keys, in dependency order; members follow their team)
"$BIN/pg_dump" -Fc -d "$src" -f "$WORK/full.dump" 2>"$WORK/dump.err" || { cat "$WORK/dump.err" >&2; exit 1; }
ok "pg_dump -Fc of the populated database ($(stat -c %s "$WORK/full.dump") bytes)"
# what the archive holds for the extension (its config tables' data and sequence values)
"$BIN/pg_restore" -l "$WORK/full.dump" | grep -E 'TABLE DATA credit_ledger|SEQUENCE SET credit_ledger|EXTENSION' \
  | sed 's/^[0-9]*; [0-9]* [0-9]* /  archive: /' || true

dst="$(ops_new_db restored)"
if "$BIN/pg_restore" --exit-on-error -d "$dst" "$WORK/full.dump" 2>"$WORK/restore.err"; then
  ok "pg_restore into an empty database"
else
  fail "pg_restore into an empty database" "$(head -n 20 "$WORK/restore.err")"
fi
ops_extension_version() { q "$1" "SELECT extversion FROM pg_extension WHERE extname = 'credit_ledger'"; }
check_eq "restored extension version equals the source's" "$(ops_extension_version "$src")" "$(ops_extension_version "$dst")"

# snapshot right after the restore, before anything runs in the restored database
ops_ext_snapshot "$dst" "$WORK/dst.snap"
check_eq "journal identical (count, sums, md5 of the ordered rows)" "$(journal_line "$src")" "$(journal_line "$dst")"
check_eq "authorizations identical" "$(auth_line "$src")" "$(auth_line "$dst")"
check_eq "credit_balance identical for every wallet and asset" "$(balances "$WORK/src.snap")" "$(balances "$WORK/dst.snap")"
check_eq "sequences identical" "$(grep '^sequence|' "$WORK/src.snap")" "$(grep '^sequence|' "$WORK/dst.snap")"
check_diff "every ledger table, balance, report and check identical (snapshot diff)" "$WORK/src.snap" "$WORK/dst.snap"
check_eq "app tables restored unchanged" "$(app_tables_md5 "$src")" "$(app_tables_md5 "$dst")"
check_eq "restored app rows were not billed again (no authorization from the restore)" \
  "$(q "$src" "SELECT count(*) FROM credit_ledger.authorizations WHERE metadata ? 'table'")" \
  "$(q "$dst" "SELECT count(*) FROM credit_ledger.authorizations WHERE metadata ? 'table'")"
check_eq "credit_verify() empty in the restored database" "0" "$(q "$dst" 'SELECT count(*) FROM credit_verify()')"
check_eq "usage triggers restored" "bill|image_jobs
bill|llm_calls" "$(q "$dst" "SELECT tgname, tgrelid::regclass FROM pg_trigger WHERE tgfoid = 'credit_usage_trigger'::regproc ORDER BY 2::text")"

# the next authorization: same id in both databases, after the old maximum
max_before="$(q "$dst" 'SELECT max(id) FROM credit_ledger.authorizations')"
next_src="$(q "$src" "SELECT authorization_id || '|' || approved || '|' || cost || '|' || balance FROM credit_authorize(wallet => 'cust_2', action => 'chat', variant => 'opus', quantity => 1, idempotency_key => 'after-restore')")"
next_dst="$(q "$dst" "SELECT authorization_id || '|' || approved || '|' || cost || '|' || balance FROM credit_authorize(wallet => 'cust_2', action => 'chat', variant => 'opus', quantity => 1, idempotency_key => 'after-restore')")"
check_eq "next credit_authorize after restore: same id, cost and balance as in the source" "$next_src" "$next_dst"
if [ "${next_dst%%|*}" -gt "$max_before" ] && [ "$(cut -d'|' -f2 <<<"$next_dst")" = true ]; then
  ok "next authorization id ${next_dst%%|*} continues after the restored maximum $max_before, approved"
else
  fail "next authorization continues after the restored maximum" "max before $max_before, got $next_dst"
fi
grant_src="$(q "$src" "SELECT id FROM credit_grant(wallet => 'cust_5', amount => 10, idempotency_key => 'after-restore')")"
grant_dst="$(q "$dst" "SELECT id FROM credit_grant(wallet => 'cust_5', amount => 10, idempotency_key => 'after-restore')")"
check_eq "next credit_grant after restore gets the same id as in the source" "$grant_src" "$grant_dst"
check_eq "an idempotency key used before the dump still replays after the restore" \
  "$(q "$src" "SELECT authorization_id || '|' || cost FROM credit_authorize(wallet => 'cust_1', action => 'chat', variant => 'opus', quantity => 2.5, idempotency_key => 'req-1')")" \
  "$(q "$dst" "SELECT authorization_id || '|' || cost FROM credit_authorize(wallet => 'cust_1', action => 'chat', variant => 'opus', quantity => 2.5, idempotency_key => 'req-1')")"
hold_dst="$(q "$dst" "SELECT status || '|' || cost FROM credit_capture(authorization_id => (SELECT id FROM public.ops_holds WHERE name = 'open'))")"
check_eq "a hold left open in the dump can be captured after the restore" "captured|40" "$hold_dst"
# a pool with lanes (issue 17): its slices, lanes and hints came back; spends and a capture work
lanes_q="SELECT credit_wallet_lanes('team_l') || '|' || (SELECT count(*) FROM credit_ledger.lanes l JOIN credit_ledger.wallets w ON w.id = l.wallet_id WHERE w.wallet = 'team_l')
           || '|' || (SELECT bool_and(l.free = coalesce((SELECT sum(g.remaining - g.held) FROM credit_ledger.grants g
                        WHERE g.wallet_id = l.wallet_id AND g.asset = l.asset AND g.lane = l.lane AND g.live
                          AND (g.expires_at IS NULL OR g.expires_at > now())), 0)) FROM credit_ledger.lanes l)"
check_eq "a pool with lanes is restored with its lanes and exact hints" "$(q "$src" "$lanes_q")" "$(q "$dst" "$lanes_q")"
check_eq "a member of the pool with lanes spends after the restore as in the source" \
  "$(q "$src" "SELECT approved || '|' || cost FROM credit_authorize(wallet => 'team_l.m1', action => 'chat', variant => 'opus')")" \
  "$(q "$dst" "SELECT approved || '|' || cost FROM credit_authorize(wallet => 'team_l.m1', action => 'chat', variant => 'opus')")"
check_eq "a hold on the pool with lanes left open in the dump is captured after the restore" "captured" \
  "$(q "$dst" "SELECT status FROM credit_capture(authorization_id => (SELECT id FROM public.ops_holds WHERE name = 'lanes_open'))")"
# a capped wallet with lanes (its cap sliced over the lanes, 0.10.0): the room of every lane came
# back, so the open hold's release and new calls fill the cap as in the source (40 spent, 40
# held of 200: after the release, exactly four calls of 40)
release_q="SELECT status FROM credit_release(authorization_id => (SELECT id FROM public.ops_holds WHERE name = 'capped_open'))"
# (one key each: a LATERAL call without one would be run once and its row repeated)
capped_q="SELECT count(*) FILTER (WHERE x.approved) || '|' || count(*) FILTER (WHERE x.reason = 'spend_cap_reached')
            FROM generate_series(1, 5) i,
                 LATERAL credit_authorize(wallet => 'capped_l', action => 'image.generate', idempotency_key => 'capped-after-' || i) x"
check_eq "a capped wallet with lanes fills its cap after the restore as in the source" \
  "released|4|1/released|4|1" "$(q "$src" "$release_q")|$(q "$src" "$capped_q")/$(q "$dst" "$release_q")|$(q "$dst" "$capped_q")"
# a limited member (0.11.0): its rooms came back, so the open hold's release and new calls fill
# its pool limit as in the source (40 drawn, 40 held of 200: after the release, exactly four
# calls of 40)
lim_release_q="SELECT status FROM credit_release(authorization_id => (SELECT id FROM public.ops_holds WHERE name = 'limited_open'))"
lim_q="SELECT count(*) FILTER (WHERE x.approved) || '|' || count(*) FILTER (WHERE x.reason = 'pool_limit_reached')
         FROM generate_series(1, 5) i,
              LATERAL credit_authorize(wallet => 'team_l.lim', action => 'image.generate', idempotency_key => 'lim-after-' || i) x"
check_eq "a limited member fills its pool limit after the restore as in the source" \
  "released|4|1/released|4|1" "$(q "$src" "$lim_release_q")|$(q "$src" "$lim_q")/$(q "$dst" "$lim_release_q")|$(q "$dst" "$lim_q")"
check_eq "credit_verify() empty after the limited member's calls" "0/0" \
  "$(q "$src" 'SELECT count(*) FROM credit_verify()')/$(q "$dst" 'SELECT count(*) FROM credit_verify()')"
# volume tiers and fair use (0.8.0): the counters came back, so captures and new calls are
# priced and admitted exactly as in the source (hand-checked: tier_a is at 15 units with a
# hold of 10 open, fair_a has used 2 + 3 held of 50)
both() { echo "$(q "$src" "$1")/$(q "$dst" "$1")"; }
cap="SELECT status || '|' || captured FROM credit_capture(authorization_id => (SELECT id FROM public.ops_holds WHERE name = '%s'))"
check_eq "a tiered hold is captured after the restore from the restored position (5 x 2 + 5 x 1.5)" \
  "captured|17.5/captured|17.5" "$(both "$(printf "$cap" tier_open)")"
check_eq "a tiered call after the restore is priced from the restored position (10 x 1.5)" \
  "15/15" "$(both "SELECT cost FROM credit_authorize('tier_a', 'embed.bulk', 10)")"
check_eq "a fair-use hold is captured after the restore" "captured|3/captured|3" "$(both "$(printf "$cap" fair_open)")"
check_eq "a fair-use call after the restore sees the restored fair use (50 > 45 left)" \
  "false|fair_use_exceeded/false|fair_use_exceeded" \
  "$(both "SELECT approved || '|' || reason FROM credit_authorize('fair_a', 'chat', 50, 'haiku')")"

# the usage trigger still bills new rows in the restored database
j0="$(q "$dst" 'SELECT count(*) FROM credit_ledger.journal')"
q "$dst" "INSERT INTO public.llm_calls (customer_id, kind, model, tokens, request_id) VALUES ('cust_1', 'chat', 'haiku', 1, 'r-after-restore')" >/dev/null
row="$(q "$dst" "SELECT (auth_id IS NOT NULL) || '|' || (SELECT status FROM credit_ledger.authorizations a WHERE a.id = l.auth_id) FROM public.llm_calls l WHERE request_id = 'r-after-restore'")"
j1="$(q "$dst" 'SELECT count(*) FROM credit_ledger.journal')"
check_eq "usage trigger bills a new row after the restore" "true|approved" "$row"
if [ "$j1" -gt "$j0" ]; then ok "the new usage row wrote journal entries ($j0 -> $j1)"; else fail "the new usage row wrote journal entries" "$j0 -> $j1"; fi
check_sqlstate "journal still append-only after the restore (UPDATE)" 42501 "$dst" "UPDATE credit_ledger.journal SET amount = 0 WHERE id = 1"
check_sqlstate "journal still append-only after the restore (DELETE)" 42501 "$dst" "DELETE FROM credit_ledger.journal WHERE id = 1"
check_eq "credit_verify() empty in both after the extra calls" "0|0" \
  "$(q "$src" 'SELECT count(*) FROM credit_verify()')|$(q "$dst" 'SELECT count(*) FROM credit_verify()')"

# ---------------------------------------------------------------- 2. schema, then data with triggers on
# Reset the comparison point: a fresh data-only dump of the (now changed) source.
ops_ext_snapshot "$src" "$WORK/src2.snap"
"$BIN/pg_dump" -Fc --data-only -d "$src" -f "$WORK/data.dump" 2>"$WORK/dump2.err" \
  || { cat "$WORK/dump2.err" >&2; fail "pg_dump --data-only"; }
two="$(ops_new_db twostep)"
if "$BIN/pg_restore" --exit-on-error --schema-only -d "$two" "$WORK/full.dump" 2>"$WORK/restore2.err" \
   && "$BIN/pg_restore" --exit-on-error --data-only -d "$two" "$WORK/data.dump" 2>>"$WORK/restore2.err"; then
  ok "pg_restore --schema-only, then a --data-only dump with triggers enabled"
else
  fail "pg_restore --schema-only, then a --data-only dump with triggers enabled" "$(head -n 20 "$WORK/restore2.err")"
fi
ops_ext_snapshot "$two" "$WORK/two.snap"
check_eq "two-step restore: journal identical (usage triggers fired on the app rows but billed nothing)" \
  "$(journal_line "$src")" "$(journal_line "$two")"
check_eq "two-step restore: authorizations identical" "$(auth_line "$src")" "$(auth_line "$two")"
check_diff "two-step restore: every ledger table, balance, report and check identical" "$WORK/src2.snap" "$WORK/two.snap"
check_eq "two-step restore: app tables identical" "$(app_tables_md5 "$src")" "$(app_tables_md5 "$two")"
next_src="$(q "$src" "SELECT authorization_id || '|' || cost FROM credit_authorize(wallet => 'cust_4', action => 'chat', quantity => 1)")"
next_two="$(q "$two" "SELECT authorization_id || '|' || cost FROM credit_authorize(wallet => 'cust_4', action => 'chat', quantity => 1)")"
check_eq "two-step restore: next authorization gets the same id as in the source" "$next_src" "$next_two"

# ---------------------------------------------------------------- 3. extension in its own schema
# CREATE EXTENSION credit_ledger SCHEMA billing: the API lives in billing (the dump says WITH
# SCHEMA billing; the app's triggers name billing.credit_usage_trigger).
bsrc="$(ops_new_db billing_src)"
q "$bsrc" "CREATE SCHEMA billing; CREATE EXTENSION credit_ledger SCHEMA billing" >/dev/null
PGOPTIONS="$PGOPTIONS -c search_path=billing,public" qf "$bsrc" "$OPS_DIR/fixture.sql" >"$WORK/fixture_billing.out"
PGOPTIONS="$PGOPTIONS -c search_path=billing,public" ops_ext_snapshot "$bsrc" "$WORK/bsrc.snap"
"$BIN/pg_dump" -Fc -d "$bsrc" -f "$WORK/billing.dump" 2>"$WORK/dump_b.err" || { cat "$WORK/dump_b.err" >&2; exit 1; }
bdst="$(ops_new_db billing_dst)"
if "$BIN/pg_restore" --exit-on-error -d "$bdst" "$WORK/billing.dump" 2>"$WORK/restore_b.err"; then
  ok "extension in schema billing: pg_restore into an empty database"
else
  fail "extension in schema billing: pg_restore into an empty database" "$(head -n 20 "$WORK/restore_b.err")"
fi
PGOPTIONS="$PGOPTIONS -c search_path=billing,public" ops_ext_snapshot "$bdst" "$WORK/bdst.snap"
check_eq "extension in schema billing: restored into billing" "billing" \
  "$(q "$bdst" "SELECT extnamespace::regnamespace FROM pg_extension WHERE extname = 'credit_ledger'")"
check_diff "extension in schema billing: every row, balance, report and check identical" "$WORK/bsrc.snap" "$WORK/bdst.snap"
check_eq "extension in schema billing: next authorization identical in both" \
  "$(q "$bsrc" "SELECT authorization_id || '|' || cost || '|' || balance FROM billing.credit_authorize(wallet => 'cust_1', action => 'chat', variant => 'haiku')")" \
  "$(q "$bdst" "SELECT authorization_id || '|' || cost || '|' || balance FROM billing.credit_authorize(wallet => 'cust_1', action => 'chat', variant => 'haiku')")"
q "$bdst" "INSERT INTO public.llm_calls (customer_id, kind, model, tokens, request_id) VALUES ('cust_2', 'chat', 'haiku', 1, 'r-billing')" >/dev/null
check_eq "extension in schema billing: the restored usage trigger bills a new row" "approved" \
  "$(q "$bdst" "SELECT a.status FROM public.llm_calls l JOIN credit_ledger.authorizations a ON a.id = l.auth_id WHERE l.request_id = 'r-billing'")"

# ---------------------------------------------------------------- 4. the built-in rows
# CREATE EXTENSION makes the asset `credits` and the rate card `default`; their rows are kept out
# of the dump (pg_extension_config_dump filters, else a restore would insert them twice), so they
# must not hold anything a dump would lose: changing their description is refused (55000), and
# entries on the default card are ordinary dumped rows.
state() { "${OPS_PSQL[@]}" -d "$1" -At -v ON_ERROR_STOP=1 -c "$2" 2>&1 | grep -o 'ERROR:  [^:]*' | head -1; }
check_eq "changing the description of the built-in asset 'credits' is refused" \
  "ERROR:  the built-in asset \"credits\" cannot be changed" \
  "$(state "$src" "SELECT credit_asset_define(asset => 'credits', description => 'AI credits (ops test)')")"
check_eq "changing the description of the built-in rate card 'default' is refused" \
  "ERROR:  the built-in rate card \"default\" cannot be changed" \
  "$(state "$src" "SELECT credit_rate_card_load('{\"name\": \"default\", \"description\": \"list prices (ops test)\", \"entries\": []}'::jsonb)")"
q "$src" "SELECT credit_rate_card_load('{\"name\": \"default\",
           \"entries\": [{\"action\": \"image.generate\", \"credits\": 40, \"vendor_cost\": 0.2}]}'::jsonb)" >/dev/null
"$BIN/pg_dump" -Fc -d "$src" -f "$WORK/full3.dump" 2>"$WORK/dump3.err" || { cat "$WORK/dump3.err" >&2; exit 1; }
three="$(ops_new_db builtin)"
"$BIN/pg_restore" --exit-on-error -d "$three" "$WORK/full3.dump"
check_eq "the default card's entries survive dump/restore" \
  "$(q "$src" "SELECT string_agg(action || '=' || credits, ',' ORDER BY id) FROM credit_ledger.rates WHERE rate_card = 'default'")" \
  "$(q "$three" "SELECT string_agg(action || '=' || credits, ',' ORDER BY id) FROM credit_ledger.rates WHERE rate_card = 'default'")"

ops_finish
