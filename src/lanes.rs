//! Spending lanes: spenders of one wallet (or one team pool) that do not wait for each other.
//!
//! A wallet with `lanes = n > 1` (`credit_wallet_lanes`) keeps each grant's credits in `n`
//! *slices*, one grants row per lane (`home_id` = the grant, `lane` = the lane), and one lock
//! row per lane and asset in `credit_ledger.lanes`. A spender locks one lane whose hint
//! (`free`) covers the cost with `FOR NO KEY UPDATE SKIP LOCKED` and spends that lane's slices
//! only: the credits it takes are its own whatever the other in-flight spenders do, so the
//! approval is exact (escrow) and nobody waits. When no free lane covers the cost, the
//! committed total of every lane decides a decline at once; otherwise the spender takes the
//! *exact path*: the wallet row and every lane, in lane order (waiting for the in-flight
//! spenders), decides on every row in exact consumption order and spreads the credits evenly
//! over the lanes again.
//!
//! Every other operation on such a wallet (grants, captures, releases, refunds, expiry,
//! settings) locks the wallet row and then every lane ([`exclusive`]), so the slices a spender
//! walks under its lane lock change only under that lock. See docs/performance.md "Lanes".

use crate::allocation::Lot;
use crate::amount;
use crate::catalog as sql;
use crate::error::{or_raise, LedgerError, Result};
use crate::input;
use crate::ledger::{self, Movement};
use crate::plan::{Lanes, Plan, Wallet};
use crate::spi::{self, exec, num, RowExt};
use crate::wallets;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::prelude::*;
use std::collections::BTreeMap;

/// The most lanes a wallet may have.
pub const MAX_LANES: i32 = 64;

/// Whether the catalog has lanes (0.4.0 on). This library also serves a catalog of an older
/// version until `ALTER EXTENSION credit_ledger UPDATE` runs; it then uses the statements of
/// that version. Two syscache lookups, no query.
pub fn catalog_has_lanes() -> bool {
    crate::spi::catalog_has(c"lanes", None)
}

/// A statement of this version or, on an older catalog, its older form.
pub fn pick(new: &'static str, old: &'static str) -> &'static str {
    if catalog_has_lanes() {
        new
    } else {
        old
    }
}

/// Lock every lane of a wallet that has lanes, after its row ("the whole wallet": what every
/// operation but a spend takes). A no-op on a catalog without lanes.
pub fn exclusive(c: &mut SpiClient<'_>, wallet_id: i64) -> Result<()> {
    if catalog_has_lanes() {
        exec(c, sql::LANES_LOCK_ALL, &[wallet_id.into()])?;
    }
    Ok(())
}

/// The spender's wallet: locked when it has one lane; read without a lock when it has lanes or
/// is a free member (see [`Wallet::free_member`]). Returns the wallet, its rate card and whether
/// its row is locked.
pub(crate) fn spend_wallet(c: &mut SpiClient<'_>, wallet: &str) -> Result<(Wallet, String, bool)> {
    let missing = || wallets::wallet_missing(wallet);
    if !crate::lanes::catalog_has_lanes() {
        let row = spi::first(exec(c, sql::WALLET_LOCK_FOR_SPEND, &[wallet.into()])?)
            .ok_or_else(missing)?;
        return Ok((Wallet::from_row(&row)?, row.req(9)?, true));
    }
    // one lane (its pool read with it)
    let one_lane = |row: &spi::Row| -> Result<Wallet> {
        let mut w = Wallet::from_row_lanes(row, 10)?;
        // Column 20 is read with the statement's snapshot, taken before the row lock: a grant
        // committed while this call waited for the lock is not seen, and the call then draws
        // as if it came before that grant (the pool's credits are read under their own lock)
        w.own_grants = row.req(20)?;
        w.rooms = row.req(21)?;
        if row.col::<i64>(11)?.is_some() {
            let mut pool = Wallet::from_row_at(row, 10)?;
            pool.lanes = row.req(19)?;
            w.pool = Some(Box::new(pool));
        }
        Ok(w)
    };
    // the row read without a lock: a free member (no grants of its own, the pool's lanes
    // only), or a wallet with lanes
    let unlocked = |row: spi::Row| -> Result<(Wallet, String, bool)> {
        let card = row.req(9)?;
        if row.req::<i32>(10)? == 1 {
            let mut w = one_lane(&row)?;
            w.free_member = true;
            return Ok((w, card, false));
        }
        Ok((Wallet::from_row_lanes(&row, 10)?, card, false))
    };
    // (since 0.11.0 a limited member is read without a lock too: crate::member_rooms)
    let read_unlocked = crate::member_rooms::pick(
        sql::WALLET_FOR_SPEND_UNLOCKED_V11,
        sql::WALLET_FOR_SPEND_UNLOCKED,
    );
    // the wallet this backend last read without a lock is tried that way first (a session
    // spends from the same wallet again and again): one statement instead of two; a free
    // member or a wallet with lanes by the statement without the limited members' condition
    // (its three subplans are started by every execution: see WALLET_LOCK_FOR_SPEND_ALONE)
    if LAST_UNLOCKED.with_borrow(|last| last == wallet) {
        let read_last = if LAST_LIMITED.get() {
            read_unlocked
        } else {
            sql::WALLET_FOR_SPEND_UNLOCKED
        };
        if let Some(row) = spi::first(exec(c, read_last, &[wallet.into()])?) {
            return unlocked(row);
        }
    }
    // a one-lane wallet in no pool (the common case) in one simple statement, unless this
    // backend found the name otherwise before
    let name = input::fingerprint(&[wallet]);
    if !NOT_ALONE.with_borrow(|n| n.contains(name)) {
        if let Some(row) = spi::first(exec(c, sql::WALLET_LOCK_FOR_SPEND_ALONE, &[wallet.into()])?)
        {
            return Ok((one_lane(&row)?, row.req(9)?, true));
        }
        NOT_ALONE.with_borrow_mut(|n| n.insert(name));
    }
    if let Some(row) = spi::first(exec(
        c,
        crate::member_rooms::pick(
            sql::WALLET_LOCK_FOR_SPEND_ONE_LANE_V11,
            sql::WALLET_LOCK_FOR_SPEND_ONE_LANE,
        ),
        &[wallet.into()],
    )?) {
        return Ok((one_lane(&row)?, row.req(9)?, true));
    }
    if let Some(row) = spi::first(exec(c, read_unlocked, &[wallet.into()])?) {
        LAST_UNLOCKED.with_borrow_mut(|last| {
            last.clear();
            last.push_str(wallet);
        });
        // a one-lane wallet read without a lock and tracked is a limited member
        LAST_LIMITED.set(row.req::<i32>(10)? == 1 && row.req::<bool>(8)?);
        return unlocked(row);
    }
    // missing, or its lanes changed between the two statements
    let row = spi::first(exec(c, sql::WALLET_LOCK_FOR_SPEND_V4, &[wallet.into()])?)
        .ok_or_else(missing)?;
    let mut w = Wallet::from_row_lanes(&row, 10)?;
    // (not asked here: folded if it has any)
    w.rooms = true;
    Ok((w, row.req(9)?, true))
}

thread_local! {
    /// The name of the wallet this backend last read for a spend without a lock (a hint only:
    /// the statement checks again that it may be read so).
    static LAST_UNLOCKED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    /// Wallet names this backend found not to be a one-lane wallet in no pool (a hint only).
    static NOT_ALONE: std::cell::RefCell<Seen> = const { std::cell::RefCell::new(Seen::new()) };
    /// Whether [`LAST_UNLOCKED`] was a limited member when it was read (a hint only).
    static LAST_LIMITED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A set of name fingerprints that forgets: a direct-mapped table of [`Seen::SLOTS`] entries,
/// where a name takes the slot of its fingerprint and evicts what was there. A lookup can only
/// err towards "not seen" (the slow path's statement decides anyway), except on a fingerprint
/// collision, which sends one name to the general statement, also correct.
pub(crate) struct Seen {
    slots: Vec<i64>,
}

impl Seen {
    const SLOTS: usize = 4096;

    const fn new() -> Seen {
        Seen { slots: Vec::new() }
    }

    fn slot(name: i64) -> usize {
        (name as u64 % Self::SLOTS as u64) as usize
    }

    fn contains(&self, name: i64) -> bool {
        // (0 marks an empty slot: a name fingerprinted 0 is never remembered)
        name != 0 && self.slots.get(Self::slot(name)) == Some(&name)
    }

    fn insert(&mut self, name: i64) {
        if self.slots.is_empty() {
            self.slots = vec![0; Self::SLOTS];
        }
        let slot = Self::slot(name);
        self.slots[slot] = name;
    }
}

/// After the row of one-lane wallet `wallet_id`: when it is a member of a pool with lanes, lock
/// the pool's lanes too, so that a change of its settings (a limit, an alert, freezing,
/// closing, another pool) waits for its spends in flight, which hold only a pool lane when it is
/// a free member ([`crate::authorize::Wallet::free_member`]); and fold a limited member's
/// rooms ([`crate::member_rooms::fold`]). A no-op otherwise.
pub fn exclusive_member_pool(c: &mut SpiClient<'_>, wallet_id: i64) -> Result<()> {
    if catalog_has_lanes() {
        exec(c, sql::POOL_LANES_LOCK_OF_MEMBER, &[wallet_id.into()])?;
    }
    // a limited member's rooms (its spends in flight hold theirs): folded back into its
    // counters, handed out again by its next spend that holds its row (crate::member_rooms)
    crate::member_rooms::fold(c, wallet_id)
}

/// Lock the lanes of the slices an authorization moved (its wallet's and its pool's), in
/// order; with `skip_locked`, false (nothing decided) when one is busy. The caller holds the
/// wallet rows. True at once for an authorization that moved no slice.
pub fn lock_of_authorization(c: &mut SpiClient<'_>, id: i64, skip_locked: bool) -> Result<bool> {
    if !catalog_has_lanes() {
        return Ok(true);
    }
    if !skip_locked {
        exec(c, sql::LANES_LOCK_OF_AUTH, &[id.into()])?;
        return Ok(true);
    }
    let row = spi::first(exec(c, sql::LANES_TRY_LOCK_OF_AUTH, &[id.into()])?);
    Ok(match row {
        Some(r) => r.req::<i64>(1)? == r.req::<i64>(2)?,
        None => true,
    })
}

/// A spender's lane seed: the idempotency key's hash (a retry goes to the same lane) or
/// `session` (the backend's process id: concurrent sessions start apart). It is reduced to a
/// lane of the wallet actually drawn from ([`start_lane`]): a pool member's seed is taken
/// modulo the pool's lanes, not the member's.
pub fn first_lane(key: Option<&str>, session: i32) -> i32 {
    let h = match key {
        Some(k) => input::fingerprint(&["lane", k]) as u64,
        None => session as u64,
    };
    (h % i32::MAX as u64) as i32
}

thread_local! {
    /// The lane this backend last took, with its wallet and seed: (wallet id, seed, lane).
    static LAST_TAKEN: std::cell::Cell<(i64, i32, i32)> = const { std::cell::Cell::new((0, 0, -1)) };
}

/// The lane a spender with `seed` tries first on a wallet of `lanes` lanes: the one this
/// backend last took there with the same seed (a session keeps its lane while it stays free,
/// so concurrent sessions settle on different lanes instead of probing each other's), else
/// the seed's lane.
pub fn start_lane(wallet_id: i64, seed: i32, lanes: i32) -> i32 {
    let (w, s, l) = LAST_TAKEN.with(|t| t.get());
    if w == wallet_id && s == seed && (0..lanes).contains(&l) {
        l
    } else {
        seed.rem_euclid(lanes.max(1))
    }
}

/// This backend's process id.
pub fn session() -> i32 {
    // SAFETY: a process-wide constant set at backend start
    unsafe { pg_sys::MyProcPid }
}

/// One lane locked by a spender, with its slices in consumption order and the committed
/// total of every spendable row of the wallet x asset.
pub struct Taken {
    pub lane: i32,
    pub lots: Vec<Lot>,
    pub lane_total: Decimal,
    pub total: Decimal,
}

/// What [`take`] looks for.
pub struct Take {
    /// The wallet's lanes.
    pub lanes: i32,
    /// What the lane's hint (and its slices) must cover.
    pub need: Decimal,
    /// See [`first_lane`].
    pub seed: i32,
    /// Also the committed total of the wallet (else the lane's).
    pub with_total: bool,
    /// Under a spend cap sliced over the lanes ([`crate::lane_caps`]), what the lane's room in
    /// the current period must cover too.
    pub room: Option<Decimal>,
    /// Only lanes `from..to` (a limited member's rooms: [`crate::member_rooms::window`]).
    pub window: Option<(i32, i32)>,
    /// Whether a candidate's slices must cover `need` before it is taken ([`sql::LANE_TAKE`]);
    /// else the hint alone decides ([`sql::LANE_TAKE_BY_HINT`]), for a spender that can give
    /// the lane back when its slices pay less ([`Taken::lane_total`] below `need`).
    pub checked: bool,
}

/// Lock a free lane whose hint covers `need` and read its slices, without waiting. None when
/// every lane is busy or none has enough (the caller decides on the committed total, or takes
/// the exact path).
pub fn take(c: &mut SpiClient<'_>, wallet_id: i64, asset: &str, t: Take) -> Result<Option<Taken>> {
    let Take {
        lanes,
        need,
        seed,
        with_total,
        room,
        window,
        checked,
    } = t;
    let (lo, hi) = window.unwrap_or((0, lanes));
    let mut start = start_lane(wallet_id, seed, lanes);
    if !(lo..hi).contains(&start) {
        start = lo + seed.rem_euclid((hi - lo).max(1));
    }
    // from the first lane to the last, then from the window's first lane to the first
    let mut found = None;
    let mut lots = Vec::new();
    // Without the wallet's total: the lane and its slices in one statement, read again only
    // when the lane was rewritten after the statement's snapshot (LANE_TAKE_WALK).
    let statement = match (with_total, room.is_some(), checked) {
        (true, false, true) => sql::LANE_TAKE,
        (false, false, true) => sql::LANE_TAKE_WALK,
        (true, true, true) => sql::LANE_TAKE_CAP,
        (false, true, true) => sql::LANE_TAKE_WALK_CAP,
        (true, false, false) => sql::LANE_TAKE_BY_HINT,
        (false, false, false) => sql::LANE_TAKE_WALK_BY_HINT,
        (true, true, false) => sql::LANE_TAKE_CAP_BY_HINT,
        (false, true, false) => sql::LANE_TAKE_WALK_CAP_BY_HINT,
    };
    let mut fresh = false;
    for (from, to) in [(start, hi), (lo, start)] {
        if from >= to {
            continue;
        }
        let mut args: Vec<pgrx::datum::DatumWithOid> = vec![
            wallet_id.into(),
            asset.into(),
            to.into(),
            num(need).into(),
            from.into(),
        ];
        if let Some(counted) = room {
            args.push(num(counted).into());
        }
        for r in exec(c, statement, &args)? {
            if found.is_none() {
                found = Some(r.req::<i32>(1)?);
                fresh = !with_total && r.req::<bool>(2)?;
            }
            if fresh && r.col::<i64>(3)?.is_some() {
                lots.push(Lot {
                    grant_id: r.req(3)?,
                    wallet_id,
                    available: r.dec(4)?,
                    priority: r.req(5)?,
                    expires_at: r.col(6)?,
                });
            }
        }
        if found.is_some() {
            break;
        }
    }
    let Some(lane) = found else {
        return Ok(None);
    };
    LAST_TAKEN.with(|t| t.set((wallet_id, seed, lane)));
    let mut total = None;
    if !fresh {
        let statement = if with_total {
            sql::LANE_LOTS
        } else {
            sql::LANE_LOTS_ONLY
        };
        for r in exec(c, statement, &[wallet_id.into(), asset.into(), lane.into()])? {
            if with_total && total.is_none() {
                total = Some(spi::to_dec(
                    &r.req::<AnyNumeric>(5)?,
                    "the total of the wallet's spendable grants",
                )?);
            }
            lots.push(lot(&r, wallet_id)?);
        }
    }
    let lane_total = amount::sum(lots.iter().map(|l| l.available))
        .ok_or_else(|| amount::out_of_range("the credits of a lane"))?;
    Ok(Some(Taken {
        lane,
        lots,
        lane_total,
        total: if with_total {
            total.unwrap_or(Decimal::ZERO)
        } else {
            lane_total
        },
    }))
}

fn lot(r: &impl RowExt, wallet_id: i64) -> Result<Lot> {
    Ok(Lot {
        grant_id: r.req(1)?,
        wallet_id,
        available: r.dec(2)?,
        priority: r.req(3)?,
        expires_at: r.col(4)?,
    })
}

/// Every spendable row of a wallet x asset with lanes, in exact consumption order, and their
/// total (committed state; exact when the caller holds every lane).
pub fn all_lots(c: &mut SpiClient<'_>, wallet_id: i64, asset: &str) -> Result<(Vec<Lot>, Decimal)> {
    let mut lots = Vec::new();
    for r in exec(c, sql::LANES_ALL_LOTS, &[wallet_id.into(), asset.into()])? {
        lots.push(lot(&r, wallet_id)?);
    }
    let total = amount::sum(lots.iter().map(|l| l.available))
        .ok_or_else(|| amount::out_of_range("the total of the wallet's spendable grants"))?;
    Ok((lots, total))
}

/// A spender took `spent` from its lane: lower the lane's hint (the caller holds the lane).
pub fn spent(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    asset: &str,
    lane: i32,
    spent: Decimal,
) -> Result<()> {
    if spent > Decimal::ZERO {
        exec(
            c,
            sql::LANE_FREE_ADD,
            &[
                wallet_id.into(),
                asset.into(),
                lane.into(),
                num(-spent).into(),
            ],
        )?;
    }
    Ok(())
}

/// The low-balance alert of a wallet with lanes after a fast spend, without a hot row: judged
/// on `balance` (the committed balance minus this spend: other in-flight spends are not
/// visible), once per crossing. The latch (`wallet_assets.below_threshold`) is taken with
/// `SKIP LOCKED`: a spender that finds it busy leaves the alert to the one holding it (or, if
/// that one rolls back, to the next spend below the threshold). Re-arming stays with the
/// operations that hold the whole wallet (a grant). `name`: the wallet's name, read when None.
pub fn alert(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    name: Option<&str>,
    asset: &str,
    threshold: Decimal,
    balance: Decimal,
) -> Result<()> {
    if balance >= threshold {
        return Ok(());
    }
    let Some(row) = spi::first(exec(c, sql::LATCH_TRY, &[wallet_id.into(), asset.into()])?) else {
        return Ok(());
    };
    if row.req::<bool>(1)? {
        return Ok(());
    }
    // the latch is ours until commit: the counters are read again under it and written back
    let mut state = ledger::WalletState::load(c, wallet_id, asset)?;
    let name = match name {
        Some(n) => n.to_string(),
        None => ledger::wallet_name(c, wallet_id)?,
    };
    state.below_threshold = false;
    ledger::check_alert(c, &mut state, &name, Some(threshold), balance)?;
    exec(c, sql::LATCH_SET, &[wallet_id.into(), asset.into()])?;
    Ok(())
}

/// Spread the unexpired, unheld credits of every grant of a wallet x asset (or of grant
/// `only`) evenly over its `lanes` lanes, then refresh the lane hints. Moves are journal
/// entries of kind `lane` (they net to zero per grant). With `lanes = 1` every grant's credits
/// go back to its home row. The caller holds the whole wallet ([`exclusive`]).
pub fn spread(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    asset: &str,
    lanes: i32,
    only: Option<i64>,
) -> Result<()> {
    let scale = wallets::asset_scale(c, asset)?;
    // grant -> rows (row id, lane, free)
    let mut families: BTreeMap<i64, Vec<(i64, Option<i32>, Decimal)>> = BTreeMap::new();
    for r in exec(
        c,
        sql::LANES_FAMILIES,
        &[wallet_id.into(), asset.into(), only.into()],
    )? {
        families.entry(r.req::<i64>(2)?).or_default().push((
            r.req::<i64>(1)?,
            r.col::<i32>(3)?,
            r.dec(4)?,
        ));
    }
    let mut moves = Vec::new();
    for (home, rows) in families {
        let total = amount::sum(rows.iter().map(|r| r.2))
            .ok_or_else(|| amount::out_of_range("the credits of a grant"))?;
        let targets = shares(total, lanes, scale);
        // current free per lane (None = the home row)
        let mut by_lane: BTreeMap<Option<i32>, (i64, Decimal)> = BTreeMap::new();
        for (id, lane, free) in &rows {
            by_lane.insert(*lane, (*id, *free));
        }
        let mut wanted: BTreeMap<Option<i32>, Decimal> = BTreeMap::new();
        if lanes <= 1 {
            wanted.insert(None, total);
        } else {
            for (k, t) in targets.iter().enumerate() {
                wanted.insert(Some(k as i32), *t);
            }
        }
        let keys: Vec<Option<i32>> = by_lane.keys().chain(wanted.keys()).copied().collect();
        let mut done = std::collections::BTreeSet::new();
        for lane in keys {
            if !done.insert(lane) {
                continue;
            }
            let have = by_lane.get(&lane).map(|x| x.1).unwrap_or(Decimal::ZERO);
            let want = wanted.get(&lane).copied().unwrap_or(Decimal::ZERO);
            if have == want {
                continue;
            }
            let id = match by_lane.get(&lane) {
                Some((id, _)) => *id,
                None => {
                    let Some(k) = lane else { continue };
                    spi::first(exec(c, sql::SLICE_INSERT, &[home.into(), k.into()])?)
                        .ok_or_else(|| {
                            LedgerError::new(
                                crate::error::Kind::Internal,
                                "slice insert returned nothing",
                            )
                        })?
                        .req::<i64>(1)?
                }
            };
            moves.push(Movement::grant(
                id,
                wallet_id,
                "lane",
                want - have,
                Decimal::ZERO,
            ));
        }
    }
    ledger::apply_moves(c, &moves, asset, None, None, None)?;
    if lanes > 1 {
        // the alert latch row exists before any spender needs it (taken with SKIP LOCKED)
        exec(c, sql::LATCH_ENSURE, &[wallet_id.into(), asset.into()])?;
        exec(
            c,
            sql::LANES_ENSURE,
            &[wallet_id.into(), asset.into(), lanes.into()],
        )?;
    }
    exec(c, sql::LANES_REFRESH, &[wallet_id.into(), lanes.into()])?;
    Ok(())
}

/// After a spend on wallets with lanes: lower the hint (and, under a sliced spend cap, the
/// room) of each lane a fast spend took, or spread the credits (and the room under the cap)
/// of a wallet held whole over its lanes again. `cost`: what the wallet's cap counts of an
/// approved call.
pub(crate) fn after_spend(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    p: &Plan,
    asset: &str,
    lanes: Lanes,
    cost: Decimal,
) -> Result<()> {
    let approved = p.reason.is_none();
    if let Some(lane) = p.own_lane {
        if p.own_cap.is_some() {
            let counted = if approved { cost } else { Decimal::ZERO };
            crate::lane_caps::spend(c, w.id, asset, lane, p.own_part, counted)?;
        } else {
            crate::lanes::spent(c, w.id, asset, lane, p.own_part)?;
        }
    } else if lanes == Lanes::Exact && w.lanes > 1 {
        crate::lanes::spread(c, w.id, asset, w.lanes, None)?;
        if let (Some(cap), Some(state)) = (p.own_cap, p.own_state.as_ref()) {
            crate::lane_caps::spread(c, w.id, asset, w.lanes, Some(cap), state)?;
        }
    }
    if let (Some(pid), Some(lane)) = (p.parent_id, p.pool_lane) {
        if p.pool_cap.is_some() {
            crate::lane_caps::spend(c, pid, asset, lane, p.pool_part, p.pool_part)?;
        } else {
            crate::lanes::spent(c, pid, asset, lane, p.pool_part)?;
        }
    } else if let (Some(pid), true) = (p.parent_id, p.pool_exclusive && p.pool_lanes > 1) {
        crate::lanes::spread(c, pid, asset, p.pool_lanes, None)?;
        if let (Some(cap), Some(state)) = (p.pool_cap, p.parent_state.as_ref()) {
            crate::lane_caps::spread(c, pid, asset, p.pool_lanes, Some(cap), state)?;
        }
    }
    Ok(())
}

/// `total` split into `lanes` shares at the asset's scale: equal shares rounded down, the
/// rest in lane 0. The shares add up to `total` exactly.
pub fn shares(total: Decimal, lanes: i32, scale: u32) -> Vec<Decimal> {
    let n = lanes.max(1) as usize;
    let base = (total / Decimal::from(n as i64))
        .round_dp_with_strategy(scale, RoundingStrategy::ToZero)
        .max(Decimal::ZERO);
    let mut out = vec![base; n];
    out[0] = total - base * Decimal::from((n - 1) as i64);
    out
}

/// Set a wallet's lanes (1 to [`MAX_LANES`]) and spread its credits over them, or (`lanes`
/// NULL) report them. Returns the wallet's lanes.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_wallet_lanes(wallet: Option<&str>, lanes: default!(Option<i32>, "NULL")) -> i32 {
    or_raise((|| -> Result<i32> {
        let wallet = input::name(wallet, "wallet")?;
        if let Some(n) = lanes {
            if !(1..=MAX_LANES).contains(&n) {
                return Err(LedgerError::invalid(format!(
                    "lanes must be between 1 and {MAX_LANES}, got {n}"
                )));
            }
        }
        spi::with(|c| {
            crate::tenant::enter(c, wallet, None)?;
            let row = spi::first(exec(c, sql::WALLET_LOCK_KEY, &[wallet.into()])?)
                .ok_or_else(|| wallets::wallet_missing(wallet))?;
            let id = row.req::<i64>(1)?;
            let cur = spi::first(exec(c, sql::WALLET_LANES, &[id.into()])?)
                .map(|r| r.req::<i32>(1))
                .transpose()?
                .unwrap_or(1);
            let Some(n) = lanes else { return Ok(cur) };
            crate::corrections::refuse_closed(c, id, wallet)?;
            if crate::runs::catalog_has_runs()
                && spi::first(exec(c, sql::WALLET_IS_RUN, &[id.into()])?).is_some()
            {
                // a run's lanes are set when it opens (credit_run_open(lanes => n))
                return Err(LedgerError::invalid(format!(
                    "wallet \"{wallet}\" is an agent run's wallet: its lanes are set by credit_run_open"
                )));
            }
            exclusive(c, id)?;
            if n != cur {
                // a member with lanes is no limited member: its rooms go back to its counters
                // (crate::member_rooms; it waits for the member's own open calls)
                crate::member_rooms::fold_locked(c, &Wallet::from_row(&row)?)?;
                exec(c, sql::WALLET_SET_LANES, &[id.into(), n.into()])?;
            }
            let assets: Vec<String> = exec(c, sql::LANES_ASSETS, &[id.into()])?
                .into_iter()
                .map(|r| r.req::<String>(1))
                .collect::<Result<_>>()?;
            for asset in assets {
                spread(c, id, &asset, n, None)?;
            }
            // lanes of assets without credits now: their hints are refreshed (zero beyond n)
            exec(c, sql::LANES_REFRESH, &[id.into(), n.into()])?;
            // and the room under a spend cap, over the new lanes (crate::lane_caps)
            crate::lane_caps::refresh(c, id)?;
            Ok(n)
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_at_scale() {
        let s = shares(Decimal::new(1000, 0), 3, 4);
        assert_eq!(s.len(), 3);
        assert_eq!(s.iter().sum::<Decimal>(), Decimal::new(1000, 0));
        assert_eq!(s[1], Decimal::new(3_333_333, 4));
        let s = shares(Decimal::new(5, 0), 16, 0);
        assert_eq!(s[0], Decimal::new(5, 0));
        assert!(s[1..].iter().all(|x| x.is_zero()));
        let one = shares(Decimal::new(7, 1), 1, 4);
        assert_eq!(one, vec![Decimal::new(7, 1)]);
    }

    #[test]
    fn seen_remembers_and_forgets_by_slot() {
        let mut s = Seen::new();
        assert!(!s.contains(42));
        s.insert(42);
        assert!(s.contains(42));
        assert!(!s.contains(43));
        // a name with the same slot evicts the first
        s.insert(42 + Seen::SLOTS as i64);
        assert!(!s.contains(42));
        assert!(s.contains(42 + Seen::SLOTS as i64));
        assert!(!s.contains(0));
    }

    #[test]
    fn first_lane_is_stable_for_a_key() {
        assert_eq!(first_lane(Some("k1"), 1), first_lane(Some("k1"), 2));
        assert!(first_lane(Some("k2"), 3) >= 0);
        assert_eq!(first_lane(None, 35), 35);
    }

    #[test]
    fn start_lane_reduces_the_seed_to_the_wallet_drawn_from() {
        // a pool member's seed picks among the pool's lanes (0.9.0 reduced it modulo the
        // member's single lane first: every member started at lane 0)
        assert_eq!(start_lane(7, first_lane(None, 35), 16), 3);
        assert_eq!(start_lane(7, first_lane(None, 35), 48), 35);
        assert!((0..16).contains(&start_lane(7, first_lane(Some("k2"), 3), 16)));
        // the lane last taken with the same seed on the same wallet comes first
        LAST_TAKEN.with(|t| t.set((7, 35, 10)));
        assert_eq!(start_lane(7, 35, 48), 10);
        assert_eq!(start_lane(8, 35, 48), 35);
        assert_eq!(start_lane(7, 36, 48), 36);
        assert_eq!(start_lane(7, 35, 8), 3);
    }
}
