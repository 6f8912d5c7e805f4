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
//! - *entered*: on a ledger Citus distributes, a call without the argument looks its wallet's
//!   tenant up first ([`enter`]) and then runs as if it had been given: every statement names
//!   it, so Citus routes each to one shard (a locking read or an insert must, on Citus).
//!
//! Every API call runs in a scope of its own ([`scoped`], from [`crate::spi::with`]). Before a
//! scope's entry statement, statements run without the predicates (correct on one node). The
//! found tenant is the last marked wallet the scope read: a unit that reads wallets of two
//! tenants (a transfer locks both; the sweeps go through many) must give each tenant a scope of
//! its own before a predicate may rely on it.

use crate::catalog_tenants as sql;
use crate::error::Result;
use crate::spi::{self, RowExt};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::cell::RefCell;

/// The tenant of the current scope.
#[derive(Clone, Default)]
struct Scope {
    tenant: Option<String>,
    /// The statements name it from the start (`/*G*/` predicates apply): the caller's argument,
    /// or on a distributed ledger the tenant [`enter`] looked up.
    given: bool,
    /// It is the caller's argument (errors say "in tenant").
    by_caller: bool,
}

thread_local! {
    static CURRENT: RefCell<Scope> = RefCell::new(Scope::default());
}

/// The tenant of the current scope, if known.
pub fn current() -> Option<String> {
    CURRENT.with(|s| s.borrow().tenant.clone())
}

/// Whether the current scope's tenant is known before its entry statement (the caller gave it,
/// or [`enter`] looked it up): the entry statement and every `/*G*/` predicate name it.
pub fn given() -> bool {
    CURRENT.with(|s| s.borrow().given)
}

/// Whether the current scope's tenant is the caller's `tenant` argument.
pub fn by_caller() -> bool {
    CURRENT.with(|s| s.borrow().by_caller)
}

/// The caller's `tenant` argument (None: not given, nothing changes).
pub fn give(tenant: Option<&str>) {
    if let Some(t) = tenant {
        set_given(t, true);
    }
}

fn set_given(tenant: &str, by_caller: bool) {
    CURRENT.with(|s| {
        *s.borrow_mut() = Scope {
            tenant: Some(tenant.to_string()),
            given: true,
            by_caller,
        }
    });
}

/// The tenant of the unit of work on wallet `wallet`: the caller's `tenant` argument when given
/// (see [`give`]); otherwise, on a ledger Citus distributes, the wallet's tenant from
/// `credit_ledger.wallet_keys` (a reference table: read on the node itself), or for a key with no
/// wallet the tenant a new wallet of that key gets (its own key), so that every statement of the
/// call names one tenant and Citus routes it to that tenant's shard. On one node without the
/// argument nothing changes (the wallet's row tells the tenant: see [`found`]).
pub fn enter(c: &mut SpiClient<'_>, wallet: &str, tenant: Option<&str>) -> Result<()> {
    if tenant.is_some() {
        give(tenant);
        return Ok(());
    }
    if !crate::spi::distributed(c)? {
        return Ok(());
    }
    let t = key_tenant(c, wallet)?;
    set_given(t.as_deref().unwrap_or(wallet), false);
    Ok(())
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

/// Run `f` for one tenant's rows of a sweep (expiry, allowances, runs past their TTL): on a
/// ledger Citus distributes, in a scope of that tenant, whose statements then name it (each on
/// the tenant's shard); elsewhere as it is (on one node a sweep's row may be linked to rows of
/// another tenant: a member that joined another pool while its hold was open).
pub fn within<R>(
    c: &mut SpiClient<'_>,
    tenant: Option<String>,
    f: impl FnOnce(&mut SpiClient<'_>) -> Result<R>,
) -> Result<R> {
    let Some(t) = tenant else {
        return f(c);
    };
    if !crate::spi::distributed(c)? {
        return f(c);
    }
    let outer = CURRENT.with(|s| s.borrow().clone());
    set_given(&t, false);
    let r = f(c);
    CURRENT.with(|s| *s.borrow_mut() = outer);
    r
}

/// Run `f` in the scope of wallet key `key`'s tenant on a ledger Citus distributes (looked up in
/// `wallet_keys`; a key with no wallet: its own), as it is elsewhere.
pub fn within_key<R>(
    c: &mut SpiClient<'_>,
    key: &str,
    f: impl FnOnce(&mut SpiClient<'_>) -> Result<R>,
) -> Result<R> {
    if !crate::spi::distributed(c)? {
        return f(c);
    }
    let t = key_tenant(c, key)?.unwrap_or_else(|| key.to_string());
    within(c, Some(t), f)
}

/// The tenant column a sweep's listing statement returns after `n` columns (`/*t*/` parts: none
/// on a catalog without tenants).
pub fn column(row: &spi::Row, n: usize) -> Result<Option<String>> {
    if crate::spi::tenants_now() {
        row.col::<String>(n + 1)
    } else {
        Ok(None)
    }
}

/// On a ledger Citus distributes, an error when wallet `wallet` would join pool `pool` of another
/// tenant: its rows would have to move to another shard, which Citus does not do with an UPDATE
/// of the distribution column (0A000). Nothing on one node, or for a pool of the wallet's tenant.
pub fn refuse_move(c: &mut SpiClient<'_>, wallet: &str, pool: &str) -> Result<()> {
    if !crate::spi::distributed(c)? {
        return Ok(());
    }
    let (mine, theirs) = (key_tenant(c, wallet)?, key_tenant(c, pool)?);
    if theirs.is_some() && mine != theirs {
        return Err(crate::error::LedgerError::new(
            crate::error::Kind::NotSupported,
            format!("wallet \"{wallet}\" cannot join pool \"{pool}\" of another tenant on a distributed ledger"),
        )
        .detail("its rows are on its own tenant's shard; Citus does not move rows between shards by an update")
        .hint("create a pool's member with credit_wallet_create(wallet, parent => pool)"));
    }
    Ok(())
}

/// The tenant of wallet key `key` (`wallet_keys`), None for a key no wallet has.
fn key_tenant(c: &mut SpiClient<'_>, key: &str) -> Result<Option<String>> {
    Ok(
        spi::first(spi::exec(c, sql::WALLET_KEY_TENANT, &[key.into()])?)
            .map(|r| r.col::<String>(1))
            .transpose()?
            .flatten(),
    )
}

/// A call moving credits from wallet `from` to wallet `to` (a transfer, a close that transfers):
/// on a ledger Citus distributes, the scope of `from`'s tenant ([`enter`]), and when `to` is of
/// another tenant, that tenant: the call runs the receiving side's statements in it
/// ([`on_other`]), so that each statement still names one tenant and Citus routes it to one
/// shard; the call's statements on both shards commit together in the caller's distributed
/// transaction. None elsewhere, and for two wallets of one tenant. A key no wallet has is left
/// to the call's own lookup (42704).
pub fn enter_pair(c: &mut SpiClient<'_>, from: &str, to: &str) -> Result<Option<String>> {
    if !crate::spi::distributed(c)? {
        return Ok(None);
    }
    let (a, b) = (key_tenant(c, from)?, key_tenant(c, to)?);
    // enter(c, from, None) without looking the key up again
    set_given(a.as_deref().unwrap_or(from), false);
    Ok(match (a, b) {
        (Some(a), Some(b)) if a != b => Some(b),
        _ => None,
    })
}

/// Run `f` in the scope of tenant `other` (the receiving tenant [`enter_pair`] returned), or
/// as it is when there is none (one node, or one tenant).
pub fn on_other<R>(
    c: &mut SpiClient<'_>,
    other: Option<&str>,
    f: impl FnOnce(&mut SpiClient<'_>) -> Result<R>,
) -> Result<R> {
    match other {
        Some(t) => within(c, Some(t.to_string()), f),
        None => f(c),
    }
}

/// [`enter`] for a call on a row named by its id (an authorization, a run, a grant: `lookup`
/// reads its tenant): on a ledger Citus distributes, the row's tenant, read first; nothing
/// elsewhere. An id no row has leaves the scope as it is (the call's own lookup fails then).
/// With `tenant` given (the caller's argument) the row is looked for in that tenant only.
pub fn enter_row(
    c: &mut SpiClient<'_>,
    lookup: &'static str,
    id: i64,
    tenant: Option<&str>,
) -> Result<()> {
    if tenant.is_some() {
        give(tenant);
        return Ok(());
    }
    if !crate::spi::distributed(c)? {
        return Ok(());
    }
    let t = spi::first(spi::exec(c, lookup, &[id.into()])?)
        .map(|r| r.col::<String>(1))
        .transpose()?
        .flatten();
    if let Some(t) = t {
        set_given(&t, false);
    }
    Ok(())
}

/// The default of the `tenant` argument of `credit_authorize` and `credit_hold` (0.13.0): NULL,
/// but from a VOLATILE function instead of a NULL constant. Citus 13.2 plans a delegated
/// function's call by hashing its distribution argument when that is a constant, NULL included
/// (a segmentation fault: citusdata/citus#7242), and does not delegate a call whose arguments
/// hold a volatile function: so a call without `tenant` runs on the node it was sent to, which
/// looks the tenant up ([`enter`]). Granted to PUBLIC: it is part of every caller's query.
#[pg_extern(sql = "
CREATE FUNCTION credit_ledger._tenant_unset() RETURNS text VOLATILE PARALLEL SAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'tenant_unset_wrapper';")]
fn tenant_unset() -> Option<&'static str> {
    None
}
