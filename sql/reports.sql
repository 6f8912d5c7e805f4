-- Reports for DBAs and finance: plain views in schema credit_ledger.
-- Indexes they use: grants_spendable (live grants per wallet), journal_wallet_at (a wallet's
-- entries by time), journal_authorization, authorizations_created (calls by time).
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) before CREATE EXTENSION must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

CREATE VIEW credit_ledger.wallet_balances AS
SELECT w.wallet, g.asset,
       sum(g.remaining - g.held) - coalesce(max(s.debt), 0) AS balance,
       sum(g.held) AS held,
       coalesce(max(s.debt), 0) AS debt,
       jsonb_object_agg(g.category, g.cat_balance) AS by_category
  FROM credit_ledger.wallets w
  JOIN (SELECT x.wallet_id, x.tenant, x.asset, x.category, sum(x.remaining) AS remaining, sum(x.held) AS held,
               sum(x.remaining - x.held) AS cat_balance
          FROM credit_ledger.grants x
         WHERE x.live AND x.effective_at <= now() AND (x.expires_at IS NULL OR x.expires_at > now())
         GROUP BY x.wallet_id, x.tenant, x.asset, x.category) g ON g.wallet_id = w.id AND g.tenant = w.tenant
  LEFT JOIN credit_ledger.wallet_assets s ON s.wallet_id = w.id AND s.tenant = w.tenant AND s.asset = g.asset
 WHERE w.run_of IS NULL   -- an agent run's credits are the run's (credit_run), not a wallet's
 GROUP BY w.wallet, w.tenant, g.asset;
COMMENT ON VIEW credit_ledger.wallet_balances IS
    'balance (spendable own credits minus debt), held, debt and per-category balance per wallet and asset';

-- A grant of a wallet with lanes is one row here: its slices (home_id = the grant) add up.
-- The credits an agent run took from a grant are not in its remaining (they moved to the run's
-- slices, which are not listed: see credit_run) until the run gives them back.
CREATE VIEW credit_ledger.grant_status AS
SELECT g.id AS grant_id, w.wallet, g.asset, g.category, g.priority, g.amount, f.remaining, f.held,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'capture', 'settlement')), 0)
         - coalesce(sum(j.amount) FILTER (WHERE j.kind = 'refund'), 0) AS spent,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'expiry'), 0) AS expired,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'rollover'), 0) AS rolled_over,
       g.unit_price, g.effective_at, g.expires_at,
       CASE WHEN g.effective_at > now() THEN 'pending'
            WHEN g.expires_at IS NOT NULL AND g.expires_at <= now() THEN 'expired'
            WHEN f.remaining = 0 THEN 'exhausted'
            ELSE 'active' END AS status,
       (g.expires_at IS NOT NULL AND g.expires_at > now() AND g.expires_at <= now() + interval '7 days'
        AND f.remaining > 0) AS expiring_soon,
       -- since 0.6.0: taken back by voids and negative adjustments, moved out by transfers
       coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'adjustment'), 0) AS voided,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'transfer' AND j.amount < 0), 0) AS transferred_out
  FROM credit_ledger.grants g
  JOIN credit_ledger.wallets w ON w.id = g.wallet_id AND w.tenant = g.tenant
  CROSS JOIN LATERAL (SELECT g.remaining + coalesce(sum(x.remaining), 0) AS remaining,
                             g.held + coalesce(sum(x.held), 0) AS held,
                             array_append(array_agg(x.id), g.id) AS ids
                        FROM credit_ledger.grants x WHERE x.home_id = g.id AND x.tenant = g.tenant) f
  LEFT JOIN credit_ledger.journal j ON j.grant_id = ANY (f.ids) AND j.wallet_id = g.wallet_id AND j.tenant = g.tenant
 WHERE g.home_id IS NULL AND g.source_id IS NULL
 -- every column named (since 0.12.0 the grants key is (id, tenant), see sql/schema.sql)
 GROUP BY g.id, g.tenant, g.asset, g.category, g.priority, g.amount, g.unit_price, g.effective_at, g.expires_at,
          w.wallet, f.remaining, f.held;
COMMENT ON VIEW credit_ledger.grant_status IS
    'every grant: remaining, held, spent, expired, rolled over, status and whether it expires within 7 days';

-- A call made in an agent run counts for the wallet that opened the run.
CREATE VIEW credit_ledger.usage_daily AS
SELECT date_trunc('day', a.created_at AT TIME ZONE 'UTC')::date AS day, coalesce(o.wallet, w.wallet) AS wallet,
       a.action, a.variant, a.asset,
       sum(coalesce(a.captured_quantity, a.quantity)) AS quantity,
       coalesce(sum(coalesce(a.captured, a.cost) - a.refunded) FILTER (WHERE NOT a.fair_use), 0) AS credits,
       sum(a.vendor_cost) AS vendor_cost,
       count(*) AS calls,
       sum(a.refunded) AS refunded,
       count(*) FILTER (WHERE a.degraded) AS degraded_calls,  -- since 0.7.0
       -- since 0.8.0: what fair use paid (the calls' cost at the rate card's prices)
       coalesce(sum(coalesce(a.captured, a.cost)) FILTER (WHERE a.fair_use), 0) AS fair_use_credits
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of AND o.tenant = w.tenant
 WHERE a.status IN ('approved', 'captured')
 GROUP BY 1, 2, a.tenant, a.action, a.variant, a.asset;
COMMENT ON VIEW credit_ledger.usage_daily IS
    'approved usage per UTC day, wallet, action and variant (the one authorized): quantity, credits net of refunds, vendor cost, calls, degraded calls, credits of the calls fair use paid';

CREATE VIEW credit_ledger.margin_by_action AS
SELECT s.action, s.variant, s.asset, s.credits, s.revenue,
       coalesce(v.vendor_cost, 0) AS vendor_cost,
       s.revenue - coalesce(v.vendor_cost, 0) AS margin
  FROM (SELECT a.action, a.variant, a.asset, sum(p.credits) AS credits, sum(p.revenue) AS revenue
          -- (since 0.14.0 per authorization first, read whole: a pool's entries name the
          -- authorization of a member that may since have joined another pool, of another
          -- tenant, on one node; on Citus an intermediate result joined with the shards)
          FROM (SELECT j.authorization_id, sum(-j.amount) AS credits,
                       sum(-j.amount * coalesce(g.unit_price, 0)) AS revenue
                  FROM credit_ledger.journal j
                  LEFT JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
                 WHERE j.kind IN ('debit', 'capture', 'refund', 'overdraft')
                 GROUP BY j.authorization_id
                OFFSET 0) p
          JOIN credit_ledger.authorizations a ON a.id = p.authorization_id
         GROUP BY a.action, a.variant, a.asset) s
  -- (since 0.14.0 a join of two aggregates, not a subquery per row: Citus plans this on a
  -- distributed ledger; the same result)
  LEFT JOIN (SELECT x.action, x.variant, x.asset, sum(x.vendor_cost) AS vendor_cost
               FROM credit_ledger.authorizations x
              WHERE x.status IN ('approved', 'captured')
              GROUP BY x.action, x.variant, x.asset) v
    ON v.action = s.action AND v.variant IS NOT DISTINCT FROM s.variant AND v.asset = s.asset;
COMMENT ON VIEW credit_ledger.margin_by_action IS
    'per action and variant: credits spent (net of refunds), revenue = credits x paying grants'' unit price, vendor cost, margin';

CREATE VIEW credit_ledger.liability AS
SELECT g.asset, g.category,
       sum(g.remaining) AS credits_outstanding,
       sum(g.remaining * g.unit_price) AS deferred_revenue
  FROM credit_ledger.grants g
 WHERE g.unit_price > 0 AND g.live AND (g.expires_at IS NULL OR g.expires_at > now())
 GROUP BY g.asset, g.category;
COMMENT ON VIEW credit_ledger.liability IS
    'unexpired paid credits x unit price: deferred revenue, per asset and category';

CREATE VIEW credit_ledger.breakage AS
SELECT date_trunc('month', coalesce(g.expires_at, j.at) AT TIME ZONE 'UTC')::date AS month, j.asset, g.category,
       sum(-j.amount) AS credits_expired,
       sum(-j.amount * g.unit_price) AS revenue_recognized
  FROM credit_ledger.journal j
  JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
 WHERE j.kind = 'expiry'
 GROUP BY 1, j.asset, g.category;
COMMENT ON VIEW credit_ledger.breakage IS
    'expired credits per month, asset and category, and their value at the grants'' unit price';

CREATE VIEW credit_ledger.declines_daily AS
SELECT date_trunc('day', a.created_at AT TIME ZONE 'UTC')::date AS day, coalesce(o.wallet, w.wallet) AS wallet,
       a.reason, a.action, count(*) AS declines
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of AND o.tenant = w.tenant
 WHERE a.status = 'declined'
 GROUP BY 1, 2, a.tenant, a.reason, a.action;
COMMENT ON VIEW credit_ledger.declines_daily IS 'declined calls per UTC day, wallet, reason and action';

-- Every authorize and hold call of a wallet, newest first with ORDER BY at DESC (since 0.8.0, for
-- a customer's "recent activity" list; authorizations_wallet_created serves one wallet's
-- latest calls). A call in an agent run is listed for the wallet that opened the run.
CREATE VIEW credit_ledger.call_log AS
SELECT coalesce(o.wallet, w.wallet) AS wallet, a.id AS authorization_id, a.created_at AS at,
       a.kind, a.status, a.reason, a.action, a.variant, a.quantity, a.asset, a.cost,
       a.captured, a.refunded, a.degraded, a.requested_variant, a.fair_use,
       CASE WHEN o.id IS NOT NULL THEN w.wallet END AS run_wallet
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of AND o.tenant = w.tenant;
COMMENT ON VIEW credit_ledger.call_log IS
    'every authorize and hold call of a wallet (a run''s calls under the wallet that opened it): status, decline reason, cost';

CREATE VIEW credit_ledger.pool_usage AS
SELECT m.wallet AS member, t.wallet AS team, x.asset,
       m.pool_limit,
       CASE WHEN s.period_start = credit_ledger._period_start(m.period, m.period_anchor, now())
            -- the counter and what the member's spends on the pool's lanes drew that it does not
            -- hold yet (member_rooms, since 0.11.0)
            THEN s.period_pool_drawn + coalesce((SELECT sum(r.spent) FROM credit_ledger.member_rooms r
                                                  WHERE r.wallet_id = m.id AND r.tenant = m.tenant AND r.asset = x.asset
                                                    AND r.period = s.period_start), 0)
            WHEN s.wallet_id IS NULL    -- a member without limits keeps no counter: from the journal
            THEN coalesce((SELECT -sum(j.amount) + sum(j.held) FROM credit_ledger.journal j
                            WHERE j.member_id = ANY (d.ids) AND j.wallet_id = t.id AND j.tenant = t.tenant
                              AND j.asset = x.asset AND j.kind IN ('debit', 'capture', 'hold', 'release', 'refund', 'run')
                              AND j.at >= credit_ledger._period_start(m.period, m.period_anchor, now())), 0)
            ELSE 0 END AS drawn_this_period,
       coalesce((SELECT -sum(j.amount) + sum(j.held) FROM credit_ledger.journal j
                  WHERE j.member_id = ANY (d.ids) AND j.wallet_id = t.id AND j.tenant = t.tenant
                    AND j.asset = x.asset AND j.kind IN ('debit', 'capture', 'hold', 'release', 'refund', 'run')), 0) AS drawn_total
  FROM credit_ledger.wallets m
  -- (every join on the tenant too, since 0.13.0: a member is in its pool's; on Citus the view
  -- then runs on the shards)
  JOIN credit_ledger.wallets t ON t.id = m.parent_id AND t.tenant = m.tenant
  -- who draws for the member: itself and its agent runs (a run's pool credits are drawn when it
  -- opens, 'run' entries, and what it gives back at close returns)
  CROSS JOIN LATERAL (SELECT array_append(array_agg(r.id), m.id) AS ids
                        FROM credit_ledger.wallets r WHERE r.run_of = m.id AND r.tenant = m.tenant) d
  -- every asset the member has a counter for or has drawn from the pool (a member without
  -- limits has no wallet_assets row); a member without either has one row, asset NULL
  LEFT JOIN LATERAL (SELECT a.asset FROM credit_ledger.wallet_assets a WHERE a.wallet_id = m.id AND a.tenant = m.tenant
                     UNION
                     SELECT j.asset FROM credit_ledger.journal j
                      WHERE j.wallet_id = t.id AND j.tenant = t.tenant AND j.member_id = ANY (d.ids)
                        AND j.kind IN ('debit', 'capture', 'hold', 'release', 'refund', 'run')
                      GROUP BY j.asset HAVING -sum(j.amount) + sum(j.held) <> 0) x ON true
  LEFT JOIN credit_ledger.wallet_assets s ON s.wallet_id = m.id AND s.tenant = m.tenant AND s.asset = x.asset;
COMMENT ON VIEW credit_ledger.pool_usage IS
    'per pool member and asset: its pool limit, pool credits drawn this period (holds included) and in total';

CREATE VIEW credit_ledger.revenue_monthly AS
SELECT date_trunc('month', j.at AT TIME ZONE 'UTC')::date AS month, j.asset,
       coalesce(sum(-j.amount) FILTER (WHERE j.kind <> 'settlement'), 0) AS credits_used,
       coalesce(sum(-j.amount * g.unit_price) FILTER (WHERE j.kind <> 'settlement'), 0) AS usage_revenue,
       coalesce(sum(-j.amount) FILTER (WHERE j.kind = 'settlement'), 0) AS credits_settling_debt,
       coalesce(sum(-j.amount * g.unit_price) FILTER (WHERE j.kind = 'settlement'), 0) AS settlement_revenue,
       sum(-j.amount * g.unit_price) AS revenue_recognized
  FROM credit_ledger.journal j
  JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
 WHERE j.kind IN ('debit', 'capture', 'refund', 'settlement')
 GROUP BY 1, j.asset;
COMMENT ON VIEW credit_ledger.revenue_monthly IS
    'revenue recognized per UTC month and asset: credits used net of refunds and credits that settled overdraft debt, at the paying grants'' unit price';

-- Agent runs (since 0.5.0): per run, action and variant: calls, quantity, credits net of
-- refunds, vendor cost, revenue (the credits at the unit price of the grants they came from:
-- a run's slices carry it) and margin.
CREATE VIEW credit_ledger.run_usage AS
SELECT r.id AS run_id, o.wallet, r.parent_run, r.status, a.action, a.variant, a.asset,
       count(*) AS calls,
       sum(coalesce(a.captured_quantity, a.quantity)) AS quantity,
       sum(coalesce(a.captured, a.cost) - a.refunded) AS credits,
       sum(a.vendor_cost) AS vendor_cost,
       coalesce(sum(m.revenue), 0) AS revenue,
       coalesce(sum(m.revenue), 0) - coalesce(sum(a.vendor_cost), 0) AS margin
  FROM credit_ledger.runs r
  JOIN credit_ledger.wallets o ON o.id = r.wallet_id AND o.tenant = r.tenant
  JOIN credit_ledger.authorizations a ON a.wallet_id = r.run_wallet_id AND a.tenant = r.tenant
  LEFT JOIN LATERAL (SELECT sum(-j.amount * g.unit_price) AS revenue
                       FROM credit_ledger.journal j
                       JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
                      WHERE j.authorization_id = a.id AND j.tenant = a.tenant
                        AND j.kind IN ('debit', 'capture', 'refund')) m ON true
 WHERE a.status IN ('approved', 'captured')
 GROUP BY r.id, r.tenant, o.wallet, r.parent_run, r.status, a.action, a.variant, a.asset;
COMMENT ON VIEW credit_ledger.run_usage IS
    'per agent run, action and variant: calls, quantity, credits net of refunds, vendor cost, revenue and margin';

REVOKE ALL ON ALL TABLES IN SCHEMA credit_ledger FROM PUBLIC;

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
