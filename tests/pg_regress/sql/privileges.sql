-- privileges.sql: issue 16. The privilege bundles of credit_ledger_grant / credit_ledger_revoke,
-- tested as a full matrix: every function, view and table of the extension x every bundle (and a
-- role with none) x allowed/denied, found by really calling each function and reading each view
-- and table as a role holding only that bundle. Then real work per bundle, and revokes.
CREATE EXTENSION credit_ledger;
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;

DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['app', 'backoffice', 'pipeline', 'cron', 'reader', 'none'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cl_pb_' || r) THEN
            EXECUTE format('DROP OWNED BY %I', 'cl_pb_' || r);
            EXECUTE format('DROP ROLE %I', 'cl_pb_' || r);
        END IF;
        EXECUTE format('CREATE ROLE %I NOLOGIN', 'cl_pb_' || r);
    END LOOP;
END $$;

-- what each bundle holds
SELECT bundle, privilege, object_type, count(*) FROM credit_ledger.privilege_bundles GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- granting returns what was granted
SELECT * FROM credit_ledger_grant('cl_pb_pipeline', 'pipeline');
SELECT count(*) AS granted FROM credit_ledger_grant('cl_pb_app', 'app');
SELECT count(*) AS granted FROM credit_ledger_grant('cl_pb_backoffice', 'backoffice');
SELECT count(*) AS granted FROM credit_ledger_grant('cl_pb_cron', 'cron');
SELECT count(*) AS granted FROM credit_ledger_grant('cl_pb_reader', 'reader');
-- granting twice is harmless
SELECT count(*) AS granted_again FROM credit_ledger_grant('cl_pb_cron', 'cron');
-- bad input: 22023 for an unknown bundle or a NULL role, 42704 for an unknown role
DO $$ BEGIN PERFORM credit_ledger_grant('cl_pb_none', 'admin');
EXCEPTION WHEN OTHERS THEN RAISE WARNING '% %', SQLSTATE, SQLERRM; END $$;
DO $$ BEGIN PERFORM credit_ledger_grant(NULL, 'app');
EXCEPTION WHEN OTHERS THEN RAISE WARNING '% %', SQLSTATE, SQLERRM; END $$;
DO $$ BEGIN PERFORM credit_ledger_grant('cl_pb_nobody_by_that_name', 'app');
EXCEPTION WHEN OTHERS THEN RAISE WARNING '% %', SQLSTATE, SQLERRM; END $$;
-- nothing is granted to PUBLIC, the bundle functions included, but credit_ledger._tenant_unset()
-- (the default of credit_authorize's and credit_hold's tenant, evaluated in the caller's query)
SELECT p.oid::regprocedure AS executable_by_public
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
 WHERE has_function_privilege('cl_pb_none', p.oid, 'EXECUTE')
 ORDER BY 1;

-- ---- the probe: try every function, view and table as the current role ------------------------
-- A function is called with NULL arguments of its types inside a subtransaction that is always
-- rolled back; 'x' = the privilege check passed (the call then ran or failed on its arguments),
-- '-' = 42501 permission denied. A view or table is read with SELECT: 'x' = read, '-' = denied,
-- anything else shows its SQLSTATE (a report a bundle cannot read is a failure of the bundle).
CREATE TABLE probe_results (bundle text, object_type text, object text, result text);
GRANT INSERT ON probe_results TO PUBLIC;
CREATE FUNCTION probe(bundle text) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    o record;
    stmt text;
    st text;
    msg text;
    res text;
BEGIN
    FOR o IN
        SELECT 'function' AS kind, p.proname::text AS name,
               format('SELECT %I.%I(%s)', n.nspname, p.proname,
                      (SELECT coalesce(string_agg('NULL::' || format_type(t, NULL), ', ' ORDER BY i), '')
                         FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY a(t, i))) AS stmt
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
          JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
        UNION ALL
        SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END, c.relname::text,
               format('SELECT count(*) FROM %I.%I', n.nspname, c.relname)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
          JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
         WHERE c.relkind IN ('r', 'v')
    LOOP
        BEGIN
            EXECUTE o.stmt;
            RAISE EXCEPTION 'cl_probe_ran';
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
            res := CASE WHEN msg = 'cl_probe_ran' THEN 'x'
                        WHEN st = '42501' AND msg LIKE 'permission denied for %' THEN '-'
                        WHEN o.kind = 'function' THEN 'x'
                        ELSE st END;
        END;
        INSERT INTO probe_results VALUES (bundle, o.kind, o.name, res);
    END LOOP;
END $f$;

SET ROLE cl_pb_app;        SELECT probe('app');        RESET ROLE;
SET ROLE cl_pb_backoffice; SELECT probe('backoffice'); RESET ROLE;
SET ROLE cl_pb_pipeline;   SELECT probe('pipeline');   RESET ROLE;
SET ROLE cl_pb_cron;       SELECT probe('cron');       RESET ROLE;
SET ROLE cl_pb_reader;     SELECT probe('reader');     RESET ROLE;
SET ROLE cl_pb_none;       SELECT probe('none');       RESET ROLE;

-- the matrix (x allowed, - denied)
SELECT object_type, object,
       max(result) FILTER (WHERE bundle = 'app') AS app,
       max(result) FILTER (WHERE bundle = 'backoffice') AS backoffice,
       max(result) FILTER (WHERE bundle = 'pipeline') AS pipeline,
       max(result) FILTER (WHERE bundle = 'cron') AS cron,
       max(result) FILTER (WHERE bundle = 'reader') AS reader,
       max(result) FILTER (WHERE bundle = 'none') AS none
  FROM probe_results GROUP BY 1, 2 ORDER BY 1, 2;
-- the probe agrees with the bundle definitions: a function or view is allowed exactly when the
-- bundle lists it (no row = agreement)
SELECT r.bundle, r.object_type, r.object, r.result
  FROM probe_results r
 WHERE r.bundle <> 'none'
   AND (r.result = 'x') <> EXISTS (SELECT 1 FROM credit_ledger.privilege_bundles b
                                   WHERE b.bundle = r.bundle AND b.object_type = r.object_type
                                     AND b.object_name IN (r.object, 'credit_ledger.' || r.object))
 ORDER BY 1, 2, 3;
-- no bundle holds any privilege on a ledger table
SELECT r.rolname, c.relname
  FROM pg_roles r CROSS JOIN pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
 WHERE r.rolname LIKE 'cl\_pb\_%' AND c.relkind IN ('r', 'S')
   AND CASE c.relkind WHEN 'r' THEN has_table_privilege(r.oid, c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')
                      ELSE has_sequence_privilege(r.oid, c.oid, 'USAGE,SELECT,UPDATE') END
 ORDER BY 1, 2;

-- ---- real work, bundle by bundle ----------------------------------------------------------
SET ROLE cl_pb_backoffice;
SELECT (credit_rate_set(action => 'chat', credits => 2)).credits;
SELECT (credit_wallet_create(wallet => 'acme')).wallet;
SELECT (credit_grant(wallet => 'acme', amount => 100, expires_at => now() + interval '1 day')).amount;
SELECT (credit_wallet_create(wallet => 'team')).wallet;
SELECT (credit_wallet_create(wallet => 'member', parent => 'team', pool_limit => 10)).parent;
RESET ROLE;
SET ROLE cl_pb_app;
SELECT approved, cost, balance FROM credit_authorize(wallet => 'acme', action => 'chat');
SELECT credit_balance(wallet => 'acme');
DO $$ BEGIN PERFORM credit_grant(wallet => 'acme', amount => 1);
EXCEPTION WHEN OTHERS THEN RAISE WARNING '% %', SQLSTATE, SQLERRM; END $$;
RESET ROLE;
-- a pipeline role owns a usage table, creates the trigger, and its inserts are billed
CREATE SCHEMA pipe AUTHORIZATION cl_pb_pipeline;
SET ROLE cl_pb_pipeline;
CREATE TABLE pipe.calls (customer text, kind text, auth_id bigint);
CREATE TRIGGER bill BEFORE INSERT ON pipe.calls FOR EACH ROW
    EXECUTE FUNCTION credit_usage_trigger('wallet=customer', 'action=kind', 'authorization_id=auth_id');
INSERT INTO pipe.calls (customer, kind) VALUES ('acme', 'chat');
SELECT customer, auth_id IS NOT NULL AS billed FROM pipe.calls;
RESET ROLE;
SET ROLE cl_pb_cron;
SELECT count(*) >= 0 AS ticked FROM credit_tick();
SELECT count(*) >= 0 AS swept FROM credit_expire();
RESET ROLE;
SET ROLE cl_pb_reader;
SELECT wallet, asset, balance FROM credit_ledger.wallet_balances ORDER BY 1, 2;
SELECT member, team FROM credit_ledger.pool_usage ORDER BY 1;
SELECT * FROM credit_verify();
RESET ROLE;

-- ---- revokes ------------------------------------------------------------------------------
-- revoking app from a back office keeps everything (backoffice holds app's functions too)
SELECT count(*) AS revoked FROM credit_ledger_revoke('cl_pb_backoffice', 'app');
SELECT has_function_privilege('cl_pb_backoffice', 'credit_authorize(text,text,numeric,text,text,jsonb,bigint)', 'EXECUTE') AS backoffice_still_authorizes;
-- a role with app and pipeline: revoking pipeline keeps credit_authorize (app needs it)
SELECT count(*) AS granted FROM credit_ledger_grant('cl_pb_app', 'pipeline');
SELECT * FROM credit_ledger_revoke('cl_pb_app', 'pipeline');
SELECT has_function_privilege('cl_pb_app', 'credit_authorize(text,text,numeric,text,text,jsonb,bigint)', 'EXECUTE') AS app_still_authorizes;
-- revoking backoffice takes app's privileges too (app lies inside it)
SELECT count(*) AS revoked FROM credit_ledger_revoke('cl_pb_backoffice', 'backoffice');
-- after revoking every bundle, no role holds anything
SELECT count(*) AS revoked FROM credit_ledger_revoke('cl_pb_app', 'app');
SELECT count(*) AS revoked FROM credit_ledger_revoke('cl_pb_cron', 'cron');
SELECT count(*) AS revoked FROM credit_ledger_revoke('cl_pb_reader', 'reader');
SELECT count(*) AS revoked FROM credit_ledger_revoke('cl_pb_pipeline', 'pipeline');
SELECT r.rolname, p.proname
  FROM pg_roles r CROSS JOIN pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
 WHERE r.rolname LIKE 'cl\_pb\_%' AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
 ORDER BY 1, 2;
SELECT r.rolname FROM pg_roles r
 WHERE r.rolname LIKE 'cl\_pb\_%' AND has_schema_privilege(r.oid, 'credit_ledger', 'USAGE');

-- ---- clean up -----------------------------------------------------------------------------
DROP SCHEMA pipe CASCADE;
DROP TABLE probe_results;
DROP EXTENSION credit_ledger;
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['app', 'backoffice', 'pipeline', 'cron', 'reader', 'none'] LOOP
        EXECUTE format('DROP OWNED BY %I', 'cl_pb_' || r);
        EXECUTE format('DROP ROLE %I', 'cl_pb_' || r);
    END LOOP;
END $$;
