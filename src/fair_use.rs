//! Fair use (issue 22, since 0.8.0): a wallet may have an allowance per period in an asset
//! (`credit_wallet_overage(..., fair_use_limit =>)`, an "unlimited" plan). Its calls in that
//! asset are approved while the period's fair use (their cost at the rate card's prices) stays
//! within the limit, and consume no credits: the authorization records its cost and vendor
//! cost with `fair_use = true` and moves nothing in the journal. Beyond the limit a call is
//! declined with `fair_use_exceeded` (a degrading call tries its cheaper variants first).
//!
//! The period's fair use is a counter row (`credit_ledger.fair_use_usage`, see
//! [`crate::counters`]) locked by the call that reads it: concurrent calls of one wallet are
//! admitted one after the other, exactly. A hold counts its cost when it is made; its capture
//! corrects that to what was captured, its release or expiry gives it back (in the period the
//! hold was made in). A fair-use call has nothing to refund.
//!
//! Only a wallet flagged `tracked` is looked up (the setting sets the flag), so wallets without
//! fair use pay nothing for it. A call in an agent run spends the run's budget (credits
//! reserved from the wallet), never fair use.

use crate::catalog as sql;
use crate::counters::{Counter, CounterSql};
use crate::error::Result;
use crate::plan::Wallet;
use crate::spi::{self, exec, RowExt};
use pgrx::spi::SpiClient;
use rust_decimal::Decimal;

/// Whether the catalog has fair use (0.8.0 on).
pub fn catalog_has_fair_use() -> bool {
    crate::spi::catalog_has(c"wallet_overage", Some(c"fair_use_limit"))
}

static FAIR_USE_COUNTER: CounterSql = CounterSql {
    lock: sql::FAIR_USE_LOCK,
    create: sql::FAIR_USE_CREATE,
    peek: sql::FAIR_USE_PEEK,
    advance: sql::FAIR_USE_ADVANCE,
    prune: sql::FAIR_USE_PRUNE,
};

/// A wallet's fair use in one asset and period: its limit (None: no longer set) and what the
/// period has used.
pub struct FairUse {
    pub limit: Option<Decimal>,
    pub used: Decimal,
    pub counter: Counter,
}

impl FairUse {
    /// Whether `cost` more stays within the limit.
    pub fn fits(&self, cost: Decimal) -> bool {
        self.limit.is_some_and(|limit| {
            crate::amount::add(self.used, cost).is_some_and(|total| total <= limit)
        })
    }

    /// What is left of the limit (0 when none).
    pub fn left(&self) -> Decimal {
        self.limit
            .and_then(|limit| crate::amount::sub(limit, self.used))
            .unwrap_or_default()
            .max(Decimal::ZERO)
    }
}

/// The fair use of wallet `w` in `asset` now, its counter locked (`quote`: read without a
/// lock). None: the wallet has none in that asset.
pub fn of_wallet(
    c: &mut SpiClient<'_>,
    w: &Wallet,
    asset: &str,
    quote: bool,
) -> Result<Option<FairUse>> {
    if !w.tracked || !catalog_has_fair_use() {
        return Ok(None);
    }
    let Some(row) = spi::first(exec(c, sql::FAIR_USE_OF, &[w.id.into(), asset.into()])?) else {
        return Ok(None);
    };
    let counter = Counter::new(
        &FAIR_USE_COUNTER,
        w.id,
        vec![asset.to_string()],
        row.req(2)?,
    );
    let used = if quote {
        counter.peek(c)?
    } else {
        counter.lock(c)?
    };
    Ok(Some(FairUse {
        limit: Some(row.dec(1)?),
        used,
        counter,
    }))
}

/// The fair use that paid authorization `a` (of wallet `wallet_id`), in the period it was made
/// in, its counter locked. None: credits paid it.
pub fn of_authorization(
    c: &mut SpiClient<'_>,
    a: &crate::holds::Auth,
    wallet_id: i64,
) -> Result<Option<FairUse>> {
    if !a.fair_use {
        return Ok(None);
    }
    let Some(row) = spi::first(exec(c, sql::FAIR_USE_OF_AUTH, &[a.id.into()])?) else {
        return Ok(None);
    };
    let counter = Counter::new(
        &FAIR_USE_COUNTER,
        wallet_id,
        vec![a.asset.clone()],
        row.req(2)?,
    );
    let used = counter.lock(c)?;
    Ok(Some(FairUse {
        limit: row.opt_dec(1)?,
        used,
        counter,
    }))
}
