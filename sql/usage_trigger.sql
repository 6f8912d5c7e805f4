-- credit_usage_trigger(): bill rows inserted into an app's own usage table.
--
--   CREATE TRIGGER bill BEFORE INSERT ON llm_calls FOR EACH ROW EXECUTE FUNCTION
--     credit_usage_trigger('wallet=customer_id', 'action=kind', 'quantity=tokens', 'variant=model',
--                          'idempotency_key=request_id', 'authorization_id=auth_id');
--
-- Arguments are name=column pairs in any order: wallet (required), action or action_value
-- (a literal), quantity (default 1), variant, variant_value, idempotency_key, authorization_id
-- (a bigint column the authorization id is written into). Each row is authorized with
-- credit_authorize(); a declined row raises SQLSTATE 53400 (configuration_limit_exceeded)
-- naming the wallet and the reason, so the INSERT (and the app's transaction) fails. Works for
-- INSERT, INSERT ... SELECT and COPY. Misconfigured arguments (unknown, repeated, a column and
-- a literal for the same thing, an authorization_id column that is not bigint) raise 22023,
-- an unknown column 42703, at the first insert.
--
-- Declines (since 0.6.0): on_decline=error (the default) fails the statement as above;
-- on_decline=mark keeps the row and records the decline in it: decline_reason=<column> (a text
-- column, required with mark) gets the reason (insufficient_credits, spend_cap_reached, ...) and
-- the authorization_id column, if mapped, the declined authorization's id. A pipeline that
-- must not lose rows (a batch load, COPY) then finds the unbilled ones with
-- WHERE <decline_reason column> IS NOT NULL. A billed row gets NULL in that column.
--
-- Degrade (since 0.7.0): degrade=true authorizes with credit_authorize(..., degrade => true): a
-- row whose variant the wallet cannot afford is billed as the first affordable fallback of its
-- rate entry, and that variant is written back into the row's variant column (when variant is a
-- column, not variant_value), so the app's table says which model the call may use. In a BEFORE
-- trigger the row is billed before the app's statement finishes: an app that picks the model
-- from the row must read it back (INSERT ... RETURNING <variant column>).
--
-- Restore safety: a row that already carries an authorization id (mapped authorization_id
-- column not NULL, as in a pg_dump restore) is not billed again; with an idempotency_key
-- column a re-inserted row returns the first authorization.
-- Privileges (issue 16): the trigger runs as the role that inserts the row (SECURITY INVOKER).
-- Reading the row (to_jsonb(NEW): casts to json of user types; writing the authorization id
-- back) evaluates code the table's owner can define, so it must never run with the rights of
-- the extension's owner. It hands plain text and numeric values to credit_authorize(), the
-- SECURITY DEFINER function, which evaluates nothing a user can define. The inserting role
-- therefore needs EXECUTE on credit_authorize (bundle 'pipeline', credit_ledger_grant), and
-- the table's owner EXECUTE on this function to create the trigger.
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) before CREATE EXTENSION must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

CREATE FUNCTION @extschema@.credit_usage_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    arg text;
    k text;
    v text;
    cfg jsonb := '{}'::jsonb;
    rec jsonb;
    w text; act text; qty numeric; var text; idem text;
    a @extschema@.credit_authorization;
BEGIN
    IF TG_OP <> 'INSERT' OR TG_LEVEL <> 'ROW' OR TG_WHEN <> 'BEFORE' THEN
        RAISE EXCEPTION 'credit_usage_trigger must be a BEFORE INSERT FOR EACH ROW trigger'
            USING ERRCODE = '22023';
    END IF;
    FOREACH arg IN ARRAY coalesce(TG_ARGV, '{}'::text[]) LOOP
        k := btrim(split_part(arg, '=', 1));
        v := btrim(substr(arg, length(split_part(arg, '=', 1)) + 2));
        IF position('=' IN arg) = 0 OR v = '' THEN
            RAISE EXCEPTION 'credit_usage_trigger argument "%" is not name=column', arg
                USING ERRCODE = '22023', HINT = 'for example ''wallet=customer_id''';
        END IF;
        IF k NOT IN ('wallet', 'action', 'action_value', 'quantity', 'variant', 'variant_value',
                     'idempotency_key', 'authorization_id', 'on_decline', 'decline_reason', 'degrade') THEN
            RAISE EXCEPTION 'credit_usage_trigger argument "%" is unknown', k USING ERRCODE = '22023',
                HINT = 'use wallet, action, action_value, quantity, variant, variant_value, idempotency_key, authorization_id, on_decline, decline_reason, degrade';
        END IF;
        IF k = 'on_decline' AND v NOT IN ('error', 'mark') THEN
            RAISE EXCEPTION 'credit_usage_trigger argument on_decline must be error or mark, not "%"', v
                USING ERRCODE = '22023';
        END IF;
        IF k = 'degrade' AND v NOT IN ('true', 'false') THEN
            RAISE EXCEPTION 'credit_usage_trigger argument degrade must be true or false, not "%"', v
                USING ERRCODE = '22023';
        END IF;
        IF cfg ? k THEN
            RAISE EXCEPTION 'credit_usage_trigger argument "%" is given twice', k USING ERRCODE = '22023';
        END IF;
        cfg := cfg || jsonb_build_object(k, v);
    END LOOP;
    IF cfg ? 'action' AND cfg ? 'action_value' OR cfg ? 'variant' AND cfg ? 'variant_value' THEN
        RAISE EXCEPTION 'credit_usage_trigger on "%" takes a column or a literal, not both', TG_TABLE_NAME
            USING ERRCODE = '22023', HINT = 'give either action=<column> or action_value=<literal> (and the same for variant)';
    END IF;
    IF NOT cfg ? 'wallet' THEN
        RAISE EXCEPTION 'credit_usage_trigger on "%" needs a wallet=<column> argument', TG_TABLE_NAME
            USING ERRCODE = '22023';
    END IF;
    IF coalesce(cfg ->> 'on_decline' = 'mark', false) <> (cfg ? 'decline_reason') THEN
        RAISE EXCEPTION 'credit_usage_trigger on "%": on_decline=mark and decline_reason=<column> go together', TG_TABLE_NAME
            USING ERRCODE = '22023', HINT = 'for example ''on_decline=mark'', ''decline_reason=billing_error''';
    END IF;
    IF NOT (cfg ? 'action' OR cfg ? 'action_value') THEN
        RAISE EXCEPTION 'credit_usage_trigger on "%" needs action=<column> or action_value=<literal>', TG_TABLE_NAME
            USING ERRCODE = '22023';
    END IF;
    rec := to_jsonb(NEW);
    FOR k IN SELECT key FROM jsonb_each_text(cfg) WHERE key NOT IN ('action_value', 'variant_value', 'on_decline', 'degrade') LOOP
        IF NOT rec ? (cfg ->> k) THEN
            RAISE EXCEPTION 'column "%" named by credit_usage_trigger argument % does not exist in "%"',
                cfg ->> k, k, TG_TABLE_NAME USING ERRCODE = '42703';
        END IF;
    END LOOP;
    -- the authorization id is written into a bigint column (any other type either fails on
    -- some id or, for a column that is never NULL, would make every row look already billed)
    IF cfg ? 'authorization_id' AND (SELECT t.atttypid FROM pg_attribute t
                                      WHERE t.attrelid = TG_RELID AND t.attname = cfg ->> 'authorization_id'
                                        AND t.attnum > 0 AND NOT t.attisdropped) <> 'int8'::regtype THEN
        RAISE EXCEPTION 'column "%" named by credit_usage_trigger argument authorization_id must be bigint, not %',
            cfg ->> 'authorization_id',
            (SELECT format_type(t.atttypid, t.atttypmod) FROM pg_attribute t
              WHERE t.attrelid = TG_RELID AND t.attname = cfg ->> 'authorization_id' AND t.attnum > 0 AND NOT t.attisdropped)
            USING ERRCODE = '22023';
    END IF;
    IF cfg ? 'authorization_id' AND rec ->> (cfg ->> 'authorization_id') IS NOT NULL THEN
        -- already billed (a pg_dump restore, or the app authorized itself): never bill again.
        -- Not validated against credit_ledger.authorizations: a restore may load this table first.
        RETURN NEW;
    END IF;
    w := rec ->> (cfg ->> 'wallet');
    act := coalesce(cfg ->> 'action_value', rec ->> (cfg ->> 'action'));
    var := coalesce(cfg ->> 'variant_value', rec ->> (cfg ->> 'variant'));
    idem := rec ->> (cfg ->> 'idempotency_key');
    BEGIN
        qty := CASE WHEN cfg ? 'quantity' THEN (rec ->> (cfg ->> 'quantity'))::numeric ELSE 1 END;
    EXCEPTION WHEN invalid_text_representation THEN
        RAISE EXCEPTION 'column "%" does not hold a number', cfg ->> 'quantity' USING ERRCODE = '22023';
    END;
    a := @extschema@.credit_authorize(wallet => w, action => act, quantity => qty, variant => var,
                                       idempotency_key => idem,
                                       metadata => jsonb_build_object('table', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME),
                                       degrade => coalesce(cfg ->> 'degrade' = 'true', false));
    IF NOT a.approved AND cfg ->> 'on_decline' = 'mark' THEN
        -- keep the row, unbilled, with the reason (and the declined authorization's id)
        NEW := jsonb_populate_record(NEW, jsonb_build_object(cfg ->> 'decline_reason', a.reason)
                                          || CASE WHEN cfg ? 'authorization_id'
                                                  THEN jsonb_build_object(cfg ->> 'authorization_id', a.authorization_id)
                                                  ELSE '{}'::jsonb END);
        RETURN NEW;
    END IF;
    IF NOT a.approved THEN
        RAISE EXCEPTION 'wallet "%" cannot pay for "%": %', w, act, a.reason
            USING ERRCODE = '53400',
                  DETAIL = format('authorization %s declined; balance %s', a.authorization_id, a.balance),
                  HINT = 'grant credits to the wallet or raise its limits';
    END IF;
    IF cfg ? 'authorization_id' THEN
        NEW := jsonb_populate_record(NEW, jsonb_build_object(cfg ->> 'authorization_id', a.authorization_id));
    END IF;
    IF cfg ? 'variant' AND a.variant IS DISTINCT FROM var THEN
        -- degraded: the row names the variant that was authorized
        NEW := jsonb_populate_record(NEW, jsonb_build_object(cfg ->> 'variant', a.variant));
    END IF;
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION @extschema@.credit_usage_trigger() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_usage_trigger() IS
    'BEFORE INSERT row trigger that authorizes each usage row; arguments name=column (wallet, action|action_value, quantity, variant, idempotency_key, authorization_id, on_decline, decline_reason, degrade)';

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
