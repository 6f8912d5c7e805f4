//! Corrections (since 0.6.0): `credit_grant_void`, `credit_adjust`, `credit_transfer` and
//! `credit_wallet_close`, and who did what (`credit_ledger._db_user`).
//!
//! Each is one row of `credit_ledger.operations` (its idempotency key, reason and metadata) and
//! journal entries that name it (`operation_id`). They hold the whole wallet (its row and
//! every lane), like a grant:
//!
//! - a **void** takes unspent credits of a grant back (`adjustment` entries). Credits that open
//!   holds reserve are voided when the holds give them back: the void stays open (`pending`).
//!   A void of the whole grant stays open for good: a later refund or release to the grant is
//!   voided too. Reports treat it as a reversal of liability (view `reversals`).
//! - an **adjustment** is signed: positive, a grant of category `adjustment` (free credits);
//!   negative, credits taken in consumption order (`adjustment` entries), below zero only as
//!   far as the overdraft limit allows (the rest becomes debt).
//! - a **transfer** moves spendable credits in consumption order: each source grant gives
//!   (`transfer` entry) and a new grant of the receiver with the same category, priority,
//!   expiry and unit price (`grants.transfer_of`) gets them (a `transfer` entry fills it).
//!   The two wallets are locked member before pool, otherwise in id order, so transfers in
//!   both directions never wait for each other in a cycle.
//! - a **close** releases open holds, closes open runs, then expires (breakage) or transfers
//!   every credit left; the wallet is then frozen and closed for good (55000 on any write).

use crate::allocation::{self, Lot};
use crate::amount;
use crate::authorize;
use crate::catalog as sql;
use crate::error::{or_raise, Kind, LedgerError, Result};
use crate::grants::{self, NewGrant};
use crate::input;
use crate::ledger::{self, Movement};
use crate::spi::{self, exec, num, opt_num, RowExt};
use crate::types::{JsonbText, Record};
use crate::wallets;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;
use std::cell::Cell;

/// Whether the catalog has operations (0.6.0 on): see [`crate::lanes::catalog_has_lanes`].
pub fn catalog_has_operations() -> bool {
    crate::spi::catalog_has(c"operations", None)
}

thread_local! {
    static OPERATION: Cell<Option<i64>> = const { Cell::new(None) };
}

/// The operation whose journal entries are being written, if any ([`ledger::apply_moves`]
/// names it in every entry).
pub fn current_operation() -> Option<i64> {
    OPERATION.with(|o| o.get())
}

/// Names operation `id` in the entries written while it lives (also when an error unwinds).
pub(crate) struct Naming(Option<i64>);

impl Naming {
    pub(crate) fn new(id: i64) -> Self {
        Naming(OPERATION.with(|o| o.replace(Some(id))))
    }
}

impl Drop for Naming {
    fn drop(&mut self) {
        OPERATION.with(|o| o.set(self.0));
    }
}

/// The role the session acts as outside any SECURITY DEFINER function: `current_user` as the
/// caller of this extension's functions sees it (they run as the extension's owner).
#[pg_extern(sql = false, stable, parallel_safe)]
fn db_user() -> Option<String> {
    // SAFETY: GetOuterUserId reads a backend global; GetUserNameFromId with noerr returns NULL
    // for a dropped role, else a palloc'd NUL-terminated name
    unsafe {
        let p = pg_sys::GetUserNameFromId(pg_sys::GetOuterUserId(), true);
        if p.is_null() {
            None
        } else {
            Some(std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }
}

/// 55000 for a closed wallet.
pub fn closed_error(wallet: &str) -> LedgerError {
    LedgerError::wrong_state(format!("wallet \"{wallet}\" is closed"))
        .hint("a closed wallet accepts no spend, grant, transfer or setting; its history stays")
}

/// Refuse a write to a closed wallet (the caller holds its row). A no-op before 0.6.0.
pub fn refuse_closed(c: &mut SpiClient<'_>, wallet_id: i64, wallet: &str) -> Result<()> {
    if !catalog_has_operations() {
        return Ok(());
    }
    let closed = spi::first(exec(c, sql::WALLET_CLOSED, &[wallet_id.into()])?)
        .map(|r| r.req::<bool>(1))
        .transpose()?
        .unwrap_or(false);
    if closed {
        return Err(closed_error(wallet));
    }
    Ok(())
}

/// Refuse a write that would give credits to wallet `wallet_id` when it, or the wallet whose
/// agent run it is, is closed (a refund). A no-op before 0.6.0.
pub fn refuse_closed_owner(c: &mut SpiClient<'_>, wallet_id: i64) -> Result<()> {
    if !catalog_has_operations() {
        return Ok(());
    }
    if let Some(r) = spi::first(exec(c, sql::WALLET_OR_OWNER_CLOSED, &[wallet_id.into()])?) {
        return Err(closed_error(&r.req::<String>(1)?));
    }
    Ok(())
}

/// The `credit_operation` rows of operation `id` (one per asset it moved).
pub(crate) fn op_rows(c: &mut SpiClient<'_>, id: i64) -> Result<Vec<Record>> {
    op_rows_to(c, id, None)
}

/// [`op_rows`] of a transfer or close to wallet `receiver` of another tenant on a distributed
/// ledger (see [`crate::tenant::enter_pair`]): the statement, on the sender's shard, cannot
/// read the receiver's name there, so it is the call's argument.
pub(crate) fn op_rows_to(
    c: &mut SpiClient<'_>,
    id: i64,
    receiver: Option<&str>,
) -> Result<Vec<Record>> {
    let distributed = spi::distributed(c)?;
    let statement = if distributed {
        sql::OP_ROWS_DISTRIBUTED
    } else {
        sql::OP_ROWS
    };
    let mut out = Vec::new();
    for r in exec(c, statement, &[id.into()])? {
        let mut t = Record::new("credit_operation");
        t.push(r.col::<i64>(1)?);
        t.push(r.col::<String>(2)?);
        t.push(r.col::<String>(3)?);
        t.push(r.col::<String>(4)?.or_else(|| receiver.map(str::to_string)));
        t.push(r.col::<i64>(5)?);
        t.push(r.col::<String>(6)?);
        t.push(r.col::<AnyNumeric>(7)?);
        t.push(Some(
            r.col::<AnyNumeric>(8)?
                .unwrap_or_else(|| num(Decimal::ZERO)),
        ));
        t.push(r.col::<AnyNumeric>(9)?);
        if distributed {
            let args = [r.req::<i64>(12)?.into(), r.col::<String>(6)?.into()];
            t.push(
                spi::first(exec(c, sql::OWN_BALANCE_IN, &args)?)
                    .map(|b| b.col::<AnyNumeric>(1))
                    .transpose()?
                    .flatten(),
            );
        } else {
            t.push(r.col::<AnyNumeric>(10)?);
        }
        t.push(r.col::<TimestampWithTimeZone>(11)?);
        out.push(t);
    }
    Ok(out)
}

/// A repeat of an operation with the same key: its first result (same arguments), 23505
/// (other arguments) or None (a new key).
pub(crate) fn replay(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    key: Option<&str>,
    hash: i64,
) -> Result<Option<i64>> {
    let Some(k) = key else { return Ok(None) };
    match spi::first(exec(c, sql::OP_BY_KEY, &[wallet_id.into(), k.into()])?) {
        Some(r) if r.col::<i64>(2)? == Some(hash) => Ok(Some(r.req(1)?)),
        Some(_) => Err(LedgerError::key_reused(k)),
        None => Ok(None),
    }
}

/// A new operation row.
pub(crate) struct NewOp<'a> {
    pub(crate) kind: &'a str,
    pub(crate) wallet_id: i64,
    pub(crate) to_wallet_id: Option<i64>,
    pub(crate) grant_id: Option<i64>,
    pub(crate) asset: Option<&'a str>,
    pub(crate) amount: Option<Decimal>,
    pub(crate) disposition: Option<&'a str>,
    pub(crate) reason: Option<&'a str>,
    pub(crate) key: Option<&'a str>,
    pub(crate) hash: i64,
    pub(crate) metadata: Option<&'a serde_json::Value>,
}

pub(crate) fn insert_op(c: &mut SpiClient<'_>, o: &NewOp<'_>) -> Result<i64> {
    let meta = o.metadata.map(|m| m.to_string());
    let args = [
        o.kind.into(),
        o.wallet_id.into(),
        o.to_wallet_id.into(),
        o.grant_id.into(),
        o.asset.into(),
        opt_num(o.amount).into(),
        num(Decimal::ZERO).into(),
        num(Decimal::ZERO).into(),
        false.into(),
        o.disposition.into(),
        o.reason.into(),
        o.key.into(),
        Some(o.hash).into(),
        meta.into(),
    ];
    spi::first(exec(c, sql::OP_INSERT, &args)?)
        .ok_or_else(|| LedgerError::new(Kind::Internal, "operation insert returned nothing"))?
        .req(1)
}

pub(crate) fn op_done(
    c: &mut SpiClient<'_>,
    id: i64,
    done: Decimal,
    pending: Decimal,
    open: bool,
) -> Result<()> {
    exec(
        c,
        sql::OP_DONE,
        &[
            id.into(),
            num(done).into(),
            num(pending).into(),
            open.into(),
        ],
    )?;
    Ok(())
}

/// A wallet as read before locking it: id, pool, whether it is a run's, whether closed.
pub(crate) struct Peek {
    pub(crate) id: i64,
    pub(crate) parent: Option<i64>,
    pub(crate) run: bool,
}

pub(crate) fn peek(c: &mut SpiClient<'_>, wallet: &str) -> Result<Peek> {
    let r = spi::first(exec(c, sql::WALLET_PEEK, &[wallet.into()])?)
        .ok_or_else(|| wallets::wallet_missing(wallet))?;
    let p = Peek {
        id: r.req(1)?,
        parent: r.col(2)?,
        run: r.req(3)?,
    };
    if p.run {
        return Err(
            LedgerError::invalid(format!("wallet \"{wallet}\" is an agent run's wallet")).hint(
                "close the run with credit_run_close: its credits go back to where they came from",
            ),
        );
    }
    Ok(p)
}

/// Lock two wallets whole without a cycle: a member before its pool (the order of every
/// spend), otherwise the lower id first; `b` in tenant `other`'s scope when it is of another
/// tenant ([`crate::tenant::enter_pair`]).
pub(crate) fn lock_pair(
    c: &mut SpiClient<'_>,
    a: (&str, &Peek),
    b: (&str, &Peek),
    other: Option<&str>,
) -> Result<()> {
    let a_first = if a.1.parent == Some(b.1.id) {
        true
    } else if b.1.parent == Some(a.1.id) {
        false
    } else {
        a.1.id < b.1.id
    };
    if a_first {
        authorize::lock_whole(c, a.0)?;
        crate::tenant::on_other(c, other, |c| authorize::lock_whole(c, b.0).map(|_| ()))?;
    } else {
        crate::tenant::on_other(c, other, |c| authorize::lock_whole(c, b.0).map(|_| ()))?;
        authorize::lock_whole(c, a.0)?;
    }
    Ok(())
}

/// A wallet's spendable rows of an asset in consumption order: (lot, home grant).
fn spendable(c: &mut SpiClient<'_>, wallet_id: i64, asset: &str) -> Result<(Vec<Lot>, Vec<i64>)> {
    let mut lots = Vec::new();
    let mut homes = Vec::new();
    for r in exec(c, sql::SPENDABLE_ROWS, &[wallet_id.into(), asset.into()])? {
        lots.push(Lot {
            grant_id: r.req(1)?,
            wallet_id,
            available: r.dec(2)?,
            priority: 0,
            expires_at: None,
        });
        homes.push(r.req(3)?);
    }
    Ok((lots, homes))
}

/// The wallet a transfer or close moves credits to: its id, and its tenant when that is another
/// one than the sender's on a distributed ledger ([`crate::tenant::enter_pair`]).
pub(crate) struct Receiver<'a> {
    pub(crate) id: i64,
    pub(crate) other: Option<&'a str>,
}

/// Move `rows` (row, home grant, credits) of wallet `from` to wallet `to`: each home grant's
/// part becomes one new grant of `to` with its category, priority, expiry and unit price
/// (`keep_effective`: and its effective_at, if later than now). Returns what moved.
pub(crate) fn move_rows(
    c: &mut SpiClient<'_>,
    from: i64,
    to: &Receiver<'_>,
    asset: &str,
    rows: &[(i64, i64, Decimal)],
    keep_effective: bool,
    note: Option<&str>,
) -> Result<Decimal> {
    let moves: Vec<Movement> = rows
        .iter()
        .filter(|r| r.2 > Decimal::ZERO)
        .map(|r| Movement::grant(r.0, from, "transfer", -r.2, Decimal::ZERO))
        .collect();
    ledger::apply(c, &moves, asset, None, Some(from), note)?;
    let mut homes: Vec<(i64, Decimal)> = Vec::new();
    for (_, home, x) in rows.iter().filter(|r| r.2 > Decimal::ZERO) {
        match homes.iter_mut().find(|h| h.0 == *home) {
            Some(h) => h.1 += *x,
            None => homes.push((*home, *x)),
        }
    }
    let mut total = Decimal::ZERO;
    for (home, x) in homes {
        let p = spi::first(exec(c, sql::GRANT_PROVENANCE, &[home.into()])?)
            .ok_or_else(|| LedgerError::new(Kind::Internal, format!("grant {home} vanished")))?;
        let category: String = p.req(1)?;
        let effective: TimestampWithTimeZone = p.req(6)?;
        let effective_at = (keep_effective && effective.into_inner() > spi::transaction_start())
            .then_some(effective);
        let grant = NewGrant {
            wallet_id: to.id,
            asset,
            category: &category,
            priority: p.req(2)?,
            amount: x,
            effective_at,
            expires_at: p.col(3)?,
            unit_price: p.dec(4)?,
            key: None,
            hash: None,
            metadata: p.col::<JsonbText>(5)?,
            source: "transfer",
        };
        // the receiving side, in its tenant's scope when that is another one
        crate::tenant::on_other(c, to.other, |c| {
            grants::insert_as(c, grant, "transfer", Some(home))
        })?;
        total += x;
    }
    Ok(total)
}

/// Void what returns to grants with an open void: the rows `rows` just got credits back (a
/// release, refund or run close) or had held credits captured. The caller holds their
/// wallets.
pub fn void_returned(c: &mut SpiClient<'_>, wallets: &[i64], rows: &[i64]) -> Result<()> {
    let mut voids = Vec::new();
    for r in exec(
        c,
        sql::OPEN_VOIDS,
        &[wallets.to_vec().into(), rows.to_vec().into()],
    )? {
        voids.push((
            r.req::<i64>(1)?,
            r.req::<i64>(2)?,
            r.dec(3)?,
            r.req::<bool>(4)?,
            r.req::<String>(5)?,
            r.req::<i64>(6)?,
        ));
    }
    for (op, grant, pending, whole, asset, wallet_id) in voids {
        let _naming = Naming::new(op);
        let (moves, voided, held) = void_moves(c, grant, wallet_id, (!whole).then_some(pending))?;
        ledger::apply(c, &moves, &asset, None, Some(wallet_id), Some("void"))?;
        // what is still to void is at most what open holds still reserve of the grant (a
        // capture spent the rest: it will never come back)
        let pending = if whole {
            held
        } else {
            (pending - voided).min(held)
        };
        exec(
            c,
            sql::OP_DONE_ADD,
            &[
                op.into(),
                num(voided).into(),
                num(pending).into(),
                (whole || pending > Decimal::ZERO).into(),
            ],
        )?;
    }
    Ok(())
}

/// The `adjustment` moves voiding up to `want` (None: all) of grant `grant`'s free credits:
/// (moves, voided, credits still held).
fn void_moves(
    c: &mut SpiClient<'_>,
    grant: i64,
    wallet_id: i64,
    want: Option<Decimal>,
) -> Result<(Vec<Movement>, Decimal, Decimal)> {
    let mut left = want;
    let mut moves = Vec::new();
    let mut voided = Decimal::ZERO;
    let mut held = Decimal::ZERO;
    for r in exec(c, sql::GRANT_ROWS, &[grant.into()])? {
        let (row, free, h): (i64, Decimal, Decimal) = (r.req(1)?, r.dec(2)?, r.dec(3)?);
        held += h;
        let x = match left {
            Some(l) => free.min(l),
            None => free,
        };
        if x > Decimal::ZERO {
            moves.push(Movement::grant(
                row,
                wallet_id,
                "adjustment",
                -x,
                Decimal::ZERO,
            ));
            voided += x;
            left = left.map(|l| l - x);
        }
    }
    Ok((moves, voided, held))
}

pub(crate) fn reason_of(reason: Option<&str>) -> Result<Option<&str>> {
    input::text(reason, "reason")
}

/// Take back the unspent part of a grant: all of it by default (and whatever comes back to
/// it later), or `amount`. Credits that open holds reserve are voided when those holds end.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_grant_void(
    grant_id: Option<i64>,
    amount: default!(Option<AnyNumeric>, "NULL"),
    reason: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
) -> SetOfIterator<'static, pgrx::composite_type!('static, "credit_operation")> {
    let rows = or_raise((|| {
        let grant = grant_id.ok_or_else(|| LedgerError::invalid("grant_id must not be null"))?;
        let amount = amount
            .map(|a| amount::positive(amount::parse(&a.to_string(), "amount")?, "amount"))
            .transpose()?;
        let reason = reason_of(reason)?;
        let key = input::key(idempotency_key)?;
        let hash = input::fingerprint(&[
            "void",
            &grant.to_string(),
            &amount
                .map(|a| a.normalize().to_string())
                .unwrap_or_default(),
            reason.unwrap_or("\u{1}"),
        ]);
        spi::with(|c| {
            crate::tenant::enter_row(c, crate::catalog_tenants::GRANT_TENANT, grant, None)?;
            let g = spi::first(exec(c, sql::VOID_GRANT, &[grant.into()])?)
                .ok_or_else(|| LedgerError::not_found(format!("grant {grant} does not exist")))?;
            let (wallet_id, asset, home, source, expired, wallet, run): (
                i64,
                String,
                Option<i64>,
                Option<i64>,
                bool,
                String,
                bool,
            ) = (
                g.req(1)?,
                g.req(2)?,
                g.col(3)?,
                g.col(4)?,
                g.req(5)?,
                g.req(6)?,
                g.req(7)?,
            );
            if let Some(h) = home {
                return Err(LedgerError::invalid(format!(
                    "grant {grant} is a lane slice of grant {h}"
                ))
                .hint(format!("void grant {h}")));
            }
            if source.is_some() || run {
                return Err(LedgerError::invalid(format!(
                    "grant {grant} is a slice of an agent run's budget"
                ))
                .hint("void the grant the run's budget came from"));
            }
            authorize::lock_whole(c, &wallet)?;
            if let Some(id) = replay(c, wallet_id, key, hash)? {
                return op_rows(c, id);
            }
            refuse_closed(c, wallet_id, &wallet)?;
            if expired {
                return Err(
                    LedgerError::wrong_state(format!("grant {grant} has expired"))
                        .detail("its unspent credits are breakage (credit_expire), not a void"),
                );
            }
            if let Some(a) = amount {
                let scale = wallets::asset_scale(c, &asset)?;
                amount::fits_scale(a, scale, "amount", &asset)?;
            }
            let (moves, voided, held) = void_moves(c, grant, wallet_id, amount)?;
            if let Some(a) = amount {
                if a > voided + held {
                    return Err(LedgerError::invalid(format!(
                        "amount {a} is more than the {} unspent credits of grant {grant}",
                        voided + held
                    ))
                    .detail(format!("{voided} free, {held} held by open holds")));
                }
            }
            let id = insert_op(
                c,
                &NewOp {
                    kind: "void",
                    wallet_id,
                    to_wallet_id: None,
                    grant_id: Some(grant),
                    asset: Some(&asset),
                    amount,
                    disposition: None,
                    reason,
                    key,
                    hash,
                    metadata: None,
                },
            )?;
            let naming = Naming::new(id);
            ledger::apply(
                c,
                &moves,
                &asset,
                None,
                Some(wallet_id),
                reason.or(Some("void")),
            )?;
            drop(naming);
            let pending = match amount {
                Some(a) => a - voided,
                None => held,
            };
            op_done(
                c,
                id,
                voided,
                pending,
                amount.is_none() || pending > Decimal::ZERO,
            )?;
            op_rows(c, id)
        })
    })());
    SetOfIterator::new(rows.into_iter().map(Record::build))
}

/// A signed manual correction: positive, a grant of category `adjustment`; negative, credits
/// taken in consumption order, below zero only as far as the overdraft limit allows.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_adjust(
    wallet: Option<&str>,
    amount: Option<AnyNumeric>,
    asset: default!(Option<&str>, "'credits'"),
    reason: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
) -> SetOfIterator<'static, pgrx::composite_type!('static, "credit_operation")> {
    let rows = or_raise((|| {
        let wallet = input::name(wallet, "wallet")?;
        let asset = input::name(asset, "asset")?;
        let text = amount
            .as_ref()
            .map(|a| a.to_string())
            .ok_or_else(|| LedgerError::invalid("amount must not be null"))?;
        let amount = amount::parse(&text, "amount")?;
        if amount.is_zero() {
            return Err(LedgerError::invalid("amount must not be zero")
                .hint("a positive amount adds credits, a negative one takes them"));
        }
        let reason = reason_of(reason)?.ok_or_else(|| {
            LedgerError::invalid("reason must not be null")
                .hint("an adjustment says why it was made")
        })?;
        let key = input::key(idempotency_key)?;
        let meta = input::metadata(metadata.as_ref().map(|j| j.0.as_str()))?;
        let hash = input::fingerprint(&[
            "adjust",
            &amount.normalize().to_string(),
            asset,
            reason,
            &input::json_fingerprint(&meta),
        ]);
        spi::with(|c| {
            crate::tenant::enter(c, wallet, None)?;
            let p = peek(c, wallet)?;
            let w = authorize::lock_whole(c, wallet)?;
            if let Some(id) = replay(c, p.id, key, hash)? {
                return op_rows(c, id);
            }
            refuse_closed(c, p.id, wallet)?;
            let scale = wallets::asset_scale(c, asset)?;
            let amount = amount::fits_scale(amount, scale, "amount", asset)?;
            let id = insert_op(
                c,
                &NewOp {
                    kind: "adjust",
                    wallet_id: p.id,
                    to_wallet_id: None,
                    grant_id: None,
                    asset: Some(asset),
                    amount: Some(amount),
                    disposition: None,
                    reason: Some(reason),
                    key,
                    hash,
                    metadata: meta.as_ref(),
                },
            )?;
            let _naming = Naming::new(id);
            if amount > Decimal::ZERO {
                grants::insert(
                    c,
                    NewGrant {
                        wallet_id: p.id,
                        asset,
                        category: "adjustment",
                        priority: grants::default_priority("adjustment"),
                        amount,
                        effective_at: None,
                        expires_at: None,
                        unit_price: Decimal::ZERO,
                        key: None,
                        hash: None,
                        metadata: metadata.clone(),
                        source: "adjustment",
                    },
                )?;
            } else {
                let need = -amount;
                let (lots, _) = spendable(c, p.id, asset)?;
                let (takes, short) = allocation::allocate(&lots, need);
                let mut state = ledger::WalletState::load(c, p.id, asset)?;
                let room = w.overdraft_limit - state.debt;
                if short > room.max(Decimal::ZERO) {
                    return Err(LedgerError::new(
                        Kind::Declined,
                        format!(
                            "wallet \"{wallet}\" has {} spendable {asset}, less than the {need} to take",
                            need - short
                        ),
                    )
                    .detail(format!(
                        "its overdraft room is {}",
                        room.max(Decimal::ZERO)
                    ))
                    .hint("take less, or raise the wallet's overdraft_limit"));
                }
                let mut moves: Vec<Movement> = takes
                    .iter()
                    .map(|t| {
                        Movement::grant(t.grant_id, p.id, "adjustment", -t.amount, Decimal::ZERO)
                    })
                    .collect();
                if short > Decimal::ZERO {
                    moves.push(Movement::debt(p.id, "adjustment", -short));
                    state.debt += short;
                }
                ledger::apply(c, &moves, asset, None, Some(p.id), Some(reason))?;
                state.save(c)?;
            }
            op_done(c, id, amount, Decimal::ZERO, false)?;
            op_rows(c, id)
        })
    })());
    SetOfIterator::new(rows.into_iter().map(Record::build))
}

/// Move credits from one wallet to another, exactly, keeping their provenance (category,
/// priority, expiry, unit price).
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_transfer(
    from_wallet: Option<&str>,
    to_wallet: Option<&str>,
    amount: Option<AnyNumeric>,
    asset: default!(Option<&str>, "'credits'"),
    reason: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
) -> SetOfIterator<'static, pgrx::composite_type!('static, "credit_operation")> {
    let rows = or_raise((|| {
        let from = input::name(from_wallet, "from_wallet")?;
        let to = input::name(to_wallet, "to_wallet")?;
        let asset = input::name(asset, "asset")?;
        let text = amount
            .as_ref()
            .map(|a| a.to_string())
            .ok_or_else(|| LedgerError::invalid("amount must not be null"))?;
        let amount = amount::positive(amount::parse(&text, "amount")?, "amount")?;
        let reason = reason_of(reason)?;
        let key = input::key(idempotency_key)?;
        let meta = input::metadata(metadata.as_ref().map(|j| j.0.as_str()))?;
        if from == to {
            return Err(LedgerError::invalid(format!(
                "from_wallet and to_wallet are both \"{from}\""
            )));
        }
        let hash = input::fingerprint(&[
            "transfer",
            to,
            &amount.normalize().to_string(),
            asset,
            reason.unwrap_or("\u{1}"),
            &input::json_fingerprint(&meta),
        ]);
        spi::with(|c| {
            let other = crate::tenant::enter_pair(c, from, to)?;
            let other = other.as_deref();
            let receiver = other.map(|_| to);
            let pf = peek(c, from)?;
            let pt = crate::tenant::on_other(c, other, |c| peek(c, to))?;
            lock_pair(c, (from, &pf), (to, &pt), other)?;
            if let Some(id) = replay(c, pf.id, key, hash)? {
                return op_rows_to(c, id, receiver);
            }
            refuse_closed(c, pf.id, from)?;
            crate::tenant::on_other(c, other, |c| refuse_closed(c, pt.id, to))?;
            let scale = wallets::asset_scale(c, asset)?;
            let amount = amount::fits_scale(amount, scale, "amount", asset)?;
            let (lots, homes) = spendable(c, pf.id, asset)?;
            let (takes, short) = allocation::allocate(&lots, amount);
            if short > Decimal::ZERO {
                return Err(LedgerError::new(
                    Kind::Declined,
                    format!(
                        "wallet \"{from}\" has {} spendable {asset}, less than the {amount} to transfer",
                        amount - short
                    ),
                )
                .hint("held, expired and not yet effective credits do not move"));
            }
            let id = insert_op(
                c,
                &NewOp {
                    kind: "transfer",
                    wallet_id: pf.id,
                    to_wallet_id: Some(pt.id),
                    grant_id: None,
                    asset: Some(asset),
                    amount: Some(amount),
                    disposition: None,
                    reason,
                    key,
                    hash,
                    metadata: meta.as_ref(),
                },
            )?;
            let _naming = Naming::new(id);
            let rows: Vec<(i64, i64, Decimal)> = takes
                .iter()
                .map(|t| {
                    let i = lots
                        .iter()
                        .position(|l| l.grant_id == t.grant_id)
                        .unwrap_or(0);
                    (
                        t.grant_id,
                        homes.get(i).copied().unwrap_or(t.grant_id),
                        t.amount,
                    )
                })
                .collect();
            let to = Receiver { id: pt.id, other };
            let moved = move_rows(
                c,
                pf.id,
                &to,
                asset,
                &rows,
                false,
                reason.or(Some("transfer")),
            )?;
            op_done(c, id, moved, Decimal::ZERO, false)?;
            op_rows_to(c, id, receiver)
        })
    })());
    SetOfIterator::new(rows.into_iter().map(Record::build))
}
