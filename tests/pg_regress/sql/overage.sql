-- overage.sql: the overage menu (issue 22) with hand-checked numbers. Degrade: a chain of three
-- variants, opus (10 credits per unit) -> sonnet (4) -> haiku (1).
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

-- ---- the chain --------------------------------------------------------------------------------
SELECT action, variant, credits, vendor_cost, fallback
  FROM credit_rate_set(action => 'chat', variant => 'opus', credits => 10, vendor_cost => 0.06, fallback => 'sonnet');
SELECT variant, fallback FROM credit_rate_set(action => 'chat', variant => 'sonnet', credits => 4, vendor_cost => 0.02, fallback => 'haiku');
SELECT variant, fallback FROM credit_rate_set(action => 'chat', variant => 'haiku', credits => 1, vendor_cost => 0.004);
-- a fallback names another variant
SELECT err($$SELECT credit_rate_set(action => 'chat', variant => 'haiku', credits => 1, fallback => 'haiku')$$);
SELECT err($$SELECT credit_rate_set(action => 'chat', variant => 'haiku', credits => 1, fallback => '')$$);

SELECT wallet FROM credit_wallet_create(wallet => 'ann');
SELECT remaining FROM credit_grant(wallet => 'ann', amount => 25);

-- 2 x opus = 20 <= 25: approved as asked (not degraded)
SELECT approved, variant, cost, balance FROM credit_authorize('ann', 'chat', 2, 'opus', degrade => true);
-- a quote says beforehand what a degrading call gets (since 0.9.0): 2 x opus = 20 > 5, so haiku
-- (2); without degrade the variant asked for, declined
SELECT cost, spendable, approved, reason, priced_variant
  FROM credit_quote('ann', 'chat', 2, 'opus', degrade => true);
SELECT cost, spendable, approved, reason, priced_variant FROM credit_quote('ann', 'chat', 2, 'opus');
-- 2 x opus = 20 > 5; 2 x sonnet = 8 > 5; 2 x haiku = 2 <= 5: haiku, balance 3
SELECT approved, variant, cost, balance, vendor_cost
  FROM credit_authorize('ann', 'chat', 2, 'opus', idempotency_key => 'd-1', degrade => true);
-- the same key: the same authorization; the same key without degrade is another request
SELECT approved, variant, cost FROM credit_authorize('ann', 'chat', 2, 'opus', idempotency_key => 'd-1', degrade => true);
SELECT err($$SELECT credit_authorize('ann', 'chat', 2, 'opus', idempotency_key => 'd-1')$$);
-- 4 units: opus 40, sonnet 16, haiku 4 > 3: declined, with the variant asked for and its cost
SELECT approved, reason, variant, cost, balance FROM credit_authorize('ann', 'chat', 4, 'opus', degrade => true);
-- the quote agrees: nothing affordable, the variant asked for with its cost and reason
SELECT cost, spendable, approved, reason, priced_variant
  FROM credit_quote('ann', 'chat', 4, 'opus', degrade => true);
-- a frozen wallet: no cheaper variant avoids that (the chain ends at once)
SELECT frozen FROM credit_wallet_update('ann', frozen => true);
SELECT cost, approved, reason, priced_variant FROM credit_quote('ann', 'chat', 1, 'haiku', degrade => true);
SELECT frozen FROM credit_wallet_update('ann', frozen => false);
-- without degrade a call is declined as before
SELECT approved, reason, variant, cost FROM credit_authorize('ann', 'chat', 1, 'opus');
SELECT variant, degraded, requested_variant, status, cost
  FROM credit_ledger.authorizations WHERE wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'ann')
 ORDER BY id;

-- ---- holds ------------------------------------------------------------------------------------
-- balance 3 + 10 = 13; a hold of 2 x opus = 20 > 13 degrades to 2 x sonnet = 8; balance 5
SELECT remaining FROM credit_grant(wallet => 'ann', amount => 10);
SELECT authorization_id AS hold_id, approved, status, variant, cost, balance
  FROM credit_hold('ann', 'chat', 2, 'opus', degrade => true) \gset
SELECT :'approved', :'status', :'variant', :'cost', :'balance';
-- captured at 1 unit of the variant held (sonnet, 4): balance 13 - 4 = 9
SELECT status, variant, captured, balance FROM credit_capture(:hold_id, 1);

-- ---- where the chain ends ---------------------------------------------------------------------
-- a cycle (haiku -> opus): each variant is tried once. 0.5 credits pay for none of them.
SELECT variant, fallback FROM credit_rate_set(action => 'chat', variant => 'haiku', credits => 1, vendor_cost => 0.004, fallback => 'opus');
SELECT wallet FROM credit_wallet_create(wallet => 'bob');
SELECT remaining FROM credit_grant(wallet => 'bob', amount => 0.5);
SELECT approved, reason, variant, cost FROM credit_authorize('bob', 'chat', 1, 'haiku', degrade => true);
-- ... and 1.5 pays for haiku, reached from sonnet
SELECT remaining FROM credit_grant(wallet => 'bob', amount => 1);
SELECT approved, variant, cost, balance FROM credit_authorize('bob', 'chat', 1, 'sonnet', degrade => true);
-- a fallback without a rate entry of its own ends the chain (not priced as the action's entry)
SELECT variant, fallback FROM credit_rate_set(action => 'embed', credits => 1);
SELECT variant, fallback FROM credit_rate_set(action => 'embed', variant => 'large', credits => 3, fallback => 'small');
SELECT approved, reason, variant, cost FROM credit_authorize('bob', 'embed', 1, 'large', degrade => true);
-- a frozen wallet is declined: no variant helps
SELECT wallet FROM credit_wallet_create(wallet => 'ice');
SELECT remaining FROM credit_grant(wallet => 'ice', amount => 100);
SELECT frozen FROM credit_wallet_update(wallet => 'ice', frozen => true);
SELECT approved, reason, variant FROM credit_authorize('ice', 'chat', 1, 'opus', degrade => true);

-- ---- limits: a spend cap, a pool limit, a run's max cost per call -----------------------------
-- cap 12: opus 10 (spent 10); opus again: 20 > 12, sonnet 14 > 12, haiku 11 <= 12
SELECT wallet FROM credit_wallet_create(wallet => 'cap', spend_cap => 12);
SELECT remaining FROM credit_grant(wallet => 'cap', amount => 100);
SELECT approved, variant, cost FROM credit_authorize('cap', 'chat', 1, 'opus', degrade => true);
SELECT approved, reason, variant, cost FROM credit_authorize('cap', 'chat', 1, 'opus', degrade => true);
SELECT approved, reason, variant, cost FROM credit_authorize('cap', 'chat', 1, 'opus');
-- a member with a pool limit of 5: opus 10 and sonnet 4 + ... the member has drawn nothing yet
SELECT wallet FROM credit_wallet_create(wallet => 'team');
SELECT remaining FROM credit_grant(wallet => 'team', amount => 1000);
SELECT wallet FROM credit_wallet_create(wallet => 'm1', parent => 'team', pool_limit => 5);
SELECT approved, variant, cost FROM credit_authorize('m1', 'chat', 1, 'opus', degrade => true);
SELECT approved, variant, cost FROM credit_authorize('m1', 'chat', 1, 'opus', degrade => true);
SELECT approved, reason, variant, cost FROM credit_authorize('m1', 'chat', 1, 'opus', degrade => true);
-- a run with max_cost_per_call 5: opus (10) is over it, sonnet (4) is not
SELECT run_id, approved FROM credit_run_open(wallet => 'team', budget => 100, max_cost_per_call => 5) \gset
SELECT approved, reason, variant, cost FROM credit_authorize('team', 'chat', 1, 'opus', run => :run_id, degrade => true);
SELECT approved, reason, variant FROM credit_authorize('team', 'chat', 1, 'opus', run => :run_id);

-- ---- a wallet with lanes: the first variant on a lane, the chain on the whole wallet ----------
SELECT wallet FROM credit_wallet_create(wallet => 'wide');
SELECT credit_wallet_lanes('wide', 4);
SELECT remaining FROM credit_grant(wallet => 'wide', amount => 14);
SELECT approved, variant, cost FROM credit_authorize('wide', 'chat', 1, 'opus', degrade => true);
SELECT approved, variant, cost, balance FROM credit_authorize('wide', 'chat', 1, 'opus', degrade => true);
SELECT approved, reason, variant, cost, balance FROM credit_authorize('wide', 'chat', 1, 'sonnet', degrade => true);

-- ---- the usage trigger: degrade=true writes the variant authorized into the row --------------
CREATE TABLE llm_calls (id serial, customer text, model text, tokens numeric, auth_id bigint);
CREATE TRIGGER bill BEFORE INSERT ON llm_calls FOR EACH ROW EXECUTE FUNCTION
    credit_usage_trigger('wallet=customer', 'action_value=chat', 'quantity=tokens', 'variant=model',
                         'authorization_id=auth_id', 'degrade=true');
SELECT wallet FROM credit_wallet_create(wallet => 'cat');
SELECT remaining FROM credit_grant(wallet => 'cat', amount => 6);
INSERT INTO llm_calls (customer, model, tokens) VALUES ('cat', 'opus', 1) RETURNING model, auth_id IS NOT NULL AS billed;
SELECT credit_balance('cat');
CREATE TABLE bad_calls (customer text);
CREATE TRIGGER bill BEFORE INSERT ON bad_calls FOR EACH ROW EXECUTE FUNCTION
    credit_usage_trigger('wallet=customer', 'action_value=chat', 'degrade=yes');
SELECT err($$INSERT INTO bad_calls VALUES ('cat')$$);

-- ---- rate card documents ----------------------------------------------------------------------
SELECT credit_rate_card_load('{"name": "pro", "entries": [
    {"action": "chat", "variant": "opus", "credits": 8, "fallback": "sonnet"},
    {"action": "chat", "variant": "sonnet", "credits": 3}]}');
SELECT e ->> 'variant' AS variant, e ->> 'credits' AS credits, e ->> 'fallback' AS fallback
  FROM jsonb_array_elements(credit_rate_card_export('pro') -> 'entries') e ORDER BY 1;
-- loading the same document again changes nothing; a new fallback is a new version
SELECT credit_rate_card_load('{"name": "pro", "entries": [{"action": "chat", "variant": "opus", "credits": 8, "fallback": "sonnet"}]}');
SELECT credit_rate_card_load('{"name": "pro", "entries": [{"action": "chat", "variant": "opus", "credits": 8, "fallback": "haiku"}]}');
SELECT err($$SELECT credit_rate_card_load('{"name": "pro", "entries": [{"action": "chat", "variant": "opus", "credits": 8, "fallback": "opus"}]}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "pro", "entries": [{"action": "chat", "variant": "opus", "credits": 8, "fallback": 3}]}')$$);

-- ---- auto top-up: one event per crossing of the threshold, with the grant's key ---------------
SELECT wallet FROM credit_wallet_create(wallet => 'dan');
SELECT remaining FROM credit_grant(wallet => 'dan', amount => 30);
SELECT wallet, asset, auto_topup_threshold, auto_topup_amount, upgrade_at, topups
  FROM credit_wallet_overage('dan', auto_topup_threshold => 20, auto_topup_amount => 50);
-- 30 - 4 = 26: above; 26 - 10 = 16: below (one low_balance and one auto_topup event); 16 - 4 = 12: no new event
SELECT balance FROM credit_authorize('dan', 'chat', 1, 'sonnet');
SELECT balance FROM credit_authorize('dan', 'chat', 1, 'opus');
SELECT balance FROM credit_authorize('dan', 'chat', 1, 'sonnet');
SELECT kind, payload - 'wallet' AS payload FROM credit_ledger.events
 WHERE wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'dan') ORDER BY id;
-- the payment worker grants with the event's key (twice: one grant); that re-arms the alert
SELECT remaining FROM credit_grant(wallet => 'dan', amount => 50, idempotency_key => 'auto_topup.1');
SELECT remaining FROM credit_grant(wallet => 'dan', amount => 50, idempotency_key => 'auto_topup.1');
SELECT credit_balance('dan');
-- 62 - 10 x 5 = 12: the second crossing, key auto_topup.2
SELECT balance FROM credit_authorize('dan', 'chat', 5, 'opus');
SELECT payload ->> 'idempotency_key' AS key, payload ->> 'amount' AS amount, payload ->> 'balance' AS balance
  FROM credit_ledger.events WHERE kind = 'auto_topup' ORDER BY id;
-- settings: bad values are refused, nothing changes
SELECT err($$SELECT credit_wallet_overage('dan', auto_topup_amount => 0)$$);
SELECT err($$SELECT credit_wallet_overage('nobody', auto_topup_amount => 5)$$);
SELECT err($$SELECT credit_wallet_overage('ann', auto_topup_amount => 5)$$);
SELECT err($$SELECT credit_wallet_overage('dan', upgrade_at => '{100, 50}')$$);
SELECT err($$SELECT credit_wallet_overage('dan', clear => '{frozen}')$$);
SELECT err($$SELECT credit_wallet_overage('dan', asset => 'gold')$$);
SELECT auto_topup_threshold, auto_topup_amount, upgrade_at, topups FROM credit_wallet_overage('dan');
SELECT auto_topup_amount FROM credit_wallet_overage('dan', clear => '{auto_topup}');

-- ---- upgrade signals: credit_tick, one event per tier and period -----------------------------
-- dan's usage this period: 4 + 10 + 4 + 50 = 68
SELECT upgrade_at FROM credit_wallet_overage('dan', upgrade_at => '{50, 60, 100}');
SELECT boundaries FROM credit_tick();
SELECT boundaries FROM credit_tick();
SELECT payload ->> 'tier' AS tier, payload ->> 'period_usage' AS usage FROM credit_ledger.events
 WHERE kind = 'upgrade_suggested' ORDER BY id;
-- 40 more: 108 reaches the last tier
SELECT remaining FROM credit_grant(wallet => 'dan', amount => 100);
SELECT balance FROM credit_authorize('dan', 'chat', 4, 'opus');
SELECT boundaries FROM credit_tick();
SELECT payload ->> 'tier' AS tier, payload ->> 'period_usage' AS usage FROM credit_ledger.events
 WHERE kind = 'upgrade_suggested' ORDER BY id;

-- ---- reports: degraded calls ------------------------------------------------------------------
SELECT wallet, action, requested_variant, variant, calls, credits, vendor_cost
  FROM credit_ledger.degraded_daily ORDER BY wallet, requested_variant, variant;
SELECT wallet, variant, calls, degraded_calls FROM credit_ledger.usage_daily
 WHERE degraded_calls > 0 ORDER BY wallet, variant;
SELECT count(*) AS violations FROM credit_verify();
