//! Every SQL statement the Rust code runs, in one place. Objects are schema-qualified, values
//! are `$n` parameters, and each statement is prepared once per backend by [`crate::spi::exec`].
//! Functions run with `search_path = pg_catalog, credit_ledger, pg_temp`: nothing a caller can
//! create is on it (the extension's own schema, often `public`, is left off on purpose).

// ---- assets, rate cards, wallets ------------------------------------------------------

pub const ASSET_GET: &str = "SELECT scale, description FROM credit_ledger.assets WHERE asset = $1";
pub const ASSET_INSERT: &str =
    "INSERT INTO credit_ledger.assets (asset, scale, description) VALUES ($1, $2, $3)";
pub const ASSET_DESCRIBE: &str =
    "UPDATE credit_ledger.assets SET description = coalesce($2, description) WHERE asset = $1";

pub const RATE_CARD_ENSURE: &str =
    "INSERT INTO credit_ledger.rate_cards (rate_card) VALUES ($1) ON CONFLICT DO NOTHING";
pub const RATE_CARD_EXISTS: &str = "SELECT 1 FROM credit_ledger.rate_cards WHERE rate_card = $1";

pub const WALLET_ID: &str =
    "SELECT id, parent_id FROM credit_ledger.wallets WHERE wallet = $1/*G*/ AND tenant = $T/*G*/";
/// Serializes changes of pool structure (who is whose parent) until commit. The lock is the row
/// of the built-in rate card `default` (it exists in every version, is never deleted and is not
/// dumped), updated without changing it: unlike the advisory lock of 0.2.0, no other role can
/// take it, and under REPEATABLE READ the update fails with 40001 when another structure change
/// committed after the snapshot. A no-key update: wallets referencing the card are not blocked.
pub const POOL_STRUCTURE_LOCK: &str =
    "UPDATE credit_ledger.rate_cards SET description = description WHERE rate_card = 'default'";
pub const WALLET_CHILDREN: &str =
    "SELECT count(*) FROM credit_ledger.wallets WHERE parent_id = $1/*G*/ AND tenant = $T/*G*/";
pub const WALLET_INSERT: &str = "
WITH w AS (
INSERT INTO credit_ledger.wallets
    (wallet, parent_id, rate_card, overdraft_limit, low_balance_threshold, spend_cap, pool_limit,
     metadata, period, period_anchor, tracked/*t*/, tenant/*t*/)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, '{}'::jsonb), $9, $10,
        $4 > 0 OR $5 IS NOT NULL OR $6 IS NOT NULL OR $7 IS NOT NULL
        /*t*/, /*N*/coalesce((SELECT p.tenant FROM credit_ledger.wallets p WHERE p.id = $2), $1)/*N*//*G*/$T/*G*//*t*/)
RETURNING id/*t*/, tenant/*t*/
)/*t*/, k AS (INSERT INTO credit_ledger.wallet_keys (wallet, tenant) SELECT $1, w.tenant FROM w)/*t*/
SELECT id FROM w";
/// Current settings of a wallet, as the `credit_wallet` type's columns.
pub const WALLET_ROW: &str = "
SELECT w.wallet, p.wallet, w.rate_card, w.overdraft_limit, w.low_balance_threshold, w.spend_cap,
       w.pool_limit, w.period, w.frozen, w.metadata, w.created_at, w.period_anchor, w.id
  FROM credit_ledger.wallets w
  LEFT JOIN credit_ledger.wallets p ON p.id = w.parent_id/*t*/ AND p.tenant = w.tenant/*t*//*G*/ AND p.tenant = $T/*G*/
 WHERE w.wallet = $1/*G*/ AND w.tenant = $T/*G*/";
pub const WALLET_UPDATE: &str = "
UPDATE credit_ledger.wallets SET
    parent_id = $2, rate_card = $3, overdraft_limit = $4, low_balance_threshold = $5,
    spend_cap = $6, pool_limit = $7, frozen = $8, metadata = $9, period = $10, period_anchor = $11,
    tracked = tracked OR $4 > 0 OR $5 IS NOT NULL OR $6 IS NOT NULL OR $7 IS NOT NULL,
    updated_at = now()
 WHERE id = $1/*G*/ AND tenant = $T/*G*/";

/// A wallet's spending settings (columns 1..=8: see `authorize::Wallet::from_row`) and its rate card,
/// locked: every movement of a wallet's grants holds this lock first; members before pools.
/// The rate comes from [`crate::rate_cache`].
pub const WALLET_LOCK_FOR_SPEND: &str = "
SELECT id, parent_id, frozen, overdraft_limit, low_balance_threshold, spend_cap, pool_limit, tracked,
       coalesce(rate_card, 'default')
  FROM credit_ledger.wallets WHERE wallet = $1/*G*/ AND tenant = $T/*G*/ FOR NO KEY UPDATE";
/// The same without the lock (quotes).
pub const WALLET_FOR_QUOTE: &str = "
SELECT id, parent_id, frozen, overdraft_limit, low_balance_threshold, spend_cap, pool_limit, tracked,
       coalesce(rate_card, 'default')
  FROM credit_ledger.wallets WHERE wallet = $1/*G*/ AND tenant = $T/*G*/";
/// Every version of the rates of an action on a card and on `default`, for the rate cache.
pub const RATES_FOR_ACTION: &str = "
SELECT r.id, r.rate_card, r.variant, r.credits, r.asset, r.vendor_cost,
       (extract(epoch FROM r.effective_from) * 1000000)::bigint, a.scale
  FROM credit_ledger.rates r JOIN credit_ledger.assets a ON a.asset = r.asset
 WHERE r.action = $1 AND r.rate_card IN ($2, 'default')";
/// [`RATES_FOR_ACTION`] with each entry's fallback variant (0.7.0 on) and its volume tiers
/// (0.8.0 on; NULL on a 0.7.0 catalog, which has no such column).
pub const RATES_FOR_ACTION_V7: &str = "
SELECT r.id, r.rate_card, r.variant, r.credits, r.asset, r.vendor_cost,
       (extract(epoch FROM r.effective_from) * 1000000)::bigint, a.scale, r.fallback,
       (to_jsonb(r) -> 'tiers')::text
  FROM credit_ledger.rates r JOIN credit_ledger.assets a ON a.asset = r.asset
 WHERE r.action = $1 AND r.rate_card IN ($2, 'default')";
/// Lock a wallet by id (pool parents, holds, refunds, sweeps).
pub const WALLET_LOCK_ID: &str = "
SELECT id, parent_id, frozen, overdraft_limit, low_balance_threshold, spend_cap, pool_limit, tracked
  FROM credit_ledger.wallets WHERE id = $1/*G*/ AND tenant = $T/*G*/ FOR NO KEY UPDATE";
pub const WALLET_LOCK_KEY: &str = "
SELECT id, parent_id, frozen, overdraft_limit, low_balance_threshold, spend_cap, pool_limit, tracked
  FROM credit_ledger.wallets WHERE wallet = $1/*G*/ AND tenant = $T/*G*/ FOR NO KEY UPDATE";
pub const WALLET_TRY_LOCK_ID: &str =
    "SELECT id FROM credit_ledger.wallets WHERE id = $1/*G*/ AND tenant = $T/*G*/ FOR NO KEY UPDATE SKIP LOCKED";

/// [`WALLET_STATE`] with `$spent` added to the period's spend (column 2) and `$drawn` to its pool
/// draw (column 3).
macro_rules! wallet_state {
    ($spent:expr, $drawn:expr) => {
        concat!(
            "
SELECT coalesce(s.debt, 0),
       CASE WHEN s.period_start = c.cur THEN s.period_spent ELSE 0 END",
            $spent,
            ",
       CASE WHEN s.period_start = c.cur THEN s.period_pool_drawn ELSE 0 END",
            $drawn,
            ",
       coalesce(s.below_threshold, false), c.cur
  FROM (SELECT credit_ledger._period_start(w.period, w.period_anchor, now()) AS cur
          FROM credit_ledger.wallets w WHERE w.id = $1/*G*/ AND w.tenant = $T/*G*/) c
  LEFT JOIN credit_ledger.wallet_assets s ON s.wallet_id = $1 AND s.asset = $2/*G*/ AND s.tenant = $T/*G*/"
        )
    };
}
pub(crate) use wallet_state;
/// Running state of a wallet x asset in its current period.
pub const WALLET_STATE: &str = wallet_state!("", "");
pub const WALLET_STATE_SAVE: &str = "
INSERT INTO credit_ledger.wallet_assets AS s
    (wallet_id, asset, debt, period_start, period_spent, period_pool_drawn, below_threshold/*t*/, tenant/*t*/)
VALUES ($1, $2, $3, $4, $5, $6, $7/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/)
ON CONFLICT (wallet_id, asset/*t*/, tenant/*t*/) DO UPDATE SET
    debt = EXCLUDED.debt, period_start = EXCLUDED.period_start, period_spent = EXCLUDED.period_spent,
    period_pool_drawn = EXCLUDED.period_pool_drawn, below_threshold = EXCLUDED.below_threshold";

// ---- grants ---------------------------------------------------------------------------

/// The consumption-order walk over a wallet's spendable grants.
pub const GRANTS_SPENDABLE: &str = "
SELECT id, remaining - held, priority, (extract(epoch FROM expires_at) * 1000000)::bigint
  FROM credit_ledger.grants
 WHERE wallet_id = $1 AND asset = $2 AND live/*G*/ AND tenant = $T/*G*/
   AND effective_at <= now() AND (expires_at IS NULL OR expires_at > now())
   AND remaining > held
 ORDER BY priority, expires_at, id";
/// The head of the walk: the first grants in consumption order and the wallet's total
/// spendable, so a debit converts only the rows it may use (the whole walk is fetched only
/// when the head does not cover the cost).
///
/// The total is a scalar subquery, not `sum(..) OVER ()`: a window over the whole set makes the
/// head read, compute and buffer every live grant before the `LIMIT`; with the subquery the
/// head stops after 8 rows of the index and the total reads only the two columns it sums
/// (measured on a 100-grant stack: the statement ~20% cheaper, a 1-grant stack ~10% dearer).
pub const GRANTS_SPENDABLE_HEAD: &str = "
SELECT id, remaining - held, priority, (extract(epoch FROM expires_at) * 1000000)::bigint,
       (SELECT sum(t.remaining - t.held)
          FROM credit_ledger.grants t
         WHERE t.wallet_id = $1 AND t.asset = $2 AND t.live/*G*/ AND t.tenant = $T/*G*/
           AND t.effective_at <= now() AND (t.expires_at IS NULL OR t.expires_at > now())
           AND t.remaining > t.held)
  FROM credit_ledger.grants
 WHERE wallet_id = $1 AND asset = $2 AND live/*G*/ AND tenant = $T/*G*/
   AND effective_at <= now() AND (expires_at IS NULL OR expires_at > now())
   AND remaining > held
 ORDER BY priority, expires_at, id
 LIMIT 8";
/// The walk for quotes: credits reserved by holds past their TTL count as free.
pub const GRANTS_SPENDABLE_NOW: &str = "
SELECT g.id, g.remaining - g.held + CASE WHEN g.held > 0 THEN coalesce((
           SELECT sum(j.held) FROM credit_ledger.journal j
             JOIN credit_ledger.authorizations a ON a.id = j.authorization_id
            WHERE j.grant_id = g.id AND a.status = 'held' AND a.expires_at <= now()
              /*G*/ AND j.tenant = $T AND a.tenant = $T/*G*/), 0) ELSE 0 END,
       g.priority, (extract(epoch FROM g.expires_at) * 1000000)::bigint
  FROM credit_ledger.grants g
 WHERE g.wallet_id = $1 AND g.asset = $2 AND g.live/*G*/ AND g.tenant = $T/*G*/
   AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now())
 ORDER BY g.priority, g.expires_at, g.id";
pub const GRANT_BY_KEY: &str =
    "SELECT id, request_hash FROM credit_ledger.grants WHERE wallet_id = $1 AND idempotency_key = $2/*G*/ AND tenant = $T/*G*/";
pub const GRANT_INSERT: &str = "
INSERT INTO credit_ledger.grants
    (wallet_id, asset, category, priority, amount, remaining, live, effective_at, expires_at, unit_price,
     idempotency_key, request_hash, metadata, source/*t*/, tenant/*t*/)
VALUES ($1, $2, $3, $4, $5, 0, false, coalesce($6, now()), $7, coalesce($8, 0), $9, $10, $11, $12
        /*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/)
RETURNING id, effective_at";
pub const GRANT_ROW: &str = "
SELECT g.id, w.wallet, g.asset, g.category, g.priority, g.amount, g.remaining, g.held,
       g.effective_at, g.expires_at, g.unit_price, g.metadata, g.created_at
  FROM credit_ledger.grants g
  JOIN credit_ledger.wallets w ON w.id = g.wallet_id/*t*/ AND w.tenant = g.tenant/*t*//*G*/ AND w.tenant = $T/*G*/
 WHERE g.id = $1/*G*/ AND g.tenant = $T/*G*/";
/// [`GRANT_ROW`] with the credits of the grant's slices (0.4.0 on).
pub const GRANT_ROW_V4: &str = "
SELECT g.id, w.wallet, g.asset, g.category, g.priority, g.amount,
       g.remaining + coalesce(f.remaining, 0), g.held + coalesce(f.held, 0),
       g.effective_at, g.expires_at, g.unit_price, g.metadata, g.created_at
  FROM credit_ledger.grants g
  JOIN credit_ledger.wallets w ON w.id = g.wallet_id/*t*/ AND w.tenant = g.tenant/*t*//*G*/ AND w.tenant = $T/*G*/
  LEFT JOIN LATERAL (SELECT sum(x.remaining) AS remaining, sum(x.held) AS held
                       FROM credit_ledger.grants x
                      WHERE x.home_id = g.id/*t*/ AND x.tenant = g.tenant/*t*//*G*/ AND x.tenant = $T/*G*/) f ON true
 WHERE g.id = $1/*G*/ AND g.tenant = $T/*G*/";
/// The body of `credit_ledger._balance` (sql/schema.sql) as a statement of its own: a SQL
/// function with `SET search_path` is not inlined and re-plans its query on every call, which
/// made the capture path spend half its time planning.
pub const WALLET_BALANCE: &str = "
SELECT coalesce((
        SELECT sum(g.remaining - g.held)
          FROM credit_ledger.grants g
         WHERE g.wallet_id = $1 AND g.asset = $2 AND g.live/*G*/ AND g.tenant = $T/*G*/
           AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now())), 0)
     + coalesce((
        SELECT sum(j.held)
          FROM credit_ledger.authorizations a
          JOIN credit_ledger.journal j ON j.authorization_id = a.id/*t*/ AND j.tenant = a.tenant/*t*//*G*/ AND j.tenant = $T/*G*/
          JOIN credit_ledger.grants g ON g.id = j.grant_id/*t*/ AND g.tenant = j.tenant/*t*//*G*/ AND g.tenant = $T/*G*/
         WHERE a.status = 'held' AND a.expires_at <= now() AND g.wallet_id = $1 AND g.asset = $2/*G*/ AND a.tenant = $T/*G*/
           AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now())), 0)
     - coalesce((SELECT s.debt FROM credit_ledger.wallet_assets s WHERE s.wallet_id = $1 AND s.asset = $2/*G*/ AND s.tenant = $T/*G*/), 0)";

// ---- movements and the journal ----------------------------------------------------------

/// Apply grant movements and journal them. Arrays: grant_id (NULL = overdraft debt line),
/// wallet_id, kind, amount (change of remaining / of the debt line), held (change of held).
pub const APPLY: &str = "
WITH m AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::numeric[], $5::numeric[])
        AS m(grant_id, wallet_id, kind, amount, held)
), g AS (
    UPDATE credit_ledger.grants g
       SET (remaining, held, live) =
           (SELECT g.remaining + sum(x.a), g.held + sum(x.h), g.remaining + sum(x.a) > 0
              FROM unnest($1::bigint[], $4::numeric[], $5::numeric[]) AS x(i, a, h) WHERE x.i = g.id)
     WHERE g.id = ANY ($1::bigint[])/*G*/ AND g.tenant = $T/*G*/
)
INSERT INTO credit_ledger.journal (wallet_id, grant_id, asset, kind, amount, held, authorization_id, member_id, note/*t*/, tenant/*t*/)
SELECT m.wallet_id, m.grant_id, $6, m.kind, m.amount, m.held, $7, $8, $9
       /*t*/, /*N*/(SELECT w.tenant FROM credit_ledger.wallets w WHERE w.id = m.wallet_id)/*N*//*G*/$T/*G*//*t*/
  FROM m";

/// [`APPLY`] for one grant movement: grant id `$1`, wallet `$2`, kind `$3`, change of remaining
/// `$4`, change of held `$5`, then `$6..$9` as in [`APPLY`].
pub const APPLY_ONE: &str = "
WITH g AS (
    UPDATE credit_ledger.grants
       SET remaining = remaining + $4, held = held + $5, live = remaining + $4 > 0
     WHERE id = $1/*G*/ AND tenant = $T/*G*/
)
INSERT INTO credit_ledger.journal (wallet_id, grant_id, asset, kind, amount, held, authorization_id, member_id, note/*t*/, tenant/*t*/)
VALUES ($2, $1, $6, $3, $4, $5, $7, $8, $9/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $2)/*N*//*G*/$T/*G*//*t*/)";

/// The authorization row: `$1..$18` as in [`AUTHORIZE_WRITE`]; `$conflict` is the clause
/// before `RETURNING` (empty, or the keyed form's `ON CONFLICT`). Its tenant is the call's
/// (`$T`, given or found by the statement that read the wallet: [`crate::tenant`]), else read
/// from the wallet here (Citus takes no subquery in an `INSERT`: with the tenant known, there is
/// none).
macro_rules! authorization_insert {
    ($conflict:expr) => {
        concat!(
            "
    INSERT INTO credit_ledger.authorizations
        (wallet_id, kind, status, reason, action, variant, quantity, rate_id, asset, cost,
         vendor_cost, pool_amount, overdraft_amount, balance_after, idempotency_key, request_hash,
         metadata, expires_at/*t*/, tenant/*t*/)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
            CASE WHEN $2 = 'hold' AND $3 = 'held' THEN now() + $18 END
            /*t*//*T*/, $T/*T*//*U*/, (SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*U*//*t*/)",
            $conflict,
            "
    RETURNING id, created_at, expires_at/*t*/, tenant/*t*/"
        )
    };
}
pub(crate) use authorization_insert;
/// The keyed form's clause: a spender of a wallet with lanes is not serialized by a lock, so
/// an idempotency key already used, or in use by a transaction still open (the insert waits
/// for it), inserts nothing, and then the statements below move nothing (`$moved`).
macro_rules! keyed {
    () => {
        "
    ON CONFLICT (wallet_id, idempotency_key/*t*/, tenant/*t*/) WHERE idempotency_key IS NOT NULL DO NOTHING"
    };
}
pub(crate) use keyed;

/// Record an authorization (approved or declined) and apply its movements in one statement.
/// Arrays `$19..$23` as in [`APPLY`]. `$moved`: a condition on `a` for the grant update.
macro_rules! authorize_write {
    ($conflict:expr, $moved:expr) => {
        concat!(
            "
WITH a AS (",
            $crate::catalog::authorization_insert!($conflict),
            "
), m AS (
    SELECT * FROM unnest($19::bigint[], $20::bigint[], $21::text[], $22::numeric[], $23::numeric[])
        AS m(grant_id, wallet_id, kind, amount, held)
), g AS (
    -- an index lookup per grant whatever the generic plan estimates for the arrays
    UPDATE credit_ledger.grants g
       SET (remaining, held, live) =
           (SELECT g.remaining + sum(x.a), g.held + sum(x.h), g.remaining + sum(x.a) > 0
              FROM unnest($19::bigint[], $22::numeric[], $23::numeric[]) AS x(i, a, h) WHERE x.i = g.id)
     WHERE g.id = ANY ($19::bigint[])/*G*/ AND g.tenant = $T/*G*/",
            $moved,
            "
), j AS (
    INSERT INTO credit_ledger.journal (wallet_id, grant_id, asset, kind, amount, held, authorization_id, member_id/*t*/, tenant/*t*/)
    SELECT m.wallet_id, m.grant_id, $9, m.kind, m.amount, m.held, a.id, $1/*t*/, a.tenant/*t*/ FROM m, a
)
SELECT id, created_at, expires_at FROM a"
        )
    };
}
pub const AUTHORIZE_WRITE: &str = authorize_write!("", "");
/// [`AUTHORIZE_WRITE`] for a wallet with lanes (the `keyed!` clause).
pub const AUTHORIZE_WRITE_KEYED: &str = authorize_write!(keyed!(), " AND EXISTS (SELECT 1 FROM a)");

/// An authorization that moves nothing (a decline).
pub const AUTHORIZE_WRITE_NONE: &str = authorization_insert!("");
/// [`AUTHORIZE_WRITE_NONE`] for a wallet with lanes.
pub const AUTHORIZE_WRITE_NONE_KEYED: &str = authorization_insert!(keyed!());

/// An authorization that moves one grant (the common debit or hold): `$1..$18` as in
/// [`AUTHORIZE_WRITE`], then grant id `$19`, grant wallet `$20`, change of remaining `$21`,
/// change of held `$22`, journal kind `$23`. Single-row nodes only: a fraction of the
/// executor work of the array form. `$lane`: the lane hint of a fast spend, in the same
/// statement (`$24` the lane's wallet, `$25` the lane; the hint falls by `$22 - $21`).
macro_rules! authorize_write_one {
    ($conflict:expr, $moved:expr, $lane:expr) => {
        concat!(
            "
WITH a AS (",
            $crate::catalog::authorization_insert!($conflict),
            "
), g AS (
    UPDATE credit_ledger.grants
       SET remaining = remaining + $21, held = held + $22, live = remaining + $21 > 0
     WHERE id = $19/*G*/ AND tenant = $T/*G*/",
            $moved,
            $lane,
            "
), j AS (
    INSERT INTO credit_ledger.journal (wallet_id, grant_id, asset, kind, amount, held, authorization_id, member_id/*t*/, tenant/*t*/)
    SELECT $20, $19, $9, $23, $21, $22, a.id, $1/*t*/, a.tenant/*t*/ FROM a
)
SELECT id, created_at, expires_at FROM a"
        )
    };
}
pub(crate) use authorize_write_one;
macro_rules! lane_hint {
    ($moved:expr) => {
        concat!(
            "
), l AS (
    UPDATE credit_ledger.lanes SET free = free + $21 - $22
     WHERE wallet_id = $24 AND asset = $9 AND lane = $25/*G*/ AND tenant = $T/*G*/",
            $moved
        )
    };
}
pub const AUTHORIZE_WRITE_ONE: &str = authorize_write_one!("", "", "");
/// [`AUTHORIZE_WRITE_ONE`] for a wallet with lanes (the `keyed!` clause).
pub const AUTHORIZE_WRITE_ONE_KEYED: &str =
    authorize_write_one!(keyed!(), " AND EXISTS (SELECT 1 FROM a)", "");
/// [`AUTHORIZE_WRITE_ONE`] with the lane hint (a member's fast draw on a pool with lanes).
pub const AUTHORIZE_WRITE_ONE_LANE: &str = authorize_write_one!("", "", lane_hint!(""));
/// [`AUTHORIZE_WRITE_ONE_KEYED`] with the lane hint (a fast spend of a wallet with lanes).
pub const AUTHORIZE_WRITE_ONE_KEYED_LANE: &str = authorize_write_one!(
    keyed!(),
    " AND EXISTS (SELECT 1 FROM a)",
    lane_hint!(" AND EXISTS (SELECT 1 FROM a)")
);

// ---- authorizations ---------------------------------------------------------------------

pub const AUTH_BY_KEY: &str =
    "SELECT id, request_hash FROM credit_ledger.authorizations WHERE wallet_id = $1 AND idempotency_key = $2/*G*/ AND tenant = $T/*G*/";
pub const AUTH_WALLET: &str =
    "SELECT wallet_id FROM credit_ledger.authorizations WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// Whether part of an authorization was paid as overdraft debt (a refund gives that back to the
/// wallet's debt: it takes the whole wallet). Read without a lock: only a closed authorization
/// is refunded.
pub const AUTH_IN_DEBT: &str =
    "SELECT overdraft_amount > 0 FROM credit_ledger.authorizations WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// The quantity an authorization was made for (set once: read without a lock).
pub const AUTH_QUANTITY: &str =
    "SELECT quantity FROM credit_ledger.authorizations WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// Lock an authorization; columns used by capture, release and refund.
pub const AUTH_LOCK: &str = "
SELECT a.id, a.wallet_id, a.kind, a.status, a.asset, a.cost, a.rate_id, a.quantity,
       coalesce(a.captured, 0), a.refunded, a.expires_at <= coalesce($2, now()), a.close_key, a.close_hash,
       r.credits, s.scale, a.action, a.variant,
       -- since 0.8.0 (NULL before: to_jsonb has no such key): the rate's tiers, paid by fair use
       (to_jsonb(r) -> 'tiers')::text, coalesce((to_jsonb(a) ->> 'fair_use')::boolean, false)
  FROM credit_ledger.authorizations a
  LEFT JOIN credit_ledger.rates r ON r.id = a.rate_id
  JOIN credit_ledger.assets s ON s.asset = a.asset
 WHERE a.id = $1/*G*/ AND a.tenant = $T/*G*/ FOR UPDATE OF a";
/// Everything the `credit_authorization` type shows (a call in a run: the run's owner as its
/// wallet).
pub const AUTH_ROW_V5: &str = "
SELECT a.id, a.status <> 'declined', a.reason, coalesce(a.captured, a.cost),
       a.asset, a.balance_after, coalesce(o.wallet, w.wallet), a.kind, a.status, a.action, a.variant, a.quantity,
       a.rate_id, a.vendor_cost, a.captured, a.refunded, a.expires_at, a.idempotency_key, a.created_at
  FROM credit_ledger.authorizations a JOIN credit_ledger.wallets w ON w.id = a.wallet_id
  LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of/*G*/ AND o.tenant = $T/*G*/
 WHERE a.id = $1/*G*/ AND a.tenant = $T/*G*//*G*/ AND w.tenant = $T/*G*/";
/// [`AUTH_ROW_V5`] on a catalog older than 0.5.0 (no runs).
pub const AUTH_ROW: &str = "
SELECT a.id, a.status <> 'declined', a.reason, coalesce(a.captured, a.cost),
       a.asset, a.balance_after, w.wallet, a.kind, a.status, a.action, a.variant, a.quantity,
       a.rate_id, a.vendor_cost, a.captured, a.refunded, a.expires_at, a.idempotency_key, a.created_at
  FROM credit_ledger.authorizations a JOIN credit_ledger.wallets w ON w.id = a.wallet_id/*t*/ AND w.tenant = a.tenant/*t*//*G*/ AND w.tenant = $T/*G*/
 WHERE a.id = $1/*G*/ AND a.tenant = $T/*G*/";
/// What a hold still reserves, per grant, in consumption order.
pub const HOLD_PARTS: &str = "
SELECT j.grant_id, j.wallet_id, sum(j.held), bool_or(g.expires_at IS NOT NULL AND g.expires_at <= now())
  FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id/*t*/ AND g.tenant = j.tenant/*t*//*G*/ AND g.tenant = $T/*G*/
 WHERE j.authorization_id = $1/*G*/ AND j.tenant = $T/*G*/
 GROUP BY j.grant_id, j.wallet_id, g.priority, g.expires_at
HAVING sum(j.held) > 0
 ORDER BY g.priority, g.expires_at, j.grant_id";
pub const AUTH_CLOSE: &str = "
UPDATE credit_ledger.authorizations
   SET status = $2, captured = $3, captured_quantity = $4, closed_at = now(), close_key = $5,
       close_hash = $6, reason = coalesce($7, reason), balance_after = coalesce($8, balance_after),
       pool_amount = pool_amount + coalesce($9, 0), overdraft_amount = overdraft_amount + coalesce($10, 0),
       vendor_cost = CASE WHEN $2 = 'captured'
                          THEN (SELECT r.vendor_cost * $4 FROM credit_ledger.rates r WHERE r.id = rate_id)
                          ELSE vendor_cost END
 WHERE id = $1/*G*/ AND tenant = $T/*G*/";
pub const EXPIRED_HOLDS_ON_WALLET: &str = "
SELECT DISTINCT a.id FROM credit_ledger.authorizations a
  JOIN credit_ledger.journal j ON j.authorization_id = a.id/*t*/ AND j.tenant = a.tenant/*t*//*G*/ AND j.tenant = $T/*G*/
 WHERE a.status = 'held' AND a.expires_at <= coalesce($2, now()) AND j.wallet_id = $1 AND j.kind = 'hold'/*G*/ AND a.tenant = $T/*G*/
 ORDER BY a.id";
pub const EXPIRED_HOLDS: &str = "
SELECT id, wallet_id/*t*/, tenant/*t*/ FROM credit_ledger.authorizations
 WHERE status = 'held' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2";

// ---- refunds ------------------------------------------------------------------------------

/// What each grant (or the debt line) paid for an authorization, and what was refunded to it,
/// in consumption order (the debt line last).
pub const PAID_PARTS: &str = "
SELECT j.grant_id, j.wallet_id,
       -sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'capture', 'overdraft')),
       coalesce(sum(j.amount) FILTER (WHERE j.kind = 'refund'), 0),
       bool_or(g.expires_at IS NOT NULL AND g.expires_at <= now())
  FROM credit_ledger.journal j LEFT JOIN credit_ledger.grants g ON g.id = j.grant_id/*t*/ AND g.tenant = j.tenant/*t*//*G*/ AND g.tenant = $T/*G*/
 WHERE j.authorization_id = $1/*G*/ AND j.tenant = $T/*G*/ AND j.kind IN ('debit', 'capture', 'overdraft', 'refund')
 GROUP BY j.grant_id, j.wallet_id, g.priority, g.expires_at
HAVING coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'capture', 'overdraft')), 0) > 0
 ORDER BY j.grant_id IS NULL, g.priority, g.expires_at, j.grant_id";
pub const REFUND_BY_KEY: &str = "
SELECT id, request_hash, authorization_id, amount FROM credit_ledger.refunds
 WHERE wallet_id = $1 AND idempotency_key = $2/*G*/ AND tenant = $T/*G*/";
pub const REFUND_INSERT: &str = "
INSERT INTO credit_ledger.refunds (authorization_id, wallet_id, amount, reason, idempotency_key, request_hash, metadata/*t*/, tenant/*t*/)
VALUES ($1, $2, $3, $4, $5, $6, $7/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $2)/*N*//*G*/$T/*G*//*t*/) RETURNING id";
pub const AUTH_REFUNDED: &str =
    "UPDATE credit_ledger.authorizations SET refunded = refunded + $2 WHERE id = $1/*G*/ AND tenant = $T/*G*/ RETURNING refunded";

// ---- lifecycle -------------------------------------------------------------------------------

/// Grants past their expiry, except those ending at or after an allowance boundary of their
/// wallet and asset that is still to be processed (its rollover looks at what is unused then:
/// a tick that stopped at its bound or skipped a busy wallet must not expire them first).
pub const WALLETS_WITH_EXPIRED_GRANTS: &str = "
SELECT DISTINCT g.wallet_id/*t*/, g.tenant/*t*/ FROM credit_ledger.grants g
 WHERE g.live AND g.expires_at <= $1 AND g.remaining > g.held
   AND NOT EXISTS (SELECT 1 FROM credit_ledger.allowances l
                    WHERE l.wallet_id = g.wallet_id/*t*/ AND l.tenant = g.tenant/*t*//*G*/ AND l.tenant = $T/*G*/ AND l.asset = g.asset AND l.next_boundary <= g.expires_at)
 LIMIT $2";
pub const EXPIRED_GRANTS_OF_WALLET: &str = "
SELECT g.id, g.asset, g.remaining - g.held FROM credit_ledger.grants g
 WHERE g.wallet_id = $1 AND g.live/*G*/ AND g.tenant = $T/*G*/ AND g.expires_at <= $2 AND g.remaining > g.held
   AND NOT EXISTS (SELECT 1 FROM credit_ledger.allowances l
                    WHERE l.wallet_id = g.wallet_id/*t*/ AND l.tenant = g.tenant/*t*//*G*/ AND l.tenant = $T/*G*/ AND l.asset = g.asset AND l.next_boundary <= g.expires_at)
 ORDER BY g.id";

// ---- rates --------------------------------------------------------------------------------

pub const RATE_AT: &str = "
SELECT id, credits, asset, unit, vendor_cost, effective_from
  FROM credit_ledger.rates
 WHERE rate_card = $1 AND action = $2 AND variant IS NOT DISTINCT FROM $3 AND effective_from = $4";
pub const RATE_CURRENT: &str = "
SELECT credits, asset, unit, vendor_cost
  FROM credit_ledger.rates
 WHERE rate_card = $1 AND action = $2 AND variant IS NOT DISTINCT FROM $3 AND effective_from <= $4
 ORDER BY effective_from DESC LIMIT 1";
pub const RATE_USED: &str = "SELECT 1 FROM credit_ledger.authorizations WHERE rate_id = $1 LIMIT 1";
pub const RATE_INSERT: &str = "
INSERT INTO credit_ledger.rates (rate_card, action, variant, credits, asset, unit, vendor_cost, effective_from)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()))
RETURNING id, effective_from";
pub const RATE_REPLACE: &str = "
UPDATE credit_ledger.rates SET credits = $2, asset = $3, unit = $4, vendor_cost = $5 WHERE id = $1";
pub const RATE_ROW: &str = "
SELECT id, rate_card, action, variant, credits, asset, unit, vendor_cost, effective_from
  FROM credit_ledger.rates WHERE id = $1";
/// The current (latest effective) version of every entry of a card.
pub const RATE_CARD_CURRENT: &str = r#"
SELECT DISTINCT ON (action, variant) action, variant, credits::text, asset, unit, vendor_cost::text,
       to_char(effective_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
  FROM credit_ledger.rates
 WHERE rate_card = $1 AND effective_from <= now()
 ORDER BY action, variant, effective_from DESC"#;
pub const RATE_CARD_DESCRIBE: &str =
    "UPDATE credit_ledger.rate_cards SET description = coalesce($2, description) WHERE rate_card = $1 RETURNING description";

pub const NOTIFY: &str = "SELECT pg_catalog.pg_notify('credit_ledger', $1)";
pub const WALLET_THRESHOLD: &str =
    "SELECT low_balance_threshold FROM credit_ledger.wallets WHERE id = $1/*G*/ AND tenant = $T/*G*/";
pub const WALLET_GET_ID: &str = "
SELECT id, parent_id, frozen, overdraft_limit, low_balance_threshold, spend_cap, pool_limit, tracked
  FROM credit_ledger.wallets WHERE id = $1/*G*/ AND tenant = $T/*G*/";
pub const WALLET_NAME: &str =
    "SELECT wallet FROM credit_ledger.wallets WHERE id = $1/*G*/ AND tenant = $T/*G*/";
pub const RATE_CARD_GET: &str =
    "SELECT description FROM credit_ledger.rate_cards WHERE rate_card = $1";

// ---- allowances -------------------------------------------------------------------------------

pub const ALLOWANCE_GET: &str = "
SELECT id, amount, period, anchor, rollover_cap, rollover_shares::text[], next_boundary, current_grant_id, a.scale
  FROM credit_ledger.allowances l JOIN credit_ledger.assets a USING (asset)
 WHERE l.wallet_id = $1 AND l.asset = $2/*G*/ AND l.tenant = $T/*G*/";
/// `next_boundary` ($8) is computed by the caller ([`crate::period`]: `anchor + k × period`
/// from the anchor, never the previous boundary + period, which drifts).
pub const ALLOWANCE_INSERT: &str = "
INSERT INTO credit_ledger.allowances (wallet_id, asset, amount, period, anchor, rollover_cap, rollover_shares, next_boundary/*t*/, tenant/*t*/)
VALUES ($1, $2, $3, $4, $5, $6, $7::text[]::numeric[], $8/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/)
RETURNING id";
pub const ALLOWANCE_UPDATE: &str = "
UPDATE credit_ledger.allowances SET amount = $2, rollover_cap = $3, rollover_shares = $4::text[]::numeric[]
 WHERE id = $1/*G*/ AND tenant = $T/*G*/";
pub const ALLOWANCE_ADVANCE: &str = "
UPDATE credit_ledger.allowances SET next_boundary = $2, current_grant_id = coalesce($3, current_grant_id) WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// Due boundaries (the caller computes the next one from the anchor: no drift).
pub const ALLOWANCES_DUE: &str = "
SELECT l.id, l.wallet_id, l.asset, l.amount, l.period, l.rollover_cap, l.rollover_shares::text[],
       l.next_boundary, l.current_grant_id, a.scale, l.anchor/*t*/, l.tenant/*t*/
  FROM credit_ledger.allowances l JOIN credit_ledger.assets a USING (asset)
 WHERE l.next_boundary <= $1 AND l.id <> ALL ($3) AND l.wallet_id <> ALL ($4)
 ORDER BY l.next_boundary, l.id LIMIT $2";
pub const ALLOWANCE_DUE_ONE: &str = "
SELECT l.id, l.wallet_id, l.asset, l.amount, l.period, l.rollover_cap, l.rollover_shares::text[],
       l.next_boundary, l.current_grant_id, a.scale, l.anchor
  FROM credit_ledger.allowances l JOIN credit_ledger.assets a USING (asset)
 WHERE l.id = $1/*G*/ AND l.tenant = $T/*G*/ AND l.next_boundary <= $2";
/// Grants of a wallet ending at a boundary that a rollover policy looks at.
pub const ENDING_GRANTS: &str = "
SELECT id, remaining - held, source, unit_price
  FROM credit_ledger.grants
 WHERE wallet_id = $1 AND asset = $2/*G*/ AND tenant = $T/*G*/ AND expires_at = $3 AND remaining > held
   AND (source = 'allowance' OR source LIKE 'rollover:%')
 ORDER BY id";
pub const ALLOWANCE_ROW: &str = "
SELECT w.wallet, l.asset, l.amount, l.period, l.rollover_cap, l.rollover_shares::text, l.next_boundary
  FROM credit_ledger.allowances l JOIN credit_ledger.wallets w ON w.id = l.wallet_id/*t*/ AND w.tenant = l.tenant/*t*//*G*/ AND w.tenant = $T/*G*/ WHERE l.id = $1/*G*/ AND l.tenant = $T/*G*/";

// ---- lanes (0.4.0 on; see crate::lanes) -------------------------------------------------------

/// [`WALLET_LOCK_FOR_SPEND`] with lanes (column 10), whatever their number.
pub const WALLET_LOCK_FOR_SPEND_V4: &str = "
SELECT id, parent_id, frozen, overdraft_limit, low_balance_threshold, spend_cap, pool_limit, tracked,
       coalesce(rate_card, 'default'), lanes/*t*/, tenant AS tenant_/*t*/
  FROM credit_ledger.wallets WHERE wallet = $1/*G*/ AND tenant = $T/*G*/ FOR NO KEY UPDATE";
/// [`WALLET_LOCK_ID`] with lanes (column 9).
pub const WALLET_LOCK_ID_V4: &str = "
SELECT id, parent_id, frozen, overdraft_limit, low_balance_threshold, spend_cap, pool_limit, tracked, lanes
  FROM credit_ledger.wallets WHERE id = $1/*G*/ AND tenant = $T/*G*/ FOR NO KEY UPDATE";
/// [`WALLET_GET_ID`] with lanes (column 9).
pub const WALLET_GET_ID_V4: &str = "
SELECT id, parent_id, frozen, overdraft_limit, low_balance_threshold, spend_cap, pool_limit, tracked, lanes
  FROM credit_ledger.wallets WHERE id = $1/*G*/ AND tenant = $T/*G*/";
pub const WALLET_LANES: &str =
    "SELECT lanes FROM credit_ledger.wallets WHERE id = $1/*G*/ AND tenant = $T/*G*/";
pub const WALLET_SET_LANES: &str =
    "UPDATE credit_ledger.wallets SET lanes = $2, updated_at = now() WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// Every lane of a wallet (all assets), locked in lane order.
pub const LANES_LOCK_ALL: &str = "
SELECT 1 FROM credit_ledger.lanes WHERE wallet_id = $1/*G*/ AND tenant = $T/*G*/
 ORDER BY asset, lane FOR NO KEY UPDATE";
/// The condition of [`LANE_TAKE`] and [`LANE_TAKE_WALK`] that lane `l`'s unexpired slices
/// (this statement's snapshot) cover `$4`.
macro_rules! lane_slices_cover {
    () => {
        "
   AND coalesce((SELECT sum(g.remaining - g.held) FROM credit_ledger.grants g
                  WHERE g.wallet_id = $1 AND g.asset = $2 AND g.lane = l.lane AND g.live/*G*/ AND g.tenant = $T/*G*/
                    AND g.home_id IS NOT NULL AND g.remaining > g.held
                    AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now())), 0) >= $4"
    };
}
pub(crate) use lane_slices_cover;
/// [`LANE_TAKE`]'s statement with `$cap` after the hint's condition and `$cover` (the
/// slices' sum, [`lane_slices_cover`], or nothing: [`LANE_TAKE_BY_HINT`]).
macro_rules! lane_take {
    ($cap:expr, $cover:expr) => {
        concat!(
            "
SELECT l.lane FROM credit_ledger.lanes l
 WHERE l.wallet_id = $1 AND l.asset = $2 AND l.lane >= $5 AND l.lane < $3 AND l.free >= $4/*G*/ AND l.tenant = $T/*G*/",
            $cap,
            $cover,
            "
 ORDER BY l.lane
 FOR NO KEY UPDATE OF l SKIP LOCKED LIMIT 1"
        )
    };
}
pub(crate) use lane_take;
/// Lock one free lane whose hint covers `$4`, among lanes `$5 .. $3` in order (then the
/// caller tries `0 .. $5`: an index range, no sort). The hint is re-checked on the lane's
/// latest version after the lock (a spender that committed since this statement's snapshot
/// updated it), so a lane is only taken when its last writer left it able to pay.
///
/// The lane's unexpired slices are summed too (this statement's snapshot): the hint still counts
/// a slice whose grant expired until a sweep refreshes it, and a spender holding a lane that
/// cannot pay would go to the exact path with that lane held, a deadlock against another
/// exact-path spender (found by the stress suite). A slice changed after the snapshot shows in
/// the hint, re-checked on the lane's latest version.
pub const LANE_TAKE: &str = lane_take!("", lane_slices_cover!());
/// [`LANE_TAKE`] on the hint alone: what a spender in a subtransaction takes first; a lane whose
/// slices pay less is given back and a lane taken again with [`LANE_TAKE`] (crate::authorize).
pub const LANE_TAKE_BY_HINT: &str = lane_take!("", "");
/// [`LANE_TAKE_WALK`]'s statement with `$cap` and `$cover` as [`lane_take`]'s.
macro_rules! lane_take_walk {
    ($cap:expr, $cover:expr) => {
        concat!("
WITH t AS (
    SELECT l.lane, l.ctid
      FROM credit_ledger.lanes l
     WHERE l.wallet_id = $1 AND l.asset = $2 AND l.lane >= $5 AND l.lane < $3 AND l.free >= $4/*G*/ AND l.tenant = $T/*G*/", $cap, $cover, "
     ORDER BY l.lane
       FOR NO KEY UPDATE OF l SKIP LOCKED LIMIT 1
), f AS MATERIALIZED (
    SELECT t.lane, EXISTS (SELECT 1 FROM credit_ledger.lanes s WHERE s.ctid = t.ctid/*G*/ AND s.tenant = $T/*G*/) AS fresh
      FROM t
)
SELECT f.lane, f.fresh, g.id, g.remaining - g.held, g.priority,
       (extract(epoch FROM g.expires_at) * 1000000)::bigint
  FROM f LEFT JOIN LATERAL (
       SELECT id, remaining, held, priority, expires_at, home_id
         FROM credit_ledger.grants
        WHERE f.fresh AND wallet_id = $1 AND asset = $2 AND lane = f.lane AND live/*G*/ AND tenant = $T/*G*/
          AND home_id IS NOT NULL
          AND effective_at <= now() AND (expires_at IS NULL OR expires_at > now())
          AND remaining > held
        ORDER BY priority, expires_at, home_id
       OFFSET 0) g ON true")
    };
}
pub(crate) use lane_take_walk;
/// [`LANE_TAKE`] and, in the same statement, the lane's slices in consumption order (columns
/// 3..=6, NULL when it has none), as [`LANE_LOTS_ONLY`] reads them. They are read with the
/// statement's snapshot, taken before the lock: column 2 says whether that is the locked
/// version of the lane row. Every change to a lane's slices rewrites its lane row in the same
/// transaction (the hint), so when the locked version is the snapshot's, no change to the
/// slices committed after the snapshot; otherwise the caller reads them again
/// ([`LANE_LOTS_ONLY`], a new snapshot). `fresh` is computed once, for the lane taken, not for
/// every candidate (a TID scan: does the snapshot see the locked version?). `OFFSET 0` keeps
/// the slice walk an index scan on that lane, in consumption order without a sort (flattened
/// into the join, the planner walked every slice of the wallet and filtered on the lane).
pub const LANE_TAKE_WALK: &str = lane_take_walk!("", lane_slices_cover!());
/// [`LANE_TAKE_WALK`] on the hint alone ([`LANE_TAKE_BY_HINT`]).
pub const LANE_TAKE_WALK_BY_HINT: &str = lane_take_walk!("", "");
/// The spendable slices of lane `$3` of a wallet x asset in consumption order; `$extra`:
/// more columns.
macro_rules! lane_walk {
    ($extra:expr) => {
        concat!(
            "
SELECT id, remaining - held, priority, (extract(epoch FROM expires_at) * 1000000)::bigint",
            $extra,
            "
  FROM credit_ledger.grants
 WHERE wallet_id = $1 AND asset = $2 AND lane = $3 AND live AND home_id IS NOT NULL/*G*/ AND tenant = $T/*G*/
   AND effective_at <= now() AND (expires_at IS NULL OR expires_at > now())
   AND remaining > held
 ORDER BY priority, expires_at, home_id"
        )
    };
}
/// The slices of one lane, and (column 5) the committed total of every spendable row of the
/// wallet x asset, for the balance after the spend.
pub const LANE_LOTS: &str = lane_walk!(
    ",
       (SELECT sum(t.remaining - t.held)
          FROM credit_ledger.grants t
         WHERE t.wallet_id = $1 AND t.asset = $2 AND t.live/*G*/ AND t.tenant = $T/*G*/
           AND t.effective_at <= now() AND (t.expires_at IS NULL OR t.expires_at > now())
           AND t.remaining > t.held)"
);
/// [`LANE_LOTS`] without the wallet's total (a pool's lane: the member's draw needs only the lane).
pub const LANE_LOTS_ONLY: &str = lane_walk!("");
/// Every spendable row of a wallet x asset (home rows and slices of every lane) in exact
/// consumption order: priority, expiry, the grant (a slice sorts as its home grant), lane.
pub const LANES_ALL_LOTS: &str = "
SELECT id, remaining - held, priority, (extract(epoch FROM expires_at) * 1000000)::bigint
  FROM credit_ledger.grants
 WHERE wallet_id = $1 AND asset = $2 AND live/*G*/ AND tenant = $T/*G*/
   AND effective_at <= now() AND (expires_at IS NULL OR expires_at > now())
   AND remaining > held
 ORDER BY priority, expires_at, coalesce(home_id, id), lane NULLS FIRST";
pub const LANE_FREE_ADD: &str = "
UPDATE credit_ledger.lanes SET free = free + $4 WHERE wallet_id = $1 AND asset = $2 AND lane = $3/*G*/ AND tenant = $T/*G*/";
/// The rows of every grant of a wallet x asset that has unexpired credit not held
/// (`$3`: only this grant), as (row id, grant, lane, free): the input of a spread.
pub const LANES_FAMILIES: &str = "
SELECT g.id, coalesce(g.home_id, g.id), g.lane, CASE WHEN g.live THEN g.remaining - g.held ELSE 0 END
  FROM credit_ledger.grants g
 WHERE g.wallet_id = $1 AND g.asset = $2/*G*/ AND g.tenant = $T/*G*/
   AND coalesce(g.home_id, g.id) IN (
       SELECT coalesce(f.home_id, f.id) FROM credit_ledger.grants f
        WHERE f.wallet_id = $1 AND f.asset = $2 AND f.live/*G*/ AND f.tenant = $T/*G*/ AND f.remaining > f.held
          AND (f.expires_at IS NULL OR f.expires_at > now())
          AND ($3::bigint IS NULL OR coalesce(f.home_id, f.id) = $3))
 ORDER BY 2, g.lane NULLS FIRST";
/// A new, empty slice of grant `$1` in lane `$2`.
pub const SLICE_INSERT: &str = "
INSERT INTO credit_ledger.grants
    (wallet_id, asset, category, priority, amount, remaining, live, effective_at, expires_at, unit_price,
     source, created_at, lane, home_id/*t*/, tenant/*t*/)
SELECT wallet_id, asset, category, priority, amount, 0, false, effective_at, expires_at, unit_price,
       source, created_at, $2, id/*t*/, tenant/*t*/
  FROM credit_ledger.grants WHERE id = $1/*G*/ AND tenant = $T/*G*/
RETURNING id";
/// Lanes `0 .. $3` of a wallet x asset exist.
pub const LANES_ENSURE: &str = "
INSERT INTO credit_ledger.lanes (wallet_id, asset, lane/*t*/, tenant/*t*/)
SELECT $1, $2, n/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/ FROM generate_series(0, $3 - 1) n
ON CONFLICT DO NOTHING";
/// Recompute every lane hint of a wallet (its lanes locked): what the lane's slices can spend
/// now; 0 for a lane beyond the wallet's lane count.
pub const LANES_REFRESH: &str = "
UPDATE credit_ledger.lanes l
   SET free = (SELECT coalesce(sum(g.remaining - g.held), 0) FROM credit_ledger.grants g
                WHERE g.wallet_id = l.wallet_id AND g.asset = l.asset AND g.lane = l.lane AND g.live
                  AND l.lane < $2/*t*/ AND g.tenant = l.tenant/*t*//*G*/ AND g.tenant = $T/*G*/
                  AND g.home_id IS NOT NULL AND g.remaining > g.held
                  AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now()))
 WHERE l.wallet_id = $1/*G*/ AND l.tenant = $T/*G*/";
pub const LANES_ASSETS: &str = "
SELECT DISTINCT asset FROM credit_ledger.grants WHERE wallet_id = $1 AND live/*G*/ AND tenant = $T/*G*/ ORDER BY asset";
/// The lanes of the slices authorization `$1` moved, locked in order.
pub const LANES_LOCK_OF_AUTH: &str = "
SELECT 1 FROM credit_ledger.lanes l
 WHERE (l.wallet_id, l.asset, l.lane) IN (
       SELECT g.wallet_id, g.asset, g.lane FROM credit_ledger.journal j
         JOIN credit_ledger.grants g ON g.id = j.grant_id/*t*/ AND g.tenant = j.tenant/*t*//*G*/ AND g.tenant = $T/*G*/
        WHERE j.authorization_id = $1 AND g.lane IS NOT NULL/*G*/ AND j.tenant = $T/*G*/)/*G*/ AND l.tenant = $T/*G*/
 ORDER BY l.wallet_id, l.asset, l.lane FOR NO KEY UPDATE";
/// [`LANES_LOCK_OF_AUTH`] without waiting: (locked, wanted).
pub const LANES_TRY_LOCK_OF_AUTH: &str = "
WITH want AS (
    SELECT DISTINCT g.wallet_id, g.asset, g.lane FROM credit_ledger.journal j
      JOIN credit_ledger.grants g ON g.id = j.grant_id/*t*/ AND g.tenant = j.tenant/*t*//*G*/ AND g.tenant = $T/*G*/
     WHERE j.authorization_id = $1 AND g.lane IS NOT NULL/*G*/ AND j.tenant = $T/*G*/
), l AS (
    SELECT 1 FROM credit_ledger.lanes l
     WHERE (l.wallet_id, l.asset, l.lane) IN (SELECT * FROM want)/*G*/ AND l.tenant = $T/*G*/
     ORDER BY l.wallet_id, l.asset, l.lane FOR NO KEY UPDATE SKIP LOCKED)
SELECT (SELECT count(*) FROM l), (SELECT count(*) FROM want)";
/// The hints of the lanes of wallet `$1` that hold the rows `$2` (their lanes locked).
pub const LANES_REFRESH_ROWS: &str = "
UPDATE credit_ledger.lanes l
   SET free = (SELECT coalesce(sum(g.remaining - g.held), 0) FROM credit_ledger.grants g
                WHERE g.wallet_id = l.wallet_id AND g.asset = l.asset AND g.lane = l.lane AND g.live
                  AND l.lane < w.lanes/*t*/ AND g.tenant = l.tenant/*t*//*G*/ AND g.tenant = $T/*G*/
                  AND g.home_id IS NOT NULL AND g.remaining > g.held
                  AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now()))
  FROM credit_ledger.wallets w
 WHERE w.id = l.wallet_id AND l.wallet_id = $1/*t*/ AND w.tenant = l.tenant/*t*//*G*/ AND w.tenant = $T/*G*//*G*/ AND l.tenant = $T AND w.tenant = $T/*G*/
   AND (l.asset, l.lane) IN (SELECT g.asset, g.lane FROM credit_ledger.grants g
                              WHERE g.id = ANY ($2) AND g.lane IS NOT NULL/*G*/ AND g.tenant = $T/*G*/)";
/// The low-balance latch of a wallet with lanes, if free (see `lanes::alert`).
pub const LATCH_TRY: &str = "
SELECT below_threshold FROM credit_ledger.wallet_assets
 WHERE wallet_id = $1 AND asset = $2/*G*/ AND tenant = $T/*G*/ FOR NO KEY UPDATE SKIP LOCKED";
pub const LATCH_SET: &str =
    "UPDATE credit_ledger.wallet_assets SET below_threshold = true WHERE wallet_id = $1 AND asset = $2/*G*/ AND tenant = $T/*G*/";
/// The counter row of a wallet x asset exists (its latch is taken with SKIP LOCKED).
pub const LATCH_ENSURE: &str = "
INSERT INTO credit_ledger.wallet_assets (wallet_id, asset/*t*/, tenant/*t*/)
VALUES ($1, $2/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/) ON CONFLICT DO NOTHING";

// ---- agent runs (0.5.0 on; see crate::runs): in catalog_runs.rs ---------------------------

pub use crate::catalog_runs::*;

// ---- spend caps sliced over lanes (0.10.0 on; see crate::lane_caps): in catalog_lane_caps.rs --
pub use crate::catalog_lane_caps::*;
// ---- limited members (0.11.0 on; see crate::member_rooms): in catalog_member_rooms.rs -------
pub use crate::catalog_member_rooms::*;

// ---- corrections, transfers, closes (0.6.0 on; see crate::corrections) -----------------------
pub use crate::catalog_corrections::*;

// ---- the overage menu (0.7.0 on; see crate::overage) -----------------------------------------
pub use crate::catalog_overage::*;

// ---- the spender's wallet: one lane, lanes, free members (see crate::lanes::spend_wallet) ------
pub use crate::catalog_members::*;

// ---- tenants (0.12.0 on): in catalog_tenants.rs ----------------------------------------------
pub use crate::catalog_tenants::*;
