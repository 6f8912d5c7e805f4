-- counters_prune.sql: a wallet keeps one volume-tier or fair-use counter per key, not one per
-- key and period (since 0.9.0): the first call of a new period, which creates that period's
-- counter, deletes the key's counters of earlier periods; a fair-use count stays while a hold
-- made before the new period is open. Earlier periods are made by hand here (superuser
-- writes), in the shape a month of use leaves them.
CREATE EXTENSION credit_ledger;
\set VERBOSITY default

-- ---- volume tiers ---------------------------------------------------------------------------
SELECT id AS rate_id FROM credit_rate_set(action => 'embed', credits => 2,
                                          tiers => '[{"from": 100, "credits": 1}]');
SELECT wallet FROM credit_wallet_create(wallet => 'vol');
SELECT amount FROM credit_grant(wallet => 'vol', amount => 1000);
-- last period's counter (its calls are not in this test: 0 units, so credit_verify agrees)
INSERT INTO credit_ledger.tier_usage (wallet_id, tenant, action, variant, period_start, units)
SELECT id, tenant, 'embed', '', credit_ledger._period_start(NULL, NULL, now() - interval '2 months'), 0
  FROM credit_ledger.wallets WHERE wallet = 'vol';
-- another key of the wallet is left alone
INSERT INTO credit_ledger.tier_usage (wallet_id, tenant, action, variant, period_start, units)
SELECT id, tenant, 'rerank', '', credit_ledger._period_start(NULL, NULL, now() - interval '2 months'), 0
  FROM credit_ledger.wallets WHERE wallet = 'vol';
-- the first call of this period creates its counter and deletes the key's earlier one
SELECT cost FROM credit_authorize('vol', 'embed', 10);
SELECT action, period_start = credit_ledger._period_start(NULL, NULL, now()) AS current_period, units
  FROM credit_ledger.tier_usage ORDER BY action, period_start;
-- the next calls price from it as before: 90 units at 2, 10 at 1
SELECT cost FROM credit_authorize('vol', 'embed', 100);
SELECT count(*) AS violations FROM credit_verify();

-- ---- fair use -------------------------------------------------------------------------------
SELECT id AS rate_id FROM credit_rate_set(action => 'chat', credits => 5);
SELECT wallet FROM credit_wallet_create(wallet => 'fair');
SELECT fair_use_limit FROM credit_wallet_overage(wallet => 'fair', fair_use_limit => 100);
SELECT authorization_id AS hold_id, status, cost FROM credit_hold('fair', 'chat', 2) \gset
SELECT :'status' AS status, :'cost' AS cost;
-- the hold and its count belong to an earlier period, and the hold is still open
SELECT created_at - interval '2 months' AS moved FROM credit_ledger.authorizations WHERE id = :hold_id \gset
UPDATE credit_ledger.authorizations SET created_at = :'moved' WHERE id = :hold_id;
UPDATE credit_ledger.fair_use_usage
   SET period_start = credit_ledger._period_start(NULL, NULL, now() - interval '2 months');
SELECT count(*) AS violations FROM credit_verify();
-- this period's first call: the earlier count stays, its open hold still corrects it
SELECT approved, cost FROM credit_authorize('fair', 'chat', 1);
SELECT period_start = credit_ledger._period_start(NULL, NULL, now()) AS current_period, used
  FROM credit_ledger.fair_use_usage ORDER BY period_start;
SELECT status FROM credit_release(:hold_id);
SELECT period_start = credit_ledger._period_start(NULL, NULL, now()) AS current_period, used
  FROM credit_ledger.fair_use_usage ORDER BY period_start;
SELECT count(*) AS violations FROM credit_verify();
-- (it goes with the next new period's first call.) A wallet whose earlier holds have all
-- ended: its first call of this period deletes the earlier count
SELECT wallet FROM credit_wallet_create(wallet => 'fair2');
SELECT fair_use_limit FROM credit_wallet_overage(wallet => 'fair2', fair_use_limit => 100);
SELECT authorization_id AS hold2 FROM credit_hold('fair2', 'chat', 2) \gset
SELECT created_at - interval '2 months' AS moved FROM credit_ledger.authorizations WHERE id = :hold2 \gset
UPDATE credit_ledger.authorizations SET created_at = :'moved' WHERE id = :hold2;
UPDATE credit_ledger.fair_use_usage
   SET period_start = credit_ledger._period_start(NULL, NULL, now() - interval '2 months')
 WHERE wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'fair2');
SELECT status FROM credit_release(:hold2);
SELECT approved, cost FROM credit_authorize('fair2', 'chat', 1);
SELECT period_start = credit_ledger._period_start(NULL, NULL, now()) AS current_period, used
  FROM credit_ledger.fair_use_usage
 WHERE wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'fair2') ORDER BY period_start;
SELECT * FROM credit_verify();
