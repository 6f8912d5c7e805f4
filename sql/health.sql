-- Health checks (issue 23, first part; since 0.6.0): one row per check, cheap enough to call on
-- every monitoring scrape. Every check reads an index range of what is due or recent, never
-- the history: expired grants not swept (grants_expiring), allowance boundaries not processed
-- (allowances_due), expired holds and runs not finalized (authorizations_open_holds,
-- runs_open_expiring), event consumers (event_consumers, events_seq_key), the last recorded
-- credit_verify() (verify_runs), declines of the last hour (authorizations_declined_degraded, schema.sql).
-- Bind every expression in this file to pg_catalog only.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- The declines of the last hour are read without the approved calls through
-- authorizations_declined_degraded (schema.sql; authorizations_declined from 0.6.0 to 0.14.0).

-- credit_verify() is too heavy for a scrape: a scheduled job records its result here
-- (credit_verify_record), and credit_health() reports the last one and its age.
CREATE TABLE credit_ledger.verify_runs (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    violations  bigint NOT NULL,
    checks      text[] NOT NULL DEFAULT '{}',   -- the names of the violated checks
    duration_ms numeric NOT NULL
);

-- Run credit_verify(), record how many violations it found (and of which checks), return the
-- count. Schedule it (pg_cron: every hour) so credit_health() can report it. Keeps the last
-- 1000 runs.
CREATE FUNCTION @extschema@.credit_verify_record()
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    n bigint;
    names text[];
BEGIN
    SELECT count(*), coalesce(array_agg(DISTINCT v.check_name), '{}')
      INTO n, names FROM @extschema@.credit_verify() v;
    INSERT INTO credit_ledger.verify_runs (violations, checks, duration_ms)
    VALUES (n, names, round(extract(epoch FROM clock_timestamp() - started)::numeric * 1000, 1));
    DELETE FROM credit_ledger.verify_runs r
     WHERE r.id < (SELECT x.id FROM credit_ledger.verify_runs x ORDER BY x.id DESC OFFSET 999 LIMIT 1);
    RETURN n;
END $$;

-- One row per check: status ok | warn | fail, a value (seconds, a count or a ratio) and a
-- detail. Thresholds: lag and age warn after 5 minutes and fail after an hour (verify: warn
-- after a day without a run, fail on any violation); declines warn when the last 5 minutes'
-- rate is 3 times the rate of the 55 minutes before (and at least 20 declines), fail at 10 times.
CREATE FUNCTION @extschema@.credit_health()
RETURNS TABLE (check_name text, status text, value numeric, detail text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
#variable_conflict use_column
DECLARE
    c record;
    oldest timestamptz;
    last_seq bigint;
BEGIN
    -- (PL/pgSQL since 0.14.0, each event consumer's oldest unacknowledged event read on its
    -- own: on a ledger Citus distributes, Citus joins no local table laterally with the shards)
    RETURN QUERY
    WITH lvl(name, secs) AS (
        -- how long the oldest due work has waited
        SELECT 'tick_lag_expiry', extract(epoch FROM now() - (
            SELECT g.expires_at FROM credit_ledger.grants g
             WHERE g.live AND g.expires_at IS NOT NULL AND g.expires_at <= now()
             ORDER BY g.expires_at LIMIT 1))
        UNION ALL
        SELECT 'tick_lag_allowances', extract(epoch FROM now() - (
            SELECT a.next_boundary FROM credit_ledger.allowances a
             WHERE a.next_boundary <= now() ORDER BY a.next_boundary LIMIT 1))
        UNION ALL
        SELECT 'expired_holds_unswept', extract(epoch FROM now() - (
            SELECT a.expires_at FROM credit_ledger.authorizations a
             WHERE a.status = 'held' AND a.expires_at <= now() ORDER BY a.expires_at LIMIT 1))
        UNION ALL
        SELECT 'expired_runs_unswept', extract(epoch FROM now() - (
            SELECT r.expires_at FROM credit_ledger.runs r
             WHERE r.status = 'open' AND r.expires_at <= now() ORDER BY r.expires_at LIMIT 1))
    )
    SELECT l.name,
           CASE WHEN l.secs IS NULL OR l.secs < 300 THEN 'ok' WHEN l.secs < 3600 THEN 'warn' ELSE 'fail' END,
           round(coalesce(l.secs, 0)::numeric, 1),
           CASE WHEN l.secs IS NULL THEN 'nothing due'
                ELSE format('the oldest due item has waited %s s: is credit_tick() scheduled?', round(l.secs::numeric)) END
      FROM lvl l;
    -- each event consumer: how far behind the stream it is, and since when
    last_seq := (SELECT max(e.seq) FROM credit_ledger.events e);
    FOR c IN SELECT x.consumer, x.acked_up_to FROM credit_ledger.event_consumers x ORDER BY x.consumer LOOP
        oldest := (SELECT e.at FROM credit_ledger.events e WHERE e.seq > c.acked_up_to ORDER BY e.seq LIMIT 1);
        check_name := 'event_backlog:' || c.consumer;
        status := CASE WHEN oldest IS NULL OR oldest > now() - interval '5 minutes' THEN 'ok'
                       WHEN oldest > now() - interval '1 hour' THEN 'warn' ELSE 'fail' END;
        value := greatest(coalesce(last_seq, 0) - c.acked_up_to, 0);
        detail := format('%s events not acknowledged%s', greatest(coalesce(last_seq, 0) - c.acked_up_to, 0),
                         CASE WHEN oldest IS NULL THEN '' ELSE format(', the oldest since %s', oldest) END);
        RETURN NEXT;
    END LOOP;
    RETURN QUERY
    -- the last recorded credit_verify()
    SELECT 'verify',
           CASE WHEN v.id IS NULL THEN 'warn' WHEN v.violations > 0 THEN 'fail'
                WHEN v.at < now() - interval '1 day' THEN 'warn' ELSE 'ok' END,
           coalesce(v.violations, 0),
           CASE WHEN v.id IS NULL THEN 'never recorded: schedule SELECT credit_verify_record()'
                ELSE format('%s violations (%s) %s s ago, took %s ms', v.violations,
                            array_to_string(v.checks, ', '), round(extract(epoch FROM now() - v.at)), v.duration_ms) END
      FROM (SELECT 1) one
      LEFT JOIN LATERAL (SELECT r.* FROM credit_ledger.verify_runs r ORDER BY r.id DESC LIMIT 1) v ON true
    UNION ALL
    -- declines of the last 5 minutes against the 55 minutes before (per minute)
    SELECT 'declines_spike',
           CASE WHEN d.recent * 5 < 20 OR d.recent <= 3 * greatest(d.before, 1) THEN 'ok'
                WHEN d.recent <= 10 * greatest(d.before, 1) THEN 'warn' ELSE 'fail' END,
           round(d.recent / greatest(d.before, 1), 2),
           format('%s declines a minute in the last 5 minutes, %s in the 55 before',
                  round(d.recent, 1), round(d.before, 1))
      FROM (SELECT count(*) FILTER (WHERE a.created_at > now() - interval '5 minutes') / 5.0 AS recent,
                   count(*) FILTER (WHERE a.created_at <= now() - interval '5 minutes') / 55.0 AS before
              FROM credit_ledger.authorizations a
             WHERE a.created_at > now() - interval '1 hour' AND a.status = 'declined') d;
END $$;

-- Metrics for Prometheus (issue 23, since 0.8.0; ops/prometheus/ has the postgres_exporter
-- queries file that reads them and the alert rules). Nothing is counted on the spend path: each
-- part reads what is open or recent through an index. `part` picks one part (NULL: all):
--   holds      holds_open and credits_held per asset (authorizations_open_holds: open holds only)
--   calls      calls of the last minute per asset, label 'approved' or the decline reason
--              (authorizations_created, BRIN: the block ranges of the last minute)
--   credits    credits granted, spent (debits, captures, overdraft), refunded and expired in
--              the last minute per asset, from the journal (journal_at, BRIN)
--   liability  credits_outstanding and deferred_revenue per asset (every live paid grant: the
--              queries file caches it for a minute)
-- Every asset has a row in each part (0 when nothing happened), so a series never vanishes.
CREATE INDEX journal_at ON credit_ledger.journal USING brin (at);
CREATE FUNCTION @extschema@.credit_metrics(part text DEFAULT NULL)
RETURNS TABLE (metric text, asset text, label text, value numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
#variable_conflict use_column
BEGIN
    -- (PL/pgSQL since 0.14.0, each part one aggregate per asset read on its own, OFFSET 0, then
    -- joined with the assets: on a ledger Citus distributes, Citus joins no reference table
    -- laterally with the shards, and plans no SQL function with parameters)
    RETURN QUERY
    SELECT m.metric, s.asset, '', coalesce(CASE m.metric WHEN 'holds_open' THEN h.n ELSE h.held END, 0)
      FROM credit_ledger.assets s
     CROSS JOIN (VALUES ('holds_open'), ('credits_held')) m(metric)
      LEFT JOIN (SELECT a.asset, count(*)::numeric AS n, sum(a.cost) FILTER (WHERE NOT a.fair_use) AS held
                   FROM credit_ledger.authorizations a
                  WHERE a.status = 'held' AND a.expires_at IS NOT NULL
                  GROUP BY a.asset OFFSET 0) h ON h.asset = s.asset
     WHERE part IS NULL OR part = 'holds'
    UNION ALL
    SELECT 'calls_1m', s.asset, 'approved', coalesce(c.n, 0)
      FROM credit_ledger.assets s
      LEFT JOIN (SELECT a.asset, count(*)::numeric AS n FROM credit_ledger.authorizations a
                  WHERE a.created_at > now() - interval '1 minute' AND a.status <> 'declined'
                  GROUP BY a.asset OFFSET 0) c ON c.asset = s.asset
     WHERE part IS NULL OR part = 'calls'
    UNION ALL
    SELECT 'calls_1m', s.asset, d.reason, d.n
      FROM credit_ledger.assets s
      JOIN (SELECT a.asset, coalesce(a.reason, 'unknown') AS reason, count(*)::numeric AS n
              FROM credit_ledger.authorizations a
             WHERE a.created_at > now() - interval '1 minute' AND a.status = 'declined'
             GROUP BY 1, 2 OFFSET 0) d ON d.asset = s.asset
     WHERE part IS NULL OR part = 'calls'
    UNION ALL
    SELECT 'credits_1m', s.asset, m.movement,
           coalesce(CASE m.movement WHEN 'granted' THEN j.granted WHEN 'spent' THEN j.spent
                                    WHEN 'refunded' THEN j.refunded ELSE j.expired END, 0)
      FROM credit_ledger.assets s
     CROSS JOIN (VALUES ('granted'), ('spent'), ('refunded'), ('expired')) m(movement)
      LEFT JOIN (SELECT x.asset,
                        sum(x.amount) FILTER (WHERE x.kind = 'grant') AS granted,
                        -sum(x.amount) FILTER (WHERE x.kind IN ('debit', 'capture')
                                                  OR (x.kind = 'overdraft' AND x.amount < 0)) AS spent,
                        sum(x.amount) FILTER (WHERE x.kind = 'refund') AS refunded,
                        -sum(x.amount) FILTER (WHERE x.kind = 'expiry') AS expired
                   FROM credit_ledger.journal x
                  WHERE x.at > now() - interval '1 minute'
                  GROUP BY x.asset OFFSET 0) j ON j.asset = s.asset
     WHERE part IS NULL OR part = 'credits'
    UNION ALL
    SELECT m.metric, s.asset, '',
           coalesce(CASE m.metric WHEN 'liability_credits' THEN l.credits ELSE l.revenue END, 0)
      FROM credit_ledger.assets s
     CROSS JOIN (VALUES ('liability_credits'), ('liability_deferred_revenue')) m(metric)
      LEFT JOIN (SELECT v.asset, sum(v.credits_outstanding) AS credits, sum(v.deferred_revenue) AS revenue
                   FROM credit_ledger.liability v GROUP BY v.asset OFFSET 0) l ON l.asset = s.asset
     WHERE part IS NULL OR part = 'liability';
END $$;

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
