-- Objects an unprivileged role plants to capture a privileged function's name look-ups.
-- Run by the attacker with @S@ replaced by the schema (public, or pg_temp) and @FULL@ by
-- true (generic operator, function and aggregate overloads too) or false.
-- Every planted object calls public.cl_attack_mark(<what>) when it runs, which raises the
-- notice 'CL_ATTACK_FIRED user=<current_user> obj=<what>' and logs a row into
-- public.cl_attack_log; a firing with a current_user other than the attacker is a hijack.

DO $plant$
DECLARE
    s text := '@S@';
    full_set boolean := @FULL@;
    types text[] := ARRAY['text', 'numeric', 'bigint', 'integer', 'smallint', 'boolean', 'jsonb',
                          'timestamptz', 'timestamp', 'date', 'interval', 'name', '"char"', 'oid',
                          'double precision', 'text[]', 'bigint[]', 'numeric[]', 'jsonb[]'];
    ops text[] := ARRAY['=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/', '||', '~~', '!~~',
                        '?', '->>', '->', '@>', '<@', '#>>', '&&', '%'];
    poly text[] := ARRAY['numeric', 'text', 'bigint', 'integer', 'boolean', 'jsonb', 'timestamptz',
                         'public.atk_usage'];
    polyarr text[] := ARRAY['text[]', 'bigint[]', 'numeric[]', 'integer[]'];
    -- functions and aggregates the extension's SQL (and its Rust statements) call unqualified
    names text[] := ARRAY['unnest', 'sum', 'count', 'bool_or', 'bool_and', 'to_char', 'now',
        'jsonb_object_agg', 'max', 'min', 'array_agg', 'string_agg', 'jsonb_agg', 'regexp_replace',
        'trunc', 'round', 'floor', 'ceil', 'abs', 'date_trunc', 'format', 'length', 'split_part',
        'substr', 'btrim', 'jsonb_build_object', 'jsonb_build_array', 'to_jsonb', 'jsonb_populate_record',
        'jsonb_each_text', 'array_length', 'cardinality', 'lower', 'upper', 'concat', 'md5',
        'make_interval', 'clock_timestamp', 'jsonb_typeof', 'to_timestamp', 'date_part', 'extract',
        'row_to_json', 'to_json', 'json_build_object', 'array_to_string', 'string_to_array',
        'quote_ident', 'quote_literal', 'hashtext', 'position', 'strpos', 'left', 'right',
        'array_position', 'array_append', 'jsonb_set', 'jsonb_strip_nulls', 'justify_interval', 'age'];
    tables text[] := ARRAY['assets', 'rate_cards', 'wallets', 'wallet_assets', 'grants', 'rates',
                           'authorizations', 'journal', 'refunds', 'allowances'];
    dom text[] := ARRAY['text', 'jsonb', 'numeric', 'int8', 'int4', 'bool', 'timestamptz', 'interval',
                        'varchar', 'float8', 'credit_wallet', 'credit_grant', 'credit_rate',
                        'credit_authorization'];
    l text; r text; op text; res text; nm text; t text;
    n int := 0; nops int := 0; nfun int := 0; nagg int := 0; nrel int := 0; ndom int := 0; nfail int := 0;
    p record;
    combos text[];
    nc text[];
    cmb text;
    cnt int;
    args text[];
    opts text[];
    k int; i int; j int; total int;
    variadic_any boolean;
    is_agg boolean; is_srf boolean;
    sig text; body text; dt text;
BEGIN
    -- our own statements must not resolve to what we plant
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    -- tables and views named like the ledger's, with markers on read (views) and write (triggers)
    EXECUTE format($f$CREATE OR REPLACE FUNCTION %s.cl_attack_trg() RETURNS trigger LANGUAGE plpgsql
        SET search_path = pg_catalog, pg_temp AS $b$ BEGIN PERFORM public.cl_attack_mark('trigger on ' || TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME); RETURN NULL; END $b$$f$, s);
    FOREACH nm IN ARRAY tables LOOP
        BEGIN
            IF (s = 'public' AND nm = 'wallets') OR (s = 'pg_temp' AND nm = 'grants') THEN
                EXECUTE format('CREATE TABLE %s.%I (id bigint, wallet text, asset text, amount numeric, remaining numeric)', s, nm);
                EXECUTE format('CREATE TRIGGER cl_attack BEFORE INSERT OR UPDATE OR DELETE ON %s.%I FOR EACH ROW EXECUTE FUNCTION %s.cl_attack_trg()', s, nm, s);
                EXECUTE format('CREATE TRIGGER cl_attack_t BEFORE TRUNCATE ON %s.%I FOR EACH STATEMENT EXECUTE FUNCTION %s.cl_attack_trg()', s, nm, s);
            ELSE
                EXECUTE format($f$CREATE VIEW %s.%I AS SELECT 1::bigint AS id, 'x'::text AS wallet, 'x'::text AS asset,
                    0::numeric AS amount, 0::numeric AS remaining WHERE public.cl_attack_mark('view %s.%s')$f$, s, nm, s, nm);
                EXECUTE format('CREATE TRIGGER cl_attack INSTEAD OF INSERT OR UPDATE OR DELETE ON %s.%I FOR EACH ROW EXECUTE FUNCTION %s.cl_attack_trg()', s, nm, s);
            END IF;
            nrel := nrel + 1;
        EXCEPTION WHEN OTHERS THEN nfail := nfail + 1;
        END;
    END LOOP;

    -- types: domains whose CHECK fires the marker
    FOREACH nm IN ARRAY dom LOOP
        -- the extension's own type names in its schema are a conflict, not a capture (see attack.rs)
        CONTINUE WHEN s = 'public' AND nm LIKE 'credit\_%';
        BEGIN
            t := CASE WHEN nm LIKE 'credit\_%' THEN 'text' ELSE nm END;
            EXECUTE format($f$CREATE DOMAIN %s.%I AS pg_catalog.%s CHECK (public.cl_attack_mark('domain %s.%s'))$f$, s, nm, t, s, nm);
            ndom := ndom + 1;
        EXCEPTION WHEN OTHERS THEN nfail := nfail + 1;
        END;
    END LOOP;

    -- same-named functions with the extension's own signatures (only reachable when qualified
    -- or when a schema that is searched first holds them; never in public, where they exist)
    IF s <> 'public' THEN
        FOR p IN SELECT pr.proname, pg_catalog.pg_get_function_identity_arguments(pr.oid) AS a,
                        pg_catalog.pg_get_function_result(pr.oid) AS r
                   FROM pg_catalog.pg_proc pr JOIN pg_catalog.pg_depend d ON d.objid = pr.oid AND d.deptype = 'e'
                   JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
                  WHERE pr.prokind = 'f' LOOP
            BEGIN
                EXECUTE format($f$CREATE FUNCTION %s.%I(%s) RETURNS %s LANGUAGE plpgsql AS $b$ BEGIN PERFORM public.cl_attack_mark('function %s.%s'); RAISE EXCEPTION 'planted'; END $b$$f$,
                               s, p.proname, p.a, p.r, s, p.proname);
                nfun := nfun + 1;
            EXCEPTION WHEN OTHERS THEN nfail := nfail + 1;
            END;
        END LOOP;
    END IF;

    IF NOT full_set THEN
        RAISE NOTICE 'CL_PLANTED schema=% relations=% domains=% functions=% operators=0 aggregates=0 failed=%', s, nrel, ndom, nfun, nfail;
        RETURN;
    END IF;

    -- operators: every (op, left, right) that pg_catalog resolves only through casts or
    -- polymorphism, so an exact-typed operator in a later schema wins
    FOREACH op IN ARRAY ops LOOP
        FOREACH l IN ARRAY types LOOP
            FOREACH r IN ARRAY types LOOP
                IF EXISTS (SELECT 1 FROM pg_catalog.pg_operator o WHERE o.oprname = op AND o.oprleft = l::regtype
                              AND o.oprright = r::regtype AND o.oprnamespace = 'pg_catalog'::regnamespace) THEN
                    CONTINUE;
                END IF;
                BEGIN
                    EXECUTE format('SELECT pg_catalog.format_type(pg_catalog.pg_typeof(NULL::%s OPERATOR(pg_catalog.%s) NULL::%s), NULL)', l, op, r) INTO res;
                EXCEPTION WHEN OTHERS THEN CONTINUE;
                END;
                BEGIN
                    n := n + 1;
                    EXECUTE format($f$CREATE FUNCTION %s.cl_op_%s(a %s, b %s) RETURNS %s LANGUAGE plpgsql
                        SET search_path = pg_catalog, pg_temp AS $b$ BEGIN PERFORM public.cl_attack_mark(%L); RETURN a OPERATOR(pg_catalog.%s) b; END $b$$f$,
                        s, n, l, r, res, format('operator %s.%s(%s, %s)', s, op, l, r), op);
                    EXECUTE format('CREATE OPERATOR %s.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %s.cl_op_%s)', s, op, l, r, s, n);
                    nops := nops + 1;
                EXCEPTION WHEN OTHERS THEN nfail := nfail + 1;
                END;
            END LOOP;
        END LOOP;
    END LOOP;

    -- functions and aggregates: exact-typed overloads of polymorphic or implicitly cast
    -- signatures of the pg_catalog functions the extension calls
    FOREACH nm IN ARRAY names LOOP
        FOR p IN SELECT pr.oid, pr.prokind, pr.proretset, pr.provariadic, pr.pronargs,
                        string_to_array(pr.proargtypes::text, ' ')::oid[] AS argt
                   FROM pg_catalog.pg_proc pr
                  WHERE pr.proname = nm AND pr.pronamespace = 'pg_catalog'::regnamespace
                    AND pr.prokind IN ('f', 'a') AND pr.pronargs BETWEEN 1 AND 4
                    AND pr.prorettype <> 'pg_catalog.record'::regtype LOOP
            variadic_any := p.provariadic = 'pg_catalog."any"'::regtype;
            is_agg := p.prokind = 'a';
            is_srf := p.proretset;
            -- the option lists per argument position; combinations are comma-joined type lists
            combos := ARRAY[''];
            total := p.pronargs + CASE WHEN variadic_any THEN 3 ELSE 0 END;
            FOR i IN 1 .. total LOOP
                IF i <= p.pronargs THEN
                    dt := pg_catalog.format_type(p.argt[i], NULL);
                ELSE
                    dt := '"any"';
                END IF;
                IF dt IN ('"any"', 'anyelement', 'anynonarray', 'anycompatible', 'anycompatiblenonarray') THEN
                    opts := poly;
                ELSIF dt IN ('anyarray', 'anycompatiblearray') THEN
                    opts := polyarr;
                ELSIF dt LIKE 'any%' OR dt IN ('internal', 'cstring', 'record') THEN
                    opts := NULL;
                ELSE
                    SELECT ARRAY[dt] || coalesce(array_agg(DISTINCT pg_catalog.format_type(pc.castsource, NULL))
                                                 FILTER (WHERE pg_catalog.format_type(pc.castsource, NULL) <> dt), '{}')
                      INTO opts
                      FROM pg_catalog.pg_cast pc
                     WHERE pc.casttarget = p.argt[i] AND pc.castcontext = 'i'
                       AND pg_catalog.format_type(pc.castsource, NULL) IN ('text', 'numeric', 'bigint', 'integer', 'smallint', 'name',
                             'timestamp without time zone', 'date', 'character varying', 'boolean', 'jsonb');
                END IF;
                EXIT WHEN opts IS NULL;
                nc := '{}';
                cnt := 0;
                FOREACH cmb IN ARRAY combos LOOP
                    FOREACH t IN ARRAY opts LOOP
                        EXIT WHEN cnt >= 200;
                        nc := nc || CASE WHEN cmb = '' THEN t ELSE cmb || ',' || t END;
                        cnt := cnt + 1;
                    END LOOP;
                END LOOP;
                combos := nc;
                -- variadic "any": plant every arity from the fixed arguments on
                IF variadic_any AND i >= p.pronargs THEN
                    FOREACH cmb IN ARRAY combos LOOP
                        args := string_to_array(cmb, ',');
                        sig := array_to_string(args, ', ');
                        BEGIN
                            -- the result type, without running the function (WHERE false; an aggregate sees no rows)
                            EXECUTE format('SELECT pg_catalog.pg_typeof(s.x)::text FROM (SELECT pg_catalog.%I(%s) AS x WHERE false UNION ALL SELECT NULL) s LIMIT 1', nm,
                                (SELECT string_agg('NULL::' || x, ', ') FROM unnest(args) x)) INTO res;
                            EXECUTE format($f$CREATE FUNCTION %s.%I(%s) RETURNS %s LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $b$
                                BEGIN PERFORM public.cl_attack_mark(%L); RETURN pg_catalog.%I(%s); END $b$$f$,
                                s, nm, sig, res, format('function %s.%s(%s)', s, nm, sig), nm,
                                (SELECT string_agg('$' || o, ', ') FROM generate_series(1, i) o));
                            nfun := nfun + 1;
                        EXCEPTION WHEN OTHERS THEN NULL;
                        END;
                    END LOOP;
                END IF;
            END LOOP;
            CONTINUE WHEN opts IS NULL OR variadic_any;
            FOREACH cmb IN ARRAY combos LOOP
                args := string_to_array(cmb, ',');
                sig := array_to_string(args, ', ');
                -- the declared signature itself would be hidden by pg_catalog's
                CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_proc x WHERE x.proname = nm
                                        AND x.pronamespace = 'pg_catalog'::regnamespace
                                        AND pg_catalog.pg_get_function_identity_arguments(x.oid) = sig);
                BEGIN
                    -- the result type, without running the function (WHERE false; an aggregate sees no rows)
                    EXECUTE format('SELECT pg_catalog.pg_typeof(s.x)::text FROM (SELECT pg_catalog.%I(%s) AS x WHERE false UNION ALL SELECT NULL) s LIMIT 1', nm,
                        (SELECT string_agg('NULL::' || y, ', ') FROM unnest(args) y)) INTO res;
                EXCEPTION WHEN OTHERS THEN
                    IF @DEBUG@ THEN RAISE NOTICE 'probe % (%): %', nm, sig, SQLERRM; END IF;
                    CONTINUE;
                END;
                CONTINUE WHEN res = 'record';
                BEGIN
                    n := n + 1;
                    IF is_agg THEN
                        CONTINUE WHEN 'public.atk_usage' = ANY (args);
                        EXECUTE format($f$CREATE FUNCTION %s.cl_agg_sf_%s(st jsonb, %s) RETURNS jsonb LANGUAGE plpgsql
                            SET search_path = pg_catalog, pg_temp AS $b$ BEGIN PERFORM public.cl_attack_mark(%L);
                            RETURN st || jsonb_build_array(jsonb_build_array(%s)); END $b$$f$,
                            s, n, (SELECT string_agg('a' || o || ' ' || args[o], ', ') FROM generate_series(1, p.pronargs) o),
                            format('aggregate %s.%s(%s)', s, nm, sig),
                            (SELECT string_agg('a' || o || '::text', ', ') FROM generate_series(1, p.pronargs) o));
                        EXECUTE format($f$CREATE FUNCTION %s.cl_agg_ff_%s(st jsonb) RETURNS %s LANGUAGE plpgsql
                            SET search_path = pg_catalog, pg_temp AS $b$ DECLARE r %s; BEGIN PERFORM public.cl_attack_mark(%L);
                            EXECUTE %L INTO r USING st; RETURN r; END $b$$f$,
                            s, n, res, res, format('aggregate %s.%s(%s)', s, nm, sig),
                            format('SELECT pg_catalog.%I(%s) FROM pg_catalog.jsonb_array_elements($1) AS e', nm,
                                   (SELECT string_agg(format('(e ->> %s)::%s', o - 1, args[o]), ', ') FROM generate_series(1, p.pronargs) o)));
                        EXECUTE format('CREATE AGGREGATE %s.%I(%s) (SFUNC = %s.cl_agg_sf_%s, STYPE = jsonb, FINALFUNC = %s.cl_agg_ff_%s, INITCOND = %L)',
                                       s, nm, sig, s, n, s, n, '[]');
                        nagg := nagg + 1;
                    ELSE
                        EXECUTE format($f$CREATE FUNCTION %s.%I(%s) RETURNS %s%s LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $b$
                            BEGIN PERFORM public.cl_attack_mark(%L); %s pg_catalog.%I(%s); END $b$$f$,
                            s, nm, sig, CASE WHEN is_srf THEN 'SETOF ' ELSE '' END, res, format('function %s.%s(%s)', s, nm, sig),
                            CASE WHEN is_srf THEN 'RETURN QUERY SELECT' ELSE 'RETURN' END, nm,
                            (SELECT string_agg('$' || o, ', ') FROM generate_series(1, p.pronargs) o));
                        nfun := nfun + 1;
                    END IF;
                EXCEPTION WHEN OTHERS THEN
                    nfail := nfail + 1;
                    IF @DEBUG@ THEN RAISE NOTICE 'create % (%): %', nm, sig, SQLERRM; END IF;
                END;
            END LOOP;
        END LOOP;
    END LOOP;
    RAISE NOTICE 'CL_PLANTED schema=% relations=% domains=% functions=% operators=% aggregates=% failed=%',
        s, nrel, ndom, nfun, nops, nagg, nfail;
END $plant$;
