-- counters_prune.sql: credit_tick deletes the period counters of volume tiers and fair use once
-- their period has ended (since 0.9.0); a fair-use count stays while a hold made in its period
-- is open, and a simulated as_of ahead of the clock ends no period. Earlier periods are made by
-- hand here (superuser writes), in the shape months of use leave them.
CREATE EXTENSION credit_ledger;
\set VERBOSITY default

-- ---- volume tiers ---------------------------------------------------------------------------
SELECT id AS rate_id FROM credit_rate_set(action => 'embed', credits => 2,
                                          tiers => '[{"from": 100, "credits": 1}]');
SELECT wallet FROM credit_wallet_create(wallet => 'vol');
SELECT amount FROM credit_grant(wallet => 'vol', amount => 1000);
SELECT cost FROM credit_authorize('vol', 'embed', 10);
INSERT INTO credit_ledger.tier_usage (wallet_id, action, variant, period_start, units)
SELECT id, 'embed', '', credit_ledger._period_start(NULL, NULL, now() - interval '2 months'), 0
  FROM credit_ledger.wallets WHERE wallet = 'vol';
SELECT period_start = credit_ledger._period_start(NULL, NULL, now()) AS current_period, units
  FROM credit_ledger.tier_usage ORDER BY period_start;
-- an as_of in the past ends only the periods before its own (the old row stays) ...
SELECT boundaries FROM credit_tick(as_of => now() - interval '70 days');
SELECT count(*) AS tier_rows FROM credit_ledger.tier_usage;
-- ... and one ahead of the clock ends no period the clock has not ended
SELECT boundaries FROM credit_tick(as_of => now() + interval '20 hours');
-- the earlier period's counter is gone, this period's stays (and still prices the next call)
SELECT period_start = credit_ledger._period_start(NULL, NULL, now()) AS current_period, units
  FROM credit_ledger.tier_usage ORDER BY period_start;
SELECT cost FROM credit_authorize('vol', 'embed', 100);

-- ---- fair use -------------------------------------------------------------------------------
SELECT id AS rate_id FROM credit_rate_set(action => 'chat', credits => 5);
SELECT wallet FROM credit_wallet_create(wallet => 'fair');
SELECT fair_use_limit FROM credit_wallet_overage(wallet => 'fair', fair_use_limit => 100);
SELECT authorization_id AS hold_id, status, cost FROM credit_hold('fair', 'chat', 2) \gset
SELECT :'status' AS status, :'cost' AS cost;
-- the hold and its count belong to an earlier period
UPDATE credit_ledger.authorizations SET created_at = created_at - interval '2 months' WHERE id = :hold_id;
UPDATE credit_ledger.fair_use_usage
   SET period_start = credit_ledger._period_start(NULL, NULL, now() - interval '2 months');
SELECT count(*) AS violations FROM credit_verify();
-- the open hold keeps its period's count
SELECT boundaries FROM credit_tick();
SELECT used FROM credit_ledger.fair_use_usage;
-- released, the count goes back; the next tick deletes it
SELECT status FROM credit_release(:hold_id);
SELECT used FROM credit_ledger.fair_use_usage;
SELECT boundaries FROM credit_tick();
SELECT count(*) AS fair_rows FROM credit_ledger.fair_use_usage;
SELECT * FROM credit_verify();
