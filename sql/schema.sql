-- credit_ledger schema: tables, indexes, named types. Loaded first (bootstrap).
-- Every data table lives in schema credit_ledger; the named API types live in the
-- extension's schema (public by default) so callers can use them unqualified.
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) before CREATE EXTENSION must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

CREATE SCHEMA credit_ledger;
REVOKE ALL ON SCHEMA credit_ledger FROM PUBLIC;

CREATE TABLE credit_ledger.assets (
    asset       text PRIMARY KEY,
    scale       int  NOT NULL CHECK (scale BETWEEN 0 AND 12),
    description text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO credit_ledger.assets (asset, scale, description)
VALUES ('credits', 4, 'built-in credit asset');

CREATE TABLE credit_ledger.rate_cards (
    rate_card   text PRIMARY KEY,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO credit_ledger.rate_cards (rate_card, description) VALUES ('default', 'built-in default card');

CREATE TABLE credit_ledger.wallets (
    id                    bigserial PRIMARY KEY,
    wallet                text NOT NULL UNIQUE,
    parent_id             bigint REFERENCES credit_ledger.wallets (id),
    rate_card             text REFERENCES credit_ledger.rate_cards (rate_card),
    overdraft_limit       numeric NOT NULL DEFAULT 0 CHECK (overdraft_limit >= 0),
    low_balance_threshold numeric,
    spend_cap             numeric CHECK (spend_cap >= 0),
    pool_limit            numeric CHECK (pool_limit >= 0),
    period                interval,          -- NULL: calendar months in UTC
    period_anchor         timestamptz,       -- start of the first period when period is set
    frozen                boolean NOT NULL DEFAULT false,
    tracked               boolean NOT NULL DEFAULT false,  -- uses wallet_assets (limits, overdraft, alerts); never reset
    metadata              jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    -- spending lanes (since 0.4.0): 1 = one spender at a time (the row lock); n > 1 = n lanes
    -- of credits that n spenders use at once (see credit_ledger.lanes and docs/performance.md "Lanes")
    lanes                 int NOT NULL DEFAULT 1 CHECK (lanes BETWEEN 1 AND 64),
    -- agent runs (since 0.5.0): the wallet of a run (its budget's slices are its grants) names
    -- the wallet that opened it; NULL for every other wallet
    run_of                bigint REFERENCES credit_ledger.wallets (id),
    CHECK (parent_id IS DISTINCT FROM id)
);
CREATE INDEX wallets_parent ON credit_ledger.wallets (parent_id) WHERE parent_id IS NOT NULL;

-- Per wallet x asset running state that is not derivable without scanning history:
-- overdraft debt, the current period's spend and pool draw, and the low-balance alert latch.
-- Only touched when the wallet uses the feature; the wallet row lock serialises writers.
CREATE TABLE credit_ledger.wallet_assets (
    wallet_id         bigint NOT NULL REFERENCES credit_ledger.wallets (id),
    asset             text   NOT NULL REFERENCES credit_ledger.assets (asset),
    debt              numeric NOT NULL DEFAULT 0 CHECK (debt >= 0),
    period_start      timestamptz,
    period_spent      numeric NOT NULL DEFAULT 0,
    period_pool_drawn numeric NOT NULL DEFAULT 0,
    below_threshold   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (wallet_id, asset)
);

CREATE TABLE credit_ledger.grants (
    id              bigserial PRIMARY KEY,
    wallet_id       bigint  NOT NULL REFERENCES credit_ledger.wallets (id),
    asset           text    NOT NULL REFERENCES credit_ledger.assets (asset),
    category        text    NOT NULL,
    priority        int     NOT NULL,
    amount          numeric NOT NULL,
    remaining       numeric NOT NULL,
    held            numeric NOT NULL DEFAULT 0,
    live            boolean NOT NULL DEFAULT true,   -- remaining > 0; flips rarely so debits stay HOT updates
    effective_at    timestamptz NOT NULL,
    expires_at      timestamptz,
    unit_price      numeric NOT NULL DEFAULT 0,
    idempotency_key text,
    request_hash    bigint,
    metadata        jsonb,
    source          text,     -- what created it: api, allocation, allowance, rollover
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Lanes (since 0.4.0): a grant of a wallet with lanes > 1 is split into slices, one per lane,
    -- each a grants row of its own (home_id = the grant as the API shows it, lane = its lane);
    -- the home row keeps amount and metadata and moves its credits to the slices ('lane'
    -- journal entries). NULL for every grant of a one-lane wallet.
    lane            int,
    home_id         bigint,
    -- Runs (since 0.5.0): a grant of a run's wallet is a slice of the row its credits came from
    -- (a grant or lane slice of the wallet or its pool, or a slice of the parent run), which
    -- gets them back when the run closes ('run' journal entries). NULL for every other grant.
    source_id       bigint,
    -- One small CHECK on what debits change (PostgreSQL re-reads and compiles every CHECK of
    -- the table on every UPDATE statement, so its size is paid by every debit): the last line of
    -- defence against overspend, whatever the code above it does (held >= 0 and held <=
    -- remaining imply remaining >= 0). The columns only set on insert (amount > 0,
    -- unit_price >= 0, expires_at after effective_at) are validated by credit_grant and
    -- checked by credit_verify().
    CONSTRAINT grants_bounds CHECK (held >= 0 AND held <= remaining AND remaining <= amount)
) WITH (fillfactor = 80);
CREATE UNIQUE INDEX grants_idempotency ON credit_ledger.grants (wallet_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- The consumption-order walk: priority, expiry (never-expiring last), oldest first.
CREATE INDEX grants_spendable ON credit_ledger.grants (wallet_id, asset, priority, expires_at, id)
    WHERE live;
CREATE INDEX grants_wallet ON credit_ledger.grants (wallet_id, asset);
CREATE INDEX grants_expiring ON credit_ledger.grants (expires_at) WHERE live AND expires_at IS NOT NULL;
-- The walk of one lane's slices (a one-lane wallet's grants are not in it: no cost to them).
CREATE INDEX grants_lane_walk ON credit_ledger.grants (wallet_id, asset, lane, priority, expires_at, home_id)
    WHERE live AND home_id IS NOT NULL;
CREATE INDEX grants_home ON credit_ledger.grants (home_id) WHERE home_id IS NOT NULL;
-- No index on source_id (dropped in 0.15.0): no statement looks a grant up by its source (a run's
-- grants reach their sources through the primary key), and every debit's UPDATE opened it.

-- Spending lanes of a wallet x asset (since 0.4.0; only wallets with lanes > 1 have rows). A
-- spender locks one lane row (FOR NO KEY UPDATE SKIP LOCKED) and spends the slices of that lane
-- only, so spenders of one wallet do not wait for each other; `free` is what the lane's slices
-- had spendable when it was last written (a hint that picks a lane: the walk under the lock
-- decides). Operations on the whole wallet lock every lane, in lane order.
CREATE TABLE credit_ledger.lanes (
    wallet_id bigint NOT NULL REFERENCES credit_ledger.wallets (id),
    asset     text   NOT NULL REFERENCES credit_ledger.assets (asset),
    lane      int    NOT NULL,
    free      numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (wallet_id, asset, lane),
    -- the wallet's spend cap sliced over its lanes (since 0.10.0): in period `cap_period`, the
    -- lane may still spend `cap_room` under the cap, and `cap_spent` is what it spent that is
    -- not yet in wallet_assets.period_spent (the period's spend is their sum). Given out and
    -- folded back only by a caller that holds the whole wallet (see src/lane_caps.rs).
    cap_period timestamptz,
    cap_room   numeric NOT NULL DEFAULT 0,
    cap_spent  numeric NOT NULL DEFAULT 0
) WITH (fillfactor = 50);

-- A pool member's own limit sliced over its pool's lanes (since 0.11.0, issue 17): a *limited
-- member* (one lane, a pool limit or spend cap of its own and no other setting that needs its
-- row, no grant of its own, a pool with lanes) spends without its row lock. Row (member, asset,
-- lane) holds `room`, what a spender holding that lane of the pool may still draw for the member
-- under its limits in period `period`, and `spent`, what such spenders drew that the member's
-- counters (wallet_assets.period_spent and period_pool_drawn) do not hold yet: both counters are
-- the counter plus the rows' `spent`. A row is written only by a holder of the pool's lane of the
-- same number (see src/member_rooms.rs).
CREATE TABLE credit_ledger.member_rooms (
    wallet_id bigint      NOT NULL REFERENCES credit_ledger.wallets (id),
    asset     text        NOT NULL REFERENCES credit_ledger.assets (asset),
    lane      int         NOT NULL,
    period    timestamptz NOT NULL,
    room      numeric     NOT NULL DEFAULT 0,
    spent     numeric     NOT NULL DEFAULT 0,
    PRIMARY KEY (wallet_id, asset, lane)
) WITH (fillfactor = 50);

CREATE TABLE credit_ledger.rates (
    id             bigserial PRIMARY KEY,
    rate_card      text    NOT NULL REFERENCES credit_ledger.rate_cards (rate_card),
    action         text    NOT NULL,
    variant        text,
    credits        numeric NOT NULL CHECK (credits >= 0),
    asset          text    NOT NULL REFERENCES credit_ledger.assets (asset),
    unit           text    NOT NULL DEFAULT 'unit',
    vendor_cost    numeric CHECK (vendor_cost >= 0),
    effective_from timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX rates_version ON credit_ledger.rates
    (action, rate_card, coalesce(variant, ''), effective_from);
CREATE INDEX rates_lookup ON credit_ledger.rates (action, rate_card, variant, effective_from DESC);

CREATE TABLE credit_ledger.authorizations (
    id               bigserial PRIMARY KEY,
    wallet_id        bigint  NOT NULL,   -- references wallets; checked by credit_verify()
    kind             text    NOT NULL,   -- debit | hold
    status           text    NOT NULL,   -- approved | declined | held | captured | released | expired
    reason           text,
    action           text    NOT NULL,
    variant          text,
    quantity         numeric NOT NULL,
    rate_id          bigint,
    asset            text    NOT NULL,
    cost             numeric NOT NULL DEFAULT 0,     -- credits debited (debit) or reserved (hold)
    vendor_cost      numeric,
    pool_amount      numeric NOT NULL DEFAULT 0,     -- part of cost drawn from the parent pool
    overdraft_amount numeric NOT NULL DEFAULT 0,     -- part of cost taken as overdraft debt
    captured         numeric,                        -- holds: credits finally spent
    captured_quantity numeric,
    refunded         numeric NOT NULL DEFAULT 0,
    balance_after    numeric,
    idempotency_key  text,
    request_hash     bigint,
    close_key        text,                           -- idempotency key of the capture/release
    close_hash       bigint,
    metadata         jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz,                    -- holds: end of TTL
    closed_at        timestamptz
);
CREATE UNIQUE INDEX authorizations_idempotency ON credit_ledger.authorizations (wallet_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX authorizations_open_holds ON credit_ledger.authorizations (expires_at)
    WHERE status = 'held';
-- BRIN: authorizations are appended in created_at order, so a block range summary serves
-- "calls between t1 and t2" at a fraction of a btree's cost on every insert.
CREATE INDEX authorizations_created ON credit_ledger.authorizations USING brin (created_at);
CREATE INDEX authorizations_wallet_created ON credit_ledger.authorizations (wallet_id, created_at);

-- The two hot tables (authorizations, journal) carry no foreign keys or enum CHECKs: they are
-- written only by this extension's functions, and each FK or CHECK costs every debit a trigger
-- query or an expression parse. credit_verify() checks the same rules (orphans, kinds, states).
-- The append-only journal. amount is the change to a grant's remaining (or, with grant_id NULL,
-- to the wallet's overdraft position: negative = debt taken, positive = debt settled);
-- held is the change to the grant's held amount.
CREATE TABLE credit_ledger.journal (
    id               bigserial PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT now(),
    wallet_id        bigint  NOT NULL,
    grant_id         bigint,
    asset            text    NOT NULL,
    kind             text    NOT NULL,   -- grant debit hold capture release refund expiry rollover
                                         -- adjustment overdraft settlement
    amount           numeric NOT NULL DEFAULT 0,
    held             numeric NOT NULL DEFAULT 0,
    authorization_id bigint,
    member_id        bigint,             -- who drew (pool attribution)
    note             text
);
-- No index on grant_id: every debit's journal row would pay for it. A grant's entries are found
-- through its wallet (journal_wallet_at: an entry of a grant carries the grant's wallet, which
-- credit_verify() checks) or through the authorization.
CREATE INDEX journal_authorization ON credit_ledger.journal (authorization_id);
CREATE INDEX journal_wallet_at ON credit_ledger.journal (wallet_id, at);

CREATE TABLE credit_ledger.refunds (
    id               bigserial PRIMARY KEY,
    authorization_id bigint  NOT NULL REFERENCES credit_ledger.authorizations (id),
    wallet_id        bigint  NOT NULL REFERENCES credit_ledger.wallets (id),
    amount           numeric NOT NULL CHECK (amount > 0),
    reason           text,
    idempotency_key  text,
    request_hash     bigint,
    metadata         jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX refunds_idempotency ON credit_ledger.refunds (wallet_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX refunds_authorization ON credit_ledger.refunds (authorization_id);

-- Agent runs (since 0.5.0): a budget envelope reserved from a wallet (or a parent run) and
-- spent by calls made with run => id. run_wallet_id is the run's own wallet (NULL when the
-- opening was declined); see docs/concepts.md "Agent runs".
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

-- Named API types (in the extension's schema).
CREATE TYPE @extschema@.credit_wallet AS (
    wallet text, parent text, rate_card text, overdraft_limit numeric,
    low_balance_threshold numeric, spend_cap numeric, pool_limit numeric,
    period interval, frozen boolean, metadata jsonb, created_at timestamptz
);
CREATE TYPE @extschema@.credit_grant AS (
    id bigint, wallet text, asset text, category text, priority int, amount numeric,
    remaining numeric, held numeric, effective_at timestamptz, expires_at timestamptz,
    unit_price numeric, metadata jsonb, created_at timestamptz
);
CREATE TYPE @extschema@.credit_rate AS (
    id bigint, rate_card text, action text, variant text, credits numeric, asset text,
    unit text, vendor_cost numeric, effective_from timestamptz
);
CREATE TYPE @extschema@.credit_authorization AS (
    authorization_id bigint, approved boolean, reason text, cost numeric, asset text,
    balance numeric, wallet text, kind text, status text, action text, variant text,
    quantity numeric, rate_id bigint, vendor_cost numeric, captured numeric,
    refunded numeric, expires_at timestamptz, idempotency_key text, created_at timestamptz
);

-- ---- internal helpers used by the Rust code -------------------------------------------------

-- credit_ledger._period_start(p, anchor, at) and _period_next(p, anchor, at) are Rust
-- (src/period.rs, src/lifecycle.rs): UTC boundaries anchor + k x p computed from the anchor.

-- A wallet's own balance now: effective, unexpired grants' remaining minus what open,
-- unexpired holds reserve, minus overdraft debt.
CREATE FUNCTION credit_ledger._balance(wallet_id bigint, asset text)
RETURNS numeric LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((
        SELECT sum(g.remaining - g.held)
          FROM credit_ledger.grants g
         WHERE g.wallet_id = $1 AND g.asset = $2 AND g.live
           AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now())), 0)
    + coalesce((
        -- held by holds whose ttl has passed but that are not finalized yet: no longer reserved
        SELECT sum(j.held)
          FROM credit_ledger.authorizations a
          JOIN credit_ledger.journal j ON j.authorization_id = a.id
          JOIN credit_ledger.grants g ON g.id = j.grant_id
         WHERE a.status = 'held' AND a.expires_at <= now() AND g.wallet_id = $1 AND g.asset = $2
           AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now())), 0)
    - coalesce((SELECT s.debt FROM credit_ledger.wallet_assets s WHERE s.wallet_id = $1 AND s.asset = $2), 0)
$$;

-- Recurring allowances: `amount` of `asset` per period, category included, with a rollover policy.
CREATE TABLE credit_ledger.allowances (
    id               bigserial PRIMARY KEY,
    wallet_id        bigint  NOT NULL REFERENCES credit_ledger.wallets (id),
    asset            text    NOT NULL REFERENCES credit_ledger.assets (asset),
    amount           numeric NOT NULL CHECK (amount > 0),
    period           interval NOT NULL,
    anchor           timestamptz NOT NULL,
    rollover_cap     numeric NOT NULL DEFAULT 0 CHECK (rollover_cap >= 0),
    rollover_shares  numeric[],
    next_boundary    timestamptz NOT NULL,
    current_grant_id bigint REFERENCES credit_ledger.grants (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (wallet_id, asset)
);
CREATE INDEX allowances_due ON credit_ledger.allowances (next_boundary);

-- Events (since 0.3.0): a low-balance alert is a row here, and the NOTIFY on channel
-- credit_ledger carries only its id, because any role can LISTEN: consumers read the event
-- with credit_event(id), which only granted roles may call.
CREATE TABLE credit_ledger.events (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text NOT NULL,
    wallet_id bigint NOT NULL,
    asset     text NOT NULL,
    payload   jsonb NOT NULL
);

-- ---- corrections, transfers, wallet close, who did what, events (since 0.6.0) ----------------

-- Who did it: the role the session acts as outside this extension's SECURITY DEFINER functions
-- (current_user as the caller saw it), in src/corrections.rs.
CREATE FUNCTION credit_ledger._db_user() RETURNS text
LANGUAGE c STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'db_user_wrapper';

-- Every journal entry and authorization records who did it: the caller's current_user, its
-- session_user and the application's actor (SET credit_ledger.actor = 'user:123'). Column
-- defaults, so every statement that writes them records it; NULL on rows written before 0.6.0.
ALTER TABLE credit_ledger.journal
    ADD COLUMN operation_id bigint,      -- the correction, transfer or close that wrote it
    ADD COLUMN actor text DEFAULT nullif(current_setting('credit_ledger.actor', true), ''),
    ADD COLUMN db_user text DEFAULT credit_ledger._db_user(),
    ADD COLUMN db_session_user text DEFAULT session_user;
ALTER TABLE credit_ledger.authorizations
    ADD COLUMN actor text DEFAULT nullif(current_setting('credit_ledger.actor', true), ''),
    ADD COLUMN db_user text DEFAULT credit_ledger._db_user(),
    ADD COLUMN db_session_user text DEFAULT session_user;
-- A closed wallet (credit_wallet_close) accepts nothing more and keeps its history.
ALTER TABLE credit_ledger.wallets ADD COLUMN closed_at timestamptz;
-- A grant a transfer created: the grant its credits came from (category, priority, expiry and
-- unit price are that grant's). NULL for every other grant.
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
CREATE UNIQUE INDEX events_seq_key ON credit_ledger.events (seq);
CREATE INDEX events_unnumbered ON credit_ledger.events (id) WHERE seq IS NULL;
CREATE INDEX events_wallet_kind ON credit_ledger.events (wallet_id, kind, at);
CREATE TABLE credit_ledger.event_consumers (
    consumer   text PRIMARY KEY,
    acked_up_to bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- ---- the overage menu (since 0.7.0) -----------------------------------------------------------
-- Degrade: a rate entry may name the variant of the same action that a call with
-- degrade => true tries next when this one is unaffordable (part of the entry's version).
ALTER TABLE credit_ledger.rates ADD COLUMN fallback text;
ALTER TYPE @extschema@.credit_rate ADD ATTRIBUTE fallback text;
-- A degraded call: variant is the one authorized, requested_variant the one asked for.
ALTER TABLE credit_ledger.authorizations
    ADD COLUMN degraded boolean NOT NULL DEFAULT false,
    ADD COLUMN requested_variant text;
-- The rare calls the reports and health checks look for by time: declined (credit_health's
-- declines of the last hour, credit_metrics) and degraded (degraded_calls). One partial index
-- for both since 0.15.0 (before: one each): a query on either predicate implies this one, and
-- every insert of a call opens and tests one index instead of two.
CREATE INDEX authorizations_declined_degraded ON credit_ledger.authorizations (created_at)
    WHERE status = 'declined' OR degraded;
-- Per wallet and asset: the auto top-up amount (its threshold is the wallet's
-- low_balance_threshold), the crossings announced so far (the n-th event's idempotency key is
-- auto_topup.<n>) and the period-usage tiers that suggest an upgrade (credit_tick).
CREATE TABLE credit_ledger.wallet_overage (
    wallet_id         bigint  NOT NULL REFERENCES credit_ledger.wallets (id),
    asset             text    NOT NULL REFERENCES credit_ledger.assets (asset),
    auto_topup_amount numeric CHECK (auto_topup_amount > 0),
    topups            bigint  NOT NULL DEFAULT 0,
    upgrade_at        numeric[],
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wallet_id, asset)
);

-- ---- volume tiers (since 0.8.0) -----------------------------------------------------------------
-- A rate entry's graduated tiers, part of its version: [{"from": 1000, "credits": 12}, ...], from
-- strictly increasing, each price at most the one before (the entry's credits before the first).
ALTER TABLE credit_ledger.rates ADD COLUMN tiers jsonb;
ALTER TYPE @extschema@.credit_rate ADD ATTRIBUTE tiers jsonb;
-- Units spent per wallet, action and variant ('' for none) in the wallet's period: the position a
-- tiered call is priced from. A call in an agent run counts on the wallet that opened the run.
-- The row is locked by the call that prices from it, so concurrent tiered calls are exact.
CREATE TABLE credit_ledger.tier_usage (
    wallet_id    bigint      NOT NULL REFERENCES credit_ledger.wallets (id),
    action       text        NOT NULL,
    variant      text        NOT NULL DEFAULT '',
    period_start timestamptz NOT NULL,
    units        numeric     NOT NULL DEFAULT 0 CHECK (units >= 0),
    PRIMARY KEY (wallet_id, action, variant, period_start)
);

-- ---- fair use (since 0.8.0) ---------------------------------------------------------------------
-- A wallet's fair-use allowance per period in an asset (set with credit_wallet_overage): its
-- calls in that asset are paid by fair use, not credits, up to the limit.
ALTER TABLE credit_ledger.wallet_overage ADD COLUMN fair_use_limit numeric CHECK (fair_use_limit > 0);
-- A call paid by fair use: its cost and vendor cost are recorded, nothing moved in the journal.
ALTER TABLE credit_ledger.authorizations ADD COLUMN fair_use boolean NOT NULL DEFAULT false;
-- The fair use of a wallet and asset in a period (its cost at the rate card's prices), locked
-- by the call that reads it: concurrent calls of one wallet are admitted exactly.
CREATE TABLE credit_ledger.fair_use_usage (
    wallet_id    bigint      NOT NULL REFERENCES credit_ledger.wallets (id),
    asset        text        NOT NULL REFERENCES credit_ledger.assets (asset),
    period_start timestamptz NOT NULL,
    used         numeric     NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (wallet_id, asset, period_start)
);

-- ---- tenants (since 0.12.0, issue 20) -----------------------------------------------------------
-- Every ledger row names its tenant: the key of the team pool for a pool and its members, the
-- wallet's own key for a wallet without a pool, the opener's tenant for a run's wallet; a row of
-- a wallet carries that wallet's tenant. It is what a Citus cluster distributes the ledger by
-- (a member's spend and its pool draw on one shard); on one node it only labels rows. See
-- docs/design.md "Scale-out on Citus".
ALTER TABLE credit_ledger.wallets ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.wallet_assets ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.grants ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.lanes ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.member_rooms ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.authorizations ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.journal ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.refunds ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.runs ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.allowances ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.events ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.operations ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.wallet_overage ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.tier_usage ADD COLUMN tenant text NOT NULL;
ALTER TABLE credit_ledger.fair_use_usage ADD COLUMN tenant text NOT NULL;

-- Keys (since 0.12.0): every primary, unique and foreign key of the wallet-keyed tables names the
-- tenant as well, as Citus requires of a distributed table (a unique key must contain the
-- distribution column; a foreign key between two of them must join on it). On one node they are
-- as unique as before (ids come from one sequence each, and a wallet's rows carry one tenant) and
-- serve the same lookups (the tenant is their last column). A wallet key stays unique over the
-- whole ledger through credit_ledger.wallet_keys. A transfer's receiving wallet may be in
-- another tenant: operations.to_wallet_id has no foreign key (credit_verify() checks it).
ALTER TABLE credit_ledger.wallets DROP CONSTRAINT wallets_parent_id_fkey, DROP CONSTRAINT wallets_run_of_fkey;
ALTER TABLE credit_ledger.wallet_assets DROP CONSTRAINT wallet_assets_wallet_id_fkey;
ALTER TABLE credit_ledger.grants DROP CONSTRAINT grants_wallet_id_fkey;
ALTER TABLE credit_ledger.lanes DROP CONSTRAINT lanes_wallet_id_fkey;
ALTER TABLE credit_ledger.member_rooms DROP CONSTRAINT member_rooms_wallet_id_fkey;
ALTER TABLE credit_ledger.refunds DROP CONSTRAINT refunds_authorization_id_fkey, DROP CONSTRAINT refunds_wallet_id_fkey;
ALTER TABLE credit_ledger.runs DROP CONSTRAINT runs_parent_run_fkey, DROP CONSTRAINT runs_run_wallet_id_fkey,
    DROP CONSTRAINT runs_wallet_id_fkey;
ALTER TABLE credit_ledger.allowances DROP CONSTRAINT allowances_current_grant_id_fkey, DROP CONSTRAINT allowances_wallet_id_fkey;
ALTER TABLE credit_ledger.operations DROP CONSTRAINT operations_grant_id_fkey, DROP CONSTRAINT operations_to_wallet_id_fkey,
    DROP CONSTRAINT operations_wallet_id_fkey;
ALTER TABLE credit_ledger.wallet_overage DROP CONSTRAINT wallet_overage_wallet_id_fkey;
ALTER TABLE credit_ledger.tier_usage DROP CONSTRAINT tier_usage_wallet_id_fkey;
ALTER TABLE credit_ledger.fair_use_usage DROP CONSTRAINT fair_use_usage_wallet_id_fkey;

ALTER TABLE credit_ledger.wallets DROP CONSTRAINT wallets_pkey, ADD PRIMARY KEY (id, tenant),
    DROP CONSTRAINT wallets_wallet_key, ADD UNIQUE (wallet, tenant);
ALTER TABLE credit_ledger.wallet_assets DROP CONSTRAINT wallet_assets_pkey, ADD PRIMARY KEY (wallet_id, asset, tenant);
ALTER TABLE credit_ledger.grants DROP CONSTRAINT grants_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE credit_ledger.lanes DROP CONSTRAINT lanes_pkey, ADD PRIMARY KEY (wallet_id, asset, lane, tenant);
ALTER TABLE credit_ledger.member_rooms DROP CONSTRAINT member_rooms_pkey, ADD PRIMARY KEY (wallet_id, asset, lane, tenant);
ALTER TABLE credit_ledger.authorizations DROP CONSTRAINT authorizations_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE credit_ledger.journal DROP CONSTRAINT journal_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE credit_ledger.refunds DROP CONSTRAINT refunds_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE credit_ledger.runs DROP CONSTRAINT runs_pkey, ADD PRIMARY KEY (id, tenant),
    DROP CONSTRAINT runs_run_wallet_id_key, ADD UNIQUE (run_wallet_id, tenant);
ALTER TABLE credit_ledger.allowances DROP CONSTRAINT allowances_pkey, ADD PRIMARY KEY (id, tenant),
    DROP CONSTRAINT allowances_wallet_id_asset_key, ADD UNIQUE (wallet_id, asset, tenant);
ALTER TABLE credit_ledger.events DROP CONSTRAINT events_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE credit_ledger.operations DROP CONSTRAINT operations_pkey, ADD PRIMARY KEY (id, tenant);
ALTER TABLE credit_ledger.wallet_overage DROP CONSTRAINT wallet_overage_pkey, ADD PRIMARY KEY (wallet_id, asset, tenant);
ALTER TABLE credit_ledger.tier_usage DROP CONSTRAINT tier_usage_pkey,
    ADD PRIMARY KEY (wallet_id, action, variant, period_start, tenant);
ALTER TABLE credit_ledger.fair_use_usage DROP CONSTRAINT fair_use_usage_pkey, ADD PRIMARY KEY (wallet_id, asset, period_start, tenant);
DROP INDEX credit_ledger.grants_idempotency;
CREATE UNIQUE INDEX grants_idempotency ON credit_ledger.grants (wallet_id, idempotency_key, tenant)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX credit_ledger.authorizations_idempotency;
CREATE UNIQUE INDEX authorizations_idempotency ON credit_ledger.authorizations (wallet_id, idempotency_key, tenant)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX credit_ledger.refunds_idempotency;
CREATE UNIQUE INDEX refunds_idempotency ON credit_ledger.refunds (wallet_id, idempotency_key, tenant)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX credit_ledger.runs_idempotency;
CREATE UNIQUE INDEX runs_idempotency ON credit_ledger.runs (wallet_id, idempotency_key, tenant)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX credit_ledger.operations_idempotency;
CREATE UNIQUE INDEX operations_idempotency ON credit_ledger.operations (wallet_id, idempotency_key, tenant)
    WHERE idempotency_key IS NOT NULL;
-- an event's place in the stream is given once, from one sequence (credit_events)
DROP INDEX credit_ledger.events_seq_key;
CREATE UNIQUE INDEX events_seq_key ON credit_ledger.events (seq, tenant);

ALTER TABLE credit_ledger.wallets
    ADD FOREIGN KEY (parent_id, tenant) REFERENCES credit_ledger.wallets (id, tenant),
    ADD FOREIGN KEY (run_of, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.wallet_assets ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.grants ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.lanes ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.member_rooms ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.refunds
    ADD FOREIGN KEY (authorization_id, tenant) REFERENCES credit_ledger.authorizations (id, tenant),
    ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.runs
    ADD FOREIGN KEY (parent_run, tenant) REFERENCES credit_ledger.runs (id, tenant),
    ADD FOREIGN KEY (run_wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant),
    ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.allowances
    ADD FOREIGN KEY (current_grant_id, tenant) REFERENCES credit_ledger.grants (id, tenant),
    ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.operations
    ADD FOREIGN KEY (grant_id, tenant) REFERENCES credit_ledger.grants (id, tenant),
    ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.wallet_overage ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.tier_usage ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);
ALTER TABLE credit_ledger.fair_use_usage ADD FOREIGN KEY (wallet_id, tenant) REFERENCES credit_ledger.wallets (id, tenant);

-- Every wallet key, once over the whole ledger, with its wallet's tenant: a key names one wallet
-- (what the UNIQUE (wallet) of wallets said before), and a node that has a key finds its tenant
-- without asking every shard (on Citus a reference table, on every node).
CREATE TABLE credit_ledger.wallet_keys (
    wallet text PRIMARY KEY,
    tenant text NOT NULL
);

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
