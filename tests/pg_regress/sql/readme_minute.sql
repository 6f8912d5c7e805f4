-- readme_minute.sql: the README's "In one minute", run as shown there.
CREATE EXTENSION credit_ledger;
SELECT id AS rate_id FROM credit_rate_set(action => 'chat', variant => 'opus',  credits => 15, unit => '1k tokens', vendor_cost => 0.075);
SELECT id AS rate_id FROM credit_rate_set(action => 'chat', variant => 'haiku', credits => 1,  unit => '1k tokens', vendor_cost => 0.004);
SELECT wallet FROM credit_wallet_create(wallet => 'cust_42');
SELECT amount FROM credit_grant(wallet => 'cust_42', amount => 500, category => 'purchased', unit_price => 0.01);
-- in the app's own transaction, before the expensive call:
SELECT approved, reason, cost, balance
  FROM credit_authorize(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 2.5,
                        idempotency_key => 'req_8f3a');
-- a call the wallet cannot pay is a row too, and debits nothing:
SELECT approved, reason, cost, balance
  FROM credit_authorize(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 40);
