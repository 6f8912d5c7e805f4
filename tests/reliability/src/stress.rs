//! Model-checked stress: N sessions × M random operations (grant, authorize, hold, capture,
//! release, refund, team allocation and pool draws, expiry sweeps and ticks), Zipf-skewed over
//! five hot wallets and a team pool with four members; 30 % of acknowledged writes re-sent with
//! the same key (a third of them with an altered argument, which must get 23505), half at once
//! by the same session and half later by another one. A checker reads every balance,
//! `credit_verify()` and the pool draws at REPEATABLE READ every 100 ms. After the run the
//! ledger is compared with the reference model (see `model.rs`).
//!
//! Lanes: after the opening grants the team pool gets 8 spending lanes and the wallets h0, h1
//! (overdraft) and h3 (spend cap) get 4 (`model::LANES`). 8 % of the
//! calls sleep 2–15 ms inside their transaction before COMMIT and 6 % are rolled back (half of
//! them after such a sleep): a rolled-back call is not acknowledged, the model does not count
//! it and its key must not be on the server. When quiet, every lane's hint must be exact and
//! `credit_grants()` must show every slice's credits. A 40P01 is retried and counted (`deadlocks=`) and fails the run.
//!
//! CI tier: 16 sessions × 2,000 operations. `--tier long`: 32 × 25,000.

use crate::check;
use crate::common;
use crate::model::{self, Conn, Req};
use crate::workload::{self, Ctx, Stats};
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn new_ctx(base: postgres::Config, db: &str, run: &str, seed: u64) -> Arc<Ctx> {
    Arc::new(Ctx {
        base,
        db: db.to_string(),
        run: run.to_string(),
        seed,
        stop: AtomicBool::new(false),
        model: Mutex::new(model::Model::default()),
        stats: Stats::default(),
        deferred: Mutex::new(Vec::new()),
    })
}

/// Create the extension, the rates, the wallets and the opening grants (through the model).
pub fn setup(ctx: &Ctx) -> Result<(), String> {
    let mut c = common::connect(&ctx.base, &ctx.db)?;
    c.batch_execute(model::SETUP)
        .map_err(|e| format!("setup: {}", common::err_text(&e)))?;
    let mut conn = Conn::open(&ctx.base, &ctx.db)?;
    for (i, w) in model::WALLETS.iter().enumerate() {
        let amount = match *w {
            "team" => Decimal::from(1000),
            w if w.starts_with('m') => Decimal::from(20),
            _ => Decimal::from(200),
        };
        let r = Req::Grant {
            wallet: w.to_string(),
            amount,
            expires_at: None,
            key: format!("{}-init-{i}", ctx.run),
        };
        let out = workload::send(ctx, &mut conn, &r);
        if let Some(o) = workload::settle(ctx, &r, out, false) {
            return Err(format!("opening grant: {o:?}"));
        }
    }
    for (w, n) in model::LANES {
        let got: i32 = c
            .query_one(
                "SELECT credit_wallet_lanes(wallet => $1, lanes => $2)",
                &[w, n],
            )
            .map_err(|e| format!("credit_wallet_lanes({w}, {n}): {}", common::err_text(&e)))?
            .get(0);
        if got != *n {
            return Err(format!("credit_wallet_lanes({w}, {n}) returned {got}"));
        }
    }
    Ok(())
}

pub fn retry_counts(ctx: &Ctx) -> String {
    let r = ctx.stats.retries.lock().unwrap();
    if r.is_empty() {
        "0".into()
    } else {
        r.iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

pub fn run(args: &[String]) -> Result<bool, String> {
    let a = common::Args::parse(
        args,
        &[
            "sessions",
            "ops",
            "seed",
            "database",
            "tier",
            "timeout-secs",
        ],
        &["keep"],
    )?;
    let long = a.string("tier", "ci") == "long";
    let sessions: usize = a.get("sessions", if long { 32 } else { 16 })?;
    let ops: u64 = a.get("ops", if long { 25_000 } else { 2_000 })?;
    let seed: u64 = a.get("seed", 7)?;
    let timeout: u64 = a.get("timeout-secs", if long { 3600 } else { 600 })?;
    let db = a.string("database", "cl_rel_stress");
    common::check_db_name(&db)?;
    if sessions == 0 || sessions > 64 {
        return Err("--sessions must be 1..=64".into());
    }
    let base = common::base_config("credit_ledger_reliability_stress")?;
    common::recreate_db(&base, &db)?;
    let ctx = new_ctx(base, &db, "st", seed);
    setup(&ctx)?;
    let start = Instant::now();

    let chk = {
        let c = ctx.clone();
        std::thread::spawn(move || check::checker(c, Duration::from_millis(100)))
    };
    let handles: Vec<_> = (0..sessions)
        .map(|i| {
            let c = ctx.clone();
            std::thread::spawn(move || workload::session(c, i, ops))
        })
        .collect();
    // the overall deadline: stop the sessions (they finish their current call)
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut timed_out = false;
    for h in handles {
        while !h.is_finished() {
            if Instant::now() > deadline && !timed_out {
                timed_out = true;
                ctx.stop.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = h.join();
    }
    let mut conn = Conn::open(&ctx.base, &ctx.db)?;
    workload::drain_deferred(&ctx, &mut conn)?;
    ctx.stop.store(true, Ordering::Relaxed);
    let chk = chk.join().map_err(|_| "checker panicked".to_string())?;
    let load_secs = start.elapsed().as_secs_f64();
    let rec = check::reconcile(&ctx, &mut conn)?;
    drop(conn);
    if !a.flag("keep") {
        common::drop_db(&ctx.base, &db);
    }

    let s = &ctx.stats;
    let m = ctx.model.lock().unwrap();
    let unexpected = s.unexpected.lock().unwrap();
    let in_doubt = s.in_doubt.lock().unwrap();
    let altered = s.altered.load(Ordering::Relaxed);
    let altered_ok = s.altered_23505.load(Ordering::Relaxed);
    let altered_pct = if altered == 0 {
        100.0
    } else {
        altered_ok as f64 * 100.0 / altered as f64
    };
    for v in m.violations.iter().take(20) {
        eprintln!("stress violation: {v}");
    }
    for v in unexpected.iter().take(20) {
        eprintln!("stress unexpected error: {v}");
    }
    for (k, n) in s.altered_wrong.lock().unwrap().iter() {
        eprintln!("stress altered replay not rejected with 23505: {k} ({n}x)");
    }
    let replay_rejected = s.replay_rejected.lock().unwrap();
    for (k, n) in replay_rejected.iter() {
        eprintln!("stress exact replay of an acknowledged call rejected: {k} ({n}x)");
    }
    for v in rec
        .conservation_violations
        .iter()
        .chain(chk.overspend.iter().take(10))
        .chain(chk.verify.iter().take(10))
        .chain(chk.pool_over.iter().take(10))
    {
        eprintln!("stress violation: {v}");
    }
    for v in rec.verify_rows.iter().take(10) {
        eprintln!("stress credit_verify after the run: {v}");
    }
    for k in rec.lost.iter().take(10) {
        eprintln!("stress acknowledged key missing on the server: {k}");
    }
    for k in rec.unacked_writes.iter().take(10) {
        eprintln!("stress key on the server that was never acknowledged: {k}");
    }
    for k in rec.rolled_back_on_server.iter().take(10) {
        eprintln!("stress key of a rolled-back call on the server: {k}");
    }
    for v in rec.lane_hints_off.iter().take(10) {
        eprintln!("stress lane hint off in the quiet system: {v}");
    }
    // a 40P01 is retried (the model stays exact) but fails the run: every call here is a single
    // statement, and since 0.4.0 a single call never deadlocks (a lane that cannot pay is given
    // back before the call waits for the whole wallet)
    let deadlocks = ctx
        .stats
        .retries
        .lock()
        .unwrap()
        .get("40P01")
        .copied()
        .unwrap_or(0);
    if deadlocks > 0 {
        eprintln!("stress: {deadlocks} calls were aborted with 40P01 (deadlock) and retried");
    }
    for e in chk.errors.iter().take(5) {
        eprintln!("stress checker error: {e}");
    }
    let double = s.replay_mismatch.load(Ordering::Relaxed) as usize + rec.unacked_writes.len();
    let pass = !timed_out
        && deadlocks == 0
        && chk.overspend.is_empty()
        && chk.verify.is_empty()
        && chk.pool_over.is_empty()
        && chk.errors.is_empty()
        && rec.conservation_violations.is_empty()
        && rec.verify_rows.is_empty()
        && rec.lost.is_empty()
        && double == 0
        && m.violations.is_empty()
        && unexpected.is_empty()
        && in_doubt.is_empty()
        && altered_ok == altered
        && replay_rejected.is_empty()
        && rec.open_holds == 0
        && rec.rolled_back_on_server.is_empty()
        && rec.lane_hints_off.is_empty()
        && chk.samples > 0;
    println!(
        "{}",
        common::figure(
            "stress",
            &[
                ("sessions", sessions.to_string()),
                ("ops_per_session", ops.to_string()),
                ("calls", s.ops.load(Ordering::Relaxed).to_string()),
                ("acked", s.acked.load(Ordering::Relaxed).to_string()),
                ("approved", s.approved.load(Ordering::Relaxed).to_string()),
                ("declined", s.declined.load(Ordering::Relaxed).to_string()),
                ("replays", s.replays.load(Ordering::Relaxed).to_string()),
                (
                    "replays_rejected",
                    replay_rejected.values().sum::<u64>().to_string()
                ),
                ("altered", altered.to_string()),
                ("altered_rejected_23505_pct", format!("{altered_pct:.2}")),
                ("overspend", chk.overspend.len().to_string()),
                (
                    "conservation_violations",
                    (rec.conservation_violations.len() + chk.verify.len() + rec.verify_rows.len())
                        .to_string()
                ),
                ("pool_limit_violations", chk.pool_over.len().to_string()),
                ("double_applied", double.to_string()),
                ("lost", rec.lost.len().to_string()),
                ("unexpected_errors", unexpected.len().to_string()),
                (
                    "expected_errors",
                    s.expected_errors.load(Ordering::Relaxed).to_string()
                ),
                ("retries", retry_counts(&ctx)),
                ("deadlocks", deadlocks.to_string()),
                (
                    "lanes",
                    model::LANES
                        .iter()
                        .map(|(w, n)| format!("{w}:{n}"))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                ("lane_rows", rec.lanes.to_string()),
                ("slices", rec.slices.to_string()),
                ("lane_hints_off", rec.lane_hints_off.len().to_string()),
                ("slept", s.slept.load(Ordering::Relaxed).to_string()),
                (
                    "rolled_back",
                    s.rolled_back.load(Ordering::Relaxed).to_string()
                ),
                (
                    "rolled_back_keys_on_server",
                    rec.rolled_back_on_server.len().to_string()
                ),
                ("checker_samples", chk.samples.to_string()),
                ("groups", rec.groups.to_string()),
                ("elapsed_s", format!("{load_secs:.1}")),
            ],
            pass
        )
    );
    Ok(pass)
}
