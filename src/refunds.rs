//! Refunds: `credit_refund` gives credits of an approved debit or a captured hold back to the
//! grants that paid for it, in reverse consumption order, never more than was debited in
//! total across any number of partial refunds.
//!
//! Rules: a part that was taken as overdraft debt is refunded first (it reduces the debt; if
//! the debt was settled meanwhile, that part becomes a new `refund` grant). Credits whose
//! original grant has expired meanwhile go back to that grant and expire at once (`refund`
//! then `expiry` entries: breakage), exactly as if they had never been spent.

use crate::allocation::{self, Take};
use crate::amount;
use crate::catalog as sql;
use crate::error::{or_raise, Kind, LedgerError, Result};
use crate::grants::{self, NewGrant};
use crate::holds;
use crate::input;
use crate::ledger::{self, Movement, WalletState};
use crate::spi::{self, exec, num, RowExt};
use crate::types::JsonbText;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

type RefundRow = (i64, i64, AnyNumeric, AnyNumeric, AnyNumeric);

/// The columns of `credit_refund`.
type RefundTable = TableIterator<
    'static,
    (
        name!(refund_id, i64),
        name!(authorization_id, i64),
        name!(amount, AnyNumeric),
        name!(refunded_total, AnyNumeric),
        name!(balance, AnyNumeric),
    ),
>;

/// Refund credits of an authorization to the grants that paid for it; `tenant` (since 0.13.0):
/// the authorization's wallet's tenant, which a Citus cluster routes the call by.
#[pg_extern(
    name = "credit_refund",
    volatile,
    parallel_unsafe,
    security_definer,
    requires = [tenant::tenant_unset]
)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_refund_v13(
    authorization_id: Option<i64>,
    amount: default!(Option<AnyNumeric>, "NULL"),
    reason: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    tenant: default!(Option<&str>, "credit_ledger._tenant_unset()"),
) -> TableIterator<
    'static,
    (
        name!(refund_id, i64),
        name!(authorization_id, i64),
        name!(amount, AnyNumeric),
        name!(refunded_total, AnyNumeric),
        name!(balance, AnyNumeric),
    ),
> {
    refund(
        authorization_id,
        amount,
        reason,
        idempotency_key,
        metadata,
        tenant,
    )
}

/// `credit_refund` as 0.12.0 and earlier declare it (no `tenant`; symbol
/// `credit_refund_wrapper`). Not in the 0.13.0 SQL.
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_refund(
    authorization_id: Option<i64>,
    amount: default!(Option<AnyNumeric>, "NULL"),
    reason: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(refund_id, i64),
        name!(authorization_id, i64),
        name!(amount, AnyNumeric),
        name!(refunded_total, AnyNumeric),
        name!(balance, AnyNumeric),
    ),
> {
    refund(
        authorization_id,
        amount,
        reason,
        idempotency_key,
        metadata,
        None,
    )
}

fn refund(
    authorization_id: Option<i64>,
    amount: Option<AnyNumeric>,
    reason: Option<&str>,
    idempotency_key: Option<&str>,
    metadata: Option<JsonbText>,
    tenant: Option<&str>,
) -> RefundTable {
    let row = or_raise((|| {
        let tenant = input::opt_name(tenant, "tenant")?;
        let id = authorization_id
            .ok_or_else(|| LedgerError::invalid("authorization_id must not be null"))?;
        let requested = amount
            .map(|a| amount::positive(amount::parse(&a.to_string(), "amount")?, "amount"))
            .transpose()?;
        let reason = input::text(reason, "reason")?;
        let key = input::key(idempotency_key)?;
        let metadata_value = input::metadata(metadata.as_ref().map(|j| j.0.as_str()))?;
        let hash = input::fingerprint(&[
            "refund",
            &id.to_string(),
            &requested.map(|a| a.to_string()).unwrap_or_default(),
            reason.unwrap_or(""),
            &input::json_fingerprint(&metadata_value),
        ]);
        spi::with(|c| -> Result<RefundRow> {
            crate::tenant::enter_row(c, crate::catalog_tenants::AUTHORIZATION_TENANT, id, tenant)?;
            // a refund of overdraft debt writes the wallet's debt counter: its row is taken
            // (with every lane, in the exact path's order) even when it has lanes and no
            // counters; any other refund takes only the lanes of the slices it moves
            let in_debt = spi::first(exec(c, sql::AUTH_IN_DEBT, &[id.into()])?)
                .map(|r| r.col::<bool>(1))
                .transpose()?
                .flatten()
                .unwrap_or(false);
            let (w, a) = holds::lock_for(c, id, false, None, in_debt)?
                .ok_or_else(|| LedgerError::new(Kind::Internal, "lock skipped"))?;
            if a.fair_use {
                return Err(LedgerError::wrong_state(format!(
                    "authorization {id} was paid by fair use: it took no credits to refund"
                )));
            }
            if let Some(k) = key {
                if let Some(prev) =
                    spi::first(exec(c, sql::REFUND_BY_KEY, &[w.id.into(), k.into()])?)
                {
                    if prev.col::<i64>(2)? != Some(hash) {
                        return Err(LedgerError::key_reused(k));
                    }
                    let total = spi::first(exec(
                        c,
                        sql::AUTH_REFUNDED,
                        &[id.into(), num(Decimal::ZERO).into()],
                    )?)
                    .map(|r| r.dec(1))
                    .transpose()?
                    .unwrap_or_default();
                    let balance = ledger::balance(c, w.id, &a.asset)?;
                    return Ok((
                        prev.req(1)?,
                        id,
                        num(prev.dec(4)?),
                        num(total),
                        num(balance),
                    ));
                }
            }
            // credits never go back into a closed wallet (nor through a run of one)
            crate::corrections::refuse_closed_owner(c, w.id)?;
            let refundable_state = matches!(
                (a.kind.as_str(), a.status.as_str()),
                ("debit", "approved") | ("hold", "captured")
            );
            if !refundable_state {
                return Err(LedgerError::wrong_state(format!(
                    "authorization {id} cannot be refunded: it is {}",
                    a.status
                ))
                .hint("only approved debits and captured holds can be refunded"));
            }
            let table = exec(c, sql::PAID_PARTS, &[id.into()])?;
            let mut paid: Vec<Take> = Vec::new();
            let mut debt_line: Vec<bool> = Vec::new();
            let mut returned: Vec<Decimal> = Vec::new();
            let mut expired: Vec<bool> = Vec::new();
            for r in table {
                let gid = r.col::<i64>(1)?;
                paid.push(Take {
                    grant_id: gid.unwrap_or(0),
                    wallet_id: r.req(2)?,
                    amount: r.dec(3)?,
                });
                debt_line.push(gid.is_none());
                returned.push(r.dec(4)?);
                expired.push(r.col::<bool>(5)?.unwrap_or(false));
            }
            let total_paid: Decimal = paid.iter().map(|t| t.amount).sum();
            let refundable = total_paid - a.refunded;
            if refundable <= Decimal::ZERO {
                return Err(LedgerError::wrong_state(format!(
                    "authorization {id} is already fully refunded"
                ))
                .detail(format!("refunded {} of {}", a.refunded, total_paid)));
            }
            let want = requested.unwrap_or(refundable);
            let want = amount::fits_scale(want, a.scale, "amount", &a.asset)?;
            if want > refundable {
                return Err(LedgerError::invalid(format!(
                    "refund amount {want} exceeds what remains refundable on authorization {id}"
                ))
                .detail(format!(
                    "debited {total_paid}, already refunded {}, refundable {refundable}",
                    a.refunded
                )));
            }
            let (back, _) = allocation::give_back(&paid, &returned, want);
            let mut moves = Vec::new();
            // a spend cap sliced over the wallet's lanes counts on the lanes (given back below)
            let sliced = crate::lane_caps::sliced(&w);
            let debt = debt_line.iter().any(|d| *d);
            // a wallet with lanes and no counters whose row this refund does not hold (no
            // debt to give back) has no period counters anything reads: none are written
            let counted = w.tracked && (sliced || !holds::row_unlocked(&w));
            let mut state = if counted || debt {
                Some(WalletState::load(c, w.id, &a.asset)?)
            } else {
                None
            };
            let mut new_grant = Decimal::ZERO;
            let mut pool = Decimal::ZERO;
            for part in &back {
                let i = paid
                    .iter()
                    .position(|t| t.grant_id == part.grant_id && t.wallet_id == part.wallet_id)
                    .unwrap_or(0);
                if debt_line[i] {
                    let s = state
                        .as_mut()
                        .ok_or_else(|| LedgerError::new(Kind::Internal, "no wallet state"))?;
                    let cancel = part.amount.min(s.debt);
                    if cancel > Decimal::ZERO {
                        moves.push(Movement::debt(w.id, "refund", cancel));
                        s.debt -= cancel;
                    }
                    new_grant += part.amount - cancel;
                } else {
                    moves.push(Movement::grant(
                        part.grant_id,
                        part.wallet_id,
                        "refund",
                        part.amount,
                        Decimal::ZERO,
                    ));
                    if expired[i] {
                        moves.push(Movement::grant(
                            part.grant_id,
                            part.wallet_id,
                            "expiry",
                            -part.amount,
                            Decimal::ZERO,
                        ));
                    }
                    if part.wallet_id != w.id {
                        pool += part.amount;
                    }
                }
            }
            ledger::apply(c, &moves, &a.asset, Some(id), Some(w.id), reason)?;
            // a call of a run that has closed: the credits go on to the rows the run came from
            crate::runs::after_refund(c, w.id)?;
            if let Some(s) = state.as_mut() {
                let less = |counter: Decimal, x: Decimal, what: &str| {
                    amount::sub(counter, x)
                        .map(|v| v.max(Decimal::ZERO))
                        .ok_or_else(|| amount::out_of_range(format!("the {what} of the wallet")))
                };
                // a limited member's draw goes back to the room of the pool lane it took (held
                // here), when it has rooms (crate::member_rooms)
                let roomed = match w.parent_id {
                    Some(pid) if !sliced && !debt && want == pool => {
                        crate::member_rooms::give_back(c, &w, pid, &a.asset, Some(id), want)?
                    }
                    _ => false,
                };
                if sliced {
                    crate::lane_caps::give_back(c, w.id, &a.asset, Some(id), want)?;
                } else if !roomed {
                    s.period_spent = less(s.period_spent, want, "period spend")?;
                }
                if !roomed {
                    s.pool_drawn = less(s.pool_drawn, pool, "pool draw")?;
                }
                s.save(c)?;
            }
            if new_grant > Decimal::ZERO {
                grants::insert(
                    c,
                    NewGrant {
                        wallet_id: w.id,
                        asset: &a.asset,
                        category: "refund",
                        priority: grants::default_priority("refund"),
                        amount: new_grant,
                        effective_at: None,
                        expires_at: None,
                        unit_price: Decimal::ZERO,
                        key: None,
                        hash: None,
                        metadata: None,
                        source: "refund",
                    },
                )?;
            }
            let args: Vec<DatumWithOid> = vec![
                id.into(),
                w.id.into(),
                num(want).into(),
                reason.into(),
                key.into(),
                Some(hash).into(),
                metadata.clone().into(),
            ];
            let refund_id = spi::first(exec(c, sql::REFUND_INSERT, &args)?)
                .map(|r| r.req::<i64>(1))
                .transpose()?
                .ok_or_else(|| {
                    LedgerError::new(Kind::Internal, "refund insert returned nothing")
                })?;
            let total = spi::first(exec(c, sql::AUTH_REFUNDED, &[id.into(), num(want).into()])?)
                .map(|r| r.dec(1))
                .transpose()?
                .unwrap_or_default();
            let balance = ledger::balance(c, w.id, &a.asset)?;
            Ok((refund_id, id, num(want), num(total), num(balance)))
        })
    })());
    TableIterator::once(row)
}
