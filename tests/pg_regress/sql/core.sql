-- core.sql: the happy paths of the core ledger (SPEC §1, §2; issue 2).
-- Assets, wallets, versioned rate cards (variants, card fallback, documents), grants,
-- quotes, authorizations (consumption order, declines, idempotency, rounding), balances.
-- Output holds no timestamps and no generated ids: ids are captured with \gset.
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
    -- generated ids (authorization 12, hold 12, rate version 3) are shown as <id>
    msg := regexp_replace(msg, '(authorization|hold|rate version) [0-9]+', '\1 <id>', 'g');
    det := regexp_replace(det, '(authorization|hold|rate version) [0-9]+', '\1 <id>', 'g');
    RETURN NEXT st || ': ' || msg;
    IF det <> '' THEN RETURN NEXT '  DETAIL: ' || det; END IF;
    IF hnt <> '' THEN RETURN NEXT '  HINT: ' || hnt; END IF;
END $f$;

-- Which grants (labelled by metadata "lot") paid an authorization, in journal order.
-- (PL/pgSQL, joined on the tenant too: tests/citus runs this file on a distributed ledger)
CREATE FUNCTION paid_by(auth bigint) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    RETURN (SELECT string_agg(coalesce(g.metadata->>'lot', g.category) || ' ' || -j.amount, ', ' ORDER BY j.id)
              FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
             WHERE j.authorization_id = auth AND j.kind = 'debit');
END $f$;

-- ===================================================================== assets
-- credits is built in (scale 4); products define more.
SELECT credit_asset_define('usd', 2, 'US dollars');
SELECT credit_asset_define('action_credits', scale => 0);
-- defining an existing asset again with the same scale only updates its description
SELECT credit_asset_define('usd', 2, 'money top-ups');
SELECT asset, scale, description FROM credit_ledger.assets ORDER BY asset;

-- ===================================================================== wallets
SELECT wallet, parent, rate_card, overdraft_limit, low_balance_threshold, frozen, metadata
  FROM credit_wallet_create('cust_42', metadata => '{"plan": "free"}');
-- idempotent: the same call again returns the same wallet and creates nothing
SELECT wallet, parent, rate_card, overdraft_limit, frozen, metadata
  FROM credit_wallet_create('cust_42', metadata => '{"plan": "free"}');
SELECT count(*) AS wallets FROM credit_ledger.wallets;
-- settings change through credit_wallet_update; NULL arguments leave settings unchanged
SELECT wallet, overdraft_limit, low_balance_threshold, frozen, metadata
  FROM credit_wallet_update('cust_42', low_balance_threshold => 25, metadata => '{"plan": "starter"}');
SELECT wallet, low_balance_threshold, metadata FROM credit_wallet_update('cust_42', clear => ARRAY['low_balance_threshold']);
SELECT wallet, rate_card, frozen, metadata FROM credit_wallet('cust_42');

-- ===================================================================== rate cards
-- default card: chat per 1k tokens, model-aware through variants; a null variant is the
-- fallback for any model without its own entry
SELECT rate_card, action, variant, credits, asset, unit, vendor_cost
  FROM credit_rate_set('chat', 1, unit => '1k tokens', vendor_cost => 0.002);
SELECT rate_card, action, variant, credits, asset, unit, vendor_cost
  FROM credit_rate_set('chat', 3, variant => 'opus', unit => '1k tokens', vendor_cost => 0.015);
SELECT rate_card, action, variant, credits, asset, unit, vendor_cost
  FROM credit_rate_set('chat', 0.25, variant => 'haiku', unit => '1k tokens', vendor_cost => 0.0008);
-- versions: an old price from 2020, the current price, and a future price not yet in force
SELECT credits FROM credit_rate_set('image.generate', 4, unit => 'image', vendor_cost => 0.04,
                                    effective_from => '2020-01-01 00:00:00+00');
SELECT credits FROM credit_rate_set('image.generate', 5, unit => 'image', vendor_cost => 0.04);
SELECT credits FROM credit_rate_set('image.generate', 6, unit => 'image', vendor_cost => 0.04,
                                    effective_from => now() + interval '30 days');
SELECT rate_card, action, variant, credits, effective_from <= now() AS in_force
  FROM credit_ledger.rates ORDER BY action, variant NULLS FIRST, effective_from;
-- setting the same version again (same instant, same price) adds nothing
SELECT credits FROM credit_rate_set('image.generate', 4, unit => 'image', vendor_cost => 0.04,
                                    effective_from => '2020-01-01 00:00:00+00');
SELECT count(*) AS image_versions FROM credit_ledger.rates WHERE action = 'image.generate';
-- the same instant with another price replaces that version while no authorization used it
SELECT credits FROM credit_rate_set('image.generate', 4.5, unit => 'image', vendor_cost => 0.04,
                                    effective_from => '2020-01-01 00:00:00+00');
SELECT credits FROM credit_ledger.rates WHERE action = 'image.generate' ORDER BY effective_from;
-- a metered action priced in a tiny unit: costs are rounded UP to the asset's scale
SELECT credits FROM credit_rate_set('embed', 0.00001, unit => 'token');
-- an action billed in the scale-0 asset
SELECT credits, asset FROM credit_rate_set('agent.step', 0.5, asset => 'action_credits');

-- a "pro" card: cheaper opus, nothing else; pro wallets fall back to default for the rest
SELECT rate_card, action, variant, credits FROM credit_rate_set('chat', 2, variant => 'opus', rate_card => 'pro',
                                                                unit => '1k tokens', vendor_cost => 0.015);
SELECT wallet, rate_card FROM credit_wallet_create('acme_pro', rate_card => 'pro');
SELECT 'free: ' || variant AS who, cost, asset
  FROM (VALUES ('opus'), ('haiku'), ('flash')) v(variant),
       LATERAL credit_quote('cust_42', 'chat', 1, v.variant)
UNION ALL
SELECT 'pro: ' || variant, cost, asset
  FROM (VALUES ('opus'), ('haiku'), ('flash')) v(variant),
       LATERAL credit_quote('acme_pro', 'chat', 1, v.variant)
ORDER BY 1;
-- actions only on default are priced from default for the pro wallet; the version in force is used
SELECT cost FROM credit_quote('acme_pro', 'image.generate');
-- the quote names the rate version it used
SELECT r.rate_card, r.action, r.variant, r.credits
  FROM credit_quote('acme_pro', 'chat', 1, 'opus') q JOIN credit_ledger.rates r ON r.id = q.rate_id;

-- ===================================================================== rate card documents
SELECT credit_rate_card_load('{
  "name": "team",
  "description": "team plan",
  "entries": [
    {"action": "chat", "variant": "opus", "credits": "2.5", "unit": "1k tokens", "vendor_cost": 0.015,
     "effective_from": "2025-01-01T00:00:00Z"},
    {"action": "chat", "credits": 0.8, "unit": "1k tokens", "effective_from": "2025-01-01T00:00:00Z"},
    {"action": "video.export", "credits": 40, "unit": "minute", "vendor_cost": "0.30",
     "effective_from": "2025-01-01T00:00:00Z"}
  ]}') AS changed;
SELECT jsonb_pretty(credit_rate_card_export('team'));
-- round trip: loading the export changes nothing; loading it under another name copies it
SELECT credit_rate_card_load(credit_rate_card_export('team')) AS changed;
SELECT credit_rate_card_load(jsonb_set(credit_rate_card_export('team'), '{name}', '"team_copy"')) AS changed;
SELECT credit_rate_card_export('team_copy') - 'name' = credit_rate_card_export('team') - 'name' AS same_entries;
-- a changed price is one new version of that entry only
SELECT credit_rate_card_load('{"name": "team", "entries": [
    {"action": "video.export", "credits": 35, "unit": "minute", "vendor_cost": "0.30",
     "effective_from": "2025-06-01T00:00:00Z"}]}') AS changed;
SELECT action, variant, credits, effective_from = '2025-06-01 00:00:00+00' AS june_version
  FROM credit_ledger.rates WHERE rate_card = 'team' ORDER BY action, variant NULLS FIRST, effective_from;
-- a bad document is rejected whole, naming the bad field: the good entries before it are not loaded
SELECT count(*) AS team_versions_before FROM credit_ledger.rates WHERE rate_card = 'team';
SELECT err($$SELECT credit_rate_card_load('{"name": "team", "entries": [
    {"action": "chat", "variant": "haiku", "credits": 0.2},
    {"action": "image.generate", "credits": "lots"}]}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "team", "entries": [
    {"action": "chat", "variant": "haiku", "credits": 0.2},
    {"action": "image.generate", "credits": 3, "price": 3}]}')$$);
SELECT count(*) AS team_versions_after FROM credit_ledger.rates WHERE rate_card = 'team';

-- ===================================================================== grants
-- category default priorities: promotional 10, rollover 20, included 30, refund 40, purchased 50, other 100
SELECT wallet, asset, category, priority, amount, remaining, unit_price, expires_at IS NULL AS never_expires
  FROM credit_grant('cust_42', 100, category => 'included', expires_at => '2090-01-01 00:00:00+00');
SELECT category, priority, amount, unit_price
  FROM credit_grant('cust_42', 20, category => 'promotional', expires_at => '2089-01-01 00:00:00+00');
SELECT category, priority, amount, unit_price FROM credit_grant('cust_42', 500, unit_price => 0.01);
SELECT category, priority, amount FROM credit_grant('cust_42', 5, category => 'rollover', expires_at => '2089-06-01 00:00:00+00');
SELECT category, priority, amount FROM credit_grant('cust_42', 5, category => 'refund');
SELECT category, priority, amount FROM credit_grant('cust_42', 1, category => 'goodwill');
-- an explicit priority wins over the category default
SELECT category, priority, amount FROM credit_grant('cust_42', 2, category => 'purchased', priority => 1);
-- a grant that becomes effective tomorrow: listed, but not in the balance yet
SELECT category, amount, effective_at > now() AS not_yet_effective
  FROM credit_grant('cust_42', 1000, category => 'included', effective_at => now() + interval '1 day',
                    expires_at => now() + interval '31 days');
-- money top-ups in another asset
SELECT asset, category, amount FROM credit_grant('cust_42', 49.99, asset => 'usd');
-- idempotency: the same key and arguments return the first grant and write nothing
SELECT id AS g1 FROM credit_grant('cust_42', 300, unit_price => 0.009, idempotency_key => 'stripe:pi_1') \gset
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT id AS g2 FROM credit_grant('cust_42', 300, unit_price => 0.009, idempotency_key => 'stripe:pi_1') \gset
SELECT :g1 = :g2 AS same_grant,
       (SELECT count(*) FROM credit_ledger.journal) = :journal_before AS nothing_written,
       (SELECT count(*) FROM credit_ledger.grants WHERE idempotency_key = 'stripe:pi_1') AS grants_with_key;
-- keys are per wallet: the same key on another wallet is another grant
SELECT wallet, amount FROM credit_grant('acme_pro', 300, idempotency_key => 'stripe:pi_1');
-- the wallet's lots, in consumption order
SELECT asset, category, priority, amount, remaining, held, unit_price,
       expires_at IS NOT NULL AS expires, effective_at <= now() AS effective
  FROM credit_grants('cust_42') ORDER BY asset, priority, expires_at NULLS LAST, amount;
SELECT category, amount FROM credit_grants('cust_42', 'usd');
SELECT credit_balance('cust_42') AS credits, credit_balance('cust_42', 'usd') AS usd;

-- ===================================================================== quote
-- 2,500 opus tokens = 2.5 units of "1k tokens" at 3 credits: 7.5 credits; no side effects
SELECT count(*) AS auths_before FROM credit_ledger.authorizations \gset
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT cost, asset, spendable, approved, reason FROM credit_quote('cust_42', 'chat', 2.5, 'opus');
SELECT cost, asset, spendable, approved, reason FROM credit_quote('cust_42', 'image.generate', 200);
SELECT (SELECT count(*) FROM credit_ledger.authorizations) = :auths_before AS quote_wrote_nothing,
       (SELECT count(*) FROM credit_ledger.journal) = :journal_before AS journal_unchanged;

-- ===================================================================== consumption order
-- Six lots in one wallet, labelled A..F by creation. Order: priority, then expiry (never
-- expiring last), then oldest first. Expected: E F (promo, same expiry, E older), D (promo,
-- later expiry), C (included), B (purchased, expiring), A (purchased, never expires).
SELECT wallet FROM credit_wallet_create('order_test');
SELECT action, credits FROM credit_rate_set('step', 15);
SELECT metadata->>'lot' AS lot, category, priority FROM credit_grant('order_test', 10, metadata => '{"lot": "A"}');
SELECT metadata->>'lot' AS lot, category, priority FROM credit_grant('order_test', 10, expires_at => '2095-01-01 00:00:00+00', metadata => '{"lot": "B"}');
SELECT metadata->>'lot' AS lot, category, priority FROM credit_grant('order_test', 10, category => 'included', metadata => '{"lot": "C"}');
SELECT metadata->>'lot' AS lot, category, priority FROM credit_grant('order_test', 10, category => 'promotional', expires_at => '2092-01-01 00:00:00+00', metadata => '{"lot": "D"}');
SELECT metadata->>'lot' AS lot, category, priority FROM credit_grant('order_test', 10, category => 'promotional', expires_at => '2091-01-01 00:00:00+00', metadata => '{"lot": "E"}');
SELECT metadata->>'lot' AS lot, category, priority FROM credit_grant('order_test', 10, category => 'promotional', expires_at => '2091-01-01 00:00:00+00', metadata => '{"lot": "F"}');
SELECT metadata->>'lot' AS lot FROM credit_grants('order_test');
SELECT clock_timestamp() AS t_granted \gset
SELECT authorization_id AS a1 FROM credit_authorize('order_test', 'step') \gset
SELECT authorization_id AS a2 FROM credit_authorize('order_test', 'step') \gset
SELECT authorization_id AS a3 FROM credit_authorize('order_test', 'step') \gset
SELECT clock_timestamp() AS t_three \gset
SELECT authorization_id AS a4 FROM credit_authorize('order_test', 'step') \gset
-- the wallet is empty now: the next call is declined, as data, and nothing is debited
-- (a decline's cost is what the call would have cost)
SELECT authorization_id AS a5 FROM credit_authorize('order_test', 'step') \gset
SELECT n, a.approved, a.reason, a.cost, a.balance, a.status, paid_by(a.authorization_id)
  FROM unnest(ARRAY[:a1, :a2, :a3, :a4, :a5]::bigint[]) WITH ORDINALITY u(id, n),
       LATERAL credit_authorization(u.id) a
 ORDER BY n;
SELECT metadata->>'lot' AS lot, amount, remaining FROM credit_grants('order_test') ORDER BY lot;
-- a decline at zero is recorded with its reason; a partial fit is declined too, not half-debited
SELECT approved, reason, cost, balance FROM credit_authorize('order_test', 'step');
SELECT category, amount FROM credit_grant('order_test', 7);
SELECT approved, reason, cost, balance FROM credit_authorize('order_test', 'step');
SELECT credit_balance('order_test') AS balance_still_7;
-- balance as of past instants, recomputed from the journal
SELECT credit_balance('order_test', as_of => :'t_granted') AS after_grants,
       credit_balance('order_test', as_of => :'t_three') AS after_three_steps,
       credit_balance('order_test', as_of => '2000-01-01 00:00:00+00') AS before_anything,
       credit_balance('order_test') AS now;

-- ===================================================================== authorize
-- chat on the free wallet: 2,500 opus tokens cost 7.5, paid by the priority-1 lot (2), then
-- the promotional lot (5.5)
SELECT approved, reason, cost, asset, balance, status, quantity, variant, paid_by(authorization_id)
  FROM credit_authorize('cust_42', 'chat', 2.5, 'opus', metadata => '{"request": "r1"}');
-- the authorization records the rate version and the vendor cost (per unit x quantity)
SELECT a.action, a.variant, a.quantity, a.cost, a.vendor_cost, r.rate_card, r.credits AS rate_credits,
       a.metadata
  FROM credit_ledger.authorizations a JOIN credit_ledger.rates r ON r.id = a.rate_id
 WHERE a.wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'cust_42') ORDER BY a.id;
-- an unknown variant uses the null-variant entry (1 credit per 1k tokens)
SELECT cost FROM credit_authorize('cust_42', 'chat', 2, 'flash');
-- the image price in force now is 5 (not the 2020 price, not the future one)
SELECT cost, vendor_cost FROM credit_authorize('cust_42', 'image.generate');
-- the pro wallet: opus from its own card (2), haiku falls back to default (0.25)
SELECT variant, cost, balance FROM credit_authorize('acme_pro', 'chat', 10, 'opus');
SELECT variant, cost, balance FROM credit_authorize('acme_pro', 'chat', 10, 'haiku');
-- a past debit keeps its version when the price changes
SELECT credits FROM credit_rate_set('chat', 2.2, variant => 'opus', rate_card => 'pro', unit => '1k tokens',
                                    vendor_cost => 0.015, effective_from => now());
SELECT a.cost, r.credits AS rate_credits
  FROM credit_ledger.authorizations a JOIN credit_ledger.rates r ON r.id = a.rate_id
 WHERE a.variant = 'opus' AND a.wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'acme_pro');
SELECT cost FROM credit_quote('acme_pro', 'chat', 10, 'opus');
-- moving a wallet to another card changes its prices from now on
SELECT wallet, rate_card FROM credit_wallet_update('order_test', rate_card => 'pro');
SELECT cost FROM credit_quote('order_test', 'chat', 10, 'opus');
SELECT wallet, rate_card FROM credit_wallet_update('order_test', clear => ARRAY['rate_card']);
SELECT cost FROM credit_quote('order_test', 'chat', 10, 'opus');

-- rounding: costs are rounded UP to the asset's scale, never down
SELECT cost FROM credit_authorize('cust_42', 'embed', 1);        -- 0.00001 -> 0.0001
SELECT cost FROM credit_authorize('cust_42', 'embed', 12345);    -- 0.12345 -> 0.1235
SELECT cost FROM credit_authorize('cust_42', 'embed', 20000);    -- 0.2 exactly
SELECT asset, amount FROM credit_grant('cust_42', 10, asset => 'action_credits');
SELECT cost, asset, balance FROM credit_authorize('cust_42', 'agent.step', 3);  -- 1.5 -> 2
SELECT cost, asset, balance FROM credit_authorize('cust_42', 'agent.step', 1);  -- 0.5 -> 1

-- idempotent retry: the same key and arguments return the first result and debit nothing more
SELECT authorization_id AS k1, balance AS kb1 FROM credit_authorize('cust_42', 'image.generate', idempotency_key => 'req-77') \gset
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT authorization_id AS k2, balance AS kb2 FROM credit_authorize('cust_42', 'image.generate', idempotency_key => 'req-77') \gset
SELECT :k1 = :k2 AS same_authorization, :kb1 = :kb2 AS same_balance,
       (SELECT count(*) FROM credit_ledger.journal) - :journal_before AS journal_entries_written,
       (SELECT count(*) FROM credit_ledger.authorizations WHERE idempotency_key = 'req-77') AS authorizations_with_key;
-- keys are per wallet: the same key on another wallet is another request
SELECT wallet, approved, cost FROM credit_authorize('acme_pro', 'image.generate', idempotency_key => 'req-77');
-- a declined call retried with its key returns the same decline
SELECT approved, reason FROM credit_authorize('order_test', 'step', idempotency_key => 'req-78');
SELECT category, amount FROM credit_grant('order_test', 100);
SELECT approved, reason FROM credit_authorize('order_test', 'step', idempotency_key => 'req-78');
SELECT approved, reason, cost FROM credit_authorize('order_test', 'step', idempotency_key => 'req-79');

-- a frozen wallet declines (as data) and debits nothing; unfreezing restores it
SELECT wallet, frozen FROM credit_wallet_update('cust_42', frozen => true);
SELECT approved, reason, cost FROM credit_authorize('cust_42', 'chat', 1);
SELECT approved, reason FROM credit_quote('cust_42', 'chat', 1);
SELECT wallet, frozen FROM credit_wallet_update('cust_42', frozen => false);
SELECT approved, reason, cost FROM credit_authorize('cust_42', 'chat', 1);

-- ===================================================================== balances
SELECT credit_balance('cust_42') AS credits, credit_balance('cust_42', 'usd') AS usd,
       credit_balance('cust_42', 'action_credits') AS action_credits;
-- the cached amounts equal what the journal says
SELECT g.category, g.remaining, sum(j.amount) AS journal
  FROM credit_ledger.grants g JOIN credit_ledger.journal j ON j.grant_id = g.id AND j.tenant = g.tenant
 WHERE g.wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'cust_42') AND g.asset = 'credits'
 GROUP BY g.id, g.tenant ORDER BY g.priority, g.id;
SELECT balance, available, held, debt, overdraft_room, pool_access, spendable, expiring_soon, by_category
  FROM credit_balance_detail('cust_42');
-- "expiring soon" counts lots that expire within the window
SELECT category, amount FROM credit_grant('cust_42', 12, category => 'promotional', expires_at => now() + interval '3 days');
SELECT balance, expiring_soon, by_category->'promotional' AS promotional
  FROM credit_balance_detail('cust_42');
SELECT expiring_soon FROM credit_balance_detail('cust_42', expiring_within => '1 day');
SELECT balance, held, spendable, by_category FROM credit_balance_detail('order_test');

-- ===================================================================== integrity
SELECT * FROM credit_verify();
