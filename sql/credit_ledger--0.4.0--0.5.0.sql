-- credit_ledger 0.4.0 -> 0.5.0 (frozen once released).
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Issue 18: agent runs. A run is a wallet of its own (wallets.run_of) whose grants are slices
-- of the rows its budget came from (grants.source_id); see README "Agent runs".
ALTER TABLE credit_ledger.wallets ADD COLUMN run_of bigint REFERENCES credit_ledger.wallets (id);
ALTER TABLE credit_ledger.grants ADD COLUMN source_id bigint;
CREATE INDEX grants_source ON credit_ledger.grants (source_id) WHERE source_id IS NOT NULL;

-- Agent runs (since 0.5.0): a budget envelope reserved from a wallet (or a parent run) and
-- spent by calls made with run => id. run_wallet_id is the run's own wallet (NULL when the
-- opening was declined); see README "Agent runs".
CREATE TABLE credit_ledger.runs (
    id              bigserial PRIMARY KEY,
    wallet_id       bigint  NOT NULL REFERENCES credit_ledger.wallets (id),
    run_wallet_id   bigint  UNIQUE REFERENCES credit_ledger.wallets (id),
    parent_run      bigint  REFERENCES credit_ledger.runs (id),
    asset           text    NOT NULL REFERENCES credit_ledger.assets (asset),
    budget          numeric NOT NULL,
    status          text    NOT NULL CHECK (status IN ('open', 'closed', 'expired', 'declined')),
    reason          text,
    returned        numeric NOT NULL DEFAULT 0,
    balance_after   numeric,
    max_calls       int,        -- optional: approved calls (debits and holds) at most
    max_cost_per_call numeric,  -- optional: the cost of one call at most
    idempotency_key text,
    request_hash    bigint,
    metadata        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    closed_at       timestamptz
);
CREATE UNIQUE INDEX runs_idempotency ON credit_ledger.runs (wallet_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX runs_parent ON credit_ledger.runs (parent_run) WHERE parent_run IS NOT NULL;
CREATE INDEX runs_open_expiring ON credit_ledger.runs (expires_at) WHERE status = 'open';

REVOKE ALL ON TABLE credit_ledger.runs FROM PUBLIC;
REVOKE ALL ON SEQUENCE credit_ledger.runs_id_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.runs', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.runs_id_seq', '');
COMMENT ON TABLE credit_ledger.runs IS 'agent runs: budgets reserved from a wallet or a parent run, spent by calls made with run => id';

-- credit_authorize and credit_hold take run => id (a new last parameter with a default). A
-- function's parameters cannot change in place: each is dropped and created again, and the
-- EXECUTE privileges granted on the old one are granted on the new one (an application role
-- keeps what it had; nothing is granted to PUBLIC).
SELECT pg_catalog.set_config('credit_ledger_upgrade.acl', coalesce((
    SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
               'name', p.proname, 'grantee', a.grantee::pg_catalog.regrole::text, 'grantable', a.is_grantable))::text
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE n.nspname = '@extschema@' AND p.proname IN ('credit_authorize', 'credit_hold')
       AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE'), '[]'), true);
DROP FUNCTION @extschema@.credit_authorize(text, text, numeric, text, text, jsonb);
DROP FUNCTION @extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval);

CREATE FUNCTION @extschema@."credit_authorize"(
	"wallet" TEXT, /* Option < & str > */
	"action" TEXT, /* Option < & str > */
	"quantity" NUMERIC DEFAULT 1, /* Option < AnyNumeric > */
	"variant" TEXT DEFAULT NULL, /* Option < & str > */
	"idempotency_key" TEXT DEFAULT NULL, /* Option < & str > */
	"metadata" jsonb DEFAULT NULL, /* Option < JsonbText > */
	"run" bigint DEFAULT NULL /* Option < i64 > */
) RETURNS @extschema@.credit_authorization /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_authorize_v5_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint) IS 'atomically price, check limits and debit an action before the work runs; a decline is a row';

CREATE FUNCTION @extschema@."credit_hold"(
	"wallet" TEXT, /* Option < & str > */
	"action" TEXT, /* Option < & str > */
	"quantity" NUMERIC DEFAULT 1, /* Option < AnyNumeric > */
	"variant" TEXT DEFAULT NULL, /* Option < & str > */
	"idempotency_key" TEXT DEFAULT NULL, /* Option < & str > */
	"metadata" jsonb DEFAULT NULL, /* Option < JsonbText > */
	"ttl" interval DEFAULT '10 minutes', /* Option < Interval > */
	"run" bigint DEFAULT NULL /* Option < i64 > */
) RETURNS @extschema@.credit_authorization /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_hold_v5_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint) IS 'reserve credits for work of unknown final size (streaming); capture or release later';

DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT * FROM pg_catalog.json_to_recordset(
                 pg_catalog.current_setting('credit_ledger_upgrade.acl')::pg_catalog.json)
             AS x(name text, grantee text, grantable boolean) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s',
            CASE g.name WHEN 'credit_authorize'
                 THEN '@extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint)'
                 ELSE '@extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint)' END,
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;

CREATE FUNCTION @extschema@."credit_run_open"(
	"wallet" TEXT, /* Option < & str > */
	"budget" NUMERIC, /* Option < AnyNumeric > */
	"asset" TEXT DEFAULT 'credits', /* Option < & str > */
	"parent_run" bigint DEFAULT NULL, /* Option < i64 > */
	"ttl" interval DEFAULT '1 hour', /* Option < Interval > */
	"idempotency_key" TEXT DEFAULT NULL, /* Option < & str > */
	"metadata" jsonb DEFAULT NULL, /* Option < JsonbText > */
	"max_calls" INT DEFAULT NULL, /* Option < i32 > */
	"max_cost_per_call" NUMERIC DEFAULT NULL, /* Option < AnyNumeric > */
	"lanes" INT DEFAULT 1 /* Option < i32 > */
) RETURNS TABLE (
	"run_id" bigint,  /* i64 */
	"approved" bool,  /* bool */
	"reason" TEXT,  /* Option < String > */
	"budget" NUMERIC,  /* AnyNumeric */
	"balance" NUMERIC,  /* Option < AnyNumeric > */
	"asset" TEXT,  /* String */
	"status" TEXT,  /* String */
	"expires_at" timestamp with time zone  /* TimestampWithTimeZone */
)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_run_open_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_run_open(text, numeric, text, bigint, interval, text, jsonb, integer, numeric, integer) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_run_open(text, numeric, text, bigint, interval, text, jsonb, integer, numeric, integer) IS 'open an agent run: reserve a budget from the wallet (or a parent run) that calls with run => id spend without the wallet''s lock';

CREATE FUNCTION @extschema@."credit_run_close"(
	"run_id" bigint /* Option < i64 > */
) RETURNS TABLE (
	"run_id" bigint,  /* i64 */
	"status" TEXT,  /* String */
	"budget" NUMERIC,  /* AnyNumeric */
	"spent" NUMERIC,  /* AnyNumeric */
	"spent_tree" NUMERIC,  /* AnyNumeric */
	"returned" NUMERIC,  /* AnyNumeric */
	"closed_at" timestamp with time zone  /* Option < TimestampWithTimeZone > */
)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_run_close_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_run_close(bigint) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_run_close(bigint) IS 'close an agent run and its open sub-runs; unspent credits go back to the exact grants they came from';

-- ---- agent runs (since 0.5.0) ----------------------------------------------------------------

-- Every node of the tree of run $1 (the run, then its sub-runs at any depth), with its figures:
-- spent (its own calls: approved debits and captured holds, less refunds), held (its open
-- holds), remaining (what its calls can still spend), reserved (what its open sub-runs still
-- have, at any depth), spent_tree (its calls and its sub-runs' calls), returned (given back
-- when it closed).
CREATE FUNCTION credit_ledger._run_nodes(root bigint)
RETURNS TABLE (run_id bigint, depth int, wallet text, parent_run bigint, asset text, status text,
               reason text, budget numeric, spent numeric, held numeric, remaining numeric,
               reserved numeric, spent_tree numeric, returned numeric, calls bigint,
               created_at timestamptz, expires_at timestamptz, closed_at timestamptz, metadata jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE t AS (
        SELECT r.id, 0 AS depth, ARRAY[r.id] AS path FROM credit_ledger.runs r WHERE r.id = $1
        UNION ALL
        SELECT r.id, t.depth + 1, t.path || r.id
          FROM credit_ledger.runs r JOIN t ON r.parent_run = t.id
    ), n AS (
        SELECT t.id, t.depth, t.path, r.wallet_id, r.run_wallet_id, r.parent_run, r.asset, r.status, r.reason,
               r.budget, r.returned, r.created_at, r.expires_at, r.closed_at, r.metadata,
               coalesce((SELECT sum(coalesce(a.captured, a.cost) - a.refunded)
                           FROM credit_ledger.authorizations a
                          WHERE a.wallet_id = r.run_wallet_id AND a.status IN ('approved', 'captured')), 0) AS spent,
               coalesce((SELECT count(*) FROM credit_ledger.authorizations a
                          WHERE a.wallet_id = r.run_wallet_id AND a.status <> 'declined'), 0) AS calls,
               coalesce((SELECT sum(g.held) FROM credit_ledger.grants g WHERE g.wallet_id = r.run_wallet_id), 0) AS held,
               coalesce((SELECT sum(g.remaining - g.held) FROM credit_ledger.grants g
                          WHERE g.wallet_id = r.run_wallet_id AND g.live
                            AND (g.expires_at IS NULL OR g.expires_at > now())), 0) AS remaining,
               coalesce((SELECT sum(g.remaining) FROM credit_ledger.grants g
                          WHERE g.wallet_id = r.run_wallet_id AND g.live), 0) AS unspent
          FROM t JOIN credit_ledger.runs r ON r.id = t.id
    )
    SELECT n.id, n.depth, o.wallet, n.parent_run, n.asset, n.status, n.reason, n.budget, n.spent, n.held,
           n.remaining,
           coalesce((SELECT sum(d.unspent) FROM n d WHERE d.id <> n.id AND n.id = ANY (d.path) AND d.status = 'open'), 0),
           (SELECT sum(d.spent) FROM n d WHERE n.id = ANY (d.path)),
           n.returned, n.calls, n.created_at, n.expires_at, n.closed_at, n.metadata
      FROM n JOIN credit_ledger.wallets o ON o.id = n.wallet_id
     ORDER BY n.path
$$;

-- One run: its budget and what became of it (see _run_nodes). No row for an unknown id.
CREATE FUNCTION @extschema@.credit_run(run_id bigint)
RETURNS TABLE (run_id bigint, wallet text, parent_run bigint, asset text, status text, reason text,
               budget numeric, spent numeric, held numeric, remaining numeric, reserved numeric,
               spent_tree numeric, returned numeric, calls bigint, created_at timestamptz,
               expires_at timestamptz, closed_at timestamptz, metadata jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    SELECT n.run_id, n.wallet, n.parent_run, n.asset, n.status, n.reason, n.budget, n.spent, n.held,
           n.remaining, n.reserved, n.spent_tree, n.returned, n.calls, n.created_at, n.expires_at,
           n.closed_at, n.metadata
      FROM credit_ledger._run_nodes($1) n WHERE n.depth = 0
$$;

-- A run and its sub-runs at any depth, one row per node (depth 0 = the run), parents first.
CREATE FUNCTION @extschema@.credit_run_tree(run_id bigint)
RETURNS TABLE (run_id bigint, depth int, parent_run bigint, status text, budget numeric,
               spent numeric, held numeric, remaining numeric, reserved numeric, spent_tree numeric,
               returned numeric, calls bigint, expires_at timestamptz, closed_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    SELECT n.run_id, n.depth, n.parent_run, n.status, n.budget, n.spent, n.held, n.remaining,
           n.reserved, n.spent_tree, n.returned, n.calls, n.expires_at, n.closed_at
      FROM credit_ledger._run_nodes($1) n
$$;

REVOKE ALL ON FUNCTION credit_ledger._run_nodes(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_run(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_run_tree(bigint) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_run(bigint) IS 'an agent run: budget, spent, held, remaining, reserved by sub-runs, returned, calls, status';
COMMENT ON FUNCTION @extschema@.credit_run_tree(bigint) IS 'an agent run and its sub-runs at any depth, one row per node';

-- credit_verify() knows runs: 'run' entries, run_moves_balance, run_slice_source, run_state,
-- run_closed_empty
CREATE OR REPLACE FUNCTION @extschema@.credit_verify()
RETURNS TABLE (check_name text, subject text, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
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
    SELECT 'grant_conservation', 'grant ' || g.id,
           format('amount %s but grant entries total %s', g.amount, coalesce(sum(j.amount) FILTER (WHERE j.kind = 'grant'), 0))
      FROM credit_ledger.grants g LEFT JOIN credit_ledger.journal j ON j.grant_id = g.id
     WHERE g.home_id IS NULL AND g.source_id IS NULL
     GROUP BY g.id, g.amount
    HAVING coalesce(sum(j.amount) FILTER (WHERE j.kind = 'grant'), 0) <> g.amount
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
    HAVING (a.status = 'held' AND coalesce(sum(j.held), 0) <> a.cost)
        OR (a.status <> 'held' AND coalesce(sum(j.held), 0) <> 0)
        OR (a.status = 'captured' AND coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('capture', 'overdraft')), 0) <> a.captured)
        OR (a.status IN ('released', 'expired', 'declined') AND coalesce(sum(j.amount) FILTER (WHERE j.kind IN ('capture', 'overdraft')), 0) <> 0)
    UNION ALL
    -- debits: an approved debit took exactly its cost; a declined one took nothing
    SELECT 'debit_consistency', 'authorization ' || a.id,
           format('status %s cost %s; journal debited %s', a.status, a.cost,
                  coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'overdraft')), 0))
      FROM credit_ledger.authorizations a LEFT JOIN credit_ledger.journal j ON j.authorization_id = a.id
     WHERE a.kind = 'debit'
     GROUP BY a.id
    HAVING coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'overdraft')), 0)
           <> CASE WHEN a.status = 'approved' THEN a.cost ELSE 0 END
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
                          'adjustment', 'overdraft', 'settlement', 'lane', 'run')
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

-- Reports: a call made in a run counts for the wallet that opened it (usage_daily,
-- declines_daily); a run's credits are not a wallet's balance (wallet_balances) nor a grant of
-- its own (grant_status); a member's runs draw on its pool (pool_usage); run_usage is new.
CREATE OR REPLACE VIEW credit_ledger.wallet_balances AS
SELECT w.wallet, g.asset,
       sum(g.remaining - g.held) - coalesce(max(s.debt), 0) AS balance,
       sum(g.held) AS held,
       coalesce(max(s.debt), 0) AS debt,
       jsonb_object_agg(g.category, g.cat_balance) AS by_category
  FROM credit_ledger.wallets w
  JOIN (SELECT x.wallet_id, x.asset, x.category, sum(x.remaining) AS remaining, sum(x.held) AS held,
               sum(x.remaining - x.held) AS cat_balance
          FROM credit_ledger.grants x
         WHERE x.live AND x.effective_at <= now() AND (x.expires_at IS NULL OR x.expires_at > now())
         GROUP BY x.wallet_id, x.asset, x.category) g ON g.wallet_id = w.id
  LEFT JOIN credit_ledger.wallet_assets s ON s.wallet_id = w.id AND s.asset = g.asset
 WHERE w.run_of IS NULL   -- an agent run's credits are the run's (credit_run), not a wallet's
 GROUP BY w.wallet, g.asset;
CREATE OR REPLACE VIEW credit_ledger.grant_status AS
SELECT g.id AS grant_id, w.wallet, g.asset, g.category, g.priority, g.amount, f.remaining, f.held,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'capture', 'settlement')), 0)
         - coalesce(sum(j.amount) FILTER (WHERE j.kind = 'refund'), 0) AS spent,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'expiry'), 0) AS expired,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'rollover'), 0) AS rolled_over,
       g.unit_price, g.effective_at, g.expires_at,
       CASE WHEN g.effective_at > now() THEN 'pending'
            WHEN g.expires_at IS NOT NULL AND g.expires_at <= now() THEN 'expired'
            WHEN f.remaining = 0 THEN 'exhausted'
            ELSE 'active' END AS status,
       (g.expires_at IS NOT NULL AND g.expires_at > now() AND g.expires_at <= now() + interval '7 days'
        AND f.remaining > 0) AS expiring_soon
  FROM credit_ledger.grants g
  JOIN credit_ledger.wallets w ON w.id = g.wallet_id
  CROSS JOIN LATERAL (SELECT g.remaining + coalesce(sum(x.remaining), 0) AS remaining,
                             g.held + coalesce(sum(x.held), 0) AS held,
                             array_append(array_agg(x.id), g.id) AS ids
                        FROM credit_ledger.grants x WHERE x.home_id = g.id) f
  LEFT JOIN credit_ledger.journal j ON j.grant_id = ANY (f.ids) AND j.wallet_id = g.wallet_id
 WHERE g.home_id IS NULL AND g.source_id IS NULL
 GROUP BY g.id, w.wallet, f.remaining, f.held;
CREATE OR REPLACE VIEW credit_ledger.usage_daily AS
SELECT date_trunc('day', a.created_at AT TIME ZONE 'UTC')::date AS day, coalesce(o.wallet, w.wallet) AS wallet,
       a.action, a.variant, a.asset,
       sum(coalesce(a.captured_quantity, a.quantity)) AS quantity,
       sum(coalesce(a.captured, a.cost) - a.refunded) AS credits,
       sum(a.vendor_cost) AS vendor_cost,
       count(*) AS calls,
       sum(a.refunded) AS refunded
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of
 WHERE a.status IN ('approved', 'captured')
 GROUP BY 1, 2, a.action, a.variant, a.asset;
CREATE OR REPLACE VIEW credit_ledger.declines_daily AS
SELECT date_trunc('day', a.created_at AT TIME ZONE 'UTC')::date AS day, coalesce(o.wallet, w.wallet) AS wallet,
       a.reason, a.action, count(*) AS declines
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of
 WHERE a.status = 'declined'
 GROUP BY 1, 2, a.reason, a.action;
CREATE OR REPLACE VIEW credit_ledger.pool_usage AS
SELECT m.wallet AS member, t.wallet AS team, x.asset,
       m.pool_limit,
       CASE WHEN s.period_start = credit_ledger._period_start(m.period, m.period_anchor, now())
            THEN s.period_pool_drawn
            WHEN s.wallet_id IS NULL    -- a member without limits keeps no counter: from the journal
            THEN coalesce((SELECT -sum(j.amount) + sum(j.held) FROM credit_ledger.journal j
                            WHERE j.member_id = ANY (d.ids) AND j.wallet_id = t.id AND j.asset = x.asset
                              AND j.kind IN ('debit', 'capture', 'hold', 'release', 'refund', 'run')
                              AND j.at >= credit_ledger._period_start(m.period, m.period_anchor, now())), 0)
            ELSE 0 END AS drawn_this_period,
       coalesce((SELECT -sum(j.amount) + sum(j.held) FROM credit_ledger.journal j
                  WHERE j.member_id = ANY (d.ids) AND j.wallet_id = t.id AND j.asset = x.asset
                    AND j.kind IN ('debit', 'capture', 'hold', 'release', 'refund', 'run')), 0) AS drawn_total
  FROM credit_ledger.wallets m
  JOIN credit_ledger.wallets t ON t.id = m.parent_id
  -- who draws for the member: itself and its agent runs (a run's pool credits are drawn when it
  -- opens, 'run' entries, and what it gives back at close returns)
  CROSS JOIN LATERAL (SELECT array_append(array_agg(r.id), m.id) AS ids
                        FROM credit_ledger.wallets r WHERE r.run_of = m.id) d
  -- every asset the member has a counter for or has drawn from the pool (a member without
  -- limits has no wallet_assets row); a member without either has one row, asset NULL
  LEFT JOIN LATERAL (SELECT a.asset FROM credit_ledger.wallet_assets a WHERE a.wallet_id = m.id
                     UNION
                     SELECT j.asset FROM credit_ledger.journal j
                      WHERE j.wallet_id = t.id AND j.member_id = ANY (d.ids)
                        AND j.kind IN ('debit', 'capture', 'hold', 'release', 'refund', 'run')
                      GROUP BY j.asset HAVING -sum(j.amount) + sum(j.held) <> 0) x ON true
  LEFT JOIN credit_ledger.wallet_assets s ON s.wallet_id = m.id AND s.asset = x.asset;
-- Agent runs (since 0.5.0): per run, action and variant: calls, quantity, credits net of
-- refunds, vendor cost, revenue (the credits at the unit price of the grants they came from:
-- a run's slices carry it) and margin.
CREATE VIEW credit_ledger.run_usage AS
SELECT r.id AS run_id, o.wallet, r.parent_run, r.status, a.action, a.variant, a.asset,
       count(*) AS calls,
       sum(coalesce(a.captured_quantity, a.quantity)) AS quantity,
       sum(coalesce(a.captured, a.cost) - a.refunded) AS credits,
       sum(a.vendor_cost) AS vendor_cost,
       coalesce(sum(m.revenue), 0) AS revenue,
       coalesce(sum(m.revenue), 0) - coalesce(sum(a.vendor_cost), 0) AS margin
  FROM credit_ledger.runs r
  JOIN credit_ledger.wallets o ON o.id = r.wallet_id
  JOIN credit_ledger.authorizations a ON a.wallet_id = r.run_wallet_id
  LEFT JOIN LATERAL (SELECT sum(-j.amount * g.unit_price) AS revenue
                       FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id
                      WHERE j.authorization_id = a.id AND j.kind IN ('debit', 'capture', 'refund')) m ON true
 WHERE a.status IN ('approved', 'captured')
 GROUP BY r.id, o.wallet, r.parent_run, r.status, a.action, a.variant, a.asset;
COMMENT ON VIEW credit_ledger.run_usage IS
    'per agent run, action and variant: calls, quantity, credits net of refunds, vendor cost, revenue and margin';

REVOKE ALL ON TABLE credit_ledger.run_usage FROM PUBLIC;

-- the bundles app and backoffice include the run functions, reader the view run_usage
CREATE OR REPLACE VIEW credit_ledger.privilege_bundles (bundle, privilege, object_type, object_name) AS
SELECT b.bundle, 'EXECUTE', 'function', f.name
  FROM (VALUES
    ('app', ARRAY['credit_authorize', 'credit_hold', 'credit_capture', 'credit_release', 'credit_refund',
                  'credit_quote', 'credit_balance', 'credit_balance_detail', 'credit_grants', 'credit_wallet',
                  'credit_authorization', 'credit_authorization_history', 'credit_event',
                  'credit_run_open', 'credit_run_close', 'credit_run', 'credit_run_tree']),
    ('backoffice', ARRAY['credit_authorize', 'credit_hold', 'credit_capture', 'credit_release', 'credit_refund',
                  'credit_quote', 'credit_balance', 'credit_balance_detail', 'credit_grants', 'credit_wallet',
                  'credit_authorization', 'credit_authorization_history', 'credit_event',
                  'credit_grant', 'credit_wallet_create', 'credit_wallet_update', 'credit_rate_set',
                  'credit_rate_card_load', 'credit_rate_card_export', 'credit_asset_define',
                  'credit_allowance_set', 'credit_team_allocate', 'credit_wallet_lanes',
                  'credit_run_open', 'credit_run_close', 'credit_run', 'credit_run_tree']),
    ('pipeline', ARRAY['credit_usage_trigger', 'credit_authorize']),
    ('cron', ARRAY['credit_tick', 'credit_expire']),
    ('reader', ARRAY['credit_verify', 'credit_event', '_period_start'])
  ) b(bundle, names), unnest(b.names) f(name)
UNION ALL
SELECT 'reader', 'USAGE', 'schema', 'credit_ledger'
UNION ALL
SELECT 'reader', 'SELECT', 'view', 'credit_ledger.' || v.name
  FROM unnest(ARRAY['wallet_balances', 'grant_status', 'usage_daily', 'margin_by_action', 'liability',
                    'breakage', 'declines_daily', 'pool_usage', 'revenue_monthly', 'run_usage']) v(name);

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
