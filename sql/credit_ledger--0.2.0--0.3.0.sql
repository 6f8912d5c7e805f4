-- credit_ledger 0.2.0 -> 0.3.0 (frozen once released).
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Issue 16: the usage trigger runs as the inserting role, never as the extension's owner
-- (a billed table's owner could define a cast to json that ran with the owner's rights).
-- The body is unchanged; inserting roles now need EXECUTE on credit_authorize (bundle 'pipeline').
ALTER FUNCTION @extschema@.credit_usage_trigger() SECURITY INVOKER;
ALTER FUNCTION @extschema@.credit_usage_trigger() SET search_path = pg_catalog, pg_temp;

-- Issue 16 (robustness): size limits (22001) in the SQL functions: credit_team_allocate (team,
-- asset and category 255 characters, the key 240 characters and 255 with the longest member's
-- name, metadata 65,536 bytes as text; an empty key is 22023); credit_grants, credit_balance and
-- credit_balance_detail (wallet and asset 255 characters). Bodies are those of pools.sql and
-- finalize.sql.
CREATE OR REPLACE FUNCTION @extschema@.credit_team_allocate(team text, amount_per_member numeric, pooled_share numeric,
                                     asset text DEFAULT 'credits', category text DEFAULT 'included',
                                     expires_at timestamptz DEFAULT NULL,
                                     unit_price numeric DEFAULT NULL,
                                     idempotency_key text DEFAULT NULL, metadata jsonb DEFAULT NULL)
RETURNS TABLE (wallet text, grant_id bigint, amount numeric)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    tid bigint;
    sc int;
    n int;
    m record;
    own numeric;
    given numeric := 0;
    g @extschema@.credit_grant;
    req jsonb;
    request jsonb := jsonb_build_object('amount_per_member', amount_per_member, 'pooled_share', pooled_share,
                                        'asset', asset, 'category', category, 'expires_at', expires_at,
                                        'unit_price', unit_price);
BEGIN
    IF team IS NULL OR team = '' THEN
        RAISE EXCEPTION 'team must not be null or empty' USING ERRCODE = '22023';
    END IF;
    IF length(team) > 255 THEN
        RAISE EXCEPTION 'team is longer than 255 characters' USING ERRCODE = '22001',
            DETAIL = format('team has %s characters', length(team));
    END IF;
    IF length(asset) > 255 THEN
        RAISE EXCEPTION 'asset is longer than 255 characters' USING ERRCODE = '22001',
            DETAIL = format('asset has %s characters', length(asset));
    END IF;
    IF length(category) > 255 THEN
        RAISE EXCEPTION 'category is longer than 255 characters' USING ERRCODE = '22001',
            DETAIL = format('category has %s characters', length(category));
    END IF;
    IF amount_per_member IS NULL OR amount_per_member <= 0 OR amount_per_member = 'NaN' OR amount_per_member = 'Infinity' THEN
        RAISE EXCEPTION 'amount_per_member must be a finite number greater than zero, got %', amount_per_member USING ERRCODE = '22023';
    END IF;
    IF pooled_share IS NULL OR pooled_share < 0 OR pooled_share > 1 OR pooled_share = 'NaN' THEN
        RAISE EXCEPTION 'pooled_share must be between 0 and 1, got %', pooled_share USING ERRCODE = '22023';
    END IF;
    IF idempotency_key = '' THEN
        RAISE EXCEPTION 'idempotency_key must not be empty' USING ERRCODE = '22023';
    END IF;
    IF length(idempotency_key) > 240 THEN
        RAISE EXCEPTION 'idempotency_key is longer than 240 characters' USING ERRCODE = '22001',
            DETAIL = format('idempotency_key has %s characters; the member and pool grants use the key with a suffix',
                            length(idempotency_key));
    END IF;
    IF octet_length(metadata::text) > 65536 THEN
        RAISE EXCEPTION 'metadata is longer than 65536 bytes as text' USING ERRCODE = '22001',
            DETAIL = format('metadata has %s bytes as text', octet_length(metadata::text));
    END IF;
    SELECT w.id INTO tid FROM credit_ledger.wallets w WHERE w.wallet = team;
    IF tid IS NULL THEN
        RAISE EXCEPTION 'wallet "%" does not exist', team USING ERRCODE = '42704';
    END IF;
    -- a retry returns the first allocation as it was (even if members joined since)
    IF idempotency_key IS NOT NULL THEN
        SELECT x.metadata -> 'allocation' INTO req FROM credit_ledger.grants x
         WHERE x.wallet_id = tid AND x.idempotency_key = credit_team_allocate.idempotency_key || ':pool';
        IF FOUND THEN
            IF req IS DISTINCT FROM request THEN
                RAISE EXCEPTION 'idempotency key "%" was already used with other arguments', idempotency_key
                    USING ERRCODE = '23505', HINT = 'use a new idempotency key for a different request';
            END IF;
            RETURN QUERY
            SELECT w.wallet, x.id, x.amount
              FROM credit_ledger.grants x JOIN credit_ledger.wallets w ON w.id = x.wallet_id
             WHERE (w.id = tid OR w.parent_id = tid)
               AND (x.idempotency_key = credit_team_allocate.idempotency_key || ':pool'
                    OR x.idempotency_key = credit_team_allocate.idempotency_key || ':' || w.wallet)
             ORDER BY w.parent_id IS NULL, w.id;
            RETURN;
        END IF;
    END IF;
    SELECT a.scale INTO sc FROM credit_ledger.assets a WHERE a.asset = credit_team_allocate.asset;
    IF sc IS NULL THEN
        RAISE EXCEPTION 'asset "%" does not exist', asset USING ERRCODE = '42704';
    END IF;
    -- lock members first (id order), then the team: the order every debit uses
    PERFORM 1 FROM credit_ledger.wallets w WHERE w.parent_id = tid ORDER BY w.id FOR NO KEY UPDATE;
    PERFORM 1 FROM credit_ledger.wallets w WHERE w.id = tid FOR NO KEY UPDATE;
    SELECT count(*) INTO n FROM credit_ledger.wallets w WHERE w.parent_id = tid;
    IF n = 0 THEN
        RAISE EXCEPTION 'wallet "%" has no members', team USING ERRCODE = '55000',
            HINT = 'create members with credit_wallet_create(wallet => ..., parent => team)';
    END IF;
    IF length(idempotency_key) + 1 + (SELECT max(length(w.wallet)) FROM credit_ledger.wallets w WHERE w.parent_id = tid) > 255 THEN
        RAISE EXCEPTION 'idempotency_key is too long for the members of team "%"', team USING ERRCODE = '22001',
            DETAIL = format('a member grant''s key is idempotency_key || '':'' || member, at most 255 characters; the key has %s, the longest member name %s',
                            length(idempotency_key),
                            (SELECT max(length(w.wallet)) FROM credit_ledger.wallets w WHERE w.parent_id = tid));
    END IF;
    own := trunc((1 - pooled_share) * amount_per_member, sc);
    FOR m IN SELECT w.wallet FROM credit_ledger.wallets w WHERE w.parent_id = tid ORDER BY w.id LOOP
        IF own > 0 THEN
            g := @extschema@.credit_grant(wallet => m.wallet, amount => own, asset => credit_team_allocate.asset,
                    category => credit_team_allocate.category, expires_at => credit_team_allocate.expires_at,
                    unit_price => credit_team_allocate.unit_price,
                    idempotency_key => credit_team_allocate.idempotency_key || ':' || m.wallet,
                    metadata => coalesce(credit_team_allocate.metadata, '{}'::jsonb) || jsonb_build_object('team', team));
            wallet := m.wallet; grant_id := g.id; amount := g.amount;
            RETURN NEXT;
        END IF;
        given := given + own;
    END LOOP;
    IF amount_per_member * n - given > 0 THEN
        g := @extschema@.credit_grant(wallet => team, amount => amount_per_member * n - given,
                asset => credit_team_allocate.asset, category => credit_team_allocate.category,
                expires_at => credit_team_allocate.expires_at, unit_price => credit_team_allocate.unit_price,
                idempotency_key => credit_team_allocate.idempotency_key || ':pool',
                metadata => coalesce(credit_team_allocate.metadata, '{}'::jsonb)
                            || jsonb_build_object('pool', true, 'allocation', request));
        wallet := team; grant_id := g.id; amount := g.amount;
        RETURN NEXT;
    END IF;
END $$;

-- The argument checks the read functions share: a wallet key, not null or empty, and an asset
-- name, each at most 255 characters (src/input.rs holds the same limits for the Rust functions).
-- No SET clause: it runs inside the callers' pinned search_path.
CREATE FUNCTION credit_ledger._check_wallet_asset(wallet text, asset text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF wallet IS NULL OR wallet = '' THEN
        RAISE EXCEPTION 'wallet must not be null or empty' USING ERRCODE = '22023';
    END IF;
    IF length(wallet) > 255 THEN
        RAISE EXCEPTION 'wallet is longer than 255 characters' USING ERRCODE = '22001',
            DETAIL = format('wallet has %s characters', length(wallet));
    END IF;
    IF length(asset) > 255 THEN
        RAISE EXCEPTION 'asset is longer than 255 characters' USING ERRCODE = '22001',
            DETAIL = format('asset has %s characters', length(asset));
    END IF;
END $$;
REVOKE ALL ON FUNCTION credit_ledger._check_wallet_asset(text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.credit_grants(wallet text, asset text DEFAULT NULL) RETURNS SETOF @extschema@.credit_grant
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_grants.wallet, credit_grants.asset);
    IF NOT EXISTS (SELECT 1 FROM credit_ledger.wallets w WHERE w.wallet = credit_grants.wallet) THEN
        RAISE EXCEPTION 'wallet "%" does not exist', credit_grants.wallet USING ERRCODE = '42704',
            HINT = 'create it with credit_wallet_create()';
    END IF;
    RETURN QUERY
    SELECT g.id, w.wallet, g.asset, g.category, g.priority, g.amount, g.remaining, g.held,
           g.effective_at, g.expires_at, g.unit_price, g.metadata, g.created_at
      FROM credit_ledger.grants g JOIN credit_ledger.wallets w ON w.id = g.wallet_id
     WHERE w.wallet = credit_grants.wallet AND (credit_grants.asset IS NULL OR g.asset = credit_grants.asset)
     ORDER BY g.asset, g.priority, g.expires_at NULLS LAST, g.id;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.credit_balance(wallet text, asset text DEFAULT 'credits', as_of timestamptz DEFAULT NULL)
RETURNS numeric
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    wid bigint;
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_balance.wallet, credit_balance.asset);
    SELECT w.id INTO wid FROM credit_ledger.wallets w WHERE w.wallet = credit_balance.wallet;
    IF wid IS NULL THEN
        RAISE EXCEPTION 'wallet "%" does not exist', wallet USING ERRCODE = '42704',
            HINT = 'create it with credit_wallet_create()';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM credit_ledger.assets a WHERE a.asset = credit_balance.asset) THEN
        RAISE EXCEPTION 'asset "%" does not exist', asset USING ERRCODE = '42704';
    END IF;
    IF as_of IS NULL THEN
        RETURN credit_ledger._balance(wid, asset);
    END IF;
    -- as of a past instant, from the journal alone. A grant's expiry and rollover entries take
    -- effect at its expires_at, which is after as_of for a grant in effect then, whenever the
    -- sweep or tick wrote them (credit_tick(as_of) in the future, or a late scheduler); a
    -- grant's own entry takes effect at its effective_at, so an allowance period that a late
    -- tick granted afterwards shows in the balances of that period
    RETURN coalesce((
        SELECT sum(j.amount) - coalesce(sum(j.held) FILTER (WHERE a.expires_at IS NULL OR a.expires_at > as_of), 0)
          FROM credit_ledger.journal j
          JOIN credit_ledger.grants g ON g.id = j.grant_id
          LEFT JOIN credit_ledger.authorizations a ON a.id = j.authorization_id
         WHERE g.wallet_id = wid AND j.wallet_id = wid AND g.asset = credit_balance.asset
           AND (j.at <= as_of OR j.kind = 'grant')
           AND j.kind NOT IN ('expiry', 'rollover')
           AND g.effective_at <= as_of AND (g.expires_at IS NULL OR g.expires_at > as_of)), 0)
     + coalesce((
        SELECT sum(j.amount) FROM credit_ledger.journal j
         WHERE j.wallet_id = wid AND j.grant_id IS NULL AND j.asset = credit_balance.asset
           AND j.at <= as_of), 0);
END $$;

CREATE OR REPLACE FUNCTION @extschema@.credit_balance_detail(wallet text, asset text DEFAULT 'credits',
                                      expiring_within interval DEFAULT '7 days')
RETURNS TABLE (balance numeric, available numeric, held numeric,
               debt numeric, overdraft_room numeric, pool_access numeric, spendable numeric,
               expiring_soon numeric, by_category jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    w credit_ledger.wallets%ROWTYPE;
    s credit_ledger.wallet_assets%ROWTYPE;
    pool numeric := 0;
    pool_room numeric;
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_balance_detail.wallet, credit_balance_detail.asset);
    SELECT * INTO w FROM credit_ledger.wallets x WHERE x.wallet = credit_balance_detail.wallet;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'wallet "%" does not exist', credit_balance_detail.wallet USING ERRCODE = '42704',
            HINT = 'create it with credit_wallet_create()';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM credit_ledger.assets a WHERE a.asset = credit_balance_detail.asset) THEN
        RAISE EXCEPTION 'asset "%" does not exist', credit_balance_detail.asset USING ERRCODE = '42704';
    END IF;
    SELECT * INTO s FROM credit_ledger.wallet_assets x WHERE x.wallet_id = w.id AND x.asset = credit_balance_detail.asset;
    IF w.parent_id IS NOT NULL THEN
        pool := credit_ledger._balance(w.parent_id, credit_balance_detail.asset);
        IF w.pool_limit IS NOT NULL THEN
            pool_room := w.pool_limit - CASE WHEN s.period_start = credit_ledger._period_start(w.period, w.period_anchor, now())
                                           THEN s.period_pool_drawn ELSE 0 END;
            pool := least(pool, greatest(pool_room, 0));
        END IF;
        pool := greatest(pool, 0);
    END IF;
    RETURN QUERY
    WITH g AS (
        SELECT x.category, x.remaining, x.held, x.expires_at
          FROM credit_ledger.grants x
         WHERE x.wallet_id = w.id AND x.asset = credit_balance_detail.asset AND x.live
           AND x.effective_at <= now() AND (x.expires_at IS NULL OR x.expires_at > now())
    ), t AS (
        SELECT credit_ledger._balance(w.id, credit_balance_detail.asset) AS bal,
               coalesce(sum(g.remaining), 0) AS rem,
               coalesce(sum(g.remaining) FILTER (WHERE g.expires_at <= now() + expiring_within), 0) AS soon,
               coalesce((SELECT jsonb_object_agg(c.category, c.amt ORDER BY c.category)
                           FROM (SELECT g2.category, sum(g2.remaining - g2.held) AS amt FROM g g2 GROUP BY g2.category) c), '{}'::jsonb) AS cats
          FROM g
    )
    SELECT t.bal,
           t.bal + coalesce(s.debt, 0),
           t.rem - t.bal - coalesce(s.debt, 0),
           coalesce(s.debt, 0),
           greatest(w.overdraft_limit - coalesce(s.debt, 0), 0),
           pool,
           t.bal + coalesce(s.debt, 0) + greatest(w.overdraft_limit - coalesce(s.debt, 0), 0) + pool,
           t.soon, t.cats
      FROM t;
END $$;

-- Issue 16: low-balance alerts become events; NOTIFY carries only the id.
-- Events (since 0.3.0): a low-balance alert is a row here, and the NOTIFY on channel
-- credit_ledger carries only its id, because any role can LISTEN: consumers read the event
-- with credit_event(id), which only granted roles may call.
CREATE TABLE credit_ledger.events (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    kind      text NOT NULL,
    wallet_id bigint NOT NULL,
    asset     text NOT NULL,
    payload   jsonb NOT NULL
);
REVOKE ALL ON credit_ledger.events FROM PUBLIC;
REVOKE ALL ON SEQUENCE credit_ledger.events_id_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.events', '');
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.events_id_seq', '');
COMMENT ON TABLE credit_ledger.events IS 'events such as low-balance alerts; NOTIFY credit_ledger carries only the id';

-- One event (since 0.3.0): the NOTIFY on channel credit_ledger carries only the id. No row
-- for an unknown id (a NOTIFY anyone may send is only a hint to read).
CREATE FUNCTION @extschema@.credit_event(event_id bigint)
RETURNS TABLE (event_id bigint, at timestamptz, kind text, wallet text, asset text, payload jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
    SELECT e.id, e.at, e.kind, w.wallet, e.asset, e.payload
      FROM credit_ledger.events e JOIN credit_ledger.wallets w ON w.id = e.wallet_id
     WHERE e.id = $1
$$;
REVOKE ALL ON FUNCTION @extschema@.credit_event(bigint) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_event(bigint) IS 'one event by the id a NOTIFY on channel credit_ledger carried';

-- Issue 16: privilege bundles (sql/privileges.sql as of 0.3.0)

CREATE VIEW credit_ledger.privilege_bundles (bundle, privilege, object_type, object_name) AS
SELECT b.bundle, 'EXECUTE', 'function', f.name
  FROM (VALUES
    ('app', ARRAY['credit_authorize', 'credit_hold', 'credit_capture', 'credit_release', 'credit_refund',
                  'credit_quote', 'credit_balance', 'credit_balance_detail', 'credit_grants', 'credit_wallet',
                  'credit_authorization', 'credit_authorization_history', 'credit_event']),
    ('backoffice', ARRAY['credit_authorize', 'credit_hold', 'credit_capture', 'credit_release', 'credit_refund',
                  'credit_quote', 'credit_balance', 'credit_balance_detail', 'credit_grants', 'credit_wallet',
                  'credit_authorization', 'credit_authorization_history', 'credit_event',
                  'credit_grant', 'credit_wallet_create', 'credit_wallet_update', 'credit_rate_set',
                  'credit_rate_card_load', 'credit_rate_card_export', 'credit_asset_define',
                  'credit_allowance_set', 'credit_team_allocate']),
    ('pipeline', ARRAY['credit_usage_trigger', 'credit_authorize']),
    ('cron', ARRAY['credit_tick', 'credit_expire']),
    ('reader', ARRAY['credit_verify', 'credit_event', '_period_start'])
  ) b(bundle, names), unnest(b.names) f(name)
UNION ALL
SELECT 'reader', 'USAGE', 'schema', 'credit_ledger'
UNION ALL
SELECT 'reader', 'SELECT', 'view', 'credit_ledger.' || v.name
  FROM unnest(ARRAY['wallet_balances', 'grant_status', 'usage_daily', 'margin_by_action', 'liability',
                    'breakage', 'declines_daily', 'pool_usage', 'revenue_monthly']) v(name);

-- The GRANT (or REVOKE) statements of one bundle for one role, with a flag: does the role hold
-- the privilege now?
CREATE FUNCTION credit_ledger._bundle_statements(role regrole, bundle text, verb text)
RETURNS TABLE (privilege text, object text, statement text, held boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22023';
    END IF;
    IF bundle IS NULL OR NOT EXISTS (SELECT 1 FROM credit_ledger.privilege_bundles b WHERE b.bundle = _bundle_statements.bundle) THEN
        RAISE EXCEPTION 'privilege bundle "%" does not exist', bundle USING ERRCODE = '22023',
            HINT = 'use app, backoffice, pipeline, cron or reader';
    END IF;
    RETURN QUERY
    SELECT b.privilege, o.object,
           format('%s %s ON %s %s %s %s', verb, b.privilege,
                  CASE b.object_type WHEN 'view' THEN 'TABLE' ELSE upper(b.object_type) END, o.object,
                  CASE WHEN verb = 'GRANT' THEN 'TO' ELSE 'FROM' END, role),
           CASE b.object_type
                WHEN 'function' THEN has_function_privilege(role::oid, o.object, 'EXECUTE')
                WHEN 'schema' THEN has_schema_privilege(role::oid, o.object, 'USAGE')
                ELSE has_table_privilege(role::oid, o.object, 'SELECT') END
      FROM credit_ledger.privilege_bundles b
      CROSS JOIN LATERAL (
          SELECT p.oid::regprocedure::text AS object
            FROM pg_proc p
            JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
            JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
           WHERE b.object_type = 'function' AND p.proname = b.object_name
          UNION ALL
          SELECT quote_ident(b.object_name) WHERE b.object_type = 'schema'
          UNION ALL
          SELECT b.object_name::regclass::text WHERE b.object_type = 'view') o
     WHERE b.bundle = _bundle_statements.bundle
     ORDER BY 2;
END $$;

CREATE FUNCTION @extschema@.credit_ledger_grant(role regrole, bundle text)
RETURNS TABLE (privilege text, object text)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s record;
BEGIN
    FOR s IN SELECT * FROM credit_ledger._bundle_statements(role, bundle, 'GRANT') LOOP
        EXECUTE s.statement;
        privilege := s.privilege;
        object := s.object;
        RETURN NEXT;
    END LOOP;
END $$;

CREATE FUNCTION @extschema@.credit_ledger_revoke(role regrole, bundle text)
RETURNS TABLE (privilege text, object text)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    s record;
    kept text[];
BEGIN
    -- the privileges of every other bundle the role holds in full stay, unless that bundle
    -- lies inside the revoked one (app inside backoffice)
    SELECT coalesce(array_agg(k.object), '{}') INTO kept
      FROM (SELECT DISTINCT b.bundle FROM credit_ledger.privilege_bundles b
             WHERE b.bundle <> credit_ledger_revoke.bundle
               AND EXISTS (SELECT 1 FROM credit_ledger.privilege_bundles x
                            WHERE x.bundle = b.bundle
                              AND (x.object_type, x.object_name) NOT IN
                                  (SELECT y.object_type, y.object_name FROM credit_ledger.privilege_bundles y
                                    WHERE y.bundle = credit_ledger_revoke.bundle))) o
      CROSS JOIN LATERAL credit_ledger._bundle_statements(role, o.bundle, 'REVOKE') k
     WHERE NOT EXISTS (SELECT 1 FROM credit_ledger._bundle_statements(role, o.bundle, 'REVOKE') x WHERE NOT x.held);
    FOR s IN SELECT * FROM credit_ledger._bundle_statements(role, bundle, 'REVOKE') LOOP
        CONTINUE WHEN s.object = ANY (kept);
        EXECUTE s.statement;
        privilege := s.privilege;
        object := s.object;
        RETURN NEXT;
    END LOOP;
END $$;

COMMENT ON VIEW credit_ledger.privilege_bundles IS 'every privilege of each bundle of credit_ledger_grant: app, backoffice, pipeline, cron, reader';
COMMENT ON FUNCTION @extschema@.credit_ledger_grant(regrole, text) IS 'grant a role one privilege bundle (app, backoffice, pipeline, cron, reader); returns what was granted';
COMMENT ON FUNCTION @extschema@.credit_ledger_revoke(regrole, text) IS 'revoke a privilege bundle from a role, keeping what another bundle it holds in full needs';
REVOKE ALL ON credit_ledger.privilege_bundles FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_ledger._bundle_statements(regrole, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_ledger_grant(regrole, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.credit_ledger_revoke(regrole, text) FROM PUBLIC;

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
