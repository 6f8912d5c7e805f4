//! A backend-local cache of rates, so the hot path does not plan and run the rate lookup
//! (a lateral join with a sort) on every call.
//!
//! What is cached: per (rate card, action), every version of every rate of that card and of
//! `default` for the action (past and future `effective_from`), with its asset's scale.
//! [`pick`] chooses among them exactly as the SQL lookup did: the wallet's own card before
//! `default`, the exact variant before the NULL-variant entry, then the latest version in
//! effect at the transaction's `now()`.
//!
//! Invalidation: a statement trigger on `credit_ledger.rates` and `credit_ledger.assets`
//! (any INSERT, UPDATE, DELETE or TRUNCATE, whoever runs it) calls [`rates_changed`], which
//! queues a relcache invalidation of the table. PostgreSQL delivers it to this backend at
//! once (same transaction, at the next command) and to every other backend at commit; a
//! callback registered here empties the cache when it arrives, and before each lookup the
//! backend accepts pending invalidations, so a committed rate change is seen by the next
//! statement of every session, like a plain SELECT would. A rolled-back change also
//! empties the cache (PostgreSQL replays the invalidation on abort). Dropping the
//! extension invalidates the tables too. Transactions under REPEATABLE READ or SERIALIZABLE
//! bypass the cache (their snapshot may be older than the invalidations already consumed).

use crate::catalog as sql;
use crate::error;
use crate::spi::{exec, RowExt};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use rust_decimal::Decimal;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// One version of one rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: i64,
    pub rate_card: String,
    pub variant: Option<String>,
    pub credits: Decimal,
    pub asset: String,
    pub vendor_cost: Option<Decimal>,
    /// Microseconds since the Unix epoch.
    pub effective_from: i64,
    pub scale: u32,
    /// The variant to degrade to (since 0.7.0; always None on an older catalog).
    pub fallback: Option<String>,
    /// Volume tiers (since 0.8.0; always None on an older catalog).
    pub tiers: Option<Vec<crate::tiers::Tier>>,
}

impl From<Entry> for crate::plan::Rate {
    fn from(e: Entry) -> Self {
        crate::plan::Rate {
            id: e.id,
            credits: e.credits,
            asset: e.asset,
            vendor_cost: e.vendor_cost,
            scale: e.scale,
            fallback: e.fallback,
            tiers: e.tiers,
        }
    }
}

/// The rate a call at `now` (µs since the Unix epoch) uses among `entries` (all for one action):
/// own card (`card`) before `default`, exact variant before the NULL-variant entry, latest
/// version in effect; ties (impossible under the unique index) go to the higher id.
pub fn pick<'a>(
    entries: &'a [Entry],
    card: &str,
    variant: Option<&str>,
    now: i64,
) -> Option<&'a Entry> {
    entries
        .iter()
        .filter(|e| e.rate_card == card || e.rate_card == "default")
        .filter(|e| e.variant.is_none() || (variant.is_some() && e.variant.as_deref() == variant))
        .filter(|e| e.effective_from <= now)
        .max_by_key(|e| {
            (
                e.rate_card == card,
                e.variant.is_some(),
                e.effective_from,
                e.id,
            )
        })
}

/// (rate card, action) -> every version of its rates.
type Cache = HashMap<(String, String), Rc<Vec<Entry>>>;

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(HashMap::new());
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// Relcache invalidation callback: any invalidation of a table (or a full reset) empties the
/// cache. Invalidations of other tables are frequent only during DDL; checking the OID would
/// need a catalog lookup here, where none is allowed, so every invalidation clears it.
#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    // never panics: try_with fails only during thread teardown
    let _ = CACHE.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.clear();
        }
    });
}

fn ensure_registered() {
    if !REGISTERED.with(|r| r.get()) {
        // SAFETY: a plain C callback, registered once per backend (PostgreSQL allows a few dozen)
        unsafe {
            pg_sys::CacheRegisterRelcacheCallback(
                Some(on_relcache_invalidation),
                pg_sys::Datum::from(0),
            )
        };
        REGISTERED.with(|r| r.set(true));
    }
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// The transaction's `now()` in µs since the Unix epoch.
fn now_us() -> i64 {
    crate::spi::transaction_start() + PG_EPOCH_OFFSET_US
}

/// The rates of `action` on `card` and `default`, from the cache or loaded.
fn entries(c: &mut SpiClient<'_>, card: &str, action: &str) -> error::Result<Rc<Vec<Entry>>> {
    ensure_registered();
    // SAFETY: inside a transaction; processes queued invalidations (ours and others' commits)
    unsafe { pg_sys::AcceptInvalidationMessages() };
    // Under REPEATABLE READ or SERIALIZABLE every statement reads the transaction's first
    // snapshot: rates loaded now may predate a change whose invalidation this backend has
    // already consumed, so caching them would serve the old price to this backend's later
    // transactions. Such transactions read the rates themselves and neither use nor fill the
    // cache (isolation spec `rate_cache_repeatable_read`).
    let shared = !xact_snapshot();
    let key = (card.to_string(), action.to_string());
    if shared {
        if let Some(hit) = CACHE.with(|m| m.borrow().get(&key).cloned()) {
            return Ok(hit);
        }
    }
    let mut out = Vec::new();
    let fallbacks = crate::overage::catalog_has_fallback();
    let statement = if fallbacks {
        sql::RATES_FOR_ACTION_V7
    } else {
        sql::RATES_FOR_ACTION
    };
    for row in exec(c, statement, &[action.into(), card.into()])? {
        out.push(Entry {
            id: row.req(1)?,
            rate_card: row.req(2)?,
            variant: row.col(3)?,
            credits: row.dec(4)?,
            asset: row.req(5)?,
            vendor_cost: row.opt_dec(6)?,
            effective_from: row.req(7)?,
            scale: row.req::<i32>(8)? as u32,
            fallback: if fallbacks { row.col(9)? } else { None },
            tiers: None,
        });
        if fallbacks {
            // column 10: the tiers (NULL before 0.8.0: to_jsonb(r) has no such key)
            let text: Option<String> = row.col(10)?;
            let e = out.last_mut().ok_or_else(|| {
                error::LedgerError::new(error::Kind::Internal, "rate cache entry lost")
            })?;
            e.tiers = crate::tiers::parse_text(text.as_deref(), e.credits, "stored tiers")?;
        }
    }
    let out = Rc::new(out);
    if shared {
        CACHE.with(|m| m.borrow_mut().insert(key, out.clone()));
    }
    Ok(out)
}

/// `IsolationUsesXactSnapshot()`: the transaction reads one snapshot for all its statements.
fn xact_snapshot() -> bool {
    // SAFETY: a plain int global of the backend, read inside a transaction
    unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 }
}

/// The rate for `action`/`variant` on rate card `card` (or `default`) in effect now.
pub fn lookup(
    c: &mut SpiClient<'_>,
    card: &str,
    action: &str,
    variant: Option<&str>,
) -> error::Result<Option<Entry>> {
    let all = entries(c, card, action)?;
    Ok(pick(&all, card, variant, now_us()).cloned())
}

/// Statement trigger on `credit_ledger.rates` and `credit_ledger.assets`: queue a relcache
/// invalidation of the table, which empties every backend's rate cache (see the module docs).
#[pg_trigger]
fn _credit_rates_changed<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, pgrx::AllocatedByPostgres>>, pgrx::PgTriggerError> {
    let relid = trigger.relation()?.oid();
    // SAFETY: a valid relation OID; the invalidation is transactional
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn e(id: i64, card: &str, variant: Option<&str>, eff: i64) -> Entry {
        Entry {
            id,
            rate_card: card.into(),
            variant: variant.map(String::from),
            credits: Decimal::from(id),
            asset: "credits".into(),
            vendor_cost: None,
            effective_from: eff,
            scale: 4,
            fallback: None,
            tiers: None,
        }
    }

    #[test]
    fn own_card_before_default_exact_variant_before_null_latest_in_effect() {
        let all = vec![
            e(1, "default", None, 0),
            e(2, "default", Some("haiku"), 0),
            e(3, "pro", None, 0),
            e(4, "pro", Some("haiku"), 10),
            e(5, "pro", Some("haiku"), 100),
        ];
        assert_eq!(pick(&all, "default", None, 50).map(|r| r.id), Some(1));
        assert_eq!(
            pick(&all, "default", Some("haiku"), 50).map(|r| r.id),
            Some(2)
        );
        assert_eq!(
            pick(&all, "default", Some("opus"), 50).map(|r| r.id),
            Some(1)
        );
        assert_eq!(pick(&all, "pro", None, 50).map(|r| r.id), Some(3));
        assert_eq!(pick(&all, "pro", Some("haiku"), 50).map(|r| r.id), Some(4));
        assert_eq!(pick(&all, "pro", Some("haiku"), 100).map(|r| r.id), Some(5));
        assert_eq!(pick(&all, "pro", Some("haiku"), 5).map(|r| r.id), Some(3));
        assert_eq!(pick(&all, "other", Some("haiku"), 5).map(|r| r.id), Some(2));
        assert_eq!(pick(&all, "pro", Some("haiku"), -1).map(|r| r.id), None);
    }

    /// The SQL ORDER BY, written out as a sort, agrees with `pick` on random rate tables.
    fn reference<'a>(
        all: &'a [Entry],
        card: &str,
        variant: Option<&str>,
        now: i64,
    ) -> Option<&'a Entry> {
        let mut c: Vec<&Entry> = all
            .iter()
            .filter(|r| r.rate_card == card || r.rate_card == "default")
            .filter(|r| r.variant.as_deref() == variant || r.variant.is_none())
            .filter(|r| r.effective_from <= now)
            .collect();
        c.sort_by(|a, b| {
            (b.rate_card == card)
                .cmp(&(a.rate_card == card))
                .then((b.variant.is_some()).cmp(&a.variant.is_some()))
                .then(b.effective_from.cmp(&a.effective_from))
                .then(b.id.cmp(&a.id))
        });
        c.first().copied()
    }

    proptest! {
        #[test]
        fn pick_matches_the_sql_order(
            rows in proptest::collection::vec((0usize..3, 0usize..3, 0i64..5), 0..12),
            card in 0usize..3, variant in 0usize..3, now in -1i64..6,
        ) {
            let cards = ["default", "pro", "team"];
            let variants = [None, Some("a"), Some("b")];
            let all: Vec<Entry> = rows.iter().enumerate()
                .map(|(i, (c, v, t))| e(i as i64 + 1, cards[*c], variants[*v], *t)).collect();
            let want = reference(&all, cards[card], variants[variant], now).map(|r| r.id);
            let got = pick(&all, cards[card], variants[variant], now).map(|r| r.id);
            prop_assert_eq!(got, want);
        }
    }
}
