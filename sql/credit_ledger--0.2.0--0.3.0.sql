-- credit_ledger 0.2.0 -> 0.3.0 (frozen once released).
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Issue 16: the usage trigger runs as the inserting role, never as the extension's owner
-- (a billed table's owner could define a cast to json that ran with the owner's rights).
-- The body is unchanged; inserting roles now need EXECUTE on credit_authorize (bundle 'pipeline').
ALTER FUNCTION @extschema@.credit_usage_trigger() SECURITY INVOKER;
ALTER FUNCTION @extschema@.credit_usage_trigger() SET search_path = pg_catalog, pg_temp;


SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
