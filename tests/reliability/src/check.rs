//! Checks against the server: the checker thread (every balance, `credit_verify()` and pool
//! draws at REPEATABLE READ, periodically) and the reconciliation of the ledger with the model.

use crate::common;
use crate::model::{dec, group_of, now_micros, Conn, HoldState, Req};
use crate::workload::{send, settle, Ctx};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The result of a reconciliation.
#[derive(Default, Debug)]
pub struct Reconciled {
    pub groups: usize,
    pub conservation_violations: Vec<String>,
    pub lost: Vec<String>,
    pub unacked_writes: Vec<String>,
    pub verify_rows: Vec<String>,
    pub open_holds: i64,
    /// keys of rolled-back calls found on the server
    pub rolled_back_on_server: Vec<String>,
    /// lanes whose hint (`free`) is not Σ(remaining − held) of their live slices when quiet
    pub lane_hints_off: Vec<String>,
    /// lanes (rows of credit_ledger.lanes) and slices at the end
    pub lanes: i64,
    pub slices: i64,
}

/// Bring the ledger to a quiet state (short expiries passed, every open hold released, a full
/// sweep) and compare it with the model.
pub fn reconcile(ctx: &Ctx, conn: &mut Conn) -> Result<Reconciled, String> {
    let e = |e: postgres::Error| common::err_text(&e);
    // wait for the short expiries and ttls handed out (bounded: at most a few seconds)
    let until = ctx.model.lock().unwrap().max_expiry;
    let wait = (until - now_micros() + 20_000).clamp(0, 5_000_000);
    std::thread::sleep(Duration::from_micros(wait as u64));
    // release every hold the model believes open
    let open: Vec<i64> = {
        let m = ctx.model.lock().unwrap();
        let mut v: Vec<i64> = m
            .holds
            .iter()
            .filter(|(_, s)| matches!(s, HoldState::Held { .. }))
            .map(|(id, _)| *id)
            .collect();
        v.sort();
        v
    };
    for (n, h) in open.into_iter().enumerate() {
        let r = Req::Release {
            hold: h,
            key: format!("{}-final-{}-{n}", ctx.run, now_micros()),
        };
        let out = send(ctx, conn, &r);
        if let Some(o) = settle(ctx, &r, out, false) {
            return Err(format!("final release of hold {h}: {o:?}"));
        }
    }
    for _ in 0..100 {
        let more: bool = conn
            .client
            .query_one("SELECT more FROM credit_expire()", &[])
            .map_err(e)?
            .get(0);
        if !more {
            break;
        }
    }
    let mut out = Reconciled::default();
    let c = &mut conn.client;
    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .map_err(e)?;
    // balances and breakage per group
    let rows = c
        .query(
            "SELECT w.wallet, credit_balance(w.wallet)::text,
                    coalesce((SELECT -sum(j.amount) FROM credit_ledger.journal j JOIN credit_ledger.grants g ON g.id = j.grant_id
                               WHERE g.wallet_id = w.id AND j.kind = 'expiry'), 0)::text
               FROM credit_ledger.wallets w",
            &[],
        )
        .map_err(e)?;
    let mut bal: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    for r in &rows {
        let w: String = r.get(0);
        let ent = bal.entry(group_of(&w).to_string()).or_default();
        ent.0 += dec(r.get(1));
        ent.1 += dec(r.get(2));
    }
    let model = ctx.model.lock().unwrap();
    out.groups = bal.len();
    for (g, (balance, breakage)) in &bal {
        let want = model.expected(g) - breakage;
        if *balance != want {
            out.conservation_violations.push(format!(
                "group {g}: balance {balance}, model {want} (granted {} debited {} refunded {} breakage {breakage})",
                model.granted.get(g).copied().unwrap_or_default(),
                model.debited.get(g).copied().unwrap_or_default(),
                model.refunded.get(g).copied().unwrap_or_default()
            ));
        }
    }
    out.open_holds = c
        .query_one(
            "SELECT count(*) FROM credit_ledger.authorizations WHERE status = 'held'",
            &[],
        )
        .map_err(e)?
        .get(0);
    // every acknowledged key is on the server, and nothing unacknowledged is
    let like = format!("{}-%", ctx.run);
    let server: HashSet<String> = c
        .query(
            "SELECT regexp_replace(idempotency_key, ':[^:]*$', '') FROM credit_ledger.grants WHERE idempotency_key LIKE $1
             UNION ALL SELECT idempotency_key FROM credit_ledger.authorizations WHERE idempotency_key LIKE $1
             UNION ALL SELECT close_key FROM credit_ledger.authorizations WHERE close_key LIKE $1
             UNION ALL SELECT idempotency_key FROM credit_ledger.refunds WHERE idempotency_key LIKE $1",
            &[&like],
        )
        .map_err(e)?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    for k in model.acked.keys() {
        if !server.contains(k) && !model.keyless_acks.contains(k) {
            out.lost.push(k.clone());
        }
    }
    for k in &server {
        if !model.acked.contains_key(k) {
            out.unacked_writes.push(k.clone());
        }
    }
    drop(model);
    // a rolled-back call left nothing behind (its key is also an unacknowledged one above)
    for k in ctx.stats.rolled_back_keys.lock().unwrap().iter() {
        if server.contains(k) {
            out.rolled_back_on_server.push(k.clone());
        }
    }
    // the system is quiet: every lane's hint is exact, and a grant of a wallet with lanes shows
    // in credit_grants() the credits of all its slices
    for r in c
        .query(
            "SELECT w.wallet || ' lane ' || l.lane || ': free ' || l.free || ', live slices ' || s.v
               FROM credit_ledger.lanes l
               JOIN credit_ledger.wallets w ON w.id = l.wallet_id
              CROSS JOIN LATERAL (
                    SELECT coalesce(sum(g.remaining - g.held), 0) AS v FROM credit_ledger.grants g
                     WHERE g.wallet_id = l.wallet_id AND g.asset = l.asset AND g.lane = l.lane AND g.live
                       AND (g.expires_at IS NULL OR g.expires_at > now())) s
              WHERE l.free <> s.v
             UNION ALL
             SELECT w.wallet || ': credit_grants() remaining ' || (SELECT coalesce(sum(x.remaining), 0) FROM credit_grants(w.wallet) x)
                    || ', every row ' || (SELECT coalesce(sum(g.remaining), 0) FROM credit_ledger.grants g WHERE g.wallet_id = w.id)
               FROM credit_ledger.wallets w
              WHERE (SELECT coalesce(sum(x.remaining), 0) FROM credit_grants(w.wallet) x)
                    <> (SELECT coalesce(sum(g.remaining), 0) FROM credit_ledger.grants g WHERE g.wallet_id = w.id)",
            &[],
        )
        .map_err(e)?
    {
        out.lane_hints_off.push(r.get(0));
    }
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM credit_ledger.lanes),
                    (SELECT count(*) FROM credit_ledger.grants WHERE home_id IS NOT NULL)",
            &[],
        )
        .map_err(e)?;
    out.lanes = r.get(0);
    out.slices = r.get(1);
    for r in c
        .query(
            "SELECT check_name || ' ' || subject || ': ' || detail FROM credit_verify()",
            &[],
        )
        .map_err(e)?
    {
        out.verify_rows.push(r.get(0));
    }
    c.batch_execute("COMMIT").map_err(e)?;
    Ok(out)
}

/// The checker: every `every`, one REPEATABLE READ snapshot of all balances, credit_verify()
/// and the pool draw of members with a pool limit.
pub struct CheckerResult {
    pub samples: u64,
    pub overspend: Vec<String>,
    pub verify: Vec<String>,
    pub pool_over: Vec<String>,
    pub errors: Vec<String>,
}

pub fn checker(ctx: Arc<Ctx>, every: Duration) -> CheckerResult {
    let mut res = CheckerResult {
        samples: 0,
        overspend: vec![],
        verify: vec![],
        pool_over: vec![],
        errors: vec![],
    };
    let mut client = match common::connect(&ctx.base, &ctx.db) {
        Ok(c) => c,
        Err(e) => {
            res.errors.push(e);
            return res;
        }
    };
    let _ = client.batch_execute("SET statement_timeout = '30s'");
    while !ctx.stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let r = (|| -> Result<(), postgres::Error> {
            let mut tx = client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .start()?;
            for row in tx.query(
                "SELECT w.wallet, w.overdraft_limit::text, credit_balance(w.wallet)::text FROM credit_ledger.wallets w",
                &[],
            )? {
                let (w, od, b): (String, String, String) = (row.get(0), row.get(1), row.get(2));
                if dec(Some(b.clone())) < -dec(Some(od.clone())) {
                    res.overspend.push(format!("wallet {w} balance {b} below -{od}"));
                }
            }
            for row in tx.query(
                "SELECT check_name || ' ' || subject || ': ' || detail FROM credit_verify()",
                &[],
            )? {
                res.verify.push(row.get(0));
            }
            for row in tx.query(
                "SELECT member, pool_limit::text, drawn_this_period::text FROM credit_ledger.pool_usage WHERE pool_limit IS NOT NULL",
                &[],
            )? {
                let (m, l, d): (String, String, Option<String>) = (row.get(0), row.get(1), row.get(2));
                if dec(d.clone()) > dec(Some(l.clone())) {
                    res.pool_over.push(format!("member {m} drew {d:?} of pool limit {l}"));
                }
            }
            tx.commit()
        })();
        match r {
            Ok(()) => res.samples += 1,
            Err(e) => {
                if ctx.stop.load(Ordering::Relaxed) || e.as_db_error().is_none() {
                    break;
                }
                res.errors.push(common::err_text(&e));
            }
        }
        if let Some(left) = every.checked_sub(t.elapsed()) {
            std::thread::sleep(left);
        }
    }
    res
}
