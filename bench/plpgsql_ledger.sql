-- P1: a hand-written PL/pgSQL credit ledger — the peer credit_ledger must beat honestly.
--
-- What a careful team would write in its own database instead of installing an extension, with
-- the same hot-path semantics as credit_authorize / credit_hold / credit_capture:
--   * idempotency key per wallet: the same key returns the first result and writes nothing;
--     the same key with other arguments is an error (23505). The authorization row is inserted
--     before any grant changes, with ON CONFLICT DO NOTHING on the (wallet, key) unique index:
--     a concurrent call with the same key waits for the first, then returns its result;
--   * rate lookup by action and variant: the wallet's card first, then 'default'; within a card
--     the exact variant before the NULL-variant entry; the latest version with
--     effective_from <= now() (the version used is recorded);
--   * cost = quantity x credits rounded UP to 4 decimals (the scale of 'credits');
--   * grant walk in consumption order — priority, expires_at (never-expiring last), id — over
--     effective, unexpired grants with spendable credit, each grant locked (FOR UPDATE) as it is
--     reached and only as many as the cost needs (an explicit cursor fetches one row at a time);
--   * debits: the grants touched, one journal row per grant touched and one authorization row
--     (approved, or declined with reason 'insufficient_credits' and the would-be cost — nothing
--     debited);
--   * returns (authorization_id, approved, reason, cost, asset, balance).
--
-- Design choices made for speed, as a performance-minded team would:
--   * no wallet row lock: the grant row locks alone prevent overspend (two debits of one wallet
--     meet on the grants they both want; FOR UPDATE re-reads the latest version);
--   * the walk index is partial on `live` (remaining > 0) and does not contain `remaining` or
--     `held`, so a debit is a HOT update; `live` flips once, when a grant is exhausted
--     (exhausted grants then cost nothing to skip);
--   * no declared foreign keys on the append-only tables (journal, authorizations): the functions
--     are their only writers, and an FK check would lock the referenced wallet/grant row on every
--     insert; the walk and capture indexes are the only secondary indexes on the hot path;
--   * one currency: the 'credits' scale (4) is a constant, not a table look-up.
-- Not implemented (not on the benchmarked path): overdraft, pools, spend caps, frozen wallets,
-- low-balance alerts, release/refund/expiry sweeps, capturing more than was held.

SET client_min_messages = warning;
DROP SCHEMA IF EXISTS p1 CASCADE;
RESET client_min_messages;
CREATE SCHEMA p1;

CREATE TABLE p1.wallets (
    id         bigserial PRIMARY KEY,
    wallet     text NOT NULL UNIQUE,
    rate_card  text,                              -- NULL = 'default'
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE p1.rates (
    id             bigserial PRIMARY KEY,
    rate_card      text    NOT NULL DEFAULT 'default',
    action         text    NOT NULL,
    variant        text,                          -- NULL = any variant without its own entry
    credits        numeric NOT NULL CHECK (credits >= 0),
    asset          text    NOT NULL DEFAULT 'credits',
    vendor_cost    numeric,
    effective_from timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX rates_version ON p1.rates (action, rate_card, coalesce(variant, ''), effective_from);
CREATE INDEX rates_lookup ON p1.rates (action, rate_card, variant, effective_from DESC);

CREATE TABLE p1.grants (
    id           bigserial PRIMARY KEY,
    wallet_id    bigint  NOT NULL REFERENCES p1.wallets (id),
    asset        text    NOT NULL DEFAULT 'credits',
    category     text    NOT NULL DEFAULT 'purchased',
    priority     int     NOT NULL,
    amount       numeric NOT NULL CHECK (amount > 0),
    remaining    numeric NOT NULL,
    held         numeric NOT NULL DEFAULT 0,
    live         boolean NOT NULL DEFAULT true,    -- remaining > 0
    effective_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (remaining >= 0 AND remaining <= amount),
    CHECK (held >= 0 AND held <= remaining)
) WITH (fillfactor = 80);
-- The walk: btree ASC puts NULL expires_at (never expires) last, as the consumption order wants.
CREATE INDEX grants_walk ON p1.grants (wallet_id, asset, priority, expires_at, id) WHERE live;

CREATE TABLE p1.authorizations (
    id              bigserial PRIMARY KEY,
    wallet_id       bigint  NOT NULL,
    kind            text    NOT NULL,             -- debit | hold
    status          text    NOT NULL,             -- approved | declined | held | captured
    reason          text,
    action          text    NOT NULL,
    variant         text,
    quantity        numeric NOT NULL,
    rate_id         bigint,
    asset           text    NOT NULL,
    cost            numeric NOT NULL,
    vendor_cost     numeric,
    captured        numeric,
    balance_after   numeric,
    idempotency_key text,
    metadata        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,                  -- holds: end of TTL
    closed_at       timestamptz
);
CREATE UNIQUE INDEX authorizations_key ON p1.authorizations (wallet_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE p1.journal (
    id               bigserial PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT now(),
    wallet_id        bigint  NOT NULL,
    grant_id         bigint,
    asset            text    NOT NULL,
    kind             text    NOT NULL,            -- grant | debit | hold | capture
    amount           numeric NOT NULL DEFAULT 0,  -- change of the grant's remaining
    held             numeric NOT NULL DEFAULT 0,  -- change of the grant's held
    authorization_id bigint
);
CREATE INDEX journal_authorization ON p1.journal (authorization_id) WHERE authorization_id IS NOT NULL;

-- Append-only: statement-level, so it costs nothing on INSERT.
CREATE FUNCTION p1._append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'p1.journal is append-only' USING ERRCODE = '42501';
END $$;
CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON p1.journal
    FOR EACH STATEMENT EXECUTE FUNCTION p1._append_only();

CREATE TYPE p1.auth_result AS (
    authorization_id bigint, approved boolean, reason text, cost numeric, asset text, balance numeric
);

-- ---- setup functions (not benchmarked) --------------------------------------------------------

CREATE FUNCTION p1.wallet_create(wallet text, rate_card text DEFAULT NULL) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO p1.wallets (wallet, rate_card) VALUES (wallet, rate_card) RETURNING id
$$;

CREATE FUNCTION p1.rate_set(action text, credits numeric, variant text DEFAULT NULL,
                            rate_card text DEFAULT 'default', asset text DEFAULT 'credits',
                            vendor_cost numeric DEFAULT NULL, effective_from timestamptz DEFAULT now())
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO p1.rates (rate_card, action, variant, credits, asset, vendor_cost, effective_from)
    VALUES (rate_card, action, variant, credits, asset, vendor_cost, effective_from) RETURNING id
$$;

CREATE FUNCTION p1.grant(wallet text, amount numeric, asset text DEFAULT 'credits',
                         category text DEFAULT 'purchased', priority int DEFAULT 50,
                         expires_at timestamptz DEFAULT NULL, effective_at timestamptz DEFAULT now())
RETURNS bigint LANGUAGE sql AS $$
    WITH g AS (
        INSERT INTO p1.grants (wallet_id, asset, category, priority, amount, remaining, effective_at, expires_at)
        SELECT w.id, asset, category, priority, amount, amount, effective_at, expires_at
          FROM p1.wallets w WHERE w.wallet = $1
        RETURNING id, wallet_id, asset, amount
    ), j AS (
        INSERT INTO p1.journal (wallet_id, grant_id, asset, kind, amount)
        SELECT wallet_id, id, asset, 'grant', amount FROM g
    )
    SELECT id FROM g
$$;

-- ---- the hot path --------------------------------------------------------------------------------

-- The stored result of an earlier call with the same key (an error if its arguments differ).
CREATE FUNCTION p1._replay(prev record, p_kind text, p_action text, p_variant text,
                           p_quantity numeric, p_key text)
RETURNS p1.auth_result LANGUAGE plpgsql AS $$
BEGIN
    IF prev.kind <> p_kind OR prev.action <> p_action
       OR prev.variant IS DISTINCT FROM p_variant OR prev.quantity <> p_quantity THEN
        RAISE EXCEPTION 'idempotency key "%" was used with other arguments', p_key
            USING ERRCODE = '23505';
    END IF;
    RETURN ROW(prev.id, prev.status <> 'declined', prev.reason, prev.cost,
               prev.asset, prev.balance_after)::p1.auth_result;
END $$;

-- authorize (kind 'debit') and, through p1.hold, holds (kind 'hold').
-- Five statements on the common path: wallet + rate, the walk, the balance, the authorization
-- with its journal rows, the grant update.
CREATE FUNCTION p1.authorize(wallet text, action text, quantity numeric DEFAULT 1,
                             variant text DEFAULT NULL, idempotency_key text DEFAULT NULL,
                             metadata jsonb DEFAULT NULL, kind text DEFAULT 'debit',
                             ttl interval DEFAULT NULL)
RETURNS p1.auth_result
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    p_wallet    text     := authorize.wallet;
    p_action    text     := authorize.action;
    p_quantity  numeric  := authorize.quantity;
    p_variant   text     := authorize.variant;
    p_key       text     := authorize.idempotency_key;
    p_kind      text     := authorize.kind;
    v           record;
    v_prev      record;
    v_cost      numeric;
    v_need      numeric;
    v_take      numeric;
    v_ids       bigint[]  := '{}';
    v_takes     numeric[] := '{}';
    v_gid       bigint;
    v_avail     numeric;
    v_balance   numeric;
    v_auth      bigint;
    v_approved  boolean;
    i           int;
    walk CURSOR (wid bigint, a text) FOR
        SELECT g.id, g.remaining - g.held
          FROM p1.grants g
         WHERE g.wallet_id = wid AND g.asset = a AND g.live
           AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now())
           AND g.remaining > g.held
         ORDER BY g.priority, g.expires_at, g.id
           FOR UPDATE;
BEGIN
    IF p_quantity IS NULL OR p_quantity <= 0 THEN
        RAISE EXCEPTION 'quantity must be greater than zero, got %', p_quantity USING ERRCODE = '22023';
    END IF;

    -- 1. the wallet and the rate: its card first, then 'default'; the exact variant before the
    --    NULL-variant entry; the latest version in effect
    SELECT w.id AS wallet_id, coalesce(w.rate_card, 'default') AS card,
           r.id AS rate_id, r.credits, r.asset, r.vendor_cost
      INTO v
      FROM p1.wallets w
      LEFT JOIN LATERAL (
            SELECT r.id, r.credits, r.asset, r.vendor_cost
              FROM p1.rates r
             WHERE r.action = p_action
               AND r.rate_card IN (coalesce(w.rate_card, 'default'), 'default')
               AND (r.variant = p_variant OR r.variant IS NULL)
               AND r.effective_from <= now()
             ORDER BY (r.rate_card = coalesce(w.rate_card, 'default')) DESC,
                      (r.variant IS NOT NULL) DESC, r.effective_from DESC
             LIMIT 1) r ON true
     WHERE w.wallet = p_wallet;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'wallet "%" does not exist', p_wallet USING ERRCODE = '42704';
    END IF;

    IF p_key IS NOT NULL THEN
        SELECT a.id, a.kind, a.status, a.reason, a.action, a.variant, a.quantity,
               coalesce(a.captured, a.cost) AS cost, a.asset, a.balance_after
          INTO v_prev
          FROM p1.authorizations a
         WHERE a.wallet_id = v.wallet_id AND a.idempotency_key = p_key;
        IF FOUND THEN
            RETURN p1._replay(v_prev, p_kind, p_action, p_variant, p_quantity, p_key);
        END IF;
    END IF;

    IF v.rate_id IS NULL THEN
        RAISE EXCEPTION 'no rate for action "%" (variant %) on rate card "%" or "default"', p_action,
            coalesce(p_variant, 'NULL'), v.card USING ERRCODE = '42704';
    END IF;

    v_cost := round(ceil(p_quantity * v.credits * 10000) / 10000, 4);

    -- 2. walk the grants in consumption order, locking each as it is reached, until covered
    v_need := v_cost;
    IF v_need > 0 THEN
        OPEN walk(v.wallet_id, v.asset);
        LOOP
            FETCH walk INTO v_gid, v_avail;
            EXIT WHEN NOT FOUND;
            v_take  := least(v_avail, v_need);
            v_ids   := v_ids || v_gid;
            v_takes := v_takes || v_take;
            v_need  := v_need - v_take;
            EXIT WHEN v_need <= 0;
        END LOOP;
        CLOSE walk;
    END IF;
    v_approved := v_need <= 0;

    -- 3. the balance: spendable now, less this call's cost when approved
    SELECT coalesce(sum(g.remaining - g.held), 0) INTO v_balance
      FROM p1.grants g
     WHERE g.wallet_id = v.wallet_id AND g.asset = v.asset AND g.live
       AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now());
    IF v_approved THEN
        v_balance := v_balance - v_cost;
    ELSE
        v_ids := '{}';
        v_takes := '{}';
    END IF;

    -- 4. one statement writes the authorization and its journal rows. With a key, the insert is
    --    ON CONFLICT DO NOTHING: a concurrent call that committed the same key first makes the
    --    statement a no-op (after waiting for it), and its result is returned instead.
    IF p_key IS NULL THEN
        WITH a AS (
            INSERT INTO p1.authorizations
                (wallet_id, kind, status, reason, action, variant, quantity, rate_id, asset, cost,
                 vendor_cost, balance_after, metadata, expires_at)
            VALUES (v.wallet_id, p_kind,
                    CASE WHEN NOT v_approved THEN 'declined' WHEN p_kind = 'hold' THEN 'held' ELSE 'approved' END,
                    CASE WHEN v_approved THEN NULL ELSE 'insufficient_credits' END,
                    p_action, p_variant, p_quantity, v.rate_id, v.asset,
                    v_cost,
                    CASE WHEN v_approved THEN p_quantity * v.vendor_cost END, v_balance,
                    authorize.metadata,
                    CASE WHEN p_kind = 'hold' AND v_approved THEN now() + authorize.ttl END)
            RETURNING id
        ), j AS (
            INSERT INTO p1.journal (wallet_id, grant_id, asset, kind, amount, held, authorization_id)
            SELECT v.wallet_id, t.gid, v.asset, p_kind,
                   CASE WHEN p_kind = 'debit' THEN -t.take ELSE 0 END,
                   CASE WHEN p_kind = 'hold' THEN t.take ELSE 0 END, a.id
              FROM unnest(v_ids, v_takes) AS t(gid, take), a
        )
        SELECT id INTO v_auth FROM a;
    ELSE
        WITH a AS (
            INSERT INTO p1.authorizations
                (wallet_id, kind, status, reason, action, variant, quantity, rate_id, asset, cost,
                 vendor_cost, balance_after, idempotency_key, metadata, expires_at)
            VALUES (v.wallet_id, p_kind,
                    CASE WHEN NOT v_approved THEN 'declined' WHEN p_kind = 'hold' THEN 'held' ELSE 'approved' END,
                    CASE WHEN v_approved THEN NULL ELSE 'insufficient_credits' END,
                    p_action, p_variant, p_quantity, v.rate_id, v.asset,
                    v_cost,
                    CASE WHEN v_approved THEN p_quantity * v.vendor_cost END, v_balance, p_key,
                    authorize.metadata,
                    CASE WHEN p_kind = 'hold' AND v_approved THEN now() + authorize.ttl END)
            ON CONFLICT (wallet_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING id
        ), j AS (
            INSERT INTO p1.journal (wallet_id, grant_id, asset, kind, amount, held, authorization_id)
            SELECT v.wallet_id, t.gid, v.asset, p_kind,
                   CASE WHEN p_kind = 'debit' THEN -t.take ELSE 0 END,
                   CASE WHEN p_kind = 'hold' THEN t.take ELSE 0 END, a.id
              FROM unnest(v_ids, v_takes) AS t(gid, take), a
        )
        SELECT id INTO v_auth FROM a;
        IF v_auth IS NULL THEN
            SELECT a.id, a.kind, a.status, a.reason, a.action, a.variant, a.quantity,
                   coalesce(a.captured, a.cost) AS cost, a.asset, a.balance_after
              INTO v_prev
              FROM p1.authorizations a
             WHERE a.wallet_id = v.wallet_id AND a.idempotency_key = p_key;
            RETURN p1._replay(v_prev, p_kind, p_action, p_variant, p_quantity, p_key);
        END IF;
    END IF;

    -- 5. the grants: one UPDATE by primary key per grant touched (HOT: no indexed column
    --    changes, except `live` when a grant runs out)
    FOR i IN 1 .. coalesce(array_length(v_ids, 1), 0) LOOP
        IF p_kind = 'debit' THEN
            UPDATE p1.grants g
               SET remaining = g.remaining - v_takes[i], live = g.remaining - v_takes[i] > 0
             WHERE g.id = v_ids[i];
        ELSE
            UPDATE p1.grants g SET held = g.held + v_takes[i] WHERE g.id = v_ids[i];
        END IF;
    END LOOP;

    RETURN ROW(v_auth, v_approved, CASE WHEN v_approved THEN NULL ELSE 'insufficient_credits' END,
               v_cost, v.asset, v_balance)::p1.auth_result;
END $$;

CREATE FUNCTION p1.hold(wallet text, action text, quantity numeric DEFAULT 1,
                        variant text DEFAULT NULL, idempotency_key text DEFAULT NULL,
                        metadata jsonb DEFAULT NULL, ttl interval DEFAULT '10 minutes')
RETURNS p1.auth_result LANGUAGE plpgsql AS $$
BEGIN
    RETURN p1.authorize(hold.wallet, hold.action, hold.quantity, hold.variant, hold.idempotency_key,
                        hold.metadata, 'hold', hold.ttl);
END $$;

-- Capture a hold: spend its actual cost (NULL quantity = as held) from the grants that hold it,
-- in consumption order; what is not spent is released to the same grants.
CREATE FUNCTION p1.capture(authorization_id bigint, quantity numeric DEFAULT NULL)
RETURNS p1.auth_result
LANGUAGE plpgsql AS $$
DECLARE
    v_a       record;
    v_final   numeric;
    v_left    numeric;
    v_spend   numeric;
    v_part    record;
    v_balance numeric;
BEGIN
    SELECT a.id, a.wallet_id, a.kind, a.status, a.cost, a.asset, a.expires_at, r.credits
      INTO v_a
      FROM p1.authorizations a LEFT JOIN p1.rates r ON r.id = a.rate_id
     WHERE a.id = capture.authorization_id
       FOR UPDATE OF a;
    IF NOT FOUND OR v_a.kind <> 'hold' THEN
        RAISE EXCEPTION 'hold % does not exist', capture.authorization_id USING ERRCODE = '42704';
    END IF;
    IF v_a.status <> 'held' OR v_a.expires_at <= now() THEN
        RAISE EXCEPTION 'hold % is not open (status %)', capture.authorization_id, v_a.status
            USING ERRCODE = '55000';
    END IF;
    IF capture.quantity IS NULL THEN
        v_final := v_a.cost;
    ELSE
        IF capture.quantity <= 0 THEN
            RAISE EXCEPTION 'quantity must be greater than zero, got %', capture.quantity USING ERRCODE = '22023';
        END IF;
        v_final := round(ceil(capture.quantity * v_a.credits * 10000) / 10000, 4);
        IF v_final > v_a.cost THEN
            RAISE EXCEPTION 'the P1 peer does not capture more than was held' USING ERRCODE = '0A000';
        END IF;
    END IF;

    v_left := v_final;
    FOR v_part IN
        SELECT j.grant_id, j.held FROM p1.journal j
         WHERE j.authorization_id = v_a.id AND j.kind = 'hold' ORDER BY j.id
    LOOP
        v_spend := least(v_part.held, v_left);
        v_left  := v_left - v_spend;
        UPDATE p1.grants g
           SET remaining = g.remaining - v_spend, held = g.held - v_part.held,
               live = g.remaining - v_spend > 0
         WHERE g.id = v_part.grant_id;
        INSERT INTO p1.journal (wallet_id, grant_id, asset, kind, amount, held, authorization_id)
        VALUES (v_a.wallet_id, v_part.grant_id, v_a.asset, 'capture', -v_spend, -v_part.held, v_a.id);
    END LOOP;

    SELECT coalesce(sum(g.remaining - g.held), 0) INTO v_balance
      FROM p1.grants g
     WHERE g.wallet_id = v_a.wallet_id AND g.asset = v_a.asset AND g.live
       AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now());

    UPDATE p1.authorizations a
       SET status = 'captured', captured = v_final, closed_at = now(), balance_after = v_balance
     WHERE a.id = v_a.id;

    RETURN ROW(v_a.id, true, NULL, v_final, v_a.asset, v_balance)::p1.auth_result;
END $$;
