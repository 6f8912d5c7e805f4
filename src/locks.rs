//! Wallet locks: whoever moves a wallet's grants or changes its settings holds the wallet's
//! lock until its transaction ends.
//!
//! The lock is a transaction-level heavyweight lock in PostgreSQL's advisory lock space, keyed
//! by the wallet's key (its text, which never changes): LOCKTAG (database, high and low 32 bits
//! of the key's FNV-1a hash, 17228 = 0x434C "CL"). `pg_advisory_xact_lock(bigint)` and
//! `(int, int)` use 1 and 2 in that last field, so an application's own advisory locks never
//! meet these. `pg_locks` shows them as `locktype = 'advisory'`, `objsubid = 17228`.
//!
//! Why not the wallet row (`SELECT … FOR NO KEY UPDATE`, the first design): a row lock writes the
//! locker's id into the tuple, so every debit dirtied the wallet's page and wrote a WAL record,
//! and the first debit of each page after a checkpoint wrote a full-page image — the cost that
//! grew with the number of wallets. This lock writes nothing.
//!
//! Rules: take the lock *before* reading the settings it protects (each SPI statement takes a
//! fresh snapshot in READ COMMITTED, so the read after the lock sees every committed change);
//! a member before its pool; the members of one pool in id order (`credit_team_allocate`).
//! Two different keys share a lock only if their 64-bit hashes collide; that only serializes
//! them. The deadlock detector sees these locks like any other.

use crate::catalog as sql;
use crate::error::{Kind, LedgerError, Result};
use crate::spi::{self, exec, RowExt};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

/// The fourth field of every wallet lock tag ("CL").
pub const LOCK_SPACE: u16 = 0x434C;

/// FNV-1a, 64 bits: stable across builds and platforms, so every backend computes the same tag.
pub fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn tag(key: &str) -> pg_sys::LOCKTAG {
    let h = key_hash(key);
    pg_sys::LOCKTAG {
        // SAFETY: MyDatabaseId is set once the backend is connected to a database
        locktag_field1: unsafe { pg_sys::MyDatabaseId }.to_u32(),
        locktag_field2: (h >> 32) as u32,
        locktag_field3: h as u32,
        locktag_field4: LOCK_SPACE,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    }
}

fn acquire(key: &str, wait: bool) -> bool {
    let t = tag(key);
    // SAFETY: a valid tag; transaction-level (not a session lock), released at commit or abort
    // (or at the abort of the subtransaction that took it), as pg_advisory_xact_lock is.
    let r =
        unsafe { pg_sys::LockAcquire(&t, pg_sys::ExclusiveLock as pg_sys::LOCKMODE, false, !wait) };
    r != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
}

/// Lock the wallet with this key, waiting for the holder to commit or roll back.
pub fn wallet(key: &str) {
    acquire(key, true);
}

/// Lock the wallet with this key if nobody holds it; `false` (and no lock) if somebody does.
pub fn try_wallet(key: &str) -> bool {
    acquire(key, false)
}

fn key_of(c: &mut SpiClient<'_>, id: i64) -> Result<String> {
    spi::first(exec(c, sql::WALLET_NAME, &[id.into()])?)
        .map(|r| r.req::<String>(1))
        .transpose()?
        .ok_or_else(|| LedgerError::new(Kind::Internal, format!("wallet {id} vanished")))
}

/// Lock a wallet known by id (pools, holds, sweeps): its key is read first (keys never change).
pub fn wallet_id(c: &mut SpiClient<'_>, id: i64) -> Result<()> {
    wallet(&key_of(c, id)?);
    Ok(())
}

/// [`try_wallet`] for a wallet known by id.
pub fn try_wallet_id(c: &mut SpiClient<'_>, id: i64) -> Result<bool> {
    Ok(try_wallet(&key_of(c, id)?))
}

/// The wallet lock for SQL code (`credit_team_allocate`). Private: applications lock wallets
/// by calling the ledger's functions.
#[pg_extern(sql = "
CREATE FUNCTION credit_ledger._wallet_lock(wallet text) RETURNS void
VOLATILE STRICT PARALLEL UNSAFE
LANGUAGE c AS 'MODULE_PATHNAME', 'wallet_lock_wrapper';")]
fn wallet_lock(wallet: &str) {
    self::wallet(wallet);
}

#[cfg(test)]
mod tests {
    use super::key_hash;

    #[test]
    fn hash_is_fnv1a_64() {
        // reference values of FNV-1a 64
        assert_eq!(key_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(key_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(key_hash("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn different_keys_differ() {
        let keys: Vec<String> = (0..10_000).map(|i| format!("cust_{i}")).collect();
        let mut hashes: Vec<u64> = keys.iter().map(|k| key_hash(k)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), keys.len());
    }
}
