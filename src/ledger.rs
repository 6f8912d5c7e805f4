//! Shared ledger mechanics: grant movements and their journal entries, the per-wallet running
//! state (debt, period counters, alert latch), balances and low-balance alerts.
//!
//! Every change of a grant's `remaining` or `held` is a [`Movement`] applied by [`apply`] (or by
//! the authorization write), which updates the grant and appends one journal entry, in one
//! statement. The caller always holds the lock of every wallet whose grants move.

use crate::catalog as sql;
use crate::error::{Kind, LedgerError, Result};
use crate::spi::{self, exec, num, RowExt};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// One change to a grant (or, with `grant_id` None, to the wallet's overdraft debt line).
#[derive(Debug, Clone, PartialEq)]
pub struct Movement {
    pub grant_id: Option<i64>,
    pub wallet_id: i64,
    pub kind: &'static str,
    /// Change of `remaining` (debt line: negative = debt taken, positive = debt settled).
    pub amount: Decimal,
    /// Change of `held`.
    pub held: Decimal,
}

impl Movement {
    pub fn grant(
        grant_id: i64,
        wallet_id: i64,
        kind: &'static str,
        amount: Decimal,
        held: Decimal,
    ) -> Self {
        Movement {
            grant_id: Some(grant_id),
            wallet_id,
            kind,
            amount,
            held,
        }
    }
    pub fn debt(wallet_id: i64, kind: &'static str, amount: Decimal) -> Self {
        Movement {
            grant_id: None,
            wallet_id,
            kind,
            amount,
            held: Decimal::ZERO,
        }
    }
}

/// The five parallel arrays the movement statements take.
pub fn arrays(moves: &[Movement]) -> [DatumWithOid<'static>; 5] {
    let ids: Vec<Option<i64>> = moves.iter().map(|m| m.grant_id).collect();
    let wallets: Vec<i64> = moves.iter().map(|m| m.wallet_id).collect();
    let kinds: Vec<String> = moves.iter().map(|m| m.kind.to_string()).collect();
    let amounts: Vec<AnyNumeric> = moves.iter().map(|m| num(m.amount)).collect();
    let helds: Vec<AnyNumeric> = moves.iter().map(|m| num(m.held)).collect();
    [
        ids.into(),
        wallets.into(),
        kinds.into(),
        amounts.into(),
        helds.into(),
    ]
}

/// Apply movements and journal them.
pub fn apply(
    c: &mut SpiClient<'_>,
    moves: &[Movement],
    asset: &str,
    authorization_id: Option<i64>,
    member_id: Option<i64>,
    note: Option<&str>,
) -> Result<()> {
    if moves.is_empty() {
        return Ok(());
    }
    apply_moves(c, moves, asset, authorization_id, member_id, note)?;
    // credits given back to a grant with an open void (0.6.0 on) are voided, and a capture
    // (which gives nothing back) lowers what the void still waits for
    if moves
        .iter()
        .any(|m| matches!(m.kind, "release" | "refund" | "run" | "capture"))
        && crate::corrections::catalog_has_operations()
    {
        let mut wallets: Vec<i64> = moves.iter().map(|m| m.wallet_id).collect();
        wallets.sort_unstable();
        wallets.dedup();
        let rows: Vec<i64> = moves.iter().filter_map(|m| m.grant_id).collect();
        crate::corrections::void_returned(c, &wallets, &rows)?;
    }
    // the hints of the lanes whose slices moved (none for one-lane wallets); the caller
    // holds those lanes
    if crate::lanes::catalog_has_lanes() {
        let mut done: Vec<i64> = Vec::new();
        for m in moves {
            if m.grant_id.is_some() && !done.contains(&m.wallet_id) {
                done.push(m.wallet_id);
                let rows: Vec<i64> = moves
                    .iter()
                    .filter(|x| x.wallet_id == m.wallet_id)
                    .filter_map(|x| x.grant_id)
                    .collect();
                exec(
                    c,
                    sql::LANES_REFRESH_ROWS,
                    &[m.wallet_id.into(), rows.into()],
                )?;
            }
        }
    }
    Ok(())
}

/// [`apply`] without refreshing lane hints (the caller refreshes them).
pub fn apply_moves(
    c: &mut SpiClient<'_>,
    moves: &[Movement],
    asset: &str,
    authorization_id: Option<i64>,
    member_id: Option<i64>,
    note: Option<&str>,
) -> Result<()> {
    if moves.is_empty() {
        return Ok(());
    }
    if let Some(op) = crate::corrections::current_operation() {
        // the entries of a correction, transfer or close name it
        let [a, b, k, d, e] = arrays(moves);
        exec(
            c,
            sql::APPLY_OP,
            &[
                a,
                b,
                k,
                d,
                e,
                asset.into(),
                authorization_id.into(),
                member_id.into(),
                note.into(),
                op.into(),
            ],
        )?;
        return Ok(());
    }
    // one grant moves (a full capture, a release, most refunds and expiries): single-row
    // statements, a fraction of the executor work of the array form
    if let [Movement {
        grant_id: Some(gid),
        wallet_id,
        kind,
        amount,
        held,
    }] = moves
    {
        exec(
            c,
            sql::APPLY_ONE,
            &[
                (*gid).into(),
                (*wallet_id).into(),
                (*kind).into(),
                num(*amount).into(),
                num(*held).into(),
                asset.into(),
                authorization_id.into(),
                member_id.into(),
                note.into(),
            ],
        )?;
        return Ok(());
    }
    let [a, b, k, d, e] = arrays(moves);
    exec(
        c,
        sql::APPLY,
        &[
            a,
            b,
            k,
            d,
            e,
            asset.into(),
            authorization_id.into(),
            member_id.into(),
            note.into(),
        ],
    )?;
    Ok(())
}

/// Running state of one wallet in one asset for the current period.
#[derive(Debug, Clone)]
pub struct WalletState {
    pub wallet_id: i64,
    pub asset: String,
    pub debt: Decimal,
    pub period_spent: Decimal,
    pub pool_drawn: Decimal,
    pub below_threshold: bool,
    period_start: Option<TimestampWithTimeZone>,
    original: (Decimal, Decimal, Decimal, bool),
    /// Read with the lanes' spend under a sliced cap ([`WalletState::load_committed`]): never
    /// written back.
    committed_view: bool,
}

impl WalletState {
    pub fn load(c: &mut SpiClient<'_>, wallet_id: i64, asset: &str) -> Result<Self> {
        Self::load_with(c, sql::WALLET_STATE, wallet_id, asset)
    }

    /// The state with the period's spend as committed, including what the lanes of a wallet
    /// with a sliced spend cap spent ([`crate::lane_caps`]) and what a limited member's rooms
    /// drew ([`crate::member_rooms`]): for deciding without the whole
    /// wallet (a decline, a quote). It cannot be saved.
    pub fn load_committed(c: &mut SpiClient<'_>, wallet_id: i64, asset: &str) -> Result<Self> {
        let statement =
            crate::member_rooms::pick(sql::WALLET_STATE_COMMITTED_V11, sql::WALLET_STATE_LANES);
        let mut s = Self::load_with(c, statement, wallet_id, asset)?;
        s.committed_view = true;
        Ok(s)
    }

    /// The start of the period the state is of.
    pub fn period(&self) -> Option<TimestampWithTimeZone> {
        self.period_start
    }

    fn load_with(
        c: &mut SpiClient<'_>,
        statement: &'static str,
        wallet_id: i64,
        asset: &str,
    ) -> Result<Self> {
        let row = spi::first(exec(c, statement, &[wallet_id.into(), asset.into()])?).ok_or_else(
            || LedgerError::new(Kind::Internal, format!("wallet {wallet_id} vanished")),
        )?;
        let debt = row.dec(1)?;
        let spent = row.dec(2)?;
        let drawn = row.dec(3)?;
        let below = row.req::<bool>(4)?;
        Ok(WalletState {
            wallet_id,
            asset: asset.to_string(),
            debt,
            period_spent: spent,
            pool_drawn: drawn,
            below_threshold: below,
            period_start: row.col::<TimestampWithTimeZone>(5)?,
            original: (debt, spent, drawn, below),
            committed_view: false,
        })
    }

    pub fn changed(&self) -> bool {
        (
            self.debt,
            self.period_spent,
            self.pool_drawn,
            self.below_threshold,
        ) != self.original
    }

    pub fn save(&self, c: &mut SpiClient<'_>) -> Result<()> {
        if !self.changed() {
            return Ok(());
        }
        if self.committed_view {
            return Err(LedgerError::new(
                Kind::Internal,
                "a wallet's committed view of its counters cannot be written back",
            ));
        }
        let args: Vec<DatumWithOid> = vec![
            self.wallet_id.into(),
            self.asset.as_str().into(),
            num(self.debt).into(),
            self.period_start.into(),
            num(self.period_spent).into(),
            num(self.pool_drawn).into(),
            self.below_threshold.into(),
        ];
        exec(c, sql::WALLET_STATE_SAVE, &args)?;
        Ok(())
    }
}

/// A wallet's own balance now (see `credit_balance`).
pub fn balance(c: &mut SpiClient<'_>, wallet_id: i64, asset: &str) -> Result<Decimal> {
    let row = spi::first(exec(
        c,
        sql::WALLET_BALANCE,
        &[wallet_id.into(), asset.into()],
    )?)
    .ok_or_else(|| LedgerError::new(Kind::Internal, "balance returned nothing"))?;
    row.dec(1)
}

pub fn threshold(c: &mut SpiClient<'_>, wallet_id: i64) -> Result<Option<Decimal>> {
    Ok(
        match spi::first(exec(c, sql::WALLET_THRESHOLD, &[wallet_id.into()])?) {
            Some(row) => row.opt_dec(1)?,
            None => None,
        },
    )
}

/// Send the low-balance alert when a debit takes the wallet below its threshold, once per
/// crossing (the latch re-arms when a grant brings the balance back to the threshold). The
/// alert is a row of `credit_ledger.events`; the NOTIFY carries only its id, since any role may
/// LISTEN (issue 16). A catalog from before 0.3.0 (library updated, extension not yet) gets the
/// old JSON payload.
pub fn check_alert(
    c: &mut SpiClient<'_>,
    state: &mut WalletState,
    wallet: &str,
    threshold: Option<Decimal>,
    balance: Decimal,
) -> Result<()> {
    let Some(t) = threshold else { return Ok(()) };
    if balance < t && !state.below_threshold {
        let payload = serde_json::json!({
            "event": "low_balance",
            "wallet": wallet,
            "asset": state.asset,
            "balance": balance.to_string(),
            "threshold": t.to_string(),
        });
        let events = spi::first(exec(c, crate::catalog_corrections::EVENTS_EXIST, &[])?)
            .map(|r| r.req::<bool>(1))
            .transpose()?
            .unwrap_or(false);
        if events {
            let args = [
                wallet.into(),
                "low_balance".into(),
                state.asset.as_str().into(),
                payload.to_string().into(),
            ];
            let rows = exec(c, crate::catalog_corrections::EVENT_NOTIFY, &args)?;
            crate::events::notify(c, rows, 1, false)?;
            // the same crossing asks the app's payment worker for a top-up (0.7.0 on)
            crate::overage::auto_topup(c, state.wallet_id, wallet, &state.asset, balance, t)?;
        } else {
            exec(c, sql::NOTIFY, &[payload.to_string().into()])?;
        }
        state.below_threshold = true;
    } else if balance >= t && state.below_threshold {
        state.below_threshold = false;
    }
    Ok(())
}

/// [`check_alert`] for a wallet known by id: its name is read only when an alert is sent.
pub fn check_alert_of(
    c: &mut SpiClient<'_>,
    state: &mut WalletState,
    wallet_id: i64,
    threshold: Option<Decimal>,
    balance: Decimal,
) -> Result<()> {
    match threshold {
        Some(t) if balance < t && !state.below_threshold => {
            let name = wallet_name(c, wallet_id)?;
            check_alert(c, state, &name, threshold, balance)
        }
        _ => check_alert(c, state, "", threshold, balance),
    }
}

/// Name of a wallet by id.
pub fn wallet_name(c: &mut SpiClient<'_>, wallet_id: i64) -> Result<String> {
    spi::first(exec(c, sql::WALLET_NAME, &[wallet_id.into()])?)
        .map(|r| r.req::<String>(1))
        .transpose()?
        .ok_or_else(|| LedgerError::new(Kind::Internal, format!("wallet {wallet_id} vanished")))
}
