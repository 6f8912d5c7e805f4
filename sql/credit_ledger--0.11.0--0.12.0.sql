-- credit_ledger 0.11.0 -> 0.12.0 (frozen once released).
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Tenants (issue 20): every ledger row names its tenant, the key a Citus cluster distributes the
-- ledger by: the pool's key for a pool and its members, the wallet's own key for a wallet without
-- a pool, the opener's tenant for a run's wallet; every row of a wallet carries the wallet's.
-- The journal's guard lets an entry's tenant label change (a wallet joining a pool of another
-- tenant moves with its rows), and this script's backfill goes through it: nothing an entry
-- records changes. Every table is rewritten once (its rows get the column).
CREATE OR REPLACE FUNCTION credit_ledger._journal_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- the one change let through (0.12.0): an entry's tenant, the label of where it is placed,
    -- when its wallet joins a pool of another tenant (credit_wallet_update); nothing it records
    IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - 'tenant') = (to_jsonb(OLD) - 'tenant') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the credit_ledger journal is append-only'
        USING ERRCODE = '42501',
              DETAIL = format('%s on credit_ledger.journal is not allowed', TG_OP),
              HINT = 'correct a balance with a new entry (credit_grant, credit_refund) instead';
END $$;

ALTER TABLE credit_ledger.wallets ADD COLUMN tenant text;
-- the pool's key for a member, else the wallet's own key; then a run's wallet takes its opener's
UPDATE credit_ledger.wallets w
   SET tenant = coalesce((SELECT p.wallet FROM credit_ledger.wallets p WHERE p.id = w.parent_id), w.wallet)
 WHERE w.run_of IS NULL;
UPDATE credit_ledger.wallets w
   SET tenant = o.tenant
  FROM credit_ledger.wallets o
 WHERE o.id = w.run_of;
ALTER TABLE credit_ledger.wallets ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.wallet_assets ADD COLUMN tenant text;
UPDATE credit_ledger.wallet_assets x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.wallet_assets ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.grants ADD COLUMN tenant text;
UPDATE credit_ledger.grants x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.grants ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.lanes ADD COLUMN tenant text;
UPDATE credit_ledger.lanes x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.lanes ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.member_rooms ADD COLUMN tenant text;
UPDATE credit_ledger.member_rooms x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.member_rooms ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.authorizations ADD COLUMN tenant text;
UPDATE credit_ledger.authorizations x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.authorizations ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.journal ADD COLUMN tenant text;
UPDATE credit_ledger.journal x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.journal ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.refunds ADD COLUMN tenant text;
UPDATE credit_ledger.refunds x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.refunds ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.runs ADD COLUMN tenant text;
UPDATE credit_ledger.runs x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.runs ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.allowances ADD COLUMN tenant text;
UPDATE credit_ledger.allowances x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.allowances ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.events ADD COLUMN tenant text;
UPDATE credit_ledger.events x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.events ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.operations ADD COLUMN tenant text;
UPDATE credit_ledger.operations x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.operations ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.wallet_overage ADD COLUMN tenant text;
UPDATE credit_ledger.wallet_overage x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.wallet_overage ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.tier_usage ADD COLUMN tenant text;
UPDATE credit_ledger.tier_usage x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.tier_usage ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE credit_ledger.fair_use_usage ADD COLUMN tenant text;
UPDATE credit_ledger.fair_use_usage x SET tenant = w.tenant FROM credit_ledger.wallets w WHERE w.id = x.wallet_id;
ALTER TABLE credit_ledger.fair_use_usage ALTER COLUMN tenant SET NOT NULL;

-- grant_status names every column it groups by (it relied on the grants key, which changes)
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
  JOIN credit_ledger.wallets w ON w.id = g.wallet_id
  CROSS JOIN LATERAL (SELECT g.remaining + coalesce(sum(x.remaining), 0) AS remaining,
                             g.held + coalesce(sum(x.held), 0) AS held,
                             array_append(array_agg(x.id), g.id) AS ids
                        FROM credit_ledger.grants x WHERE x.home_id = g.id) f
  LEFT JOIN credit_ledger.journal j ON j.grant_id = ANY (f.ids) AND j.wallet_id = g.wallet_id
 WHERE g.home_id IS NULL AND g.source_id IS NULL
 -- every column named (since 0.12.0 the grants key is (id, tenant), see sql/schema.sql)
 GROUP BY g.id, g.asset, g.category, g.priority, g.amount, g.unit_price, g.effective_at, g.expires_at,
          w.wallet, f.remaining, f.held;

-- Keys (since 0.12.0): every primary, unique and foreign key of the wallet-keyed tables names the
-- tenant as well, as Citus requires of a distributed table (a unique key must contain the
-- distribution column; a foreign key between two of them must join on it). On one node they are
-- as unique as before (ids come from one sequence each, and a wallet's rows carry one tenant) and
-- serve the same lookups (the tenant is their last column). A wallet key stays unique over the
-- whole ledger through credit_ledger.wallet_keys. A transfer's receiving wallet may be in
-- another tenant: operations.to_wallet_id has no foreign key (credit_verify() checks it).
ALTER TABLE credit_ledger.wallets DROP CONSTRAINT wallets_parent_id_fkey, DROP CONSTRAINT wallets_run_of_fkey;
ALTER TABLE credit_ledger.wallet_assets DROP CONSTRAINT wallet_assets_wallet_id_fkey;
ALTER TABLE credit_ledger.grants DROP CONSTRAINT grants_wallet_id_fkey;
ALTER TABLE credit_ledger.lanes DROP CONSTRAINT lanes_wallet_id_fkey;
ALTER TABLE credit_ledger.member_rooms DROP CONSTRAINT member_rooms_wallet_id_fkey;
ALTER TABLE credit_ledger.refunds DROP CONSTRAINT refunds_authorization_id_fkey, DROP CONSTRAINT refunds_wallet_id_fkey;
ALTER TABLE credit_ledger.runs DROP CONSTRAINT runs_parent_run_fkey, DROP CONSTRAINT runs_run_wallet_id_fkey,
    DROP CONSTRAINT runs_wallet_id_fkey;
ALTER TABLE credit_ledger.allowances DROP CONSTRAINT allowances_current_grant_id_fkey, DROP CONSTRAINT allowances_wallet_id_fkey;
ALTER TABLE credit_ledger.operations DROP CONSTRAINT operations_grant_id_fkey, DROP CONSTRAINT operations_to_wallet_id_fkey,
    DROP CONSTRAINT operations_wallet_id_fkey;
ALTER TABLE credit_ledger.wallet_overage DROP CONSTRAINT wallet_overage_wallet_id_fkey;
ALTER TABLE credit_ledger.tier_usage DROP CONSTRAINT tier_usage_wallet_id_fkey;
ALTER TABLE credit_ledger.fair_use_usage DROP CONSTRAINT fair_use_usage_wallet_id_fkey;

ALTER TABLE credit_ledger.wallets DROP CONSTRAINT wallets_pkey, ADD PRIMARY KEY (id, tenant),
    DROP CONSTRAINT wallets_wallet_key, ADD UNIQUE (wallet, tenant);
ALTER TABLE credit_ledger.wallet_assets DROP CONSTRAINT wallet_assets_pkey, ADD PRIMARY KEY (wallet_id, asset, tenant);
ALTER TABLE credit_ledger.grants DROP CONSTRAINT grants_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE credit_ledger.lanes DROP CONSTRAINT lanes_pkey, ADD PRIMARY KEY (wallet_id, asset, lane, tenant);
ALTER TABLE credit_ledger.member_rooms DROP CONSTRAINT member_rooms_pkey, ADD PRIMARY KEY (wallet_id, asset, lane, tenant);
ALTER TABLE credit_ledger.authorizations DROP CONSTRAINT authorizations_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE credit_ledger.journal DROP CONSTRAINT journal_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE credit_ledger.refunds DROP CONSTRAINT refunds_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE credit_ledger.runs DROP CONSTRAINT runs_pkey, ADD PRIMARY KEY (id, tenant),
    DROP CONSTRAINT runs_run_wallet_id_key, ADD UNIQUE (run_wallet_id, tenant);
ALTER TABLE credit_ledger.allowances DROP CONSTRAINT allowances_pkey, ADD PRIMARY KEY (id, tenant),
    DROP CONSTRAINT allowances_wallet_id_asset_key, ADD UNIQUE (wallet_id, asset, tenant);
ALTER TABLE credit_ledger.events DROP CONSTRAINT events_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE credit_ledger.operations DROP CONSTRAINT operations_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE credit_ledger.wallet_overage DROP CONSTRAINT wallet_overage_pkey, ADD PRIMARY KEY (wallet_id, asset, tenant);
ALTER TABLE credit_ledger.tier_usage DROP CONSTRAINT tier_usage_pkey,
    ADD PRIMARY KEY (wallet_id, action, variant, period_start, tenant);
ALTER TABLE credit_ledger.fair_use_usage DROP CONSTRAINT fair_use_usage_pkey, ADD PRIMARY KEY (wallet_id, asset, period_start, tenant);
DROP INDEX credit_ledger.grants_idempotency;
CREATE UNIQUE INDEX grants_idempotency ON credit_ledger.grants (wallet_id, idempotency_key, tenant)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX credit_ledger.authorizations_idempotency;
CREATE UNIQUE INDEX authorizations_idempotency ON credit_ledger.authorizations (wallet_id, idempotency_key, tenant)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX credit_ledger.refunds_idempotency;
CREATE UNIQUE INDEX refunds_idempotency ON credit_ledger.refunds (wallet_id, idempotency_key, tenant)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX credit_ledger.runs_idempotency;
CREATE UNIQUE INDEX runs_idempotency ON credit_ledger.runs (wallet_id, idempotency_key, tenant)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX credit_ledger.operations_idempotency;
CREATE UNIQUE INDEX operations_idempotency ON credit_ledger.operations (wallet_id, idempotency_key, tenant)
    WHERE idempotency_key IS NOT NULL;
-- an event's place in the stream is given once, from one sequence (credit_events)
DROP INDEX credit_ledger.events_seq_key;
CREATE UNIQUE INDEX events_seq_key ON credit_ledger.events (seq, tenant);

ALTER TABLE credit_ledger.wallets
    ADD FOREIGN KEY (parent_id, tenant) REFERENCES credit_ledger.wallets (id, tenant),
    ADD FOREIGN KEY (run_of, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.wallet_assets ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.grants ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.lanes ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.member_rooms ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.refunds
    ADD FOREIGN KEY (authorization_id, tenant) REFERENCES credit_ledger.authorizations (id, tenant),
    ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.runs
    ADD FOREIGN KEY (parent_run, tenant) REFERENCES credit_ledger.runs (id, tenant),
    ADD FOREIGN KEY (run_wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant),
    ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.allowances
    ADD FOREIGN KEY (current_grant_id, tenant) REFERENCES credit_ledger.grants (id, tenant),
    ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.operations
    ADD FOREIGN KEY (grant_id, tenant) REFERENCES credit_ledger.grants (id, tenant),
    ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.wallet_overage ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.tier_usage ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.fair_use_usage ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);

-- Every wallet key, once over the whole ledger, with its wallet's tenant: a key names one wallet
-- (what the UNIQUE (wallet) of wallets said before), and a node that has a key finds its tenant
-- without asking every shard (on Citus a reference table, on every node).
CREATE TABLE credit_ledger.wallet_keys (
    wallet text PRIMARY KEY,
    tenant text NOT NULL
);
INSERT INTO credit_ledger.wallet_keys (wallet, tenant) SELECT w.wallet, w.tenant FROM credit_ledger.wallets w;
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.wallet_keys', '');
REVOKE ALL ON TABLE credit_ledger.wallet_keys FROM PUBLIC;
COMMENT ON TABLE credit_ledger.wallet_keys IS 'every wallet key once, with its wallet''s tenant: a key names one wallet over the whole ledger';

-- the functions that write or check tenants (as in sql/overage.sql and sql/finalize.sql)
CREATE OR REPLACE FUNCTION @extschema@.credit_wallet_overage(wallet text, asset text DEFAULT 'credits',
    auto_topup_threshold numeric DEFAULT NULL, auto_topup_amount numeric DEFAULT NULL,
    upgrade_at numeric[] DEFAULT NULL, clear text[] DEFAULT NULL, fair_use_limit numeric DEFAULT NULL)
RETURNS SETOF @extschema@.credit_overage
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    w credit_ledger.wallets;
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
    SELECT * INTO w FROM credit_ledger.wallets x WHERE x.wallet = credit_wallet_overage.wallet FOR NO KEY UPDATE;
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
           updated_at = now();
    -- the spend path looks for fair use only on tracked wallets (the flag is never reset)
    IF fair_use_limit IS NOT NULL AND NOT w.tracked THEN
        UPDATE credit_ledger.wallets x SET tracked = true WHERE x.id = w.id;
    END IF;
    RETURN QUERY
    SELECT w.wallet, o.asset, x.low_balance_threshold, o.auto_topup_amount, o.upgrade_at, o.topups, o.fair_use_limit
      FROM credit_ledger.wallet_overage o JOIN credit_ledger.wallets x ON x.id = o.wallet_id
     WHERE o.wallet_id = w.id AND o.asset = credit_wallet_overage.asset;
END $$;

CREATE OR REPLACE FUNCTION credit_ledger._upgrade_signals(as_of timestamptz) RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    WITH o AS (
        SELECT o.wallet_id, o.asset, o.upgrade_at, w.wallet, w.tenant,
               credit_ledger._period_start(w.period, w.period_anchor, as_of) AS since
          FROM credit_ledger.wallet_overage o
          JOIN credit_ledger.wallets w ON w.id = o.wallet_id
         WHERE o.upgrade_at IS NOT NULL AND w.closed_at IS NULL
    ), u AS (
        SELECT o.*, coalesce((
                   SELECT sum(coalesce(a.captured, a.cost) - a.refunded)
                     FROM credit_ledger.authorizations a
                    WHERE a.wallet_id = ANY (o.wallet_id || ARRAY(SELECT r.id FROM credit_ledger.wallets r WHERE r.run_of = o.wallet_id))
                      AND a.asset = o.asset AND a.status IN ('approved', 'held', 'captured')
                      AND a.created_at >= o.since AND a.created_at <= as_of), 0) AS used
          FROM o
    ), due AS (
        SELECT u.*, t.tier
          FROM u CROSS JOIN LATERAL unnest(u.upgrade_at) t(tier)
         WHERE u.used >= t.tier
           AND NOT EXISTS (SELECT 1 FROM credit_ledger.events x
                            WHERE x.wallet_id = u.wallet_id AND x.kind = 'upgrade_suggested'
                              AND x.asset = u.asset AND x.at >= u.since
                              AND x.payload ->> 'tier' = t.tier::text)
    ), e AS (
        INSERT INTO credit_ledger.events (kind, wallet_id, tenant, asset, payload)
        SELECT 'upgrade_suggested', d.wallet_id, d.tenant, d.asset,
               jsonb_build_object('event', 'upgrade_suggested', 'wallet', d.wallet, 'asset', d.asset,
                                  'tier', d.tier::text, 'period_usage', d.used, 'period_start', d.since)
          FROM due d ORDER BY d.wallet_id, d.asset, d.tier
        RETURNING id
    )
    SELECT count(pg_notify('credit_ledger', e.id::text)) FROM e
$$;

CREATE OR REPLACE FUNCTION @extschema@.credit_verify()
RETURNS TABLE (check_name text, subject text, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp
SET jit = off AS $$
    -- cached grant amounts equal the journal
    SELECT 'grant_matches_journal', 'grant ' || g.id,
           format('remaining %s held %s, journal says %s and %s', g.remaining, g.held, coalesce(j.amount, 0), coalesce(j.held, 0))
      FROM credit_ledger.grants g
      LEFT JOIN (SELECT grant_id, sum(amount) AS amount, sum(held) AS held
                   FROM credit_ledger.journal WHERE grant_id IS NOT NULL GROUP BY grant_id) j ON j.grant_id = g.id
     WHERE g.remaining IS DISTINCT FROM coalesce(j.amount, 0) OR g.held IS DISTINCT FROM coalesce(j.held, 0)
    UNION ALL
    -- bounds and the live flag
    SELECT 'grant_bounds', 'grant ' || g.id,
           format('amount %s remaining %s held %s live %s unit_price %s effective_at %s expires_at %s',
                  g.amount, g.remaining, g.held, g.live, g.unit_price, g.effective_at, g.expires_at)
      FROM credit_ledger.grants g
     WHERE g.remaining < 0 OR g.remaining > g.amount OR g.held < 0 OR g.held > g.remaining OR g.live <> (g.remaining > 0)
        OR g.amount <= 0 OR g.unit_price < 0 OR g.expires_at <= g.effective_at
    UNION ALL
    -- conservation per grant: granted = spent + held + expired + remaining -/+ refunds, settlements
    -- (a grant a transfer created, since 0.6.0, is filled by one 'transfer' entry)
    SELECT 'grant_conservation', 'grant ' || g.id,
           format('amount %s but grant entries total %s', g.amount,
                  coalesce(sum(j.amount) FILTER (WHERE j.kind = 'grant' OR (g.transfer_of IS NOT NULL AND j.kind = 'transfer' AND j.amount > 0)), 0))
      FROM credit_ledger.grants g LEFT JOIN credit_ledger.journal j ON j.grant_id = g.id
     WHERE g.home_id IS NULL AND g.source_id IS NULL
     GROUP BY g.id, g.amount, g.transfer_of
    HAVING coalesce(sum(j.amount) FILTER (WHERE j.kind = 'grant' OR (g.transfer_of IS NOT NULL AND j.kind = 'transfer' AND j.amount > 0)), 0) <> g.amount
    UNION ALL
    -- transfers and closes (since 0.6.0) move credits, they create and destroy none; a grant a
    -- transfer created keeps its source's asset, category, priority, expiry and unit price
    SELECT 'transfer_moves_balance', 'operation ' || j.operation_id,
           format('transfer entries total %s', sum(j.amount))
      FROM credit_ledger.journal j
     WHERE j.kind = 'transfer'
     GROUP BY j.operation_id
    HAVING sum(j.amount) <> 0 OR j.operation_id IS NULL
    UNION ALL
    SELECT 'transfer_provenance', 'grant ' || g.id,
           format('transfer of grant %s: asset %s/%s category %s/%s priority %s/%s expires_at %s/%s unit_price %s/%s',
                  g.transfer_of, g.asset, s.asset, g.category, s.category, g.priority, s.priority,
                  g.expires_at, s.expires_at, g.unit_price, s.unit_price)
      FROM credit_ledger.grants g LEFT JOIN credit_ledger.grants s ON s.id = g.transfer_of
     WHERE g.transfer_of IS NOT NULL
       AND (s.id IS NULL OR s.asset <> g.asset OR s.category <> g.category OR s.priority <> g.priority
            OR s.expires_at IS DISTINCT FROM g.expires_at OR s.unit_price <> g.unit_price)
    UNION ALL
    -- an operation did what it says: a void voided `done` (no more than requested), an
    -- adjustment moved `amount`, a transfer moved `done`, all through entries that name it
    SELECT 'operation_matches_journal', 'operation ' || o.id,
           format('%s amount %s done %s pending %s; journal %s', o.kind, o.amount, o.done, o.pending, x.moved)
      FROM credit_ledger.operations o
      CROSS JOIN LATERAL (
          SELECT coalesce(sum(j.amount) FILTER (WHERE j.kind = 'adjustment'), 0)
                 + coalesce(sum(j.amount) FILTER (WHERE j.kind = 'grant'), 0)
                 - coalesce(sum(j.amount) FILTER (WHERE j.kind = 'transfer' AND j.wallet_id = o.wallet_id), 0) AS moved
            FROM credit_ledger.journal j WHERE j.operation_id = o.id) x
     WHERE (o.kind = 'void' AND (-x.moved <> o.done OR o.done + o.pending > coalesce(o.amount, o.done + o.pending) OR o.pending < 0
                                 OR (o.open AND o.amount IS NOT NULL AND o.pending > (
                                        SELECT coalesce(sum(g.held), 0) FROM credit_ledger.grants g
                                         WHERE g.id = o.grant_id OR g.home_id = o.grant_id))))
        OR (o.kind = 'adjust' AND (x.moved <> o.amount OR o.done <> o.amount))
        OR (o.kind = 'transfer' AND (x.moved <> o.done OR o.done <> o.amount))
    UNION ALL
    -- a closed wallet keeps no credit and no open hold or run
    SELECT 'closed_wallet_empty', 'wallet ' || w.wallet,
           format('closed at %s but it keeps %s credits, %s open holds, %s open runs', w.closed_at,
                  (SELECT sum(g.remaining) FROM credit_ledger.grants g WHERE g.wallet_id = w.id),
                  (SELECT count(*) FROM credit_ledger.authorizations a WHERE a.wallet_id = w.id AND a.status = 'held'),
                  (SELECT count(*) FROM credit_ledger.runs r WHERE r.wallet_id = w.id AND r.status = 'open'))
      FROM credit_ledger.wallets w
     WHERE w.closed_at IS NOT NULL
       AND (EXISTS (SELECT 1 FROM credit_ledger.grants g WHERE g.wallet_id = w.id AND g.remaining > 0)
            OR EXISTS (SELECT 1 FROM credit_ledger.authorizations a WHERE a.wallet_id = w.id AND a.status = 'held')
            OR EXISTS (SELECT 1 FROM credit_ledger.runs r WHERE r.wallet_id = w.id AND r.status = 'open'))
    UNION ALL
    -- a slice (lanes, since 0.4.0) is a row of a grant of its wallet and asset, with its amount
    SELECT 'slice_matches_grant', 'grant ' || s.id,
           format('slice of grant %s in lane %s: wallet_id %s asset %s amount %s; the grant: wallet_id %s asset %s amount %s',
                  s.home_id, s.lane, s.wallet_id, s.asset, s.amount, h.wallet_id, h.asset, h.amount)
      FROM credit_ledger.grants s LEFT JOIN credit_ledger.grants h ON h.id = s.home_id
     WHERE (s.home_id IS NOT NULL OR s.lane IS NOT NULL)
       AND (h.id IS NULL OR h.home_id IS NOT NULL OR s.lane IS NULL OR s.lane < 0
            OR s.wallet_id <> h.wallet_id OR s.asset <> h.asset OR s.amount <> h.amount)
    UNION ALL
    -- moves between the rows of one grant ('lane' entries) create and destroy nothing
    SELECT 'lane_moves_balance', 'grant ' || coalesce(g.home_id, g.id),
           format('lane entries total %s', sum(j.amount))
      FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id
     WHERE j.kind = 'lane'
     GROUP BY coalesce(g.home_id, g.id)
    HAVING sum(j.amount) <> 0 OR sum(j.held) <> 0
    UNION ALL
    -- a spend cap sliced over lanes (since 0.10.0) hands out no more room than the cap leaves
    -- this period: the lanes' room is at most the cap minus the period's spend (the wallet's
    -- counter and what the lanes spent that is not in it yet)
    SELECT 'lane_cap_room', 'wallet ' || w.wallet || ' ' || l.asset,
           format('spend cap %s, spent this period %s, room in the lanes %s', w.spend_cap,
                  l.spent + CASE WHEN s.period_start = l.cur THEN s.period_spent ELSE 0 END, l.room)
      FROM (SELECT x.wallet_id, x.asset, c.cur, sum(x.cap_room) AS room, sum(x.cap_spent) AS spent
              FROM credit_ledger.lanes x
              JOIN credit_ledger.wallets v ON v.id = x.wallet_id
             CROSS JOIN LATERAL (SELECT credit_ledger._period_start(v.period, v.period_anchor, now()) AS cur) c
             WHERE x.cap_period = c.cur
             GROUP BY x.wallet_id, x.asset, c.cur) l
      JOIN credit_ledger.wallets w ON w.id = l.wallet_id
      LEFT JOIN credit_ledger.wallet_assets s ON s.wallet_id = l.wallet_id AND s.asset = l.asset
     WHERE l.room > greatest(coalesce(w.spend_cap, 0) - l.spent
                             - CASE WHEN s.period_start = l.cur THEN s.period_spent ELSE 0 END, 0)
    UNION ALL
    -- a limited member's limits sliced over its pool's lanes (since 0.11.0) hand out no more room
    -- than its pool limit and its spend cap leave this period (each counted as the counter plus
    -- what the rows drew that it does not hold yet)
    SELECT 'member_room', 'wallet ' || w.wallet || ' ' || r.asset,
           format('pool limit %s, spend cap %s, drawn this period %s, spent this period %s, room in the pool''s lanes %s',
                  w.pool_limit, w.spend_cap,
                  r.spent + CASE WHEN s.period_start = r.cur THEN s.period_pool_drawn ELSE 0 END,
                  r.spent + CASE WHEN s.period_start = r.cur THEN s.period_spent ELSE 0 END, r.room)
      FROM (SELECT x.wallet_id, x.asset, c.cur, sum(x.room) AS room, sum(x.spent) AS spent
              FROM credit_ledger.member_rooms x
              JOIN credit_ledger.wallets v ON v.id = x.wallet_id
             CROSS JOIN LATERAL (SELECT credit_ledger._period_start(v.period, v.period_anchor, now()) AS cur) c
             WHERE x.period = c.cur
             GROUP BY x.wallet_id, x.asset, c.cur) r
      JOIN credit_ledger.wallets w ON w.id = r.wallet_id
      LEFT JOIN credit_ledger.wallet_assets s ON s.wallet_id = r.wallet_id AND s.asset = r.asset
     WHERE r.room < 0
        OR r.room > greatest(least(coalesce(w.pool_limit - r.spent
                                            - CASE WHEN s.period_start = r.cur THEN s.period_pool_drawn ELSE 0 END, r.room),
                                   coalesce(w.spend_cap - r.spent
                                            - CASE WHEN s.period_start = r.cur THEN s.period_spent ELSE 0 END, r.room)), 0)
        OR (w.pool_limit IS NULL AND w.spend_cap IS NULL AND r.room > 0)
    UNION ALL
    -- a run's moves (since 0.5.0: 'run' entries, member_id = the run's wallet) create and
    -- destroy nothing: what its slices got, their sources gave, and back
    SELECT 'run_moves_balance', 'wallet ' || j.member_id,
           format('run entries total %s and %s held', sum(j.amount), sum(j.held))
      FROM credit_ledger.journal j
     WHERE j.kind = 'run'
     GROUP BY j.member_id
    HAVING sum(j.amount) <> 0 OR sum(j.held) <> 0
    UNION ALL
    -- a slice of a run belongs to a run's wallet and comes from a row of the same asset of the
    -- run's owner, the owner's pool, or the parent run
    SELECT 'run_slice_source', 'grant ' || g.id,
           format('wallet %s source %s (wallet %s, asset %s); run %s of wallet %s, parent run %s',
                  g.wallet_id, g.source_id, s.wallet_id, s.asset, r.id, r.wallet_id, r.parent_run)
      FROM credit_ledger.grants g
      LEFT JOIN credit_ledger.grants s ON s.id = g.source_id
      LEFT JOIN credit_ledger.runs r ON r.run_wallet_id = g.wallet_id
     WHERE g.source_id IS NOT NULL
       AND (s.id IS NULL OR r.id IS NULL OR s.asset <> g.asset OR g.asset <> r.asset
            OR NOT (s.wallet_id = r.wallet_id
                    OR s.wallet_id = (SELECT o.parent_id FROM credit_ledger.wallets o WHERE o.id = r.wallet_id)
                    OR s.wallet_id = (SELECT p.run_wallet_id FROM credit_ledger.runs p WHERE p.id = r.parent_run)))
    UNION ALL
    -- a run that was funded has a wallet of its own, and a declined one has none
    SELECT 'run_state', 'run ' || r.id,
           format('status %s run wallet %s', r.status, r.run_wallet_id)
      FROM credit_ledger.runs r
     WHERE (r.status = 'declined') <> (r.run_wallet_id IS NULL)
        OR (r.run_wallet_id IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM credit_ledger.wallets w WHERE w.id = r.run_wallet_id AND w.run_of = r.wallet_id))
    UNION ALL
    -- a closed run keeps nothing: every credit left (and every later refund) went back
    SELECT 'run_closed_empty', 'run ' || r.id,
           format('status %s but its slices keep %s', r.status, sum(g.remaining))
      FROM credit_ledger.runs r JOIN credit_ledger.grants g ON g.wallet_id = r.run_wallet_id
     WHERE r.status IN ('closed', 'expired')
     GROUP BY r.id, r.status
    HAVING sum(g.remaining) <> 0
    UNION ALL
    -- an entry of a grant carries the grant's wallet (balances and reports find a grant's
    -- entries through its wallet: the journal has no index on grant_id)
    SELECT 'journal_wallet_matches_grant', 'journal entry ' || j.id,
           format('wallet_id %s but grant %s belongs to wallet %s', j.wallet_id, g.id, g.wallet_id)
      FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id
     WHERE j.wallet_id <> g.wallet_id
    UNION ALL
    -- overdraft debt equals its journal line
    SELECT 'debt_matches_journal', 'wallet ' || w.wallet || ' ' || s.asset,
           format('debt %s, journal says %s', s.debt, coalesce(-(SELECT sum(j.amount) FROM credit_ledger.journal j
                   WHERE j.wallet_id = s.wallet_id AND j.asset = s.asset AND j.grant_id IS NULL), 0))
      FROM credit_ledger.wallet_assets s JOIN credit_ledger.wallets w ON w.id = s.wallet_id
     WHERE s.debt <> coalesce(-(SELECT sum(j.amount) FROM credit_ledger.journal j
                   WHERE j.wallet_id = s.wallet_id AND j.asset = s.asset AND j.grant_id IS NULL), 0)
    UNION ALL
    -- per asset: what the grants say equals what the journal says
    SELECT 'asset_conservation', 'asset ' || x.asset, format('grants remaining %s, journal %s', x.rem, x.jr)
      FROM (SELECT a.asset,
                   coalesce((SELECT sum(remaining) FROM credit_ledger.grants g WHERE g.asset = a.asset), 0) AS rem,
                   coalesce((SELECT sum(amount) FROM credit_ledger.journal j WHERE j.asset = a.asset AND j.grant_id IS NOT NULL), 0) AS jr
              FROM credit_ledger.assets a) x
     WHERE x.rem <> x.jr
    UNION ALL
    -- holds: an open hold reserves exactly its cost; a closed hold reserves nothing;
    -- a captured hold spent exactly `captured`
    SELECT 'hold_consistency', 'authorization ' || a.id,
           format('status %s cost %s captured %s; journal held %s spent %s', a.status, a.cost, a.captured,
                  coalesce(sum(j.held), 0), coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('capture', 'overdraft')), 0))
      FROM credit_ledger.authorizations a LEFT JOIN credit_ledger.journal j ON j.authorization_id = a.id
     WHERE a.kind = 'hold'
     GROUP BY a.id, a.tenant
    HAVING (a.status = 'held' AND coalesce(sum(j.held), 0) <> CASE WHEN a.fair_use THEN 0 ELSE a.cost END)
        OR (a.status <> 'held' AND coalesce(sum(j.held), 0) <> 0)
        OR (a.status = 'captured' AND coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('capture', 'overdraft')), 0)
                                      <> CASE WHEN a.fair_use THEN 0 ELSE a.captured END)
        OR (a.status IN ('released', 'expired', 'declined') AND coalesce(sum(j.amount) FILTER (WHERE j.kind IN ('capture', 'overdraft')), 0) <> 0)
    UNION ALL
    -- debits: an approved debit took exactly its cost; a declined one, or one fair use paid
    -- (since 0.8.0), took nothing
    SELECT 'debit_consistency', 'authorization ' || a.id,
           format('status %s cost %s; journal debited %s', a.status, a.cost,
                  coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'overdraft')), 0))
      FROM credit_ledger.authorizations a LEFT JOIN credit_ledger.journal j ON j.authorization_id = a.id
     WHERE a.kind = 'debit'
     GROUP BY a.id, a.tenant
    HAVING coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'overdraft')), 0)
           <> CASE WHEN a.status = 'approved' AND NOT a.fair_use THEN a.cost ELSE 0 END
    UNION ALL
    -- volume tiers (since 0.8.0): a counter holds the units of the tiered calls it priced (a
    -- run's calls count for the wallet that opened it): approved debits in the period they were
    -- made in, captured holds in the period they were captured in
    SELECT 'tier_matches_calls', 'wallet ' || w.wallet || ' ' || t.action || ' ' || t.variant || ' ' || t.period_start,
           format('counted %s, calls %s', t.units, x.units)
      FROM credit_ledger.tier_usage t
      JOIN credit_ledger.wallets w ON w.id = t.wallet_id
     CROSS JOIN LATERAL (
        SELECT coalesce(sum(CASE WHEN a.kind = 'hold' THEN a.captured_quantity ELSE a.quantity END), 0) AS units
          FROM credit_ledger.authorizations a
          JOIN credit_ledger.wallets s ON s.id = a.wallet_id
          JOIN credit_ledger.rates r ON r.id = a.rate_id
         WHERE coalesce(s.run_of, s.id) = t.wallet_id AND a.action = t.action
           AND coalesce(a.variant, '') = t.variant AND r.tiers IS NOT NULL
           AND ((a.kind = 'debit' AND a.status = 'approved'
                 AND credit_ledger._period_start(w.period, w.period_anchor, a.created_at) = t.period_start)
             OR (a.kind = 'hold' AND a.status = 'captured'
                 AND credit_ledger._period_start(w.period, w.period_anchor, a.closed_at) = t.period_start))) x
     WHERE t.units <> x.units
    UNION ALL
    -- fair use (since 0.8.0): a period's count is what the calls fair use paid in it took
    -- (approved debits and open holds their cost, captured holds what they captured)
    SELECT 'fair_use_matches_calls', 'wallet ' || w.wallet || ' ' || f.asset || ' ' || f.period_start,
           format('counted %s, calls %s', f.used, x.took)
      FROM credit_ledger.fair_use_usage f
      JOIN credit_ledger.wallets w ON w.id = f.wallet_id
     CROSS JOIN LATERAL (
        SELECT coalesce(sum(CASE a.status WHEN 'captured' THEN a.captured WHEN 'released' THEN 0
                                          WHEN 'expired' THEN 0 ELSE a.cost END), 0) AS took
          FROM credit_ledger.authorizations a
         WHERE a.wallet_id = f.wallet_id AND a.asset = f.asset AND a.fair_use
           AND a.status IN ('approved', 'held', 'captured')
           AND credit_ledger._period_start(w.period, w.period_anchor, a.created_at) = f.period_start) x
     WHERE f.used <> x.took
    UNION ALL
    -- references and vocabularies of the hot tables (they carry no FKs or CHECKs)
    SELECT 'journal_references', 'journal entry ' || j.id,
           format('wallet %s grant %s authorization %s member %s kind %s', j.wallet_id, j.grant_id,
                  j.authorization_id, j.member_id, j.kind)
      FROM credit_ledger.journal j
     WHERE NOT EXISTS (SELECT 1 FROM credit_ledger.wallets w WHERE w.id = j.wallet_id)
        OR (j.grant_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit_ledger.grants g WHERE g.id = j.grant_id))
        OR (j.authorization_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit_ledger.authorizations a WHERE a.id = j.authorization_id))
        OR (j.member_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit_ledger.wallets w WHERE w.id = j.member_id))
        OR j.kind NOT IN ('grant', 'debit', 'hold', 'capture', 'release', 'refund', 'expiry', 'rollover',
                          'adjustment', 'overdraft', 'settlement', 'lane', 'run', 'transfer')
        OR (j.operation_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit_ledger.operations o WHERE o.id = j.operation_id))
    UNION ALL
    SELECT 'authorization_references', 'authorization ' || a.id,
           format('wallet %s rate %s kind %s status %s refunded %s', a.wallet_id, a.rate_id, a.kind, a.status, a.refunded)
      FROM credit_ledger.authorizations a
     WHERE NOT EXISTS (SELECT 1 FROM credit_ledger.wallets w WHERE w.id = a.wallet_id)
        OR (a.rate_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit_ledger.rates r WHERE r.id = a.rate_id))
        OR a.kind NOT IN ('debit', 'hold')
        OR a.status NOT IN ('approved', 'declined', 'held', 'captured', 'released', 'expired')
        OR (a.kind = 'debit' AND a.status NOT IN ('approved', 'declined'))
        OR a.refunded < 0
    UNION ALL
    -- refunds: never more than was debited; the totals agree
    SELECT 'refund_consistency', 'authorization ' || a.id,
           format('refunded %s, refunds %s, debited %s', a.refunded,
                  coalesce((SELECT sum(r.amount) FROM credit_ledger.refunds r WHERE r.authorization_id = a.id), 0),
                  coalesce(a.captured, a.cost))
      FROM credit_ledger.authorizations a
     WHERE a.refunded <> coalesce((SELECT sum(r.amount) FROM credit_ledger.refunds r WHERE r.authorization_id = a.id), 0)
        OR a.refunded > coalesce(a.captured, a.cost)
    UNION ALL
    -- tenants (since 0.12.0): a member is in its pool's tenant, a run's wallet in its opener's,
    -- and every row of a wallet carries the wallet's tenant
    SELECT 'tenant', 'wallet ' || w.wallet, format('tenant %s, but %s %s is in %s',
           w.tenant, CASE WHEN w.run_of IS NULL THEN 'its pool' ELSE 'its run''s opener' END, p.wallet, p.tenant)
      FROM credit_ledger.wallets w JOIN credit_ledger.wallets p ON p.id = coalesce(w.run_of, w.parent_id)
     WHERE w.tenant <> p.tenant
    UNION ALL
    SELECT 'tenant', x.what || ' of wallet ' || w.wallet, format('tenant %s, the wallet''s %s', x.tenant, w.tenant)
      FROM (SELECT 'grant ' || id AS what, wallet_id, tenant FROM credit_ledger.grants
            UNION ALL SELECT 'journal entry ' || id, wallet_id, tenant FROM credit_ledger.journal
            UNION ALL SELECT 'authorization ' || id, wallet_id, tenant FROM credit_ledger.authorizations
            UNION ALL SELECT 'refund ' || id, wallet_id, tenant FROM credit_ledger.refunds
            UNION ALL SELECT 'run ' || id, wallet_id, tenant FROM credit_ledger.runs
            UNION ALL SELECT 'allowance ' || id, wallet_id, tenant FROM credit_ledger.allowances
            UNION ALL SELECT 'event ' || id, wallet_id, tenant FROM credit_ledger.events
            UNION ALL SELECT 'operation ' || id, wallet_id, tenant FROM credit_ledger.operations
            UNION ALL SELECT 'counters ' || asset, wallet_id, tenant FROM credit_ledger.wallet_assets
            UNION ALL SELECT 'lane ' || asset || ' ' || lane, wallet_id, tenant FROM credit_ledger.lanes
            UNION ALL SELECT 'room ' || asset || ' ' || lane, wallet_id, tenant FROM credit_ledger.member_rooms
            UNION ALL SELECT 'overage ' || asset, wallet_id, tenant FROM credit_ledger.wallet_overage
            UNION ALL SELECT 'tier counter ' || action, wallet_id, tenant FROM credit_ledger.tier_usage
            UNION ALL SELECT 'fair use ' || asset, wallet_id, tenant FROM credit_ledger.fair_use_usage) x
      JOIN credit_ledger.wallets w ON w.id = x.wallet_id
     WHERE x.tenant <> w.tenant
    UNION ALL
    -- every wallet key once, with its wallet's tenant (wallet_keys)
    SELECT 'tenant', 'wallet key ' || coalesce(w.wallet, k.wallet),
           format('wallet in tenant %s, key in %s', w.tenant, k.tenant)
      FROM credit_ledger.wallets w FULL JOIN credit_ledger.wallet_keys k ON k.wallet = w.wallet
     WHERE w.tenant IS DISTINCT FROM k.tenant
$$;


-- credit_authorize and credit_hold take tenant => text (a new last parameter with a default: the
-- wallet's tenant, which a Citus cluster routes a call by). As in 0.7.0: each is dropped and
-- created again, and the EXECUTE privileges granted on the old one are granted on the new one.
SELECT pg_catalog.set_config('credit_ledger_upgrade.acl', coalesce((
    SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
               'name', p.proname, 'grantee', a.grantee::pg_catalog.regrole::text, 'grantable', a.is_grantable))::text
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE n.nspname = '@extschema@' AND p.proname IN ('credit_authorize', 'credit_hold')
       AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE'), '[]'), true);
DROP FUNCTION @extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint, boolean);
DROP FUNCTION @extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint, boolean);

CREATE FUNCTION @extschema@."credit_authorize"(
	"wallet" TEXT, /* Option < & str > */
	"action" TEXT, /* Option < & str > */
	"quantity" NUMERIC DEFAULT 1, /* Option < AnyNumeric > */
	"variant" TEXT DEFAULT NULL, /* Option < & str > */
	"idempotency_key" TEXT DEFAULT NULL, /* Option < & str > */
	"metadata" jsonb DEFAULT NULL, /* Option < JsonbText > */
	"run" bigint DEFAULT NULL, /* Option < i64 > */
	"degrade" bool DEFAULT false, /* Option < bool > */
	"tenant" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS @extschema@.credit_authorization /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE 
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_authorize_v12_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint, boolean, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint, boolean, text) IS 'atomically price, check limits and debit an action before the work runs; a decline is a row; degrade: the first affordable variant of the fallback chain; tenant: the wallet''s tenant (a Citus cluster routes by it)';

CREATE FUNCTION @extschema@."credit_hold"(
	"wallet" TEXT, /* Option < & str > */
	"action" TEXT, /* Option < & str > */
	"quantity" NUMERIC DEFAULT 1, /* Option < AnyNumeric > */
	"variant" TEXT DEFAULT NULL, /* Option < & str > */
	"idempotency_key" TEXT DEFAULT NULL, /* Option < & str > */
	"metadata" jsonb DEFAULT NULL, /* Option < JsonbText > */
	"ttl" interval DEFAULT '10 minutes', /* Option < Interval > */
	"run" bigint DEFAULT NULL, /* Option < i64 > */
	"degrade" bool DEFAULT false, /* Option < bool > */
	"tenant" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS @extschema@.credit_authorization /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE 
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_hold_v12_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint, boolean, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint, boolean, text) IS 'reserve credits for work of unknown final size (streaming); capture or release later; degrade and tenant as for credit_authorize';

DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT * FROM pg_catalog.json_to_recordset(
                 pg_catalog.current_setting('credit_ledger_upgrade.acl')::pg_catalog.json)
             AS x(name text, grantee text, grantable boolean) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s',
            CASE g.name WHEN 'credit_authorize' THEN '@extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint, boolean, text)'
                        ELSE '@extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint, boolean, text)' END,
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;


-- credit_distribute(): run once on the coordinator of a Citus cluster, after CREATE EXTENSION
-- citus and credit_ledger (and with the workers added). The catalogue (assets, rate cards,
-- rates) and wallet_keys become reference tables (on every node), the fifteen wallet-keyed
-- tables are distributed by tenant in one colocation group (a pool and its members, and all
-- their rows, on one shard), their rows moved to the workers; credit_authorize and credit_hold
-- are registered so that a call that names its tenant is delegated to that tenant's worker,
-- also inside the application's transaction. Returns one row per step. A second call does
-- nothing.
CREATE FUNCTION @extschema@.credit_distribute()
RETURNS TABLE (step text, object text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning AS $$
DECLARE
    fk record;
    t text;
    fks jsonb;
    f text;
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
        step := 'already distributed'; object := 'credit_ledger'; RETURN NEXT;
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
    FOREACH f IN ARRAY ARRAY['@extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint, boolean, text)',
                             '@extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint, boolean, text)'] LOOP
        PERFORM create_distributed_function(f::pg_catalog.regprocedure, 'tenant',
                                            colocate_with => 'credit_ledger.wallets', force_delegation => true);
        step := 'delegated by tenant'; object := f; RETURN NEXT;
    END LOOP;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'off', true);
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'parallel', true);
END $$;
REVOKE ALL ON FUNCTION @extschema@.credit_distribute() FROM PUBLIC;


COMMENT ON FUNCTION @extschema@.credit_distribute() IS 'on a Citus coordinator, once: the ledger''s tables distributed by tenant (the catalogue and wallet keys as reference tables), credit_authorize and credit_hold delegated by their tenant';

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
