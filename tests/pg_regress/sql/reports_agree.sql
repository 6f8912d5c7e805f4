-- reports_agree.sql: the reports agree with each other and with the journal (issue 6, "Tests").
-- A mixed ledger: paid grants with unit prices, free (promotional, included) grants, several
-- wallets, a team pool with a limited and an unlimited member, an overdraft wallet whose debt
-- a paid grant settles, usage through credit_authorize, holds (captured less, captured more,
-- released, captured from the pool, one left open) and the usage trigger (INSERT, multi-row,
-- COPY, a retried row, a declined row), partial and full refunds (one of a pool draw, one to a
-- grant already written off), a paid grant written off by credit_expire with an explicit
-- as_of, and declines (insufficient credits, overdraft limit, pool limit, frozen wallet).
-- Each check prints `ok` first, then the numbers it compared.
CREATE EXTENSION credit_ledger;
\set VERBOSITY terse
\set SHOW_CONTEXT never
-- every authorize/hold result, by label (ids are never printed)
CREATE TABLE calls (label text PRIMARY KEY, r credit_authorization);
CREATE FUNCTION auth(label text) RETURNS bigint LANGUAGE sql AS
  $f$ SELECT (c.r).authorization_id FROM calls c WHERE c.label = auth.label $f$;

SELECT count(*) AS rates FROM (
  SELECT credit_rate_set(action => 'chat', variant => 'opus',  credits => 15, vendor_cost => 0.075)
  UNION ALL SELECT credit_rate_set(action => 'chat', variant => 'haiku', credits => 1, vendor_cost => 0.004)
  UNION ALL SELECT credit_rate_set(action => 'image.generate', credits => 40, vendor_cost => 0.04)
  UNION ALL SELECT credit_rate_set(action => 'embed', credits => 0.5, vendor_cost => 0.001)) r;
SELECT count(*) AS wallets FROM (
  SELECT credit_wallet_create(wallet => 'acme')
  UNION ALL SELECT credit_wallet_create(wallet => 'beta')
  UNION ALL SELECT credit_wallet_create(wallet => 'odie', overdraft_limit => 50)
  UNION ALL SELECT credit_wallet_create(wallet => 'team')
  UNION ALL SELECT credit_wallet_create(wallet => 'team.ann', parent => 'team', pool_limit => 100)
  UNION ALL SELECT credit_wallet_create(wallet => 'team.bob', parent => 'team')) w;
SELECT count(*) AS grants FROM (
  SELECT credit_grant(wallet => 'acme', amount => 500, unit_price => 0.01)
  UNION ALL SELECT credit_grant(wallet => 'acme', amount => 30, category => 'promotional')
  UNION ALL SELECT credit_grant(wallet => 'acme', amount => 200, category => 'bonus', priority => 45, unit_price => 0.02,
                                expires_at => now() + interval '1 hour')
  UNION ALL SELECT credit_grant(wallet => 'beta', amount => 200, unit_price => 0.012)
  UNION ALL SELECT credit_grant(wallet => 'beta', amount => 100, category => 'included')
  UNION ALL SELECT credit_grant(wallet => 'odie', amount => 20, unit_price => 0.01)
  UNION ALL SELECT credit_grant(wallet => 'team', amount => 300, unit_price => 0.008)
  UNION ALL SELECT credit_grant(wallet => 'team.ann', amount => 20, category => 'promotional')) g;

-- usage through credit_authorize and credit_hold
INSERT INTO calls VALUES
  ('a1', credit_authorize('acme', 'chat', 4, 'opus')),          -- 60: promotional 30, bonus 30
  ('a2', credit_authorize('acme', 'chat', 12.5, 'haiku')),
  ('a3', credit_authorize('acme', 'image.generate', 2)),
  ('a4', credit_authorize('acme', 'image.generate', 100)),      -- declined: insufficient_credits
  ('b1', credit_authorize('beta', 'embed', 100)),
  ('b2', credit_authorize('beta', 'chat', 4, 'opus')),
  ('o1', credit_authorize('odie', 'chat', 3, 'opus')),          -- 45: 20 paid, 25 overdraft
  ('o2', credit_authorize('odie', 'chat', 3, 'opus')),          -- declined: beyond the overdraft limit
  ('n1', credit_authorize('team.ann', 'chat', 4, 'opus')),      -- 60: 20 own, 40 from the pool
  ('n2', credit_authorize('team.ann', 'chat', 5, 'opus')),      -- declined: pool_limit_reached
  ('m1', credit_authorize('team.bob', 'image.generate', 1)),    -- 40 from the pool
  ('h1', credit_hold('acme', 'chat', 10, 'haiku')),
  ('h2', credit_hold('beta', 'chat', 2, 'opus')),
  ('h3', credit_hold('acme', 'chat', 1, 'opus')),
  ('h4', credit_hold('team.bob', 'chat', 1, 'opus'));
SELECT label, (r).approved, (r).reason, (r).cost FROM calls ORDER BY label;
-- holds: captured less, captured more, released, captured from the pool
SELECT status, captured FROM credit_capture(auth('h1'), 6);
SELECT status, captured FROM credit_capture(auth('h2'), 3);
SELECT status FROM credit_release(auth('h3'));
SELECT status, captured FROM credit_capture(auth('h4'));
-- usage through the trigger (single row, multi-row, COPY)
CREATE TABLE usage_rows (customer text, kind text, model text, qty numeric, request_id text, auth_id bigint);
CREATE TRIGGER bill BEFORE INSERT ON usage_rows FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer', 'action=kind', 'variant=model', 'quantity=qty',
                       'idempotency_key=request_id', 'authorization_id=auth_id');
INSERT INTO usage_rows (customer, kind, model, qty, request_id) VALUES ('beta', 'chat', 'haiku', 7, 'r1');
INSERT INTO usage_rows (customer, kind, model, qty, request_id) VALUES
  ('acme', 'embed', NULL, 40, 'r2'), ('team.bob', 'chat', 'haiku', 5, 'r3'), ('beta', 'chat', 'haiku', 7, 'r1');
COPY usage_rows (customer, kind, model, qty, request_id) FROM stdin;
odie	embed	\N	10	r4
beta	image.generate	\N	1	r5
\.
-- a trigger decline fails the statement and leaves no record
INSERT INTO usage_rows (customer, kind, qty, request_id) VALUES ('odie', 'image.generate', 5, 'r6');
-- a frozen wallet declines
SELECT wallet FROM credit_wallet_update('beta', frozen => true);
INSERT INTO calls VALUES ('b3', credit_authorize('beta', 'embed', 1));
SELECT wallet FROM credit_wallet_update('beta', frozen => false);
-- refunds: partial, full, of a pool draw
SELECT amount, refunded_total FROM credit_refund(auth('a2'), 2.5);
SELECT amount, refunded_total FROM credit_refund(auth('b2'));
SELECT amount, refunded_total FROM credit_refund(auth('m1'), 10);
-- odie's debt is settled by its next paid grant
SELECT amount FROM credit_grant(wallet => 'odie', amount => 100, unit_price => 0.01);
-- the bonus lot expires (as if an hour had passed); a refund of credits it paid for expires at once
SELECT grants_expired, credits_expired FROM credit_expire(as_of => now() + interval '2 hours');
SELECT amount, refunded_total FROM credit_refund(auth('a1'), 15);
-- a hold that stays open (made after the simulated expiry run, which would have expired it)
INSERT INTO calls VALUES ('h5', credit_hold('beta', 'embed', 10));
-- corrections (0.6.0): part of a paid grant voided, paid credits taken back by a negative
-- adjustment, a free goodwill adjustment, paid credits transferred (they keep their price) and
-- spent in their new wallet, a pool's credits moved to a member, a wallet closed with its paid
-- credits expiring (breakage), one closed into another wallet (transferred)
SELECT kind, done FROM credit_grant_void((SELECT min(g.id) FROM credit_ledger.grants g JOIN credit_ledger.wallets w
        ON w.id = g.wallet_id AND w.tenant = g.tenant WHERE w.wallet = 'beta' AND g.unit_price > 0), 50, reason => 'chargeback');
SELECT kind, done FROM credit_adjust('acme', -20, reason => 'double top-up');
SELECT kind, done FROM credit_adjust('beta', 15, reason => 'goodwill');
SELECT count(*) AS wallets FROM (SELECT credit_wallet_create(wallet => 'gamma')
                                 UNION ALL SELECT credit_wallet_create(wallet => 'delta')) w;
SELECT count(*) AS grants FROM (SELECT credit_grant(wallet => 'gamma', amount => 80, unit_price => 0.015)
                                UNION ALL SELECT credit_grant(wallet => 'delta', amount => 60, unit_price => 0.02)) g;
SELECT kind, done FROM credit_transfer('acme', 'gamma', 100, reason => 'merge');
INSERT INTO calls VALUES ('g1', credit_authorize('gamma', 'image.generate', 3));   -- 120: 80 own, 40 moved
SELECT kind, done FROM credit_transfer('team', 'team.bob', 25);
SELECT asset, done FROM credit_wallet_close('delta', reason => 'account deleted');
SELECT asset, done FROM credit_wallet_close('gamma', 'transfer', 'beta');

-- ======================================================= the checks: ok, then the numbers
-- 1. Usage. Definition: credits consumed by approved debits and captured holds, net of refunds
-- = minus the sum of journal amounts of kind debit, capture, overdraft (the part taken as debt)
-- and refund. Holds and releases only move `held`; expiry, settlement and grants are not usage.
WITH r AS (SELECT asset, sum(credits) AS credits, sum(quantity) AS quantity, sum(vendor_cost) AS vendor_cost,
                  sum(calls) AS calls, sum(refunded) AS refunded
             FROM credit_ledger.usage_daily GROUP BY asset),
     j AS (SELECT asset, -sum(amount) AS credits, sum(amount) FILTER (WHERE kind = 'refund') AS refunded
             FROM credit_ledger.journal WHERE kind IN ('debit', 'capture', 'overdraft', 'refund') GROUP BY asset)
SELECT r.asset, r.credits = j.credits AND r.refunded = j.refunded AS ok,
       r.credits AS usage_credits, j.credits AS journal_debits, r.refunded AS usage_refunded, j.refunded AS journal_refunds
  FROM r FULL JOIN j USING (asset) ORDER BY 1;
-- the same per wallet (a pool draw is the member's usage; the journal names the paying
-- grant's wallet, the authorization names the member)
WITH r AS (SELECT wallet, sum(credits) AS credits FROM credit_ledger.usage_daily GROUP BY wallet),
     j AS (SELECT w.wallet, -sum(j.amount) AS credits
             FROM credit_ledger.journal j
             JOIN credit_ledger.authorizations a ON a.id = j.authorization_id AND a.tenant = j.tenant
             JOIN credit_ledger.wallets w ON w.id = a.wallet_id AND w.tenant = a.tenant
            WHERE j.kind IN ('debit', 'capture', 'overdraft', 'refund') GROUP BY w.wallet)
SELECT wallet, r.credits IS NOT DISTINCT FROM j.credits AS ok, r.credits AS usage_credits, j.credits AS journal_debits
  FROM r FULL JOIN j USING (wallet) ORDER BY 1;
-- usage_daily and margin_by_action: the same credits and vendor cost; calls = the approved
-- debits and captured holds of the log plus the rows the trigger billed
SELECT u.credits = m.credits AND u.vendor_cost = m.vendor_cost AND u.calls = c.calls AS ok,
       u.credits AS usage_credits, m.credits AS margin_credits,
       u.vendor_cost AS usage_vendor_cost, m.vendor_cost AS margin_vendor_cost,
       u.calls AS usage_calls, c.calls AS logged_calls
  FROM (SELECT sum(credits) AS credits, sum(vendor_cost) AS vendor_cost, sum(calls) AS calls FROM credit_ledger.usage_daily) u,
       (SELECT sum(credits) AS credits, sum(vendor_cost) AS vendor_cost FROM credit_ledger.margin_by_action) m,
       (SELECT (SELECT count(*) FROM calls c JOIN credit_ledger.authorizations a ON a.id = (c.r).authorization_id
                 WHERE a.status IN ('approved', 'captured'))
             + (SELECT count(DISTINCT auth_id) FROM usage_rows) AS calls) c;

-- 2. Money, per asset: paid credits sold (amount x unit price of every grant with a price)
-- = liability (deferred revenue) + revenue recognized (revenue_monthly: usage net of refunds,
-- and overdraft debt settled later by paid grants) + breakage (revenue recognized from expiry).
-- Voids and negative adjustments reverse liability (reversals): sold = liability + recognized
-- + breakage + reversed. A grant a transfer created is not a sale (its credits were sold once,
-- in the grant they came from, whose price they keep).
WITH sold AS (SELECT asset, sum(amount) AS credits, sum(amount * unit_price) AS money
                FROM credit_ledger.grants
               WHERE unit_price > 0 AND transfer_of IS NULL AND home_id IS NULL AND source_id IS NULL
               GROUP BY asset),
     v AS (SELECT asset, sum(liability_reversed) AS money FROM credit_ledger.reversals GROUP BY asset),
     l AS (SELECT asset, sum(credits_outstanding) AS credits, sum(deferred_revenue) AS money
             FROM credit_ledger.liability GROUP BY asset),
     r AS (SELECT asset, sum(revenue_recognized) AS money FROM credit_ledger.revenue_monthly GROUP BY asset),
     b AS (SELECT asset, sum(credits_expired) AS credits, sum(revenue_recognized) AS money
             FROM credit_ledger.breakage GROUP BY asset)
SELECT sold.asset,
       sold.money = l.money + r.money + b.money + coalesce(v.money, 0) AS ok,
       sold.money AS sold, l.money AS liability, r.money AS recognized, b.money AS breakage,
       coalesce(v.money, 0) AS reversed
  FROM sold JOIN l USING (asset) JOIN r USING (asset) JOIN b USING (asset) LEFT JOIN v USING (asset) ORDER BY 1;
-- revenue_monthly's usage revenue is margin_by_action's revenue; its settlement revenue is the
-- journal's settlements at the settling grants' price (margin_by_action values the part of a
-- debit taken as overdraft at 0: no grant paid it then)
WITH r AS (SELECT asset, sum(credits_used) AS credits, sum(usage_revenue) AS usage_revenue,
                  sum(credits_settling_debt) AS settled, sum(settlement_revenue) AS settlement_revenue
             FROM credit_ledger.revenue_monthly GROUP BY asset),
     m AS (SELECT asset, sum(revenue) AS money FROM credit_ledger.margin_by_action GROUP BY asset),
     s AS (SELECT j.asset, -sum(j.amount * g.unit_price) AS money
             FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
            WHERE j.kind = 'settlement' GROUP BY j.asset)
SELECT r.asset, r.usage_revenue = m.money AND r.settlement_revenue = coalesce(s.money, 0) AS ok,
       r.usage_revenue, m.money AS margin_revenue, r.settlement_revenue, coalesce(s.money, 0) AS journal_settlements
  FROM r JOIN m USING (asset) LEFT JOIN s USING (asset) ORDER BY 1;
-- the report itself (one month here)
SELECT asset, sum(credits_used) AS credits_used, sum(usage_revenue) AS usage_revenue,
       sum(credits_settling_debt) AS credits_settling_debt, sum(settlement_revenue) AS settlement_revenue,
       sum(revenue_recognized) AS revenue_recognized
  FROM credit_ledger.revenue_monthly GROUP BY asset ORDER BY asset;
-- the same in credits: paid credits sold = outstanding (liability) + spent + expired (grant_status)
-- (+ voided + transferred out; the grants transfers created count here as the credits they got)
WITH g AS (SELECT g.asset, sum(g.amount) AS sold, sum(s.spent) AS spent, sum(s.expired) AS expired,
                  sum(s.voided) AS voided, sum(s.transferred_out) AS transferred_out
             FROM credit_ledger.grants g JOIN credit_ledger.grant_status s ON s.grant_id = g.id
            WHERE g.unit_price > 0 GROUP BY g.asset)
SELECT g.asset, g.sold = l.credits + g.spent + g.expired + g.voided + g.transferred_out AS ok,
       g.sold, l.credits AS liability, g.spent, g.expired, g.voided, g.transferred_out
  FROM g JOIN (SELECT asset, sum(credits_outstanding) AS credits FROM credit_ledger.liability GROUP BY asset) l USING (asset)
 ORDER BY 1;
-- breakage = the expiry entries of the journal = what grant_status shows expired
SELECT b.credits = j.credits AND j.credits = s.credits AS ok, b.credits AS breakage, j.credits AS journal_expiry,
       s.credits AS grant_status_expired
  FROM (SELECT sum(credits_expired) AS credits FROM credit_ledger.breakage) b,
       (SELECT -sum(amount) AS credits FROM credit_ledger.journal WHERE kind = 'expiry') j,
       (SELECT sum(expired) AS credits FROM credit_ledger.grant_status) s;
-- every grant: amount = remaining + spent + expired + rolled over; spent on grants = usage
-- minus the part still or once taken as overdraft debt plus the debt settled from grants
WITH g AS (SELECT count(*) FILTER (WHERE amount <> remaining + spent + expired + rolled_over + voided + transferred_out) = 0 AS rows_ok,
                  count(*) AS grants, sum(amount) AS amount, sum(remaining) AS remaining, sum(spent) AS spent,
                  sum(expired) AS expired
             FROM credit_ledger.grant_status),
     u AS (SELECT sum(credits) AS credits FROM credit_ledger.usage_daily),
     d AS (SELECT -sum(amount) FILTER (WHERE kind <> 'settlement') AS debt,
                  sum(amount) FILTER (WHERE kind = 'settlement') AS settled
             FROM credit_ledger.journal WHERE grant_id IS NULL)
SELECT g.rows_ok AND g.spent = u.credits - d.debt + d.settled AS ok,
       g.grants, g.amount, g.remaining, g.spent, g.expired
  FROM g, u, d;

-- 3. Balances: wallet_balances = credit_balance for every wallet (a wallet without live
-- grants has no row in wallet_balances: 0)
-- (each wallet's credit_balance called on its own, first: a ledger function is not called from
-- inside a query Citus sends to the shards)
WITH w AS MATERIALIZED (SELECT wallet FROM credit_ledger.wallets),
     c AS MATERIALIZED (SELECT wallet, credit_balance(wallet) AS balance FROM w)
SELECT c.wallet, coalesce(b.balance, 0) = c.balance AS ok,
       b.balance AS report, c.balance AS credit_balance, b.held, b.debt
  FROM c LEFT JOIN credit_ledger.wallet_balances b ON b.wallet = c.wallet AND b.asset = 'credits'
 ORDER BY c.wallet;

-- 4. Pool draws: pool_usage = what the member's authorizations moved on the team's grants
-- (journal, joined through the authorization rather than journal.member_id)
WITH j AS (SELECT m.wallet AS member, -sum(j.amount) + sum(j.held) AS drawn
             FROM credit_ledger.journal j
             JOIN credit_ledger.authorizations a ON a.id = j.authorization_id AND a.tenant = j.tenant
             JOIN credit_ledger.wallets m ON m.id = a.wallet_id AND m.tenant = a.tenant
             JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
            WHERE g.wallet_id = m.parent_id GROUP BY m.wallet)
SELECT p.member, p.drawn_total = j.drawn AND p.drawn_this_period = j.drawn AS ok,
       p.pool_limit, p.drawn_this_period, p.drawn_total, j.drawn AS journal_drawn
  FROM credit_ledger.pool_usage p FULL JOIN j USING (member) ORDER BY 1;

-- 5. Declines: declines_daily = the declined calls of the log (a declined trigger row rolls
-- back with its INSERT and leaves no record)
SELECT d.declines = c.declines AS ok, d.declines AS report, c.declines AS logged
  FROM (SELECT sum(declines) AS declines FROM credit_ledger.declines_daily) d,
       (SELECT count(*) AS declines FROM calls WHERE NOT (r).approved) c;
SELECT wallet, reason, action, declines FROM credit_ledger.declines_daily ORDER BY wallet, reason, action;

SELECT * FROM credit_verify();
