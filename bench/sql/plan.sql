-- The data every peer loads, as one deterministic plan (loaded by load_p1.sql / load_ext.sql in
-- the same order, so the PL/pgSQL peer and the extension hold the same wallets, grants and rates).
-- psql variables: :nw wallets of the W1 shape ('w1'..'wN', 1-3 grants each); :ns wallets per W3
-- stack; :extra = 1 adds the hot wallet (W2), the W3 stacks and the W5 retry keys.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS plan CASCADE;
RESET client_min_messages;
CREATE SCHEMA plan;
CREATE TABLE plan.rates (seq serial, action text, credits numeric, variant text, rate_card text,
                         effective_from timestamptz);
CREATE TABLE plan.wallets (seq bigserial, wallet text);
CREATE TABLE plan.grants (seq bigserial, wallet text, amount numeric, category text, priority int,
                          expires_at timestamptz, effective_at timestamptz);
-- setup calls made after the grants (exhausting the fragmented stacks, the W5 keys to retry)
CREATE TABLE plan.calls (seq bigserial, wallet text, action text, quantity numeric, variant text,
                         key text);

-- rates per unit, with an older version of the haiku price that must not be used
INSERT INTO plan.rates (action, credits, variant, rate_card, effective_from) VALUES
    ('chat',    0.002,  'haiku', 'default', now() - interval '90 days'),
    ('chat',    0.0008, 'haiku', 'default', now() - interval '1 day'),
    ('chat',    0.001,  NULL,    'default', now() - interval '1 day'),
    ('chat',    0.015,  'opus',  'default', now() - interval '1 day'),
    ('image',   4,      NULL,    'default', now() - interval '1 day'),
    ('exhaust', 1,      NULL,    'default', now() - interval '1 day');

-- W1 shape: wallet i has 1 + i % 3 grants (promotional expiring, included expiring, purchased)
INSERT INTO plan.wallets (wallet) SELECT 'w' || i FROM generate_series(1, :nw) i ORDER BY i;
INSERT INTO plan.grants (wallet, amount, category, priority, expires_at, effective_at)
SELECT 'w' || i, 1e8, c.category, c.priority,
       CASE c.k WHEN 1 THEN now() + interval '90 days' + i * interval '1 second'
                WHEN 2 THEN now() + interval '365 days' END,
       now() - interval '1 day'
  FROM generate_series(1, :nw) i,
       (VALUES (1, 'promotional', 10), (2, 'included', 30), (3, 'purchased', 50)) c(k, category, priority)
 WHERE c.k <= 1 + i % 3
 ORDER BY i, c.k;

\if :extra
-- W2: one hot wallet
INSERT INTO plan.wallets (wallet) VALUES ('h1');
INSERT INTO plan.grants (wallet, amount, category, priority, expires_at, effective_at)
SELECT 'h1', 1e12, 'purchased', 50, CASE WHEN k < 3 THEN now() + k * interval '1 year' END,
       now() - interval '1 day'
  FROM generate_series(1, 3) k ORDER BY k;

-- W3: stacks of n live grants (mixed priorities and expiries; every grant is big enough never to
-- run out, so each call pays from the first grant in consumption order)
INSERT INTO plan.wallets (wallet)
SELECT 's' || n || '_' || i FROM unnest(ARRAY[1, 10, 100]) n, generate_series(1, :ns) i ORDER BY n, i;
INSERT INTO plan.grants (wallet, amount, category, priority, expires_at, effective_at)
SELECT 's' || n || '_' || i, 1e7, 'purchased', 10 * (1 + k % 5),
       CASE WHEN k % 4 <> 0 THEN now() + interval '365 days' + k * interval '1 hour' END,
       now() - interval '1 day'
  FROM unnest(ARRAY[1, 10, 100]) n, generate_series(1, :ns) i, generate_series(1, n) k
 ORDER BY n, i, k;

-- W3 fragmented: 100 grants, the 90 oldest (first in consumption order) exhausted by one call
INSERT INTO plan.wallets (wallet) SELECT 'f_' || i FROM generate_series(1, :ns) i ORDER BY i;
INSERT INTO plan.grants (wallet, amount, category, priority, expires_at, effective_at)
SELECT 'f_' || i, CASE WHEN k <= 90 THEN 1 ELSE 1e7 END, 'purchased',
       CASE WHEN k <= 90 THEN 10 ELSE 50 END,
       CASE WHEN k <= 90 THEN now() + interval '365 days' + k * interval '1 minute'
            WHEN k % 2 = 0 THEN now() + interval '400 days' END,
       now() - interval '1 day'
  FROM generate_series(1, :ns) i, generate_series(1, 100) k
 ORDER BY i, k;
INSERT INTO plan.calls (wallet, action, quantity, variant, key)
SELECT 'f_' || i, 'exhaust', 90, NULL, NULL FROM generate_series(1, :ns) i ORDER BY i;

-- W5: one keyed call per W1 wallet, retried during the run
INSERT INTO plan.calls (wallet, action, quantity, variant, key)
SELECT 'w' || i, 'chat', 100, 'haiku', 'retry' FROM generate_series(1, :nw) i ORDER BY i;
\endif
