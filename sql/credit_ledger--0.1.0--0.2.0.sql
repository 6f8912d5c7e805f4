-- 0.2.0: every public function documents itself (\df+); the hot path does less per debit: the
-- hot tables drop their foreign keys and enum CHECKs (each cost every debit a trigger query or
-- an expression parse; credit_verify() checks the same rules instead), the grant CHECKs become
-- one small expression on what debits change, four indexes no query needed are gone or no longer partial, and two indexes
-- serve per-wallet reports.
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) before CREATE EXTENSION must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
ALTER TABLE credit_ledger.grants
    DROP CONSTRAINT grants_amount_check, DROP CONSTRAINT grants_unit_price_check,
    DROP CONSTRAINT grants_check, DROP CONSTRAINT grants_check1, DROP CONSTRAINT grants_check2,
    ADD CONSTRAINT grants_bounds CHECK (held >= 0 AND held <= remaining AND remaining <= amount);
DROP INDEX credit_ledger.authorizations_wallet_open_holds;
DROP INDEX credit_ledger.journal_at;
DROP INDEX credit_ledger.journal_authorization;
CREATE INDEX journal_authorization ON credit_ledger.journal (authorization_id);
-- no index on the journal's grant_id (every debit paid for it): a grant's entries are found
-- through its wallet (journal_wallet_at), as grant_status and credit_balance(as_of) now do
DROP INDEX credit_ledger.journal_grant;
CREATE OR REPLACE VIEW credit_ledger.grant_status AS
SELECT g.id AS grant_id, w.wallet, g.asset, g.category, g.priority, g.amount, g.remaining, g.held,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'capture', 'settlement')), 0)
         - coalesce(sum(j.amount) FILTER (WHERE j.kind = 'refund'), 0) AS spent,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'expiry'), 0) AS expired,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'rollover'), 0) AS rolled_over,
       g.unit_price, g.effective_at, g.expires_at,
       CASE WHEN g.effective_at > now() THEN 'pending'
            WHEN g.expires_at IS NOT NULL AND g.expires_at <= now() THEN 'expired'
            WHEN g.remaining = 0 THEN 'exhausted'
            ELSE 'active' END AS status,
       (g.expires_at IS NOT NULL AND g.expires_at > now() AND g.expires_at <= now() + interval '7 days'
        AND g.remaining > 0) AS expiring_soon
  FROM credit_ledger.grants g
  JOIN credit_ledger.wallets w ON w.id = g.wallet_id
  LEFT JOIN credit_ledger.journal j ON j.grant_id = g.id AND j.wallet_id = g.wallet_id
 GROUP BY g.id, w.wallet;
-- per-wallet reports (usage, declines, grant status, balances as of) read by index
CREATE INDEX authorizations_wallet_created ON credit_ledger.authorizations (wallet_id, created_at);
CREATE INDEX grants_wallet ON credit_ledger.grants (wallet_id, asset);
ALTER TABLE credit_ledger.journal
    DROP CONSTRAINT journal_wallet_id_fkey, DROP CONSTRAINT journal_grant_id_fkey,
    DROP CONSTRAINT journal_authorization_id_fkey, DROP CONSTRAINT journal_member_id_fkey,
    DROP CONSTRAINT journal_kind_check;
ALTER TABLE credit_ledger.authorizations
    DROP CONSTRAINT authorizations_wallet_id_fkey, DROP CONSTRAINT authorizations_rate_id_fkey,
    DROP CONSTRAINT authorizations_kind_check, DROP CONSTRAINT authorizations_status_check,
    DROP CONSTRAINT authorizations_refunded_check;
COMMENT ON FUNCTION @extschema@.credit_asset_define(text, integer, text) IS 'define an asset (unit of value) with a fixed decimal scale';
COMMENT ON FUNCTION @extschema@.credit_wallet_create(text, text, text, numeric, numeric, jsonb, numeric, numeric, interval, timestamptz) IS 'create a wallet (idempotent on the wallet key); parent makes it a team-pool member';
COMMENT ON FUNCTION @extschema@.credit_wallet_update(text, text, numeric, numeric, numeric, numeric, boolean, jsonb, text, interval, timestamptz, text[]) IS 'change wallet settings; NULL leaves a setting unchanged, clear resets named settings';
COMMENT ON FUNCTION @extschema@.credit_rate_set(text, numeric, text, text, text, text, numeric, timestamptz) IS 'set the credits per unit of an action (and variant) on a rate card from effective_from: a new version';
COMMENT ON FUNCTION @extschema@.credit_rate_card_load(jsonb) IS 'load a whole rate card document; one new version per changed entry; all or nothing';
COMMENT ON FUNCTION @extschema@.credit_rate_card_export(text) IS 'the current version of every entry of a rate card as one JSON document';
COMMENT ON FUNCTION @extschema@.credit_grant(text, numeric, text, text, integer, timestamptz, timestamptz, numeric, text, jsonb) IS 'grant a lot of credits to a wallet; settles overdraft debt first; idempotent with a key';
COMMENT ON FUNCTION @extschema@.credit_quote(text, text, numeric, text) IS 'price an action for a wallet: cost, spendable, whether it would be approved; no side effects';
COMMENT ON FUNCTION @extschema@.credit_authorize(text, text, numeric, text, text, jsonb) IS 'atomically price, check limits and debit an action before the work runs; a decline is a row';
COMMENT ON FUNCTION @extschema@.credit_hold(text, text, numeric, text, text, jsonb, interval) IS 'reserve credits for work of unknown final size (streaming); capture or release later';
COMMENT ON FUNCTION @extschema@.credit_capture(bigint, numeric, text, jsonb) IS 'spend a hold: the actual quantity (NULL = as held); the rest returns to the grants it came from';
COMMENT ON FUNCTION @extschema@.credit_release(bigint, text, jsonb) IS 'give a hold back to the grants it came from';
COMMENT ON FUNCTION @extschema@.credit_refund(bigint, numeric, text, text, jsonb) IS 'refund credits of a debit or captured hold to the grants that paid, in reverse consumption order';
COMMENT ON FUNCTION @extschema@.credit_expire(timestamptz, bigint) IS 'journal expiry of grants past expires_at (breakage) and finalize holds past their TTL; bounded, idempotent';
COMMENT ON FUNCTION @extschema@.credit_tick(timestamptz) IS 'run all due lifecycle work: missed allowance boundaries in order with rollover, then expiry';
COMMENT ON FUNCTION @extschema@.credit_allowance_set(text, numeric, interval, timestamptz, text, numeric, numeric[]) IS 'give a wallet a recurring included allowance with a rollover policy (none, capped, declining)';

-- credit_verify() also checks the references and vocabularies the hot tables no longer enforce
CREATE OR REPLACE FUNCTION @extschema@.credit_verify()
RETURNS TABLE (check_name text, subject text, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, @extschema@, pg_temp AS $$
    -- cached grant amounts equal the journal
    SELECT 'grant_matches_journal', 'grant ' || g.id,
           format('remaining %s held %s, journal says %s and %s', g.remaining, g.held, coalesce(j.amount, 0), coalesce(j.held, 0))
      FROM credit_ledger.grants g
      LEFT JOIN (SELECT grant_id, sum(amount) AS amount, sum(held) AS held
                   FROM credit_ledger.journal WHERE grant_id IS NOT NULL GROUP BY grant_id) j ON j.grant_id = g.id
     WHERE g.remaining IS DISTINCT FROM coalesce(j.amount, 0) OR g.held IS DISTINCT FROM coalesce(j.held, 0)
    UNION ALL
    -- bounds and the live flag
    SELECT 'grant_bounds', 'grant ' || g.id,
           format('amount %s remaining %s held %s live %s unit_price %s effective_at %s expires_at %s',
                  g.amount, g.remaining, g.held, g.live, g.unit_price, g.effective_at, g.expires_at)
      FROM credit_ledger.grants g
     WHERE g.remaining < 0 OR g.remaining > g.amount OR g.held < 0 OR g.held > g.remaining OR g.live <> (g.remaining > 0)
        OR g.amount <= 0 OR g.unit_price < 0 OR g.expires_at <= g.effective_at
    UNION ALL
    -- conservation per grant: granted = spent + held + expired + remaining -/+ refunds, settlements
    SELECT 'grant_conservation', 'grant ' || g.id,
           format('amount %s but grant entries total %s', g.amount, coalesce(sum(j.amount) FILTER (WHERE j.kind = 'grant'), 0))
      FROM credit_ledger.grants g LEFT JOIN credit_ledger.journal j ON j.grant_id = g.id
     GROUP BY g.id, g.amount
    HAVING coalesce(sum(j.amount) FILTER (WHERE j.kind = 'grant'), 0) <> g.amount
    UNION ALL
    -- an entry of a grant carries the grant's wallet (balances and reports find a grant's
    -- entries through its wallet: the journal has no index on grant_id)
    SELECT 'journal_wallet_matches_grant', 'journal entry ' || j.id,
           format('wallet_id %s but grant %s belongs to wallet %s', j.wallet_id, g.id, g.wallet_id)
      FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id
     WHERE j.wallet_id <> g.wallet_id
    UNION ALL
    -- overdraft debt equals its journal line
    SELECT 'debt_matches_journal', 'wallet ' || w.wallet || ' ' || s.asset,
           format('debt %s, journal says %s', s.debt, coalesce(-(SELECT sum(j.amount) FROM credit_ledger.journal j
                   WHERE j.wallet_id = s.wallet_id AND j.asset = s.asset AND j.grant_id IS NULL), 0))
      FROM credit_ledger.wallet_assets s JOIN credit_ledger.wallets w ON w.id = s.wallet_id
     WHERE s.debt <> coalesce(-(SELECT sum(j.amount) FROM credit_ledger.journal j
                   WHERE j.wallet_id = s.wallet_id AND j.asset = s.asset AND j.grant_id IS NULL), 0)
    UNION ALL
    -- per asset: what the grants say equals what the journal says
    SELECT 'asset_conservation', 'asset ' || x.asset, format('grants remaining %s, journal %s', x.rem, x.jr)
      FROM (SELECT a.asset,
                   coalesce((SELECT sum(remaining) FROM credit_ledger.grants g WHERE g.asset = a.asset), 0) AS rem,
                   coalesce((SELECT sum(amount) FROM credit_ledger.journal j WHERE j.asset = a.asset AND j.grant_id IS NOT NULL), 0) AS jr
              FROM credit_ledger.assets a) x
     WHERE x.rem <> x.jr
    UNION ALL
    -- holds: an open hold reserves exactly its cost; a closed hold reserves nothing;
    -- a captured hold spent exactly `captured`
    SELECT 'hold_consistency', 'authorization ' || a.id,
           format('status %s cost %s captured %s; journal held %s spent %s', a.status, a.cost, a.captured,
                  coalesce(sum(j.held), 0), coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('capture', 'overdraft')), 0))
      FROM credit_ledger.authorizations a LEFT JOIN credit_ledger.journal j ON j.authorization_id = a.id
     WHERE a.kind = 'hold'
     GROUP BY a.id
    HAVING (a.status = 'held' AND coalesce(sum(j.held), 0) <> a.cost)
        OR (a.status <> 'held' AND coalesce(sum(j.held), 0) <> 0)
        OR (a.status = 'captured' AND coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('capture', 'overdraft')), 0) <> a.captured)
        OR (a.status IN ('released', 'expired', 'declined') AND coalesce(sum(j.amount) FILTER (WHERE j.kind IN ('capture', 'overdraft')), 0) <> 0)
    UNION ALL
    -- debits: an approved debit took exactly its cost; a declined one took nothing
    SELECT 'debit_consistency', 'authorization ' || a.id,
           format('status %s cost %s; journal debited %s', a.status, a.cost,
                  coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'overdraft')), 0))
      FROM credit_ledger.authorizations a LEFT JOIN credit_ledger.journal j ON j.authorization_id = a.id
     WHERE a.kind = 'debit'
     GROUP BY a.id
    HAVING coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'overdraft')), 0)
           <> CASE WHEN a.status = 'approved' THEN a.cost ELSE 0 END
    UNION ALL
    -- references and vocabularies of the hot tables (they carry no FKs or CHECKs)
    SELECT 'journal_references', 'journal entry ' || j.id,
           format('wallet %s grant %s authorization %s member %s kind %s', j.wallet_id, j.grant_id,
                  j.authorization_id, j.member_id, j.kind)
      FROM credit_ledger.journal j
     WHERE NOT EXISTS (SELECT 1 FROM credit_ledger.wallets w WHERE w.id = j.wallet_id)
        OR (j.grant_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit_ledger.grants g WHERE g.id = j.grant_id))
        OR (j.authorization_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit_ledger.authorizations a WHERE a.id = j.authorization_id))
        OR (j.member_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit_ledger.wallets w WHERE w.id = j.member_id))
        OR j.kind NOT IN ('grant', 'debit', 'hold', 'capture', 'release', 'refund', 'expiry', 'rollover',
                          'adjustment', 'overdraft', 'settlement')
    UNION ALL
    SELECT 'authorization_references', 'authorization ' || a.id,
           format('wallet %s rate %s kind %s status %s refunded %s', a.wallet_id, a.rate_id, a.kind, a.status, a.refunded)
      FROM credit_ledger.authorizations a
     WHERE NOT EXISTS (SELECT 1 FROM credit_ledger.wallets w WHERE w.id = a.wallet_id)
        OR (a.rate_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM credit_ledger.rates r WHERE r.id = a.rate_id))
        OR a.kind NOT IN ('debit', 'hold')
        OR a.status NOT IN ('approved', 'declined', 'held', 'captured', 'released', 'expired')
        OR (a.kind = 'debit' AND a.status NOT IN ('approved', 'declined'))
        OR a.refunded < 0
    UNION ALL
    -- refunds: never more than was debited; the totals agree
    SELECT 'refund_consistency', 'authorization ' || a.id,
           format('refunded %s, refunds %s, debited %s', a.refunded,
                  coalesce((SELECT sum(r.amount) FROM credit_ledger.refunds r WHERE r.authorization_id = a.id), 0),
                  coalesce(a.captured, a.cost))
      FROM credit_ledger.authorizations a
     WHERE a.refunded <> coalesce((SELECT sum(r.amount) FROM credit_ledger.refunds r WHERE r.authorization_id = a.id), 0)
        OR a.refunded > coalesce(a.captured, a.cost)
$$;

-- ---- 0.2.0 security and idempotency fixes ----------------------------------------------------
-- Functions no longer put the extension's schema (often public, where other roles may create
-- objects) on their search_path: an operator planted there could otherwise capture a call.
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure
               FROM pg_catalog.pg_proc p
               JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
               JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
              WHERE e.extname = 'credit_ledger' AND d.deptype = 'e'
                AND array_to_string(p.proconfig, ',') LIKE '%search_path=pg_catalog, credit_ledger,%'
    LOOP
        EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, credit_ledger, pg_temp', f);
    END LOOP;
END $$;

-- credit_team_allocate: a retry returns the first allocation; empty keys are refused
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
    IF amount_per_member IS NULL OR amount_per_member <= 0 OR amount_per_member = 'NaN' OR amount_per_member = 'Infinity' THEN
        RAISE EXCEPTION 'amount_per_member must be a finite number greater than zero, got %', amount_per_member USING ERRCODE = '22023';
    END IF;
    IF pooled_share IS NULL OR pooled_share < 0 OR pooled_share > 1 OR pooled_share = 'NaN' THEN
        RAISE EXCEPTION 'pooled_share must be between 0 and 1, got %', pooled_share USING ERRCODE = '22023';
    END IF;
    IF idempotency_key IS NOT NULL AND (idempotency_key = '' OR length(idempotency_key) > 240) THEN
        RAISE EXCEPTION 'idempotency_key must be 1 to 240 characters' USING ERRCODE = '22023',
            DETAIL = 'the member and pool grants use the key with a suffix';
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

-- credit_balance_detail: an unknown asset is an error
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
    IF credit_balance_detail.wallet IS NULL OR credit_balance_detail.wallet = '' THEN
        RAISE EXCEPTION 'wallet must not be null or empty' USING ERRCODE = '22023';
    END IF;
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

-- credit_usage_trigger: a repeated argument, a column and a literal for the same thing, and an
-- authorization_id column that is not bigint are errors (22023) instead of silently billing wrong
CREATE OR REPLACE FUNCTION @extschema@.credit_usage_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
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
                     'idempotency_key', 'authorization_id') THEN
            RAISE EXCEPTION 'credit_usage_trigger argument "%" is unknown', k USING ERRCODE = '22023',
                HINT = 'use wallet, action, action_value, quantity, variant, variant_value, idempotency_key, authorization_id';
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
    IF NOT (cfg ? 'action' OR cfg ? 'action_value') THEN
        RAISE EXCEPTION 'credit_usage_trigger on "%" needs action=<column> or action_value=<literal>', TG_TABLE_NAME
            USING ERRCODE = '22023';
    END IF;
    rec := to_jsonb(NEW);
    FOR k IN SELECT key FROM jsonb_each_text(cfg) WHERE key NOT IN ('action_value', 'variant_value') LOOP
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
                                       metadata => jsonb_build_object('table', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME));
    IF NOT a.approved THEN
        RAISE EXCEPTION 'wallet "%" cannot pay for "%": %', w, act, a.reason
            USING ERRCODE = '53400',
                  DETAIL = format('authorization %s declined; balance %s', a.authorization_id, a.balance),
                  HINT = 'grant credits to the wallet or raise its limits';
    END IF;
    IF cfg ? 'authorization_id' THEN
        NEW := jsonb_populate_record(NEW, jsonb_build_object(cfg ->> 'authorization_id', a.authorization_id));
    END IF;
    RETURN NEW;
END $$;
-- pool_usage: members without limits (no wallet_assets row) show their pool draws too
CREATE OR REPLACE VIEW credit_ledger.pool_usage AS
SELECT m.wallet AS member, t.wallet AS team, x.asset,
       m.pool_limit,
       CASE WHEN s.period_start = credit_ledger._period_start(m.period, m.period_anchor, now())
            THEN s.period_pool_drawn
            WHEN s.wallet_id IS NULL    -- a member without limits keeps no counter: from the journal
            THEN coalesce((SELECT -sum(j.amount) + sum(j.held) FROM credit_ledger.journal j
                            WHERE j.member_id = m.id AND j.wallet_id = t.id AND j.asset = x.asset
                              AND j.kind IN ('debit', 'capture', 'hold', 'release', 'refund')
                              AND j.at >= credit_ledger._period_start(m.period, m.period_anchor, now())), 0)
            ELSE 0 END AS drawn_this_period,
       coalesce((SELECT -sum(j.amount) + sum(j.held) FROM credit_ledger.journal j
                  WHERE j.member_id = m.id AND j.wallet_id = t.id AND j.asset = x.asset
                    AND j.kind IN ('debit', 'capture', 'hold', 'release', 'refund')), 0) AS drawn_total
  FROM credit_ledger.wallets m
  JOIN credit_ledger.wallets t ON t.id = m.parent_id
  -- every asset the member has a counter for or has drawn from the pool (a member without
  -- limits has no wallet_assets row); a member without either has one row, asset NULL
  LEFT JOIN LATERAL (SELECT a.asset FROM credit_ledger.wallet_assets a WHERE a.wallet_id = m.id
                     UNION
                     SELECT j.asset FROM credit_ledger.journal j
                      WHERE j.wallet_id = t.id AND j.member_id = m.id
                        AND j.kind IN ('debit', 'capture', 'hold', 'release', 'refund')
                      GROUP BY j.asset HAVING -sum(j.amount) + sum(j.held) <> 0) x ON true
  LEFT JOIN credit_ledger.wallet_assets s ON s.wallet_id = m.id AND s.asset = x.asset;
COMMENT ON VIEW credit_ledger.pool_usage IS
    'per pool member and asset: its pool limit, pool credits drawn this period (holds included) and in total';

-- Period boundaries are anchor + k x period in UTC, computed from the anchor (Rust,
-- src/period.rs): the PL/pgSQL _period_start stepped by the period from an estimate and used
-- the session TimeZone, and allowances stepped next_boundary + period, so a monthly period
-- anchored on Jan 31 drifted to the 28th after February. An allowance whose next_boundary had
-- drifted is back on its anchor after its next boundary. credit_allowance_set takes as_of.
CREATE OR REPLACE FUNCTION credit_ledger._period_start(p interval, anchor timestamptz, at timestamptz)
RETURNS timestamptz IMMUTABLE PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'period_start_wrapper';
CREATE FUNCTION credit_ledger._period_next(p interval, anchor timestamptz, at timestamptz)
RETURNS timestamptz IMMUTABLE PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'period_next_wrapper';
REVOKE ALL ON FUNCTION credit_ledger._period_next(interval, timestamptz, timestamptz) FROM PUBLIC;
DROP FUNCTION @extschema@.credit_allowance_set(text, numeric, interval, timestamptz, text, numeric, numeric[]);
CREATE FUNCTION @extschema@.credit_allowance_set(
    wallet text, amount numeric, period interval DEFAULT '1 month', anchor timestamptz DEFAULT now(),
    asset text DEFAULT 'credits', rollover_cap numeric DEFAULT 0, rollover_shares numeric[] DEFAULT NULL,
    as_of timestamptz DEFAULT now())
RETURNS TABLE (wallet text, asset text, amount numeric, period interval, next_boundary timestamptz)
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c AS 'MODULE_PATHNAME', 'credit_allowance_set_at_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_allowance_set(text, numeric, interval, timestamptz, text, numeric, numeric[], timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.credit_allowance_set(text, numeric, interval, timestamptz, text, numeric, numeric[], timestamptz) IS 'give a wallet a recurring included allowance with a rollover policy (none, capped, declining), from the period containing as_of';
-- credit_balance(as_of): expiry and rollover entries take effect at the grant's expires_at
CREATE OR REPLACE FUNCTION @extschema@.credit_balance(wallet text, asset text DEFAULT 'credits', as_of timestamptz DEFAULT NULL)
RETURNS numeric
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
DECLARE
    wid bigint;
BEGIN
    IF wallet IS NULL OR wallet = '' THEN
        RAISE EXCEPTION 'wallet must not be null or empty' USING ERRCODE = '22023';
    END IF;
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
-- authorizations_created becomes a BRIN index (cheaper on every insert; see schema.sql)
DROP INDEX credit_ledger.authorizations_created;
CREATE INDEX authorizations_created ON credit_ledger.authorizations USING brin (created_at);

-- the rate cache's invalidation trigger (src/rate_cache.rs, sql/finalize.sql)
CREATE FUNCTION credit_ledger._credit_rates_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', '_credit_rates_changed_wrapper';
REVOKE ALL ON FUNCTION credit_ledger._credit_rates_changed() FROM PUBLIC;
CREATE TRIGGER rates_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit_ledger.rates
    FOR EACH STATEMENT EXECUTE FUNCTION credit_ledger._credit_rates_changed();
CREATE TRIGGER assets_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit_ledger.assets
    FOR EACH STATEMENT EXECUTE FUNCTION credit_ledger._credit_rates_changed();

-- revenue recognized per month, settlements of overdraft debt included (reports.sql)
CREATE VIEW credit_ledger.revenue_monthly AS
SELECT date_trunc('month', j.at AT TIME ZONE 'UTC')::date AS month, j.asset,
       coalesce(sum(-j.amount) FILTER (WHERE j.kind <> 'settlement'), 0) AS credits_used,
       coalesce(sum(-j.amount * g.unit_price) FILTER (WHERE j.kind <> 'settlement'), 0) AS usage_revenue,
       coalesce(sum(-j.amount) FILTER (WHERE j.kind = 'settlement'), 0) AS credits_settling_debt,
       coalesce(sum(-j.amount * g.unit_price) FILTER (WHERE j.kind = 'settlement'), 0) AS settlement_revenue,
       sum(-j.amount * g.unit_price) AS revenue_recognized
  FROM credit_ledger.journal j
  JOIN credit_ledger.grants g ON g.id = j.grant_id
 WHERE j.kind IN ('debit', 'capture', 'refund', 'settlement')
 GROUP BY 1, j.asset;
COMMENT ON VIEW credit_ledger.revenue_monthly IS
    'revenue recognized per UTC month and asset: credits used net of refunds and credits that settled overdraft debt, at the paying grants'' unit price';

REVOKE ALL ON credit_ledger.revenue_monthly FROM PUBLIC;

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
