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
    /// Delete the key's rows of earlier periods (run by the call that creates a new period's).
    pub prune: &'static str,
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

    /// Lock the counter (creating it at 0) and return its value. The call that creates a
    /// period's row deletes the key's rows of earlier periods (since 0.9.0), so a wallet keeps
    /// one row per key, not one per key and period.
    pub fn lock(&self, c: &mut SpiClient<'_>) -> Result<Decimal> {
        for statement in [self.sql.lock, self.sql.create, self.sql.lock] {
            if let Some(row) = spi::first(exec(c, statement, &self.key())?) {
                if statement == self.sql.create {
                    exec(c, self.sql.prune, &self.key())?;
                }
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
