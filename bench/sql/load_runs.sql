-- W9 (issue 18): a team pool 'r9' of 16 members without grants of their own; each member has
-- one open agent run funded from the pool (budgets that never run out during a bench, a TTL of
-- a day), listed in public.bench_runs (m = the member); m = 0 is one more run of member 1 with
-- 32 lanes, which all clients share. A call in a run locks only the run (or one of its lanes).
\set ON_ERROR_STOP 1
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'r9')) x;
SELECT count(*) FROM (SELECT credit_wallet_create(wallet => 'r9m' || i, parent => 'r9') FROM generate_series(1, 16) i) x;
SELECT count(*) FROM (SELECT credit_grant(wallet => 'r9', amount => 100000000)) x;
CREATE TABLE public.bench_runs (m int PRIMARY KEY, run_id bigint NOT NULL);
INSERT INTO public.bench_runs
SELECT i, (SELECT run_id FROM credit_run_open(wallet => 'r9m' || i, budget => 5000000, ttl => '1 day'))
  FROM generate_series(1, 16) i;
INSERT INTO public.bench_runs
SELECT 0, (SELECT run_id FROM credit_run_open(wallet => 'r9m1', budget => 20000000, ttl => '1 day', lanes => 32));
SELECT count(*) AS open_runs FROM public.bench_runs b JOIN credit_ledger.runs r ON r.id = b.run_id WHERE r.status = 'open';
