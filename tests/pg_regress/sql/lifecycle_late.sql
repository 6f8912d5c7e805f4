-- A late scheduler: credit_tick catches up missed boundaries, and a balance as of a past
-- instant shows the allowance periods it granted late (each lot counts from its effective_at,
-- not from when the tick wrote it). Times are relative to the start of the current hour (t0),
-- so the numbers are the same on every run.
CREATE EXTENSION credit_ledger;
SELECT action FROM credit_rate_set('step', 1);
SELECT wallet FROM credit_wallet_create('late_w');
CREATE TEMP TABLE t AS SELECT date_trunc('hour', now()) AS t0;
-- a daily allowance of 10 from t0 - 3 days: the first lot (t0-3d .. t0-2d) is granted now
SELECT amount FROM credit_allowance_set('late_w', 10, period => '1 day',
    anchor => (SELECT t0 FROM t) - interval '3 days', as_of => (SELECT t0 FROM t) - interval '3 days');
-- the scheduler was down: one tick at t0 processes the 3 missed boundaries (t0-2d, t0-1d, t0),
-- in order; the three lots before the current one expire unused (no rollover): 3 x 10
SELECT boundaries, grants_expired, credits_expired FROM credit_tick(as_of => (SELECT t0 FROM t));
-- lots: one per day, each in effect for its own day
SELECT amount, remaining,
       round(extract(epoch FROM effective_at - (SELECT t0 FROM t)) / 86400, 1) AS from_day,
       round(extract(epoch FROM expires_at - (SELECT t0 FROM t)) / 86400, 1) AS to_day
  FROM credit_ledger.grants ORDER BY effective_at;
-- the balance in the middle of each past day is that day's lot: 10, 10, 10; now: 10
SELECT d AS day, credit_balance('late_w', as_of => (SELECT t0 FROM t) + d * interval '1 day' + interval '12 hours') AS balance
  FROM generate_series(-3, -1) d;
SELECT credit_balance('late_w') AS balance_now;
-- before the allowance began: 0
SELECT credit_balance('late_w', as_of => (SELECT t0 FROM t) - interval '4 days') AS balance_before;
-- spending now does not change the past
SELECT approved, cost, balance FROM credit_authorize('late_w', 'step', 4);
SELECT credit_balance('late_w', as_of => (SELECT t0 FROM t) - interval '36 hours') AS balance_day_minus_2;
SELECT count(*) AS violations FROM credit_verify();
