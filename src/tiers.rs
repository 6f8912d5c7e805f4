//! Volume tiers (issue 22, since 0.8.0): a rate entry may price units by how many the wallet
//! has spent of that action and variant in its period, graduated: `[{"from": 1000, "credits":
//! 12}]` prices units 0..1000 at the entry's `credits` and every unit from 1000 on at 12.
//!
//! The position a call is priced from is a row of `credit_ledger.tier_usage` (wallet, action,
//! variant, period start), locked by the call ([`Counter::lock`]) and moved on by the units it
//! spends ([`Counter::advance`]): concurrent tiered calls of one wallet queue on that row and
//! each is priced exactly where the one before it ended, whatever the interleaving. Lock order:
//! the counter is taken after every wallet lock the call takes (the spending path first locks
//! the whole wallet when a variant of the call is tiered) and nothing is locked after it but
//! the pool a member draws from, which no holder of the pool waits on a member's counter for.
//!
//! - A debit moves the position on when it is approved; a hold reserves the cost of its
//!   quantity at the position it sees (prices never rise with the tier, so that is the most
//!   its capture can cost) and moves nothing; its capture is priced at the position then and
//!   moves it on by the quantity captured. A declined, released or expired call moves nothing;
//!   a refund does not move it back (the units were spent).
//! - The wallet that counts is the one that spends: a pool member counts its own units, not
//!   the team's (one team counter would queue every member of the team on one row, which the
//!   spending lanes exist to avoid); a call in an agent run counts on the wallet that opened
//!   the run.
//! - The period is the wallet's (calendar months in UTC, or its `period` from its anchor).

use crate::amount;
use crate::catalog as sql;
pub use crate::counters::{Counter, CounterSql};
use crate::error::{or_raise, LedgerError, Result};
use crate::spi::{self, exec, num, RowExt};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::AnyNumeric;
use rust_decimal::Decimal;

/// Tiers per entry at most.
pub const MAX_TIERS: usize = 16;

/// Units from `from` on cost `credits` each (until the next tier).
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub from: Decimal,
    pub credits: Decimal,
}

/// Whether the catalog has volume tiers (0.8.0 on).
pub fn catalog_has_tiers() -> bool {
    crate::spi::catalog_has(c"rates", Some(c"tiers"))
}

/// Validate a tiers document against the entry's own price `base` (the price before the first
/// tier). JSON `null` is no tiers.
pub fn parse(v: &serde_json::Value, base: Decimal, field: &str) -> Result<Option<Vec<Tier>>> {
    let items = match v {
        serde_json::Value::Null => return Ok(None),
        serde_json::Value::Array(items) if !items.is_empty() && items.len() <= MAX_TIERS => items,
        _ => {
            return Err(LedgerError::invalid(format!(
                "{field} must be an array of 1 to {MAX_TIERS} tiers"
            ))
            .hint("[{\"from\": 1000, \"credits\": 12}]: units from 1000 on cost 12 each"))
        }
    };
    let mut out: Vec<Tier> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let obj = item
            .as_object()
            .filter(|o| o.len() == 2 && o.contains_key("from") && o.contains_key("credits"))
            .ok_or_else(|| {
                LedgerError::invalid(format!(
                    "{at} must be an object with exactly \"from\" and \"credits\""
                ))
            })?;
        let from = crate::rate_cards::json_amount(&obj["from"], &format!("{at}.from"))?;
        let from = amount::positive(from, &format!("{at}.from"))?;
        let credits = crate::rate_cards::json_amount(&obj["credits"], &format!("{at}.credits"))?;
        let credits = amount::non_negative(credits, &format!("{at}.credits"))?;
        let (prev_from, prev_price) = out
            .last()
            .map_or((Decimal::ZERO, base), |t| (t.from, t.credits));
        if from <= prev_from {
            return Err(LedgerError::invalid(format!(
                "{at}.from must be greater than the tier before it ({prev_from})"
            )));
        }
        if credits > prev_price {
            return Err(LedgerError::invalid(format!(
                "{at}.credits must be at most the price before it ({prev_price})"
            ))
            .hint("volume tiers are discounts: a price never rises with the units spent"));
        }
        out.push(Tier { from, credits });
    }
    Ok(Some(out))
}

/// Parse stored or given tiers text (NULL: none).
pub fn parse_text(text: Option<&str>, base: Decimal, field: &str) -> Result<Option<Vec<Tier>>> {
    let Some(t) = text else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(t)
        .map_err(|e| LedgerError::invalid(format!("{field} is not JSON: {e}")))?;
    parse(&v, base, field)
}

/// The canonical JSON of tiers (exact numbers).
pub fn to_json(tiers: &[Tier]) -> serde_json::Value {
    let number = |d: Decimal| {
        serde_json::from_str::<serde_json::Value>(&d.normalize().to_string())
            .unwrap_or(serde_json::Value::Null)
    };
    serde_json::Value::Array(
        tiers
            .iter()
            .map(|t| serde_json::json!({"from": number(t.from), "credits": number(t.credits)}))
            .collect(),
    )
}

/// One price band a call spends in: `units` units from position `from` at `credits` each
/// (`tier` 0 is the entry's own price, before the first tier).
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub tier: usize,
    pub from: Decimal,
    pub units: Decimal,
    pub credits: Decimal,
}

/// The bands of `quantity` units spent from `position` (pure).
pub fn bands(base: Decimal, tiers: &[Tier], position: Decimal, quantity: Decimal) -> Vec<Band> {
    let end = position + quantity;
    let starts: Vec<(Decimal, Decimal)> = std::iter::once((Decimal::ZERO, base))
        .chain(tiers.iter().map(|t| (t.from, t.credits)))
        .collect();
    let mut out = Vec::new();
    for (i, &(from, credits)) in starts.iter().enumerate() {
        let upto = starts.get(i + 1).map(|n| n.0);
        let lo = from.max(position);
        let hi = upto.map_or(end, |u| u.min(end));
        if hi > lo {
            out.push(Band {
                tier: i,
                from: lo,
                units: hi - lo,
                credits,
            });
        }
    }
    out
}

/// The cost of `quantity` units from `position`: each band exact, the sum rounded up once to
/// the asset's scale (so a call across a boundary costs what its two parts cost together).
pub fn cost(
    base: Decimal,
    tiers: &[Tier],
    scale: u32,
    position: Decimal,
    quantity: Decimal,
) -> Result<Decimal> {
    let overflow = || {
        amount::out_of_range(format!(
            "cost of quantity {quantity} from tier position {position}"
        ))
    };
    let mut total = Decimal::ZERO;
    for b in bands(base, tiers, position, quantity) {
        let part = amount::mul_exact(b.units, b.credits).ok_or_else(overflow)?;
        total = amount::add(total, part).ok_or_else(overflow)?;
    }
    Ok(amount::round_up(total, scale))
}

/// The tier counter of a spend of wallet `spender` (the run's opener for a run's wallet) for
/// `action` and `variant`, in the counting wallet's current period.
pub fn counter(
    c: &mut SpiClient<'_>,
    spender: i64,
    action: &str,
    variant: Option<&str>,
) -> Result<Counter> {
    let row = spi::first(exec(c, sql::TIER_OWNER, &[spender.into()])?)
        .ok_or_else(|| LedgerError::not_found(format!("wallet {spender} does not exist")))?;
    Ok(Counter::new(
        &TIER_COUNTER,
        row.req(1)?,
        vec![action.to_string(), variant.unwrap_or("").to_string()],
        row.req(2)?,
    ))
}

/// The statements of `credit_ledger.tier_usage`.
static TIER_COUNTER: CounterSql = CounterSql {
    lock: sql::TIER_LOCK,
    create: sql::TIER_CREATE,
    peek: sql::TIER_PEEK,
    advance: sql::TIER_ADVANCE,
    prune: sql::TIER_PRUNE,
};

/// A tiered hold as its capture prices it: the entry's own price, its tiers and the counter
/// of the hold's wallet, action and variant.
pub struct HoldTiers {
    pub base: Decimal,
    pub tiers: Vec<Tier>,
    pub counter: Counter,
}

/// The tiers of the rate version hold `a` used, with the counter of its wallet (`wallet_id`),
/// action and variant (None: not tiered).
pub fn of_hold(
    c: &mut SpiClient<'_>,
    a: &crate::holds::Auth,
    wallet_id: i64,
) -> Result<Option<HoldTiers>> {
    let Some(base) = a.credits_per_unit else {
        return Ok(None);
    };
    let Some(tiers) = parse_text(a.tiers.as_deref(), base, "stored tiers")? else {
        return Ok(None);
    };
    let counter = counter(c, wallet_id, &a.action, a.variant.as_deref())?;
    Ok(Some(HoldTiers {
        base,
        tiers,
        counter,
    }))
}

/// How a quote of `quantity` units would be priced across the tiers of the rate in effect:
/// one row per band, from the wallet's position now (read without a lock, so a concurrent
/// call may move it before the caller spends). `cost` is each band's exact cost; the call
/// costs their sum rounded up to the asset's scale (`credit_quote`'s `cost`). An entry
/// without tiers is one band, tier 0.
#[pg_extern(stable, parallel_safe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_quote_tiers(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(tier, i32),
        name!(from_units, AnyNumeric),
        name!(units, AnyNumeric),
        name!(credits_per_unit, AnyNumeric),
        name!(cost, AnyNumeric),
        name!(rate_id, i64),
    ),
> {
    let rows = or_raise((|| {
        let r = crate::authorize::Request::parse(
            wallet,
            action,
            quantity,
            variant,
            None,
            None,
            crate::authorize::Mode::Quote,
        )?;
        spi::with(|c| {
            let (w, rate) = crate::quote::quote_rate(c, &r)?;
            let (position, tiers) = match &rate.tiers {
                Some(t) => (
                    counter(c, w.id, r.action, r.variant)?.peek(c)?,
                    t.as_slice(),
                ),
                None => (Decimal::ZERO, &[][..]),
            };
            bands(rate.credits, tiers, position, r.quantity)
                .into_iter()
                .map(|b| {
                    let part = amount::mul_exact(b.units, b.credits).ok_or_else(|| {
                        amount::out_of_range(format!("cost of {} units", b.units))
                    })?;
                    Ok((
                        i32::try_from(b.tier).unwrap_or(i32::MAX),
                        num(b.from),
                        num(b.units),
                        num(b.credits),
                        num(part),
                        rate.id,
                    ))
                })
                .collect::<Result<Vec<_>>>()
        })
    })());
    TableIterator::new(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn t() -> Vec<Tier> {
        vec![
            Tier {
                from: dec("1000"),
                credits: dec("12"),
            },
            Tier {
                from: dec("5000"),
                credits: dec("10"),
            },
        ]
    }

    #[test]
    fn cost_across_boundaries() {
        // 990..1010: 10 at 15 + 10 at 12
        assert_eq!(
            cost(dec("15"), &t(), 0, dec("990"), dec("20")).unwrap(),
            dec("270")
        );
        // 0..6000: 1000*15 + 4000*12 + 1000*10
        assert_eq!(
            cost(dec("15"), &t(), 0, dec("0"), dec("6000")).unwrap(),
            dec("73000")
        );
        // inside one tier
        assert_eq!(
            cost(dec("15"), &t(), 0, dec("2000"), dec("3")).unwrap(),
            dec("36")
        );
        // fractional units, rounded up once
        assert_eq!(
            cost(dec("15"), &t(), 2, dec("999.5"), dec("1")).unwrap(),
            dec("13.5")
        );
        assert_eq!(
            cost(dec("0.3"), &[], 0, dec("0"), dec("1")).unwrap(),
            dec("1")
        );
    }

    #[test]
    fn bands_name_the_tiers() {
        let b = bands(dec("15"), &t(), dec("990"), dec("20"));
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].tier, b[0].from, b[0].units),
            (0, dec("990"), dec("10"))
        );
        assert_eq!(
            (b[1].tier, b[1].from, b[1].units),
            (1, dec("1000"), dec("10"))
        );
        let z = bands(dec("15"), &t(), dec("1000"), dec("1"));
        assert_eq!((z.len(), z[0].tier), (1, 1));
    }

    #[test]
    fn parse_rejects_bad_tiers() {
        let ok = serde_json::json!([{"from": 1000, "credits": 12}]);
        assert_eq!(parse(&ok, dec("15"), "tiers").unwrap().unwrap().len(), 1);
        for bad in [
            serde_json::json!([]),
            serde_json::json!({"from": 1}),
            serde_json::json!([{"from": 0, "credits": 1}]),
            serde_json::json!([{"from": 10, "credits": 16}]),
            serde_json::json!([{"from": 10, "credits": 12}, {"from": 10, "credits": 11}]),
            serde_json::json!([{"from": 10, "credits": 12, "x": 1}]),
            serde_json::json!([{"from": 10, "credits": -1}]),
        ] {
            assert!(parse(&bad, dec("15"), "tiers").is_err(), "{bad}");
        }
        assert!(parse(&serde_json::Value::Null, dec("15"), "tiers")
            .unwrap()
            .is_none());
    }
}
