-- lanes_member_limits.sql: limited members (issue 17, 0.11.0). A pool member with one lane, a
-- pool limit or spend cap of its own and nothing else its row holds for a spend (no overdraft,
-- debt, alert or fair use), no grant of its own, in a pool with lanes, is a "limited member":
-- the room its limits leave this period is split over the pool's lanes (credit_ledger.
-- member_rooms), so its spends lock only a pool lane, never its own row (the concurrency is in
-- the isolation spec lanes_member_limit_no_wait). Here, one session: the rooms handed out by
-- the first (exact) call, fast calls drawing from them, the limit allowing exactly what it
-- should, the readers that add what the rooms drew, holds and refunds giving back to the room,
-- settings changes folding the rooms back, a grant of its own, and credit_verify() after each.
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT count(*) AS rates FROM credit_rate_set(action => 'chat', credits => 10);
SELECT wallet FROM credit_wallet_create(wallet => 'team');
SELECT wallet FROM credit_wallet_create(wallet => 'team.lim', parent => 'team', pool_limit => 100);
SELECT wallet FROM credit_wallet_create(wallet => 'team.cap', parent => 'team', spend_cap => 60, pool_limit => 80);
SELECT amount FROM credit_grant(wallet => 'team', amount => 1000);
SELECT credit_wallet_lanes(wallet => 'team', lanes => 4) AS lanes;
CREATE VIEW member_rows AS
SELECT wallet, xmax::text::bigint >= txid_current() % 4294967296 AS locked_here
  FROM credit_ledger.wallets WHERE wallet LIKE 'team.%' ORDER BY wallet;
CREATE VIEW rooms AS
SELECT w.wallet, r.lane, r.room, r.spent
  FROM credit_ledger.member_rooms r JOIN credit_ledger.wallets w ON w.id = r.wallet_id AND w.tenant = r.tenant ORDER BY 1, 2;
CREATE VIEW counters AS
SELECT w.wallet, s.period_spent, s.period_pool_drawn
  FROM credit_ledger.wallet_assets s JOIN credit_ledger.wallets w ON w.id = s.wallet_id AND w.tenant = s.tenant
 WHERE w.wallet LIKE 'team.%' ORDER BY 1;

-- the first call finds no room: it locks the member row (and a pool lane), decides on the
-- counters and hands out the room left
-- (100 - 10 = 90) over the pool's 4 lanes
BEGIN;
SELECT approved, cost FROM credit_authorize(wallet => 'team.lim', action => 'chat', idempotency_key => 'l1');
SELECT * FROM member_rows WHERE wallet = 'team.lim';
COMMIT;
SELECT * FROM rooms;
-- the next calls lock no member row: each draws from the room of the pool lane it holds
BEGIN;
SELECT approved, cost FROM credit_authorize(wallet => 'team.lim', action => 'chat', idempotency_key => 'l2');
SELECT * FROM member_rows WHERE wallet = 'team.lim';
COMMIT;
SELECT sum(room) AS room, sum(spent) AS spent FROM rooms WHERE wallet = 'team.lim';
SELECT * FROM counters;
-- readers add what the rooms drew: 20 drawn, 80 left under the limit
SELECT member, pool_limit, drawn_this_period FROM credit_ledger.pool_usage WHERE member = 'team.lim';
SELECT pool_access FROM credit_balance_detail('team.lim');
SELECT spendable FROM credit_quote(wallet => 'team.lim', action => 'chat');
SELECT count(*) AS violations FROM credit_verify();
-- a key used again returns the first call and draws nothing more
SELECT approved, cost FROM credit_authorize(wallet => 'team.lim', action => 'chat', idempotency_key => 'l2');
SELECT sum(spent) AS spent FROM rooms WHERE wallet = 'team.lim';

-- the limit allows exactly what it should: 8 more calls of 10, then pool_limit_reached
SELECT count(*) FILTER (WHERE x.approved) AS approved,
       count(*) FILTER (WHERE x.reason = 'pool_limit_reached') AS at_limit
  FROM generate_series(1, 10) i,
       LATERAL credit_authorize(wallet => 'team.lim', action => 'chat', idempotency_key => 'n' || i) x;
SELECT member, drawn_this_period FROM credit_ledger.pool_usage WHERE member = 'team.lim';
SELECT credit_balance('team') AS pool_balance;
SELECT count(*) AS violations FROM credit_verify();

-- a spend cap and a pool limit: the smaller room counts (cap 60 before limit 80)
SELECT count(*) FILTER (WHERE x.approved) AS approved,
       count(*) FILTER (WHERE x.reason = 'spend_cap_reached') AS at_cap
  FROM generate_series(1, 8) i,
       LATERAL credit_authorize(wallet => 'team.cap', action => 'chat', idempotency_key => 'c' || i) x;
SELECT * FROM counters WHERE wallet = 'team.cap';
SELECT count(*) AS violations FROM credit_verify();

-- holds: a release and a capture below the hold give the draw back to the room of the lane the
-- hold took, without the member's counters; the room is spent again
SELECT wallet FROM credit_wallet_update(wallet => 'team.lim', pool_limit => 150);
SELECT authorization_id AS h1 FROM credit_hold(wallet => 'team.lim', action => 'chat', quantity => 2,
                                               idempotency_key => 'h1') \gset
SELECT authorization_id AS h2 FROM credit_hold(wallet => 'team.lim', action => 'chat',
                                               idempotency_key => 'h2') \gset
SELECT sum(room) AS room, sum(spent) AS spent FROM rooms WHERE wallet = 'team.lim';
SELECT status, captured FROM credit_capture(:h1, quantity => 1);
SELECT status FROM credit_release(:h2);
SELECT sum(room) AS room, sum(spent) AS spent FROM rooms WHERE wallet = 'team.lim';
SELECT member, drawn_this_period FROM credit_ledger.pool_usage WHERE member = 'team.lim';
SELECT count(*) AS violations FROM credit_verify();
-- a refund of a fast call gives its draw back the same way
SELECT authorization_id AS d1 FROM credit_authorize(wallet => 'team.lim', action => 'chat',
                                                    idempotency_key => 'd1') \gset
SELECT amount, refunded_total FROM credit_refund(:d1);
SELECT member, drawn_this_period FROM credit_ledger.pool_usage WHERE member = 'team.lim';
SELECT count(*) AS violations FROM credit_verify();
-- a capture above the hold takes member and pool whole, folds the rooms into the counters and
-- hands the room left out again
SELECT authorization_id AS h3 FROM credit_hold(wallet => 'team.lim', action => 'chat',
                                               idempotency_key => 'h3') \gset
SELECT status, captured FROM credit_capture(:h3, quantity => 3);
SELECT count(*) AS rooms FROM rooms WHERE wallet = 'team.lim';
SELECT * FROM counters WHERE wallet = 'team.lim';
SELECT member, drawn_this_period FROM credit_ledger.pool_usage WHERE member = 'team.lim';
SELECT count(*) AS violations FROM credit_verify();

-- a settings change folds the rooms back (they are handed out again by the next exact call)
SELECT wallet FROM credit_wallet_update(wallet => 'team.lim', pool_limit => 300);
SELECT approved FROM credit_authorize(wallet => 'team.lim', action => 'chat', idempotency_key => 'f1');
SELECT approved FROM credit_authorize(wallet => 'team.lim', action => 'chat', idempotency_key => 'f2');
SELECT count(*) AS rooms FROM rooms WHERE wallet = 'team.lim';
SELECT wallet FROM credit_wallet_update(wallet => 'team.lim', pool_limit => 250);
SELECT count(*) AS rooms FROM rooms WHERE wallet = 'team.lim';
SELECT * FROM counters WHERE wallet = 'team.lim';
SELECT count(*) AS violations FROM credit_verify();
-- without a limit the member is neither free (it stays tracked: that is never reset) nor
-- limited: its calls lock its row, and it has no rooms
SELECT wallet FROM credit_wallet_update(wallet => 'team.lim', clear => ARRAY['pool_limit']);
BEGIN;
SELECT approved FROM credit_authorize(wallet => 'team.lim', action => 'chat', idempotency_key => 'u1');
SELECT * FROM member_rows WHERE wallet = 'team.lim';
COMMIT;
SELECT count(*) AS rooms FROM rooms WHERE wallet = 'team.lim';
SELECT wallet FROM credit_wallet_update(wallet => 'team.lim', pool_limit => 400);

-- a grant of its own: no longer limited; its next call locks its row and folds the rooms first
SELECT approved FROM credit_authorize(wallet => 'team.lim', action => 'chat', idempotency_key => 'g0');
SELECT approved FROM credit_authorize(wallet => 'team.lim', action => 'chat', idempotency_key => 'g1');
SELECT count(*) AS rooms FROM rooms WHERE wallet = 'team.lim';
SELECT amount FROM credit_grant(wallet => 'team.lim', amount => 5);
BEGIN;
SELECT approved, cost FROM credit_authorize(wallet => 'team.lim', action => 'chat', idempotency_key => 'g2');
SELECT * FROM member_rows WHERE wallet = 'team.lim';
COMMIT;
SELECT count(*) AS rooms FROM rooms WHERE wallet = 'team.lim';
SELECT member, drawn_this_period FROM credit_ledger.pool_usage WHERE member = 'team.lim';
SELECT count(*) AS violations FROM credit_verify();

-- a pool with more lanes than a member's window (16): the rooms are on 16 of its lanes, placed by
-- the member's id, and the member's fast calls take only those
SELECT credit_wallet_lanes(wallet => 'team', lanes => 24) AS lanes;
SELECT wallet FROM credit_wallet_update(wallet => 'team.cap', spend_cap => 1000, pool_limit => 1000);
SELECT approved FROM credit_authorize(wallet => 'team.cap', action => 'chat', idempotency_key => 'w0');
SELECT count(*) AS rooms, max(lane) - min(lane) + 1 AS width, sum(room) AS room FROM rooms WHERE wallet = 'team.cap';
SELECT count(*) FILTER (WHERE x.approved) AS approved
  FROM generate_series(1, 20) i,
       LATERAL credit_authorize(wallet => 'team.cap', action => 'chat', idempotency_key => 'w' || i) x;
SELECT count(*) AS drawn_outside_rooms
  FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
  JOIN credit_ledger.authorizations a ON a.id = j.authorization_id AND a.tenant = j.tenant
 WHERE a.idempotency_key LIKE 'w%' AND a.idempotency_key <> 'w0' AND a.wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'team.cap')
   AND g.lane NOT IN (SELECT lane FROM rooms WHERE wallet = 'team.cap');
SELECT member, drawn_this_period FROM credit_ledger.pool_usage WHERE member = 'team.cap';
SELECT count(*) AS violations FROM credit_verify();

-- lanes of its own: no longer a limited member, its rooms are folded back into its counters
-- at once (the draw they hold stays counted)
SELECT credit_wallet_lanes(wallet => 'team.cap', lanes => 2) AS lanes;
SELECT count(*) AS rooms FROM rooms WHERE wallet = 'team.cap';
SELECT member, drawn_this_period FROM credit_ledger.pool_usage WHERE member = 'team.cap';
SELECT count(*) AS violations FROM credit_verify();
