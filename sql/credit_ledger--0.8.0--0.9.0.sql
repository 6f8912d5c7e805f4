-- credit_ledger 0.8.0 -> 0.9.0 (frozen once released).
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- credit_quote gains `degrade` (the first affordable variant of the fallback chain, as a
-- degrading call gets it) and the result column `priced_variant`. A function whose parameters
-- and result change cannot change in place: it is dropped and created again, and the EXECUTE
-- privileges granted on the old one are granted on the new one (an application role keeps
-- what it had; nothing is granted to PUBLIC).
SELECT pg_catalog.set_config('credit_ledger_upgrade.acl', coalesce((
    SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
               'grantee', a.grantee::pg_catalog.regrole::text, 'grantable', a.is_grantable))::text
      FROM pg_catalog.pg_proc p
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid = '@extschema@.credit_quote(text, text, numeric, text)'::pg_catalog.regprocedure
       AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE'), '[]'), true);
DROP FUNCTION @extschema@.credit_quote(text, text, numeric, text);

CREATE FUNCTION @extschema@."credit_quote"(
	"wallet" TEXT, /* Option < & str > */
	"action" TEXT, /* Option < & str > */
	"quantity" NUMERIC DEFAULT 1, /* Option < AnyNumeric > */
	"variant" TEXT DEFAULT NULL, /* Option < & str > */
	"degrade" bool DEFAULT false /* Option < bool > */
) RETURNS TABLE (
	"cost" NUMERIC,  /* AnyNumeric */
	"asset" TEXT,  /* String */
	"spendable" NUMERIC,  /* AnyNumeric */
	"approved" bool,  /* bool */
	"reason" TEXT,  /* Option < String > */
	"rate_id" bigint,  /* i64 */
	"priced_variant" TEXT  /* Option < String > */
)
STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_quote_v9_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_quote(text, text, numeric, text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_quote(text, text, numeric, text, boolean) IS 'price an action for a wallet: cost, spendable, whether it would be approved; degrade: the variant a degrading call would get; no side effects';

DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT * FROM pg_catalog.json_to_recordset(
                 pg_catalog.current_setting('credit_ledger_upgrade.acl')::pg_catalog.json)
             AS x(grantee text, grantable boolean) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.credit_quote(text, text, numeric, text, boolean) TO %s%s',
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;
