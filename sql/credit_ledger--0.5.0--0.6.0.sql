-- credit_ledger 0.5.0 -> 0.6.0 (frozen once released).
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Issue 19: corrections, transfers, wallet close, who did what, durable events, statements.
-- Columns with a default that names the caller are added without it first, so the rows
-- written before 0.6.0 keep NULL (nobody recorded who wrote them), then get the default.
CREATE FUNCTION credit_ledger._db_user() RETURNS text
LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'db_user_wrapper';
ALTER TABLE credit_ledger.journal
    ADD COLUMN operation_id bigint,
    ADD COLUMN actor text,
    ADD COLUMN db_user text,
    ADD COLUMN db_session_user text;
ALTER TABLE credit_ledger.journal
    ALTER COLUMN actor SET DEFAULT nullif(current_setting('credit_ledger.actor', true), ''),
    ALTER COLUMN db_user SET DEFAULT credit_ledger._db_user(),
    ALTER COLUMN db_session_user SET DEFAULT session_user;
ALTER TABLE credit_ledger.authorizations
    ADD COLUMN actor text,
    ADD COLUMN db_user text,
    ADD COLUMN db_session_user text;
ALTER TABLE credit_ledger.authorizations
    ALTER COLUMN actor SET DEFAULT nullif(current_setting('credit_ledger.actor', true), ''),
    ALTER COLUMN db_user SET DEFAULT credit_ledger._db_user(),
    ALTER COLUMN db_session_user SET DEFAULT session_user;
ALTER TABLE credit_ledger.wallets ADD COLUMN closed_at timestamptz;
ALTER TABLE credit_ledger.grants ADD COLUMN transfer_of bigint;
-- Voids, adjustments, transfers and wallet closes: one row each, with its idempotency key
-- (per wallet: the grant's wallet for a void, from_wallet for a transfer). A void of credits
-- that open holds reserve stays open (pending) until they come back; a void of a whole grant
-- (amount NULL) stays open for good: credits a refund or release gives back are voided too.
CREATE TABLE credit_ledger.operations (
    id              bigserial PRIMARY KEY,
    kind            text    NOT NULL CHECK (kind IN ('void', 'adjust', 'transfer', 'close')),
    wallet_id       bigint  NOT NULL REFERENCES credit_ledger.wallets (id),
    to_wallet_id    bigint  REFERENCES credit_ledger.wallets (id),
    grant_id        bigint  REFERENCES credit_ledger.grants (id),
    asset           text    REFERENCES credit_ledger.assets (asset),
    amount          numeric,             -- requested (a whole void: NULL)
    done            numeric NOT NULL DEFAULT 0,   -- moved (voided, adjusted, transferred, expired)
    pending         numeric NOT NULL DEFAULT 0,   -- a void: held credits still to void
    open            boolean NOT NULL DEFAULT false,
    disposition     text,                -- a close: expire or transfer
    reason          text,
    idempotency_key text,
    request_hash    bigint,
    metadata        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    actor           text DEFAULT nullif(current_setting('credit_ledger.actor', true), ''),
    db_user         text DEFAULT credit_ledger._db_user(),
    db_session_user text DEFAULT session_user
);
CREATE UNIQUE INDEX operations_idempotency ON credit_ledger.operations (wallet_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX operations_open_voids ON credit_ledger.operations (wallet_id) WHERE open;
CREATE INDEX operations_wallet ON credit_ledger.operations (wallet_id, created_at);
-- an operation's entries (credit_verify, credit_wallet_close's rows); only they are indexed
CREATE INDEX journal_operation ON credit_ledger.journal (operation_id) WHERE operation_id IS NOT NULL;
-- What credit_grant_void, credit_adjust, credit_transfer and credit_wallet_close return: one
-- row per asset the operation moved (done), its pending part (a void) and the wallet's balance.
CREATE TYPE @extschema@.credit_operation AS (
    operation_id bigint, kind text, wallet text, to_wallet text, grant_id bigint, asset text,
    amount numeric, done numeric, pending numeric, balance numeric, created_at timestamptz
);

-- Durable events: more kinds, an index for readers, and per-consumer acknowledgements.
-- seq: the event's place in the stream, given when a reader first sees it committed
-- (credit_events); asset NULL: an event of the whole wallet (wallet_closed, wallet_frozen).
ALTER TABLE credit_ledger.events ALTER COLUMN asset DROP NOT NULL, ADD COLUMN seq bigint;
CREATE SEQUENCE credit_ledger.events_seq;
-- the events written before 0.6.0 are committed: their place in the stream is their id
UPDATE credit_ledger.events SET seq = id;
SELECT pg_catalog.setval('credit_ledger.events_seq', coalesce((SELECT pg_catalog.max(id) FROM credit_ledger.events), 0) + 1, false);
CREATE UNIQUE INDEX events_seq_key ON credit_ledger.events (seq);
CREATE INDEX events_unnumbered ON credit_ledger.events (id) WHERE seq IS NULL;
CREATE INDEX events_wallet_kind ON credit_ledger.events (wallet_id, kind, at);
CREATE TABLE credit_ledger.event_consumers (
    consumer   text PRIMARY KEY,
    acked_up_to bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON TABLE credit_ledger.operations, credit_ledger.event_consumers FROM PUBLIC;
REVOKE ALL ON SEQUENCE credit_ledger.operations_id_seq, credit_ledger.events_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_ledger._db_user() FROM PUBLIC;

-- corrections, transfers and closes (Rust: src/corrections.rs)
CREATE FUNCTION @extschema@."credit_grant_void"(
	"grant_id" bigint, /* Option < i64 > */
	"amount" NUMERIC DEFAULT NULL, /* Option < AnyNumeric > */
	"reason" TEXT DEFAULT NULL, /* Option < & str > */
	"idempotency_key" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS SETOF @extschema@.credit_operation /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_grant_void_wrapper';

CREATE FUNCTION @extschema@."credit_adjust"(
	"wallet" TEXT, /* Option < & str > */
	"amount" NUMERIC, /* Option < AnyNumeric > */
	"asset" TEXT DEFAULT 'credits', /* Option < & str > */
	"reason" TEXT DEFAULT NULL, /* Option < & str > */
	"idempotency_key" TEXT DEFAULT NULL, /* Option < & str > */
	"metadata" jsonb DEFAULT NULL /* Option < JsonbText > */
) RETURNS SETOF @extschema@.credit_operation /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_adjust_wrapper';

CREATE FUNCTION @extschema@."credit_transfer"(
	"from_wallet" TEXT, /* Option < & str > */
	"to_wallet" TEXT, /* Option < & str > */
	"amount" NUMERIC, /* Option < AnyNumeric > */
	"asset" TEXT DEFAULT 'credits', /* Option < & str > */
	"reason" TEXT DEFAULT NULL, /* Option < & str > */
	"idempotency_key" TEXT DEFAULT NULL, /* Option < & str > */
	"metadata" jsonb DEFAULT NULL /* Option < JsonbText > */
) RETURNS SETOF @extschema@.credit_operation /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_transfer_wrapper';

CREATE FUNCTION @extschema@."credit_wallet_close"(
	"wallet" TEXT, /* Option < & str > */
	"disposition" TEXT DEFAULT 'expire', /* Option < & str > */
	"to_wallet" TEXT DEFAULT NULL, /* Option < & str > */
	"reason" TEXT DEFAULT NULL, /* Option < & str > */
	"idempotency_key" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS SETOF @extschema@.credit_operation /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_wallet_close_wrapper';

REVOKE ALL ON FUNCTION @extschema@.credit_grant_void(bigint, numeric, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_adjust(text, numeric, text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_transfer(text, text, numeric, text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_wallet_close(text, text, text, text, text) FROM PUBLIC;

-- events, statements and reversals (sql/operations.sql)

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
    FOR e IN SELECT x.id FROM credit_ledger.events x WHERE x.seq IS NULL ORDER BY x.id LOOP
        UPDATE credit_ledger.events x SET seq = nextval('credit_ledger.events_seq') WHERE x.id = e.id;
    END LOOP;
    RETURN QUERY
    SELECT x.seq, x.id, x.at, x.kind, w.wallet, x.asset, x.payload
      FROM credit_ledger.events x JOIN credit_ledger.wallets w ON w.id = x.wallet_id
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
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    WITH d AS (
        DELETE FROM credit_ledger.events x
         WHERE x.seq IS NOT NULL
           AND x.at < now() - coalesce(nullif(current_setting('credit_ledger.event_retention', true), ''), '7 days')::interval
           AND x.seq <= coalesce((SELECT min(c.acked_up_to) FROM credit_ledger.event_consumers c), x.seq)
        RETURNING 1)
    SELECT count(*) FROM d
$$;

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
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_statement.wallet, credit_statement.asset);
    SELECT w.id INTO wid FROM credit_ledger.wallets w WHERE w.wallet = credit_statement.wallet;
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
    WITH e AS (
        -- every entry on the wallet's grants that counts in credit_balance(as_of): an expiry
        -- or rollover entry of the sweep does not (the credits leave at expires_at), one of a
        -- wallet close does
        SELECT j.id, j.kind, j.authorization_id, j.operation_id, coalesce(g.home_id, g.id) AS grant_id,
               j.amount, j.held, j.actor, j.note, g.expires_at AS exp, a.expires_at AS ttl, a.action,
               CASE WHEN j.kind = 'grant' THEN g.effective_at ELSE greatest(j.at, g.effective_at) END AS t0
          FROM credit_ledger.journal j
          JOIN credit_ledger.grants g ON g.id = j.grant_id
          LEFT JOIN credit_ledger.authorizations a ON a.id = j.authorization_id
         WHERE g.wallet_id = wid AND j.wallet_id = wid AND g.asset = credit_statement.asset
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
          FROM credit_ledger.journal j LEFT JOIN credit_ledger.authorizations a ON a.id = j.authorization_id
         WHERE j.wallet_id = wid AND j.grant_id IS NULL AND j.asset = credit_statement.asset
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
  JOIN credit_ledger.grants g ON g.id = j.grant_id
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
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of
 WHERE a.status IN ('approved', 'captured')
 GROUP BY 1, 2, a.actor, a.db_user, a.asset;
COMMENT ON VIEW credit_ledger.usage_by_actor IS
    'approved usage per UTC day, wallet, actor and database role: calls and credits net of refunds';

-- Who did what: every operation (void, adjustment, transfer, close) with its actor.
CREATE VIEW credit_ledger.operation_log AS
SELECT o.id AS operation_id, o.created_at, o.kind, w.wallet, t.wallet AS to_wallet, o.grant_id, o.asset,
       o.amount, o.done, o.pending, o.open, o.disposition, o.reason, o.actor, o.db_user, o.db_session_user,
       o.metadata
  FROM credit_ledger.operations o
  JOIN credit_ledger.wallets w ON w.id = o.wallet_id
  LEFT JOIN credit_ledger.wallets t ON t.id = o.to_wallet_id;
COMMENT ON VIEW credit_ledger.operation_log IS
    'every void, adjustment, transfer and wallet close: amounts, reason and who did it';

REVOKE ALL ON FUNCTION @extschema@.credit_events(bigint, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_events_ack(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_statement(text, timestamptz, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_ledger._events_trim() FROM PUBLIC;
REVOKE ALL ON TABLE credit_ledger.reversals, credit_ledger.operation_log, credit_ledger.usage_by_actor FROM PUBLIC;

-- credit_authorization_history shows who (three more columns): dropped and created again,
-- with the EXECUTE privileges granted on the old one granted on the new one
SELECT pg_catalog.set_config('credit_ledger_upgrade.acl', coalesce((
    SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
               'grantee', a.grantee::pg_catalog.regrole::text, 'grantable', a.is_grantable))::text
      FROM pg_catalog.pg_proc p
      JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE n.nspname = '@extschema@' AND p.proname = 'credit_authorization_history'
       AND a.grantee <> p.proowner AND a.grantee <> 0 AND a.privilege_type = 'EXECUTE'), '[]'), true);
DROP FUNCTION @extschema@.credit_authorization_history(bigint);
CREATE FUNCTION @extschema@.credit_authorization_history(authorization_id bigint)
RETURNS TABLE (entry_id bigint, at timestamptz, kind text, wallet text, grant_id bigint,
               category text, amount numeric, held numeric, note text,
               actor text, db_user text, db_session_user text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    -- who (since 0.6.0): the application's actor, the caller's current_user and session_user
    SELECT j.id, j.at, j.kind, w.wallet, j.grant_id, g.category, j.amount, j.held, j.note,
           j.actor, j.db_user, j.db_session_user
      FROM credit_ledger.journal j
      JOIN credit_ledger.wallets w ON w.id = j.wallet_id
      LEFT JOIN credit_ledger.grants g ON g.id = j.grant_id
     WHERE j.authorization_id = $1
     ORDER BY j.id
$$;
REVOKE ALL ON FUNCTION @extschema@.credit_authorization_history(bigint) FROM PUBLIC;
DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT * FROM pg_catalog.json_to_recordset(
                 pg_catalog.current_setting('credit_ledger_upgrade.acl')::pg_catalog.json)
             AS x(grantee text, grantable boolean) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.credit_authorization_history(bigint) TO %s%s',
            g.grantee, CASE WHEN g.grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END $$;
COMMENT ON FUNCTION @extschema@.credit_authorization_history(bigint) IS 'every journal entry of one authorization';

-- a close's expiry entries count from when they are written (credit_balance as_of)
CREATE OR REPLACE FUNCTION @extschema@.credit_balance(wallet text, asset text DEFAULT 'credits', as_of timestamptz DEFAULT NULL)
RETURNS numeric
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    wid bigint;
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_balance.wallet, credit_balance.asset);
    SELECT w.id INTO wid FROM credit_ledger.wallets w WHERE w.wallet = credit_balance.wallet;
    IF wid IS NULL THEN
        RAISE EXCEPTION 'wallet "%" does not exist', wallet USING ERRCODE = '42704',
            HINT = 'create it with credit_wallet_create()';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM credit_ledger.assets a WHERE a.asset = credit_balance.asset) THEN
        RAISE EXCEPTION 'asset "%" does not exist', asset USING ERRCODE = '42704';
    END IF;
    IF as_of IS NULL THEN
        RETURN credit_ledger._balance(wid, asset);
    END IF;
    -- as of a past instant, from the journal alone. A grant's expiry and rollover entries take
    -- effect at its expires_at, which is after as_of for a grant in effect then, whenever the
    -- sweep or tick wrote them (credit_tick(as_of) in the future, or a late scheduler); a
    -- grant's own entry takes effect at its effective_at, so an allowance period that a late
    -- tick granted afterwards shows in the balances of that period
    RETURN coalesce((
        SELECT sum(j.amount) - coalesce(sum(j.held) FILTER (WHERE a.expires_at IS NULL OR a.expires_at > as_of), 0)
          FROM credit_ledger.journal j
          JOIN credit_ledger.grants g ON g.id = j.grant_id
          LEFT JOIN credit_ledger.authorizations a ON a.id = j.authorization_id
         WHERE g.wallet_id = wid AND j.wallet_id = wid AND g.asset = credit_balance.asset
           AND (j.at <= as_of OR j.kind = 'grant')
           -- the sweep's expiry and rollover entries take effect at expires_at; those of a
           -- wallet close (since 0.6.0: they name the operation) when they are written
           AND (j.kind NOT IN ('expiry', 'rollover') OR j.operation_id IS NOT NULL)
           AND g.effective_at <= as_of AND (g.expires_at IS NULL OR g.expires_at > as_of)), 0)
     + coalesce((
        SELECT sum(j.amount) FROM credit_ledger.journal j
         WHERE j.wallet_id = wid AND j.grant_id IS NULL AND j.asset = credit_balance.asset
           AND j.at <= as_of), 0);
END $$;

-- the new kinds, operations and closed wallets in the integrity checks
CREATE OR REPLACE FUNCTION @extschema@.credit_verify()
RETURNS TABLE (check_name text, subject text, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp
SET jit = off AS $$
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
    -- (a grant a transfer created, since 0.6.0, is filled by one 'transfer' entry)
    SELECT 'grant_conservation', 'grant ' || g.id,
           format('amount %s but grant entries total %s', g.amount,
                  coalesce(sum(j.amount) FILTER (WHERE j.kind = 'grant' OR (g.transfer_of IS NOT NULL AND j.kind = 'transfer' AND j.amount > 0)), 0))
      FROM credit_ledger.grants g LEFT JOIN credit_ledger.journal j ON j.grant_id = g.id
     WHERE g.home_id IS NULL AND g.source_id IS NULL
     GROUP BY g.id, g.amount, g.transfer_of
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
      FROM credit_ledger.grants g LEFT JOIN credit_ledger.grants s ON s.id = g.transfer_of
     WHERE g.transfer_of IS NOT NULL
       AND (s.id IS NULL OR s.asset <> g.asset OR s.category <> g.category OR s.priority <> g.priority
            OR s.expires_at IS DISTINCT FROM g.expires_at OR s.unit_price <> g.unit_price)
    UNION ALL
    -- an operation did what it says: a void voided `done` (no more than requested), an
    -- adjustment moved `amount`, a transfer moved `done`, all through entries that name it
    SELECT 'operation_matches_journal', 'operation ' || o.id,
           format('%s amount %s done %s pending %s; journal %s', o.kind, o.amount, o.done, o.pending, x.moved)
      FROM credit_ledger.operations o
      CROSS JOIN LATERAL (
          SELECT coalesce(sum(j.amount) FILTER (WHERE j.kind = 'adjustment'), 0)
                 + coalesce(sum(j.amount) FILTER (WHERE j.kind = 'grant'), 0)
                 - coalesce(sum(j.amount) FILTER (WHERE j.kind = 'transfer' AND j.wallet_id = o.wallet_id), 0) AS moved
            FROM credit_ledger.journal j WHERE j.operation_id = o.id) x
     WHERE (o.kind = 'void' AND (-x.moved <> o.done OR o.done + o.pending > coalesce(o.amount, o.done + o.pending) OR o.pending < 0
                                 OR (o.open AND o.amount IS NOT NULL AND o.pending > (
                                        SELECT coalesce(sum(g.held), 0) FROM credit_ledger.grants g
                                         WHERE g.id = o.grant_id OR g.home_id = o.grant_id))))
        OR (o.kind = 'adjust' AND (x.moved <> o.amount OR o.done <> o.amount))
        OR (o.kind = 'transfer' AND (x.moved <> o.done OR o.done <> o.amount))
    UNION ALL
    -- a closed wallet keeps no credit and no open hold or run
    SELECT 'closed_wallet_empty', 'wallet ' || w.wallet,
           format('closed at %s but it keeps %s credits, %s open holds, %s open runs', w.closed_at,
                  (SELECT sum(g.remaining) FROM credit_ledger.grants g WHERE g.wallet_id = w.id),
                  (SELECT count(*) FROM credit_ledger.authorizations a WHERE a.wallet_id = w.id AND a.status = 'held'),
                  (SELECT count(*) FROM credit_ledger.runs r WHERE r.wallet_id = w.id AND r.status = 'open'))
      FROM credit_ledger.wallets w
     WHERE w.closed_at IS NOT NULL
       AND (EXISTS (SELECT 1 FROM credit_ledger.grants g WHERE g.wallet_id = w.id AND g.remaining > 0)
            OR EXISTS (SELECT 1 FROM credit_ledger.authorizations a WHERE a.wallet_id = w.id AND a.status = 'held')
            OR EXISTS (SELECT 1 FROM credit_ledger.runs r WHERE r.wallet_id = w.id AND r.status = 'open'))
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
                          'adjustment', 'overdraft', 'settlement', 'lane', 'run', 'transfer')
        OR (j.operation_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit_ledger.operations o WHERE o.id = j.operation_id))
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

-- grant_status: voided and transferred out; margin_by_action: vendor cost per asset
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
        AND f.remaining > 0) AS expiring_soon,
       -- since 0.6.0: taken back by voids and negative adjustments, moved out by transfers
       coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'adjustment'), 0) AS voided,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'transfer' AND j.amount < 0), 0) AS transferred_out
  FROM credit_ledger.grants g
  JOIN credit_ledger.wallets w ON w.id = g.wallet_id
  CROSS JOIN LATERAL (SELECT g.remaining + coalesce(sum(x.remaining), 0) AS remaining,
                             g.held + coalesce(sum(x.held), 0) AS held,
                             array_append(array_agg(x.id), g.id) AS ids
                        FROM credit_ledger.grants x WHERE x.home_id = g.id) f
  LEFT JOIN credit_ledger.journal j ON j.grant_id = ANY (f.ids) AND j.wallet_id = g.wallet_id
 WHERE g.home_id IS NULL AND g.source_id IS NULL
 GROUP BY g.id, w.wallet, f.remaining, f.held;

CREATE OR REPLACE VIEW credit_ledger.margin_by_action AS
SELECT a.action, a.variant, a.asset,
       sum(-j.amount) AS credits,
       sum(-j.amount * coalesce(g.unit_price, 0)) AS revenue,
       coalesce((SELECT sum(x.vendor_cost) FROM credit_ledger.authorizations x
                  WHERE x.action = a.action AND x.variant IS NOT DISTINCT FROM a.variant AND x.asset = a.asset
                    AND x.status IN ('approved', 'captured')), 0) AS vendor_cost,
       sum(-j.amount * coalesce(g.unit_price, 0))
         - coalesce((SELECT sum(x.vendor_cost) FROM credit_ledger.authorizations x
                      WHERE x.action = a.action AND x.variant IS NOT DISTINCT FROM a.variant AND x.asset = a.asset
                        AND x.status IN ('approved', 'captured')), 0) AS margin
  FROM credit_ledger.journal j
  JOIN credit_ledger.authorizations a ON a.id = j.authorization_id
  LEFT JOIN credit_ledger.grants g ON g.id = j.grant_id
 WHERE j.kind IN ('debit', 'capture', 'refund', 'overdraft')
 GROUP BY a.action, a.variant, a.asset;

-- margin headroom and the vendor price what-if (sql/margins.sql; issue 22)

-- Per rate card, action and variant, the entry in effect now: credits per unit, what a credit
-- sells for (the average unit price of the paid credits sold in the asset: amount-weighted, over
-- the grants that are sales, not transfers or slices), revenue and vendor cost per unit, their
-- ratio, the gross margin, and the headroom: the vendor price increase (0.25 = +25%) at which
-- the margin reaches zero. NULL where there is no vendor cost or no paid credit.
CREATE VIEW credit_ledger.margin_headroom AS
WITH cur AS (
    SELECT DISTINCT ON (r.rate_card, r.action, coalesce(r.variant, ''))
           r.rate_card, r.action, r.variant, r.asset, r.unit, r.credits, r.vendor_cost
      FROM credit_ledger.rates r
     WHERE r.effective_from <= now()
     ORDER BY r.rate_card, r.action, coalesce(r.variant, ''), r.effective_from DESC
), price AS (
    SELECT g.asset, sum(g.amount * g.unit_price) / sum(g.amount) AS per_credit
      FROM credit_ledger.grants g
     WHERE g.unit_price > 0 AND g.transfer_of IS NULL AND g.home_id IS NULL AND g.source_id IS NULL
     GROUP BY g.asset
)
SELECT c.rate_card, c.action, c.variant, c.asset, c.unit,
       c.credits AS credits_per_unit,
       round(p.per_credit, 6) AS price_per_credit,
       round(c.credits * p.per_credit, 6) AS revenue_per_unit,
       c.vendor_cost AS vendor_cost_per_unit,
       round(c.credits * p.per_credit / nullif(c.vendor_cost, 0), 4) AS ratio,
       round(1 - c.vendor_cost / nullif(c.credits * p.per_credit, 0), 4) AS gross_margin,
       round(c.credits * p.per_credit / nullif(c.vendor_cost, 0) - 1, 4) AS headroom
  FROM cur c LEFT JOIN price p ON p.asset = c.asset;
COMMENT ON VIEW credit_ledger.margin_headroom IS
    'per rate entry in effect: credits per unit x what paid credits sold for vs vendor cost per unit, ratio, gross margin and the vendor price increase it can absorb';

-- What if every vendor price changed by vendor_cost_change (0.2 = +20%, -0.1 = -10%)? The
-- actions whose margin would be negative: the units used in the last `days` days (approved
-- debits and captured holds), priced at the entry in effect now of their rate card, action and
-- variant, with the revenue per credit those calls really brought (free credits bring none,
-- refunds are taken out). negative_now: the margin is already negative without the change.
CREATE FUNCTION @extschema@.credit_margin_whatif(vendor_cost_change numeric, days int DEFAULT 30)
RETURNS TABLE (rate_card text, action text, variant text, asset text, units numeric, credits numeric,
               revenue numeric, vendor_cost numeric, margin numeric, vendor_cost_after numeric,
               margin_after numeric, negative_now boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
BEGIN
    IF vendor_cost_change IS NULL OR vendor_cost_change = 'NaN'::numeric OR vendor_cost_change < -1
       OR vendor_cost_change > 1000 THEN
        RAISE EXCEPTION 'vendor_cost_change must be a fraction between -1 and 1000 (0.2 = +20%%), got %',
            coalesce(vendor_cost_change::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF days IS NULL OR days < 1 OR days > 3660 THEN
        RAISE EXCEPTION 'days must be between 1 and 3660, got %', coalesce(days::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH used AS (
        -- recent calls by the entry they were priced with
        SELECT r.rate_card, r.action, r.variant, r.asset,
               sum(coalesce(a.captured_quantity, a.quantity)
                   * (1 - a.refunded / nullif(coalesce(a.captured, a.cost), 0))) AS units,
               sum(coalesce(a.captured, a.cost) - a.refunded) AS credits,
               coalesce(sum(m.revenue), 0) AS revenue
          FROM credit_ledger.authorizations a
          JOIN credit_ledger.rates r ON r.id = a.rate_id
          LEFT JOIN LATERAL (SELECT sum(-j.amount * g.unit_price) AS revenue
                               FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id
                              WHERE j.authorization_id = a.id AND j.kind IN ('debit', 'capture', 'refund')) m ON true
         WHERE a.status IN ('approved', 'captured') AND a.created_at >= now() - make_interval(days => credit_margin_whatif.days)
         GROUP BY r.rate_card, r.action, r.variant, r.asset
    ), cur AS (
        SELECT DISTINCT ON (x.rate_card, x.action, coalesce(x.variant, ''))
               x.rate_card, x.action, x.variant, x.credits, x.vendor_cost
          FROM credit_ledger.rates x
         WHERE x.effective_from <= now()
         ORDER BY x.rate_card, x.action, coalesce(x.variant, ''), x.effective_from DESC
    ), priced AS (
        -- at today's entry: credits x what a credit of these calls brought; vendor cost per unit
        SELECT u.rate_card, u.action, u.variant, u.asset, u.units,
               u.units * c.credits AS credits,
               round(u.units * c.credits * (u.revenue / nullif(u.credits, 0)), 6) AS revenue,
               u.units * coalesce(c.vendor_cost, 0) AS vendor_cost
          FROM used u
          JOIN cur c ON c.rate_card = u.rate_card AND c.action = u.action
                    AND c.variant IS NOT DISTINCT FROM u.variant
         WHERE u.units > 0
    )
    -- (amounts rounded to 6 decimals and shown without trailing zeros)
    SELECT p.rate_card, p.action, p.variant, p.asset, trim_scale(round(p.units, 6)),
           trim_scale(round(p.credits, 6)), trim_scale(coalesce(p.revenue, 0)),
           trim_scale(round(p.vendor_cost, 6)), trim_scale(round(coalesce(p.revenue, 0) - p.vendor_cost, 6)),
           trim_scale(round(p.vendor_cost * (1 + vendor_cost_change), 6)),
           trim_scale(coalesce(p.revenue, 0) - round(p.vendor_cost * (1 + vendor_cost_change), 6)),
           coalesce(p.revenue, 0) - p.vendor_cost < 0
      FROM priced p
     WHERE coalesce(p.revenue, 0) - round(p.vendor_cost * (1 + vendor_cost_change), 6) < 0
     ORDER BY coalesce(p.revenue, 0) - round(p.vendor_cost * (1 + vendor_cost_change), 6), p.rate_card, p.action, p.variant;
END $$;

REVOKE ALL ON TABLE credit_ledger.margin_headroom FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_margin_whatif(numeric, integer) FROM PUBLIC;

-- health checks (sql/health.sql; issue 23)

-- the declines of the last hour without reading the approved calls (declines are few; the
-- predicate costs an insert of an approved call nothing but its evaluation)
CREATE INDEX authorizations_declined ON credit_ledger.authorizations (created_at) WHERE status = 'declined';

-- credit_verify() is too heavy for a scrape: a scheduled job records its result here
-- (credit_verify_record), and credit_health() reports the last one and its age.
CREATE TABLE credit_ledger.verify_runs (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    violations  bigint NOT NULL,
    checks      text[] NOT NULL DEFAULT '{}',   -- the names of the violated checks
    duration_ms numeric NOT NULL
);

-- Run credit_verify(), record how many violations it found (and of which checks), return the
-- count. Schedule it (pg_cron: every hour) so credit_health() can report it. Keeps the last
-- 1000 runs.
CREATE FUNCTION @extschema@.credit_verify_record()
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    n bigint;
    names text[];
BEGIN
    SELECT count(*), coalesce(array_agg(DISTINCT v.check_name), '{}')
      INTO n, names FROM @extschema@.credit_verify() v;
    INSERT INTO credit_ledger.verify_runs (violations, checks, duration_ms)
    VALUES (n, names, round(extract(epoch FROM clock_timestamp() - started)::numeric * 1000, 1));
    DELETE FROM credit_ledger.verify_runs r
     WHERE r.id < (SELECT x.id FROM credit_ledger.verify_runs x ORDER BY x.id DESC OFFSET 999 LIMIT 1);
    RETURN n;
END $$;

-- One row per check: status ok | warn | fail, a value (seconds, a count or a ratio) and a
-- detail. Thresholds: lag and age warn after 5 minutes and fail after an hour (verify: warn
-- after a day without a run, fail on any violation); declines warn when the last 5 minutes'
-- rate is 3 times the rate of the 55 minutes before (and at least 20 declines), fail at 10 times.
CREATE FUNCTION @extschema@.credit_health()
RETURNS TABLE (check_name text, status text, value numeric, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    WITH lvl(name, secs) AS (
        -- how long the oldest due work has waited
        SELECT 'tick_lag_expiry', extract(epoch FROM now() - (
            SELECT g.expires_at FROM credit_ledger.grants g
             WHERE g.live AND g.expires_at IS NOT NULL AND g.expires_at <= now()
             ORDER BY g.expires_at LIMIT 1))
        UNION ALL
        SELECT 'tick_lag_allowances', extract(epoch FROM now() - (
            SELECT a.next_boundary FROM credit_ledger.allowances a
             WHERE a.next_boundary <= now() ORDER BY a.next_boundary LIMIT 1))
        UNION ALL
        SELECT 'expired_holds_unswept', extract(epoch FROM now() - (
            SELECT a.expires_at FROM credit_ledger.authorizations a
             WHERE a.status = 'held' AND a.expires_at <= now() ORDER BY a.expires_at LIMIT 1))
        UNION ALL
        SELECT 'expired_runs_unswept', extract(epoch FROM now() - (
            SELECT r.expires_at FROM credit_ledger.runs r
             WHERE r.status = 'open' AND r.expires_at <= now() ORDER BY r.expires_at LIMIT 1))
    )
    SELECT l.name,
           CASE WHEN l.secs IS NULL OR l.secs < 300 THEN 'ok' WHEN l.secs < 3600 THEN 'warn' ELSE 'fail' END,
           round(coalesce(l.secs, 0)::numeric, 1),
           CASE WHEN l.secs IS NULL THEN 'nothing due'
                ELSE format('the oldest due item has waited %s s: is credit_tick() scheduled?', round(l.secs::numeric)) END
      FROM lvl l
    UNION ALL
    -- each event consumer: how far behind the stream it is, and since when
    SELECT 'event_backlog:' || c.consumer,
           CASE WHEN o.at IS NULL OR o.at > now() - interval '5 minutes' THEN 'ok'
                WHEN o.at > now() - interval '1 hour' THEN 'warn' ELSE 'fail' END,
           greatest(coalesce(m.last_seq, 0) - c.acked_up_to, 0),
           format('%s events not acknowledged%s', greatest(coalesce(m.last_seq, 0) - c.acked_up_to, 0),
                  CASE WHEN o.at IS NULL THEN '' ELSE format(', the oldest since %s', o.at) END)
      FROM credit_ledger.event_consumers c
      CROSS JOIN (SELECT max(e.seq) AS last_seq FROM credit_ledger.events e) m
      LEFT JOIN LATERAL (SELECT e.at FROM credit_ledger.events e WHERE e.seq > c.acked_up_to
                          ORDER BY e.seq LIMIT 1) o ON true
    UNION ALL
    -- the last recorded credit_verify()
    SELECT 'verify',
           CASE WHEN v.id IS NULL THEN 'warn' WHEN v.violations > 0 THEN 'fail'
                WHEN v.at < now() - interval '1 day' THEN 'warn' ELSE 'ok' END,
           coalesce(v.violations, 0),
           CASE WHEN v.id IS NULL THEN 'never recorded: schedule SELECT credit_verify_record()'
                ELSE format('%s violations (%s) %s s ago, took %s ms', v.violations,
                            array_to_string(v.checks, ', '), round(extract(epoch FROM now() - v.at)), v.duration_ms) END
      FROM (SELECT 1) one
      LEFT JOIN LATERAL (SELECT r.* FROM credit_ledger.verify_runs r ORDER BY r.id DESC LIMIT 1) v ON true
    UNION ALL
    -- declines of the last 5 minutes against the 55 minutes before (per minute)
    SELECT 'declines_spike',
           CASE WHEN d.recent * 5 < 20 OR d.recent <= 3 * greatest(d.before, 1) THEN 'ok'
                WHEN d.recent <= 10 * greatest(d.before, 1) THEN 'warn' ELSE 'fail' END,
           round(d.recent / greatest(d.before, 1), 2),
           format('%s declines a minute in the last 5 minutes, %s in the 55 before',
                  round(d.recent, 1), round(d.before, 1))
      FROM (SELECT count(*) FILTER (WHERE a.created_at > now() - interval '5 minutes') / 5.0 AS recent,
                   count(*) FILTER (WHERE a.created_at <= now() - interval '5 minutes') / 55.0 AS before
              FROM credit_ledger.authorizations a
             WHERE a.created_at > now() - interval '1 hour' AND a.status = 'declined') d
$$;

REVOKE ALL ON TABLE credit_ledger.verify_runs FROM PUBLIC;
REVOKE ALL ON SEQUENCE credit_ledger.verify_runs_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_health() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_verify_record() FROM PUBLIC;

-- the usage trigger keeps a row it cannot bill with on_decline=mark
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
                     'idempotency_key', 'authorization_id', 'on_decline', 'decline_reason') THEN
            RAISE EXCEPTION 'credit_usage_trigger argument "%" is unknown', k USING ERRCODE = '22023',
                HINT = 'use wallet, action, action_value, quantity, variant, variant_value, idempotency_key, authorization_id, on_decline, decline_reason';
        END IF;
        IF k = 'on_decline' AND v NOT IN ('error', 'mark') THEN
            RAISE EXCEPTION 'credit_usage_trigger argument on_decline must be error or mark, not "%"', v
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
    FOR k IN SELECT key FROM jsonb_each_text(cfg) WHERE key NOT IN ('action_value', 'variant_value', 'on_decline') LOOP
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
                                       metadata => jsonb_build_object('table', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME));
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
    RETURN NEW;
END $$;
COMMENT ON FUNCTION @extschema@.credit_usage_trigger() IS
    'BEFORE INSERT row trigger that authorizes each usage row; arguments name=column (wallet, action|action_value, quantity, variant, idempotency_key, authorization_id, on_decline, decline_reason)';

-- the bundles name the new functions and views
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
                  'credit_events', 'credit_events_ack', 'credit_margin_whatif']),
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
                    'reversals', 'operation_log', 'usage_by_actor', 'margin_headroom']) v(name);

SELECT pg_catalog.pg_extension_config_dump('credit_ledger.operations', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.operations_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.event_consumers', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.events_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.verify_runs', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.verify_runs_id_seq', '');
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
