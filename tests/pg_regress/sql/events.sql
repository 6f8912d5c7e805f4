-- events.sql: durable events (issue 19, 0.6.0) and statements. Every kind is written in the
-- same transaction as its cause (a rolled-back cause leaves no event); credit_events reads the
-- committed events in stream order (seq), credit_events_ack records a consumer's position,
-- credit_tick announces expiring grants and trims acknowledged events past retention.
-- credit_statement: opening balance + lines = closing balance = credit_balance(as_of).
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
\set ON_ERROR_STOP 0
CREATE FUNCTION err(stmt text) RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE st text; msg text; det text; hnt text;
BEGIN
    EXECUTE stmt;
    RETURN NEXT 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    RETURN NEXT st || ': ' || msg;
    IF det <> '' THEN RETURN NEXT '  DETAIL: ' || det; END IF;
    IF hnt <> '' THEN RETURN NEXT '  HINT: ' || hnt; END IF;
END $f$;
-- the stream as a consumer sees it, without ids and times
CREATE FUNCTION stream(after bigint DEFAULT 0) RETURNS TABLE (seq bigint, kind text, wallet text, asset text, payload jsonb)
LANGUAGE sql AS $f$
    SELECT e.seq, e.kind, e.wallet, e.asset,
           e.payload - 'authorization_id' - 'grant_id' - 'run_id' - 'operation_id' - 'expires_at' - 'effective_at'
      FROM credit_events(after_id => after, max_rows => 1000) e
$f$;

SELECT rate_card, credits FROM credit_rate_set(action => 'chat', credits => 10);
SELECT wallet FROM credit_wallet_create(wallet => 'acme', low_balance_threshold => 50);
SELECT wallet FROM credit_wallet_create(wallet => 'capped');
SELECT wallet FROM credit_wallet_update('capped', spend_cap => 25);
SELECT wallet FROM credit_wallet_create(wallet => 'team');
SELECT wallet FROM credit_wallet_create(wallet => 'team.ann', parent => 'team');
SELECT wallet FROM credit_wallet_update('team.ann', pool_limit => 15);
SELECT count(*) AS grants FROM (
  SELECT credit_grant(wallet => 'acme', amount => 100)
  UNION ALL SELECT credit_grant(wallet => 'capped', amount => 100)
  UNION ALL SELECT credit_grant(wallet => 'team', amount => 100)) g;

-- low_balance (once per crossing), spend_cap_reached and pool_limit_reached (once per period)
SELECT approved, reason FROM credit_authorize('acme', 'chat', 6);
SELECT approved, reason FROM credit_authorize('acme', 'chat', 1);
SELECT approved, reason FROM credit_authorize('capped', 'chat', 2);
SELECT approved, reason FROM credit_authorize('capped', 'chat', 1);
SELECT approved, reason FROM credit_authorize('capped', 'chat', 1);
SELECT approved, reason FROM credit_authorize('team.ann', 'chat', 1);
SELECT approved, reason FROM credit_authorize('team.ann', 'chat', 1);
SELECT approved, reason FROM credit_authorize('team.ann', 'chat', 1);
-- wallet_frozen (when it becomes frozen), run_closed, wallet_closed, allowance_granted
SELECT frozen FROM credit_wallet_update('capped', frozen => true);
SELECT frozen FROM credit_wallet_update('capped', frozen => true);
SELECT approved FROM credit_run_open(wallet => 'acme', budget => 5);
SELECT status FROM credit_run_close((SELECT max(id) FROM credit_ledger.runs));
SELECT wallet FROM credit_wallet_create(wallet => 'gone');
SELECT done FROM credit_wallet_close('gone');
SELECT wallet FROM credit_wallet_create(wallet => 'plan');
SELECT amount FROM credit_allowance_set(wallet => 'plan', amount => 300, period => '1 month');
-- a cause that rolls back leaves no event
BEGIN;
SELECT frozen FROM credit_wallet_update('acme', frozen => true);
ROLLBACK;
SELECT * FROM stream();

-- grant_expiring (credit_tick, within credit_ledger.expiring_notice, once per grant) and
-- grant_expired (the sweep)
SELECT id IS NOT NULL AS granted FROM credit_grant(wallet => 'acme', amount => 40, category => 'promotional',
                                                    expires_at => now() + interval '3 days');
SELECT boundaries FROM credit_tick();
SELECT boundaries FROM credit_tick();
SET credit_ledger.expiring_notice = '1 hour';
SELECT id IS NOT NULL AS granted FROM credit_grant(wallet => 'acme', amount => 7, category => 'promotional',
                                                    expires_at => now() + interval '2 hours');
SELECT boundaries FROM credit_tick();
RESET credit_ledger.expiring_notice;
SET credit_ledger.max_future_as_of = 864000;
SELECT grants_expired, credits_expired FROM credit_expire(as_of => now() + interval '4 days');
RESET credit_ledger.max_future_as_of;
SELECT * FROM stream(7);

-- consumers: reading after a position, after an acknowledgement; acknowledgements only move
-- forward and never past what was read
SELECT seq, kind FROM credit_events(after_id => 5, max_rows => 2);
SELECT credit_events_ack('webhook', 3);
SELECT seq, kind FROM credit_events(consumer => 'webhook', max_rows => 2);
SELECT credit_events_ack('webhook', 2);
SELECT consumer, acked_up_to FROM credit_ledger.event_consumers;
SELECT err($$SELECT credit_events_ack('webhook', 1000)$$);
SELECT err($$SELECT credit_events_ack('', 1)$$);
SELECT err($$SELECT credit_events_ack('webhook', NULL)$$);
SELECT err($$SELECT * FROM credit_events(max_rows => 0)$$);
SELECT err($$SELECT * FROM credit_events(consumer => repeat('c', 256))$$);
-- credit_event(id): what the NOTIFY's id names
SELECT kind, wallet FROM credit_event((SELECT min(id) FROM credit_ledger.events));

-- retention: events older than credit_ledger.event_retention that every consumer acknowledged
SET credit_ledger.event_retention = '0 seconds';
SELECT credit_ledger._events_trim() AS trimmed;
SELECT count(*) AS events_left, min(seq) AS first_seq FROM credit_ledger.events;
SELECT credit_events_ack('webhook', (SELECT max(seq) FROM credit_ledger.events));
SELECT credit_ledger._events_trim() AS trimmed;
SELECT count(*) AS events_left FROM credit_ledger.events;
RESET credit_ledger.event_retention;
-- the stream goes on after the trimmed events
SELECT frozen FROM credit_wallet_update('acme', frozen => true);
SELECT seq > 9 AS after_the_trimmed, kind FROM credit_events(consumer => 'webhook');

-- ============================================================ statements
SELECT frozen FROM credit_wallet_update('acme', frozen => false);
SELECT id IS NOT NULL AS granted FROM credit_grant(wallet => 'acme', amount => 200, unit_price => 0.01,
                                                    expires_at => now() + interval '2 hours');
SELECT approved FROM credit_authorize('acme', 'chat', 2);
SELECT approved FROM credit_hold('acme', 'chat', 3, ttl => '1 hour');
SELECT done FROM credit_adjust('acme', -5, reason => 'correction');
SELECT wallet FROM credit_wallet_create(wallet => 'beta');
SELECT done FROM credit_transfer('acme', 'beta', 30);
-- the lines of the last hour to three hours from now: the hold's reservation leaves at its TTL,
-- the 200 (less what was spent from them) when they expire
SELECT line, kind, action, amount, balance, note
  FROM credit_statement('acme', now() - interval '1 hour', now() + interval '3 hours') ORDER BY line;
-- opening and closing are credit_balance(as_of) and the lines add up, at any window
SELECT w.f, bool_and(s.kind <> 'closing' OR s.balance = credit_balance('acme', 'credits', now() + w.t)) AS closing_ok,
       bool_and(s.kind <> 'opening' OR s.balance = credit_balance('acme', 'credits', now() + w.f)) AS opening_ok,
       (array_agg(s.balance ORDER BY s.line DESC))[1]
         = (array_agg(s.balance ORDER BY s.line))[1] + coalesce(sum(s.amount), 0) AS adds_up
  FROM (VALUES (interval '-1 day', interval '0'), (interval '-1 minute', interval '90 minutes'),
               (interval '30 minutes', interval '5 hours')) w(f, t),
       LATERAL credit_statement('acme', now() + w.f, now() + w.t) s
 GROUP BY w.f ORDER BY w.f;
SELECT line, kind, amount, balance FROM credit_statement('beta', now() - interval '1 hour', now()) ORDER BY line;
SELECT err($$SELECT * FROM credit_statement('acme', '2026-01-02', '2026-01-01')$$);
SELECT err($$SELECT * FROM credit_statement('nobody', now() - interval '1 day', now())$$);
SELECT err($$SELECT * FROM credit_statement('acme', NULL, '2026-01-01')$$);
SELECT * FROM credit_verify();
