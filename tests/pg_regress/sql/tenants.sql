-- tenants.sql: every ledger row names its tenant (issue 20, 0.12.0), the key a Citus cluster
-- distributes the ledger by. A wallet without a pool is its own tenant, a pool's members are in
-- the pool's, a run's wallet is in its opener's, and every row of a wallet (grants, lanes and
-- their slices, authorizations, journal entries, refunds, runs, allowances, events, operations,
-- counters) carries its wallet's tenant. A wallet that joins a pool of another tenant moves
-- there with all its rows. credit_verify() checks all of it (check `tenant`).
CREATE EXTENSION credit_ledger;
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT count(*) FROM credit_rate_set(action => 'chat', credits => 10);
-- one wallet's rows by table and tenant
CREATE FUNCTION placed(w text) RETURNS TABLE (tbl text, tenant text, n bigint) LANGUAGE sql AS $$
    WITH x AS (SELECT id FROM credit_ledger.wallets WHERE wallet = w OR run_of = (SELECT id FROM credit_ledger.wallets WHERE wallet = w))
    SELECT t, r.tenant, count(*) FROM (
        SELECT 'grants' AS t, tenant FROM credit_ledger.grants WHERE wallet_id IN (SELECT id FROM x)
        UNION ALL SELECT 'journal', tenant FROM credit_ledger.journal WHERE wallet_id IN (SELECT id FROM x)
        UNION ALL SELECT 'authorizations', tenant FROM credit_ledger.authorizations WHERE wallet_id IN (SELECT id FROM x)
        UNION ALL SELECT 'refunds', tenant FROM credit_ledger.refunds WHERE wallet_id IN (SELECT id FROM x)
        UNION ALL SELECT 'runs', tenant FROM credit_ledger.runs WHERE wallet_id IN (SELECT id FROM x)
        UNION ALL SELECT 'allowances', tenant FROM credit_ledger.allowances WHERE wallet_id IN (SELECT id FROM x)
        UNION ALL SELECT 'events', tenant FROM credit_ledger.events WHERE wallet_id IN (SELECT id FROM x)
        UNION ALL SELECT 'operations', tenant FROM credit_ledger.operations WHERE wallet_id IN (SELECT id FROM x)
        UNION ALL SELECT 'wallet_assets', tenant FROM credit_ledger.wallet_assets WHERE wallet_id IN (SELECT id FROM x)
        UNION ALL SELECT 'lanes', tenant FROM credit_ledger.lanes WHERE wallet_id IN (SELECT id FROM x)
        UNION ALL SELECT 'wallet_overage', tenant FROM credit_ledger.wallet_overage WHERE wallet_id IN (SELECT id FROM x)
    ) r(t, tenant) GROUP BY 1, 2 ORDER BY 1, 2
$$;

-- ---------------------------------------------------------------- who is in which tenant
SELECT wallet FROM credit_wallet_create('acme');
SELECT wallet FROM credit_wallet_create('acme.ann', parent => 'acme', spend_cap => 500);
SELECT wallet FROM credit_wallet_create('solo', low_balance_threshold => 50);
SELECT wallet, tenant FROM credit_ledger.wallets ORDER BY id;

-- ---------------------------------------------------------------- a member's spend and its pool draw
SELECT amount FROM credit_grant(wallet => 'acme', amount => 1000);
SELECT amount FROM credit_grant(wallet => 'acme.ann', amount => 5);
SELECT approved, cost FROM credit_authorize(wallet => 'acme.ann', action => 'chat', quantity => 2);
SELECT status FROM credit_hold(wallet => 'acme.ann', action => 'chat', idempotency_key => 'h1');
SELECT status FROM credit_capture(authorization_id => (SELECT authorization_id FROM credit_hold(wallet => 'acme.ann', action => 'chat', idempotency_key => 'h1')), quantity => 0.5);
SELECT amount FROM credit_refund(authorization_id => (SELECT min(id) FROM credit_ledger.authorizations), amount => 3);
SELECT * FROM placed('acme');
SELECT * FROM placed('acme.ann');
SELECT count(*) AS problems FROM credit_verify();

-- ---------------------------------------------------------------- a call that names its tenant
-- (what a Citus cluster routes by): its statements name it too; the wrong one finds no wallet
SELECT approved, cost FROM credit_authorize(wallet => 'acme.ann', action => 'chat', tenant => 'acme');
SELECT approved, cost FROM credit_authorize(wallet => 'acme', action => 'chat', tenant => 'acme', idempotency_key => 't1');
SELECT approved, cost FROM credit_authorize(wallet => 'acme', action => 'chat', tenant => 'acme', idempotency_key => 't1');
SELECT status, cost FROM credit_hold(wallet => 'acme.ann', action => 'chat', tenant => 'acme', idempotency_key => 'th');
SELECT status, cost FROM credit_capture((SELECT authorization_id FROM credit_hold(wallet => 'acme.ann', action => 'chat', tenant => 'acme', idempotency_key => 'th')), quantity => 0.5);
SELECT approved FROM credit_authorize(wallet => 'acme.ann', action => 'chat', tenant => 'solo');
SELECT approved FROM credit_hold(wallet => 'solo', action => 'chat', tenant => 'acme');
SELECT approved FROM credit_authorize(wallet => 'acme.ann', action => 'chat', tenant => '');
SELECT * FROM placed('acme.ann');
SELECT count(*) AS problems FROM credit_verify();

-- ---------------------------------------------------------------- a run's wallet: its opener's tenant
SELECT status FROM credit_run_open(wallet => 'acme.ann', budget => 40);
SELECT approved FROM credit_authorize(wallet => 'acme.ann', action => 'chat', run => (SELECT max(id) FROM credit_ledger.runs));
SELECT w.wallet LIKE '~run.%' AS run_wallet, w.tenant FROM credit_ledger.wallets w WHERE w.run_of IS NOT NULL;
SELECT status FROM credit_run_close((SELECT max(id) FROM credit_ledger.runs));
-- the run functions name the tenant too (0.14.0); the wrong one finds no wallet, or no run
SELECT status, budget FROM credit_run_open(wallet => 'acme.ann', budget => 20, tenant => 'acme');
SELECT approved FROM credit_authorize(wallet => 'acme.ann', action => 'chat', run => (SELECT max(id) FROM credit_ledger.runs), tenant => 'acme');
SELECT status, spent FROM credit_run((SELECT max(id) FROM credit_ledger.runs), tenant => 'acme');
SELECT count(*) AS other_tenant FROM credit_run((SELECT max(id) FROM credit_ledger.runs), tenant => 'solo');
SELECT count(*) AS other_tenant FROM credit_run_tree((SELECT max(id) FROM credit_ledger.runs), tenant => 'solo');
SELECT status FROM credit_run_close((SELECT max(id) FROM credit_ledger.runs), tenant => 'solo');
SELECT status FROM credit_run_open(wallet => 'acme.ann', budget => 20, tenant => 'solo');
SELECT status, spent, returned FROM credit_run_close((SELECT max(id) FROM credit_ledger.runs), tenant => 'acme');
SELECT count(*) AS problems FROM credit_verify();

-- ---------------------------------------------------------------- a wallet with history joins a pool
-- solo: grants, a spend, an open hold, an alert event, an allowance, an overage setting, lanes
SELECT amount FROM credit_grant(wallet => 'solo', amount => 100);
SELECT credit_wallet_lanes('solo', 2) AS lanes;
SELECT approved FROM credit_authorize(wallet => 'solo', action => 'chat', quantity => 6);
SELECT status FROM credit_hold(wallet => 'solo', action => 'chat', idempotency_key => 'open');
SELECT count(*) FROM credit_allowance_set(wallet => 'solo', amount => 10, period => '1 month');
SELECT count(*) FROM credit_wallet_overage(wallet => 'solo', upgrade_at => '{1000}');
SELECT * FROM placed('solo');
-- joining a pool of another tenant moves it with every row of its own (the journal's guard
-- lets the tenant label through, nothing else)
SELECT parent FROM credit_wallet_update('solo', parent => 'acme');
SELECT tenant FROM credit_ledger.wallets WHERE wallet = 'solo';
SELECT * FROM placed('solo');
SELECT count(*) AS problems FROM credit_verify();
-- the hold opened before the move is captured after it; new calls are in the pool's tenant
SELECT status, cost FROM credit_capture(authorization_id => (SELECT authorization_id FROM credit_hold(wallet => 'solo', action => 'chat', idempotency_key => 'open')));
SELECT approved FROM credit_authorize(wallet => 'solo', action => 'chat');
SELECT * FROM placed('solo');
SELECT count(*) AS problems FROM credit_verify();
-- leaving the pool keeps the tenant (a tenant is where rows are placed, not a setting)
SELECT parent FROM credit_wallet_update('solo', clear => '{parent}');
SELECT tenant FROM credit_ledger.wallets WHERE wallet = 'solo';
SELECT count(*) AS problems FROM credit_verify();
-- the journal stays append-only for everything it records
UPDATE credit_ledger.journal SET amount = amount WHERE id = (SELECT min(id) FROM credit_ledger.journal);
UPDATE credit_ledger.journal SET tenant = 'x', note = 'y' WHERE id = (SELECT min(id) FROM credit_ledger.journal);

-- ---------------------------------------------------------------- across tenants: each side in its own
SELECT wallet FROM credit_wallet_create('other');
SELECT done FROM credit_transfer(from_wallet => 'acme', to_wallet => 'other', amount => 25);
SELECT * FROM placed('other');
SELECT count(*) AS problems FROM credit_verify();

-- ---------------------------------------------------------------- the check itself
BEGIN;
SET LOCAL session_replication_role = replica;
UPDATE credit_ledger.wallets SET tenant = 'elsewhere' WHERE wallet = 'acme.ann';
SELECT check_name, subject, detail FROM credit_verify() WHERE subject LIKE 'wallet acme.ann' ORDER BY 1, 2;
SELECT count(*) > 5 AS rows_flagged FROM credit_verify() WHERE check_name = 'tenant';
ROLLBACK;
SELECT count(*) AS problems FROM credit_verify();
