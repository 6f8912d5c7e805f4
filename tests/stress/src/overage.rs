//! Scenario `overage`: volume tiers and fair use under concurrent transactions (issue 22).
//!
//! * `ov.tiers` (4 lanes, a large grant): the rate `ov.tier` costs 5 per unit for the wallet's
//!   first 100 units of the period, 3 from unit 100, 2 from unit 400. Sessions debit 1–7 units,
//!   or hold 1–7 and capture 1–9 (more than held too), or hold and release, each in a
//!   transaction of its own that sometimes sleeps and one in ten rolls back. The committed calls
//!   must partition the units: the counter ends at U = Σ units of committed debits and captures,
//!   and Σ their costs = the graduated cost of units 0..U exactly (no unit priced twice, none
//!   skipped, no double tier credit), the wallet's balance = grant − that cost.
//! * `ov.fair` (a fair-use limit per period, and 50 credits that must stay untouched): the rate
//!   `ov.fair` costs 1 per unit. Sessions debit 1–3 units, or hold 1–3 and capture 1..=held, or
//!   hold and release. Demand is twice the limit. Asserts: declines only `fair_use_exceeded`;
//!   the period's count = Σ committed fair-use costs (debits + captures) <= the limit; the 50
//!   credits are untouched; no call errors; `credit_verify()` empty.

use crate::{connect, dec, err_text, verify_rows, xorshift, Opts, Problems, Verdict};
use postgres::{Client, Config};
use rust_decimal::Decimal;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const TIER_GRANT: u64 = 1_000_000;
const FAIR_CREDITS: u64 = 50;

/// The graduated cost of units `0..units` of `ov.tier` (5, then 3 from 100, 2 from 400).
fn tier_cost(units: Decimal) -> Decimal {
    let (t1, t2) = (Decimal::from(100), Decimal::from(400));
    let a = units.min(t1);
    let b = (units.min(t2) - t1).max(Decimal::ZERO);
    let c = (units - t2).max(Decimal::ZERO);
    a * Decimal::from(5) + b * Decimal::from(3) + c * Decimal::from(2)
}

#[derive(Default)]
struct Tally {
    tier_units: Decimal,
    tier_cost: Decimal,
    tier_calls: u64,
    fair_used: Decimal,
    fair_calls: u64,
    fair_declined: u64,
    other_declines: Vec<String>,
    rolled_back: u64,
}

/// The fields of a `credit_authorization` this scenario reads.
struct CallRow {
    approved: bool,
    reason: Option<String>,
    cost: Option<String>,
    id: Option<i64>,
    captured: Option<String>,
    status: Option<String>,
}

/// Run `SELECT ... FROM <call> r` and read its `credit_authorization` by field name.
fn call(c: &mut Client, sql: &str) -> Result<CallRow, String> {
    let q = format!(
        "SELECT j->>'approved', j->>'reason', j->>'cost', coalesce(j->>'authorization_id', j->>'id'), \
                j->>'captured', j->>'status' FROM (SELECT to_jsonb(r) AS j FROM {sql} r) s"
    );
    let row = c
        .query_one(&q, &[])
        .map_err(|e| format!("{sql}: {}", err_text(&e)))?;
    Ok(CallRow {
        approved: row.get::<_, Option<String>>(0).as_deref() == Some("true"),
        reason: row.get(1),
        cost: row.get(2),
        id: row.get::<_, Option<String>>(3).and_then(|s| s.parse().ok()),
        captured: row.get(4),
        status: row.get(5),
    })
}

/// One transaction of a session: its effects if it commits.
fn transaction(c: &mut Client, rng: &mut u64, local: &mut Tally) -> Result<(), String> {
    let fair = xorshift(rng).is_multiple_of(2);
    let op = xorshift(rng) % 8;
    let rollback = xorshift(rng).is_multiple_of(10);
    let (wallet, action, max_q) = if fair {
        ("ov.fair", "ov.fair", 3)
    } else {
        ("ov.tiers", "ov.tier", 7)
    };
    let q = 1 + xorshift(rng) % max_q;
    let mut effect = Tally::default();
    c.batch_execute("BEGIN").map_err(|e| err_text(&e))?;
    let result = (|| -> Result<(), String> {
        let spend = if op < 5 {
            "credit_authorize"
        } else {
            "credit_hold"
        };
        let r = call(
            c,
            &format!("{spend}(wallet => '{wallet}', action => '{action}', quantity => {q})"),
        )?;
        if !r.approved {
            match r.reason.as_deref() {
                Some("fair_use_exceeded") if fair => effect.fair_declined += 1,
                other => effect.other_declines.push(format!("{wallet}: {other:?}")),
            }
            return Ok(());
        }
        if xorshift(rng).is_multiple_of(4) {
            thread::sleep(Duration::from_millis(1 + xorshift(rng) % 3));
        }
        let (units, cost) = if op < 5 {
            (Decimal::from(q), dec(r.cost.as_deref(), "cost")?)
        } else if op < 7 {
            let id = r.id.ok_or("hold without id")?;
            let q2 = if fair {
                1 + xorshift(rng) % q
            } else {
                1 + xorshift(rng) % (q + 2)
            };
            let cap = call(c, &format!("credit_capture({id}, {q2})"))?;
            if cap.status.as_deref() != Some("captured") || cap.reason.is_some() {
                return Err(format!(
                    "capture of hold {id}: {:?} {:?}",
                    cap.status, cap.reason
                ));
            }
            (Decimal::from(q2), dec(cap.captured.as_deref(), "captured")?)
        } else {
            let id = r.id.ok_or("hold without id")?;
            let rel = call(c, &format!("credit_release({id})"))?;
            if rel.status.as_deref() != Some("released") {
                return Err(format!("release of hold {id}: {:?}", rel.status));
            }
            (Decimal::ZERO, Decimal::ZERO)
        };
        if fair {
            effect.fair_used += cost;
            effect.fair_calls += 1;
        } else {
            effect.tier_units += units;
            effect.tier_cost += cost;
            effect.tier_calls += 1;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = c.batch_execute("ROLLBACK");
        return Err(e);
    }
    if rollback {
        c.batch_execute("ROLLBACK").map_err(|e| err_text(&e))?;
        local.rolled_back += 1;
        return Ok(());
    }
    c.batch_execute("COMMIT").map_err(|e| err_text(&e))?;
    local.tier_units += effect.tier_units;
    local.tier_cost += effect.tier_cost;
    local.tier_calls += effect.tier_calls;
    local.fair_used += effect.fair_used;
    local.fair_calls += effect.fair_calls;
    local.fair_declined += effect.fair_declined;
    local.other_declines.extend(effect.other_declines);
    Ok(())
}

pub fn scenario_overage(base: &Config, o: &Opts, deadline: Instant) -> Result<Verdict, String> {
    let per_session = o.calls.min(200);
    // fair-use demand: half the transactions, 2 units on average: twice the limit
    let limit = ((o.sessions * per_session) as u64 / 2).max(4);
    {
        let mut c = connect(base, &o.database)?;
        c.batch_execute(&format!(
            "SELECT credit_rate_set(action => 'ov.tier', credits => 5,
                 tiers => '[{{\"from\": 100, \"credits\": 3}}, {{\"from\": 400, \"credits\": 2}}]');
             SELECT credit_rate_set(action => 'ov.fair', credits => 1);
             SELECT credit_wallet_create(wallet => 'ov.tiers');
             SELECT credit_wallet_lanes('ov.tiers', 4);
             SELECT credit_grant(wallet => 'ov.tiers', amount => {TIER_GRANT});
             SELECT credit_wallet_create(wallet => 'ov.fair');
             SELECT credit_grant(wallet => 'ov.fair', amount => {FAIR_CREDITS});
             SELECT credit_wallet_overage('ov.fair', fair_use_limit => {limit});"
        ))
        .map_err(|e| format!("setup: {}", err_text(&e)))?;
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let problems = Arc::new(Mutex::new(Problems::default()));
    let barrier = Arc::new(Barrier::new(o.sessions));
    let mut clients = Vec::new();
    for _ in 0..o.sessions {
        clients.push(connect(base, &o.database)?);
    }
    let started = Instant::now();
    let mut handles = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        let (tally, problems, barrier) = (tally.clone(), problems.clone(), barrier.clone());
        let mut rng = o.seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1));
        handles.push(thread::spawn(move || {
            let mut local = Tally::default();
            barrier.wait();
            for n in 0..per_session {
                if Instant::now() > deadline {
                    problems.lock().unwrap().add(format!(
                        "session {i}: deadline reached after {n} transactions"
                    ));
                    break;
                }
                if let Err(e) = transaction(&mut c, &mut rng, &mut local) {
                    problems.lock().unwrap().add(format!("session {i}: {e}"));
                }
            }
            let mut t = tally.lock().unwrap();
            t.tier_units += local.tier_units;
            t.tier_cost += local.tier_cost;
            t.tier_calls += local.tier_calls;
            t.fair_used += local.fair_used;
            t.fair_calls += local.fair_calls;
            t.fair_declined += local.fair_declined;
            t.rolled_back += local.rolled_back;
            t.other_declines.extend(local.other_declines);
        }));
    }
    for h in handles {
        h.join()
            .map_err(|_| "a session thread panicked".to_string())?;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut c = connect(base, &o.database)?;
    let one = |c: &mut Client, sql: &str| -> Result<Decimal, String> {
        let row = c
            .query_one(sql, &[])
            .map_err(|e| format!("{sql}: {}", err_text(&e)))?;
        dec(row.get::<_, Option<&str>>(0), sql)
    };
    let position = one(
        &mut c,
        "SELECT coalesce(sum(t.units), 0)::text FROM credit_ledger.tier_usage t
           JOIN credit_ledger.wallets w ON w.id = t.wallet_id WHERE w.wallet = 'ov.tiers'",
    )?;
    let fair_count = one(
        &mut c,
        "SELECT coalesce(sum(f.used), 0)::text FROM credit_ledger.fair_use_usage f
           JOIN credit_ledger.wallets w ON w.id = f.wallet_id WHERE w.wallet = 'ov.fair'",
    )?;
    let tier_balance = one(&mut c, "SELECT credit_balance('ov.tiers')::text")?;
    let fair_balance = one(&mut c, "SELECT credit_balance('ov.fair')::text")?;
    let verify = verify_rows(&mut c)?;
    let t = tally.lock().unwrap();
    let p = problems.lock().unwrap();

    let mut notes = Vec::new();
    if p.count > 0 {
        notes.push(format!("{} errors; first: {:?}", p.count, p.first));
    }
    if position != t.tier_units {
        notes.push(format!(
            "tier counter {position} != committed units {}",
            t.tier_units
        ));
    }
    let exact = tier_cost(t.tier_units);
    if t.tier_cost != exact {
        notes.push(format!(
            "tiered calls cost {} != the graduated cost of units 0..{} = {exact}",
            t.tier_cost, t.tier_units
        ));
    }
    if tier_balance != Decimal::from(TIER_GRANT) - t.tier_cost {
        notes.push(format!(
            "ov.tiers balance {tier_balance} != {TIER_GRANT} - {}",
            t.tier_cost
        ));
    }
    if fair_count != t.fair_used || fair_count > Decimal::from(limit) {
        notes.push(format!(
            "fair use counted {fair_count}, committed {} (limit {limit})",
            t.fair_used
        ));
    }
    if fair_balance != Decimal::from(FAIR_CREDITS) {
        notes.push(format!("ov.fair credits {fair_balance} != {FAIR_CREDITS}"));
    }
    if !t.other_declines.is_empty() {
        notes.push(format!(
            "unexpected declines: {:?}",
            t.other_declines.iter().take(10).collect::<Vec<_>>()
        ));
    }
    if !verify.is_empty() {
        notes.push(format!(
            "credit_verify() returned {} rows: {:?}",
            verify.len(),
            verify.iter().take(10).collect::<Vec<_>>()
        ));
    }
    let pass = notes.is_empty();
    let line = format!(
        "stress scenario=overage sessions={} transactions={} rolled_back={} tier_calls={} tier_units={} tier_cost={} graduated_cost={} fair_calls={} fair_declined={} fair_used={} fair_limit={limit} errors={} verify_rows={} elapsed_s={:.2} result={}",
        o.sessions,
        o.sessions * per_session,
        t.rolled_back,
        t.tier_calls,
        t.tier_units.normalize(),
        t.tier_cost.normalize(),
        exact.normalize(),
        t.fair_calls,
        t.fair_declined,
        t.fair_used.normalize(),
        p.count,
        verify.len(),
        elapsed,
        if pass { "pass" } else { "fail" }
    );
    Ok(Verdict { line, pass, notes })
}
