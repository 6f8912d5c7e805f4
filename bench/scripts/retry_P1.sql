-- W5 P1: every call carries an idempotency key; 10% are retries of a key used before
\set w random(1, :nw)
\set q random(1, 2000)
\set r random(1, 10)
\if :r = 1
SELECT * FROM p1.authorize(wallet => :pfx || :w, action => 'chat', quantity => 100, variant => 'haiku', idempotency_key => 'retry');
\else
SELECT * FROM p1.authorize(wallet => :pfx || :w, action => 'chat', quantity => :q, variant => 'haiku', idempotency_key => gen_random_uuid()::text);
\endif
