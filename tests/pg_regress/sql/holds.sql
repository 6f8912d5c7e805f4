-- holds.sql: holds, captures, releases, hold expiry and refunds (SPEC §2; issue 3).
-- Holds reserve credits on specific grants; capture spends from those grants (less: the rest
-- goes back; more: the difference is debited under the wallet's rules, else capture_shortfall);
-- release gives everything back; expired holds stop reserving at once and credit_expire()
-- finalizes them; refunds go back to the grants that paid, in reverse consumption order.
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
\set ON_ERROR_STOP 0

-- Test helper: run one statement; print its SQLSTATE and message (then DETAIL and HINT),
-- or 'ok' when it succeeds.
CREATE FUNCTION err(stmt text) RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE st text; msg text; det text; hnt text;
BEGIN
    EXECUTE stmt;
    RETURN NEXT 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                            det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
    -- generated ids (authorization 12, hold 12, rate version 3) are shown as <id>
    msg := regexp_replace(msg, '(authorization|hold|rate version) [0-9]+', '\1 <id>', 'g');
    det := regexp_replace(det, '(authorization|hold|rate version) [0-9]+', '\1 <id>', 'g');
    RETURN NEXT st || ': ' || msg;
    IF det <> '' THEN RETURN NEXT '  DETAIL: ' || det; END IF;
    IF hnt <> '' THEN RETURN NEXT '  HINT: ' || hnt; END IF;
END $f$;

-- An authorization's life, without timestamps or ids: entry kind, the grant's category,
-- change of remaining, change of held, note.
CREATE FUNCTION life(auth bigint) RETURNS TABLE (kind text, category text, amount numeric, held numeric, note text)
LANGUAGE sql AS $f$
    SELECT h.kind, h.category, h.amount, h.held, h.note FROM credit_authorization_history(auth) h ORDER BY h.entry_id
$f$;

-- A wallet's lots: category, amount, remaining, held.
CREATE FUNCTION lots(w text) RETURNS TABLE (category text, amount numeric, remaining numeric, held numeric)
LANGUAGE sql AS $f$
    SELECT g.category, g.amount, g.remaining, g.held FROM credit_grants(w) g
     ORDER BY g.priority, g.expires_at NULLS LAST, g.id
$f$;

SELECT credits FROM credit_rate_set('chat', 1, unit => '1k tokens', vendor_cost => 0.002);

-- ===================================================================== holds reserve credits
SELECT wallet FROM credit_wallet_create('h');
SELECT category, amount FROM credit_grant('h', 50, category => 'promotional');
SELECT category, amount FROM credit_grant('h', 100, unit_price => 0.01);
SELECT authorization_id AS h1 FROM credit_hold('h', 'chat', 60) \gset
SELECT approved, reason, cost, balance, kind, status, quantity, captured, expires_at > now() AS open
  FROM credit_authorization(:h1);
-- the hold reserved the promotional lot first, then 10 of the purchased lot
SELECT * FROM lots('h');
SELECT credit_balance('h') AS balance;
SELECT balance, available, held, spendable, by_category FROM credit_balance_detail('h');
-- held credits are not spendable by anyone else
SELECT cost, spendable, approved, reason FROM credit_quote('h', 'chat', 91);
SELECT approved, reason, balance FROM credit_authorize('h', 'chat', 91);
SELECT approved, reason, balance FROM credit_hold('h', 'chat', 91);

-- six holds of 1,000 on a balance of 5,000: the sixth is declined
SELECT wallet FROM credit_wallet_create('six');
SELECT amount FROM credit_grant('six', 5000);
SELECT n, h.approved, h.reason, h.cost, h.balance
  FROM generate_series(1, 6) n,
       LATERAL credit_hold('six', 'chat', 1000, metadata => jsonb_build_object('call', n)) h
 ORDER BY n;
SELECT credit_balance('six') AS balance, (SELECT held FROM credit_balance_detail('six')) AS held;

-- ===================================================================== capture
-- less than held: 45 of 60 are spent, 15 go back to the grants they came from (the last
-- reserved first: the purchased lot gets its 10 back, the promotional lot 5)
SELECT approved, reason, cost, captured, status, balance FROM credit_capture(:h1, 45);
SELECT * FROM life(:h1);
SELECT * FROM lots('h');
SELECT credit_balance('h') AS balance;

-- equal: NULL quantity captures as held
SELECT authorization_id AS h2 FROM credit_hold('h', 'chat', 10) \gset
SELECT approved, cost, captured, status, balance FROM credit_capture(:h2);
SELECT * FROM life(:h2);

-- more than held, and the wallet can pay: the difference is debited under normal rules
SELECT authorization_id AS h3 FROM credit_hold('h', 'chat', 10) \gset
SELECT approved, reason, cost, captured, status, balance FROM credit_capture(:h3, 25);
SELECT * FROM life(:h3);
SELECT credit_balance('h') AS balance;

-- more than held, and the wallet cannot pay the difference: the held part is captured and
-- the result says capture_shortfall; never an overspend
SELECT wallet FROM credit_wallet_create('short');
SELECT amount FROM credit_grant('short', 20);
SELECT authorization_id AS s1 FROM credit_hold('short', 'chat', 15) \gset
SELECT approved, reason, cost, captured, status, balance FROM credit_capture(:s1, 40);
SELECT * FROM life(:s1);
SELECT credit_balance('short') AS balance, (SELECT sum(remaining) FROM credit_grants('short')) AS remaining;

-- ===================================================================== release
SELECT authorization_id AS r1 FROM credit_hold('h', 'chat', 30) \gset
SELECT credit_balance('h') AS balance_while_held;
SELECT approved, cost, captured, status, balance FROM credit_release(:r1);
SELECT * FROM life(:r1);
SELECT credit_balance('h') AS balance_after_release;

-- ===================================================================== closed holds: 55000, nothing changed
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT err(format('SELECT credit_capture(%s)', :r1));
SELECT err(format('SELECT credit_release(%s)', :r1));
SELECT err(format('SELECT credit_capture(%s)', :h2));
SELECT err(format('SELECT credit_release(%s)', :h2));
SELECT err(format('SELECT credit_capture(%s, 5)', :h1));
-- a declined hold cannot be captured
SELECT authorization_id AS d1 FROM credit_hold('short', 'chat', 500) \gset
SELECT approved, reason, status FROM credit_authorization(:d1);
SELECT err(format('SELECT credit_capture(%s)', :d1));
SELECT err(format('SELECT credit_release(%s)', :d1));
-- a debit is not a hold
SELECT authorization_id AS dbt FROM credit_authorize('h', 'chat', 1) \gset
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT err(format('SELECT credit_capture(%s)', :dbt));
SELECT err(format('SELECT credit_release(%s)', :dbt));
-- bad arguments
SELECT err($$SELECT credit_capture(NULL)$$);
SELECT err($$SELECT credit_release(NULL)$$);
SELECT err($$SELECT credit_capture(999999)$$);
SELECT err($$SELECT credit_release(999999)$$);
SELECT authorization_id AS h4 FROM credit_hold('h', 'chat', 5) \gset
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT err(format('SELECT credit_capture(%s, 0)', :h4));
SELECT err(format('SELECT credit_capture(%s, -1)', :h4));
SELECT err(format('SELECT credit_capture(%s, %L)', :h4, 'NaN'));
SELECT err(format('SELECT credit_capture(%s, %L)', :h4, 'Infinity'));
SELECT err(format('SELECT credit_capture(%s, idempotency_key => %L)', :h4, repeat('k', 256)));
SELECT err(format('SELECT credit_capture(%s, metadata => %L)', :h4, '[1]'));
SELECT err(format('SELECT credit_release(%s, metadata => %L)', :h4, '"x"'));
SELECT err($$SELECT credit_hold('h', 'chat', 1, ttl => '0 seconds')$$);
SELECT err($$SELECT credit_hold('h', 'chat', 1, ttl => '-5 minutes')$$);
SELECT err($$SELECT credit_hold('h', 'chat', 1, ttl => NULL)$$);
SELECT (SELECT count(*) FROM credit_ledger.journal) = :journal_before AS nothing_written,
       (SELECT status FROM credit_authorization(:h4)) AS h4_status;

-- idempotent capture: a retry with the same key returns the first result
SELECT approved, cost, captured, status FROM credit_capture(:h4, 3, idempotency_key => 'cap-h4');
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT approved, cost, captured, status FROM credit_capture(:h4, 3, idempotency_key => 'cap-h4');
SELECT (SELECT count(*) FROM credit_ledger.journal) = :journal_before AS nothing_written;
-- ...but the same key for another quantity, or a release, is not a retry
SELECT err(format('SELECT credit_capture(%s, 4, idempotency_key => %L)', :h4, 'cap-h4'));
SELECT err(format('SELECT credit_release(%s, idempotency_key => %L)', :h4, 'cap-h4'));
-- idempotent release
SELECT authorization_id AS h5 FROM credit_hold('h', 'chat', 5, idempotency_key => 'hold-h5') \gset
SELECT status FROM credit_release(:h5, idempotency_key => 'rel-h5');
SELECT status FROM credit_release(:h5, idempotency_key => 'rel-h5');
-- and an idempotent hold: the same key returns the same hold
SELECT authorization_id = :h5 AS same_hold, status FROM credit_hold('h', 'chat', 5, idempotency_key => 'hold-h5');
SELECT err($$SELECT credit_hold('h', 'chat', 5, idempotency_key => 'hold-h5', ttl => '1 hour')$$);
SELECT err($$SELECT credit_authorize('h', 'chat', 5, idempotency_key => 'hold-h5')$$);

-- ===================================================================== time passes
-- One transaction sets up everything that expires 2 seconds from its start, then we wait.
--   ttl:   a hold with a 2-second ttl (finalized by the sweep)
--   ttl2:  a hold with a 2-second ttl (finalized by the next authorization that needs it)
--   exp:   two holds on a promotional grant that expires while they are held
--   sweep: an untouched grant that expires, and a grant that expires with part of it held
--   rexp:  a debit paid by a grant that expires before the refund
BEGIN;
SELECT now() AS t0 \gset
SELECT wallet FROM credit_wallet_create('ttl');
SELECT amount FROM credit_grant('ttl', 100);
SELECT authorization_id AS t1 FROM credit_hold('ttl', 'chat', 40, ttl => '2 seconds') \gset
SELECT wallet FROM credit_wallet_create('ttl2');
SELECT amount FROM credit_grant('ttl2', 100);
SELECT authorization_id AS t2 FROM credit_hold('ttl2', 'chat', 40, ttl => '2 seconds') \gset
SELECT wallet FROM credit_wallet_create('exp');
SELECT category, amount FROM credit_grant('exp', 10, category => 'promotional', expires_at => now() + interval '2 seconds');
SELECT category, amount FROM credit_grant('exp', 100);
SELECT authorization_id AS e1 FROM credit_hold('exp', 'chat', 5) \gset
SELECT authorization_id AS e2 FROM credit_hold('exp', 'chat', 5) \gset
SELECT wallet FROM credit_wallet_create('sweep');
SELECT amount FROM credit_grant('sweep', 10, category => 'promotional', expires_at => now() + interval '2 seconds');
SELECT amount FROM credit_grant('sweep', 7, category => 'included', expires_at => now() + interval '2 seconds');
SELECT amount FROM credit_grant('sweep', 50);
SELECT authorization_id AS w1 FROM credit_hold('sweep', 'chat', 13) \gset
SELECT wallet FROM credit_wallet_create('rexp');
SELECT category, amount FROM credit_grant('rexp', 10, category => 'promotional', expires_at => now() + interval '2 seconds');
SELECT category, amount FROM credit_grant('rexp', 100);
SELECT authorization_id AS x1 FROM credit_authorize('rexp', 'chat', 8) \gset
COMMIT;
SELECT credit_balance('ttl') AS ttl, credit_balance('ttl2') AS ttl2, credit_balance('exp') AS exp, credit_balance('sweep') AS sweep,
       credit_balance('rexp') AS rexp;
SELECT clock_timestamp() AS t_before_expiry \gset
SELECT pg_sleep(greatest(0, extract(epoch FROM (:'t0'::timestamptz + interval '2.3 seconds' - clock_timestamp())))) IS NOT NULL AS waited;

-- an expired hold stops reserving at once, before any sweep
SELECT status, (SELECT held FROM credit_grants('ttl')) AS still_marked_held FROM credit_authorization(:t1);
SELECT credit_balance('ttl') AS balance, (SELECT held FROM credit_balance_detail('ttl')) AS held;
SELECT cost, spendable, approved, reason FROM credit_quote('ttl', 'chat', 100);
-- the next call that needs the credits finalizes the expired hold and is approved
SELECT cost, spendable, approved, reason FROM credit_quote('ttl2', 'chat', 100);
SELECT approved, reason, cost, balance FROM credit_authorize('ttl2', 'chat', 100);
SELECT status FROM credit_authorization(:t2);
SELECT * FROM life(:t2);
-- capturing it is an error (55000) and changes nothing
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT err(format('SELECT credit_capture(%s)', :t1));
SELECT (SELECT count(*) FROM credit_ledger.journal) = :journal_before AS nothing_written;

-- expired grants are not spendable and not in the balance, before any sweep
SELECT credit_balance('sweep') AS balance, (SELECT held FROM credit_balance_detail('sweep')) AS held;
SELECT * FROM lots('sweep');

-- a grant that expired while held: capture still spends the held credits ...
SELECT approved, cost, captured, status FROM credit_capture(:e1, 3);
SELECT * FROM life(:e1);
-- ... and credits released back to an expired grant expire at once (breakage)
SELECT approved, cost, status FROM credit_release(:e2);
SELECT * FROM life(:e2);
SELECT * FROM lots('exp');
SELECT credit_balance('exp') AS balance;

-- the sweep: writes expiry entries for the expired grants' unheld remainder and finalizes the
-- expired holds (ttl's hold; sweep's hold is still open but rests on expired grants)
SELECT grants_expired, credits_expired, holds_expired, more FROM credit_expire();
SELECT status, captured FROM credit_authorization(:t1);
SELECT * FROM life(:t1);
SELECT * FROM lots('ttl');
SELECT credit_balance('ttl') AS balance;
SELECT * FROM lots('sweep');
SELECT j.kind, g.category, j.amount, j.note
  FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id AND g.tenant = j.tenant
 WHERE j.kind = 'expiry' AND j.authorization_id IS NULL AND g.wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'sweep')
 ORDER BY j.id;
-- idempotent: a second run finds nothing
SELECT grants_expired, credits_expired, holds_expired, more FROM credit_expire();
-- a finalized expired hold cannot be captured; releasing it is a no-op
SELECT err(format('SELECT credit_capture(%s)', :t1));
SELECT err(format('SELECT credit_release(%s)', :t1));
-- the open hold on expired grants is captured from them; its unheld rest was swept
SELECT approved, cost, captured, status FROM credit_capture(:w1, 13);
SELECT * FROM lots('sweep');
SELECT credit_balance('sweep') AS balance;
-- balances as of the instant before expiry, from the journal
SELECT credit_balance('ttl', as_of => :'t_before_expiry') AS ttl, credit_balance('sweep', as_of => :'t_before_expiry') AS sweep;

-- ===================================================================== refunds
SELECT wallet FROM credit_wallet_create('r');
SELECT category, amount FROM credit_grant('r', 20, category => 'promotional');
SELECT category, amount FROM credit_grant('r', 100, unit_price => 0.01);
SELECT authorization_id AS p1 FROM credit_authorize('r', 'chat', 50) \gset
SELECT * FROM lots('r');
-- partial refunds go back in reverse consumption order: purchased first, then promotional
SELECT amount, refunded_total, balance FROM credit_refund(:p1, 10, 'model timed out');
SELECT * FROM lots('r');
SELECT amount, refunded_total, balance FROM credit_refund(:p1, 25);
SELECT * FROM lots('r');
-- never more than was debited
SELECT err(format('SELECT credit_refund(%s, 20)', :p1));
-- NULL amount refunds the rest
SELECT amount, refunded_total, balance FROM credit_refund(:p1);
SELECT * FROM lots('r');
SELECT err(format('SELECT credit_refund(%s, 1)', :p1));
SELECT err(format('SELECT credit_refund(%s)', :p1));
SELECT cost, refunded, status FROM credit_authorization(:p1);
SELECT * FROM life(:p1);

-- idempotent refunds: a retry with the same key returns the first refund and writes nothing
SELECT authorization_id AS p2 FROM credit_authorize('r', 'chat', 30) \gset
SELECT refund_id AS rf1, refunded_total AS rt1 FROM credit_refund(:p2, 12, 'retry test', idempotency_key => 'rf-1') \gset
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT refund_id AS rf2, refunded_total AS rt2 FROM credit_refund(:p2, 12, 'retry test', idempotency_key => 'rf-1') \gset
SELECT :rf1 = :rf2 AS same_refund, :rt1 AS total_first, :rt2 AS total_retry,
       (SELECT count(*) FROM credit_ledger.journal) = :journal_before AS nothing_written,
       (SELECT refunded FROM credit_authorization(:p2)) AS refunded;
SELECT err(format('SELECT credit_refund(%s, 13, %L, idempotency_key => %L)', :p2, 'retry test', 'rf-1'));
SELECT err(format('SELECT credit_refund(%s, 12, %L, idempotency_key => %L)', :p2, 'another reason', 'rf-1'));
-- bad arguments
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT err($$SELECT credit_refund(NULL)$$);
SELECT err($$SELECT credit_refund(999999)$$);
SELECT err(format('SELECT credit_refund(%s, 0)', :p2));
SELECT err(format('SELECT credit_refund(%s, -5)', :p2));
SELECT err(format('SELECT credit_refund(%s, %L)', :p2, 'NaN'));
SELECT err(format('SELECT credit_refund(%s, %L)', :p2, 'Infinity'));
SELECT err(format('SELECT credit_refund(%s, 1.00001)', :p2));
SELECT err(format('SELECT credit_refund(%s, 1e30)', :p2));
SELECT err(format('SELECT credit_refund(%s, idempotency_key => %L)', :p2, repeat('k', 256)));
SELECT err(format('SELECT credit_refund(%s, metadata => %L)', :p2, '[]'));
-- only approved debits and captured holds can be refunded
SELECT authorization_id AS dcl FROM credit_authorize('r', 'chat', 100000) \gset
SELECT authorization_id AS open_hold FROM credit_hold('r', 'chat', 5) \gset
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT err(format('SELECT credit_refund(%s)', :dcl));
SELECT err(format('SELECT credit_refund(%s)', :open_hold));
SELECT err(format('SELECT credit_refund(%s)', :r1));
SELECT err(format('SELECT credit_refund(%s)', :t1));
SELECT (SELECT count(*) FROM credit_ledger.journal) = :journal_before AS nothing_written;

-- a captured hold refunds what was captured, not what was held
SELECT cost, captured FROM credit_authorization(:h1);
SELECT err(format('SELECT credit_refund(%s, 46)', :h1));
SELECT amount, refunded_total FROM credit_refund(:h1, 45);
-- a capture_shortfall hold refunds what was captured
SELECT amount, refunded_total, balance FROM credit_refund(:s1);

-- refund to a grant that has expired meanwhile: the credits go back to it and expire at
-- once (breakage), exactly as if they had never been spent; the balance does not change
SELECT credit_balance('rexp') AS balance_before;
SELECT amount, refunded_total, balance FROM credit_refund(:x1);
SELECT * FROM life(:x1);
SELECT * FROM lots('rexp');

-- ===================================================================== integrity
SELECT status, count(*) FROM credit_ledger.authorizations GROUP BY status ORDER BY status;
SELECT * FROM credit_verify();

-- credit_expire with an as_of in the future simulates that time (documented: for tests and
-- simulations): grants expiring before it are written off and holds past their TTL by then are
-- finalized, so journal entries are written and balances drop; the ledger stays consistent
SELECT count(*) AS journal_before FROM credit_ledger.journal \gset
SELECT credit_balance('h') AS h_before, credit_balance('six') AS six_before \gset
SELECT err($$SELECT credit_expire(now() + interval '1 day')$$);
SELECT (SELECT count(*) FROM credit_ledger.journal) = :journal_before AS nothing_written,
       credit_balance('h') = :h_before AND credit_balance('six') = :six_before AS balances_unchanged;
SELECT * FROM credit_verify();
