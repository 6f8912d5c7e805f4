-- credit_ledger on Citus: distributing the ledger over a cluster (issue 20; docs/design.md
-- "Scale-out on Citus"). Nothing here runs without Citus.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- credit_distribute(): run once on the coordinator of a Citus cluster, after CREATE EXTENSION
-- citus and credit_ledger (and with the workers added). The catalogue (assets, rate cards,
-- rates) and wallet_keys become reference tables (on every node), the fifteen wallet-keyed
-- tables are distributed by tenant in one colocation group (a pool and its members, and all
-- their rows, on one shard), their rows moved to the workers; the spending functions that take
-- a tenant (credit_authorize, credit_hold, since 0.13.0 credit_capture, credit_release,
-- credit_refund, credit_quote, credit_balance, since 0.14.0 credit_run_close, credit_run,
-- credit_run_tree) are registered so that a call that names its tenant is delegated
-- to that tenant's worker, also inside the application's transaction. Returns one row per
-- step. A second call only registers what is not yet (a ledger distributed by an older
-- version: the functions a later one added), else returns 'already distributed'.
CREATE FUNCTION @extschema@.credit_distribute()
RETURNS TABLE (step text, object text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning AS $$
DECLARE
    fk record;
    t text;
    fks jsonb;
    f text;
    delegated text[] := ARRAY[
        '@extschema@.credit_authorize(text, text, numeric, text, text, jsonb, bigint, boolean, text)',
        '@extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval, bigint, boolean, text)',
        '@extschema@.credit_capture(bigint, numeric, text, jsonb, text)',
        '@extschema@.credit_release(bigint, text, jsonb, text)',
        '@extschema@.credit_refund(bigint, numeric, text, text, jsonb, text)',
        '@extschema@.credit_quote(text, text, numeric, text, boolean, text)',
        '@extschema@.credit_balance(text, text, timestamptz, text)',
        -- since 0.14.0: the run functions but credit_run_open (it writes the run wallet's key
        -- to wallet_keys, a reference table on every node, which no delegated call may)
        '@extschema@.credit_run_close(bigint, text)',
        '@extschema@.credit_run(bigint, text)',
        '@extschema@.credit_run_tree(bigint, text)'];
    n int := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'credit_distribute() needs Citus' USING ERRCODE = '55000',
            HINT = 'CREATE EXTENSION citus on the coordinator, add the workers, then call it';
    END IF;
    IF (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g) <> 0 THEN
        RAISE EXCEPTION 'credit_distribute() runs on the coordinator' USING ERRCODE = '55000';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                WHERE p.logicalrelid = 'credit_ledger.wallets'::pg_catalog.regclass) THEN
        FOREACH f IN ARRAY delegated LOOP
            CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o
                                   WHERE o.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                                     AND o.objid = f::pg_catalog.regprocedure
                                     AND o.distribution_argument_index IS NOT NULL);
            PERFORM create_distributed_function(f::pg_catalog.regprocedure, 'tenant',
                                                colocate_with => 'credit_ledger.wallets', force_delegation => true);
            step := 'delegated by tenant'; object := f; RETURN NEXT;
            n := n + 1;
        END LOOP;
        IF n = 0 THEN
            step := 'already distributed'; object := 'credit_ledger'; RETURN NEXT;
        END IF;
        RETURN;
    END IF;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);   -- the journal's guard
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    -- the foreign keys to the catalogue, dropped while their tables change kind (Citus would
    -- otherwise convert every table of the foreign-key graph to a local table first), also on
    -- the workers' copies of the tables, which become the shells
    SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'rel', c.conrelid::pg_catalog.regclass::text, 'name', c.conname,
               'def', pg_catalog.pg_get_constraintdef(c.oid)))
      INTO fks
      FROM pg_catalog.pg_constraint c JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
     WHERE n.nspname = 'credit_ledger' AND c.contype = 'f'
       AND c.confrelid IN ('credit_ledger.assets'::pg_catalog.regclass, 'credit_ledger.rate_cards'::pg_catalog.regclass);
    FOR fk IN SELECT * FROM pg_catalog.jsonb_to_recordset(coalesce(fks, '[]')) AS x(rel text, name text, def text) LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', fk.rel, fk.name);
        PERFORM run_command_on_workers(pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', fk.rel, fk.name));
    END LOOP;
    FOREACH t IN ARRAY ARRAY['assets', 'rate_cards', 'rates', 'wallet_keys'] LOOP
        PERFORM create_reference_table(('credit_ledger.' || t)::pg_catalog.regclass);
        step := 'reference table'; object := 'credit_ledger.' || t; RETURN NEXT;
    END LOOP;
    PERFORM create_distributed_table('credit_ledger.wallets'::pg_catalog.regclass, 'tenant');
    step := 'distributed by tenant'; object := 'credit_ledger.wallets'; RETURN NEXT;
    FOREACH t IN ARRAY ARRAY['wallet_assets', 'grants', 'lanes', 'member_rooms', 'authorizations', 'journal',
                             'refunds', 'runs', 'allowances', 'events', 'operations', 'wallet_overage',
                             'tier_usage', 'fair_use_usage'] LOOP
        PERFORM create_distributed_table(('credit_ledger.' || t)::pg_catalog.regclass, 'tenant',
                                         colocate_with => 'credit_ledger.wallets');
        step := 'distributed by tenant'; object := 'credit_ledger.' || t; RETURN NEXT;
    END LOOP;
    FOR fk IN SELECT * FROM pg_catalog.jsonb_to_recordset(coalesce(fks, '[]')) AS x(rel text, name text, def text) LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.rel, fk.name, fk.def);
    END LOOP;
    -- ids: each worker draws from a range of its own (its group << 48, as Citus gives a
    -- distributed table's sequence on a worker), not from its copy of the extension's sequences,
    -- which start where the moved rows' ids did
    PERFORM run_command_on_workers($c$
        SELECT count(pg_catalog.setval(s.seqrelid::pg_catalog.regclass,
                                       (SELECT g.groupid::bigint << 48 FROM pg_catalog.pg_dist_local_group g) + 1, false))
          FROM pg_catalog.pg_sequence s
          JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'credit_ledger' AND s.seqtypid = 'pg_catalog.int8'::pg_catalog.regtype
    $c$);
    step := 'worker id ranges'; object := 'credit_ledger sequences'; RETURN NEXT;
    FOREACH f IN ARRAY delegated LOOP
        PERFORM create_distributed_function(f::pg_catalog.regprocedure, 'tenant',
                                            colocate_with => 'credit_ledger.wallets', force_delegation => true);
        step := 'delegated by tenant'; object := f; RETURN NEXT;
    END LOOP;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'off', true);
    PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'parallel', true);
END $$;
REVOKE ALL ON FUNCTION @extschema@.credit_distribute() FROM PUBLIC;

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
