-- credit_ledger 0.14.0 -> 0.15.0.
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Fewer indexes on the tables every debit writes (issue 17: the common case against 0.2.0).
-- Every execution of a debit's INSERT into authorizations and UPDATE of grants opens every index
-- of the table and prepares each partial index's predicate, whether or not a row goes into it.
--
-- grants_source: no statement looks a grant up by source_id (a run's grants reach their sources
-- through the primary key; credit_verify() reads them in a semi-join).
DROP INDEX credit_ledger.grants_source;

-- authorizations_declined (credit_health, credit_metrics) and authorizations_degraded (the
-- degrade reports) become one partial index: a query on either predicate implies this one.
CREATE INDEX authorizations_declined_degraded ON credit_ledger.authorizations (created_at)
    WHERE status = 'declined' OR degraded;
DROP INDEX credit_ledger.authorizations_declined;
DROP INDEX credit_ledger.authorizations_degraded;
