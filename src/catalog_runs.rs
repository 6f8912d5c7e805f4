//! The SQL statements of agent runs (0.5.0 on; see [`crate::runs`]), apart from
//! [`crate::catalog`] for size; `catalog` re-exports them.

/// A run for a call: status, past its TTL, the owner's name, its wallet's name, its asset.
pub const RUN_FOR_CALL: &str = "
SELECT r.status, r.expires_at <= now(), o.wallet, rw.wallet, r.asset, r.max_calls, r.max_cost_per_call
  FROM credit_ledger.runs r
  JOIN credit_ledger.wallets o ON o.id = r.wallet_id/*t*/ AND o.tenant = r.tenant/*t*//*G*/ AND o.tenant = $T/*G*/
  LEFT JOIN credit_ledger.wallets rw ON rw.id = r.run_wallet_id/*t*/ AND rw.tenant = r.tenant/*t*//*G*/ AND rw.tenant = $T/*G*/
 WHERE r.id = $1/*G*/ AND r.tenant = $T/*G*/";
/// Whether a wallet is a run's wallet (a row when it is).
pub const WALLET_IS_RUN: &str =
    "SELECT 1 FROM credit_ledger.wallets WHERE id = $1 AND run_of IS NOT NULL/*G*/ AND tenant = $T/*G*/";
pub const RUN_BY_KEY: &str =
    "SELECT id, request_hash FROM credit_ledger.runs WHERE wallet_id = $1 AND idempotency_key = $2/*G*/ AND tenant = $T/*G*/";
pub const RUN_INSERT: &str = "
INSERT INTO credit_ledger.runs (wallet_id, parent_run, asset, budget, status, reason, idempotency_key,
                                request_hash, metadata, expires_at, balance_after, max_calls,
                                max_cost_per_call/*t*/, tenant/*t*/)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, now() + $10, $11, $12, $13/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/)
RETURNING id";
/// Approved calls (debits and holds) of run wallet `$1` so far.
pub const RUN_CALLS: &str = "
SELECT count(*) FROM credit_ledger.authorizations WHERE wallet_id = $1 AND status <> 'declined'/*G*/ AND tenant = $T/*G*/";
/// The wallet of run `$1` (owner `$2`): named after the run, the owner's rate card; the run
/// row points to it.
pub const RUN_WALLET_INSERT: &str = "
WITH w AS (
    INSERT INTO credit_ledger.wallets (wallet, rate_card, run_of/*t*/, tenant/*t*/)
    SELECT '~run.' || $1, o.rate_card, o.id/*t*/, o.tenant/*t*/ FROM credit_ledger.wallets o WHERE o.id = $2/*G*/ AND o.tenant = $T/*G*/
    RETURNING id/*t*/, wallet, tenant/*t*/
)/*t*/, k AS (INSERT INTO credit_ledger.wallet_keys (wallet, tenant) SELECT w.wallet, w.tenant FROM w)/*t*/, r AS (
    UPDATE credit_ledger.runs SET run_wallet_id = (SELECT id FROM w) WHERE id = $1/*G*/ AND tenant = $T/*G*/
)
SELECT id FROM w";
/// A new, empty slice of row `$2` in run wallet `$1` for `$3` credits (filled by a 'run' move).
pub const RUN_SLICE_INSERT: &str = "
INSERT INTO credit_ledger.grants (wallet_id, asset, category, priority, amount, remaining, held, live,
                                  effective_at, expires_at, unit_price, source, source_id/*t*/, tenant/*t*/)
SELECT $1, asset, category, priority, $3, 0, 0, false, effective_at, expires_at, unit_price, 'run', id
       /*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/
  FROM credit_ledger.grants WHERE id = $2/*G*/ AND tenant = $T/*G*/
RETURNING id";
/// What credit_run_open returns.
pub const RUN_OPEN_ROW: &str = "
SELECT id, status <> 'declined', reason, budget, balance_after, asset, status, expires_at
  FROM credit_ledger.runs WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// status, owner, parent run, asset of a run.
pub const RUN_GET: &str =
    "SELECT status, wallet_id, parent_run, asset FROM credit_ledger.runs WHERE id = $1/*G*/ AND tenant = $T/*G*/";
pub const RUN_WALLET_NAME: &str = "
SELECT w.wallet FROM credit_ledger.runs r JOIN credit_ledger.wallets w ON w.id = r.run_wallet_id/*t*/ AND w.tenant = r.tenant/*t*//*G*/ AND w.tenant = $T/*G*/
 WHERE r.id = $1/*G*/ AND r.tenant = $T/*G*/";
/// Run `$1` and its open sub-runs at any depth, top down: (run, its wallet).
pub const RUN_TREE: &str = "
WITH RECURSIVE t AS (
    SELECT id, run_wallet_id, 0 AS depth FROM credit_ledger.runs WHERE id = $1/*G*/ AND tenant = $T/*G*/
    UNION ALL
    SELECT r.id, r.run_wallet_id, t.depth + 1
      FROM credit_ledger.runs r JOIN t ON r.parent_run = t.id
     WHERE r.status = 'open'/*G*/ AND r.tenant = $T/*G*/
)
SELECT id, run_wallet_id FROM t ORDER BY depth, id";
pub const WALLET_LOCK_BY_ID: &str =
    "SELECT 1 FROM credit_ledger.wallets WHERE id = $1/*G*/ AND tenant = $T/*G*/ FOR NO KEY UPDATE";
pub const RUN_OPEN_HOLDS: &str = "
SELECT id FROM credit_ledger.authorizations WHERE wallet_id = $1 AND status = 'held'/*G*/ AND tenant = $T/*G*/ ORDER BY id";
/// The slices of run wallet `$1` (and their lanes' slices) with credits left: (slice, remaining, source, the source's
/// wallet, whether the source has expired, whether the source is the pool's: a wallet that is
/// neither the run's owner nor a run's).
pub const RUN_SLICES_LEFT: &str = "
SELECT g.id, g.remaining, s.id, s.wallet_id, s.expires_at IS NOT NULL AND s.expires_at <= now(),
       s.wallet_id <> r.wallet_id AND sw.run_of IS NULL
  FROM credit_ledger.grants g
  -- a run with lanes: a lane's slice gives back to the source of the slice it belongs to
  JOIN credit_ledger.grants h ON h.id = coalesce(g.home_id, g.id)/*t*/ AND h.tenant = g.tenant/*t*//*G*/ AND h.tenant = $T/*G*/
  JOIN credit_ledger.grants s ON s.id = h.source_id/*G*/ AND s.tenant = $T/*G*/
  JOIN credit_ledger.wallets sw ON sw.id = s.wallet_id/*G*/ AND sw.tenant = $T/*G*/
  JOIN credit_ledger.runs r ON r.run_wallet_id = g.wallet_id/*t*/ AND r.tenant = g.tenant/*t*//*G*/ AND r.tenant = $T/*G*/
 WHERE g.wallet_id = $1 AND g.remaining > 0/*G*/ AND g.tenant = $T/*G*/
 ORDER BY g.id";
/// The run of a run's wallet: id, status, owner, parent run, asset.
pub const RUN_OF_WALLET: &str =
    "SELECT id, status, wallet_id, parent_run, asset FROM credit_ledger.runs WHERE run_wallet_id = $1/*G*/ AND tenant = $T/*G*/";
pub const RUN_GET_WALLET: &str =
    "SELECT run_wallet_id FROM credit_ledger.runs WHERE id = $1/*G*/ AND tenant = $T/*G*/";
pub const RUN_RETURNED_MORE: &str =
    "UPDATE credit_ledger.runs SET returned = returned + $2 WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// Close run `$1` with status `$2`, `$3` credits given back; its wallet spends no more.
pub const RUN_CLOSE: &str = "
WITH r AS (
    UPDATE credit_ledger.runs SET status = $2, closed_at = now(), returned = $3
     WHERE id = $1/*G*/ AND tenant = $T/*G*/ RETURNING run_wallet_id
)
UPDATE credit_ledger.wallets SET frozen = true, updated_at = now() WHERE id = (SELECT run_wallet_id FROM r)/*G*/ AND tenant = $T/*G*/";
/// What credit_run_close returns (see credit_ledger._run_nodes; given the tenant since 0.14.0:
/// in a call Citus delegates, no statement may leave the tenant's shard).
pub const RUN_CLOSE_ROW: &str = "
SELECT n.run_id, n.status, n.budget, n.spent, n.spent_tree, n.returned, n.closed_at
  FROM credit_ledger._run_nodes($1/*G*/, $T/*G*/) n WHERE n.depth = 0";
/// Open runs past their TTL at `$2`, oldest first, at most `$1`.
pub const RUNS_EXPIRED: &str = "
SELECT id/*t*/, tenant/*t*/ FROM credit_ledger.runs WHERE status = 'open' AND expires_at <= $2 ORDER BY expires_at, id LIMIT $1";
