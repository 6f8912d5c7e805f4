-- Wallet locks (src/locks.rs): a transaction-level lock in the advisory lock space, keyed by the
-- wallet key (objsubid 17228), held until the transaction ends, and no write to the wallet row.
CREATE EXTENSION credit_ledger;
SELECT action FROM credit_rate_set('call', 1);
SELECT wallet FROM credit_wallet_create('team');
SELECT wallet FROM credit_wallet_create('team.m', parent => 'team');
SELECT amount FROM credit_grant('team.m', 5);
SELECT amount FROM credit_grant('team', 100);
CREATE VIEW my_wallet_locks AS
SELECT locktype, objsubid, mode, granted FROM pg_locks
 WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND objsubid = 17228;
CREATE TEMP TABLE wallets_before AS SELECT wallet, xmax::text AS locker FROM credit_ledger.wallets;
-- a debit the member's own grants cover: the member's lock only
BEGIN;
SELECT approved, balance FROM credit_authorize('team.m', 'call', 2);
SELECT * FROM my_wallet_locks;
-- the wallet rows were not locked (a row lock would have set xmax to this transaction)
SELECT w.wallet, w.xmax::text = b.locker AS row_untouched
  FROM credit_ledger.wallets w JOIN wallets_before b USING (wallet) ORDER BY w.wallet;
COMMIT;
-- released at commit
SELECT count(*) AS locks_after_commit FROM my_wallet_locks;
-- a debit that reaches the pool: the member's lock, then the team's
BEGIN;
SELECT approved, balance FROM credit_authorize('team.m', 'call', 10);
SELECT * FROM my_wallet_locks;
ROLLBACK;
SELECT count(*) AS locks_after_rollback FROM my_wallet_locks;
-- a lock taken in a subtransaction that rolls back is released with it
BEGIN;
SAVEPOINT s;
SELECT approved FROM credit_authorize('team', 'call', 1);
SELECT count(*) AS locks_in_savepoint FROM my_wallet_locks;
ROLLBACK TO SAVEPOINT s;
SELECT count(*) AS locks_after_rollback_to FROM my_wallet_locks;
COMMIT;
-- an application's own advisory locks live elsewhere: pg_advisory_xact_lock(bigint) is objsubid 1
BEGIN;
SELECT pg_advisory_xact_lock(17228);
SELECT approved FROM credit_authorize('team', 'call', 1);
SELECT objsubid, count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'
 GROUP BY objsubid ORDER BY objsubid;
COMMIT;
SELECT count(*) AS problems FROM credit_verify();
DROP VIEW my_wallet_locks;
