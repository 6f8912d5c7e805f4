-- Since 0.6.0: durable events for consumers, customer statements, and the reversal report of
-- voids and negative adjustments. (credit_grant_void, credit_adjust, credit_transfer and
-- credit_wallet_close are Rust: src/corrections.rs.)
-- Bind every expression in this file to pg_catalog only.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- ---- events ----------------------------------------------------------------------------------
-- An event gets its id when it is written (the NOTIFY carries it) and its place in the stream,
-- `seq`, when a reader first sees it committed: credit_events numbers the committed events
-- that have no seq yet, in id order, one reader at a time (a transaction-scoped advisory lock).
-- So an event committed after a reader passed seq N always gets a seq above N: a consumer that
-- resumes after its last acknowledged seq misses nothing, even when a transaction that wrote
-- an event with a lower id commits late. Call it in a transaction of its own (autocommit): a
-- reader holds the numbering lock until it commits.

CREATE FUNCTION @extschema@.credit_events(after_id bigint DEFAULT NULL, max_rows int DEFAULT 100,
                                          consumer text DEFAULT NULL)
RETURNS TABLE (seq bigint, event_id bigint, at timestamptz, kind text, wallet text, asset text, payload jsonb)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    start bigint := after_id;
    e record;
    n bigint;
BEGIN
    IF max_rows IS NULL OR max_rows < 1 OR max_rows > 10000 THEN
        RAISE EXCEPTION 'max_rows must be between 1 and 10000, got %', coalesce(max_rows::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF consumer IS NOT NULL AND (consumer = '' OR length(consumer) > 255) THEN
        RAISE EXCEPTION 'consumer must be 1 to 255 characters' USING ERRCODE = '22023';
    END IF;
    IF start IS NULL THEN
        -- after what the consumer acknowledged (0: from the first event kept)
        SELECT c.acked_up_to INTO start FROM credit_ledger.event_consumers c WHERE c.consumer = credit_events.consumer;
        start := coalesce(start, 0);
    END IF;
    PERFORM pg_advisory_xact_lock(8245617337100211);   -- 'credit_ledger.events' numbering
    -- (the seq taken first and each row by its key, tenant included, since 0.14.0: on a ledger
    -- Citus distributes, an UPDATE takes no volatile function and goes to the row's shard)
    FOR e IN SELECT x.id, x.tenant FROM credit_ledger.events x WHERE x.seq IS NULL ORDER BY x.id LOOP
        n := nextval('credit_ledger.events_seq');
        UPDATE credit_ledger.events x SET seq = n WHERE x.id = e.id AND x.tenant = e.tenant;
    END LOOP;
    RETURN QUERY
    SELECT x.seq, x.id, x.at, x.kind, w.wallet, x.asset, x.payload
      FROM credit_ledger.events x JOIN credit_ledger.wallets w ON w.id = x.wallet_id AND w.tenant = x.tenant
     WHERE x.seq > start
     ORDER BY x.seq
     LIMIT max_rows;
END $$;

-- A consumer has processed every event up to seq `up_to`. Acknowledgements only move forward;
-- returns the consumer's position.
CREATE FUNCTION @extschema@.credit_events_ack(consumer text, up_to bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    pos bigint;
BEGIN
    IF consumer IS NULL OR consumer = '' OR length(consumer) > 255 THEN
        RAISE EXCEPTION 'consumer must be 1 to 255 characters' USING ERRCODE = '22023';
    END IF;
    IF up_to IS NULL OR up_to < 0 THEN
        RAISE EXCEPTION 'up_to must be a seq of credit_events (0 or more), got %', coalesce(up_to::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF up_to > coalesce((SELECT max(x.seq) FROM credit_ledger.events x), 0) THEN
        RAISE EXCEPTION 'up_to % is beyond the last event read (%)', up_to,
            coalesce((SELECT max(x.seq) FROM credit_ledger.events x), 0)
            USING ERRCODE = '22023', HINT = 'acknowledge a seq that credit_events returned';
    END IF;
    INSERT INTO credit_ledger.event_consumers AS c (consumer, acked_up_to) VALUES (credit_events_ack.consumer, up_to)
    ON CONFLICT ON CONSTRAINT event_consumers_pkey
    DO UPDATE SET acked_up_to = greatest(c.acked_up_to, excluded.acked_up_to), updated_at = now()
    RETURNING c.acked_up_to INTO pos;
    RETURN pos;
END $$;

-- Retention (credit_tick calls it): events older than credit_ledger.event_retention (an
-- interval, default 7 days) that every consumer has acknowledged are deleted. A consumer that
-- never acknowledges keeps every event from its position on: drop it from
-- credit_ledger.event_consumers when it is gone for good.
CREATE FUNCTION credit_ledger._events_trim() RETURNS bigint
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

-- ---- statements ----------------------------------------------------------------------------
-- A wallet's statement for (from_at, to_at]: the opening balance, every change of its balance
-- with its cause, and the closing balance; opening and closing are credit_balance(as_of => ...)
-- and the lines add up from one to the other. A journal entry changes the balance when it is
-- written and when its grant is in effect; a grant's credits leave the balance when it expires
-- (line kind 'expiry', at expires_at, whenever the sweep wrote it), a hold's reservation when
-- its TTL passes ('hold_expired'). Lane moves (between rows of one grant) net to nothing and
-- are not shown.
CREATE FUNCTION @extschema@.credit_statement(wallet text, from_at timestamptz, to_at timestamptz,
                                             asset text DEFAULT 'credits')
RETURNS TABLE (line int, at timestamptz, kind text, authorization_id bigint, operation_id bigint,
               grant_id bigint, action text, amount numeric, balance numeric, actor text, note text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    wid bigint;
    opening numeric;
    -- every read names the wallet's tenant (since 0.14.0: on Citus, its shard alone)
    t text := credit_ledger._wallet_tenant(credit_statement.wallet);
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_statement.wallet, credit_statement.asset);
    SELECT w.id INTO wid FROM credit_ledger.wallets w WHERE w.wallet = credit_statement.wallet AND w.tenant = t;
    IF wid IS NULL THEN
        RAISE EXCEPTION 'wallet "%" does not exist', wallet USING ERRCODE = '42704';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM credit_ledger.assets a WHERE a.asset = credit_statement.asset) THEN
        RAISE EXCEPTION 'asset "%" does not exist', asset USING ERRCODE = '42704';
    END IF;
    IF from_at IS NULL OR to_at IS NULL OR NOT isfinite(from_at) OR NOT isfinite(to_at) OR to_at < from_at THEN
        RAISE EXCEPTION 'from_at and to_at must be finite with from_at <= to_at'
            USING ERRCODE = '22023', DETAIL = format('from_at %s, to_at %s', from_at, to_at);
    END IF;
    opening := @extschema@.credit_balance(credit_statement.wallet, credit_statement.asset, from_at);
    RETURN QUERY
    WITH calls AS (
        -- the calls the wallet's entries name, read whole first (OFFSET 0): a pool's entries
        -- name its members' calls, and on one node a member may since have joined another
        -- pool, of another tenant
        SELECT a.id, a.action, a.expires_at FROM credit_ledger.authorizations a
         WHERE a.id IN (SELECT j.authorization_id FROM credit_ledger.journal j
                         WHERE j.wallet_id = wid AND j.tenant = t AND j.authorization_id IS NOT NULL)
        OFFSET 0
    ), e AS (
        -- every entry on the wallet's grants that counts in credit_balance(as_of): an expiry
        -- or rollover entry of the sweep does not (the credits leave at expires_at), one of a
        -- wallet close does
        SELECT j.id, j.kind, j.authorization_id, j.operation_id, coalesce(g.home_id, g.id) AS grant_id,
               j.amount, j.held, j.actor, j.note, g.expires_at AS exp, a.expires_at AS ttl, a.action,
               CASE WHEN j.kind = 'grant' THEN g.effective_at ELSE greatest(j.at, g.effective_at) END AS t0
          FROM credit_ledger.journal j
          JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
          LEFT JOIN calls a ON a.id = j.authorization_id
         WHERE g.wallet_id = wid AND j.wallet_id = wid AND j.tenant = t AND g.asset = credit_statement.asset
           AND (j.kind NOT IN ('expiry', 'rollover') OR j.operation_id IS NOT NULL)
           -- written after to_at: no effect in the window (a grant's own entry counts from its
           -- effective_at, as in credit_balance(as_of))
           AND (j.at <= to_at OR j.kind = 'grant')
    ), ev AS (
        -- the entry comes into the balance
        SELECT e.t0 AS t, e.kind, e.authorization_id, e.operation_id,
               CASE WHEN e.authorization_id IS NULL AND e.operation_id IS NULL THEN e.grant_id END AS grant_id,
               e.action, e.actor, e.note,
               CASE WHEN e.exp IS NULL OR e.t0 < e.exp THEN e.amount ELSE 0 END
               - CASE WHEN (e.exp IS NULL OR e.t0 < e.exp) AND (e.ttl IS NULL OR e.t0 < e.ttl) THEN e.held ELSE 0 END AS x,
               e.id AS ord
          FROM e
        UNION ALL
        -- a hold's TTL passes before its grant expires: its reservation leaves
        SELECT e.ttl, 'hold_expired', e.authorization_id, NULL, NULL, e.action, NULL, NULL, e.held, e.id
          FROM e WHERE e.held <> 0 AND e.ttl IS NOT NULL AND e.t0 < e.ttl AND (e.exp IS NULL OR e.ttl < e.exp)
        UNION ALL
        -- the grant expires: what the entry left in the balance leaves it
        SELECT e.exp, 'expiry', NULL, NULL, e.grant_id, NULL, NULL, NULL,
               -(e.amount - CASE WHEN e.ttl IS NULL OR e.exp <= e.ttl THEN e.held ELSE 0 END), e.id
          FROM e WHERE e.exp IS NOT NULL AND e.t0 < e.exp
        UNION ALL
        -- overdraft debt taken and settled
        SELECT j.at, j.kind, j.authorization_id, j.operation_id, NULL, a.action, j.actor, j.note, j.amount, j.id
          FROM credit_ledger.journal j LEFT JOIN calls a ON a.id = j.authorization_id
         WHERE j.wallet_id = wid AND j.tenant = t AND j.grant_id IS NULL AND j.asset = credit_statement.asset
    ), lines AS (
        SELECT ev.t, ev.kind, ev.authorization_id, ev.operation_id, ev.grant_id, max(ev.action) AS action,
               sum(ev.x) AS x, max(ev.actor) AS actor, max(ev.note) AS note, min(ev.ord) AS ord
          FROM ev
         WHERE ev.t > from_at AND ev.t <= to_at AND ev.kind <> 'lane'
         GROUP BY ev.t, ev.kind, ev.authorization_id, ev.operation_id, ev.grant_id
        HAVING sum(ev.x) <> 0
    ), numbered AS (
        SELECT l.*, row_number() OVER (ORDER BY l.t, l.ord, l.kind) AS n FROM lines l
    )
    SELECT 0, from_at, 'opening'::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text, NULL::numeric,
           opening, NULL::text, NULL::text
    UNION ALL
    SELECT n.n::int, n.t, n.kind, n.authorization_id, n.operation_id, n.grant_id, n.action, n.x,
           opening + sum(n.x) OVER (ORDER BY n.n), n.actor, n.note
      FROM numbered n
    UNION ALL
    SELECT (SELECT count(*) FROM numbered)::int + 1, to_at, 'closing', NULL, NULL, NULL, NULL, NULL,
           @extschema@.credit_balance(credit_statement.wallet, credit_statement.asset, to_at), NULL, NULL
    ORDER BY 1;
END $$;

-- ---- reversals -----------------------------------------------------------------------------
-- Credits taken back by voids and negative adjustments (journal kind 'adjustment'), per month,
-- asset and category, and the liability they reversed (at the grants' unit price): not revenue,
-- not breakage. Paid credits sold = liability + revenue recognized + breakage + reversed.
CREATE VIEW credit_ledger.reversals AS
SELECT date_trunc('month', j.at AT TIME ZONE 'UTC')::date AS month, j.asset, g.category,
       sum(-j.amount) AS credits_reversed,
       sum(-j.amount * g.unit_price) AS liability_reversed
  FROM credit_ledger.journal j
  JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
 WHERE j.kind = 'adjustment'
 GROUP BY 1, j.asset, g.category;
COMMENT ON VIEW credit_ledger.reversals IS
    'credits taken back by voids and negative adjustments per UTC month, asset and category, and the liability reversed';

-- Who spent: approved calls per UTC day, wallet and actor (the application's actor and the
-- database role), since 0.6.0 (calls from before have NULL who).
CREATE VIEW credit_ledger.usage_by_actor AS
SELECT date_trunc('day', a.created_at AT TIME ZONE 'UTC')::date AS day, coalesce(o.wallet, w.wallet) AS wallet,
       a.actor, a.db_user, a.asset, count(*) AS calls,
       sum(coalesce(a.captured, a.cost) - a.refunded) AS credits
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of AND o.tenant = w.tenant
 WHERE a.status IN ('approved', 'captured')
 GROUP BY 1, 2, a.tenant, a.actor, a.db_user, a.asset;
COMMENT ON VIEW credit_ledger.usage_by_actor IS
    'approved usage per UTC day, wallet, actor and database role: calls and credits net of refunds';

-- Who did what: every operation (void, adjustment, transfer, close) with its actor.
CREATE VIEW credit_ledger.operation_log AS
SELECT o.id AS operation_id, o.created_at, o.kind, w.wallet, t.wallet AS to_wallet, o.grant_id, o.asset,
       o.amount, o.done, o.pending, o.open, o.disposition, o.reason, o.actor, o.db_user, o.db_session_user,
       o.metadata
  FROM credit_ledger.operations o
  JOIN credit_ledger.wallets w ON w.id = o.wallet_id AND w.tenant = o.tenant
  -- a transfer's receiver may be of another tenant: the receivers are read whole first (OFFSET
  -- 0 keeps the subquery apart; Citus then joins its result, not two shards)
  LEFT JOIN (SELECT r.id, r.wallet FROM credit_ledger.wallets r
              WHERE r.id IN (SELECT x.to_wallet_id FROM credit_ledger.operations x WHERE x.to_wallet_id IS NOT NULL)
             OFFSET 0) t ON t.id = o.to_wallet_id;
COMMENT ON VIEW credit_ledger.operation_log IS
    'every void, adjustment, transfer and wallet close: amounts, reason and who did it';

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
