-- Margin headroom under provider price drift (issue 22, since 0.6.0): how much a vendor's price
-- may rise before an action loses money, and which actions would, from the rates in effect and
-- recent usage. Bind every expression in this file to pg_catalog only.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Per rate card, action and variant, the entry in effect now: credits per unit, what a credit
-- sells for (the average unit price of the paid credits sold in the asset: amount-weighted, over
-- the grants that are sales, not transfers or slices), revenue and vendor cost per unit, their
-- ratio, the gross margin, and the headroom: the vendor price increase (0.25 = +25%) at which
-- the margin reaches zero. NULL where there is no vendor cost or no paid credit.
CREATE VIEW credit_ledger.margin_headroom AS
WITH cur AS (
    SELECT DISTINCT ON (r.rate_card, r.action, coalesce(r.variant, ''))
           r.rate_card, r.action, r.variant, r.asset, r.unit, r.credits, r.vendor_cost
      FROM credit_ledger.rates r
     WHERE r.effective_from <= now()
     ORDER BY r.rate_card, r.action, coalesce(r.variant, ''), r.effective_from DESC
), price AS (
    SELECT g.asset, sum(g.amount * g.unit_price) / sum(g.amount) AS per_credit
      FROM credit_ledger.grants g
     WHERE g.unit_price > 0 AND g.transfer_of IS NULL AND g.home_id IS NULL AND g.source_id IS NULL
     GROUP BY g.asset
)
SELECT c.rate_card, c.action, c.variant, c.asset, c.unit,
       c.credits AS credits_per_unit,
       round(p.per_credit, 6) AS price_per_credit,
       round(c.credits * p.per_credit, 6) AS revenue_per_unit,
       c.vendor_cost AS vendor_cost_per_unit,
       round(c.credits * p.per_credit / nullif(c.vendor_cost, 0), 4) AS ratio,
       round(1 - c.vendor_cost / nullif(c.credits * p.per_credit, 0), 4) AS gross_margin,
       round(c.credits * p.per_credit / nullif(c.vendor_cost, 0) - 1, 4) AS headroom
  FROM cur c LEFT JOIN price p ON p.asset = c.asset;
COMMENT ON VIEW credit_ledger.margin_headroom IS
    'per rate entry in effect: credits per unit x what paid credits sold for vs vendor cost per unit, ratio, gross margin and the vendor price increase it can absorb';

-- What if every vendor price changed by vendor_cost_change (0.2 = +20%, -0.1 = -10%)? The
-- actions whose margin would be negative: the units used in the last `days` days (approved
-- debits and captured holds), priced at the entry in effect now of their rate card, action and
-- variant, with the revenue per credit those calls really brought (free credits bring none,
-- refunds are taken out). negative_now: the margin is already negative without the change.
CREATE FUNCTION @extschema@.credit_margin_whatif(vendor_cost_change numeric, days int DEFAULT 30)
RETURNS TABLE (rate_card text, action text, variant text, asset text, units numeric, credits numeric,
               revenue numeric, vendor_cost numeric, margin numeric, vendor_cost_after numeric,
               margin_after numeric, negative_now boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
BEGIN
    IF vendor_cost_change IS NULL OR vendor_cost_change = 'NaN'::numeric OR vendor_cost_change < -1
       OR vendor_cost_change > 1000 THEN
        RAISE EXCEPTION 'vendor_cost_change must be a fraction between -1 and 1000 (0.2 = +20%%), got %',
            coalesce(vendor_cost_change::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF days IS NULL OR days < 1 OR days > 3660 THEN
        RAISE EXCEPTION 'days must be between 1 and 3660, got %', coalesce(days::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH used AS (
        -- recent calls by the entry they were priced with
        SELECT r.rate_card, r.action, r.variant, r.asset,
               sum(coalesce(a.captured_quantity, a.quantity)
                   * (1 - a.refunded / nullif(coalesce(a.captured, a.cost), 0))) AS units,
               sum(coalesce(a.captured, a.cost) - a.refunded) AS credits,
               coalesce(sum(m.revenue), 0) AS revenue
          FROM credit_ledger.authorizations a
          JOIN credit_ledger.rates r ON r.id = a.rate_id
          -- (since 0.14.0 per authorization first, read whole: a pool's entries name the
          -- authorization of a member that may since have joined another pool, of another
          -- tenant, on one node; on Citus an intermediate result joined with the shards)
          LEFT JOIN (SELECT j.authorization_id, sum(-j.amount * g.unit_price) AS revenue
                       FROM credit_ledger.journal j
                       JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
                      WHERE j.kind IN ('debit', 'capture', 'refund') AND j.authorization_id IS NOT NULL
                        AND j.at >= now() - make_interval(days => credit_margin_whatif.days)
                      GROUP BY j.authorization_id
                     OFFSET 0) m ON m.authorization_id = a.id
         WHERE a.status IN ('approved', 'captured') AND a.created_at >= now() - make_interval(days => credit_margin_whatif.days)
         GROUP BY r.rate_card, r.action, r.variant, r.asset
    ), cur AS (
        SELECT DISTINCT ON (x.rate_card, x.action, coalesce(x.variant, ''))
               x.rate_card, x.action, x.variant, x.credits, x.vendor_cost
          FROM credit_ledger.rates x
         WHERE x.effective_from <= now()
         ORDER BY x.rate_card, x.action, coalesce(x.variant, ''), x.effective_from DESC
    ), priced AS (
        -- at today's entry: credits x what a credit of these calls brought; vendor cost per unit
        SELECT u.rate_card, u.action, u.variant, u.asset, u.units,
               u.units * c.credits AS credits,
               round(u.units * c.credits * (u.revenue / nullif(u.credits, 0)), 6) AS revenue,
               u.units * coalesce(c.vendor_cost, 0) AS vendor_cost
          FROM used u
          JOIN cur c ON c.rate_card = u.rate_card AND c.action = u.action
                    AND c.variant IS NOT DISTINCT FROM u.variant
         WHERE u.units > 0
    )
    -- (amounts rounded to 6 decimals and shown without trailing zeros)
    SELECT p.rate_card, p.action, p.variant, p.asset, trim_scale(round(p.units, 6)),
           trim_scale(round(p.credits, 6)), trim_scale(coalesce(p.revenue, 0)),
           trim_scale(round(p.vendor_cost, 6)), trim_scale(round(coalesce(p.revenue, 0) - p.vendor_cost, 6)),
           trim_scale(round(p.vendor_cost * (1 + vendor_cost_change), 6)),
           trim_scale(coalesce(p.revenue, 0) - round(p.vendor_cost * (1 + vendor_cost_change), 6)),
           coalesce(p.revenue, 0) - p.vendor_cost < 0
      FROM priced p
     WHERE coalesce(p.revenue, 0) - round(p.vendor_cost * (1 + vendor_cost_change), 6) < 0
     ORDER BY coalesce(p.revenue, 0) - round(p.vendor_cost * (1 + vendor_cost_change), 6), p.rate_card, p.action, p.variant;
END $$;

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
