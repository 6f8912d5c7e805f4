-- limits.sql: input a caller controls in full can no longer crash a call (issue 16, "Also found
-- in review"): the size limits (22001), non-ASCII text everywhere in rate-card documents, JSON
-- nested 128+ levels (22023), extreme decimals (exact, or 22003), exact numbers in rate-card
-- documents and metadata; and every rejected call changes nothing. Never an XX000.
--   names (wallet, parent, team, action, variant, asset, rate card, category, unit) and
--   idempotency keys: 255 characters; reason and descriptions: 1000 characters; metadata:
--   65,536 bytes as text; nesting: 128 levels (src/input.rs).
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
\set SHOW_CONTEXT never
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
    RETURN NEXT st || ': ' || msg;
    IF det <> '' THEN RETURN NEXT '  DETAIL: ' || det; END IF;
    IF hnt <> '' THEN RETURN NEXT '  HINT: ' || hnt; END IF;
END $f$;

-- A digest of every table of the ledger (each row's text, ordered), compared before and after
-- every block of rejected calls.
CREATE FUNCTION ledger_digest() RETURNS text LANGUAGE plpgsql AS $f$
DECLARE t text; h text; acc text := '';
BEGIN
    FOR t IN SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'credit_ledger' AND c.relkind = 'r' ORDER BY 1 LOOP
        EXECUTE format('SELECT md5(coalesce(string_agg(x::text, E''\n'' ORDER BY x::text), '''')) FROM credit_ledger.%I x', t)
           INTO h;
        acc := acc || t || ':' || h || ' ';
    END LOOP;
    RETURN md5(acc);
END $f$;

-- nested(n): a JSON object n levels deep
CREATE FUNCTION nested(n int) RETURNS jsonb LANGUAGE sql AS $f$
    SELECT (repeat('{"a": ', n - 1) || '{}' || repeat('}', n - 1))::jsonb
$f$;
SELECT jsonb_path_query(nested(3), 'strict $.a.a') AS three_levels;

SELECT credits FROM credit_rate_set(action => 'chat', credits => 1.5);
SELECT wallet FROM credit_wallet_create(wallet => 'w');
SELECT amount FROM credit_grant(wallet => 'w', amount => 1000);

-- ===================================================================== size limits (22001)
-- at the limit: accepted (characters, not bytes: multibyte names count one per character)
SELECT length(wallet) AS wallet_len, octet_length(wallet) AS wallet_bytes
  FROM credit_wallet_create(wallet => repeat('ü', 255));
SELECT length(wallet) AS wallet_len FROM credit_wallet_create(wallet => repeat('p', 255));
SELECT length(wallet) AS member_len FROM credit_wallet_create(wallet => 'mem', parent => repeat('p', 255));
SELECT length(action) AS action_len, length(variant) AS variant_len, length(rate_card) AS card_len,
       length(asset) AS asset_len, length(unit) AS unit_len
  FROM credit_rate_set(action => repeat('a', 255), credits => 1, variant => repeat('💥', 255),
                       rate_card => repeat('c', 255),
                       asset => credit_asset_define(repeat('s', 255), 2, description => repeat('d', 1000)),
                       unit => repeat('ü', 255));
SELECT length(category) AS category_len
  FROM credit_grant(wallet => 'w', amount => 1, category => repeat('k', 255), idempotency_key => repeat('é', 255));
SELECT approved, cost FROM credit_authorize('w', 'chat', idempotency_key => repeat('k', 255));
SELECT octet_length(jsonb_build_object('a', repeat('x', 65536 - 9))::text) AS metadata_bytes;
SELECT octet_length(metadata::text) AS stored_bytes
  FROM credit_wallet_create(wallet => 'big_meta', metadata => jsonb_build_object('a', repeat('x', 65536 - 9)));
SELECT authorization_id AS refundable FROM credit_authorize('w', 'chat') \gset
SELECT amount FROM credit_refund(:refundable, 0.5, reason => repeat('r', 1000));
SELECT length(reason) AS reason_len FROM credit_ledger.refunds;
SELECT credit_rate_card_load(jsonb_build_object('name', repeat('n', 255), 'description', repeat('ð', 1000),
           'entries', jsonb_build_array(jsonb_build_object('action', repeat('a', 255), 'variant', repeat('v', 255),
                                                           'unit', repeat('u', 255), 'credits', 2)))) AS loaded;
-- the team allocation's key: 240 characters, and 255 with ':' and the longest member's name
SELECT count(*) AS allocated FROM credit_team_allocate(repeat('p', 255), 10, 0.5, idempotency_key => repeat('t', 240));
SELECT wallet FROM credit_wallet_create(wallet => 'team');
SELECT wallet FROM credit_wallet_create(wallet => 'member_15_chars', parent => 'team');
SELECT count(*) AS allocated FROM credit_team_allocate('team', 10, 0.5, idempotency_key => repeat('t', 239));

-- one beyond: 22001, naming the parameter and the limit
SELECT ledger_digest() AS before \gset
SELECT err(format('SELECT credit_wallet_create(%L)', repeat('ü', 256)));
SELECT err(format('SELECT credit_wallet_create(%L, parent => %L)', 'x', repeat('p', 256)));
SELECT err(format('SELECT credit_wallet_update(%L, rate_card => %L)', 'w', repeat('c', 256)));
SELECT err(format('SELECT credit_rate_set(%L, 1)', repeat('a', 256)));
SELECT err(format('SELECT credit_rate_set(%L, 1, variant => %L)', 'chat', repeat('v', 256)));
SELECT err(format('SELECT credit_rate_set(%L, 1, unit => %L)', 'chat', repeat('u', 256)));
SELECT err(format('SELECT credit_rate_card_export(%L)', repeat('c', 256)));
SELECT err(format('SELECT credit_asset_define(%L)', repeat('s', 256)));
SELECT err(format('SELECT credit_asset_define(%L, 2, description => %L)', 'gold', repeat('d', 1001)));
SELECT err(format('SELECT credit_grant(%L, 1, category => %L)', 'w', repeat('k', 256)));
SELECT err(format('SELECT credit_grant(%L, 1, asset => %L)', 'w', repeat('s', 256)));
SELECT err(format('SELECT credit_authorize(%L, %L)', repeat('w', 256), 'chat'));
SELECT err(format('SELECT credit_quote(%L, %L)', 'w', repeat('a', 256)));
SELECT err(format('SELECT credit_balance(%L)', repeat('w', 256)));
SELECT err(format('SELECT credit_balance(%L, %L)', 'w', repeat('s', 256)));
SELECT err(format('SELECT count(*) FROM credit_grants(%L)', repeat('w', 256)));
SELECT err(format('SELECT count(*) FROM credit_balance_detail(%L, %L)', 'w', repeat('s', 256)));
SELECT err(format('SELECT credit_hold(%L, %L, idempotency_key => %L)', 'w', 'chat', repeat('é', 256)));
SELECT err(format('SELECT credit_allowance_set(%L, 10, asset => %L)', 'w', repeat('s', 256)));
SELECT err(format('SELECT credit_refund(%s, 0.5, reason => %L)', :refundable, repeat('r', 1001)));
SELECT err(format('SELECT credit_refund(%s, 0.5, reason => %L)', :refundable, repeat('💥', 1001)));
SELECT err(format('SELECT credit_wallet_create(%L, metadata => %L)', 'x', jsonb_build_object('a', repeat('x', 65536 - 8))));
SELECT err(format('SELECT credit_wallet_update(%L, metadata => %L)', 'w', jsonb_build_object('a', repeat('x', 100000))));
SELECT err(format('SELECT credit_grant(%L, 1, metadata => %L)', 'w', jsonb_build_object('a', repeat('x', 65536 - 8))));
SELECT err(format('SELECT credit_authorize(%L, %L, metadata => %L)', 'w', 'chat', jsonb_build_object('a', repeat('x', 65536 - 8))));
SELECT err(format('SELECT credit_rate_card_load(%L)', jsonb_build_object('name', repeat('n', 256), 'entries', '[]'::jsonb)));
SELECT err(format('SELECT credit_rate_card_load(%L)', jsonb_build_object('name', 'n', 'description', repeat('d', 1001), 'entries', '[]'::jsonb)));
SELECT err(format('SELECT credit_rate_card_load(%L)', jsonb_build_object('name', 'n', 'entries',
           jsonb_build_array(jsonb_build_object('action', 'chat', 'credits', 1, 'unit', repeat('u', 256))))));
SELECT err(format('SELECT credit_rate_card_load(%L)', jsonb_build_object('name', 'n', 'entries',
           jsonb_build_array(jsonb_build_object('action', 'chat', 'credits', 1, 'asset', repeat('s', 256))))));
SELECT err(format('SELECT * FROM credit_team_allocate(%L, 10, 0.5)', repeat('p', 256)));
SELECT err(format('SELECT * FROM credit_team_allocate(%L, 10, 0.5, category => %L)', repeat('p', 255), repeat('k', 256)));
SELECT err(format('SELECT * FROM credit_team_allocate(%L, 10, 0.5, idempotency_key => %L)', repeat('p', 255), repeat('t', 241)));
SELECT err(format('SELECT * FROM credit_team_allocate(%L, 10, 0.5, metadata => %L)', repeat('p', 255), jsonb_build_object('a', repeat('x', 65536 - 8))));
-- the member keys would pass 255 characters: a member named with 15 characters and a 240-character key
SELECT err(format('SELECT * FROM credit_team_allocate(%L, 10, 0.5, idempotency_key => %L)', 'team', repeat('u', 240)));
SELECT ledger_digest() = :'before' AS nothing_changed;

-- ===================================================================== deep JSON (22023)
-- 128 levels are accepted, 129 are not, nor 200 or 500 (no XX000: pgrx's own jsonb conversion
-- panicked at 128)
SELECT wallet FROM credit_wallet_create(wallet => 'deep128', metadata => nested(128));
SELECT jsonb_path_query(metadata, 'strict $.a.a.a') = nested(125) AS stored_exactly FROM credit_wallet('deep128');
SELECT ledger_digest() AS before \gset
SELECT err(format('SELECT credit_wallet_create(%L, metadata => %L)', 'x', nested(129)));
SELECT err(format('SELECT credit_wallet_create(%L, metadata => %L)', 'x', nested(200)));
SELECT err(format('SELECT credit_wallet_update(%L, metadata => %L)', 'w', nested(500)));
SELECT err(format('SELECT credit_wallet_create(%L, metadata => jsonb_build_object(%L, %L::jsonb))', 'x', 'a',
                  repeat('[', 200) || repeat(']', 200)));
SELECT err(format('SELECT credit_grant(%L, 1, metadata => %L)', 'w', nested(200)));
SELECT err(format('SELECT credit_authorize(%L, %L, metadata => %L)', 'w', 'chat', nested(200)));
SELECT err(format('SELECT credit_hold(%L, %L, metadata => %L)', 'w', 'chat', nested(200)));
SELECT err(format('SELECT credit_refund(%s, 0.1, metadata => %L)', :refundable, nested(200)));
SELECT err(format('SELECT * FROM credit_team_allocate(%L, 10, 0.5, metadata => %L)', repeat('p', 255), nested(200)));
SELECT err(format('SELECT credit_rate_card_load(%L)', nested(200)));
SELECT err(format('SELECT credit_rate_card_load(%L)', nested(129)));
SELECT err(format('SELECT credit_rate_card_load(%L)', jsonb_build_object('name', 'deep', 'entries',
           jsonb_build_array(jsonb_build_object('action', 'chat', 'credits', 1, 'unit', nested(200))))));
SELECT err(format('SELECT credit_rate_card_load(%L)', jsonb_build_object('name', 'deep', 'description', nested(127),
           'entries', '[]'::jsonb)));
SELECT ledger_digest() = :'before' AS nothing_changed;
SELECT authorization_id AS open_hold FROM credit_hold('w', 'chat') \gset
SELECT err(format('SELECT credit_capture(%s, metadata => %L)', :open_hold, nested(200)));
SELECT err(format('SELECT credit_release(%s, metadata => %L)', :open_hold, nested(500)));
SELECT status FROM credit_release(:open_hold);

-- ===================================================================== non-ASCII text in rate-card documents
SELECT credit_rate_card_load('{"name": "prö 💥", "description": "Tarif für Ünïcödé ✓",
    "entries": [{"action": "chät", "variant": "日本語", "credits": "1.5", "unit": "1k tökens",
                 "vendor_cost": "0.015", "effective_from": "2026-01-01T00:00:00Z"}]}') AS loaded;
SELECT jsonb_pretty(credit_rate_card_export('prö 💥') #- '{entries,0,effective_from}');
-- a multibyte character wherever the timestamp parser splits (after the date, in the seventh
-- fraction digit, in a four-digit zone, after a sign), full-width digits: 22023, never XX000
SELECT ledger_digest() AS before \gset
SELECT err(format('SELECT credit_rate_card_load(%L)', jsonb_build_object('name', 'prö 💥', 'entries',
           jsonb_build_array(jsonb_build_object('action', 'chät', 'credits', 2, 'effective_from', t)))))
  FROM unnest(ARRAY['2026-01-0é', '2026-01-01é00:00:00Z', '2026-01-01T00:00:00.12345é',
                    '2026-01-01T00:00:00.123456💥Z', '2026-01-01T00:00:00+1é1', '2026-01-01T00:00:00-💥',
                    '２０２６-01-01', '2026-01-01T00:00:00Ｚ']) WITH ORDINALITY AS u(t, i)
 ORDER BY i;
SELECT err(format('SELECT credit_rate_card_load(%L)', '{"name": "prö", "entries": [{"action": "chät", "credits": "１.５"}]}'));
SELECT err(format('SELECT credit_rate_card_load(%L)', '{"name": "prö", "entries": [{"action": "chät", "credits": "1.5 💥"}]}'));
SELECT err(format('SELECT credit_rate_card_load(%L)', jsonb_build_object('name', 'prö', 'entries',
           jsonb_build_array(jsonb_build_object('action', 'chät', 'credits', repeat('💥', 100))))));
SELECT ledger_digest() = :'before' AS nothing_changed;

-- ===================================================================== exact numbers in rate-card documents
-- JSON numbers are read digit for digit (never through f64): exact, or 22003
SELECT credit_rate_card_load('{"name": "precise", "entries": [
    {"action": "a", "credits": 0.1234567890123456789},
    {"action": "b", "credits": 12345678901234567890.5},
    {"action": "c", "credits": 1E+2, "vendor_cost": 0.1234567890123456789012345678},
    {"action": "d", "credits": "0.0000000000000000000000000001"}]}') AS loaded;
SELECT e->>'action' AS action, e->>'credits' AS credits, e->>'vendor_cost' AS vendor_cost
  FROM jsonb_array_elements(credit_rate_card_export('precise')->'entries') e ORDER BY 1;
SELECT ledger_digest() AS before \gset
SELECT err(format('SELECT credit_rate_card_load(%L)', '{"name": "precise", "entries": [{"action": "x", "credits": ' || v || '}]}'))
  FROM unnest(ARRAY['0.12345678901234567890123456789', '123456789012345678901234567890', '1e-29', '1e400',
                    '79228162514264337593543950336']) WITH ORDINALITY AS u(v, i)
 ORDER BY i;
SELECT ledger_digest() = :'before' AS nothing_changed;
-- metadata keeps every digit (and a number beyond any float)
SELECT metadata FROM credit_wallet_create(wallet => 'meta_numbers',
    metadata => '{"x": 1.10, "y": 0.12345678901234567890123456789, "z": 1e40}');
SELECT (metadata->>'big')::numeric = 1e400 AS exact
  FROM credit_wallet_create(wallet => 'meta_1e400', metadata => '{"big": 1e400}');

-- ===================================================================== extreme decimals
SELECT credits FROM credit_rate_set(action => 'tiny', credits => 0.00000000000001);
SELECT credits FROM credit_rate_set(action => 'atom', credits => 0.0000000000000000000000000001);
SELECT credits FROM credit_rate_set(action => 'one', credits => 1);
SELECT credits FROM credit_rate_set(action => 'max', credits => 79.2281625142643375935439503);
SELECT credits FROM credit_rate_set(action => 'vend', credits => 0, vendor_cost => 1e20);
SELECT credits FROM credit_rate_set(action => 'vfine', credits => 0, vendor_cost => 0.00000000000001);
-- products beyond 28 decimals are rounded up once, exactly: 1e-14 x 1e-16 costs one unit (0.0001),
-- not 0 (the product was rounded to 28 decimals first, to zero)
SELECT cost, approved FROM credit_quote('w', 'tiny', 0.0000000000000001);
SELECT cost, approved FROM credit_quote('w', 'atom', 0.0000000000000000000000000001);
SELECT cost, approved FROM credit_quote('w', 'tiny', 1);
-- near the largest amount (79228162514264337593543950335): exact when it fits, else 22003
SELECT cost, approved, reason FROM credit_quote('w', 'one', 9999999999999999999999999999);
SELECT cost, approved FROM credit_quote('w', 'max', 1e27);
SELECT cost, vendor_cost FROM credit_authorize('w', 'vend', 1e8);
SELECT cost, vendor_cost FROM credit_authorize('w', 'vfine', 1.5);
SELECT ledger_digest() AS before \gset
SELECT err($$SELECT credit_quote('w', 'max', 1.0000000000000000000000000001e27)$$);
SELECT err($$SELECT credit_quote('w', 'one', 79228162514264337593543950336)$$);
SELECT err($$SELECT credit_authorize('w', 'one', 1e28 * 7.9229)$$);
SELECT err($$SELECT credit_authorize('w', 'vend', 1e10)$$);
SELECT err($$SELECT credit_authorize('w', 'vfine', 0.000000000000001)$$);
SELECT err($$SELECT credit_hold('w', 'vend', 1e9)$$);
SELECT err($$SELECT credit_grant('w', 79228162514264337593543950336)$$);
SELECT err($$SELECT credit_grant('w', 0.00000000000000000000000000001)$$);
SELECT ledger_digest() = :'before' AS nothing_changed;
-- a wallet at the largest amount: a debit of all of it is exact
SELECT wallet FROM credit_wallet_create(wallet => 'whale');
SELECT amount FROM credit_grant('whale', 79228162514264337593543950335);
SELECT approved, cost, balance FROM credit_authorize('whale', 'one', 79228162514264337593543950335);
SELECT amount FROM credit_grant('whale', 79228162514264337593543950335);
SELECT amount FROM credit_grant('whale', 1);
-- the total of its grants no longer fits 28 digits: 22003, and nothing changes
SELECT ledger_digest() AS before \gset
SELECT err($$SELECT credit_authorize('whale', 'one', 1)$$);
SELECT err($$SELECT * FROM credit_quote('whale', 'one', 1)$$);
SELECT ledger_digest() = :'before' AS nothing_changed;
-- expiry totals add up in numeric: two wallets' expired grants beyond 28 digits
SELECT wallet FROM credit_wallet_create(wallet => 'whale2');
SELECT amount FROM credit_grant('whale2', 79228162514264337593543950335, effective_at => '2020-01-01', expires_at => now() + interval '1 hour');
SELECT amount FROM credit_grant('meta_numbers', 79228162514264337593543950335, effective_at => '2020-01-01', expires_at => now() + interval '1 hour');
SELECT grants_expired, credits_expired FROM credit_expire(as_of => now() + interval '2 hours');

-- ===================================================================== rejected at the top level
-- outside any helper's subtransaction: each statement fails alone and the ledger is unchanged
SELECT ledger_digest() AS before \gset
SELECT credit_wallet_create(repeat('ü', 256));
\echo :SQLSTATE
SELECT credit_authorize('w', 'chat', idempotency_key => repeat('k', 256));
\echo :SQLSTATE
SELECT credit_grant('w', 1, metadata => nested(200));
\echo :SQLSTATE
SELECT credit_rate_card_load('{"name": "x", "entries": [{"action": "a", "credits": 1, "effective_from": "2026-01-0é"}]}');
\echo :SQLSTATE
SELECT credit_authorize('w', 'vend', 1e10);
\echo :SQLSTATE
SELECT credit_refund(:refundable, 0.1, reason => repeat('r', 1001));
\echo :SQLSTATE
SELECT ledger_digest() = :'before' AS nothing_changed;
SELECT count(*) AS verify_rows FROM credit_verify();
