-- credit_verify() finds tampering: each change below bypasses the API (and, for the journal,
-- the append-only trigger, with session_replication_role = replica) inside a transaction that
-- rolls back. A healthy ledger verifies empty.
CREATE EXTENSION credit_ledger;
SELECT action FROM credit_rate_set('call', 1);
SELECT wallet FROM credit_wallet_create('a');
SELECT wallet FROM credit_wallet_create('b');
SELECT amount FROM credit_grant('a', 10);
SELECT amount FROM credit_grant('b', 10);
SELECT approved FROM credit_authorize('a', 'call', 3);
SELECT count(*) AS problems FROM credit_verify();
-- a grant's cached remaining no longer matches its journal
BEGIN;
UPDATE credit_ledger.grants SET remaining = remaining + 1, amount = amount + 1
 WHERE wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'a');
SELECT check_name FROM credit_verify() ORDER BY 1;
ROLLBACK;
-- a journal entry of a's grant moved to wallet b: balances and reports find a grant's entries
-- through its wallet (its tenant left as it was: the entry is then also in another tenant than
-- its wallet's; moved to b's tenant too, the checks that join on the tenant (0.13.0) would not
-- find its grant and authorization there, and report that instead)
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE credit_ledger.journal j SET wallet_id = w.id
  FROM credit_ledger.wallets w WHERE w.wallet = 'b' AND j.kind = 'debit';
SELECT check_name, detail LIKE 'wallet_id % but grant % belongs to wallet %' AS explained
  FROM credit_verify() ORDER BY 1;
ROLLBACK;
-- tenants (0.12.0): a row placed in another tenant than its wallet's, a member in another than
-- its pool's (since 0.13.0 the checks join a wallet's rows on the tenant: grants moved away also
-- look missing to its journal entries)
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE credit_ledger.grants SET tenant = 'elsewhere'
 WHERE wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'a');
SELECT check_name, subject, detail FROM credit_verify() ORDER BY 1, 2;
ROLLBACK;
SELECT count(*) AS problems FROM credit_verify();
-- grant_status and credit_balance(as_of) read a grant's entries through its wallet
SELECT wallet, amount, remaining, spent, status FROM credit_ledger.grant_status ORDER BY wallet;
SELECT credit_balance('a', as_of => now()) AS a_now;
