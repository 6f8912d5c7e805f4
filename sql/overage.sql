-- The overage menu (issue 22, since 0.7.0): reports. Bind every expression in this file to
-- pg_catalog only.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Degraded calls per UTC day, wallet (a call in an agent run counts for the wallet that opened
-- the run), action, the variant asked for and the variant authorized: calls, credits (net of
-- captures and refunds) and vendor cost. Approved debits and held, captured or released holds.
CREATE VIEW credit_ledger.degraded_daily AS
SELECT date_trunc('day', a.created_at AT TIME ZONE 'UTC')::date AS day, coalesce(o.wallet, w.wallet) AS wallet,
       a.action, a.requested_variant, a.variant, a.asset,
       count(*) AS calls,
       sum(coalesce(a.captured, a.cost) - a.refunded) AS credits,
       sum(a.vendor_cost) AS vendor_cost
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of AND o.tenant = w.tenant
 WHERE a.degraded
 GROUP BY 1, 2, a.tenant, a.action, a.requested_variant, a.variant, a.asset;
COMMENT ON VIEW credit_ledger.degraded_daily IS
    'calls degraded to a cheaper variant per UTC day, wallet, action, variant asked for and variant authorized';

-- A wallet's overage settings in one asset: auto top-up (threshold = the wallet's
-- low_balance_threshold, set here too; amount: what the payment worker should grant) and the
-- period-usage tiers that suggest an upgrade; since 0.8.0 the fair-use allowance per period
-- (fair_use_limit: the wallet's calls in the asset are paid by fair use, not credits; setting
-- it marks the wallet tracked, the flag the spend path looks at). NULL leaves a setting
-- unchanged; clear => '{auto_topup}', '{upgrade_at}' or '{fair_use}' removes one. Returns the
-- settings after the call.
CREATE TYPE @extschema@.credit_overage AS (
    wallet text, asset text, auto_topup_threshold numeric, auto_topup_amount numeric,
    upgrade_at numeric[], topups bigint, fair_use_limit numeric
);
CREATE FUNCTION @extschema@.credit_wallet_overage(wallet text, asset text DEFAULT 'credits',
    auto_topup_threshold numeric DEFAULT NULL, auto_topup_amount numeric DEFAULT NULL,
    upgrade_at numeric[] DEFAULT NULL, clear text[] DEFAULT NULL, fair_use_limit numeric DEFAULT NULL)
RETURNS SETOF @extschema@.credit_overage
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    w credit_ledger.wallets;
    -- every statement names the wallet's tenant (since 0.14.0: on Citus, its shard alone)
    t text := credit_ledger._wallet_tenant(credit_wallet_overage.wallet);
    -- (a value, not now() in the ON CONFLICT clause: Citus takes only immutable functions there)
    ts timestamptz := now();
    bad text;
BEGIN
    IF credit_wallet_overage.asset IS NULL
       OR NOT EXISTS (SELECT 1 FROM credit_ledger.assets s WHERE s.asset = credit_wallet_overage.asset) THEN
        RAISE EXCEPTION 'asset "%" does not exist', coalesce(credit_wallet_overage.asset, 'NULL')
            USING ERRCODE = 'P0002', HINT = 'define it with credit_asset_define()';
    END IF;
    SELECT b INTO bad FROM unnest(coalesce(clear, '{}'::text[])) b
     WHERE b IS NULL OR b NOT IN ('auto_topup', 'upgrade_at', 'fair_use') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'setting "%" cannot be cleared', coalesce(bad, 'NULL') USING ERRCODE = '22023',
            HINT = 'clearable settings: auto_topup, upgrade_at, fair_use';
    END IF;
    IF fair_use_limit IS NOT NULL AND (fair_use_limit <= 0 OR fair_use_limit = 'NaN'::numeric
       OR fair_use_limit = 'Infinity'::numeric) THEN
        RAISE EXCEPTION 'fair_use_limit must be positive and finite, got %', fair_use_limit USING ERRCODE = '22023';
    END IF;
    IF auto_topup_amount IS NOT NULL AND (auto_topup_amount <= 0 OR auto_topup_amount = 'NaN'::numeric) THEN
        RAISE EXCEPTION 'auto_topup_amount must be positive, got %', auto_topup_amount USING ERRCODE = '22023';
    END IF;
    IF upgrade_at IS NOT NULL AND (cardinality(upgrade_at) = 0 OR cardinality(upgrade_at) > 32
       OR array_position(upgrade_at, NULL) IS NOT NULL
       OR EXISTS (SELECT 1 FROM unnest(upgrade_at) WITH ORDINALITY t(v, i)
                   WHERE t.v <= 0 OR t.v = 'NaN'::numeric
                      OR (t.i > 1 AND t.v <= upgrade_at[t.i - 1]))) THEN
        RAISE EXCEPTION 'upgrade_at must hold 1 to 32 positive amounts in ascending order'
            USING ERRCODE = '22023', HINT = 'for example ''{500, 2000}''';
    END IF;
    -- the threshold is the wallet's low-balance threshold (validated, and the wallet locked, there)
    IF auto_topup_threshold IS NOT NULL THEN
        PERFORM @extschema@.credit_wallet_update(wallet => credit_wallet_overage.wallet,
                                                 low_balance_threshold => auto_topup_threshold);
    END IF;
    SELECT * INTO w FROM credit_ledger.wallets x
     WHERE x.wallet = credit_wallet_overage.wallet AND x.tenant = t FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'wallet "%" does not exist', coalesce(credit_wallet_overage.wallet, 'NULL')
            USING ERRCODE = 'P0002', HINT = 'create it with credit_wallet_create()';
    END IF;
    IF w.closed_at IS NOT NULL THEN
        RAISE EXCEPTION 'wallet "%" is closed', w.wallet USING ERRCODE = '55000';
    END IF;
    IF auto_topup_amount IS NOT NULL AND w.low_balance_threshold IS NULL THEN
        RAISE EXCEPTION 'an auto top-up needs a threshold' USING ERRCODE = '22023',
            HINT = 'give auto_topup_threshold (it is the wallet''s low_balance_threshold)';
    END IF;
    INSERT INTO credit_ledger.wallet_overage AS o (wallet_id, tenant, asset, auto_topup_amount, upgrade_at, fair_use_limit)
    VALUES (w.id, w.tenant, credit_wallet_overage.asset,
            CASE WHEN 'auto_topup' = ANY (coalesce(clear, '{}')) THEN NULL ELSE credit_wallet_overage.auto_topup_amount END,
            CASE WHEN 'upgrade_at' = ANY (coalesce(clear, '{}')) THEN NULL ELSE credit_wallet_overage.upgrade_at END,
            CASE WHEN 'fair_use' = ANY (coalesce(clear, '{}')) THEN NULL ELSE credit_wallet_overage.fair_use_limit END)
    ON CONFLICT ON CONSTRAINT wallet_overage_pkey DO UPDATE
       SET auto_topup_amount = CASE WHEN 'auto_topup' = ANY (coalesce(clear, '{}')) THEN NULL
                                    ELSE coalesce(EXCLUDED.auto_topup_amount, o.auto_topup_amount) END,
           upgrade_at = CASE WHEN 'upgrade_at' = ANY (coalesce(clear, '{}')) THEN NULL
                             ELSE coalesce(EXCLUDED.upgrade_at, o.upgrade_at) END,
           fair_use_limit = CASE WHEN 'fair_use' = ANY (coalesce(clear, '{}')) THEN NULL
                                 ELSE coalesce(EXCLUDED.fair_use_limit, o.fair_use_limit) END,
           updated_at = ts;
    -- the spend path looks for fair use only on tracked wallets (the flag is never reset)
    IF fair_use_limit IS NOT NULL AND NOT w.tracked THEN
        UPDATE credit_ledger.wallets x SET tracked = true WHERE x.id = w.id AND x.tenant = w.tenant;
    END IF;
    RETURN QUERY
    SELECT w.wallet, o.asset, x.low_balance_threshold, o.auto_topup_amount, o.upgrade_at, o.topups, o.fair_use_limit
      FROM credit_ledger.wallet_overage o JOIN credit_ledger.wallets x ON x.id = o.wallet_id AND x.tenant = o.tenant
     WHERE o.wallet_id = w.id AND o.tenant = w.tenant AND o.asset = credit_wallet_overage.asset;
END $$;

-- Upgrade signals (credit_tick): one upgrade_suggested event per wallet, asset, tier and
-- period once the period's usage (approved debits and holds, captures at their final amount,
-- net of refunds; an agent run's calls count for the wallet that opened it) reaches the tier.
-- Returns the events written.
CREATE FUNCTION credit_ledger._upgrade_signals(as_of timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    -- (PL/pgSQL, one query joined on the tenant throughout, since 0.13.0: so that Citus pushes
    -- it down to the shards whole)
    WITH due AS (
        SELECT o.wallet_id, o.asset, w.wallet, w.tenant,
               credit_ledger._period_start(w.period, w.period_anchor, as_of) AS since,
               coalesce(x.used, 0) AS used, t.tier
          FROM credit_ledger.wallet_overage o
          JOIN credit_ledger.wallets w ON w.id = o.wallet_id AND w.tenant = o.tenant
          -- what the wallet and its runs' wallets spent since its period started
          LEFT JOIN LATERAL (
               SELECT sum(coalesce(a.captured, a.cost) - a.refunded) AS used
                 FROM credit_ledger.wallets s
                 JOIN credit_ledger.authorizations a ON a.wallet_id = s.id AND a.tenant = s.tenant
                WHERE s.tenant = o.tenant AND (s.id = o.wallet_id OR s.run_of = o.wallet_id)
                  AND a.asset = o.asset AND a.status IN ('approved', 'held', 'captured')
                  AND a.created_at >= credit_ledger._period_start(w.period, w.period_anchor, as_of)
                  AND a.created_at <= as_of) x ON true
         CROSS JOIN LATERAL unnest(o.upgrade_at) t(tier)
         WHERE o.upgrade_at IS NOT NULL AND w.closed_at IS NULL AND coalesce(x.used, 0) >= t.tier
           AND NOT EXISTS (SELECT 1 FROM credit_ledger.events e
                            WHERE e.wallet_id = o.wallet_id AND e.tenant = o.tenant AND e.kind = 'upgrade_suggested'
                              AND e.asset = o.asset
                              AND e.at >= credit_ledger._period_start(w.period, w.period_anchor, as_of)
                              AND e.payload ->> 'tier' = t.tier::text)
    ), e AS (
        INSERT INTO credit_ledger.events (kind, wallet_id, tenant, asset, payload)
        SELECT 'upgrade_suggested', d.wallet_id, d.tenant, d.asset,
               jsonb_build_object('event', 'upgrade_suggested', 'wallet', d.wallet, 'asset', d.asset,
                                  'tier', d.tier::text, 'period_usage', d.used, 'period_start', d.since)
          FROM due d ORDER BY d.wallet_id, d.asset, d.tier
        RETURNING id
    )
    SELECT count(pg_notify('credit_ledger', e.id::text)) INTO n FROM e;
    RETURN n;
END $$;

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
