-- fair_use.sql: fair use (issue 22, since 0.8.0) with hand-checked numbers. chat: opus 10 per
-- unit (vendor 0.06) -> sonnet 4 (0.02) -> haiku 1 (0.004).
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
CREATE FUNCTION used(w text) RETURNS numeric LANGUAGE plpgsql AS $f$
BEGIN
    RETURN (SELECT coalesce(sum(f.used), 0) FROM credit_ledger.fair_use_usage f
              JOIN credit_ledger.wallets x ON x.id = f.wallet_id AND x.tenant = f.tenant WHERE x.wallet = w);
END $f$;

SELECT count(*) AS rates FROM (
  SELECT credit_rate_set(action => 'chat', variant => 'opus', credits => 10, vendor_cost => 0.06, fallback => 'sonnet')
  UNION ALL SELECT credit_rate_set(action => 'chat', variant => 'sonnet', credits => 4, vendor_cost => 0.02, fallback => 'haiku')
  UNION ALL SELECT credit_rate_set(action => 'chat', variant => 'haiku', credits => 1, vendor_cost => 0.004)) r;

-- ---- setting it -------------------------------------------------------------------------------
SELECT wallet FROM credit_wallet_create(wallet => 'unl');
SELECT remaining FROM credit_grant(wallet => 'unl', amount => 5);
SELECT wallet, asset, fair_use_limit FROM credit_wallet_overage('unl', fair_use_limit => 100);
SELECT tracked FROM credit_ledger.wallets WHERE wallet = 'unl';
SELECT err($$SELECT credit_wallet_overage('unl', fair_use_limit => 0)$$);
SELECT err($$SELECT credit_wallet_overage('unl', fair_use_limit => 'Infinity')$$);
SELECT err($$SELECT credit_wallet_overage('unl', clear => '{unlimited}')$$);

-- ---- inside the allowance: approved, no credit moves ------------------------------------------
-- 5 x opus = 50 of 100; the 5 credits stay (balance 5)
SELECT approved, variant, cost, vendor_cost, balance FROM credit_authorize('unl', 'chat', 5, 'opus');
SELECT used('unl');
-- a quote of 6 x opus = 60 > the 50 left: fair_use_exceeded; spendable is what is left
SELECT cost, spendable, approved, reason FROM credit_quote('unl', 'chat', 6, 'opus');
-- 4 x opus = 40: used 90
SELECT approved, cost, balance FROM credit_authorize('unl', 'chat', 4, 'opus');
-- 2 x opus = 20 > 10 left: declined, nothing counted
SELECT approved, reason, cost, balance FROM credit_authorize('unl', 'chat', 2, 'opus');
SELECT used('unl');
-- degrade: opus 20 and then sonnet 8 <= 10 left: sonnet, used 98
SELECT approved, variant, cost FROM credit_authorize('unl', 'chat', 2, 'opus', degrade => true);
SELECT used('unl');

-- ---- the boundary inside a hold ---------------------------------------------------------------
-- a hold of 1 x sonnet = 4 > 2 left: declined; 2 x haiku = 2 fits: held, used 100
SELECT approved, reason FROM credit_hold('unl', 'chat', 1, 'sonnet');
SELECT authorization_id AS h1, status, cost FROM credit_hold('unl', 'chat', 2, 'haiku') \gset
SELECT :'status', :'cost', used('unl');
-- the hold counts: 1 x haiku no longer fits
SELECT approved, reason FROM credit_authorize('unl', 'chat', 1, 'haiku');
-- captured at 1 unit: fair use corrected to 99; then 1 x haiku fits again (100)
SELECT status, captured FROM credit_capture(:h1, 1);
SELECT used('unl');
SELECT approved, cost FROM credit_authorize('unl', 'chat', 1, 'haiku');
SELECT used('unl');

-- a release gives the hold's cost back: limit 10, a hold of 1 x opus = 10, released
SELECT wallet FROM credit_wallet_create(wallet => 'rel');
SELECT fair_use_limit FROM credit_wallet_overage('rel', fair_use_limit => 10);
SELECT authorization_id AS h2, cost FROM credit_hold('rel', 'chat', 1, 'opus') \gset
SELECT used('rel') AS while_held;
SELECT status FROM credit_release(:h2);
SELECT used('rel') AS after_release;
-- a capture above its hold takes the rest from what is left: hold 1 x sonnet = 4 (used 4), a
-- debit of 4 (used 8), capture at 2 units = 8: 4 more > 2 left, so 4 is captured (shortfall)
SELECT authorization_id AS h3 FROM credit_hold('rel', 'chat', 1, 'sonnet') \gset
SELECT cost FROM credit_authorize('rel', 'chat', 1, 'sonnet');
SELECT status, captured, reason FROM credit_capture(:h3, 2);
SELECT used('rel');
-- ... and 2 units when there is room: a new hold of 1 x haiku = 1 (used 9), captured at 2 (10)
SELECT authorization_id AS h4 FROM credit_hold('rel', 'chat', 1, 'haiku') \gset
SELECT status, captured, reason FROM credit_capture(:h4, 2);
SELECT used('rel');

-- ---- nothing to refund; no journal; credits untouched -----------------------------------------
SELECT err(format('SELECT credit_refund(%s)', (SELECT min(id) FROM credit_ledger.authorizations WHERE fair_use)));
SELECT count(*) AS journal_entries_of_fair_use_calls
  FROM credit_ledger.journal j JOIN credit_ledger.authorizations a ON a.id = j.authorization_id AND a.tenant = j.tenant WHERE a.fair_use;
SELECT credit_balance('unl') AS unl_credits;
-- the event once per period when fair use is exceeded
SELECT payload ->> 'wallet' AS wallet, count(*) FROM credit_ledger.events
 WHERE kind = 'fair_use_exceeded' GROUP BY 1 ORDER BY 1;

-- ---- reports: what fair use paid, and what it cost ----------------------------------------------
-- usage_daily: credits paid 0, fair_use_credits the list price of the calls, their vendor cost.
-- unl: opus 50 + 40, sonnet 8, haiku 1 + 1 (vendor 0.3 + 0.24, 0.04, 0.004 + 0.004)
SELECT wallet, variant, calls, credits, fair_use_credits, vendor_cost FROM credit_ledger.usage_daily
 WHERE wallet = 'unl' ORDER BY variant;

-- ---- the usage trigger, a frozen wallet, clearing it ------------------------------------------
CREATE TABLE usage (id bigserial, customer text, n numeric, auth bigint);
CREATE TRIGGER bill BEFORE INSERT ON usage FOR EACH ROW EXECUTE FUNCTION
    credit_usage_trigger('wallet=customer', 'action_value=chat', 'variant_value=haiku',
                         'quantity=n', 'authorization_id=auth');
SELECT wallet FROM credit_wallet_create(wallet => 'trig');
SELECT fair_use_limit FROM credit_wallet_overage('trig', fair_use_limit => 3);
INSERT INTO usage (customer, n) VALUES ('trig', 2);
SELECT err($$INSERT INTO usage (customer, n) VALUES ('trig', 2)$$);
SELECT a.cost, a.fair_use FROM usage u JOIN credit_ledger.authorizations a ON a.id = u.auth;
SELECT frozen FROM credit_wallet_update('trig', frozen => true);
SELECT approved, reason FROM credit_authorize('trig', 'chat', 1, 'haiku');
SELECT frozen FROM credit_wallet_update('trig', frozen => false);
-- cleared: the wallet pays with credits again (it has none: insufficient_credits)
SELECT fair_use_limit FROM credit_wallet_overage('trig', clear => '{fair_use}');
SELECT approved, reason FROM credit_authorize('trig', 'chat', 1, 'haiku');
-- other assets are not fair use
SELECT credit_asset_define('usd', 2);
SELECT (credit_rate_set(action => 'image', credits => 0.5, asset => 'usd')).asset;
SELECT approved, reason FROM credit_authorize('unl', 'image', 1);
-- the balance a fair-use call reports is the wallet's own, debt taken off once (until 0.14.0
-- twice: -6 here)
SELECT count(*) FROM credit_wallet_create('owing', overdraft_limit => 100);
SELECT amount FROM credit_grant(wallet => 'owing', amount => 5);
SELECT approved, balance FROM credit_authorize('owing', 'chat', 8, 'haiku');
SELECT fair_use_limit FROM credit_wallet_overage('owing', fair_use_limit => 1000);
SELECT approved, balance, credit_balance('owing') AS credit_balance FROM credit_authorize('owing', 'chat', 1, 'haiku');

SELECT count(*) AS violations FROM credit_verify();
