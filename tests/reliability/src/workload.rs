//! The random workload: sessions of Zipf-skewed operations with exact and altered replays,
//! sending with retries of transient errors, and settling every answer into the model. 8 % of
//! the calls sleep 2–15 ms inside their transaction before COMMIT (holding a lane or a wallet
//! meanwhile), 6 % are rolled back after they answered (half of them after such a sleep).

use crate::common::{self, Outcome};
use crate::model::{now_micros, Conn, End, HoldState, Model, Req, Resp, WALLETS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counters of one run (all sessions).
#[derive(Default)]
pub struct Stats {
    pub ops: AtomicU64,
    pub acked: AtomicU64,
    pub approved: AtomicU64,
    pub declined: AtomicU64,
    pub replays: AtomicU64,
    pub replay_mismatch: AtomicU64,
    pub altered: AtomicU64,
    pub altered_23505: AtomicU64,
    pub expected_errors: AtomicU64,
    pub retries: Mutex<BTreeMap<String, u64>>,
    pub unexpected: Mutex<Vec<String>>,
    pub altered_wrong: Mutex<BTreeMap<String, u64>>,
    /// calls whose COMMIT was never confirmed, and whether they were altered replays
    pub in_doubt: Mutex<Vec<(Req, bool)>>,
    /// exact replays (or retries) of acknowledged calls that were rejected, by message
    pub replay_rejected: Mutex<BTreeMap<String, u64>>,
    /// calls that slept inside their transaction before COMMIT (acknowledged)
    pub slept: AtomicU64,
    /// calls rolled back after they answered, and their keys (never acknowledged)
    pub rolled_back: AtomicU64,
    pub rolled_back_keys: Mutex<Vec<String>>,
}

pub struct Ctx {
    pub base: postgres::Config,
    pub db: String,
    pub run: String,
    pub seed: u64,
    pub stop: AtomicBool,
    pub model: Mutex<Model>,
    pub stats: Stats,
    /// requests to be re-sent by some other session later
    pub deferred: Mutex<Vec<(Req, bool)>>,
}

fn pick_wallet(rng: &mut StdRng) -> &'static str {
    // Zipf(s = 1.2) over the ranks of WALLETS
    let w: Vec<f64> = (0..WALLETS.len())
        .map(|k| 1.0 / ((k + 1) as f64).powf(1.2))
        .collect();
    let total: f64 = w.iter().sum();
    let mut x = rng.gen::<f64>() * total;
    for (i, wi) in w.iter().enumerate() {
        if x < *wi {
            return WALLETS[i];
        }
        x -= wi;
    }
    WALLETS[0]
}

fn amount(rng: &mut StdRng, lo: i64, hi: i64, dp: u32) -> Decimal {
    let scale = 10i64.pow(dp);
    Decimal::new(rng.gen_range(lo * scale..=hi * scale), dp)
}

const TRANSIENT: &[&str] = &["40001", "40P01", "55P03", "57014"];

/// Send a request, retrying transient errors with the same key. Ok(resp), or Err(outcome) for
/// a definitive error or a lost connection.
pub fn send(ctx: &Ctx, conn: &mut Conn, r: &Req) -> Result<Resp, Outcome> {
    send_with(ctx, conn, r, End::Commit)
}

/// [`send`] with the transaction ended as `end` says.
pub fn send_with(ctx: &Ctx, conn: &mut Conn, r: &Req, end: End) -> Result<Resp, Outcome> {
    let mut tries = 0;
    loop {
        ctx.stats.ops.fetch_add(1, Ordering::Relaxed);
        match conn.exec_with(r, end) {
            Ok(resp) => return Ok(resp),
            Err(Outcome::Db(code, msg)) if TRANSIENT.contains(&code.as_str()) && tries < 5 => {
                tries += 1;
                *ctx.stats
                    .retries
                    .lock()
                    .unwrap()
                    .entry(code.clone())
                    .or_default() += 1;
                let _ = msg;
                std::thread::sleep(Duration::from_millis(5 * tries));
            }
            Err(o) => return Err(o),
        }
    }
}

/// Handle the answer to a first send or an exact replay/retry. `Lost` is returned to the
/// caller (the request is in doubt).
pub fn settle(ctx: &Ctx, r: &Req, out: Result<Resp, Outcome>, replay: bool) -> Option<Outcome> {
    match out {
        Ok(resp) => {
            ctx.stats.acked.fetch_add(1, Ordering::Relaxed);
            if let Resp::Auth { approved, .. } = &resp {
                if !replay {
                    let c = if *approved {
                        &ctx.stats.approved
                    } else {
                        &ctx.stats.declined
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
            let ok = ctx.model.lock().unwrap().ack(r, &resp);
            if replay && !ok {
                ctx.stats.replay_mismatch.fetch_add(1, Ordering::Relaxed);
            }
            None
        }
        Err(Outcome::Db(code, msg)) => {
            // expected: a capture of a hold whose ttl passed (or that a sweep finalized)
            if let (Req::Capture { hold, .. }, "55000") = (r, code.as_str()) {
                let mut m = ctx.model.lock().unwrap();
                let expired = match m.holds.get(hold) {
                    Some(HoldState::Held { expires_at, .. }) => {
                        *expires_at <= now_micros() + 50_000
                    }
                    _ => false,
                };
                if expired || msg.contains("expired") {
                    m.hold_gone(*hold);
                    ctx.stats.expected_errors.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
            // expected: a grant with a short expiry that waited (for the lanes of its wallet,
            // or a retry) until its expiry had passed: the server's now() is later than it
            if let (
                Req::Grant {
                    expires_at: Some(e),
                    ..
                },
                "22023",
            ) = (r, code.as_str())
            {
                if !replay
                    && *e <= now_micros()
                    && msg.contains("expires_at must be after effective_at")
                {
                    ctx.stats.expected_errors.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
            if replay {
                // the same key and arguments must return the first result, not an error
                let norm: String = msg
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '#' } else { c })
                    .collect();
                *ctx.stats
                    .replay_rejected
                    .lock()
                    .unwrap()
                    .entry(format!("{} -> {code}: {norm}", r.kind()))
                    .or_default() += 1;
                return None;
            }
            ctx.stats.unexpected.lock().unwrap().push(format!(
                "{} {:?} -> {code}: {msg}",
                r.kind(),
                r
            ));
            Some(Outcome::Db(code, msg))
        }
        Err(o) => Some(o),
    }
}

/// An altered replay: must be rejected with 23505 and change nothing.
pub fn altered(ctx: &Ctx, conn: &mut Conn, r: &Req) -> Option<Outcome> {
    ctx.stats.altered.fetch_add(1, Ordering::Relaxed);
    match send(ctx, conn, r) {
        Err(Outcome::Db(code, _)) if code == "23505" => {
            ctx.stats.altered_23505.fetch_add(1, Ordering::Relaxed);
            None
        }
        Err(Outcome::Lost(e)) => Some(Outcome::Lost(e)),
        other => {
            let what = match &other {
                Ok(_) => "accepted".to_string(),
                Err(Outcome::Db(code, msg)) => {
                    let m: String = common::clip(msg, 80)
                        .chars()
                        .map(|c| if c.is_ascii_digit() { '#' } else { c })
                        .collect();
                    format!("{code}: {m}")
                }
                Err(o) => format!("{o:?}"),
            };
            *ctx.stats
                .altered_wrong
                .lock()
                .unwrap()
                .entry(format!("{} -> {what}", r.kind()))
                .or_default() += 1;
            if let Ok(resp) = other {
                ctx.model
                    .lock()
                    .unwrap()
                    .violations
                    .push(format!("altered replay accepted: {r:?} -> {resp:?}"));
            }
            None
        }
    }
}

/// One session: random operations until `ops` are done or `ctx.stop` is set.
pub fn session(ctx: Arc<Ctx>, id: usize, ops: u64) {
    let mut rng = StdRng::seed_from_u64(ctx.seed.wrapping_mul(1_000_003).wrapping_add(id as u64));
    let mut conn = loop {
        match Conn::open(&ctx.base, &ctx.db) {
            Ok(c) => break c,
            Err(e) => {
                if ctx.stop.load(Ordering::Relaxed) {
                    return;
                }
                ctx.stats
                    .unexpected
                    .lock()
                    .unwrap()
                    .push(format!("session {id}: {e}"));
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    let mut seq = 0u64;
    let mut my_holds: Vec<i64> = Vec::new();
    let mut my_debits: Vec<i64> = Vec::new();
    let lost = |ctx: &Ctx, r: &Req, alter: bool| {
        ctx.stats.in_doubt.lock().unwrap().push((r.clone(), alter));
    };
    let mut done = 0u64;
    while done < ops && !ctx.stop.load(Ordering::Relaxed) {
        done += 1;
        // a deferred replay of some other session's request
        if rng.gen_bool(0.12) {
            let item = {
                let mut d = ctx.deferred.lock().unwrap();
                if d.is_empty() {
                    None
                } else {
                    let i = rng.gen_range(0..d.len());
                    Some(d.swap_remove(i))
                }
            };
            if let Some((r, alter)) = item {
                let broke = if alter {
                    altered(&ctx, &mut conn, &r)
                } else {
                    ctx.stats.replays.fetch_add(1, Ordering::Relaxed);
                    let out = send(&ctx, &mut conn, &r);
                    settle(&ctx, &r, out, true)
                };
                if let Some(Outcome::Lost(_)) = broke {
                    lost(&ctx, &r, alter);
                    return;
                }
                continue;
            }
        }
        seq += 1;
        let key = format!("{}-s{id}-{seq}", ctx.run);
        let wallet = pick_wallet(&mut rng).to_string();
        let roll = rng.gen_range(0..100);
        let req = match roll {
            0..=9 => {
                let expires_at = if rng.gen_bool(0.3) {
                    Some(now_micros() + rng.gen_range(300_000..2_000_000))
                } else {
                    None
                };
                Req::Grant {
                    wallet,
                    amount: amount(&mut rng, 1, 12, 2),
                    expires_at,
                    key,
                }
            }
            10..=47 => Req::Authorize {
                wallet,
                qty: amount(&mut rng, 0, 4, 2) + Decimal::new(1, 2),
                big: rng.gen_bool(0.2),
                key,
            },
            48..=61 => {
                let ttl_ms = if rng.gen_bool(0.25) {
                    rng.gen_range(200..1500)
                } else {
                    600_000
                };
                Req::Hold {
                    wallet,
                    qty: amount(&mut rng, 1, 5, 1),
                    ttl_ms,
                    key,
                }
            }
            62..=73 if !my_holds.is_empty() => {
                let h = my_holds.swap_remove(rng.gen_range(0..my_holds.len()));
                let qty = match rng.gen_range(0..4) {
                    0 => None,
                    1 => Some(amount(&mut rng, 0, 6, 1) + Decimal::new(1, 1)),
                    _ => Some(amount(&mut rng, 0, 2, 1) + Decimal::new(1, 1)),
                };
                Req::Capture { hold: h, qty, key }
            }
            74..=79 if !my_holds.is_empty() => {
                let h = my_holds.swap_remove(rng.gen_range(0..my_holds.len()));
                Req::Release { hold: h, key }
            }
            80..=88 if !my_debits.is_empty() => {
                let i = rng.gen_range(0..my_debits.len());
                let a = my_debits[i];
                let left = ctx
                    .model
                    .lock()
                    .unwrap()
                    .debits
                    .get(&a)
                    .map(|d| d.paid - d.refunded)
                    .unwrap_or_default();
                if left <= Decimal::ZERO {
                    my_debits.swap_remove(i);
                    continue;
                }
                let amt = if rng.gen_bool(0.4) {
                    my_debits.swap_remove(i);
                    None
                } else {
                    let part = (left * Decimal::new(rng.gen_range(1..=9), 1)).round_dp(4);
                    if part <= Decimal::ZERO {
                        continue;
                    }
                    Some(part)
                };
                Req::Refund {
                    auth: a,
                    amount: amt,
                    key,
                }
            }
            89..=90 => Req::Allocate {
                amount: amount(&mut rng, 1, 10, 0),
                share: Decimal::new(2, 1),
                key,
            },
            91..=93 => Req::Expire,
            94 => Req::Tick,
            _ => Req::Authorize {
                wallet,
                qty: Decimal::ONE,
                big: false,
                key,
            },
        };
        // some calls are long transactions (a few ms of sleep before COMMIT), some are
        // rolled back after they answered (never acknowledged; their key must not stay)
        let end = match rng.gen_range(0..100) {
            0..=7 => End::SleepCommit(rng.gen_range(2..=15)),
            8..=13 => End::Rollback(if rng.gen_bool(0.5) {
                rng.gen_range(2..=15)
            } else {
                0
            }),
            _ => End::Commit,
        };
        if let End::Rollback(_) = end {
            match send_with(&ctx, &mut conn, &req, end) {
                Ok(_) => {
                    ctx.stats.rolled_back.fetch_add(1, Ordering::Relaxed);
                    if let Some(k) = req.key() {
                        ctx.stats
                            .rolled_back_keys
                            .lock()
                            .unwrap()
                            .push(k.to_string());
                    }
                    // what the call was about is still open: a hold to close, a debit to refund
                    match &req {
                        Req::Capture { hold, .. } | Req::Release { hold, .. } => {
                            my_holds.push(*hold)
                        }
                        Req::Refund { auth, .. } if !my_debits.contains(auth) => {
                            my_debits.push(*auth)
                        }
                        _ => {}
                    }
                }
                Err(o) => {
                    if let Some(Outcome::Lost(_)) = settle(&ctx, &req, Err(o), false) {
                        lost(&ctx, &req, false);
                        return;
                    }
                }
            }
            continue;
        }
        let out = send_with(&ctx, &mut conn, &req, end);
        if out.is_ok() && end != End::Commit {
            ctx.stats.slept.fetch_add(1, Ordering::Relaxed);
        }
        let acked = out.as_ref().ok().cloned();
        if let Some(Outcome::Lost(_)) = settle(&ctx, &req, out, false) {
            lost(&ctx, &req, false);
            return;
        }
        if let Some(resp) = acked {
            match (&req, &resp) {
                (
                    Req::Hold { .. },
                    Resp::Auth {
                        id, approved: true, ..
                    },
                ) => my_holds.push(*id),
                (
                    Req::Authorize { .. },
                    Resp::Auth {
                        id, approved: true, ..
                    },
                ) => my_debits.push(*id),
                (Req::Capture { hold, .. }, Resp::Closed { status, .. })
                    if status == "captured" =>
                {
                    my_debits.push(*hold)
                }
                _ => {}
            }
            // 30 % of acknowledged writes are sent again with the same key, a third of them altered
            if req.key().is_some() && rng.gen_bool(0.3) {
                let alter = rng.gen_bool(1.0 / 3.0) && req.altered().is_some();
                let r2 = if alter {
                    req.altered().unwrap_or(req.clone())
                } else {
                    req.clone()
                };
                if rng.gen_bool(0.5) {
                    let broke = if alter {
                        altered(&ctx, &mut conn, &r2)
                    } else {
                        ctx.stats.replays.fetch_add(1, Ordering::Relaxed);
                        let o = send(&ctx, &mut conn, &r2);
                        settle(&ctx, &r2, o, true)
                    };
                    if let Some(Outcome::Lost(_)) = broke {
                        lost(&ctx, &r2, alter);
                        return;
                    }
                } else {
                    ctx.deferred.lock().unwrap().push((r2, alter));
                }
            }
        }
    }
}

/// Re-send every deferred replay (so each is checked once), from one connection.
pub fn drain_deferred(ctx: &Ctx, conn: &mut Conn) -> Result<(), String> {
    let items: Vec<(Req, bool)> = std::mem::take(&mut *ctx.deferred.lock().unwrap());
    for (r, alter) in items {
        let broke = if alter {
            altered(ctx, conn, &r)
        } else {
            ctx.stats.replays.fetch_add(1, Ordering::Relaxed);
            let o = send(ctx, conn, &r);
            settle(ctx, &r, o, true)
        };
        if let Some(Outcome::Lost(e)) = broke {
            return Err(format!("connection lost while draining replays: {e}"));
        }
    }
    Ok(())
}
