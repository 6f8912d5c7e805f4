-- credit_ledger 0.3.0 -> 0.4.0 (frozen once released).
-- Bind every expression in this file to pg_catalog only: objects planted in the extension's
-- schema (often public) must not capture an operator or function.
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

-- Issue 17: spending lanes. A wallet with lanes > 1 keeps each grant's credits in one slice
-- per lane (grants rows with home_id and lane); spenders lock one lane, not the wallet.
-- Existing wallets keep one lane: nothing changes for them until credit_wallet_lanes().
ALTER TABLE credit_ledger.wallets ADD COLUMN lanes int NOT NULL DEFAULT 1 CHECK (lanes BETWEEN 1 AND 64);
ALTER TABLE credit_ledger.grants ADD COLUMN lane int, ADD COLUMN home_id bigint;
-- The walk of one lane's slices (a one-lane wallet's grants are not in it: no cost to them).
CREATE INDEX grants_lane_walk ON credit_ledger.grants (wallet_id, asset, lane, priority, expires_at, home_id)
    WHERE live AND home_id IS NOT NULL;
CREATE INDEX grants_home ON credit_ledger.grants (home_id) WHERE home_id IS NOT NULL;

-- Spending lanes of a wallet x asset (since 0.4.0; only wallets with lanes > 1 have rows). A
-- spender locks one lane row (FOR NO KEY UPDATE SKIP LOCKED) and spends the slices of that lane
-- only, so spenders of one wallet do not wait for each other; `free` is what the lane's slices
-- had spendable when it was last written (a hint that picks a lane: the walk under the lock
-- decides). Operations on the whole wallet lock every lane, in lane order.
CREATE TABLE credit_ledger.lanes (
    wallet_id bigint NOT NULL REFERENCES credit_ledger.wallets (id),
    asset     text   NOT NULL REFERENCES credit_ledger.assets (asset),
    lane      int    NOT NULL,
    free      numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (wallet_id, asset, lane)
) WITH (fillfactor = 50);
REVOKE ALL ON TABLE credit_ledger.lanes FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('credit_ledger.lanes', '');

CREATE FUNCTION @extschema@."credit_wallet_lanes"(
	"wallet" TEXT, /* Option < & str > */
	"lanes" INT DEFAULT NULL /* Option < i32 > */
) RETURNS INT /* i32 */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, credit_ledger, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'credit_wallet_lanes_wrapper';
REVOKE ALL ON FUNCTION @extschema@.credit_wallet_lanes(text, int) FROM PUBLIC;

-- A grant is one row in credit_grants() and grant_status whatever its slices; credit_verify()
-- knows slices ('lane' entries, slice_matches_grant, lane_moves_balance). Bodies are those of
-- finalize.sql and reports.sql.
-- A grant of a wallet with lanes is one row here: its slices (home_id = the grant) add up.
CREATE OR REPLACE VIEW credit_ledger.grant_status AS
SELECT g.id AS grant_id, w.wallet, g.asset, g.category, g.priority, g.amount, f.remaining, f.held,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'capture', 'settlement')), 0)
         - coalesce(sum(j.amount) FILTER (WHERE j.kind = 'refund'), 0) AS spent,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'expiry'), 0) AS expired,
       coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'rollover'), 0) AS rolled_over,
       g.unit_price, g.effective_at, g.expires_at,
       CASE WHEN g.effective_at > now() THEN 'pending'
            WHEN g.expires_at IS NOT NULL AND g.expires_at <= now() THEN 'expired'
            WHEN f.remaining = 0 THEN 'exhausted'
            ELSE 'active' END AS status,
       (g.expires_at IS NOT NULL AND g.expires_at > now() AND g.expires_at <= now() + interval '7 days'
        AND f.remaining > 0) AS expiring_soon
  FROM credit_ledger.grants g
  JOIN credit_ledger.wallets w ON w.id = g.wallet_id
  CROSS JOIN LATERAL (SELECT g.remaining + coalesce(sum(x.remaining), 0) AS remaining,
                             g.held + coalesce(sum(x.held), 0) AS held,
                             array_append(array_agg(x.id), g.id) AS ids
                        FROM credit_ledger.grants x WHERE x.home_id = g.id) f
  LEFT JOIN credit_ledger.journal j ON j.grant_id = ANY (f.ids) AND j.wallet_id = g.wallet_id
 WHERE g.home_id IS NULL
 GROUP BY g.id, w.wallet, f.remaining, f.held;

CREATE OR REPLACE FUNCTION @extschema@.credit_grants(wallet text, asset text DEFAULT NULL) RETURNS SETOF @extschema@.credit_grant
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
BEGIN
    PERFORM credit_ledger._check_wallet_asset(credit_grants.wallet, credit_grants.asset);
    IF NOT EXISTS (SELECT 1 FROM credit_ledger.wallets w WHERE w.wallet = credit_grants.wallet) THEN
        RAISE EXCEPTION 'wallet "%" does not exist', credit_grants.wallet USING ERRCODE = '42704',
            HINT = 'create it with credit_wallet_create()';
    END IF;
    -- a grant of a wallet with lanes shows the credits of all its slices (since 0.4.0)
    RETURN QUERY
    SELECT g.id, w.wallet, g.asset, g.category, g.priority, g.amount,
           g.remaining + coalesce(f.remaining, 0), g.held + coalesce(f.held, 0),
           g.effective_at, g.expires_at, g.unit_price, g.metadata, g.created_at
      FROM credit_ledger.grants g JOIN credit_ledger.wallets w ON w.id = g.wallet_id
      LEFT JOIN LATERAL (SELECT sum(x.remaining) AS remaining, sum(x.held) AS held
                           FROM credit_ledger.grants x WHERE x.home_id = g.id) f ON true
     WHERE w.wallet = credit_grants.wallet AND (credit_grants.asset IS NULL OR g.asset = credit_grants.asset)
       AND g.home_id IS NULL
     ORDER BY g.asset, g.priority, g.expires_at NULLS LAST, g.id;
END $$;

CREATE OR REPLACE FUNCTION @extschema@.credit_verify()
RETURNS TABLE (check_name text, subject text, detail text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, credit_ledger, pg_temp AS $$
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
     WHERE g.home_id IS NULL
     GROUP BY g.id, g.amount
    HAVING coalesce(sum(j.amount) FILTER (WHERE j.kind = 'grant'), 0) <> g.amount
    UNION ALL
    -- a slice (lanes, since 0.4.0) is a row of a grant of its wallet and asset, with its amount
    SELECT 'slice_matches_grant', 'grant ' || s.id,
           format('slice of grant %s in lane %s: wallet_id %s asset %s amount %s; the grant: wallet_id %s asset %s amount %s',
                  s.home_id, s.lane, s.wallet_id, s.asset, s.amount, h.wallet_id, h.asset, h.amount)
      FROM credit_ledger.grants s LEFT JOIN credit_ledger.grants h ON h.id = s.home_id
     WHERE (s.home_id IS NOT NULL OR s.lane IS NOT NULL)
       AND (h.id IS NULL OR h.home_id IS NOT NULL OR s.lane IS NULL OR s.lane < 0
            OR s.wallet_id <> h.wallet_id OR s.asset <> h.asset OR s.amount <> h.amount)
    UNION ALL
    -- moves between the rows of one grant ('lane' entries) create and destroy nothing
    SELECT 'lane_moves_balance', 'grant ' || coalesce(g.home_id, g.id),
           format('lane entries total %s', sum(j.amount))
      FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id
     WHERE j.kind = 'lane'
     GROUP BY coalesce(g.home_id, g.id)
    HAVING sum(j.amount) <> 0 OR sum(j.held) <> 0
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
                          'adjustment', 'overdraft', 'settlement', 'lane')
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

-- the back-office bundle (issue 16) gains credit_wallet_lanes (privileges.sql)
CREATE OR REPLACE VIEW credit_ledger.privilege_bundles (bundle, privilege, object_type, object_name) AS
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
                  'credit_allowance_set', 'credit_team_allocate', 'credit_wallet_lanes']),
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

COMMENT ON FUNCTION @extschema@.credit_wallet_lanes(text, int) IS 'set (or with lanes NULL report) a wallet''s spending lanes: concurrent spenders of the wallet or pool that do not wait for each other';
COMMENT ON TABLE credit_ledger.lanes IS 'spending lanes of a wallet and asset (lanes > 1): the lock a spender takes, and a hint of what the lane''s slices can spend';

SELECT pg_catalog.set_config('search_path', '@extschema@, pg_temp', true);
