//! `credit_wallet_close` (since 0.6.0): release a wallet's open holds, close its open runs,
//! then expire (breakage) or transfer every credit left; the wallet is then frozen and closed
//! for good (55000 on any write). One operation of [`crate::corrections`], whose helpers it uses.

use crate::authorize;
use crate::catalog as sql;
use crate::corrections::{
    insert_op, lock_pair, move_rows, op_done, op_rows_to, peek, reason_of, refuse_closed, replay,
    Naming, NewOp, Receiver,
};
use crate::error::{or_raise, LedgerError, Result};
use crate::input;
use crate::ledger::{self, Movement};
use crate::spi::{self, exec, RowExt};
use crate::types::Record;
use pgrx::prelude::*;
use rust_decimal::Decimal;

/// A row a close empties: (row, home grant, free credits, expired).
type CloseRow = (i64, i64, Decimal, bool);

/// Close a wallet: release its open holds, close its open runs, then expire (breakage) or
/// transfer every credit left; it accepts nothing more and keeps its history.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_wallet_close(
    wallet: Option<&str>,
    disposition: default!(Option<&str>, "'expire'"),
    to_wallet: default!(Option<&str>, "NULL"),
    reason: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
) -> SetOfIterator<'static, pgrx::composite_type!('static, "credit_operation")> {
    let rows = or_raise((|| {
        let wallet = input::name(wallet, "wallet")?;
        let disposition = input::name(disposition, "disposition")?;
        let to = input::opt_name(to_wallet, "to_wallet")?;
        let reason = reason_of(reason)?;
        let key = input::key(idempotency_key)?;
        match (disposition, to) {
            ("expire", None) | ("transfer", Some(_)) => {}
            ("expire", Some(_)) => {
                return Err(LedgerError::invalid(
                    "to_wallet is only for disposition 'transfer'",
                ))
            }
            ("transfer", None) => {
                return Err(LedgerError::invalid(
                    "disposition 'transfer' needs a to_wallet",
                ))
            }
            (d, _) => {
                return Err(
                    LedgerError::invalid(format!("disposition \"{d}\" is not known"))
                        .hint("use 'expire' (the credits left are breakage) or 'transfer'"),
                )
            }
        }
        if to == Some(wallet) {
            return Err(LedgerError::invalid(format!(
                "wallet and to_wallet are both \"{wallet}\""
            )));
        }
        let hash = input::fingerprint(&[
            "close",
            disposition,
            to.unwrap_or("\u{1}"),
            reason.unwrap_or("\u{1}"),
        ]);
        spi::with(|c| {
            let other = match to {
                None => {
                    crate::tenant::enter(c, wallet, None)?;
                    None
                }
                Some(t) => crate::tenant::enter_pair(c, wallet, t)?,
            };
            let other = other.as_deref();
            let receiver = other.and(to);
            let pw = peek(c, wallet)?;
            let pt = to
                .map(|t| crate::tenant::on_other(c, other, |c| peek(c, t)).map(|p| (t, p)))
                .transpose()?;
            match &pt {
                Some((t, p)) => lock_pair(c, (wallet, &pw), (t, p), other)?,
                None => {
                    authorize::lock_whole(c, wallet)?;
                }
            }
            // a free member's spends in flight hold only its pool's lanes
            crate::lanes::exclusive_member_pool(c, pw.id)?;
            if let Some(id) = replay(c, pw.id, key, hash)? {
                return op_rows_to(c, id, receiver);
            }
            refuse_closed(c, pw.id, wallet)?;
            if let Some((t, p)) = &pt {
                crate::tenant::on_other(c, other, |c| refuse_closed(c, p.id, t))?;
            }
            let members: Vec<String> = exec(c, sql::OPEN_MEMBERS, &[pw.id.into()])?
                .into_iter()
                .map(|r| r.req::<String>(1))
                .collect::<Result<_>>()?;
            if !members.is_empty() {
                return Err(LedgerError::wrong_state(format!(
                    "wallet \"{wallet}\" has members that are not closed"
                ))
                .detail(format!("members: {}", members.join(", ")))
                .hint("close the members first (their credits may go to this pool)"));
            }
            // what is still in flight ends first: runs give their budgets back, holds release
            let runs: Vec<i64> = exec(c, sql::OPEN_RUNS_OF, &[pw.id.into()])?
                .into_iter()
                .map(|r| r.req::<i64>(1))
                .collect::<Result<_>>()?;
            for run in runs {
                crate::runs::close(c, run, "closed")?;
            }
            let holds: Vec<i64> = exec(c, sql::OPEN_HOLDS_OF, &[pw.id.into()])?
                .into_iter()
                .map(|r| r.req::<i64>(1))
                .collect::<Result<_>>()?;
            for h in holds {
                crate::holds::release_closing(c, h, "wallet_closed", "wallet closed")?;
            }
            let id = insert_op(
                c,
                &NewOp {
                    kind: "close",
                    wallet_id: pw.id,
                    to_wallet_id: pt.as_ref().map(|p| p.1.id),
                    grant_id: None,
                    asset: None,
                    amount: None,
                    disposition: Some(disposition),
                    reason,
                    key,
                    hash,
                    metadata: None,
                },
            )?;
            let naming = Naming::new(id);
            let mut by_asset: Vec<(String, Vec<CloseRow>)> = Vec::new();
            for r in exec(c, sql::CLOSE_ROWS, &[pw.id.into()])? {
                let asset: String = r.req(3)?;
                let free = r.dec(4)? - r.dec(5)?;
                let row = (r.req::<i64>(1)?, r.req::<i64>(2)?, free, r.req::<bool>(6)?);
                match by_asset.iter_mut().find(|a| a.0 == asset) {
                    Some(a) => a.1.push(row),
                    None => by_asset.push((asset, vec![row])),
                }
            }
            let note = reason.or(Some("wallet closed"));
            let mut moved = Decimal::ZERO;
            for (asset, rows) in &by_asset {
                let (expire, keep): (Vec<&CloseRow>, Vec<_>) = rows
                    .iter()
                    .filter(|r| r.2 > Decimal::ZERO)
                    .partition(|r| r.3 || pt.is_none());
                let moves: Vec<Movement> = expire
                    .iter()
                    .map(|r| Movement::grant(r.0, pw.id, "expiry", -r.2, Decimal::ZERO))
                    .collect();
                ledger::apply(c, &moves, asset, None, Some(pw.id), note)?;
                moved += expire.iter().map(|r| r.2).sum::<Decimal>();
                if let Some((_, p)) = &pt {
                    let rows: Vec<(i64, i64, Decimal)> =
                        keep.iter().map(|r| (r.0, r.1, r.2)).collect();
                    let to = Receiver { id: p.id, other };
                    moved += move_rows(c, pw.id, &to, asset, &rows, true, note)?;
                }
            }
            // done: what left the wallet, summed over its assets (credit_wallet_close returns
            // it per asset)
            op_done(c, id, moved, Decimal::ZERO, false)?;
            drop(naming);
            exec(c, sql::WALLET_CLOSE, &[pw.id.into()])?;
            exec(c, sql::ALLOWANCES_DROP, &[pw.id.into()])?;
            let payload = serde_json::json!({
                "event": "wallet_closed",
                "wallet": wallet,
                "disposition": disposition,
                "to_wallet": to,
                "operation_id": id,
            });
            crate::events::emit(c, "wallet_closed", pw.id, None, &payload)?;
            op_rows_to(c, id, receiver)
        })
    })());
    SetOfIterator::new(rows.into_iter().map(Record::build))
}
