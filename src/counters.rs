//! Period counters: one row per wallet, key and period, locked by the call that reads it and
//! moved on by what that call spends, so that concurrent calls of one wallet are priced (volume
//! tiers, [`crate::tiers`]) or admitted (fair use, [`crate::fair_use`]) exactly where the call
//! before them ended. Each is taken after every wallet lock its call takes.

use crate::error::{Kind, LedgerError, Result};
use crate::spi::{self, exec, num, RowExt};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use rust_decimal::Decimal;

/// The statements of one counter table, each keyed `$1` wallet, `$2 ..` the names, then the
/// period start; `advance` takes the amount after them.
pub struct CounterSql {
    pub lock: &'static str,
    /// Create the row at 0 (nothing when a concurrent call created it first).
    pub create: &'static str,
    pub peek: &'static str,
    pub advance: &'static str,
}

/// One counter row.
pub struct Counter {
    sql: &'static CounterSql,
    owner: i64,
    names: Vec<String>,
    period_start: TimestampWithTimeZone,
}

impl Counter {
    pub fn new(
        sql: &'static CounterSql,
        owner: i64,
        names: Vec<String>,
        period_start: TimestampWithTimeZone,
    ) -> Self {
        Counter {
            sql,
            owner,
            names,
            period_start,
        }
    }

    fn key(&self) -> Vec<DatumWithOid<'static>> {
        let mut k: Vec<DatumWithOid<'static>> = vec![self.owner.into()];
        k.extend(self.names.iter().map(|n| n.clone().into()));
        k.push(self.period_start.into());
        k
    }

    /// Lock the counter (creating it at 0) and return its value.
    pub fn lock(&self, c: &mut SpiClient<'_>) -> Result<Decimal> {
        for statement in [self.sql.lock, self.sql.create, self.sql.lock] {
            if let Some(row) = spi::first(exec(c, statement, &self.key())?) {
                return row.dec(1);
            }
        }
        Err(LedgerError::new(
            Kind::Internal,
            "period counter neither found nor created",
        ))
    }

    /// The value without a lock (quotes).
    pub fn peek(&self, c: &mut SpiClient<'_>) -> Result<Decimal> {
        spi::first(exec(c, self.sql.peek, &self.key())?)
            .map(|row| row.dec(1))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Move the (locked) value by `amount` (negative: back).
    pub fn advance(&self, c: &mut SpiClient<'_>, amount: Decimal) -> Result<()> {
        let mut args = self.key();
        args.push(num(amount).into());
        exec(c, self.sql.advance, &args)?;
        Ok(())
    }
}

/// Delete the counters of periods that have ended (see [`crate::catalog_overage`]'s
/// `PRUNE_*` statements), at most `max_rows` of each table: what `credit_tick` keeps from
/// growing one row per wallet, key and period for ever. Periods end by the clock, never by a
/// simulated `as_of` ahead of it (the calls made now still count in the real current period).
/// A no-op on a catalog before 0.8.0. Returns the rows deleted.
pub fn prune(c: &mut SpiClient<'_>, as_of: TimestampWithTimeZone, max_rows: i64) -> Result<i64> {
    if !spi::catalog_has(c"tier_usage", None) {
        return Ok(0);
    }
    let now = spi::first(exec(c, crate::catalog_overage::PRUNE_NOW, &[as_of.into()])?)
        .map(|row| row.req::<TimestampWithTimeZone>(1))
        .transpose()?
        .unwrap_or(as_of);
    let mut deleted = 0;
    for statement in [
        crate::catalog_overage::PRUNE_TIER_USAGE,
        crate::catalog_overage::PRUNE_FAIR_USE_USAGE,
    ] {
        deleted += exec(c, statement, &[now.into(), max_rows.into()])?.len() as i64;
    }
    Ok(deleted)
}
