-- credit_ledger 0.12.0 -> 0.13.0 (frozen once released).
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- The tenant argument of credit_authorize and credit_hold defaults to a VOLATILE function that
-- returns NULL instead of the NULL constant (issue 20): Citus 13.2 hashes a delegated function's
-- constant distribution argument without checking for NULL (a segmentation fault of the backend,
-- citusdata/citus#7242) and does not delegate a call whose arguments hold a volatile function,
-- so on a distributed ledger a call without tenant runs where it was sent and looks its tenant
-- up. Nothing else changes: the functions keep their oids, grants, comments and Citus's
-- registration.
CREATE FUNCTION credit_ledger._tenant_unset() RETURNS text VOLATILE PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'tenant_unset_wrapper';
-- part of every caller's query (the default is evaluated there): executable by anyone
GRANT EXECUTE ON FUNCTION credit_ledger._tenant_unset() TO PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@."credit_authorize"(
	"wallet" TEXT,
	"action" TEXT,
	"quantity" NUMERIC DEFAULT 1,
	"variant" TEXT DEFAULT NULL,
	"idempotency_key" TEXT DEFAULT NULL,
	"metadata" jsonb DEFAULT NULL,
	"run" bigint DEFAULT NULL,
	"degrade" bool DEFAULT false,
	"tenant" TEXT DEFAULT credit_ledger._tenant_unset()
) RETURNS @extschema@.credit_authorization
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'credit_authorize_v12_wrapper';

CREATE OR REPLACE FUNCTION @extschema@."credit_hold"(
	"wallet" TEXT,
	"action" TEXT,
	"quantity" NUMERIC DEFAULT 1,
	"variant" TEXT DEFAULT NULL,
	"idempotency_key" TEXT DEFAULT NULL,
	"metadata" jsonb DEFAULT NULL,
	"ttl" interval DEFAULT '10 minutes',
	"run" bigint DEFAULT NULL,
	"degrade" bool DEFAULT false,
	"tenant" TEXT DEFAULT credit_ledger._tenant_unset()
) RETURNS @extschema@.credit_authorization
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'credit_hold_v12_wrapper';

-- credit_capture, credit_release, credit_refund, credit_quote and credit_balance take tenant =>
-- text too (a new last parameter, default as above: a Citus cluster delegates a call that names
-- it to the tenant's worker, and credit_distribute() registers them). Each is dropped and created
-- again, and the EXECUTE privileges granted on the old one are granted on the new one (at the
-- end of this script, once credit_balance is created again below).
SELECT pg_catalog.set_config('credit_ledger_upgrade.acl', coalesce((
    SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
               'name', p.proname, 'grantee', a.grantee::pg_catalog.regrole::text, 'grantable', a.is_grantable))::text
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE n.nspname = '@extschema@'
       AND p.proname IN ('credit_capture', 'credit_release', 'credit_refund', 'credit_quote', 'credit_balance')
       AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE'), '[]'), true);
DROP FUNCTION @extschema@.credit_capture(bigint, numeric, text, jsonb);
DROP FUNCTION @extschema@.credit_release(bigint, text, jsonb);
DROP FUNCTION @extschema@.credit_refund(bigint, numeric, text, text, jsonb);
DROP FUNCTION @extschema@.credit_quote(text, text, numeric, text, boolean);
DROP FUNCTION @extschema@.credit_balance(text, text, timestamptz);

CREATE FUNCTION @extschema@."credit_capture"(
	"authorization_id" bigint,
	"quantity" NUMERIC DEFAULT NULL,
	"idempotency_key" TEXT DEFAULT NULL,
	"metadata" jsonb DEFAULT NULL,
	"tenant" TEXT DEFAULT credit_ledger._tenant_unset()
) RETURNS @extschema@.credit_authorization
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'credit_capture_v13_wrapper';;

CREATE FUNCTION @extschema@."credit_release"(
	"authorization_id" bigint,
	"idempotency_key" TEXT DEFAULT NULL,
	"metadata" jsonb DEFAULT NULL,
	"tenant" TEXT DEFAULT credit_ledger._tenant_unset()
) RETURNS @extschema@.credit_authorization
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'credit_release_v13_wrapper';;

CREATE FUNCTION @extschema@."credit_refund"(
	"authorization_id" bigint,
	"amount" NUMERIC DEFAULT NULL,
	"reason" TEXT DEFAULT NULL,
	"idempotency_key" TEXT DEFAULT NULL,
	"metadata" jsonb DEFAULT NULL,
	"tenant" TEXT DEFAULT credit_ledger._tenant_unset()
) RETURNS TABLE (
	"refund_id" bigint,
	"authorization_id" bigint,
	"amount" NUMERIC,
	"refunded_total" NUMERIC,
	"balance" NUMERIC
)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'credit_refund_v13_wrapper';;

CREATE FUNCTION @extschema@."credit_quote"(
	"wallet" TEXT,
	"action" TEXT,
	"quantity" NUMERIC DEFAULT 1,
	"variant" TEXT DEFAULT NULL,
	"degrade" bool DEFAULT false,
	"tenant" TEXT DEFAULT credit_ledger._tenant_unset()
) RETURNS TABLE (
	"cost" NUMERIC,
	"asset" TEXT,
	"spendable" NUMERIC,
	"approved" bool,
	"reason" TEXT,
	"rate_id" bigint,
	"priced_variant" TEXT
)
STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'credit_quote_v13_wrapper';;


-- The read functions name the wallet's tenant in every query (issue 20): on a ledger Citus
-- distributes each then reads the tenant's shard alone, and every join between ledger tables is
-- on the tenant too (Citus joins distributed tables only on their distribution column). The
-- tenant of a wallet key comes from credit_ledger.wallet_keys (_wallet_tenant); a wallet's
-- balance from _balance_in, one routed query per part (Citus plans no SQL function with
-- parameters, which credit_ledger._balance is; it stays, for the statements that use it).
-- credit_authorization_history becomes PL/pgSQL for the same reason; credit_verify() joins on
-- the tenant where both rows are one tenant's and reads cross-tenant references whole first.
-- Results are unchanged.

CREATE FUNCTION credit_ledger._wallet_tenant(wallet text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN (SELECT k.tenant FROM credit_ledger.wallet_keys k WHERE k.wallet = _wallet_tenant.wallet);
END $$;

CREATE FUNCTION credit_ledger._balance_in(tenant text, wallet_id bigint, asset text)
RETURNS numeric LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    own numeric;
    lapsed numeric;
    debt numeric;
BEGIN
    SELECT sum(g.remaining - g.held) INTO own
      FROM credit_ledger.grants g
     WHERE g.tenant = _balance_in.tenant AND g.wallet_id = _balance_in.wallet_id
       AND g.asset = _balance_in.asset AND g.live
       AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now());
    -- held by holds whose ttl has passed but that are not finalized yet: no longer reserved
    SELECT sum(j.held) INTO lapsed
      FROM credit_ledger.authorizations a
      JOIN credit_ledger.journal j ON j.authorization_id = a.id AND j.tenant = a.tenant
      JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
     WHERE a.tenant = _balance_in.tenant AND a.status = 'held' AND a.expires_at <= now()
       AND g.wallet_id = _balance_in.wallet_id AND g.asset = _balance_in.asset
       AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now());
    SELECT s.debt INTO debt FROM credit_ledger.wallet_assets s
     WHERE s.tenant = _balance_in.tenant AND s.wallet_id = _balance_in.wallet_id AND s.asset = _balance_in.asset;
    RETURN coalesce(own, 0) + coalesce(lapsed, 0) - coalesce(debt, 0);
END $$;

REVOKE ALL ON FUNCTION credit_ledger._wallet_tenant(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_ledger._balance_in(text, bigint, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.credit_wallet(wallet text) RETURNS @extschema@.credit_wallet
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    r @extschema@.credit_wallet;
    t text := credit_ledger._wallet_tenant(credit_wallet.wallet);
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_wallet.wallet, NULL);
    -- every read names the wallet's tenant (since 0.13.0: on Citus, its shard alone)
    SELECT w.wallet, p.wallet, w.rate_card, w.overdraft_limit, w.low_balance_threshold,
           w.spend_cap, w.pool_limit, w.period, w.frozen, w.metadata, w.created_at
      INTO r
      FROM credit_ledger.wallets w
      LEFT JOIN credit_ledger.wallets p ON p.id = w.parent_id AND p.tenant = w.tenant
     WHERE w.wallet = credit_wallet.wallet AND w.tenant = t;
    -- an unknown wallet is an error, as everywhere else (until 0.8.0: a row of NULLs)
    IF NOT FOUND THEN
        RAISE EXCEPTION 'wallet "%" does not exist', credit_wallet.wallet USING ERRCODE = '42704',
            HINT = 'create it with credit_wallet_create()';
    END IF;
    RETURN r;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.credit_grants(wallet text, asset text DEFAULT NULL) RETURNS SETOF @extschema@.credit_grant
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE t text := credit_ledger._wallet_tenant(credit_grants.wallet);
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_grants.wallet, credit_grants.asset);
    IF t IS NULL THEN
        RAISE EXCEPTION 'wallet "%" does not exist', credit_grants.wallet USING ERRCODE = '42704',
            HINT = 'create it with credit_wallet_create()';
    END IF;
    -- a grant of a wallet with lanes shows the credits of all its slices (since 0.4.0)
    RETURN QUERY
    SELECT g.id, w.wallet, g.asset, g.category, g.priority, g.amount,
           g.remaining + coalesce(f.remaining, 0), g.held + coalesce(f.held, 0),
           g.effective_at, g.expires_at, g.unit_price, g.metadata, g.created_at
      FROM credit_ledger.grants g JOIN credit_ledger.wallets w ON w.id = g.wallet_id AND w.tenant = g.tenant
      LEFT JOIN LATERAL (SELECT sum(x.remaining) AS remaining, sum(x.held) AS held
                           FROM credit_ledger.grants x WHERE x.home_id = g.id AND x.tenant = g.tenant) f ON true
     WHERE w.wallet = credit_grants.wallet AND w.tenant = t AND g.tenant = t
       AND (credit_grants.asset IS NULL OR g.asset = credit_grants.asset)
       AND g.home_id IS NULL
     ORDER BY g.asset, g.priority, g.expires_at NULLS LAST, g.id;
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
      FROM credit_ledger.authorizations a
      JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
     WHERE a.id = credit_authorization.authorization_id;
    -- an unknown id is an error, as for a capture or refund (until 0.8.0: a row of NULLs)
    IF NOT FOUND THEN
        RAISE EXCEPTION 'authorization % does not exist', credit_authorization.authorization_id
            USING ERRCODE = '42704';
    END IF;
    RETURN r;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.credit_authorization_history(authorization_id bigint)
RETURNS TABLE (entry_id bigint, at timestamptz, kind text, wallet text, grant_id bigint,
               category text, amount numeric, held numeric, note text,
               actor text, db_user text, db_session_user text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
BEGIN
    -- who (since 0.6.0): the application's actor, the caller's current_user and session_user
    -- (PL/pgSQL since 0.13.0: Citus plans no SQL function with parameters)
    RETURN QUERY
    SELECT j.id, j.at, j.kind, w.wallet, j.grant_id, g.category, j.amount, j.held, j.note,
           j.actor, j.db_user, j.db_session_user
      FROM credit_ledger.journal j
      JOIN credit_ledger.wallets w ON w.id = j.wallet_id AND w.tenant = j.tenant
      LEFT JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
     WHERE j.authorization_id = credit_authorization_history.authorization_id
     ORDER BY j.id;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.credit_balance(wallet text, asset text DEFAULT 'credits', as_of timestamptz DEFAULT NULL,
                                           tenant text DEFAULT credit_ledger._tenant_unset())
RETURNS numeric
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    wid bigint;
    -- the caller's tenant (since 0.13.0: a Citus cluster delegates a call that names it to the
    -- tenant's worker), else the wallet's
    t text := coalesce(credit_balance.tenant, credit_ledger._wallet_tenant(credit_balance.wallet));
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_balance.wallet, credit_balance.asset);
    SELECT w.id INTO wid FROM credit_ledger.wallets w WHERE w.wallet = credit_balance.wallet AND w.tenant = t;
    IF wid IS NULL THEN
        RAISE EXCEPTION 'wallet "%" does not exist', wallet USING ERRCODE = '42704',
            HINT = 'create it with credit_wallet_create()';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM credit_ledger.assets a WHERE a.asset = credit_balance.asset) THEN
        RAISE EXCEPTION 'asset "%" does not exist', asset USING ERRCODE = '42704';
    END IF;
    IF as_of IS NULL THEN
        RETURN credit_ledger._balance_in(t, wid, asset);
    END IF;
    -- as of a past instant, from the journal alone. A grant's expiry and rollover entries take
    -- effect at its expires_at, which is after as_of for a grant in effect then, whenever the
    -- sweep or tick wrote them (credit_tick(as_of) in the future, or a late scheduler); a
    -- grant's own entry takes effect at its effective_at, so an allowance period that a late
    -- tick granted afterwards shows in the balances of that period
    RETURN coalesce((
        SELECT sum(j.amount) - coalesce(sum(j.held) FILTER (WHERE a.expires_at IS NULL OR a.expires_at > as_of), 0)
          FROM credit_ledger.journal j
          JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
          LEFT JOIN credit_ledger.authorizations a ON a.id = j.authorization_id AND a.tenant = j.tenant
         WHERE j.tenant = t AND g.wallet_id = wid AND j.wallet_id = wid AND g.asset = credit_balance.asset
           AND (j.at <= as_of OR j.kind = 'grant')
           -- the sweep's expiry and rollover entries take effect at expires_at; those of a
           -- wallet close (since 0.6.0: they name the operation) when they are written
           AND (j.kind NOT IN ('expiry', 'rollover') OR j.operation_id IS NOT NULL)
           AND g.effective_at <= as_of AND (g.expires_at IS NULL OR g.expires_at > as_of)), 0)
     + coalesce((
        SELECT sum(j.amount) FROM credit_ledger.journal j
         WHERE j.tenant = t AND j.wallet_id = wid AND j.grant_id IS NULL AND j.asset = credit_balance.asset
           AND j.at <= as_of), 0);
END $$;

CREATE OR REPLACE FUNCTION @extschema@.credit_balance_detail(wallet text, asset text DEFAULT 'credits',
                                      expiring_within interval DEFAULT '7 days')
RETURNS TABLE (balance numeric, available numeric, held numeric,
               debt numeric, overdraft_room numeric, pool_access numeric, spendable numeric,
               expiring_soon numeric, by_category jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    w credit_ledger.wallets%ROWTYPE;
    s credit_ledger.wallet_assets%ROWTYPE;
    pool numeric := 0;
    pool_room numeric;
    t text := credit_ledger._wallet_tenant(credit_balance_detail.wallet);
    bal numeric;
    drawn numeric;
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_balance_detail.wallet, credit_balance_detail.asset);
    SELECT * INTO w FROM credit_ledger.wallets x WHERE x.wallet = credit_balance_detail.wallet AND x.tenant = t;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'wallet "%" does not exist', credit_balance_detail.wallet USING ERRCODE = '42704',
            HINT = 'create it with credit_wallet_create()';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM credit_ledger.assets a WHERE a.asset = credit_balance_detail.asset) THEN
        RAISE EXCEPTION 'asset "%" does not exist', credit_balance_detail.asset USING ERRCODE = '42704';
    END IF;
    SELECT * INTO s FROM credit_ledger.wallet_assets x
     WHERE x.tenant = t AND x.wallet_id = w.id AND x.asset = credit_balance_detail.asset;
    IF w.parent_id IS NOT NULL THEN
        pool := credit_ledger._balance_in(t, w.parent_id, credit_balance_detail.asset);
        IF w.pool_limit IS NOT NULL THEN
            -- the counter and what its spends on the pool's lanes drew that it does not hold yet
            -- (member_rooms, since 0.11.0)
            SELECT sum(r.spent) INTO drawn FROM credit_ledger.member_rooms r
             WHERE r.tenant = t AND r.wallet_id = w.id AND r.asset = credit_balance_detail.asset
               AND r.period = s.period_start;
            pool_room := w.pool_limit - CASE WHEN s.period_start = credit_ledger._period_start(w.period, w.period_anchor, now())
                                           THEN s.period_pool_drawn + coalesce(drawn, 0)
                                           ELSE 0 END;
            pool := least(pool, greatest(pool_room, 0));
        END IF;
        pool := greatest(pool, 0);
    END IF;
    bal := credit_ledger._balance_in(t, w.id, credit_balance_detail.asset);
    RETURN QUERY
    WITH g AS (
        SELECT x.category, x.remaining, x.held, x.expires_at
          FROM credit_ledger.grants x
         WHERE x.tenant = t AND x.wallet_id = w.id AND x.asset = credit_balance_detail.asset AND x.live
           AND x.effective_at <= now() AND (x.expires_at IS NULL OR x.expires_at > now())
    ), sums AS (
        SELECT bal,
               coalesce(sum(g.remaining), 0) AS rem,
               coalesce(sum(g.remaining) FILTER (WHERE g.expires_at <= now() + expiring_within), 0) AS soon,
               coalesce((SELECT jsonb_object_agg(c.category, c.amt ORDER BY c.category)
                           FROM (SELECT g2.category, sum(g2.remaining - g2.held) AS amt FROM g g2 GROUP BY g2.category) c), '{}'::jsonb) AS cats
          FROM g
    )
    SELECT x.bal,
           x.bal + coalesce(s.debt, 0),
           x.rem - x.bal - coalesce(s.debt, 0),
           coalesce(s.debt, 0),
           greatest(w.overdraft_limit - coalesce(s.debt, 0), 0),
           pool,
           x.bal + coalesce(s.debt, 0) + greatest(w.overdraft_limit - coalesce(s.debt, 0), 0) + pool,
           x.soon, x.cats
      FROM sums x;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.credit_verify()
RETURNS TABLE (check_name text, subject text, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp
SET jit = off AS $$
    -- Since 0.13.0 every join between ledger tables names the tenant where both rows are one
    -- wallet's (or a pool's and its member's), so that on a ledger Citus distributes each check
    -- runs on the shards; references that may cross tenants (a transfer's two wallets; a pool's
    -- entries naming the authorization of a member that has since joined another pool, its
    -- runs' slices of that pool's grants) are read whole first (a CTE, or a subquery with
    -- OFFSET 0: on Citus an intermediate result).
    WITH by_authorization AS MATERIALIZED (
        -- the entries of each authorization (a pool's and its member's, in any tenant)
        SELECT e.authorization_id, sum(e.held) AS held,
               sum(e.amount) FILTER (WHERE e.kind IN ('capture', 'overdraft')) AS captured,
               sum(e.amount) FILTER (WHERE e.kind IN ('debit', 'overdraft')) AS debited
          FROM credit_ledger.journal e WHERE e.authorization_id IS NOT NULL
         GROUP BY e.authorization_id
    )
    -- cached grant amounts equal the journal
    SELECT 'grant_matches_journal', 'grant ' || g.id,
           format('remaining %s held %s, journal says %s and %s', g.remaining, g.held, coalesce(j.amount, 0), coalesce(j.held, 0))
      FROM credit_ledger.grants g
      LEFT JOIN (SELECT grant_id, tenant, sum(amount) AS amount, sum(held) AS held
                   FROM credit_ledger.journal WHERE grant_id IS NOT NULL GROUP BY grant_id, tenant) j
        ON j.grant_id = g.id AND j.tenant = g.tenant
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
      FROM credit_ledger.grants g LEFT JOIN credit_ledger.journal j ON j.grant_id = g.id AND j.tenant = g.tenant
     WHERE g.home_id IS NULL AND g.source_id IS NULL
     GROUP BY g.id, g.tenant, g.amount, g.transfer_of
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
      FROM credit_ledger.grants g
      LEFT JOIN (SELECT x.id, x.asset, x.category, x.priority, x.expires_at, x.unit_price
                   FROM credit_ledger.grants x
                  WHERE x.id IN (SELECT y.transfer_of FROM credit_ledger.grants y WHERE y.transfer_of IS NOT NULL)
                 OFFSET 0) s ON s.id = g.transfer_of
     WHERE g.transfer_of IS NOT NULL
       AND (s.id IS NULL OR s.asset <> g.asset OR s.category <> g.category OR s.priority <> g.priority
            OR s.expires_at IS DISTINCT FROM g.expires_at OR s.unit_price <> g.unit_price)
    UNION ALL
    -- an operation did what it says: a void voided `done` (no more than requested), an
    -- adjustment moved `amount`, a transfer moved `done`, all through entries that name it
    SELECT 'operation_matches_journal', 'operation ' || o.id,
           format('%s amount %s done %s pending %s; journal %s', o.kind, o.amount, o.done, o.pending, o.moved)
      FROM (SELECT o.id, o.tenant, o.kind, o.amount, o.done, o.pending, o.open, o.grant_id,
                   coalesce(sum(e.made), 0) - coalesce(sum(e.sent) FILTER (WHERE e.wallet_id = o.wallet_id), 0) AS moved
              FROM credit_ledger.operations o
              -- (a transfer's entries are in two tenants: summed per operation and wallet first)
              LEFT JOIN (SELECT e.operation_id, e.wallet_id,
                                sum(e.amount) FILTER (WHERE e.kind IN ('adjustment', 'grant')) AS made,
                                sum(e.amount) FILTER (WHERE e.kind = 'transfer') AS sent
                           FROM credit_ledger.journal e WHERE e.operation_id IS NOT NULL
                          GROUP BY e.operation_id, e.wallet_id) e ON e.operation_id = o.id
             GROUP BY o.id, o.tenant) o
      -- what a void's grant still holds (its home row and slices)
      LEFT JOIN (SELECT coalesce(g.home_id, g.id) AS grant_id, g.tenant, sum(g.held) AS held
                   FROM credit_ledger.grants g GROUP BY 1, 2) h ON h.grant_id = o.grant_id AND h.tenant = o.tenant
     WHERE (o.kind = 'void' AND (-o.moved <> o.done OR o.done + o.pending > coalesce(o.amount, o.done + o.pending) OR o.pending < 0
                                 OR (o.open AND o.amount IS NOT NULL AND o.pending > coalesce(h.held, 0))))
        OR (o.kind = 'adjust' AND (o.moved <> o.amount OR o.done <> o.amount))
        OR (o.kind = 'transfer' AND (o.moved <> o.done OR o.done <> o.amount))
    UNION ALL
    -- a closed wallet keeps no credit and no open hold or run
    SELECT 'closed_wallet_empty', 'wallet ' || w.wallet,
           format('closed at %s but it keeps %s credits, %s open holds, %s open runs', w.closed_at,
                  (SELECT sum(g.remaining) FROM credit_ledger.grants g WHERE g.wallet_id = w.id AND g.tenant = w.tenant),
                  (SELECT count(*) FROM credit_ledger.authorizations a
                    WHERE a.wallet_id = w.id AND a.tenant = w.tenant AND a.status = 'held'),
                  (SELECT count(*) FROM credit_ledger.runs r WHERE r.wallet_id = w.id AND r.tenant = w.tenant AND r.status = 'open'))
      FROM credit_ledger.wallets w
     WHERE w.closed_at IS NOT NULL
       AND (EXISTS (SELECT 1 FROM credit_ledger.grants g WHERE g.wallet_id = w.id AND g.tenant = w.tenant AND g.remaining > 0)
            OR EXISTS (SELECT 1 FROM credit_ledger.authorizations a
                        WHERE a.wallet_id = w.id AND a.tenant = w.tenant AND a.status = 'held')
            OR EXISTS (SELECT 1 FROM credit_ledger.runs r WHERE r.wallet_id = w.id AND r.tenant = w.tenant AND r.status = 'open'))
    UNION ALL
    -- a slice (lanes, since 0.4.0) is a row of a grant of its wallet and asset, with its amount
    SELECT 'slice_matches_grant', 'grant ' || s.id,
           format('slice of grant %s in lane %s: wallet_id %s asset %s amount %s; the grant: wallet_id %s asset %s amount %s',
                  s.home_id, s.lane, s.wallet_id, s.asset, s.amount, h.wallet_id, h.asset, h.amount)
      FROM credit_ledger.grants s LEFT JOIN credit_ledger.grants h ON h.id = s.home_id AND h.tenant = s.tenant
     WHERE (s.home_id IS NOT NULL OR s.lane IS NOT NULL)
       AND (h.id IS NULL OR h.home_id IS NOT NULL OR s.lane IS NULL OR s.lane < 0
            OR s.wallet_id <> h.wallet_id OR s.asset <> h.asset OR s.amount <> h.amount)
    UNION ALL
    -- moves between the rows of one grant ('lane' entries) create and destroy nothing
    SELECT 'lane_moves_balance', 'grant ' || coalesce(g.home_id, g.id),
           format('lane entries total %s', sum(j.amount))
      FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
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
      FROM (SELECT x.wallet_id, x.tenant, x.asset, x.cap_period AS cur,
                   sum(x.cap_room) AS room, sum(x.cap_spent) AS spent
              FROM credit_ledger.lanes x
              JOIN credit_ledger.wallets v ON v.id = x.wallet_id AND v.tenant = x.tenant
             WHERE x.cap_period = credit_ledger._period_start(v.period, v.period_anchor, now())
             GROUP BY x.wallet_id, x.tenant, x.asset, x.cap_period) l
      JOIN credit_ledger.wallets w ON w.id = l.wallet_id AND w.tenant = l.tenant
      LEFT JOIN credit_ledger.wallet_assets s ON s.wallet_id = l.wallet_id AND s.tenant = l.tenant AND s.asset = l.asset
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
      FROM (SELECT x.wallet_id, x.tenant, x.asset, x.period AS cur, sum(x.room) AS room, sum(x.spent) AS spent
              FROM credit_ledger.member_rooms x
              JOIN credit_ledger.wallets v ON v.id = x.wallet_id AND v.tenant = x.tenant
             WHERE x.period = credit_ledger._period_start(v.period, v.period_anchor, now())
             GROUP BY x.wallet_id, x.tenant, x.asset, x.period) r
      JOIN credit_ledger.wallets w ON w.id = r.wallet_id AND w.tenant = r.tenant
      LEFT JOIN credit_ledger.wallet_assets s ON s.wallet_id = r.wallet_id AND s.tenant = r.tenant AND s.asset = r.asset
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
      LEFT JOIN (SELECT x.id, x.wallet_id, x.asset FROM credit_ledger.grants x
                  WHERE x.id IN (SELECT y.source_id FROM credit_ledger.grants y) OFFSET 0) s ON s.id = g.source_id
      LEFT JOIN credit_ledger.runs r ON r.run_wallet_id = g.wallet_id AND r.tenant = g.tenant
      LEFT JOIN credit_ledger.wallets o ON o.id = r.wallet_id AND o.tenant = g.tenant
      LEFT JOIN credit_ledger.runs p ON p.id = r.parent_run AND p.tenant = g.tenant
     WHERE g.source_id IS NOT NULL
       AND (s.id IS NULL OR r.id IS NULL OR s.asset <> g.asset OR g.asset <> r.asset
            OR NOT (s.wallet_id = r.wallet_id OR s.wallet_id = o.parent_id OR s.wallet_id = p.run_wallet_id))
    UNION ALL
    -- a run that was funded has a wallet of its own, and a declined one has none
    SELECT 'run_state', 'run ' || r.id,
           format('status %s run wallet %s', r.status, r.run_wallet_id)
      FROM credit_ledger.runs r
     WHERE (r.status = 'declined') <> (r.run_wallet_id IS NULL)
        OR (r.run_wallet_id IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM credit_ledger.wallets w
                WHERE w.id = r.run_wallet_id AND w.tenant = r.tenant AND w.run_of = r.wallet_id))
    UNION ALL
    -- a closed run keeps nothing: every credit left (and every later refund) went back
    SELECT 'run_closed_empty', 'run ' || r.id,
           format('status %s but its slices keep %s', r.status, sum(g.remaining))
      FROM credit_ledger.runs r JOIN credit_ledger.grants g ON g.wallet_id = r.run_wallet_id AND g.tenant = r.tenant
     WHERE r.status IN ('closed', 'expired')
     GROUP BY r.id, r.tenant, r.status
    HAVING sum(g.remaining) <> 0
    UNION ALL
    -- an entry of a grant carries the grant's wallet (balances and reports find a grant's
    -- entries through its wallet: the journal has no index on grant_id)
    SELECT 'journal_wallet_matches_grant', 'journal entry ' || j.id,
           format('wallet_id %s but grant %s belongs to wallet %s', j.wallet_id, g.id, g.wallet_id)
      FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
     WHERE j.wallet_id <> g.wallet_id
    UNION ALL
    -- overdraft debt equals its journal line
    SELECT 'debt_matches_journal', 'wallet ' || w.wallet || ' ' || s.asset,
           format('debt %s, journal says %s', s.debt, coalesce(-d.amount, 0))
      FROM credit_ledger.wallet_assets s JOIN credit_ledger.wallets w ON w.id = s.wallet_id AND w.tenant = s.tenant
      LEFT JOIN (SELECT j.wallet_id, j.tenant, j.asset, sum(j.amount) AS amount FROM credit_ledger.journal j
                  WHERE j.grant_id IS NULL GROUP BY j.wallet_id, j.tenant, j.asset) d
        ON d.wallet_id = s.wallet_id AND d.tenant = s.tenant AND d.asset = s.asset
     WHERE s.debt <> coalesce(-d.amount, 0)
    UNION ALL
    -- per asset: what the grants say equals what the journal says
    SELECT 'asset_conservation', 'asset ' || x.asset, format('grants remaining %s, journal %s', x.rem, x.jr)
      FROM (SELECT a.asset, coalesce(g.rem, 0) AS rem, coalesce(j.jr, 0) AS jr
              FROM credit_ledger.assets a
              LEFT JOIN (SELECT g.asset, sum(g.remaining) AS rem FROM credit_ledger.grants g GROUP BY g.asset) g
                ON g.asset = a.asset
              LEFT JOIN (SELECT j.asset, sum(j.amount) AS jr FROM credit_ledger.journal j
                          WHERE j.grant_id IS NOT NULL GROUP BY j.asset) j ON j.asset = a.asset) x
     WHERE x.rem <> x.jr
    UNION ALL
    -- holds: an open hold reserves exactly its cost; a closed hold reserves nothing;
    -- a captured hold spent exactly `captured`
    SELECT 'hold_consistency', 'authorization ' || a.id,
           format('status %s cost %s captured %s; journal held %s spent %s', a.status, a.cost, a.captured,
                  coalesce(j.held, 0), coalesce(-j.captured, 0))
      FROM credit_ledger.authorizations a LEFT JOIN by_authorization j ON j.authorization_id = a.id
     WHERE a.kind = 'hold'
       AND ((a.status = 'held' AND coalesce(j.held, 0) <> CASE WHEN a.fair_use THEN 0 ELSE a.cost END)
            OR (a.status <> 'held' AND coalesce(j.held, 0) <> 0)
            OR (a.status = 'captured' AND coalesce(-j.captured, 0) <> CASE WHEN a.fair_use THEN 0 ELSE a.captured END)
            OR (a.status IN ('released', 'expired', 'declined') AND coalesce(j.captured, 0) <> 0))
    UNION ALL
    -- debits: an approved debit took exactly its cost; a declined one, or one fair use paid
    -- (since 0.8.0), took nothing
    SELECT 'debit_consistency', 'authorization ' || a.id,
           format('status %s cost %s; journal debited %s', a.status, a.cost, coalesce(-j.debited, 0))
      FROM credit_ledger.authorizations a LEFT JOIN by_authorization j ON j.authorization_id = a.id
     WHERE a.kind = 'debit'
       AND coalesce(-j.debited, 0) <> CASE WHEN a.status = 'approved' AND NOT a.fair_use THEN a.cost ELSE 0 END
    UNION ALL
    -- volume tiers (since 0.8.0): a counter holds the units of the tiered calls it priced (a
    -- run's calls count for the wallet that opened it): approved debits in the period they were
    -- made in, captured holds in the period they were captured in
    SELECT 'tier_matches_calls', 'wallet ' || w.wallet || ' ' || t.action || ' ' || t.variant || ' ' || t.period_start,
           format('counted %s, calls %s', t.units, x.units)
      FROM credit_ledger.tier_usage t
      JOIN credit_ledger.wallets w ON w.id = t.wallet_id AND w.tenant = t.tenant
     CROSS JOIN LATERAL (
        SELECT coalesce(sum(CASE WHEN a.kind = 'hold' THEN a.captured_quantity ELSE a.quantity END), 0) AS units
          FROM credit_ledger.authorizations a
          JOIN credit_ledger.wallets s ON s.id = a.wallet_id AND s.tenant = a.tenant
          JOIN credit_ledger.rates r ON r.id = a.rate_id
         WHERE a.tenant = t.tenant AND coalesce(s.run_of, s.id) = t.wallet_id AND a.action = t.action
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
      JOIN credit_ledger.wallets w ON w.id = f.wallet_id AND w.tenant = f.tenant
     CROSS JOIN LATERAL (
        SELECT coalesce(sum(CASE a.status WHEN 'captured' THEN a.captured WHEN 'released' THEN 0
                                          WHEN 'expired' THEN 0 ELSE a.cost END), 0) AS took
          FROM credit_ledger.authorizations a
         WHERE a.tenant = f.tenant AND a.wallet_id = f.wallet_id AND a.asset = f.asset AND a.fair_use
           AND a.status IN ('approved', 'held', 'captured')
           AND credit_ledger._period_start(w.period, w.period_anchor, a.created_at) = f.period_start) x
     WHERE f.used <> x.took
    UNION ALL
    -- references and vocabularies of the hot tables (they carry no FKs or CHECKs)
    SELECT 'journal_references', 'journal entry ' || j.id,
           format('wallet %s grant %s authorization %s member %s kind %s', j.wallet_id, j.grant_id,
                  j.authorization_id, j.member_id, j.kind)
      FROM credit_ledger.journal j
      -- (the wallet and grant are in the entry's tenant; its operation (a transfer's is the
      -- sender's), authorization and member may be in another)
      LEFT JOIN (SELECT x.id FROM credit_ledger.operations x OFFSET 0) o ON o.id = j.operation_id
      LEFT JOIN (SELECT x.id FROM credit_ledger.authorizations x OFFSET 0) a ON a.id = j.authorization_id
      LEFT JOIN (SELECT x.id FROM credit_ledger.wallets x OFFSET 0) m ON m.id = j.member_id
     WHERE NOT EXISTS (SELECT 1 FROM credit_ledger.wallets w WHERE w.id = j.wallet_id AND w.tenant = j.tenant)
        OR (j.grant_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit_ledger.grants g
                                                    WHERE g.id = j.grant_id AND g.tenant = j.tenant))
        OR (j.authorization_id IS NOT NULL AND a.id IS NULL)
        OR (j.member_id IS NOT NULL AND m.id IS NULL)
        OR j.kind NOT IN ('grant', 'debit', 'hold', 'capture', 'release', 'refund', 'expiry', 'rollover',
                          'adjustment', 'overdraft', 'settlement', 'lane', 'run', 'transfer')
        OR (j.operation_id IS NOT NULL AND o.id IS NULL)
    UNION ALL
    SELECT 'authorization_references', 'authorization ' || a.id,
           format('wallet %s rate %s kind %s status %s refunded %s', a.wallet_id, a.rate_id, a.kind, a.status, a.refunded)
      FROM credit_ledger.authorizations a
     WHERE NOT EXISTS (SELECT 1 FROM credit_ledger.wallets w WHERE w.id = a.wallet_id AND w.tenant = a.tenant)
        OR (a.rate_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit_ledger.rates r WHERE r.id = a.rate_id))
        OR a.kind NOT IN ('debit', 'hold')
        OR a.status NOT IN ('approved', 'declined', 'held', 'captured', 'released', 'expired')
        OR (a.kind = 'debit' AND a.status NOT IN ('approved', 'declined'))
        OR a.refunded < 0
    UNION ALL
    -- refunds: never more than was debited; the totals agree
    SELECT 'refund_consistency', 'authorization ' || a.id,
           format('refunded %s, refunds %s, debited %s', a.refunded,
                  coalesce((SELECT sum(r.amount) FROM credit_ledger.refunds r
                             WHERE r.authorization_id = a.id AND r.tenant = a.tenant), 0),
                  coalesce(a.captured, a.cost))
      FROM credit_ledger.authorizations a
     WHERE a.refunded <> coalesce((SELECT sum(r.amount) FROM credit_ledger.refunds r
                                    WHERE r.authorization_id = a.id AND r.tenant = a.tenant), 0)
        OR a.refunded > coalesce(a.captured, a.cost)
    UNION ALL
    -- tenants (since 0.12.0): a member is in its pool's tenant, a run's wallet in its opener's,
    -- and every row of a wallet carries the wallet's tenant
    SELECT 'tenant', 'wallet ' || w.wallet, format('tenant %s, but %s %s is in %s',
           w.tenant, CASE WHEN w.run_of IS NULL THEN 'its pool' ELSE 'its run''s opener' END, p.wallet, p.tenant)
      FROM credit_ledger.wallets w
      -- (these checks compare rows across tenants: the wallets are read whole first, OFFSET 0,
      -- which a Citus coordinator keeps as an intermediate result and joins every shard with)
      JOIN (SELECT v.id, v.wallet, v.tenant FROM credit_ledger.wallets v OFFSET 0) p
        ON p.id = coalesce(w.run_of, w.parent_id)
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
      JOIN (SELECT v.id, v.wallet, v.tenant FROM credit_ledger.wallets v OFFSET 0) w ON w.id = x.wallet_id
     WHERE x.tenant <> w.tenant
    UNION ALL
    -- every wallet key once, with its wallet's tenant (wallet_keys)
    SELECT 'tenant', 'wallet key ' || coalesce(w.wallet, k.wallet),
           format('wallet in tenant %s, key in %s', w.tenant, k.tenant)
      FROM (SELECT v.wallet, v.tenant FROM credit_ledger.wallets v OFFSET 0) w
      FULL JOIN credit_ledger.wallet_keys k ON k.wallet = w.wallet
     WHERE w.tenant IS DISTINCT FROM k.tenant
$$;

CREATE OR REPLACE FUNCTION @extschema@.credit_team_allocate(team text, amount_per_member numeric, pooled_share numeric,
                                     asset text DEFAULT 'credits', category text DEFAULT 'included',
                                     expires_at timestamptz DEFAULT NULL,
                                     unit_price numeric DEFAULT NULL,
                                     idempotency_key text DEFAULT NULL, metadata jsonb DEFAULT NULL)
RETURNS TABLE (wallet text, grant_id bigint, amount numeric)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    tid bigint;
    -- the team's tenant: every query names it (0.13.0: on Citus, the tenant's shard alone)
    tn text := credit_ledger._wallet_tenant(team);
    sc int;
    n int;
    m record;
    own numeric;
    given numeric := 0;
    g @extschema@.credit_grant;
    req jsonb;
    request jsonb := jsonb_build_object('amount_per_member', amount_per_member, 'pooled_share', pooled_share,
                                        'asset', asset, 'category', category, 'expires_at', expires_at,
                                        'unit_price', unit_price);
BEGIN
    IF team IS NULL OR team = '' THEN
        RAISE EXCEPTION 'team must not be null or empty' USING ERRCODE = '22023';
    END IF;
    IF length(team) > 255 THEN
        RAISE EXCEPTION 'team is longer than 255 characters' USING ERRCODE = '22001',
            DETAIL = format('team has %s characters', length(team));
    END IF;
    IF length(asset) > 255 THEN
        RAISE EXCEPTION 'asset is longer than 255 characters' USING ERRCODE = '22001',
            DETAIL = format('asset has %s characters', length(asset));
    END IF;
    IF length(category) > 255 THEN
        RAISE EXCEPTION 'category is longer than 255 characters' USING ERRCODE = '22001',
            DETAIL = format('category has %s characters', length(category));
    END IF;
    IF amount_per_member IS NULL OR amount_per_member <= 0 OR amount_per_member = 'NaN' OR amount_per_member = 'Infinity' THEN
        RAISE EXCEPTION 'amount_per_member must be a finite number greater than zero, got %', amount_per_member USING ERRCODE = '22023';
    END IF;
    IF pooled_share IS NULL OR pooled_share < 0 OR pooled_share > 1 OR pooled_share = 'NaN' THEN
        RAISE EXCEPTION 'pooled_share must be between 0 and 1, got %', pooled_share USING ERRCODE = '22023';
    END IF;
    IF idempotency_key = '' THEN
        RAISE EXCEPTION 'idempotency_key must not be empty' USING ERRCODE = '22023';
    END IF;
    IF length(idempotency_key) > 240 THEN
        RAISE EXCEPTION 'idempotency_key is longer than 240 characters' USING ERRCODE = '22001',
            DETAIL = format('idempotency_key has %s characters; the member and pool grants use the key with a suffix',
                            length(idempotency_key));
    END IF;
    IF octet_length(metadata::text) > 65536 THEN
        RAISE EXCEPTION 'metadata is longer than 65536 bytes as text' USING ERRCODE = '22001',
            DETAIL = format('metadata has %s bytes as text', octet_length(metadata::text));
    END IF;
    SELECT w.id INTO tid FROM credit_ledger.wallets w WHERE w.wallet = team AND w.tenant = tn;
    IF tid IS NULL THEN
        RAISE EXCEPTION 'wallet "%" does not exist', team USING ERRCODE = '42704';
    END IF;
    -- a retry returns the first allocation as it was (even if members joined since)
    IF idempotency_key IS NOT NULL THEN
        SELECT x.metadata -> 'allocation' INTO req FROM credit_ledger.grants x
         WHERE x.wallet_id = tid AND x.tenant = tn
           AND x.idempotency_key = credit_team_allocate.idempotency_key || ':pool';
        IF FOUND THEN
            IF req IS DISTINCT FROM request THEN
                RAISE EXCEPTION 'idempotency key "%" was already used with other arguments', idempotency_key
                    USING ERRCODE = '23505', HINT = 'use a new idempotency key for a different request';
            END IF;
            RETURN QUERY
            SELECT w.wallet, x.id, x.amount
              FROM credit_ledger.grants x JOIN credit_ledger.wallets w ON w.id = x.wallet_id AND w.tenant = x.tenant
             WHERE (w.id = tid OR w.parent_id = tid) AND w.tenant = tn
               AND (x.idempotency_key = credit_team_allocate.idempotency_key || ':pool'
                    OR x.idempotency_key = credit_team_allocate.idempotency_key || ':' || w.wallet)
             ORDER BY w.parent_id IS NULL, w.id;
            RETURN;
        END IF;
    END IF;
    SELECT a.scale INTO sc FROM credit_ledger.assets a WHERE a.asset = credit_team_allocate.asset;
    IF sc IS NULL THEN
        RAISE EXCEPTION 'asset "%" does not exist', asset USING ERRCODE = '42704';
    END IF;
    -- lock members first (id order), then the team: the order every debit uses
    PERFORM 1 FROM credit_ledger.wallets w WHERE w.parent_id = tid AND w.tenant = tn ORDER BY w.id FOR NO KEY UPDATE;
    PERFORM 1 FROM credit_ledger.wallets w WHERE w.id = tid AND w.tenant = tn FOR NO KEY UPDATE;
    SELECT count(*) INTO n FROM credit_ledger.wallets w WHERE w.parent_id = tid AND w.tenant = tn;
    IF n = 0 THEN
        RAISE EXCEPTION 'wallet "%" has no members', team USING ERRCODE = '55000',
            HINT = 'create members with credit_wallet_create(wallet => ..., parent => team)';
    END IF;
    IF length(idempotency_key) + 1 + (SELECT max(length(w.wallet)) FROM credit_ledger.wallets w WHERE w.parent_id = tid AND w.tenant = tn) > 255 THEN
        RAISE EXCEPTION 'idempotency_key is too long for the members of team "%"', team USING ERRCODE = '22001',
            DETAIL = format('a member grant''s key is idempotency_key || '':'' || member, at most 255 characters; the key has %s, the longest member name %s',
                            length(idempotency_key),
                            (SELECT max(length(w.wallet)) FROM credit_ledger.wallets w WHERE w.parent_id = tid AND w.tenant = tn));
    END IF;
    own := trunc((1 - pooled_share) * amount_per_member, sc);
    FOR m IN SELECT w.wallet FROM credit_ledger.wallets w WHERE w.parent_id = tid AND w.tenant = tn ORDER BY w.id LOOP
        IF own > 0 THEN
            g := @extschema@.credit_grant(wallet => m.wallet, amount => own, asset => credit_team_allocate.asset,
                    category => credit_team_allocate.category, expires_at => credit_team_allocate.expires_at,
                    unit_price => credit_team_allocate.unit_price,
                    idempotency_key => credit_team_allocate.idempotency_key || ':' || m.wallet,
                    metadata => coalesce(credit_team_allocate.metadata, '{}'::jsonb) || jsonb_build_object('team', team));
            wallet := m.wallet; grant_id := g.id; amount := g.amount;
            RETURN NEXT;
        END IF;
        given := given + own;
    END LOOP;
    IF amount_per_member * n - given > 0 THEN
        g := @extschema@.credit_grant(wallet => team, amount => amount_per_member * n - given,
                asset => credit_team_allocate.asset, category => credit_team_allocate.category,
                expires_at => credit_team_allocate.expires_at, unit_price => credit_team_allocate.unit_price,
                idempotency_key => credit_team_allocate.idempotency_key || ':pool',
                metadata => coalesce(credit_team_allocate.metadata, '{}'::jsonb)
                            || jsonb_build_object('pool', true, 'allocation', request));
        wallet := team; grant_id := g.id; amount := g.amount;
        RETURN NEXT;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION credit_ledger._events_trim() RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    -- (computed first since 0.13.0: Citus takes no now() inside a COALESCE of a DELETE)
    cutoff timestamptz := now() - coalesce(nullif(current_setting('credit_ledger.event_retention', true), ''), '7 days')::interval;
    acked bigint := (SELECT min(c.acked_up_to) FROM credit_ledger.event_consumers c);
    n bigint;
BEGIN
    DELETE FROM credit_ledger.events x
     WHERE x.seq IS NOT NULL AND x.at < cutoff AND (acked IS NULL OR x.seq <= acked);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION credit_ledger._upgrade_signals(as_of timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    -- (PL/pgSQL, one query joined on the tenant throughout, since 0.13.0: so that Citus pushes
    -- it down to the shards whole)
    WITH due AS (
        SELECT o.wallet_id, o.asset, w.wallet, w.tenant,
               credit_ledger._period_start(w.period, w.period_anchor, as_of) AS since,
               coalesce(x.used, 0) AS used, t.tier
          FROM credit_ledger.wallet_overage o
          JOIN credit_ledger.wallets w ON w.id = o.wallet_id AND w.tenant = o.tenant
          -- what the wallet and its runs' wallets spent since its period started
          LEFT JOIN LATERAL (
               SELECT sum(coalesce(a.captured, a.cost) - a.refunded) AS used
                 FROM credit_ledger.wallets s
                 JOIN credit_ledger.authorizations a ON a.wallet_id = s.id AND a.tenant = s.tenant
                WHERE s.tenant = o.tenant AND (s.id = o.wallet_id OR s.run_of = o.wallet_id)
                  AND a.asset = o.asset AND a.status IN ('approved', 'held', 'captured')
                  AND a.created_at >= credit_ledger._period_start(w.period, w.period_anchor, as_of)
                  AND a.created_at <= as_of) x ON true
         CROSS JOIN LATERAL unnest(o.upgrade_at) t(tier)
         WHERE o.upgrade_at IS NOT NULL AND w.closed_at IS NULL AND coalesce(x.used, 0) >= t.tier
           AND NOT EXISTS (SELECT 1 FROM credit_ledger.events e
                            WHERE e.wallet_id = o.wallet_id AND e.tenant = o.tenant AND e.kind = 'upgrade_suggested'
                              AND e.asset = o.asset
                              AND e.at >= credit_ledger._period_start(w.period, w.period_anchor, as_of)
                              AND e.payload ->> 'tier' = t.tier::text)
    ), e AS (
        INSERT INTO credit_ledger.events (kind, wallet_id, tenant, asset, payload)
        SELECT 'upgrade_suggested', d.wallet_id, d.tenant, d.asset,
               jsonb_build_object('event', 'upgrade_suggested', 'wallet', d.wallet, 'asset', d.asset,
                                  'tier', d.tier::text, 'period_usage', d.used, 'period_start', d.since)
          FROM due d ORDER BY d.wallet_id, d.asset, d.tier
        RETURNING id
    )
    SELECT count(pg_notify('credit_ledger', e.id::text)) INTO n FROM e;
    RETURN n;
END $$;

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
        '@extschema@.credit_balance(text, text, timestamptz, text)'];
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

CREATE OR REPLACE VIEW credit_ledger.pool_usage AS
SELECT m.wallet AS member, t.wallet AS team, x.asset,
       m.pool_limit,
       CASE WHEN s.period_start = credit_ledger._period_start(m.period, m.period_anchor, now())
            -- the counter and what the member's spends on the pool's lanes drew that it does not
            -- hold yet (member_rooms, since 0.11.0)
            THEN s.period_pool_drawn + coalesce((SELECT sum(r.spent) FROM credit_ledger.member_rooms r
                                                  WHERE r.wallet_id = m.id AND r.tenant = m.tenant AND r.asset = x.asset
                                                    AND r.period = s.period_start), 0)
            WHEN s.wallet_id IS NULL    -- a member without limits keeps no counter: from the journal
            THEN coalesce((SELECT -sum(j.amount) + sum(j.held) FROM credit_ledger.journal j
                            WHERE j.member_id = ANY (d.ids) AND j.wallet_id = t.id AND j.tenant = t.tenant
                              AND j.asset = x.asset AND j.kind IN ('debit', 'capture', 'hold', 'release', 'refund', 'run')
                              AND j.at >= credit_ledger._period_start(m.period, m.period_anchor, now())), 0)
            ELSE 0 END AS drawn_this_period,
       coalesce((SELECT -sum(j.amount) + sum(j.held) FROM credit_ledger.journal j
                  WHERE j.member_id = ANY (d.ids) AND j.wallet_id = t.id AND j.tenant = t.tenant
                    AND j.asset = x.asset AND j.kind IN ('debit', 'capture', 'hold', 'release', 'refund', 'run')), 0) AS drawn_total
  FROM credit_ledger.wallets m
  -- (every join on the tenant too, since 0.13.0: a member is in its pool's; on Citus the view
  -- then runs on the shards)
  JOIN credit_ledger.wallets t ON t.id = m.parent_id AND t.tenant = m.tenant
  -- who draws for the member: itself and its agent runs (a run's pool credits are drawn when it
  -- opens, 'run' entries, and what it gives back at close returns)
  CROSS JOIN LATERAL (SELECT array_append(array_agg(r.id), m.id) AS ids
                        FROM credit_ledger.wallets r WHERE r.run_of = m.id AND r.tenant = m.tenant) d
  -- every asset the member has a counter for or has drawn from the pool (a member without
  -- limits has no wallet_assets row); a member without either has one row, asset NULL
  LEFT JOIN LATERAL (SELECT a.asset FROM credit_ledger.wallet_assets a WHERE a.wallet_id = m.id AND a.tenant = m.tenant
                     UNION
                     SELECT j.asset FROM credit_ledger.journal j
                      WHERE j.wallet_id = t.id AND j.tenant = t.tenant AND j.member_id = ANY (d.ids)
                        AND j.kind IN ('debit', 'capture', 'hold', 'release', 'refund', 'run')
                      GROUP BY j.asset HAVING -sum(j.amount) + sum(j.held) <> 0) x ON true
  LEFT JOIN credit_ledger.wallet_assets s ON s.wallet_id = m.id AND s.tenant = m.tenant AND s.asset = x.asset;


REVOKE ALL ON FUNCTION @extschema@.credit_capture(bigint, numeric, text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_release(bigint, text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_refund(bigint, numeric, text, text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_quote(text, text, numeric, text, boolean, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_balance(text, text, timestamptz, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_capture(bigint, numeric, text, jsonb, text) IS 'spend a hold: the actual quantity (NULL = as held); the rest returns to the grants it came from; tenant: the wallet''s tenant (a Citus cluster routes by it)';
COMMENT ON FUNCTION @extschema@.credit_release(bigint, text, jsonb, text) IS 'give a hold back to the grants it came from; tenant: the wallet''s tenant (a Citus cluster routes by it)';
COMMENT ON FUNCTION @extschema@.credit_refund(bigint, numeric, text, text, jsonb, text) IS 'refund credits of a debit or captured hold to the grants that paid, in reverse consumption order; tenant: the wallet''s tenant (a Citus cluster routes by it)';
COMMENT ON FUNCTION @extschema@.credit_quote(text, text, numeric, text, boolean, text) IS 'price an action for a wallet: cost, spendable, whether it would be approved; degrade: the variant a degrading call would get; tenant: the wallet''s tenant (a Citus cluster routes by it); no side effects';
COMMENT ON FUNCTION @extschema@.credit_balance(text, text, timestamptz, text) IS 'a wallet''s own balance now, or as of a past instant from the journal; tenant: the wallet''s tenant (a Citus cluster routes by it)';

DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT * FROM pg_catalog.json_to_recordset(
                 pg_catalog.current_setting('credit_ledger_upgrade.acl')::pg_catalog.json)
             AS x(name text, grantee text, grantable boolean) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s',
            CASE g.name WHEN 'credit_capture' THEN '@extschema@.credit_capture(bigint, numeric, text, jsonb, text)'
                        WHEN 'credit_release' THEN '@extschema@.credit_release(bigint, text, jsonb, text)'
                        WHEN 'credit_refund' THEN '@extschema@.credit_refund(bigint, numeric, text, text, jsonb, text)'
                        WHEN 'credit_quote' THEN '@extschema@.credit_quote(text, text, numeric, text, boolean, text)'
                        ELSE '@extschema@.credit_balance(text, text, timestamptz, text)' END,
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;
