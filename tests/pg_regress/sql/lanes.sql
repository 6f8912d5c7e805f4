-- lanes.sql: spending lanes (issue 17). A wallet or team pool with lanes keeps each grant's
-- credits in one slice per lane; a spender locks one free lane, so spenders with open
-- transactions do not wait for each other (the concurrency itself is in the isolation specs
-- lanes_*). Here: what the API shows (one row per grant, whatever its slices), the pattern of a
-- long model call inside the transaction, the exact path, holds and refunds on slices, going
-- back to one lane, bad input, and credit_verify() after each step.
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT count(*) AS rates FROM credit_rate_set(action => 'chat', variant => 'opus', credits => 15);

-- a team pool of 10,000 credits with two members who have no grants of their own, in 8 lanes
SELECT wallet FROM credit_wallet_create(wallet => 'team');
SELECT wallet FROM credit_wallet_create(wallet => 'team.alice', parent => 'team');
SELECT wallet FROM credit_wallet_create(wallet => 'team.bob', parent => 'team');
SELECT id, amount, remaining FROM credit_grant(wallet => 'team', amount => 10000);
SELECT credit_wallet_lanes(wallet => 'team', lanes => 8) AS lanes;
-- the grant is still one grant: its eight slices add up
SELECT id, amount, remaining, held FROM credit_grants('team');
SELECT lane, remaining FROM credit_ledger.grants WHERE home_id IS NOT NULL ORDER BY lane;
SELECT credit_wallet_lanes(wallet => 'team') AS lanes;

-- the pattern for a long model call: authorize, call the model, record the result, commit, all
-- in one transaction. Other members (and other sessions of this one) spend from other lanes
-- meanwhile instead of waiting for this transaction to end.
CREATE TABLE completions (id bigserial PRIMARY KEY, member text, authorization_id bigint, tokens int);
BEGIN;
SELECT authorization_id, approved, cost
  FROM credit_authorize(wallet => 'team.alice', action => 'chat', variant => 'opus', quantity => 2,
                        idempotency_key => 'req-1') \gset
-- ... the model call runs here (seconds) ...
INSERT INTO completions (member, authorization_id, tokens) VALUES ('team.alice', :authorization_id, 2000);
COMMIT;
SELECT approved, cost FROM credit_authorize(wallet => 'team.alice', action => 'chat', variant => 'opus',
                                           quantity => 2, idempotency_key => 'req-1');  -- a retry: the first result
SELECT credit_balance('team') AS pool_balance;

-- a call larger than one lane's share (1,250 credits) takes the exact path: every lane, exact
-- consumption order, then the credits are spread evenly again
SELECT approved, cost FROM credit_authorize(wallet => 'team.bob', action => 'chat', variant => 'opus', quantity => 100);
SELECT min(remaining) = max(remaining) - (sum(remaining) - 8 * min(remaining)) AS even, sum(remaining)
  FROM credit_ledger.grants WHERE home_id IS NOT NULL;
-- more than the pool has: declined, nothing moves
SELECT approved, reason, cost FROM credit_authorize(wallet => 'team.bob', action => 'chat', variant => 'opus', quantity => 1000);
SELECT credit_balance('team') AS pool_balance;

-- a new grant to a wallet with lanes goes to its lanes at once; consumption order still holds
-- within a lane (the promotion, priority 10, is spent before the purchased credits)
SELECT amount, remaining FROM credit_grant(wallet => 'team', amount => 80, category => 'promotional');
SELECT count(*) AS slices FROM credit_ledger.grants g WHERE g.home_id = (SELECT max(id) FROM credit_ledger.grants WHERE home_id IS NULL);
SELECT approved, cost FROM credit_authorize(wallet => 'team.alice', action => 'chat', variant => 'opus');
SELECT category, amount, remaining FROM credit_grants('team') ORDER BY priority;

-- holds, captures and refunds move the slices that paid
SELECT authorization_id AS hold_id FROM credit_hold(wallet => 'team.bob', action => 'chat', variant => 'opus', quantity => 4) \gset
SELECT credit_balance('team') AS pool_balance;
SELECT status, cost FROM credit_capture(authorization_id => :hold_id, quantity => 3);
SELECT amount, refunded_total FROM credit_refund(authorization_id => :hold_id, amount => 10);
SELECT credit_balance('team') AS pool_balance, (SELECT sum(remaining) FROM credit_grants('team')) AS grants_remaining;
SELECT grant_id, category, amount, remaining, held, spent FROM credit_ledger.grant_status ORDER BY grant_id;
SELECT count(*) AS violations FROM credit_verify();

-- back to one lane: every slice's credits return to its grant's own row
SELECT credit_wallet_lanes(wallet => 'team', lanes => 1) AS lanes;
SELECT count(*) FILTER (WHERE live) AS live_slices FROM credit_ledger.grants WHERE home_id IS NOT NULL;
SELECT category, remaining FROM credit_grants('team') ORDER BY priority;
SELECT approved, cost FROM credit_authorize(wallet => 'team.alice', action => 'chat', variant => 'opus');
SELECT credit_balance('team') AS pool_balance;
SELECT count(*) AS violations FROM credit_verify();

-- a pool member's calls start on the pool's lanes, not on lane 0: eight calls with eight keys
-- (a key's hash picks the first lane tried) draw on several lanes of an 8-lane pool (0.9.0
-- reduced the key's hash modulo the member's single lane: every call started at lane 0)
SELECT wallet FROM credit_wallet_create(wallet => 'crew');
SELECT wallet FROM credit_wallet_create(wallet => 'crew.m', parent => 'crew');
SELECT amount FROM credit_grant(wallet => 'crew', amount => 800);
SELECT credit_wallet_lanes(wallet => 'crew', lanes => 8) AS lanes;
SELECT count(*) FILTER (WHERE x.approved) AS approved
  FROM generate_series(1, 8) i,
       LATERAL credit_authorize(wallet => 'crew.m', action => 'chat', variant => 'opus',
                                idempotency_key => 'crew-' || i) x;
SELECT count(DISTINCT g.lane) AS lanes_drawn_on
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
  JOIN credit_ledger.journal j ON j.authorization_id = a.id AND j.tenant = a.tenant
  JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
 WHERE w.wallet = 'crew.m';
SELECT count(*) AS violations FROM credit_verify();

-- a standalone wallet with lanes: its own spenders take lanes; the balance is its own
SELECT wallet FROM credit_wallet_create(wallet => 'solo');
SELECT credit_wallet_lanes(wallet => 'solo', lanes => 4) AS lanes;
SELECT amount FROM credit_grant(wallet => 'solo', amount => 100);
SELECT approved, cost, balance FROM credit_authorize(wallet => 'solo', action => 'chat', variant => 'opus');
SELECT cost, spendable, approved FROM credit_quote(wallet => 'solo', action => 'chat', variant => 'opus');

-- a spend cap on a wallet with lanes is sliced over them (0.10.0): each lane holds part of the
-- room left under the cap this period (cap_room) and what its spenders spent (cap_spent), so a
-- fast spend takes room from its own lane and writes no counter row; the period's spend is the
-- wallet's counter plus the lanes' cap_spent
CREATE VIEW capped_lanes AS
SELECT sum(l.cap_room) AS room,
       coalesce(max(s.period_spent), 0) + sum(l.cap_spent) AS period_spent,
       count(*) FILTER (WHERE l.cap_room >= 15) AS lanes_with_room_for_a_call
  FROM credit_ledger.lanes l
  JOIN credit_ledger.wallets w ON w.id = l.wallet_id AND w.tenant = l.tenant
  LEFT JOIN credit_ledger.wallet_assets s ON s.wallet_id = w.id AND s.tenant = w.tenant AND s.asset = l.asset
 WHERE w.wallet = 'capped';
SELECT wallet FROM credit_wallet_create(wallet => 'capped', spend_cap => 100);
SELECT amount FROM credit_grant(wallet => 'capped', amount => 1000);
SELECT credit_wallet_lanes(wallet => 'capped', lanes => 4) AS lanes;
SELECT l.lane, l.cap_room, l.cap_spent FROM credit_ledger.lanes l
  JOIN credit_ledger.wallets w ON w.id = l.wallet_id AND w.tenant = l.tenant WHERE w.wallet = 'capped' ORDER BY l.lane;
-- four calls of 15: each takes 15 of room from the lane it spends on
SELECT count(*) FILTER (WHERE x.approved) AS approved
  FROM generate_series(1, 4) i,
       LATERAL credit_authorize(wallet => 'capped', action => 'chat', variant => 'opus',
                                idempotency_key => 'capped-' || i) x;
SELECT * FROM capped_lanes;
-- a released hold and a refund give their room back
SELECT authorization_id AS cap_hold FROM credit_hold(wallet => 'capped', action => 'chat', variant => 'opus') \gset
SELECT * FROM capped_lanes;
SELECT status FROM credit_release(authorization_id => :cap_hold);
SELECT * FROM capped_lanes;
SELECT a.id AS cap_auth FROM credit_ledger.authorizations a WHERE a.idempotency_key = 'capped-1' \gset
SELECT amount FROM credit_refund(authorization_id => :cap_auth, amount => 15);
SELECT * FROM capped_lanes;
-- the cap lowered to 60: the lanes' spend is folded into the counter and the room left (15) is
-- handed out again; no lane has 15, so the next call takes the exact path and fills the cap
SELECT spend_cap FROM credit_wallet_update(wallet => 'capped', spend_cap => 60);
SELECT * FROM capped_lanes;
SELECT approved, reason FROM credit_authorize(wallet => 'capped', action => 'chat', variant => 'opus');
SELECT approved, reason FROM credit_authorize(wallet => 'capped', action => 'chat', variant => 'opus');
SELECT * FROM capped_lanes;
-- the cap removed: no room in the lanes, calls are no longer counted against a cap
SELECT spend_cap FROM credit_wallet_update(wallet => 'capped', clear => ARRAY['spend_cap']);
SELECT approved, reason FROM credit_authorize(wallet => 'capped', action => 'chat', variant => 'opus');
SELECT * FROM capped_lanes;
SELECT count(*) AS violations FROM credit_verify();

-- an overdraft limit on a wallet with lanes (0.10.0): a call a lane's credits pay is fast and
-- takes no debt; a call that needs the overdraft takes the whole wallet (the exact path); a
-- refund of a call paid by overdraft gives the debt back (it takes the whole wallet too)
SELECT wallet FROM credit_wallet_create(wallet => 'od', overdraft_limit => 20);
SELECT amount FROM credit_grant(wallet => 'od', amount => 40);
SELECT credit_wallet_lanes(wallet => 'od', lanes => 2) AS lanes;
SELECT i, x.approved, x.reason, x.cost, x.balance
  FROM generate_series(1, 5) i,
       LATERAL credit_authorize(wallet => 'od', action => 'chat', variant => 'opus',
                                idempotency_key => 'od-' || i) x
 ORDER BY i;
SELECT a.idempotency_key, a.status, a.overdraft_amount FROM credit_ledger.authorizations a
 WHERE a.idempotency_key LIKE 'od-%' ORDER BY a.id;
SELECT a.id AS od_auth FROM credit_ledger.authorizations a WHERE a.idempotency_key = 'od-4' \gset
SELECT amount FROM credit_refund(authorization_id => :od_auth);
SELECT credit_balance('od') AS balance,
       (SELECT s.debt FROM credit_ledger.wallet_assets s JOIN credit_ledger.wallets w ON w.id = s.wallet_id AND w.tenant = s.tenant
         WHERE w.wallet = 'od') AS debt;
SELECT count(*) AS violations FROM credit_verify();

-- a new period under a sliced cap: no lane has room of the new period, so its first call
-- takes the whole wallet, drops the lanes' spend of the period that is over and hands the
-- whole cap out again (periods are at least an hour: the test moves the period's anchor in the
-- catalog, as time would)
SELECT wallet FROM credit_wallet_create(wallet => 'roll', spend_cap => 60, period => '1 hour',
                                        period_anchor => '2000-01-01 00:00:00+00');
SELECT amount FROM credit_grant(wallet => 'roll', amount => 1000);
SELECT credit_wallet_lanes(wallet => 'roll', lanes => 2) AS lanes;
CREATE VIEW roll_lanes AS
SELECT l.lane, l.cap_period = credit_ledger._period_start(w.period, w.period_anchor, now()) AS current_period,
       l.cap_room, l.cap_spent
  FROM credit_ledger.lanes l JOIN credit_ledger.wallets w ON w.id = l.wallet_id AND w.tenant = l.tenant
 WHERE w.wallet = 'roll' ORDER BY l.lane;
SELECT i, x.approved, x.reason
  FROM generate_series(1, 5) i,
       LATERAL credit_authorize(wallet => 'roll', action => 'chat', variant => 'opus',
                                idempotency_key => 'roll-' || i) x
 ORDER BY i;
SELECT * FROM roll_lanes;
UPDATE credit_ledger.wallets SET period_anchor = now() - interval '1 second' WHERE wallet = 'roll';
SELECT * FROM roll_lanes;
SELECT i, x.approved, x.reason
  FROM generate_series(6, 10) i,
       LATERAL credit_authorize(wallet => 'roll', action => 'chat', variant => 'opus',
                                idempotency_key => 'roll-' || i) x
 ORDER BY i;
SELECT * FROM roll_lanes;
SELECT count(*) AS violations FROM credit_verify();

-- bad input changes nothing
\set ON_ERROR_STOP 0
SELECT credit_wallet_lanes(wallet => 'team', lanes => 0);
SELECT credit_wallet_lanes(wallet => 'team', lanes => 65);
SELECT credit_wallet_lanes(wallet => 'nobody', lanes => 4);
SELECT credit_wallet_lanes(wallet => NULL, lanes => 4);
\set ON_ERROR_STOP 1
SELECT credit_wallet_lanes(wallet => 'team') AS lanes;
SELECT count(*) AS violations FROM credit_verify();
