-- EXT, W9: a pool member's call inside its agent run (client i is member i mod :nm + 1; each
-- member has one open run funded from the pool at load time: the call locks only the run)
\set m :client_id % :nm + 1
\set q random(1, 2000)
SELECT * FROM credit_authorize(wallet => :pfx || :m, action => 'chat', quantity => :q, variant => 'haiku',
                               run => (SELECT run_id FROM public.bench_runs WHERE m = :m));
