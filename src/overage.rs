//! The overage menu (since 0.7.0): what a wallet that cannot pay for a call gets instead of a
//! plain decline.
//!
//! **Degrade.** A rate entry may name a `fallback` variant of the same action (`opus → sonnet
//! → haiku`). A call with `degrade => true` is priced along that chain and approves the first
//! variant the wallet can pay; it declines (with the reason of the variant asked for) only when
//! none is affordable. The chain is read from the rates in effect on the wallet's card (own
//! card before `default`, as for any call): it ends at an entry without a fallback, at a
//! fallback that has no rate entry of its own, at a variant already in the chain (a cycle), or
//! after [`MAX_CHAIN`] variants. The authorization records the variant it used (`variant`) and,
//! when that is not the one asked for, `degraded` and `requested_variant`.
//!
//! **Auto top-up.** A wallet's `auto_topup_amount` (per asset, `credit_wallet_overage`) rides on
//! its low-balance threshold: the crossing that writes the `low_balance` event also writes an
//! `auto_topup` event with the amount and an idempotency key unique to that crossing, for the
//! app's payment worker to charge the card and grant with that key. Once per crossing, as the
//! alert (a grant that brings the balance back re-arms both).
//!
//! **Upgrade signals.** `upgrade_at` (ascending period-usage tiers) is checked by `credit_tick`:
//! one `upgrade_suggested` event per tier crossed per period (no cost on the spend path).

use crate::authorize::{find_rate, Rate};
use crate::catalog as sql;
use crate::error::{LedgerError, Result};
use crate::input;
use crate::rate_cache;
use crate::spi::{exec, num};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::spi::SpiClient;
use rust_decimal::Decimal;

/// The longest degrade chain, the variant asked for included.
pub const MAX_CHAIN: usize = 8;

/// Whether the catalog has the overage menu (0.7.0 on): `rates.fallback`.
pub fn catalog_has_fallback() -> bool {
    crate::spi::catalog_has(c"rates", Some(c"fallback"))
}

/// A fallback is a variant name, not the entry's own variant.
pub fn check_fallback(fallback: Option<&str>, variant: Option<&str>, field: &str) -> Result<()> {
    let fallback = input::opt_name(fallback, field)?;
    if fallback.is_some() && fallback == variant {
        return Err(LedgerError::invalid(format!(
            "{field} must name another variant than the entry's own"
        )));
    }
    Ok(())
}

/// One variant of a degrade chain: the variant name the call records and its rate.
pub struct Step {
    pub variant: Option<String>,
    pub rate: Rate,
}

/// The decline reasons a cheaper variant may avoid (the others, such as a frozen wallet, end
/// the chain).
pub fn degradable(reason: Option<&str>) -> bool {
    matches!(
        reason,
        Some(
            "insufficient_credits"
                | "spend_cap_reached"
                | "pool_limit_reached"
                | "fair_use_exceeded"
        )
    )
}

/// The rates of a call: the variant asked for and, when it degrades, each fallback in turn
/// (see the module docs for where the chain ends). A missing rate for the variant asked for is
/// an error, as for any call.
pub fn chain(
    c: &mut SpiClient<'_>,
    card: &str,
    action: &str,
    variant: Option<&str>,
    wallet: &str,
    degrade: bool,
) -> Result<Vec<Step>> {
    let mut out = vec![Step {
        variant: variant.map(String::from),
        rate: find_rate(c, card, action, variant, wallet)?,
    }];
    if !degrade {
        return Ok(out);
    }
    while out.len() < MAX_CHAIN {
        let Some(next) = out.last().and_then(|s| s.rate.fallback.clone()) else {
            break;
        };
        if out
            .iter()
            .any(|s| s.variant.as_deref() == Some(next.as_str()))
        {
            break;
        }
        // only an entry of that very variant (not the action's variant-less entry)
        match rate_cache::lookup(c, card, action, Some(&next))? {
            Some(e) if e.variant.as_deref() == Some(next.as_str()) => out.push(Step {
                variant: Some(next),
                rate: Rate::from(e),
            }),
            _ => break,
        }
    }
    Ok(out)
}

/// Whether the catalog has wallet overage settings (0.7.0 on).
fn catalog_has_settings() -> bool {
    crate::spi::catalog_has(c"wallet_overage", None)
}

/// The `auto_topup` event of a low-balance crossing just announced (see the module docs): a
/// no-op for a wallet without an auto top-up in that asset, or on an older catalog.
pub fn auto_topup(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    wallet: &str,
    asset: &str,
    balance: Decimal,
    threshold: Decimal,
) -> Result<()> {
    if catalog_has_settings() {
        let rows = exec(
            c,
            sql::AUTO_TOPUP_EMIT,
            &[
                wallet_id.into(),
                asset.into(),
                wallet.into(),
                num(balance).into(),
                num(threshold).into(),
            ],
        )?;
        crate::events::notify(c, rows, 1, false)?;
    }
    Ok(())
}

/// The upgrade signals due at `as_of` (credit_tick): a no-op on an older catalog.
pub fn upgrade_signals(c: &mut SpiClient<'_>, as_of: TimestampWithTimeZone) -> Result<()> {
    if catalog_has_settings() {
        exec(c, sql::UPGRADE_SIGNALS, &[as_of.into()])?;
    }
    Ok(())
}
