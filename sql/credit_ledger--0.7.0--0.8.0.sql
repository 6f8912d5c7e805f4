-- credit_ledger 0.7.0 -> 0.8.0 (frozen once released).
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Issue 22: the overage menu, continued.
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

REVOKE ALL ON TABLE credit_ledger.tier_usage FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.tier_usage', '');
COMMENT ON TABLE credit_ledger.tier_usage IS 'units spent per wallet, action and variant in the wallet''s period: where volume tiers price the next call';

-- credit_rate_set takes tiers => jsonb (a new last parameter with a default). A function's
-- parameters cannot change in place: it is dropped and created again, and the EXECUTE
-- privileges granted on the old one are granted on the new one.
SELECT pg_catalog.set_config('credit_ledger_upgrade.acl', coalesce((
    SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
               'grantee', a.grantee::pg_catalog.regrole::text, 'grantable', a.is_grantable))::text
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE n.nspname = '@extschema@' AND p.proname = 'credit_rate_set'
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
    ('cron', ARRAY['credit_tick', 'credit_expire', 'credit_events', 'credit_events_ack', 'credit_verify_record', 'credit_health']),
    ('reader', ARRAY['credit_verify', 'credit_event', '_period_start', 'credit_statement', 'credit_margin_whatif', 'credit_health'])
  ) b(bundle, names), unnest(b.names) f(name)
UNION ALL
SELECT 'reader', 'USAGE', 'schema', 'credit_ledger'
UNION ALL
SELECT 'reader', 'SELECT', 'view', 'credit_ledger.' || v.name
  FROM unnest(ARRAY['wallet_balances', 'grant_status', 'usage_daily', 'margin_by_action', 'liability',
                    'breakage', 'declines_daily', 'pool_usage', 'revenue_monthly', 'run_usage',
                    'reversals', 'operation_log', 'usage_by_actor', 'margin_headroom',
                    'degraded_daily']) v(name);
