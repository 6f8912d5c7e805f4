-- lanes_members.sql: free members (issue 17). A pool member with one lane, no limits, alert,
-- overdraft or fair use and no live grant of its own, in a pool with lanes, is a "free member":
-- its spends, captures, releases and refunds lock only the pool's lanes, never its own row, so
-- two calls of one member do not wait for each other (the concurrency is in the isolation spec
-- lanes_member_no_wait). Here, one session: which calls lock the member's row (its xmax is set
-- by this transaction), that a member with a grant of its own stops being free and spends that
-- grant first, holds, refunds, freezing, another pool, and credit_verify() after each step.
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT count(*) AS rates FROM credit_rate_set(action => 'chat', credits => 10);
SELECT wallet FROM credit_wallet_create(wallet => 'team');
SELECT wallet FROM credit_wallet_create(wallet => 'team.free', parent => 'team');
SELECT wallet FROM credit_wallet_create(wallet => 'team.capped', parent => 'team', spend_cap => 100);
SELECT amount FROM credit_grant(wallet => 'team', amount => 1000);
SELECT credit_wallet_lanes(wallet => 'team', lanes => 4) AS lanes;
-- whether this transaction (or a subtransaction of it) locked the member's row, in any mode
-- (xmax set; in this single session every transaction id from the current one up is ours)
CREATE VIEW member_rows AS
SELECT wallet, xmax::text::bigint >= txid_current() % 4294967296 AS locked_here
  FROM credit_ledger.wallets WHERE wallet LIKE 'team.%' ORDER BY wallet;

-- a free member's call locks a pool lane only; a member with a spend cap locks its row on its
-- first call, which hands out its rooms (a limited member since 0.11.0: lanes_member_limits)
BEGIN;
SELECT approved, cost FROM credit_authorize(wallet => 'team.free', action => 'chat');
SELECT approved, cost FROM credit_authorize(wallet => 'team.capped', action => 'chat');
SELECT * FROM member_rows;
COMMIT;
SELECT credit_balance('team') AS pool_balance;

-- a grant of its own: no longer free; its call locks its row and spends its own credits first
SELECT amount FROM credit_grant(wallet => 'team.free', amount => 15);
BEGIN;
SELECT approved, cost, balance FROM credit_authorize(wallet => 'team.free', action => 'chat');
SELECT * FROM member_rows WHERE wallet = 'team.free';
COMMIT;
-- 5 of its own left: the next call takes them and 5 from the pool
SELECT approved, cost FROM credit_authorize(wallet => 'team.free', action => 'chat');
SELECT credit_balance('team.free') AS own_balance, credit_balance('team') AS pool_balance;
-- its grant spent (no longer live): free again
BEGIN;
SELECT approved, cost FROM credit_authorize(wallet => 'team.free', action => 'chat');
SELECT * FROM member_rows WHERE wallet = 'team.free';
COMMIT;
SELECT count(*) AS violations FROM credit_verify();

-- holds: a capture at or below the hold and a release lock no member row; a capture above the
-- hold spends more, so it takes the member and the whole pool
SELECT authorization_id AS h1 FROM credit_hold(wallet => 'team.free', action => 'chat', quantity => 2,
                                               idempotency_key => 'h1') \gset
SELECT authorization_id AS h2 FROM credit_hold(wallet => 'team.free', action => 'chat',
                                               idempotency_key => 'h2') \gset
SELECT authorization_id AS h3 FROM credit_hold(wallet => 'team.free', action => 'chat',
                                               idempotency_key => 'h3') \gset
BEGIN;
SELECT status, captured FROM credit_capture(:h1, quantity => 1);
SELECT status FROM credit_release(:h2);
SELECT * FROM member_rows WHERE wallet = 'team.free';
COMMIT;
BEGIN;
SELECT status, captured FROM credit_capture(:h3, quantity => 3);
SELECT * FROM member_rows WHERE wallet = 'team.free';
COMMIT;
SELECT credit_balance('team') AS pool_balance;
SELECT count(*) AS violations FROM credit_verify();

-- a refund of a free member's debit goes back to the pool's grant; the member's row is locked
-- only FOR KEY SHARE, by the foreign key of the refund's row, a mode no spend waits for (the
-- isolation spec lanes_member_no_wait refunds while open spends of the member go on)
SELECT authorization_id AS d1 FROM credit_authorize(wallet => 'team.free', action => 'chat',
                                                    idempotency_key => 'd1') \gset
BEGIN;
SELECT amount, refunded_total FROM credit_refund(:d1, 4);
SELECT * FROM member_rows WHERE wallet = 'team.free';
COMMIT;
SELECT credit_balance('team') AS pool_balance;

-- a key used again returns the first result (written with the ON CONFLICT insert)
SELECT authorization_id = :d1 AS same_authorization, approved
  FROM credit_authorize(wallet => 'team.free', action => 'chat', idempotency_key => 'd1');
\set ON_ERROR_STOP 0
SELECT approved FROM credit_authorize(wallet => 'team.free', action => 'chat', quantity => 2,
                                      idempotency_key => 'd1');
\set ON_ERROR_STOP 1

-- frozen: declined (the exact path decides, under the member's lock); thawed: free again
SELECT frozen FROM credit_wallet_update(wallet => 'team.free', frozen => true);
SELECT approved, reason FROM credit_authorize(wallet => 'team.free', action => 'chat');
SELECT frozen FROM credit_wallet_update(wallet => 'team.free', frozen => false);
SELECT approved FROM credit_authorize(wallet => 'team.free', action => 'chat');

-- another pool while a hold is open: the release goes back to the first pool's grant
SELECT wallet FROM credit_wallet_create(wallet => 'team2');
SELECT amount FROM credit_grant(wallet => 'team2', amount => 100);
SELECT credit_wallet_lanes(wallet => 'team2', lanes => 2) AS lanes;
SELECT authorization_id AS h4 FROM credit_hold(wallet => 'team.free', action => 'chat',
                                               idempotency_key => 'h4') \gset
SELECT parent FROM credit_wallet_update(wallet => 'team.free', parent => 'team2');
SELECT approved, cost FROM credit_authorize(wallet => 'team.free', action => 'chat');
SELECT status FROM credit_release(:h4);
SELECT credit_balance('team') AS team_balance, credit_balance('team2') AS team2_balance;
SELECT count(*) AS violations FROM credit_verify();
