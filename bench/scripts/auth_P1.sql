-- P1: the PL/pgSQL ledger, one authorize of a chat call on haiku
\set w random(1, :nw)
\set q random(1, 2000)
SELECT * FROM p1.authorize(wallet => :pfx || :w, action => 'chat', quantity => :q, variant => 'haiku');
