//! Internal subtransactions: a step whose row locks can be given back at once.
//!
//! A spender of a wallet with lanes locks one lane and only then learns whether that lane can
//! pay (another spender may have committed in between). When it cannot, the spender must wait
//! for the whole wallet; waiting while still holding the lane is how two spenders deadlock.
//! [`attempt`] runs such a step in a subtransaction (what PL/pgSQL does for a block with an
//! `EXCEPTION` clause) and rolls it back when the step's result is not kept: PostgreSQL
//! releases the row locks taken in a rolled-back subtransaction at once.
//!
//! A kept subtransaction that locked a row keeps its own transaction id until the caller's
//! transaction ends. A backend caches 64 of them; beyond that every snapshot in the cluster
//! has to look them up in `pg_subtrans` (the "subtransaction overflow" slowdown), so
//! [`available`] says no once half of that cache is used and the caller then takes the step
//! without a subtransaction.

use crate::error::Result;
use pgrx::pg_sys;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// Subtransaction ids a transaction may keep before [`available`] says no (of the 64 the
/// backend caches).
const MAX_KEPT: u8 = 32;

/// Whether a step may run in a subtransaction without risking the overflow of the backend's
/// cache of subtransaction ids.
pub fn available() -> bool {
    // SAFETY: MyProc is this backend's own PGPROC, set for the whole life of a backend that
    // runs SQL; its subxid status is only written by this backend
    unsafe {
        let proc_ = pg_sys::MyProc;
        !proc_.is_null()
            && !(*proc_).subxidStatus.overflowed
            && (*proc_).subxidStatus.count < MAX_KEPT
    }
}

/// Run `step` in a subtransaction: its effects (row locks included) stay when it returns
/// `Ok(v)` and `keep(&v)` holds, and are rolled back otherwise, also on an error, which is
/// then passed on. The caller's memory context and resource owner are restored either way.
pub fn attempt<T>(step: impl FnOnce() -> Result<T>, keep: impl FnOnce(&T) -> bool) -> Result<T> {
    // SAFETY: called inside a transaction (every SQL function is). The subtransaction is
    // begun and ended here, on every path (a PostgreSQL error reaches us as a Rust panic,
    // which is caught, the subtransaction rolled back, and the panic resumed), so the nesting
    // of the caller's transaction is unchanged when this returns or unwinds.
    unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        let out = catch_unwind(AssertUnwindSafe(step));
        let kept = matches!(&out, Ok(Ok(v)) if keep(v));
        pg_sys::MemoryContextSwitchTo(context);
        if kept {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
        match out {
            Ok(result) => result,
            Err(panic) => resume_unwind(panic),
        }
    }
}
