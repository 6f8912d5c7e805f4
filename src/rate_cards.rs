//! Rate cards: `credit_rate_set`, `credit_rate_card_load`, `credit_rate_card_export`.
//!
//! An entry maps (action, variant) on a card to credits per unit of quantity, the asset
//! charged, the unit name and the vendor cost per unit. Entries are versioned by
//! `effective_from`: setting a new price adds a version and never changes a past debit (each
//! authorization records the version it used). Setting the same instant again replaces that
//! version only while no authorization has used it.
//!
//! Rate-card document (load/export):
//! `{"name": "pro", "description": "...", "entries": [{"action": "chat", "variant": "opus",
//!   "credits": "1.5", "asset": "credits", "unit": "1k tokens", "vendor_cost": "0.015",
//!   "effective_from": "2026-01-01T00:00:00Z"}]}` — amounts as JSON numbers or strings, read
//! digit for digit (never through f64): exact, or rejected (22003 beyond 28 significant digits
//! or 28 decimals). At most 128 levels of nesting (22023 beyond).
//! Loading adds one new version for every entry whose current version differs (entries not
//! in the document are left as they are) and is all-or-nothing.

use crate::catalog as sql;
use crate::error::{or_raise, Kind, LedgerError, Result};
use crate::spi::{self, exec, num, opt_num, RowExt};
use crate::types::{JsonbText, Record};
use crate::{amount, input, wallets};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{AnyNumeric, JsonB};
use rust_decimal::Decimal;
use serde::Deserialize;

/// One validated rate entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub action: String,
    pub variant: Option<String>,
    pub credits: Decimal,
    pub asset: String,
    pub unit: String,
    pub vendor_cost: Option<Decimal>,
    /// The variant a degrading call tries next (since 0.7.0).
    pub fallback: Option<String>,
    /// Graduated volume tiers (since 0.8.0; see [`crate::tiers`]).
    pub tiers: Option<Vec<crate::tiers::Tier>>,
}

/// A JSON amount: a number (its exact text: serde_json's `arbitrary_precision`) or a string
/// holding a number.
pub(crate) fn json_amount(v: &serde_json::Value, field: &str) -> Result<Decimal> {
    match v {
        serde_json::Value::Number(n) => amount::parse(&n.to_string(), field),
        serde_json::Value::String(s) => amount::parse(s, field),
        _ => Err(LedgerError::invalid(format!(
            "{field} must be a number or a string holding a number"
        ))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocEntry {
    pub action: String,
    #[serde(default)]
    pub variant: Option<String>,
    pub credits: serde_json::Value,
    #[serde(default)]
    pub asset: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub vendor_cost: Option<serde_json::Value>,
    #[serde(default)]
    pub effective_from: Option<String>,
    #[serde(default)]
    pub fallback: Option<String>,
    #[serde(default)]
    pub tiers: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Doc {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub entries: Vec<serde_json::Value>,
}

/// Parse and validate a whole document (pure): every error names the bad field.
/// Entries with their optional `effective_from` text.
pub type DocEntries = Vec<(Entry, Option<String>)>;

pub fn parse_doc(value: serde_json::Value) -> Result<(Doc, DocEntries)> {
    if !value.is_object() {
        return Err(
            LedgerError::invalid("rate card document must be a JSON object")
                .hint("{\"name\": ..., \"entries\": [...]}"),
        );
    }
    let doc: Doc = serde_json::from_value(value)
        .map_err(|e| LedgerError::invalid(format!("rate card document: {e}")))?;
    input::name(Some(&doc.name), "rate card document: name")?;
    input::text(
        doc.description.as_deref(),
        "rate card document: description",
    )?;
    let mut entries = Vec::with_capacity(doc.entries.len());
    for (i, raw) in doc.entries.iter().enumerate() {
        let at = format!("rate card document: entries[{i}]");
        let e: DocEntry = serde_json::from_value(raw.clone())
            .map_err(|e| LedgerError::invalid(format!("{at}: {e}")))?;
        input::name(Some(&e.action), &format!("{at}.action"))?;
        input::opt_name(e.variant.as_deref(), &format!("{at}.variant"))?;
        input::opt_name(e.asset.as_deref(), &format!("{at}.asset"))?;
        input::opt_name(e.unit.as_deref(), &format!("{at}.unit"))?;
        crate::overage::check_fallback(
            e.fallback.as_deref(),
            e.variant.as_deref(),
            &format!("{at}.fallback"),
        )?;
        let credits = amount::non_negative(
            json_amount(&e.credits, &format!("{at}.credits"))?,
            &format!("{at}.credits"),
        )?;
        let vendor_cost = e
            .vendor_cost
            .as_ref()
            .map(|v| {
                json_amount(v, &format!("{at}.vendor_cost"))
                    .and_then(|d| amount::non_negative(d, &format!("{at}.vendor_cost")))
            })
            .transpose()?;
        let entry = Entry {
            action: e.action,
            variant: e.variant,
            credits,
            asset: e.asset.unwrap_or_else(|| "credits".into()),
            unit: e.unit.unwrap_or_else(|| "unit".into()),
            vendor_cost,
            fallback: e.fallback,
            tiers: match &e.tiers {
                Some(t) => crate::tiers::parse(t, credits, &format!("{at}.tiers"))?,
                None => None,
            },
        };
        if entries.iter().any(|(x, _): &(Entry, Option<String>)| {
            x.action == entry.action && x.variant == entry.variant
        }) {
            return Err(LedgerError::invalid(format!(
                "{at}: duplicate entry for action \"{}\"",
                entry.action
            )));
        }
        entries.push((entry, e.effective_from));
    }
    Ok((doc, entries))
}

/// The `credit_rate` value of a rate version.
pub fn rate_tuple(c: &mut SpiClient<'_>, id: i64) -> Result<Record> {
    let v7 = crate::overage::catalog_has_fallback();
    let statement = if v7 { sql::RATE_ROW_V7 } else { sql::RATE_ROW };
    let row = spi::first(exec(c, statement, &[id.into()])?)
        .ok_or_else(|| LedgerError::not_found(format!("rate {id} does not exist")))?;
    let mut t = Record::new("credit_rate");
    t.push(row.col::<i64>(1)?);
    for i in 2..=4 {
        t.push(row.col::<String>(i)?);
    }
    t.push(row.col::<AnyNumeric>(5)?);
    t.push(row.col::<String>(6)?);
    t.push(row.col::<String>(7)?);
    t.push(row.col::<AnyNumeric>(8)?);
    t.push(row.col::<TimestampWithTimeZone>(9)?);
    if v7 {
        t.push(row.col::<String>(10)?);
    }
    if crate::tiers::catalog_has_tiers() {
        t.push(row.col::<String>(11)?.map(JsonbText));
    }
    Ok(t)
}

/// Store one entry as a version at `effective_from` (None = now). Returns (id, changed).
fn store(
    c: &mut SpiClient<'_>,
    card: &str,
    e: &Entry,
    effective_from: Option<TimestampWithTimeZone>,
    only_if_changed: bool,
) -> Result<(Option<i64>, bool)> {
    wallets::asset_scale(c, &e.asset)?;
    // an older catalog (before ALTER EXTENSION UPDATE) has no fallbacks
    let v7 = crate::overage::catalog_has_fallback();
    if e.fallback.is_some() && !v7 {
        return Err(LedgerError::wrong_state(
            "fallback variants need version 0.7.0 of the extension's catalog",
        )
        .hint("ALTER EXTENSION credit_ledger UPDATE"));
    }
    let v8 = crate::tiers::catalog_has_tiers();
    if e.tiers.is_some() && !v8 {
        return Err(LedgerError::wrong_state(
            "volume tiers need version 0.8.0 of the extension's catalog",
        )
        .hint("ALTER EXTENSION credit_ledger UPDATE"));
    }
    let tiers_text = e
        .tiers
        .as_deref()
        .map(|t| crate::tiers::to_json(t).to_string());
    // the stored version's fields (from column `first`) are the entry's
    let same = |row: &spi::Row, first: usize| -> Result<bool> {
        Ok(row.dec(first)? == e.credits
            && row.req::<String>(first + 1)? == e.asset
            && row.req::<String>(first + 2)? == e.unit
            && row.opt_dec(first + 3)? == e.vendor_cost
            && (!v7 || row.col::<String>(first + 4)? == e.fallback)
            && (!v8
                || crate::tiers::parse_text(
                    row.col::<String>(first + 5)?.as_deref(),
                    e.credits,
                    "stored tiers",
                )? == e.tiers))
    };
    let key = |at: TimestampWithTimeZone| -> Vec<DatumWithOid<'static>> {
        vec![
            card.to_string().into(),
            e.action.clone().into(),
            e.variant.clone().into(),
            at.into(),
        ]
    };
    exec(c, sql::RATE_CARD_ENSURE, &[card.into()])?;
    if only_if_changed {
        let at = effective_from.unwrap_or_else(spi::transaction_start_tz);
        let current = if v7 {
            sql::RATE_CURRENT_V7
        } else {
            sql::RATE_CURRENT
        };
        if let Some(cur) = spi::first(exec(c, current, &key(at))?) {
            if same(&cur, 1)? {
                return Ok((None, false));
            }
        }
    }
    if let Some(at) = effective_from {
        let statement = if v7 { sql::RATE_AT_V7 } else { sql::RATE_AT };
        if let Some(prev) = spi::first(exec(c, statement, &key(at))?) {
            let id = prev.req::<i64>(1)?;
            if same(&prev, 2)? {
                return Ok((Some(id), false));
            }
            if spi::first(exec(c, sql::RATE_USED, &[id.into()])?).is_some() {
                return Err(LedgerError::wrong_state(format!(
                    "rate version {id} of action \"{}\" was already used by authorizations",
                    e.action
                ))
                .hint("set a new version with a later effective_from"));
            }
            let mut args: Vec<DatumWithOid> = vec![
                id.into(),
                num(e.credits).into(),
                e.asset.as_str().into(),
                e.unit.as_str().into(),
                opt_num(e.vendor_cost).into(),
            ];
            let replace = if v7 {
                args.push(e.fallback.clone().into());
                sql::RATE_REPLACE_V7
            } else {
                sql::RATE_REPLACE
            };
            exec(c, replace, &args)?;
            if v8 {
                exec(
                    c,
                    sql::RATE_SET_TIERS,
                    &[id.into(), tiers_text.clone().into()],
                )?;
            }
            return Ok((Some(id), true));
        }
    }
    let mut args: Vec<DatumWithOid> = vec![
        card.into(),
        e.action.as_str().into(),
        e.variant.clone().into(),
        num(e.credits).into(),
        e.asset.as_str().into(),
        e.unit.as_str().into(),
        opt_num(e.vendor_cost).into(),
        effective_from.into(),
    ];
    let insert = if v7 {
        args.push(e.fallback.clone().into());
        sql::RATE_INSERT_V7
    } else {
        sql::RATE_INSERT
    };
    let row = spi::first(exec(c, insert, &args)?)
        .ok_or_else(|| LedgerError::new(Kind::Internal, "rate insert returned nothing"))?;
    let id = row.req::<i64>(1)?;
    if v8 && tiers_text.is_some() {
        exec(c, sql::RATE_SET_TIERS, &[id.into(), tiers_text.into()])?;
    }
    Ok((Some(id), true))
}

/// Set the price of an action (optionally of one variant) on a rate card, from `effective_from`;
/// `fallback` names the variant a degrading call tries next (since 0.7.0); `tiers` are its
/// graduated volume prices (since 0.8.0; see [`crate::tiers`]).
#[allow(clippy::too_many_arguments)]
#[pg_extern(name = "credit_rate_set", volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_rate_set_v8(
    action: Option<&str>,
    credits: Option<AnyNumeric>,
    variant: default!(Option<&str>, "NULL"),
    rate_card: default!(Option<&str>, "'default'"),
    asset: default!(Option<&str>, "'credits'"),
    unit: default!(Option<&str>, "'unit'"),
    vendor_cost: default!(Option<AnyNumeric>, "NULL"),
    effective_from: default!(Option<TimestampWithTimeZone>, "now()"),
    fallback: default!(Option<&str>, "NULL"),
    tiers: default!(Option<JsonbText>, "NULL"),
) -> pgrx::composite_type!('static, "credit_rate") {
    set_rate(
        action,
        credits,
        variant,
        rate_card,
        asset,
        unit,
        vendor_cost,
        effective_from,
        fallback,
        tiers,
    )
    .build()
}

/// `credit_rate_set` as 0.7.0 declares it (no `tiers`; symbol `credit_rate_set_v7_wrapper`).
/// Not in the 0.8.0 SQL.
#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_rate_set_v7(
    action: Option<&str>,
    credits: Option<AnyNumeric>,
    variant: default!(Option<&str>, "NULL"),
    rate_card: default!(Option<&str>, "'default'"),
    asset: default!(Option<&str>, "'credits'"),
    unit: default!(Option<&str>, "'unit'"),
    vendor_cost: default!(Option<AnyNumeric>, "NULL"),
    effective_from: default!(Option<TimestampWithTimeZone>, "now()"),
    fallback: default!(Option<&str>, "NULL"),
) -> pgrx::composite_type!('static, "credit_rate") {
    set_rate(
        action,
        credits,
        variant,
        rate_card,
        asset,
        unit,
        vendor_cost,
        effective_from,
        fallback,
        None,
    )
    .build()
}

#[allow(clippy::too_many_arguments)]
fn set_rate(
    action: Option<&str>,
    credits: Option<AnyNumeric>,
    variant: Option<&str>,
    rate_card: Option<&str>,
    asset: Option<&str>,
    unit: Option<&str>,
    vendor_cost: Option<AnyNumeric>,
    effective_from: Option<TimestampWithTimeZone>,
    fallback: Option<&str>,
    tiers: Option<JsonbText>,
) -> Record {
    or_raise((|| -> Result<Record> {
        let action = input::name(action, "action")?;
        let variant = input::opt_name(variant, "variant")?;
        let card = input::name(rate_card, "rate_card")?;
        let asset = input::name(asset, "asset")?;
        let unit = input::name(unit, "unit")?;
        crate::overage::check_fallback(fallback, variant, "fallback")?;
        let credits = credits.ok_or_else(|| LedgerError::invalid("credits must not be null"))?;
        let credits = amount::non_negative(spi::to_dec(&credits, "credits")?, "credits")?;
        let vendor_cost = spi::opt_dec(vendor_cost, "vendor_cost")?
            .map(|v| amount::non_negative(v, "vendor_cost"))
            .transpose()?;
        if effective_from.is_some_and(|e| !e.is_finite()) {
            return Err(LedgerError::invalid(
                "effective_from must be a finite timestamp",
            ));
        }
        let entry = Entry {
            action: action.into(),
            variant: variant.map(String::from),
            credits,
            asset: asset.into(),
            unit: unit.into(),
            vendor_cost,
            fallback: fallback.map(String::from),
            tiers: match tiers {
                Some(t) => crate::tiers::parse(&input::json(&t.0, "tiers")?, credits, "tiers")?,
                None => None,
            },
        };
        spi::with(|c| {
            crate::citus::refuse_on_worker(c)?;
            let at = Some(effective_from.unwrap_or_else(spi::transaction_start_tz));
            let (id, _) = store(c, card, &entry, at, false)?;
            let id = id.ok_or_else(|| LedgerError::new(Kind::Internal, "rate not stored"))?;
            rate_tuple(c, id)
        })
    })())
}

/// `credit_rate_set` as versions before 0.7.0 declare it (no `fallback`; symbol
/// `credit_rate_set_wrapper`): their SQL keeps working with this library until `ALTER
/// EXTENSION credit_ledger UPDATE`. Not in the 0.7.0 SQL.
#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_rate_set(
    action: Option<&str>,
    credits: Option<AnyNumeric>,
    variant: default!(Option<&str>, "NULL"),
    rate_card: default!(Option<&str>, "'default'"),
    asset: default!(Option<&str>, "'credits'"),
    unit: default!(Option<&str>, "'unit'"),
    vendor_cost: default!(Option<AnyNumeric>, "NULL"),
    effective_from: default!(Option<TimestampWithTimeZone>, "now()"),
) -> pgrx::composite_type!('static, "credit_rate") {
    credit_rate_set_v7(
        action,
        credits,
        variant,
        rate_card,
        asset,
        unit,
        vendor_cost,
        effective_from,
        None,
    )
}

/// Load a whole rate card document; returns the number of entries that got a new version.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_rate_card_load(card: Option<JsonbText>) -> i32 {
    or_raise((|| {
        let card =
            card.ok_or_else(|| LedgerError::invalid("rate card document must not be null"))?;
        let (doc, entries) = parse_doc(input::json(&card.0, "rate card document")?)?;
        spi::with(|c| {
            crate::citus::refuse_on_worker(c)?;
            exec(c, sql::RATE_CARD_ENSURE, &[doc.name.as_str().into()])?;
            if doc.name == "default" && doc.description.is_some() {
                let current = spi::first(exec(c, sql::RATE_CARD_GET, &[doc.name.as_str().into()])?)
                    .map(|r| r.col::<String>(1))
                    .transpose()?
                    .flatten();
                if doc.description != current {
                    return Err(LedgerError::wrong_state(
                        "the built-in rate card \"default\" cannot be changed",
                    )
                    .detail(
                        "built-in rows are recreated by CREATE EXTENSION and not kept by pg_dump",
                    )
                    .hint("leave out the description; entries of the default card can be set"));
                }
            }
            exec(
                c,
                sql::RATE_CARD_DESCRIBE,
                &[doc.name.as_str().into(), doc.description.clone().into()],
            )?;
            let mut changed = 0;
            for (i, (e, eff)) in entries.iter().enumerate() {
                let at = match eff {
                    Some(text) => Some(parse_ts(text).map_err(|_| {
                        LedgerError::invalid(format!(
                            "rate card document: entries[{i}].effective_from is not a timestamp: \"{}\"",
                            crate::error::clip(text, 64)
                        ))
                    })?),
                    None => None,
                };
                let (_, did) = store(c, &doc.name, e, at, true).map_err(|err| {
                    let mut err = err;
                    err.message = format!("rate card document: entries[{i}]: {}", err.message);
                    err
                })?;
                if did {
                    changed += 1;
                }
            }
            Ok(changed)
        })
    })())
}

fn parse_ts(text: &str) -> Result<TimestampWithTimeZone> {
    let micros = rfc3339_micros(text).ok_or_else(|| LedgerError::invalid("not a timestamp"))?;
    TimestampWithTimeZone::try_from(micros)
        .map_err(|_| LedgerError::invalid("timestamp out of range"))
}

/// Parse an RFC 3339 timestamp (`2026-01-01T00:00:00Z`, `2026-01-01 00:00:00.5+02:00`,
/// or a bare date) into microseconds since 2000-01-01 UTC, PostgreSQL's epoch. Pure.
/// Never panics: a timestamp is ASCII, so any other text is rejected before it is split, and
/// every split below is checked (`get`, `split_at_checked`) besides.
pub fn rfc3339_micros(text: &str) -> Option<i64> {
    let t = text.trim();
    if !t.is_ascii() {
        return None;
    }
    let num = |s: &str| -> Option<i64> {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (date, rest) = if t.len() > 10 {
        t.split_at_checked(10)?
    } else {
        (t, "")
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if d.next().is_some()
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || !(1..=9999).contains(&y)
    {
        return None;
    }
    let mut secs_of_day = 0i64;
    let mut frac_micros = 0i64;
    let mut offset = 0i64;
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' '])?;
        let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
            Some(i) => rest.split_at_checked(i)?,
            None => return None, // a zone is required with a time of day
        };
        let (hms, frac) = match clock.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (clock, None),
        };
        let mut p = hms.split(':');
        let (h, mi, sec) = (
            num(p.next()?)?,
            num(p.next()?)?,
            num(p.next().unwrap_or("0"))?,
        );
        if p.next().is_some() || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        secs_of_day = h * 3600 + mi * 60 + sec;
        if let Some(f) = frac {
            let f6: String = f.chars().chain(std::iter::repeat('0')).take(6).collect();
            if !f.chars().skip(6).all(|c| c.is_ascii_digit()) {
                return None;
            }
            frac_micros = num(&f6)?;
        }
        if zone != "Z" && zone != "z" {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let z = zone.get(1..)?;
            let (zh, zm) = match z.split_once(':') {
                Some((a, b)) => (num(a)?, num(b)?),
                None if z.len() == 4 => (num(z.get(..2)?)?, num(z.get(2..)?)?),
                None => (num(z)?, 0),
            };
            if zh > 15 || zm > 59 {
                return None;
            }
            offset = sign * (zh * 3600 + zm * 60);
        }
    }
    // days from civil (Howard Hinnant), relative to 1970-01-01
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    const PG_EPOCH_DAYS: i64 = 10_957; // 2000-01-01 - 1970-01-01
    Some(((days - PG_EPOCH_DAYS) * 86_400 + secs_of_day - offset) * 1_000_000 + frac_micros)
}

/// Export the current version of every entry of a rate card as one document.
#[pg_extern(stable, parallel_safe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_rate_card_export(rate_card: Option<&str>) -> JsonB {
    or_raise((|| {
        let card = input::name(rate_card, "rate_card")?;
        spi::with(|c| {
            let desc = spi::first(exec(c, sql::RATE_CARD_GET, &[card.into()])?)
                .ok_or_else(|| {
                    LedgerError::not_found(format!("rate card \"{card}\" does not exist"))
                })?
                .col::<String>(1)?;
            let mut entries = Vec::new();
            let v7 = crate::overage::catalog_has_fallback();
            let current = if v7 {
                sql::RATE_CARD_CURRENT_V7
            } else {
                sql::RATE_CARD_CURRENT
            };
            for r in exec(c, current, &[card.into()])? {
                let mut e = serde_json::Map::new();
                e.insert("action".into(), r.req::<String>(1)?.into());
                if let Some(v) = r.col::<String>(2)? {
                    e.insert("variant".into(), v.into());
                }
                e.insert("credits".into(), r.req::<String>(3)?.into());
                e.insert("asset".into(), r.req::<String>(4)?.into());
                e.insert("unit".into(), r.req::<String>(5)?.into());
                if let Some(v) = r.col::<String>(6)? {
                    e.insert("vendor_cost".into(), v.into());
                }
                e.insert("effective_from".into(), r.req::<String>(7)?.into());
                if let Some(f) = v7.then(|| r.col::<String>(8)).transpose()?.flatten() {
                    e.insert("fallback".into(), f.into());
                }
                let tiers: Option<String> = if v7 { r.col(9)? } else { None };
                let credits: Decimal = r.req::<String>(3)?.parse().unwrap_or_default();
                if let Some(t) = crate::tiers::parse_text(tiers.as_deref(), credits, "tiers")? {
                    e.insert("tiers".into(), crate::tiers::to_json(&t));
                }
                entries.push(serde_json::Value::Object(e));
            }
            let mut doc = serde_json::Map::new();
            doc.insert("name".into(), card.into());
            if let Some(d) = desc {
                doc.insert("description".into(), d.into());
            }
            doc.insert("entries".into(), entries.into());
            Ok(JsonB(serde_json::Value::Object(doc)))
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_document() {
        let (doc, entries) = parse_doc(json!({
            "name": "pro",
            "entries": [
                {"action": "chat", "variant": "opus", "credits": "1.5", "unit": "1k tokens", "vendor_cost": 0.015},
                {"action": "image.generate", "credits": 4}
            ]
        }))
        .unwrap();
        assert_eq!(doc.name, "pro");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0.credits, Decimal::new(15, 1));
        assert_eq!(entries[1].0.asset, "credits");
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_micros("2000-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_micros("2000-01-01"), Some(0));
        assert_eq!(rfc3339_micros("2000-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(
            rfc3339_micros("2000-01-02 00:00:00.5Z"),
            Some(86_400_500_000)
        );
        assert_eq!(rfc3339_micros("1999-12-31T23:59:59Z"), Some(-1_000_000));
        assert_eq!(
            rfc3339_micros("2026-11-23T00:00:00Z"),
            Some(848_707_200_000_000)
        );
        assert_eq!(rfc3339_micros("soon"), None);
        assert_eq!(rfc3339_micros("2026-13-01"), None);
        assert_eq!(rfc3339_micros("2026-01-01T10:00:00"), None);
    }

    #[test]
    fn multibyte_text_at_every_slicing_position() {
        // a multibyte character where the parser splits: the date/time boundary (byte 10),
        // inside the fraction (byte 6 of it), inside a 4-digit zone (bytes 2) and after a sign
        for t in [
            "2026-01-0é",
            "2026-01-0éT00:00:00Z",
            "2026-01-01é00:00:00Z",
            "2026-01-01T00:00:00.12345é",
            "2026-01-01T00:00:00.123456é",
            "2026-01-01T00:00:00.12345💥Z",
            "2026-01-01T00:00:00+1é1",
            "2026-01-01T00:00:00+é",
            "2026-01-01T00:00:00-💥",
            "2026-01-01T00:00:00+01:é",
            "２０２６-01-01",
            "2026-01-01T00:00:00Ｚ",
            "é",
            "",
        ] {
            assert_eq!(rfc3339_micros(t), None, "{t}");
        }
        assert_eq!(rfc3339_micros(" 2000-01-01T00:00:00.000000123Z "), Some(0));
        assert_eq!(
            rfc3339_micros("2000-01-01T00:00:00+0100"),
            Some(-3_600_000_000)
        );
    }

    proptest::proptest! {
        #[test]
        fn timestamps_never_panic(s in "\\PC{0,40}") {
            let _ = rfc3339_micros(&s);
        }

        #[test]
        fn timestamp_shaped_text_never_panics(
            head in "[0-9]{4}-[0-9]{2}-[0-9]{2}",
            sep in "[T t]|é|💥",
            tail in "[0-9:.+\\-Zzé💥Ａ]{0,16}",
        ) {
            let _ = rfc3339_micros(&format!("{head}{sep}{tail}"));
            let _ = rfc3339_micros(&format!("{head}{tail}"));
        }
    }

    #[test]
    fn rejects_non_objects() {
        assert!(parse_doc(json!(["x", null, []]))
            .unwrap_err()
            .message
            .contains("JSON object"));
    }

    #[test]
    fn names_the_bad_field() {
        let err = parse_doc(json!({"name": "pro", "entries": [{"action": "a", "credits": 1}, {"action": "b", "credits": "x"}]})).unwrap_err();
        assert!(
            err.message.contains("entries[1].credits"),
            "{}",
            err.message
        );
        let err = parse_doc(
            json!({"name": "pro", "entries": [{"action": "a", "credits": 1, "price": 2}]}),
        )
        .unwrap_err();
        assert!(
            err.message.contains("entries[0]") && err.message.contains("price"),
            "{}",
            err.message
        );
        let err = parse_doc(json!({"entries": []})).unwrap_err();
        assert!(err.message.contains("name"), "{}", err.message);
        let err = parse_doc(json!({"name": "p", "entries": [{"action": "a", "credits": -1}]}))
            .unwrap_err();
        assert!(
            err.message.contains("entries[0].credits"),
            "{}",
            err.message
        );
        let err = parse_doc(json!({"name": "p", "entries": [{"action": "a", "credits": 1}, {"action": "a", "credits": 2}]})).unwrap_err();
        assert!(err.message.contains("duplicate"), "{}", err.message);
    }
}
