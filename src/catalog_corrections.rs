//! SQL statements of corrections, transfers and wallet closes (since 0.6.0; re-exported by
//! `catalog`). Used only on a catalog that has `credit_ledger.operations`.

/// A grant as a correction sees it: wallet, asset, home row, run slice source, expired, wallet
/// name, whether its wallet is a run's.
pub const VOID_GRANT: &str = "
SELECT g.wallet_id, g.asset, g.home_id, g.source_id,
       g.expires_at IS NOT NULL AND g.expires_at <= now(), w.wallet, w.run_of IS NOT NULL
  FROM credit_ledger.grants g JOIN credit_ledger.wallets w ON w.id = g.wallet_id/*t*/ AND w.tenant = g.tenant/*t*//*G*/ AND w.tenant = $T/*G*/
 WHERE g.id = $1/*G*/ AND g.tenant = $T/*G*/";
/// The rows of grant `$1` (its home row and its lane slices) with credit: (row, free, held).
pub const GRANT_ROWS: &str = "
SELECT id, remaining - held, held
  FROM credit_ledger.grants
 WHERE (id = $1 OR home_id = $1) AND live/*G*/ AND tenant = $T/*G*/
 ORDER BY lane NULLS FIRST";
/// An operation by its wallet and idempotency key: (id, request hash).
pub const OP_BY_KEY: &str = "
SELECT id, request_hash FROM credit_ledger.operations WHERE wallet_id = $1 AND idempotency_key = $2/*G*/ AND tenant = $T/*G*/";
/// A new operation: kind, wallet, to wallet, grant, asset, amount, done, pending, open,
/// disposition, reason, key, hash, metadata.
pub const OP_INSERT: &str = "
INSERT INTO credit_ledger.operations
    (kind, wallet_id, to_wallet_id, grant_id, asset, amount, done, pending, open, disposition, reason,
     idempotency_key, request_hash, metadata/*t*/, tenant/*t*/)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $2)/*N*//*G*/$T/*G*//*t*/)
RETURNING id";
pub const OP_DONE: &str = "
UPDATE credit_ledger.operations SET done = $2, pending = $3, open = $4 WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// [`OP_ROWS`] with `$balance` as the balance column (10); column 12: the wallet's id.
macro_rules! op_rows {
    ($balance:expr) => {
        concat!(
            "
SELECT o.id, o.kind, w.wallet, t.wallet, o.grant_id, x.asset, o.amount, x.done, o.pending,
       ",
            $balance,
            ", o.created_at, o.wallet_id
  FROM credit_ledger.operations o
  JOIN credit_ledger.wallets w ON w.id = o.wallet_id/*t*/ AND w.tenant = o.tenant/*t*//*G*/ AND w.tenant = $T/*G*/
  -- (a transfer's receiver may be in another tenant: named only where its tenant is the same)
  LEFT JOIN credit_ledger.wallets t ON t.id = o.to_wallet_id/*G*/ AND t.tenant = $T/*G*/
  CROSS JOIN LATERAL (
      SELECT o.asset, o.done WHERE o.asset IS NOT NULL
      UNION ALL
      SELECT j.asset, -sum(j.amount) FROM credit_ledger.journal j
       WHERE o.asset IS NULL AND j.operation_id = o.id AND j.wallet_id = o.wallet_id/*t*/ AND j.tenant = o.tenant/*t*//*G*/ AND j.tenant = $T/*G*/
         AND j.grant_id IS NOT NULL
       GROUP BY j.asset
      UNION ALL
      -- a close that found nothing to move: one row
      SELECT NULL, 0 WHERE o.asset IS NULL AND NOT EXISTS (
          SELECT 1 FROM credit_ledger.journal j
           WHERE j.operation_id = o.id AND j.wallet_id = o.wallet_id/*t*/ AND j.tenant = o.tenant/*t*//*G*/ AND j.tenant = $T/*G*/ AND j.grant_id IS NOT NULL)) x
 WHERE o.id = $1/*G*/ AND o.tenant = $T/*G*/
 ORDER BY x.asset"
        )
    };
}
/// What an operation returns, one row per asset it moved (a close: every asset of the wallet).
pub const OP_ROWS: &str = op_rows!("credit_ledger._balance(o.wallet_id, x.asset)");
/// [`OP_ROWS`] on a ledger Citus distributes: the balance is read after it, per row
/// ([`crate::catalog::OWN_BALANCE_IN`]): Citus plans no SQL function with parameters.
pub const OP_ROWS_DISTRIBUTED: &str = op_rows!("NULL::numeric");
/// Open voids of wallets `$1` on the grants of rows `$2`: (operation, grant, pending, whole,
/// asset, wallet).
pub const OPEN_VOIDS: &str = "
SELECT o.id, o.grant_id, o.pending, o.amount IS NULL, o.asset, o.wallet_id
  FROM credit_ledger.operations o
 WHERE o.open AND o.wallet_id = ANY ($1)/*G*/ AND o.tenant = $T/*G*/
   AND o.grant_id IN (SELECT coalesce(g.home_id, g.id) FROM credit_ledger.grants g WHERE g.id = ANY ($2)/*G*/ AND g.tenant = $T/*G*/)
 ORDER BY o.id";
pub const OP_DONE_ADD: &str = "
UPDATE credit_ledger.operations SET done = done + $2, pending = $3, open = $4 WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// A wallet's spendable rows of an asset in consumption order: (row, free, home grant).
pub const SPENDABLE_ROWS: &str = "
SELECT id, remaining - held, coalesce(home_id, id)
  FROM credit_ledger.grants
 WHERE wallet_id = $1 AND asset = $2 AND live/*G*/ AND tenant = $T/*G*/
   AND effective_at <= now() AND (expires_at IS NULL OR expires_at > now())
   AND remaining > held
 ORDER BY priority, expires_at, coalesce(home_id, id), lane NULLS FIRST";
/// Record an event (kind, wallet id, asset, payload) and notify its id only.
pub const EVENT_EMIT: &str = "
WITH e AS (
    INSERT INTO credit_ledger.events (kind, wallet_id, asset, payload/*t*/, tenant/*t*/)
    VALUES ($1, $2, $3, $4::jsonb/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $2)/*N*//*G*/$T/*G*//*t*/)
    RETURNING id)
SELECT pg_catalog.pg_notify('credit_ledger', e.id::text) FROM e";
/// The wallets of a transfer, unlocked: (id, parent, run_of, closed).
pub const WALLET_PEEK: &str = "
SELECT id, parent_id, run_of IS NOT NULL, closed_at IS NOT NULL FROM credit_ledger.wallets WHERE wallet = $1/*G*/ AND tenant = $T/*G*/";
/// The name of wallet `$1`, or of the wallet whose run it is, when that one is closed.
pub const WALLET_OR_OWNER_CLOSED: &str = "
SELECT o.wallet FROM credit_ledger.wallets x JOIN credit_ledger.wallets o ON o.id = coalesce(x.run_of, x.id)/*t*/ AND o.tenant = x.tenant/*t*//*G*/ AND o.tenant = $T/*G*/
 WHERE x.id = $1/*G*/ AND x.tenant = $T/*G*/ AND o.closed_at IS NOT NULL";
pub const WALLET_CLOSED: &str =
    "SELECT closed_at IS NOT NULL FROM credit_ledger.wallets WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// The attributes a transferred lot keeps, of the grant (home row) `$1`.
pub const GRANT_PROVENANCE: &str = "
SELECT category, priority, expires_at, unit_price, metadata, effective_at
  FROM credit_ledger.grants WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// Every row with credits of a wallet (every asset; effective or not, expired or not):
/// (row, home, asset, remaining, held, expired).
pub const CLOSE_ROWS: &str = "
SELECT id, coalesce(home_id, id), asset, remaining, held, expires_at IS NOT NULL AND expires_at <= now()
  FROM credit_ledger.grants
 WHERE wallet_id = $1 AND live/*G*/ AND tenant = $T/*G*/
 ORDER BY asset, priority, expires_at, coalesce(home_id, id), lane NULLS FIRST";
/// Members of `$1` that are not closed.
pub const OPEN_MEMBERS: &str = "
SELECT wallet FROM credit_ledger.wallets WHERE parent_id = $1 AND closed_at IS NULL/*G*/ AND tenant = $T/*G*/ ORDER BY wallet LIMIT 3";
/// Open root runs of wallet `$1`.
pub const OPEN_RUNS_OF: &str = "
SELECT id FROM credit_ledger.runs WHERE wallet_id = $1 AND status = 'open' AND parent_run IS NULL/*G*/ AND tenant = $T/*G*/ ORDER BY id";
/// Open holds of wallet `$1`.
pub const OPEN_HOLDS_OF: &str = "
SELECT id FROM credit_ledger.authorizations WHERE wallet_id = $1 AND status = 'held'/*G*/ AND tenant = $T/*G*/ ORDER BY id";
pub const WALLET_CLOSE: &str = "
UPDATE credit_ledger.wallets SET closed_at = now(), frozen = true, updated_at = now() WHERE id = $1/*G*/ AND tenant = $T/*G*/";
pub const ALLOWANCES_DROP: &str =
    "DELETE FROM credit_ledger.allowances WHERE wallet_id = $1/*G*/ AND tenant = $T/*G*/";
/// [`crate::catalog::GRANT_INSERT`] for a grant a transfer creates (`$13`: the grant its
/// credits came from).
pub const GRANT_INSERT_TRANSFER: &str = "
INSERT INTO credit_ledger.grants
    (wallet_id, asset, category, priority, amount, remaining, live, effective_at, expires_at, unit_price,
     idempotency_key, request_hash, metadata, source, transfer_of/*t*/, tenant/*t*/)
VALUES ($1, $2, $3, $4, $5, 0, false, coalesce($6, now()), $7, coalesce($8, 0), $9, $10, $11, $12, $13
        /*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/)
RETURNING id, effective_at";
/// [`crate::catalog::APPLY`] for the entries of an operation (`$10`).
pub const APPLY_OP: &str = "
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
INSERT INTO credit_ledger.journal
    (wallet_id, grant_id, asset, kind, amount, held, authorization_id, member_id, note, operation_id/*t*/, tenant/*t*/)
SELECT m.wallet_id, m.grant_id, $6, m.kind, m.amount, m.held, $7, $8, $9, $10
       /*t*/, /*N*/(SELECT w.tenant FROM credit_ledger.wallets w WHERE w.id = m.wallet_id)/*N*//*G*/$T/*G*//*t*/
  FROM m";
/// One `grant_expired` event per grant of the rows `$1` that expired `$2` credits.
pub const EVENTS_GRANTS_EXPIRED: &str = "
WITH x AS (
    SELECT coalesce(g.home_id, g.id) AS grant_id, min(g.wallet_id) AS wallet_id, min(g.asset) AS asset,
           sum(m.a) AS credits, min(g.expires_at) AS expires_at
      FROM unnest($1::bigint[], $2::numeric[]) AS m(id, a) JOIN credit_ledger.grants g ON g.id = m.id/*G*/ AND g.tenant = $T/*G*/
     GROUP BY 1
), e AS (
    INSERT INTO credit_ledger.events (kind, wallet_id, asset, payload/*t*/, tenant/*t*/)
    SELECT 'grant_expired', x.wallet_id, x.asset,
           jsonb_build_object('event', 'grant_expired', 'wallet', w.wallet, 'asset', x.asset,
                              'grant_id', x.grant_id, 'credits', x.credits::text, 'expires_at', x.expires_at)
           /*t*/, w.tenant/*t*/
      FROM x JOIN credit_ledger.wallets w ON w.id = x.wallet_id/*G*/ AND w.tenant = $T/*G*/
    RETURNING id)
SELECT pg_catalog.pg_notify('credit_ledger', e.id::text) FROM e";
/// An event (kind `$1`, wallet `$2`, asset `$3`, payload `$4`) unless the wallet already has
/// one of that kind and asset in its current period.
pub const EVENT_ONCE_PER_PERIOD: &str = "
WITH e AS (
    INSERT INTO credit_ledger.events (kind, wallet_id, asset, payload/*t*/, tenant/*t*/)
    SELECT $1, w.id, $3, $4::jsonb/*t*/, w.tenant/*t*/ FROM credit_ledger.wallets w
     WHERE w.id = $2/*G*/ AND w.tenant = $T/*G*/
       AND NOT EXISTS (SELECT 1 FROM credit_ledger.events x
                        WHERE x.wallet_id = $2 AND x.kind = $1 AND x.asset = $3/*t*/ AND x.tenant = w.tenant/*t*//*G*/ AND x.tenant = $T/*G*/
                          AND x.at >= credit_ledger._period_start(w.period, w.period_anchor, now()))
    RETURNING id)
SELECT pg_catalog.pg_notify('credit_ledger', e.id::text) FROM e";
/// `grant_expiring` events for the grants expiring within the notice `$2` (an interval's text)
/// after `$1` that have none yet; returns how many were written.
pub const EVENTS_GRANTS_EXPIRING: &str = "
WITH due AS (
    SELECT DISTINCT coalesce(g.home_id, g.id) AS grant_id/*t*/, g.tenant/*t*/
      FROM credit_ledger.grants g
     WHERE g.live AND g.source_id IS NULL AND g.expires_at > $1
       AND g.expires_at <= $1 + $2::interval
     LIMIT 10000
), x AS (
    SELECT h.id, h.wallet_id, h.asset, h.expires_at, w.wallet/*t*/, w.tenant/*t*/,
           (SELECT sum(s.remaining - s.held) FROM credit_ledger.grants s
             WHERE (s.id = h.id OR s.home_id = h.id)/*t*/ AND s.tenant = h.tenant/*t*//*G*/ AND s.tenant = $T/*G*/) AS credits
      FROM due JOIN credit_ledger.grants h ON h.id = due.grant_id/*t*/ AND h.tenant = due.tenant/*t*//*G*/ AND h.tenant = $T/*G*/
      JOIN credit_ledger.wallets w ON w.id = h.wallet_id/*t*/ AND w.tenant = h.tenant/*t*//*G*/ AND w.tenant = $T/*G*/
     WHERE NOT EXISTS (SELECT 1 FROM credit_ledger.events e
                        WHERE e.wallet_id = h.wallet_id AND e.kind = 'grant_expiring'/*t*/ AND e.tenant = h.tenant/*t*//*G*/ AND e.tenant = $T/*G*/
                          AND e.payload->>'grant_id' = h.id::text)
), e AS (
    INSERT INTO credit_ledger.events (kind, wallet_id, asset, payload/*t*/, tenant/*t*/)
    SELECT 'grant_expiring', x.wallet_id, x.asset,
           jsonb_build_object('event', 'grant_expiring', 'wallet', x.wallet, 'asset', x.asset,
                              'grant_id', x.id, 'credits', x.credits::text, 'expires_at', x.expires_at)
           /*t*/, x.tenant/*t*/
      FROM x
    RETURNING id)
SELECT count(pg_catalog.pg_notify('credit_ledger', e.id::text)), array_agg(e.id::text) FROM e";
pub const EVENTS_TRIM: &str = "SELECT credit_ledger._events_trim()";
/// Whether the catalog has the events table (0.3.0 on; a 0.2.0 catalog running this library
/// before `ALTER EXTENSION credit_ledger UPDATE` has not).
pub const EVENTS_EXIST: &str = "SELECT pg_catalog.to_regclass('credit_ledger.events') IS NOT NULL";
/// Record an event of wallet `$1` (by key) and notify its id only.
pub const EVENT_NOTIFY: &str = "
WITH e AS (
    INSERT INTO credit_ledger.events (kind, wallet_id, asset, payload/*t*/, tenant/*t*/)
    SELECT $2, w.id, $3, $4::jsonb/*t*/, w.tenant/*t*/ FROM credit_ledger.wallets w WHERE w.wallet = $1/*G*/ AND w.tenant = $T/*G*/
    RETURNING id)
SELECT pg_catalog.pg_notify('credit_ledger', e.id::text) FROM e";
