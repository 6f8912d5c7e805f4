-- credit_ledger 0.6.0 -> 0.7.0 (frozen once released).
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Issue 22: the overage menu.
-- ---- the overage menu (since 0.7.0) -----------------------------------------------------------
-- Degrade: a rate entry may name the variant of the same action that a call with
-- degrade => true tries next when this one is unaffordable (part of the entry's version).
ALTER TABLE credit_ledger.rates ADD COLUMN fallback text;
ALTER TYPE @extschema@.credit_rate ADD ATTRIBUTE fallback text;
-- A degraded call: variant is the one authorized, requested_variant the one asked for.
ALTER TABLE credit_ledger.authorizations
    ADD COLUMN degraded boolean NOT NULL DEFAULT false,
    ADD COLUMN requested_variant text;
CREATE INDEX authorizations_degraded ON credit_ledger.authorizations (created_at) WHERE degraded;
-- Per wallet and asset: the auto top-up amount (its threshold is the wallet's
-- low_balance_threshold), the crossings announced so far (the n-th event's idempotency key is
-- auto_topup.<n>) and the period-usage tiers that suggest an upgrade (credit_tick).
CREATE TABLE credit_ledger.wallet_overage (
    wallet_id         bigint  NOT NULL REFERENCES credit_ledger.wallets (id),
    asset             text    NOT NULL REFERENCES credit_ledger.assets (asset),
    auto_topup_amount numeric CHECK (auto_topup_amount > 0),
    topups            bigint  NOT NULL DEFAULT 0,
    upgrade_at        numeric[],
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet_id, asset)
);

-- credit_authorize and credit_hold take degrade => boolean, credit_rate_set fallback => text (new
-- last parameters with defaults). A function's parameters cannot change in place: each is
-- dropped and created again, and the EXECUTE privileges granted on the old one are granted on
-- the new one (an application role keeps what it had; nothing is granted to PUBLIC).
SELECT pg_catalog.set_config('credit_ledger_upgrade.acl', coalesce((
    SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
               'name', p.proname, 'grantee', a.grantee::pg_catalog.regrole::text, 'grantable', a.is_grantable))::text
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE n.nspname = '@extschema@' AND p.proname IN ('credit_authorize', 'credit_hold', 'credit_rate_set')
       AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE'), '[]'), true);
DROP FUNCTION @extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint);
DROP FUNCTION @extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint);
DROP FUNCTION @extschema@.credit_rate_set(text, numeric, text, text, text, text, numeric, timestamptz);

CREATE FUNCTION @extschema@."credit_authorize"(
	"wallet" TEXT, /* Option < & str > */
	"action" TEXT, /* Option < & str > */
	"quantity" NUMERIC DEFAULT 1, /* Option < AnyNumeric > */
	"variant" TEXT DEFAULT NULL, /* Option < & str > */
	"idempotency_key" TEXT DEFAULT NULL, /* Option < & str > */
	"metadata" jsonb DEFAULT NULL, /* Option < JsonbText > */
	"run" bigint DEFAULT NULL, /* Option < i64 > */
	"degrade" bool DEFAULT false /* Option < bool > */
) RETURNS @extschema@.credit_authorization /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_authorize_v7_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint, boolean) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint, boolean) IS 'atomically price, check limits and debit an action before the work runs; a decline is a row; degrade: the first affordable variant of the fallback chain';

CREATE FUNCTION @extschema@."credit_hold"(
	"wallet" TEXT, /* Option < & str > */
	"action" TEXT, /* Option < & str > */
	"quantity" NUMERIC DEFAULT 1, /* Option < AnyNumeric > */
	"variant" TEXT DEFAULT NULL, /* Option < & str > */
	"idempotency_key" TEXT DEFAULT NULL, /* Option < & str > */
	"metadata" jsonb DEFAULT NULL, /* Option < JsonbText > */
	"ttl" interval DEFAULT '10 minutes', /* Option < Interval > */
	"run" bigint DEFAULT NULL, /* Option < i64 > */
	"degrade" bool DEFAULT false /* Option < bool > */
) RETURNS @extschema@.credit_authorization /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_hold_v7_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint, boolean) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint, boolean) IS 'reserve credits for work of unknown final size (streaming); capture or release later; degrade as for credit_authorize';

CREATE FUNCTION @extschema@."credit_rate_set"(
	"action" TEXT, /* Option < & str > */
	"credits" NUMERIC, /* Option < AnyNumeric > */
	"variant" TEXT DEFAULT NULL, /* Option < & str > */
	"rate_card" TEXT DEFAULT 'default', /* Option < & str > */
	"asset" TEXT DEFAULT 'credits', /* Option < & str > */
	"unit" TEXT DEFAULT 'unit', /* Option < & str > */
	"vendor_cost" NUMERIC DEFAULT NULL, /* Option < AnyNumeric > */
	"effective_from" timestamp with time zone DEFAULT now(), /* Option < TimestampWithTimeZone > */
	"fallback" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS @extschema@.credit_rate /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_rate_set_v7_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_rate_set(text, numeric, text, text, text, text, numeric, timestamptz, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_rate_set(text, numeric, text, text, text, text, numeric, timestamptz, text) IS 'set the credits per unit of an action (and variant) on a rate card from effective_from: a new version; fallback: the variant a degrading call tries next';

DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT * FROM pg_catalog.json_to_recordset(
                 pg_catalog.current_setting('credit_ledger_upgrade.acl')::pg_catalog.json)
             AS x(name text, grantee text, grantable boolean) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s',
            CASE g.name WHEN 'credit_authorize' THEN '@extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint, boolean)'
                        WHEN 'credit_hold' THEN '@extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint, boolean)'
                        ELSE '@extschema@.credit_rate_set(text, numeric, text, text, text, text, numeric, timestamptz, text)' END,
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;

-- the usage trigger takes degrade=true
CREATE OR REPLACE FUNCTION @extschema@.credit_usage_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    arg text;
    k text;
    v text;
    cfg jsonb := '{}'::jsonb;
    rec jsonb;
    w text; act text; qty numeric; var text; idem text;
    a @extschema@.credit_authorization;
BEGIN
    IF TG_OP <> 'INSERT' OR TG_LEVEL <> 'ROW' OR TG_WHEN <> 'BEFORE' THEN
        RAISE EXCEPTION 'credit_usage_trigger must be a BEFORE INSERT FOR EACH ROW trigger'
            USING ERRCODE = '22023';
    END IF;
    FOREACH arg IN ARRAY coalesce(TG_ARGV, '{}'::text[]) LOOP
        k := btrim(split_part(arg, '=', 1));
        v := btrim(substr(arg, length(split_part(arg, '=', 1)) + 2));
        IF position('=' IN arg) = 0 OR v = '' THEN
            RAISE EXCEPTION 'credit_usage_trigger argument "%" is not name=column', arg
                USING ERRCODE = '22023', HINT = 'for example ''wallet=customer_id''';
        END IF;
        IF k NOT IN ('wallet', 'action', 'action_value', 'quantity', 'variant', 'variant_value',
                     'idempotency_key', 'authorization_id', 'on_decline', 'decline_reason', 'degrade') THEN
            RAISE EXCEPTION 'credit_usage_trigger argument "%" is unknown', k USING ERRCODE = '22023',
                HINT = 'use wallet, action, action_value, quantity, variant, variant_value, idempotency_key, authorization_id, on_decline, decline_reason, degrade';
        END IF;
        IF k = 'on_decline' AND v NOT IN ('error', 'mark') THEN
            RAISE EXCEPTION 'credit_usage_trigger argument on_decline must be error or mark, not "%"', v
                USING ERRCODE = '22023';
        END IF;
        IF k = 'degrade' AND v NOT IN ('true', 'false') THEN
            RAISE EXCEPTION 'credit_usage_trigger argument degrade must be true or false, not "%"', v
                USING ERRCODE = '22023';
        END IF;
        IF cfg ? k THEN
            RAISE EXCEPTION 'credit_usage_trigger argument "%" is given twice', k USING ERRCODE = '22023';
        END IF;
        cfg := cfg || jsonb_build_object(k, v);
    END LOOP;
    IF cfg ? 'action' AND cfg ? 'action_value' OR cfg ? 'variant' AND cfg ? 'variant_value' THEN
        RAISE EXCEPTION 'credit_usage_trigger on "%" takes a column or a literal, not both', TG_TABLE_NAME
            USING ERRCODE = '22023', HINT = 'give either action=<column> or action_value=<literal> (and the same for variant)';
    END IF;
    IF NOT cfg ? 'wallet' THEN
        RAISE EXCEPTION 'credit_usage_trigger on "%" needs a wallet=<column> argument', TG_TABLE_NAME
            USING ERRCODE = '22023';
    END IF;
    IF coalesce(cfg ->> 'on_decline' = 'mark', false) <> (cfg ? 'decline_reason') THEN
        RAISE EXCEPTION 'credit_usage_trigger on "%": on_decline=mark and decline_reason=<column> go together', TG_TABLE_NAME
            USING ERRCODE = '22023', HINT = 'for example ''on_decline=mark'', ''decline_reason=billing_error''';
    END IF;
    IF NOT (cfg ? 'action' OR cfg ? 'action_value') THEN
        RAISE EXCEPTION 'credit_usage_trigger on "%" needs action=<column> or action_value=<literal>', TG_TABLE_NAME
            USING ERRCODE = '22023';
    END IF;
    rec := to_jsonb(NEW);
    FOR k IN SELECT key FROM jsonb_each_text(cfg) WHERE key NOT IN ('action_value', 'variant_value', 'on_decline', 'degrade') LOOP
        IF NOT rec ? (cfg ->> k) THEN
            RAISE EXCEPTION 'column "%" named by credit_usage_trigger argument % does not exist in "%"',
                cfg ->> k, k, TG_TABLE_NAME USING ERRCODE = '42703';
        END IF;
    END LOOP;
    -- the authorization id is written into a bigint column (any other type either fails on
    -- some id or, for a column that is never NULL, would make every row look already billed)
    IF cfg ? 'authorization_id' AND (SELECT t.atttypid FROM pg_attribute t
                                      WHERE t.attrelid = TG_RELID AND t.attname = cfg ->> 'authorization_id'
                                        AND t.attnum > 0 AND NOT t.attisdropped) <> 'int8'::regtype THEN
        RAISE EXCEPTION 'column "%" named by credit_usage_trigger argument authorization_id must be bigint, not %',
            cfg ->> 'authorization_id',
            (SELECT format_type(t.atttypid, t.atttypmod) FROM pg_attribute t
              WHERE t.attrelid = TG_RELID AND t.attname = cfg ->> 'authorization_id' AND t.attnum > 0 AND NOT t.attisdropped)
            USING ERRCODE = '22023';
    END IF;
    IF cfg ? 'authorization_id' AND rec ->> (cfg ->> 'authorization_id') IS NOT NULL THEN
        -- already billed (a pg_dump restore, or the app authorized itself): never bill again.
        -- Not validated against credit_ledger.authorizations: a restore may load this table first.
        RETURN NEW;
    END IF;
    w := rec ->> (cfg ->> 'wallet');
    act := coalesce(cfg ->> 'action_value', rec ->> (cfg ->> 'action'));
    var := coalesce(cfg ->> 'variant_value', rec ->> (cfg ->> 'variant'));
    idem := rec ->> (cfg ->> 'idempotency_key');
    BEGIN
        qty := CASE WHEN cfg ? 'quantity' THEN (rec ->> (cfg ->> 'quantity'))::numeric ELSE 1 END;
    EXCEPTION WHEN invalid_text_representation THEN
        RAISE EXCEPTION 'column "%" does not hold a number', cfg ->> 'quantity' USING ERRCODE = '22023';
    END;
    a := @extschema@.credit_authorize(wallet => w, action => act, quantity => qty, variant => var,
                                       idempotency_key => idem,
                                       metadata => jsonb_build_object('table', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME),
                                       degrade => coalesce(cfg ->> 'degrade' = 'true', false));
    IF NOT a.approved AND cfg ->> 'on_decline' = 'mark' THEN
        -- keep the row, unbilled, with the reason (and the declined authorization's id)
        NEW := jsonb_populate_record(NEW, jsonb_build_object(cfg ->> 'decline_reason', a.reason)
                                          || CASE WHEN cfg ? 'authorization_id'
                                                  THEN jsonb_build_object(cfg ->> 'authorization_id', a.authorization_id)
                                                  ELSE '{}'::jsonb END);
        RETURN NEW;
    END IF;
    IF NOT a.approved THEN
        RAISE EXCEPTION 'wallet "%" cannot pay for "%": %', w, act, a.reason
            USING ERRCODE = '53400',
                  DETAIL = format('authorization %s declined; balance %s', a.authorization_id, a.balance),
                  HINT = 'grant credits to the wallet or raise its limits';
    END IF;
    IF cfg ? 'authorization_id' THEN
        NEW := jsonb_populate_record(NEW, jsonb_build_object(cfg ->> 'authorization_id', a.authorization_id));
    END IF;
    IF cfg ? 'variant' AND a.variant IS DISTINCT FROM var THEN
        -- degraded: the row names the variant that was authorized
        NEW := jsonb_populate_record(NEW, jsonb_build_object(cfg ->> 'variant', a.variant));
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION @extschema@.credit_usage_trigger() IS
    'BEFORE INSERT row trigger that authorizes each usage row; arguments name=column (wallet, action|action_value, quantity, variant, idempotency_key, authorization_id, on_decline, decline_reason, degrade)';


-- usage_daily counts degraded calls; degraded_daily lists them
CREATE OR REPLACE VIEW credit_ledger.usage_daily AS
SELECT date_trunc('day', a.created_at AT TIME ZONE 'UTC')::date AS day, coalesce(o.wallet, w.wallet) AS wallet,
       a.action, a.variant, a.asset,
       sum(coalesce(a.captured_quantity, a.quantity)) AS quantity,
       sum(coalesce(a.captured, a.cost) - a.refunded) AS credits,
       sum(a.vendor_cost) AS vendor_cost,
       count(*) AS calls,
       sum(a.refunded) AS refunded,
       count(*) FILTER (WHERE a.degraded) AS degraded_calls  -- since 0.7.0
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of
 WHERE a.status IN ('approved', 'captured')
 GROUP BY 1, 2, a.action, a.variant, a.asset;
COMMENT ON VIEW credit_ledger.usage_daily IS
    'approved usage per UTC day, wallet, action and variant (the one authorized): quantity, credits net of refunds, vendor cost, calls, degraded calls';

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
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of
 WHERE a.degraded
 GROUP BY 1, 2, a.action, a.requested_variant, a.variant, a.asset;
COMMENT ON VIEW credit_ledger.degraded_daily IS
    'calls degraded to a cheaper variant per UTC day, wallet, action, variant asked for and variant authorized';

-- A wallet's overage settings in one asset: auto top-up (threshold = the wallet's
-- low_balance_threshold, set here too; amount: what the payment worker should grant) and the
-- period-usage tiers that suggest an upgrade. NULL leaves a setting unchanged; clear =>
-- '{auto_topup}' or '{upgrade_at}' removes one. Returns the settings after the call.
CREATE TYPE @extschema@.credit_overage AS (
    wallet text, asset text, auto_topup_threshold numeric, auto_topup_amount numeric,
    upgrade_at numeric[], topups bigint
);
CREATE FUNCTION @extschema@.credit_wallet_overage(wallet text, asset text DEFAULT 'credits',
    auto_topup_threshold numeric DEFAULT NULL, auto_topup_amount numeric DEFAULT NULL,
    upgrade_at numeric[] DEFAULT NULL, clear text[] DEFAULT NULL)
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
     WHERE b IS NULL OR b NOT IN ('auto_topup', 'upgrade_at') LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'setting "%" cannot be cleared', coalesce(bad, 'NULL') USING ERRCODE = '22023',
            HINT = 'clearable settings: auto_topup, upgrade_at';
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
    INSERT INTO credit_ledger.wallet_overage AS o (wallet_id, asset, auto_topup_amount, upgrade_at)
    VALUES (w.id, credit_wallet_overage.asset,
            CASE WHEN 'auto_topup' = ANY (coalesce(clear, '{}')) THEN NULL ELSE credit_wallet_overage.auto_topup_amount END,
            CASE WHEN 'upgrade_at' = ANY (coalesce(clear, '{}')) THEN NULL ELSE credit_wallet_overage.upgrade_at END)
    ON CONFLICT ON CONSTRAINT wallet_overage_pkey DO UPDATE
       SET auto_topup_amount = CASE WHEN 'auto_topup' = ANY (coalesce(clear, '{}')) THEN NULL
                                    ELSE coalesce(EXCLUDED.auto_topup_amount, o.auto_topup_amount) END,
           upgrade_at = CASE WHEN 'upgrade_at' = ANY (coalesce(clear, '{}')) THEN NULL
                             ELSE coalesce(EXCLUDED.upgrade_at, o.upgrade_at) END,
           updated_at = now();
    RETURN QUERY
    SELECT w.wallet, o.asset, x.low_balance_threshold, o.auto_topup_amount, o.upgrade_at, o.topups
      FROM credit_ledger.wallet_overage o JOIN credit_ledger.wallets x ON x.id = o.wallet_id
     WHERE o.wallet_id = w.id AND o.asset = credit_wallet_overage.asset;
END $$;

-- Upgrade signals (credit_tick): one upgrade_suggested event per wallet, asset, tier and
-- period once the period's usage (approved debits and holds, captures at their final amount,
-- net of refunds; an agent run's calls count for the wallet that opened it) reaches the tier.
-- Returns the events written.
CREATE FUNCTION credit_ledger._upgrade_signals(as_of timestamptz) RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
    WITH o AS (
        SELECT o.wallet_id, o.asset, o.upgrade_at, w.wallet,
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
        INSERT INTO credit_ledger.events (kind, wallet_id, asset, payload)
        SELECT 'upgrade_suggested', d.wallet_id, d.asset,
               jsonb_build_object('event', 'upgrade_suggested', 'wallet', d.wallet, 'asset', d.asset,
                                  'tier', d.tier::text, 'period_usage', d.used, 'period_start', d.since)
          FROM due d ORDER BY d.wallet_id, d.asset, d.tier
        RETURNING id
    )
    SELECT count(pg_notify('credit_ledger', e.id::text)) FROM e
$$;

REVOKE ALL ON TABLE credit_ledger.degraded_daily FROM PUBLIC;
REVOKE ALL ON TABLE credit_ledger.wallet_overage FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_wallet_overage(text, text, numeric, numeric, numeric[], text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_ledger._upgrade_signals(timestamptz) FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.wallet_overage', '');
COMMENT ON FUNCTION @extschema@.credit_wallet_overage(text, text, numeric, numeric, numeric[], text[]) IS 'a wallet''s auto top-up (amount at its low-balance threshold) and upgrade tiers in one asset';
COMMENT ON TABLE credit_ledger.wallet_overage IS 'per wallet and asset: auto top-up amount and crossings announced, upgrade tiers';

-- the reader bundle names the new view
CREATE OR REPLACE VIEW credit_ledger.privilege_bundles (bundle, privilege, object_type, object_name) AS
SELECT b.bundle, 'EXECUTE', 'function', f.name
  FROM (VALUES
    ('app', ARRAY['credit_authorize', 'credit_hold', 'credit_capture', 'credit_release', 'credit_refund',
                  'credit_quote', 'credit_balance', 'credit_balance_detail', 'credit_grants', 'credit_wallet',
                  'credit_authorization', 'credit_authorization_history', 'credit_event',
                  'credit_run_open', 'credit_run_close', 'credit_run', 'credit_run_tree', 'credit_statement']),
    ('backoffice', ARRAY['credit_authorize', 'credit_hold', 'credit_capture', 'credit_release', 'credit_refund',
                  'credit_quote', 'credit_balance', 'credit_balance_detail', 'credit_grants', 'credit_wallet',
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

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
