//! The SQL statements of the overage menu (0.7.0 on; see [`crate::overage`]), apart from
//! [`crate::catalog`] for size; `catalog` re-exports them. The rate statements are the 0.7.0
//! forms of [`crate::catalog`]'s `RATE_*` (with `fallback`), used when the catalog has it;
//! they read `tiers` (0.8.0 on) as `to_jsonb(r) -> 'tiers'`, NULL on a 0.7.0 catalog.

pub const RATE_AT_V7: &str = "
SELECT id, credits, asset, unit, vendor_cost, fallback, (to_jsonb(r) -> 'tiers')::text, effective_from
  FROM credit_ledger.rates r
 WHERE rate_card = $1 AND action = $2 AND variant IS NOT DISTINCT FROM $3 AND effective_from = $4";
pub const RATE_CURRENT_V7: &str = "
SELECT credits, asset, unit, vendor_cost, fallback, (to_jsonb(r) -> 'tiers')::text
  FROM credit_ledger.rates r
 WHERE rate_card = $1 AND action = $2 AND variant IS NOT DISTINCT FROM $3 AND effective_from <= $4
 ORDER BY effective_from DESC LIMIT 1";
pub const RATE_INSERT_V7: &str = "
INSERT INTO credit_ledger.rates (rate_card, action, variant, credits, asset, unit, vendor_cost,
                                 effective_from, fallback)
VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, now()), $9)
RETURNING id, effective_from";
pub const RATE_REPLACE_V7: &str = "
UPDATE credit_ledger.rates SET credits = $2, asset = $3, unit = $4, vendor_cost = $5, fallback = $6
 WHERE id = $1";
pub const RATE_ROW_V7: &str = "
SELECT id, rate_card, action, variant, credits, asset, unit, vendor_cost, effective_from, fallback,
       (to_jsonb(r) -> 'tiers')::text
  FROM credit_ledger.rates r WHERE id = $1";
pub const RATE_CARD_CURRENT_V7: &str = r#"
SELECT DISTINCT ON (action, variant) action, variant, credits::text, asset, unit, vendor_cost::text,
       to_char(effective_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), fallback,
       (to_jsonb(r) -> 'tiers')::text
  FROM credit_ledger.rates r
 WHERE rate_card = $1 AND effective_from <= now()
 ORDER BY action, variant, effective_from DESC"#;
/// A degraded call: the variant its caller asked for (the row was just written by this call).
pub const AUTH_DEGRADED: &str = "
UPDATE credit_ledger.authorizations SET degraded = true, requested_variant = $2 WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// A wallet's auto top-up: the low-balance crossing just announced also writes an
/// `auto_topup` event with the amount and an idempotency key for the grant, unique per
/// crossing (`auto_topup.<n>`).
pub const AUTO_TOPUP_EMIT: &str = "
WITH o AS (
    UPDATE credit_ledger.wallet_overage SET topups = topups + 1
     WHERE wallet_id = $1 AND asset = $2 AND auto_topup_amount IS NOT NULL/*G*/ AND tenant = $T/*G*/
    RETURNING auto_topup_amount, topups),
e AS (
    INSERT INTO credit_ledger.events (kind, wallet_id, asset, payload/*t*/, tenant/*t*/)
    SELECT 'auto_topup', $1, $2,
           pg_catalog.jsonb_build_object('event', 'auto_topup', 'wallet', $3::text, 'asset', $2::text,
               'balance', $4::numeric, 'threshold', $5::numeric, 'amount', o.auto_topup_amount,
               'idempotency_key', 'auto_topup.' || o.topups)
           /*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/
      FROM o
    RETURNING id)
SELECT pg_catalog.pg_notify('credit_ledger', e.id::text) FROM e";
/// `upgrade_suggested` events of the period (credit_tick; see sql/overage.sql).
pub const UPGRADE_SIGNALS: &str = "SELECT credit_ledger._upgrade_signals($1)";
/// The wallet whose tier counter a spend of wallet `$1` uses (the opener of a run for a run's
/// wallet) and its current period's start (0.8.0 on; see [`crate::tiers`]).
pub const TIER_OWNER: &str = "
SELECT o.id, credit_ledger._period_start(o.period, o.period_anchor, now())
  FROM credit_ledger.wallets w JOIN credit_ledger.wallets o ON o.id = coalesce(w.run_of, w.id)/*t*/ AND o.tenant = w.tenant/*t*//*G*/ AND o.tenant = $T/*G*/
 WHERE w.id = $1/*G*/ AND w.tenant = $T/*G*/";
pub const TIER_LOCK: &str = "
SELECT units FROM credit_ledger.tier_usage
 WHERE wallet_id = $1 AND action = $2 AND variant = $3 AND period_start = $4/*G*/ AND tenant = $T/*G*/ FOR UPDATE";
/// A new counter: nothing when a concurrent call created it first (it is then locked).
pub const TIER_CREATE: &str = "
INSERT INTO credit_ledger.tier_usage (wallet_id, action, variant, period_start/*t*/, tenant/*t*/)
VALUES ($1, $2, $3, $4/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/)
ON CONFLICT DO NOTHING RETURNING units";
pub const TIER_PEEK: &str = "
SELECT units FROM credit_ledger.tier_usage
 WHERE wallet_id = $1 AND action = $2 AND variant = $3 AND period_start = $4/*G*/ AND tenant = $T/*G*/";
pub const TIER_ADVANCE: &str = "
UPDATE credit_ledger.tier_usage SET units = units + $5
 WHERE wallet_id = $1 AND action = $2 AND variant = $3 AND period_start = $4/*G*/ AND tenant = $T/*G*/";
/// A rate version's tiers (0.8.0 on; NULL: none).
pub const RATE_SET_TIERS: &str = "UPDATE credit_ledger.rates SET tiers = $2::jsonb WHERE id = $1";
/// A wallet's fair-use limit in an asset and its current period's start (0.8.0 on; see
/// [`crate::fair_use`]).
pub const FAIR_USE_OF: &str = "
SELECT o.fair_use_limit, credit_ledger._period_start(w.period, w.period_anchor, now())
  FROM credit_ledger.wallet_overage o JOIN credit_ledger.wallets w ON w.id = o.wallet_id/*t*/ AND w.tenant = o.tenant/*t*//*G*/ AND w.tenant = $T/*G*/
 WHERE o.wallet_id = $1 AND o.asset = $2 AND o.fair_use_limit IS NOT NULL/*G*/ AND o.tenant = $T/*G*/";
/// A fair-use authorization's wallet's limit now and the start of the period the authorization
/// was made in.
pub const FAIR_USE_OF_AUTH: &str = "
SELECT o.fair_use_limit, credit_ledger._period_start(w.period, w.period_anchor, a.created_at)
  FROM credit_ledger.authorizations a JOIN credit_ledger.wallets w ON w.id = a.wallet_id/*t*/ AND w.tenant = a.tenant/*t*//*G*/ AND w.tenant = $T/*G*/
  LEFT JOIN credit_ledger.wallet_overage o ON o.wallet_id = a.wallet_id AND o.asset = a.asset/*t*/ AND o.tenant = a.tenant/*t*//*G*/ AND o.tenant = $T/*G*/
 WHERE a.id = $1 AND a.fair_use/*G*/ AND a.tenant = $T/*G*/";
pub const FAIR_USE_LOCK: &str = "
SELECT used FROM credit_ledger.fair_use_usage
 WHERE wallet_id = $1 AND asset = $2 AND period_start = $3/*G*/ AND tenant = $T/*G*/ FOR UPDATE";
pub const FAIR_USE_CREATE: &str = "
INSERT INTO credit_ledger.fair_use_usage (wallet_id, asset, period_start/*t*/, tenant/*t*/)
VALUES ($1, $2, $3/*t*/, /*N*/(SELECT tenant FROM credit_ledger.wallets WHERE id = $1)/*N*//*G*/$T/*G*//*t*/)
ON CONFLICT DO NOTHING RETURNING used";
pub const FAIR_USE_PEEK: &str = "
SELECT used FROM credit_ledger.fair_use_usage WHERE wallet_id = $1 AND asset = $2 AND period_start = $3/*G*/ AND tenant = $T/*G*/";
pub const FAIR_USE_ADVANCE: &str = "
UPDATE credit_ledger.fair_use_usage SET used = greatest(used + $4, 0)
 WHERE wallet_id = $1 AND asset = $2 AND period_start = $3/*G*/ AND tenant = $T/*G*/";
/// A call paid by fair use (the row was just written by this call).
pub const AUTH_FAIR_USE: &str =
    "UPDATE credit_ledger.authorizations SET fair_use = true WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// A wallet's own balance in an asset, net of overdraft debt (what a spend reports; the
/// function subtracts the debt: until 0.14.0 this statement subtracted it a second time).
pub const OWN_BALANCE: &str = "SELECT credit_ledger._balance($1, $2)";
/// [`OWN_BALANCE`] on a ledger Citus distributes (0.13.0 on): `_balance_in` names the tenant in
/// each of its queries (Citus plans no SQL function with parameters, which `_balance` is).
pub const OWN_BALANCE_IN: &str = "SELECT credit_ledger._balance_in($T, $1, $2)";
/// The same key's positions of earlier periods, deleted when its first call of a new period
/// creates the new one (0.9.0 on): no call reads them again (a capture counts in the period it
/// closes in), and a wallet keeps one row per key instead of one per key and period.
pub const TIER_PRUNE: &str = "
DELETE FROM credit_ledger.tier_usage
 WHERE wallet_id = $1 AND action = $2 AND variant = $3 AND period_start < $4/*G*/ AND tenant = $T/*G*/";
/// The same for fair use, unless a fair-use hold made before the new period is still open (its
/// capture, release or expiry corrects the count of the period it was made in; the rows wait
/// for the next new period then).
pub const FAIR_USE_PRUNE: &str = "
DELETE FROM credit_ledger.fair_use_usage
 WHERE wallet_id = $1 AND asset = $2 AND period_start < $3/*G*/ AND tenant = $T/*G*/
   AND NOT EXISTS (SELECT 1 FROM credit_ledger.authorizations a
                    WHERE a.wallet_id = $1 AND a.asset = $2 AND a.fair_use AND a.status = 'held'
                      AND a.created_at < $3/*G*/ AND a.tenant = $T/*G*/)";
