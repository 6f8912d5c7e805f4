//! Lifecycle: `credit_expire` (expiry sweeps) and `credit_tick` (all due work).
//!
//! Expired grants and holds are never spendable, whether or not a sweep has run; the sweep
//! writes their journal entries (grant expiry = breakage; hold expiry = release of the held
//! credits). Safe to run from pg_cron every minute: idempotent (a second run finds nothing),
//! concurrent-safe (wallet rows are locked with SKIP LOCKED, so two sweeps never do the same
//! work and never wait on a busy wallet row: what is skipped is picked up by the next run; a
//! wallet with lanes is then waited for, lane by lane, see docs/performance.md "Lanes") and bounded
//! (`max_rows` per call; `more` says whether to call again).
//!
//! Also the SQL face of [`crate::period`]: `credit_ledger._period_start` and
//! `credit_ledger._period_next` (UTC boundaries `anchor + k × period`, computed from the anchor).

use crate::allowances::CatchUp;
use crate::catalog as sql;
use crate::error::{or_raise, Kind, LedgerError, Result};
use crate::holds;
use crate::ledger::{self, Movement};
use crate::period::{self, Period, PeriodError};
use crate::spi::{self, exec, num, RowExt};
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

pub struct Swept {
    pub grants: i64,
    /// exact (PostgreSQL numeric): the credits of many wallets may add up beyond 28 digits
    pub credits: AnyNumeric,
    pub holds: i64,
    pub more: bool,
}

pub fn sweep(
    c: &mut SpiClient<'_>,
    as_of: TimestampWithTimeZone,
    max_rows: i64,
    caught_up: &mut CatchUp,
) -> Result<Swept> {
    let mut out = Swept {
        grants: 0,
        credits: AnyNumeric::default(),
        holds: 0,
        more: false,
    };
    // rollover looks at what is unused at each boundary: process due boundaries before expiring
    let (_, busy) = crate::allowances::run_due(c, as_of, max_rows, caught_up)?;
    out.more |= busy;
    // agent runs past their TTL give their unspent credits back before grants expire
    if crate::runs::catalog_has_runs() {
        let (_, busy) = crate::runs::sweep(c, as_of, max_rows)?;
        out.more |= busy;
    }
    let wallets: Vec<(i64, Option<String>)> = {
        let t = exec(
            c,
            sql::WALLETS_WITH_EXPIRED_GRANTS,
            &[as_of.into(), max_rows.into()],
        )?;
        out.more |= t.len() as i64 >= max_rows;
        let mut v = Vec::new();
        for r in t {
            v.push((r.req::<i64>(1)?, crate::tenant::column(&r, 1)?));
        }
        v
    };
    for (wallet_id, tenant) in wallets {
        crate::tenant::within(c, tenant, |c| {
            expire_grants_of(c, wallet_id, as_of, &mut out)
        })?;
    }
    let holds_due: Vec<(i64, Option<String>)> = {
        let t = exec(c, sql::EXPIRED_HOLDS, &[as_of.into(), max_rows.into()])?;
        out.more |= t.len() as i64 >= max_rows;
        let mut v = Vec::new();
        for r in t {
            v.push((r.req::<i64>(1)?, crate::tenant::column(&r, 2)?));
        }
        v
    };
    for (id, tenant) in holds_due {
        match crate::tenant::within(c, tenant, |c| {
            holds::expire_hold_with(c, id, true, Some(as_of))
        })? {
            Some(true) => out.holds += 1,
            Some(false) => {}
            None => out.more = true, // its wallet is busy: the next run finalizes it
        }
    }
    Ok(out)
}

/// The expiry entries of wallet `wallet_id`'s grants past their `expires_at` (its row taken with
/// SKIP LOCKED: a busy wallet is left for the next run, `more`).
fn expire_grants_of(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    as_of: TimestampWithTimeZone,
    out: &mut Swept,
) -> Result<()> {
    {
        if spi::first(exec(c, sql::WALLET_TRY_LOCK_ID, &[wallet_id.into()])?).is_none() {
            out.more = true;
            return Ok(());
        }
        // a wallet with lanes: wait for its lanes (their spenders hold one each until they
        // commit); skipping a busy one would defer a pool in constant use for ever
        crate::lanes::exclusive(c, wallet_id)?;
        let mut by_asset: Vec<(String, Vec<Movement>)> = Vec::new();
        for r in exec(
            c,
            sql::EXPIRED_GRANTS_OF_WALLET,
            &[wallet_id.into(), as_of.into()],
        )? {
            let id = r.req::<i64>(1)?;
            let asset = r.req::<String>(2)?;
            let amount = r.dec(3)?;
            out.grants += 1;
            out.credits += num(amount);
            let m = Movement::grant(id, wallet_id, "expiry", -amount, Decimal::ZERO);
            match by_asset.iter_mut().find(|(a, _)| *a == asset) {
                Some((_, v)) => v.push(m),
                None => by_asset.push((asset, vec![m])),
            }
        }
        for (asset, moves) in by_asset {
            ledger::apply(c, &moves, &asset, None, None, Some("grant expired"))?;
            crate::events::grants_expired(c, &moves)?;
        }
    }
    Ok(())
}

/// `as_of` of a lifecycle write must be a finite instant at most `credit_ledger.max_future_as_of`
/// (default 1 day, superuser only) from now: a later one would expire valid grants early.
pub(crate) fn check_as_of(as_of: Option<TimestampWithTimeZone>) -> Result<TimestampWithTimeZone> {
    let as_of =
        as_of.ok_or_else(|| crate::error::LedgerError::invalid("as_of must not be null"))?;
    let now = spi::transaction_start();
    let horizon = i64::from(crate::MAX_FUTURE_AS_OF.get().max(0)) * 1_000_000;
    if !as_of.is_finite() || as_of.into_inner() > now.saturating_add(horizon) {
        return Err(crate::error::LedgerError::invalid(format!(
            "as_of {as_of} is too far in the future"
        ))
        .detail(format!(
            "as_of may be at most credit_ledger.max_future_as_of = {} s after now",
            horizon / 1_000_000
        ))
        .hint(
            "a superuser can raise credit_ledger.max_future_as_of (e.g. to simulate time in tests)",
        ));
    }
    Ok(as_of)
}

/// Write expiry entries for grants past `expires_at` and finalize holds past their TTL.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_expire(
    as_of: default!(Option<TimestampWithTimeZone>, "now()"),
    max_rows: default!(Option<i64>, 10000),
) -> TableIterator<
    'static,
    (
        name!(grants_expired, i64),
        name!(credits_expired, AnyNumeric),
        name!(holds_expired, i64),
        name!(more, bool),
    ),
> {
    let s = or_raise((|| {
        let as_of = check_as_of(as_of)?;
        let max_rows = max_rows.unwrap_or(10000);
        if max_rows < 1 {
            return Err(crate::error::LedgerError::invalid(format!(
                "max_rows must be at least 1, got {max_rows}"
            )));
        }
        spi::with(|c| sweep(c, as_of, max_rows, &mut CatchUp::default()))
    })());
    TableIterator::once((s.grants, trim_scale(s.credits), s.holds, s.more))
}

/// Run all due lifecycle work up to `as_of`: every missed allowance boundary in order (with
/// rollover), then expiry of grants and holds, until nothing is left.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_tick(
    as_of: default!(Option<TimestampWithTimeZone>, "now()"),
) -> TableIterator<
    'static,
    (
        name!(boundaries, i64),
        name!(grants_expired, i64),
        name!(credits_expired, AnyNumeric),
        name!(holds_expired, i64),
    ),
> {
    let (b, s) = or_raise((|| {
        let as_of = check_as_of(as_of)?;
        spi::with(|c| {
            let mut caught_up = CatchUp::default();
            let (b, _) = crate::allowances::run_due(c, as_of, i64::MAX, &mut caught_up)?;
            // events (0.6.0 on): grants about to expire, and retention of old events
            crate::events::grants_expiring(c, as_of)?;
            crate::events::trim(c)?;
            // upgrade signals (0.7.0 on): period usage past a wallet's upgrade tiers
            crate::overage::upgrade_signals(c, as_of)?;
            let mut total = Swept {
                grants: 0,
                credits: AnyNumeric::default(),
                holds: 0,
                more: true,
            };
            // bounded: each round makes progress or stops
            for _ in 0..1000 {
                let s = sweep(c, as_of, 10000, &mut caught_up)?;
                total.grants += s.grants;
                total.credits += s.credits;
                total.holds += s.holds;
                if !s.more || (s.grants == 0 && s.holds == 0) {
                    break;
                }
            }
            Ok((b, total))
        })
    })());
    TableIterator::once((b, s.grants, trim_scale(s.credits), s.holds))
}

/// A numeric without trailing fractional zeros (a numeric sum keeps the largest scale of its
/// terms: 112.5 + 12.5 = 125.0), printed as the amounts it adds up are.
fn trim_scale(n: AnyNumeric) -> AnyNumeric {
    let text = n.to_string();
    if !text.contains('.') {
        return n;
    }
    AnyNumeric::try_from(text.trim_end_matches('0').trim_end_matches('.')).unwrap_or(n)
}

// ---- periods: the SQL boundary of the pure `period` module ------------------------------------

fn to_period(p: &Interval) -> Period {
    Period {
        months: p.months(),
        days: p.days(),
        micros: p.micros(),
    }
}

/// A period function on SQL values (the allowance code calls this too, so that it does not
/// depend on the SQL functions, which a 0.1.0 catalog running this library lacks).
pub(crate) fn period_at(
    f: fn(Option<Period>, Option<i64>, i64) -> std::result::Result<i64, PeriodError>,
    p: Option<&Interval>,
    anchor: Option<TimestampWithTimeZone>,
    at: TimestampWithTimeZone,
) -> Result<TimestampWithTimeZone> {
    let out_of_range = || {
        LedgerError::new(
            Kind::OutOfRange,
            format!("period boundary out of range for {at}"),
        )
    };
    let t = f(
        p.map(to_period),
        anchor.map(|a| a.into_inner()),
        at.into_inner(),
    )
    .map_err(|e| match e {
        PeriodError::NotPositive => LedgerError::invalid(format!(
            "period must be positive, got {}",
            p.map(|p| p.to_string()).unwrap_or_default()
        )),
        PeriodError::OutOfRange => out_of_range(),
    })?;
    TimestampWithTimeZone::try_from(t).map_err(|_| out_of_range())
}

/// The SQL functions: a NULL `at` gives NULL; a NULL period means calendar months in UTC; a
/// NULL anchor is the Unix epoch.
fn period_sql(
    f: fn(Option<Period>, Option<i64>, i64) -> std::result::Result<i64, PeriodError>,
    p: Option<Interval>,
    anchor: Option<TimestampWithTimeZone>,
    at: Option<TimestampWithTimeZone>,
) -> Option<TimestampWithTimeZone> {
    Some(or_raise(period_at(f, p.as_ref(), anchor, at?)))
}

/// Start of the period containing `at` (UTC, whatever the session's TimeZone): calendar months
/// when `p` is NULL, otherwise the last boundary `anchor + k × p` at or before `at`.
/// The SQL is spelled out because pgrx places a function in another schema only through a
/// `#[pg_schema]` module, whose `CREATE SCHEMA IF NOT EXISTS` would NOTICE on every install
/// (schema.sql creates the schema). No SET search_path: it runs no SQL (and is on the hot path).
#[pg_extern(sql = "
CREATE FUNCTION credit_ledger._period_start(p interval, anchor timestamptz, at timestamptz)
RETURNS timestamptz IMMUTABLE PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'period_start_wrapper';")]
fn period_start(
    p: Option<Interval>,
    anchor: Option<TimestampWithTimeZone>,
    at: Option<TimestampWithTimeZone>,
) -> Option<TimestampWithTimeZone> {
    period_sql(period::period_start, p, anchor, at)
}

/// The first boundary strictly after `at`: the end of the period containing `at` (for a
/// boundary, the next one), computed from the anchor so it never drifts.
#[pg_extern(sql = "
CREATE FUNCTION credit_ledger._period_next(p interval, anchor timestamptz, at timestamptz)
RETURNS timestamptz IMMUTABLE PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'period_next_wrapper';")]
fn period_next(
    p: Option<Interval>,
    anchor: Option<TimestampWithTimeZone>,
    at: Option<TimestampWithTimeZone>,
) -> Option<TimestampWithTimeZone> {
    period_sql(period::next, p, anchor, at)
}
