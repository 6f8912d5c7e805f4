//! Allowances and rollover: `credit_allowance_set` and the boundary step of `credit_tick`.
//!
//! An allowance grants `amount` (category `included`) at the start of every period, expiring at
//! the period's end. At each boundary, before anything expires, the rollover policy moves part
//! of the unused included credits into a new `rollover` grant that expires one period later:
//!
//! - none (default): nothing rolls over, the unused credits expire (breakage);
//! - capped (`rollover_cap` = N > 0): at most N credits carry into the next period only;
//! - declining (`rollover_shares`, e.g. `{1, 0.5}`): unused allowance credits carry in full into
//!   the next period, half of what is still unused then carries one period more, the rest
//!   expires; `{0.25}` carries a quarter for one period. Shares take precedence over the cap.
//!
//! Carried amounts are rounded down to the asset's scale. Boundaries missed by a late scheduler
//! are processed one by one in order, exactly as if the scheduler had run on time (a grant past
//! its expiry is never spendable, so its unused amount at the boundary is still its remaining).
//! Changing an allowance takes effect from the next boundary.
//!
//! Boundaries are `anchor + k × period` in UTC, each computed from the anchor
//! ([`crate::period`]): a monthly allowance anchored on Jan 31 renews on Feb 28 (29), Mar 31,
//! Apr 30, ... An allowance starts with the period containing `as_of` of `credit_allowance_set`.

use crate::amount::Rounding;
use crate::catalog as sql;
use crate::error::{or_raise, Kind, LedgerError, Result};
use crate::grants::{self, NewGrant};
use crate::holds;
use crate::ledger::{self, Movement};
use crate::spi::{self, exec, num, RowExt};
use crate::{amount, input, lifecycle, period, wallets};
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::{Decimal, RoundingStrategy};

/// How much of `unused` carries over from a grant of rollover generation `generation`
/// (0 = the allowance grant itself). Pure.
pub fn carry(
    unused: Decimal,
    generation: usize,
    cap: Decimal,
    shares: &[Decimal],
    scale: u32,
) -> Decimal {
    if unused <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    let raw = if !shares.is_empty() {
        // unused × share rounded down to the scale exactly (never rounded at the 28th decimal
        // first); a share is at most 1, so the product fits whenever `unused` does
        shares
            .get(generation)
            .and_then(|s| amount::mul_round(unused, *s, scale, Rounding::Down))
            .unwrap_or(Decimal::ZERO)
    } else if generation == 0 {
        unused.min(cap)
    } else {
        Decimal::ZERO
    };
    raw.round_dp_with_strategy(scale, RoundingStrategy::ToZero)
        .max(Decimal::ZERO)
        .min(unused)
}

fn parse_shares(v: Option<Vec<Option<String>>>) -> Result<Vec<Decimal>> {
    let mut out = Vec::new();
    for s in v.unwrap_or_default() {
        let s = s.ok_or_else(|| LedgerError::invalid("rollover_shares must not contain NULL"))?;
        let d = amount::parse(&s, "rollover_shares")?;
        if d < Decimal::ZERO || d > Decimal::ONE {
            return Err(LedgerError::invalid(format!(
                "rollover_shares must be between 0 and 1, got {d}"
            )));
        }
        out.push(d);
    }
    Ok(out)
}

/// Grant one period's allowance (category `included`, from `start`, expiring at `end`).
fn grant_period(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    asset: &str,
    amount: Decimal,
    start: TimestampWithTimeZone,
    end: TimestampWithTimeZone,
) -> Result<i64> {
    let id = grants::insert(
        c,
        NewGrant {
            wallet_id,
            asset,
            category: "included",
            priority: grants::default_priority("included"),
            amount,
            effective_at: Some(start),
            expires_at: Some(end),
            unit_price: Decimal::ZERO,
            key: None,
            hash: None,
            metadata: None,
            source: "allowance",
        },
    )?;
    let payload = serde_json::json!({
        "event": "allowance_granted",
        "wallet": crate::ledger::wallet_name(c, wallet_id)?,
        "asset": asset,
        "grant_id": id,
        "amount": amount.to_string(),
        "effective_at": start.to_string(),
        "expires_at": end.to_string(),
    });
    crate::events::emit(c, "allowance_granted", wallet_id, Some(asset), &payload)?;
    Ok(id)
}

/// Process one due boundary of allowance row `row` (wallet locked by the caller).
fn process_boundary(c: &mut SpiClient<'_>, row: &impl RowExt) -> Result<()> {
    let id: i64 = row.req(1)?;
    let wallet_id: i64 = row.req(2)?;
    let asset: String = row.req(3)?;
    let amount = row.dec(4)?;
    let cap = row.dec(6)?;
    let shares = parse_shares(row.col::<Vec<Option<String>>>(7)?)?;
    let boundary: TimestampWithTimeZone = row.req(8)?;
    let scale = row.req::<i32>(10)? as u32;
    let period: Interval = row.req(5)?;
    let anchor: TimestampWithTimeZone = row.req(11)?;
    let next = lifecycle::period_at(period::next, Some(&period), Some(anchor), boundary)?;
    // Holds whose TTL ended by the boundary stop reserving first, so their credits count as
    // unused for the rollover (the expiry sweep would otherwise free them only after it). A
    // hold of a pool sibling whose wallet is busy is skipped (SKIP LOCKED: never waits).
    for hid in holds::expired_holds_on(c, wallet_id, Some(boundary))? {
        holds::expire_hold_with(c, hid, true, Some(boundary))?;
    }
    let mut ending = Vec::new();
    for g in exec(
        c,
        sql::ENDING_GRANTS,
        &[wallet_id.into(), asset.as_str().into(), boundary.into()],
    )? {
        let source: String = g.req(3)?;
        let generation = source
            .strip_prefix("rollover:")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        ending.push((g.req::<i64>(1)?, g.dec(2)?, generation, g.dec(4)?));
    }
    for (gid, unused, generation, unit_price) in ending {
        let moved = carry(unused, generation, cap, &shares, scale);
        if moved <= Decimal::ZERO {
            continue;
        }
        ledger::apply(
            c,
            &[Movement::grant(
                gid,
                wallet_id,
                "rollover",
                -moved,
                Decimal::ZERO,
            )],
            &asset,
            None,
            None,
            Some("rolled over"),
        )?;
        let source = format!("rollover:{}", generation + 1);
        grants::insert(
            c,
            NewGrant {
                wallet_id,
                asset: &asset,
                category: "rollover",
                priority: grants::default_priority("rollover"),
                amount: moved,
                effective_at: Some(boundary),
                expires_at: Some(next),
                unit_price,
                key: None,
                hash: None,
                metadata: None,
                source: &source,
            },
        )?;
    }
    let gid = grant_period(c, wallet_id, &asset, amount, boundary, next)?;
    exec(
        c,
        sql::ALLOWANCE_ADVANCE,
        &[id.into(), next.into(), Some(gid).into()],
    )?;
    Ok(())
}

/// At most this many boundaries of one allowance are processed by one `credit_tick` (or
/// `credit_expire`): a backlog of millions of boundaries (an hourly allowance backdated to year
/// 1000, a long scheduler outage) can neither make one call unbounded nor stall other wallets'
/// allowances; it catches up over several calls.
pub const MAX_CATCH_UP: usize = 1000;

/// Boundaries processed per allowance within one `credit_tick` or `credit_expire` call (every
/// `run_due` of the call shares it, so the cap holds for the whole call).
#[derive(Default)]
pub struct CatchUp {
    per_allowance: std::collections::HashMap<i64, usize>,
    capped: Vec<i64>,
}

/// Process every allowance boundary up to `as_of`, in order per wallet. Wallets are locked
/// with SKIP LOCKED (a tick never waits, so it cannot deadlock with the app's transactions);
/// a busy wallet's boundaries are left for the next run. Returns (boundaries processed,
/// whether anything was left: busy wallets or the `max` bound).
pub fn run_due(
    c: &mut SpiClient<'_>,
    as_of: TimestampWithTimeZone,
    max: i64,
    caught_up: &mut CatchUp,
) -> Result<(i64, bool)> {
    let mut done = 0;
    // wallets found busy, and allowances that reached MAX_CATCH_UP in this tick: left out of
    // the next batches, so every round makes progress on the others
    let mut busy: Vec<i64> = Vec::new();
    loop {
        let batch = exec(
            c,
            sql::ALLOWANCES_DUE,
            &[
                as_of.into(),
                1000i64.into(),
                caught_up.capped.clone().into(),
                busy.clone().into(),
            ],
        )?;
        let mut candidates = Vec::new();
        for r in batch {
            let (id, wallet_id) = (r.req::<i64>(1)?, r.req::<i64>(2)?);
            if !candidates.iter().any(|(_, w, _)| *w == wallet_id) {
                candidates.push((id, wallet_id, crate::tenant::column(&r, 11)?));
            }
        }
        if candidates.is_empty() {
            return Ok((done, !busy.is_empty() || !caught_up.capped.is_empty()));
        }
        for (id, wallet_id, tenant) in candidates {
            if busy.contains(&wallet_id) {
                continue;
            }
            // (None: the wallet is busy; Some(false): nothing due any more)
            let step = crate::tenant::within(c, tenant, |c| -> Result<Option<bool>> {
                if spi::first(exec(c, sql::WALLET_TRY_LOCK_ID, &[wallet_id.into()])?).is_none() {
                    return Ok(None);
                }
                // a wallet with lanes: wait for its lanes (see lifecycle::expire)
                crate::lanes::exclusive(c, wallet_id)?;
                // re-read under the lock with a fresh snapshot: another tick may have advanced it
                let fresh = exec(c, sql::ALLOWANCE_DUE_ONE, &[id.into(), as_of.into()])?;
                match spi::first(fresh) {
                    Some(f) => process_boundary(c, &f).map(|_| Some(true)),
                    None => Ok(Some(false)),
                }
            })?;
            if step.is_none() {
                busy.push(wallet_id);
                continue;
            }
            if step == Some(true) {
                done += 1;
                let n = caught_up.per_allowance.entry(id).or_insert(0);
                *n += 1;
                if *n >= MAX_CATCH_UP {
                    caught_up.capped.push(id);
                }
                if done >= max {
                    return Ok((done, true));
                }
            }
        }
    }
}

/// Give a wallet a recurring allowance. The allowance of the period containing `as_of` (default
/// now) is granted at once; `credit_tick` grants the following ones at their boundaries.
/// (The C symbol is `credit_allowance_set_at_wrapper`: `credit_allowance_set_wrapper` keeps the
/// 0.1.0 signature, without `as_of`, for a 0.1.0 catalog running this library before
/// `ALTER EXTENSION credit_ledger UPDATE`.)
#[allow(clippy::too_many_arguments)]
#[pg_extern(
    volatile,
    parallel_unsafe,
    security_definer,
    name = "credit_allowance_set"
)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_allowance_set_at(
    wallet: Option<&str>,
    amount: Option<AnyNumeric>,
    period: default!(Option<Interval>, "'1 month'"),
    anchor: default!(Option<TimestampWithTimeZone>, "now()"),
    asset: default!(Option<&str>, "'credits'"),
    rollover_cap: default!(Option<AnyNumeric>, 0),
    rollover_shares: default!(Option<Vec<Option<AnyNumeric>>>, "NULL"),
    as_of: default!(Option<TimestampWithTimeZone>, "now()"),
) -> TableIterator<
    'static,
    (
        name!(wallet, String),
        name!(asset, String),
        name!(amount, AnyNumeric),
        name!(period, Interval),
        name!(next_boundary, TimestampWithTimeZone),
    ),
> {
    allowance_set(
        wallet,
        amount,
        period,
        anchor,
        asset,
        rollover_cap,
        rollover_shares,
        as_of,
    )
}

/// The 0.1.0 entry point (no SQL in this version's install script): as of now.
#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false)]
fn credit_allowance_set(
    wallet: Option<&str>,
    amount: Option<AnyNumeric>,
    period: Option<Interval>,
    anchor: Option<TimestampWithTimeZone>,
    asset: Option<&str>,
    rollover_cap: Option<AnyNumeric>,
    rollover_shares: Option<Vec<Option<AnyNumeric>>>,
) -> TableIterator<
    'static,
    (
        name!(wallet, String),
        name!(asset, String),
        name!(amount, AnyNumeric),
        name!(period, Interval),
        name!(next_boundary, TimestampWithTimeZone),
    ),
> {
    let now = spi::transaction_start();
    allowance_set(
        wallet,
        amount,
        period,
        anchor,
        asset,
        rollover_cap,
        rollover_shares,
        TimestampWithTimeZone::try_from(now).ok(),
    )
}

type AllowanceRow = TableIterator<
    'static,
    (
        name!(wallet, String),
        name!(asset, String),
        name!(amount, AnyNumeric),
        name!(period, Interval),
        name!(next_boundary, TimestampWithTimeZone),
    ),
>;

#[allow(clippy::too_many_arguments)]
fn allowance_set(
    wallet: Option<&str>,
    amount: Option<AnyNumeric>,
    period: Option<Interval>,
    anchor: Option<TimestampWithTimeZone>,
    asset: Option<&str>,
    rollover_cap: Option<AnyNumeric>,
    rollover_shares: Option<Vec<Option<AnyNumeric>>>,
    as_of: Option<TimestampWithTimeZone>,
) -> AllowanceRow {
    let row = or_raise((|| {
        let wallet = input::name(wallet, "wallet")?;
        let asset = input::name(asset, "asset")?;
        let amount = amount.ok_or_else(|| LedgerError::invalid("amount must not be null"))?;
        let amount = amount::positive(spi::to_dec(&amount, "amount")?, "amount")?;
        let period = period.ok_or_else(|| LedgerError::invalid("period must not be null"))?;
        if period.months() < 0
            || period.days() < 0
            || period.micros() < 0
            || (period.months() == 0 && period.days() == 0 && period.micros() < 3_600_000_000)
        {
            return Err(LedgerError::invalid(format!(
                "period must be at least one hour, got {period}"
            )));
        }
        let anchor = anchor.ok_or_else(|| LedgerError::invalid("anchor must not be null"))?;
        if !anchor.is_finite() {
            return Err(LedgerError::invalid("anchor must be a finite timestamp"));
        }
        let as_of = lifecycle::check_as_of(as_of)?;
        let cap = amount::non_negative(
            spi::to_dec(&rollover_cap.unwrap_or_default(), "rollover_cap")?,
            "rollover_cap",
        )?;
        let shares: Option<Vec<Option<String>>> =
            rollover_shares.map(|v| v.into_iter().map(|s| s.map(|x| x.to_string())).collect());
        parse_shares(shares.clone())?;
        spi::with(|c| {
            crate::tenant::enter(c, wallet, None)?;
            let w = spi::first(exec(c, sql::WALLET_LOCK_KEY, &[wallet.into()])?)
                .ok_or_else(|| wallets::wallet_missing(wallet))?;
            let wallet_id: i64 = w.req(1)?;
            crate::lanes::exclusive(c, wallet_id)?;
            crate::corrections::refuse_closed(c, wallet_id, wallet)?;
            let scale = wallets::asset_scale(c, asset)?;
            let amount = amount::fits_scale(amount, scale, "amount", asset)?;
            let id = match spi::first(exec(
                c,
                sql::ALLOWANCE_GET,
                &[wallet_id.into(), asset.into()],
            )?) {
                Some(existing) => {
                    let id: i64 = existing.req(1)?;
                    exec(
                        c,
                        sql::ALLOWANCE_UPDATE,
                        &[
                            id.into(),
                            num(amount).into(),
                            num(cap).into(),
                            shares.clone().into(),
                        ],
                    )?;
                    id
                }
                None => {
                    let start = lifecycle::period_at(
                        period::period_start,
                        Some(&period),
                        Some(anchor),
                        as_of,
                    )?;
                    let end =
                        lifecycle::period_at(period::next, Some(&period), Some(anchor), as_of)?;
                    let args = [
                        wallet_id.into(),
                        asset.into(),
                        num(amount).into(),
                        period.into(),
                        anchor.into(),
                        num(cap).into(),
                        shares.clone().into(),
                        end.into(),
                    ];
                    let r =
                        spi::first(exec(c, sql::ALLOWANCE_INSERT, &args)?).ok_or_else(|| {
                            LedgerError::new(Kind::Internal, "allowance insert returned nothing")
                        })?;
                    let id: i64 = r.req(1)?;
                    let gid = grant_period(c, wallet_id, asset, amount, start, end)?;
                    exec(
                        c,
                        sql::ALLOWANCE_ADVANCE,
                        &[id.into(), end.into(), Some(gid).into()],
                    )?;
                    id
                }
            };
            let r = spi::first(exec(c, sql::ALLOWANCE_ROW, &[id.into()])?)
                .ok_or_else(|| LedgerError::new(Kind::Internal, "allowance vanished"))?;
            Ok((
                r.req::<String>(1)?,
                r.req::<String>(2)?,
                r.req::<AnyNumeric>(3)?,
                r.req::<Interval>(4)?,
                r.req::<TimestampWithTimeZone>(7)?,
            ))
        })
    })());
    TableIterator::once(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn policies() {
        // none
        assert_eq!(carry(d("40"), 0, Decimal::ZERO, &[], 4), Decimal::ZERO);
        // capped: at most N, one period only
        assert_eq!(carry(d("40"), 0, d("25"), &[], 4), d("25"));
        assert_eq!(carry(d("10"), 0, d("25"), &[], 4), d("10"));
        assert_eq!(carry(d("10"), 1, d("25"), &[], 4), Decimal::ZERO);
        // declining 100% then 50% then 0
        let s = [d("1"), d("0.5")];
        assert_eq!(carry(d("40"), 0, Decimal::ZERO, &s, 4), d("40"));
        assert_eq!(carry(d("30"), 1, Decimal::ZERO, &s, 4), d("15"));
        assert_eq!(carry(d("15"), 2, Decimal::ZERO, &s, 4), Decimal::ZERO);
        // rounding down to scale
        assert_eq!(carry(d("0.0003"), 1, Decimal::ZERO, &s, 4), d("0.0001"));
        // exactly: 1.9999 x 0.9999...9 (28 nines) = 1.99989999...98 (32 decimals) carries
        // 1.9998, although rounding the product to 28 decimals first would give 1.9999
        let nines = [d("0.9999999999999999999999999999")];
        assert_eq!(carry(d("1.9999"), 0, Decimal::ZERO, &nines, 4), d("1.9998"));
        assert_eq!(
            carry(Decimal::MAX, 0, Decimal::ZERO, &nines, 0),
            d("79228162514264337593543950327")
        );
    }
}
