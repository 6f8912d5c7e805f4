-- EXT: the extension, one authorize of a chat call on haiku
\set w random(1, :nw)
\set q random(1, 2000)
SELECT * FROM credit_authorize(wallet => :pfx || :w, action => 'chat', quantity => :q, variant => 'haiku');
