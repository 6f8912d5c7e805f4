-- EXT, W9: every client calls inside one shared agent run of member 1 (32 lanes: parallel calls
-- of one run do not wait for each other)
\set q random(1, 2000)
SELECT * FROM credit_authorize(wallet => 'r9m1', action => 'chat', quantity => :q, variant => 'haiku',
                               run => (SELECT run_id FROM public.bench_runs WHERE m = 0));
