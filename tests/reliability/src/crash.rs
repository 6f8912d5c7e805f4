//! Crash-restart: the stress workload runs against a cluster of our own, and mid-load the
//! postmaster is killed with SIGKILL (then, after a short grace, whatever of its children is
//! still alive: a whole-server crash), K times. After each restart (crash recovery) every
//! in-doubt call — sent, but its COMMIT never confirmed — is retried with the same key and
//! arguments: it must return the committed result if it had committed, or apply once if it had
//! not. Then the ledger is reconciled with the model (nothing acknowledged is lost, nothing is
//! applied twice, group balances match), `credit_verify()` must be empty and `pg_amcheck`
//! (heap + all B-tree indexes, with heapallindexed) must be clean.
//!
//! The cluster is given by `--pgdata` (its data directory; the server runs as `postgres` when
//! we are root) and PGHOST/PGPORT/PGUSER; `run_all.sh` starts it with tests/cluster.sh.

use crate::common::{self, Outcome};
use crate::model::{self, Conn, Req};
use crate::stress;
use crate::{check, workload};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Run a server-side command as the cluster's OS user (postgres when we are root), from `/`,
/// without RUST_BACKTRACE.
fn as_pg(prog: &str, args: &[&str]) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", prog]).args(args);
        c
    } else {
        let mut c = Command::new(prog);
        c.args(args);
        c
    };
    c.current_dir("/").env_remove("RUST_BACKTRACE");
    c
}

/// postmaster.pid and the socket lock file it names (line 4: port, line 5: socket directory).
fn lock_files(pgdata: &str) -> Vec<String> {
    let pidfile = format!("{pgdata}/postmaster.pid");
    let mut v = vec![pidfile.clone()];
    if let Ok(s) = std::fs::read_to_string(&pidfile) {
        let l: Vec<&str> = s.lines().collect();
        if let (Some(port), Some(dir)) = (l.get(3), l.get(4)) {
            if !dir.trim().is_empty() {
                v.insert(0, format!("{}/.s.PGSQL.{}.lock", dir.trim(), port.trim()));
            }
        }
    }
    v
}

fn postmaster_pid(pgdata: &str) -> Option<i32> {
    let s = std::fs::read_to_string(format!("{pgdata}/postmaster.pid")).ok()?;
    s.lines().next()?.trim().parse().ok()
}

/// Children of a process (from /proc), with their start times to recognise them later.
fn children(pid: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // fields after the command name in parentheses: state ppid ...; field 22 is starttime
            let Some(rest) = stat.rsplit_once(") ").map(|x| x.1) else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            if f.get(1).and_then(|x| x.parse::<i32>().ok()) == Some(pid) {
                out.push((p, f.get(19).unwrap_or(&"").to_string()));
            }
        }
    }
    out
}

fn still_same(pid: i32, start: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(") ")
                .map(|x| x.1.split_whitespace().nth(19).unwrap_or("").to_string())
        })
        .is_some_and(|s| s == start)
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|x| x.1.starts_with('Z')))
        .unwrap_or(true)
}

fn kill9(pid: i32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

/// SIGKILL the postmaster, then (after `grace`) every child of it that is still running.
fn crash(pgdata: &str, grace: Duration) -> Result<i32, String> {
    let pm = postmaster_pid(pgdata).ok_or("no postmaster.pid")?;
    let kids = children(pm);
    kill9(pm);
    std::thread::sleep(grace);
    for (p, start) in &kids {
        if still_same(*p, start) {
            kill9(*p);
        }
    }
    // wait (bounded) until they are gone, so the new postmaster finds no attached shared memory
    let t = Instant::now();
    while kids
        .iter()
        .any(|(p, st)| still_same(*p, st) && !is_zombie(*p))
        && t.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    // the dead postmaster may linger as a zombie (an adoptive parent that does not reap): its
    // pid would still look alive to the new postmaster's lock-file check, so remove the stale
    // lock file ourselves once it is certainly dead
    if is_zombie(pm) {
        for lock in lock_files(pgdata) {
            let owner = std::fs::read_to_string(&lock)
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
            if owner == Some(pm) {
                let _ = std::fs::remove_file(&lock);
            }
        }
    }
    Ok(pm)
}

fn start_server(pgbin: &str, pgdata: &str, log: &str) -> Result<u32, String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let out = as_pg(
            &format!("{pgbin}/pg_ctl"),
            &["-D", pgdata, "-l", log, "-w", "-t", "60", "start"],
        )
        .output()
        .map_err(|e| format!("pg_ctl: {e}"))?;
        if out.status.success() {
            return Ok(attempts);
        }
        if attempts == 1 {
            eprintln!(
                "crash: pg_ctl start failed once: {}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        if Instant::now() > deadline {
            return Err(format!(
                "pg_ctl start failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The committed result of a keyed grant, read from the server.
fn committed_grant(conn: &mut Conn, r: &Req) -> Option<model::Resp> {
    let Req::Grant { wallet, key, .. } = r else {
        return None;
    };
    let row = conn
        .client
        .query_opt(
            "SELECT g.id, g.amount::text FROM credit_ledger.grants g JOIN credit_ledger.wallets w ON w.id = g.wallet_id
              WHERE w.wallet = $1 AND g.idempotency_key = $2",
            &[wallet, key],
        )
        .ok()??;
    let amount = rust_decimal::Decimal::from_str_exact(&row.get::<_, String>(1)).ok()?;
    Some(model::Resp::Grant {
        id: row.get(0),
        amount,
    })
}

fn key_on_server(conn: &mut Conn, k: &str) -> bool {
    conn.client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM credit_ledger.grants WHERE idempotency_key = $1 OR idempotency_key LIKE $1 || ':%')
                 OR EXISTS (SELECT 1 FROM credit_ledger.authorizations WHERE idempotency_key = $1 OR close_key = $1)
                 OR EXISTS (SELECT 1 FROM credit_ledger.refunds WHERE idempotency_key = $1)",
            &[&k],
        )
        .map(|row| row.get::<_, bool>(0))
        .unwrap_or(false)
}

fn amcheck(pgbin: &str, db: &str) -> Result<Vec<String>, String> {
    let out = Command::new(format!("{pgbin}/pg_amcheck"))
        .args([
            "-d",
            db,
            "--heapallindexed",
            "--rootdescend",
            "--no-strict-names",
        ])
        .env_remove("RUST_BACKTRACE")
        .output()
        .map_err(|e| format!("pg_amcheck: {e}"))?;
    let mut problems: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&out.stderr).lines())
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.to_string())
        .collect();
    if !out.status.success() && problems.is_empty() {
        problems.push(format!("pg_amcheck exited with {}", out.status));
    }
    Ok(problems)
}

pub fn run(args: &[String]) -> Result<bool, String> {
    let a = common::Args::parse(
        args,
        &[
            "pgdata",
            "pgbin",
            "log",
            "cycles",
            "load-secs",
            "sessions",
            "seed",
            "database",
        ],
        &[],
    )?;
    let pgdata = a.string("pgdata", "");
    if pgdata.is_empty() {
        return Err("--pgdata DIR (the data directory of a throwaway cluster) is required".into());
    }
    let pgbin = a.string(
        "pgbin",
        &std::env::var("PGBIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
    );
    let log = a.string("log", &format!("{pgdata}/../postgres.log"));
    let cycles: u32 = a.get("cycles", 10)?;
    let load_secs: f64 = a.get("load-secs", 3.0)?;
    let sessions: usize = a.get("sessions", 8)?;
    let seed: u64 = a.get("seed", 11)?;
    let db = a.string("database", "cl_rel_crash");
    common::check_db_name(&db)?;
    let base = common::base_config("credit_ledger_reliability_crash")?;
    common::recreate_db(&base, &db)?;
    common::connect(&base, &db)?
        .batch_execute("CREATE EXTENSION amcheck")
        .map_err(|e| format!("amcheck: {}", common::err_text(&e)))?;
    let ctx = stress::new_ctx(base.clone(), &db, "cr", seed);
    stress::setup(&ctx)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Instant::now();

    let (mut in_doubt_total, mut in_doubt_committed, mut in_doubt_applied) = (0u64, 0u64, 0u64);
    let mut retry_rejected: Vec<String> = Vec::new();
    let (mut lost, mut dup, mut verify_rows, mut conservation, mut amcheck_problems) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut recovery_ms: Vec<u128> = Vec::new();
    for cycle in 1..=cycles {
        ctx.stop.store(false, Ordering::Relaxed);
        let handles: Vec<_> = (0..sessions)
            .map(|i| {
                let c = ctx.clone();
                std::thread::spawn(move || workload::session(c, i + 100 * cycle as usize, u64::MAX))
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(load_secs * rng.gen_range(0.6..1.0)));
        let grace = Duration::from_millis(rng.gen_range(0..300));
        crash(&pgdata, grace)?;
        ctx.stop.store(true, Ordering::Relaxed);
        for h in handles {
            let _ = h.join();
        }
        let t = Instant::now();
        let starts = start_server(&pgbin, &pgdata, &log)?;
        recovery_ms.push(t.elapsed().as_millis());

        // retry every in-doubt call with its key
        let mut conn = Conn::open(&ctx.base, &ctx.db)?;
        let doubts: Vec<(Req, bool)> = std::mem::take(&mut *ctx.stats.in_doubt.lock().unwrap());
        in_doubt_total += doubts.len() as u64;
        for (r, alter) in doubts {
            if alter {
                // an altered replay in doubt: its retry must be rejected with 23505 like any other
                if let Some(Outcome::Lost(e)) = workload::altered(&ctx, &mut conn, &r) {
                    return Err(format!("connection lost during retries: {e}"));
                }
                continue;
            }
            let known = r
                .key()
                .is_some_and(|k| ctx.model.lock().unwrap().acked.contains_key(k));
            let before = r
                .key()
                .map(|k| key_on_server(&mut conn, k))
                .unwrap_or(false);
            let out = workload::send(&ctx, &mut conn, &r);
            match &out {
                Ok(_) if before && !known => in_doubt_committed += 1,
                Ok(_) if !known => in_doubt_applied += 1,
                _ => {}
            }
            if let Err(Outcome::Db(code, msg)) = &out {
                if before && !known {
                    retry_rejected.push(format!(
                        "{} {:?}: committed before the crash, retry got {code}: {msg}",
                        r.kind(),
                        r
                    ));
                    // the client cannot learn the committed result from the retry; take it from
                    // the server, so that one violation is not counted again in every later cycle
                    if let Some(resp) = committed_grant(&mut conn, &r) {
                        ctx.model.lock().unwrap().ack(&r, &resp);
                        continue;
                    }
                }
            }
            let unexpected_before = ctx.stats.unexpected.lock().unwrap().len();
            if let Some(o) = workload::settle(&ctx, &r, out, known) {
                if let Outcome::Lost(e) = o {
                    return Err(format!("connection lost during retries: {e}"));
                }
                // a rejected retry of a call that never committed (say, a grant whose expiry
                // passed while the server was down): nothing was applied, nothing to account
                if !before {
                    ctx.stats
                        .unexpected
                        .lock()
                        .unwrap()
                        .truncate(unexpected_before);
                }
            }
        }
        workload::drain_deferred(&ctx, &mut conn)?;
        let t_retry = t.elapsed().as_millis();
        let rec = check::reconcile(&ctx, &mut conn)?;
        let t_rec = t.elapsed().as_millis();
        drop(conn);
        let problems = amcheck(&pgbin, &db)?;
        eprintln!(
            "crash cycle {cycle}: timing ms: up {} ({starts} pg_ctl start) retried {t_retry} reconciled {t_rec} amchecked {}",
            recovery_ms.last().unwrap_or(&0),
            t.elapsed().as_millis()
        );
        for p in problems.iter().take(5) {
            eprintln!("crash cycle {cycle}: pg_amcheck: {p}");
        }
        for v in rec
            .conservation_violations
            .iter()
            .chain(rec.verify_rows.iter())
            .take(10)
        {
            eprintln!("crash cycle {cycle}: {v}");
        }
        for k in rec.lost.iter().take(5) {
            eprintln!("crash cycle {cycle}: acknowledged key lost: {k}");
        }
        for k in rec.unacked_writes.iter().take(5) {
            eprintln!("crash cycle {cycle}: key applied but never acknowledged: {k}");
        }
        eprintln!(
            "crash cycle {cycle}: recovery {} ms, acked {} so far, verify_rows {}, lost {}, unacked {}, amcheck problems {}",
            recovery_ms.last().unwrap_or(&0),
            ctx.stats.acked.load(Ordering::Relaxed),
            rec.verify_rows.len(),
            rec.lost.len(),
            rec.unacked_writes.len(),
            problems.len()
        );
        lost += rec.lost.len();
        dup += rec.unacked_writes.len();
        verify_rows += rec.verify_rows.len();
        conservation += rec.conservation_violations.len();
        amcheck_problems += problems.len();
    }
    common::drop_db(&base, &db);

    let s = &ctx.stats;
    let m = ctx.model.lock().unwrap();
    let unexpected = s.unexpected.lock().unwrap();
    for v in m.violations.iter().take(10) {
        eprintln!("crash violation: {v}");
    }
    for v in unexpected.iter().take(10) {
        eprintln!("crash unexpected error: {v}");
    }
    for v in retry_rejected.iter().take(10) {
        eprintln!("crash in-doubt retry of a committed call rejected: {v}");
    }
    for (k, n) in s.altered_wrong.lock().unwrap().iter() {
        eprintln!("crash altered replay not rejected with 23505: {k} ({n}x)");
    }
    let replay_rejected = s.replay_rejected.lock().unwrap();
    for (k, n) in replay_rejected.iter() {
        eprintln!("crash exact replay/retry of an acknowledged call rejected: {k} ({n}x)");
    }
    let altered = s.altered.load(Ordering::Relaxed);
    let altered_ok = s.altered_23505.load(Ordering::Relaxed);
    let dup = dup + s.replay_mismatch.load(Ordering::Relaxed) as usize;
    let max_rec = recovery_ms.iter().max().copied().unwrap_or(0);
    let pass = lost == 0
        && dup == 0
        && verify_rows == 0
        && conservation == 0
        && amcheck_problems == 0
        && retry_rejected.is_empty()
        && m.violations.is_empty()
        && unexpected.is_empty();
    println!(
        "{}",
        common::figure(
            "crash",
            &[
                ("cycles", cycles.to_string()),
                ("sessions", sessions.to_string()),
                ("acked_ops", s.acked.load(Ordering::Relaxed).to_string()),
                ("in_doubt", in_doubt_total.to_string()),
                ("in_doubt_had_committed", in_doubt_committed.to_string()),
                ("in_doubt_applied_on_retry", in_doubt_applied.to_string()),
                ("retry_rejected", retry_rejected.len().to_string()),
                ("replays", s.replays.load(Ordering::Relaxed).to_string()),
                (
                    "replays_rejected",
                    replay_rejected.values().sum::<u64>().to_string()
                ),
                ("altered", altered.to_string()),
                ("altered_rejected_23505", altered_ok.to_string()),
                ("lost", lost.to_string()),
                ("duplicated", dup.to_string()),
                ("conservation_violations", conservation.to_string()),
                ("verify_rows_after_restart", verify_rows.to_string()),
                ("amcheck_problems", amcheck_problems.to_string()),
                ("unexpected_errors", unexpected.len().to_string()),
                ("max_recovery_ms", max_rec.to_string()),
                ("elapsed_s", format!("{:.1}", start.elapsed().as_secs_f64())),
            ],
            pass
        )
    );
    Ok(pass)
}
