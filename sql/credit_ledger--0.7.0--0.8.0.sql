-- credit_ledger 0.7.0 -> 0.8.0 (frozen once released).
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Issue 22: the overage menu, continued (volume tiers, fair use); issue 23: credit_metrics; issue 24: call_log and the reader bundle's lookups.
-- ---- volume tiers (since 0.8.0) -----------------------------------------------------------------
-- A rate entry's graduated tiers, part of its version: [{"from": 1000, "credits": 12}, ...], from
-- strictly increasing, each price at most the one before (the entry's credits before the first).
ALTER TABLE credit_ledger.rates ADD COLUMN tiers jsonb;
ALTER TYPE @extschema@.credit_rate ADD ATTRIBUTE tiers jsonb;
-- Units spent per wallet, action and variant ('' for none) in the wallet's period: the position a
-- tiered call is priced from. A call in an agent run counts on the wallet that opened the run.
-- The row is locked by the call that prices from it, so concurrent tiered calls are exact.
CREATE TABLE credit_ledger.tier_usage (
    wallet_id    bigint      NOT NULL REFERENCES credit_ledger.wallets (id),
    action       text        NOT NULL,
    variant      text        NOT NULL DEFAULT '',
    period_start timestamptz NOT NULL,
    units        numeric     NOT NULL DEFAULT 0 CHECK (units >= 0),
    PRIMARY KEY (wallet_id, action, variant, period_start)
);

-- ---- fair use (since 0.8.0) ---------------------------------------------------------------------
-- A wallet's fair-use allowance per period in an asset (set with credit_wallet_overage): its
-- calls in that asset are paid by fair use, not credits, up to the limit.
ALTER TABLE credit_ledger.wallet_overage ADD COLUMN fair_use_limit numeric CHECK (fair_use_limit > 0);
-- A call paid by fair use: its cost and vendor cost are recorded, nothing moved in the journal.
ALTER TABLE credit_ledger.authorizations ADD COLUMN fair_use boolean NOT NULL DEFAULT false;
-- The fair use of a wallet and asset in a period (its cost at the rate card's prices), locked
-- by the call that reads it: concurrent calls of one wallet are admitted exactly.
CREATE TABLE credit_ledger.fair_use_usage (
    wallet_id    bigint      NOT NULL REFERENCES credit_ledger.wallets (id),
    asset        text        NOT NULL REFERENCES credit_ledger.assets (asset),
    period_start timestamptz NOT NULL,
    used         numeric     NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (wallet_id, asset, period_start)
);

REVOKE ALL ON TABLE credit_ledger.tier_usage FROM PUBLIC;
REVOKE ALL ON TABLE credit_ledger.fair_use_usage FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.tier_usage', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.fair_use_usage', '');
COMMENT ON TABLE credit_ledger.fair_use_usage IS 'fair use per wallet, asset and period: the cost of the calls fair use paid';
COMMENT ON TABLE credit_ledger.tier_usage IS 'units spent per wallet, action and variant in the wallet''s period: where volume tiers price the next call';

-- Functions whose parameters change (credit_rate_set: tiers => jsonb; credit_wallet_overage:
-- fair_use_limit => numeric) cannot change in place: each is dropped and created again, and
-- the EXECUTE privileges granted on the old one are granted on the new one (an application
-- role keeps what it had; nothing is granted to PUBLIC).
SELECT pg_catalog.set_config('credit_ledger_upgrade.acl', coalesce((
    SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
               'grantee', a.grantee::pg_catalog.regrole::text, 'grantable', a.is_grantable))::text
      FROM pg_catalog.pg_proc p
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid = '@extschema@.credit_rate_set(text, numeric, text, text, text, text, numeric, timestamptz, text)'::pg_catalog.regprocedure
       AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE'), '[]'), true);
DROP FUNCTION @extschema@.credit_rate_set(text, numeric, text, text, text, text, numeric, timestamptz, text);

CREATE FUNCTION @extschema@."credit_rate_set"(
	"action" TEXT, /* Option < & str > */
	"credits" NUMERIC, /* Option < AnyNumeric > */
	"variant" TEXT DEFAULT NULL, /* Option < & str > */
	"rate_card" TEXT DEFAULT 'default', /* Option < & str > */
	"asset" TEXT DEFAULT 'credits', /* Option < & str > */
	"unit" TEXT DEFAULT 'unit', /* Option < & str > */
	"vendor_cost" NUMERIC DEFAULT NULL, /* Option < AnyNumeric > */
	"effective_from" timestamp with time zone DEFAULT now(), /* Option < TimestampWithTimeZone > */
	"fallback" TEXT DEFAULT NULL, /* Option < & str > */
	"tiers" jsonb DEFAULT NULL /* Option < JsonbText > */
) RETURNS @extschema@.credit_rate /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE 
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_rate_set_v8_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_rate_set(text, numeric, text, text, text, text, numeric, timestamptz, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_rate_set(text, numeric, text, text, text, text, numeric, timestamptz, text, jsonb) IS 'set the credits per unit of an action (and variant) on a rate card from effective_from: a new version; fallback: the variant a degrading call tries next; tiers: graduated volume prices by units spent in the wallet''s period';

DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT * FROM pg_catalog.json_to_recordset(
                 pg_catalog.current_setting('credit_ledger_upgrade.acl')::pg_catalog.json)
             AS x(grantee text, grantable boolean) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.credit_rate_set(text, numeric, text, text, text, text, numeric, timestamptz, text, jsonb) TO %s%s',
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;

-- credit_overage gains fair_use_limit; credit_wallet_overage sets it
ALTER TYPE @extschema@.credit_overage ADD ATTRIBUTE fair_use_limit numeric;
SELECT pg_catalog.set_config('credit_ledger_upgrade.acl', coalesce((
    SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
               'grantee', a.grantee::pg_catalog.regrole::text, 'grantable', a.is_grantable))::text
      FROM pg_catalog.pg_proc p
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid = '@extschema@.credit_wallet_overage(text, text, numeric, numeric, numeric[], text[])'::pg_catalog.regprocedure
       AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE'), '[]'), true);
DROP FUNCTION @extschema@.credit_wallet_overage(text, text, numeric, numeric, numeric[], text[]);

CREATE FUNCTION @extschema@.credit_wallet_overage(wallet text, asset text DEFAULT 'credits',
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
    INSERT INTO credit_ledger.wallet_overage AS o (wallet_id, asset, auto_topup_amount, upgrade_at, fair_use_limit)
    VALUES (w.id, credit_wallet_overage.asset,
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

REVOKE ALL ON FUNCTION @extschema@.credit_wallet_overage(text, text, numeric, numeric, numeric[], text[], numeric) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_wallet_overage(text, text, numeric, numeric, numeric[], text[], numeric) IS 'a wallet''s auto top-up (amount at its low-balance threshold), upgrade tiers and fair-use allowance per period in one asset';

DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT * FROM pg_catalog.json_to_recordset(
                 pg_catalog.current_setting('credit_ledger_upgrade.acl')::pg_catalog.json)
             AS x(grantee text, grantable boolean) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.credit_wallet_overage(text, text, numeric, numeric, numeric[], text[], numeric) TO %s%s',
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;

-- the volume-tier bands of a quote
CREATE FUNCTION @extschema@."credit_quote_tiers"(
	"wallet" TEXT, /* Option < & str > */
	"action" TEXT, /* Option < & str > */
	"quantity" NUMERIC DEFAULT 1, /* Option < AnyNumeric > */
	"variant" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS TABLE (
	"tier" INT,  /* i32 */
	"from_units" NUMERIC,  /* AnyNumeric */
	"units" NUMERIC,  /* AnyNumeric */
	"credits_per_unit" NUMERIC,  /* AnyNumeric */
	"cost" NUMERIC,  /* AnyNumeric */
	"rate_id" bigint  /* i64 */
)
STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_quote_tiers_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_quote_tiers(text, text, numeric, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_quote_tiers(text, text, numeric, text) IS 'the volume-tier bands a quantity of an action would be priced in, from the wallet''s units spent this period; no side effects';

-- credit_quote_tiers is in the app and backoffice bundles: a role that may call credit_quote
-- (one of those bundles, or a grant of its own) may call it too
DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT a.grantee::pg_catalog.regrole::text AS grantee, a.is_grantable AS grantable
               FROM pg_catalog.pg_proc p
              CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
              WHERE p.oid = '@extschema@.credit_quote(text, text, numeric, text)'::pg_catalog.regprocedure
                AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE' LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.credit_quote_tiers(text, text, numeric, text) TO %s%s',
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;
-- Metrics for Prometheus (issue 23, since 0.8.0; ops/prometheus/ has the postgres_exporter
-- queries file that reads them and the alert rules). Nothing is counted on the spend path: each
-- part reads what is open or recent through an index. `part` picks one part (NULL: all):
--   holds      holds_open and credits_held per asset (authorizations_open_holds: open holds only)
--   calls      calls of the last minute per asset, label 'approved' or the decline reason
--              (authorizations_created, BRIN: the block ranges of the last minute)
--   credits    credits granted, spent (debits, captures, overdraft), refunded and expired in
--              the last minute per asset, from the journal (journal_at, BRIN)
--   liability  credits_outstanding and deferred_revenue per asset (every live paid grant: the
--              queries file caches it for a minute)
-- Every asset has a row in each part (0 when nothing happened), so a series never vanishes.
CREATE INDEX journal_at ON credit_ledger.journal USING brin (at);
CREATE FUNCTION @extschema@.credit_metrics(part text DEFAULT NULL)
RETURNS TABLE (metric text, asset text, label text, value numeric)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    SELECT m.metric, s.asset, '', coalesce(h.v, 0)
      FROM credit_ledger.assets s
     CROSS JOIN (VALUES ('holds_open'), ('credits_held')) m(metric)
      LEFT JOIN LATERAL (
        SELECT CASE m.metric WHEN 'holds_open' THEN count(*)
                             ELSE sum(a.cost) FILTER (WHERE NOT a.fair_use) END AS v
          FROM credit_ledger.authorizations a
         WHERE a.status = 'held' AND a.expires_at IS NOT NULL AND a.asset = s.asset) h ON true
     WHERE part IS NULL OR part = 'holds'
    UNION ALL
    SELECT 'calls_1m', s.asset, c.outcome, coalesce(c.n, 0)
      FROM credit_ledger.assets s
      LEFT JOIN LATERAL (
        SELECT 'approved' AS outcome, count(*) FILTER (WHERE a.status <> 'declined') AS n
          FROM credit_ledger.authorizations a
         WHERE a.created_at > now() - interval '1 minute' AND a.asset = s.asset
        UNION ALL
        SELECT coalesce(a.reason, 'unknown'), count(*)
          FROM credit_ledger.authorizations a
         WHERE a.created_at > now() - interval '1 minute' AND a.asset = s.asset AND a.status = 'declined'
         GROUP BY 1) c ON true
     WHERE part IS NULL OR part = 'calls'
    UNION ALL
    SELECT 'credits_1m', s.asset, m.movement, coalesce(j.v, 0)
      FROM credit_ledger.assets s
     CROSS JOIN (VALUES ('granted'), ('spent'), ('refunded'), ('expired')) m(movement)
      LEFT JOIN LATERAL (
        SELECT CASE m.movement
                 WHEN 'granted' THEN sum(x.amount) FILTER (WHERE x.kind = 'grant')
                 WHEN 'spent' THEN -sum(x.amount) FILTER (WHERE x.kind IN ('debit', 'capture')
                                                            OR (x.kind = 'overdraft' AND x.amount < 0))
                 WHEN 'refunded' THEN sum(x.amount) FILTER (WHERE x.kind = 'refund')
                 ELSE -sum(x.amount) FILTER (WHERE x.kind = 'expiry') END AS v
          FROM credit_ledger.journal x
         WHERE x.at > now() - interval '1 minute' AND x.asset = s.asset) j ON true
     WHERE part IS NULL OR part = 'credits'
    UNION ALL
    SELECT m.metric, s.asset, '', coalesce(l.v, 0)
      FROM credit_ledger.assets s
     CROSS JOIN (VALUES ('liability_credits'), ('liability_deferred_revenue')) m(metric)
      LEFT JOIN LATERAL (
        SELECT CASE m.metric WHEN 'liability_credits' THEN sum(v.credits_outstanding)
                             ELSE sum(v.deferred_revenue) END AS v
          FROM credit_ledger.liability v WHERE v.asset = s.asset) l ON true
     WHERE part IS NULL OR part = 'liability'
$$;
REVOKE ALL ON FUNCTION @extschema@.credit_metrics(text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_metrics(text) IS 'monitoring gauges per asset (open holds, calls and credits of the last minute, liability), read through indexes; for postgres_exporter (ops/prometheus)';
-- credit_metrics is in the cron and reader bundles: a role that may call credit_health (one of
-- those bundles, or a grant of its own) may call it too
DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT a.grantee::pg_catalog.regrole::text AS grantee, a.is_grantable AS grantable
               FROM pg_catalog.pg_proc p
              CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
              WHERE p.oid = '@extschema@.credit_health()'::pg_catalog.regprocedure
                AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE' LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.credit_metrics(text) TO %s%s',
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;

-- Every authorize and hold call of a wallet, newest first with ORDER BY at DESC (since 0.8.0, for
-- a customer's "recent activity" list; authorizations_wallet_created serves one wallet's
-- latest calls). A call in an agent run is listed for the wallet that opened the run.
CREATE VIEW credit_ledger.call_log AS
SELECT coalesce(o.wallet, w.wallet) AS wallet, a.id AS authorization_id, a.created_at AS at,
       a.kind, a.status, a.reason, a.action, a.variant, a.quantity, a.asset, a.cost,
       a.captured, a.refunded, a.degraded, a.requested_variant, a.fair_use,
       CASE WHEN o.id IS NOT NULL THEN w.wallet END AS run_wallet
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of;
COMMENT ON VIEW credit_ledger.call_log IS
    'every authorize and hold call of a wallet (a run''s calls under the wallet that opened it): status, decline reason, cost';
REVOKE ALL ON credit_ledger.call_log FROM PUBLIC;
-- the reader bundle gains call_log, credit_balance, credit_balance_detail and credit_grants: a role that may
-- read the report views (the reader bundle) gets them too
DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT a.grantee::pg_catalog.regrole::text AS grantee, a.is_grantable AS grantable
               FROM pg_catalog.pg_class c
              CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
              WHERE c.oid = 'credit_ledger.usage_daily'::pg_catalog.regclass
                AND a.grantee <> c.relowner AND a.grantee <> 0 AND a.privilege_type = 'SELECT' LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON credit_ledger.call_log TO %s%s',
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.credit_balance(text, text, timestamptz), @extschema@.credit_balance_detail(text, text, interval), @extschema@.credit_grants(text, text) TO %s%s',
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;

-- the composite types the public functions return (since 0.8.0)
COMMENT ON TYPE @extschema@.credit_authorization IS 'one authorize or hold call: approved, reason, cost, balance after, status, variant, rate version, vendor cost, expiry, key';
COMMENT ON TYPE @extschema@.credit_grant IS 'a credit lot: category, priority, amount, remaining, held, effective and expiry times, unit price';
COMMENT ON TYPE @extschema@.credit_operation IS 'a correction (void, adjustment, transfer, close): what it did, its amount and its state';
COMMENT ON TYPE @extschema@.credit_overage IS 'a wallet''s overage settings in one asset: auto top-up, upgrade tiers, fair-use limit';
COMMENT ON TYPE @extschema@.credit_rate IS 'one version of a rate-card entry: credits per unit, asset, unit, vendor cost, fallback, volume tiers';
COMMENT ON TYPE @extschema@.credit_wallet IS 'a wallet''s settings: parent pool, limits, thresholds, period, rate card, lanes';

CREATE OR REPLACE VIEW credit_ledger.privilege_bundles (bundle, privilege, object_type, object_name) AS
SELECT b.bundle, 'EXECUTE', 'function', f.name
  FROM (VALUES
    ('app', ARRAY['credit_authorize', 'credit_hold', 'credit_capture', 'credit_release', 'credit_refund',
                  'credit_quote', 'credit_quote_tiers', 'credit_balance', 'credit_balance_detail', 'credit_grants', 'credit_wallet',
                  'credit_authorization', 'credit_authorization_history', 'credit_event',
                  'credit_run_open', 'credit_run_close', 'credit_run', 'credit_run_tree', 'credit_statement']),
    ('backoffice', ARRAY['credit_authorize', 'credit_hold', 'credit_capture', 'credit_release', 'credit_refund',
                  'credit_quote', 'credit_quote_tiers', 'credit_balance', 'credit_balance_detail', 'credit_grants', 'credit_wallet',
                  'credit_authorization', 'credit_authorization_history', 'credit_event',
                  'credit_grant', 'credit_wallet_create', 'credit_wallet_update', 'credit_rate_set',
                  'credit_rate_card_load', 'credit_rate_card_export', 'credit_asset_define',
                  'credit_allowance_set', 'credit_team_allocate', 'credit_wallet_lanes',
                  'credit_run_open', 'credit_run_close', 'credit_run', 'credit_run_tree', 'credit_statement',
                  'credit_grant_void', 'credit_adjust', 'credit_transfer', 'credit_wallet_close',
                  'credit_events', 'credit_events_ack', 'credit_margin_whatif', 'credit_wallet_overage']),
    ('pipeline', ARRAY['credit_usage_trigger', 'credit_authorize']),
    ('cron', ARRAY['credit_tick', 'credit_expire', 'credit_events', 'credit_events_ack', 'credit_verify_record', 'credit_health',
                   'credit_metrics']),
    ('reader', ARRAY['credit_verify', 'credit_event', '_period_start', 'credit_statement', 'credit_margin_whatif', 'credit_health',
                     'credit_metrics', 'credit_balance', 'credit_balance_detail', 'credit_grants'])
  ) b(bundle, names), unnest(b.names) f(name)
UNION ALL
SELECT 'reader', 'USAGE', 'schema', 'credit_ledger'
UNION ALL
SELECT 'reader', 'SELECT', 'view', 'credit_ledger.' || v.name
  FROM unnest(ARRAY['wallet_balances', 'grant_status', 'usage_daily', 'margin_by_action', 'liability',
                    'breakage', 'declines_daily', 'pool_usage', 'revenue_monthly', 'run_usage',
                    'reversals', 'operation_log', 'usage_by_actor', 'margin_headroom',
                    'degraded_daily', 'call_log']) v(name);

-- usage_daily: credits fair use paid are not credits spent (fair_use_credits, at the end)
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
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of
 WHERE a.status IN ('approved', 'captured')
 GROUP BY 1, 2, a.action, a.variant, a.asset;
COMMENT ON VIEW credit_ledger.usage_daily IS
    'approved usage per UTC day, wallet, action and variant (the one authorized): quantity, credits net of refunds, vendor cost, calls, degraded calls, credits of the calls fair use paid';

-- credit_verify: fair-use calls move nothing in the journal; the fair-use counts agree
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
     GROUP BY a.id
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
     GROUP BY a.id
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
$$;

