//! Limited members (issue 17, since 0.11.0): a pool member with limits of its own whose two
//! calls do not wait for each other either.
//!
//! A *limited member* (`limited_member!` in the catalog) has one lane, a pool limit or a spend
//! cap of its own and nothing else its row holds for a spend (no overdraft, debt, alert or fair
//! use), no grant of its own, and a pool with lanes. Every credit it spends is drawn from the
//! pool, so both limits count the same amount, and its counters
//! (`wallet_assets.period_spent`, `period_pool_drawn`) are the one row its spenders would
//! write. Like a spend cap over a wallet's lanes ([`crate::lane_caps`]), the room its limits
//! leave this period is split (escrow), here over its **pool's** lanes: row (member, asset,
//! lane) of `credit_ledger.member_rooms` holds `room`, what a spender holding the pool's lane of
//! that number may still draw for the member, and `spent`, what such spenders drew that the
//! counters do not hold yet. A fast spend locks a pool lane (as a free member's does), then
//! takes its draw from that lane's room of the member when it covers it (`SKIP LOCKED`). A
//! room is written only by a holder of the pool's lane of the same number that has locked it,
//! or by a holder of the member's row that has locked it:
//!
//! - a fast spend holds its pool lane and its room until its transaction ends; captures,
//!   releases and refunds hold the member's row and the pool lanes their credits came from, and
//!   give the draw back to that lane's room;
//! - [`fold`] (the rooms' draws into the counters, the rows deleted: the delete waits for the
//!   member's spends in flight) and [`spread`] (the room left handed out again) run under the
//!   member's row: when a call's room does not cover it (the member's row, its rooms folded,
//!   then a pool lane as for any member with counters), and when its settings change. Neither
//!   needs the pool whole, so nobody else on the pool waits for them.
//!
//! Rows exist only between a spread and the next fold. Every other reader of the counters adds
//! the rows' `spent` (`credit_balance_detail`, `pool_usage`, a quote, `credit_verify`), and
//! every spend that locks the member's row folds first ([`fold_locked`]).

use crate::amount;
use crate::catalog as sql;
use crate::error::Result;
use crate::ledger::WalletState;
use crate::plan::Wallet;
use crate::spi::{self, exec, num, RowExt};
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// The most pool lanes a limited member's room is split over: enough for several calls of one
/// member at once, few enough that each lane's share covers several calls.
pub const WINDOW: i32 = 16;

/// The pool lanes `from..to` that hold a limited member's rooms in a pool of `pool_lanes`
/// lanes: [`WINDOW`] of them (all when the pool has fewer), placed by the member's id so that
/// the members of one pool spread over its lanes.
pub fn window(member: i64, pool_lanes: i32) -> (i32, i32) {
    let m = pool_lanes.clamp(1, WINDOW);
    // members are created one after the other: a multiplicative hash of the id places members
    // with neighbouring ids far apart, so the windows of a team's members overlap evenly
    let h = (member as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    let from = (h % (pool_lanes - m + 1) as u64) as i32;
    (from, from + m)
}

/// Whether the catalog has limited members (0.11.0 on). Two syscache lookups.
pub fn catalog_has() -> bool {
    spi::catalog_has(c"member_rooms", None)
}

/// A statement of 0.11.0 or, on an older catalog, its older form.
pub fn pick(new: &'static str, old: &'static str) -> &'static str {
    if catalog_has() {
        new
    } else {
        old
    }
}

/// Whether a member that may have rooms: one whose row holds counters (`tracked`), in a
/// catalog that has them.
fn may_have_rooms(w: &Wallet) -> bool {
    w.parent_id.is_some() && w.tracked && catalog_has()
}

/// Take a draw of `need` for `member` from the room of pool lane `lane` (held by the caller):
/// false when that room does not cover it this period (or is held by a fold).
pub fn take(
    c: &mut SpiClient<'_>,
    member: i64,
    asset: &str,
    lane: i32,
    need: Decimal,
) -> Result<bool> {
    let row = spi::first(exec(
        c,
        sql::MEMBER_ROOM_TAKE,
        &[member.into(), asset.into(), lane.into(), num(need).into()],
    )?);
    Ok(row.is_some())
}

/// A draw [`take`]n and then not spent (the call's idempotency key lost a race): back to the
/// room (still locked by this transaction).
pub fn untake(
    c: &mut SpiClient<'_>,
    member: i64,
    asset: &str,
    lane: i32,
    amount: Decimal,
) -> Result<()> {
    exec(
        c,
        sql::MEMBER_ROOM_UNTAKE,
        &[member.into(), asset.into(), lane.into(), num(amount).into()],
    )?;
    Ok(())
}

/// Fold member `member`'s rooms into its counters and delete them. The caller holds the member's
/// row; the delete waits for the member's spends in flight (they hold their rooms).
pub fn fold(c: &mut SpiClient<'_>, member: i64) -> Result<()> {
    if catalog_has() {
        exec(c, sql::MEMBER_ROOMS_FOLD, &[member.into()])?;
    }
    Ok(())
}

/// For a caller that holds member `w`'s row and is about to decide on its counters: the rooms
/// handed out while it was a limited member folded back first. A no-op for anything that
/// cannot have rooms (not a member, or untracked).
pub fn fold_locked(c: &mut SpiClient<'_>, w: &Wallet) -> Result<()> {
    if may_have_rooms(w) {
        fold(c, w.id)?;
    }
    Ok(())
}

/// What the wallet's own row tells of [`sql::MEMBER_LIMITED`] (one lane, a limit of its own, no
/// overdraft, alert or freeze): a member that fails it is not a limited member, without asking
/// (a member with an alert or an overdraft locks its row on every call, and would otherwise pay
/// that query on every call too). What the row does not tell (grants of its own, debt, fair
/// use) the query asks.
fn may_be_limited(w: &Wallet) -> bool {
    w.lanes == 1
        && !w.frozen
        && w.overdraft_limit.is_zero()
        && w.threshold.is_none()
        && (w.pool_limit.is_some() || w.spend_cap.is_some())
}

/// After a spend of member `w` that held its row and folded its rooms (`pool_lanes`: its
/// pool's lanes): when it is a limited member, hand the room its limits leave (after `state`,
/// its counters as saved) out over the pool lanes of its [`window`].
pub fn spread(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    pool_lanes: i32,
    state: &WalletState,
) -> Result<()> {
    if pool_lanes <= 1 || !may_have_rooms(w) || !may_be_limited(w) {
        return Ok(());
    }
    let limited = spi::first(exec(c, sql::MEMBER_LIMITED, &[w.id.into()])?)
        .map(|r| r.col::<bool>(1))
        .transpose()?
        .flatten()
        .unwrap_or(false);
    if !limited {
        return Ok(());
    }
    // what each limit leaves (a difference too large to represent is more room than any call
    // needs); both count the same draws
    let left = |limit: Option<Decimal>, used: Decimal| {
        limit.map(|l| {
            amount::sub(l, used)
                .unwrap_or(Decimal::MAX)
                .max(Decimal::ZERO)
        })
    };
    let room = match (
        left(w.pool_limit, state.pool_drawn),
        left(w.spend_cap, state.period_spent),
    ) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Ok(()),
    };
    let scale = crate::wallets::asset_scale(c, &state.asset)?;
    let (from, to) = window(w.id, pool_lanes);
    let rooms: Vec<AnyNumeric> = crate::lanes::shares(room, to - from, scale)
        .into_iter()
        .map(num)
        .collect();
    exec(
        c,
        sql::MEMBER_ROOMS_SET,
        &[
            w.id.into(),
            state.asset.as_str().into(),
            state.period().into(),
            rooms.into(),
            from.into(),
        ],
    )?;
    Ok(())
}

/// A draw of `amount` of member `w` (from pool `pool`) no longer counts (a release, a capture
/// below the hold, a refund): back to the room of the pool lane authorization `auth` moved
/// (held by the caller). False when the member has no such room (the counters give it back).
pub fn give_back(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    pool: i64,
    asset: &str,
    auth: Option<i64>,
    amount: Decimal,
) -> Result<bool> {
    let Some(auth) = auth.filter(|_| may_have_rooms(w)) else {
        return Ok(false);
    };
    if amount == Decimal::ZERO {
        return Ok(true);
    }
    let row = spi::first(exec(
        c,
        sql::MEMBER_ROOM_GIVE_BACK,
        &[
            w.id.into(),
            asset.into(),
            auth.into(),
            num(amount).into(),
            pool.into(),
        ],
    )?);
    Ok(row.is_some())
}
