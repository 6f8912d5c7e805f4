-- credit_ledger 0.13.0 -> 0.14.0.
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- The report views join ledger tables on the tenant too (issue 20): on a ledger Citus distributes,
-- each join then stays on one shard and the views run from the coordinator; margin_by_action
-- joins two aggregates instead of a subquery per row, operation_log reads a transfer's receivers
-- (of any tenant) whole first. Same columns, same rows.

CREATE OR REPLACE VIEW credit_ledger.wallet_balances AS
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

CREATE OR REPLACE VIEW credit_ledger.grant_status AS
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

CREATE OR REPLACE VIEW credit_ledger.usage_daily AS
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

CREATE OR REPLACE VIEW credit_ledger.margin_by_action AS
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

CREATE OR REPLACE VIEW credit_ledger.breakage AS
SELECT date_trunc('month', coalesce(g.expires_at, j.at) AT TIME ZONE 'UTC')::date AS month, j.asset, g.category,
       sum(-j.amount) AS credits_expired,
       sum(-j.amount * g.unit_price) AS revenue_recognized
  FROM credit_ledger.journal j
  JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
 WHERE j.kind = 'expiry'
 GROUP BY 1, j.asset, g.category;

CREATE OR REPLACE VIEW credit_ledger.declines_daily AS
SELECT date_trunc('day', a.created_at AT TIME ZONE 'UTC')::date AS day, coalesce(o.wallet, w.wallet) AS wallet,
       a.reason, a.action, count(*) AS declines
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of AND o.tenant = w.tenant
 WHERE a.status = 'declined'
 GROUP BY 1, 2, a.tenant, a.reason, a.action;

CREATE OR REPLACE VIEW credit_ledger.call_log AS
SELECT coalesce(o.wallet, w.wallet) AS wallet, a.id AS authorization_id, a.created_at AS at,
       a.kind, a.status, a.reason, a.action, a.variant, a.quantity, a.asset, a.cost,
       a.captured, a.refunded, a.degraded, a.requested_variant, a.fair_use,
       CASE WHEN o.id IS NOT NULL THEN w.wallet END AS run_wallet
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of AND o.tenant = w.tenant;

CREATE OR REPLACE VIEW credit_ledger.revenue_monthly AS
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

CREATE OR REPLACE VIEW credit_ledger.run_usage AS
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

CREATE OR REPLACE VIEW credit_ledger.reversals AS
SELECT date_trunc('month', j.at AT TIME ZONE 'UTC')::date AS month, j.asset, g.category,
       sum(-j.amount) AS credits_reversed,
       sum(-j.amount * g.unit_price) AS liability_reversed
  FROM credit_ledger.journal j
  JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
 WHERE j.kind = 'adjustment'
 GROUP BY 1, j.asset, g.category;

CREATE OR REPLACE VIEW credit_ledger.usage_by_actor AS
SELECT date_trunc('day', a.created_at AT TIME ZONE 'UTC')::date AS day, coalesce(o.wallet, w.wallet) AS wallet,
       a.actor, a.db_user, a.asset, count(*) AS calls,
       sum(coalesce(a.captured, a.cost) - a.refunded) AS credits
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of AND o.tenant = w.tenant
 WHERE a.status IN ('approved', 'captured')
 GROUP BY 1, 2, a.tenant, a.actor, a.db_user, a.asset;

CREATE OR REPLACE VIEW credit_ledger.operation_log AS
SELECT o.id AS operation_id, o.created_at, o.kind, w.wallet, t.wallet AS to_wallet, o.grant_id, o.asset,
       o.amount, o.done, o.pending, o.open, o.disposition, o.reason, o.actor, o.db_user, o.db_session_user,
       o.metadata
  FROM credit_ledger.operations o
  JOIN credit_ledger.wallets w ON w.id = o.wallet_id AND w.tenant = o.tenant
  -- a transfer's receiver may be of another tenant: the receivers are read whole first (OFFSET
  -- 0 keeps the subquery apart; Citus then joins its result, not two shards)
  LEFT JOIN (SELECT r.id, r.wallet FROM credit_ledger.wallets r
              WHERE r.id IN (SELECT x.to_wallet_id FROM credit_ledger.operations x WHERE x.to_wallet_id IS NOT NULL)
             OFFSET 0) t ON t.id = o.to_wallet_id;

CREATE OR REPLACE VIEW credit_ledger.degraded_daily AS
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


-- Functions Citus could not plan on a distributed ledger (SQL functions with parameters, a
-- statement without the tenant): credit_event reads through credit_ledger._event (PL/pgSQL),
-- credit_wallet_overage names the wallet's tenant and takes no now() in its ON CONFLICT
-- clause, credit_events numbers each event by its key (tenant included) with a seq taken first,
-- credit_statement and credit_margin_whatif join on the tenant and read the calls a wallet's
-- entries name (which may be of another tenant on one node) whole first, credit_health and
-- credit_metrics are PL/pgSQL and read each part's aggregate on its own. Same results.


CREATE FUNCTION credit_ledger._event(id bigint)
RETURNS TABLE (event_id bigint, at timestamptz, kind text, wallet text, asset text, payload jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- (since 0.14.0 credit_event's query, PL/pgSQL and joined on the tenant: Citus plans it on
    -- a distributed ledger, where it plans no SQL function with parameters)
    RETURN QUERY
    SELECT e.id, e.at, e.kind, w.wallet, e.asset, e.payload
      FROM credit_ledger.events e JOIN credit_ledger.wallets w ON w.id = e.wallet_id AND w.tenant = e.tenant
     WHERE e.id = _event.id;
END $$;
REVOKE ALL ON FUNCTION credit_ledger._event(bigint) FROM PUBLIC;


CREATE OR REPLACE FUNCTION @extschema@.credit_wallet_overage(wallet text, asset text DEFAULT 'credits',
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


CREATE OR REPLACE FUNCTION @extschema@.credit_event(event_id bigint)
RETURNS TABLE (event_id bigint, at timestamptz, kind text, wallet text, asset text, payload jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    SELECT e.event_id, e.at, e.kind, e.wallet, e.asset, e.payload FROM credit_ledger._event($1) e
$$;


CREATE OR REPLACE FUNCTION @extschema@.credit_events(after_id bigint DEFAULT NULL, max_rows int DEFAULT 100,
                                          consumer text DEFAULT NULL)
RETURNS TABLE (seq bigint, event_id bigint, at timestamptz, kind text, wallet text, asset text, payload jsonb)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    start bigint := after_id;
    e record;
    n bigint;
BEGIN
    IF max_rows IS NULL OR max_rows < 1 OR max_rows > 10000 THEN
        RAISE EXCEPTION 'max_rows must be between 1 and 10000, got %', coalesce(max_rows::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF consumer IS NOT NULL AND (consumer = '' OR length(consumer) > 255) THEN
        RAISE EXCEPTION 'consumer must be 1 to 255 characters' USING ERRCODE = '22023';
    END IF;
    IF start IS NULL THEN
        -- after what the consumer acknowledged (0: from the first event kept)
        SELECT c.acked_up_to INTO start FROM credit_ledger.event_consumers c WHERE c.consumer = credit_events.consumer;
        start := coalesce(start, 0);
    END IF;
    PERFORM pg_advisory_xact_lock(8245617337100211);   -- 'credit_ledger.events' numbering
    -- (the seq taken first and each row by its key, tenant included, since 0.14.0: on a ledger
    -- Citus distributes, an UPDATE takes no volatile function and goes to the row's shard)
    FOR e IN SELECT x.id, x.tenant FROM credit_ledger.events x WHERE x.seq IS NULL ORDER BY x.id LOOP
        n := nextval('credit_ledger.events_seq');
        UPDATE credit_ledger.events x SET seq = n WHERE x.id = e.id AND x.tenant = e.tenant;
    END LOOP;
    RETURN QUERY
    SELECT x.seq, x.id, x.at, x.kind, w.wallet, x.asset, x.payload
      FROM credit_ledger.events x JOIN credit_ledger.wallets w ON w.id = x.wallet_id AND w.tenant = x.tenant
     WHERE x.seq > start
     ORDER BY x.seq
     LIMIT max_rows;
END $$;


CREATE OR REPLACE FUNCTION @extschema@.credit_statement(wallet text, from_at timestamptz, to_at timestamptz,
                                             asset text DEFAULT 'credits')
RETURNS TABLE (line int, at timestamptz, kind text, authorization_id bigint, operation_id bigint,
               grant_id bigint, action text, amount numeric, balance numeric, actor text, note text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    wid bigint;
    opening numeric;
    -- every read names the wallet's tenant (since 0.14.0: on Citus, its shard alone)
    t text := credit_ledger._wallet_tenant(credit_statement.wallet);
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_statement.wallet, credit_statement.asset);
    SELECT w.id INTO wid FROM credit_ledger.wallets w WHERE w.wallet = credit_statement.wallet AND w.tenant = t;
    IF wid IS NULL THEN
        RAISE EXCEPTION 'wallet "%" does not exist', wallet USING ERRCODE = '42704';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM credit_ledger.assets a WHERE a.asset = credit_statement.asset) THEN
        RAISE EXCEPTION 'asset "%" does not exist', asset USING ERRCODE = '42704';
    END IF;
    IF from_at IS NULL OR to_at IS NULL OR NOT isfinite(from_at) OR NOT isfinite(to_at) OR to_at < from_at THEN
        RAISE EXCEPTION 'from_at and to_at must be finite with from_at <= to_at'
            USING ERRCODE = '22023', DETAIL = format('from_at %s, to_at %s', from_at, to_at);
    END IF;
    opening := @extschema@.credit_balance(credit_statement.wallet, credit_statement.asset, from_at);
    RETURN QUERY
    WITH calls AS (
        -- the calls the wallet's entries name, read whole first (OFFSET 0): a pool's entries
        -- name its members' calls, and on one node a member may since have joined another
        -- pool, of another tenant
        SELECT a.id, a.action, a.expires_at FROM credit_ledger.authorizations a
         WHERE a.id IN (SELECT j.authorization_id FROM credit_ledger.journal j
                         WHERE j.wallet_id = wid AND j.tenant = t AND j.authorization_id IS NOT NULL)
        OFFSET 0
    ), e AS (
        -- every entry on the wallet's grants that counts in credit_balance(as_of): an expiry
        -- or rollover entry of the sweep does not (the credits leave at expires_at), one of a
        -- wallet close does
        SELECT j.id, j.kind, j.authorization_id, j.operation_id, coalesce(g.home_id, g.id) AS grant_id,
               j.amount, j.held, j.actor, j.note, g.expires_at AS exp, a.expires_at AS ttl, a.action,
               CASE WHEN j.kind = 'grant' THEN g.effective_at ELSE greatest(j.at, g.effective_at) END AS t0
          FROM credit_ledger.journal j
          JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
          LEFT JOIN calls a ON a.id = j.authorization_id
         WHERE g.wallet_id = wid AND j.wallet_id = wid AND j.tenant = t AND g.asset = credit_statement.asset
           AND (j.kind NOT IN ('expiry', 'rollover') OR j.operation_id IS NOT NULL)
           -- written after to_at: no effect in the window (a grant's own entry counts from its
           -- effective_at, as in credit_balance(as_of))
           AND (j.at <= to_at OR j.kind = 'grant')
    ), ev AS (
        -- the entry comes into the balance
        SELECT e.t0 AS t, e.kind, e.authorization_id, e.operation_id,
               CASE WHEN e.authorization_id IS NULL AND e.operation_id IS NULL THEN e.grant_id END AS grant_id,
               e.action, e.actor, e.note,
               CASE WHEN e.exp IS NULL OR e.t0 < e.exp THEN e.amount ELSE 0 END
               - CASE WHEN (e.exp IS NULL OR e.t0 < e.exp) AND (e.ttl IS NULL OR e.t0 < e.ttl) THEN e.held ELSE 0 END AS x,
               e.id AS ord
          FROM e
        UNION ALL
        -- a hold's TTL passes before its grant expires: its reservation leaves
        SELECT e.ttl, 'hold_expired', e.authorization_id, NULL, NULL, e.action, NULL, NULL, e.held, e.id
          FROM e WHERE e.held <> 0 AND e.ttl IS NOT NULL AND e.t0 < e.ttl AND (e.exp IS NULL OR e.ttl < e.exp)
        UNION ALL
        -- the grant expires: what the entry left in the balance leaves it
        SELECT e.exp, 'expiry', NULL, NULL, e.grant_id, NULL, NULL, NULL,
               -(e.amount - CASE WHEN e.ttl IS NULL OR e.exp <= e.ttl THEN e.held ELSE 0 END), e.id
          FROM e WHERE e.exp IS NOT NULL AND e.t0 < e.exp
        UNION ALL
        -- overdraft debt taken and settled
        SELECT j.at, j.kind, j.authorization_id, j.operation_id, NULL, a.action, j.actor, j.note, j.amount, j.id
          FROM credit_ledger.journal j LEFT JOIN calls a ON a.id = j.authorization_id
         WHERE j.wallet_id = wid AND j.tenant = t AND j.grant_id IS NULL AND j.asset = credit_statement.asset
    ), lines AS (
        SELECT ev.t, ev.kind, ev.authorization_id, ev.operation_id, ev.grant_id, max(ev.action) AS action,
               sum(ev.x) AS x, max(ev.actor) AS actor, max(ev.note) AS note, min(ev.ord) AS ord
          FROM ev
         WHERE ev.t > from_at AND ev.t <= to_at AND ev.kind <> 'lane'
         GROUP BY ev.t, ev.kind, ev.authorization_id, ev.operation_id, ev.grant_id
        HAVING sum(ev.x) <> 0
    ), numbered AS (
        SELECT l.*, row_number() OVER (ORDER BY l.t, l.ord, l.kind) AS n FROM lines l
    )
    SELECT 0, from_at, 'opening'::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text, NULL::numeric,
           opening, NULL::text, NULL::text
    UNION ALL
    SELECT n.n::int, n.t, n.kind, n.authorization_id, n.operation_id, n.grant_id, n.action, n.x,
           opening + sum(n.x) OVER (ORDER BY n.n), n.actor, n.note
      FROM numbered n
    UNION ALL
    SELECT (SELECT count(*) FROM numbered)::int + 1, to_at, 'closing', NULL, NULL, NULL, NULL, NULL,
           @extschema@.credit_balance(credit_statement.wallet, credit_statement.asset, to_at), NULL, NULL
    ORDER BY 1;
END $$;


CREATE OR REPLACE FUNCTION @extschema@.credit_margin_whatif(vendor_cost_change numeric, days int DEFAULT 30)
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


CREATE OR REPLACE FUNCTION @extschema@.credit_health()
RETURNS TABLE (check_name text, status text, value numeric, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
#variable_conflict use_column
DECLARE
    c record;
    oldest timestamptz;
    last_seq bigint;
BEGIN
    -- (PL/pgSQL since 0.14.0, each event consumer's oldest unacknowledged event read on its
    -- own: on a ledger Citus distributes, Citus joins no local table laterally with the shards)
    RETURN QUERY
    WITH lvl(name, secs) AS (
        -- how long the oldest due work has waited
        SELECT 'tick_lag_expiry', extract(epoch FROM now() - (
            SELECT g.expires_at FROM credit_ledger.grants g
             WHERE g.live AND g.expires_at IS NOT NULL AND g.expires_at <= now()
             ORDER BY g.expires_at LIMIT 1))
        UNION ALL
        SELECT 'tick_lag_allowances', extract(epoch FROM now() - (
            SELECT a.next_boundary FROM credit_ledger.allowances a
             WHERE a.next_boundary <= now() ORDER BY a.next_boundary LIMIT 1))
        UNION ALL
        SELECT 'expired_holds_unswept', extract(epoch FROM now() - (
            SELECT a.expires_at FROM credit_ledger.authorizations a
             WHERE a.status = 'held' AND a.expires_at <= now() ORDER BY a.expires_at LIMIT 1))
        UNION ALL
        SELECT 'expired_runs_unswept', extract(epoch FROM now() - (
            SELECT r.expires_at FROM credit_ledger.runs r
             WHERE r.status = 'open' AND r.expires_at <= now() ORDER BY r.expires_at LIMIT 1))
    )
    SELECT l.name,
           CASE WHEN l.secs IS NULL OR l.secs < 300 THEN 'ok' WHEN l.secs < 3600 THEN 'warn' ELSE 'fail' END,
           round(coalesce(l.secs, 0)::numeric, 1),
           CASE WHEN l.secs IS NULL THEN 'nothing due'
                ELSE format('the oldest due item has waited %s s: is credit_tick() scheduled?', round(l.secs::numeric)) END
      FROM lvl l;
    -- each event consumer: how far behind the stream it is, and since when
    last_seq := (SELECT max(e.seq) FROM credit_ledger.events e);
    FOR c IN SELECT x.consumer, x.acked_up_to FROM credit_ledger.event_consumers x ORDER BY x.consumer LOOP
        oldest := (SELECT e.at FROM credit_ledger.events e WHERE e.seq > c.acked_up_to ORDER BY e.seq LIMIT 1);
        check_name := 'event_backlog:' || c.consumer;
        status := CASE WHEN oldest IS NULL OR oldest > now() - interval '5 minutes' THEN 'ok'
                       WHEN oldest > now() - interval '1 hour' THEN 'warn' ELSE 'fail' END;
        value := greatest(coalesce(last_seq, 0) - c.acked_up_to, 0);
        detail := format('%s events not acknowledged%s', greatest(coalesce(last_seq, 0) - c.acked_up_to, 0),
                         CASE WHEN oldest IS NULL THEN '' ELSE format(', the oldest since %s', oldest) END);
        RETURN NEXT;
    END LOOP;
    RETURN QUERY
    -- the last recorded credit_verify()
    SELECT 'verify',
           CASE WHEN v.id IS NULL THEN 'warn' WHEN v.violations > 0 THEN 'fail'
                WHEN v.at < now() - interval '1 day' THEN 'warn' ELSE 'ok' END,
           coalesce(v.violations, 0),
           CASE WHEN v.id IS NULL THEN 'never recorded: schedule SELECT credit_verify_record()'
                ELSE format('%s violations (%s) %s s ago, took %s ms', v.violations,
                            array_to_string(v.checks, ', '), round(extract(epoch FROM now() - v.at)), v.duration_ms) END
      FROM (SELECT 1) one
      LEFT JOIN LATERAL (SELECT r.* FROM credit_ledger.verify_runs r ORDER BY r.id DESC LIMIT 1) v ON true
    UNION ALL
    -- declines of the last 5 minutes against the 55 minutes before (per minute)
    SELECT 'declines_spike',
           CASE WHEN d.recent * 5 < 20 OR d.recent <= 3 * greatest(d.before, 1) THEN 'ok'
                WHEN d.recent <= 10 * greatest(d.before, 1) THEN 'warn' ELSE 'fail' END,
           round(d.recent / greatest(d.before, 1), 2),
           format('%s declines a minute in the last 5 minutes, %s in the 55 before',
                  round(d.recent, 1), round(d.before, 1))
      FROM (SELECT count(*) FILTER (WHERE a.created_at > now() - interval '5 minutes') / 5.0 AS recent,
                   count(*) FILTER (WHERE a.created_at <= now() - interval '5 minutes') / 55.0 AS before
              FROM credit_ledger.authorizations a
             WHERE a.created_at > now() - interval '1 hour' AND a.status = 'declined') d;
END $$;


CREATE OR REPLACE FUNCTION @extschema@.credit_metrics(part text DEFAULT NULL)
RETURNS TABLE (metric text, asset text, label text, value numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
#variable_conflict use_column
BEGIN
    -- (PL/pgSQL since 0.14.0, each part one aggregate per asset read on its own, OFFSET 0, then
    -- joined with the assets: on a ledger Citus distributes, Citus joins no reference table
    -- laterally with the shards, and plans no SQL function with parameters)
    RETURN QUERY
    SELECT m.metric, s.asset, '', coalesce(CASE m.metric WHEN 'holds_open' THEN h.n ELSE h.held END, 0)
      FROM credit_ledger.assets s
     CROSS JOIN (VALUES ('holds_open'), ('credits_held')) m(metric)
      LEFT JOIN (SELECT a.asset, count(*)::numeric AS n, sum(a.cost) FILTER (WHERE NOT a.fair_use) AS held
                   FROM credit_ledger.authorizations a
                  WHERE a.status = 'held' AND a.expires_at IS NOT NULL
                  GROUP BY a.asset OFFSET 0) h ON h.asset = s.asset
     WHERE part IS NULL OR part = 'holds'
    UNION ALL
    SELECT 'calls_1m', s.asset, 'approved', coalesce(c.n, 0)
      FROM credit_ledger.assets s
      LEFT JOIN (SELECT a.asset, count(*)::numeric AS n FROM credit_ledger.authorizations a
                  WHERE a.created_at > now() - interval '1 minute' AND a.status <> 'declined'
                  GROUP BY a.asset OFFSET 0) c ON c.asset = s.asset
     WHERE part IS NULL OR part = 'calls'
    UNION ALL
    SELECT 'calls_1m', s.asset, d.reason, d.n
      FROM credit_ledger.assets s
      JOIN (SELECT a.asset, coalesce(a.reason, 'unknown') AS reason, count(*)::numeric AS n
              FROM credit_ledger.authorizations a
             WHERE a.created_at > now() - interval '1 minute' AND a.status = 'declined'
             GROUP BY 1, 2 OFFSET 0) d ON d.asset = s.asset
     WHERE part IS NULL OR part = 'calls'
    UNION ALL
    SELECT 'credits_1m', s.asset, m.movement,
           coalesce(CASE m.movement WHEN 'granted' THEN j.granted WHEN 'spent' THEN j.spent
                                    WHEN 'refunded' THEN j.refunded ELSE j.expired END, 0)
      FROM credit_ledger.assets s
     CROSS JOIN (VALUES ('granted'), ('spent'), ('refunded'), ('expired')) m(movement)
      LEFT JOIN (SELECT x.asset,
                        sum(x.amount) FILTER (WHERE x.kind = 'grant') AS granted,
                        -sum(x.amount) FILTER (WHERE x.kind IN ('debit', 'capture')
                                                  OR (x.kind = 'overdraft' AND x.amount < 0)) AS spent,
                        sum(x.amount) FILTER (WHERE x.kind = 'refund') AS refunded,
                        -sum(x.amount) FILTER (WHERE x.kind = 'expiry') AS expired
                   FROM credit_ledger.journal x
                  WHERE x.at > now() - interval '1 minute'
                  GROUP BY x.asset OFFSET 0) j ON j.asset = s.asset
     WHERE part IS NULL OR part = 'credits'
    UNION ALL
    SELECT m.metric, s.asset, '',
           coalesce(CASE m.metric WHEN 'liability_credits' THEN l.credits ELSE l.revenue END, 0)
      FROM credit_ledger.assets s
     CROSS JOIN (VALUES ('liability_credits'), ('liability_deferred_revenue')) m(metric)
      LEFT JOIN (SELECT v.asset, sum(v.credits_outstanding) AS credits, sum(v.deferred_revenue) AS revenue
                   FROM credit_ledger.liability v GROUP BY v.asset OFFSET 0) l ON l.asset = s.asset
     WHERE part IS NULL OR part = 'liability';
END $$;


-- The run functions take tenant => text (issue 20; a new last parameter, default
-- credit_ledger._tenant_unset() as for the spending functions in 0.13.0): a Citus cluster
-- delegates a call that names it to the tenant's worker, and credit_distribute() registers them.
-- credit_ledger._run_nodes (behind credit_run, credit_run_tree and credit_run_close's result)
-- is PL/pgSQL, names the run's tenant in its recursive query, and takes it from a delegated
-- call. Each is dropped and created again; the EXECUTE privileges granted on the old ones are
-- granted on the new ones.
SELECT pg_catalog.set_config('credit_ledger_upgrade.run_acl', coalesce((
    SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
               'name', p.proname, 'grantee', a.grantee::pg_catalog.regrole::text, 'grantable', a.is_grantable))::text
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE n.nspname = '@extschema@'
       AND p.proname IN ('credit_run_open', 'credit_run_close', 'credit_run', 'credit_run_tree')
       AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE'), '[]'), true);
DROP FUNCTION @extschema@.credit_run(bigint);
DROP FUNCTION @extschema@.credit_run_tree(bigint);
DROP FUNCTION @extschema@.credit_run_open(text, numeric, text, bigint, interval, text, jsonb, integer, numeric, integer);
DROP FUNCTION @extschema@.credit_run_close(bigint);
DROP FUNCTION credit_ledger._run_nodes(bigint);

CREATE FUNCTION @extschema@."credit_run_open"(
	"wallet" TEXT,
	"budget" NUMERIC,
	"asset" TEXT DEFAULT 'credits',
	"parent_run" bigint DEFAULT NULL,
	"ttl" interval DEFAULT '1 hour',
	"idempotency_key" TEXT DEFAULT NULL,
	"metadata" jsonb DEFAULT NULL,
	"max_calls" INT DEFAULT NULL,
	"max_cost_per_call" NUMERIC DEFAULT NULL,
	"lanes" INT DEFAULT 1,
	"tenant" TEXT DEFAULT credit_ledger._tenant_unset()
) RETURNS TABLE (
	"run_id" bigint,
	"approved" bool,
	"reason" TEXT,
	"budget" NUMERIC,
	"balance" NUMERIC,
	"asset" TEXT,
	"status" TEXT,
	"expires_at" timestamp with time zone
)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'credit_run_open_v14_wrapper';

CREATE FUNCTION @extschema@."credit_run_close"(
	"run_id" bigint,
	"tenant" TEXT DEFAULT credit_ledger._tenant_unset()
) RETURNS TABLE (
	"run_id" bigint,
	"status" TEXT,
	"budget" NUMERIC,
	"spent" NUMERIC,
	"spent_tree" NUMERIC,
	"returned" NUMERIC,
	"closed_at" timestamp with time zone
)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'credit_run_close_v14_wrapper';


CREATE FUNCTION credit_ledger._run_nodes(root bigint, tenant text DEFAULT NULL)
RETURNS TABLE (run_id bigint, depth int, wallet text, parent_run bigint, asset text, status text,
               reason text, budget numeric, spent numeric, held numeric, remaining numeric,
               reserved numeric, spent_tree numeric, returned numeric, calls bigint,
               created_at timestamptz, expires_at timestamptz, closed_at timestamptz, metadata jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    -- the run's tenant, named in every read (since 0.14.0: a run and its sub-runs are one
    -- tenant's, so on a ledger Citus distributes the query is on that tenant's shard alone);
    -- given by a call Citus delegates (then nothing may leave the shard), else looked up
    run_tenant text := coalesce(_run_nodes.tenant, (SELECT r.tenant FROM credit_ledger.runs r WHERE r.id = root));
BEGIN
    IF run_tenant IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH RECURSIVE t AS (
        SELECT r.id, 0 AS depth, ARRAY[r.id] AS path FROM credit_ledger.runs r WHERE r.id = root AND r.tenant = run_tenant
        UNION ALL
        SELECT r.id, t.depth + 1, t.path || r.id
          FROM credit_ledger.runs r JOIN t ON r.parent_run = t.id
         WHERE r.tenant = run_tenant
    ), n AS (
        SELECT t.id, t.depth, t.path, r.wallet_id, r.run_wallet_id, r.parent_run, r.asset, r.status, r.reason,
               r.budget, r.returned, r.created_at, r.expires_at, r.closed_at, r.metadata,
               coalesce((SELECT sum(coalesce(a.captured, a.cost) - a.refunded)
                           FROM credit_ledger.authorizations a
                          WHERE a.wallet_id = r.run_wallet_id AND a.tenant = run_tenant
                            AND a.status IN ('approved', 'captured')), 0) AS spent,
               coalesce((SELECT count(*) FROM credit_ledger.authorizations a
                          WHERE a.wallet_id = r.run_wallet_id AND a.tenant = run_tenant AND a.status <> 'declined'), 0) AS calls,
               coalesce((SELECT sum(g.held) FROM credit_ledger.grants g
                          WHERE g.wallet_id = r.run_wallet_id AND g.tenant = run_tenant), 0) AS held,
               coalesce((SELECT sum(g.remaining - g.held) FROM credit_ledger.grants g
                          WHERE g.wallet_id = r.run_wallet_id AND g.tenant = run_tenant AND g.live
                            AND (g.expires_at IS NULL OR g.expires_at > now())), 0) AS remaining,
               coalesce((SELECT sum(g.remaining) FROM credit_ledger.grants g
                          WHERE g.wallet_id = r.run_wallet_id AND g.tenant = run_tenant AND g.live), 0) AS unspent
          FROM t JOIN credit_ledger.runs r ON r.id = t.id AND r.tenant = run_tenant
    )
    SELECT n.id, n.depth, o.wallet, n.parent_run, n.asset, n.status, n.reason, n.budget, n.spent, n.held,
           n.remaining,
           coalesce((SELECT sum(d.unspent) FROM n d WHERE d.id <> n.id AND n.id = ANY (d.path) AND d.status = 'open'), 0),
           (SELECT sum(d.spent) FROM n d WHERE n.id = ANY (d.path)),
           n.returned, n.calls, n.created_at, n.expires_at, n.closed_at, n.metadata
      FROM n JOIN credit_ledger.wallets o ON o.id = n.wallet_id AND o.tenant = run_tenant
     ORDER BY n.path;
END $$;


CREATE FUNCTION @extschema@.credit_run(run_id bigint, tenant text DEFAULT credit_ledger._tenant_unset())
RETURNS TABLE (run_id bigint, wallet text, parent_run bigint, asset text, status text, reason text,
               budget numeric, spent numeric, held numeric, remaining numeric, reserved numeric,
               spent_tree numeric, returned numeric, calls bigint, created_at timestamptz,
               expires_at timestamptz, closed_at timestamptz, metadata jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    SELECT n.run_id, n.wallet, n.parent_run, n.asset, n.status, n.reason, n.budget, n.spent, n.held,
           n.remaining, n.reserved, n.spent_tree, n.returned, n.calls, n.created_at, n.expires_at,
           n.closed_at, n.metadata
      FROM credit_ledger._run_nodes($1, $2) n WHERE n.depth = 0
$$;


CREATE FUNCTION @extschema@.credit_run_tree(run_id bigint, tenant text DEFAULT credit_ledger._tenant_unset())
RETURNS TABLE (run_id bigint, depth int, parent_run bigint, status text, budget numeric,
               spent numeric, held numeric, remaining numeric, reserved numeric, spent_tree numeric,
               returned numeric, calls bigint, expires_at timestamptz, closed_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    SELECT n.run_id, n.depth, n.parent_run, n.status, n.budget, n.spent, n.held, n.remaining,
           n.reserved, n.spent_tree, n.returned, n.calls, n.expires_at, n.closed_at
      FROM credit_ledger._run_nodes($1, $2) n
$$;

REVOKE ALL ON FUNCTION credit_ledger._run_nodes(bigint, text) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@.credit_run_open(text, numeric, text, bigint, interval, text, jsonb, integer, numeric, integer, text) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@.credit_run_close(bigint, text) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@.credit_run(bigint, text) FROM PUBLIC;

REVOKE ALL ON FUNCTION @extschema@.credit_run_tree(bigint, text) FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.credit_run_open(text, numeric, text, bigint, interval, text, jsonb, integer, numeric, integer, text) IS 'open an agent run: reserve a budget from the wallet (or a parent run) that calls with run => id spend without the wallet''s lock; tenant: the wallet''s tenant (a Citus cluster routes by it)';

COMMENT ON FUNCTION @extschema@.credit_run_close(bigint, text) IS 'close an agent run and its open sub-runs; unspent credits go back to the exact grants they came from; tenant: the run''s wallet''s tenant (a Citus cluster routes by it)';

COMMENT ON FUNCTION @extschema@.credit_run(bigint, text) IS 'an agent run: budget, spent, held, remaining, reserved by sub-runs, returned, calls, status; tenant: the run''s wallet''s tenant (a Citus cluster routes by it)';

COMMENT ON FUNCTION @extschema@.credit_run_tree(bigint, text) IS 'an agent run and its sub-runs at any depth, one row per node; tenant: as for credit_run';


DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT * FROM pg_catalog.json_to_recordset(
                 pg_catalog.current_setting('credit_ledger_upgrade.run_acl')::pg_catalog.json)
             AS x(name text, grantee text, grantable boolean) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s',
            CASE g.name WHEN 'credit_run_open' THEN '@extschema@.credit_run_open(text, numeric, text, bigint, interval, text, jsonb, integer, numeric, integer, text)'
                        WHEN 'credit_run_close' THEN '@extschema@.credit_run_close(bigint, text)'
                        WHEN 'credit_run' THEN '@extschema@.credit_run(bigint, text)'
                        ELSE '@extschema@.credit_run_tree(bigint, text)' END,
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;

-- credit_distribute() registers the run functions too (a second call on a ledger distributed by
-- 0.12.0 or 0.13.0 registers them)


CREATE OR REPLACE FUNCTION @extschema@.credit_distribute()
RETURNS TABLE (step text, object text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning AS $$
DECLARE
    fk record;
    t text;
    fks jsonb;
    f text;
    delegated text[] := ARRAY[
        '@extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint, boolean, text)',
        '@extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint, boolean, text)',
        '@extschema@.credit_capture(bigint, numeric, text, jsonb, text)',
        '@extschema@.credit_release(bigint, text, jsonb, text)',
        '@extschema@.credit_refund(bigint, numeric, text, text, jsonb, text)',
        '@extschema@.credit_quote(text, text, numeric, text, boolean, text)',
        '@extschema@.credit_balance(text, text, timestamptz, text)',
        -- since 0.14.0: the run functions but credit_run_open (it writes the run wallet's key
        -- to wallet_keys, a reference table on every node, which no delegated call may)
        '@extschema@.credit_run_close(bigint, text)',
        '@extschema@.credit_run(bigint, text)',
        '@extschema@.credit_run_tree(bigint, text)'];
    n int := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'credit_distribute() needs Citus' USING ERRCODE = '55000',
            HINT = 'CREATE EXTENSION citus on the coordinator, add the workers, then call it';
    END IF;
    IF (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g) <> 0 THEN
        RAISE EXCEPTION 'credit_distribute() runs on the coordinator' USING ERRCODE = '55000';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                WHERE p.logicalrelid = 'credit_ledger.wallets'::pg_catalog.regclass) THEN
        FOREACH f IN ARRAY delegated LOOP
            CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o
                                   WHERE o.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                                     AND o.objid = f::pg_catalog.regprocedure
                                     AND o.distribution_argument_index IS NOT NULL);
            PERFORM create_distributed_function(f::pg_catalog.regprocedure, 'tenant',
                                                colocate_with => 'credit_ledger.wallets', force_delegation => true);
            step := 'delegated by tenant'; object := f; RETURN NEXT;
            n := n + 1;
        END LOOP;
        IF n = 0 THEN
            step := 'already distributed'; object := 'credit_ledger'; RETURN NEXT;
        END IF;
        RETURN;
    END IF;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);   -- the journal's guard
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    -- the foreign keys to the catalogue, dropped while their tables change kind (Citus would
    -- otherwise convert every table of the foreign-key graph to a local table first), also on
    -- the workers' copies of the tables, which become the shells
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'rel', c.conrelid::pg_catalog.regclass::text, 'name', c.conname,
               'def', pg_catalog.pg_get_constraintdef(c.oid)))
      INTO fks
      FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
     WHERE n.nspname = 'credit_ledger' AND c.contype = 'f'
       AND c.confrelid IN ('credit_ledger.assets'::pg_catalog.regclass, 'credit_ledger.rate_cards'::pg_catalog.regclass);
    FOR fk IN SELECT * FROM pg_catalog.jsonb_to_recordset(coalesce(fks, '[]')) AS x(rel text, name text, def text) LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', fk.rel, fk.name);
        PERFORM run_command_on_workers(pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', fk.rel, fk.name));
    END LOOP;
    FOREACH t IN ARRAY ARRAY['assets', 'rate_cards', 'rates', 'wallet_keys'] LOOP
        PERFORM create_reference_table(('credit_ledger.' || t)::pg_catalog.regclass);
        step := 'reference table'; object := 'credit_ledger.' || t; RETURN NEXT;
    END LOOP;
    PERFORM create_distributed_table('credit_ledger.wallets'::pg_catalog.regclass, 'tenant');
    step := 'distributed by tenant'; object := 'credit_ledger.wallets'; RETURN NEXT;
    FOREACH t IN ARRAY ARRAY['wallet_assets', 'grants', 'lanes', 'member_rooms', 'authorizations', 'journal',
                             'refunds', 'runs', 'allowances', 'events', 'operations', 'wallet_overage',
                             'tier_usage', 'fair_use_usage'] LOOP
        PERFORM create_distributed_table(('credit_ledger.' || t)::pg_catalog.regclass, 'tenant',
                                         colocate_with => 'credit_ledger.wallets');
        step := 'distributed by tenant'; object := 'credit_ledger.' || t; RETURN NEXT;
    END LOOP;
    FOR fk IN SELECT * FROM pg_catalog.jsonb_to_recordset(coalesce(fks, '[]')) AS x(rel text, name text, def text) LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.rel, fk.name, fk.def);
    END LOOP;
    -- ids: each worker draws from a range of its own (its group << 48, as Citus gives a
    -- distributed table's sequence on a worker), not from its copy of the extension's sequences,
    -- which start where the moved rows' ids did
    PERFORM run_command_on_workers($c$
        SELECT count(pg_catalog.setval(s.seqrelid::pg_catalog.regclass,
                                       (SELECT g.groupid::bigint << 48 FROM pg_catalog.pg_dist_local_group g) + 1, false))
          FROM pg_catalog.pg_sequence s
          JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'credit_ledger' AND s.seqtypid = 'pg_catalog.int8'::pg_catalog.regtype
    $c$);
    step := 'worker id ranges'; object := 'credit_ledger sequences'; RETURN NEXT;
    FOREACH f IN ARRAY delegated LOOP
        PERFORM create_distributed_function(f::pg_catalog.regprocedure, 'tenant',
                                            colocate_with => 'credit_ledger.wallets', force_delegation => true);
        step := 'delegated by tenant'; object := f; RETURN NEXT;
    END LOOP;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'off', true);
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'parallel', true);
END $$;


SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
