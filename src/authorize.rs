//! Spending: `credit_quote`, `credit_authorize`, `credit_hold`.
//!
//! One call = one atomic step: lock the wallet (then its pool, members before pools; a wallet
//! or pool with lanes: one lane, see [`crate::lanes`]), check the idempotency key, look up the
//! rate, plan the spend ([`crate::plan`]), and write the authorization, the grant changes and
//! the journal in one statement. A decline is a recorded authorization with a reason, never an
//! exception.

use crate::amount;
use crate::catalog as sql;
use crate::error::{or_raise, Kind, LedgerError, Result};
use crate::input;
use crate::ledger::{self, Movement};
use crate::overage::Step;
pub use crate::plan::{commit_plan, plan, Lanes, Mode, Plan, Rate, Wallet};
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
        Some(e) => Ok(Rate::from(e)),
        None => Err(LedgerError::not_found(format!(
            "no rate for action \"{action}\"{} on the rate card of wallet \"{wallet}\" or on \"default\"",
            variant.map(|v| format!(" variant \"{v}\"")).unwrap_or_default()
        ))
        .hint("set one with credit_rate_set()")),
    }
}

/// The `credit_authorization` value of a stored authorization.
pub fn authorization_tuple(c: &mut SpiClient<'_>, id: i64) -> Result<Record> {
    let statement = if crate::runs::catalog_has_runs() {
        sql::AUTH_ROW_V5
    } else {
        sql::AUTH_ROW
    };
    let row = spi::first(exec(c, statement, &[id.into()])?)
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
    /// A call in an agent run (`run => id`): `wallet` is then the run's wallet, `shown` the
    /// wallet the caller named, and `run_closed` declines the call with `run_closed`.
    pub run: Option<RunCall<'a>>,
    /// `degrade => true`: approve the first affordable variant of the fallback chain.
    pub degrade: bool,
}

/// How a call in a run differs from a call on its wallet.
#[derive(Clone, Copy)]
pub struct RunCall<'a> {
    pub shown: &'a str,
    pub closed: bool,
    pub max_calls: Option<i32>,
    pub max_cost_per_call: Option<Decimal>,
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
            run: None,
            degrade: false,
        })
    }

    fn fingerprint(&self) -> i64 {
        let ttl = self
            .ttl
            .map(|t| format!("{}/{}/{}", t.months(), t.days(), t.micros()))
            .unwrap_or_default();
        input::fingerprint(&[
            match (self.mode == Mode::Hold, self.degrade) {
                (true, false) => "hold",
                (false, false) => "authorize",
                (true, true) => "hold degrade",
                (false, true) => "authorize degrade",
            },
            self.action,
            self.variant.unwrap_or("\u{1}"),
            &self.quantity.normalize().to_string(),
            &ttl,
            &input::json_fingerprint(&self.metadata_value),
        ])
    }
}

/// The whole wallet for the exact path: its row and every lane (re-read under the lock).
pub(crate) fn lock_whole(c: &mut SpiClient<'_>, wallet: &str) -> Result<Wallet> {
    let row = spi::first(exec(c, sql::WALLET_LOCK_FOR_SPEND_V4, &[wallet.into()])?)
        .ok_or_else(|| wallets::wallet_missing(wallet))?;
    let w = Wallet::from_row_lanes(&row, 10)?;
    if w.lanes > 1 {
        crate::lanes::exclusive(c, w.id)?;
    }
    Ok(w)
}

/// The whole wallet for the exact path ([`lock_whole`]) with, for a member, the rooms it had as
/// a limited member folded into its counters ([`crate::member_rooms::fold_locked`]).
pub(crate) fn lock_whole_folded(c: &mut SpiClient<'_>, wallet: &str) -> Result<Wallet> {
    let w = lock_whole(c, wallet)?;
    crate::member_rooms::fold_locked(c, &w)?;
    Ok(w)
}

/// Authorize or hold: the whole atomic step. Returns the `credit_authorization` value.
pub fn spend(c: &mut SpiClient<'_>, r: &Request<'_>) -> Result<Record> {
    let (mut w, card, locked) = crate::lanes::spend_wallet(c, r.wallet)?;
    if w.frozen {
        // a closed wallet is frozen for good, and a spend is an error rather than a decline
        crate::corrections::refuse_closed(c, w.id, r.wallet)?;
    }
    // A wallet with lanes spends fast (one free lane, no wait) unless its counters (a spend cap
    // not sliced over the lanes, a pool limit) are one row, or its row is locked (its lanes
    // just changed).
    let mut lanes = Lanes::Fast {
        seed: crate::lanes::first_lane(r.key, crate::lanes::session()),
        checked: false,
    };
    // a member whose row is locked decides on its counters: rooms handed out while it was a
    // limited member are folded into them first (crate::member_rooms; the statement that
    // locked it says whether it has any)
    if locked && w.rooms {
        crate::member_rooms::fold_locked(c, &w)?;
    }
    // a run with max_calls counts its calls under its whole lock
    let counted = r.run.is_some_and(|run| run.max_calls.is_some());
    if w.lanes > 1 && (locked || w.counters() || counted) {
        w = lock_whole_folded(c, r.wallet)?;
        lanes = Lanes::Exact;
    }
    let hash = r.key.map(|_| r.fingerprint());
    if let Some(t) = replay(c, &w, r.key, hash)? {
        return Ok(t);
    }
    let chain = crate::overage::chain(c, &card, r.action, r.variant, r.wallet, r.degrade)?;
    // a tiered variant prices from its counter, locked after the whole wallet (crate::tiers)
    if chain.iter().any(|s| s.rate.tiers.is_some()) && lanes.is_fast() {
        // (a limited member read without its lock: its row too, for its counters)
        if w.lanes > 1 || (w.free_member && w.tracked) {
            w = lock_whole_folded(c, r.wallet)?;
            if let Some(t) = replay(c, &w, r.key, hash)? {
                return Ok(t);
            }
        }
        lanes = Lanes::Exact;
    }
    let counters = tier_positions(c, &w, r.action, &chain)?;
    let priced = chain
        .iter()
        .zip(&counters)
        .enumerate()
        .map(|(i, (step, tier))| price(r, step, i > 0, hash, tier.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    let first = &priced[0];
    // a wallet with fair use in the asset spends no credits in it (crate::fair_use)
    if r.run.is_none() {
        if let Some(fair) = crate::fair_use::of_wallet(c, &w, &first.rate.asset, false)? {
            return spend_fair_use(c, r, &w, &priced, &fair);
        }
    }
    // a degrading call whose first variant does not fit plans its chain on the whole wallet
    let more = priced.len() > 1;
    let unfit = |p: &Plan| more && !fits(p, first, r.run);
    if let Some(t) = attempt_fast(c, r, &w, first, lanes, &unfit)? {
        return Ok(t);
    }
    if w.free_member && w.tracked && lanes.is_fast() {
        // a limited member whose room did not cover the call: its row, its rooms folded into
        // its counters, then a pool lane as for any member with counters; the rooms are handed
        // out again after the spend (crate::member_rooms)
        let w = lock_whole_folded(c, r.wallet)?;
        if let Some(t) = replay(c, &w, r.key, hash)? {
            return Ok(t);
        }
        if w.lanes == 1 {
            if let Some(t) = attempt_fast(c, r, &w, first, lanes, &unfit)? {
                return Ok(t);
            }
        }
    }
    // the last credits are in flight: wait for the whole wallet (and pool), then decide
    let w = lock_whole_folded(c, r.wallet)?;
    if let Some(t) = replay(c, &w, r.key, hash)? {
        return Ok(t);
    }
    let (p, i) = plan_chain(c, &w, &priced, r.mode, r.run)?;
    write(c, r, &w, p, &priced[i], Lanes::Exact, None)
}

/// The fast attempt of a spend: planned on the wallet as read (or locked) and one free lane of
/// it or its pool, and written; None when it cannot decide without the exact path.
fn attempt_fast(
    c: &mut SpiClient<'_>,
    r: &Request<'_>,
    w: &Wallet,
    first: &Priced<'_>,
    lanes: Lanes,
    unfit: &dyn Fn(&Plan) -> bool,
) -> Result<Option<Record>> {
    if lanes.is_fast() && w.any_lanes() && crate::subxact::available() {
        // The fast attempt (lane taken, planned, written) runs in a subtransaction: a lane that
        // turns out unable to pay is given back before waiting for the whole wallet (holding
        // it while waiting is how two spenders deadlock). Its writes run in it too, so the
        // rows it locked are updated by the same transaction id (no multixact). A lane is
        // first taken on its hint alone; one that paid less (a slice expired since the last
        // sweep) is given back and the attempt made once more on lanes whose slices cover it.
        let mut once = |lanes: Lanes| -> Result<(Option<Record>, bool)> {
            let mut short = false;
            let t = crate::subxact::attempt(
                || {
                    let p = plan_fast(c, w, &first.rate.asset, first.cost, r.mode, lanes)?;
                    if p.needs_exact || unfit(&p) {
                        short = p.lane_short;
                        return Ok(None);
                    }
                    write(c, r, w, p, first, lanes, None).map(Some)
                },
                Option::is_some,
            )?;
            Ok((t, short))
        };
        let (t, short) = once(lanes)?;
        if t.is_some() || !short || !crate::subxact::available() {
            return Ok(t);
        }
        // (a checked take never comes back short: at most two attempts)
        return Ok(once(lanes.checked())?.0);
    }
    // (without a subtransaction a lane taken cannot be given back: only one that can pay)
    let lanes = lanes.checked();
    let p = plan_fast(c, w, &first.rate.asset, first.cost, r.mode, lanes)?;
    if !p.needs_exact && !unfit(&p) {
        return write(c, r, w, p, first, lanes, None).map(Some);
    }
    if let Some(lane) = p.member_room {
        // (no subtransaction to roll back: a limited member's draw taken when planned goes back)
        crate::member_rooms::untake(c, w.id, &first.rate.asset, lane, p.pool_part)?;
    }
    Ok(None)
}

/// A call of a wallet with fair use in the asset: the first variant of the chain whose cost
/// the period's fair use still has room for is approved and moves no credit; none: declined
/// with `fair_use_exceeded` (a frozen wallet: `wallet_frozen`).
fn spend_fair_use(
    c: &mut SpiClient<'_>,
    r: &Request<'_>,
    w: &Wallet,
    priced: &[Priced<'_>],
    fair: &crate::fair_use::FairUse,
) -> Result<Record> {
    let asset = &priced[0].rate.asset;
    let own = if spi::distributed(c)? {
        sql::OWN_BALANCE_IN
    } else {
        sql::OWN_BALANCE
    };
    let balance = spi::first(exec(c, own, &[w.id.into(), asset.as_str().into()])?)
        .map(|row| row.dec(1))
        .transpose()?
        .unwrap_or_default();
    let pick = priced.iter().position(|x| fair.fits(x.cost));
    let reason = match (w.frozen, pick) {
        (true, _) => Some("wallet_frozen"),
        (false, None) => Some("fair_use_exceeded"),
        (false, Some(_)) => None,
    };
    let mut p = Plan::default();
    p.reason = reason;
    p.own_available = balance;
    p.spendable = Some(fair.left());
    p.asset = asset.clone();
    let x = &priced[if reason.is_none() {
        pick.unwrap_or(0)
    } else {
        0
    }];
    write(c, r, w, p, x, Lanes::Exact, Some(fair))
}

/// The tier counter and position of each tiered variant of a call (None: not tiered), locked
/// in the order of their keys (so two calls never lock two counters in opposite orders).
fn tier_positions(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    action: &str,
    chain: &[Step],
) -> Result<Vec<Option<(crate::tiers::Counter, Decimal)>>> {
    let mut order: Vec<usize> = (0..chain.len())
        .filter(|&i| chain[i].rate.tiers.is_some())
        .collect();
    order.sort_by(|&a, &b| chain[a].variant.cmp(&chain[b].variant));
    let mut out: Vec<Option<(crate::tiers::Counter, Decimal)>> =
        chain.iter().map(|_| None).collect();
    for i in order {
        let step = &chain[i];
        let counter = crate::tiers::counter(c, w.id, action, step.variant.as_deref())?;
        let position = counter.lock(c)?;
        out[i] = Some((counter, position));
    }
    Ok(out)
}

/// Price one variant of a call: its cost and vendor cost, exact or 22003 (checked before
/// anything is planned or written); a tiered variant from its counter's position.
fn price<'s>(
    r: &Request<'_>,
    step: &'s Step,
    degraded: bool,
    hash: Option<i64>,
    tier: Option<&'s (crate::tiers::Counter, Decimal)>,
) -> Result<Priced<'s>> {
    let rate = &step.rate;
    let cost = match (&rate.tiers, tier) {
        (Some(tiers), Some((_, position))) => {
            crate::tiers::cost(rate.credits, tiers, rate.scale, *position, r.quantity)?
        }
        _ => amount::cost(r.quantity, rate.credits, rate.scale)?,
    };
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
    Ok(Priced {
        rate,
        variant: step.variant.as_deref(),
        degraded,
        cost,
        vendor_cost,
        hash,
        counter: tier.map(|(counter, _)| counter),
    })
}

/// Whether a planned variant is approved: the wallet pays and the call's run allows its cost.
fn fits(p: &Plan, x: &Priced<'_>, run: Option<RunCall<'_>>) -> bool {
    p.reason.is_none()
        && run
            .and_then(|run| run.max_cost_per_call)
            .is_none_or(|m| x.cost <= m)
}

/// Plan the variants of a call in turn on the whole wallet: the first the wallet can pay (and
/// its run allows) wins; when none can, the variant asked for is declined with its reason.
/// A reason no cheaper variant can avoid (a frozen wallet) ends the chain.
fn plan_chain(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    priced: &[Priced<'_>],
    mode: Mode,
    run: Option<RunCall<'_>>,
) -> Result<(Plan, usize)> {
    let mut first = None;
    for (i, x) in priced.iter().enumerate() {
        let p = plan(c, w, &x.rate.asset, x.cost, mode, Lanes::Exact)?;
        if fits(&p, x, run) {
            return Ok((p, i));
        }
        let goes_on = p.reason.is_none() || crate::overage::degradable(p.reason);
        first.get_or_insert(p);
        if !goes_on {
            break;
        }
    }
    first
        .map(|p| (p, 0))
        .ok_or_else(|| LedgerError::new(Kind::Internal, "a call with no rate to plan"))
}

/// [`plan`] for the first attempt of a spend. A member whose locking statement saw no grant of
/// its own skips its own grants; if it is then declined, a grant may have been committed while
/// it waited for its row lock (a pool allocation to it, whose pool debit it does see): it is
/// planned again with its own grants, so a decline never rests on that stale view.
fn plan_fast(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    asset: &str,
    cost: Decimal,
    mode: Mode,
    lanes: Lanes,
) -> Result<Plan> {
    let mut p = plan(c, w, asset, cost, mode, lanes)?;
    if w.own_grants || p.needs_exact || p.reason.is_none() {
        return Ok(p);
    }
    if w.free_member && w.tracked {
        // a limited member's decline is decided on its counters (its reason too)
        p.needs_exact = true;
        return Ok(p);
    }
    let mut again = w.clone();
    again.own_grants = true;
    let mut p = plan(c, &again, asset, cost, mode, lanes)?;
    if w.free_member && p.reason.is_none() {
        // a free member's own grants (new since it was read) are spent under its lock only
        p.needs_exact = true;
    }
    Ok(p)
}

/// What a request costs, priced once before any attempt to plan it (each variant of a
/// degrading call).
struct Priced<'a> {
    rate: &'a Rate,
    /// the variant the call records: the one asked for, or a fallback
    variant: Option<&'a str>,
    /// a fallback, not the variant asked for
    degraded: bool,
    cost: Decimal,
    vendor_cost: Option<Decimal>,
    hash: Option<i64>,
    /// a tiered variant's counter (locked), moved on when a debit is approved
    counter: Option<&'a crate::tiers::Counter>,
}

/// Write a planned spend: its authorization, its movements and the lanes' hints.
#[allow(clippy::too_many_arguments)]
fn write(
    c: &mut SpiClient<'_>,
    r: &Request<'_>,
    w: &Wallet,
    mut p: Plan,
    ctx: &Priced<'_>,
    lanes: Lanes,
    fair: Option<&crate::fair_use::FairUse>,
) -> Result<Record> {
    let (rate, cost, vendor_cost, hash) = (ctx.rate, ctx.cost, ctx.vendor_cost, ctx.hash);
    if let Some(run) = r.run {
        // a call in a run: declined in the run's terms, never charged to the wallet
        // (the run's wallet is locked: the count of its calls is exact)
        if run.closed {
            p.decline("run_closed");
        } else if run.max_cost_per_call.is_some_and(|m| cost > m) {
            p.decline("run_max_cost_per_call");
        } else if let Some(reason) = crate::runs::reason_in_run(p.reason) {
            p.decline(reason);
        } else if let Some(n) = run.max_calls {
            let calls = spi::first(exec(c, sql::RUN_CALLS, &[w.id.into()])?)
                .map(|row| row.req::<i64>(1))
                .transpose()?
                .unwrap_or(0);
            if calls >= i64::from(n) {
                p.decline("run_max_calls");
            }
        }
    }
    let approved = p.reason.is_none();
    // spenders of a wallet with lanes are not serialized by a lock: a key used concurrently
    // is settled by the unique index (the loser writes nothing and returns the winner's)
    // (without a key nothing can conflict: the plain insert, not a speculative one)
    let racy = (w.lanes > 1 || w.free_member) && r.key.is_some();
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
        ctx.variant.into(),
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
    // On a distributed ledger the authorization row is written on its own and the moves after
    // it: Citus runs a statement whose CTEs write several tables through intermediate results
    // (written out and read back on every call, most of a delegated call's time: measured)
    let split = !p.moves.is_empty() && spi::distributed(c)?;
    // the lightest statement that fits the movements: none, one grant, or the array form
    let write = match p.moves.as_slice() {
        _ if split && racy => sql::AUTHORIZE_WRITE_NONE_KEYED,
        _ if split => sql::AUTHORIZE_WRITE_NONE,
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
            // a fast spend's one move: its lane's hint (and, under a sliced spend cap, its
            // room: the one move is the whole cost) in the same statement
            let lane = match (p.own_lane, p.pool_lane, p.parent_id) {
                (Some(l), _, _) if *wallet_id == w.id => Some((w.id, l, p.own_cap.is_some())),
                (_, Some(l), Some(pid)) if *wallet_id == pid => {
                    Some((pid, l, p.pool_cap.is_some()))
                }
                _ => None,
            };
            if let Some((lw, l, _)) = lane {
                args.extend([lw.into(), l.into()]);
                hint_written = true;
            }
            match (racy, lane.map(|(_, _, capped)| capped)) {
                (true, Some(true)) => sql::AUTHORIZE_WRITE_ONE_KEYED_LANE_CAP,
                (true, Some(false)) => sql::AUTHORIZE_WRITE_ONE_KEYED_LANE,
                (true, None) => sql::AUTHORIZE_WRITE_ONE_KEYED,
                (false, Some(true)) => sql::AUTHORIZE_WRITE_ONE_LANE_CAP,
                (false, Some(false)) => sql::AUTHORIZE_WRITE_ONE_LANE,
                (false, None) => sql::AUTHORIZE_WRITE_ONE,
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
        // a concurrent call with the same key won (racy writes only); a limited member's draw
        // taken from its room when this call was planned goes back
        if let Some(lane) = p.member_room {
            crate::member_rooms::untake(c, w.id, &rate.asset, lane, p.pool_part)?;
        }
        return replay(c, w, r.key, hash)?.ok_or_else(|| {
            LedgerError::new(Kind::Internal, "authorization insert returned nothing")
        });
    };
    let id = out.req::<i64>(1)?;
    let created_at = out.col::<TimestampWithTimeZone>(2)?;
    let expires_at = out.col::<TimestampWithTimeZone>(3)?;
    if split {
        ledger::apply_moves(c, &p.moves, &rate.asset, Some(id), Some(w.id), None)?;
    }
    if let Some(reason @ ("spend_cap_reached" | "pool_limit_reached" | "fair_use_exceeded")) =
        p.reason
    {
        // once per wallet, asset and period (events since 0.6.0)
        crate::events::limit_reached(c, w.id, r.wallet, &rate.asset, reason, id)?;
    }
    if approved {
        if ctx.degraded {
            exec(c, sql::AUTH_DEGRADED, &[id.into(), r.variant.into()])?;
        }
        if let (Some(counter), Mode::Debit) = (ctx.counter, r.mode) {
            counter.advance(c, r.quantity)?;
        }
        if let Some(fair) = fair {
            // paid by fair use: counted there, no credit moved, no spend counter touched
            fair.counter.advance(c, cost)?;
            exec(c, sql::AUTH_FAIR_USE, &[id.into()])?;
        } else {
            commit_plan(c, w, r.wallet, &mut p, cost, Decimal::ONE)?;
        }
    }
    if !hint_written && fair.is_none() {
        crate::lanes::after_spend(c, w, &p, &rate.asset, lanes, cost)?;
    }
    // the same values authorization_tuple() would read back, without reading them back
    let mut t = Record::new("credit_authorization");
    t.push(Some(id));
    t.push(Some(approved));
    t.push(p.reason.map(String::from));
    t.push(Some(num(cost)));
    t.push(Some(rate.asset.clone()));
    t.push(Some(num(balance)));
    t.push(Some(r.run.map_or(r.wallet, |run| run.shown).to_string()));
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
    t.push(ctx.variant.map(String::from));
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

/// [`spend`] with `run => run`: the call spends the run's wallet (its row is the only lock),
/// and is declined with `run_budget_exhausted` or `run_closed` where the run cannot pay.
pub fn spend_in(c: &mut SpiClient<'_>, r: &Request<'_>, run: Option<i64>) -> Result<Record> {
    let Some(id) = run else {
        return spend(c, r);
    };
    let s = crate::runs::for_call(c, id, r.wallet)?;
    let inner = Request {
        wallet: &s.run_wallet,
        action: r.action,
        variant: r.variant,
        quantity: r.quantity,
        key: r.key,
        metadata: r.metadata.clone(),
        metadata_value: r.metadata_value.clone(),
        ttl: r.ttl,
        mode: r.mode,
        degrade: r.degrade,
        run: Some(RunCall {
            shown: r.wallet,
            closed: s.closed,
            max_calls: s.max_calls,
            max_cost_per_call: s.max_cost_per_call,
        }),
    };
    spend(c, &inner)
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

/// Authorize and debit credits for an action, before the work runs (`run`: in an agent run;
/// `degrade`: the first affordable variant of the rate's fallback chain, since 0.7.0; `tenant`:
/// the wallet's tenant, since 0.12.0, which a Citus cluster routes the call by: see
/// [`crate::tenant`]).
#[allow(clippy::too_many_arguments)]
#[pg_extern(
    name = "credit_authorize",
    volatile,
    parallel_unsafe,
    security_definer,
    requires = [tenant::tenant_unset]
)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
pub(crate) fn credit_authorize_v12(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    run: default!(Option<i64>, "NULL"),
    degrade: default!(Option<bool>, false),
    tenant: default!(Option<&str>, "credit_ledger._tenant_unset()"),
) -> pgrx::composite_type!('static, "credit_authorization") {
    or_raise((|| -> Result<Record> {
        let tenant = input::opt_name(tenant, "tenant")?;
        let mut r = Request::parse(
            wallet,
            action,
            quantity,
            variant,
            idempotency_key,
            metadata,
            Mode::Debit,
        )?;
        r.degrade = degrade.unwrap_or(false);
        spi::with(|c| {
            crate::tenant::enter(c, r.wallet, tenant)?;
            spend_in(c, &r, run)
        })
    })())
    .build()
}

/// Reserve credits for work of unknown final size (a streaming call); capture or release later
/// (`tenant` as for [`credit_authorize_v12`]).
#[allow(clippy::too_many_arguments)]
#[pg_extern(
    name = "credit_hold",
    volatile,
    parallel_unsafe,
    security_definer,
    requires = [tenant::tenant_unset]
)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
pub(crate) fn credit_hold_v12(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    ttl: default!(Option<Interval>, "'10 minutes'"),
    run: default!(Option<i64>, "NULL"),
    degrade: default!(Option<bool>, false),
    tenant: default!(Option<&str>, "credit_ledger._tenant_unset()"),
) -> pgrx::composite_type!('static, "credit_authorization") {
    or_raise((|| -> Result<Record> {
        let tenant = input::opt_name(tenant, "tenant")?;
        let mut r = Request::parse(
            wallet,
            action,
            quantity,
            variant,
            idempotency_key,
            metadata,
            Mode::Hold,
        )?;
        r.ttl = Some(crate::runs::positive_ttl(ttl)?);
        r.degrade = degrade.unwrap_or(false);
        spi::with(|c| {
            crate::tenant::enter(c, r.wallet, tenant)?;
            spend_in(c, &r, run)
        })
    })())
    .build()
}
