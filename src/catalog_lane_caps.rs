//! SQL statements of spend caps sliced over lanes (since 0.10.0; see [`crate::lane_caps`];
//! re-exported by `catalog`). Used only on a catalog whose lanes have `cap_room`.

use crate::catalog::{authorize_write_one, keyed, lane_slices_cover, lane_take, lane_take_walk};

/// `WALLET_STATE` with the period's spend as the committed state has it: the wallet's counter
/// plus what its lanes spent this period that the counter does not hold yet. Read only (a
/// caller that does not hold the whole wallet must not write it back).
pub const WALLET_STATE_LANES: &str = crate::catalog::wallet_state!(
    "
         + coalesce((SELECT sum(l.cap_spent) FROM credit_ledger.lanes l
                      WHERE l.wallet_id = $1 AND l.asset = $2 AND l.cap_period = c.cur/*G*/ AND l.tenant = $T/*G*/), 0)",
    ""
);

/// A fast spend of `$5` under the cap on lane `$3` (the caller holds it), with its hint `$4`.
pub const LANE_SPEND_CAP: &str = "
UPDATE credit_ledger.lanes SET free = free - $4, cap_room = cap_room - $5, cap_spent = cap_spent + $5
 WHERE wallet_id = $1 AND asset = $2 AND lane = $3/*G*/ AND tenant = $T/*G*/";

/// Fold the lanes' spend of the current period into the wallet's counter and take their room
/// back (the caller holds the whole wallet): the period's spend is unchanged, and no lane has
/// room until [`LANE_CAPS_SET`] hands it out again. A lane's spend of an earlier period is
/// dropped (that period is over).
pub const LANE_CAPS_FOLD: &str = "
WITH cur AS (
    SELECT credit_ledger._period_start(w.period, w.period_anchor, now()) AS cur
      FROM credit_ledger.wallets w WHERE w.id = $1/*G*/ AND w.tenant = $T/*G*/
), old AS (
    SELECT coalesce(sum(l.cap_spent) FILTER (WHERE l.cap_period = (SELECT cur FROM cur)), 0) AS spent
      FROM credit_ledger.lanes l WHERE l.wallet_id = $1 AND l.asset = $2/*G*/ AND l.tenant = $T/*G*/
), z AS (
    UPDATE credit_ledger.lanes l SET cap_spent = 0, cap_room = 0
     WHERE l.wallet_id = $1 AND l.asset = $2/*G*/ AND l.tenant = $T/*G*/ AND (l.cap_spent <> 0 OR l.cap_room <> 0)
)
INSERT INTO credit_ledger.wallet_assets AS s (wallet_id, asset, period_start, period_spent/*t*/, tenant/*t*/)
SELECT $1, $2, cur.cur, old.spent/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/ FROM old, cur WHERE old.spent <> 0
ON CONFLICT (wallet_id, asset/*t*/, tenant/*t*/) DO UPDATE SET
    period_spent = CASE WHEN s.period_start = EXCLUDED.period_start THEN s.period_spent ELSE 0 END
                   + EXCLUDED.period_spent,
    period_pool_drawn = CASE WHEN s.period_start = EXCLUDED.period_start THEN s.period_pool_drawn ELSE 0 END,
    period_start = EXCLUDED.period_start";

/// Hand the room under the cap out to the lanes for period `$3`: lane i gets `$4[i + 1]`
/// (none beyond the array). The caller holds the whole wallet and has folded it.
pub const LANE_CAPS_SET: &str = "
UPDATE credit_ledger.lanes l
   SET cap_period = $3, cap_room = coalesce(($4::numeric[])[l.lane + 1], 0), cap_spent = 0
 WHERE l.wallet_id = $1 AND l.asset = $2/*G*/ AND l.tenant = $T/*G*/";

/// A released, captured-below or refunded spend of `$4` goes back to the cap: to the lowest
/// lane of the slices authorization `$3` moved in the wallet (lane 0 when none or no id), as
/// room that lane may spend again, if that lane's room is of the current period. When no lane
/// has room of the current period (no caller held the whole wallet since the period began, or
/// since the update to 0.10.0), the spend was counted by the wallet's counter, if at all: it
/// comes off the counter when that is of the current period (else the spend was of a period
/// that is over).
pub const LANE_CAP_GIVE_BACK: &str = "
WITH cur AS (
    SELECT credit_ledger._period_start(w.period, w.period_anchor, now()) AS cur
      FROM credit_ledger.wallets w WHERE w.id = $1/*G*/ AND w.tenant = $T/*G*/
), lane AS (
    UPDATE credit_ledger.lanes l SET cap_spent = l.cap_spent - $4, cap_room = l.cap_room + $4
     WHERE l.wallet_id = $1 AND l.asset = $2/*G*/ AND l.tenant = $T/*G*/
       AND l.lane = coalesce((SELECT min(g.lane) FROM credit_ledger.journal j
                                JOIN credit_ledger.grants g ON g.id = j.grant_id/*t*/ AND g.tenant = j.tenant/*t*//*G*/ AND g.tenant = $T/*G*/
                               WHERE j.authorization_id = $3 AND g.wallet_id = $1/*G*/ AND j.tenant = $T/*G*/ AND g.asset = $2
                                 AND g.lane IS NOT NULL), 0)
       AND l.cap_period = (SELECT cur FROM cur)
    RETURNING 1
)
UPDATE credit_ledger.wallet_assets s SET period_spent = s.period_spent - $4
 WHERE NOT EXISTS (SELECT FROM lane)
   AND s.wallet_id = $1 AND s.asset = $2/*G*/ AND s.tenant = $T/*G*/ AND s.period_start = (SELECT cur FROM cur)";

/// The assets a wallet has lanes in.
pub const LANE_CAPS_ASSETS: &str =
    "SELECT DISTINCT asset FROM credit_ledger.lanes WHERE wallet_id = $1/*G*/ AND tenant = $T/*G*/ ORDER BY asset";

// ---- the lane statements of the spend path under a sliced cap (the uncapped ones: catalog) --

/// `lane_hint!` (catalog) of a wallet whose spend cap is sliced over its lanes (since 0.10.0): the
/// lane's room under the cap falls, and its spend of the period rises, by what the one move
/// takes (`$22 - $21`: the whole cost of a call one move pays).
macro_rules! lane_hint_cap {
    ($moved:expr) => {
        concat!(
            "
), l AS (
    UPDATE credit_ledger.lanes
       SET free = free + $21 - $22, cap_room = cap_room - ($22 - $21), cap_spent = cap_spent + ($22 - $21)
     WHERE wallet_id = $24 AND asset = $9 AND lane = $25/*G*/ AND tenant = $T/*G*/",
            $moved
        )
    };
}
/// [`crate::catalog::AUTHORIZE_WRITE_ONE_LANE`] under a spend cap sliced over the pool's lanes.
pub const AUTHORIZE_WRITE_ONE_LANE_CAP: &str = authorize_write_one!("", "", lane_hint_cap!(""));
/// [`crate::catalog::AUTHORIZE_WRITE_ONE_KEYED_LANE`] under a spend cap sliced over the wallet's lanes.
pub const AUTHORIZE_WRITE_ONE_KEYED_LANE_CAP: &str = authorize_write_one!(
    keyed!(),
    " AND EXISTS (SELECT 1 FROM a)",
    lane_hint_cap!(" AND EXISTS (SELECT 1 FROM a)")
);
/// The condition of [`LANE_TAKE_CAP`] and [`LANE_TAKE_WALK_CAP`]: lane `l` has `$6` of room
/// under the wallet's spend cap in the current period (an init plan: one wallet lookup).
macro_rules! lane_cap_room {
    () => {
        "
   AND l.cap_room >= $6
   AND l.cap_period = (SELECT credit_ledger._period_start(w.period, w.period_anchor, now())
                         FROM credit_ledger.wallets w WHERE w.id = $1/*G*/ AND w.tenant = $T/*G*/)"
    };
}
/// [`crate::catalog::LANE_TAKE`] of a wallet whose spend cap is sliced over its lanes (since 0.10.0): the lane
/// must also have `$6` of room under the cap in the current period (re-checked like the hint).
pub const LANE_TAKE_CAP: &str = lane_take!(lane_cap_room!(), lane_slices_cover!());
/// [`LANE_TAKE_CAP`] on the hint alone ([`crate::catalog::LANE_TAKE_BY_HINT`]).
pub const LANE_TAKE_CAP_BY_HINT: &str = lane_take!(lane_cap_room!(), "");
/// [`crate::catalog::LANE_TAKE_WALK`] of a wallet whose spend cap is sliced over its lanes ([`LANE_TAKE_CAP`]).
pub const LANE_TAKE_WALK_CAP: &str = lane_take_walk!(lane_cap_room!(), lane_slices_cover!());
/// [`LANE_TAKE_WALK_CAP`] on the hint alone ([`crate::catalog::LANE_TAKE_BY_HINT`]).
pub const LANE_TAKE_WALK_CAP_BY_HINT: &str = lane_take_walk!(lane_cap_room!(), "");
