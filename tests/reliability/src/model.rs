//! The reference model shared by `stress` and `crash` (the workload is in `workload.rs`, the
//! checker and the reconciliation in `check.rs`).
//!
//! Requests are plain values (every write carries its own idempotency key), so a request can
//! be re-sent unchanged (an exact replay, or the retry of an in-doubt call after a crash) or
//! with one argument altered (which must get 23505). Each call runs as `BEGIN; SELECT ...;
//! COMMIT` and counts as acknowledged only when COMMIT returned; some sleep a few ms inside the
//! transaction before COMMIT, and some are rolled back instead ([`End`]): never acknowledged,
//! their keys must not be on the server.
//!
//! The model keeps, per idempotency key, the first acknowledged result and applies its effect
//! once: credits granted per wallet, approved debit costs, captured amounts and refunds. Ledger
//! groups are the five stand-alone hot wallets and the team (the pool plus its four members,
//! whose debits draw the pool). After the run every group's server balance must equal
//! `granted − debited − captured + refunded − breakage`, where breakage (expiry of unspent
//! credits) is the one quantity the client cannot know and is read from the journal.

use crate::common::{self, Outcome};
use postgres::{Client, Statement};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wallets in Zipf rank order (rank 0 is the hottest).
pub const WALLETS: &[&str] = &["h0", "m0", "h1", "m1", "team", "h2", "m2", "h3", "m3", "h4"];
pub const TEAM: &[&str] = &["team", "m0", "m1", "m2", "m3"];

pub fn group_of(w: &str) -> &str {
    if TEAM.contains(&w) {
        "team"
    } else {
        w
    }
}

pub const SETUP: &str = "
    CREATE EXTENSION IF NOT EXISTS credit_ledger;
    SELECT credit_rate_set(action => 'op', credits => 1);
    SELECT credit_rate_set(action => 'op', variant => 'big', credits => 2.5);
    SELECT credit_wallet_create(wallet => 'h0');
    SELECT credit_wallet_create(wallet => 'h1', overdraft_limit => 30);
    SELECT credit_wallet_create(wallet => 'h2');
    SELECT credit_wallet_create(wallet => 'h3', spend_cap => 100000);
    SELECT credit_wallet_create(wallet => 'h4');
    SELECT credit_wallet_create(wallet => 'team');
    SELECT credit_wallet_create(wallet => 'm0', parent => 'team', pool_limit => 300);
    SELECT credit_wallet_create(wallet => 'm1', parent => 'team', overdraft_limit => 10);
    SELECT credit_wallet_create(wallet => 'm2', parent => 'team');
    SELECT credit_wallet_create(wallet => 'm3', parent => 'team');
";

pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[derive(Clone, Debug)]
pub enum Req {
    Grant {
        wallet: String,
        amount: Decimal,
        expires_at: Option<i64>,
        key: String,
    },
    Authorize {
        wallet: String,
        qty: Decimal,
        big: bool,
        key: String,
    },
    Hold {
        wallet: String,
        qty: Decimal,
        ttl_ms: i64,
        key: String,
    },
    Capture {
        hold: i64,
        qty: Option<Decimal>,
        key: String,
    },
    Release {
        hold: i64,
        key: String,
    },
    Refund {
        auth: i64,
        amount: Option<Decimal>,
        key: String,
    },
    Allocate {
        amount: Decimal,
        share: Decimal,
        key: String,
    },
    Expire,
    Tick,
}

impl Req {
    pub fn key(&self) -> Option<&str> {
        match self {
            Req::Grant { key, .. }
            | Req::Authorize { key, .. }
            | Req::Hold { key, .. }
            | Req::Capture { key, .. }
            | Req::Release { key, .. }
            | Req::Refund { key, .. }
            | Req::Allocate { key, .. } => Some(key),
            Req::Expire | Req::Tick => None,
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Req::Grant { .. } => "grant",
            Req::Authorize { .. } => "authorize",
            Req::Hold { .. } => "hold",
            Req::Capture { .. } => "capture",
            Req::Release { .. } => "release",
            Req::Refund { .. } => "refund",
            Req::Allocate { .. } => "allocate",
            Req::Expire => "expire",
            Req::Tick => "tick",
        }
    }
    /// The same request with one argument changed (same key); None when nothing can change.
    pub fn altered(&self) -> Option<Req> {
        let one = Decimal::ONE;
        Some(match self.clone() {
            Req::Grant {
                wallet,
                amount,
                expires_at,
                key,
            } => Req::Grant {
                wallet,
                amount: amount + one,
                expires_at,
                key,
            },
            Req::Authorize {
                wallet,
                qty,
                big,
                key,
            } => Req::Authorize {
                wallet,
                qty: qty + one,
                big,
                key,
            },
            Req::Hold {
                wallet,
                qty,
                ttl_ms,
                key,
            } => Req::Hold {
                wallet,
                qty: qty + one,
                ttl_ms,
                key,
            },
            Req::Capture { hold, qty, key } => Req::Capture {
                hold,
                qty: Some(qty.unwrap_or(one) + one),
                key,
            },
            Req::Refund { auth, amount, key } => Req::Refund {
                auth,
                amount: Some(
                    amount
                        .map(|a| a + Decimal::new(1, 4))
                        .unwrap_or(Decimal::new(1, 4)),
                ),
                key,
            },
            Req::Allocate { amount, share, key } => Req::Allocate {
                amount: amount + one,
                share,
                key,
            },
            Req::Release { .. } | Req::Expire | Req::Tick => return None,
        })
    }
}

/// What the server answered.
#[derive(Clone, Debug, PartialEq)]
pub enum Resp {
    Grant {
        id: i64,
        amount: Decimal,
    },
    Auth {
        id: i64,
        approved: bool,
        cost: Decimal,
        expires_at: Option<i64>,
    },
    Closed {
        id: i64,
        status: String,
        amount: Decimal,
    },
    Refund {
        id: i64,
        amount: Decimal,
    },
    Allocate {
        grants: Vec<(String, i64, Decimal)>,
    },
    Swept,
}

pub fn dec(s: Option<String>) -> Decimal {
    s.and_then(|t| Decimal::from_str(&t).ok())
        .unwrap_or_default()
}

/// How a request's transaction ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End {
    /// COMMIT at once.
    Commit,
    /// Sleep this many milliseconds inside the transaction, then COMMIT.
    SleepCommit(u64),
    /// Sleep this many milliseconds (0: none), then ROLLBACK: the call is never acknowledged.
    Rollback(u64),
}

/// Wallets given spending lanes after the opening grants (`credit_wallet_lanes`): the team
/// pool, the hottest stand-alone wallet, and (since 0.10.0) the tracked ones: h1 with an
/// overdraft (fast while a lane pays, the exact path into the overdraft) and h3 with a spend
/// cap (sliced over its lanes).
pub const LANES: &[(&str, i32)] = &[("team", 8), ("h0", 4), ("h1", 4), ("h3", 4)];

/// Prepared statements of one connection.
pub struct Conn {
    pub client: Client,
    st: Vec<Statement>,
}

const STMTS: &[&str] = &[
    "SELECT id, amount::text FROM credit_grant(wallet => $1, amount => $2::text::numeric,
        expires_at => 'epoch'::timestamptz + $3::bigint * interval '1 microsecond', idempotency_key => $4)",
    "SELECT authorization_id, approved, cost::text FROM credit_authorize(wallet => $1, action => 'op',
        quantity => $2::text::numeric, variant => $3, idempotency_key => $4)",
    "SELECT authorization_id, approved, cost::text, (extract(epoch FROM expires_at) * 1000000)::bigint
       FROM credit_hold(wallet => $1, action => 'op', quantity => $2::text::numeric, idempotency_key => $3,
                        ttl => $4::bigint * interval '1 millisecond')",
    "SELECT authorization_id, status, cost::text FROM credit_capture(authorization_id => $1,
        quantity => $2::text::numeric, idempotency_key => $3)",
    "SELECT authorization_id, status, cost::text FROM credit_release(authorization_id => $1, idempotency_key => $2)",
    "SELECT refund_id, amount::text FROM credit_refund(authorization_id => $1, amount => $2::text::numeric,
        idempotency_key => $3)",
    "SELECT wallet, grant_id, amount::text FROM credit_team_allocate(team => 'team',
        amount_per_member => $1::text::numeric, pooled_share => $2::text::numeric, idempotency_key => $3)",
    "SELECT 1 FROM credit_expire()",
    "SELECT 1 FROM credit_tick()",
];

impl Conn {
    pub fn open(base: &postgres::Config, db: &str) -> Result<Conn, String> {
        let mut client = common::connect(base, db)?;
        client
            .batch_execute("SET statement_timeout = '30s'; SET lock_timeout = '20s'")
            .map_err(|e| common::err_text(&e))?;
        let mut st = Vec::new();
        for s in STMTS {
            st.push(
                client
                    .prepare(s)
                    .map_err(|e| format!("prepare: {}", common::err_text(&e)))?,
            );
        }
        Ok(Conn { client, st })
    }

    /// One request in its own transaction, ended as `end` says: Ok only when COMMIT (or, for
    /// [`End::Rollback`], ROLLBACK) returned.
    pub fn exec_with(&mut self, r: &Req, end: End) -> Result<Resp, Outcome> {
        // a server going away (class 08, 57P01..57P03) leaves the call in doubt, like a
        // broken connection
        let err = |e: postgres::Error| match common::classify(&e) {
            Outcome::Db(code, msg) if code.starts_with("08") || code.starts_with("57P") => {
                Outcome::Lost(format!("{code}: {msg}"))
            }
            o => o,
        };
        let c = &mut self.client;
        c.batch_execute("BEGIN").map_err(err)?;
        let res = (|| -> Result<Resp, postgres::Error> {
            Ok(match r {
                Req::Grant {
                    wallet,
                    amount,
                    expires_at,
                    key,
                } => {
                    let row =
                        c.query_one(&self.st[0], &[wallet, &amount.to_string(), expires_at, key])?;
                    Resp::Grant {
                        id: row.get(0),
                        amount: dec(row.get(1)),
                    }
                }
                Req::Authorize {
                    wallet,
                    qty,
                    big,
                    key,
                } => {
                    let v: Option<&str> = if *big { Some("big") } else { None };
                    let row = c.query_one(&self.st[1], &[wallet, &qty.to_string(), &v, key])?;
                    Resp::Auth {
                        id: row.get(0),
                        approved: row.get(1),
                        cost: dec(row.get(2)),
                        expires_at: None,
                    }
                }
                Req::Hold {
                    wallet,
                    qty,
                    ttl_ms,
                    key,
                } => {
                    let row = c.query_one(&self.st[2], &[wallet, &qty.to_string(), key, ttl_ms])?;
                    Resp::Auth {
                        id: row.get(0),
                        approved: row.get(1),
                        cost: dec(row.get(2)),
                        expires_at: row.get(3),
                    }
                }
                Req::Capture { hold, qty, key } => {
                    let q = qty.map(|d| d.to_string());
                    let row = c.query_one(&self.st[3], &[hold, &q, key])?;
                    Resp::Closed {
                        id: row.get(0),
                        status: row.get(1),
                        amount: dec(row.get(2)),
                    }
                }
                Req::Release { hold, key } => {
                    let row = c.query_one(&self.st[4], &[hold, key])?;
                    Resp::Closed {
                        id: row.get(0),
                        status: row.get(1),
                        amount: dec(row.get(2)),
                    }
                }
                Req::Refund { auth, amount, key } => {
                    let a = amount.map(|d| d.to_string());
                    let row = c.query_one(&self.st[5], &[auth, &a, key])?;
                    Resp::Refund {
                        id: row.get(0),
                        amount: dec(row.get(1)),
                    }
                }
                Req::Allocate { amount, share, key } => {
                    let rows =
                        c.query(&self.st[6], &[&amount.to_string(), &share.to_string(), key])?;
                    let mut g: Vec<(String, i64, Decimal)> = rows
                        .iter()
                        .map(|r| (r.get(0), r.get(1), dec(r.get(2))))
                        .collect();
                    g.sort();
                    Resp::Allocate { grants: g }
                }
                Req::Expire => {
                    c.query(&self.st[7], &[])?;
                    Resp::Swept
                }
                Req::Tick => {
                    c.query(&self.st[8], &[])?;
                    Resp::Swept
                }
            })
        })();
        // a long transaction: the call's locks (a lane, a wallet) are held while it sleeps
        let res = res.and_then(|resp| {
            let ms = match end {
                End::Commit => 0,
                End::SleepCommit(ms) | End::Rollback(ms) => ms,
            };
            if ms > 0 {
                c.execute("SELECT pg_sleep($1::float8 / 1000)", &[&(ms as f64)])?;
            }
            Ok(resp)
        });
        match res {
            Ok(resp) if matches!(end, End::Rollback(_)) => {
                c.batch_execute("ROLLBACK").map_err(err)?;
                Ok(resp)
            }
            Ok(resp) => {
                c.batch_execute("COMMIT").map_err(err)?;
                Ok(resp)
            }
            Err(e) => {
                let o = err(e);
                let _ = c.batch_execute("ROLLBACK");
                Err(o)
            }
        }
    }
}

#[derive(Clone, Debug)]
pub enum HoldState {
    Held { wallet: String, expires_at: i64 },
    Closed,
}

/// Per-debit refund bookkeeping: wallet, amount paid, amount refunded.
#[derive(Clone, Debug)]
pub struct Debit {
    pub wallet: String,
    pub paid: Decimal,
    pub refunded: Decimal,
}

#[derive(Default)]
pub struct Model {
    /// first acknowledged (request, response) per key
    pub acked: HashMap<String, (Req, Resp)>,
    pub granted: BTreeMap<String, Decimal>,
    pub debited: BTreeMap<String, Decimal>,
    pub refunded: BTreeMap<String, Decimal>,
    pub holds: HashMap<i64, HoldState>,
    pub debits: HashMap<i64, Debit>,
    /// release acknowledgements that found the hold already expired (no key is stored then)
    pub keyless_acks: HashSet<String>,
    pub max_expiry: i64,
    pub violations: Vec<String>,
}

impl Model {
    fn add(map: &mut BTreeMap<String, Decimal>, w: &str, d: Decimal) {
        *map.entry(group_of(w).to_string()).or_default() += d;
    }

    /// Record an acknowledged result. Returns false when it contradicts an earlier one for
    /// the same key (a double-applied or inconsistent replay).
    pub fn ack(&mut self, req: &Req, resp: &Resp) -> bool {
        let Some(key) = req.key() else { return true };
        if let Some((_, first)) = self.acked.get(key) {
            let same = match (first, resp) {
                // a replay reports the authorization's current state (a hold captured since shows
                // the captured cost): the same authorization, approved or declined as before
                (
                    Resp::Auth {
                        id: a, approved: x, ..
                    },
                    Resp::Auth {
                        id: b, approved: y, ..
                    },
                ) => a == b && x == y,
                (
                    Resp::Closed {
                        id: a, amount: x, ..
                    },
                    Resp::Closed {
                        id: b, amount: y, ..
                    },
                ) => a == b && x == y,
                _ => first == resp,
            };
            if !same {
                self.violations.push(format!("double-applied or inconsistent replay of key {key}: first {first:?}, now {resp:?}"));
            }
            return same;
        }
        self.acked
            .insert(key.to_string(), (req.clone(), resp.clone()));
        match (req, resp) {
            (
                Req::Grant {
                    wallet, expires_at, ..
                },
                Resp::Grant { amount, .. },
            ) => {
                Self::add(&mut self.granted, wallet, *amount);
                if let Some(e) = expires_at {
                    self.max_expiry = self.max_expiry.max(*e);
                }
            }
            (
                Req::Authorize { wallet, .. },
                Resp::Auth {
                    id,
                    approved: true,
                    cost,
                    ..
                },
            ) => {
                Self::add(&mut self.debited, wallet, *cost);
                self.debits.insert(
                    *id,
                    Debit {
                        wallet: wallet.clone(),
                        paid: *cost,
                        refunded: Decimal::ZERO,
                    },
                );
            }
            (
                Req::Hold { wallet, .. },
                Resp::Auth {
                    id,
                    approved: true,
                    expires_at,
                    ..
                },
            ) => {
                let e = expires_at.unwrap_or(i64::MAX);
                self.holds.insert(
                    *id,
                    HoldState::Held {
                        wallet: wallet.clone(),
                        expires_at: e,
                    },
                );
                // short ttls are waited for before a reconciliation; ten-minute ones are released
                if e < now_micros() + 5_000_000 {
                    self.max_expiry = self.max_expiry.max(e);
                }
            }
            (Req::Capture { hold, .. }, Resp::Closed { status, amount, .. }) => {
                if let Some(HoldState::Held { wallet, .. }) = self.holds.get(hold).cloned() {
                    if status == "captured" {
                        Self::add(&mut self.debited, &wallet, *amount);
                        self.debits.insert(
                            *hold,
                            Debit {
                                wallet,
                                paid: *amount,
                                refunded: Decimal::ZERO,
                            },
                        );
                    } else {
                        self.violations
                            .push(format!("capture of hold {hold} answered status {status}"));
                    }
                }
                self.holds.insert(*hold, HoldState::Closed);
            }
            (Req::Release { hold, .. }, Resp::Closed { status, .. }) => {
                if status == "expired" {
                    self.keyless_acks.insert(key.to_string());
                }
                self.holds.insert(*hold, HoldState::Closed);
            }
            (Req::Refund { auth, .. }, Resp::Refund { amount, .. }) => {
                if let Some(d) = self.debits.get_mut(auth) {
                    d.refunded += *amount;
                    let w = d.wallet.clone();
                    if d.refunded > d.paid {
                        self.violations.push(format!(
                            "authorization {auth} refunded {} of {}",
                            d.refunded, d.paid
                        ));
                    }
                    Self::add(&mut self.refunded, &w, *amount);
                }
            }
            (Req::Allocate { .. }, Resp::Allocate { grants }) => {
                for (w, _, a) in grants {
                    Self::add(&mut self.granted, w, *a);
                }
            }
            _ => {}
        }
        true
    }

    /// A capture that failed with 55000: the hold expired (or was finalized by a sweep).
    pub fn hold_gone(&mut self, hold: i64) {
        self.holds.insert(hold, HoldState::Closed);
    }

    pub fn expected(&self, group: &str) -> Decimal {
        let g = |m: &BTreeMap<String, Decimal>| m.get(group).copied().unwrap_or_default();
        g(&self.granted) - g(&self.debited) + g(&self.refunded)
    }
}
