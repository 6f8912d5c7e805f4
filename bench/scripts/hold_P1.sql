-- W4 P1: hold, then capture (as held) in the next transaction
\set w random(1, :nw)
\set q random(1, 2000)
SELECT authorization_id AS hid FROM p1.hold(wallet => :pfx || :w, action => 'chat', quantity => :q, variant => 'haiku') \gset
SELECT * FROM p1.capture(authorization_id => :hid);
