-- metrics.sql: credit_metrics() (issue 23, since 0.8.0), the gauges the postgres_exporter
-- queries file (ops/prometheus) reads, after a known workload of the last minute; every number
-- is checked by hand in the comments.
CREATE EXTENSION credit_ledger;
\set VERBOSITY terse
CREATE FUNCTION m(p text) RETURNS TABLE (metric text, asset text, label text, value numeric) LANGUAGE sql AS
  $f$ SELECT x.metric, x.asset, x.label, x.value FROM credit_metrics(p) x ORDER BY 1, 2, 3 $f$;

-- a new ledger: one row per asset and metric, all 0
SELECT * FROM m(NULL);

SELECT credit_asset_define('usd', 2);
SELECT rate_card FROM credit_rate_set(action => 'chat', credits => 2);
SELECT rate_card FROM credit_rate_set(action => 'image', credits => 0.5, asset => 'usd');
SELECT wallet FROM credit_wallet_create(wallet => 'a');
SELECT amount FROM credit_grant(wallet => 'a', amount => 150, unit_price => 0.01);
SELECT amount FROM credit_grant(wallet => 'a', amount => 10, asset => 'usd', unit_price => 1);
-- debit 20; declined (200 > 130); hold 10 left open; hold 8 captured at 1 unit (2); refund 5
SELECT authorization_id AS d1, cost FROM credit_authorize('a', 'chat', 10) \gset
SELECT approved, reason FROM credit_authorize('a', 'chat', 100);
SELECT status, cost FROM credit_hold('a', 'chat', 5);
SELECT authorization_id AS h2 FROM credit_hold('a', 'chat', 4) \gset
SELECT status, captured FROM credit_capture(:h2, 1);
SELECT amount FROM credit_refund(:d1, 5);
-- usd: 3 images = 1.5
SELECT cost FROM credit_authorize('a', 'image', 3);
-- b: 7 credits that expire (moved into the past, then swept)
SELECT wallet FROM credit_wallet_create(wallet => 'b');
SELECT amount FROM credit_grant(wallet => 'b', amount => 7, expires_at => now() + interval '1 day');
UPDATE credit_ledger.grants SET expires_at = now() - interval '1 second', effective_at = now() - interval '1 day'
 WHERE wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'b');
SELECT grants_expired FROM credit_expire();

-- holds: one open hold of 10 credits
SELECT * FROM m('holds');
-- calls: credits 3 approved (debit, open hold, captured hold) and 1 insufficient_credits;
-- usd 1 approved
SELECT * FROM m('calls');
-- credits: granted 150 + 7 = 157, spent 20 + 2 = 22, refunded 5, expired 7; usd granted 10,
-- spent 1.5
SELECT * FROM m('credits');
-- liability: paid credits left 150 - 20 - 2 + 5 = 133 (the 10 held are still the customer's)
-- at 0.01 = 1.33; usd 10 - 1.5 = 8.5 at 1 (b's grant was free and has expired)
SELECT * FROM m('liability');
-- the calls of more than a minute ago are not in the window (the journal is append-only: its
-- window is the same predicate on journal.at)
UPDATE credit_ledger.authorizations SET created_at = now() - interval '2 minutes';
SELECT * FROM m('calls');
-- every part together is the union of the parts
SELECT (SELECT count(*) FROM credit_metrics()) = (SELECT count(*) FROM m('holds')) + (SELECT count(*) FROM m('calls'))
       + (SELECT count(*) FROM m('credits')) + (SELECT count(*) FROM m('liability')) AS all_parts;
SELECT * FROM credit_verify();
