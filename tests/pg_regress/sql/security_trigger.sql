-- security_trigger.sql: issue 16. The owner of a billed table cannot run code with the rights of
-- the extension's owner (a superuser) through the usage trigger.
--
-- On 0.2.0 the trigger was SECURITY DEFINER and read the row with to_jsonb(NEW), which calls any
-- user-defined cast to json: the owner of a billed table became superuser with one INSERT. Since
-- 0.3.0 the trigger runs as the inserting role and hands plain values to credit_authorize (the
-- SECURITY DEFINER function). Every variant below plants code where the trigger evaluates it (a
-- cast to json of an enum, a domain, a composite, an array and a range column, and a cast on the
-- wallet and action columns the trigger reads) in a table owned by a non-superuser. The planted
-- code records who ran it and tries to make its author superuser: it must run as the inserting
-- role, never as a superuser, and the author must stay a plain role.
CREATE EXTENSION credit_ledger;
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;

DROP ROLE IF EXISTS cl_sec_esc;
DROP ROLE IF EXISTS cl_sec_app;
CREATE ROLE cl_sec_esc NOLOGIN;
CREATE ROLE cl_sec_app NOLOGIN;
-- what a usage pipeline needs: EXECUTE on the trigger function (to create the trigger) and on
-- credit_authorize (the trigger calls it as the inserting role)
GRANT EXECUTE ON FUNCTION credit_usage_trigger(), credit_authorize(text, text, numeric, text, text, jsonb, bigint, boolean, text)
    TO cl_sec_esc, cl_sec_app;
CREATE SCHEMA appz AUTHORIZATION cl_sec_esc;
GRANT USAGE ON SCHEMA appz TO cl_sec_app;

SELECT (credit_rate_set(action => 'u', credits => 1)).credits;
SELECT (credit_wallet_create(wallet => 'w')).wallet;
SELECT (credit_grant(wallet => 'w', amount => 100)).amount;

-- ---- the attacker's objects (a plain role that owns a schema and the billed tables) ----------
SET ROLE cl_sec_esc;
CREATE TABLE appz.ran (variant text, who text, who_is_superuser boolean, escalated boolean);
GRANT INSERT ON appz.ran TO cl_sec_app;
-- the planted payload: note who runs it, try to become superuser
CREATE FUNCTION appz.payload(variant text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE ok boolean := true;
BEGIN
    BEGIN
        EXECUTE 'ALTER ROLE cl_sec_esc SUPERUSER';
    EXCEPTION WHEN insufficient_privilege THEN ok := false;
    END;
    INSERT INTO appz.ran VALUES (variant, current_user,
                                 (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), ok);
END $$;

-- 1. the reported exploit: an enum column with a cast to json
CREATE TYPE appz.e1 AS ENUM ('x');
CREATE FUNCTION appz.e1_json(appz.e1) RETURNS json LANGUAGE plpgsql AS $$
BEGIN PERFORM appz.payload('enum'); RETURN to_json($1::text); END $$;
CREATE CAST (appz.e1 AS json) WITH FUNCTION appz.e1_json(appz.e1);
-- 2. a domain over an enum with a cast (to_jsonb looks through the domain to the enum's cast)
CREATE TYPE appz.e2 AS ENUM ('x');
CREATE FUNCTION appz.e2_json(appz.e2) RETURNS json LANGUAGE plpgsql AS $$
BEGIN PERFORM appz.payload('domain'); RETURN to_json($1::text); END $$;
CREATE CAST (appz.e2 AS json) WITH FUNCTION appz.e2_json(appz.e2);
CREATE DOMAIN appz.d2 AS appz.e2;
-- 3. a composite column whose field has a cast
CREATE TYPE appz.e3 AS ENUM ('x');
CREATE FUNCTION appz.e3_json(appz.e3) RETURNS json LANGUAGE plpgsql AS $$
BEGIN PERFORM appz.payload('composite'); RETURN to_json($1::text); END $$;
CREATE CAST (appz.e3 AS json) WITH FUNCTION appz.e3_json(appz.e3);
CREATE TYPE appz.c3 AS (f appz.e3);
-- 4. an array column whose elements have a cast
CREATE TYPE appz.e4 AS ENUM ('x');
CREATE FUNCTION appz.e4_json(appz.e4) RETURNS json LANGUAGE plpgsql AS $$
BEGIN PERFORM appz.payload('array'); RETURN to_json($1::text); END $$;
CREATE CAST (appz.e4 AS json) WITH FUNCTION appz.e4_json(appz.e4);
-- 5. a range column with a cast
CREATE TYPE appz.e5 AS ENUM ('a', 'b');
CREATE TYPE appz.r5 AS RANGE (subtype = appz.e5);
CREATE FUNCTION appz.r5_json(appz.r5) RETURNS json LANGUAGE plpgsql AS $$
BEGIN PERFORM appz.payload('range'); RETURN to_json($1::text); END $$;
CREATE CAST (appz.r5 AS json) WITH FUNCTION appz.r5_json(appz.r5);
-- 6. the trigger's own argument columns (wallet, action) are of user types with casts: the
-- row is billed with the values the casts return
CREATE TYPE appz.wallet_key AS ENUM ('w');
CREATE FUNCTION appz.wallet_key_json(appz.wallet_key) RETURNS json LANGUAGE plpgsql AS $$
BEGIN PERFORM appz.payload('wallet column'); RETURN to_json($1::text); END $$;
CREATE CAST (appz.wallet_key AS json) WITH FUNCTION appz.wallet_key_json(appz.wallet_key);
CREATE TYPE appz.action_key AS ENUM ('u');
CREATE FUNCTION appz.action_key_json(appz.action_key) RETURNS json LANGUAGE plpgsql AS $$
BEGIN PERFORM appz.payload('action column'); RETURN to_json($1::text); END $$;
CREATE CAST (appz.action_key AS json) WITH FUNCTION appz.action_key_json(appz.action_key);

CREATE TABLE appz.calls (wallet text, kind text, auth_id bigint,
                         z1 appz.e1 DEFAULT 'x', z2 appz.d2 DEFAULT 'x', z3 appz.c3 DEFAULT ROW('x'),
                         z4 appz.e4[] DEFAULT '{x}', z5 appz.r5 DEFAULT '[a,b)');
CREATE TABLE appz.typed_calls (wallet appz.wallet_key, kind appz.action_key, auth_id bigint);
CREATE TABLE appz.plain_calls (wallet text, kind text);
GRANT INSERT, SELECT ON appz.calls, appz.typed_calls TO cl_sec_app;
-- the owner (a plain role) creates the triggers on its own tables
CREATE TRIGGER bill BEFORE INSERT ON appz.calls FOR EACH ROW
    EXECUTE FUNCTION credit_usage_trigger('wallet=wallet', 'action=kind', 'authorization_id=auth_id');
CREATE TRIGGER bill BEFORE INSERT ON appz.typed_calls FOR EACH ROW
    EXECUTE FUNCTION credit_usage_trigger('wallet=wallet', 'action=kind', 'authorization_id=auth_id');
CREATE TRIGGER bill BEFORE INSERT ON appz.plain_calls FOR EACH ROW
    EXECUTE FUNCTION credit_usage_trigger('wallet=wallet', 'action=kind');

-- ---- the attack: the owner inserts; then another plain role inserts -------------------------
INSERT INTO appz.calls (wallet, kind) VALUES ('w', 'u');
INSERT INTO appz.typed_calls (wallet, kind) VALUES ('w', 'u');
SET ROLE cl_sec_app;
INSERT INTO appz.calls (wallet, kind) VALUES ('w', 'u');
INSERT INTO appz.typed_calls (wallet, kind) VALUES ('w', 'u');
RESET ROLE;

-- every planted function ran as the role that inserted, none as a superuser, none escalated
SELECT variant, who, who_is_superuser, escalated, count(*)
  FROM appz.ran GROUP BY 1, 2, 3, 4 ORDER BY 2, 1;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname IN ('cl_sec_esc', 'cl_sec_app') ORDER BY 1;
-- and the rows were billed: four approved authorizations, written back into the rows
SELECT count(*) AS billed_rows FROM appz.calls WHERE auth_id IS NOT NULL;
SELECT count(*) AS billed_typed_rows FROM appz.typed_calls WHERE auth_id IS NOT NULL;
SELECT status, count(*) FROM credit_ledger.authorizations GROUP BY 1 ORDER BY 1;
SELECT credit_balance(wallet => 'w');

-- a role that may insert but has no EXECUTE on credit_authorize cannot bill (42501) and leaves
-- nothing behind
DROP ROLE IF EXISTS cl_sec_noexec;
CREATE ROLE cl_sec_noexec NOLOGIN;
GRANT USAGE ON SCHEMA appz TO cl_sec_noexec;
GRANT INSERT ON appz.plain_calls TO cl_sec_noexec;
SET ROLE cl_sec_noexec;
DO $$ BEGIN
    INSERT INTO appz.plain_calls (wallet, kind) VALUES ('w', 'u');
EXCEPTION WHEN insufficient_privilege THEN RAISE WARNING 'denied (%): %', SQLSTATE, SQLERRM;
END $$;
RESET ROLE;
SELECT count(*) AS plain_rows FROM appz.plain_calls;
SELECT count(*) AS authorizations FROM credit_ledger.authorizations;

-- ---- the class: no SECURITY DEFINER function of the extension can be handed user code --------
-- Every SECURITY DEFINER function of the extension: is not a trigger function; takes and returns
-- only built-in types or the extension's own (no type a user can define, no polymorphic type);
-- pins search_path with pg_catalog first.
SELECT p.oid::regprocedure AS definer_function_with_user_definable_input
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
 WHERE p.prosecdef
   AND (p.prorettype = 'trigger'::regtype
        OR EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[] || p.prorettype) t(oid)
                    WHERE t.oid >= 16384
                      AND NOT EXISTS (SELECT 1 FROM pg_depend td
                                       WHERE td.classid = 'pg_type'::regclass AND td.objid = t.oid
                                         AND td.refobjid = e.oid AND td.deptype = 'e')
                      AND NOT EXISTS (SELECT 1 FROM pg_type ty JOIN pg_depend td ON td.objid = ty.typrelid
                                       WHERE ty.oid = t.oid AND td.classid = 'pg_class'::regclass
                                         AND td.refobjid = e.oid AND td.deptype = 'e'))
        OR EXISTS (SELECT 1 FROM pg_type ty WHERE ty.oid = ANY (p.proargtypes::oid[] || p.prorettype)
                    AND ty.typtype = 'p' AND ty.oid NOT IN ('void'::regtype, 'record'::regtype))
        OR NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, credit_ledger, pg_temp'], false))
 ORDER BY 1;
SELECT count(*) > 20 AS many_definer_functions_checked
  FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
 WHERE p.prosecdef;
-- the usage trigger is an invoker's function
SELECT prosecdef, proconfig FROM pg_proc WHERE oid = 'credit_usage_trigger()'::regprocedure;

SELECT * FROM credit_verify();
DROP SCHEMA appz CASCADE;
DROP EXTENSION credit_ledger;
DROP ROLE cl_sec_esc;
DROP ROLE cl_sec_app;
DROP ROLE cl_sec_noexec;
