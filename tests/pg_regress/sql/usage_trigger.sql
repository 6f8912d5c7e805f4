-- usage_trigger.sql: credit_usage_trigger() (SPEC §5; issue 6). A BEFORE INSERT row trigger on an
-- app's own usage table authorizes every row: single-row INSERT, multi-row INSERT ... VALUES,
-- INSERT ... SELECT and COPY; a declined row raises SQLSTATE 53400 naming the wallet and the
-- reason, and the whole statement rolls back; misconfigured arguments raise 22023 (or 42703
-- for an unknown column) at the first insert (PostgreSQL does not run a trigger function at
-- CREATE TRIGGER, so that is the earliest point).
CREATE EXTENSION credit_ledger;
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET client_min_messages = warning;

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
    -- generated ids are shown as <id>
    det := regexp_replace(det, 'authorization [0-9]+', 'authorization <id>', 'g');
    RETURN NEXT st || ': ' || msg;
    IF det <> '' THEN RETURN NEXT '  DETAIL: ' || det; END IF;
    IF hnt <> '' THEN RETURN NEXT '  HINT: ' || hnt; END IF;
END $f$;

-- The state a failed statement must leave unchanged: balances, journal entries, authorizations.
CREATE FUNCTION ledger_state() RETURNS TABLE (wallet text, balance numeric, journal_entries bigint, authorizations bigint)
LANGUAGE plpgsql AS $f$
DECLARE w record;
BEGIN
    -- one wallet at a time, each count on the wallet's tenant (so Citus can plan it too)
    FOR w IN SELECT x.wallet, x.id, x.tenant FROM credit_ledger.wallets x ORDER BY x.wallet LOOP
        wallet := w.wallet;
        balance := credit_balance(w.wallet);
        SELECT count(*) INTO journal_entries FROM credit_ledger.journal j
         WHERE j.wallet_id = w.id AND j.tenant = w.tenant;
        SELECT count(*) INTO authorizations FROM credit_ledger.authorizations a
         WHERE a.wallet_id = w.id AND a.tenant = w.tenant;
        RETURN NEXT;
    END LOOP;
END
$f$;

SELECT count(*) AS rates FROM (
  SELECT credit_rate_set(action => 'chat', variant => 'opus',  credits => 15, vendor_cost => 0.075)
  UNION ALL SELECT credit_rate_set(action => 'chat', variant => 'haiku', credits => 1, vendor_cost => 0.004)
  UNION ALL SELECT credit_rate_set(action => 'chat', credits => 2)
  UNION ALL SELECT credit_rate_set(action => 'image.generate', credits => 40, vendor_cost => 0.04)) r;
SELECT count(*) AS wallets FROM (
  SELECT credit_wallet_create('cust_42') UNION ALL SELECT credit_wallet_create('cust_7')) w;
SELECT wallet, amount FROM credit_grant('cust_42', 1000);
SELECT wallet, amount FROM credit_grant('cust_7', 100);

-- ======================================================= the README's table: every insert path
CREATE TABLE llm_calls (
    id          serial,
    customer_id text NOT NULL,
    kind        text NOT NULL,
    model       text,
    tokens      numeric NOT NULL,
    request_id  text,
    auth_id     bigint
);
CREATE TRIGGER bill BEFORE INSERT ON llm_calls FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer_id', 'action=kind', 'quantity=tokens', 'variant=model',
                       'idempotency_key=request_id', 'authorization_id=auth_id');

-- single row: the authorization id is written into the row
INSERT INTO llm_calls (customer_id, kind, model, tokens, request_id)
VALUES ('cust_42', 'chat', 'opus', 2, 'req-1')
RETURNING customer_id, kind, model, tokens, auth_id IS NOT NULL AS billed;
-- multi-row INSERT ... VALUES: one authorization per row
INSERT INTO llm_calls (customer_id, kind, model, tokens, request_id)
VALUES ('cust_42', 'chat', 'haiku', 12.5, 'req-2'),
       ('cust_7',  'chat', 'opus',  1,    'req-3'),
       ('cust_42', 'image.generate', NULL, 1, 'req-4');
-- INSERT ... SELECT
INSERT INTO llm_calls (customer_id, kind, model, tokens, request_id)
SELECT 'cust_42', 'chat', 'sonnet', n, 'req-batch-' || n FROM generate_series(1, 3) n;
-- COPY ... FROM STDIN
COPY llm_calls (customer_id, kind, model, tokens, request_id) FROM stdin;
cust_7	chat	haiku	4	req-5
cust_7	image.generate	\N	1	req-6
\.
-- every row carries its own authorization, and it is the one that billed the row
SELECT l.id, l.customer_id, l.kind, l.model, l.tokens, a.status, a.cost, a.variant, a.idempotency_key,
       a.metadata
  FROM llm_calls l JOIN credit_ledger.authorizations a ON a.id = l.auth_id ORDER BY l.id;
SELECT count(*) AS rows, count(DISTINCT auth_id) AS authorizations FROM llm_calls;
-- 1000 - 30 - 12.5 - 40 - 2 - 4 - 6 = 905.5; 100 - 15 - 4 - 40 = 41
SELECT * FROM ledger_state();
SELECT * FROM credit_verify();

-- ======================================================= idempotency key: a retried row bills once
-- the same request_id again (a retried usage row): stored again, with the first authorization
INSERT INTO llm_calls (customer_id, kind, model, tokens, request_id)
VALUES ('cust_42', 'chat', 'opus', 2, 'req-1');
SELECT request_id, count(*) AS rows, count(DISTINCT auth_id) AS authorizations
  FROM llm_calls WHERE request_id = 'req-1' GROUP BY request_id;
-- twice within one multi-row statement and once through COPY: still one debit
INSERT INTO llm_calls (customer_id, kind, model, tokens, request_id)
VALUES ('cust_7', 'chat', 'haiku', 1, 'req-7'), ('cust_7', 'chat', 'haiku', 1, 'req-7');
COPY llm_calls (customer_id, kind, model, tokens, request_id) FROM stdin;
cust_7	chat	haiku	1	req-7
\.
SELECT request_id, count(*) AS rows, count(DISTINCT auth_id) AS authorizations
  FROM llm_calls WHERE request_id = 'req-7' GROUP BY request_id;
-- balances moved only by the one new debit of 1 (cust_7: 41 - 1 = 40); one more journal entry
SELECT * FROM ledger_state();
-- the same key with another quantity is the documented idempotency error (23505)
SELECT err($$INSERT INTO llm_calls (customer_id, kind, model, tokens, request_id) VALUES ('cust_42', 'chat', 'opus', 3, 'req-1')$$);
-- rows without a key are independent calls
INSERT INTO llm_calls (customer_id, kind, model, tokens) VALUES ('cust_7', 'chat', 'haiku', 1), ('cust_7', 'chat', 'haiku', 1);
SELECT count(DISTINCT auth_id) AS authorizations FROM llm_calls WHERE request_id IS NULL;
SELECT * FROM ledger_state();
-- a row that already carries an authorization id (a pg_dump restore) is not billed again
INSERT INTO llm_calls (customer_id, kind, model, tokens, request_id, auth_id)
SELECT customer_id, kind, model, tokens, request_id, auth_id FROM llm_calls WHERE request_id = 'req-2';
SELECT * FROM ledger_state();

-- ======================================================= a declined row fails the statement
-- cust_7 has 38 credits; the third row (image.generate, 40) cannot be paid. psql shows the
-- message (VERBOSITY terse: the DETAIL names a generated authorization id), then the SQLSTATE.
INSERT INTO llm_calls (customer_id, kind, model, tokens, request_id)
VALUES ('cust_7', 'chat', 'haiku', 1, 'req-8'),
       ('cust_42', 'chat', 'opus', 1, 'req-9'),
       ('cust_7', 'image.generate', NULL, 1, 'req-10');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- nothing of the statement remains: no rows, balances, journal and authorizations unchanged
SELECT count(*) AS rows FROM llm_calls WHERE request_id IN ('req-8', 'req-9', 'req-10');
SELECT * FROM ledger_state();
-- the same through INSERT ... SELECT and COPY
INSERT INTO llm_calls (customer_id, kind, tokens, request_id)
SELECT 'cust_7', 'chat', n, 'req-sel-' || n FROM generate_series(10, 30, 10) n;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
COPY llm_calls (customer_id, kind, model, tokens, request_id) FROM stdin;
cust_42	chat	haiku	1	req-11
cust_7	chat	opus	3	req-12
\.
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM ledger_state();
-- through the helper: the SQLSTATE, the message naming the wallet and the reason, DETAIL and HINT
SELECT err($$INSERT INTO llm_calls (customer_id, kind, model, tokens) VALUES ('cust_7', 'chat', 'opus', 3)$$);
-- other reasons: a frozen wallet, an unknown wallet (an error from credit_authorize: 42704)
SELECT wallet, frozen FROM credit_wallet_update('cust_7', frozen => true);
SELECT err($$INSERT INTO llm_calls (customer_id, kind, model, tokens) VALUES ('cust_7', 'chat', 'haiku', 1)$$);
SELECT wallet, frozen FROM credit_wallet_update('cust_7', frozen => false);
SELECT err($$INSERT INTO llm_calls (customer_id, kind, model, tokens) VALUES ('cust_99', 'chat', 'haiku', 1)$$);
-- in the app's transaction: a declined row aborts it, the earlier billed row rolls back with it
BEGIN;
INSERT INTO llm_calls (customer_id, kind, model, tokens, request_id) VALUES ('cust_7', 'chat', 'haiku', 1, 'req-13');
INSERT INTO llm_calls (customer_id, kind, model, tokens, request_id) VALUES ('cust_7', 'chat', 'opus', 3, 'req-14');
COMMIT;
SELECT count(*) AS rows FROM llm_calls WHERE request_id IN ('req-13', 'req-14');
-- after a top-up the same rows go through (the decline left no record to replay)
SELECT wallet, amount FROM credit_grant('cust_7', 100);
INSERT INTO llm_calls (customer_id, kind, model, tokens, request_id)
VALUES ('cust_7', 'chat', 'haiku', 1, 'req-8'),
       ('cust_42', 'chat', 'opus', 1, 'req-9'),
       ('cust_7', 'image.generate', NULL, 1, 'req-10');
SELECT * FROM ledger_state();
SELECT * FROM credit_verify();

-- ======================================================= constant action, variant literal, no quantity
CREATE TABLE image_jobs (account text, size text, job_id bigint, billed_by bigint);
CREATE TRIGGER bill BEFORE INSERT ON image_jobs FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('action_value=image.generate', 'wallet=account', 'authorization_id=billed_by');
INSERT INTO image_jobs (account, size, job_id) VALUES ('cust_42', 'large', 1), ('cust_42', 'small', 2);
-- a missing quantity means 1: two calls of 40
SELECT j.job_id, a.action, a.variant, a.quantity, a.cost
  FROM image_jobs j JOIN credit_ledger.authorizations a ON a.id = j.billed_by ORDER BY j.job_id;
CREATE TABLE chat_turns (account text, tokens int, model text);
CREATE TRIGGER bill BEFORE INSERT ON chat_turns FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=account', 'action_value=chat', 'variant_value=haiku', 'quantity=tokens');
INSERT INTO chat_turns VALUES ('cust_42', 3, 'opus');
-- variant_value gives every row the variant (the model column is not mapped): 3 x 1 haiku credit
SELECT action, variant, quantity, cost FROM credit_ledger.authorizations ORDER BY id DESC LIMIT 1;
-- a text quantity column holding a number works; spaces around = are allowed
CREATE TABLE text_usage (who text, what text, n text);
CREATE TRIGGER bill BEFORE INSERT ON text_usage FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet = who', 'action = what', 'quantity = n');
INSERT INTO text_usage VALUES ('cust_42', 'chat', '2.5');
SELECT action, variant, quantity, cost FROM credit_ledger.authorizations ORDER BY id DESC LIMIT 1;

-- ======================================================= misconfigured arguments
CREATE TABLE misc (customer_id text, kind text, tokens numeric, note text, done boolean, auth_int int, at timestamptz);
SELECT * FROM ledger_state();
-- each: CREATE TRIGGER succeeds (PostgreSQL does not call the function there), the first insert fails
CREATE FUNCTION try_trigger(args text) RETURNS SETOF text LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE 'DROP TRIGGER IF EXISTS bill ON misc';
    EXECUTE 'CREATE TRIGGER bill BEFORE INSERT ON misc FOR EACH ROW EXECUTE FUNCTION credit_usage_trigger(' || args || ')';
    RETURN QUERY SELECT err($$INSERT INTO misc (customer_id, kind, tokens, note, at) VALUES ('cust_42', 'chat', 1, 'x', now())$$);
END $f$;
-- missing arguments
SELECT try_trigger('');
SELECT try_trigger($$'action=kind'$$);
SELECT try_trigger($$'wallet=customer_id'$$);
SELECT try_trigger($$'wallet=customer_id', 'quantity=tokens'$$);
-- not name=column, an empty column, an unknown argument name
SELECT try_trigger($$'wallet=customer_id', 'kind'$$);
SELECT try_trigger($$'wallet=customer_id', 'action='$$);
SELECT try_trigger($$'wallet=customer_id', 'action=kind', 'amount=tokens'$$);
-- an argument given twice; a column and a literal for the same thing
SELECT try_trigger($$'wallet=customer_id', 'action=kind', 'wallet=note'$$);
SELECT try_trigger($$'wallet=customer_id', 'action=kind', 'action_value=chat'$$);
SELECT try_trigger($$'wallet=customer_id', 'action=kind', 'variant=note', 'variant_value=opus'$$);
-- unknown columns (42703)
SELECT try_trigger($$'wallet=customer', 'action=kind'$$);
SELECT try_trigger($$'wallet=customer_id', 'action=kind', 'quantity=tokens', 'idempotency_key=request_id'$$);
SELECT try_trigger($$'wallet=customer_id', 'action=kind', 'authorization_id=auth_id'$$);
-- wrong column types: the quantity must hold a number; the authorization id column must be bigint
SELECT try_trigger($$'wallet=customer_id', 'action=kind', 'quantity=note'$$);
SELECT try_trigger($$'wallet=customer_id', 'action=kind', 'quantity=at'$$);
SELECT try_trigger($$'wallet=customer_id', 'action=kind', 'authorization_id=done'$$);
SELECT try_trigger($$'wallet=customer_id', 'action=kind', 'authorization_id=auth_int'$$);
SELECT try_trigger($$'wallet=customer_id', 'action=kind', 'authorization_id=note'$$);
-- a bad constant: an action without a rate (42704), an empty one
SELECT try_trigger($$'wallet=customer_id', 'action_value=video.export'$$);
SELECT try_trigger($$'wallet=customer_id', 'action_value= '$$);
-- a quantity the ledger refuses (22023)
DROP TRIGGER bill ON misc;
CREATE TRIGGER bill BEFORE INSERT ON misc FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer_id', 'action=kind', 'quantity=tokens');
SELECT err($$INSERT INTO misc (customer_id, kind, tokens) VALUES ('cust_42', 'chat', 0)$$);
SELECT err($$INSERT INTO misc (customer_id, kind, tokens) VALUES ('cust_42', 'chat', NULL)$$);
SELECT err($$INSERT INTO misc (customer_id, kind, tokens) VALUES (NULL, 'chat', 1)$$);
-- not a BEFORE INSERT row trigger
DROP TRIGGER bill ON misc;
CREATE TRIGGER bill AFTER INSERT ON misc FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer_id', 'action=kind');
SELECT err($$INSERT INTO misc (customer_id, kind) VALUES ('cust_42', 'chat')$$);
DROP TRIGGER bill ON misc;
CREATE TRIGGER bill BEFORE INSERT ON misc FOR EACH STATEMENT EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer_id', 'action=kind');
SELECT err($$INSERT INTO misc (customer_id, kind) VALUES ('cust_42', 'chat')$$);
DROP TRIGGER bill ON misc;
CREATE TRIGGER bill BEFORE UPDATE ON misc FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer_id', 'action=kind');
INSERT INTO misc (customer_id, kind) VALUES ('cust_42', 'chat');
SELECT err($$UPDATE misc SET note = 'y'$$);
-- none of the failed inserts changed anything; the one stored row came in under the UPDATE trigger, unbilled
SELECT count(*) AS rows FROM misc;
SELECT * FROM ledger_state();
SELECT * FROM credit_verify();
