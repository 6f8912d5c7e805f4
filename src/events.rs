//! Durable events (since 0.6.0 for every kind but `low_balance`): a row of
//! `credit_ledger.events` written in the same transaction as its cause, and a NOTIFY on channel
//! `credit_ledger` that carries only the event's id (any role may LISTEN). Consumers read them
//! in order with `credit_events(after_id, max_rows)` and record progress with
//! `credit_events_ack(consumer, up_to)`; see docs/concepts.md "Corrections, transfers, wallet close, events and statements".

use crate::catalog as sql;
use crate::error::Result;
use crate::spi::{exec, RowExt, Rows};
use pgrx::spi::SpiClient;

/// After a statement that wrote events ([`crate::spi::NOTIFY_CALL`]): on a ledger Citus
/// distributes, where the statement returned the events' ids (column `col`: one text each, or
/// an array of them) instead of notifying them on their shard, notify them here when this is
/// the coordinator, where the listeners are (a routed call, a sweep). A call Citus delegated to
/// a worker notifies nothing: a NOTIFY there reaches no listener and fails a two-phase commit.
/// Its events are rows as everywhere: consumers read them with `credit_events`. On one node the
/// statement notified.
pub fn notify(c: &mut SpiClient<'_>, rows: Rows, col: usize, array: bool) -> Result<()> {
    if !crate::spi::distributed(c)? || crate::citus::on_worker(c)? {
        return Ok(());
    }
    let mut ids = Vec::new();
    for r in rows {
        if array {
            ids.extend(r.col::<Vec<String>>(col)?.unwrap_or_default());
        } else if let Some(id) = r.col::<String>(col)? {
            ids.push(id);
        }
    }
    for id in ids {
        exec(c, sql::NOTIFY, &[id.into()])?;
    }
    Ok(())
}

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
    let rows = exec(
        c,
        sql::EVENT_EMIT,
        &[
            kind.into(),
            wallet_id.into(),
            asset.into(),
            payload.to_string().into(),
        ],
    )?;
    notify(c, rows, 1, false)
}

/// One `grant_expired` event per grant whose rows `moves` expired (the sweep).
pub fn grants_expired(c: &mut SpiClient<'_>, moves: &[crate::ledger::Movement]) -> Result<()> {
    if moves.is_empty() || !crate::corrections::catalog_has_operations() {
        return Ok(());
    }
    let ids: Vec<Option<i64>> = moves.iter().map(|m| m.grant_id).collect();
    let amounts: Vec<pgrx::AnyNumeric> = moves.iter().map(|m| crate::spi::num(-m.amount)).collect();
    let rows = exec(c, sql::EVENTS_GRANTS_EXPIRED, &[ids.into(), amounts.into()])?;
    notify(c, rows, 1, false)
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
    let rows = exec(
        c,
        sql::EVENT_ONCE_PER_PERIOD,
        &[
            reason.into(),
            wallet_id.into(),
            asset.into(),
            payload.to_string().into(),
        ],
    )?;
    notify(c, rows, 1, false)
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
    // read here, not in the statement: on a distributed ledger the statement runs on the
    // workers, which do not see the caller's setting
    let notice = expiring_notice();
    let rows = exec(
        c,
        sql::EVENTS_GRANTS_EXPIRING,
        &[as_of.into(), notice.into()],
    )?;
    let n = match rows.first_row() {
        Some(r) => r.req::<i64>(1)?,
        None => 0,
    };
    notify(c, rows, 2, true)?;
    Ok(n)
}

/// The caller's `credit_ledger.expiring_notice` (an interval; unset or empty: 7 days).
fn expiring_notice() -> String {
    // SAFETY: reads a setting by name; missing_ok returns NULL for a setting never set, and
    // the string is copied before anything else runs
    let value = unsafe {
        let p =
            pgrx::pg_sys::GetConfigOption(c"credit_ledger.expiring_notice".as_ptr(), true, false);
        (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    value
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "7 days".to_string())
}

/// Delete the events past retention that every consumer acknowledged (credit_tick).
pub fn trim(c: &mut SpiClient<'_>) -> Result<()> {
    if crate::corrections::catalog_has_operations() {
        exec(c, sql::EVENTS_TRIM, &[])?;
    }
    Ok(())
}
