//! Durable events (since 0.6.0 for every kind but `low_balance`): a row of
//! `credit_ledger.events` written in the same transaction as its cause, and a NOTIFY on channel
//! `credit_ledger` that carries only the event's id (any role may LISTEN). Consumers read them
//! in order with `credit_events(after_id, max_rows)` and record progress with
//! `credit_events_ack(consumer, up_to)`; see docs/concepts.md "Corrections, transfers, wallet close, events and statements".

use crate::catalog as sql;
use crate::error::Result;
use crate::spi::exec;
use pgrx::spi::SpiClient;

/// Record event `kind` of wallet `wallet_id` (asset: None for a wallet-wide event). A no-op
/// on a catalog before 0.6.0.
pub fn emit(
    c: &mut SpiClient<'_>,
    kind: &str,
    wallet_id: i64,
    asset: Option<&str>,
    payload: &serde_json::Value,
) -> Result<()> {
    if !crate::corrections::catalog_has_operations() {
        return Ok(());
    }
    exec(
        c,
        sql::EVENT_EMIT,
        &[
            kind.into(),
            wallet_id.into(),
            asset.into(),
            payload.to_string().into(),
        ],
    )?;
    Ok(())
}

/// One `grant_expired` event per grant whose rows `moves` expired (the sweep).
pub fn grants_expired(c: &mut SpiClient<'_>, moves: &[crate::ledger::Movement]) -> Result<()> {
    if moves.is_empty() || !crate::corrections::catalog_has_operations() {
        return Ok(());
    }
    let ids: Vec<Option<i64>> = moves.iter().map(|m| m.grant_id).collect();
    let amounts: Vec<pgrx::AnyNumeric> = moves.iter().map(|m| crate::spi::num(-m.amount)).collect();
    exec(c, sql::EVENTS_GRANTS_EXPIRED, &[ids.into(), amounts.into()])?;
    Ok(())
}

/// `spend_cap_reached` or `pool_limit_reached` of a wallet: the first decline of the wallet's
/// period with that reason writes the event, later ones in the period do not.
pub fn limit_reached(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    wallet: &str,
    asset: &str,
    reason: &str,
    authorization_id: i64,
) -> Result<()> {
    if !crate::corrections::catalog_has_operations() {
        return Ok(());
    }
    let payload = serde_json::json!({
        "event": reason,
        "wallet": wallet,
        "asset": asset,
        "authorization_id": authorization_id,
    });
    exec(
        c,
        sql::EVENT_ONCE_PER_PERIOD,
        &[
            reason.into(),
            wallet_id.into(),
            asset.into(),
            payload.to_string().into(),
        ],
    )?;
    Ok(())
}

/// `grant_expiring` events for the grants that expire within `credit_ledger.expiring_notice`
/// (default 7 days) after `as_of` and have not been announced (credit_tick). Returns how many.
pub fn grants_expiring(
    c: &mut SpiClient<'_>,
    as_of: pgrx::datum::TimestampWithTimeZone,
) -> Result<i64> {
    if !crate::corrections::catalog_has_operations() {
        return Ok(0);
    }
    let n = crate::spi::first(exec(c, sql::EVENTS_GRANTS_EXPIRING, &[as_of.into()])?)
        .map(|r| crate::spi::RowExt::req::<i64>(&r, 1))
        .transpose()?
        .unwrap_or(0);
    Ok(n)
}

/// Delete the events past retention that every consumer acknowledged (credit_tick).
pub fn trim(c: &mut SpiClient<'_>) -> Result<()> {
    if crate::corrections::catalog_has_operations() {
        exec(c, sql::EVENTS_TRIM, &[])?;
    }
    Ok(())
}
