-- credit_ledger finalize: read functions, integrity checks, the append-only trigger,
-- privileges, pg_dump registration and comments. Runs after every Rust function exists.
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) before CREATE EXTENSION must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- ---- append-only journal ------------------------------------------------------------------
CREATE FUNCTION credit_ledger._journal_append_only() RETURNS trigger
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
CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE ON credit_ledger.journal
    FOR EACH ROW EXECUTE FUNCTION credit_ledger._journal_append_only();
CREATE TRIGGER journal_no_truncate BEFORE TRUNCATE ON credit_ledger.journal
    FOR EACH STATEMENT EXECUTE FUNCTION credit_ledger._journal_append_only();

-- ---- rate cache invalidation (src/rate_cache.rs) -------------------------------------------
-- Any change to rates or assets, by any role or path, empties every backend's rate cache.
ALTER FUNCTION @extschema@._credit_rates_changed() SET SCHEMA credit_ledger;
CREATE TRIGGER rates_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit_ledger.rates
    FOR EACH STATEMENT EXECUTE FUNCTION credit_ledger._credit_rates_changed();
CREATE TRIGGER assets_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit_ledger.assets
    FOR EACH STATEMENT EXECUTE FUNCTION credit_ledger._credit_rates_changed();

-- ---- read functions ------------------------------------------------------------------------

-- The tenant of a wallet key (NULL: no such wallet). Since 0.13.0 the read functions name it in
-- every query, so that on a ledger Citus distributes each reads the tenant's shard alone
-- (wallet_keys is a reference table there: read on the node itself).
CREATE FUNCTION credit_ledger._wallet_tenant(wallet text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN (SELECT k.tenant FROM credit_ledger.wallet_keys k WHERE k.wallet = _wallet_tenant.wallet);
END $$;

-- credit_ledger._balance for a wallet of tenant `tenant` (since 0.13.0): each part a query of
-- its own that names the tenant, which Citus routes to the tenant's shard.
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

CREATE FUNCTION @extschema@.credit_wallet(wallet text) RETURNS @extschema@.credit_wallet
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

-- The argument checks the read functions share: a wallet key, not null or empty, and an asset
-- name, each at most 255 characters (src/input.rs holds the same limits for the Rust functions).
-- No SET clause: it runs inside the callers' pinned search_path.
CREATE FUNCTION credit_ledger._check_wallet_asset(wallet text, asset text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF wallet IS NULL OR wallet = '' THEN
        RAISE EXCEPTION 'wallet must not be null or empty' USING ERRCODE = '22023';
    END IF;
    IF length(wallet) > 255 THEN
        RAISE EXCEPTION 'wallet is longer than 255 characters' USING ERRCODE = '22001',
            DETAIL = format('wallet has %s characters', length(wallet));
    END IF;
    IF length(asset) > 255 THEN
        RAISE EXCEPTION 'asset is longer than 255 characters' USING ERRCODE = '22001',
            DETAIL = format('asset has %s characters', length(asset));
    END IF;
END $$;

CREATE FUNCTION @extschema@.credit_grants(wallet text, asset text DEFAULT NULL) RETURNS SETOF @extschema@.credit_grant
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

CREATE FUNCTION @extschema@.credit_authorization(authorization_id bigint) RETURNS @extschema@.credit_authorization
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

-- Every journal entry of one authorization: its whole life (hold, capture, release, refund, expiry).
CREATE FUNCTION @extschema@.credit_authorization_history(authorization_id bigint)
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

CREATE FUNCTION @extschema@.credit_balance(wallet text, asset text DEFAULT 'credits', as_of timestamptz DEFAULT NULL,
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

CREATE FUNCTION @extschema@.credit_balance_detail(wallet text, asset text DEFAULT 'credits',
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

-- One event (since 0.3.0): the NOTIFY on channel credit_ledger carries only the id. No row
-- for an unknown id (a NOTIFY anyone may send is only a hint to read).
CREATE FUNCTION credit_ledger._event(id bigint)
RETURNS TABLE (event_id bigint, at timestamptz, kind text, wallet text, asset text, payload jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- (since 0.14.0 credit_event's query, PL/pgSQL and joined on the tenant: Citus plans it on
    -- a distributed ledger, where it plans no SQL function with parameters)
    RETURN QUERY
    SELECT e.id, e.at, e.kind, w.wallet, e.asset, e.payload
      FROM credit_ledger.events e JOIN credit_ledger.wallets w ON w.id = e.wallet_id AND w.tenant = e.tenant
     WHERE e.id = _event.id;
END $$;

CREATE FUNCTION @extschema@.credit_event(event_id bigint)
RETURNS TABLE (event_id bigint, at timestamptz, kind text, wallet text, asset text, payload jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    SELECT e.event_id, e.at, e.kind, e.wallet, e.asset, e.payload FROM credit_ledger._event($1) e
$$;

-- ---- agent runs (since 0.5.0) ----------------------------------------------------------------

-- Every node of the tree of run $1 (the run, then its sub-runs at any depth), with its figures:
-- spent (its own calls: approved debits and captured holds, less refunds), held (its open
-- holds), remaining (what its calls can still spend), reserved (what its open sub-runs still
-- have, at any depth), spent_tree (its calls and its sub-runs' calls), returned (given back
-- when it closed).
CREATE FUNCTION credit_ledger._run_nodes(root bigint, tenant text DEFAULT NULL)
RETURNS TABLE (run_id bigint, depth int, wallet text, parent_run bigint, asset text, status text,
               reason text, budget numeric, spent numeric, held numeric, remaining numeric,
               reserved numeric, spent_tree numeric, returned numeric, calls bigint,
               created_at timestamptz, expires_at timestamptz, closed_at timestamptz, metadata jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    -- the run's tenant, named in every read (since 0.14.0: a run and its sub-runs are one
    -- tenant's, so on a ledger Citus distributes the query is on that tenant's shard alone);
    -- given by a call Citus delegates (then nothing may leave the shard), else looked up
    run_tenant text := coalesce(_run_nodes.tenant, (SELECT r.tenant FROM credit_ledger.runs r WHERE r.id = root));
BEGIN
    IF run_tenant IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH RECURSIVE t AS (
        SELECT r.id, 0 AS depth, ARRAY[r.id] AS path FROM credit_ledger.runs r WHERE r.id = root AND r.tenant = run_tenant
        UNION ALL
        SELECT r.id, t.depth + 1, t.path || r.id
          FROM credit_ledger.runs r JOIN t ON r.parent_run = t.id
         WHERE r.tenant = run_tenant
    ), n AS (
        SELECT t.id, t.depth, t.path, r.wallet_id, r.run_wallet_id, r.parent_run, r.asset, r.status, r.reason,
               r.budget, r.returned, r.created_at, r.expires_at, r.closed_at, r.metadata,
               coalesce((SELECT sum(coalesce(a.captured, a.cost) - a.refunded)
                           FROM credit_ledger.authorizations a
                          WHERE a.wallet_id = r.run_wallet_id AND a.tenant = run_tenant
                            AND a.status IN ('approved', 'captured')), 0) AS spent,
               coalesce((SELECT count(*) FROM credit_ledger.authorizations a
                          WHERE a.wallet_id = r.run_wallet_id AND a.tenant = run_tenant AND a.status <> 'declined'), 0) AS calls,
               coalesce((SELECT sum(g.held) FROM credit_ledger.grants g
                          WHERE g.wallet_id = r.run_wallet_id AND g.tenant = run_tenant), 0) AS held,
               coalesce((SELECT sum(g.remaining - g.held) FROM credit_ledger.grants g
                          WHERE g.wallet_id = r.run_wallet_id AND g.tenant = run_tenant AND g.live
                            AND (g.expires_at IS NULL OR g.expires_at > now())), 0) AS remaining,
               coalesce((SELECT sum(g.remaining) FROM credit_ledger.grants g
                          WHERE g.wallet_id = r.run_wallet_id AND g.tenant = run_tenant AND g.live), 0) AS unspent
          FROM t JOIN credit_ledger.runs r ON r.id = t.id AND r.tenant = run_tenant
    )
    SELECT n.id, n.depth, o.wallet, n.parent_run, n.asset, n.status, n.reason, n.budget, n.spent, n.held,
           n.remaining,
           coalesce((SELECT sum(d.unspent) FROM n d WHERE d.id <> n.id AND n.id = ANY (d.path) AND d.status = 'open'), 0),
           (SELECT sum(d.spent) FROM n d WHERE n.id = ANY (d.path)),
           n.returned, n.calls, n.created_at, n.expires_at, n.closed_at, n.metadata
      FROM n JOIN credit_ledger.wallets o ON o.id = n.wallet_id AND o.tenant = run_tenant
     ORDER BY n.path;
END $$;

-- One run: its budget and what became of it (see _run_nodes). No row for an unknown id.
CREATE FUNCTION @extschema@.credit_run(run_id bigint, tenant text DEFAULT credit_ledger._tenant_unset())
RETURNS TABLE (run_id bigint, wallet text, parent_run bigint, asset text, status text, reason text,
               budget numeric, spent numeric, held numeric, remaining numeric, reserved numeric,
               spent_tree numeric, returned numeric, calls bigint, created_at timestamptz,
               expires_at timestamptz, closed_at timestamptz, metadata jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    SELECT n.run_id, n.wallet, n.parent_run, n.asset, n.status, n.reason, n.budget, n.spent, n.held,
           n.remaining, n.reserved, n.spent_tree, n.returned, n.calls, n.created_at, n.expires_at,
           n.closed_at, n.metadata
      FROM credit_ledger._run_nodes($1, $2) n WHERE n.depth = 0
$$;

-- A run and its sub-runs at any depth, one row per node (depth 0 = the run), parents first.
CREATE FUNCTION @extschema@.credit_run_tree(run_id bigint, tenant text DEFAULT credit_ledger._tenant_unset())
RETURNS TABLE (run_id bigint, depth int, parent_run bigint, status text, budget numeric,
               spent numeric, held numeric, remaining numeric, reserved numeric, spent_tree numeric,
               returned numeric, calls bigint, expires_at timestamptz, closed_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    SELECT n.run_id, n.depth, n.parent_run, n.status, n.budget, n.spent, n.held, n.remaining,
           n.reserved, n.spent_tree, n.returned, n.calls, n.expires_at, n.closed_at
      FROM credit_ledger._run_nodes($1, $2) n
$$;

-- ---- integrity -----------------------------------------------------------------------------

-- (jit = off: the JIT compilation of this large query took seconds on small ledgers)
CREATE FUNCTION @extschema@.credit_verify()
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

-- ---- privileges ----------------------------------------------------------------------------
-- Nothing is granted to PUBLIC. Application roles get EXECUTE on the public functions and
-- USAGE + SELECT on the report views (see docs/security.md); tables are written only by the
-- SECURITY DEFINER functions.
REVOKE ALL ON ALL TABLES IN SCHEMA credit_ledger FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA credit_ledger FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA credit_ledger FROM PUBLIC;
-- (but the default of credit_authorize's and credit_hold's tenant argument, which is evaluated
-- in the caller's query: it returns NULL; see src/tenant.rs)
GRANT EXECUTE ON FUNCTION credit_ledger._tenant_unset() TO PUBLIC;
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid
              JOIN pg_extension e ON e.oid = d.refobjid
             WHERE e.extname = 'credit_ledger' AND d.deptype = 'e' AND p.proname LIKE 'credit\_%'
    LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END $$;

-- ---- pg_dump -------------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.assets', 'WHERE asset <> ''credits''');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.rate_cards', 'WHERE rate_card <> ''default''');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.wallets', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.wallet_assets', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.grants', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.rates', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.authorizations', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.journal', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.refunds', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.allowances', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.allowances_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.wallets_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.grants_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.rates_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.authorizations_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.journal_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.refunds_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.events', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.lanes', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.member_rooms', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.wallet_keys', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.runs', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.operations', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.wallet_overage', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.tier_usage', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.fair_use_usage', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.operations_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.event_consumers', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.events_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.verify_runs', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.verify_runs_id_seq', '');

-- ---- comments ------------------------------------------------------------------------------
-- (since 0.2.0, also in credit_ledger--0.1.0--0.2.0.sql)
COMMENT ON FUNCTION @extschema@.credit_asset_define(text, integer, text) IS 'define an asset (unit of value) with a fixed decimal scale';
COMMENT ON FUNCTION @extschema@.credit_wallet_create(text, text, text, numeric, numeric, jsonb, numeric, numeric, interval, timestamptz) IS 'create a wallet (idempotent on the wallet key); parent makes it a team-pool member';
COMMENT ON FUNCTION @extschema@.credit_wallet_update(text, text, numeric, numeric, numeric, numeric, boolean, jsonb, text, interval, timestamptz, text[]) IS 'change wallet settings; NULL leaves a setting unchanged, clear resets named settings';
COMMENT ON FUNCTION @extschema@.credit_rate_set(text, numeric, text, text, text, text, numeric, timestamptz, text, jsonb) IS 'set the credits per unit of an action (and variant) on a rate card from effective_from: a new version; fallback: the variant a degrading call tries next; tiers: graduated volume prices by units spent in the wallet''s period';
COMMENT ON FUNCTION @extschema@.credit_rate_card_load(jsonb) IS 'load a whole rate card document; one new version per changed entry; all or nothing';
COMMENT ON FUNCTION @extschema@.credit_rate_card_export(text) IS 'the current version of every entry of a rate card as one JSON document';
COMMENT ON FUNCTION @extschema@.credit_grant(text, numeric, text, text, integer, timestamptz, timestamptz, numeric, text, jsonb) IS 'grant a lot of credits to a wallet; settles overdraft debt first; idempotent with a key';
COMMENT ON FUNCTION @extschema@.credit_quote(text, text, numeric, text, boolean, text) IS 'price an action for a wallet: cost, spendable, whether it would be approved; degrade: the variant a degrading call would get; tenant: the wallet''s tenant (a Citus cluster routes by it); no side effects';
COMMENT ON FUNCTION @extschema@.credit_metrics(text) IS 'monitoring gauges per asset (open holds, calls and credits of the last minute, liability), read through indexes; for postgres_exporter (ops/prometheus)';
COMMENT ON FUNCTION @extschema@.credit_quote_tiers(text, text, numeric, text) IS 'the volume-tier bands a quantity of an action would be priced in, from the wallet''s units spent this period; no side effects';
COMMENT ON FUNCTION @extschema@.credit_wallet_overage(text, text, numeric, numeric, numeric[], text[], numeric) IS 'a wallet''s auto top-up (amount at its low-balance threshold), upgrade tiers and fair-use allowance per period in one asset';
COMMENT ON FUNCTION @extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint, boolean, text) IS 'atomically price, check limits and debit an action before the work runs; a decline is a row; degrade: the first affordable variant of the fallback chain; tenant: the wallet''s tenant (a Citus cluster routes by it)';
COMMENT ON FUNCTION @extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint, boolean, text) IS 'reserve credits for work of unknown final size (streaming); capture or release later; degrade and tenant as for credit_authorize';
COMMENT ON FUNCTION @extschema@.credit_capture(bigint, numeric, text, jsonb, text) IS 'spend a hold: the actual quantity (NULL = as held); the rest returns to the grants it came from; tenant: the wallet''s tenant (a Citus cluster routes by it)';
COMMENT ON FUNCTION @extschema@.credit_release(bigint, text, jsonb, text) IS 'give a hold back to the grants it came from; tenant: the wallet''s tenant (a Citus cluster routes by it)';
COMMENT ON FUNCTION @extschema@.credit_refund(bigint, numeric, text, text, jsonb, text) IS 'refund credits of a debit or captured hold to the grants that paid, in reverse consumption order; tenant: the wallet''s tenant (a Citus cluster routes by it)';
COMMENT ON FUNCTION @extschema@.credit_expire(timestamptz, bigint) IS 'journal expiry of grants past expires_at (breakage) and finalize holds past their TTL; bounded, idempotent';
COMMENT ON FUNCTION @extschema@.credit_tick(timestamptz) IS 'run all due lifecycle work: missed allowance boundaries in order with rollover, then expiry';
COMMENT ON FUNCTION @extschema@.credit_wallet_lanes(text, int) IS 'set (or with lanes NULL report) a wallet''s spending lanes: concurrent spenders of the wallet or pool that do not wait for each other';
COMMENT ON FUNCTION @extschema@.credit_allowance_set(text, numeric, interval, timestamptz, text, numeric, numeric[], timestamptz) IS 'give a wallet a recurring included allowance with a rollover policy (none, capped, declining), from the period containing as_of';

-- the composite types the public functions return (since 0.8.0)
COMMENT ON TYPE @extschema@.credit_authorization IS 'one authorize or hold call: approved, reason, cost, balance after, status, variant, rate version, vendor cost, expiry, key';
COMMENT ON TYPE @extschema@.credit_grant IS 'a credit lot: category, priority, amount, remaining, held, effective and expiry times, unit price';
COMMENT ON TYPE @extschema@.credit_operation IS 'a correction (void, adjustment, transfer, close): what it did, its amount and its state';
COMMENT ON TYPE @extschema@.credit_overage IS 'a wallet''s overage settings in one asset: auto top-up, upgrade tiers, fair-use limit';
COMMENT ON TYPE @extschema@.credit_rate IS 'one version of a rate-card entry: credits per unit, asset, unit, vendor cost, fallback, volume tiers';
COMMENT ON TYPE @extschema@.credit_wallet IS 'a wallet''s settings: parent pool, limits, thresholds, period, rate card, lanes';
COMMENT ON SCHEMA credit_ledger IS 'credit_ledger tables, report views and internal helpers';
COMMENT ON TABLE credit_ledger.assets IS 'units of value with a fixed decimal scale; credits is built in';
COMMENT ON TABLE credit_ledger.rate_cards IS 'named price lists; default always exists';
COMMENT ON TABLE credit_ledger.wallets IS 'one per customer, team or team member, keyed by the app''s own text key';
COMMENT ON TABLE credit_ledger.wallet_overage IS 'per wallet and asset: auto top-up amount and crossings announced, upgrade tiers';
COMMENT ON TABLE credit_ledger.fair_use_usage IS 'fair use per wallet, asset and period: the cost of the calls fair use paid';
COMMENT ON TABLE credit_ledger.tier_usage IS 'units spent per wallet, action and variant in the wallet''s period: where volume tiers price the next call';
COMMENT ON TABLE credit_ledger.wallet_assets IS 'per wallet and asset: overdraft debt, current-period spend and pool draw, low-balance latch';
COMMENT ON TABLE credit_ledger.grants IS 'lots of credits; remaining and held are caches of the journal';
COMMENT ON TABLE credit_ledger.rates IS 'rate-card entries, versioned by effective_from';
COMMENT ON TABLE credit_ledger.authorizations IS 'every authorize/hold call, approved or declined, with its rate version and holds'' life';
COMMENT ON TABLE credit_ledger.journal IS 'append-only: every change of a grant''s remaining or held, and of overdraft debt';
COMMENT ON TABLE credit_ledger.allowances IS 'recurring allowances and their rollover policy; next_boundary is the next period start to process';
COMMENT ON TABLE credit_ledger.refunds IS 'refunds of authorizations, with their idempotency keys';
COMMENT ON FUNCTION @extschema@.credit_wallet(text) IS 'the settings of a wallet as a credit_wallet';
COMMENT ON FUNCTION @extschema@.credit_grants(text, text) IS 'a wallet''s grants (its credit lots) in consumption order';
COMMENT ON FUNCTION @extschema@.credit_authorization(bigint) IS 'an authorization as a credit_authorization';
COMMENT ON FUNCTION @extschema@.credit_authorization_history(bigint) IS 'every journal entry of one authorization';
COMMENT ON FUNCTION @extschema@.credit_balance(text, text, timestamptz, text) IS 'a wallet''s own balance now, or as of a past instant from the journal; tenant: the wallet''s tenant (a Citus cluster routes by it)';
COMMENT ON FUNCTION @extschema@.credit_balance_detail(text, text, interval) IS 'balance, held, debt, overdraft room, pool access, spendable, expiring soon, per category';
COMMENT ON TABLE credit_ledger.lanes IS 'spending lanes of a wallet and asset (lanes > 1): the lock a spender takes, and a hint of what the lane''s slices can spend';
COMMENT ON TABLE credit_ledger.wallet_keys IS 'every wallet key once, with its wallet''s tenant: a key names one wallet over the whole ledger';
COMMENT ON TABLE credit_ledger.member_rooms IS 'a limited pool member''s limits sliced over its pool''s lanes: what a spender holding that pool lane may still draw for it this period, and what it drew that the member''s counters do not hold yet';
COMMENT ON TABLE credit_ledger.events IS 'events such as low-balance alerts; NOTIFY credit_ledger carries only the id';
COMMENT ON FUNCTION @extschema@.credit_event(bigint) IS 'one event by the id a NOTIFY on channel credit_ledger carried';
COMMENT ON FUNCTION @extschema@.credit_verify() IS 'one row per violated ledger invariant; empty = healthy';
COMMENT ON FUNCTION @extschema@.credit_distribute() IS 'on a Citus coordinator, once: the ledger''s tables distributed by tenant (the catalogue and wallet keys as reference tables), credit_authorize and credit_hold delegated by their tenant';
COMMENT ON FUNCTION @extschema@.credit_run_open(text, numeric, text, bigint, interval, text, jsonb, integer, numeric, integer, text) IS 'open an agent run: reserve a budget from the wallet (or a parent run) that calls with run => id spend without the wallet''s lock; tenant: the wallet''s tenant (a Citus cluster routes by it)';
COMMENT ON FUNCTION @extschema@.credit_run_close(bigint, text) IS 'close an agent run and its open sub-runs; unspent credits go back to the exact grants they came from; tenant: the run''s wallet''s tenant (a Citus cluster routes by it)';
COMMENT ON FUNCTION @extschema@.credit_run(bigint, text) IS 'an agent run: budget, spent, held, remaining, reserved by sub-runs, returned, calls, status; tenant: the run''s wallet''s tenant (a Citus cluster routes by it)';
COMMENT ON FUNCTION @extschema@.credit_run_tree(bigint, text) IS 'an agent run and its sub-runs at any depth, one row per node; tenant: as for credit_run';
COMMENT ON TABLE credit_ledger.runs IS 'agent runs: budgets reserved from a wallet or a parent run, spent by calls made with run => id';
-- (since 0.6.0, also in credit_ledger--0.5.0--0.6.0.sql)
COMMENT ON FUNCTION @extschema@.credit_grant_void(bigint, numeric, text, text) IS 'take back the unspent part of a grant (all by default); credits held by open holds are voided when the holds end';
COMMENT ON FUNCTION @extschema@.credit_adjust(text, numeric, text, text, text, jsonb) IS 'a signed manual correction: positive adds an adjustment grant, negative takes credits in consumption order';
COMMENT ON FUNCTION @extschema@.credit_transfer(text, text, numeric, text, text, text, jsonb) IS 'move credits between wallets exactly, keeping category, priority, expiry and unit price';
COMMENT ON FUNCTION @extschema@.credit_wallet_close(text, text, text, text, text) IS 'close a wallet: release holds, close runs, expire or transfer the credits left; nothing more is accepted';
COMMENT ON FUNCTION @extschema@.credit_events(bigint, integer, text) IS 'committed events in stream order (seq) after a position or after a consumer''s acknowledgement';
COMMENT ON FUNCTION @extschema@.credit_events_ack(text, bigint) IS 'record that a consumer processed every event up to a seq';
COMMENT ON FUNCTION @extschema@.credit_statement(text, timestamptz, timestamptz, text) IS 'a wallet''s statement: opening balance, every change with its cause, closing balance';
COMMENT ON FUNCTION @extschema@.credit_margin_whatif(numeric, integer) IS 'the actions whose margin would be negative if vendor prices changed by a fraction, from the rates in effect and recent usage';
COMMENT ON FUNCTION @extschema@.credit_health() IS 'one row per health check (tick lag, unswept holds and runs, event backlog per consumer, last verify, decline spike): ok, warn or fail';
COMMENT ON FUNCTION @extschema@.credit_verify_record() IS 'run credit_verify() and record its result for credit_health(); returns the number of violations';
COMMENT ON TABLE credit_ledger.verify_runs IS 'results of credit_verify_record(): when, how many violations of which checks, how long';
COMMENT ON TABLE credit_ledger.operations IS 'voids, adjustments, transfers and wallet closes, with their keys, reasons and actors';
COMMENT ON TABLE credit_ledger.event_consumers IS 'per consumer: the last event seq it acknowledged';

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
