//! Grants: `credit_grant` — one lot of credits in a wallet.
//!
//! A grant is inserted empty and filled by a `grant` journal entry, so every change of
//! `remaining` goes through the journal. If the wallet owes overdraft debt in the asset, a
//! grant that is effective now settles it first (`settlement` entries: the grant gives, the
//! debt line takes). Locking: the wallet row lock, like every debit.
//!
//! Default priorities by category (lower is consumed first): promotional 10, rollover 20,
//! included 30, refund 40, purchased 50, any other category 100.

use crate::catalog as sql;
use crate::error::{or_raise, LedgerError, Result};
use crate::input;
use crate::ledger::{self, Movement};
use crate::spi::{self, exec, num, RowExt};
use crate::types::JsonbText;
use crate::types::Record;
use crate::{amount, wallets};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// The default priority of a grant category.
pub fn default_priority(category: &str) -> i32 {
    match category {
        "promotional" => 10,
        "rollover" => 20,
        "included" => 30,
        "refund" => 40,
        "purchased" => 50,
        _ => 100,
    }
}

/// The `credit_grant` value of a grant.
pub fn grant_tuple(c: &mut SpiClient<'_>, id: i64) -> Result<Record> {
    let row = spi::first(exec(
        c,
        crate::lanes::pick(sql::GRANT_ROW_V4, sql::GRANT_ROW),
        &[id.into()],
    )?)
    .ok_or_else(|| LedgerError::not_found(format!("grant {id} does not exist")))?;
    let mut t = Record::new("credit_grant");
    t.push(row.col::<i64>(1)?);
    t.push(row.col::<String>(2)?);
    t.push(row.col::<String>(3)?);
    t.push(row.col::<String>(4)?);
    t.push(row.col::<i32>(5)?);
    for i in 6..=8 {
        t.push(row.col::<AnyNumeric>(i)?);
    }
    t.push(row.col::<TimestampWithTimeZone>(9)?);
    t.push(row.col::<TimestampWithTimeZone>(10)?);
    t.push(row.col::<AnyNumeric>(11)?);
    t.push(row.col::<JsonbText>(12)?);
    t.push(row.col::<TimestampWithTimeZone>(13)?);
    Ok(t)
}

/// A validated grant request.
pub struct NewGrant<'a> {
    pub wallet_id: i64,
    pub asset: &'a str,
    pub category: &'a str,
    pub priority: i32,
    pub amount: Decimal,
    pub effective_at: Option<TimestampWithTimeZone>,
    pub expires_at: Option<TimestampWithTimeZone>,
    pub unit_price: Decimal,
    pub key: Option<&'a str>,
    pub hash: Option<i64>,
    pub metadata: Option<JsonbText>,
    pub source: &'a str,
}

/// Insert a grant (the caller holds the wallet lock), journal it and settle debt.
/// Returns the grant id.
pub fn insert(c: &mut SpiClient<'_>, g: NewGrant<'_>) -> Result<i64> {
    insert_as(c, g, "grant", None)
}

/// [`insert`] filled by a `fill` entry (`grant`, or `transfer` for a grant a transfer creates
/// from grant `transfer_of`).
pub fn insert_as(
    c: &mut SpiClient<'_>,
    g: NewGrant<'_>,
    fill: &'static str,
    transfer_of: Option<i64>,
) -> Result<i64> {
    let mut args: Vec<DatumWithOid> = vec![
        g.wallet_id.into(),
        g.asset.into(),
        g.category.into(),
        g.priority.into(),
        num(g.amount).into(),
        g.effective_at.into(),
        g.expires_at.into(),
        num(g.unit_price).into(),
        g.key.into(),
        g.hash.into(),
        g.metadata.into(),
        g.source.into(),
    ];
    let statement = match transfer_of {
        Some(t) => {
            args.push(t.into());
            sql::GRANT_INSERT_TRANSFER
        }
        None => sql::GRANT_INSERT,
    };
    let row = spi::first(exec(c, statement, &args)?).ok_or_else(|| {
        LedgerError::new(
            crate::error::Kind::Internal,
            "grant insert returned nothing",
        )
    })?;
    let id = row.req::<i64>(1)?;
    // (compared here: Citus takes no now() in a RETURNING list)
    // SAFETY: reads the current transaction's start time, as now() does
    let effective_now = row.req::<TimestampWithTimeZone>(2)?.into_inner()
        <= unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    let mut moves = vec![Movement::grant(
        id,
        g.wallet_id,
        fill,
        g.amount,
        Decimal::ZERO,
    )];
    let mut state = ledger::WalletState::load(c, g.wallet_id, g.asset)?;
    if effective_now && state.debt > Decimal::ZERO {
        let settle = state.debt.min(g.amount);
        moves.push(Movement::grant(
            id,
            g.wallet_id,
            "settlement",
            -settle,
            Decimal::ZERO,
        ));
        moves.push(Movement::debt(g.wallet_id, "settlement", settle));
        state.debt -= settle;
    }
    ledger::apply(c, &moves, g.asset, None, Some(g.wallet_id), None)?;
    if crate::lanes::catalog_has_lanes() {
        let lanes = spi::first(exec(c, sql::WALLET_LANES, &[g.wallet_id.into()])?)
            .map(|r| r.req::<i32>(1))
            .transpose()?
            .unwrap_or(1);
        if lanes > 1 {
            // a wallet with lanes: the grant's credits go to its lanes at once
            crate::lanes::spread(c, g.wallet_id, g.asset, lanes, Some(id))?;
        }
    }
    if state.changed() || state.below_threshold {
        // re-arm the low-balance alert once the wallet is back at or above its threshold
        if state.below_threshold {
            let threshold = ledger::threshold(c, g.wallet_id)?;
            let balance = ledger::balance(c, g.wallet_id, g.asset)?;
            if threshold.is_none_or(|t| balance >= t) {
                state.below_threshold = false;
            }
        }
        state.save(c)?;
    }
    Ok(id)
}

fn micros(t: &Option<TimestampWithTimeZone>) -> Option<i64> {
    t.map(|v| v.into_inner())
}

/// Grant credits to a wallet. Returns the grant. With an idempotency key, a repeat with the
/// same arguments returns the first grant and writes nothing.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_grant(
    wallet: Option<&str>,
    amount: Option<AnyNumeric>,
    asset: default!(Option<&str>, "'credits'"),
    category: default!(Option<&str>, "'purchased'"),
    priority: default!(Option<i32>, "NULL"),
    expires_at: default!(Option<TimestampWithTimeZone>, "NULL"),
    effective_at: default!(Option<TimestampWithTimeZone>, "now()"),
    unit_price: default!(Option<AnyNumeric>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
) -> pgrx::composite_type!('static, "credit_grant") {
    or_raise((|| -> Result<Record> {
        let wallet = input::name(wallet, "wallet")?;
        let asset = input::name(asset, "asset")?;
        let category = input::name(category, "category")?;
        let amount_text = amount
            .as_ref()
            .map(|a| a.to_string())
            .ok_or_else(|| LedgerError::invalid("amount must not be null"))?;
        let amount = amount::positive(amount::parse(&amount_text, "amount")?, "amount")?;
        let unit_price = match unit_price {
            Some(p) => amount::non_negative(spi::to_dec(&p, "unit_price")?, "unit_price")?,
            None => Decimal::ZERO,
        };
        let key = input::key(idempotency_key)?;
        let metadata_value = input::metadata(metadata.as_ref().map(|j| j.0.as_str()))?;
        let now = spi::transaction_start();
        if effective_at.is_some_and(|e| !e.is_finite())
            || expires_at.is_some_and(|e| !e.is_finite())
        {
            return Err(LedgerError::invalid(
                "effective_at and expires_at must be finite timestamps",
            ));
        }
        let priority = priority.unwrap_or_else(|| default_priority(category));
        let hash = key.map(|_| {
            input::fingerprint(&[
                "grant",
                &amount.to_string(),
                asset,
                category,
                &priority.to_string(),
                &format!("{:?}", micros(&expires_at)),
                &format!(
                    "{:?}",
                    micros(&effective_at)
                        .filter(|_| idempotency_effective_given(effective_at, now))
                ),
                &unit_price.to_string(),
                &input::json_fingerprint(&metadata_value),
            ])
        });
        spi::with(|c| {
            crate::tenant::enter(c, wallet, None)?;
            let w = spi::first(exec(c, sql::WALLET_LOCK_KEY, &[wallet.into()])?)
                .ok_or_else(|| wallets::wallet_missing(wallet))?;
            let wallet_id = w.req::<i64>(1)?;
            crate::lanes::exclusive(c, wallet_id)?;
            crate::corrections::refuse_closed(c, wallet_id, wallet)?;
            if crate::runs::catalog_has_runs()
                && spi::first(exec(c, sql::WALLET_IS_RUN, &[wallet_id.into()])?).is_some()
            {
                // a run's credits are slices of the grants its budget came from
                return Err(LedgerError::invalid(format!(
                    "wallet \"{wallet}\" is an agent run's wallet"
                ))
                .hint(
                    "grant to the wallet that opened the run, or open a run with a larger budget",
                ));
            }
            if let (Some(k), Some(h)) = (key, hash) {
                if let Some(row) =
                    spi::first(exec(c, sql::GRANT_BY_KEY, &[wallet_id.into(), k.into()])?)
                {
                    if row.col::<i64>(2)? != Some(h) {
                        return Err(LedgerError::key_reused(k));
                    }
                    let id = row.req::<i64>(1)?;
                    return grant_tuple(c, id);
                }
            }
            // checked after the key: a retry of a grant whose expiry has passed since the first
            // call must return the first result, not fail
            let eff = micros(&effective_at).unwrap_or(now);
            if let Some(exp) = micros(&expires_at) {
                if exp <= eff {
                    return Err(
                        LedgerError::invalid("expires_at must be after effective_at").detail(
                            format!(
                                "expires_at {} is not after effective_at {}",
                                fmt_ts(expires_at),
                                fmt_ts(effective_at)
                            ),
                        ),
                    );
                }
                if exp <= now {
                    return Err(LedgerError::invalid("expires_at must be in the future"));
                }
            }
            let scale = wallets::asset_scale(c, asset)?;
            let amount = amount::fits_scale(amount, scale, "amount", asset)?;
            let id = insert(
                c,
                NewGrant {
                    wallet_id,
                    asset,
                    category,
                    priority,
                    amount,
                    effective_at,
                    expires_at,
                    unit_price,
                    key,
                    hash,
                    metadata,
                    source: "api",
                },
            )?;
            grant_tuple(c, id)
        })
    })())
    .build()
}

/// The default `effective_at` is the transaction's now(), which differs between retries, so
/// it is left out of the request fingerprint.
fn idempotency_effective_given(effective_at: Option<TimestampWithTimeZone>, now: i64) -> bool {
    effective_at.is_some_and(|e| e.into_inner() != now)
}

fn fmt_ts(t: Option<TimestampWithTimeZone>) -> String {
    t.map(|v| v.to_string()).unwrap_or_else(|| "now".into())
}
