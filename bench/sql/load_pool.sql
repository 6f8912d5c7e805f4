-- W7/W8: two team pools of 32 members without grants of their own and credits that never run
-- out during a run: 'pl' with 48 lanes (issue 17) and 'p1' with one lane (0.3.0's behaviour:
-- every member's draw takes the pool's row lock until its transaction ends).
\set ON_ERROR_STOP 1
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'pl')) x;
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'plm' || i, parent => 'pl') FROM generate_series(1, 32) i) x;
SELECT count(*) FROM (SELECT credit_grant(wallet => 'pl', amount => 100000000)) x;
SELECT credit_wallet_lanes(wallet => 'pl', lanes => 48);
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'p1')) x;
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'p1m' || i, parent => 'p1') FROM generate_series(1, 32) i) x;
SELECT count(*) FROM (SELECT credit_grant(wallet => 'p1', amount => 100000000)) x;
