//! Holds: `credit_capture`, `credit_release`, and hold expiry.
//!
//! A hold reserves credits on specific grants (`held`), in consumption order. Capture spends
//! from those same grants (less than held: the rest is released to them; more than held: the
//! difference is debited under the wallet's normal rules at the hold's rate version, and if the
//! wallet cannot pay it the held part is captured and the result says `capture_shortfall`).
//! Release returns everything. A hold past its TTL stops reserving at once (spending paths and
//! balances ignore it) and is finalized by `credit_expire()` or by the next call that needs the
//! credits; capturing it is an error (55000).
//!
//! A grant that expires while held: capture still spends the held credits; credits released
//! back to an expired grant are expired at once (an `expiry` entry: breakage).
//!
//! Locking: the hold's wallet, then its pool (members before pools), then the authorization row.

use crate::allocation::{self, Lot};
use crate::authorize::{self, Mode, Wallet};
use crate::catalog as sql;
use crate::error::{or_raise, Kind, LedgerError, Result};
use crate::input;
use crate::lanes;
use crate::ledger::{self, Movement, WalletState};
use crate::spi::{self, exec, num, RowExt};
use crate::types::JsonbText;
use crate::types::Record;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// A locked authorization, as capture/release/refund need it.
pub struct Auth {
    pub id: i64,
    pub wallet_id: i64,
    pub kind: String,
    pub status: String,
    pub asset: String,
    pub cost: Decimal,
    pub quantity: Decimal,
    pub captured: Decimal,
    pub refunded: Decimal,
    pub ttl_passed: bool,
    pub close_key: Option<String>,
    pub close_hash: Option<i64>,
    pub credits_per_unit: Option<Decimal>,
    pub scale: u32,
    pub action: String,
    pub variant: Option<String>,
    /// The rate version's volume tiers (JSON text; since 0.8.0).
    pub tiers: Option<String>,
    /// Paid by fair use (since 0.8.0).
    pub fair_use: bool,
}

/// Lock the authorization's wallet (and pool), then the authorization itself.
pub fn lock(
    c: &mut SpiClient<'_>,
    id: i64,
    skip_locked: bool,
    as_of: Option<TimestampWithTimeZone>,
) -> Result<Option<(Wallet, Auth)>> {
    lock_for(c, id, skip_locked, as_of, false)
}

/// [`lock`]; `whole`: the call may spend beyond what the authorization moved (a capture above
/// the hold) or change the wallet's debt (a refund of overdraft), so it takes the whole wallet
/// and pool (rows, then every lane, in the order the exact path takes them) before anything
/// else, never a lane first and the rest after.
pub(crate) fn lock_for(
    c: &mut SpiClient<'_>,
    id: i64,
    skip_locked: bool,
    as_of: Option<TimestampWithTimeZone>,
    whole: bool,
) -> Result<Option<(Wallet, Auth)>> {
    let wallet_id = spi::first(exec(c, sql::AUTH_WALLET, &[id.into()])?)
        .map(|r| r.req::<i64>(1))
        .transpose()?
        .ok_or_else(|| LedgerError::not_found(format!("authorization {id} does not exist")))?;
    // A wallet (or pool) with lanes and no counters is not locked: the slices a capture,
    // release or refund moves change only under their lanes (taken below). Taking its row
    // would also deadlock a transaction that holds and captures: its hold keeps a lane while
    // an exact-path spender holds the row and waits for that lane.
    let Some(mut w) = lock_wallet(c, wallet_id, skip_locked, whole, Some(id))? else {
        return Ok(None);
    };
    if let Some(pid) = w.parent_id {
        let Some(pool) = lock_wallet(c, pid, skip_locked, whole, None)? else {
            return Ok(None);
        };
        // kept for [`uncount`] (it need not read the pool again)
        w.pool = Some(Box::new(pool));
    }
    if whole {
        lanes::exclusive(c, wallet_id)?;
        if let Some(pid) = w.parent_id {
            lanes::exclusive(c, pid)?;
        }
    } else if !lanes::lock_of_authorization(c, id, skip_locked)? {
        // wallets with lanes: the lanes of the slices this authorization moved (a release or
        // refund moves only those), not the whole wallet: spenders on other lanes go on
        return Ok(None);
    }
    // On a distributed ledger the row is locked and read on its own, its rate's and asset's
    // terms after it: inside a delegated call Citus refuses any statement that joins a
    // distributed table with a reference table (rates, assets; checked with Citus 13.2)
    let distributed = spi::distributed(c)?;
    let lock = if distributed {
        crate::catalog_tenants::AUTH_LOCK_DISTRIBUTED
    } else {
        sql::AUTH_LOCK
    };
    let r = spi::first(exec(c, lock, &[id.into(), as_of.into()])?)
        .ok_or_else(|| LedgerError::not_found(format!("authorization {id} does not exist")))?;
    let (mut credits_per_unit, mut scale, mut tiers) = (
        r.opt_dec(14)?,
        r.col::<i32>(15)?.unwrap_or(0) as u32,
        r.col::<String>(18)?,
    );
    if distributed {
        let asset: String = r.req(5)?;
        scale = crate::wallets::asset_scale(c, &asset)?;
        if let Some(rate) = r.col::<i64>(7)? {
            if let Some(t) =
                spi::first(exec(c, crate::catalog_tenants::RATE_TERMS, &[rate.into()])?)
            {
                credits_per_unit = t.opt_dec(1)?;
                tiers = t.col(2)?;
            }
        }
    }
    let auth = Auth {
        id,
        wallet_id,
        kind: r.req(3)?,
        status: r.req(4)?,
        asset: r.req(5)?,
        cost: r.dec(6)?,
        quantity: r.dec(8)?,
        captured: r.dec(9)?,
        refunded: r.dec(10)?,
        ttl_passed: r.col::<bool>(11)?.unwrap_or(false),
        close_key: r.col(12)?,
        close_hash: r.col(13)?,
        credits_per_unit,
        scale,
        action: r.req(16)?,
        variant: r.col(17)?,
        tiers,
        fair_use: r.req(19)?,
    };
    Ok(Some((w, auth)))
}

/// Whether [`lock`] leaves `w`'s row unlocked: a wallet with lanes and no counters (no spend
/// cap that is not sliced, no pool limit). Such a wallet's period counters are read by nothing
/// (its overdraft debt changes only under its whole lock), so a capture, release or refund
/// does not write them: two of them on different lanes would overwrite each other's.
pub(crate) fn row_unlocked(w: &Wallet) -> bool {
    lanes::catalog_has_lanes() && w.lanes > 1 && !w.counters()
}

/// The wallet of an authorization, for [`lock`]: its row locked, unless `whole` is not asked
/// and it has lanes and no counters, or it is a free member ([`Wallet::free_member`]) and
/// authorization `auth` moved none of its own grants (then read only: such a member's spends
/// lock only its pool's lanes, and so do their captures, releases and refunds). None when
/// `skip_locked` and the row is busy.
fn lock_wallet(
    c: &mut SpiClient<'_>,
    id: i64,
    skip_locked: bool,
    whole: bool,
    auth: Option<i64>,
) -> Result<Option<Wallet>> {
    let vanished = || LedgerError::new(Kind::Internal, "wallet vanished");
    if lanes::catalog_has_lanes() && !whole {
        let row = spi::first(exec(c, sql::WALLET_GET_ID_V4, &[id.into()])?).ok_or_else(vanished)?;
        let mut w = Wallet::from_row_lanes(&row, 9)?;
        if let (Some(a), 1, Some(_), false) = (auth, w.lanes, w.parent_id, w.tracked) {
            // a one-lane untracked member: free when its pool has lanes and this
            // authorization took none of its own grants (a solo wallet never asks)
            let free = spi::first(exec(c, sql::FREE_OF_AUTH, &[id.into(), a.into()])?)
                .map(|r| r.col::<bool>(1))
                .transpose()?
                .flatten()
                .unwrap_or(false);
            if free {
                w.free_member = true;
                return Ok(Some(w));
            }
        }
        if row_unlocked(&w) {
            return Ok(Some(w));
        }
    }
    if skip_locked && spi::first(exec(c, sql::WALLET_TRY_LOCK_ID, &[id.into()])?).is_none() {
        return Ok(None);
    }
    let row = spi::first(exec(
        c,
        lanes::pick(sql::WALLET_LOCK_ID_V4, sql::WALLET_LOCK_ID),
        &[id.into()],
    )?)
    .ok_or_else(vanished)?;
    Ok(Some(if lanes::catalog_has_lanes() {
        Wallet::from_row_lanes(&row, 9)?
    } else {
        Wallet::from_row(&row)?
    }))
}

/// What a hold still reserves: lots (in consumption order) and whether each grant has expired.
fn parts(c: &mut SpiClient<'_>, id: i64) -> Result<Vec<(Lot, bool)>> {
    let table = exec(c, sql::HOLD_PARTS, &[id.into()])?;
    let mut out = Vec::new();
    for row in table {
        out.push((
            Lot {
                grant_id: row.req(1)?,
                wallet_id: row.req(2)?,
                priority: 0,
                expires_at: None,
                available: row.dec(3)?,
            },
            row.req::<bool>(4)?,
        ));
    }
    Ok(out)
}

/// Movements giving `amount` of a hold part back to its grant (expired grants: breakage).
fn give_back(
    moves: &mut Vec<Movement>,
    lot: &Lot,
    expired: bool,
    amount: Decimal,
    kind: &'static str,
) {
    if amount <= Decimal::ZERO {
        return;
    }
    moves.push(Movement::grant(
        lot.grant_id,
        lot.wallet_id,
        kind,
        Decimal::ZERO,
        -amount,
    ));
    if expired {
        moves.push(Movement::grant(
            lot.grant_id,
            lot.wallet_id,
            "expiry",
            -amount,
            Decimal::ZERO,
        ));
    }
}

/// Movements giving everything a hold still reserves back to its grants, and the part of it
/// that was reserved on the pool's grants (not those of `wallet_id`).
fn release_all(c: &mut SpiClient<'_>, id: i64, wallet_id: i64) -> Result<(Vec<Movement>, Decimal)> {
    let mut moves = Vec::new();
    let mut pool = Decimal::ZERO;
    for (lot, expired) in &parts(c, id)? {
        give_back(&mut moves, lot, *expired, lot.available, "release");
        if lot.wallet_id != wallet_id {
            pool += lot.available;
        }
    }
    Ok((moves, pool))
}

/// Undo a hold's counters by `amount` (pool part `pool`). `auth`: the hold (a spend cap sliced
/// over lanes gets the room back on the lane the hold took: [`crate::lane_caps::give_back`]).
pub(crate) fn uncount(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    asset: &str,
    amount: Decimal,
    pool: Decimal,
    auth: Option<i64>,
) -> Result<()> {
    // counters of an earlier period may already be reset: they can go below zero, and a
    // difference that cannot be represented exactly fails (22003) instead of being rounded
    let less = |counter: Decimal, x: Decimal, what: &str| {
        crate::amount::sub(counter, x)
            .ok_or_else(|| crate::amount::out_of_range(format!("the {what} of the wallet")))
    };
    // a limited member's draw goes back to the room of the pool lane it took (held by the
    // caller), when it has rooms (crate::member_rooms)
    let to_room = |c: &mut SpiClient<'_>| -> Result<bool> {
        match w.parent_id {
            Some(pid) if w.tracked && amount == pool => {
                crate::member_rooms::give_back(c, w, pid, asset, auth, amount)
            }
            _ => Ok(false),
        }
    };
    if w.tracked && crate::lane_caps::sliced(w) {
        // its spend is counted on its lanes, which the caller holds (no pool: not a member)
        crate::lane_caps::give_back(c, w.id, asset, auth, amount)?;
    } else if to_room(c)? {
    } else if w.tracked && !row_unlocked(w) {
        let mut s = WalletState::load(c, w.id, asset)?;
        s.period_spent = less(s.period_spent, amount, "period spend")?;
        s.pool_drawn = less(s.pool_drawn, pool, "pool draw")?;
        s.save(c)?;
    }
    if let (Some(pid), true) = (w.parent_id, pool != Decimal::ZERO) {
        if lanes::catalog_has_lanes() {
            let pool_wallet = match w.pool.as_deref() {
                // as read (or locked) by [`lock_for`]
                Some(p) if p.id == pid => p.clone(),
                _ => {
                    let row = spi::first(exec(c, sql::WALLET_GET_ID_V4, &[pid.into()])?)
                        .ok_or_else(|| LedgerError::new(Kind::Internal, "pool vanished"))?;
                    Wallet::from_row_lanes(&row, 9)?
                }
            };
            if crate::lane_caps::sliced(&pool_wallet) {
                return crate::lane_caps::give_back(c, pid, asset, auth, pool);
            }
            if row_unlocked(&pool_wallet) {
                // (see row_unlocked: its period counters are read by nothing)
                return Ok(());
            }
        }
        let mut s = WalletState::load(c, pid, asset)?;
        if s.period_spent != Decimal::ZERO {
            s.period_spent = less(s.period_spent, pool, "pool's period spend")?;
            s.save(c)?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn close(
    c: &mut SpiClient<'_>,
    a: &Auth,
    status: &str,
    captured: Option<Decimal>,
    quantity: Option<Decimal>,
    key: Option<&str>,
    hash: Option<i64>,
    reason: Option<&str>,
    extra: (Decimal, Decimal),
) -> Result<()> {
    let balance = ledger::balance(c, a.wallet_id, &a.asset)?;
    let args: Vec<DatumWithOid> = vec![
        a.id.into(),
        status.into(),
        captured.map(num).into(),
        quantity.map(num).into(),
        key.into(),
        hash.into(),
        reason.into(),
        num(balance).into(),
        num(extra.0).into(),
        num(extra.1).into(),
    ];
    if !spi::distributed(c)? {
        exec(c, sql::AUTH_CLOSE, &args)?;
        return Ok(());
    }
    // (a distributed ledger: the rate's vendor cost read on its own, see `lock_for`)
    let mut args = args;
    let rate = spi::first(exec(
        c,
        crate::catalog_tenants::AUTH_RATE_ID,
        &[a.id.into()],
    )?)
    .map(|r| r.col::<i64>(1))
    .transpose()?
    .flatten();
    let vendor_cost = match rate {
        Some(id) => spi::first(exec(c, crate::catalog_tenants::RATE_TERMS, &[id.into()])?)
            .map(|r| r.opt_dec(3))
            .transpose()?
            .flatten(),
        None => None,
    };
    args.push(vendor_cost.map(num).into());
    exec(c, crate::catalog_tenants::AUTH_CLOSE_DISTRIBUTED, &args)?;
    Ok(())
}

/// Finalize an expired hold (the caller may already hold the wallet lock). Returns None when
/// `skip_locked` and a wallet is busy, Some(false) when the hold is not open and expired.
pub fn expire_hold_with(
    c: &mut SpiClient<'_>,
    id: i64,
    skip_locked: bool,
    as_of: Option<TimestampWithTimeZone>,
) -> Result<Option<bool>> {
    let Some((w, a)) = lock(c, id, skip_locked, as_of)? else {
        return Ok(None);
    };
    if a.status != "held" || !a.ttl_passed {
        return Ok(Some(false));
    }
    end_hold(c, &w, &a, "expired", None, Some("hold ttl passed"), None)?;
    Ok(Some(true))
}

/// Give everything an open hold reserves back to its grants, undo its counters and close it
/// with `status` (`reason`; `closing`: the key and fingerprint of the call that closed it).
fn end_hold(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    a: &Auth,
    status: &str,
    reason: Option<&str>,
    note: Option<&str>,
    closing: Option<(Option<&str>, i64)>,
) -> Result<()> {
    let (moves, pool) = release_all(c, a.id, w.id)?;
    ledger::apply(c, &moves, &a.asset, Some(a.id), Some(w.id), note)?;
    match crate::fair_use::of_authorization(c, a, w.id)? {
        // held by fair use (nothing in the journal): its cost goes back to the period's
        Some(fair) => fair.counter.advance(c, -a.cost)?,
        None => uncount(c, w, &a.asset, a.cost, pool, Some(a.id))?,
    }
    close(
        c,
        a,
        status,
        None,
        None,
        closing.and_then(|(k, _)| k),
        closing.map(|(_, h)| h),
        reason,
        (Decimal::ZERO, Decimal::ZERO),
    )
}

/// Release an open hold of a run that is closing (the caller holds the run's wallet).
pub(crate) fn release_for_run(c: &mut SpiClient<'_>, id: i64) -> Result<()> {
    release_closing(c, id, "run_closed", "run closed")
}

/// Release an open hold because what it belongs to closes (`reason`: run_closed,
/// wallet_closed). The caller holds the hold's wallet.
pub(crate) fn release_closing(
    c: &mut SpiClient<'_>,
    id: i64,
    reason: &str,
    note: &str,
) -> Result<()> {
    let Some((w, a)) = lock(c, id, false, None)? else {
        return Ok(());
    };
    if a.status != "held" {
        return Ok(());
    }
    end_hold(c, &w, &a, "released", Some(reason), Some(note), None)
}

/// Open holds whose TTL has passed by `as_of` (default now) that reserve grants of `wallet_id`
/// (whoever owns the hold).
pub fn expired_holds_on(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    as_of: Option<TimestampWithTimeZone>,
) -> Result<Vec<i64>> {
    let table = exec(
        c,
        sql::EXPIRED_HOLDS_ON_WALLET,
        &[wallet_id.into(), as_of.into()],
    )?;
    let mut out = Vec::new();
    for row in table {
        out.push(row.req::<i64>(1)?);
    }
    Ok(out)
}

fn closed_error(a: &Auth, verb: &str) -> LedgerError {
    let what = match a.status.as_str() {
        "captured" => "is already captured",
        "released" => "was released",
        "expired" => "has expired",
        "declined" => "was declined",
        _ => "is not open",
    };
    LedgerError::wrong_state(format!("cannot {verb} hold {}: it {what}", a.id))
}

fn check_open(
    c: &mut SpiClient<'_>,
    a: &Auth,
    verb: &str,
    key: Option<&str>,
    hash: i64,
) -> Result<Option<()>> {
    if a.kind != "hold" {
        return Err(
            LedgerError::wrong_state(format!("authorization {} is not a hold", a.id))
                .hint("only holds can be captured or released; use credit_refund() for debits"),
        );
    }
    if a.status != "held" {
        // a retry of the call that closed it returns the first result; the same key with
        // other arguments is a reused key
        if let Some(k) = key.filter(|k| a.close_key.as_deref() == Some(*k)) {
            if a.close_hash == Some(hash) {
                return Ok(None);
            }
            return Err(LedgerError::key_reused(k));
        }
        return Err(closed_error(a, verb));
    }
    let _ = c;
    Ok(Some(()))
}

/// Spend a hold: the actual quantity (NULL = as held); `tenant` (since 0.13.0): the hold's
/// wallet's tenant, which a Citus cluster routes the call by (see [`crate::tenant`]).
#[pg_extern(
    name = "credit_capture",
    volatile,
    parallel_unsafe,
    security_definer,
    requires = [tenant::tenant_unset]
)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_capture_v13(
    authorization_id: Option<i64>,
    quantity: default!(Option<AnyNumeric>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    tenant: default!(Option<&str>, "credit_ledger._tenant_unset()"),
) -> pgrx::composite_type!('static, "credit_authorization") {
    capture(
        authorization_id,
        quantity,
        idempotency_key,
        metadata,
        tenant,
    )
}

/// `credit_capture` as 0.12.0 and earlier declare it (no `tenant`; symbol
/// `credit_capture_wrapper`). Not in the 0.13.0 SQL.
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_capture(
    authorization_id: Option<i64>,
    quantity: default!(Option<AnyNumeric>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
) -> pgrx::composite_type!('static, "credit_authorization") {
    capture(authorization_id, quantity, idempotency_key, metadata, None)
}

fn capture(
    authorization_id: Option<i64>,
    quantity: Option<AnyNumeric>,
    idempotency_key: Option<&str>,
    metadata: Option<JsonbText>,
    tenant: Option<&str>,
) -> pgrx::composite_type!('static, "credit_authorization") {
    or_raise((|| -> Result<Record> {
        let tenant = input::opt_name(tenant, "tenant")?;
        let id = authorization_id
            .ok_or_else(|| LedgerError::invalid("authorization_id must not be null"))?;
        let quantity = quantity
            .map(|q| input::quantity(Some(q.to_string())))
            .transpose()?;
        let key = input::key(idempotency_key)?;
        input::metadata(metadata.as_ref().map(|j| j.0.as_str()))?;
        let hash = input::fingerprint(&[
            "capture",
            &quantity
                .map(|q| q.normalize().to_string())
                .unwrap_or_default(),
        ]);
        spi::with(|c| {
            crate::tenant::enter_row(c, crate::catalog_tenants::AUTHORIZATION_TENANT, id, tenant)?;
            // a capture above the held quantity spends more: the whole wallet, taken first
            let held_quantity = spi::first(exec(c, sql::AUTH_QUANTITY, &[id.into()])?)
                .map(|r| r.dec(1))
                .transpose()?;
            let whole = matches!((quantity, held_quantity), (Some(q), Some(h)) if q > h);
            let (w, a) = lock_for(c, id, false, None, whole)?
                .ok_or_else(|| LedgerError::new(Kind::Internal, "lock skipped"))?;
            if check_open(c, &a, "capture", key, hash)?.is_none() {
                return authorize::authorization_tuple(c, id);
            }
            if a.ttl_passed {
                return Err(LedgerError::wrong_state(format!(
                    "cannot capture hold {id}: it has expired"
                ))
                .hint("a hold past its ttl no longer reserves credits; authorize again"));
            }
            // a tiered hold is priced at the wallet's position now (never above what it
            // reserved for its quantity: tier prices never rise) and moves it on
            let tiered = crate::tiers::of_hold(c, &a, w.id)?;
            let actual = match (&tiered, quantity, a.credits_per_unit) {
                (Some(t), q, _) => {
                    let position = t.counter.lock(c)?;
                    let q = q.unwrap_or(a.quantity);
                    crate::tiers::cost(t.base, &t.tiers, a.scale, position, q)?
                }
                (None, Some(q), Some(per)) => crate::amount::cost(q, per, a.scale)?,
                _ => a.cost,
            };
            if let Some(t) = &tiered {
                t.counter.advance(c, quantity.unwrap_or(a.quantity))?;
            }
            if let Some(fair) = crate::fair_use::of_authorization(c, &a, w.id)? {
                // held by fair use: the period's fair use is corrected to what is captured;
                // more than was held must fit what is left of it
                let (captured, reason) = if actual <= a.cost || fair.fits(actual - a.cost) {
                    (actual, None)
                } else {
                    (a.cost, Some("capture_shortfall"))
                };
                fair.counter.advance(c, captured - a.cost)?;
                close(
                    c,
                    &a,
                    "captured",
                    Some(captured),
                    Some(quantity.unwrap_or(a.quantity)),
                    key,
                    Some(hash),
                    reason,
                    (Decimal::ZERO, Decimal::ZERO),
                )?;
                return authorize::authorization_tuple(c, id);
            }
            let ps = parts(c, id)?;
            let lots: Vec<Lot> = ps.iter().map(|(l, _)| l.clone()).collect();
            let (takes, _) = allocation::allocate(&lots, actual.min(a.cost));
            let mut moves = Vec::new();
            let mut captured = Decimal::ZERO;
            let mut pool_held = Decimal::ZERO;
            let mut pool_captured = Decimal::ZERO;
            for (lot, expired) in &ps {
                let take = takes
                    .iter()
                    .find(|t| t.grant_id == lot.grant_id)
                    .map(|t| t.amount)
                    .unwrap_or_default();
                if take > Decimal::ZERO {
                    moves.push(Movement::grant(
                        lot.grant_id,
                        lot.wallet_id,
                        "capture",
                        -take,
                        -take,
                    ));
                    captured += take;
                }
                give_back(&mut moves, lot, *expired, lot.available - take, "release");
                if lot.wallet_id != w.id {
                    pool_held += lot.available;
                    pool_captured += take;
                }
            }
            let captured_from_hold = captured;
            let mut reason = None;
            let mut extra = (Decimal::ZERO, Decimal::ZERO);
            let mut extra_plan = None;
            if actual > a.cost {
                let more = actual - a.cost;
                // more than the hold: a spend on every row, so the whole wallet (and pool),
                // taken by lock_for (a quantity known above the hold's; else here, late)
                if w.free_member {
                    // (its row was left unlocked: its own grants are spent under it only)
                    exec(c, sql::WALLET_LOCK_ID_V4, &[w.id.into()])?;
                }
                lanes::exclusive(c, w.id)?;
                if let Some(pid) = w.parent_id {
                    lanes::exclusive(c, pid)?;
                    // a limited member's rooms: into its counters, which this plan decides on
                    crate::member_rooms::fold(c, w.id)?;
                }
                let p =
                    authorize::plan(c, &w, &a.asset, more, Mode::Debit, authorize::Lanes::Exact)?;
                if p.reason.is_none() {
                    for m in &p.moves {
                        let mut m = m.clone();
                        if m.kind == "debit" {
                            m.kind = "capture";
                        }
                        moves.push(m);
                    }
                    captured += more;
                    extra = (p.pool_part, p.overdraft_part);
                    extra_plan = Some((p, more));
                } else {
                    reason = Some("capture_shortfall");
                }
            }
            ledger::apply(c, &moves, &a.asset, Some(id), Some(w.id), None)?;
            // counters: the hold counted its full cost; adjust to what was captured
            uncount(
                c,
                &w,
                &a.asset,
                a.cost - captured_from_hold,
                pool_held - pool_captured,
                Some(a.id),
            )?;
            if let Some((mut p, more)) = extra_plan {
                let wallet = ledger::wallet_name(c, w.id)?;
                authorize::commit_plan(c, &w, &wallet, &mut p, more, Decimal::ONE)?;
            }
            close(
                c,
                &a,
                "captured",
                Some(captured),
                Some(quantity.unwrap_or(a.quantity)),
                key,
                Some(hash),
                reason,
                extra,
            )?;
            authorize::authorization_tuple(c, id)
        })
    })())
    .build()
}

/// Give a hold back, to the same grants (`tenant` as for [`credit_capture_v13`]).
#[pg_extern(
    name = "credit_release",
    volatile,
    parallel_unsafe,
    security_definer,
    requires = [tenant::tenant_unset]
)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_release_v13(
    authorization_id: Option<i64>,
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    tenant: default!(Option<&str>, "credit_ledger._tenant_unset()"),
) -> pgrx::composite_type!('static, "credit_authorization") {
    release(authorization_id, idempotency_key, metadata, tenant)
}

/// `credit_release` as 0.12.0 and earlier declare it (no `tenant`; symbol
/// `credit_release_wrapper`). Not in the 0.13.0 SQL.
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_release(
    authorization_id: Option<i64>,
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
) -> pgrx::composite_type!('static, "credit_authorization") {
    release(authorization_id, idempotency_key, metadata, None)
}

fn release(
    authorization_id: Option<i64>,
    idempotency_key: Option<&str>,
    metadata: Option<JsonbText>,
    tenant: Option<&str>,
) -> pgrx::composite_type!('static, "credit_authorization") {
    or_raise((|| -> Result<Record> {
        let tenant = input::opt_name(tenant, "tenant")?;
        let id = authorization_id
            .ok_or_else(|| LedgerError::invalid("authorization_id must not be null"))?;
        let key = input::key(idempotency_key)?;
        input::metadata(metadata.as_ref().map(|j| j.0.as_str()))?;
        let hash = input::fingerprint(&["release"]);
        spi::with(|c| {
            crate::tenant::enter_row(c, crate::catalog_tenants::AUTHORIZATION_TENANT, id, tenant)?;
            let (w, a) = lock(c, id, false, None)?
                .ok_or_else(|| LedgerError::new(Kind::Internal, "lock skipped"))?;
            if a.kind == "hold" && a.status == "expired" {
                // already given back by expiry: releasing it again changes nothing
                return authorize::authorization_tuple(c, id);
            }
            if check_open(c, &a, "release", key, hash)?.is_none() {
                return authorize::authorization_tuple(c, id);
            }
            end_hold(c, &w, &a, "released", None, None, Some((key, hash)))?;
            authorize::authorization_tuple(c, id)
        })
    })())
    .build()
}
