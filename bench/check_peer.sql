-- check_peer.sql: the PL/pgSQL peer (P1) must give the same results as the extension.
--
-- Run by bench/run.sh before any benchmark, in a scratch database holding both (P1 from
-- plpgsql_ledger.sql, and CREATE EXTENSION credit_ledger). The same rates, wallets and grants go
-- into both; then the same sequence of calls (authorize, hold, capture, idempotent retries,
-- declines, rate versions and variants, a wallet's own rate card, expired and not-yet-effective
-- grants, rounding up) runs on both. Every call must agree on approved, reason, cost and
-- balance, and at the end every grant (matched by creation order) on remaining and held.
-- Any difference is listed and the script fails.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE TEMP TABLE sc_rates (seq int, action text, credits numeric, variant text, rate_card text,
                            effective_from timestamptz);
CREATE TEMP TABLE sc_wallets (seq int, wallet text, rate_card text);
CREATE TEMP TABLE sc_grants (seq int, wallet text, amount numeric, category text, priority int,
                             expires_at timestamptz, effective_at timestamptz);
-- op: authorize | hold | capture (ref = seq of the hold call; quantity NULL = as held)
CREATE TEMP TABLE sc_calls (seq int, op text, wallet text, action text, quantity numeric,
                            variant text, key text, ref int);

INSERT INTO sc_rates VALUES
    (1, 'chat',    0.002,  'haiku', 'default', now() - interval '90 days'),  -- old version
    (2, 'chat',    0.0008, 'haiku', 'default', now() - interval '1 day'),    -- current
    (3, 'chat',    0.5,    'haiku', 'default', now() + interval '1 day'),    -- future version
    (4, 'chat',    0.001,  NULL,    'default', now() - interval '1 day'),    -- any other variant
    (5, 'chat',    0.015,  'opus',  'default', now() - interval '1 day'),
    (6, 'image',   4,      NULL,    'default', now() - interval '1 day'),
    (7, 'chat',    0.0005, 'haiku', 'pro',     now() - interval '1 day'),    -- a plan's own card
    (8, 'chat',    0.0001, 'haiku', 'pro',     now() - interval '30 days');

INSERT INTO sc_wallets VALUES (1, 'a', NULL), (2, 'b', 'pro'), (3, 'c', NULL), (4, 'd', NULL);

INSERT INTO sc_grants VALUES
    -- a: mixed priorities and expiries, one that expires during the scenario, one not yet effective
    (1,  'a', 1,       'promotional', 10, now() + interval '1 day',   now() - interval '1 day'),
    (2,  'a', 5,       'purchased',   50, NULL,                       now() - interval '1 day'),
    (3,  'a', 2,       'promotional', 10, now() + interval '2 days',  now() - interval '1 day'),
    (4,  'a', 3,       'promotional', 10, now() + interval '2 seconds', now() - interval '1 day'),  -- expired before the calls
    (5,  'a', 100,     'promotional', 5,  NULL,                       now() + interval '1 day'),
    (6,  'a', 0.5,     'promotional', 10, NULL,                       now() - interval '1 day'),
    (7,  'a', 1.5,     'included',    30, now() + interval '3 days',  now() - interval '1 day'),
    -- b: on the 'pro' card
    (8,  'b', 10,      'included',    30, now() + interval '30 days', now() - interval '1 day'),
    (9,  'b', 1.2345,  'purchased',   50, NULL,                       now() - interval '1 day'),
    -- c: almost nothing
    (10, 'c', 0.0005,  'purchased',   50, NULL,                       now() - interval '1 day'),
    -- d: a stack of 12 small grants, same priority, oldest first
    (11, 'd', 0.25, 'purchased', 50, NULL, now() - interval '1 day'),
    (12, 'd', 0.25, 'purchased', 50, NULL, now() - interval '1 day'),
    (13, 'd', 0.25, 'purchased', 50, NULL, now() - interval '1 day'),
    (14, 'd', 0.25, 'purchased', 50, NULL, now() - interval '1 day'),
    (15, 'd', 0.25, 'purchased', 50, NULL, now() - interval '1 day'),
    (16, 'd', 0.25, 'purchased', 50, now() + interval '5 days', now() - interval '1 day'),
    (17, 'd', 0.25, 'purchased', 50, now() + interval '4 days', now() - interval '1 day'),
    (18, 'd', 0.25, 'purchased', 40, NULL, now() - interval '1 day'),
    (19, 'd', 0.25, 'purchased', 60, NULL, now() - interval '1 day'),
    (20, 'd', 0.25, 'purchased', 50, NULL, now() - interval '1 day'),
    (21, 'd', 0.25, 'purchased', 50, NULL, now() - interval '1 day'),
    (22, 'd', 0.25, 'purchased', 50, NULL, now() - interval '1 day');

INSERT INTO sc_calls VALUES
    (1,  'authorize', 'a', 'chat',  1234,   'haiku',  NULL, NULL),  -- 0.9872 from grant 1
    (2,  'authorize', 'a', 'chat',  100,    'opus',   'k1', NULL),  -- 1.5: spans grants
    (3,  'authorize', 'a', 'chat',  100,    'opus',   'k1', NULL),  -- retry: same result
    (4,  'authorize', 'a', 'chat',  10000,  'opus',   NULL, NULL),  -- 150: declined
    (5,  'authorize', 'a', 'chat',  333,    NULL,     NULL, NULL),  -- NULL variant entry
    (6,  'authorize', 'a', 'chat',  7,      'sonnet', NULL, NULL),  -- falls back to NULL variant
    (7,  'authorize', 'a', 'chat',  1,      'haiku',  NULL, NULL),  -- rounds 0.0008
    (8,  'authorize', 'a', 'chat',  0.3,    'haiku',  NULL, NULL),  -- 0.00024 rounds up to 0.0003
    (9,  'hold',      'a', 'chat',  1000,   'haiku',  NULL, NULL),  -- 0.8 held
    (10, 'capture',   NULL, NULL,   500,    NULL,     NULL, 9),     -- 0.4 spent, 0.4 released
    (11, 'hold',      'a', 'chat',  100,    'haiku',  'h1', NULL),
    (12, 'hold',      'a', 'chat',  100,    'haiku',  'h1', NULL),  -- retry of a hold
    (13, 'capture',   NULL, NULL,   NULL,   NULL,     NULL, 11),    -- as held
    (14, 'authorize', 'b', 'chat',  1000,   'haiku',  NULL, NULL),  -- pro card: 0.5
    (15, 'authorize', 'b', 'image', 1,      NULL,     NULL, NULL),  -- not on pro: default 4
    (16, 'authorize', 'b', 'chat',  10,     'opus',   NULL, NULL),  -- not on pro: default opus
    (17, 'authorize', 'c', 'chat',  1,      'haiku',  NULL, NULL),  -- 0.0008 > 0.0005: declined
    (18, 'authorize', 'c', 'chat',  0.5,    'haiku',  'k2', NULL),  -- 0.0004
    (19, 'authorize', 'c', 'chat',  0.5,    'haiku',  'k2', NULL),  -- retry
    (20, 'authorize', 'c', 'chat',  5,      'haiku',  'k3', NULL),  -- declined with a key
    (21, 'authorize', 'c', 'chat',  5,      'haiku',  'k3', NULL),  -- retry: declined again
    (22, 'authorize', 'd', 'chat',  1000,   'haiku',  NULL, NULL),  -- 0.8: 4 grants of the stack
    (23, 'hold',      'd', 'chat',  2000,   'haiku',  NULL, NULL),  -- 1.6: 7 grants
    (24, 'authorize', 'd', 'image', 1,      NULL,     NULL, NULL),  -- 4 > what is left: declined
    (25, 'capture',   NULL, NULL,   100,    NULL,     NULL, 23),    -- 0.08 of the hold
    (26, 'authorize', 'd', 'chat',  1500,   'haiku',  NULL, NULL),  -- 1.2
    (27, 'authorize', 'd', 'chat',  1,      'haiku',  'k4', NULL),
    (28, 'authorize', 'a', 'image', 1,      NULL,     NULL, NULL),  -- 4
    (29, 'hold',      'a', 'image', 100,    NULL,     NULL, NULL),  -- declined hold
    (30, 'authorize', 'a', 'chat',  2,      'haiku',  'k5', NULL);

-- ---- load both -----------------------------------------------------------------------------
SELECT count(*) AS rates FROM (SELECT * FROM sc_rates ORDER BY seq) r,
    LATERAL p1.rate_set(r.action, r.credits, r.variant, r.rate_card, effective_from => r.effective_from) x,
    LATERAL credit_rate_set(action => r.action, credits => r.credits, variant => r.variant,
                            rate_card => r.rate_card, effective_from => r.effective_from) y;
SELECT count(*) AS wallets FROM (SELECT * FROM sc_wallets ORDER BY seq) w,
    LATERAL p1.wallet_create(w.wallet, w.rate_card) x,
    LATERAL credit_wallet_create(wallet => w.wallet, rate_card => w.rate_card) y;
SELECT count(*) AS grants FROM (SELECT * FROM sc_grants ORDER BY seq) g,
    LATERAL p1.grant(g.wallet, g.amount, category => g.category, priority => g.priority,
                     expires_at => g.expires_at, effective_at => g.effective_at) x,
    LATERAL credit_grant(wallet => g.wallet, amount => g.amount, category => g.category,
                         priority => g.priority, expires_at => g.expires_at,
                         effective_at => g.effective_at) y;

-- let grant 4 expire: an expired (never swept) grant first in the walk must be skipped
SELECT pg_sleep(greatest(0, extract(epoch FROM (SELECT expires_at FROM sc_grants WHERE seq = 4) - clock_timestamp()) + 0.2));

-- ---- the same calls on both, one transaction each (now() moves on) -------------------------
CREATE TEMP TABLE sc_results (peer text, seq int, authorization_id bigint, approved boolean,
                              reason text, cost numeric, balance numeric);

CREATE PROCEDURE pg_temp.run_calls(p_peer text)
LANGUAGE plpgsql AS $$
DECLARE
    c   record;
    r   record;
    ref bigint;
BEGIN
    FOR c IN SELECT * FROM sc_calls ORDER BY seq LOOP
        IF c.op = 'capture' THEN
            SELECT authorization_id INTO ref FROM sc_results WHERE peer = p_peer AND seq = c.ref;
        END IF;
        IF p_peer = 'P1' THEN
            IF c.op = 'authorize' THEN
                SELECT * INTO r FROM p1.authorize(wallet => c.wallet, action => c.action, quantity => c.quantity,
                                                  variant => c.variant, idempotency_key => c.key);
            ELSIF c.op = 'hold' THEN
                SELECT * INTO r FROM p1.hold(wallet => c.wallet, action => c.action, quantity => c.quantity,
                                             variant => c.variant, idempotency_key => c.key);
            ELSE
                SELECT * INTO r FROM p1.capture(authorization_id => ref, quantity => c.quantity);
            END IF;
        ELSE
            IF c.op = 'authorize' THEN
                SELECT * INTO r FROM credit_authorize(wallet => c.wallet, action => c.action, quantity => c.quantity,
                                                      variant => c.variant, idempotency_key => c.key);
            ELSIF c.op = 'hold' THEN
                SELECT * INTO r FROM credit_hold(wallet => c.wallet, action => c.action, quantity => c.quantity,
                                                 variant => c.variant, idempotency_key => c.key);
            ELSE
                SELECT * INTO r FROM credit_capture(authorization_id => ref, quantity => c.quantity);
            END IF;
        END IF;
        INSERT INTO sc_results VALUES (p_peer, c.seq, r.authorization_id, r.approved, r.reason, r.cost, r.balance);
        COMMIT;
    END LOOP;
END $$;

CALL pg_temp.run_calls('P1');
CALL pg_temp.run_calls('EXT');

-- ---- compare ---------------------------------------------------------------------------------
\pset footer off
\echo 'calls (P1 | EXT):'
SELECT c.seq, c.op, c.wallet, c.action, c.quantity, c.variant, c.key,
       p.approved AS p1_ok, e.approved AS ext_ok, p.reason AS p1_reason, e.reason AS ext_reason,
       p.cost AS p1_cost, e.cost AS ext_cost, p.balance AS p1_balance, e.balance AS ext_balance,
       CASE WHEN p.approved IS NOT DISTINCT FROM e.approved AND p.reason IS NOT DISTINCT FROM e.reason
                 AND p.cost IS NOT DISTINCT FROM e.cost AND p.balance IS NOT DISTINCT FROM e.balance
            THEN '' ELSE 'DIFF' END AS diff
  FROM sc_calls c
  LEFT JOIN sc_results p ON p.peer = 'P1' AND p.seq = c.seq
  LEFT JOIN sc_results e ON e.peer = 'EXT' AND e.seq = c.seq
 ORDER BY c.seq;

CREATE TEMP TABLE sc_grant_state AS
SELECT 'P1' AS peer, row_number() OVER (ORDER BY g.id) AS n, w.wallet, g.remaining, g.held
  FROM p1.grants g JOIN p1.wallets w ON w.id = g.wallet_id
UNION ALL
SELECT 'EXT', row_number() OVER (ORDER BY g.id), w.wallet, g.remaining, g.held
  FROM credit_ledger.grants g JOIN credit_ledger.wallets w ON w.id = g.wallet_id;

\echo 'grants (P1 | EXT):'
SELECT p.n AS grant_no, p.wallet, p.remaining AS p1_remaining, e.remaining AS ext_remaining,
       p.held AS p1_held, e.held AS ext_held,
       CASE WHEN p.wallet IS NOT DISTINCT FROM e.wallet AND p.remaining IS NOT DISTINCT FROM e.remaining
                 AND p.held IS NOT DISTINCT FROM e.held THEN '' ELSE 'DIFF' END AS diff
  FROM (SELECT * FROM sc_grant_state WHERE peer = 'P1') p
  FULL JOIN (SELECT * FROM sc_grant_state WHERE peer = 'EXT') e ON e.n = p.n
 ORDER BY coalesce(p.n, e.n);

RESET client_min_messages;
DO $$
DECLARE
    bad_calls  int;
    bad_grants int;
BEGIN
    SELECT count(*) INTO bad_calls
      FROM sc_calls c
      LEFT JOIN sc_results p ON p.peer = 'P1' AND p.seq = c.seq
      LEFT JOIN sc_results e ON e.peer = 'EXT' AND e.seq = c.seq
     WHERE p.seq IS NULL OR e.seq IS NULL
        OR p.approved IS DISTINCT FROM e.approved OR p.reason IS DISTINCT FROM e.reason
        OR p.cost IS DISTINCT FROM e.cost OR p.balance IS DISTINCT FROM e.balance;
    SELECT count(*) INTO bad_grants
      FROM (SELECT * FROM sc_grant_state WHERE peer = 'P1') p
      FULL JOIN (SELECT * FROM sc_grant_state WHERE peer = 'EXT') e ON e.n = p.n
     WHERE p.n IS NULL OR e.n IS NULL OR p.wallet IS DISTINCT FROM e.wallet
        OR p.remaining IS DISTINCT FROM e.remaining OR p.held IS DISTINCT FROM e.held;
    IF bad_calls + bad_grants > 0 THEN
        RAISE EXCEPTION 'check_peer: P1 and the extension differ on % call(s) and % grant(s)', bad_calls, bad_grants;
    END IF;
    RAISE NOTICE 'check_peer: P1 and the extension agree on % calls and % grants',
        (SELECT count(*) FROM sc_calls), (SELECT count(*) FROM sc_grant_state WHERE peer = 'P1');
END $$;
