//! The ledger on a Citus cluster, step 1 (issue 20; docs/design.md): its tables are local to the
//! coordinator. Citus creates the extension on every worker as well, where its copy of the
//! ledger is empty and unused. An application that connects to a worker (Citus routes queries
//! from any node) and creates a wallet, a rate, an asset or a rate card there would write into
//! that worker's copy only: a second, separate ledger that the coordinator's spends, reports and
//! `credit_verify()` never see, and prices the coordinator does not charge. [`refuse_on_worker`]
//! makes those calls an error on a worker, until the ledger's own tables are distributed (then
//! every node reaches the same rows and the check lets the call through).

use crate::error::{LedgerError, Result};
use crate::spi::{self, exec, RowExt};
use pgrx::pg_sys;
use pgrx::spi::SpiClient;
use std::cell::Cell;

/// Whether the `citus` extension is installed in this database and Citus runs in this
/// backend. Citus only runs from `shared_preload_libraries` (its `_PG_init` refuses any other
/// way to load it), which defines its setting `citus.version` in every backend at start; where
/// that setting is missing nothing is asked of the catalog. Else one scan of `pg_extension`
/// (`get_extension_oid` is not cached: asked once per transaction, by [`spi::distributed`],
/// it was about 1.3 % of a debit on plain PostgreSQL).
pub(crate) fn has_citus() -> bool {
    citus_loaded()
        // SAFETY: a catalog lookup by name inside a transaction; missing_ok makes it return
        // InvalidOid instead of raising when there is no such extension
        && unsafe { pg_sys::get_extension_oid(c"citus".as_ptr(), true) != pg_sys::InvalidOid }
}

thread_local! {
    /// [`citus_loaded`]'s answer for this backend, once known.
    static LOADED: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Whether the Citus library runs in this backend (preloaded: fixed for the backend's life).
fn citus_loaded() -> bool {
    if let Some(v) = LOADED.with(|l| l.get()) {
        return v;
    }
    // SAFETY: a lookup in the backend's table of settings; missing_ok makes it return NULL
    // instead of raising for a setting nobody defined
    let v = unsafe { !pg_sys::GetConfigOption(c"citus.version".as_ptr(), true, false).is_null() };
    LOADED.with(|l| l.set(Some(v)));
    v
}

/// An error (55000) when this node is a Citus worker whose copy of the ledger is not the
/// cluster's (step 1: the ledger lives on the coordinator). Nothing on plain PostgreSQL or on
/// the coordinator.
pub fn refuse_on_worker(c: &mut SpiClient<'_>) -> Result<()> {
    // (a worker whose ledger's wallets are not a distributed table)
    if on_worker(c)? && !spi::distributed(c)? {
        return Err(LedgerError::wrong_state(
            "credit_ledger runs on the Citus coordinator: this node is a worker",
        )
        .detail(
            "the ledger's tables are local to the coordinator; a wallet, rate, asset or rate card \
             created here would exist on this worker only",
        )
        .hint("connect to the coordinator to manage the ledger"));
    }
    Ok(())
}

/// Whether this node is a Citus worker (group > 0).
const ON_A_WORKER: &str = "SELECT g.groupid > 0 FROM pg_catalog.pg_dist_local_group g";

thread_local! {
    /// [`ON_A_WORKER`]'s answer for this backend, once known.
    static WORKER: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Whether this backend runs on a Citus worker (a call Citus delegated, or a query it sent
/// there); false on plain PostgreSQL and on the coordinator. Kept for the backend's life.
pub fn on_worker(c: &mut SpiClient<'_>) -> Result<bool> {
    if let Some(v) = WORKER.with(|w| w.get()) {
        return Ok(v);
    }
    let v = has_citus()
        && spi::first(exec(c, ON_A_WORKER, &[])?)
            .map(|r| r.col::<bool>(1))
            .transpose()?
            .flatten()
            .unwrap_or(false);
    WORKER.with(|w| w.set(Some(v)));
    Ok(v)
}

/// Whether the ledger's wallets are a distributed table of Citus here (issue 20).
pub(crate) const LEDGER_DISTRIBUTED: &str = "
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                WHERE p.logicalrelid = 'credit_ledger.wallets'::pg_catalog.regclass)";

/// Citus's `UseCoordinatedTransaction()`: marks the current transaction as one Citus
/// coordinates, so that every statement it routes to a worker runs in a transaction block
/// there (committed or rolled back with the caller's transaction, two-phase across workers).
type UseCoordinated = unsafe extern "C-unwind" fn();

thread_local! {
    /// The function, looked up in the loaded `citus` library once per backend (None: not found).
    static USE_COORDINATED: Cell<Option<Option<UseCoordinated>>> = const { Cell::new(None) };
}

/// On the coordinator of a ledger Citus distributes: make the caller's transaction one Citus
/// coordinates before a call's first statement. Citus decides per statement whether a
/// single-shard statement runs in a transaction block on its worker; it does when the
/// statement runs inside a transaction block, a procedure, a `DO` block or (seen by its
/// executor depth) a function called by a query. A call made where none of these holds —
/// a PL/pgSQL assignment (`a := credit_authorize(...)`, a simple expression) in a trigger that
/// `COPY` fires outside a transaction block — had each statement committed on its own on the
/// worker: a row lock released at once, and a row of a call the failed `COPY` rolled back left
/// behind (found by the regress scenario `usage_trigger` on a distributed ledger: an approved
/// authorization without its journal entry). Nothing on plain PostgreSQL or on a worker (a
/// delegated call runs inside the coordinator's transaction already).
pub fn coordinate(c: &mut SpiClient<'_>) -> Result<()> {
    if !spi::distributed(c)? || on_worker(c)? {
        return Ok(());
    }
    let f = USE_COORDINATED.with(|u| match u.get() {
        Some(f) => f,
        None => {
            // SAFETY: looks a symbol up in a library the backend already loaded (citus is in
            // shared_preload_libraries wherever a ledger is distributed); signalNotFound false
            // returns NULL instead of raising for a Citus without it
            let p = unsafe {
                pg_sys::load_external_function(
                    c"$libdir/citus".as_ptr(),
                    c"UseCoordinatedTransaction".as_ptr(),
                    false,
                    std::ptr::null_mut(),
                )
            };
            // SAFETY: Citus declares it `extern void UseCoordinatedTransaction(void)`
            let f = (!p.is_null()).then(|| unsafe {
                std::mem::transmute::<*mut std::ffi::c_void, UseCoordinated>(p)
            });
            u.set(Some(f));
            f
        }
    });
    match f {
        // SAFETY: a C function without arguments that may raise an ERROR (the guard turns it
        // into a Rust panic, which pgrx reports as that error)
        Some(f) => unsafe { pg_sys::ffi::pg_guard_ffi_boundary(|| f()) },
        None => return Err(LedgerError::wrong_state(
            "this Citus has no UseCoordinatedTransaction(): credit_ledger cannot make its calls \
                 one distributed transaction",
        )
        .hint("use Citus 11 to 13")),
    }
    Ok(())
}
