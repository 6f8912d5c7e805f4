//! Assets and wallets: `credit_asset_define`, `credit_wallet_create`, `credit_wallet_update`.
//!
//! Invariants: an asset's scale never changes once defined; pools are one level deep (a team
//! wallet and its members): a member cannot have members and a wallet with members cannot
//! join a pool, so cycles are impossible. Locking: settings changes lock the wallet row
//! (`FOR NO KEY UPDATE`), the same lock every debit takes first.

use crate::catalog as sql;
use crate::error::{or_raise, Kind, LedgerError, Result};
use crate::input;
use crate::spi::{self, exec, num, opt_num, RowExt};
use crate::types::JsonbText;
use crate::types::Record;
use pgrx::datum::DatumWithOid;
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// Scale of an asset, or a 42704 error naming it.
pub fn asset_scale(c: &mut SpiClient<'_>, asset: &str) -> Result<u32> {
    match spi::first(exec(c, sql::ASSET_GET, &[asset.into()])?) {
        Some(row) => Ok(row.req::<i32>(1)? as u32),
        None => Err(
            LedgerError::not_found(format!("asset \"{asset}\" does not exist"))
                .hint("define it with credit_asset_define()"),
        ),
    }
}

/// (id, parent_id) of a wallet, or a 42704 error naming it.
pub fn wallet_id(c: &mut SpiClient<'_>, wallet: &str) -> Result<(i64, Option<i64>)> {
    match spi::first(exec(c, sql::WALLET_ID, &[wallet.into()])?) {
        Some(row) => Ok((row.req::<i64>(1)?, row.col::<i64>(2)?)),
        None => Err(wallet_missing(wallet)),
    }
}

pub fn wallet_missing(wallet: &str) -> LedgerError {
    if crate::tenant::by_caller() {
        // the caller named a tenant (crate::tenant): the wallet is not in it
        let tenant = crate::tenant::current().unwrap_or_default();
        return LedgerError::not_found(format!(
            "wallet \"{wallet}\" does not exist in tenant \"{tenant}\""
        ))
        .hint("a wallet's tenant is its pool's key, or its own key without a pool");
    }
    LedgerError::not_found(format!("wallet \"{wallet}\" does not exist"))
        .hint("create it with credit_wallet_create()")
}

fn check_rate_card(c: &mut SpiClient<'_>, card: Option<&str>) -> Result<()> {
    if let Some(card) = card {
        if spi::first(exec(c, sql::RATE_CARD_EXISTS, &[card.into()])?).is_none() {
            return Err(
                LedgerError::not_found(format!("rate card \"{card}\" does not exist"))
                    .hint("create it with credit_rate_set() or credit_rate_card_load()"),
            );
        }
    }
    Ok(())
}

fn opt_amount(v: Option<AnyNumeric>, what: &str) -> Result<Option<Decimal>> {
    spi::opt_dec(v, what)?
        .map(|d| crate::amount::non_negative(d, what))
        .transpose()
}

/// Check that `parent` can take `child` (None: a wallet being created) as a member. Pool
/// structure changes are serialized first ([`sql::POOL_STRUCTURE_LOCK`]), so two concurrent
/// changes cannot each pass the check and together build a cycle or a second level: the later
/// one waits and checks against the earlier one's committed result (READ COMMITTED), or fails
/// with 40001 (REPEATABLE READ, whose snapshot cannot see that result).
fn check_parent(c: &mut SpiClient<'_>, parent: &str, child: Option<(i64, &str)>) -> Result<i64> {
    exec(c, sql::POOL_STRUCTURE_LOCK, &[])?;
    // (the parent may be in another tenant than the scope's: see tenant::refuse_move)
    let (pid, grandparent) = crate::tenant::within_key(c, parent, |c| wallet_id(c, parent))?;
    if grandparent.is_some() {
        return Err(LedgerError::invalid(format!(
            "wallet \"{parent}\" is itself a pool member and cannot be a parent"
        ))
        .detail("pools are one level deep: a team wallet and its members"));
    }
    if let Some((cid, name)) = child {
        if cid == pid {
            return Err(LedgerError::invalid(format!(
                "wallet \"{name}\" cannot be its own parent"
            )));
        }
        let members = spi::first(exec(c, sql::WALLET_CHILDREN, &[cid.into()])?)
            .map(|r| r.req::<i64>(1))
            .transpose()?;
        if members.unwrap_or(0) > 0 {
            return Err(LedgerError::invalid(format!(
                "wallet \"{name}\" has members and cannot join a pool"
            ))
            .detail("pools are one level deep: a team wallet and its members"));
        }
    }
    Ok(pid)
}

/// The `credit_wallet` value of a wallet.
pub fn wallet_tuple(c: &mut SpiClient<'_>, wallet: &str) -> Result<Record> {
    let row = spi::first(exec(c, sql::WALLET_ROW, &[wallet.into()])?)
        .ok_or_else(|| wallet_missing(wallet))?;
    let mut t = Record::new("credit_wallet");
    t.push(row.col::<String>(1)?);
    t.push(row.col::<String>(2)?);
    t.push(row.col::<String>(3)?);
    t.push(row.col::<AnyNumeric>(4)?);
    t.push(row.col::<AnyNumeric>(5)?);
    t.push(row.col::<AnyNumeric>(6)?);
    t.push(row.col::<AnyNumeric>(7)?);
    t.push(row.col::<Interval>(8)?);
    t.push(row.col::<bool>(9)?);
    t.push(row.col::<JsonbText>(10)?);
    t.push(row.col::<TimestampWithTimeZone>(11)?);
    Ok(t)
}

/// Define an asset (a unit of value with a fixed decimal scale). Re-defining an existing asset
/// with the same scale only updates its description; another scale is an error.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_asset_define(
    asset: Option<&str>,
    scale: default!(Option<i32>, 4),
    description: default!(Option<&str>, "NULL"),
) -> String {
    or_raise((|| {
        let asset = input::name(asset, "asset")?;
        if !asset
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
            || !asset.starts_with(|ch: char| ch.is_ascii_lowercase())
        {
            return Err(
                LedgerError::invalid(format!("asset name \"{asset}\" is not valid"))
                    .hint("use lower-case letters, digits and underscores, starting with a letter"),
            );
        }
        let description = input::text(description, "description")?;
        let scale = scale.ok_or_else(|| LedgerError::invalid("scale must not be null"))?;
        if !(0..=12).contains(&scale) {
            return Err(
                LedgerError::invalid(format!("scale {scale} is out of range"))
                    .detail("scale must be between 0 and 12"),
            );
        }
        spi::with(|c| {
            crate::citus::refuse_on_worker(c)?;
            match spi::first(exec(c, sql::ASSET_GET, &[asset.into()])?) {
                Some(row) => {
                    let existing = row.req::<i32>(1)?;
                    if existing != scale {
                        return Err(LedgerError::wrong_state(format!(
                            "asset \"{asset}\" already has scale {existing}"
                        ))
                        .detail(format!("requested scale {scale}"))
                        .hint("an asset's scale cannot change once defined"));
                    }
                    let current = row.col::<String>(2)?;
                    if asset == "credits"
                        && description.is_some()
                        && description != current.as_deref()
                    {
                        return Err(LedgerError::wrong_state("the built-in asset \"credits\" cannot be changed")
                            .detail("built-in rows are recreated by CREATE EXTENSION and not kept by pg_dump"));
                    }
                    exec(c, sql::ASSET_DESCRIBE, &[asset.into(), description.into()])?;
                }
                None => {
                    exec(
                        c,
                        sql::ASSET_INSERT,
                        &[asset.into(), scale.into(), description.into()],
                    )?;
                }
            }
            Ok(asset.to_string())
        })
    })())
}

/// Create a wallet. Creating a wallet that exists with the same settings returns it unchanged
/// (idempotent); with other settings it is an error (42710).
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_wallet_create(
    wallet: Option<&str>,
    parent: default!(Option<&str>, "NULL"),
    rate_card: default!(Option<&str>, "NULL"),
    overdraft_limit: default!(Option<AnyNumeric>, 0),
    low_balance_threshold: default!(Option<AnyNumeric>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    spend_cap: default!(Option<AnyNumeric>, "NULL"),
    pool_limit: default!(Option<AnyNumeric>, "NULL"),
    period: default!(Option<Interval>, "NULL"),
    period_anchor: default!(Option<TimestampWithTimeZone>, "NULL"),
) -> pgrx::composite_type!('static, "credit_wallet") {
    or_raise((|| -> Result<Record> {
        let wallet = input::name(wallet, "wallet")?;
        let parent = input::opt_name(parent, "parent")?;
        let rate_card = input::opt_name(rate_card, "rate_card")?;
        let overdraft = opt_amount(overdraft_limit, "overdraft_limit")?.unwrap_or(Decimal::ZERO);
        let threshold = spi::opt_dec(low_balance_threshold, "low_balance_threshold")?;
        let spend_cap = opt_amount(spend_cap, "spend_cap")?;
        let pool_limit = opt_amount(pool_limit, "pool_limit")?;
        input::metadata(metadata.as_ref().map(|j| j.0.as_str()))?;
        check_period(&period)?;
        spi::with(|c| {
            crate::citus::refuse_on_worker(c)?;
            crate::tenant::enter(c, wallet, None)?;
            if spi::first(exec(c, sql::WALLET_ID, &[wallet.into()])?).is_some() {
                return existing_wallet(
                    c, wallet, parent, rate_card, overdraft, threshold, spend_cap, pool_limit,
                    &metadata,
                );
            }
            if let Some(p) = parent {
                // a member is in its pool's tenant
                crate::tenant::enter(c, p, None)?;
            }
            let parent_id = parent.map(|p| check_parent(c, p, None)).transpose()?;
            if pool_limit.is_some() && parent_id.is_none() {
                return Err(
                    LedgerError::invalid("pool_limit applies only to a pool member")
                        .hint("set parent as well"),
                );
            }
            check_rate_card(c, rate_card)?;
            let args: Vec<DatumWithOid> = vec![
                wallet.into(),
                parent_id.into(),
                rate_card.into(),
                num(overdraft).into(),
                opt_num(threshold).into(),
                opt_num(spend_cap).into(),
                opt_num(pool_limit).into(),
                metadata.into(),
                period.into(),
                period_anchor.into(),
            ];
            exec(c, sql::WALLET_INSERT, &args)?;
            wallet_tuple(c, wallet)
        })
    })())
    .build()
}

#[allow(clippy::too_many_arguments)]
fn existing_wallet(
    c: &mut SpiClient<'_>,
    wallet: &str,
    parent: Option<&str>,
    rate_card: Option<&str>,
    overdraft: Decimal,
    threshold: Option<Decimal>,
    spend_cap: Option<Decimal>,
    pool_limit: Option<Decimal>,
    metadata: &Option<JsonbText>,
) -> Result<Record> {
    let row = spi::first(exec(c, sql::WALLET_ROW, &[wallet.into()])?)
        .ok_or_else(|| wallet_missing(wallet))?;
    let same = row.col::<String>(2)?.as_deref() == parent
        && row.col::<String>(3)?.as_deref() == rate_card
        && row.dec(4)? == overdraft
        && row.opt_dec(5)? == threshold
        && row.opt_dec(6)? == spend_cap
        && row.opt_dec(7)? == pool_limit
        // both texts come from jsonb_out: equal jsonb values print alike
        && row.col::<JsonbText>(10)?.map(|j| j.0).as_deref()
            == Some(metadata.as_ref().map_or("{}", |j| j.0.as_str()));
    if !same {
        return Err(LedgerError::new(
            Kind::Duplicate,
            format!("wallet \"{wallet}\" already exists with other settings"),
        )
        .hint("change settings with credit_wallet_update()"));
    }
    wallet_tuple(c, wallet)
}

fn check_period(period: &Option<Interval>) -> Result<()> {
    if let Some(p) = period {
        if p.months() < 0
            || p.days() < 0
            || p.micros() < 0
            || (p.months() == 0 && p.days() == 0 && p.micros() < 3_600_000_000)
        {
            return Err(LedgerError::invalid(
                "period must be positive and at least one hour",
            ));
        }
    }
    Ok(())
}

/// Change a wallet's settings. NULL leaves a setting unchanged; name settings in `clear` to
/// reset them (`parent`, `rate_card`, `low_balance_threshold`, `spend_cap`, `pool_limit`, `period`).
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_wallet_update(
    wallet: Option<&str>,
    rate_card: default!(Option<&str>, "NULL"),
    overdraft_limit: default!(Option<AnyNumeric>, "NULL"),
    low_balance_threshold: default!(Option<AnyNumeric>, "NULL"),
    spend_cap: default!(Option<AnyNumeric>, "NULL"),
    pool_limit: default!(Option<AnyNumeric>, "NULL"),
    frozen: default!(Option<bool>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    parent: default!(Option<&str>, "NULL"),
    period: default!(Option<Interval>, "NULL"),
    period_anchor: default!(Option<TimestampWithTimeZone>, "NULL"),
    clear: default!(Option<Vec<Option<String>>>, "NULL"),
) -> pgrx::composite_type!('static, "credit_wallet") {
    or_raise((|| -> Result<Record> {
        let wallet = input::name(wallet, "wallet")?;
        let rate_card = input::opt_name(rate_card, "rate_card")?;
        let parent = input::opt_name(parent, "parent")?;
        let overdraft = opt_amount(overdraft_limit, "overdraft_limit")?;
        let threshold = spi::opt_dec(low_balance_threshold, "low_balance_threshold")?;
        let spend_cap = opt_amount(spend_cap, "spend_cap")?;
        let pool_limit = opt_amount(pool_limit, "pool_limit")?;
        input::metadata(metadata.as_ref().map(|j| j.0.as_str()))?;
        check_period(&period)?;
        let clear: Vec<String> = clear
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.ok_or_else(|| LedgerError::invalid("clear must not contain NULL")))
            .collect::<Result<_>>()?;
        const CLEARABLE: [&str; 6] = [
            "parent",
            "rate_card",
            "low_balance_threshold",
            "spend_cap",
            "pool_limit",
            "period",
        ];
        if let Some(bad) = clear.iter().find(|s| !CLEARABLE.contains(&s.as_str())) {
            return Err(
                LedgerError::invalid(format!("setting \"{bad}\" cannot be cleared"))
                    .hint(format!("clearable settings: {}", CLEARABLE.join(", "))),
            );
        }
        let clears = |name: &str| clear.iter().any(|s| s == name);
        spi::with(|c| {
            crate::tenant::enter(c, wallet, None)?;
            let cur = spi::first(exec(c, sql::WALLET_LOCK_KEY, &[wallet.into()])?)
                .ok_or_else(|| wallet_missing(wallet))?;
            let id = cur.req::<i64>(1)?;
            crate::lanes::exclusive(c, id)?;
            crate::lanes::exclusive_member_pool(c, id)?;
            crate::corrections::refuse_closed(c, id, wallet)?;
            let row = spi::first(exec(c, sql::WALLET_ROW, &[wallet.into()])?)
                .ok_or_else(|| wallet_missing(wallet))?;
            let old_parent = row.col::<String>(2)?;
            let new_parent_id = match (parent, clears("parent")) {
                (Some(p), _) => {
                    let pid = check_parent(c, p, Some((id, wallet)))?;
                    crate::tenant::refuse_move(c, wallet, p)?;
                    Some(pid)
                }
                (None, true) => None,
                (None, false) => cur.col::<i64>(2)?,
            };
            let _ = old_parent;
            let new_card = match (rate_card, clears("rate_card")) {
                (Some(r), _) => {
                    check_rate_card(c, Some(r))?;
                    Some(r.to_string())
                }
                (None, true) => None,
                (None, false) => row.col::<String>(3)?,
            };
            let pick = |new: Option<Decimal>, name: &str, old: Option<Decimal>| {
                if new.is_some() {
                    new
                } else if clears(name) {
                    None
                } else {
                    old
                }
            };
            let overdraft = overdraft.unwrap_or(row.dec(4)?);
            let threshold = pick(threshold, "low_balance_threshold", row.opt_dec(5)?);
            let spend_cap = pick(spend_cap, "spend_cap", row.opt_dec(6)?);
            let pool_limit = pick(pool_limit, "pool_limit", row.opt_dec(7)?);
            if pool_limit.is_some() && new_parent_id.is_none() {
                return Err(
                    LedgerError::invalid("pool_limit applies only to a pool member")
                        .hint("set parent as well"),
                );
            }
            let period = if period.is_some() {
                period
            } else if clears("period") {
                None
            } else {
                row.col::<Interval>(8)?
            };
            let anchor = if period_anchor.is_some() {
                period_anchor
            } else {
                row.col::<TimestampWithTimeZone>(12)?
            };
            let was_frozen = row.req::<bool>(9)?;
            let frozen = frozen.unwrap_or(was_frozen);
            let metadata = match metadata {
                Some(m) => m,
                None => row.req::<JsonbText>(10)?,
            };
            let args: Vec<DatumWithOid> = vec![
                id.into(),
                new_parent_id.into(),
                new_card.into(),
                num(overdraft).into(),
                opt_num(threshold).into(),
                opt_num(spend_cap).into(),
                opt_num(pool_limit).into(),
                frozen.into(),
                metadata.into(),
                period.into(),
                anchor.into(),
            ];
            // a wallet joining a pool of another tenant moves there with its rows (issue 20)
            if let Some(pid) = new_parent_id
                .filter(|_| spi::catalog_has_tenants())
                .filter(|_| {
                    // (on a distributed ledger refuse_move let only a pool of the same tenant by)
                    !crate::tenant::given()
                })
            {
                exec(c, sql::WALLET_TENANT_MOVE, &[id.into(), pid.into()])?;
            }
            exec(c, sql::WALLET_UPDATE, &args)?;
            // a spend cap sliced over its lanes: the room handed out under the new settings
            crate::lane_caps::refresh(c, id)?;
            if frozen && !was_frozen {
                let payload = serde_json::json!({"event": "wallet_frozen", "wallet": wallet});
                crate::events::emit(c, "wallet_frozen", id, None, &payload)?;
            }
            wallet_tuple(c, wallet)
        })
    })())
    .build()
}
