//! A spend cap sliced over a wallet's lanes (issue 17, since 0.10.0): spenders of a capped
//! wallet or pool with lanes do not wait for each other either.
//!
//! A spend cap is a counter (the period's spend, `wallet_assets.period_spent`): one row that
//! every spender would write. Like the credits, the room left under the cap is split over the
//! lanes (escrow): each lane row holds `cap_room`, what a spender holding that lane may still
//! spend this period (`cap_period`), and `cap_spent`, what it spent that the wallet's counter
//! does not hold yet. So the period's spend is the counter plus the lanes' `cap_spent`, and a
//! fast spend needs a lane whose credits *and* room cover it (one UPDATE of the lane it holds).
//!
//! Only a caller that holds the whole wallet (its row and every lane) moves room between lanes:
//! the exact path [`fold`]s the lanes' spend into the counter, takes their room back, decides
//! exactly on the counter, and [`spread`]s the room left evenly again. The first spend of a new
//! period finds no lane with room of that period and takes the exact path once. Releases,
//! captures below the hold and refunds give the room back to the lane the call took
//! ([`give_back`]), under the lanes they hold, so they need no wallet row either.
//!
//! Sliced: a wallet with lanes and a spend cap that is not a pool member (a member's cap is its
//! own row, which its spends lock anyway), on a catalog that has the columns. The pool's cap
//! counts its members' draws the same way, on the pool's lanes.

use crate::catalog as sql;
use crate::error::Result;
use crate::ledger::WalletState;
use crate::plan::Wallet;
use crate::spi::{self, exec, num, RowExt};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use rust_decimal::Decimal;

/// Whether the catalog slices spend caps over lanes (0.10.0 on). Two syscache lookups.
pub fn catalog_has_caps() -> bool {
    spi::catalog_has(c"lanes", Some(c"cap_room"))
}

/// Whether `w`'s spend cap is sliced over its lanes.
pub fn sliced(w: &Wallet) -> bool {
    w.lanes > 1 && w.spend_cap.is_some() && w.parent_id.is_none() && catalog_has_caps()
}

/// Fold the lanes' spend of the period into the wallet's counter and take their room back.
/// The caller holds the whole wallet.
pub fn fold(c: &mut SpiClient<'_>, wallet_id: i64, asset: &str) -> Result<()> {
    exec(c, sql::LANE_CAPS_FOLD, &[wallet_id.into(), asset.into()])?;
    Ok(())
}

/// Hand the room left under `cap` (after `spent`) out to `lanes` lanes evenly for `period`
/// (after a [`fold`]; no cap: no room). The caller holds the whole wallet.
pub fn spread(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    asset: &str,
    lanes: i32,
    cap: Option<Decimal>,
    state: &WalletState,
) -> Result<()> {
    let room = match cap {
        // a difference too large to represent is more room than any lane needs
        Some(cap) => crate::amount::sub(cap, state.period_spent)
            .unwrap_or(Decimal::MAX)
            .max(Decimal::ZERO),
        None => Decimal::ZERO,
    };
    let scale = crate::wallets::asset_scale(c, asset)?;
    let rooms: Vec<AnyNumeric> = crate::lanes::shares(room, lanes, scale)
        .into_iter()
        .map(num)
        .collect();
    exec(
        c,
        sql::LANE_CAPS_SET,
        &[
            wallet_id.into(),
            asset.into(),
            state.period().into(),
            rooms.into(),
        ],
    )?;
    Ok(())
}

/// After a change of the wallet's settings or lanes (the caller holds the whole wallet): fold
/// every asset's lanes and hand the room out again under the wallet's cap as it is now.
pub fn refresh(c: &mut SpiClient<'_>, wallet_id: i64) -> Result<()> {
    if !catalog_has_caps() {
        return Ok(());
    }
    let Some(row) = spi::first(exec(c, sql::WALLET_GET_ID_V4, &[wallet_id.into()])?) else {
        return Ok(());
    };
    let w = Wallet::from_row_lanes(&row, 9)?;
    let assets: Vec<String> = exec(c, sql::LANE_CAPS_ASSETS, &[wallet_id.into()])?
        .into_iter()
        .map(|r| r.req::<String>(1))
        .collect::<Result<_>>()?;
    for asset in assets {
        fold(c, wallet_id, &asset)?;
        let cap = w.spend_cap.filter(|_| sliced(&w));
        let state = WalletState::load(c, wallet_id, &asset)?;
        spread(c, wallet_id, &asset, w.lanes, cap, &state)?;
    }
    Ok(())
}

/// A fast spend on `lane` (held): its hint lowered by `credits`, its room by `counted` (what
/// the cap counts: the call's cost, or the pool's part of a member's draw).
pub fn spend(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    asset: &str,
    lane: i32,
    credits: Decimal,
    counted: Decimal,
) -> Result<()> {
    if credits > Decimal::ZERO || counted > Decimal::ZERO {
        exec(
            c,
            sql::LANE_SPEND_CAP,
            &[
                wallet_id.into(),
                asset.into(),
                lane.into(),
                num(credits).into(),
                num(counted).into(),
            ],
        )?;
    }
    Ok(())
}

/// `amount` of a call's spend no longer counts (a release, a capture below the hold, a refund,
/// a run's budget returned): the room goes back to the lane the call took (`auth`: its id),
/// or, before any lane has room of this period (after the update to 0.10.0), the spend comes
/// off the wallet's counter.
pub fn give_back(
    c: &mut SpiClient<'_>,
    wallet_id: i64,
    asset: &str,
    auth: Option<i64>,
    amount: Decimal,
) -> Result<()> {
    if amount != Decimal::ZERO {
        exec(
            c,
            sql::LANE_CAP_GIVE_BACK,
            &[
                wallet_id.into(),
                asset.into(),
                auth.into(),
                num(amount).into(),
            ],
        )?;
    }
    Ok(())
}
