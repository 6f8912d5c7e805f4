-- credit_team_allocate(): partial pooling in one call.
-- Each member of `team` gets (1 - pooled_share) x amount_per_member as its own grant (rounded
-- down to the asset's scale) and the pool gets the rest: pooled_share x amount x members plus
-- the rounding remainder, so exactly amount x members is granted. Idempotent with a key: the
-- member grants use key || ':' || member and the pool grant key || ':pool'.
-- Locks members (by id) before the team, the order every debit uses.
-- Size limits (src/input.rs; 22001 beyond): team, asset and category 255 characters; the key 240
-- characters and, with ':' and the longest member's name, 255; metadata 65,536 bytes as text.
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) before CREATE EXTENSION must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
CREATE FUNCTION @extschema@.credit_team_allocate(team text, amount_per_member numeric, pooled_share numeric,
                                     asset text DEFAULT 'credits', category text DEFAULT 'included',
                                     expires_at timestamptz DEFAULT NULL,
                                     unit_price numeric DEFAULT NULL,
                                     idempotency_key text DEFAULT NULL, metadata jsonb DEFAULT NULL)
RETURNS TABLE (wallet text, grant_id bigint, amount numeric)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    tid bigint;
    -- the team's tenant: every query names it (0.13.0: on Citus, the tenant's shard alone)
    tn text := credit_ledger._wallet_tenant(team);
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
    SELECT w.id INTO tid FROM credit_ledger.wallets w WHERE w.wallet = team AND w.tenant = tn;
    IF tid IS NULL THEN
        RAISE EXCEPTION 'wallet "%" does not exist', team USING ERRCODE = '42704';
    END IF;
    -- a retry returns the first allocation as it was (even if members joined since)
    IF idempotency_key IS NOT NULL THEN
        SELECT x.metadata -> 'allocation' INTO req FROM credit_ledger.grants x
         WHERE x.wallet_id = tid AND x.tenant = tn
           AND x.idempotency_key = credit_team_allocate.idempotency_key || ':pool';
        IF FOUND THEN
            IF req IS DISTINCT FROM request THEN
                RAISE EXCEPTION 'idempotency key "%" was already used with other arguments', idempotency_key
                    USING ERRCODE = '23505', HINT = 'use a new idempotency key for a different request';
            END IF;
            RETURN QUERY
            SELECT w.wallet, x.id, x.amount
              FROM credit_ledger.grants x JOIN credit_ledger.wallets w ON w.id = x.wallet_id AND w.tenant = x.tenant
             WHERE (w.id = tid OR w.parent_id = tid) AND w.tenant = tn
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
    PERFORM 1 FROM credit_ledger.wallets w WHERE w.parent_id = tid AND w.tenant = tn ORDER BY w.id FOR NO KEY UPDATE;
    PERFORM 1 FROM credit_ledger.wallets w WHERE w.id = tid AND w.tenant = tn FOR NO KEY UPDATE;
    SELECT count(*) INTO n FROM credit_ledger.wallets w WHERE w.parent_id = tid AND w.tenant = tn;
    IF n = 0 THEN
        RAISE EXCEPTION 'wallet "%" has no members', team USING ERRCODE = '55000',
            HINT = 'create members with credit_wallet_create(wallet => ..., parent => team)';
    END IF;
    IF length(idempotency_key) + 1 + (SELECT max(length(w.wallet)) FROM credit_ledger.wallets w WHERE w.parent_id = tid AND w.tenant = tn) > 255 THEN
        RAISE EXCEPTION 'idempotency_key is too long for the members of team "%"', team USING ERRCODE = '22001',
            DETAIL = format('a member grant''s key is idempotency_key || '':'' || member, at most 255 characters; the key has %s, the longest member name %s',
                            length(idempotency_key),
                            (SELECT max(length(w.wallet)) FROM credit_ledger.wallets w WHERE w.parent_id = tid AND w.tenant = tn));
    END IF;
    own := trunc((1 - pooled_share) * amount_per_member, sc);
    FOR m IN SELECT w.wallet FROM credit_ledger.wallets w WHERE w.parent_id = tid AND w.tenant = tn ORDER BY w.id LOOP
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
REVOKE ALL ON FUNCTION @extschema@.credit_team_allocate(text, numeric, numeric, text, text, timestamptz, numeric, text, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_team_allocate(text, numeric, numeric, text, text, timestamptz, numeric, text, jsonb) IS
    'partial pooling: each member gets (1 - pooled_share) x amount, the pool gets the rest, in one call';

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
