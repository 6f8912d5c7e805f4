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
//! Every API call runs in a scope of its own ([`scoped`], from [`crate::spi::with`]). Before a
//! scope's entry statement, statements run without the predicates (correct on one node). The
//! found tenant is the last marked wallet the scope read: a unit that reads wallets of two
//! tenants (a transfer locks both; the sweeps go through many) must give each tenant a scope of
//! its own before a predicate may rely on it. Today (0.12.0) only the authorization row takes
//! `$T` (a spend's scope reads one tenant: the wallet, its pool, a run's wallet); the predicates
//! of the spend path are the next step of issue 20.

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
