-- patterns.sql: the application patterns of docs/patterns.md, run as written (the page quotes
-- this file's expected output verbatim, so the recipes cannot drift).
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
SELECT credit_rate_card_load('{"name": "default", "entries": [
  {"action": "chat", "variant": "opus",  "credits": 15, "unit": "1k tokens", "vendor_cost": 0.075, "fallback": "haiku"},
  {"action": "chat", "variant": "haiku", "credits": 1,  "unit": "1k tokens", "vendor_cost": 0.004},
  {"action": "image.generate", "credits": 40, "unit": "image", "vendor_cost": 0.04}
]}') AS entries_loaded;
CREATE TABLE chat_messages (id serial, customer text, authorization_id bigint, reply text);

-- pattern: top-up
-- A payment provider's webhook (Stripe's payment_intent.succeeded) grants the credits bought.
-- The payment id is the idempotency key: the provider retries webhooks, the grant happens once.
SELECT (credit_wallet_create(wallet => 'cust_42')).wallet;
SELECT id AS grant_id, category, amount, unit_price
  FROM credit_grant(wallet => 'cust_42', amount => 1000, category => 'purchased',
                    unit_price => 0.01, idempotency_key => 'stripe:pi_3Nx8');
-- the same webhook delivered again: the first grant is returned, nothing is added
SELECT id AS grant_id, category, amount, unit_price
  FROM credit_grant(wallet => 'cust_42', amount => 1000, category => 'purchased',
                    unit_price => 0.01, idempotency_key => 'stripe:pi_3Nx8');
SELECT credit_balance('cust_42') AS balance;

-- pattern: short call
BEGIN;
SELECT authorization_id, approved, reason, cost
  FROM credit_authorize(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 2,
                        idempotency_key => 'req_8f3a') \gset
-- approved: call the model, then store the result in the same transaction
INSERT INTO chat_messages (customer, authorization_id, reply) VALUES ('cust_42', :authorization_id, '...');
COMMIT;
SELECT :'approved' AS approved, :'cost' AS cost, credit_balance('cust_42') AS balance;
-- the model call failed after the commit: give the credits back to the grants that paid
SELECT amount, balance FROM credit_refund(authorization_id => :authorization_id, reason => 'model error');

-- pattern: streaming
-- reserve the estimate (4k tokens), stream, then capture what was used
SELECT authorization_id, status, cost, balance
  FROM credit_hold(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 4,
                   ttl => '5 minutes', idempotency_key => 'stream_77') \gset
SELECT :authorization_id AS hold_id, :'status' AS status, :'cost' AS reserved, :'balance' AS balance;
SELECT status, cost, balance FROM credit_capture(authorization_id => :authorization_id, quantity => 2.75);
-- a stream that failed before any output: release the whole hold
SELECT authorization_id FROM credit_hold(wallet => 'cust_42', action => 'chat', variant => 'opus',
                                         quantity => 4, idempotency_key => 'stream_78') \gset
SELECT status, balance FROM credit_release(authorization_id => :authorization_id);

-- pattern: long call
-- Lanes: spenders of one wallet or pool that do not wait for each other's open transactions
SELECT credit_wallet_lanes(wallet => 'cust_42', lanes => 8) AS lanes;
-- or keep the model call outside the spending transaction: hold in a short transaction,
-- call the model, capture in another short one (the hold's ttl bounds a crashed caller)
SELECT authorization_id FROM credit_hold(wallet => 'cust_42', action => 'chat', variant => 'opus',
                                         quantity => 10, ttl => '2 minutes',
                                         idempotency_key => 'job_5511') \gset
SELECT status, cost FROM credit_capture(authorization_id => :authorization_id, quantity => 6,
                                        idempotency_key => 'job_5511:capture');

-- pattern: agent run
SELECT run_id, approved, budget, balance
  FROM credit_run_open(wallet => 'cust_42', budget => 200, max_calls => 50, ttl => '30 minutes',
                       idempotency_key => 'agent:task_19') \gset
SELECT approved, cost FROM credit_authorize(wallet => 'cust_42', action => 'chat', variant => 'haiku',
                                            quantity => 12, run => :run_id, idempotency_key => 'task_19:1');
SELECT approved, cost FROM credit_authorize(wallet => 'cust_42', action => 'image.generate',
                                            run => :run_id, idempotency_key => 'task_19:2');
SELECT status, budget, spent, returned FROM credit_run_close(:run_id);

-- pattern: usage pipeline
CREATE TABLE llm_usage (
    request_id   text PRIMARY KEY,
    customer     text NOT NULL,
    model        text NOT NULL,
    tokens_k     numeric NOT NULL,
    auth_id      bigint,
    unbilled_why text
);
CREATE TRIGGER bill BEFORE INSERT ON llm_usage FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer', 'action_value=chat', 'variant=model',
                       'quantity=tokens_k', 'idempotency_key=request_id',
                       'authorization_id=auth_id', 'on_decline=mark', 'decline_reason=unbilled_why');
SELECT (credit_wallet_create(wallet => 'cust_7')).wallet;
SELECT (credit_grant(wallet => 'cust_7', amount => 20)).amount;
INSERT INTO llm_usage (request_id, customer, model, tokens_k) VALUES
  ('r-1', 'cust_7', 'haiku', 3),
  ('r-2', 'cust_7', 'opus', 1),
  ('r-3', 'cust_7', 'opus', 1)
RETURNING request_id, model, tokens_k, auth_id IS NOT NULL AS has_authorization, unbilled_why;
SELECT credit_balance('cust_7') AS balance;

-- pattern: team month
SELECT (credit_wallet_create(wallet => 'acme')).wallet;
SELECT (credit_wallet_create(wallet => 'acme.ann', parent => 'acme')).wallet;
SELECT (credit_wallet_create(wallet => 'acme.bob', parent => 'acme', pool_limit => 300)).wallet;
-- on the 1st of the month (the key makes a retried job a no-op)
SELECT wallet, amount
  FROM credit_team_allocate(team => 'acme', amount_per_member => 500, pooled_share => 0.4,
                            expires_at => date_trunc('month', now()) + interval '1 month',
                            idempotency_key => 'acme:alloc:2026-12');
SELECT member, pool_limit, drawn_this_period FROM credit_ledger.pool_usage ORDER BY member;

-- pattern: why declined
SELECT authorization_id, approved, reason, cost
  FROM credit_authorize(wallet => 'acme.bob', action => 'chat', variant => 'opus', quantity => 50);
SELECT balance, pool_access, spendable FROM credit_balance_detail('acme.bob');
SELECT reason, action, declines FROM credit_ledger.declines_daily WHERE wallet = 'acme.bob';

-- pattern: month end
SELECT asset, category, credits_outstanding, deferred_revenue FROM credit_ledger.liability ORDER BY category;
SELECT asset, credits_used, usage_revenue, revenue_recognized FROM credit_ledger.revenue_monthly;
SELECT line, kind, action, amount, balance
  FROM credit_statement('cust_7', date_trunc('month', now()), date_trunc('month', now()) + interval '1 month');
SELECT * FROM credit_verify();
