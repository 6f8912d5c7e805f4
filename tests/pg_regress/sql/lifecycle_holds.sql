-- Rollover and holds: a hold whose TTL ended before a boundary no longer reserves credits at
-- that boundary, so its credits roll over like any unused credit (the boundary finalizes such
-- holds first; the expiry sweep runs after the boundaries). Times are relative to the start
-- of the current hour (t0), so the numbers are the same on every run.
CREATE EXTENSION credit_ledger;
SELECT action FROM credit_rate_set('chat', 1);
SELECT wallet FROM credit_wallet_create('roll_w');
CREATE TEMP TABLE t AS SELECT date_trunc('hour', now()) AS t0;
-- a daily allowance of 100 on boundaries t0 + k days, rollover capped at 100: the current lot
-- (t0 .. t0 + 1 day) is granted now
SELECT amount FROM credit_allowance_set('roll_w', 100, period => '1 day',
    anchor => (SELECT t0 FROM t) - interval '1 day', rollover_cap => 100);
-- a hold of 30 for 10 minutes (it ends long before the boundary), never captured or released,
-- and a debit of 20
SELECT approved, cost, balance FROM credit_hold('roll_w', 'chat', 30);
SELECT approved, cost, balance FROM credit_authorize('roll_w', 'chat', 20);
-- the boundary at t0 + 1 day: first the hold is finalized (expired, 30 back to the lot), then
-- the unused 80 (100 - 20) rolls over (cap 100), and the next day's 100 is granted; the sweep
-- that follows finds nothing to expire (the lot is empty, the hold already finalized): 1, 0, 0, 0
SELECT boundaries, grants_expired, credits_expired, holds_expired
  FROM credit_tick(as_of => (SELECT t0 FROM t) + interval '1 day');
SELECT category, amount, remaining, held,
       round(extract(epoch FROM effective_at - (SELECT t0 FROM t)) / 86400, 1) AS from_day,
       round(extract(epoch FROM expires_at - (SELECT t0 FROM t)) / 86400, 1) AS to_day
  FROM credit_ledger.grants ORDER BY id;
SELECT kind, status, cost FROM credit_ledger.authorizations ORDER BY id;
SELECT kind, amount, held FROM credit_ledger.journal ORDER BY id;
SELECT count(*) AS violations FROM credit_verify();
