//! `credit_quote`: the price of an action for a wallet and whether it would be approved now,
//! without side effects (a tiered rate from the wallet's position, read without a lock; a
//! wallet with fair use answers from what its period has left). `credit_quote_tiers` (in
//! [`crate::tiers`]) shows a tiered price's bands.

use crate::amount;
use crate::authorize::{find_rate, plan, Lanes, Mode, Rate, Request, Wallet};
use crate::catalog as sql;
use crate::error::{or_raise, Result};
use crate::spi::{self, exec, num, RowExt};
use crate::wallets;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;

/// The wallet (unlocked) and the rate in effect of a quote.
pub(crate) fn quote_rate(c: &mut SpiClient<'_>, r: &Request<'_>) -> Result<(Wallet, Rate)> {
    let row = spi::first(exec(c, sql::WALLET_FOR_QUOTE, &[r.wallet.into()])?)
        .ok_or_else(|| wallets::wallet_missing(r.wallet))?;
    let w = Wallet::from_row(&row)?;
    let card: String = row.req(9)?;
    let rate = find_rate(c, &card, r.action, r.variant, r.wallet)?;
    Ok((w, rate))
}

/// Price an action for a wallet without side effects (a tiered rate from the wallet's
/// position now: `credit_quote_tiers` shows the bands).
#[pg_extern(stable, parallel_safe, security_definer)]
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
    let row = or_raise((|| {
        let r = Request::parse(wallet, action, quantity, variant, None, None, Mode::Quote)?;
        spi::with(|c| {
            let (w, rate) = quote_rate(c, &r)?;
            let cost = match &rate.tiers {
                Some(tiers) => {
                    let counter = crate::tiers::counter(c, w.id, r.action, r.variant)?;
                    let position = counter.peek(c)?;
                    crate::tiers::cost(rate.credits, tiers, rate.scale, position, r.quantity)?
                }
                None => amount::cost(r.quantity, rate.credits, rate.scale)?,
            };
            let mut p = plan(c, &w, &rate.asset, cost, Mode::Quote, Lanes::Exact)?;
            if let Some(fair) = crate::fair_use::of_wallet(c, &w, &rate.asset, true)? {
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
            Ok((
                num(cost),
                rate.asset,
                num(spendable),
                p.reason.is_none(),
                p.reason.map(String::from),
                rate.id,
            ))
        })
    })());
    TableIterator::once(row)
}
