-- W7/W8: team pools of 32 members without grants of their own and credits that never run
-- out during a run: 'pl' with 48 lanes (issue 17), 'p1' with one lane (0.3.0's behaviour:
-- every member's draw takes the pool's row lock until its transaction ends), and 'pc' like 'pl'
-- with a spend cap that is never reached (0.10.0: the cap is sliced over the lanes; before, a
-- capped pool with lanes took the exact path on every draw), and 'pm' like 'pl' whose members
-- each have a pool limit that is never reached (0.11.0: limited members, their limits sliced
-- over the pool's lanes; before, two calls of one such member waited for each other).
\set ON_ERROR_STOP 1
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'pl')) x;
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'plm' || i, parent => 'pl') FROM generate_series(1, 32) i) x;
SELECT count(*) FROM (SELECT credit_grant(wallet => 'pl', amount => 100000000)) x;
SELECT credit_wallet_lanes(wallet => 'pl', lanes => 48);
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'p1')) x;
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'p1m' || i, parent => 'p1') FROM generate_series(1, 32) i) x;
SELECT count(*) FROM (SELECT credit_grant(wallet => 'p1', amount => 100000000)) x;
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'pc', spend_cap => 1000000000000)) x;
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'pcm' || i, parent => 'pc') FROM generate_series(1, 32) i) x;
SELECT count(*) FROM (SELECT credit_grant(wallet => 'pc', amount => 100000000)) x;
SELECT credit_wallet_lanes(wallet => 'pc', lanes => 48);
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'pm')) x;
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'pmm' || i, parent => 'pm', pool_limit => 1000000000000) FROM generate_series(1, 32) i) x;
SELECT count(*) FROM (SELECT credit_grant(wallet => 'pm', amount => 100000000)) x;
SELECT credit_wallet_lanes(wallet => 'pm', lanes => 48);
