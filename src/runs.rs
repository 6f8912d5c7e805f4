//! Agent runs (issue 18): budget envelopes reserved from a wallet or a parent run.
//!
//! A run is a wallet of its own (`wallets.run_of` = the wallet that opened it) whose grants are
//! slices of the rows its budget came from (`grants.source_id`): opening plans the budget on
//! the funding wallet exactly as a hold of that amount (every limit and counter) and moves the
//! planned credits into new rows of the run's wallet ('run' journal entries). Calls made with
//! `run => id` spend the run's wallet with the ordinary engine and lock only its row. Closing
//! gives every slice's remaining credits back to its exact source row. See docs/concepts.md "Agent runs" and docs/design.md.
//!
//! Lock order: the funder (the wallet whole, with its pool; or the parent run's wallet) before
//! the runs of a tree, top down. A call in a run locks only the run's wallet.

use crate::authorize::{self, Lanes, Mode};
use crate::catalog as sql;
use crate::error::{or_raise, Kind, LedgerError, Result};
use crate::input;
use crate::ledger::{self, Movement};
use crate::plan;
use crate::spi::{self, exec, num, RowExt};
use crate::types::JsonbText;
use crate::wallets;
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// Whether the catalog has runs (0.5.0 on): this library also serves an older catalog until
/// `ALTER EXTENSION credit_ledger UPDATE` (see [`crate::lanes::catalog_has_lanes`]).
pub fn catalog_has_runs() -> bool {
    crate::spi::catalog_has(c"runs", None)
}

/// The row `credit_run_open` returns.
pub(crate) type OpenRow = (
    i64,
    bool,
    Option<String>,
    AnyNumeric,
    Option<AnyNumeric>,
    String,
    String,
    TimestampWithTimeZone,
);

/// A run as the spend path needs it: the name of its wallet and whether calls may still spend.
pub struct Spendable {
    pub run_wallet: String,
    pub closed: bool,
    pub max_calls: Option<i32>,
    pub max_cost_per_call: Option<Decimal>,
}

/// Resolve `run` for a call on `wallet`: the run must exist and belong to `wallet`. A run past
/// its TTL (not yet swept) or closed is `closed`: the call is declined with `run_closed`.
pub fn for_call(c: &mut SpiClient<'_>, run: i64, wallet: &str) -> Result<Spendable> {
    let Some(row) = spi::first(exec(c, sql::RUN_FOR_CALL, &[run.into()])?) else {
        return Err(not_in_tenant(c, run, wallet)?);
    };
    let owner: String = row.req(3)?;
    if owner != wallet {
        return Err(LedgerError::invalid(format!(
            "run {run} belongs to wallet \"{owner}\", not \"{wallet}\""
        )));
    }
    let Some(run_wallet) = row.col::<String>(4)? else {
        return Err(
            LedgerError::wrong_state(format!("run {run} was declined when it was opened"))
                .hint("open a new run"),
        );
    };
    let status: String = row.req(1)?;
    Ok(Spendable {
        run_wallet,
        closed: status != "open" || row.req::<bool>(2)?,
        max_calls: row.col(6)?,
        max_cost_per_call: row.opt_dec(7)?,
    })
}

/// Run `run` is not in the tenant of the call's wallet. When that tenant was looked up (a ledger
/// Citus distributes, no `tenant` argument), a run of another tenant is another wallet's run
/// (22023), as on one node; otherwise it does not exist (42704). The run's tenant is read from
/// the coordinator (every shard), its owner on that tenant's shard.
fn not_in_tenant(c: &mut SpiClient<'_>, run: i64, wallet: &str) -> Result<LedgerError> {
    if !crate::tenant::given() || crate::tenant::by_caller() {
        return Ok(run_missing(run));
    }
    let elsewhere = spi::first(exec(c, crate::catalog_tenants::RUN_TENANT, &[run.into()])?)
        .map(|r| r.col::<String>(1))
        .transpose()?
        .flatten();
    let owner = crate::tenant::within(c, elsewhere.clone(), |c| {
        spi::first(exec(c, sql::RUN_FOR_CALL, &[run.into()])?)
            .map(|r| r.req::<String>(3))
            .transpose()
    })?;
    Ok(match owner {
        Some(owner) if elsewhere.is_some() => LedgerError::invalid(format!(
            "run {run} belongs to wallet \"{owner}\", not \"{wallet}\""
        )),
        _ => run_missing(run),
    })
}

fn run_missing(run: i64) -> LedgerError {
    LedgerError::not_found(format!("run {run} does not exist"))
}

/// The reason of a declined call in a run, in the run's terms.
pub fn reason_in_run(reason: Option<&'static str>) -> Option<&'static str> {
    match reason {
        Some("insufficient_credits") => Some("run_budget_exhausted"),
        Some("wallet_frozen") => Some("run_closed"),
        other => other,
    }
}

struct OpenRequest<'a> {
    wallet: &'a str,
    budget: Decimal,
    asset: &'a str,
    parent: Option<i64>,
    ttl: Interval,
    key: Option<&'a str>,
    hash: i64,
    metadata: Option<JsonbText>,
    max_calls: Option<i32>,
    max_cost_per_call: Option<Decimal>,
    lanes: i32,
}

fn open(c: &mut SpiClient<'_>, r: &OpenRequest<'_>) -> Result<OpenRow> {
    let scale = wallets::asset_scale(c, r.asset)?;
    amount_fits(r.budget, scale, r.asset)?;
    // the funder: the wallet itself, or the parent run's wallet (locked whole either way)
    let (owner_id, funder_name) = match r.parent {
        None => {
            let (id, _) = wallets::wallet_id(c, r.wallet)?;
            if spi::first(exec(c, sql::WALLET_IS_RUN, &[id.into()])?).is_some() {
                return Err(LedgerError::invalid(format!(
                    "wallet \"{}\" is a run's wallet: open a sub-run with parent_run",
                    r.wallet
                )));
            }
            (id, r.wallet.to_string())
        }
        Some(p) => {
            let s = for_call(c, p, r.wallet)?;
            let (id, _) = wallets::wallet_id(c, r.wallet)?;
            (id, s.run_wallet)
        }
    };
    let w = authorize::lock_whole_folded(c, &funder_name)?;
    crate::corrections::refuse_closed(c, w.id, &funder_name)?;
    if let Some(k) = r.key {
        if let Some(prev) = spi::first(exec(c, sql::RUN_BY_KEY, &[owner_id.into(), k.into()])?) {
            if prev.col::<i64>(2)? != Some(r.hash) {
                return Err(LedgerError::key_reused(k)
                    .detail(format!("run {} used it first", prev.req::<i64>(1)?)));
            }
            return open_row(c, prev.req(1)?);
        }
    }
    if let Some(p) = r.parent {
        // under the parent's lock: a parent closed (or past its TTL) meanwhile funds nothing
        let parent =
            spi::first(exec(c, sql::RUN_FOR_CALL, &[p.into()])?).ok_or_else(|| run_missing(p))?;
        if parent.req::<String>(1)? != "open" || parent.req::<bool>(2)? {
            let left = ledger::balance(c, w.id, r.asset)?;
            return declined(c, r, owner_id, "run_closed", Some(left));
        }
        let parent_asset: String = parent.req(5)?;
        if parent_asset != r.asset {
            return Err(LedgerError::invalid(format!(
                "run {p} is a budget of {parent_asset}, not {}",
                r.asset
            )));
        }
    }
    let mut p = plan::plan(c, &w, r.asset, r.budget, Mode::Hold, Lanes::Exact)?;
    if let Some(reason) = p.reason {
        let reason = if r.parent.is_some() {
            reason_in_run(Some(reason)).unwrap_or(reason)
        } else {
            reason
        };
        let balance = p.balance_after()?;
        return declined(c, r, owner_id, reason, Some(balance));
    }
    // the run, its wallet, then its slices
    let balance = p.balance_after()?;
    let run_id = insert_run(c, r, owner_id, None, Some(balance))?;
    let card = spi::first(exec(
        c,
        sql::RUN_WALLET_INSERT,
        &[run_id.into(), owner_id.into()],
    )?)
    .ok_or_else(|| LedgerError::new(Kind::Internal, "run wallet insert returned nothing"))?;
    let run_wallet: i64 = card.req(1)?;
    let mut moves = Vec::with_capacity(p.moves.len() * 2);
    for m in &p.moves {
        let Some(source) = m.grant_id else {
            return Err(LedgerError::new(
                Kind::Internal,
                "a run's budget planned as debt",
            ));
        };
        let x = m.held;
        let slice = spi::first(exec(
            c,
            sql::RUN_SLICE_INSERT,
            &[run_wallet.into(), source.into(), num(x).into()],
        )?)
        .ok_or_else(|| LedgerError::new(Kind::Internal, "run slice insert returned nothing"))?;
        moves.push(Movement::grant(
            source,
            m.wallet_id,
            "run",
            -x,
            Decimal::ZERO,
        ));
        moves.push(Movement::grant(
            slice.req(1)?,
            run_wallet,
            "run",
            x,
            Decimal::ZERO,
        ));
    }
    let note = format!("run {run_id} opened");
    ledger::apply(c, &moves, r.asset, None, Some(run_wallet), Some(&note))?;
    if r.lanes > 1 {
        // parallel calls of the run that do not wait for each other (issue 17's rule inside
        // the run): its slices are spread over its lanes
        exec(
            c,
            sql::WALLET_SET_LANES,
            &[run_wallet.into(), r.lanes.into()],
        )?;
        crate::lanes::spread(c, run_wallet, r.asset, r.lanes, None)?;
    }
    plan::commit_plan(c, &w, &funder_name, &mut p, r.budget, Decimal::ONE)?;
    crate::lanes::after_spend(c, &w, &p, r.asset, Lanes::Exact, r.budget)?;
    open_row(c, run_id)
}

fn amount_fits(budget: Decimal, scale: u32, asset: &str) -> Result<()> {
    crate::amount::fits_scale(budget, scale, "budget", asset).map(|_| ())
}

/// Record a declined opening (a row, so that a retry with its key returns it).
fn declined(
    c: &mut SpiClient<'_>,
    r: &OpenRequest<'_>,
    owner_id: i64,
    reason: &str,
    balance: Option<Decimal>,
) -> Result<OpenRow> {
    let id = insert_run(c, r, owner_id, Some(reason), balance)?;
    open_row(c, id)
}

/// The row of a run: open, or declined with `reason`. Returns its id.
fn insert_run(
    c: &mut SpiClient<'_>,
    r: &OpenRequest<'_>,
    owner_id: i64,
    reason: Option<&str>,
    balance: Option<Decimal>,
) -> Result<i64> {
    let status = if reason.is_some() { "declined" } else { "open" };
    spi::first(exec(
        c,
        sql::RUN_INSERT,
        &[
            owner_id.into(),
            r.parent.into(),
            r.asset.into(),
            num(r.budget).into(),
            status.into(),
            reason.into(),
            r.key.into(),
            r.key.map(|_| r.hash).into(),
            r.metadata.clone().into(),
            r.ttl.into(),
            balance.map(num).into(),
            r.max_calls.into(),
            r.max_cost_per_call.map(num).into(),
        ],
    )?)
    .ok_or_else(|| LedgerError::new(Kind::Internal, "run insert returned nothing"))?
    .req(1)
}

fn open_row(c: &mut SpiClient<'_>, run: i64) -> Result<OpenRow> {
    let row =
        spi::first(exec(c, sql::RUN_OPEN_ROW, &[run.into()])?).ok_or_else(|| run_missing(run))?;
    Ok((
        row.req(1)?,
        row.req(2)?,
        row.col(3)?,
        row.req(4)?,
        row.col(5)?,
        row.req(6)?,
        row.req(7)?,
        row.req(8)?,
    ))
}

/// Close run `id` and its open sub-runs (`status`: closed, or expired for the sweep): release
/// their open holds and give every slice's remaining credits back to its source row. Returns
/// false when the run was not open (nothing done).
pub fn close(c: &mut SpiClient<'_>, id: i64, status: &str) -> Result<bool> {
    Ok(close_with(c, id, status, false)?.unwrap_or(false))
}

/// [`close`]; with `skip_locked` (the sweep) a funder or run that another transaction holds
/// is not waited for: None, and the next sweep closes it. A sweep closes many runs in one
/// transaction, so it would otherwise wait for a member while holding the pool an earlier
/// close took, against a spender of that member waiting for the pool: a deadlock.
fn close_with(
    c: &mut SpiClient<'_>,
    id: i64,
    status: &str,
    skip_locked: bool,
) -> Result<Option<bool>> {
    let Some(run) = spi::first(exec(c, sql::RUN_GET, &[id.into()])?) else {
        return Err(run_missing(id));
    };
    if run.req::<String>(1)? != "open" {
        return Ok(Some(false));
    }
    let owner_id: i64 = run.req(2)?;
    let parent: Option<i64> = run.col(3)?;
    let asset: String = run.req(4)?;
    let busy = |c: &mut SpiClient<'_>, wallet_id: i64| -> Result<bool> {
        Ok(skip_locked
            && spi::first(exec(c, sql::WALLET_TRY_LOCK_ID, &[wallet_id.into()])?).is_none())
    };
    // the funder first, then the tree from the top down
    let owner = match parent {
        Some(p) => {
            let funder = spi::first(exec(c, sql::RUN_GET_WALLET, &[p.into()])?)
                .ok_or_else(|| run_missing(p))?
                .req::<i64>(1)?;
            if busy(c, funder)? {
                return Ok(None);
            }
            let name = ledger::wallet_name(c, funder)?;
            authorize::lock_whole(c, &name)?;
            None
        }
        None => {
            if busy(c, owner_id)? {
                return Ok(None);
            }
            let name = ledger::wallet_name(c, owner_id)?;
            let w = authorize::lock_whole(c, &name)?;
            if let Some(pid) = w.parent_id {
                if busy(c, pid)? {
                    return Ok(None);
                }
                let pool = ledger::wallet_name(c, pid)?;
                authorize::lock_whole(c, &pool)?;
            }
            Some(w)
        }
    };
    if let Some(rw) = spi::first(exec(c, sql::RUN_GET_WALLET, &[id.into()])?) {
        if busy(c, rw.req::<i64>(1)?)? {
            // a call of the run is open: it is closed when that call's transaction has ended
            return Ok(None);
        }
    }
    // Lock the tree top down, then read it again: a sub-run opened (under its parent's lock)
    // after the first read and committed before that lock was ours is in the second read.
    // Once every run of the tree is locked, no new sub-run can open under it.
    let mut tree: Vec<(i64, i64)> = Vec::new();
    loop {
        let mut now: Vec<(i64, i64)> = Vec::new();
        for r in exec(c, sql::RUN_TREE, &[id.into()])? {
            now.push((r.req(1)?, r.req(2)?));
        }
        if now == tree {
            break;
        }
        for node in &now {
            if !tree.contains(node) {
                exec(c, sql::WALLET_LOCK_BY_ID, &[node.1.into()])?;
                // a run with lanes: wait for its open calls, lane by lane
                crate::lanes::exclusive(c, node.1)?;
            }
        }
        tree = now;
    }
    // under the locks: closed meanwhile?
    if spi::first(exec(c, sql::RUN_GET, &[id.into()])?)
        .map(|r| r.req::<String>(1))
        .transpose()?
        .as_deref()
        != Some("open")
    {
        return Ok(Some(false));
    }
    // children first: a sub-run's credits go back through its parent's slices
    for (run, run_wallet) in tree.iter().rev() {
        for h in exec(c, sql::RUN_OPEN_HOLDS, &[(*run_wallet).into()])? {
            crate::holds::release_for_run(c, h.req(1)?)?;
        }
        let note = format!("run {run} closed");
        let (returned, to_pool) = give_back(c, *run_wallet, &asset, &note)?;
        exec(
            c,
            sql::RUN_CLOSE,
            &[(*run).into(), status.into(), num(returned).into()],
        )?;
        if let (Some(o), true) = (owner.as_ref(), *run == id) {
            // the budget was counted (spend cap, pool draw) when the run opened: what comes
            // back to the wallet and its pool is uncounted, as a released hold's credits are
            crate::holds::uncount(c, o, &asset, returned, to_pool, None)?;
        }
        if *run == id {
            let payload = serde_json::json!({
                "event": "run_closed",
                "wallet": ledger::wallet_name(c, owner_id)?,
                "run_id": id,
                "status": status,
                "asset": asset,
                "returned": returned.to_string(),
            });
            crate::events::emit(c, "run_closed", owner_id, Some(&asset), &payload)?;
        }
    }
    Ok(Some(true))
}

/// Give every credit left in the slices of run wallet `run_wallet` back to its source row (a
/// source that has expired meanwhile expires them at once). The caller holds the run's wallet
/// and its funder. Returns what went back, and the part of it that went to the pool's rows
/// (a run that a pool member funded from its pool).
fn give_back(
    c: &mut SpiClient<'_>,
    run_wallet: i64,
    asset: &str,
    note: &str,
) -> Result<(Decimal, Decimal)> {
    let mut moves = Vec::new();
    let mut returned = Decimal::ZERO;
    let mut to_pool = Decimal::ZERO;
    for s in exec(c, sql::RUN_SLICES_LEFT, &[run_wallet.into()])? {
        let (slice, x, source, source_wallet, expired, pool): (i64, Decimal, i64, i64, bool, bool) = (
            s.req(1)?,
            s.dec(2)?,
            s.req(3)?,
            s.req(4)?,
            s.req(5)?,
            s.req(6)?,
        );
        moves.push(Movement::grant(slice, run_wallet, "run", -x, Decimal::ZERO));
        moves.push(Movement::grant(
            source,
            source_wallet,
            "run",
            x,
            Decimal::ZERO,
        ));
        if expired {
            // the source has expired meanwhile: the credits expire at once
            moves.push(Movement::grant(
                source,
                source_wallet,
                "expiry",
                -x,
                Decimal::ZERO,
            ));
        }
        returned += x;
        if pool {
            to_pool += x;
        }
    }
    ledger::apply(c, &moves, asset, None, Some(run_wallet), Some(note))?;
    Ok((returned, to_pool))
}

/// After a refund to a call of a run that has closed: the refunded credits went back to the
/// run's slices; they go on to the rows the run was funded from (and, through a closed parent,
/// on up), as the close would have given them. Locks the funder after the run's wallet: a
/// closed run's wallet is never locked by a close or a sweep, so this order meets no other.
pub fn after_refund(c: &mut SpiClient<'_>, wallet_id: i64) -> Result<()> {
    if !catalog_has_runs() {
        return Ok(());
    }
    let Some(run) = spi::first(exec(c, sql::RUN_OF_WALLET, &[wallet_id.into()])?) else {
        return Ok(());
    };
    if run.req::<String>(2)? == "open" {
        return Ok(());
    }
    let id: i64 = run.req(1)?;
    let owner_id: i64 = run.req(3)?;
    let parent: Option<i64> = run.col(4)?;
    let asset: String = run.req(5)?;
    let owner = match parent {
        Some(p) => {
            let name = spi::first(exec(c, sql::RUN_WALLET_NAME, &[p.into()])?)
                .ok_or_else(|| run_missing(p))?
                .req::<String>(1)?;
            authorize::lock_whole(c, &name)?;
            None
        }
        None => {
            let name = ledger::wallet_name(c, owner_id)?;
            let w = authorize::lock_whole(c, &name)?;
            if let Some(pid) = w.parent_id {
                let pool = ledger::wallet_name(c, pid)?;
                authorize::lock_whole(c, &pool)?;
            }
            Some(w)
        }
    };
    let note = format!("run {id} refund after close");
    let (returned, to_pool) = give_back(c, wallet_id, &asset, &note)?;
    exec(
        c,
        sql::RUN_RETURNED_MORE,
        &[id.into(), num(returned).into()],
    )?;
    match (owner, parent) {
        (Some(o), _) => crate::holds::uncount(c, &o, &asset, returned, to_pool, None),
        (None, Some(p)) => {
            // through a parent that has closed too: on up
            let pw = spi::first(exec(c, sql::RUN_GET_WALLET, &[p.into()])?)
                .ok_or_else(|| run_missing(p))?
                .req::<i64>(1)?;
            after_refund(c, pw)
        }
        (None, None) => Ok(()),
    }
}

/// Open an agent run: reserve `budget` from the wallet (own grants, then its pool, within every
/// limit, as a hold of that amount) or from `parent_run`'s remaining budget.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(
    name = "credit_run_open",
    volatile,
    parallel_unsafe,
    security_definer,
    requires = [tenant::tenant_unset]
)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_run_open_v14(
    wallet: Option<&str>,
    budget: Option<AnyNumeric>,
    asset: default!(Option<&str>, "'credits'"),
    parent_run: default!(Option<i64>, "NULL"),
    ttl: default!(Option<Interval>, "'1 hour'"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    max_calls: default!(Option<i32>, "NULL"),
    max_cost_per_call: default!(Option<AnyNumeric>, "NULL"),
    lanes: default!(Option<i32>, 1),
    tenant: default!(Option<&str>, "credit_ledger._tenant_unset()"),
) -> TableIterator<
    'static,
    (
        name!(run_id, i64),
        name!(approved, bool),
        name!(reason, Option<String>),
        name!(budget, AnyNumeric),
        name!(balance, Option<AnyNumeric>),
        name!(asset, String),
        name!(status, String),
        name!(expires_at, TimestampWithTimeZone),
    ),
> {
    TableIterator::once(open_call(
        wallet,
        budget,
        asset,
        parent_run,
        ttl,
        idempotency_key,
        metadata,
        max_calls,
        max_cost_per_call,
        lanes,
        tenant,
    ))
}

/// The arguments of `credit_run_open`, checked, and the run opened (`tenant`, since 0.14.0: the
/// wallet's tenant, which a Citus cluster routes the call by; see [`crate::tenant`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn open_call(
    wallet: Option<&str>,
    budget: Option<AnyNumeric>,
    asset: Option<&str>,
    parent_run: Option<i64>,
    ttl: Option<Interval>,
    idempotency_key: Option<&str>,
    metadata: Option<JsonbText>,
    max_calls: Option<i32>,
    max_cost_per_call: Option<AnyNumeric>,
    lanes: Option<i32>,
    tenant: Option<&str>,
) -> OpenRow {
    or_raise((|| {
        let tenant = input::opt_name(tenant, "tenant")?;
        let wallet = input::name(wallet, "wallet")?;
        let asset = input::name(asset, "asset")?;
        let text = budget
            .as_ref()
            .map(|a| a.to_string())
            .ok_or_else(|| LedgerError::invalid("budget must not be null"))?;
        let budget = crate::amount::positive(crate::amount::parse(&text, "budget")?, "budget")?;
        let ttl = positive_ttl(ttl)?;
        let key = input::key(idempotency_key)?;
        let metadata_value = input::metadata(metadata.as_ref().map(|j| j.0.as_str()))?;
        let lanes = lanes.unwrap_or(1);
        if !(1..=crate::lanes::MAX_LANES).contains(&lanes) {
            return Err(LedgerError::invalid(format!(
                "lanes must be between 1 and {}, got {lanes}",
                crate::lanes::MAX_LANES
            )));
        }
        if max_calls.is_some_and(|n| n < 1) {
            return Err(LedgerError::invalid("max_calls must be at least 1"));
        }
        let max_cost_per_call = max_cost_per_call
            .map(|m| {
                crate::amount::positive(
                    crate::amount::parse(&m.to_string(), "max_cost_per_call")?,
                    "max_cost_per_call",
                )
            })
            .transpose()?;
        let hash = input::fingerprint(&[
            "run",
            &budget.normalize().to_string(),
            asset,
            &parent_run.map(|p| p.to_string()).unwrap_or_default(),
            &format!("{}/{}/{}", ttl.months(), ttl.days(), ttl.micros()),
            &input::json_fingerprint(&metadata_value),
            &format!("{max_calls:?}/{max_cost_per_call:?}/{lanes}"),
        ]);
        let r = OpenRequest {
            wallet,
            budget,
            asset,
            parent: parent_run,
            ttl,
            key,
            hash,
            metadata,
            max_calls,
            max_cost_per_call,
            lanes,
        };
        spi::with(|c| {
            crate::tenant::enter(c, r.wallet, tenant)?;
            open(c, &r)
        })
    })())
}

/// A positive interval (months, days and microseconds none negative), or 22023.
pub fn positive_ttl(ttl: Option<Interval>) -> Result<Interval> {
    let ttl = ttl.ok_or_else(|| LedgerError::invalid("ttl must not be null"))?;
    if ttl.as_micros() <= 0 || ttl.months() < 0 || ttl.days() < 0 || ttl.micros() < 0 {
        return Err(LedgerError::invalid(format!(
            "ttl must be positive, got {ttl}"
        )));
    }
    Ok(ttl)
}

/// Close an agent run and its open sub-runs; every unspent credit goes back to the exact rows
/// it was reserved from. Closing a closed run changes nothing.
#[allow(clippy::type_complexity)]
#[pg_extern(
    name = "credit_run_close",
    volatile,
    parallel_unsafe,
    security_definer,
    requires = [tenant::tenant_unset]
)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_run_close_v14(
    run_id: Option<i64>,
    tenant: default!(Option<&str>, "credit_ledger._tenant_unset()"),
) -> TableIterator<
    'static,
    (
        name!(run_id, i64),
        name!(status, String),
        name!(budget, AnyNumeric),
        name!(spent, AnyNumeric),
        name!(spent_tree, AnyNumeric),
        name!(returned, AnyNumeric),
        name!(closed_at, Option<TimestampWithTimeZone>),
    ),
> {
    TableIterator::once(close_call(run_id, tenant))
}

/// What `credit_run_close` returns.
pub(crate) type CloseRow = (
    i64,
    String,
    AnyNumeric,
    AnyNumeric,
    AnyNumeric,
    AnyNumeric,
    Option<TimestampWithTimeZone>,
);

/// Close run `run_id` (`tenant`, since 0.14.0: its wallet's tenant, as for [`open_call`]).
pub(crate) fn close_call(run_id: Option<i64>, tenant: Option<&str>) -> CloseRow {
    or_raise((|| {
        let tenant = input::opt_name(tenant, "tenant")?;
        let id = run_id.ok_or_else(|| LedgerError::invalid("run_id must not be null"))?;
        spi::with(|c| {
            crate::tenant::enter_row(c, crate::catalog_tenants::RUN_TENANT, id, tenant)?;
            close(c, id, "closed")?;
            let row = spi::first(exec(c, sql::RUN_CLOSE_ROW, &[id.into()])?)
                .ok_or_else(|| run_missing(id))?;
            Ok((
                row.req(1)?,
                row.req(2)?,
                row.req(3)?,
                row.req(4)?,
                row.req(5)?,
                row.req(6)?,
                row.col(7)?,
            ))
        })
    })())
}

/// Close the open runs past their TTL at `as_of` (status `expired`), at most `limit`.
/// Returns how many, and whether more are due.
pub fn sweep(
    c: &mut SpiClient<'_>,
    as_of: TimestampWithTimeZone,
    limit: i64,
) -> Result<(i64, bool)> {
    let mut ids = Vec::new();
    for r in exec(c, sql::RUNS_EXPIRED, &[limit.into(), as_of.into()])? {
        ids.push((r.req::<i64>(1)?, crate::tenant::column(&r, 1)?));
    }
    let mut n = 0;
    let mut more = ids.len() as i64 >= limit;
    for (id, tenant) in ids {
        match crate::tenant::within(c, tenant, |c| close_with(c, id, "expired", true))? {
            Some(true) => n += 1,
            Some(false) => {}
            None => more = true, // busy: the next sweep closes it
        }
    }
    Ok((n, more))
}
