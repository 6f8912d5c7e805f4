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

/// Whether the `citus` extension is installed in this database: one syscache lookup.
pub(crate) fn has_citus() -> bool {
    // SAFETY: a catalog lookup by name inside a transaction; missing_ok makes it return
    // InvalidOid instead of raising when there is no such extension
    unsafe { pg_sys::get_extension_oid(c"citus".as_ptr(), true) != pg_sys::InvalidOid }
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
