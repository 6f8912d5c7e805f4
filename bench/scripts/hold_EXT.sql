-- W4 EXT: hold, then capture (as held) in the next transaction
\set w random(1, :nw)
\set q random(1, 2000)
SELECT authorization_id AS hid FROM credit_hold(wallet => :pfx || :w, action => 'chat', quantity => :q, variant => 'haiku') \gset
SELECT * FROM credit_capture(authorization_id => :hid);
