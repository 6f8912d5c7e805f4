//! The tenant a unit of work runs in (issue 20; docs/design.md "Scale-out on Citus").
//!
//! A call works on one wallet, and for a pool member on its pool too: one tenant. Once the call
//! has read its wallet's row, every further statement names that tenant (`$T`, bound by
//! [`crate::spi::exec`]), so that on a Citus cluster each of them stays on the tenant's shard
//! (Citus refuses a delegated call's statement that does not name it). On one node the
//! predicates are redundant: they select the rows the wallet id selects.
//!
//! - *given*: the call's `tenant` argument; the statement that finds the wallet names it too
//!   (a wallet of another tenant is then not found).
//! - *found*: the tenant of the row a statement marked as the unit's entry returned (its last
//!   column, named `tenant_`).
//!
//! Every unit of work runs in its own scope ([`scoped`]): an API call ([`crate::spi::with`]),
//! each wallet a sweep processes, each side of a transfer. Before the entry statement of a
//! scope, statements run without the predicates (correct on one node, routed by Citus from the
//! coordinator on a cluster).

use std::cell::RefCell;

/// The tenant of the current scope.
#[derive(Clone, Default)]
struct Scope {
    tenant: Option<String>,
    given: bool,
}

thread_local! {
    static CURRENT: RefCell<Scope> = RefCell::new(Scope::default());
}

/// The tenant of the current scope, if known.
pub fn current() -> Option<String> {
    CURRENT.with(|s| s.borrow().tenant.clone())
}

/// Whether the current scope's tenant was given by the caller (the entry statement names it).
pub fn given() -> bool {
    CURRENT.with(|s| s.borrow().given)
}

/// The caller's `tenant` argument (None: not given, nothing changes).
pub fn give(tenant: Option<&str>) {
    if let Some(t) = tenant {
        CURRENT.with(|s| {
            *s.borrow_mut() = Scope {
                tenant: Some(t.to_string()),
                given: true,
            }
        });
    }
}

/// The tenant the scope's entry statement found.
pub fn found(tenant: String) {
    CURRENT.with(|s| s.borrow_mut().tenant = Some(tenant));
}

/// Run `f` in a fresh scope (no tenant known), and restore the enclosing one after it.
pub fn scoped<R>(f: impl FnOnce() -> R) -> R {
    let outer = CURRENT.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let r = f();
    CURRENT.with(|s| *s.borrow_mut() = outer);
    r
}
