-- runs.sql: agent runs (issue 18). A run reserves a budget from a wallet (or a parent run) by
-- moving the credits into slices owned by the run's wallet; calls with run => id spend them
-- without the wallet's lock; closing gives every unspent credit back to the exact grant it
-- came from. Here: open, spend, decline, nest three deep, close, TTL sweep, holds and refunds
-- in a run, a pool member's run under its pool limit, idempotent retries, every error with its
-- SQLSTATE, and credit_verify() after each step.
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT count(*) AS rates FROM credit_rate_set(action => 'chat', credits => 1);
SELECT wallet FROM credit_wallet_create(wallet => 'acme');
-- two grants: a purchase of 100 (priority 50: spent first) and a promo of 300
SELECT id, category, amount FROM credit_grant(wallet => 'acme', amount => 300, category => 'promo',
                                              expires_at => now() + interval '1 day');
SELECT id, category, amount FROM credit_grant(wallet => 'acme', amount => 100, category => 'purchased');
SELECT id, category, priority, remaining FROM credit_grants('acme');

-- open a run of 150: it takes the credits in consumption order (100 of the purchase, 50 of the
-- promo), and the wallet's balance drops by the budget at once
SELECT run_id, approved, reason, budget, balance, status
  FROM credit_run_open(wallet => 'acme', budget => 150, idempotency_key => 'agent-1') \gset
SELECT :run_id AS run_id, :'approved' AS approved, :'budget' AS budget, :'balance' AS balance;
SELECT credit_balance('acme') AS acme_balance;
SELECT id, remaining FROM credit_grants('acme');
-- a retry with the same key returns the same run; other arguments are 23505
SELECT run_id, approved, budget, balance FROM credit_run_open(wallet => 'acme', budget => 150, idempotency_key => 'agent-1');
SELECT run_id FROM credit_run_open(wallet => 'acme', budget => 151, idempotency_key => 'agent-1');

-- calls in the run: the wallet's rates, the run's budget, the wallet's name in the answer
SELECT approved, reason, cost, balance, wallet, status
  FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 10, run => :run_id,
                        idempotency_key => 'call-1');
-- the same key again: the same authorization (keys are per run)
SELECT approved, cost, balance FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 10,
                                                     run => :run_id, idempotency_key => 'call-1');
-- more than the run has left: declined in the run's terms, never charged to the wallet
SELECT approved, reason, cost, balance FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 141, run => :run_id);
SELECT credit_balance('acme') AS acme_balance;
-- a hold in the run, captured below what it held
SELECT authorization_id AS hold_id, status, cost FROM credit_hold(wallet => 'acme', action => 'chat', quantity => 20, run => :run_id) \gset
SELECT :hold_id > 0 AS held, :'status' AS status, :cost AS cost;
SELECT status, cost FROM credit_capture(authorization_id => :hold_id, quantity => 15, idempotency_key => 'cap-1');
-- retries: the same capture again, a hold in the run with a key twice (one hold)
SELECT status, cost FROM credit_capture(authorization_id => :hold_id, quantity => 15, idempotency_key => 'cap-1');
SELECT authorization_id AS h1 FROM credit_hold(wallet => 'acme', action => 'chat', quantity => 20,
                                               run => :run_id, idempotency_key => 'hold-1') \gset
SELECT authorization_id = :h1 AS same_hold, status FROM credit_hold(wallet => 'acme', action => 'chat', quantity => 20,
                                                                    run => :run_id, idempotency_key => 'hold-1');
SELECT status FROM credit_release(authorization_id => :h1, idempotency_key => 'rel-1');
SELECT status FROM credit_release(authorization_id => :h1, idempotency_key => 'rel-1');
SELECT run_id, status, budget, spent, held, remaining, reserved, spent_tree, calls FROM credit_run(:run_id);
SELECT * FROM credit_verify();

-- nesting: a sub-agent of 50 and its own sub-agent of 20, funded from the parents' budgets
SELECT run_id AS sub_id, approved, budget, balance FROM credit_run_open(wallet => 'acme', budget => 50, parent_run => :run_id) \gset
SELECT :'approved' AS approved, :budget AS budget, :balance AS parent_left;
SELECT run_id AS leaf_id, approved, budget, balance FROM credit_run_open(wallet => 'acme', budget => 20, parent_run => :sub_id) \gset
SELECT :'approved' AS approved, :budget AS budget, :balance AS parent_left;
-- a sub-run larger than its parent has left is declined with the run's reason
SELECT approved, reason, budget FROM credit_run_open(wallet => 'acme', budget => 31, parent_run => :sub_id);
SELECT approved, reason, cost, balance FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 7, run => :leaf_id);
SELECT approved, reason, cost, balance FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 5, run => :sub_id);
-- a refund of a call inside an open run goes back to the run
SELECT a.id AS leaf_call FROM credit_ledger.authorizations a
  JOIN credit_ledger.runs r ON r.run_wallet_id = a.wallet_id AND r.tenant = a.tenant WHERE r.id = :leaf_id \gset
SELECT amount FROM credit_refund(authorization_id => :leaf_call, amount => 2, idempotency_key => 'ref-1');
SELECT amount, refunded_total FROM credit_refund(authorization_id => :leaf_call, amount => 2, idempotency_key => 'ref-1');
SELECT depth, status, budget, spent, held, remaining, reserved, spent_tree, returned, calls
  FROM credit_run_tree(:run_id);
SELECT * FROM credit_verify();

-- closing the top run closes its sub-runs: every unspent credit goes back, children first,
-- to the exact grants: the run's calls spent its purchase slice first (consumption order
-- inside the run), so the promo gets all of its 50 back and the purchase what is left of its 100
SELECT id, remaining FROM credit_grants('acme');
SELECT run_id, status, budget, spent, returned FROM credit_run_close(:run_id);
SELECT depth, status, spent, remaining, reserved, spent_tree, returned FROM credit_run_tree(:run_id);
SELECT id, remaining FROM credit_grants('acme');
SELECT credit_balance('acme') AS acme_balance;
-- 400 granted - (10 + 15 + 7 - 2 + 5) spent = 365
-- a refund of a call of a closed run goes on to the grant the run had it from
SELECT amount FROM credit_refund(authorization_id => :leaf_call, amount => 1);
SELECT id, remaining FROM credit_grants('acme');
SELECT depth, status, returned FROM credit_run_tree(:run_id);
SELECT * FROM credit_verify();
-- closing again changes nothing; calls and sub-runs of a closed run are declined
SELECT run_id, status, returned FROM credit_run_close(:run_id);
SELECT approved, reason FROM credit_authorize(wallet => 'acme', action => 'chat', run => :run_id);
SELECT approved, reason FROM credit_hold(wallet => 'acme', action => 'chat', run => :leaf_id);
SELECT approved, reason, status FROM credit_run_open(wallet => 'acme', budget => 1, parent_run => :run_id);
SELECT * FROM credit_verify();

-- an open hold is released when its run closes
SELECT run_id AS r2 FROM credit_run_open(wallet => 'acme', budget => 40) \gset
SELECT authorization_id AS h2 FROM credit_hold(wallet => 'acme', action => 'chat', quantity => 30, run => :r2) \gset
SELECT status, returned FROM credit_run_close(:r2);
SELECT status, reason FROM credit_authorization(:h2);
SELECT credit_balance('acme') AS acme_balance;

-- a run past its TTL is declined at once and closed by the sweep (status expired)
SELECT run_id AS r3 FROM credit_run_open(wallet => 'acme', budget => 25, ttl => interval '1 millisecond') \gset
SELECT pg_sleep(0.01);
SELECT approved, reason FROM credit_authorize(wallet => 'acme', action => 'chat', run => :r3);
BEGIN;
SELECT credit_balance('acme') AS before_sweep;
SELECT holds_expired FROM credit_expire();
COMMIT;
SELECT status, returned FROM credit_run(:r3);
SELECT credit_balance('acme') AS acme_balance;
SELECT * FROM credit_verify();

-- a pool member's run: funded from the pool within the member's pool limit, counted once at
-- opening; what comes back at closing is uncounted
SELECT wallet FROM credit_wallet_create(wallet => 'team');
SELECT wallet FROM credit_wallet_create(wallet => 'team.ann', parent => 'team', pool_limit => 100);
SELECT id FROM credit_grant(wallet => 'team', amount => 1000);
SELECT approved, reason, budget FROM credit_run_open(wallet => 'team.ann', budget => 101);
SELECT run_id AS r4, approved, balance FROM credit_run_open(wallet => 'team.ann', budget => 80) \gset
SELECT member, pool_limit, drawn_this_period FROM credit_ledger.pool_usage WHERE member = 'team.ann';
SELECT approved, cost FROM credit_authorize(wallet => 'team.ann', action => 'chat', quantity => 30, run => :r4);
SELECT run_id AS r4sub FROM credit_run_open(wallet => 'team.ann', budget => 20, parent_run => :r4) \gset
SELECT approved, cost FROM credit_authorize(wallet => 'team.ann', action => 'chat', quantity => 5, run => :r4sub);
SELECT status, spent, returned FROM credit_run_close(:r4);
-- drawn: 30 + 5 (the sub-run's credits went back through the run, uncounted once)
SELECT member, pool_limit, drawn_this_period FROM credit_ledger.pool_usage WHERE member = 'team.ann';
SELECT credit_balance('team') AS pool_balance;
-- a pool with lanes funds runs too (its slices are the sources)
SELECT credit_wallet_lanes(wallet => 'team', lanes => 4) AS lanes;
SELECT run_id AS r5, approved FROM credit_run_open(wallet => 'team', budget => 90) \gset
SELECT approved, cost, balance FROM credit_authorize(wallet => 'team', action => 'chat', quantity => 12, run => :r5);
SELECT status, spent, returned FROM credit_run_close(:r5);
SELECT credit_balance('team') AS pool_balance;
SELECT * FROM credit_verify();

-- per-run limits: at most 2 approved calls, each at most 50 credits
SELECT run_id AS r6 FROM credit_run_open(wallet => 'acme', budget => 200, max_calls => 2, max_cost_per_call => 50) \gset
SELECT approved, reason, cost FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 51, run => :r6);
SELECT approved, reason, cost FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 50, run => :r6);
SELECT approved, reason, cost FROM credit_hold(wallet => 'acme', action => 'chat', quantity => 10, run => :r6);
SELECT approved, reason, cost FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 1, run => :r6);
SELECT calls, spent, held FROM credit_run(:r6);
SELECT status, returned FROM credit_run_close(:r6);
SELECT * FROM credit_verify();

-- a run with lanes: its parallel calls do not wait for each other (isolation spec runs_race);
-- its slices are spread over its lanes, and closing gives each lane's credits back to the source
SELECT run_id AS r7, approved, budget FROM credit_run_open(wallet => 'acme', budget => 80, lanes => 4) \gset
SELECT credit_wallet_lanes(wallet => '~run.' || :r7) AS run_lanes;
SELECT lane, remaining FROM credit_ledger.grants g JOIN credit_ledger.runs r ON r.run_wallet_id = g.wallet_id AND r.tenant = g.tenant
 WHERE r.id = :r7 AND g.home_id IS NOT NULL ORDER BY lane;
SELECT approved, cost, balance FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 15, run => :r7);
SELECT approved, reason, cost FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 30, run => :r7);
SELECT run_id AS r7sub, approved FROM credit_run_open(wallet => 'acme', budget => 10, parent_run => :r7) \gset
SELECT approved, cost FROM credit_authorize(wallet => 'acme', action => 'chat', quantity => 4, run => :r7sub);
SELECT run_id, status, budget, spent, spent_tree, returned FROM credit_run_close(:r7);
SELECT credit_balance('acme') AS acme_balance;
SELECT * FROM credit_verify();

-- cost, vendor cost and margin per run: one query (run_usage); usage_daily counts the calls of
-- runs for the wallet that opened them
SELECT run_id, wallet, action, calls, quantity, credits FROM credit_ledger.run_usage WHERE run_id IN (:run_id, :sub_id, :leaf_id) ORDER BY run_id;
SELECT wallet, action, calls, credits FROM credit_ledger.usage_daily WHERE wallet = 'acme';
SELECT count(*) AS run_wallets_in_wallet_balances FROM credit_ledger.wallet_balances WHERE wallet LIKE '~run.%';

-- errors: each with its SQLSTATE, and nothing changed
\set VERBOSITY sqlstate
SELECT count(*) AS runs_before FROM credit_ledger.runs;
SELECT * FROM credit_run_open(wallet => 'nobody', budget => 10);
SELECT * FROM credit_run_open(wallet => 'acme', budget => 0);
SELECT * FROM credit_run_open(wallet => 'acme', budget => -5);
SELECT * FROM credit_run_open(wallet => 'acme', budget => NULL);
SELECT * FROM credit_run_open(wallet => 'acme', budget => 0.000000001);
SELECT * FROM credit_run_open(wallet => 'acme', budget => 10, asset => 'gold');
SELECT * FROM credit_run_open(wallet => 'acme', budget => 10, ttl => interval '0');
SELECT * FROM credit_run_open(wallet => 'acme', budget => 10, parent_run => 999999);
SELECT * FROM credit_run_open(wallet => 'team', budget => 10, parent_run => :run_id);
SELECT * FROM credit_run_open(wallet => '~run.' || :run_id, budget => 10);
SELECT * FROM credit_authorize(wallet => 'acme', action => 'chat', run => 999999);
SELECT * FROM credit_authorize(wallet => 'team', action => 'chat', run => :run_id);
SELECT * FROM credit_run_open(wallet => 'acme', budget => 10, max_calls => 0);
SELECT * FROM credit_run_open(wallet => 'acme', budget => 10, max_cost_per_call => 0);
SELECT credit_wallet_lanes(wallet => '~run.' || :run_id, lanes => 2);
SELECT * FROM credit_run_open(wallet => 'acme', budget => 10, lanes => 0);
SELECT * FROM credit_run_open(wallet => 'acme', budget => 10, lanes => 65);
SELECT * FROM credit_run_close(NULL);
SELECT * FROM credit_run_close(999999);
SELECT * FROM credit_authorize(wallet => 'acme', action => 'chat', run => (SELECT id FROM credit_ledger.runs WHERE status = 'declined' AND wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'acme') ORDER BY id LIMIT 1));
\set VERBOSITY default
SELECT count(*) AS runs_after FROM credit_ledger.runs;
SELECT run_id, status FROM credit_run(999999);
SELECT * FROM credit_verify();
