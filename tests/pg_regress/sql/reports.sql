-- The report views of README.md ("Reports"), each with an example query and its output.
CREATE EXTENSION credit_ledger;
\set VERBOSITY terse
SELECT count(*) AS rates FROM (
  SELECT credit_rate_set(action => 'chat', variant => 'opus',  credits => 15, vendor_cost => 0.075)
  UNION ALL SELECT credit_rate_set(action => 'chat', variant => 'haiku', credits => 1, vendor_cost => 0.004)
  UNION ALL SELECT credit_rate_set(action => 'image.generate', credits => 40, vendor_cost => 0.04)) r;
SELECT count(*) AS wallets FROM (
  SELECT credit_wallet_create(wallet => 'acme')
  UNION ALL SELECT credit_wallet_create(wallet => 'team')
  UNION ALL SELECT credit_wallet_create(wallet => 'team.ann', parent => 'team', pool_limit => 100)) w;
SELECT count(*) AS grants FROM (
  SELECT credit_grant(wallet => 'acme', amount => 100, category => 'included', expires_at => now() + interval '3 days')
  UNION ALL SELECT credit_grant(wallet => 'acme', amount => 500, unit_price => 0.01)
  UNION ALL SELECT credit_grant(wallet => 'team', amount => 300, unit_price => 0.008)
  UNION ALL SELECT credit_grant(wallet => 'team.ann', amount => 20, category => 'promotional', expires_at => now() + interval '1 day')) g;
SELECT count(*) FILTER (WHERE approved) AS approved, count(*) FILTER (WHERE NOT approved) AS declined FROM (
  SELECT (credit_authorize('acme', 'chat', 10, 'opus')).approved
  UNION ALL SELECT (credit_authorize('acme', 'chat', 12.5, 'haiku')).approved
  UNION ALL SELECT (credit_authorize('acme', 'image.generate', 2)).approved
  UNION ALL SELECT (credit_authorize('acme', 'image.generate', 20)).approved
  UNION ALL SELECT (credit_authorize('team.ann', 'chat', 4, 'opus')).approved
  UNION ALL SELECT (credit_authorize('team.ann', 'chat', 8, 'opus')).approved) a;
-- an expired, paid lot for the breakage report (as if a month had passed)
SELECT grant_id FROM (SELECT (credit_grant(wallet => 'acme', amount => 50, category => 'bonus', unit_price => 0.02,
                                           expires_at => now() + interval '1 hour')).id AS grant_id) x \gset
SELECT grants_expired, credits_expired FROM credit_expire(as_of => now() + interval '2 hours');

SELECT wallet, asset, balance, held, debt, by_category FROM credit_ledger.wallet_balances ORDER BY wallet, asset;
SELECT wallet, category, amount, remaining, spent, expired, status, expiring_soon
  FROM credit_ledger.grant_status ORDER BY wallet, grant_id;
SELECT day = (now() AT TIME ZONE 'UTC')::date AS today, wallet, action, variant, quantity, credits, vendor_cost, calls
  FROM credit_ledger.usage_daily ORDER BY wallet, action, variant;
SELECT action, variant, credits, revenue, vendor_cost, margin FROM credit_ledger.margin_by_action ORDER BY action, variant;
SELECT asset, category, credits_outstanding, deferred_revenue FROM credit_ledger.liability ORDER BY asset, category;
SELECT asset, category, credits_expired, revenue_recognized FROM credit_ledger.breakage ORDER BY asset, category;
SELECT wallet, reason, action, declines FROM credit_ledger.declines_daily ORDER BY wallet, reason;
SELECT member, team, pool_limit, drawn_this_period, drawn_total FROM credit_ledger.pool_usage ORDER BY member;
SELECT * FROM credit_verify();
