//! Scenario `lanes`: a team pool and a hot wallet with lanes; long transactions, rollbacks; a per-transaction model.
//! (See the crate documentation in main.rs for what it asserts.)

use super::*;

/// A hold the model believes open (committed, not yet captured or released).
#[derive(Clone, Debug)]
struct OpenHold {
    id: i64,
    qty: u64,
    team: bool,
}

/// What one transaction did, applied to the tally only when COMMIT returned.
#[derive(Default)]
struct TxEff {
    spent_team: Decimal,
    spent_solo: Decimal,
    approved: u64,
    declined_team: u64,
    declined_solo: u64,
    reasons: Vec<String>,
    holds: u64,
    captures: u64,
    releases: u64,
    same_tx_closes: u64,
    later_closes: u64,
    new_open: Vec<OpenHold>,
    closed: Vec<i64>,
    keys: Vec<String>,
}

/// A decline of a spend: counted per wallet group with its reason.
fn declined(eff: &mut TxEff, a: &Auth, team: bool) {
    if team {
        eff.declined_team += 1;
    } else {
        eff.declined_solo += 1;
    }
    eff.reasons.push(format!(
        "{}:{}",
        if team { "team" } else { "solo" },
        a.reason.clone().unwrap_or_else(|| "<null>".into())
    ));
}

/// The answer to a capture (`q2`) or release (None) of an open hold: captured at exactly
/// `q2` or released; anything else counts as a wrong answer.
fn check_close(eff: &mut TxEff, a: &Auth, h: &OpenHold, q2: Option<u64>, bad: &mut u64) {
    match q2 {
        Some(q2) => {
            let cost = dec(a.cost.as_deref(), "capture cost").ok();
            if a.status.as_deref() != Some("captured") || cost != Some(Decimal::from(q2)) {
                *bad += 1;
                eprintln!(
                    "  lanes: capture of {q2} of hold {} ({} held): {a:?}",
                    h.id, h.qty
                );
            }
            eff.captures += 1;
            let c = cost.unwrap_or_default();
            if h.team {
                eff.spent_team += c;
            } else {
                eff.spent_solo += c;
            }
        }
        None => {
            if a.status.as_deref() != Some("released") {
                *bad += 1;
                eprintln!("  lanes: release of hold {}: {a:?}", h.id);
            }
            eff.releases += 1;
        }
    }
}

pub(crate) fn scenario_lanes(
    base: &Config,
    o: &Opts,
    deadline: Instant,
) -> Result<Verdict, String> {
    let sessions = o.sessions;
    // two sessions per member (two tabs of one user): a member without limits, grants or
    // alert is a free member, whose calls lock only pool lanes (issue 17)
    let members = sessions.div_ceil(2).max(1);
    let txs = o.lanes_tx;
    let pool_lanes = o.lanes_pool;
    let solo_lanes = o.lanes_solo;
    // demand: about 0.8 of the transactions commit a spend of 2 credits on average, 3 in 4 of
    // them on the team; the pool gets about a third of that, the standalone wallet less
    let total_tx = (sessions * txs) as u64;
    let pool_grant = o.lanes_pool_grant.unwrap_or((total_tx / 2).max(1));
    let solo_grant = o.lanes_solo_grant.unwrap_or((total_tx / 8).max(1));
    let m0_limit = o.lanes_member_limit;
    // spend caps sliced over the lanes (0.10.0): the pool's never reached, the standalone
    // wallet's reached before its credits run out
    let team_cap = pool_grant + pool_grant / 10;
    let solo_cap = o.lanes_solo_cap.unwrap_or(solo_grant * 3 / 4);
    let cap_sql = |cap: u64| {
        if cap == 0 {
            String::new()
        } else {
            format!(
                ", spend_cap => {cap}, period => '100 years', \
                 period_anchor => '2000-01-01 00:00:00+00'"
            )
        }
    };
    let member_name = |i: usize| format!("lanes.m{i:02}");
    {
        let mut c = connect(base, &o.database)?;
        // a fixed period (100 years from 2000): a run across a month boundary cannot reset the
        // limited member's pool draw halfway
        let mut sql = format!(
            "SELECT credit_wallet_create(wallet => 'lanes.team'{}); \
             SELECT credit_grant(wallet => 'lanes.team', amount => {pool_grant}); \
             SELECT credit_wallet_create(wallet => 'lanes.solo'{}); \
             SELECT credit_grant(wallet => 'lanes.solo', amount => {solo_grant});",
            cap_sql(team_cap),
            cap_sql(solo_cap)
        );
        for i in 0..members {
            let m = member_name(i);
            if i == 0 {
                sql.push_str(&format!(
                    " SELECT credit_wallet_create(wallet => '{m}', parent => 'lanes.team', \
                       pool_limit => {m0_limit}, period => '100 years', \
                       period_anchor => '2000-01-01 00:00:00+00');"
                ));
            } else {
                sql.push_str(&format!(
                    " SELECT credit_wallet_create(wallet => '{m}', parent => 'lanes.team');"
                ));
            }
        }
        sql.push_str(&format!(
            " SELECT credit_wallet_lanes(wallet => 'lanes.team', lanes => {pool_lanes}); \
              SELECT credit_wallet_lanes(wallet => 'lanes.solo', lanes => {solo_lanes});"
        ));
        c.batch_execute(&sql)
            .map_err(|e| format!("setup of the lanes wallets: {}", err_text(&e)))?;
        let got: Vec<i32> = ["lanes.team", "lanes.solo"]
            .iter()
            .map(|w| {
                c.query_one("SELECT credit_wallet_lanes($1)", &[w])
                    .map(|r| r.get::<_, i32>(0))
                    .map_err(|e| format!("credit_wallet_lanes({w}): {}", err_text(&e)))
            })
            .collect::<Result<_, _>>()?;
        if got != [pool_lanes, solo_lanes] {
            return Err(format!(
                "credit_wallet_lanes reports {got:?}, set {pool_lanes}/{solo_lanes}"
            ));
        }
    }

    #[derive(Default)]
    struct Tally {
        tx: u64,
        committed: u64,
        rolled_back: u64,
        failed_tx: u64,
        slept: u64,
        sleep_ms: u64,
        spend_calls: u64,
        approved: u64,
        declined_team: u64,
        declined_solo: u64,
        reasons: BTreeMap<String, u64>,
        holds: u64,
        same_tx_closes: u64,
        later_closes: u64,
        captures: u64,
        releases: u64,
        slow_calls: u64,
        max_call_ms: f64,
        deadlocks: u64,
        spent_team: Decimal,
        spent_solo: Decimal,
        bad_cost: u64,
        committed_keys: Vec<String>,
        rolled_keys: Vec<String>,
        open: Vec<OpenHold>,
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let problems = Arc::new(Mutex::new(Problems::default()));
    let deadlocks = Arc::new(Mutex::new(Problems::default()));
    let barrier = Arc::new(Barrier::new(sessions + 1));
    let done = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..sessions {
        clients.push(connect(base, &o.database)?);
    }
    let mut sweeper = connect(base, &o.database)?;

    // the sweep session: credit_expire() and credit_tick() in a loop (they must skip a wallet
    // whose lanes are busy, never wait for it and never fail)
    let sweep_handle = {
        let (done, barrier, problems) = (done.clone(), barrier.clone(), problems.clone());
        thread::spawn(move || -> u64 {
            barrier.wait();
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                for sql in [
                    "SELECT * FROM credit_expire()",
                    "SELECT * FROM credit_tick()",
                ] {
                    if let Err(e) = sweeper.query(sql, &[]) {
                        problems
                            .lock()
                            .unwrap()
                            .add(format!("sweeper: {sql}: {}", err_text(&e)));
                    }
                }
                n += 1;
                thread::sleep(Duration::from_millis(25));
            }
            n
        })
    };

    let started = Instant::now();
    let mut handles = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        let (tally, problems, deadlocks, barrier) = (
            tally.clone(),
            problems.clone(),
            deadlocks.clone(),
            barrier.clone(),
        );
        let member = member_name(i % members);
        let same_tx_pct = o.lanes_same_tx;
        let budget = started + o.lanes_budget;
        let cut = cut.clone();
        let mut rng = o
            .seed
            .wrapping_mul(0xD1B5_4A32_D192_ED03)
            .wrapping_add(i as u64 * 15_485_863 + 11)
            | 1;
        handles.push(thread::spawn(move || {
            let prep = |c: &mut Client, call: &str| c.prepare(&auth_sql(call));
            let sts = (|| -> Result<_, postgres::Error> {
                Ok((
                    prep(&mut c, "credit_authorize(wallet => $1, action => 'stress.call', quantity => ($2::text)::numeric, idempotency_key => $3)")?,
                    prep(&mut c, "credit_hold(wallet => $1, action => 'stress.call', quantity => ($2::text)::numeric, idempotency_key => $3)")?,
                    prep(&mut c, "credit_capture(authorization_id => ($1::text)::bigint, quantity => ($2::text)::numeric, idempotency_key => $3)")?,
                    prep(&mut c, "credit_release(authorization_id => ($1::text)::bigint, idempotency_key => $2)")?,
                    c.prepare("SELECT pg_sleep(($1::text)::float8 / 1000)")?,
                ))
            })();
            let (st_auth, st_hold, st_capture, st_release, st_sleep) = match sts {
                Ok(s) => s,
                Err(e) => {
                    problems.lock().unwrap().add(format!("session {i}: prepare: {}", err_text(&e)));
                    barrier.wait();
                    return;
                }
            };
            let mut t = Tally::default();
            let mut seq = 0u64;
            barrier.wait();
            for n in 0..txs {
                if Instant::now() > deadline {
                    problems.lock().unwrap().add(format!("session {i}: deadline reached after {n} transactions"));
                    break;
                }
                if Instant::now() > budget {
                    // the scenario's time budget (--lanes-secs): reported, not a failure
                    cut.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                t.tx += 1;
                let mut eff = TxEff::default();
                // what this transaction does (one spend each, so that nothing in it waits for
                // a lock while holding a lane, except the documented exact path)
                let team = !xorshift(&mut rng).is_multiple_of(4);
                let wallet = if team { member.as_str() } else { "lanes.solo" };
                let q = 1 + xorshift(&mut rng) % 3;
                let roll = xorshift(&mut rng) % 100;
                let sleep_ms = if xorshift(&mut rng) % 100 < 30 {
                    Some(5 + xorshift(&mut rng) % 46)
                } else {
                    None
                };
                let rollback = xorshift(&mut rng) % 100 < 20;
                let mut trace = Vec::new();
                let res = (|| -> Result<(), postgres::Error> {
                    c.batch_execute("BEGIN")?;
                    let mut key = |what: &str| {
                        seq += 1;
                        format!("lanes-s{i}-{seq}-{what}")
                    };
                    let timed = |t: &mut Tally, f: &mut dyn FnMut() -> Result<Auth, postgres::Error>| {
                        let t0 = Instant::now();
                        let r = f();
                        let ms = t0.elapsed().as_secs_f64() * 1000.0;
                        t.spend_calls += 1;
                        if ms > 30.0 {
                            t.slow_calls += 1;
                        }
                        t.max_call_ms = t.max_call_ms.max(ms);
                        r
                    };
                    // finish a hold of an earlier transaction (15 %), a hold (25 %) or a debit (60 %)
                    let later = roll < 15 && !t.open.is_empty();
                    if later {
                        let k = (xorshift(&mut rng) % t.open.len() as u64) as usize;
                        let h = t.open[k].clone();
                        let id_s = h.id.to_string();
                        let capture = xorshift(&mut rng) % 100 < 60;
                        let kk = key(if capture { "capture" } else { "release" });
                        eff.keys.push(kk.clone());
                        if capture {
                            let q2 = 1 + xorshift(&mut rng) % h.qty;
                            trace.push(format!("capture({}, {q2})", h.id));
                            let a = timed(&mut t, &mut || run_auth(&mut c, &st_capture, &[&id_s, &q2.to_string(), &kk]))?;
                            check_close(&mut eff, &a, &h, Some(q2), &mut t.bad_cost);
                        } else {
                            trace.push(format!("release({})", h.id));
                            let a = timed(&mut t, &mut || run_auth(&mut c, &st_release, &[&id_s, &kk]))?;
                            check_close(&mut eff, &a, &h, None, &mut t.bad_cost);
                        }
                        eff.closed.push(h.id);
                        eff.later_closes += 1;
                    } else if roll < 40 {
                        // a hold; closed in the same transaction (60 %) or left for a later one
                        let kk = key("hold");
                        eff.keys.push(kk.clone());
                        trace.push(format!("hold({wallet}, {q})"));
                        let a = timed(&mut t, &mut || run_auth(&mut c, &st_hold, &[&wallet, &q.to_string(), &kk]))?;
                        if a.approved {
                            eff.holds += 1;
                            if dec(a.cost.as_deref(), "hold cost").ok() != Some(Decimal::from(q)) {
                                t.bad_cost += 1;
                            }
                            let h = OpenHold { id: a.id.unwrap_or(-1), qty: q, team };
                            if xorshift(&mut rng) % 100 < same_tx_pct {
                                let id_s = h.id.to_string();
                                let capture = xorshift(&mut rng) % 100 < 60;
                                let kk = key(if capture { "capture" } else { "release" });
                                eff.keys.push(kk.clone());
                                if capture {
                                    let q2 = 1 + xorshift(&mut rng) % q;
                                    trace.push(format!("capture({}, {q2})", h.id));
                                    let a = timed(&mut t, &mut || run_auth(&mut c, &st_capture, &[&id_s, &q2.to_string(), &kk]))?;
                                    check_close(&mut eff, &a, &h, Some(q2), &mut t.bad_cost);
                                } else {
                                    trace.push(format!("release({})", h.id));
                                    let a = timed(&mut t, &mut || run_auth(&mut c, &st_release, &[&id_s, &kk]))?;
                                    check_close(&mut eff, &a, &h, None, &mut t.bad_cost);
                                }
                                eff.same_tx_closes += 1;
                            } else {
                                eff.new_open.push(h);
                            }
                        } else {
                            declined(&mut eff, &a, team);
                        }
                    } else {
                        let kk = key("debit");
                        eff.keys.push(kk.clone());
                        trace.push(format!("authorize({wallet}, {q})"));
                        let a = timed(&mut t, &mut || run_auth(&mut c, &st_auth, &[&wallet, &q.to_string(), &kk]))?;
                        if a.approved {
                            eff.approved += 1;
                            match dec(a.cost.as_deref(), "cost") {
                                Ok(cost) => {
                                    if cost != Decimal::from(q) {
                                        t.bad_cost += 1;
                                    }
                                    if team {
                                        eff.spent_team += cost;
                                    } else {
                                        eff.spent_solo += cost;
                                    }
                                }
                                Err(_) => t.bad_cost += 1,
                            }
                        } else {
                            declined(&mut eff, &a, team);
                        }
                    }
                    if let Some(ms) = sleep_ms {
                        trace.push(format!("pg_sleep({ms} ms)"));
                        c.query(&st_sleep, &[&ms.to_string()])?;
                    }
                    if rollback {
                        trace.push("ROLLBACK".into());
                        c.batch_execute("ROLLBACK")?;
                    } else {
                        trace.push("COMMIT".into());
                        c.batch_execute("COMMIT")?;
                    }
                    Ok(())
                })();
                if let Some(ms) = sleep_ms {
                    t.slept += 1;
                    t.sleep_ms += ms;
                }
                match res {
                    Ok(()) if rollback => {
                        t.rolled_back += 1;
                        t.rolled_keys.extend(eff.keys);
                    }
                    Ok(()) => {
                        t.committed += 1;
                        t.spent_team += eff.spent_team;
                        t.spent_solo += eff.spent_solo;
                        t.approved += eff.approved;
                        t.declined_team += eff.declined_team;
                        t.declined_solo += eff.declined_solo;
                        for r in eff.reasons {
                            *t.reasons.entry(r).or_default() += 1;
                        }
                        t.holds += eff.holds;
                        t.captures += eff.captures;
                        t.releases += eff.releases;
                        t.same_tx_closes += eff.same_tx_closes;
                        t.later_closes += eff.later_closes;
                        t.open.retain(|h| !eff.closed.contains(&h.id));
                        t.open.extend(eff.new_open);
                        t.committed_keys.extend(eff.keys);
                    }
                    Err(e) => {
                        t.failed_tx += 1;
                        let _ = c.batch_execute("ROLLBACK");
                        let msg = format!("session {i}: {} in [{}]", err_text(&e), trace.join("; "));
                        if sqlstate(&e) == "40P01" {
                            t.deadlocks += 1;
                            deadlocks.lock().unwrap().add(msg);
                        } else {
                            problems.lock().unwrap().add(msg);
                        }
                        // the keys of a failed transaction are gone like a rolled-back one's
                        t.rolled_keys.extend(eff.keys);
                    }
                }
            }
            let mut g = tally.lock().unwrap();
            g.tx += t.tx;
            g.committed += t.committed;
            g.rolled_back += t.rolled_back;
            g.failed_tx += t.failed_tx;
            g.slept += t.slept;
            g.sleep_ms += t.sleep_ms;
            g.spend_calls += t.spend_calls;
            g.approved += t.approved;
            g.declined_team += t.declined_team;
            g.declined_solo += t.declined_solo;
            for (k, v) in t.reasons {
                *g.reasons.entry(k).or_default() += v;
            }
            g.holds += t.holds;
            g.same_tx_closes += t.same_tx_closes;
            g.later_closes += t.later_closes;
            g.captures += t.captures;
            g.releases += t.releases;
            g.slow_calls += t.slow_calls;
            g.max_call_ms = g.max_call_ms.max(t.max_call_ms);
            g.deadlocks += t.deadlocks;
            g.spent_team += t.spent_team;
            g.spent_solo += t.spent_solo;
            g.bad_cost += t.bad_cost;
            g.committed_keys.extend(t.committed_keys);
            g.rolled_keys.extend(t.rolled_keys);
            g.open.extend(t.open);
        }));
    }
    let mut panicked = false;
    for h in handles {
        panicked |= h.join().is_err();
    }
    done.store(true, Ordering::Relaxed);
    let sweeps = sweep_handle.join();
    panicked |= sweeps.is_err();
    if panicked {
        return Err("a session thread panicked".into());
    }
    let sweeps = sweeps.unwrap_or(0);
    let elapsed = started.elapsed().as_secs_f64();

    let mut c = connect(base, &o.database)?;
    let mut notes = Vec::new();
    let mut t = tally.lock().unwrap();

    // the system is quiet: release every hold a committed transaction left open
    let open = std::mem::take(&mut t.open);
    let mut final_released = 0;
    let st_release = c
        .prepare(&auth_sql(
            "credit_release(authorization_id => ($1::text)::bigint)",
        ))
        .map_err(|e| err_text(&e))?;
    for h in &open {
        match run_auth(&mut c, &st_release, &[&h.id.to_string()]) {
            Ok(a) if a.status.as_deref() == Some("released") => final_released += 1,
            Ok(a) => notes.push(format!("final release of hold {}: {a:?}", h.id)),
            Err(e) => notes.push(format!("final release of hold {}: {}", h.id, err_text(&e))),
        }
    }

    let q = |c: &mut Client, sql: &str, what: &str| text_rows(c, sql, what);
    // balances, grants (every row, slices included) and the journal's spend, per wallet group
    let groups = q(
        &mut c,
        "WITH w AS (SELECT id, CASE WHEN wallet = 'lanes.solo' THEN 'solo' ELSE 'team' END AS grp
                      FROM credit_ledger.wallets
                     WHERE wallet IN ('lanes.team', 'lanes.solo')
                        OR parent_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'lanes.team'))
         SELECT grp,
                (SELECT coalesce(sum(g.amount), 0) FROM credit_ledger.grants g
                  WHERE g.wallet_id IN (SELECT id FROM w x WHERE x.grp = s.grp) AND g.home_id IS NULL)::text,
                (SELECT coalesce(sum(g.remaining), 0) FROM credit_ledger.grants g
                  WHERE g.wallet_id IN (SELECT id FROM w x WHERE x.grp = s.grp))::text,
                (SELECT coalesce(sum(g.held), 0) FROM credit_ledger.grants g
                  WHERE g.wallet_id IN (SELECT id FROM w x WHERE x.grp = s.grp))::text,
                (SELECT coalesce(-sum(j.amount) FILTER (WHERE j.kind IN ('debit', 'capture', 'overdraft', 'settlement')), 0)
                   FROM credit_ledger.journal j WHERE j.wallet_id IN (SELECT id FROM w x WHERE x.grp = s.grp))::text,
                (SELECT coalesce(sum(CASE a.status WHEN 'captured' THEN a.captured ELSE a.cost END), 0)
                   FROM credit_ledger.authorizations a
                  WHERE a.wallet_id IN (SELECT id FROM w x WHERE x.grp = s.grp)
                    AND a.status IN ('approved', 'captured'))::text,
                (SELECT coalesce(sum(j.amount), 0) FROM credit_ledger.journal j
                  WHERE j.wallet_id IN (SELECT id FROM w x WHERE x.grp = s.grp) AND j.kind = 'lane')::text,
                (SELECT coalesce(sum(s2.debt), 0) FROM credit_ledger.wallet_assets s2
                  WHERE s2.wallet_id IN (SELECT id FROM w x WHERE x.grp = s.grp))::text
           FROM (SELECT DISTINCT grp FROM w) s ORDER BY grp",
        "groups",
    )?;
    let mut group = BTreeMap::new();
    for r in &groups {
        let g = r[0].clone().unwrap_or_default();
        let vals: Vec<Decimal> = (1..r.len())
            .map(|k| text_dec(&r[k], "group figure"))
            .collect::<Result<_, _>>()?;
        group.insert(g, vals);
    }
    let bal_team = balance(&mut c, "lanes.team")?;
    let bal_solo = balance(&mut c, "lanes.solo")?;
    let via_grants = q(
        &mut c,
        "SELECT (SELECT coalesce(sum(remaining - held), 0) FROM credit_grants('lanes.team'))::text,
                (SELECT coalesce(sum(remaining - held), 0) FROM credit_grants('lanes.solo'))::text,
                (SELECT coalesce(sum(amount), 0) FROM credit_grants('lanes.team'))::text,
                (SELECT coalesce(sum(amount), 0) FROM credit_grants('lanes.solo'))::text,
                (SELECT min(credit_balance(w.wallet)) FROM credit_ledger.wallets w
                  WHERE w.parent_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'lanes.team'))::text",
        "credit_grants",
    )?;
    let cg_team = text_dec(&via_grants[0][0], "credit_grants team")?;
    let cg_solo = text_dec(&via_grants[0][1], "credit_grants solo")?;
    let cg_amount_team = text_dec(&via_grants[0][2], "credit_grants team amount")?;
    let cg_amount_solo = text_dec(&via_grants[0][3], "credit_grants solo amount")?;
    let min_member = text_dec(&via_grants[0][4], "min member balance")?;
    for (name, grp, granted, bal, cg, cg_amount, spent_model) in [
        (
            "team",
            "team",
            pool_grant,
            bal_team,
            cg_team,
            cg_amount_team,
            t.spent_team,
        ),
        (
            "solo",
            "solo",
            solo_grant,
            bal_solo,
            cg_solo,
            cg_amount_solo,
            t.spent_solo,
        ),
    ] {
        let Some(v) = group.get(grp) else {
            notes.push(format!("{name}: no wallets found"));
            continue;
        };
        let (amount, remaining, held, spent_j, spent_a, lane_net, debt) =
            (v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
        let granted = Decimal::from(granted);
        if bal < Decimal::ZERO || debt != Decimal::ZERO {
            notes.push(format!("OVERSPEND: {name} balance {bal}, debt {debt}"));
        }
        if spent_j > granted {
            notes.push(format!(
                "OVERSPEND: {name} spent {spent_j} of {granted} granted"
            ));
        }
        if spent_j != spent_model || spent_a != spent_model {
            notes.push(format!(
                "{name}: committed approved costs (client model) {spent_model} != journal spend {spent_j} / authorizations {spent_a}"
            ));
        }
        if amount != granted || cg_amount != granted {
            notes.push(format!(
                "{name}: grants total {amount} (credit_grants {cg_amount}), {granted} granted"
            ));
        }
        if held != Decimal::ZERO {
            notes.push(format!(
                "{name}: {held} still held after every hold was released"
            ));
        }
        if remaining != granted - spent_j || bal != remaining - held || cg != remaining - held {
            notes.push(format!(
                "CONSERVATION: {name} granted {granted}, spent {spent_j}, Σ remaining over all rows {remaining}, held {held}, credit_balance {bal}, credit_grants {cg}"
            ));
        }
        if lane_net != Decimal::ZERO {
            notes.push(format!(
                "{name}: the lane moves of the journal net {lane_net}, not 0"
            ));
        }
    }
    // the period's spend under the sliced caps: the counter plus the lanes' part of the current
    // period equals what was spent (every hold is released now), and stays within the cap
    let periods = q(
        &mut c,
        "SELECT w.wallet,
                (coalesce((SELECT s.period_spent FROM credit_ledger.wallet_assets s
                            WHERE s.wallet_id = w.id AND s.asset = 'credits'
                              AND s.period_start = c.cur), 0)
                 + coalesce((SELECT sum(l.cap_spent) FROM credit_ledger.lanes l
                              WHERE l.wallet_id = w.id AND l.asset = 'credits'
                                AND l.cap_period = c.cur), 0))::text,
                (SELECT coalesce(sum(l.cap_room), 0) FROM credit_ledger.lanes l
                  WHERE l.wallet_id = w.id AND l.asset = 'credits')::text
           FROM credit_ledger.wallets w,
                LATERAL (SELECT credit_ledger._period_start(w.period, w.period_anchor, now()) AS cur) c
          WHERE w.wallet IN ('lanes.team', 'lanes.solo') ORDER BY w.wallet",
        "period spend",
    )?;
    let mut period_spend = Vec::new();
    for r in &periods {
        let w = r[0].clone().unwrap_or_default();
        let spent = text_dec(&r[1], "period spend")?;
        let room = text_dec(&r[2], "cap room")?;
        let (grp, cap) = if w == "lanes.team" {
            ("team", team_cap)
        } else {
            ("solo", solo_cap)
        };
        if cap == 0 {
            continue;
        }
        let cap = Decimal::from(cap);
        let journal = group.get(grp).map(|v| v[3]).unwrap_or_default();
        if spent != journal {
            notes.push(format!(
                "{w}: period spend (counter + lanes) {spent}, journal spend {journal}"
            ));
        }
        if spent > cap {
            notes.push(format!("SPEND CAP EXCEEDED: {w} spent {spent} with cap {cap}"));
        }
        if room > cap - spent {
            notes.push(format!(
                "{w}: the lanes hold {room} of room, the cap leaves {}",
                cap - spent
            ));
        }
        period_spend.push(format!("{w}:{}/{}", spent.normalize(), cap));
    }
    if min_member < Decimal::ZERO {
        notes.push(format!("a member's balance is {min_member} < 0"));
    }

    // the running balance of each wallet's journal in id order (the lane moves left out: they
    // net to zero per spread but come one slice at a time): never below 0
    let runs = q(
        &mut c,
        "SELECT w.wallet, coalesce(min(s.run), 0)::text, count(s.run)::text
           FROM credit_ledger.wallets w
           LEFT JOIN LATERAL (SELECT sum(j.amount - j.held) OVER (ORDER BY j.id) AS run
                                FROM credit_ledger.journal j
                               WHERE j.wallet_id = w.id AND j.asset = 'credits' AND j.kind <> 'lane') s ON true
          WHERE w.wallet IN ('lanes.team', 'lanes.solo')
          GROUP BY w.wallet ORDER BY w.wallet",
        "running balances",
    )?;
    let mut min_runs = Vec::new();
    for r in &runs {
        let w = r[0].clone().unwrap_or_default();
        let m = text_dec(&r[1], "min running balance")?;
        if m < Decimal::ZERO {
            notes.push(format!(
                "OVERSPEND: the running balance of {w}'s journal reached {m}"
            ));
        }
        min_runs.push(format!("{w}:{}", m.normalize()));
    }

    // the member with a pool limit: its draw (journal, pool_usage) <= limit. (The
    // authorizations' pool_amount is the pool part of a hold's cost, not of what was captured.)
    let draw = q(
        &mut c,
        "SELECT coalesce((SELECT -sum(j.amount) + sum(j.held) FROM credit_ledger.journal j
                           WHERE j.wallet_id = m.parent_id AND j.member_id = m.id
                             AND j.asset = 'credits' AND j.kind <> 'lane'), 0)::text,
                (SELECT u.drawn_this_period::text FROM credit_ledger.pool_usage u
                  WHERE u.member = m.wallet AND u.asset = 'credits')
           FROM credit_ledger.wallets m WHERE m.wallet = 'lanes.m00'",
        "pool draw of lanes.m00",
    )?;
    let r = draw.first().ok_or("pool draw of lanes.m00: no row")?;
    let m0_draw = text_dec(&r[0], "m00 draw")?;
    let m0_report = r[1].clone();
    if m0_draw > Decimal::from(m0_limit) {
        notes.push(format!(
            "POOL LIMIT EXCEEDED: lanes.m00 drew {m0_draw} with limit {m0_limit}"
        ));
    }
    if m0_report
        .as_deref()
        .map(Decimal::from_str)
        .and_then(|x| x.ok())
        != Some(m0_draw)
    {
        notes.push(format!(
            "lanes.m00: journal draw {m0_draw}, pool_usage {m0_report:?}"
        ));
    }

    // lane hints exact in the quiet system, and lane rows as expected
    let hints = q(
        &mut c,
        "SELECT bool_and(free = coalesce((SELECT sum(g.remaining - g.held) FROM credit_ledger.grants g
                                          WHERE g.wallet_id = l.wallet_id AND g.asset = l.asset AND g.lane = l.lane
                                            AND g.live AND (g.expires_at IS NULL OR g.expires_at > now())), 0))::text,
                count(*)::text,
                (SELECT count(*) FROM credit_ledger.grants g
                  WHERE g.home_id IS NOT NULL
                    AND g.wallet_id IN (SELECT id FROM credit_ledger.wallets WHERE wallet IN ('lanes.team', 'lanes.solo')))::text
           FROM credit_ledger.lanes l",
        "lane hints",
    )?;
    let hints_exact = hints[0][0].as_deref() == Some("true");
    let lane_rows = hints[0][1].clone().unwrap_or_default();
    let slices = hints[0][2].clone().unwrap_or_default();
    if !hints_exact {
        let bad = q(
            &mut c,
            "SELECT l.wallet_id::text, l.lane::text, l.free::text,
                    coalesce((SELECT sum(g.remaining - g.held) FROM credit_ledger.grants g
                               WHERE g.wallet_id = l.wallet_id AND g.asset = l.asset AND g.lane = l.lane
                                 AND g.live AND (g.expires_at IS NULL OR g.expires_at > now())), 0)::text
               FROM credit_ledger.lanes l ORDER BY 1, 2",
            "lane hints",
        )?;
        let bad: Vec<String> = bad
            .iter()
            .filter(|r| r[2] != r[3] && text_dec(&r[2], "").ok() != text_dec(&r[3], "").ok())
            .map(|r| {
                format!(
                    "wallet {:?} lane {:?}: free {:?}, slices {:?}",
                    r[0], r[1], r[2], r[3]
                )
            })
            .collect();
        notes.push(format!(
            "LANE HINTS: {} lanes off: {:?}",
            bad.len(),
            bad.iter().take(8).collect::<Vec<_>>()
        ));
    }
    if lane_rows != (pool_lanes + solo_lanes).to_string() {
        notes.push(format!(
            "{lane_rows} lane rows, {} expected",
            pool_lanes + solo_lanes
        ));
    }

    // keys: every committed one is on the server, no rolled-back one is
    key_notes(
        &mut c,
        "SELECT k FROM (SELECT idempotency_key AS k FROM credit_ledger.authorizations
                         UNION ALL SELECT close_key FROM credit_ledger.authorizations) s
          WHERE k LIKE 'lanes-%'",
        &t.committed_keys,
        &t.rolled_keys,
        &mut notes,
    )?;
    let open_left: i64 = c
        .query_one(
            "SELECT count(*) FROM credit_ledger.authorizations WHERE status = 'held'",
            &[],
        )
        .map_err(|e| format!("open holds: {}", err_text(&e)))?
        .get(0);
    if open_left != 0 {
        notes.push(format!("{open_left} holds still open at the end"));
    }

    let verify = verify_rows(&mut c)?;
    if !verify.is_empty() {
        notes.push(format!(
            "credit_verify() returned {} rows: {:?}",
            verify.len(),
            verify.iter().take(10).collect::<Vec<_>>()
        ));
    }
    let p = problems.lock().unwrap();
    let d = deadlocks.lock().unwrap();
    if p.count > 0 {
        notes.push(format!("{} errors; first: {:?}", p.count, p.first));
    }
    // a 40P01 fails the run: every transaction here has one spend (and the close of its own
    // hold), and a single call must never deadlock (it gives its lane back before it waits for
    // the whole wallet). Counted apart from other errors so that the message says which.
    if d.count > 0 {
        notes.push(format!(
            "{} transactions aborted with 40P01 (deadlock); first: {:?}",
            d.count, d.first
        ));
    }
    if t.bad_cost > 0 {
        notes.push(format!(
            "{} answers with a wrong cost or status",
            t.bad_cost
        ));
    }
    let odd: Vec<_> = t
        .reasons
        .keys()
        .filter(|r| {
            ![
                "team:insufficient_credits",
                "team:pool_limit_reached",
                "solo:insufficient_credits",
                "solo:spend_cap_reached",
            ]
            .contains(&r.as_str())
        })
        .collect();
    if !odd.is_empty() {
        notes.push(format!("unexpected decline reasons: {:?}", t.reasons));
    }
    if o.lanes_pool_grant.is_none()
        && o.lanes_solo_grant.is_none()
        && cut.load(Ordering::Relaxed) == 0
        && (t.declined_team == 0 || t.declined_solo == 0)
    {
        notes.push(format!(
            "demand never exceeded supply (team declines {}, standalone declines {})",
            t.declined_team, t.declined_solo
        ));
    }

    let pass = notes.is_empty();
    let reasons: Vec<String> = t.reasons.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let line = format!(
        "stress scenario=lanes sessions={sessions} members={members} pool_lanes={pool_lanes} solo_lanes={solo_lanes} transactions={} committed={} rolled_back={} failed={} slept={} sleep_ms={} spend_calls={} approved={} holds={} captures={} releases={} same_tx_closes={} later_closes={} final_releases={final_released} declined_team={} declined_solo={} declines={} slow_calls_over_30ms={} max_call_ms={:.0} deadlocks={} errors={} pool_granted={pool_grant} solo_granted={solo_grant} spent_team={} spent_solo={} team_balance={} solo_balance={} min_running={} m00_draw={}/{m0_limit} period_spend={} lane_rows={lane_rows} slices={slices} lane_hints_exact={hints_exact} sweeps={sweeps} cut_short={} verify_rows={} elapsed_s={:.2} calls_per_s={:.0} result={}",
        t.tx,
        t.committed,
        t.rolled_back,
        t.failed_tx,
        t.slept,
        t.sleep_ms,
        t.spend_calls,
        t.approved,
        t.holds,
        t.captures,
        t.releases,
        t.same_tx_closes,
        t.later_closes,
        t.declined_team,
        t.declined_solo,
        if reasons.is_empty() { "none".to_string() } else { reasons.join(",") },
        t.slow_calls,
        t.max_call_ms,
        d.count,
        p.count,
        t.spent_team.normalize(),
        t.spent_solo.normalize(),
        bal_team.normalize(),
        bal_solo.normalize(),
        min_runs.join(","),
        m0_draw.normalize(),
        period_spend.join(","),
        cut.load(Ordering::Relaxed),
        verify.len(),
        elapsed,
        t.spend_calls as f64 / elapsed.max(1e-9),
        if pass { "pass" } else { "fail" }
    );
    Ok(Verdict { line, pass, notes })
}
