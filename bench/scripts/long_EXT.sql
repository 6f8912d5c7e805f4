-- EXT, W8: the pattern a model call inside the caller's transaction makes: authorize, the call
-- (0.2 s), commit. Client i is member i mod :nm + 1 of the pool.
\set m :client_id % :nm + 1
\set q random(1, 2000)
BEGIN;
SELECT * FROM credit_authorize(wallet => :pfx || :m, action => 'chat', quantity => :q, variant => 'haiku');
SELECT pg_sleep(0.2);
COMMIT;
