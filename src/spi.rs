//! The SPI layer: prepared statements kept for the backend's life, and value conversion.
//!
//! Every statement is prepared once per backend on first use (`SPI_prepare` + `SPI_keepplan`)
//! and then executed with `read_only = false`, so each statement takes a fresh snapshot in
//! READ COMMITTED (a debit that waited for a wallet lock sees the committed grants).
//! The SQL text itself lives in [`crate::catalog`]; values always travel as `$n` parameters.

use crate::amount;
use crate::error::{Kind, LedgerError, Result};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, PgMemoryContexts};
use rust_decimal::Decimal;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CString;

thread_local! {
    /// Kept plans by statement (the address of its text in [`crate::catalog`]).
    static PLANS: RefCell<HashMap<usize, usize>> = RefCell::new(HashMap::new());
}

/// Execute a statement from [`crate::catalog`], preparing it on first use in this backend as
/// a *generic* plan (`CURSOR_OPT_GENERIC_PLAN`: planned once, never re-planned per call) kept
/// for the backend's life. Argument types are taken from the first call's arguments, so every
/// call site of one statement must pass the same Rust types. Runs with `read_only = false`,
/// so every statement takes a fresh snapshot. The caller holds an SPI connection (`_c`).
pub fn exec(_c: &mut SpiClient<'_>, sql: &'static str, args: &[DatumWithOid<'_>]) -> Result<Rows> {
    let key = sql.as_ptr() as usize;
    let plan = match PLANS.with(|p| p.borrow().get(&key).copied()) {
        Some(plan) => plan as pg_sys::SPIPlanPtr,
        None => {
            let text = CString::new(sql).map_err(|_| internal("statement text contains NUL"))?;
            let mut oids: Vec<pg_sys::Oid> = args.iter().map(|a| a.oid()).collect();
            // SAFETY: SPI is connected (the caller holds a client); arguments are valid.
            let plan = unsafe {
                pg_sys::SPI_prepare_cursor(
                    text.as_ptr(),
                    oids.len() as i32,
                    oids.as_mut_ptr(),
                    pg_sys::CURSOR_OPT_GENERIC_PLAN as i32,
                )
            };
            if plan.is_null() {
                return Err(internal("SPI_prepare_cursor failed"));
            }
            // SAFETY: a fresh plan from SPI_prepare_cursor
            unsafe { pg_sys::SPI_keepplan(plan) };
            PLANS.with(|p| p.borrow_mut().insert(key, plan as usize));
            plan
        }
    };
    let mut datums: Vec<pg_sys::Datum> = Vec::with_capacity(args.len());
    let mut nulls: Vec<std::os::raw::c_char> = Vec::with_capacity(args.len());
    for a in args {
        match a.datum() {
            Some(d) => {
                datums.push(d.sans_lifetime());
                nulls.push(b' ' as std::os::raw::c_char);
            }
            None => {
                datums.push(pg_sys::Datum::from(0usize));
                nulls.push(b'n' as std::os::raw::c_char);
            }
        }
    }
    // SAFETY: the plan is kept; datums/nulls match its argument count (same call site types)
    let status = unsafe {
        pg_sys::SPI_tuptable = std::ptr::null_mut();
        pg_sys::SPI_execute_plan(plan, datums.as_mut_ptr(), nulls.as_ptr(), false, 0)
    };
    if status < 0 {
        return Err(internal(&format!("SPI_execute_plan failed with {status}")));
    }
    // SAFETY: set by the execution above
    let (table, n) = unsafe { (pg_sys::SPI_tuptable, pg_sys::SPI_processed as usize) };
    Ok(Rows {
        table,
        n: if table.is_null() { 0 } else { n },
    })
}

fn internal(msg: &str) -> LedgerError {
    LedgerError::new(Kind::Internal, msg.to_string())
}

/// The rows a statement returned (valid until the SPI connection closes).
pub struct Rows {
    table: *mut pg_sys::SPITupleTable,
    n: usize,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.n
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    fn row(&self, i: usize) -> Row {
        // SAFETY: i < n and the table is non-null when n > 0
        unsafe {
            let t = &*self.table;
            Row {
                tuple: *t.vals.add(i),
                tupdesc: t.tupdesc,
            }
        }
    }
}

impl IntoIterator for Rows {
    type Item = Row;
    type IntoIter = std::vec::IntoIter<Row>;
    fn into_iter(self) -> Self::IntoIter {
        (0..self.n)
            .map(|i| self.row(i))
            .collect::<Vec<_>>()
            .into_iter()
    }
}

/// One result row.
pub struct Row {
    tuple: pg_sys::HeapTuple,
    tupdesc: pg_sys::TupleDesc,
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

impl RowExt for Row {
    fn col<T: IntoDatum + FromDatum>(&self, i: usize) -> Result<Option<T>> {
        // SAFETY: the tuple and descriptor come from the current SPI result; values are copied
        // into the parent of SPI's context, so they outlive the connection (as pgrx does).
        unsafe {
            let natts = (*self.tupdesc).natts as usize;
            if i == 0 || i > natts {
                return Err(internal(&format!("no column {i}")));
            }
            let mut isnull = false;
            let datum = pg_sys::SPI_getbinval(self.tuple, self.tupdesc, i as i32, &mut isnull);
            let typoid = pg_sys::SPI_gettypeid(self.tupdesc, i as i32);
            let cx = PgMemoryContexts::CurrentMemoryContext
                .parent()
                .ok_or_else(|| internal("no parent memory context"))?;
            T::try_from_datum_in_memory_context(cx, datum, isnull, typoid)
                .map_err(|e| internal(&format!("column {i}: {e}")))
        }
    }
}

/// First row of a result, if any.
pub fn first(t: Rows) -> Option<Row> {
    if t.is_empty() {
        None
    } else {
        Some(t.row(0))
    }
}

/// The transaction's `now()` (µs since 2000-01-01 UTC, PostgreSQL's epoch).
pub fn transaction_start() -> i64 {
    // SAFETY: reads a backend-global set at transaction start; every caller runs inside a
    // transaction (a SQL function call)
    unsafe { pg_sys::GetCurrentTransactionStartTimestamp() }
}

/// [`transaction_start`] as a `timestamptz`.
pub fn transaction_start_tz() -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(transaction_start())
        .unwrap_or(TimestampWithTimeZone::negative_infinity())
}

/// Whether `credit_ledger.<relation>` exists (and, with `column`, has that column): how this
/// library tells which version's catalog it serves. It also serves an older catalog until
/// `ALTER EXTENSION credit_ledger UPDATE` runs, and then uses that version's statements.
/// Syscache lookups only, no query.
pub fn catalog_has(relation: &std::ffi::CStr, column: Option<&std::ffi::CStr>) -> bool {
    // SAFETY: called inside a transaction (every SQL function is); the lookups only read the
    // syscache and return InvalidOid / InvalidAttrNumber when the object is missing
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"credit_ledger".as_ptr(), true);
        if ns == pg_sys::Oid::INVALID {
            return false;
        }
        let rel = pg_sys::get_relname_relid(relation.as_ptr(), ns);
        rel != pg_sys::Oid::INVALID
            && column.is_none_or(|col| pg_sys::get_attnum(rel, col.as_ptr()) > 0)
    }
}
