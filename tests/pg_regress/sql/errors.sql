-- errors.sql: every documented error of the core ledger, with its SQLSTATE, and proof that
-- none of them changed anything (SPEC §3.6; issue 2, item 8; src/error.rs):
--   22023 bad argument, 22003 out of range, 42704 unknown object, 42710 exists with other
--   settings, 23505 idempotency key reused with other arguments, 55000 wrong state,
--   42501 not allowed (the append-only journal).
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

-- A digest of everything the ledger holds, compared before and after the errors.
CREATE FUNCTION ledger_digest() RETURNS text LANGUAGE sql AS $f$
    SELECT format('assets %s; wallets %s (%s); rate cards %s; rates %s; grants %s (remaining %s, held %s); '
                  'authorizations %s; journal %s (sum %s, held %s); refunds %s',
        (SELECT count(*) FROM credit_ledger.assets),
        (SELECT count(*) FROM credit_ledger.wallets),
        (SELECT md5(string_agg(concat_ws('|', wallet, parent_id, rate_card, overdraft_limit, low_balance_threshold,
                                         spend_cap, pool_limit, period, frozen, metadata), ',' ORDER BY id))
           FROM credit_ledger.wallets),
        (SELECT count(*) FROM credit_ledger.rate_cards),
        (SELECT count(*) FROM credit_ledger.rates),
        (SELECT count(*) FROM credit_ledger.grants),
        (SELECT sum(remaining) FROM credit_ledger.grants),
        (SELECT sum(held) FROM credit_ledger.grants),
        (SELECT count(*) FROM credit_ledger.authorizations),
        (SELECT count(*) FROM credit_ledger.journal),
        (SELECT sum(amount) FROM credit_ledger.journal),
        (SELECT sum(held) FROM credit_ledger.journal),
        (SELECT count(*) FROM credit_ledger.refunds))
$f$;

-- ---------------------------------------------------------------- a small ledger to break
SELECT credit_asset_define('usd', 2);
SELECT credit_asset_define('action_credits', 0);
SELECT wallet FROM credit_wallet_create('w');
SELECT rate_card, action, variant, credits FROM credit_rate_set('chat', 1, unit => '1k tokens');
SELECT rate_card, action, variant, credits FROM credit_rate_set('image', 1000);
SELECT rate_card, action, variant, credits FROM credit_rate_set('llm', 3, variant => 'opus');
SELECT rate_card, action, variant, credits FROM credit_rate_set('video', 40, rate_card => 'pro');
SELECT rate_card, action, variant, credits FROM credit_rate_set('launch', 1, effective_from => now() + interval '1 day');
SELECT wallet, rate_card FROM credit_wallet_create('p', rate_card => 'pro');
SELECT amount FROM credit_grant('w', 100, idempotency_key => 'g-1');
SELECT amount FROM credit_grant('p', 100);
SELECT approved, cost FROM credit_authorize('w', 'chat', 2, idempotency_key => 'a-1');
SELECT approved, cost FROM credit_authorize('w', 'llm', 1, 'opus', idempotency_key => 'a-2', metadata => '{"r": 1}');
SELECT credits FROM credit_rate_set('fixed', 2, effective_from => '2020-01-01 00:00:00+00');
SELECT approved, cost FROM credit_authorize('w', 'fixed');
SELECT ledger_digest() AS digest_before \gset
SELECT credit_balance('w') AS balance_before;

-- ---------------------------------------------------------------- NULL or empty names (22023)
SELECT err($$SELECT credit_authorize(NULL, 'chat')$$);
SELECT err($$SELECT credit_authorize('', 'chat')$$);
SELECT err($$SELECT credit_authorize('   ', 'chat')$$);
SELECT err($$SELECT credit_authorize('w', NULL)$$);
SELECT err($$SELECT credit_authorize('w', '')$$);
SELECT err($$SELECT credit_authorize('w', 'chat', variant => '')$$);
SELECT err($$SELECT credit_quote(NULL, 'chat')$$);
SELECT err($$SELECT credit_quote('w', '')$$);
SELECT err($$SELECT credit_hold(NULL, 'chat')$$);
SELECT err($$SELECT credit_hold('w', NULL)$$);
SELECT err($$SELECT credit_grant(NULL, 10)$$);
SELECT err($$SELECT credit_grant('', 10)$$);
SELECT err($$SELECT credit_grant('w', 10, category => '')$$);
SELECT err($$SELECT credit_grant('w', 10, asset => NULL)$$);
SELECT err($$SELECT credit_balance(NULL)$$);
SELECT err($$SELECT credit_balance('')$$);
SELECT err($$SELECT credit_balance_detail(NULL)$$);
SELECT err($$SELECT credit_grants(NULL)$$);
SELECT err($$SELECT credit_wallet_create(NULL)$$);
SELECT err($$SELECT credit_wallet_create('')$$);
SELECT err($$SELECT credit_wallet_update(NULL, frozen => true)$$);
SELECT err($$SELECT credit_rate_set(NULL, 1)$$);
SELECT err($$SELECT credit_rate_set('', 1)$$);
SELECT err($$SELECT credit_rate_set('chat', 1, rate_card => '')$$);
SELECT err($$SELECT credit_asset_define(NULL)$$);
SELECT err($$SELECT credit_rate_card_export(NULL)$$);
-- names longer than 255 characters (22001; every size limit is in limits.sql)
SELECT err(format('SELECT credit_wallet_create(%L)', repeat('x', 256)));

-- ---------------------------------------------------------------- unknown objects (42704)
SELECT err($$SELECT credit_authorize('nobody', 'chat')$$);
SELECT err($$SELECT credit_quote('nobody', 'chat')$$);
SELECT err($$SELECT credit_hold('nobody', 'chat')$$);
SELECT err($$SELECT credit_grant('nobody', 10)$$);
SELECT err($$SELECT credit_balance('nobody')$$);
SELECT err($$SELECT credit_balance_detail('nobody')$$);
-- (since 0.9.0; until 0.8.0 these two returned a row of NULLs)
SELECT err($$SELECT credit_wallet('nobody')$$);
SELECT err($$SELECT * FROM credit_authorization(999999)$$);
SELECT err($$SELECT credit_wallet('')$$);
SELECT err($$SELECT credit_grants('nobody')$$);
SELECT err($$SELECT credit_wallet_update('nobody', frozen => true)$$);
SELECT err($$SELECT credit_wallet_create('w2', parent => 'nobody')$$);
-- an action without a rate on the wallet's card or on default
SELECT err($$SELECT credit_authorize('w', 'teleport')$$);
SELECT err($$SELECT credit_authorize('p', 'teleport')$$);
SELECT err($$SELECT credit_quote('w', 'teleport')$$);
SELECT err($$SELECT credit_hold('w', 'teleport')$$);
-- an action priced only per variant: another variant, or none, has no rate
SELECT err($$SELECT credit_authorize('w', 'llm', 1, 'haiku')$$);
SELECT err($$SELECT credit_authorize('w', 'llm')$$);
-- an action only on another card, or only priced from tomorrow
SELECT err($$SELECT credit_authorize('w', 'video')$$);
SELECT err($$SELECT credit_authorize('w', 'launch')$$);
-- unknown assets and rate cards
SELECT err($$SELECT credit_grant('w', 10, asset => 'gold')$$);
SELECT err($$SELECT credit_rate_set('chat', 1, asset => 'gold')$$);
SELECT err($$SELECT credit_balance('w', 'gold')$$);
SELECT err($$SELECT credit_wallet_create('w3', rate_card => 'platinum')$$);
SELECT err($$SELECT credit_wallet_update('w', rate_card => 'platinum')$$);
SELECT err($$SELECT credit_rate_card_export('platinum')$$);

-- ---------------------------------------------------------------- quantities (22023)
SELECT err($$SELECT credit_authorize('w', 'chat', 0)$$);
SELECT err($$SELECT credit_authorize('w', 'chat', -1)$$);
SELECT err($$SELECT credit_authorize('w', 'chat', NULL)$$);
SELECT err($$SELECT credit_authorize('w', 'chat', 'NaN')$$);
SELECT err($$SELECT credit_authorize('w', 'chat', 'Infinity')$$);
SELECT err($$SELECT credit_authorize('w', 'chat', '-Infinity')$$);
SELECT err($$SELECT credit_quote('w', 'chat', 0)$$);
SELECT err($$SELECT credit_quote('w', 'chat', 'NaN')$$);
SELECT err($$SELECT credit_hold('w', 'chat', -5)$$);
SELECT err($$SELECT credit_hold('w', 'chat', 'Infinity')$$);

-- ---------------------------------------------------------------- grant amounts and times (22023)
SELECT err($$SELECT credit_grant('w', 0)$$);
SELECT err($$SELECT credit_grant('w', -10)$$);
SELECT err($$SELECT credit_grant('w', NULL)$$);
SELECT err($$SELECT credit_grant('w', 'NaN')$$);
SELECT err($$SELECT credit_grant('w', 'Infinity')$$);
SELECT err($$SELECT credit_grant('w', '-Infinity')$$);
-- more decimals than the asset's scale (credits 4, usd 2, action_credits 0)
SELECT err($$SELECT credit_grant('w', 1.00001)$$);
SELECT err($$SELECT credit_grant('w', 9.999, asset => 'usd')$$);
SELECT err($$SELECT credit_grant('w', 1.5, asset => 'action_credits')$$);
SELECT err($$SELECT credit_grant('w', 10, unit_price => -0.01)$$);
SELECT err($$SELECT credit_grant('w', 10, unit_price => 'NaN')$$);
-- expires_at must be after effective_at (and in the future)
SELECT err($$SELECT credit_grant('w', 10, effective_at => '2090-01-01 00:00:00+00', expires_at => '2090-01-01 00:00:00+00')$$);
SELECT err($$SELECT credit_grant('w', 10, effective_at => '2090-01-01 00:00:00+00', expires_at => '2089-01-01 00:00:00+00')$$);
SELECT err($$SELECT credit_grant('w', 10, expires_at => '2001-01-01 00:00:00+00', effective_at => '2000-01-01 00:00:00+00')$$);
SELECT err($$SELECT credit_grant('w', 10, effective_at => 'infinity')$$);

-- ---------------------------------------------------------------- huge numbers (22003)
SELECT err($$SELECT credit_authorize('w', 'chat', 1e30)$$);
SELECT err($$SELECT credit_authorize('w', 'chat', 99999999999999999999999999999)$$);
SELECT err($$SELECT credit_authorize('w', 'chat', 0.000000000000000000000000000001)$$);
-- more than 28 decimal places cannot be held exactly: rejected, never rounded (a rounded
-- quantity could be charged less than ceil(quantity x price))
SELECT err($$SELECT credit_quote('w', 'chat', 1.00000000000000000000000000004)$$);
SELECT err($$SELECT credit_grant('w', 1e30)$$);
SELECT err($$SELECT credit_grant('w', repeat('9', 1000)::numeric)$$);
SELECT err($$SELECT credit_rate_set('chat', 1e40)$$);
-- the cost itself overflows: quantity and price fit, their product does not
SELECT err($$SELECT credit_authorize('w', 'image', 1e26)$$);
SELECT err($$SELECT credit_quote('w', 'image', 1e26)$$);

-- ---------------------------------------------------------------- idempotency keys (22001 too long, 22023 empty)
SELECT err(format('SELECT credit_authorize(%L, %L, idempotency_key => %L)', 'w', 'chat', repeat('k', 256)));
SELECT err(format('SELECT credit_grant(%L, 1, idempotency_key => %L)', 'w', repeat('k', 256)));
SELECT err(format('SELECT credit_hold(%L, %L, idempotency_key => %L)', 'w', 'chat', repeat('é', 256)));
SELECT err($$SELECT credit_authorize('w', 'chat', idempotency_key => '')$$);

-- ---------------------------------------------------------------- metadata must be a JSON object (22023)
SELECT err($$SELECT credit_authorize('w', 'chat', metadata => '[1, 2]')$$);
SELECT err($$SELECT credit_authorize('w', 'chat', metadata => '"note"')$$);
SELECT err($$SELECT credit_authorize('w', 'chat', metadata => '42')$$);
SELECT err($$SELECT credit_authorize('w', 'chat', metadata => 'null')$$);
SELECT err($$SELECT credit_grant('w', 10, metadata => 'true')$$);
SELECT err($$SELECT credit_hold('w', 'chat', metadata => '[]')$$);
SELECT err($$SELECT credit_wallet_create('w4', metadata => '[]')$$);
SELECT err($$SELECT credit_wallet_update('w', metadata => '"x"')$$);

-- ---------------------------------------------------------------- a key reused with other arguments (23505)
SELECT err($$SELECT credit_grant('w', 101, idempotency_key => 'g-1')$$);
SELECT err($$SELECT credit_grant('w', 100, category => 'promotional', idempotency_key => 'g-1')$$);
SELECT err($$SELECT credit_authorize('w', 'chat', 3, idempotency_key => 'a-1')$$);
SELECT err($$SELECT credit_authorize('w', 'image', 2, idempotency_key => 'a-1')$$);
SELECT err($$SELECT credit_authorize('w', 'llm', 1, 'sonnet', idempotency_key => 'a-2')$$);
SELECT err($$SELECT credit_authorize('w', 'llm', 1, 'opus', idempotency_key => 'a-2', metadata => '{"r": 2}')$$);
SELECT err($$SELECT credit_hold('w', 'chat', 2, idempotency_key => 'a-1')$$);
-- the same key and arguments are a retry, not an error
SELECT err($$SELECT credit_authorize('w', 'chat', 2, idempotency_key => 'a-1')$$);
SELECT err($$SELECT credit_grant('w', 100, idempotency_key => 'g-1')$$);

-- ---------------------------------------------------------------- assets, wallets, rates
SELECT err($$SELECT credit_asset_define('usd', 4)$$);
SELECT err($$SELECT credit_asset_define('Gold Coins')$$);
SELECT err($$SELECT credit_asset_define('gold', 13)$$);
SELECT err($$SELECT credit_asset_define('gold', -1)$$);
SELECT err($$SELECT credit_wallet_create('w', overdraft_limit => 50)$$);
SELECT err($$SELECT credit_wallet_create('w5', overdraft_limit => -1)$$);
SELECT err($$SELECT credit_wallet_create('w5', pool_limit => 10)$$);
SELECT err($$SELECT credit_wallet_update('w', overdraft_limit => 'NaN')$$);
SELECT err($$SELECT credit_wallet_update('w', parent => 'w')$$);
SELECT err($$SELECT credit_wallet_update('w', clear => ARRAY['frozen'])$$);
SELECT err($$SELECT credit_rate_set('chat', -1)$$);
SELECT err($$SELECT credit_rate_set('chat', NULL)$$);
SELECT err($$SELECT credit_rate_set('chat', 'NaN')$$);
SELECT err($$SELECT credit_rate_set('chat', 1, vendor_cost => -0.5)$$);
SELECT err($$SELECT credit_rate_set('chat', 1, effective_from => 'infinity')$$);
-- a version already used by an authorization cannot be replaced
SELECT err($$SELECT credit_rate_set('fixed', 3, effective_from => '2020-01-01 00:00:00+00')$$);
SELECT err($$SELECT credit_expire(NULL)$$);

-- ---------------------------------------------------------------- rate card documents: rejected whole, naming the field
SELECT err($$SELECT credit_rate_card_load(NULL)$$);
SELECT err($$SELECT credit_rate_card_load('[]')$$);
SELECT err($$SELECT credit_rate_card_load('["x", null, [["a", null, 1, null, null, null, null]]]')$$);
SELECT err($$SELECT credit_rate_card_load('{"entries": []}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x"}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "", "entries": []}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x", "entries": {}}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x", "entries": [], "currency": "usd"}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x", "entries": [{"credits": 1}]}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x", "entries": [{"action": "a", "credits": 1}, {"action": "b"}]}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x", "entries": [{"action": "a", "credits": -1}]}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x", "entries": [{"action": "a", "credits": "NaN"}]}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x", "entries": [{"action": "a", "credits": 1, "vendor_cost": "-1"}]}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x", "entries": [{"action": "a", "credits": 1, "variant": ""}]}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x", "entries": [{"action": "a", "credits": 1}, {"action": "a", "credits": 2}]}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x", "entries": [{"action": "a", "credits": 1}, {"action": "b", "credits": 1, "asset": "gold"}]}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x", "entries": [{"action": "a", "credits": 1, "effective_from": "soon"}]}')$$);
SELECT err($$SELECT credit_rate_card_load('{"name": "x", "entries": [{"action": "a", "credits": "1 credit"}]}')$$);
-- nothing of the rejected documents was kept (not even the card "x")
SELECT count(*) AS cards_named_x FROM credit_ledger.rate_cards WHERE rate_card = 'x';

-- ---------------------------------------------------------------- the journal is append-only, even for the superuser (42501)
SELECT rolsuper AS running_as_superuser FROM pg_roles WHERE rolname = current_user;
SELECT err($$UPDATE credit_ledger.journal SET amount = amount + 1000$$);
SELECT err($$DELETE FROM credit_ledger.journal$$);
SELECT err($$TRUNCATE credit_ledger.journal$$);
SELECT err($$TRUNCATE credit_ledger.journal CASCADE$$);
-- psql's own error display, at top level, for the same statements
UPDATE credit_ledger.journal SET note = 'edited' WHERE kind = 'debit';
DELETE FROM credit_ledger.journal WHERE kind = 'debit';
TRUNCATE credit_ledger.journal;

-- ---------------------------------------------------------------- nothing changed
SELECT ledger_digest() = :'digest_before' AS unchanged;
SELECT credit_balance('w') AS balance_after;
SELECT * FROM credit_verify();
