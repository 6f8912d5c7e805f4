-- Privilege bundles (issue 16): what each kind of role needs, granted in one call.
--
--   SELECT * FROM credit_ledger_grant('app_role', 'app');
--   SELECT * FROM credit_ledger_revoke('app_role', 'app');
--
-- Bundles (credit_ledger.privilege_bundles lists every privilege of each):
--   app         spend and read: authorize, hold, capture, release, refund, quote, balances,
--               grants, wallet settings, authorizations and events of any wallet, agent runs,
--               statements
--   backoffice  app, plus grants, wallets, rate cards, assets, allowances, team allocations,
--               voids, adjustments, transfers, wallet closes, the event stream
--   pipeline    usage tables: EXECUTE on credit_usage_trigger (to create the trigger) and on
--               credit_authorize (the trigger runs as the inserting role and calls it)
--   cron        lifecycle: credit_tick, credit_expire; the event stream (a webhook consumer)
--   reader      reports: USAGE on schema credit_ledger, SELECT on its report views,
--               credit_verify, credit_event, and the pure helper the views call
-- No bundle gives a privilege on a ledger table: tables are written only through the
-- SECURITY DEFINER functions and read through the functions and report views.
--
-- Both functions run as their caller (SECURITY INVOKER): they grant only what the caller may
-- grant (the extension's owner, or a role with the privileges WITH GRANT OPTION). EXECUTE is
-- not granted to PUBLIC. A revoke keeps the privileges that another bundle the role still
-- holds in full also needs (revoking 'app' from a 'backoffice' role leaves it a back office),
-- unless that bundle lies inside the revoked one: revoking 'backoffice' also takes away the
-- privileges of 'app' (grant 'app' again to keep them).
-- Bind every expression in this file to pg_catalog only.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

CREATE VIEW credit_ledger.privilege_bundles (bundle, privilege, object_type, object_name) AS
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

-- The GRANT (or REVOKE) statements of one bundle for one role, with a flag: does the role hold
-- the privilege now?
CREATE FUNCTION credit_ledger._bundle_statements(role regrole, bundle text, verb text)
RETURNS TABLE (privilege text, object text, statement text, held boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22023';
    END IF;
    IF bundle IS NULL OR NOT EXISTS (SELECT 1 FROM credit_ledger.privilege_bundles b WHERE b.bundle = _bundle_statements.bundle) THEN
        RAISE EXCEPTION 'privilege bundle "%" does not exist', bundle USING ERRCODE = '22023',
            HINT = 'use app, backoffice, pipeline, cron or reader';
    END IF;
    RETURN QUERY
    SELECT b.privilege, o.object,
           format('%s %s ON %s %s %s %s', verb, b.privilege,
                  CASE b.object_type WHEN 'view' THEN 'TABLE' ELSE upper(b.object_type) END, o.object,
                  CASE WHEN verb = 'GRANT' THEN 'TO' ELSE 'FROM' END, role),
           CASE b.object_type
                WHEN 'function' THEN has_function_privilege(role::oid, o.object, 'EXECUTE')
                WHEN 'schema' THEN has_schema_privilege(role::oid, o.object, 'USAGE')
                ELSE has_table_privilege(role::oid, o.object, 'SELECT') END
      FROM credit_ledger.privilege_bundles b
      CROSS JOIN LATERAL (
          SELECT p.oid::regprocedure::text AS object
            FROM pg_proc p
            JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
            JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
           WHERE b.object_type = 'function' AND p.proname = b.object_name
          UNION ALL
          SELECT quote_ident(b.object_name) WHERE b.object_type = 'schema'
          UNION ALL
          SELECT b.object_name::regclass::text WHERE b.object_type = 'view') o
     WHERE b.bundle = _bundle_statements.bundle
     ORDER BY 2;
END $$;

CREATE FUNCTION @extschema@.credit_ledger_grant(role regrole, bundle text)
RETURNS TABLE (privilege text, object text)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT * FROM credit_ledger._bundle_statements(role, bundle, 'GRANT') LOOP
        EXECUTE s.statement;
        privilege := s.privilege;
        object := s.object;
        RETURN NEXT;
    END LOOP;
END $$;

CREATE FUNCTION @extschema@.credit_ledger_revoke(role regrole, bundle text)
RETURNS TABLE (privilege text, object text)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s record;
    kept text[];
BEGIN
    -- the privileges of every other bundle the role holds in full stay, unless that bundle
    -- lies inside the revoked one (app inside backoffice)
    SELECT coalesce(array_agg(k.object), '{}') INTO kept
      FROM (SELECT DISTINCT b.bundle FROM credit_ledger.privilege_bundles b
             WHERE b.bundle <> credit_ledger_revoke.bundle
               AND EXISTS (SELECT 1 FROM credit_ledger.privilege_bundles x
                            WHERE x.bundle = b.bundle
                              AND (x.object_type, x.object_name) NOT IN
                                  (SELECT y.object_type, y.object_name FROM credit_ledger.privilege_bundles y
                                    WHERE y.bundle = credit_ledger_revoke.bundle))) o
      CROSS JOIN LATERAL credit_ledger._bundle_statements(role, o.bundle, 'REVOKE') k
     WHERE NOT EXISTS (SELECT 1 FROM credit_ledger._bundle_statements(role, o.bundle, 'REVOKE') x WHERE NOT x.held);
    FOR s IN SELECT * FROM credit_ledger._bundle_statements(role, bundle, 'REVOKE') LOOP
        CONTINUE WHEN s.object = ANY (kept);
        EXECUTE s.statement;
        privilege := s.privilege;
        object := s.object;
        RETURN NEXT;
    END LOOP;
END $$;

COMMENT ON VIEW credit_ledger.privilege_bundles IS 'every privilege of each bundle of credit_ledger_grant: app, backoffice, pipeline, cron, reader';
COMMENT ON FUNCTION @extschema@.credit_ledger_grant(regrole, text) IS 'grant a role one privilege bundle (app, backoffice, pipeline, cron, reader); returns what was granted';
COMMENT ON FUNCTION @extschema@.credit_ledger_revoke(regrole, text) IS 'revoke a privilege bundle from a role, keeping what another bundle it holds in full needs';

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
