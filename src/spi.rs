//! The SPI layer: prepared statements kept for the backend's life, and value conversion.
//!
//! Every statement is prepared once per backend on first use (`SPI_prepare` + `SPI_keepplan`)
//! and then executed with `read_only = false`, so each statement takes a fresh snapshot in
//! READ COMMITTED (a debit that waited for a wallet lock sees the committed grants).
//! The SQL text itself lives in [`crate::catalog`]; values always travel as `$n` parameters.

use crate::amount;
use crate::error::{LedgerError, Result};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiHeapTupleData, SpiTupleTable};
use pgrx::{AnyNumeric, JsonB, PgOid};
use rust_decimal::Decimal;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static PLANS: RefCell<HashMap<usize, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

/// Execute a statement from [`crate::catalog`], preparing it on first use in this backend.
/// Argument types are taken from the first call's arguments, so every call site of one
/// statement must pass the same Rust types.
pub fn exec<'c>(
    client: &mut SpiClient<'c>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> Result<SpiTupleTable<'c>> {
    let key = sql.as_ptr() as usize;
    let cached = PLANS.with(|p| p.borrow().get(&key).cloned());
    let plan = match cached {
        Some(plan) => plan,
        None => {
            let oids: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
            let plan = Rc::new(client.prepare_mut(sql, &oids)?.keep());
            PLANS.with(|p| p.borrow_mut().insert(key, plan.clone()));
            plan
        }
    };
    Ok(client.update(&*plan, None, args)?)
}

/// Run `f` inside one SPI connection.
pub fn with<R>(f: impl FnOnce(&mut SpiClient<'_>) -> Result<R>) -> Result<R> {
    Spi::connect_mut(f)
}

// ---- value conversion ------------------------------------------------------------------

pub fn num(d: Decimal) -> AnyNumeric {
    // A Decimal always prints as a valid numeric literal.
    AnyNumeric::try_from(d.normalize().to_string().as_str()).unwrap_or_default()
}

pub fn opt_num(d: Option<Decimal>) -> Option<AnyNumeric> {
    d.map(num)
}

pub fn to_dec(n: &AnyNumeric, what: &str) -> Result<Decimal> {
    amount::parse(&n.to_string(), what)
}

pub fn opt_dec(n: Option<AnyNumeric>, what: &str) -> Result<Option<Decimal>> {
    n.map(|v| to_dec(&v, what)).transpose()
}

/// Typed column access on a result row.
pub trait RowExt {
    fn col<T: IntoDatum + FromDatum>(&self, i: usize) -> Result<Option<T>>;
    fn req<T: IntoDatum + FromDatum>(&self, i: usize) -> Result<T> {
        self.col(i)?.ok_or_else(|| {
            LedgerError::new(
                crate::error::Kind::Internal,
                format!("unexpected NULL in column {i}"),
            )
        })
    }
    fn dec(&self, i: usize) -> Result<Decimal> {
        to_dec(&self.req::<AnyNumeric>(i)?, "stored amount")
    }
    fn opt_dec(&self, i: usize) -> Result<Option<Decimal>> {
        opt_dec(self.col::<AnyNumeric>(i)?, "stored amount")
    }
}

impl RowExt for SpiHeapTupleData<'_> {
    fn col<T: IntoDatum + FromDatum>(&self, i: usize) -> Result<Option<T>> {
        Ok(self.get::<T>(i)?)
    }
}

impl RowExt for SpiTupleTable<'_> {
    fn col<T: IntoDatum + FromDatum>(&self, i: usize) -> Result<Option<T>> {
        Ok(self.get::<T>(i)?)
    }
}

/// First row of a result, if any.
pub fn first<'c>(t: SpiTupleTable<'c>) -> Option<SpiTupleTable<'c>> {
    if t.is_empty() {
        None
    } else {
        Some(t.first())
    }
}

/// Canonical text of an optional JSON value (object keys sorted), for request hashing.
pub fn json_text(j: &Option<JsonB>) -> String {
    match j {
        Some(JsonB(v)) => v.to_string(),
        None => String::new(),
    }
}
