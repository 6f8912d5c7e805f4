-- lifecycle_bounds.sql: issue 16. The as_of of a lifecycle write is bounded, and allowance
-- catch-up works in bounded batches.
--
-- * credit_expire / credit_tick / credit_allowance_set take as_of at most
--   credit_ledger.max_future_as_of (default 1 day, superuser only) after now: a scheduler role
--   calling credit_expire(as_of => now() + '50 years') would otherwise expire every tenant's
--   valid grants; it cannot raise the bound itself.
-- * One credit_tick processes at most 1000 boundaries of one allowance: an hourly allowance
--   backdated to year 1000 (millions of boundaries) catches up over many ticks and never stalls
--   other wallets' allowances. Grants ending at a boundary still to be processed are not
--   expired before it (its rollover looks at what is unused then).
-- Output holds no now(): counts and offsets only.
CREATE EXTENSION credit_ledger;
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SET TimeZone = 'UTC';

CREATE FUNCTION err(stmt text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'as_of .* is', 'as_of <t> is');
END $f$;
CREATE FUNCTION ledger_digest() RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
        SELECT 'g' || id || ':' || remaining || ':' || held FROM credit_ledger.grants
        UNION ALL SELECT 'j' || count(*) FROM credit_ledger.journal
        UNION ALL SELECT 'a' || id || ':' || next_boundary FROM credit_ledger.allowances) t(x)
$$;

SELECT (credit_wallet_create('acme')).wallet;
SELECT (credit_grant('acme', 100, expires_at => now() + interval '30 days')).amount;

-- ---- the future bound --------------------------------------------------------------------
SELECT current_setting('credit_ledger.max_future_as_of') AS default_bound;
SELECT ledger_digest() AS before \gset
SELECT err($$SELECT credit_expire(as_of => now() + interval '50 years')$$);
SELECT err($$SELECT credit_tick(as_of => now() + interval '2 days')$$);
SELECT err($$SELECT credit_allowance_set('acme', 10, period => '1 day', as_of => now() + interval '2 days')$$);
SELECT err($$SELECT credit_expire(as_of => 'infinity')$$);
SELECT ledger_digest() = :'before' AS nothing_changed;
SELECT remaining FROM credit_grants('acme');
-- within the bound: accepted
SELECT err($$SELECT credit_expire(as_of => now() + interval '23 hours')$$);
-- a scheduler role cannot raise the bound
DROP ROLE IF EXISTS cl_lb_cron;
CREATE ROLE cl_lb_cron NOLOGIN;
SELECT count(*) FROM credit_ledger_grant('cl_lb_cron', 'cron');
SET ROLE cl_lb_cron;
SELECT err($$SET credit_ledger.max_future_as_of = '100y'$$);
SELECT err($$SELECT credit_expire(as_of => now() + interval '50 years')$$);
RESET ROLE;
SELECT remaining FROM credit_grants('acme');
-- a superuser can (tests that simulate time do)
SET credit_ledger.max_future_as_of = '3d';
SELECT err($$SELECT credit_tick(as_of => now() + interval '2 days')$$);
RESET credit_ledger.max_future_as_of;

-- ---- bounded catch-up ---------------------------------------------------------------------
-- hog: an hourly allowance backdated to year 1000 (about 8.9 million boundaries are due);
-- other: a daily allowance on a clock of whole hours, with its boundaries h and h + 1 day due
SELECT date_trunc('hour', now()) AS h \gset
SELECT (credit_wallet_create('hog')).wallet, (credit_wallet_create('other')).wallet;
SELECT wallet, period FROM credit_allowance_set('hog', 1, period => '1 hour', anchor => '1000-01-01 00:00+00',
                                                as_of => '1000-01-01 00:30+00');
SELECT wallet, period FROM credit_allowance_set('other', 5, period => '1 day', anchor => :'h',
                                                as_of => :'h'::timestamptz - interval '1 hour');
SET credit_ledger.max_future_as_of = '2d';
-- first tick: 1000 boundaries of hog (the cap) and both of other's in the same call
SELECT boundaries FROM credit_tick(as_of => :'h'::timestamptz + interval '24 hours');
SELECT w.wallet, l.next_boundary
  FROM credit_ledger.allowances l JOIN credit_ledger.wallets w ON w.id = l.wallet_id AND w.tenant = l.tenant WHERE w.wallet = 'hog';
SELECT w.wallet, l.next_boundary - :'h'::timestamptz AS next_boundary_from_h
  FROM credit_ledger.allowances l JOIN credit_ledger.wallets w ON w.id = l.wallet_id AND w.tenant = l.tenant WHERE w.wallet = 'other';
-- hog: 1001 hourly grants so far; the one ending at the first boundary still to be processed
-- is not expired yet, every earlier one is
SELECT count(*) AS hog_grants, count(*) FILTER (WHERE remaining > 0) AS unexpired,
       max(expires_at) FILTER (WHERE remaining > 0) AS unexpired_ends
  FROM credit_grants('hog');
SELECT * FROM credit_verify();
-- the next tick: 1000 more of hog's backlog
SELECT boundaries FROM credit_tick(as_of => :'h'::timestamptz + interval '24 hours');
SELECT count(*) AS hog_grants FROM credit_grants('hog');
SELECT * FROM credit_verify();

DROP EXTENSION credit_ledger;
DROP ROLE cl_lb_cron;
