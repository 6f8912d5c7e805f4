//! `credit_quote`: the price of an action for a wallet and whether it would be approved now,
//! without side effects (a tiered rate from the wallet's position, read without a lock; a
//! wallet with fair use answers from what its period has left; with `degrade`, since 0.9.0,
//! the variant a degrading call would get). `credit_quote_tiers` (in
//! [`crate::tiers`]) shows a tiered price's bands.

use crate::amount;
use crate::authorize::{find_rate, plan, Lanes, Mode, Rate, Request, Wallet};
use crate::catalog as sql;
use crate::error::{or_raise, Kind, LedgerError, Result};
use crate::spi::{self, exec, num, RowExt};
use crate::wallets;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// The wallet (unlocked) and the rate in effect of a quote.
pub(crate) fn quote_rate(c: &mut SpiClient<'_>, r: &Request<'_>) -> Result<(Wallet, Rate)> {
    crate::tenant::enter(c, r.wallet, None)?;
    let row = spi::first(exec(c, sql::WALLET_FOR_QUOTE, &[r.wallet.into()])?)
        .ok_or_else(|| wallets::wallet_missing(r.wallet))?;
    let w = Wallet::from_row(&row)?;
    let card: String = row.req(9)?;
    let rate = find_rate(c, &card, r.action, r.variant, r.wallet)?;
    Ok((w, rate))
}

/// One variant's answer: cost, asset, spendable, reason (None: approved), rate id, variant.
struct Quoted {
    cost: Decimal,
    asset: String,
    spendable: Decimal,
    reason: Option<&'static str>,
    rate_id: i64,
    variant: Option<String>,
}

/// The answer for one variant of the chain, as the wallet stands now.
fn quote_step(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    r: &Request<'_>,
    step: &crate::overage::Step,
) -> Result<Quoted> {
    let rate = &step.rate;
    let cost = match &rate.tiers {
        Some(tiers) => {
            let counter = crate::tiers::counter(c, w.id, r.action, step.variant.as_deref())?;
            let position = counter.peek(c)?;
            crate::tiers::cost(rate.credits, tiers, rate.scale, position, r.quantity)?
        }
        None => amount::cost(r.quantity, rate.credits, rate.scale)?,
    };
    let mut p = plan(c, w, &rate.asset, cost, Mode::Quote, Lanes::Exact)?;
    if let Some(fair) = crate::fair_use::of_wallet(c, w, &rate.asset, true)? {
        // a wallet with fair use: what its period's fair use has left decides
        p.spendable = Some(fair.left());
        p.reason = match (w.frozen, fair.fits(cost)) {
            (true, _) => Some("wallet_frozen"),
            (false, false) => Some("fair_use_exceeded"),
            (false, true) => None,
        };
    }
    let spendable = p.spendable.ok_or_else(|| {
        amount::out_of_range(format!("the spendable credits of wallet \"{}\"", r.wallet))
    })?;
    Ok(Quoted {
        cost,
        asset: rate.asset.clone(),
        spendable,
        reason: p.reason,
        rate_id: rate.id,
        variant: step.variant.clone(),
    })
}

/// What `credit_authorize` would answer now, without side effects: the variant asked for or,
/// with `degrade`, the first affordable variant of its fallback chain (as a degrading call
/// picks it); when none is, the variant asked for with its reason.
fn quote(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: Option<AnyNumeric>,
    variant: Option<&str>,
    degrade: bool,
    tenant: Option<&str>,
) -> Result<Quoted> {
    let tenant = crate::input::opt_name(tenant, "tenant")?;
    let mut r = Request::parse(wallet, action, quantity, variant, None, None, Mode::Quote)?;
    r.degrade = degrade;
    spi::with(|c| {
        crate::tenant::enter(c, r.wallet, tenant)?;
        let row = spi::first(exec(c, sql::WALLET_FOR_QUOTE, &[r.wallet.into()])?)
            .ok_or_else(|| wallets::wallet_missing(r.wallet))?;
        let w = Wallet::from_row(&row)?;
        let card: String = row.req(9)?;
        let chain = crate::overage::chain(c, &card, r.action, r.variant, r.wallet, r.degrade)?;
        let mut first = None;
        for step in &chain {
            let q = quote_step(c, &w, &r, step)?;
            if q.reason.is_none() {
                return Ok(q);
            }
            let goes_on = crate::overage::degradable(q.reason);
            first.get_or_insert(q);
            if !goes_on {
                break;
            }
        }
        first.ok_or_else(|| LedgerError::new(Kind::Internal, "a quote with no rate"))
    })
}

/// The columns of `credit_quote` (0.9.0 on).
type QuoteTable = TableIterator<
    'static,
    (
        name!(cost, AnyNumeric),
        name!(asset, String),
        name!(spendable, AnyNumeric),
        name!(approved, bool),
        name!(reason, Option<String>),
        name!(rate_id, i64),
        name!(priced_variant, Option<String>),
    ),
>;

fn quote_table(q: Quoted) -> QuoteTable {
    TableIterator::once((
        num(q.cost),
        q.asset,
        num(q.spendable),
        q.reason.is_none(),
        q.reason.map(String::from),
        q.rate_id,
        q.variant,
    ))
}

/// Price an action for a wallet without side effects (a tiered rate from the wallet's
/// position now: `credit_quote_tiers` shows the bands); `degrade` (since 0.9.0): the first
/// affordable variant of the fallback chain, named in `priced_variant` (the variant priced);
/// `tenant` (since 0.13.0): the wallet's tenant, which a Citus cluster routes the call by.
#[allow(clippy::type_complexity)]
#[pg_extern(
    name = "credit_quote",
    stable,
    parallel_safe,
    security_definer,
    requires = [tenant::tenant_unset]
)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_quote_v13(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
    degrade: default!(Option<bool>, false),
    tenant: default!(Option<&str>, "credit_ledger._tenant_unset()"),
) -> TableIterator<
    'static,
    (
        name!(cost, AnyNumeric),
        name!(asset, String),
        name!(spendable, AnyNumeric),
        name!(approved, bool),
        name!(reason, Option<String>),
        name!(rate_id, i64),
        name!(priced_variant, Option<String>),
    ),
> {
    let degrade = degrade.unwrap_or(false);
    quote_table(or_raise(quote(
        wallet, action, quantity, variant, degrade, tenant,
    )))
}

/// `credit_quote` as 0.9.0 to 0.12.0 declare it (no `tenant`; symbol `credit_quote_v9_wrapper`).
/// Not in the 0.13.0 SQL.
#[allow(clippy::type_complexity)]
#[pg_extern(sql = false, stable, parallel_safe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_quote_v9(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
    degrade: default!(Option<bool>, false),
) -> TableIterator<
    'static,
    (
        name!(cost, AnyNumeric),
        name!(asset, String),
        name!(spendable, AnyNumeric),
        name!(approved, bool),
        name!(reason, Option<String>),
        name!(rate_id, i64),
        name!(priced_variant, Option<String>),
    ),
> {
    let degrade = degrade.unwrap_or(false);
    quote_table(or_raise(quote(
        wallet, action, quantity, variant, degrade, None,
    )))
}

/// `credit_quote` as 0.8.0 and earlier declare it (no `degrade`, no `variant` column; symbol
/// `credit_quote_wrapper`). Not in the 0.9.0 SQL.
#[pg_extern(sql = false, stable, parallel_safe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_quote(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(cost, AnyNumeric),
        name!(asset, String),
        name!(spendable, AnyNumeric),
        name!(approved, bool),
        name!(reason, Option<String>),
        name!(rate_id, i64),
    ),
> {
    let q = or_raise(quote(wallet, action, quantity, variant, false, None));
    TableIterator::once((
        num(q.cost),
        q.asset,
        num(q.spendable),
        q.reason.is_none(),
        q.reason.map(String::from),
        q.rate_id,
    ))
}
