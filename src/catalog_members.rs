//! Statements that read the spender's wallet: a one-lane wallet locked, a wallet with lanes
//! or a free member read without a lock (issue 17; see [`crate::authorize`] and
//! [`crate::lanes`]), and what captures and settings changes of a free member lock instead.
//! Re-exported by [`crate::catalog`].

/// What every statement about free members asks of member `w` and its pool `p` (joined on
/// `p.id = w.parent_id`): one lane, untracked, a pool with lanes. [`free_member`] adds "no
/// live grant of its own"; [`FREE_OF_AUTH`] asks instead whether one authorization took any.
macro_rules! member_of_lanes {
    () => {
        "w.lanes = 1 AND NOT w.tracked AND p.lanes > 1"
    };
}
pub(crate) use member_of_lanes;
/// The condition (on `w` and its pool `p`) of a pool member whose spends do not lock its row
/// (issue 17): one lane, no counters, alert or fair use (`tracked`), no live grant of its own, and
/// a pool with lanes. Its spends lock only a lane of the pool, so two calls of one member do
/// not wait for each other (see [`crate::lanes`]).
macro_rules! free_member {
    () => {
        concat!(
            "(w.parent_id IS NOT NULL AND ",
            $crate::catalog_members::member_of_lanes!(),
            "
        AND NOT EXISTS (SELECT 1 FROM credit_ledger.grants g WHERE g.wallet_id = w.id AND g.live/*G*/ AND g.tenant = $T/*G*/))"
        )
    };
}
pub(crate) use free_member;
/// Columns 1..=10 of the spend statements: the spender's own wallet `w`.
macro_rules! spender_columns {
    () => {
        "w.id, w.parent_id, w.frozen, w.overdraft_limit, w.low_balance_threshold, w.spend_cap, w.pool_limit,
       w.tracked, coalesce(w.rate_card, 'default'), w.lanes"
    };
}
pub(crate) use spender_columns;
/// The columns of [`WALLET_LOCK_FOR_SPEND_ONE_LANE`] and [`WALLET_FOR_SPEND_UNLOCKED`]; column
/// 20, whether the wallet may have grants of its own, is `$own_grants`, and column 21, whether it
/// has rooms of a limited member to fold (0.11.0: [`crate::member_rooms`]), is `$rooms`.
macro_rules! wallet_for_spend {
    ($own_grants:expr, $rooms:expr) => {
        concat!(
            "
SELECT ",
            $crate::catalog_members::spender_columns!(),
            ",
       p.id, p.parent_id, p.frozen, p.overdraft_limit, p.low_balance_threshold, p.spend_cap, p.pool_limit,
       p.tracked, p.lanes,
       ",
            $own_grants,
            ",
       ",
            $rooms,
            "/*t*/, w.tenant AS tenant_/*t*/
  FROM credit_ledger.wallets w LEFT JOIN credit_ledger.wallets p ON p.id = w.parent_id/*G*/ AND p.tenant = $T/*G*/"
        )
    };
}
pub(crate) use wallet_for_spend;
/// [`crate::catalog::WALLET_LOCK_FOR_SPEND`] for a one-lane wallet only (column 10: lanes), not a
/// [`free_member`]; a wallet with lanes or a free member is not locked here (no row: see
/// [`WALLET_FOR_SPEND_UNLOCKED`]). Columns 11..=19: its pool as [`crate::catalog::WALLET_GET_ID_V4`] (NULL
/// without one), read in the same statement, unlocked. Column 20: whether it may have grants.
pub const WALLET_LOCK_FOR_SPEND_ONE_LANE: &str = concat!(
    wallet_for_spend!(
        "w.parent_id IS NULL OR EXISTS (SELECT 1 FROM credit_ledger.grants g WHERE g.wallet_id = w.id AND g.live)",
        "false"
    ),
    "
 WHERE w.wallet = $1/*G*/ AND w.tenant = $T/*G*/ AND w.lanes = 1 AND NOT ",
    free_member!(),
    " FOR NO KEY UPDATE OF w"
);
/// [`WALLET_LOCK_FOR_SPEND_ONE_LANE`] (and its 0.11.0 form) for a one-lane wallet in no pool,
/// the common case: the same columns (the pool's NULL, column 20 true, column 21 false) without
/// the members' conditions, whose subplans (grants, fair use, debt, rooms) every execution of
/// the general statement starts even for a wallet without a pool. No row (a member, a wallet
/// with lanes or none of that name): the caller asks the general statements
/// ([`crate::lanes::spend_wallet`]).
pub const WALLET_LOCK_FOR_SPEND_ALONE: &str = concat!(
    "
SELECT ",
    spender_columns!(),
    ",
       NULL::bigint, NULL::bigint, NULL::boolean, NULL::numeric, NULL::numeric, NULL::numeric,
       NULL::numeric, NULL::boolean, NULL::integer,
       true, false/*t*/, w.tenant AS tenant_/*t*/
  FROM credit_ledger.wallets w
 WHERE w.wallet = $1/*G*/ AND w.tenant = $T/*G*/ AND w.lanes = 1 AND w.parent_id IS NULL
   FOR NO KEY UPDATE OF w"
);
/// A wallet with lanes or a [`free_member`], read without a lock (its spenders lock lanes, not
/// the wallet), with the columns of [`WALLET_LOCK_FOR_SPEND_ONE_LANE`] (the pool's are used for
/// a free member only). Column 20 is false: a free member has no live grant (its condition says
/// so), and a wallet with lanes does not read it.
pub const WALLET_FOR_SPEND_UNLOCKED: &str = concat!(
    wallet_for_spend!("false", "false"),
    "
 WHERE w.wallet = $1/*G*/ AND w.tenant = $T/*G*/ AND (w.lanes > 1 OR ",
    free_member!(),
    ")"
);
/// Whether a capture, release or refund of authorization `$2` leaves the row of wallet `$1`
/// (a one-lane untracked member) unlocked: it is a [`free_member`] (its own grants aside) and
/// this authorization took none of its own credits.
pub const FREE_OF_AUTH: &str = concat!(
    "
SELECT ",
    member_of_lanes!(),
    "
       AND NOT EXISTS (SELECT 1 FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id/*t*/ AND g.tenant = j.tenant/*t*//*G*/ AND g.tenant = $T/*G*/
                        WHERE j.authorization_id = $2 AND g.wallet_id = w.id/*G*/ AND j.tenant = $T/*G*/)
  FROM credit_ledger.wallets w JOIN credit_ledger.wallets p ON p.id = w.parent_id/*t*/ AND p.tenant = w.tenant/*t*//*G*/ AND p.tenant = $T/*G*/
 WHERE w.id = $1/*G*/ AND w.tenant = $T/*G*/"
);
/// The lanes of the pool of one-lane untracked member `$1` (a free member, or one that may
/// have been one when a spend now in flight read it), locked in lane order: what a change of
/// its settings waits for (its spends in flight hold only those).
pub const POOL_LANES_LOCK_OF_MEMBER: &str = concat!(
    "
SELECT 1 FROM credit_ledger.lanes l JOIN credit_ledger.wallets p ON p.id = l.wallet_id/*t*/ AND p.tenant = l.tenant/*t*//*G*/ AND p.tenant = $T/*G*/
  JOIN credit_ledger.wallets w ON w.parent_id = p.id/*t*/ AND w.tenant = p.tenant/*t*//*G*/ AND w.tenant = $T/*G*/
 WHERE w.id = $1/*G*/ AND w.tenant = $T/*G*/ AND ",
    member_of_lanes!(),
    "
 ORDER BY l.asset, l.lane FOR NO KEY UPDATE OF l"
);
