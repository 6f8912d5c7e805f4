-- lifecycle.sql: allowances, rollover policies, catch-up, balances as of an instant, overdraft
-- debt settled by the next allowance, and UTC period boundaries (SPEC §2, §4; issue 5).
-- Output holds no now(): the near-now sections run on a clock t0 = the current hour and show
-- times as offsets from it; the month-end sections use fixed dates in the past. Every check has a
-- comment with the number it must show and why.
CREATE EXTENSION credit_ledger;
-- the near-now sections tick up to 3 days ahead of now: a superuser raises the bound on a
-- lifecycle write's as_of (default 1 day; issue 16, see lifecycle_bounds.sql)
SET credit_ledger.max_future_as_of = '7d';
\set VERBOSITY default
SET TimeZone = 'UTC';

-- A wallet's grants in order: category, rollover generation (source), amount, remaining and
-- its validity as offsets from t0.
CREATE FUNCTION lots(w text, t0 timestamptz)
RETURNS TABLE (category text, source text, amount numeric, remaining numeric, effective interval, expires interval)
LANGUAGE plpgsql AS $f$
BEGIN
    RETURN QUERY
        SELECT g.category, g.source, g.amount, g.remaining, g.effective_at - t0, g.expires_at - t0
          FROM credit_ledger.grants g JOIN credit_ledger.wallets x ON x.id = g.wallet_id AND x.tenant = g.tenant
         WHERE x.wallet = w ORDER BY g.effective_at, g.priority, g.id;
END $f$;
-- The same with the dates in UTC (for fixed dates).
CREATE FUNCTION lots_utc(w text)
RETURNS TABLE (category text, source text, amount numeric, remaining numeric, effective text, expires text)
LANGUAGE plpgsql AS $f$
BEGIN
    RETURN QUERY
        SELECT g.category, g.source, g.amount, g.remaining,
               to_char(g.effective_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
               to_char(g.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')
          FROM credit_ledger.grants g JOIN credit_ledger.wallets x ON x.id = g.wallet_id AND x.tenant = g.tenant
         WHERE x.wallet = w ORDER BY g.effective_at, g.priority, g.id;
END $f$;
-- A wallet's journal: kind, the lot (its source and start, as an offset from t0 when given,
-- else in UTC; debt = the overdraft line), amount, held.
CREATE FUNCTION entries(w text, t0 timestamptz DEFAULT NULL)
RETURNS TABLE (kind text, lot text, amount numeric, held numeric)
LANGUAGE plpgsql AS $f$
BEGIN
    RETURN QUERY
        SELECT j.kind,
               coalesce(g.source || ' from ' || coalesce((g.effective_at - t0)::text,
                                                         to_char(g.effective_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')), 'debt'),
               j.amount, j.held
          FROM credit_ledger.journal j JOIN credit_ledger.wallets x ON x.id = j.wallet_id AND x.tenant = j.tenant
          LEFT JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
         WHERE x.wallet = w ORDER BY j.id;
END $f$;
SELECT action, credits FROM credit_rate_set('step', 1, effective_from => '2000-01-01 00:00:00+00');
SELECT date_trunc('hour', now()) AS t0 \gset
-- t0 is the start of the current hour: now() stays inside the first daily period [t0, t0 + 1 day)
-- for the whole test, so debits can spend its allowance. Ticks with as_of after now() play the
-- days ahead (what they move or expire takes effect at each lot's end). Offsets from t0 print
-- as intervals ('@ 1 day').

-- ===================================================================== rollover policies
-- Three wallets, 100 credits a day from t0, one per policy: none, capped (rollover_cap 30),
-- declining (rollover_shares {1, 0.5}). Each spends 40 in the first period.
SELECT wallet FROM credit_wallet_create('none_w');
SELECT wallet FROM credit_wallet_create('cap_w');
SELECT wallet FROM credit_wallet_create('decl_w');
-- the first period's allowance is granted at once; the next boundary is t0 + 1 day
SELECT wallet, amount, period, next_boundary - :'t0' AS next_boundary
  FROM credit_allowance_set('none_w', 100, period => '1 day', anchor => :'t0', as_of => :'t0');
SELECT wallet, amount, period, next_boundary - :'t0' AS next_boundary
  FROM credit_allowance_set('cap_w', 100, period => '1 day', anchor => :'t0', as_of => :'t0', rollover_cap => 30);
SELECT wallet, amount, period, next_boundary - :'t0' AS next_boundary
  FROM credit_allowance_set('decl_w', 100, period => '1 day', anchor => :'t0', as_of => :'t0', rollover_shares => '{1, 0.5}');
-- each spends 40 of its 100: balance 60
SELECT approved, cost, balance FROM credit_authorize('none_w', 'step', 40);
SELECT approved, cost, balance FROM credit_authorize('cap_w', 'step', 40);
SELECT approved, cost, balance FROM credit_authorize('decl_w', 'step', 40);

-- boundary 1 (t0 + 1 day): 3 boundaries (one per wallet); 60 unused in each:
--   none 0 carried, 60 expire; capped 30 carried, 30 expire; declining 60 (share 1) carried,
--   nothing left to expire. So 2 grants expire with 60 + 30 = 90 credits.
SELECT boundaries, grants_expired, credits_expired, holds_expired FROM credit_tick(as_of => :'t0'::timestamptz + interval '1 day');
-- boundary 2 (t0 + 2 days), nothing spent in period 2 (it is in the future of now()):
--   none: allowance 100 unused, expires (1 grant, 100)
--   capped: 30 of the allowance's 100 carried, 70 expire; the rollover lot (30) is not carried
--     again (a cap carries one period only) and expires: 2 grants, 100
--   declining: the allowance's 100 carried in full (share 1), the rollover lot of 60 carries
--     half (share 0.5) = 30 as a second-generation lot and its other 30 expire: 1 grant, 30
--   in all 4 grants, 100 + 100 + 30 = 230 credits
SELECT boundaries, grants_expired, credits_expired, holds_expired FROM credit_tick(as_of => :'t0'::timestamptz + interval '2 days');
-- boundary 3: none 100 expire (1 grant); capped 70 + 30 expire (2 grants); declining: the
-- allowance's 100 carried, the first-generation lot of 100 carries 50 (50 expire), the
-- second-generation lot of 30 carries nothing (no third share) and expires: 2 grants, 80.
-- In all 5 grants, 100 + 100 + 80 = 280 credits
SELECT boundaries, grants_expired, credits_expired, holds_expired FROM credit_tick(as_of => :'t0'::timestamptz + interval '3 days');
-- a second tick at the same instant finds nothing (idempotent): 0 0 0 0
SELECT boundaries, grants_expired, credits_expired, holds_expired FROM credit_tick(as_of => :'t0'::timestamptz + interval '3 days');

-- none: four allowance lots, each valid one day; the first has 0 left (40 spent, 60 expired),
-- the next two 0 (expired), the current one (day 3 to 4) 100
SELECT * FROM lots('none_w', :'t0');
-- capped: 30 carried at every boundary into a rollover lot valid one period; remaining 0 for
-- everything that ended, 100 + 30 in the current period
SELECT * FROM lots('cap_w', :'t0');
-- declining: rollover:1 lots of 60, 100, 100 and rollover:2 lots of 30 (half of 60) and 50
-- (half of 100); the current period holds 100 (allowance) + 100 (rollover:1) + 50 (rollover:2)
SELECT * FROM lots('decl_w', :'t0');
-- the declining wallet's journal: grant 100, debit -40, then per boundary the rollover moves
-- (negative on the ending lot, a new grant of the same amount), the new allowance, expiries
SELECT * FROM entries('decl_w', :'t0');
-- balances as of t0 + 12 hours: 60 each (100 - 40; what the boundary moved or expired takes
-- effect at the lot's end); as of t0 + 3 days + 1 hour: none 100, capped 100 + 30 = 130,
-- declining 100 + 100 + 50 = 250
SELECT credit_balance('none_w', as_of => :'t0'::timestamptz + interval '12 hours') AS none_w,
       credit_balance('cap_w', as_of => :'t0'::timestamptz + interval '12 hours') AS cap_w,
       credit_balance('decl_w', as_of => :'t0'::timestamptz + interval '12 hours') AS decl_w;
SELECT credit_balance('none_w', as_of => :'t0'::timestamptz + interval '73 hours') AS none_w,
       credit_balance('cap_w', as_of => :'t0'::timestamptz + interval '73 hours') AS cap_w,
       credit_balance('decl_w', as_of => :'t0'::timestamptz + interval '73 hours') AS decl_w;

-- ===================================================================== catch-up
-- Two wallets with the same declining allowance and the same debit of 25. cu_step is ticked at
-- every boundary; cu_once is created afterwards and ticked once, 3 boundaries late. Both end
-- with the same grants and the same journal entries (compared as sets: the ids differ).
SELECT wallet FROM credit_wallet_create('cu_step');
SELECT next_boundary - :'t0' AS next_boundary
  FROM credit_allowance_set('cu_step', 100, period => '1 day', anchor => :'t0', as_of => :'t0', rollover_shares => '{1, 0.5}');
SELECT approved, cost, balance FROM credit_authorize('cu_step', 'step', 25);
-- day 1: 1 boundary; 75 carried in full, nothing expires: 1 0 0
SELECT boundaries, grants_expired, credits_expired FROM credit_tick(as_of => :'t0'::timestamptz + interval '1 day');
-- day 2: 1 boundary; the rollover lot of 75 carries 37.5 and its other 37.5 expire: 1 1 37.5
SELECT boundaries, grants_expired, credits_expired FROM credit_tick(as_of => :'t0'::timestamptz + interval '2 days');
-- day 3: 1 boundary; the rollover lot of 100 carries 50 (50 expire) and the second-generation
-- lot of 37.5 expires: 1 2 87.5
SELECT boundaries, grants_expired, credits_expired FROM credit_tick(as_of => :'t0'::timestamptz + interval '3 days');
SELECT wallet FROM credit_wallet_create('cu_once');
SELECT next_boundary - :'t0' AS next_boundary
  FROM credit_allowance_set('cu_once', 100, period => '1 day', anchor => :'t0', as_of => :'t0', rollover_shares => '{1, 0.5}');
SELECT approved, cost, balance FROM credit_authorize('cu_once', 'step', 25);
-- one late tick: the same 3 boundaries in order, 3 grants expired, 37.5 + 87.5 = 125 credits
SELECT boundaries, grants_expired, credits_expired FROM credit_tick(as_of => :'t0'::timestamptz + interval '3 days');
-- no differences either way: grants 0 0, journal 0 0; 9 grants (4 allowance, 5 rollover) and
-- 18 journal entries each (9 grants, 1 debit, 5 rollover moves, 3 expiries)
WITH s AS (SELECT * FROM lots('cu_step', :'t0')), o AS (SELECT * FROM lots('cu_once', :'t0'))
SELECT (SELECT count(*) FROM (SELECT * FROM s EXCEPT ALL SELECT * FROM o) x) AS grants_only_step,
       (SELECT count(*) FROM (SELECT * FROM o EXCEPT ALL SELECT * FROM s) x) AS grants_only_once,
       (SELECT count(*) FROM s) AS grants;
WITH s AS (SELECT * FROM entries('cu_step', :'t0')), o AS (SELECT * FROM entries('cu_once', :'t0'))
SELECT (SELECT count(*) FROM (SELECT * FROM s EXCEPT ALL SELECT * FROM o) x) AS entries_only_step,
       (SELECT count(*) FROM (SELECT * FROM o EXCEPT ALL SELECT * FROM s) x) AS entries_only_once,
       (SELECT count(*) FROM s) AS entries;
SELECT * FROM lots('cu_once', :'t0');

-- ===================================================================== balance as of an instant
-- asof_w: 100 a day from t0 with rollover_cap 40, plus 10 purchased credits valid until
-- t0 + 30 hours. It spends 30 and holds 20 (ttl 2 days) from the allowance (included is spent
-- before purchased).
SELECT wallet FROM credit_wallet_create('asof_w');
SELECT next_boundary - :'t0' AS next_boundary
  FROM credit_allowance_set('asof_w', 100, period => '1 day', anchor => :'t0', as_of => :'t0', rollover_cap => 40);
SELECT category, amount FROM credit_grant('asof_w', 10, effective_at => :'t0', expires_at => :'t0'::timestamptz + interval '30 hours');
SELECT approved, cost, balance FROM credit_authorize('asof_w', 'step', 30);
SELECT approved, cost, balance FROM credit_hold('asof_w', 'step', 20, ttl => '2 days');
-- boundary 1: unused = 100 - 30 spent - 20 held = 50, capped at 40 carried; the other 10
-- expire (the 20 stay held by the open hold): 1 boundary, 1 grant, 10 credits
SELECT boundaries, grants_expired, credits_expired, holds_expired FROM credit_tick(as_of => :'t0'::timestamptz + interval '1 day');
-- the purchased lot expires at t0 + 30 hours: credit_expire at that instant writes it off
-- (no boundary is due then): 1 grant, 10 credits, no hold
SELECT grants_expired, credits_expired, holds_expired, more FROM credit_expire(as_of => :'t0'::timestamptz + interval '30 hours');
-- balances as of instants:
--   t0 - 1 hour: nothing effective yet: 0
--   t0 + 12 hours: allowance 100 - 30 spent - 20 held, + 10 purchased = 60 (the rollover and
--     expiry entries written at the boundary take effect at the lot's end, not before)
--   t0 + 27 hours: new allowance 100 + rollover 40 + purchased 10 = 150 (the held 20 were
--     on the lot that ended)
--   t0 + 33 hours: the purchased lot has expired: 140
SELECT credit_balance('asof_w', as_of => :'t0'::timestamptz - interval '1 hour') AS before,
       credit_balance('asof_w', as_of => :'t0'::timestamptz + interval '12 hours') AS h12,
       credit_balance('asof_w', as_of => :'t0'::timestamptz + interval '27 hours') AS h27,
       credit_balance('asof_w', as_of => :'t0'::timestamptz + interval '33 hours') AS h33;
-- boundary 2 (t0 + 2 days): the allowance's 100 unused carries 40 (60 expire), the rollover
-- lot of 40 is not carried again (40 expire): 1 boundary, 2 grants, 100 credits; the hold is
-- still open (its ttl ends 2 days after now(), later than t0 + 2 days)
SELECT boundaries, grants_expired, credits_expired, holds_expired FROM credit_tick(as_of => :'t0'::timestamptz + interval '2 days');
-- after the later ticks the earlier instants still read the same (60, 150, 140), and day 2
-- (t0 + 49 hours) holds allowance 100 + rollover 40 = 140
SELECT credit_balance('asof_w', as_of => :'t0'::timestamptz + interval '12 hours') AS h12,
       credit_balance('asof_w', as_of => :'t0'::timestamptz + interval '27 hours') AS h27,
       credit_balance('asof_w', as_of => :'t0'::timestamptz + interval '33 hours') AS h33,
       credit_balance('asof_w', as_of => :'t0'::timestamptz + interval '49 hours') AS h49;

-- ===================================================================== month ends (fixed dates)
-- A monthly allowance anchored on Jan 31 renews on the last day of shorter months and on the
-- 31st again after them (never drifting to the 28th), in UTC whatever the session's TimeZone.
-- These sections play fixed dates in the past, newest first, so that no tick below reaches a
-- boundary of an earlier section's wallet.
SET TimeZone = 'America/New_York';
-- leap year 2024: Jan 31, Feb 29, Mar 31, Apr 30
SELECT wallet FROM credit_wallet_create('jan31_2024');
SELECT to_char(next_boundary AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS next_boundary
  FROM credit_allowance_set('jan31_2024', 100, anchor => '2024-01-31 00:00:00+00', as_of => '2024-01-31 00:00:00+00');
-- to Apr 30: 3 boundaries (Feb 29, Mar 31, Apr 30); the 3 ended lots expire unused: 300
SELECT boundaries, grants_expired, credits_expired FROM credit_tick(as_of => '2024-04-30 00:00:00+00');
SELECT * FROM lots_utc('jan31_2024');
-- next: May 31
SELECT to_char(next_boundary AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS next_boundary
  FROM credit_ledger.allowances l JOIN credit_ledger.wallets w ON w.id = l.wallet_id AND w.tenant = l.tenant WHERE w.wallet = 'jan31_2024';
-- common year 2023: Jan 31, Feb 28, Mar 31; a tick 1 second before Mar 31 processes only Feb 28
SELECT wallet FROM credit_wallet_create('jan31_2023');
SELECT to_char(next_boundary AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS next_boundary
  FROM credit_allowance_set('jan31_2023', 100, anchor => '2023-01-31 00:00:00+00', as_of => '2023-02-01 00:00:00+00', rollover_cap => 25);
-- 1 boundary (Feb 28): 25 carried, 75 expire
SELECT boundaries, grants_expired, credits_expired FROM credit_tick(as_of => '2023-03-30 23:59:59+00');
-- Mar 31: 1 boundary; the Feb lot's 100 carry 25 (75 expire) and the rollover lot of 25 expires: 2 grants, 100
SELECT boundaries, grants_expired, credits_expired FROM credit_tick(as_of => '2023-03-31 00:00:00+00');
SELECT * FROM lots_utc('jan31_2023');
-- the period helpers: the period of Mar 30 2024 started Feb 29 and ends Mar 31 (from the anchor;
-- Feb 29 + 1 month would be Mar 29); Jan 31 2100 is followed by Feb 28 (2100 is not a leap
-- year); calendar months (NULL period) are UTC months: 2024-03-01 02:00 UTC is Feb 29 evening
-- in New York but in March's period
SELECT to_char(credit_ledger._period_start('1 month', '2024-01-31 00:00:00+00', '2024-03-30 12:00:00+00') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS start_2024,
       to_char(credit_ledger._period_next('1 month', '2024-01-31 00:00:00+00', '2024-02-29 00:00:00+00') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS after_feb29,
       to_char(credit_ledger._period_next('1 month', '2100-01-31 00:00:00+00', '2100-01-31 00:00:00+00') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS after_jan31_2100,
       to_char(credit_ledger._period_start(NULL, NULL, '2024-03-01 02:00:00+00') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS calendar_month;
-- daily periods across the US DST change (2022-03-13): every boundary at 05:00 UTC (a day is
-- 24 hours in UTC), so in New York time 00:00 EST then 01:00 EDT
SELECT wallet FROM credit_wallet_create('dst_w');
SELECT next_boundary AS next_boundary_new_york
  FROM credit_allowance_set('dst_w', 10, period => '1 day', anchor => '2022-03-12 05:00:00+00', as_of => '2022-03-12 05:00:00+00');
-- 2 boundaries (Mar 13 and Mar 14, 05:00 UTC), 2 lots of 10 expired
SELECT boundaries, grants_expired, credits_expired FROM credit_tick(as_of => '2022-03-14 05:00:00+00');
SELECT * FROM lots_utc('dst_w');
-- the lots' ends in New York time: Mar 13 00:00 EST, Mar 14 01:00 EDT, Mar 15 01:00 EDT
SELECT expires_at FROM credit_grants('dst_w') ORDER BY expires_at;
SET TimeZone = 'UTC';

-- ===================================================================== overdraft debt
-- od_w may go 50 into overdraft. Its monthly allowance (from Jan 31 2021) ended long before
-- now(), so a debit of 30 now is all overdraft debt: balance -30. The tick of the next boundary
-- (Feb 28 2021) grants the new allowance, which pays the debt first: 30 of its 100.
SELECT wallet, overdraft_limit FROM credit_wallet_create('od_w', overdraft_limit => 50);
SELECT to_char(next_boundary AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS next_boundary
  FROM credit_allowance_set('od_w', 100, anchor => '2021-01-31 00:00:00+00', as_of => '2021-01-31 00:00:00+00');
-- approved, cost 30, balance -30 (all of it debt)
SELECT approved, cost, balance FROM credit_authorize('od_w', 'step', 30);
SELECT debt FROM credit_ledger.wallet_assets s JOIN credit_ledger.wallets w ON w.id = s.wallet_id AND w.tenant = s.tenant WHERE w.wallet = 'od_w';
-- 1 boundary; the January lot expires with its 100 unused
SELECT boundaries, grants_expired, credits_expired FROM credit_tick(as_of => '2021-02-28 00:00:00+00');
-- journal: the January grant (100), the debt taken (-30), the February grant (100), its
-- settlement (-30 on the lot, +30 on the debt line), the January lot's expiry (-100)
SELECT * FROM entries('od_w');
-- debt 0; the February lot has 70 left
SELECT debt FROM credit_ledger.wallet_assets s JOIN credit_ledger.wallets w ON w.id = s.wallet_id AND w.tenant = s.tenant WHERE w.wallet = 'od_w';
SELECT * FROM lots_utc('od_w');

-- ===================================================================== integrity
-- every cached amount equals the journal, conservation holds: no rows
SELECT * FROM credit_verify();
