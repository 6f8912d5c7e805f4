//! Statements of the tenant column (0.12.0 on, issue 20): see [`crate::catalog`] for the
//! conventions, [`crate::spi::TENANT_PART`] for the marked parts that older catalogs leave out.

/// The tenant of wallet key `$1` (a reference table on a distributed ledger: read locally).
pub const WALLET_KEY_TENANT: &str =
    "SELECT tenant FROM credit_ledger.wallet_keys WHERE wallet = $1";

/// The tenant of authorization `$1`, of run `$1`, of grant `$1` (on a distributed ledger: read
/// from every shard, no lock).
pub const AUTHORIZATION_TENANT: &str =
    "SELECT tenant FROM credit_ledger.authorizations WHERE id = $1";
pub const RUN_TENANT: &str = "SELECT tenant FROM credit_ledger.runs WHERE id = $1";
pub const GRANT_TENANT: &str = "SELECT tenant FROM credit_ledger.grants WHERE id = $1";

/// Wallet `$1` joins pool `$2`: it (its parent set here, so that its key to the pool names the
/// new tenant), and its runs' wallets, take the pool's tenant, and so does every row of theirs
/// (the caller holds the wallet whole; the keys between them are checked at the statement's
/// end). A wallet already in the pool's tenant moves nothing. Returns the number of wallets moved.
pub const WALLET_TENANT_MOVE: &str = "
WITH t AS (SELECT p.tenant FROM credit_ledger.wallets p WHERE p.id = $2),
ids AS (SELECT w.id FROM credit_ledger.wallets w, t
         WHERE (w.id = $1 OR w.run_of = $1) AND w.tenant <> t.tenant),
w AS (UPDATE credit_ledger.wallets x
         SET tenant = t.tenant, parent_id = CASE WHEN x.id = $1 THEN $2 ELSE x.parent_id END
        FROM t WHERE x.id IN (SELECT id FROM ids)),
k AS (UPDATE credit_ledger.wallet_keys x SET tenant = t.tenant FROM t, credit_ledger.wallets y
       WHERE y.id IN (SELECT id FROM ids) AND x.wallet = y.wallet),
s AS (UPDATE credit_ledger.wallet_assets x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
g AS (UPDATE credit_ledger.grants x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
l AS (UPDATE credit_ledger.lanes x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
m AS (UPDATE credit_ledger.member_rooms x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
a AS (UPDATE credit_ledger.authorizations x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
j AS (UPDATE credit_ledger.journal x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
r AS (UPDATE credit_ledger.refunds x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
n AS (UPDATE credit_ledger.runs x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
al AS (UPDATE credit_ledger.allowances x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
e AS (UPDATE credit_ledger.events x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
o AS (UPDATE credit_ledger.operations x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
ov AS (UPDATE credit_ledger.wallet_overage x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
tu AS (UPDATE credit_ledger.tier_usage x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids)),
fu AS (UPDATE credit_ledger.fair_use_usage x SET tenant = t.tenant FROM t WHERE x.wallet_id IN (SELECT id FROM ids))
SELECT count(*) FROM ids";

/// [`crate::catalog::AUTH_LOCK`] on a distributed ledger: the authorization alone (columns 14, 15 and 18 NULL:
/// the rate's and asset's terms are read on their own, [`RATE_TERMS`]).
pub const AUTH_LOCK_DISTRIBUTED: &str = "
SELECT a.id, a.wallet_id, a.kind, a.status, a.asset, a.cost, a.rate_id, a.quantity,
       coalesce(a.captured, 0), a.refunded, a.expires_at <= coalesce($2, now()), a.close_key, a.close_hash,
       NULL::numeric, NULL::int, a.action, a.variant, NULL::text, a.fair_use
  FROM credit_ledger.authorizations a
 WHERE a.id = $1/*G*/ AND a.tenant = $T/*G*/ FOR UPDATE";
/// A rate's credits per unit, tiers (0.8.0 on) and vendor cost per unit, by id.
pub const RATE_TERMS: &str =
    "SELECT r.credits, (to_jsonb(r) -> 'tiers')::text, r.vendor_cost FROM credit_ledger.rates r WHERE r.id = $1";
/// The rate an authorization was priced by.
pub const AUTH_RATE_ID: &str =
    "SELECT rate_id FROM credit_ledger.authorizations WHERE id = $1/*G*/ AND tenant = $T/*G*/";
/// [`crate::catalog::AUTH_CLOSE`] on a distributed ledger: the rate's vendor cost per unit is `$11` (read on its
/// own: see [`AUTH_LOCK_DISTRIBUTED`]).
pub const AUTH_CLOSE_DISTRIBUTED: &str = "
UPDATE credit_ledger.authorizations
   SET status = $2, captured = $3, captured_quantity = $4, closed_at = now(), close_key = $5,
       close_hash = $6, reason = coalesce($7, reason), balance_after = coalesce($8, balance_after),
       pool_amount = pool_amount + coalesce($9, 0), overdraft_amount = overdraft_amount + coalesce($10, 0),
       vendor_cost = CASE WHEN $2 = 'captured' THEN $11 * $4 ELSE vendor_cost END
 WHERE id = $1/*G*/ AND tenant = $T/*G*/";
