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
    /// Kept plans by statement (the address and length of its text in [`crate::catalog`], and
    /// which of its tenant parts were left out: see [`TENANT_PART`]).
    static PLANS: RefCell<HashMap<(usize, usize, u8), usize>> = RefCell::new(HashMap::new());
    /// What each statement's text holds of the tenant machinery (bits of [`Marks`]).
    static MARKS: RefCell<HashMap<(usize, usize), u8>> = RefCell::new(HashMap::new());
    /// Whether the catalog has tenants, for the transaction that started at this instant.
    static TENANTS_IN: std::cell::Cell<(i64, bool)> = const { std::cell::Cell::new((i64::MIN, false)) };
    /// Whether the ledger is distributed by Citus, for the transaction that started at this
    /// instant (a database does not undistribute it: once true, for good).
    static DISTRIBUTED_IN: std::cell::Cell<(i64, bool)> = const { std::cell::Cell::new((i64::MIN, false)) };
}

/// Marks the parts of a statement that name the `tenant` column (since 0.12.0, issue 20):
/// text between two of these is left out when the catalog served is older than that (it has no
/// such column), so one statement text serves both. A marker is an SQL comment, so the text as
/// written is what runs on a current catalog.
pub const TENANT_PART: &str = "/*t*/";
/// Marks a predicate on the scope's tenant (`AND x.tenant = $T`, see [`crate::tenant`]): left
/// out as a [`TENANT_PART`] is, and also while the scope's tenant is not known yet.
pub const TENANT_PREDICATE: &str = "/*T*/";
/// Marks a predicate on the tenant the caller gave: left out unless the scope's tenant was given
/// (the statement that finds the scope's wallet).
pub const GIVEN_PREDICATE: &str = "/*G*/";
/// Marks a part used only while the scope's tenant is not known (the same value read another
/// way): left out once it is known, and on a catalog without tenants with the part around it.
pub const UNKNOWN_PART: &str = "/*U*/";
/// Marks a part used only while the scope's tenant is not given (a tenant read from the rows,
/// where `$T` stands in a [`GIVEN_PREDICATE`] part next to it): left out once it is given, and on
/// a catalog without tenants with the part around it. Unlike [`UNKNOWN_PART`] it stays when the
/// tenant was only found: a statement about another wallet than the one the scope found (a
/// transfer's receiver) must not take the found tenant.
pub const NOT_GIVEN_PART: &str = "/*N*/";
/// The scope's tenant as a parameter: bound as the statement's last argument (text, NULL when
/// not known).
const TENANT_PARAM: &str = "$T";
/// The last column of a scope's entry statement: the tenant of the row it found.
const FOUND_COLUMN: &str = "tenant_";
/// How a statement that writes an event notifies its id ([`crate::events`]). On a ledger Citus
/// distributes, the statement runs on the event's shard, where a NOTIFY reaches no listener of
/// the coordinator and makes a two-phase commit fail ("cannot PREPARE a transaction that has
/// executed LISTEN, UNLISTEN, or NOTIFY"): there it returns the id instead
/// ([`NOTIFY_ID`]) and the caller notifies it where it runs ([`crate::events::notify`]).
pub const NOTIFY_CALL: &str = "pg_catalog.pg_notify('credit_ledger', e.id::text)";
/// What stands for [`NOTIFY_CALL`] on a distributed ledger: the event's id as text.
const NOTIFY_ID: &str = "e.id::text";

/// What a statement's text holds (bits).
struct Marks;
impl Marks {
    const PART: u8 = 1;
    const PREDICATE: u8 = 2;
    const GIVEN: u8 = 4;
    const PARAM: u8 = 8;
    const FOUND: u8 = 16;
    const UNKNOWN: u8 = 32;
    const NOT_GIVEN: u8 = 64;
    fn of(sql: &'static str) -> u8 {
        let key = (sql.as_ptr() as usize, sql.len());
        if let Some(m) = MARKS.with(|m| m.borrow().get(&key).copied()) {
            return m;
        }
        let mut m = 0;
        for (marker, bit) in [
            (TENANT_PART, Self::PART),
            (TENANT_PREDICATE, Self::PREDICATE),
            (GIVEN_PREDICATE, Self::GIVEN),
            (TENANT_PARAM, Self::PARAM),
            (FOUND_COLUMN, Self::FOUND),
            (UNKNOWN_PART, Self::UNKNOWN),
            (NOT_GIVEN_PART, Self::NOT_GIVEN),
        ] {
            if sql.contains(marker) {
                m |= bit;
            }
        }
        MARKS.with(|x| x.borrow_mut().insert(key, m));
        m
    }
}

/// `sql` without the parts between pairs of `marker` (each part and its two markers).
fn without_parts(sql: &str, marker: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for (i, piece) in sql.split(marker).enumerate() {
        if i % 2 == 0 {
            out.push_str(piece);
        }
    }
    out
}

/// Whether the catalog served has tenants (0.12.0 on).
pub fn catalog_has_tenants() -> bool {
    catalog_has(c"wallets", Some(c"tenant"))
}

/// [`catalog_has_tenants`], asked once per transaction.
pub fn tenants_now() -> bool {
    let at = transaction_start();
    let (when, has) = TENANTS_IN.with(|t| t.get());
    if when == at {
        return has;
    }
    let has = catalog_has_tenants();
    TENANTS_IN.with(|t| t.set((at, has)));
    has
}

/// Whether the ledger's tables are distributed by Citus (asked once per transaction, and only
/// where Citus is installed): Citus routes a statement with parameters to one shard only when it
/// plans it with their values, so there every statement is prepared for custom plans (planned
/// at each execution) instead of the generic plan kept on one node.
pub fn distributed(c: &mut SpiClient<'_>) -> Result<bool> {
    let at = transaction_start();
    let (when, known) = DISTRIBUTED_IN.with(|d| d.get());
    if known || when == at {
        return Ok(known);
    }
    let d = crate::citus::has_citus()
        && first(exec(c, crate::citus::LEDGER_DISTRIBUTED, &[])?)
            .map(|r| r.col::<bool>(1))
            .transpose()?
            .flatten()
            .unwrap_or(false);
    DISTRIBUTED_IN.with(|x| x.set((at, d)));
    Ok(d)
}

/// Plan-key bit: prepared for custom plans ([`distributed`]).
const CUSTOM_PLANS: u8 = 0x80;

/// The text a statement is prepared from: its tenant parts left out per `strip` (bits of
/// [`Marks`]), `$T` numbered after the caller's `n` arguments, and on a distributed ledger
/// ([`CUSTOM_PLANS`]) an event's [`NOTIFY_CALL`] replaced by its id.
fn prepared_text(sql: &str, strip: u8, n: usize) -> String {
    let mut text = sql.to_string();
    if strip & CUSTOM_PLANS != 0 {
        text = text.replace(NOTIFY_CALL, NOTIFY_ID);
    }
    for (bit, marker) in [
        (Marks::PART, TENANT_PART),
        (Marks::PREDICATE, TENANT_PREDICATE),
        (Marks::GIVEN, GIVEN_PREDICATE),
        (Marks::UNKNOWN, UNKNOWN_PART),
        (Marks::NOT_GIVEN, NOT_GIVEN_PART),
    ] {
        if strip & bit != 0 {
            text = without_parts(&text, marker);
        }
    }
    text.replace(TENANT_PARAM, &format!("${}", n + 1))
}

/// Execute a statement from [`crate::catalog`], preparing it on first use in this backend as
/// a *generic* plan (`CURSOR_OPT_GENERIC_PLAN`: planned once, never re-planned per call) kept
/// for the backend's life. Argument types are taken from the first call's arguments, so every
/// call site of one statement must pass the same Rust types. Runs with `read_only = false`,
/// so every statement takes a fresh snapshot. The caller holds an SPI connection (`c`).
///
/// Tenants (see [`crate::tenant`]): the marked parts a catalog or scope cannot use are left
/// out (one kept plan per combination), `$T` is bound to the scope's tenant, and an entry
/// statement's `tenant_` column sets it.
pub fn exec(c: &mut SpiClient<'_>, sql: &'static str, args: &[DatumWithOid<'_>]) -> Result<Rows> {
    let custom = sql != crate::citus::LEDGER_DISTRIBUTED && distributed(c)?;
    let marks = Marks::of(sql);
    let tenants = marks != 0 && tenants_now();
    let scope = if marks & (Marks::PARAM | Marks::PREDICATE | Marks::UNKNOWN) != 0 {
        crate::tenant::current()
    } else {
        None
    };
    let mut strip = 0u8;
    if !tenants {
        strip = Marks::PART | Marks::PREDICATE | Marks::GIVEN | Marks::NOT_GIVEN;
    } else {
        if scope.is_none() {
            strip |= Marks::PREDICATE;
        } else {
            strip |= Marks::UNKNOWN;
        }
        if crate::tenant::given() {
            strip |= Marks::NOT_GIVEN;
        } else {
            strip |= Marks::GIVEN;
        }
    }
    strip &= marks;
    if custom {
        strip |= CUSTOM_PLANS;
    }
    // `$T`: the scope's tenant, after the caller's arguments
    let extra: Option<DatumWithOid<'_>> = (marks & Marks::PARAM != 0).then(|| scope.into());
    let n = args.len();
    let key = (sql.as_ptr() as usize, sql.len(), strip);
    let plan = match PLANS.with(|p| p.borrow().get(&key).copied()) {
        Some(plan) => plan as pg_sys::SPIPlanPtr,
        None => {
            let text = if marks == 0 && !custom {
                CString::new(sql)
            } else {
                CString::new(prepared_text(sql, strip, n))
            }
            .map_err(|_| internal("statement text contains NUL"))?;
            let mut oids: Vec<pg_sys::Oid> =
                args.iter().chain(extra.iter()).map(|a| a.oid()).collect();
            // SAFETY: SPI is connected (the caller holds a client); arguments are valid.
            let plan = unsafe {
                pg_sys::SPI_prepare_cursor(
                    text.as_ptr(),
                    oids.len() as i32,
                    oids.as_mut_ptr(),
                    if custom {
                        pg_sys::CURSOR_OPT_CUSTOM_PLAN as i32
                    } else {
                        pg_sys::CURSOR_OPT_GENERIC_PLAN as i32
                    },
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
    let mut datums: Vec<pg_sys::Datum> = Vec::with_capacity(n + 1);
    let mut nulls: Vec<std::os::raw::c_char> = Vec::with_capacity(n + 1);
    for a in args.iter().chain(extra.iter()) {
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
    let rows = Rows {
        table,
        n: if table.is_null() { 0 } else { n },
    };
    if marks & Marks::FOUND != 0 && tenants && !rows.is_empty() {
        found_tenant(&rows)?;
    }
    Ok(rows)
}

/// An entry statement's row: its last column, when named [`FOUND_COLUMN`], is the scope's tenant.
fn found_tenant(rows: &Rows) -> Result<()> {
    let row = rows.row(0);
    // SAFETY: the descriptor of the current SPI result; natts > 0 for a row-returning statement
    let (natts, named) = unsafe {
        let natts = (*row.tupdesc).natts as usize;
        let name = pg_sys::SPI_fname(row.tupdesc, natts as i32);
        let named =
            !name.is_null() && std::ffi::CStr::from_ptr(name).to_bytes() == FOUND_COLUMN.as_bytes();
        (natts, named)
    };
    if named {
        if let Some(t) = row.col::<String>(natts)? {
            crate::tenant::found(t);
        }
    }
    Ok(())
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
    /// The first row, leaving the rows to be read again.
    pub fn first_row(&self) -> Option<Row> {
        (self.n > 0).then(|| self.row(0))
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
    // every call is a unit of work of its own (crate::tenant), also one nested in another
    // (the usage trigger's)
    crate::tenant::scoped(|| {
        Spi::connect_mut(|c| {
            crate::citus::coordinate(c)?;
            f(c)
        })
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_parts_are_left_out_whole() {
        let sql = "INSERT INTO t (a/*t*/, tenant/*t*/) VALUES ($1/*t*/, (SELECT x)/*t*/)";
        assert_eq!(
            without_parts(sql, TENANT_PART),
            "INSERT INTO t (a) VALUES ($1)"
        );
        assert_eq!(without_parts("SELECT 1", TENANT_PART), "SELECT 1");
        let sql = "SELECT id FROM w WHERE id = $1/*T*/ AND tenant = $T/*T*//*G*/ AND x = $T/*G*/";
        let all = Marks::PART | Marks::PREDICATE | Marks::GIVEN;
        assert_eq!(prepared_text(sql, all, 1), "SELECT id FROM w WHERE id = $1");
        assert_eq!(
            prepared_text(sql, Marks::GIVEN, 1),
            "SELECT id FROM w WHERE id = $1/*T*/ AND tenant = $2/*T*/"
        );
        // every statement that marks tenant parts pairs its markers
        for s in [
            crate::catalog::WALLET_INSERT,
            crate::catalog::GRANT_INSERT,
            crate::catalog::AUTHORIZE_WRITE,
            crate::catalog::AUTHORIZE_WRITE_KEYED,
            crate::catalog::APPLY,
            crate::catalog::APPLY_ONE,
            crate::catalog::SLICE_INSERT,
            crate::catalog::RUN_WALLET_INSERT,
            crate::catalog::EVENTS_GRANTS_EXPIRING,
        ] {
            assert_eq!(s.matches(TENANT_PART).count() % 2, 0, "{s}");
            assert_eq!(s.matches(TENANT_PREDICATE).count() % 2, 0, "{s}");
            let old = prepared_text(s, Marks::PART | Marks::PREDICATE | Marks::GIVEN, 30);
            assert!(!old.contains("tenant"), "{s}");
        }
        // every statement that writes an event notifies it on one node and returns its id on
        // a distributed ledger (the caller notifies it from the coordinator)
        for s in [
            crate::catalog::EVENT_EMIT,
            crate::catalog::EVENT_ONCE_PER_PERIOD,
            crate::catalog::EVENTS_GRANTS_EXPIRED,
            crate::catalog::EVENTS_GRANTS_EXPIRING,
            crate::catalog_corrections::EVENT_NOTIFY,
            crate::catalog::AUTO_TOPUP_EMIT,
        ] {
            assert!(s.contains(NOTIFY_CALL), "{s}");
            assert!(prepared_text(s, 0, 4).contains("pg_notify"), "{s}");
            let d = prepared_text(s, CUSTOM_PLANS, 4);
            assert!(!d.contains("pg_notify") && d.contains(NOTIFY_ID), "{s}");
        }
    }
}
