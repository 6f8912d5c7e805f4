//! Spending: `credit_quote`, `credit_authorize`, `credit_hold`.
//!
//! One call = one atomic step: lock the wallet (then its pool, members before pools), check
//! the idempotency key, look up the rate, walk the spendable grants in consumption order, and
//! write the authorization, the grant changes and the journal in one statement. A decline is
//! a recorded authorization with a reason, never an exception.
//!
//! Spending order: the wallet's own grants, then its pool's grants (within the member's pool
//! limit and the pool's spend cap), then the wallet's overdraft room (debits only; holds
//! reserve real credits only). Expired holds stop reserving at once: a call that would
//! otherwise decline first finalizes the wallet's expired holds and retries.

use crate::allocation::{self, Lot};
use crate::amount;
use crate::catalog as sql;
use crate::error::{or_raise, Kind, LedgerError, Result};
use crate::holds;
use crate::input;
use crate::ledger::{self, Movement, WalletState};
use crate::rate_cache;
use crate::spi::{self, exec, num, opt_num, RowExt};
use crate::types::JsonbText;
use crate::types::Record;
use crate::wallets;
use pgrx::datum::DatumWithOid;
use pgrx::datum::Interval;
use pgrx::prelude::*;
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
}

impl Wallet {
    /// From columns 1..=8 of the wallet statements.
    pub fn from_row(row: &impl RowExt) -> Result<Self> {
        Self::from_row_at(row, 0)
    }

    /// From columns `base + 1 ..= base + 8`.
    fn from_row_at(row: &impl RowExt, base: usize) -> Result<Self> {
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
        })
    }

    /// Whether its spends keep counters that need one row (spend cap, overdraft, pool limit):
    /// a wallet with lanes and counters takes the exact path. A low-balance threshold alone
    /// does not (see [`crate::lanes::alert`]).
    pub fn counters(&self) -> bool {
        self.spend_cap.is_some()
            || self.overdraft_limit > Decimal::ZERO
            || self.pool_limit.is_some()
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
    /// Take one free lane without waiting, starting at this lane.
    Fast(i32),
    /// The caller holds (or takes here, for the pool) the whole wallet: every row, in exact
    /// consumption order.
    Exact,
}

impl Lanes {
    fn is_fast(self) -> bool {
        matches!(self, Lanes::Fast(_))
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
    /// Lots were read without their lanes (committed state): only a decline may stand.
    unlocked: bool,
    /// The pool (with lanes) is held whole: its lanes are spread again after the spend.
    pub pool_exclusive: bool,
    /// The asset spent.
    pub asset: String,
}

impl Plan {
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
        Lanes::Fast(start) => {
            let start = start % w.lanes.max(1);
            match crate::lanes::take(c, w.id, asset, w.lanes, need, start, with_total)? {
                Some(t) => {
                    if t.lane_total < need {
                        // the hint was above what the lane can spend now (a slice expired)
                        p.needs_exact = true;
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
    let (own, own_total) = if w.lanes > 1 {
        p.own_lanes = w.lanes;
        let (l, t, lane) = lane_lots(c, &mut p, w, asset, mode, cost, lanes, true)?;
        p.own_lane = lane;
        (l, t)
    } else {
        lots(c, w.id, asset, mode, cost)?
    };
    p.own_available = own_total;
    if w.tracked {
        let state = WalletState::load(c, w.id, asset)?;
        p.debt_before = state.debt;
        p.own_state = Some(state);
    }
    if w.frozen {
        p.reason = Some("wallet_frozen");
        return Ok(p);
    }
    if let (Some(cap), Some(state)) = (w.spend_cap, p.own_state.as_ref()) {
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
                if parent.tracked {
                    p.parent_state = Some(WalletState::load(c, pid, asset)?);
                }
                let (pool, pool_available) = if parent.lanes > 1 {
                    p.pool_lanes = parent.lanes;
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
                        let (l, t, lane) =
                            lane_lots(c, &mut p, &parent, asset, mode, need, pool_lanes, total)?;
                        p.pool_lane = lane;
                        (l, t)
                    }
                } else {
                    lots(c, pid, asset, mode, short)?
                };
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
                if let (Some(cap), Some(state)) = (parent.spend_cap, p.parent_state.as_ref()) {
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
        // one lane, or its counters (spend cap, alert, overdraft) are one row: the whole pool
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
    }
    Ok(())
}

/// The rate for `action`/`variant` on the wallet's rate card `card` (column 9 of the wallet
/// statements), from the rate cache; a missing rate is an error.
pub fn find_rate(
    c: &mut SpiClient<'_>,
    card: &str,
    action: &str,
    variant: Option<&str>,
    wallet: &str,
) -> Result<Rate> {
    match rate_cache::lookup(c, card, action, variant)? {
        Some(e) => Ok(Rate {
            id: e.id,
            credits: e.credits,
            asset: e.asset,
            vendor_cost: e.vendor_cost,
            scale: e.scale,
        }),
        None => Err(LedgerError::not_found(format!(
            "no rate for action \"{action}\"{} on the rate card of wallet \"{wallet}\" or on \"default\"",
            variant.map(|v| format!(" variant \"{v}\"")).unwrap_or_default()
        ))
        .hint("set one with credit_rate_set()")),
    }
}

/// The `credit_authorization` value of a stored authorization.
pub fn authorization_tuple(c: &mut SpiClient<'_>, id: i64) -> Result<Record> {
    let row = spi::first(exec(c, sql::AUTH_ROW, &[id.into()])?)
        .ok_or_else(|| LedgerError::not_found(format!("authorization {id} does not exist")))?;
    let mut t = Record::new("credit_authorization");
    t.push(row.col::<i64>(1)?);
    t.push(row.col::<bool>(2)?);
    t.push(row.col::<String>(3)?);
    t.push(row.col::<AnyNumeric>(4)?);
    t.push(row.col::<String>(5)?);
    t.push(row.col::<AnyNumeric>(6)?);
    for i in 7..=11 {
        t.push(row.col::<String>(i)?);
    }
    t.push(row.col::<AnyNumeric>(12)?);
    t.push(row.col::<i64>(13)?);
    for i in 14..=16 {
        t.push(row.col::<AnyNumeric>(i)?);
    }
    t.push(row.col::<TimestampWithTimeZone>(17)?);
    t.push(row.col::<String>(18)?);
    t.push(row.col::<TimestampWithTimeZone>(19)?);
    Ok(t)
}

/// A validated spend request.
pub struct Request<'a> {
    pub wallet: &'a str,
    pub action: &'a str,
    pub variant: Option<&'a str>,
    pub quantity: Decimal,
    pub key: Option<&'a str>,
    pub metadata: Option<JsonbText>,
    /// the parsed metadata, for the request fingerprint
    pub metadata_value: Option<serde_json::Value>,
    pub ttl: Option<Interval>,
    pub mode: Mode,
}

impl<'a> Request<'a> {
    pub fn parse(
        wallet: Option<&'a str>,
        action: Option<&'a str>,
        quantity: Option<AnyNumeric>,
        variant: Option<&'a str>,
        key: Option<&'a str>,
        metadata: Option<JsonbText>,
        mode: Mode,
    ) -> Result<Self> {
        let wallet = input::name(wallet, "wallet")?;
        let action = input::name(action, "action")?;
        let variant = input::opt_name(variant, "variant")?;
        let quantity = input::quantity(quantity.map(|q| q.to_string()))?;
        let key = input::key(key)?;
        let metadata_value = input::metadata(metadata.as_ref().map(|j| j.0.as_str()))?;
        Ok(Request {
            wallet,
            action,
            variant,
            quantity,
            key,
            metadata,
            metadata_value,
            ttl: None,
            mode,
        })
    }

    fn fingerprint(&self) -> i64 {
        let ttl = self
            .ttl
            .map(|t| format!("{}/{}/{}", t.months(), t.days(), t.micros()))
            .unwrap_or_default();
        input::fingerprint(&[
            if self.mode == Mode::Hold {
                "hold"
            } else {
                "authorize"
            },
            self.action,
            self.variant.unwrap_or("\u{1}"),
            &self.quantity.normalize().to_string(),
            &ttl,
            &input::json_fingerprint(&self.metadata_value),
        ])
    }
}

/// The spender's wallet: locked when it has one lane; read without a lock when it has lanes.
/// Returns the wallet, its rate card and whether its row is locked.
fn spend_wallet(c: &mut SpiClient<'_>, wallet: &str) -> Result<(Wallet, String, bool)> {
    let missing = || wallets::wallet_missing(wallet);
    if !crate::lanes::catalog_has_lanes() {
        let row = spi::first(exec(c, sql::WALLET_LOCK_FOR_SPEND, &[wallet.into()])?)
            .ok_or_else(missing)?;
        return Ok((Wallet::from_row(&row)?, row.req(9)?, true));
    }
    let (row, locked) = if let Some(row) = spi::first(exec(
        c,
        sql::WALLET_LOCK_FOR_SPEND_ONE_LANE,
        &[wallet.into()],
    )?) {
        let mut w = Wallet::from_row_lanes(&row, 10)?;
        if row.col::<i64>(11)?.is_some() {
            let mut pool = Wallet::from_row_at(&row, 10)?;
            pool.lanes = row.req(19)?;
            w.pool = Some(Box::new(pool));
        }
        return Ok((w, row.req(9)?, true));
    } else if let Some(row) = spi::first(exec(c, sql::WALLET_FOR_SPEND_LANED, &[wallet.into()])?) {
        (row, false)
    } else {
        // missing, or its lanes changed between the two statements
        let row = spi::first(exec(c, sql::WALLET_LOCK_FOR_SPEND_V4, &[wallet.into()])?)
            .ok_or_else(missing)?;
        (row, true)
    };
    Ok((Wallet::from_row_lanes(&row, 10)?, row.req(9)?, locked))
}

/// The whole wallet for the exact path: its row and every lane (re-read under the lock).
fn lock_whole(c: &mut SpiClient<'_>, wallet: &str) -> Result<Wallet> {
    let row = spi::first(exec(c, sql::WALLET_LOCK_FOR_SPEND_V4, &[wallet.into()])?)
        .ok_or_else(|| wallets::wallet_missing(wallet))?;
    let w = Wallet::from_row_lanes(&row, 10)?;
    if w.lanes > 1 {
        crate::lanes::exclusive(c, w.id)?;
    }
    Ok(w)
}

/// Authorize or hold: the whole atomic step. Returns the `credit_authorization` value.
pub fn spend(c: &mut SpiClient<'_>, r: &Request<'_>) -> Result<Record> {
    let (mut w, card, locked) = spend_wallet(c, r.wallet)?;
    // A wallet with lanes spends fast (one free lane, no wait) unless its counters (spend cap,
    // pool limit, overdraft, alert) are one row, or its row is locked (its lanes just changed).
    let mut lanes = Lanes::Fast(crate::lanes::first_lane(
        r.key,
        w.lanes,
        crate::lanes::session(),
    ));
    if w.lanes > 1 && (locked || w.counters()) {
        w = lock_whole(c, r.wallet)?;
        lanes = Lanes::Exact;
    }
    let hash = r.key.map(|_| r.fingerprint());
    if let Some(t) = replay(c, &w, r.key, hash)? {
        return Ok(t);
    }
    let rate = find_rate(c, &card, r.action, r.variant, r.wallet)?;
    let cost = amount::cost(r.quantity, rate.credits, rate.scale)?;
    // exact, or 22003 (checked before anything is planned or written)
    let vendor_cost = rate
        .vendor_cost
        .map(|v| {
            amount::mul_exact(v, r.quantity).ok_or_else(|| {
                amount::out_of_range(format!(
                    "vendor cost of quantity {} at {v} per unit",
                    r.quantity
                ))
            })
        })
        .transpose()?;
    let mut p = plan(c, &w, &rate.asset, cost, r.mode, lanes)?;
    if p.needs_exact {
        // the last credits are in flight: wait for the whole wallet (and pool), then decide
        w = lock_whole(c, r.wallet)?;
        lanes = Lanes::Exact;
        if let Some(t) = replay(c, &w, r.key, hash)? {
            return Ok(t);
        }
        p = plan(c, &w, &rate.asset, cost, r.mode, lanes)?;
    }
    let approved = p.reason.is_none();
    // spenders of a wallet with lanes are not serialized by a lock: a key used concurrently
    // is settled by the unique index (the loser writes nothing and returns the winner's)
    let racy = w.lanes > 1;
    let mut hint_written = false;
    let status = match (approved, r.mode) {
        (false, _) => "declined",
        (true, Mode::Hold) => "held",
        (true, _) => "approved",
    };
    let balance = p.balance_after()?;
    let mut args: Vec<DatumWithOid> = vec![
        w.id.into(),
        (if r.mode == Mode::Hold {
            "hold"
        } else {
            "debit"
        })
        .into(),
        status.into(),
        p.reason.into(),
        r.action.into(),
        r.variant.into(),
        num(r.quantity).into(),
        rate.id.into(),
        rate.asset.as_str().into(),
        num(cost).into(),
        opt_num(vendor_cost.filter(|_| approved)).into(),
        num(p.pool_part).into(),
        num(p.overdraft_part).into(),
        num(balance).into(),
        r.key.into(),
        hash.into(),
        r.metadata.clone().into(),
        r.ttl.unwrap_or_else(|| Interval::from_minutes(10)).into(),
    ];
    // the lightest statement that fits the movements: none, one grant, or the array form
    let write = match p.moves.as_slice() {
        [] if racy => sql::AUTHORIZE_WRITE_NONE_KEYED,
        [] => sql::AUTHORIZE_WRITE_NONE,
        [Movement {
            grant_id: Some(gid),
            wallet_id,
            kind,
            amount,
            held,
        }] => {
            args.extend([
                (*gid).into(),
                (*wallet_id).into(),
                num(*amount).into(),
                num(*held).into(),
                (*kind).into(),
            ]);
            // a fast spend's one move: its lane's hint in the same statement
            let lane = match (p.own_lane, p.pool_lane, p.parent_id) {
                (Some(l), _, _) if *wallet_id == w.id => Some((w.id, l)),
                (_, Some(l), Some(pid)) if *wallet_id == pid => Some((pid, l)),
                _ => None,
            };
            if let Some((lw, l)) = lane {
                args.extend([lw.into(), l.into()]);
                hint_written = true;
            }
            match (racy, lane.is_some()) {
                (true, true) => sql::AUTHORIZE_WRITE_ONE_KEYED_LANE,
                (true, false) => sql::AUTHORIZE_WRITE_ONE_KEYED,
                (false, true) => sql::AUTHORIZE_WRITE_ONE_LANE,
                (false, false) => sql::AUTHORIZE_WRITE_ONE,
            }
        }
        moves => {
            args.extend(ledger::arrays(moves));
            if racy {
                sql::AUTHORIZE_WRITE_KEYED
            } else {
                sql::AUTHORIZE_WRITE
            }
        }
    };
    let Some(out) = spi::first(exec(c, write, &args)?) else {
        // a concurrent call with the same key won (racy writes only)
        return replay(c, &w, r.key, hash)?.ok_or_else(|| {
            LedgerError::new(Kind::Internal, "authorization insert returned nothing")
        });
    };
    let id = out.req::<i64>(1)?;
    let created_at = out.col::<TimestampWithTimeZone>(2)?;
    let expires_at = out.col::<TimestampWithTimeZone>(3)?;
    if approved {
        commit_plan(c, &w, r.wallet, &mut p, cost, Decimal::ONE)?;
    }
    if !hint_written {
        lanes_after(c, &w, &p, &rate.asset, lanes)?;
    }
    // the same values authorization_tuple() would read back, without reading them back
    let mut t = Record::new("credit_authorization");
    t.push(Some(id));
    t.push(Some(approved));
    t.push(p.reason.map(String::from));
    t.push(Some(num(cost)));
    t.push(Some(rate.asset.clone()));
    t.push(Some(num(balance)));
    t.push(Some(r.wallet.to_string()));
    t.push(Some(
        (if r.mode == Mode::Hold {
            "hold"
        } else {
            "debit"
        })
        .to_string(),
    ));
    t.push(Some(status.to_string()));
    t.push(Some(r.action.to_string()));
    t.push(r.variant.map(String::from));
    t.push(Some(num(r.quantity)));
    t.push(Some(rate.id));
    t.push(vendor_cost.filter(|_| approved).map(num));
    t.push(None::<AnyNumeric>);
    t.push(Some(num(Decimal::ZERO)));
    t.push(expires_at);
    t.push(r.key.map(String::from));
    t.push(created_at);
    Ok(t)
}

/// The first authorization of an idempotency key (None: the key is new). A key reused with
/// other arguments is an error.
fn replay(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    key: Option<&str>,
    hash: Option<i64>,
) -> Result<Option<Record>> {
    let (Some(k), Some(h)) = (key, hash) else {
        return Ok(None);
    };
    let Some(prev) = spi::first(exec(c, sql::AUTH_BY_KEY, &[w.id.into(), k.into()])?) else {
        return Ok(None);
    };
    if prev.col::<i64>(2)? != Some(h) {
        return Err(LedgerError::key_reused(k).detail(format!(
            "authorization {} used it first",
            prev.req::<i64>(1)?
        )));
    }
    let first = prev.req::<i64>(1)?;
    authorization_tuple(c, first).map(Some)
}

/// After a spend on wallets with lanes: lower the hint of each lane a fast spend took, or
/// spread the credits of a wallet held whole over its lanes again.
fn lanes_after(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    p: &Plan,
    asset: &str,
    lanes: Lanes,
) -> Result<()> {
    if let Some(lane) = p.own_lane {
        crate::lanes::spent(c, w.id, asset, lane, p.own_part)?;
    } else if lanes == Lanes::Exact && w.lanes > 1 {
        crate::lanes::spread(c, w.id, asset, w.lanes, None)?;
    }
    if let (Some(pid), Some(lane)) = (p.parent_id, p.pool_lane) {
        crate::lanes::spent(c, pid, asset, lane, p.pool_part)?;
    } else if let (Some(pid), true) = (p.parent_id, p.pool_exclusive && p.pool_lanes > 1) {
        crate::lanes::spread(c, pid, asset, p.pool_lanes, None)?;
    }
    Ok(())
}

/// Authorize and debit credits for an action, before the work runs.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_authorize(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
) -> pgrx::composite_type!('static, "credit_authorization") {
    or_raise((|| -> Result<Record> {
        let r = Request::parse(
            wallet,
            action,
            quantity,
            variant,
            idempotency_key,
            metadata,
            Mode::Debit,
        )?;
        spi::with(|c| spend(c, &r))
    })())
    .build()
}

/// Reserve credits for work of unknown final size (a streaming call); capture or release later.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_hold(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    ttl: default!(Option<Interval>, "'10 minutes'"),
) -> pgrx::composite_type!('static, "credit_authorization") {
    or_raise((|| -> Result<Record> {
        let mut r = Request::parse(
            wallet,
            action,
            quantity,
            variant,
            idempotency_key,
            metadata,
            Mode::Hold,
        )?;
        let ttl = ttl.ok_or_else(|| LedgerError::invalid("ttl must not be null"))?;
        if ttl.as_micros() <= 0 || ttl.months() < 0 || ttl.days() < 0 || ttl.micros() < 0 {
            return Err(LedgerError::invalid(format!(
                "ttl must be positive, got {ttl}"
            )));
        }
        r.ttl = Some(ttl);
        spi::with(|c| spend(c, &r))
    })())
    .build()
}

/// Price an action for a wallet without side effects.
#[pg_extern(stable, parallel_safe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_quote(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(cost, AnyNumeric),
        name!(asset, String),
        name!(spendable, AnyNumeric),
        name!(approved, bool),
        name!(reason, Option<String>),
        name!(rate_id, i64),
    ),
> {
    let row = or_raise((|| {
        let r = Request::parse(wallet, action, quantity, variant, None, None, Mode::Quote)?;
        spi::with(|c| {
            let row = spi::first(exec(c, sql::WALLET_FOR_QUOTE, &[r.wallet.into()])?)
                .ok_or_else(|| wallets::wallet_missing(r.wallet))?;
            let w = Wallet::from_row(&row)?;
            let card: String = row.req(9)?;
            let rate = find_rate(c, &card, r.action, r.variant, r.wallet)?;
            let cost = amount::cost(r.quantity, rate.credits, rate.scale)?;
            let p = plan(c, &w, &rate.asset, cost, Mode::Quote, Lanes::Exact)?;
            let spendable = p.spendable.ok_or_else(|| {
                amount::out_of_range(format!("the spendable credits of wallet \"{}\"", r.wallet))
            })?;
            Ok((
                num(cost),
                rate.asset,
                num(spendable),
                p.reason.is_none(),
                p.reason.map(String::from),
                rate.id,
            ))
        })
    })());
    TableIterator::once(row)
}
