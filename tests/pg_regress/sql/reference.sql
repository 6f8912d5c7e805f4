-- reference.sql: docs/reference.md is cut from this file's expected output, so the reference
-- cannot drift from the extension. Part 1 prints every public function's signature (with its
-- COMMENT) and every view's columns from the catalog; a unit test (src/lib.rs, doc_tests)
-- checks that docs/reference.md documents exactly these, each signature verbatim. Part 2 runs
-- one example of each, in the order of the reference; its blocks are quoted there verbatim.
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
-- (pg_regress sets intervalstyle postgres_verbose; the reference shows what a user sees)
SET intervalstyle = postgres;

-- Part 1: the catalog.
\pset format unaligned
\pset tuples_only on
WITH f AS (
  SELECT p.oid, p.proname, p.proretset, p.prorettype,
         coalesce(p.proallargtypes, ARRAY(SELECT unnest(p.proargtypes))) AS types,
         coalesce(p.proargmodes, array_fill('i'::"char", ARRAY[p.pronargs])) AS modes,
         p.proargnames AS names
    FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
   WHERE p.proname NOT LIKE '\_%'
), a AS (
  SELECT f.oid, i, f.modes[i] AS mode, f.names[i] AS name, format_type(f.types[i], NULL) AS type,
         pg_get_function_arg_default(f.oid, i) AS dflt
    FROM f, generate_subscripts(f.types, 1) AS i
), c AS (
  SELECT t.oid AS type_oid, at.attnum AS i, at.attname::text AS name,
         format_type(at.atttypid, at.atttypmod) AS type
    FROM pg_type t
    JOIN pg_attribute at ON at.attrelid = t.typrelid AND at.attnum > 0 AND NOT at.attisdropped
)
SELECT '-- ' || obj_description(f.oid, 'pg_proc') || E'\n' || f.proname || '(' ||
       coalesce(E'\n' || (SELECT string_agg('    ' || coalesce(a.name || ' ', '') || a.type
                                            || coalesce(' DEFAULT ' || a.dflt, ''), E',\n' ORDER BY a.i)
                            FROM a WHERE a.oid = f.oid AND a.mode IN ('i', 'b', 'v')) || E'\n', '')
       || ') RETURNS ' ||
       coalesce((SELECT E'TABLE (\n' || string_agg('    ' || a.name || ' ' || a.type, E',\n' ORDER BY a.i)
                        || E'\n)'
                   FROM a WHERE a.oid = f.oid AND a.mode IN ('t', 'o') HAVING count(*) > 0),
                CASE WHEN f.proretset THEN 'SETOF ' ELSE '' END || format_type(f.prorettype, NULL)
                || coalesce((SELECT E' (\n' || string_agg('    ' || c.name || ' ' || c.type, E',\n' ORDER BY c.i)
                                    || E'\n)'
                               FROM c WHERE c.type_oid = f.prorettype HAVING count(*) > 0), ''))
  FROM f ORDER BY f.proname, f.oid;
SELECT '-- ' || obj_description(v.oid, 'pg_class') || E'\n' || v.oid::regclass::text || E' (\n' ||
       string_agg('    ' || at.attname || ' ' || format_type(at.atttypid, at.atttypmod), E',\n'
                  ORDER BY at.attnum) || E'\n)'
  FROM pg_class v
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = v.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
  JOIN pg_attribute at ON at.attrelid = v.oid AND at.attnum > 0 AND NOT at.attisdropped
 WHERE v.relkind = 'v'
 GROUP BY v.oid ORDER BY v.oid::regclass::text;
\pset format aligned
\pset tuples_only off

-- Part 2: one example each, in the order of docs/reference.md. A small world first: a price
-- list, a customer, a team of two.
SELECT (credit_rate_set(action => 'chat', variant => 'opus', credits => 15, unit => '1k tokens',
                        vendor_cost => 0.075, fallback => 'haiku')).id AS rate_id;
SELECT (credit_rate_set(action => 'chat', variant => 'haiku', credits => 1, unit => '1k tokens',
                        vendor_cost => 0.004)).id AS rate_id;
SELECT (credit_rate_set(action => 'image.generate', credits => 40, unit => 'image',
                        vendor_cost => 0.04)).id AS rate_id;
SELECT (credit_wallet_create(wallet => 'cust_42')).wallet;
SELECT (credit_grant(wallet => 'cust_42', amount => 500, unit_price => 0.01)).id AS grant_id;
SELECT (credit_wallet_create(wallet => 'acme')).wallet;
SELECT (credit_wallet_create(wallet => 'acme.ann', parent => 'acme')).wallet;
SELECT (credit_wallet_create(wallet => 'acme.bob', parent => 'acme', pool_limit => 100)).wallet;
CREATE ROLE app_backend;

-- example: credit_asset_define
SELECT credit_asset_define(asset => 'usd', scale => 2, description => 'US dollars') AS asset;
-- example: credit_ledger_grant
SELECT count(*) AS privileges_granted FROM credit_ledger_grant('app_backend', 'app');
-- example: credit_ledger_revoke
SELECT count(*) AS privileges_revoked FROM credit_ledger_revoke('app_backend', 'app');
-- example: credit_distribute
\set VERBOSITY terse
SELECT * FROM credit_distribute();
\set VERBOSITY default
-- example: credit_rate_set
SELECT id AS rate_id, action, variant, credits, unit, vendor_cost, fallback
  FROM credit_rate_set(action => 'chat', variant => 'sonnet', credits => 3, unit => '1k tokens',
                       vendor_cost => 0.015, fallback => 'haiku');
-- example: credit_rate_card_load
SELECT credit_rate_card_load('{"name": "enterprise", "entries": [
  {"action": "chat", "variant": "opus", "credits": 12, "unit": "1k tokens", "vendor_cost": 0.075,
   "effective_from": "2026-01-01T00:00:00Z"}
]}') AS entries_changed;
-- example: credit_rate_card_export
SELECT jsonb_pretty(credit_rate_card_export('enterprise'));
-- example: credit_wallet_create
SELECT wallet, parent, rate_card, overdraft_limit, spend_cap
  FROM credit_wallet_create(wallet => 'big_co', rate_card => 'enterprise', spend_cap => 1000);
-- example: credit_wallet_update
SELECT wallet, overdraft_limit, low_balance_threshold
  FROM credit_wallet_update(wallet => 'cust_42', overdraft_limit => 50, low_balance_threshold => 100);
-- example: credit_wallet
SELECT wallet, parent, pool_limit, frozen FROM credit_wallet('acme.bob');
-- example: credit_wallet_lanes
SELECT credit_wallet_lanes(wallet => 'acme', lanes => 8) AS lanes;
-- example: credit_wallet_overage
SELECT wallet, asset, auto_topup_threshold, auto_topup_amount
  FROM credit_wallet_overage(wallet => 'big_co', auto_topup_threshold => 100, auto_topup_amount => 500);
-- example: credit_grant
SELECT id AS grant_id, wallet, category, priority, amount, remaining
  FROM credit_grant(wallet => 'acme', amount => 1000, category => 'included',
                    idempotency_key => 'invoice:2026-12');
-- example: credit_grants
SELECT id AS grant_id, category, priority, amount, remaining FROM credit_grants('cust_42');
-- example: credit_team_allocate
SELECT wallet, amount FROM credit_team_allocate(team => 'acme', amount_per_member => 100,
                                                pooled_share => 0.25, idempotency_key => 'alloc:2026-12');
-- example: credit_allowance_set
SELECT wallet, asset, amount, period
  FROM credit_allowance_set(wallet => 'cust_42', amount => 200, period => '1 month', rollover_cap => 100);
-- example: credit_quote
SELECT cost, spendable, approved, reason
  FROM credit_quote(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 2.5);
-- with degrade: what a degrading call would get (20 x opus = 300 > Bob's 175: haiku)
SELECT cost, spendable, approved, priced_variant
  FROM credit_quote(wallet => 'acme.bob', action => 'chat', variant => 'opus', quantity => 20,
                    degrade => true);
-- example: credit_quote_tiers
SELECT (credit_rate_set(action => 'embed', credits => 1, unit => '1k tokens',
                        tiers => '[{"from": 1000, "credits": 0.5}]')).id AS rate_id;
SELECT * FROM credit_quote_tiers(wallet => 'cust_42', action => 'embed', quantity => 1500);
-- example: credit_authorize
SELECT authorization_id, approved, reason, cost, balance
  FROM credit_authorize(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 2.5,
                        idempotency_key => 'req_1');
-- example: credit_authorization
SELECT authorization_id, kind, status, action, variant, cost FROM credit_authorization(1);
-- example: credit_authorization_history
SELECT kind, wallet, category, amount FROM credit_authorization_history(1);
-- example: credit_hold
SELECT authorization_id, status, cost, balance
  FROM credit_hold(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 4,
                   idempotency_key => 'stream_7');
-- example: credit_capture
SELECT status, cost, balance FROM credit_capture(2, quantity => 3.2);
-- example: credit_release
SELECT authorization_id FROM credit_hold(wallet => 'cust_42', action => 'image.generate') \gset
SELECT status, cost, balance FROM credit_release(:authorization_id);
-- example: credit_refund
SELECT amount, refunded_total, balance
  FROM credit_refund(authorization_id => 1, amount => 10, reason => 'model timed out');
-- example: credit_balance
SELECT credit_balance('cust_42') AS balance;
-- example: credit_balance_detail
SELECT balance, held, debt, overdraft_room, pool_access, spendable
  FROM credit_balance_detail('acme.ann');
-- example: credit_statement
SELECT line, kind, authorization_id, action, amount, balance
  FROM credit_statement('cust_42', now() - interval '1 day', now() + interval '1 day');
-- example: credit_run_open
SELECT run_id, approved, budget, balance, status
  FROM credit_run_open(wallet => 'cust_42', budget => 100, max_calls => 20);
-- example: credit_run
SELECT approved, cost FROM credit_authorize(wallet => 'cust_42', action => 'chat', variant => 'haiku',
                                            quantity => 3, run => 1);
SELECT budget, spent, held, remaining, calls, status FROM credit_run(1);
-- example: credit_run_tree
SELECT run_id, budget FROM credit_run_open(wallet => 'cust_42', budget => 30, parent_run => 1);
SELECT run_id, depth, parent_run, budget, spent, remaining, reserved FROM credit_run_tree(1);
-- example: credit_run_close
SELECT run_id, status, budget, spent, spent_tree, returned FROM credit_run_close(1);
-- example: credit_adjust
SELECT kind, wallet, amount, done, balance
  FROM credit_adjust(wallet => 'cust_42', amount => 25, reason => 'support ticket 981');
-- example: credit_transfer
SELECT kind, wallet, to_wallet, amount, done, balance
  FROM credit_transfer(from_wallet => 'cust_42', to_wallet => 'big_co', amount => 40, reason => 'merge accounts');
-- example: credit_grant_void
SELECT kind, grant_id, amount, done, pending, balance FROM credit_grant_void(grant_id => 1, amount => 5);
-- example: credit_wallet_close
SELECT (credit_wallet_create(wallet => 'trial_9')).wallet;
SELECT (credit_grant(wallet => 'trial_9', amount => 20, category => 'promotional')).id AS grant_id;
SELECT kind, wallet, amount, done, balance FROM credit_wallet_close(wallet => 'trial_9', reason => 'trial ended');
-- example: credit_events
SELECT seq, kind, wallet, payload->>'amount' AS amount FROM credit_events(max_rows => 3);
-- example: credit_event
SELECT kind, wallet FROM credit_event(1);
-- example: credit_events_ack
SELECT credit_events_ack(consumer => 'billing-sync', up_to => 3) AS position;
-- example: credit_tick
SELECT * FROM credit_tick();
-- example: credit_expire
SELECT id AS grant_id FROM credit_grant(wallet => 'big_co', amount => 5, category => 'promotional',
                                       expires_at => now() + interval '1 hour');
SELECT * FROM credit_expire(as_of => now() + interval '2 hours');
-- example: credit_usage_trigger
CREATE TABLE llm_calls (customer text, model text, tokens numeric, authorization_id bigint);
CREATE TRIGGER bill BEFORE INSERT ON llm_calls FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer', 'action_value=chat', 'variant=model', 'quantity=tokens',
                       'authorization_id=authorization_id');
INSERT INTO llm_calls (customer, model, tokens) VALUES ('acme.ann', 'haiku', 2) RETURNING *;
-- example: credit_verify
SELECT * FROM credit_verify();
-- example: credit_verify_record
SELECT credit_verify_record() AS violations;
-- example: credit_health
SELECT check_name, status FROM credit_health();
-- example: credit_metrics
SELECT metric, asset, label, value FROM credit_metrics() WHERE metric IN ('holds_open', 'liability_credits');
-- example: credit_margin_whatif
SELECT action, variant, margin, margin_after, negative_now FROM credit_margin_whatif(vendor_cost_change => 3.0);
-- example: credit_ledger.breakage
SELECT month = date_trunc('month', now())::date AS this_month, asset, category, credits_expired
  FROM credit_ledger.breakage;
-- example: credit_ledger.call_log
SELECT wallet, authorization_id, kind, status, action, variant, cost, captured, refunded
  FROM credit_ledger.call_log WHERE wallet = 'cust_42' ORDER BY authorization_id;
-- example: credit_ledger.declines_daily
SELECT approved, reason FROM credit_authorize(wallet => 'acme.bob', action => 'chat', variant => 'opus',
                                              quantity => 100);
SELECT wallet, reason, action, declines FROM credit_ledger.declines_daily;
-- example: credit_ledger.degraded_daily
SELECT approved, variant, cost FROM credit_authorize(wallet => 'acme.bob', action => 'chat', variant => 'opus',
                                                    quantity => 20, degrade => true);
SELECT wallet, action, requested_variant, variant, calls, credits FROM credit_ledger.degraded_daily;
-- example: credit_ledger.grant_status
SELECT grant_id, wallet, category, amount, remaining, spent, expired, voided, transferred_out, status
  FROM credit_ledger.grant_status WHERE wallet IN ('cust_42', 'big_co') ORDER BY grant_id;
-- example: credit_ledger.liability
SELECT * FROM credit_ledger.liability;
-- example: credit_ledger.margin_by_action
SELECT * FROM credit_ledger.margin_by_action ORDER BY action, variant;
-- example: credit_ledger.margin_headroom
SELECT rate_card, action, variant, credits_per_unit, price_per_credit, vendor_cost_per_unit, gross_margin
  FROM credit_ledger.margin_headroom WHERE action = 'chat' ORDER BY rate_card, variant;
-- example: credit_ledger.operation_log
SELECT operation_id, kind, wallet, to_wallet, amount, done, reason FROM credit_ledger.operation_log
 ORDER BY operation_id;
-- example: credit_ledger.pool_usage
SELECT member, team, pool_limit, drawn_this_period, drawn_total FROM credit_ledger.pool_usage ORDER BY member;
-- example: credit_ledger.privilege_bundles
SELECT bundle, count(*) AS privileges FROM credit_ledger.privilege_bundles GROUP BY bundle ORDER BY bundle;
-- example: credit_ledger.revenue_monthly
SELECT asset, credits_used, usage_revenue, revenue_recognized FROM credit_ledger.revenue_monthly;
-- example: credit_ledger.reversals
SELECT asset, category, credits_reversed, liability_reversed FROM credit_ledger.reversals;
-- example: credit_ledger.run_usage
SELECT run_id, wallet, status, action, variant, calls, credits FROM credit_ledger.run_usage;
-- example: credit_ledger.usage_by_actor
SELECT wallet, actor, db_user, calls, credits FROM credit_ledger.usage_by_actor ORDER BY wallet;
-- example: credit_ledger.usage_daily
SELECT wallet, action, variant, quantity, credits, calls, refunded FROM credit_ledger.usage_daily
 ORDER BY wallet, action, variant;
-- example: credit_ledger.wallet_balances
SELECT wallet, asset, balance, held, debt, by_category FROM credit_ledger.wallet_balances ORDER BY wallet, asset;
-- the examples left the ledger consistent
SELECT * FROM credit_verify();
DROP ROLE app_backend;
