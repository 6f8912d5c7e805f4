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

-- credit_wallet and credit_authorization raise 42704 for an unknown wallet or id, as every other
-- function does (until 0.8.0 they returned one row of NULLs). Same signatures: replaced in place.
CREATE OR REPLACE FUNCTION @extschema@.credit_wallet(wallet text) RETURNS @extschema@.credit_wallet
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE r @extschema@.credit_wallet;
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_wallet.wallet, NULL);
    SELECT w.wallet, p.wallet, w.rate_card, w.overdraft_limit, w.low_balance_threshold,
           w.spend_cap, w.pool_limit, w.period, w.frozen, w.metadata, w.created_at
      INTO r
      FROM credit_ledger.wallets w LEFT JOIN credit_ledger.wallets p ON p.id = w.parent_id
     WHERE w.wallet = credit_wallet.wallet;
    -- an unknown wallet is an error, as everywhere else (until 0.8.0: a row of NULLs)
    IF NOT FOUND THEN
        RAISE EXCEPTION 'wallet "%" does not exist', credit_wallet.wallet USING ERRCODE = '42704',
            HINT = 'create it with credit_wallet_create()';
    END IF;
    RETURN r;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.credit_authorization(authorization_id bigint) RETURNS @extschema@.credit_authorization
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE r @extschema@.credit_authorization;
BEGIN
    SELECT a.id, a.status <> 'declined', a.reason, coalesce(a.captured, a.cost),
           a.asset, a.balance_after, w.wallet, a.kind, a.status, a.action, a.variant, a.quantity,
           a.rate_id, a.vendor_cost, a.captured, a.refunded, a.expires_at, a.idempotency_key,
           a.created_at
      INTO r
      FROM credit_ledger.authorizations a JOIN credit_ledger.wallets w ON w.id = a.wallet_id
     WHERE a.id = credit_authorization.authorization_id;
    -- an unknown id is an error, as for a capture or refund (until 0.8.0: a row of NULLs)
    IF NOT FOUND THEN
        RAISE EXCEPTION 'authorization % does not exist', credit_authorization.authorization_id
            USING ERRCODE = '42704';
    END IF;
    RETURN r;
END $$;
