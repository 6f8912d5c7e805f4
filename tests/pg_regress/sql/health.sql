-- health.sql: credit_health() (issue 23, first part): every check at ok, then driven to warn
-- and fail (times moved back by hand, as if the scheduler had stopped), then back to ok by the
-- work it reports; credit_verify_record() feeds the verify check.
CREATE EXTENSION credit_ledger;
\set VERBOSITY terse
CREATE FUNCTION health() RETURNS TABLE (check_name text, status text, value numeric) LANGUAGE sql AS
  $f$ SELECT h.check_name, h.status, h.value FROM credit_health() h ORDER BY h.check_name $f$;

SELECT rate_card FROM credit_rate_set(action => 'chat', credits => 10);
SELECT wallet FROM credit_wallet_create(wallet => 'acme');
SELECT amount FROM credit_grant(wallet => 'acme', amount => 100, expires_at => now() + interval '1 day');
SELECT amount FROM credit_grant(wallet => 'acme', amount => 100);
-- a new ledger: everything ok but verify, never recorded
SELECT * FROM health();
SELECT credit_verify_record() AS violations;
SELECT status, value FROM credit_health() WHERE check_name = 'verify';

-- the sweep has not run for 10 minutes (warn), for 2 hours (fail); credit_expire() catches up
UPDATE credit_ledger.grants SET expires_at = now() - interval '10 minutes', effective_at = now() - interval '1 day'
 WHERE wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'acme') AND expires_at IS NOT NULL;
SELECT status, value FROM credit_health() WHERE check_name = 'tick_lag_expiry';
UPDATE credit_ledger.grants SET expires_at = now() - interval '2 hours' WHERE expires_at IS NOT NULL;
SELECT status, value FROM credit_health() WHERE check_name = 'tick_lag_expiry';
SELECT grants_expired FROM credit_expire();
SELECT status, value FROM credit_health() WHERE check_name = 'tick_lag_expiry';

-- an expired hold and an expired run not finalized
SELECT approved FROM credit_hold(wallet => 'acme', action => 'chat', quantity => 1);
SELECT approved FROM credit_run_open(wallet => 'acme', budget => 10);
UPDATE credit_ledger.authorizations SET expires_at = now() - interval '20 minutes' WHERE status = 'held';
UPDATE credit_ledger.runs SET expires_at = now() - interval '3 hours' WHERE status = 'open';
SELECT * FROM health() WHERE check_name LIKE 'expired%';
SELECT holds_expired FROM credit_expire();
SELECT * FROM health() WHERE check_name LIKE 'expired%';

-- an allowance boundary not processed for 2 hours; credit_tick() processes it
SELECT amount FROM credit_allowance_set(wallet => 'acme', amount => 50, period => '1 day',
                                        anchor => now() - interval '26 hours');
UPDATE credit_ledger.allowances SET next_boundary = now() - interval '2 hours';
SELECT status FROM credit_health() WHERE check_name = 'tick_lag_allowances';
SELECT boundaries > 0 AS caught_up FROM credit_tick();
SELECT status FROM credit_health() WHERE check_name = 'tick_lag_allowances';

-- an event consumer 10 minutes behind (warn), 2 hours (fail); acknowledging clears it
SELECT frozen FROM credit_wallet_update('acme', frozen => true);
SELECT frozen FROM credit_wallet_update('acme', frozen => false);
SELECT credit_events_ack('hook', 0);
SELECT count(*) AS events FROM credit_events();
UPDATE credit_ledger.events SET at = now() - interval '10 minutes';
SELECT check_name, status, value FROM credit_health() WHERE check_name LIKE 'event_backlog:%';
UPDATE credit_ledger.events SET at = now() - interval '2 hours';
SELECT check_name, status, value FROM credit_health() WHERE check_name LIKE 'event_backlog:%';
SELECT credit_events_ack('hook', (SELECT max(seq) FROM credit_ledger.events));
SELECT check_name, status, value FROM credit_health() WHERE check_name LIKE 'event_backlog:%';

-- verify: stale after a day (warn), failing when the last run found violations
UPDATE credit_ledger.verify_runs SET at = now() - interval '2 days';
SELECT status FROM credit_health() WHERE check_name = 'verify';
INSERT INTO credit_ledger.verify_runs (violations, checks, duration_ms) VALUES (2, '{grant_bounds}', 10);
SELECT status, value, detail LIKE '2 violations (grant_bounds)%' AS detail_names_it FROM credit_health() WHERE check_name = 'verify';
SELECT credit_verify_record() AS violations;
SELECT status FROM credit_health() WHERE check_name = 'verify';

-- declines: 25 in the last 5 minutes and none before (5 a minute: warn), 70 (14 a minute: fail)
SELECT count(*) FILTER (WHERE NOT approved) AS declined
  FROM generate_series(1, 25) i, LATERAL credit_authorize(wallet => 'acme', action => 'chat', quantity => 1000 + i);
SELECT status, value FROM credit_health() WHERE check_name = 'declines_spike';
SELECT count(*) FILTER (WHERE NOT approved) AS declined
  FROM generate_series(1, 45) i, LATERAL credit_authorize(wallet => 'acme', action => 'chat', quantity => 1000 + i);
SELECT status, value FROM credit_health() WHERE check_name = 'declines_spike';
-- the same declines spread over the hour are no spike
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT a.id, a.tenant FROM credit_ledger.authorizations a WHERE a.status = 'declined' LOOP
    UPDATE credit_ledger.authorizations SET created_at = now() - (r.id % 55 + 6) * interval '1 minute' WHERE id = r.id AND tenant = r.tenant;
  END LOOP; END $$;
SELECT status FROM credit_health() WHERE check_name = 'declines_spike';
SELECT * FROM credit_verify();
