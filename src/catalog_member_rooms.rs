//! Statements of limited members (since 0.11.0; see [`crate::member_rooms`]; re-exported by
//! `catalog`): a pool member whose own limits are sliced over its pool's lanes. Used only on a
//! catalog that has `credit_ledger.member_rooms`.

use crate::catalog_members::{free_member, wallet_for_spend};

/// The condition (on member `w` and its pool `p`) of a *limited member*: one lane, a pool limit
/// or spend cap of its own and nothing else that its row holds for a spend (no overdraft, debt,
/// alert or fair use; not frozen; not a run's wallet), no live grant of its own, and a pool with
/// lanes. Its limits are sliced over the pool's lanes (`member_rooms`): its spends do not lock
/// its row, so two calls of one limited member do not wait for each other.
macro_rules! limited_member {
    () => {
        "(w.parent_id IS NOT NULL AND w.lanes = 1 AND p.lanes > 1 AND w.tracked AND NOT w.frozen
        AND w.run_of IS NULL AND (w.pool_limit IS NOT NULL OR w.spend_cap IS NOT NULL)
        AND w.overdraft_limit = 0 AND w.low_balance_threshold IS NULL
        AND NOT EXISTS (SELECT 1 FROM credit_ledger.grants g WHERE g.wallet_id = w.id AND g.live/*G*/ AND g.tenant = $T/*G*/)
        AND NOT EXISTS (SELECT 1 FROM credit_ledger.wallet_overage o
                         WHERE o.wallet_id = w.id AND o.fair_use_limit IS NOT NULL/*G*/ AND o.tenant = $T/*G*/)
        AND NOT EXISTS (SELECT 1 FROM credit_ledger.wallet_assets s WHERE s.wallet_id = w.id AND s.debt <> 0/*G*/ AND s.tenant = $T/*G*/))"
    };
}

/// [`crate::catalog::WALLET_LOCK_FOR_SPEND_ONE_LANE`] that leaves a limited member unlocked too;
/// column 21: whether the wallet has rooms to fold (it was a limited member).
pub const WALLET_LOCK_FOR_SPEND_ONE_LANE_V11: &str = concat!(
    wallet_for_spend!(
        "w.parent_id IS NULL OR EXISTS (SELECT 1 FROM credit_ledger.grants g WHERE g.wallet_id = w.id AND g.live/*G*/ AND g.tenant = $T/*G*/)",
        "w.parent_id IS NOT NULL AND w.tracked
        AND EXISTS (SELECT 1 FROM credit_ledger.member_rooms r WHERE r.wallet_id = w.id/*G*/ AND r.tenant = $T/*G*/)"
    ),
    "
 WHERE w.wallet = $1/*G*/ AND w.tenant = $T/*G*/ AND w.lanes = 1 AND NOT ",
    free_member!(),
    " AND NOT ",
    limited_member!(),
    " FOR NO KEY UPDATE OF w"
);
/// [`crate::catalog::WALLET_FOR_SPEND_UNLOCKED`] that reads a limited member too (`tracked`
/// tells it from a free member).
pub const WALLET_FOR_SPEND_UNLOCKED_V11: &str = concat!(
    wallet_for_spend!("false", "false"),
    "
 WHERE w.wallet = $1/*G*/ AND w.tenant = $T/*G*/ AND (w.lanes > 1 OR ",
    free_member!(),
    " OR ",
    limited_member!(),
    ")"
);
/// Whether member `$1` is a limited member now.
pub const MEMBER_LIMITED: &str = concat!(
    "
SELECT ",
    limited_member!(),
    "
  FROM credit_ledger.wallets w JOIN credit_ledger.wallets p ON p.id = w.parent_id/*t*/ AND p.tenant = w.tenant/*t*//*G*/ AND p.tenant = $T/*G*/
 WHERE w.id = $1/*G*/ AND w.tenant = $T/*G*/"
);
/// A limited member's fast draw of `$4` from room `$3` (of the pool's lane of that number, which
/// the caller holds) of member `$1` in asset `$2`: taken, and the room locked, when it has that
/// much room in the member's current period; no row when it has not, or when another
/// transaction holds it (a fold waiting for the member's spends in flight).
pub const MEMBER_ROOM_TAKE: &str = "
WITH x AS (
    SELECT r.ctid FROM credit_ledger.member_rooms r
     WHERE r.wallet_id = $1 AND r.asset = $2 AND r.lane = $3 AND r.room >= $4/*G*/ AND r.tenant = $T/*G*/
       AND r.period = (SELECT credit_ledger._period_start(w.period, w.period_anchor, now())
                         FROM credit_ledger.wallets w WHERE w.id = $1/*G*/ AND w.tenant = $T/*G*/)
       FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE credit_ledger.member_rooms r SET room = r.room - $4, spent = r.spent + $4
  FROM x WHERE r.ctid = x.ctid/*G*/ AND r.tenant = $T/*G*/
RETURNING 1";
/// A draw of `$4` taken from room `$3` of member `$1` in asset `$2` by this transaction
/// ([`MEMBER_ROOM_TAKE`]) and not spent after all (its idempotency key was used at once by
/// another call, which won): back to the room.
pub const MEMBER_ROOM_UNTAKE: &str = "
UPDATE credit_ledger.member_rooms SET room = room + $4, spent = spent - $4
 WHERE wallet_id = $1 AND asset = $2 AND lane = $3/*G*/ AND tenant = $T/*G*/";
/// Fold member `$1`'s rooms back (the caller holds its row; the delete waits for the member's
/// spends in flight, which hold their rooms): what they drew this period goes into both
/// counters (a limited member's spend is all pool draw), their room back to the limits, and the
/// rows are deleted (none until the rooms are handed out again). What rows of an earlier period
/// drew is dropped (that period is over).
pub const MEMBER_ROOMS_FOLD: &str = "
WITH cur AS (
    SELECT credit_ledger._period_start(w.period, w.period_anchor, now()) AS cur
      FROM credit_ledger.wallets w WHERE w.id = $1/*G*/ AND w.tenant = $T/*G*/
), z AS (
    DELETE FROM credit_ledger.member_rooms r WHERE r.wallet_id = $1/*G*/ AND r.tenant = $T/*G*/ RETURNING r.asset, r.period, r.spent
), old AS (
    SELECT z.asset, sum(z.spent) AS spent FROM z, cur WHERE z.period = cur.cur
     GROUP BY z.asset HAVING sum(z.spent) <> 0
)
INSERT INTO credit_ledger.wallet_assets AS s (wallet_id, asset, period_start, period_spent, period_pool_drawn/*t*/, tenant/*t*/)
SELECT $1, old.asset, cur.cur, old.spent, old.spent/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/ FROM old, cur
ON CONFLICT (wallet_id, asset/*t*/, tenant/*t*/) DO UPDATE SET
    period_spent = CASE WHEN s.period_start = EXCLUDED.period_start THEN s.period_spent ELSE 0 END
                   + EXCLUDED.period_spent,
    period_pool_drawn = CASE WHEN s.period_start = EXCLUDED.period_start THEN s.period_pool_drawn ELSE 0 END
                        + EXCLUDED.period_pool_drawn,
    period_start = EXCLUDED.period_start";
/// Hand member `$1`'s room in asset `$2` out for period `$3`: the room of the pool's lane `$5 + i`
/// gets `$4[i + 1]`. The caller holds the member's row and has folded.
pub const MEMBER_ROOMS_SET: &str = "
INSERT INTO credit_ledger.member_rooms (wallet_id, asset, lane, period, room, spent/*t*/, tenant/*t*/)
SELECT $1, $2, $5 + i - 1, $3, ($4::numeric[])[i], 0/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/
  FROM generate_subscripts($4::numeric[], 1) i
ON CONFLICT (wallet_id, asset, lane/*t*/, tenant/*t*/) DO UPDATE SET period = EXCLUDED.period, room = EXCLUDED.room, spent = 0";
/// A released, captured-below or refunded draw of `$4` of member `$1` goes back to the room of the
/// lowest lane of pool `$5` that authorization `$3` moved (the caller holds that lane and the
/// member's row), if the member has that room in the current period. No row: the draw is the
/// counters' to give back.
pub const MEMBER_ROOM_GIVE_BACK: &str = "
UPDATE credit_ledger.member_rooms r SET room = r.room + $4, spent = r.spent - $4
  FROM credit_ledger.wallets w
 WHERE w.id = $1 AND r.wallet_id = $1 AND r.asset = $2/*G*/ AND w.tenant = $T/*G*//*G*/ AND r.tenant = $T/*G*/
   AND r.lane = (SELECT min(g.lane) FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id/*t*/ AND g.tenant = j.tenant/*t*//*G*/ AND g.tenant = $T/*G*/
                  WHERE j.authorization_id = $3 AND g.wallet_id = $5/*G*/ AND j.tenant = $T/*G*/ AND g.asset = $2 AND g.lane IS NOT NULL)
   AND r.period = credit_ledger._period_start(w.period, w.period_anchor, now())
RETURNING 1";
/// [`crate::catalog::WALLET_STATE_LANES`] with what a member's rooms drew this period added to
/// both counters (0.11.0 on).
pub const WALLET_STATE_COMMITTED_V11: &str = crate::catalog::wallet_state!(
    "
         + coalesce((SELECT sum(l.cap_spent) FROM credit_ledger.lanes l
                      WHERE l.wallet_id = $1 AND l.asset = $2 AND l.cap_period = c.cur/*G*/ AND l.tenant = $T/*G*/), 0)
         + coalesce((SELECT sum(r.spent) FROM credit_ledger.member_rooms r
                      WHERE r.wallet_id = $1 AND r.asset = $2 AND r.period = c.cur/*G*/ AND r.tenant = $T/*G*/), 0)",
    "
         + coalesce((SELECT sum(r.spent) FROM credit_ledger.member_rooms r
                      WHERE r.wallet_id = $1 AND r.asset = $2 AND r.period = c.cur/*G*/ AND r.tenant = $T/*G*/), 0)"
);
