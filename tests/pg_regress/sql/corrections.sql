-- corrections.sql: voids, adjustments, transfers and wallet closes (issue 19, 0.6.0), who did
-- each write, the usage trigger's on_decline=mark, and margin_by_action with one action in two
-- assets. Every function: the happy paths, every error with its SQLSTATE (and proof that the
-- errors changed nothing), idempotent retries. credit_verify() is empty at the end.
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
\set ON_ERROR_STOP 0

-- Test helper: run one statement; print its SQLSTATE and message (then DETAIL and HINT), or ok.
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
-- A digest of everything the ledger holds (compared before and after the errors).
CREATE FUNCTION ledger_digest() RETURNS text LANGUAGE sql AS $f$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(concat_ws(',', id, remaining, held, live), ';' ORDER BY id) FROM credit_ledger.grants),
        (SELECT count(*) FROM credit_ledger.journal), (SELECT count(*) FROM credit_ledger.operations),
        (SELECT string_agg(concat_ws(',', id, frozen, closed_at IS NULL), ';' ORDER BY id) FROM credit_ledger.wallets),
        (SELECT count(*) FROM credit_ledger.authorizations), (SELECT count(*) FROM credit_ledger.events)))
$f$;
-- A grant's id by wallet and category (ids are never printed).
CREATE FUNCTION gid(w text, cat text) RETURNS bigint LANGUAGE sql AS $f$
    SELECT g.id FROM credit_ledger.grants g JOIN credit_ledger.wallets x ON x.id = g.wallet_id
     WHERE x.wallet = w AND g.category = cat AND g.home_id IS NULL AND g.source_id IS NULL ORDER BY g.id LIMIT 1
$f$;
CREATE FUNCTION lots(w text) RETURNS TABLE (asset text, category text, priority int, amount numeric, remaining numeric,
                                            held numeric, expires_in interval, unit_price numeric)
LANGUAGE sql AS $f$
    SELECT g.asset, g.category, g.priority, g.amount, g.remaining, g.held,
           date_trunc('day', g.expires_at - now() + interval '1 hour'), g.unit_price
      FROM credit_grants(w) g ORDER BY g.asset, g.priority, g.id
$f$;

SELECT credit_asset_define('gpu', 2) IS NOT NULL AS asset;
SELECT credit_rate_set(action => 'chat', credits => 10, vendor_cost => 0.02) IS NOT NULL AS rate;
SELECT count(*) AS wallets FROM (
  SELECT credit_wallet_create(wallet => 'acme')
  UNION ALL SELECT credit_wallet_create(wallet => 'beta')
  UNION ALL SELECT credit_wallet_create(wallet => 'odie', overdraft_limit => 30)
  UNION ALL SELECT credit_wallet_create(wallet => 'team')
  UNION ALL SELECT credit_wallet_create(wallet => 'team.ann', parent => 'team')
  UNION ALL SELECT credit_wallet_create(wallet => 'team.bob', parent => 'team')) w;
SELECT count(*) AS grants FROM (
  SELECT credit_grant(wallet => 'acme', amount => 500, unit_price => 0.01)
  UNION ALL SELECT credit_grant(wallet => 'acme', amount => 100, category => 'promotional',
                                expires_at => now() + interval '30 days')
  UNION ALL SELECT credit_grant(wallet => 'beta', amount => 200, unit_price => 0.02)
  UNION ALL SELECT credit_grant(wallet => 'odie', amount => 20, unit_price => 0.01)
  UNION ALL SELECT credit_grant(wallet => 'team', amount => 300, unit_price => 0.008)
  UNION ALL SELECT credit_grant(wallet => 'team.ann', amount => 50, category => 'included')
  UNION ALL SELECT credit_grant(wallet => 'acme', amount => 40, asset => 'gpu', unit_price => 0.1)) g;

-- ============================================================ who did it
-- every journal entry and authorization records the application's actor (SET
-- credit_ledger.actor), the caller's current_user (as the caller sees it, not the extension's
-- owner the functions run as) and its session_user
DROP ROLE IF EXISTS cl_corr_app;
CREATE ROLE cl_corr_app NOLOGIN;
SELECT count(*) > 0 AS granted FROM credit_ledger_grant('cl_corr_app', 'backoffice');
SET ROLE cl_corr_app;
SET credit_ledger.actor = 'user:42';
SELECT approved, cost FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 3);
RESET credit_ledger.actor;
SELECT approved, cost FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 1);
RESET ROLE;
SELECT a.cost, a.actor, a.db_user, a.db_session_user = session_user AS session_user_recorded
  FROM credit_ledger.authorizations a ORDER BY a.id;
SELECT h.kind, h.amount, h.actor, h.db_user
  FROM credit_ledger.authorizations a, credit_authorization_history(a.id) h ORDER BY a.id, h.entry_id;
SELECT wallet, actor, db_user, calls, credits FROM credit_ledger.usage_by_actor ORDER BY actor NULLS LAST;

-- ============================================================ credit_adjust
-- positive: a free grant of category adjustment; negative: taken in consumption order
SELECT kind, wallet, asset, amount, done, pending, balance FROM credit_adjust('beta', 25, reason => 'goodwill credit');
SELECT kind, amount, done, balance FROM credit_adjust('beta', -10, reason => 'duplicate top-up', idempotency_key => 'adj-1');
-- a retry returns the first result and writes nothing
SELECT kind, amount, done, balance FROM credit_adjust('beta', -10, reason => 'duplicate top-up', idempotency_key => 'adj-1');
SELECT count(*) AS adjustments FROM credit_ledger.operations WHERE kind = 'adjust';
SELECT * FROM lots('beta');
-- below zero only as far as the overdraft limit allows: odie has 20 and may owe 30
SELECT kind, amount, done, balance FROM credit_adjust('odie', -45, reason => 'correction into overdraft');
SELECT debt FROM credit_ledger.wallet_assets s JOIN credit_ledger.wallets w ON w.id = s.wallet_id WHERE w.wallet = 'odie';
-- a later grant settles that debt first, as any debt
SELECT remaining FROM credit_grant(wallet => 'odie', amount => 50, unit_price => 0.01);
SELECT credit_balance('odie') AS odie;
SELECT ledger_digest() AS digest \gset
SELECT err($$SELECT * FROM credit_adjust('odie', -100, reason => 'too much')$$);
SELECT err($$SELECT * FROM credit_adjust('beta', 0, reason => 'nothing')$$);
SELECT err($$SELECT * FROM credit_adjust('beta', 5)$$);
SELECT err($$SELECT * FROM credit_adjust('beta', NULL, reason => 'x')$$);
SELECT err($$SELECT * FROM credit_adjust('nobody', 5, reason => 'x')$$);
SELECT err($$SELECT * FROM credit_adjust('beta', 5, asset => 'nope', reason => 'x')$$);
SELECT err($$SELECT * FROM credit_adjust('beta', 5.123, asset => 'gpu', reason => 'x')$$);
SELECT err($$SELECT * FROM credit_adjust('beta', 5, reason => repeat('x', 1001))$$);
SELECT err($$SELECT * FROM credit_adjust('beta', -11, reason => 'duplicate top-up', idempotency_key => 'adj-1')$$);
SELECT ledger_digest() = :'digest' AS unchanged;

-- ============================================================ credit_grant_void
-- part of a grant, then all that is left of another; held credits are voided when the hold ends
SELECT kind, amount, done, pending, balance FROM credit_grant_void(gid('acme', 'purchased'), 100, reason => 'chargeback', idempotency_key => 'void-1');
SELECT kind, amount, done, pending, balance FROM credit_grant_void(gid('acme', 'purchased'), 100, reason => 'chargeback', idempotency_key => 'void-1');
SELECT approved, cost FROM credit_hold(wallet => 'acme', action => 'chat', quantity => 12);
SELECT * FROM lots('acme');
SELECT kind, amount, done, pending, balance FROM credit_grant_void(gid('acme', 'promotional'), reason => 'promo withdrawn');
-- the hold drew 60 promotional + 60 purchased; releasing it voids the 60 promotional credits
SELECT status FROM credit_release((SELECT max(id) FROM credit_ledger.authorizations WHERE kind = 'hold'));
SELECT operation_id > 0 AS ok, kind, amount, done, pending, open FROM credit_ledger.operation_log WHERE kind = 'void' ORDER BY operation_id;
SELECT * FROM lots('acme');
-- a refund to a grant voided whole is voided too (the credits never come back)
SELECT refunded_total FROM credit_refund((SELECT min(id) FROM credit_ledger.authorizations WHERE wallet_id =
        (SELECT id FROM credit_ledger.wallets WHERE wallet = 'acme') AND kind = 'debit'));
SELECT * FROM lots('acme');
SELECT ledger_digest() AS digest \gset
SELECT err($$SELECT * FROM credit_grant_void(NULL)$$);
SELECT err($$SELECT * FROM credit_grant_void(999999)$$);
SELECT err(format($$SELECT * FROM credit_grant_void(%s, 100000)$$, gid('beta', 'purchased')));
SELECT err(format($$SELECT * FROM credit_grant_void(%s, -1)$$, gid('beta', 'purchased')));
SELECT err(format($$SELECT * FROM credit_grant_void(%s, 1, reason => 'chargeback', idempotency_key => 'void-1')$$, gid('acme', 'purchased')));
SELECT ledger_digest() = :'digest' AS unchanged;

-- ============================================================ credit_transfer
-- the moved credits keep category, priority, expiry and unit price
SELECT category, amount FROM credit_grant(wallet => 'beta', amount => 60, category => 'promotional', expires_at => now() + interval '10 days');
SELECT kind, wallet, to_wallet, amount, done, balance FROM credit_transfer('beta', 'acme', 100, reason => 'merge accounts', idempotency_key => 'tr-1');
SELECT kind, wallet, to_wallet, amount, done, balance FROM credit_transfer('beta', 'acme', 100, reason => 'merge accounts', idempotency_key => 'tr-1');
SELECT * FROM lots('beta');
SELECT * FROM lots('acme');
SELECT g.category, s.id = g.transfer_of AS provenance FROM credit_ledger.grants g JOIN credit_ledger.grants s ON s.id = g.transfer_of ORDER BY g.id;
-- member to pool, pool to member
SELECT done, balance FROM credit_transfer('team.ann', 'team', 20);
SELECT done, balance FROM credit_transfer('team', 'team.bob', 30);
SELECT credit_balance('team') AS team, credit_balance('team.ann') AS ann, credit_balance('team.bob') AS bob;
-- from a wallet with lanes (slices move; the new grant is one grant)
SELECT credit_wallet_lanes('team', 4);
SELECT done, balance FROM credit_transfer('team', 'beta', 33);
SELECT credit_balance('team') AS team, credit_wallet_lanes('team') AS lanes;
SELECT ledger_digest() AS digest \gset
SELECT err($$SELECT * FROM credit_transfer('beta', 'beta', 1)$$);
SELECT err($$SELECT * FROM credit_transfer('beta', 'acme', 100000)$$);
SELECT err($$SELECT * FROM credit_transfer('beta', 'acme', 0)$$);
SELECT err($$SELECT * FROM credit_transfer('beta', 'nobody', 1)$$);
SELECT err($$SELECT * FROM credit_transfer(NULL, 'acme', 1)$$);
SELECT err($$SELECT * FROM credit_transfer('beta', 'acme', 1, reason => 'merge accounts', idempotency_key => 'tr-1')$$);
SELECT ledger_digest() = :'digest' AS unchanged;

-- ============================================================ credit_wallet_close
-- open holds are released and open runs closed first; the credits left expire (breakage)
SELECT approved FROM credit_hold(wallet => 'odie', action => 'chat', quantity => 1);
SELECT approved FROM credit_run_open(wallet => 'odie', budget => 5);
SELECT kind, wallet, to_wallet, asset, done, balance FROM credit_wallet_close('odie', reason => 'account deleted', idempotency_key => 'close-odie');
SELECT kind, wallet, asset, done FROM credit_wallet_close('odie', reason => 'account deleted', idempotency_key => 'close-odie');
SELECT status, reason FROM credit_ledger.authorizations a JOIN credit_ledger.wallets w ON w.id = a.wallet_id
 WHERE w.wallet = 'odie' AND a.kind = 'hold';
SELECT status FROM credit_ledger.runs r JOIN credit_ledger.wallets w ON w.id = r.wallet_id WHERE w.wallet = 'odie';
-- or go to another wallet (every asset), keeping their provenance
SELECT kind, wallet, to_wallet, asset, done, balance FROM credit_wallet_close('acme', 'transfer', 'beta');
SELECT * FROM lots('beta');
SELECT credit_balance('beta', 'gpu') AS beta_gpu;
-- a closed wallet keeps its history and accepts nothing more (55000)
SELECT ledger_digest() AS digest \gset
SELECT err($$SELECT * FROM credit_authorize(wallet => 'acme', action => 'chat')$$);
SELECT err($$SELECT * FROM credit_hold(wallet => 'acme', action => 'chat')$$);
SELECT err($$SELECT * FROM credit_grant(wallet => 'acme', amount => 5)$$);
SELECT err($$SELECT * FROM credit_wallet_update('acme', frozen => false)$$);
SELECT err($$SELECT * FROM credit_transfer('beta', 'acme', 1)$$);
SELECT err($$SELECT * FROM credit_adjust('acme', 1, reason => 'x')$$);
SELECT err($$SELECT * FROM credit_run_open(wallet => 'acme', budget => 1)$$);
SELECT err($$SELECT * FROM credit_wallet_close('acme')$$);
SELECT err(format($$SELECT * FROM credit_refund(%s)$$, (SELECT min(id) FROM credit_ledger.authorizations a
        WHERE a.wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'acme') AND a.status = 'approved')));
SELECT err($$SELECT * FROM credit_wallet_close('team')$$);
SELECT err($$SELECT * FROM credit_wallet_close('beta', 'transfer')$$);
SELECT err($$SELECT * FROM credit_wallet_close('beta', 'expire', 'acme')$$);
SELECT err($$SELECT * FROM credit_wallet_close('beta', 'donate')$$);
SELECT err($$SELECT * FROM credit_wallet_close('beta', 'transfer', 'beta')$$);
SELECT ledger_digest() = :'digest' AS unchanged;
-- an agent run's wallet takes no grant, transfer, adjustment or close (22023)
SELECT err($$SELECT * FROM credit_grant(wallet => '~run.1', amount => 5)$$);
SELECT err($$SELECT * FROM credit_transfer('beta', '~run.1', 1)$$);
SELECT count(*) AS acme_history FROM credit_ledger.journal j JOIN credit_ledger.wallets w ON w.id = j.wallet_id WHERE w.wallet = 'acme';
-- members first, then the pool (its members' credits may go to it)
SELECT done FROM credit_wallet_close('team.ann', 'transfer', 'team');
SELECT done FROM credit_wallet_close('team.bob', 'transfer', 'team');
SELECT asset, done FROM credit_wallet_close('team');
SELECT wallet, frozen, closed_at IS NOT NULL AS closed FROM credit_ledger.wallets WHERE run_of IS NULL ORDER BY wallet;

-- ============================================================ the usage trigger's on_decline=mark
CREATE TABLE usage_rows (customer text, kind text, qty numeric, auth_id bigint, billing_error text);
CREATE TRIGGER bill BEFORE INSERT ON usage_rows FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer', 'action=kind', 'quantity=qty', 'authorization_id=auth_id',
                       'on_decline=mark', 'decline_reason=billing_error');
INSERT INTO usage_rows (customer, kind, qty) VALUES ('beta', 'chat', 1), ('beta', 'chat', 100000), ('beta', 'chat', 2);
SELECT customer, qty, auth_id IS NOT NULL AS has_authorization, billing_error FROM usage_rows ORDER BY qty;
SELECT a.status, a.reason FROM usage_rows u JOIN credit_ledger.authorizations a ON a.id = u.auth_id ORDER BY u.qty;
CREATE TABLE bad_rows (customer text, kind text);
SELECT err($$CREATE TRIGGER b1 BEFORE INSERT ON bad_rows FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer', 'action=kind', 'on_decline=mark');
  INSERT INTO bad_rows VALUES ('beta', 'chat')$$);
SELECT err($$CREATE TRIGGER b2 BEFORE INSERT ON bad_rows FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer', 'action=kind', 'on_decline=skip');
  INSERT INTO bad_rows VALUES ('beta', 'chat')$$);

-- ============================================================ margin_by_action per asset
-- one action charged in two assets (two rate cards): each asset's vendor cost is its own
SELECT rate_card, asset, credits FROM credit_rate_set(action => 'render', credits => 2, vendor_cost => 0.01);
SELECT rate_card, asset, credits FROM credit_rate_set(action => 'render', credits => 1, asset => 'gpu', rate_card => 'gpu_plan', vendor_cost => 0.3);
SELECT wallet, rate_card FROM credit_wallet_create(wallet => 'gpu_user', rate_card => 'gpu_plan');
SELECT asset, amount FROM credit_grant(wallet => 'gpu_user', amount => 10, asset => 'gpu', unit_price => 0.5);
SELECT approved FROM credit_authorize(wallet => 'beta', action => 'render', quantity => 3);
SELECT approved FROM credit_authorize(wallet => 'gpu_user', action => 'render', quantity => 2);
SELECT action, asset, credits, revenue, vendor_cost, margin FROM credit_ledger.margin_by_action WHERE action = 'render' ORDER BY asset;

-- ============================================================ a void waiting for held credits
-- two holds of 30 on a grant of 100; a void of 60 takes the 40 free now and waits for 20.
-- Captures give nothing back: the void waits for no more than the holds still reserve, and
-- once they are captured it is done (a later refund is the customer's again)
SELECT wallet FROM credit_wallet_create(wallet => 'vee');
SELECT amount FROM credit_grant(wallet => 'vee', amount => 100);
SELECT approved, cost FROM credit_hold(wallet => 'vee', action => 'chat', quantity => 3);
SELECT approved, cost FROM credit_hold(wallet => 'vee', action => 'chat', quantity => 3);
SELECT kind, amount, done, pending FROM credit_grant_void(gid('vee', 'purchased'), 60);
SELECT status, captured FROM credit_capture((SELECT min(a.id) FROM credit_ledger.authorizations a
        JOIN credit_ledger.wallets w ON w.id = a.wallet_id WHERE w.wallet = 'vee' AND a.status = 'held'), 2);
SELECT amount, done, pending, open FROM credit_ledger.operation_log WHERE wallet = 'vee';
SELECT status, captured FROM credit_capture((SELECT min(a.id) FROM credit_ledger.authorizations a
        JOIN credit_ledger.wallets w ON w.id = a.wallet_id WHERE w.wallet = 'vee' AND a.status = 'held'));
SELECT amount, done, pending, open FROM credit_ledger.operation_log WHERE wallet = 'vee';
SELECT refunded_total, balance FROM credit_refund((SELECT min(a.id) FROM credit_ledger.authorizations a
        JOIN credit_ledger.wallets w ON w.id = a.wallet_id WHERE w.wallet = 'vee' AND a.status = 'captured'));

-- ============================================================ the reports and the checks
SELECT month IS NOT NULL AS month, asset, category, credits_reversed, liability_reversed
  FROM credit_ledger.reversals ORDER BY asset, category;
SELECT kind, count(*), sum(done) FROM credit_ledger.operation_log GROUP BY kind ORDER BY kind;
SELECT * FROM credit_verify();
