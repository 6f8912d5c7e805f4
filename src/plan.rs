//! Planning a spend: which grants (and lanes) pay, from the wallet's own credits, its pool and
//! its overdraft room, and the counters and alerts of an applied plan.
//!
//! Spending order: the wallet's own grants, then its pool's grants (within the member's pool
//! limit and the pool's spend cap), then the wallet's overdraft room (debits only; holds
//! reserve real credits only). Expired holds stop reserving at once: a call that would
//! otherwise decline first finalizes the wallet's expired holds and retries. A wallet or pool
//! with lanes is planned on one free lane (fast) or on every row (exact): see
//! [`crate::lanes`].

use crate::allocation::{self, Lot};
use crate::amount;
use crate::catalog as sql;
use crate::error::{Kind, LedgerError, Result};
use crate::holds;
use crate::ledger::{self, Movement, WalletState};
use crate::spi::{self, exec, RowExt};
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// Wallet settings as the spending path needs them.
#[derive(Debug, Clone)]
pub struct Wallet {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub frozen: bool,
    pub overdraft_limit: Decimal,
    pub threshold: Option<Decimal>,
    pub spend_cap: Option<Decimal>,
    pub pool_limit: Option<Decimal>,
    pub tracked: bool,
    /// Spending lanes (1: spenders take the wallet's row lock; see [`crate::lanes`]).
    pub lanes: i32,
    /// Its pool as read with it (a fast draw on a pool with lanes reads it no more).
    pub pool: Option<Box<Wallet>>,
    /// False when the statement that locked it saw no live grant of its own: a pool member
    /// without grants then draws from the pool without walking its own (empty) grants.
    pub own_grants: bool,
    /// A pool member read without its row lock (`free_member!` in the catalog; issue 17): its
    /// spends lock only a lane of its pool, write their authorization racily (the unique key
    /// settles a key used twice at once) and take the exact path for anything else.
    pub free_member: bool,
    /// Read by the statement that locked it: it has rooms of a limited member to fold before
    /// its counters are read ([`crate::member_rooms`]).
    pub rooms: bool,
}

impl Wallet {
    /// From columns 1..=8 of the wallet statements.
    pub fn from_row(row: &impl RowExt) -> Result<Self> {
        Self::from_row_at(row, 0)
    }

    /// From columns `base + 1 ..= base + 8`.
    pub fn from_row_at(row: &impl RowExt, base: usize) -> Result<Self> {
        Ok(Wallet {
            id: row.req(base + 1)?,
            parent_id: row.col(base + 2)?,
            frozen: row.req(base + 3)?,
            overdraft_limit: row.dec(base + 4)?,
            threshold: row.opt_dec(base + 5)?,
            spend_cap: row.opt_dec(base + 6)?,
            pool_limit: row.opt_dec(base + 7)?,
            tracked: row.req(base + 8)?,
            lanes: 1,
            pool: None,
            own_grants: true,
            free_member: false,
            rooms: false,
        })
    }

    /// Whether its spends keep counters that need one row (a pool limit, a spend cap not
    /// sliced over its lanes): a wallet with lanes and counters takes the exact path. A
    /// low-balance threshold alone does not (see [`crate::lanes::alert`]), nor a spend cap
    /// sliced over the lanes ([`crate::lane_caps`]), nor an overdraft limit (since 0.10.0): a
    /// fast spend is paid by its lane's credits, so it never takes debt; a call that needs
    /// the overdraft finds no lane that covers it and takes the exact path, which holds the
    /// whole wallet, and a decline is decided on the committed debt.
    pub fn counters(&self) -> bool {
        (self.spend_cap.is_some() && !crate::lane_caps::sliced(self)) || self.pool_limit.is_some()
    }

    /// Whether a spend of it may take a lane: it has lanes, or its pool has (or may have:
    /// the pool of a wallet with lanes is read later).
    pub fn any_lanes(&self) -> bool {
        self.lanes > 1
            || (self.parent_id.is_some() && self.pool.as_ref().is_none_or(|p| p.lanes > 1))
    }

    /// [`Wallet::from_row`] of a statement that has the lanes in column `col` (0.4.0 on).
    pub fn from_row_lanes(row: &impl RowExt, col: usize) -> Result<Self> {
        let mut w = Wallet::from_row(row)?;
        w.lanes = row.req(col)?;
        Ok(w)
    }
}

/// How a spend treats wallets with lanes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lanes {
    /// Take one free lane without waiting, starting at the lane of `seed`
    /// ([`crate::lanes::first_lane`]). `checked`: a lane is taken only when its slices cover
    /// the need ([`crate::lanes::Take::checked`]); else on its hint, by a spender that gives the
    /// lane back (a subtransaction) when it pays less ([`Plan::lane_short`]).
    Fast { seed: i32, checked: bool },
    /// The caller holds (or takes here, for the pool) the whole wallet: every row, in exact
    /// consumption order.
    Exact,
}

impl Lanes {
    pub fn is_fast(self) -> bool {
        matches!(self, Lanes::Fast { .. })
    }

    /// The same, taking lanes only when their slices cover the need.
    pub fn checked(self) -> Lanes {
        match self {
            Lanes::Fast { seed, .. } => Lanes::Fast {
                seed,
                checked: true,
            },
            Lanes::Exact => Lanes::Exact,
        }
    }
}

/// The rate an authorization uses.
#[derive(Debug, Clone)]
pub struct Rate {
    pub id: i64,
    pub credits: Decimal,
    pub asset: String,
    pub vendor_cost: Option<Decimal>,
    pub scale: u32,
    /// The variant a degrading call tries next when this one is unaffordable (since 0.7.0).
    pub fallback: Option<String>,
    /// Graduated volume tiers after the entry's own price (since 0.8.0; see [`crate::tiers`]).
    pub tiers: Option<Vec<crate::tiers::Tier>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Debit,
    Hold,
    /// A quote: no locks beyond the caller's, no writes.
    Quote,
}

/// The outcome of planning a spend.
#[derive(Debug, Default)]
pub struct Plan {
    pub moves: Vec<Movement>,
    pub reason: Option<&'static str>,
    pub own_part: Decimal,
    pub pool_part: Decimal,
    pub overdraft_part: Decimal,
    /// Own spendable before the spend.
    pub own_available: Decimal,
    /// Everything the wallet could spend now (own + pool room + overdraft room); `None` when
    /// that total does not fit 28 digits (only a quote reports it: 22003 there).
    pub spendable: Option<Decimal>,
    pub own_state: Option<WalletState>,
    pub parent_state: Option<WalletState>,
    /// The wallet's overdraft debt before this spend.
    pub debt_before: Decimal,
    /// The pool's own spendable before this spend and its low-balance threshold (set when the
    /// pool was consulted), for the pool's alert on a member's draw.
    pub parent_available: Decimal,
    pub parent_threshold: Option<Decimal>,
    pub parent_id: Option<i64>,
    /// The lane of the wallet (own) and of the pool that a fast spend took.
    pub own_lane: Option<i32>,
    pub pool_lane: Option<i32>,
    /// Lanes of the wallet and of the pool when they have more than one (for the exact path).
    pub own_lanes: i32,
    pub pool_lanes: i32,
    /// A fast spend that could not decide without the exact path: no free lane paid and the
    /// committed total could (or a lane paid less than its hint said).
    pub needs_exact: bool,
    /// A lane taken on its hint alone paid less than the hint said (a slice expired since the
    /// last sweep): worth another fast attempt with [`Lanes::checked`] before the exact path.
    pub lane_short: bool,
    /// Lots were read without their lanes (committed state): only a decline may stand.
    unlocked: bool,
    /// The pool (with lanes) is held whole: its lanes are spread again after the spend.
    pub pool_exclusive: bool,
    /// The wallet's and the pool's spend cap when it is sliced over their lanes
    /// ([`crate::lane_caps`]): a fast spend takes room from its lane, the exact path hands the
    /// room out again.
    pub own_cap: Option<Decimal>,
    pub pool_cap: Option<Decimal>,
    /// The asset spent.
    pub asset: String,
    /// A limited member's fast draw: the room (the pool lane's number) its draw was taken from
    /// when it was planned ([`crate::member_rooms::take`]).
    pub member_room: Option<i32>,
}

impl Plan {
    /// Decline this plan for `reason`: nothing moves.
    pub fn decline(&mut self, reason: &'static str) {
        self.reason = Some(reason);
        self.moves.clear();
        self.own_part = Decimal::ZERO;
        self.pool_part = Decimal::ZERO;
        self.overdraft_part = Decimal::ZERO;
    }

    /// The wallet's own balance after the plan is applied.
    pub fn balance_after(&self) -> Result<Decimal> {
        amount::sub(self.own_available, self.own_part)
            .and_then(|b| amount::sub(b, self.debt_before))
            .and_then(|b| amount::sub(b, self.overdraft_part))
            .ok_or_else(|| amount::out_of_range("the wallet's balance after the spend"))
    }
}

/// The spendable lots of a wallet in consumption order, enough to cover `need` (all of them
/// when they do not), and the wallet's total spendable.
fn lots(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    asset: &str,
    mode: Mode,
    need: Decimal,
) -> Result<(Vec<Lot>, Decimal)> {
    let read = |rows: crate::spi::Rows, with_total: bool| -> Result<(Vec<Lot>, Option<Decimal>)> {
        let mut out = Vec::with_capacity(rows.len());
        let mut total = None;
        for row in rows {
            if with_total && total.is_none() {
                total = Some(spi::to_dec(
                    &row.req::<AnyNumeric>(5)?,
                    "the total of the wallet's spendable grants",
                )?);
            }
            out.push(Lot {
                grant_id: row.req(1)?,
                wallet_id,
                available: row.dec(2)?,
                priority: row.req(3)?,
                expires_at: row.col(4)?,
            });
        }
        Ok((out, total))
    };
    if mode == Mode::Quote {
        // a quote cannot finalize expired holds, so it counts their credits as free directly
        let (all, _) = read(
            exec(
                c,
                sql::GRANTS_SPENDABLE_NOW,
                &[wallet_id.into(), asset.into()],
            )?,
            false,
        )?;
        let total = amount::sum(all.iter().map(|l| l.available))
            .ok_or_else(|| amount::out_of_range("the total of the wallet's spendable grants"))?;
        return Ok((all, total));
    }
    let (head, total) = read(
        exec(
            c,
            sql::GRANTS_SPENDABLE_HEAD,
            &[wallet_id.into(), asset.into()],
        )?,
        true,
    )?;
    let total = total.unwrap_or(Decimal::ZERO);
    // a head too large to add up certainly covers `need`
    let head_sum = amount::sum(head.iter().map(|l| l.available));
    if head_sum.is_none_or(|s| s >= need || s >= total) {
        return Ok((head, total));
    }
    let (all, _) = read(
        exec(c, sql::GRANTS_SPENDABLE, &[wallet_id.into(), asset.into()])?,
        false,
    )?;
    Ok((all, total))
}

/// Plan spending `cost` of `asset` from wallet `w` (whose lock the caller holds unless quoting).
pub fn plan(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    asset: &str,
    cost: Decimal,
    mode: Mode,
    lanes: Lanes,
) -> Result<Plan> {
    let mut retried = false;
    loop {
        let mut p = plan_once(c, w, asset, cost, mode, lanes)?;
        if p.unlocked && p.reason.is_none() {
            // approved on credits read without their lanes: only the exact path may approve
            p.needs_exact = true;
        }
        if p.needs_exact {
            return Ok(p);
        }
        if p.reason.is_none()
            || p.unlocked
            || retried
            || mode == Mode::Quote
            || p.reason == Some("wallet_frozen")
            || p.reason == Some("spend_cap_reached")
        {
            return Ok(p);
        }
        // Expired holds still counted as held on the grants: finalize them and retry once.
        // Holds on these grants may belong to other wallets (pool siblings): their wallets are
        // locked with SKIP LOCKED, so this never waits (a busy one stays reserved for now).
        let mut expired = holds::expired_holds_on(c, w.id, None)?;
        if let Some(pid) = w.parent_id {
            expired.extend(holds::expired_holds_on(c, pid, None)?);
        }
        let mut finalized = 0;
        for id in expired {
            if holds::expire_hold_with(c, id, true, None)? == Some(true) {
                finalized += 1;
            }
        }
        if finalized == 0 {
            return Ok(p);
        }
        retried = true;
    }
}

/// The spendable lots of a wallet with lanes: one free lane (fast), every row (exact or a
/// quote), or, when no free lane covers `need`, every row read without locks (`unlocked`).
#[allow(clippy::too_many_arguments)]
fn lane_lots(
    c: &mut SpiClient<'_>,
    p: &mut Plan,
    w: &Wallet,
    asset: &str,
    mode: Mode,
    need: Decimal,
    lanes: Lanes,
    with_total: bool,
    capped: bool,
    window: Option<(i32, i32)>,
) -> Result<(Vec<Lot>, Decimal, Option<i32>)> {
    if mode == Mode::Quote {
        let (l, t) = lots(c, w.id, asset, mode, need)?;
        return Ok((l, t, None));
    }
    match lanes {
        Lanes::Exact => {
            let (l, t) = crate::lanes::all_lots(c, w.id, asset)?;
            Ok((l, t, None))
        }
        Lanes::Fast { seed, checked } => {
            // a sliced cap: the lane's room of this period must cover `need` too
            let room = capped.then_some(need);
            let take = crate::lanes::Take {
                lanes: w.lanes,
                need,
                seed,
                with_total,
                room,
                window,
                checked,
            };
            match crate::lanes::take(c, w.id, asset, take)? {
                Some(t) => {
                    if t.lane_total < need {
                        // the hint was above what the lane can spend now (a slice expired)
                        p.needs_exact = true;
                        p.lane_short = !checked;
                    }
                    Ok((t.lots, t.total, Some(t.lane)))
                }
                None => {
                    p.unlocked = true;
                    let (l, t) = crate::lanes::all_lots(c, w.id, asset)?;
                    Ok((l, t, None))
                }
            }
        }
    }
}

fn plan_once(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    asset: &str,
    cost: Decimal,
    mode: Mode,
    lanes: Lanes,
) -> Result<Plan> {
    let mut p = Plan {
        spendable: Some(Decimal::ZERO),
        asset: asset.to_string(),
        ..Plan::default()
    };
    // a spend cap sliced over the lanes: decided on the lane's room (fast) or, holding the
    // whole wallet, on the counter with the lanes' spend folded into it (crate::lane_caps)
    let sliced = crate::lane_caps::sliced(w);
    let whole = lanes == Lanes::Exact && mode != Mode::Quote;
    if sliced {
        p.own_cap = w.spend_cap;
    }
    // a limited member's fast draw: its limits are decided by the room of the pool lane it
    // takes (crate::member_rooms), its counters neither read nor written
    let limited_fast = w.free_member && w.tracked && lanes.is_fast() && mode != Mode::Quote;
    if w.tracked && !limited_fast {
        let state = if sliced && whole {
            crate::lane_caps::fold(c, w.id, asset)?;
            WalletState::load(c, w.id, asset)?
        } else if sliced
            || (mode == Mode::Quote && w.parent_id.is_some() && crate::member_rooms::catalog_has())
        {
            // (a member's: with what its rooms drew)
            WalletState::load_committed(c, w.id, asset)?
        } else {
            WalletState::load(c, w.id, asset)?
        };
        p.debt_before = state.debt;
        p.own_state = Some(state);
    }
    let (own, own_total) = if w.lanes > 1 {
        p.own_lanes = w.lanes;
        let capped = sliced && !whole;
        let (l, t, lane) = lane_lots(c, &mut p, w, asset, mode, cost, lanes, true, capped, None)?;
        p.own_lane = lane;
        (l, t)
    } else if w.own_grants || mode == Mode::Quote {
        lots(c, w.id, asset, mode, cost)?
    } else {
        (Vec::new(), Decimal::ZERO)
    };
    p.own_available = own_total;
    if w.frozen {
        p.reason = Some("wallet_frozen");
        return Ok(p);
    }
    // (a lane taken under a sliced cap had room for the cost)
    let own_capped = w.spend_cap.filter(|_| !(sliced && p.own_lane.is_some()));
    if let (Some(cap), Some(state)) = (own_capped, p.own_state.as_ref()) {
        // a sum too large to represent is above any cap
        if amount::add(state.period_spent, cost).is_none_or(|spent| spent > cap) {
            p.reason = Some("spend_cap_reached");
            // cap - spent cannot be represented only when it is far above own_available
            p.spendable = Some(
                amount::sub(cap, state.period_spent)
                    .map_or(p.own_available, |left| left.max(Decimal::ZERO))
                    .min(p.own_available),
            );
            return Ok(p);
        }
    }
    let hold = mode == Mode::Hold;
    let (takes, mut short) = allocation::allocate(&own, cost);
    for t in &takes {
        p.moves
            .push(spend_move(t.grant_id, t.wallet_id, t.amount, hold));
        p.own_part += t.amount;
    }
    p.spendable = Some(p.own_available);
    let mut pool_limited = false;
    if let Some(pid) = w.parent_id {
        // The pool is only locked when the member's own grants do not cover the cost.
        let parent_needed = short > Decimal::ZERO || mode == Mode::Quote;
        if parent_needed {
            let (parent, pool_lanes) = parent_wallet(c, pid, mode, lanes, w.pool.as_deref())?;
            if !parent.frozen {
                let pool_sliced = crate::lane_caps::sliced(&parent);
                let pool_whole = pool_lanes == Lanes::Exact && mode != Mode::Quote;
                if pool_sliced {
                    p.pool_cap = parent.spend_cap;
                }
                // a fast draw under a sliced cap: the lane's room decides; the pool's state
                // (committed) is read only when no lane was taken, or for the pool's alert
                let deferred = pool_sliced && !pool_whole;
                if parent.tracked && !deferred {
                    if pool_sliced {
                        crate::lane_caps::fold(c, pid, asset)?;
                    }
                    p.parent_state = Some(WalletState::load(c, pid, asset)?);
                }
                let (pool, pool_available) = if parent.lanes > 1 {
                    p.pool_lanes = parent.lanes;
                    // a limited member's fast draw: only the pool lanes that hold its rooms
                    let window =
                        limited_fast.then(|| crate::member_rooms::window(w.id, parent.lanes));
                    // what the member may draw: the pool's lane must cover that much
                    let mut need = short;
                    if let (Some(limit), Some(state)) = (w.pool_limit, p.own_state.as_ref()) {
                        if let Some(left) = amount::sub(limit, state.pool_drawn) {
                            need = need.min(left.max(Decimal::ZERO));
                        }
                    }
                    // after an own lane could not pay: no pool lane either (the exact path
                    // must not wait for the pool while holding one of its lanes)
                    let pool_lanes = if p.unlocked { Lanes::Exact } else { pool_lanes };
                    if pool_lanes == Lanes::Exact && lanes.is_fast() && p.unlocked {
                        crate::lanes::all_lots(c, pid, asset)?
                    } else {
                        p.pool_exclusive = pool_lanes == Lanes::Exact;
                        // a pool's lane needs the pool's total only for its alert (the
                        // member's balance is its own)
                        let total = parent.threshold.is_some();
                        let (l, t, lane) = lane_lots(
                            c, &mut p, &parent, asset, mode, need, pool_lanes, total, deferred,
                            window,
                        )?;
                        p.pool_lane = lane;
                        (l, t)
                    }
                } else {
                    lots(c, pid, asset, mode, short)?
                };
                if parent.tracked
                    && deferred
                    && (p.pool_lane.is_none() || parent.threshold.is_some())
                {
                    p.parent_state = Some(WalletState::load_committed(c, pid, asset)?);
                }
                p.parent_available = pool_available;
                p.parent_threshold = parent.threshold;
                p.parent_id = Some(pid);
                let mut room = pool_available;
                if let (Some(limit), Some(state)) = (w.pool_limit, p.own_state.as_ref()) {
                    // a difference too large to represent is no limit here
                    if let Some(left) = amount::sub(limit, state.pool_drawn) {
                        let left = left.max(Decimal::ZERO);
                        if left < room {
                            room = left;
                            pool_limited = true;
                        }
                    }
                }
                // (a pool lane taken under a sliced cap had room for the draw)
                let pool_capped = parent
                    .spend_cap
                    .filter(|_| !(pool_sliced && p.pool_lane.is_some()));
                if let (Some(cap), Some(state)) = (pool_capped, p.parent_state.as_ref()) {
                    if let Some(left) = amount::sub(cap, state.period_spent) {
                        room = room.min(left.max(Decimal::ZERO));
                    }
                }
                p.spendable = p.spendable.and_then(|s| amount::add(s, room));
                let (ptakes, pshort) = allocation::allocate(&pool, short.min(room));
                for t in &ptakes {
                    p.moves
                        .push(spend_move(t.grant_id, t.wallet_id, t.amount, hold));
                    p.pool_part += t.amount;
                }
                short = short - short.min(room) + pshort;
            }
        }
    }
    if mode != Mode::Hold {
        let debt = p.own_state.as_ref().map(|s| s.debt).unwrap_or_default();
        // both are non-negative (CHECK constraints): no overflow
        let room = (w.overdraft_limit - debt).max(Decimal::ZERO);
        p.spendable = p.spendable.and_then(|s| amount::add(s, room));
        if short > Decimal::ZERO && room > Decimal::ZERO {
            let take = short.min(room);
            p.moves.push(Movement::debt(w.id, "overdraft", -take));
            p.overdraft_part = take;
            short -= take;
        }
    }
    if limited_fast && p.reason.is_none() && short == Decimal::ZERO && p.pool_part > Decimal::ZERO {
        // under the pool lane it holds: that lane's room of the member decides, else the
        // exact path (its counters, the rooms folded and handed out again)
        match p.pool_lane {
            Some(lane) if crate::member_rooms::take(c, w.id, asset, lane, p.pool_part)? => {
                p.member_room = Some(lane);
            }
            _ => p.needs_exact = true,
        }
    }
    if short > Decimal::ZERO {
        p.reason = Some(if pool_limited {
            "pool_limit_reached"
        } else {
            "insufficient_credits"
        });
        p.moves.clear();
        p.own_part = Decimal::ZERO;
        p.pool_part = Decimal::ZERO;
        p.overdraft_part = Decimal::ZERO;
    }
    Ok(p)
}

/// The pool of a member: locked when it has one lane (not when quoting); read without a lock
/// when it has lanes and the spend is fast; its row and every lane locked on the exact path.
fn parent_wallet(
    c: &mut SpiClient<'_>,
    pid: i64,
    mode: Mode,
    lanes: Lanes,
    read: Option<&Wallet>,
) -> Result<(Wallet, Lanes)> {
    let vanished = || LedgerError::new(Kind::Internal, format!("pool wallet {pid} vanished"));
    if !crate::lanes::catalog_has_lanes() {
        let sql = if mode == Mode::Quote {
            sql::WALLET_GET_ID
        } else {
            sql::WALLET_LOCK_ID
        };
        let row = spi::first(exec(c, sql, &[pid.into()])?).ok_or_else(vanished)?;
        return Ok((Wallet::from_row(&row)?, Lanes::Exact));
    }
    if mode == Mode::Quote {
        let row =
            spi::first(exec(c, sql::WALLET_GET_ID_V4, &[pid.into()])?).ok_or_else(vanished)?;
        return Ok((Wallet::from_row_lanes(&row, 9)?, Lanes::Exact));
    }
    if lanes.is_fast() {
        // read first (or with the member): a pool with lanes is not locked (a one-lane pool is
        // read again under its lock below, so a change of its lanes in between is seen)
        let parent = match read {
            Some(p) if p.id == pid => p.clone(),
            _ => {
                let row = spi::first(exec(c, sql::WALLET_GET_ID_V4, &[pid.into()])?)
                    .ok_or_else(vanished)?;
                Wallet::from_row_lanes(&row, 9)?
            }
        };
        if parent.lanes > 1 && !parent.counters() {
            return Ok((parent, lanes));
        }
        // one lane, or its counters (a spend cap not sliced, a pool limit) are one row: the
        // whole pool
    }
    let row = spi::first(exec(c, sql::WALLET_LOCK_ID_V4, &[pid.into()])?).ok_or_else(vanished)?;
    let parent = Wallet::from_row_lanes(&row, 9)?;
    if parent.lanes > 1 {
        crate::lanes::exclusive(c, pid)?;
    }
    Ok((parent, Lanes::Exact))
}

fn spend_move(grant_id: i64, wallet_id: i64, amount: Decimal, hold: bool) -> Movement {
    if hold {
        Movement::grant(grant_id, wallet_id, "hold", Decimal::ZERO, amount)
    } else {
        Movement::grant(grant_id, wallet_id, "debit", -amount, Decimal::ZERO)
    }
}

/// Record the counters of an applied plan (spend, pool draw, debt) and the alert.
pub fn commit_plan(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    wallet: &str,
    p: &mut Plan,
    cost: Decimal,
    sign: Decimal,
) -> Result<()> {
    // the counters add exactly or the call fails with 22003 (never a rounded counter)
    let signed = |x: Decimal| if sign.is_sign_negative() { -x } else { x };
    let count = |counter: Decimal, x: Decimal, what: &str| {
        amount::add(counter, signed(x))
            .ok_or_else(|| amount::out_of_range(format!("the {what} of wallet \"{wallet}\"")))
    };
    // a fast spend on a wallet with lanes writes no counter row (it has none but its alert
    // latch: see crate::lanes::alert); the pool's likewise
    if let (Some(_), Some(pid), Some(t)) = (p.pool_lane, p.parent_id, p.parent_threshold) {
        if sign > Decimal::ZERO && p.pool_part > Decimal::ZERO {
            let debt = p.parent_state.as_ref().map(|s| s.debt).unwrap_or_default();
            let pool_balance = amount::sub(p.parent_available, p.pool_part)
                .and_then(|b| amount::sub(b, debt))
                .ok_or_else(|| amount::out_of_range("the pool's balance after the spend"))?;
            crate::lanes::alert(c, pid, None, &p.asset, t, pool_balance)?;
        }
    }
    if p.pool_lane.is_some() {
        p.parent_state = None;
    }
    if p.own_lane.is_some() {
        if let (Some(t), true) = (w.threshold, sign > Decimal::ZERO) {
            let balance = p.balance_after()?;
            crate::lanes::alert(c, w.id, Some(wallet), &p.asset, t, balance)?;
        }
        p.own_state = None;
    }
    if let Some(state) = p.own_state.as_mut() {
        state.period_spent = count(state.period_spent, cost, "period spend")?;
        state.pool_drawn = count(state.pool_drawn, p.pool_part, "pool draw")?;
        state.debt = count(state.debt, p.overdraft_part, "overdraft debt")?;
    }
    if let Some(state) = p.parent_state.as_mut() {
        state.period_spent = count(state.period_spent, p.pool_part, "pool's period spend")?;
        // a member's draw can take the pool below its own threshold: the pool's alert
        if let (Some(pid), true) = (
            p.parent_id,
            sign > Decimal::ZERO && p.pool_part > Decimal::ZERO,
        ) {
            let pool_balance = amount::sub(p.parent_available, p.pool_part)
                .and_then(|b| amount::sub(b, state.debt))
                .ok_or_else(|| amount::out_of_range("the pool's balance after the spend"))?;
            ledger::check_alert_of(c, state, pid, p.parent_threshold, pool_balance)?;
        }
        state.save(c)?;
    }
    let balance = p.balance_after()?;
    if let Some(state) = p.own_state.as_mut() {
        ledger::check_alert(c, state, wallet, w.threshold, balance)?;
        state.save(c)?;
        if w.lanes == 1 && w.parent_id.is_some() && p.pool_lanes > 1 {
            // a limited member (its row held, its rooms folded): the room left, handed out again
            crate::member_rooms::spread(c, w, p.pool_lanes, state)?;
        }
    }
    Ok(())
}
