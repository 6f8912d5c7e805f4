-- A walk-through of credit_ledger, as in README.md (run by the test suite, so it cannot drift).
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
\set ON_ERROR_STOP 0

-- 1. A rate card: chat per 1k tokens for three models, image generation, video export.
SELECT credit_rate_card_load('{"name": "default", "entries": [
  {"action": "chat", "variant": "opus",   "credits": 15, "unit": "1k tokens", "vendor_cost": 0.075},
  {"action": "chat", "variant": "sonnet", "credits": 3,  "unit": "1k tokens", "vendor_cost": 0.015},
  {"action": "chat", "variant": "haiku",  "credits": 1,  "unit": "1k tokens", "vendor_cost": 0.004},
  {"action": "image.generate", "credits": 40,  "unit": "image",  "vendor_cost": 0.04},
  {"action": "video.export",   "credits": 120, "unit": "minute", "vendor_cost": 0.30}
]}') AS entries_loaded;

-- 2. A customer with stacked grants: monthly included credits, a promotion that expires
--    soon, and a purchased pack (paid 0.01 per credit). Promotional credits are spent first.
SELECT wallet FROM credit_wallet_create(wallet => 'cust_42');
SELECT category, priority, amount
  FROM credit_grant(wallet => 'cust_42', amount => 100, category => 'included',
                    expires_at => now() + interval '1 month');
SELECT category, priority, amount
  FROM credit_grant(wallet => 'cust_42', amount => 50, category => 'promotional',
                    expires_at => now() + interval '7 days');
SELECT category, priority, amount
  FROM credit_grant(wallet => 'cust_42', amount => 500, category => 'purchased',
                    unit_price => 0.01, idempotency_key => 'stripe:pi_3Nx');
SELECT credit_balance('cust_42') AS balance;

-- 3. Show the price before the action.
SELECT cost, spendable, approved
  FROM credit_quote(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 2.5);

-- 4. Authorize (and debit) before the expensive call, in the app's own transaction.
SELECT approved, reason, cost, balance
  FROM credit_authorize(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 2.5,
                        idempotency_key => 'req_1');
SELECT authorization_id AS image_auth
  FROM credit_authorize(wallet => 'cust_42', action => 'image.generate', idempotency_key => 'req_2') \gset
SELECT approved, reason, cost, balance FROM credit_authorization(:image_auth);
-- the grants were consumed in order: promotional, then included
SELECT category, amount, remaining FROM credit_grants('cust_42');

-- 5. A retry with the same idempotency key returns the first result and debits nothing.
SELECT approved, reason, cost, balance
  FROM credit_authorize(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 2.5,
                        idempotency_key => 'req_1');

-- 6. A call the wallet cannot pay is declined (a row, not an exception); nothing is debited.
--    cost is what it would have cost.
SELECT approved, reason, cost, balance
  FROM credit_authorize(wallet => 'cust_42', action => 'video.export', quantity => 5);

-- 7. Streaming: hold an estimate (4k tokens), stream, capture the actual (2.75k tokens).
SELECT authorization_id AS hold_id
  FROM credit_hold(wallet => 'cust_42', action => 'chat', variant => 'sonnet', quantity => 4,
                   ttl => '5 minutes') \gset
SELECT status, cost, balance FROM credit_authorization(:hold_id);
SELECT status, cost, balance FROM credit_capture(authorization_id => :hold_id, quantity => 2.75);

-- 8. The image failed: refund it to the grants that paid for it.
SELECT amount, refunded_total, balance FROM credit_refund(authorization_id => :image_auth, reason => 'generation failed');
SELECT category, amount, remaining FROM credit_grants('cust_42');

-- 9. Balances, and the ledger's own integrity check (no rows = healthy).
SELECT balance, held, spendable, expiring_soon, by_category FROM credit_balance_detail('cust_42');
SELECT * FROM credit_verify();
