-- EXT, W7: a member of the hot pool debits it (client i is member i mod :nm + 1: with :nm 16
-- members do not share a member; with 8, two clients call as each member, like two tabs of one
-- user); members have no grants of their own: every call draws on the pool
\set m :client_id % :nm + 1
\set q random(1, 2000)
SELECT * FROM credit_authorize(wallet => :pfx || :m, action => 'chat', quantity => :q, variant => 'haiku');
