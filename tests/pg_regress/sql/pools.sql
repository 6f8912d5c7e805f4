-- pools.sql: team pools and the limits around them (SPEC §4; issue 4).
-- One section per rule and per decline reason: the draw order (own grants, then the pool, in
-- one step), insufficient_credits, pool_limit_reached (holds count; a new period resets the
-- draw), credit_team_allocate (partial pooling, idempotency, category/expiry), overdraft (soft
-- cap, debt settled from the next grant, the rule for pools), the hard cap, spend caps
-- (spend_cap_reached), frozen wallets (wallet_frozen), pool depth and cycles, attribution
-- (pool_usage) and the low-balance notification received by LISTEN.
-- The one action costs 1 credit per unit, so quantity = cost; every expected number is worked
-- out in the comment above it. No timestamps or generated ids in the output.
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
\set ON_ERROR_STOP 0

-- Test helper: run one statement; print its SQLSTATE and message (then DETAIL and HINT),
-- or 'ok' when it succeeds. The statement runs in a subtransaction, as the caller's would.
CREATE FUNCTION err(stmt text) RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE st text; msg text; det text; hnt text;
BEGIN
    EXECUTE stmt;
    RETURN NEXT 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    RETURN NEXT st || ': ' || msg;
    IF det <> '' THEN RETURN NEXT '  DETAIL: ' || det; END IF;
    IF hnt <> '' THEN RETURN NEXT '  HINT: ' || hnt; END IF;
END $f$;

-- The journal entries of one authorization, in order: whose grant moved (or whose debt line),
-- the grant's category, the change of remaining and of held, and the member it is attributed to.
CREATE FUNCTION moves(auth bigint)
RETURNS TABLE (wallet text, kind text, category text, amount numeric, held numeric, member text)
LANGUAGE plpgsql AS $f$
BEGIN
    RETURN QUERY
        SELECT w.wallet, j.kind, g.category, j.amount, j.held, m.wallet
          FROM credit_ledger.journal j
          JOIN credit_ledger.wallets w ON w.id = j.wallet_id AND w.tenant = j.tenant
          LEFT JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
          LEFT JOIN credit_ledger.wallets m ON m.id = j.member_id AND m.tenant = j.tenant
         WHERE j.authorization_id = auth
         ORDER BY j.id;
END $f$;

SELECT action, credits, asset FROM credit_rate_set('call', 1);

-- ===================================================================== draw order
-- Team "acme" is the pool; ann (no pool limit) and bob (at most 30 pool credits per period)
-- are members.
SELECT wallet, parent, pool_limit FROM credit_wallet_create('acme');
SELECT wallet, parent, pool_limit FROM credit_wallet_create('acme.ann', parent => 'acme');
SELECT wallet, parent, pool_limit FROM credit_wallet_create('acme.bob', parent => 'acme', pool_limit => 30);
SELECT wallet, category, amount FROM credit_grant('acme', 100);
SELECT wallet, category, amount FROM credit_grant('acme.ann', 5);
SELECT wallet, category, amount FROM credit_grant('acme.ann', 3, category => 'promotional');
-- ann spends 10 with 8 of her own: her own grants first in consumption order (promotional 3
-- before purchased 5), then 2 from the pool -- one authorization, one step. balance is ann's
-- own balance (0); the pool keeps 98.
SELECT authorization_id AS a1 FROM credit_authorize('acme.ann', 'call', 10) \gset
SELECT approved, reason, cost, balance FROM credit_authorization(:a1);
SELECT * FROM moves(:a1);
SELECT cost, pool_amount, overdraft_amount FROM credit_ledger.authorizations WHERE id = :a1;
SELECT w AS wallet, credit_balance(w) AS balance FROM unnest(ARRAY['acme', 'acme.ann']) w ORDER BY w;
-- what ann can spend now: nothing of her own, 98 through the pool
SELECT balance, available, pool_access, overdraft_room, spendable FROM credit_balance_detail('acme.ann');
SELECT cost, spendable, approved, reason FROM credit_quote('acme.ann', 'call', 50);
-- a member whose own grants cover the cost does not touch the pool
SELECT wallet, amount FROM credit_grant('acme.ann', 4);
SELECT authorization_id AS a2 FROM credit_authorize('acme.ann', 'call', 4) \gset
SELECT * FROM moves(:a2);
SELECT credit_balance('acme') AS pool_balance;

-- ===================================================================== insufficient_credits
-- ann asks for 99: her own 0 plus the pool's 98 do not cover it. A decline is a row and
-- moves nothing: no journal entry, both balances unchanged.
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT authorization_id AS a3 FROM credit_authorize('acme.ann', 'call', 99) \gset
SELECT approved, reason, cost, balance FROM credit_authorization(:a3);
SELECT (SELECT count(*) FROM credit_ledger.journal) - :journal_before AS journal_entries_written,
       (SELECT status FROM credit_ledger.authorizations WHERE id = :a3) AS status,
       credit_balance('acme') AS pool_balance, credit_balance('acme.ann') AS ann_balance;
SELECT approved, reason, spendable FROM credit_quote('acme.ann', 'call', 99);

-- ===================================================================== pool_limit_reached
-- bob: 5 of his own, a pool limit of 30 per period (calendar month in UTC by default).
SELECT wallet, amount FROM credit_grant('acme.bob', 5);
-- 20 = own 5 + pool 15: bob has drawn 15 of his 30
SELECT approved, reason, cost, balance FROM credit_authorize('acme.bob', 'call', 20);
-- a hold of 10 reserves 10 of the pool and counts towards the limit: drawn 25
SELECT authorization_id AS h1 FROM credit_hold('acme.bob', 'call', 10) \gset
SELECT approved, reason, cost, status FROM credit_authorization(:h1);
SELECT * FROM moves(:h1);
-- 10 more would need 10 from the pool, only 30 - 25 = 5 are left to bob although the pool
-- holds plenty (98 - 15 - 10 held = 73): pool_limit_reached, nothing moves
SELECT approved, reason, cost, balance FROM credit_authorize('acme.bob', 'call', 10);
SELECT approved, reason, cost FROM credit_hold('acme.bob', 'call', 10);
SELECT approved, reason, spendable FROM credit_quote('acme.bob', 'call', 10);
SELECT credit_balance('acme') AS pool_balance;
-- exactly the 5 left is fine: drawn 30 = the limit
SELECT approved, reason, cost FROM credit_authorize('acme.bob', 'call', 5);
SELECT member, team, pool_limit, drawn_this_period, drawn_total FROM credit_ledger.pool_usage
 WHERE member = 'acme.bob';
-- releasing the hold gives its 10 back to the pool and to bob's limit: drawn 20
SELECT status FROM credit_release(:h1);
SELECT member, pool_limit, drawn_this_period, drawn_total FROM credit_ledger.pool_usage WHERE member = 'acme.bob';
SELECT approved, reason, cost FROM credit_authorize('acme.bob', 'call', 10);
-- at the limit again (30): even 1 credit declines
SELECT approved, reason, cost FROM credit_authorize('acme.bob', 'call', 1);
-- raising the limit takes effect at once
SELECT wallet, pool_limit FROM credit_wallet_update('acme.bob', pool_limit => 31);
SELECT approved, reason, cost FROM credit_authorize('acme.bob', 'call', 1);
SELECT credit_balance('acme') AS pool_balance;

-- The limit is per period. cy draws from the pool in periods of one day that started 12 hours
-- ago (period_anchor). Moving the anchor to one hour ago makes a new period begin now, as if
-- 12 hours had passed (the test cannot wait): the period's draw restarts at 0; the balances,
-- the total drawn and the limit itself do not change.
SELECT wallet, pool_limit, period FROM credit_wallet_create('acme.cy', parent => 'acme', pool_limit => 10,
                                                            period => '1 day', period_anchor => now() - interval '12 hours');
SELECT approved, reason, cost FROM credit_authorize('acme.cy', 'call', 10);
SELECT approved, reason, cost FROM credit_authorize('acme.cy', 'call', 1);
SELECT credit_balance('acme') AS pool_balance_before;
SELECT wallet, pool_limit, period FROM credit_wallet_update('acme.cy', period_anchor => now() - interval '1 hour');
SELECT member, pool_limit, drawn_this_period, drawn_total FROM credit_ledger.pool_usage WHERE member = 'acme.cy';
SELECT credit_balance('acme') AS pool_balance_after;
-- a new period: 10 more, then the limit again
SELECT approved, reason, cost FROM credit_authorize('acme.cy', 'call', 10);
SELECT approved, reason, cost FROM credit_authorize('acme.cy', 'call', 1);
SELECT member, pool_limit, drawn_this_period, drawn_total FROM credit_ledger.pool_usage WHERE member = 'acme.cy';

-- ===================================================================== credit_team_allocate
-- Team "beta", three members. 100 per member with 20% pooled: each member gets 80 of its own
-- (category included, expiry and unit price as given), the pool gets 20 x 3 = 60; 300 in all.
SELECT wallet FROM credit_wallet_create('beta');
SELECT count(*) AS members FROM (
  SELECT credit_wallet_create('beta.a', parent => 'beta')
  UNION ALL SELECT credit_wallet_create('beta.b', parent => 'beta')
  UNION ALL SELECT credit_wallet_create('beta.c', parent => 'beta')) m;
SELECT wallet, amount FROM credit_team_allocate('beta', 100, 0.2, expires_at => '2100-01-01 00:00:00+00',
                                                unit_price => 0.01, idempotency_key => 'alloc-1')
 ORDER BY wallet;
SELECT w.wallet, g.category, g.priority, g.amount, g.remaining, g.unit_price,
       g.expires_at = '2100-01-01 00:00:00+00' AS expires_2100, g.metadata->>'team' AS team,
       g.metadata ? 'allocation' AS is_pool_grant
  FROM credit_ledger.grants g JOIN credit_ledger.wallets w ON w.id = g.wallet_id AND w.tenant = g.tenant
 WHERE w.wallet LIKE 'beta%' ORDER BY w.wallet;
SELECT sum(amount) AS granted_in_all FROM credit_ledger.grants g JOIN credit_ledger.wallets w ON w.id = g.wallet_id AND w.tenant = g.tenant
 WHERE w.wallet LIKE 'beta%';
-- the same call with the same key returns the same grants and grants nothing more
SELECT count(*) AS grants_before FROM credit_ledger.grants \gset
SELECT array_agg(r.grant_id ORDER BY r.grant_id) = (SELECT array_agg(g.id ORDER BY g.id) FROM credit_ledger.grants g
                                                      JOIN credit_ledger.wallets w ON w.id = g.wallet_id AND w.tenant = g.tenant
                                                     WHERE w.wallet LIKE 'beta%') AS same_grants,
       sum(r.amount) AS amount
  FROM credit_team_allocate('beta', 100, 0.2, expires_at => '2100-01-01 00:00:00+00',
                            unit_price => 0.01, idempotency_key => 'alloc-1') r;
SELECT count(*) - :grants_before AS grants_written FROM credit_ledger.grants;
-- the same key with other arguments is an error (and changes nothing)
SELECT err($$SELECT * FROM credit_team_allocate('beta', 100, 0.3, expires_at => '2100-01-01 00:00:00+00',
                                                unit_price => 0.01, idempotency_key => 'alloc-1')$$);
SELECT count(*) - :grants_before AS grants_written FROM credit_ledger.grants;
-- rounding: an asset of scale 0, 10 per member with 25% pooled: each member gets
-- trunc(7.5) = 7, the pool gets the rest, 30 - 21 = 9 (exactly 10 x 3 is granted)
SELECT credit_asset_define('seats', 0);
SELECT wallet, amount FROM credit_team_allocate('beta', 10, 0.25, asset => 'seats', category => 'promotional')
 ORDER BY wallet;
-- all pooled: only the pool gets a grant; nothing pooled: only the members do
SELECT wallet, amount FROM credit_team_allocate('beta', 10, 1, asset => 'seats') ORDER BY wallet;
SELECT wallet, amount FROM credit_team_allocate('beta', 10, 0, asset => 'seats') ORDER BY wallet;
SELECT w AS wallet, credit_balance(w) AS credits, credit_balance(w, 'seats') AS seats
  FROM unnest(ARRAY['beta', 'beta.a', 'beta.b', 'beta.c']) w ORDER BY w;
-- a member then spends its own 80 first, then the pool: 90 = 80 own + 10 pool
SELECT authorization_id AS a4 FROM credit_authorize('beta.a', 'call', 90) \gset
SELECT * FROM moves(:a4);
-- errors: unknown team, a team without members, bad share or amount, unknown asset, bad key
SELECT err($$SELECT * FROM credit_team_allocate('nobody', 100, 0.2)$$);
SELECT err($$SELECT * FROM credit_team_allocate('beta.a', 100, 0.2)$$);
SELECT err($$SELECT * FROM credit_team_allocate('beta', 100, 1.5)$$);
SELECT err($$SELECT * FROM credit_team_allocate('beta', 100, -0.1)$$);
SELECT err($$SELECT * FROM credit_team_allocate('beta', 0, 0.2)$$);
SELECT err($$SELECT * FROM credit_team_allocate('beta', 100, NULL)$$);
SELECT err($$SELECT * FROM credit_team_allocate('beta', 100, 0.2, asset => 'gold')$$);
SELECT err($$SELECT * FROM credit_team_allocate('beta', 100, 0.2, idempotency_key => '')$$);
-- (an expiry in the past is credit_grant's error; its DETAIL names the instants, left out here)
SELECT e FROM err($$SELECT * FROM credit_team_allocate('beta', 100, 0.2, expires_at => now() - interval '1 day')$$) e
 WHERE e NOT LIKE '  DETAIL:%';
-- 8 grants since the keyed allocation (4 + 1 + 3 for seats), none by the errors
SELECT count(*) - :grants_before AS grants_written_since FROM credit_ledger.grants;

-- ===================================================================== overdraft (soft cap)
-- solo: 30 credits and an overdraft limit of 50, so at most 80 can be spent.
SELECT wallet, overdraft_limit FROM credit_wallet_create('solo', overdraft_limit => 50);
SELECT wallet, amount FROM credit_grant('solo', 30);
-- 70 = own 30 + 40 of debt, journaled as an overdraft entry (no grant): balance -40
SELECT authorization_id AS a5 FROM credit_authorize('solo', 'call', 70) \gset
SELECT approved, reason, cost, balance FROM credit_authorization(:a5);
SELECT * FROM moves(:a5);
SELECT cost, pool_amount, overdraft_amount FROM credit_ledger.authorizations WHERE id = :a5;
-- 20 more would take the balance to -60, beyond the floor of -50
SELECT approved, reason, cost, balance FROM credit_authorize('solo', 'call', 20);
-- 10 reaches the floor exactly; then nothing more
SELECT approved, reason, cost, balance FROM credit_authorize('solo', 'call', 10);
SELECT approved, reason, cost, balance FROM credit_authorize('solo', 'call', 1);
SELECT balance, available, debt, overdraft_room, spendable FROM credit_balance_detail('solo');
-- holds reserve real credits only, never overdraft
SELECT approved, reason FROM credit_hold('solo', 'call', 1);
-- the next grant settles the debt first: of 100, 50 pay the debt, 50 remain; balance 50
SELECT id AS g1, amount, remaining FROM credit_grant('solo', 100) \gset
SELECT :'amount' AS amount, :'remaining' AS remaining;
SELECT j.kind, j.grant_id IS NULL AS debt_line, j.amount
  FROM credit_ledger.journal j WHERE j.grant_id = :g1 OR (j.grant_id IS NULL AND j.kind = 'settlement'
   AND j.wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'solo'))
 ORDER BY j.id;
SELECT balance, debt, overdraft_room, spendable FROM credit_balance_detail('solo');
-- a grant smaller than the debt settles what it can
SELECT approved, cost, balance FROM credit_authorize('solo', 'call', 100);
SELECT amount, remaining FROM credit_grant('solo', 20);
SELECT balance, debt FROM credit_balance_detail('solo');

-- hard cap: overdraft_limit defaults to 0, so the balance never goes below 0
SELECT wallet, overdraft_limit FROM credit_wallet_create('hard');
SELECT wallet, amount FROM credit_grant('hard', 10);
SELECT approved, reason, cost, balance FROM credit_authorize('hard', 'call', 11);
SELECT approved, reason, cost, balance FROM credit_authorize('hard', 'call', 10);
SELECT approved, reason, cost, balance FROM credit_authorize('hard', 'call', 1);

-- The rule for pools: a member's debit takes its own grants, then the pool's grants, then the
-- member's OWN overdraft room; the pool's overdraft room is the team's alone. Debt is the
-- debtor's: a grant to the team settles the team's debt, not a member's.
SELECT wallet, overdraft_limit FROM credit_wallet_create('gamma', overdraft_limit => 100);
SELECT wallet, overdraft_limit FROM credit_wallet_create('gamma.a', parent => 'gamma', overdraft_limit => 20);
SELECT wallet, overdraft_limit FROM credit_wallet_create('gamma.b', parent => 'gamma');
SELECT wallet, amount FROM credit_grant('gamma', 30);
SELECT wallet, amount FROM credit_grant('gamma.a', 10);
-- a spends 45 = own 10 + pool 30 + 5 of her own debt: balance -5
SELECT authorization_id AS a6 FROM credit_authorize('gamma.a', 'call', 45) \gset
SELECT approved, reason, cost, balance FROM credit_authorization(:a6);
SELECT * FROM moves(:a6);
-- b has no overdraft of his own: the empty pool's overdraft room (100) is not his
SELECT approved, reason, cost, balance FROM credit_authorize('gamma.b', 'call', 1);
-- the team itself may go down to -100
SELECT approved, reason, cost, balance FROM credit_authorize('gamma', 'call', 100);
SELECT approved, reason, cost, balance FROM credit_authorize('gamma', 'call', 1);
-- 150 to the team: 100 settle the team's debt, 50 remain; a's debt of 5 stays
SELECT amount, remaining FROM credit_grant('gamma', 150);
SELECT w AS wallet, d.balance, d.debt FROM unnest(ARRAY['gamma', 'gamma.a']) w, credit_balance_detail(w) d ORDER BY w;
-- 8 to a: 5 settle her debt, 3 remain
SELECT amount, remaining FROM credit_grant('gamma.a', 8);
SELECT w AS wallet, d.balance, d.debt FROM unnest(ARRAY['gamma', 'gamma.a']) w, credit_balance_detail(w) d ORDER BY w;

-- ===================================================================== spend_cap_reached
-- capped: 100 credits, a budget of 25 per period of one day (the period started 12 hours ago)
SELECT wallet, spend_cap, period FROM credit_wallet_create('capped', spend_cap => 25, period => '1 day',
                                                           period_anchor => now() - interval '12 hours');
SELECT wallet, amount FROM credit_grant('capped', 100);
-- 20 (spent 20), then 10 would make 30 > 25: spend_cap_reached; 5 makes 25 exactly; then 1 is over
SELECT approved, reason, cost, balance FROM credit_authorize('capped', 'call', 20);
SELECT approved, reason, cost, balance FROM credit_authorize('capped', 'call', 10);
SELECT approved, reason, cost, balance FROM credit_authorize('capped', 'call', 5);
SELECT approved, reason, cost, balance FROM credit_authorize('capped', 'call', 1);
SELECT approved, reason FROM credit_hold('capped', 'call', 1);
SELECT approved, reason, spendable FROM credit_quote('capped', 'call', 1);
-- a new period (the anchor moved, as above): the budget is whole again; the balance is not
SELECT wallet, spend_cap FROM credit_wallet_update('capped', period_anchor => now() - interval '1 hour');
SELECT approved, reason, cost, balance FROM credit_authorize('capped', 'call', 25);
SELECT approved, reason, cost, balance FROM credit_authorize('capped', 'call', 1);
-- clearing the cap lifts it
SELECT wallet, spend_cap FROM credit_wallet_update('capped', clear => ARRAY['spend_cap']);
SELECT approved, reason, cost, balance FROM credit_authorize('capped', 'call', 1);
-- a member's cap counts all its spend, own and pool: dee has 5 of her own and a cap of 12;
-- 10 = own 5 + pool 5 (spent 10), then 3 would make 13 > 12
SELECT wallet, spend_cap FROM credit_wallet_create('acme.dee', parent => 'acme', spend_cap => 12);
SELECT wallet, amount FROM credit_grant('acme.dee', 5);
SELECT approved, reason, cost, balance FROM credit_authorize('acme.dee', 'call', 10);
SELECT approved, reason, cost, balance FROM credit_authorize('acme.dee', 'call', 3);
SELECT approved, reason, cost, balance FROM credit_authorize('acme.dee', 'call', 2);
-- a team's cap bounds what its members draw from the pool: delta may spend 20 per period;
-- d1 draws 15, then 10 more finds only 5 of the team's budget (declined: the member's own
-- credits and the pool room it may use do not cover it), then 5 fits
SELECT wallet, spend_cap FROM credit_wallet_create('delta', spend_cap => 20);
SELECT wallet FROM credit_wallet_create('delta.d1', parent => 'delta');
SELECT wallet, amount FROM credit_grant('delta', 100);
SELECT approved, reason, cost, balance FROM credit_authorize('delta.d1', 'call', 15);
SELECT approved, reason, cost, balance FROM credit_authorize('delta.d1', 'call', 10);
SELECT approved, reason, cost, balance FROM credit_authorize('delta.d1', 'call', 5);
SELECT credit_balance('delta') AS pool_balance;

-- ===================================================================== wallet_frozen
-- a frozen member declines (as data) and debits nothing, own grants and pool alike
SELECT wallet, amount FROM credit_grant('acme.ann', 10);
SELECT wallet, frozen FROM credit_wallet_update('acme.ann', frozen => true);
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT approved, reason, cost, balance FROM credit_authorize('acme.ann', 'call', 1);
SELECT approved, reason, cost FROM credit_hold('acme.ann', 'call', 1);
SELECT approved, reason, spendable FROM credit_quote('acme.ann', 'call', 1);
SELECT (SELECT count(*) FROM credit_ledger.journal) - :journal_before AS journal_entries_written;
-- unfrozen: approved again
SELECT wallet, frozen FROM credit_wallet_update('acme.ann', frozen => false);
SELECT approved, reason, cost, balance FROM credit_authorize('acme.ann', 'call', 1);
-- a frozen team: its own debits decline with wallet_frozen; its members still spend their own
-- grants but cannot draw the frozen pool (insufficient_credits)
SELECT wallet, frozen FROM credit_wallet_update('acme', frozen => true);
SELECT approved, reason, cost, balance FROM credit_authorize('acme', 'call', 1);
SELECT approved, reason, cost, balance FROM credit_authorize('acme.ann', 'call', 9);
SELECT approved, reason, cost, balance FROM credit_authorize('acme.ann', 'call', 1);
SELECT wallet, frozen FROM credit_wallet_update('acme', frozen => false);
SELECT approved, reason, cost, balance FROM credit_authorize('acme.ann', 'call', 1);

-- ===================================================================== depth and cycles
-- pools are one level deep (a team and its members), so no cycle can form: a member cannot
-- be a parent, a team (a wallet with members) cannot join a pool, a wallet cannot be its own
-- parent. All are 22023 and change nothing.
SELECT err($$SELECT credit_wallet_create('acme.ann.kid', parent => 'acme.ann')$$);
SELECT err($$SELECT credit_wallet_update('solo', parent => 'acme.ann')$$);
SELECT err($$SELECT credit_wallet_update('acme', parent => 'beta')$$);
SELECT err($$SELECT credit_wallet_update('beta', parent => 'beta.a')$$);
SELECT err($$SELECT credit_wallet_update('solo', parent => 'solo')$$);
SELECT err($$SELECT credit_wallet_create('orphan', parent => 'nobody')$$);
SELECT err($$SELECT credit_wallet_create('loner', pool_limit => 10)$$);
SELECT wallet, parent FROM credit_wallet('acme') UNION ALL SELECT wallet, parent FROM credit_wallet('beta')
 ORDER BY wallet;
SELECT count(*) AS wallets_with_grandparents
  FROM credit_ledger.wallets m JOIN credit_ledger.wallets t ON t.id = m.parent_id AND t.tenant = m.tenant WHERE t.parent_id IS NOT NULL;

-- ===================================================================== attribution
-- every pool draw is journaled on the pool's grants with the member who drew; the sum per
-- member equals the pool part of its authorizations
SELECT t.wallet AS pool, m.wallet AS member,
       -sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'capture')) AS spent_from_pool,
       sum(j.held) AS still_held
  FROM credit_ledger.journal j
  JOIN credit_ledger.wallets t ON t.id = j.wallet_id AND t.tenant = j.tenant
  JOIN credit_ledger.wallets m ON m.id = j.member_id AND m.tenant = j.tenant
 WHERE j.member_id <> j.wallet_id
 GROUP BY t.wallet, m.wallet ORDER BY t.wallet, m.wallet;
SELECT w.wallet AS member, sum(a.pool_amount) AS pool_amount
  FROM credit_ledger.authorizations a JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
 WHERE a.status IN ('approved', 'captured') AND a.pool_amount <> 0
 GROUP BY w.wallet ORDER BY w.wallet;
-- the pool_usage report: each member's draw this period against its limit. bob drew
-- 15 + 5 + 10 + 1 = 31 (his hold of 10 was released, so it counts no more) of 31; cy 10 of 10
-- this period and 20 in all; members without a limit show their draws too (ann 3, dee 7,
-- beta.a 10, d1 20, gamma.a 30: the same as the two queries above); members that never drew
-- have one row with asset NULL and 0.
SELECT member, team, asset, pool_limit, drawn_this_period, drawn_total,
       pool_limit - drawn_this_period AS left_this_period
  FROM credit_ledger.pool_usage ORDER BY member, asset;

-- ===================================================================== low-balance alert
-- alerty has a threshold of 50. psql prints a received notification with the sending
-- backend's PID, so the output between \o | sed and \o goes through sed, which masks it.
-- psql echoes the statements first and prints their output at the closing \o.
-- Expected: 100 -> 70 (above, nothing), -> 40 (crosses: one alert), -> 30 (still below:
-- none), +100 = 130 (re-armed), -> 40 (crosses again: one alert), +100 = 140 (re-armed);
-- in a transaction -> 40: the alert arrives at COMMIT (after step 8); +100 = 140; a crossing
-- that rolls back sends nothing (no alert after step 10).
SELECT wallet, low_balance_threshold FROM credit_wallet_create('alerty', low_balance_threshold => 50);
SELECT amount FROM credit_grant('alerty', 100);
LISTEN credit_ledger;
\o | sed -e 's/PID [0-9][0-9]*/PID <pid>/'
SELECT '1: -30' AS step, approved, balance FROM credit_authorize('alerty', 'call', 30);
SELECT '2: -30' AS step, approved, balance FROM credit_authorize('alerty', 'call', 30);
SELECT '3: -10' AS step, approved, balance FROM credit_authorize('alerty', 'call', 10);
SELECT '4: +100' AS step, remaining FROM credit_grant('alerty', 100);
SELECT '5: -90' AS step, approved, balance FROM credit_authorize('alerty', 'call', 90);
SELECT '6: +100' AS step, remaining FROM credit_grant('alerty', 100);
BEGIN;
SELECT '7: -100 in a transaction' AS step, approved, balance FROM credit_authorize('alerty', 'call', 100);
SELECT '8: before COMMIT' AS step;
COMMIT;
SELECT '9: +100' AS step, remaining FROM credit_grant('alerty', 100);
BEGIN;
SELECT '10: -100 in a transaction' AS step, approved, balance FROM credit_authorize('alerty', 'call', 100);
ROLLBACK;
SELECT '11: after ROLLBACK' AS step;
\o
UNLISTEN credit_ledger;

-- ===================================================================== integrity
SELECT * FROM credit_verify();
