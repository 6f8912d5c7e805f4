-- tests/ops/explain_gen.sql — one generator session of tests/ops/explain.sh. Everything goes
-- through the public API (no INSERT into ledger tables), so the ledger stays consistent.
-- Settings (SET before running): ops.session (0-based), ops.sessions, ops.wallets (debit
-- wallets), ops.stream_wallets (hold wallets), ops.lots (small grants per hold wallet),
-- ops.members (team pool members, session 0 only), ops.target (journal rows to stop at, all
-- sessions together), ops.deadline (a timestamptz to stop at anyway).
--
-- Wallets of this session (i % sessions = session):
--   w<i>       a customer: purchased (unit price) + included + promotional grants; debits of
--              chat/opus|haiku|flash, image.generate and embed; every 20th debit is partly refunded
--   s<i>       a streaming customer with `lots` promotional lots of 5 credits: each round a hold
--              spanning every lot, then released (9 rounds in 10) or captured for 1 credit
--   team.m<i>  members of one team pool (session 0): their debits draw from the pool
--   broke<i>   wallets without credits: their calls are declined (declines_daily)
\set ON_ERROR_STOP 1
DO $$
DECLARE
    s        int := current_setting('ops.session')::int;
    p        int := current_setting('ops.sessions')::int;
    nw       int := current_setting('ops.wallets')::int;
    ns       int := current_setting('ops.stream_wallets')::int;
    lots     int := current_setting('ops.lots')::int;
    nm       int := current_setting('ops.members')::int;
    i        int;
    k        int;
BEGIN
    FOR i IN SELECT g FROM generate_series(1, nw) g WHERE g % p = s LOOP
        PERFORM credit_wallet_create(wallet => 'w' || i, rate_card => CASE WHEN i % 5 = 0 THEN 'pro' END);
        PERFORM credit_grant(wallet => 'w' || i, amount => 1000000, category => 'purchased', unit_price => 0.01);
        PERFORM credit_grant(wallet => 'w' || i, amount => 50, category => 'included', expires_at => now() + interval '30 days');
        PERFORM credit_grant(wallet => 'w' || i, amount => 20, category => 'promotional', expires_at => now() + interval '7 days' + i * interval '1 minute');
    END LOOP;
    FOR i IN SELECT g FROM generate_series(1, ns) g WHERE g % p = s LOOP
        PERFORM credit_wallet_create(wallet => 's' || i);
        FOR k IN 1..lots LOOP
            PERFORM credit_grant(wallet => 's' || i, amount => 5, category => 'promotional',
                                 expires_at => now() + interval '60 days' + k * interval '1 hour');
        END LOOP;
    END LOOP;
    FOR i IN SELECT g FROM generate_series(1, 50) g WHERE g % p = s LOOP
        PERFORM credit_wallet_create(wallet => 'broke' || i);
    END LOOP;
    IF s = 0 THEN
        PERFORM credit_wallet_create(wallet => 'team');
        PERFORM credit_grant(wallet => 'team', amount => 100000000, category => 'purchased', unit_price => 0.009);
        FOR i IN 1..nm LOOP
            PERFORM credit_wallet_create(wallet => 'team.m' || i, parent => 'team', pool_limit => 10000000);
            PERFORM credit_grant(wallet => 'team.m' || i, amount => 3, category => 'included');
        END LOOP;
    END IF;
END $$;

DO $$
DECLARE
    s        int := current_setting('ops.session')::int;
    p        int := current_setting('ops.sessions')::int;
    nw       int := current_setting('ops.wallets')::int;
    ns       int := current_setting('ops.stream_wallets')::int;
    lots     int := current_setting('ops.lots')::int;
    nm       int := current_setting('ops.members')::int;
    target   bigint := current_setting('ops.target')::bigint;
    deadline timestamptz := current_setting('ops.deadline')::timestamptz;
    variants text[] := ARRAY['opus', 'haiku', 'flash', 'haiku'];
    r        int := 0;
    i        int;
    a        credit_authorization;
    h        credit_authorization;
    done     bigint;
BEGIN
    LOOP
        r := r + 1;
        FOR i IN SELECT g FROM generate_series(1, nw) g WHERE g % p = s LOOP
            IF (i + r) % 7 = 0 THEN
                a := credit_authorize(wallet => 'w' || i, action => 'image.generate');
            ELSIF (i + r) % 7 = 1 THEN
                a := credit_authorize(wallet => 'w' || i, action => 'embed', quantity => 1 + (i * r) % 50);
            ELSE
                a := credit_authorize(wallet => 'w' || i, action => 'chat', variant => variants[1 + (i + r) % 4],
                                      quantity => 0.25 * (1 + (i * 3 + r) % 12));
            END IF;
            IF (i + r) % 20 = 0 AND a.approved AND a.cost > 0 THEN
                PERFORM credit_refund(authorization_id => a.authorization_id, amount => least(a.cost, 1), reason => 'ops');
            END IF;
        END LOOP;
        FOR i IN SELECT g FROM generate_series(1, ns) g WHERE g % p = s LOOP
            h := credit_hold(wallet => 's' || i, action => 'chat', variant => 'haiku', quantity => lots * 5 - 10, ttl => '1 hour');
            IF h.approved THEN
                IF (i + r) % 10 = 0 THEN
                    PERFORM credit_capture(authorization_id => h.authorization_id, quantity => 1);
                ELSE
                    PERFORM credit_release(authorization_id => h.authorization_id);
                END IF;
            END IF;
        END LOOP;
        FOR i IN SELECT g FROM generate_series(1, 50) g WHERE g % p = s AND (g + r) % 5 = 0 LOOP
            PERFORM credit_authorize(wallet => 'broke' || i, action => 'chat', variant => variants[1 + (i + r) % 4]);
        END LOOP;
        IF s = 0 THEN
            FOR i IN 1..nm LOOP
                PERFORM credit_authorize(wallet => 'team.m' || i, action => 'chat', variant => 'haiku', quantity => 1 + i % 3);
            END LOOP;
        END IF;
        COMMIT;
        SELECT last_value INTO done FROM credit_ledger.journal_id_seq;
        EXIT WHEN done >= target OR clock_timestamp() >= deadline;
    END LOOP;
    RAISE NOTICE 'session % finished after % rounds', s, r;
END $$;
