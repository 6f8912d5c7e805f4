-- margins.sql: margin headroom and the vendor price what-if (issue 22), with hand-checked
-- numbers. Paid credits sell for 0.01 (one paid grant of 1000 at 0.01; the promotional
-- credits are free and do not count in the price of a credit).
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

-- per unit:          credits  revenue (x 0.01)  vendor   ratio    margin   headroom
--   chat opus           5       0.05             0.03     1.6667   0.4      0.6667
--   chat haiku          0.2     0.002            0.0015   1.3333   0.25     0.3333
--   embed               1       0.01             0.0085   1.1765   0.15     0.1765
--   image.generate      4       0.04             0.035    1.1429   0.125    0.1429
SELECT count(*) AS rates FROM (VALUES
        ('chat', 'opus', 5.00, 0.03), ('chat', 'haiku', 0.20, 0.0015),
        ('embed', NULL, 1.00, 0.0085), ('image.generate', NULL, 4.00, 0.035)) r(action, variant, credits, vendor_cost),
    LATERAL credit_rate_set(action => r.action, variant => r.variant, credits => r.credits, vendor_cost => r.vendor_cost);
SELECT count(*) AS wallets FROM (SELECT credit_wallet_create(wallet => 'paid')
                                 UNION ALL SELECT credit_wallet_create(wallet => 'promo')) w;
SELECT count(*) AS grants FROM (SELECT credit_grant(wallet => 'paid', amount => 1000, unit_price => 0.01)
                                UNION ALL SELECT credit_grant(wallet => 'promo', amount => 100, category => 'promotional')) g;
SELECT rate_card, action, variant, credits_per_unit, price_per_credit, revenue_per_unit, vendor_cost_per_unit,
       ratio, gross_margin, headroom
  FROM credit_ledger.margin_headroom ORDER BY headroom DESC;

-- usage (last 30 days):
--   paid:  opus 10 units = 50 credits (revenue 0.50, vendor 0.30); embed 100 = 100 credits
--          (1.00, 0.85); image 5 = 20 credits (0.20, 0.175); haiku 100 = 20 credits, half of it
--          refunded (50 units left: 10 credits, 0.10, 0.075); a hold of 2 opus captured at 1
--          (5 credits, 0.05, 0.03)
--   promo: image 5 = 20 credits of free credits (revenue 0, vendor 0.175)
SELECT count(*) FILTER (WHERE approved) AS approved FROM (
  SELECT (credit_authorize('paid', 'chat', 10, 'opus')).approved
  UNION ALL SELECT (credit_authorize('paid', 'embed', 100)).approved
  UNION ALL SELECT (credit_authorize('paid', 'image.generate', 5)).approved
  UNION ALL SELECT (credit_authorize('promo', 'image.generate', 5)).approved) c;
SELECT amount FROM credit_refund((credit_authorize('paid', 'chat', 100, 'haiku')).authorization_id, 10);
SELECT status, captured FROM credit_capture((credit_hold('paid', 'chat', 2, 'opus')).authorization_id, 1);

-- +20%: embed turns negative (revenue 1.00, vendor 0.85 -> 1.02); image is already negative
-- (revenue 0.20 for 40 credits: half of them were free; vendor 0.35 -> 0.42); opus (0.55 vs
-- 0.33 -> 0.396) and haiku (0.10 vs 0.075 -> 0.09) stay positive
SELECT * FROM credit_margin_whatif(0.2);
-- +10%: only image (embed: 0.935 < 1.00)
SELECT action, margin_after, negative_now FROM credit_margin_whatif(0.1);
-- a cheaper provider (-50%): nothing is negative (image: 0.20 vs 0.175)
SELECT count(*) AS negative FROM credit_margin_whatif(-0.5);
-- the rates in effect count, not those the calls were made with: opus's vendor price rises to
-- 0.045 (revenue 0.55 for 11 units; vendor 0.495 -> 0.594 at +20%)
SELECT rate_card, action, variant FROM credit_rate_set(action => 'chat', variant => 'opus', credits => 5, vendor_cost => 0.045);
SELECT action, variant, units, revenue, vendor_cost, vendor_cost_after, margin_after, negative_now
  FROM credit_margin_whatif(0.2) WHERE action = 'chat';
SELECT action, variant, ratio, headroom FROM credit_ledger.margin_headroom WHERE action = 'chat' ORDER BY variant;
-- only the last `days` days of usage count: the free-credit images made 40 days ago (moved
-- back by hand) leave image with 5 paid units (revenue 0.20, vendor 0.175 -> 0.21 at +20%)
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT a.id, a.tenant, a.created_at FROM credit_ledger.authorizations a
            WHERE a.wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'promo') LOOP
    UPDATE credit_ledger.authorizations SET created_at = r.created_at - interval '40 days' WHERE id = r.id AND tenant = r.tenant;
  END LOOP; END $$;
SELECT action, units, revenue, vendor_cost, margin, margin_after, negative_now
  FROM credit_margin_whatif(0.2) WHERE action = 'image.generate';
SELECT action, units, negative_now FROM credit_margin_whatif(0.2, days => 60) WHERE action = 'image.generate';

SELECT err($$SELECT * FROM credit_margin_whatif(NULL)$$);
SELECT err($$SELECT * FROM credit_margin_whatif(-2)$$);
SELECT err($$SELECT * FROM credit_margin_whatif('NaN')$$);
SELECT err($$SELECT * FROM credit_margin_whatif(0.2, days => 0)$$);
SELECT * FROM credit_verify();
