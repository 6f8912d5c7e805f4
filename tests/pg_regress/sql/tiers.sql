-- tiers.sql: volume tiers (issue 22, since 0.8.0) with hand-checked numbers. chat/sonnet costs
-- 15 per unit for a wallet's first 1,000 units in its period, 12 from unit 1,000, 10 from 5,000.
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
\set ON_ERROR_STOP 0
CREATE FUNCTION err(stmt text) RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE st text; msg text;
BEGIN
    EXECUTE stmt;
    RETURN NEXT 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN NEXT st || ': ' || msg;
END $f$;
CREATE FUNCTION tier_position(w text) RETURNS numeric LANGUAGE plpgsql AS $f$
BEGIN
    RETURN (SELECT coalesce(sum(t.units), 0) FROM credit_ledger.tier_usage t
              JOIN credit_ledger.wallets x ON x.id = t.wallet_id AND x.tenant = t.tenant WHERE x.wallet = w);
END $f$;

SELECT action, variant, credits, tiers
  FROM credit_rate_set(action => 'chat', variant => 'sonnet', credits => 15, vendor_cost => 0.9,
                       tiers => '[{"from": 1000, "credits": 12}, {"from": 5000, "credits": "10"}]');
-- tiers are discounts with increasing starts; each names exactly from and credits
SELECT err($$SELECT credit_rate_set(action => 'x', credits => 15, tiers => '[{"from": 1000, "credits": 16}]')$$);
SELECT err($$SELECT credit_rate_set(action => 'x', credits => 15, tiers => '[{"from": 10, "credits": 12}, {"from": 10, "credits": 11}]')$$);
SELECT err($$SELECT credit_rate_set(action => 'x', credits => 15, tiers => '[{"from": 0, "credits": 12}]')$$);
SELECT err($$SELECT credit_rate_set(action => 'x', credits => 15, tiers => '[]')$$);
SELECT err($$SELECT credit_rate_set(action => 'x', credits => 15, tiers => '[{"from": 10, "credits": 12, "to": 20}]')$$);
SELECT err($$SELECT credit_rate_set(action => 'x', credits => 15, tiers => '{"from": 10}')$$);
SELECT count(*) AS rates_of_x FROM credit_ledger.rates WHERE action = 'x';

SELECT wallet FROM credit_wallet_create(wallet => 'vol');
SELECT remaining FROM credit_grant(wallet => 'vol', amount => 100000);

-- 990 units at 15 = 14,850; position 990
SELECT approved, cost, balance FROM credit_authorize('vol', 'chat', 990, 'sonnet');
SELECT tier_position('vol');
-- a quote of 20 crosses the boundary: 10 at 15 + 10 at 12 = 270, in two bands
SELECT cost, approved FROM credit_quote('vol', 'chat', 20, 'sonnet');
SELECT tier, from_units, units, credits_per_unit, cost FROM credit_quote_tiers('vol', 'chat', 20, 'sonnet');
-- the call across it costs the same: 270; balance 100,000 - 14,850 - 270 = 84,880
SELECT approved, cost, balance FROM credit_authorize('vol', 'chat', 20, 'sonnet', idempotency_key => 't-1');
-- a replay neither charges nor moves the position again
SELECT approved, cost, balance FROM credit_authorize('vol', 'chat', 20, 'sonnet', idempotency_key => 't-1');
SELECT tier_position('vol');
-- inside tier 1: 10 x 12 = 120; position 1,020
SELECT cost FROM credit_authorize('vol', 'chat', 10, 'sonnet');

-- ---- holds: reserve from the position seen, priced at capture from the position then --------
-- a hold of 4,000 at 1,020: 3,980 x 12 + 20 x 10 = 47,960 reserved; the position stays 1,020
SELECT authorization_id AS h1, cost FROM credit_hold('vol', 'chat', 4000, 'sonnet') \gset
SELECT :'cost' AS reserved, tier_position('vol');
-- 100 units meanwhile at 12 = 1,200; position 1,120
SELECT cost FROM credit_authorize('vol', 'chat', 100, 'sonnet');
-- captured at 3,000 from 1,120 (all below 5,000): 36,000; position 4,120
SELECT status, cost, captured FROM credit_capture(:h1, 3000);
SELECT tier_position('vol');
-- a hold of 1,000 at 4,120: 880 x 12 + 120 x 10 = 11,760 reserved
SELECT authorization_id AS h2, cost FROM credit_hold('vol', 'chat', 1000, 'sonnet') \gset
SELECT :'cost' AS reserved;
-- 500 at 12 = 6,000 meanwhile; position 4,620
SELECT cost FROM credit_authorize('vol', 'chat', 500, 'sonnet');
-- captured as held (1,000) from 4,620: 380 x 12 + 620 x 10 = 10,760, less than reserved
SELECT status, cost, captured FROM credit_capture(:h2);
SELECT tier_position('vol');
-- a released hold moves nothing
SELECT authorization_id AS h3 FROM credit_hold('vol', 'chat', 50, 'sonnet') \gset
SELECT status FROM credit_release(:h3);
SELECT tier_position('vol');
-- a declined call moves nothing: 10,000 x 10 = 100,000 > the balance
SELECT approved, reason, cost FROM credit_authorize('vol', 'chat', 10000, 'sonnet');
SELECT tier_position('vol');
-- a refund gives credits back but not the position (the units were spent)
SELECT authorization_id AS d1, cost FROM credit_authorize('vol', 'chat', 10, 'sonnet') \gset
SELECT amount FROM credit_refund(:d1);
SELECT tier_position('vol');
-- spent: 14,850 + 270 + 120 + 1,200 + 36,000 + 6,000 + 10,760 + 100 - 100 = 69,200; 30,800 left
SELECT credit_balance('vol') AS balance;

-- ---- the counter: per wallet, action, variant and period -------------------------------------
SELECT w.wallet, t.action, t.variant, t.units,
       t.period_start = credit_ledger._period_start(w.period, w.period_anchor, now()) AS this_period
  FROM credit_ledger.tier_usage t JOIN credit_ledger.wallets w ON w.id = t.wallet_id AND w.tenant = t.tenant ORDER BY 1, 2, 3;

-- ---- pools: a member counts its own units -----------------------------------------------------
SELECT wallet FROM credit_wallet_create(wallet => 'team');
SELECT wallet FROM credit_wallet_create(wallet => 'm1', parent => 'team');
SELECT wallet FROM credit_wallet_create(wallet => 'm2', parent => 'team');
SELECT remaining FROM credit_grant(wallet => 'team', amount => 50000);
-- m1: 1,200 units = 1,000 x 15 + 200 x 12 = 17,400; m2 starts at 0: 10 x 15 = 150
SELECT approved, cost FROM credit_authorize('m1', 'chat', 1200, 'sonnet');
SELECT approved, cost FROM credit_authorize('m2', 'chat', 10, 'sonnet');
SELECT tier_position('m1') AS m1, tier_position('m2') AS m2, tier_position('team') AS team;

-- ---- agent runs: calls count on the wallet that opened the run --------------------------------
SELECT run_id AS r1 FROM credit_run_open('m2', 5000) \gset
-- m2 is at 10: 990 x 15 + 10 x 12 = 14,970 > the run's 5,000 budget: declined; 300 x 15 = 4,500
SELECT approved, reason, cost FROM credit_authorize('m2', 'chat', 1000, 'sonnet', run => :r1);
SELECT approved, cost FROM credit_authorize('m2', 'chat', 300, 'sonnet', run => :r1);
SELECT tier_position('m2') AS m2;
SELECT status FROM credit_run_close(:r1);

-- ---- degrade: each variant priced from its own position ---------------------------------------
SELECT variant, fallback FROM credit_rate_set(action => 'chat', variant => 'opus', credits => 60, fallback => 'sonnet');
SELECT wallet FROM credit_wallet_create(wallet => 'small');
SELECT remaining FROM credit_grant(wallet => 'small', amount => 100);
-- 5 x opus = 300 > 100; 5 x sonnet from 0 = 75: sonnet, and sonnet's position moves to 5
SELECT approved, variant, cost, balance FROM credit_authorize('small', 'chat', 5, 'opus', degrade => true);
SELECT action, variant, units FROM credit_ledger.tier_usage t
  JOIN credit_ledger.wallets w ON w.id = t.wallet_id AND w.tenant = t.tenant WHERE w.wallet = 'small' AND units > 0;

-- ---- the usage trigger bills through the same path --------------------------------------------
CREATE TABLE usage (id bigserial, customer text, tokens numeric, auth bigint);
CREATE TRIGGER bill BEFORE INSERT ON usage FOR EACH ROW EXECUTE FUNCTION
    credit_usage_trigger('wallet=customer', 'action_value=chat', 'variant_value=sonnet',
                         'quantity=tokens', 'authorization_id=auth');
-- small is at 5: 995 x 15 + 5 x 12 = 14,985 > 25: declined (error); 1 unit = 15
SELECT err($$INSERT INTO usage (customer, tokens) VALUES ('small', 1000)$$);
INSERT INTO usage (customer, tokens) VALUES ('small', 1);
SELECT a.cost FROM usage u JOIN credit_ledger.authorizations a ON a.id = u.auth;

-- ---- rate-card documents carry the tiers ------------------------------------------------------
SELECT credit_rate_card_load('{"name": "bulk", "entries": [
  {"action": "embed", "credits": "2", "tiers": [{"from": 100000, "credits": "1.5"}]}]}');
SELECT e -> 'tiers' AS tiers FROM jsonb_array_elements(credit_rate_card_export('bulk') -> 'entries') e;
-- loading it again changes nothing; other tiers are a new version
SELECT credit_rate_card_load(credit_rate_card_export('bulk'));
SELECT credit_rate_card_load('{"name": "bulk", "entries": [
  {"action": "embed", "credits": "2", "tiers": [{"from": 100000, "credits": "1.25"}]}]}');
SELECT err($$SELECT credit_rate_card_load('{"name": "bulk", "entries": [
  {"action": "embed", "credits": "2", "tiers": [{"from": 100000, "credits": "3"}]}]}')$$);
-- a quote of an untiered entry is one band, tier 0
SELECT tier, from_units, units, credits_per_unit, cost FROM credit_quote_tiers('small', 'chat', 2, 'opus');

SELECT count(*) AS violations FROM credit_verify();
