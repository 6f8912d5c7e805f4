//! The `runs` scenario's driver: sessions, then the checks of the server's state against the model.

use super::*;

pub(crate) fn scenario_runs(base: &Config, o: &Opts, deadline: Instant) -> Result<Verdict, String> {
    let sessions = o.sessions;
    let quota = o.runs.div_ceil(sessions).max(1);
    let pool_grant = o.runs_pool_grant.unwrap_or((o.runs as u64 * 6).max(1));
    let solo_grant = o.runs_solo_grant.unwrap_or((o.runs as u64 * 2).max(1));
    let m0_limit = o.runs_member_limit;
    let member_name = |i: usize| format!("runs.m{i:02}");
    {
        let mut c = connect(base, &o.database)?;
        // members without own grants (runs.m00 with a pool limit over a fixed 100-year period)
        let mut sql = format!(
            "SELECT credit_wallet_create(wallet => 'runs.team'); \
             SELECT credit_grant(wallet => 'runs.team', amount => {pool_grant}); \
             SELECT credit_wallet_create(wallet => 'runs.solo'); \
             SELECT credit_grant(wallet => 'runs.solo', amount => {solo_grant});"
        );
        for i in 0..sessions {
            let m = member_name(i);
            if i == 0 {
                sql.push_str(&format!(
                    " SELECT credit_wallet_create(wallet => '{m}', parent => 'runs.team', \
                       pool_limit => {m0_limit}, period => '100 years', \
                       period_anchor => '2000-01-01 00:00:00+00');"
                ));
            } else {
                sql.push_str(&format!(
                    " SELECT credit_wallet_create(wallet => '{m}', parent => 'runs.team');"
                ));
            }
        }
        c.batch_execute(&sql)
            .map_err(|e| format!("setup of the runs wallets: {}", err_text(&e)))?;
    }

    let problems = Arc::new(Mutex::new(Problems::default()));
    let deadlocks = Arc::new(Mutex::new(Problems::default()));
    let wrong = Arc::new(Mutex::new(Problems::default()));
    let tallies = Arc::new(Mutex::new(Vec::<RunsTally>::new()));
    let barrier = Arc::new(Barrier::new(sessions + 1));
    let done = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..sessions {
        clients.push(connect(base, &o.database)?);
    }
    let mut sweeper = connect(base, &o.database)?;
    let sweep_pid: i32 = sweeper
        .query_one("SELECT pg_backend_pid()", &[])
        .map_err(|e| err_text(&e))?
        .get(0);
    let with_sweep = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    // the sweep session: credit_expire() in a loop (closes the runs past their TTL)
    let sweep_handle = {
        let (done, barrier, problems, deadlocks, with_sweep) = (
            done.clone(),
            barrier.clone(),
            problems.clone(),
            deadlocks.clone(),
            with_sweep.clone(),
        );
        thread::spawn(move || -> u64 {
            barrier.wait();
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Err(e) = sweeper.query("SELECT * FROM credit_expire()", &[]) {
                    let msg = format!("sweeper: credit_expire(): {}", err_text(&e));
                    if sqlstate(&e) == "40P01" {
                        with_sweep.fetch_add(1, Ordering::Relaxed);
                        deadlocks.lock().unwrap().add(msg);
                    } else {
                        problems.lock().unwrap().add(msg);
                    }
                }
                n += 1;
                thread::sleep(Duration::from_millis(20));
            }
            n
        })
    };

    let started = Instant::now();
    let mut handles = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        let x = RunsCtx {
            i,
            deadline,
            budget: started + o.runs_budget,
            problems: problems.clone(),
            deadlocks: deadlocks.clone(),
            wrong: wrong.clone(),
            cut: cut.clone(),
            sweep_pid,
            with_sweep: with_sweep.clone(),
        };
        let (tallies, barrier) = (tallies.clone(), barrier.clone());
        let member = member_name(i);
        let rng = o
            .seed
            .wrapping_mul(0xA076_1D64_78BD_642F)
            .wrapping_add(i as u64 * 1_000_003 + 17)
            | 1;
        handles.push(thread::spawn(move || {
            let s = match runs_prepare(&mut c) {
                Ok(s) => s,
                Err(e) => {
                    x.problems
                        .lock()
                        .unwrap()
                        .add(format!("session {i}: prepare: {}", err_text(&e)));
                    barrier.wait();
                    return;
                }
            };
            barrier.wait();
            let t = runs_session(&mut c, &s, &x, &member, quota, rng);
            tallies.lock().unwrap().push(t);
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

    // one model: every session's runs and calls (ids are unique), counters added up
    let mut t = RunsTally::default();
    for s in std::mem::take(&mut *tallies.lock().unwrap()) {
        for (k, v) in s.n {
            t.add(k, v);
        }
        for (k, v) in s.reasons {
            *t.reasons.entry(k).or_default() += v;
        }
        t.committed_keys.extend(s.committed_keys);
        t.rolled_keys.extend(s.rolled_keys);
        t.rolled_runs.extend(s.rolled_runs);
        t.max_call_ms = t.max_call_ms.max(s.max_call_ms);
        t.runs.extend(s.runs);
        t.calls.extend(s.calls);
    }

    let mut c = connect(base, &o.database)?;
    let mut notes = Vec::new();
    let q = |c: &mut Client, sql: &str, what: &str| text_rows(c, sql, what);
    let d = |v: &Option<String>| text_dec(v, "figure");

    // the system is quiet: every short TTL has passed; one sweep (bounded) closes what is due
    thread::sleep(Duration::from_millis(400));
    for _ in 0..20 {
        let more = c
            .query_one("SELECT more FROM credit_expire()", &[])
            .map_err(|e| format!("final credit_expire(): {}", err_text(&e)))?
            .get::<_, bool>(0);
        if !more {
            break;
        }
    }

    // group figures: the team (pool and members) and the standalone wallet, each with the
    // wallets of its runs (run_of = the owner)
    let groups_sql = "
        WITH w AS (SELECT w.id, w.run_of IS NOT NULL AS is_run,
                          CASE WHEN coalesce(o.wallet, w.wallet) = 'runs.solo' THEN 'solo' ELSE 'team' END AS grp
                     FROM credit_ledger.wallets w LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of
                    WHERE coalesce(o.wallet, w.wallet) LIKE 'runs.%')
        SELECT g.grp,
               (SELECT coalesce(sum(x.remaining), 0) FROM credit_ledger.grants x
                 WHERE x.wallet_id IN (SELECT id FROM w WHERE w.grp = g.grp))::text,
               (SELECT coalesce(sum(x.held), 0) FROM credit_ledger.grants x
                 WHERE x.wallet_id IN (SELECT id FROM w WHERE w.grp = g.grp))::text,
               (SELECT coalesce(sum(x.remaining), 0) FROM credit_ledger.grants x
                 WHERE x.wallet_id IN (SELECT id FROM w WHERE w.grp = g.grp AND w.is_run))::text,
               (SELECT coalesce(sum(coalesce(a.captured, a.cost) - a.refunded), 0) FROM credit_ledger.authorizations a
                 WHERE a.wallet_id IN (SELECT id FROM w WHERE w.grp = g.grp) AND a.status IN ('approved', 'captured'))::text,
               (SELECT coalesce(-sum(j.amount), 0) FROM credit_ledger.journal j
                 WHERE j.wallet_id IN (SELECT id FROM w WHERE w.grp = g.grp) AND j.kind = 'expiry')::text,
               (SELECT coalesce(sum(s.debt), 0) FROM credit_ledger.wallet_assets s
                 WHERE s.wallet_id IN (SELECT id FROM w WHERE w.grp = g.grp))::text
          FROM (SELECT DISTINCT grp FROM w) g ORDER BY g.grp";
    // the model's net spend (approved debits + captures - refunds) per owner and per group
    let mut net_owner: BTreeMap<String, u64> = BTreeMap::new();
    for call in t.calls.values() {
        if matches!(call.state, CallState::Debit | CallState::Captured) {
            *net_owner.entry(call.owner.clone()).or_default() += call.cost - call.refunded;
        }
    }
    let net_solo = net_owner.get("runs.solo").copied().unwrap_or(0);
    let net_team: u64 = net_owner
        .iter()
        .filter(|(k, _)| k.as_str() != "runs.solo")
        .map(|(_, v)| *v)
        .sum();
    let conservation = |c: &mut Client,
                        when: &str,
                        notes: &mut Vec<String>|
     -> Result<BTreeMap<String, Vec<Decimal>>, String> {
        let mut out = BTreeMap::new();
        for r in q(c, groups_sql, "group figures")? {
            let g = r[0].clone().unwrap_or_default();
            let v: Vec<Decimal> = (1..r.len()).map(|k| d(&r[k])).collect::<Result<_, _>>()?;
            let (granted, net) = if g == "solo" {
                (solo_grant, net_solo)
            } else {
                (pool_grant, net_team)
            };
            let (remaining, net_db, expired, debt) = (v[0], v[3], v[4], v[5]);
            if net_db != Decimal::from(net) {
                notes.push(format!(
                    "{when}: {g}: net spend of the committed calls (client model) {net} != authorizations {net_db}"
                ));
            }
            if remaining != Decimal::from(granted) - net_db - expired || debt != Decimal::ZERO {
                notes.push(format!(
                    "CONSERVATION {when}: {g}: granted {granted} - net spend {net_db} - expired {expired} != Σ remaining over every row, runs' slices included, {remaining} (debt {debt})"
                ));
            }
            out.insert(g, v);
        }
        Ok(out)
    };

    // before the final close: runs closed or expired have nothing left in their slices, and the
    // credits are all somewhere (wallets, pool, open runs' slices)
    conservation(&mut c, "before the final close", &mut notes)?;
    let left = q(
        &mut c,
        "SELECT r.id::text, r.status, coalesce(sum(g.remaining), 0)::text, coalesce(sum(g.held), 0)::text
           FROM credit_ledger.runs r JOIN credit_ledger.grants g ON g.wallet_id = r.run_wallet_id
          WHERE r.status IN ('closed', 'expired')
          GROUP BY r.id, r.status HAVING sum(g.remaining) <> 0 OR sum(g.held) <> 0 ORDER BY r.id",
        "slices of closed runs",
    )?;
    let mut stranded = Decimal::ZERO;
    for r in &left {
        stranded += d(&r[2])?;
    }
    if !left.is_empty() {
        notes.push(format!(
            "STRANDED: {} closed/expired runs still have credits in their slices (run, status, remaining, held): {:?}",
            left.len(),
            left.iter().take(8).collect::<Vec<_>>()
        ));
    }
    let closed_before: i64 = c
        .query_one(
            "SELECT count(*) FROM credit_ledger.runs WHERE status = 'closed'",
            &[],
        )
        .map_err(|e| err_text(&e))?
        .get(0);

    // every run still open is closed now (top down: a sub-run may go with its parent)
    let mut to_close: Vec<(u32, i64)> = t
        .runs
        .values()
        .filter(|r| !r.closed && !r.doomed)
        .map(|r| (r.depth, r.id))
        .collect();
    to_close.sort();
    let st_close = c
        .prepare(
            "SELECT j->>'status' FROM (SELECT to_jsonb(r) AS j \
               FROM credit_run_close(run_id => ($1::text)::bigint) r) s",
        )
        .map_err(|e| err_text(&e))?;
    let mut final_closed = 0u64;
    for (_, id) in &to_close {
        match c.query(&st_close, &[&id.to_string()]) {
            Ok(rows) => {
                let st = rows.first().and_then(|r| r.get::<_, Option<String>>(0));
                if st.as_deref() != Some("closed") {
                    notes.push(format!("final close of run {id}: status {st:?}"));
                }
                final_closed += 1;
            }
            Err(e) => notes.push(format!("final close of run {id}: {}", err_text(&e))),
        }
    }
    let ids: Vec<i64> = t.runs.keys().copied().collect();
    for id in ids {
        if t.runs.get(&id).is_some_and(|r| !r.doomed) {
            runs_model_close(&mut t.runs, &mut t.calls, id);
        }
    }
    let still_open: i64 = c
        .query_one(
            "SELECT count(*) FROM credit_ledger.runs WHERE status = 'open'",
            &[],
        )
        .map_err(|e| err_text(&e))?
        .get(0);
    if still_open != 0 {
        notes.push(format!(
            "{still_open} runs still open after the final close"
        ));
    }

    // every run: the model's status, spend and budget; spent_tree <= budget; what came back
    let server = q(
        &mut c,
        "SELECT r.id::text, r.status, x.budget::text, x.spent::text, x.spent_tree::text, x.returned::text,
                (SELECT coalesce(sum(g.remaining), 0) FROM credit_ledger.grants g WHERE g.wallet_id = r.run_wallet_id)::text,
                (SELECT coalesce(sum(g.held), 0) FROM credit_ledger.grants g WHERE g.wallet_id = r.run_wallet_id)::text
           FROM credit_ledger.runs r CROSS JOIN LATERAL credit_run(r.id) x
          WHERE r.status <> 'declined'
            AND r.wallet_id IN (SELECT id FROM credit_ledger.wallets WHERE wallet LIKE 'runs.%')",
        "runs",
    )?;
    // the model's spend per run and per tree
    let mut spent_m: BTreeMap<i64, u64> = BTreeMap::new();
    for call in t.calls.values() {
        if let (Some(r), CallState::Debit | CallState::Captured) = (call.run, call.state) {
            *spent_m.entry(r).or_default() += call.cost - call.refunded;
        }
    }
    let mut tree_m: BTreeMap<i64, u64> = BTreeMap::new();
    for r in t.runs.values() {
        let own = spent_m.get(&r.id).copied().unwrap_or(0);
        let mut at = Some(r.id);
        let mut hops = 0;
        while let (Some(id), true) = (at, hops < 8) {
            *tree_m.entry(id).or_default() += own;
            at = t.runs.get(&id).and_then(|x| x.parent);
            hops += 1;
        }
    }
    let mut overspend = 0u64;
    let mut expired = 0u64;
    let mut run_notes = Problems::default();
    let mut seen = std::collections::HashSet::new();
    for r in &server {
        let id: i64 = r[0].as_deref().and_then(|v| v.parse().ok()).unwrap_or(-1);
        let status = r[1].clone().unwrap_or_default();
        let (budget, spent, spent_tree, returned, slices, held) = (
            d(&r[2])?,
            d(&r[3])?,
            d(&r[4])?,
            d(&r[5])?,
            d(&r[6])?,
            d(&r[7])?,
        );
        seen.insert(id);
        if status == "expired" {
            expired += 1;
        }
        if spent_tree > budget {
            overspend += 1;
            run_notes.add(format!(
                "OVERSPEND: run {id} spent_tree {spent_tree} > budget {budget}"
            ));
        }
        if slices != Decimal::ZERO || held != Decimal::ZERO {
            stranded += slices;
            run_notes.add(format!(
                "STRANDED: run {id} ({status}) keeps {slices} in its slices ({held} held) after the final close"
            ));
        }
        if returned != budget - spent_tree {
            run_notes.add(format!(
                "run {id} ({status}): returned {returned} != budget {budget} - spent_tree {spent_tree}"
            ));
        }
        let Some(m) = t.runs.get(&id) else {
            run_notes.add(format!(
                "run {id} ({status}, budget {budget}) on the server, not in the model"
            ));
            continue;
        };
        let ok_status = if !m.doomed {
            status == "closed"
        } else if m.closed {
            status == "closed" || status == "expired"
        } else {
            status == "expired"
        };
        if !ok_status {
            run_notes.add(format!(
                "run {id} of {} (depth {}, doomed {}, closed by its session {}): status {status}",
                m.owner, m.depth, m.doomed, m.closed
            ));
        }
        let ms = Decimal::from(spent_m.get(&id).copied().unwrap_or(0));
        let mt = tree_m.get(&id).copied().unwrap_or(0);
        if budget != Decimal::from(m.budget) || spent != ms || spent_tree != Decimal::from(mt) {
            run_notes.add(format!(
                "run {id}: server budget {budget} spent {spent} spent_tree {spent_tree}; model {} {ms} {mt}",
                m.budget
            ));
        }
        if mt > m.budget {
            overspend += 1;
            run_notes.add(format!(
                "OVERSPEND (model): run {id} spent_tree {mt} > budget {}",
                m.budget
            ));
        }
    }
    let missing: Vec<_> = t.runs.keys().filter(|id| !seen.contains(*id)).collect();
    if !missing.is_empty() {
        run_notes.add(format!(
            "{} committed runs not on the server, e.g. {:?}",
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        ));
    }
    if run_notes.count > 0 {
        notes.push(format!(
            "{} run findings; first: {:?}",
            run_notes.count, run_notes.first
        ));
    }
    let declined_db: i64 = c
        .query_one(
            "SELECT count(*) FROM credit_ledger.runs r JOIN credit_ledger.wallets w ON w.id = r.wallet_id
              WHERE r.status = 'declined' AND w.wallet LIKE 'runs.%'",
            &[],
        )
        .map_err(|e| err_text(&e))?
        .get(0);
    if declined_db as u64 != t.get("open_declined") {
        notes.push(format!(
            "declined openings: {} committed (client model), {declined_db} on the server",
            t.get("open_declined")
        ));
    }

    // every approved call of the model, as the server has it
    let ids: Vec<i64> = t.calls.keys().copied().collect();
    let rows = c
        .query(
            "SELECT id, status, coalesce(captured, cost)::text, refunded::text
               FROM credit_ledger.authorizations WHERE id = ANY($1)",
            &[&ids],
        )
        .map_err(|e| format!("calls: {}", err_text(&e)))?;
    let mut call_notes = Problems::default();
    let mut found = 0usize;
    for r in &rows {
        let id: i64 = r.get(0);
        let status: String = r.get(1);
        let amount = dec(r.get::<_, Option<&str>>(2), "amount")?;
        let refunded = dec(r.get::<_, Option<&str>>(3), "refunded")?;
        let Some(m) = t.calls.get(&id) else { continue };
        found += 1;
        let (want, amount_ok) = match m.state {
            CallState::Debit => ("approved", amount == Decimal::from(m.cost)),
            CallState::Captured => ("captured", amount == Decimal::from(m.cost)),
            CallState::Held | CallState::Released => ("released", true),
        };
        if status != want || !amount_ok || refunded != Decimal::from(m.refunded) {
            call_notes.add(format!(
                "call {id} (run {:?}): server {status} {amount} refunded {refunded}; model {:?} {} refunded {}",
                m.run, m.state, m.cost, m.refunded
            ));
        }
    }
    if found != t.calls.len() {
        call_notes.add(format!(
            "{} committed calls missing on the server",
            t.calls.len() - found
        ));
    }
    if call_notes.count > 0 {
        notes.push(format!(
            "{} call findings; first: {:?}",
            call_notes.count, call_notes.first
        ));
    }

    // after the final close: nothing in any run's slices, the wallets hold the rest
    let groups = conservation(&mut c, "after the final close", &mut notes)?;
    let bal_team = balance(&mut c, "runs.team")?;
    let bal_solo = balance(&mut c, "runs.solo")?;
    for (g, granted, net, bal) in [
        ("team", pool_grant, net_team, bal_team),
        ("solo", solo_grant, net_solo, bal_solo),
    ] {
        let Some(v) = groups.get(g) else {
            notes.push(format!("{g}: no wallets found"));
            continue;
        };
        let (held, in_runs, expired_credits) = (v[1], v[2], v[4]);
        if in_runs != Decimal::ZERO {
            notes.push(format!(
                "STRANDED: {g}: {in_runs} credits left in the slices of closed runs"
            ));
        }
        if held != Decimal::ZERO {
            notes.push(format!("{g}: {held} still held after every run closed"));
        }
        let want = Decimal::from(granted) - Decimal::from(net) - expired_credits;
        if bal != want {
            notes.push(format!(
                "CONSERVATION: {g}: credit_balance {bal} != granted {granted} - net spend {net} (client model) - expired {expired_credits}"
            ));
        }
        if bal < Decimal::ZERO {
            overspend += 1;
            notes.push(format!("OVERSPEND: {g} balance {bal}"));
        }
    }
    // no grants row below zero, none holding more than it has; no debt
    let bad_rows = q(
        &mut c,
        "WITH w AS (SELECT w.id FROM credit_ledger.wallets w LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of
                     WHERE coalesce(o.wallet, w.wallet) LIKE 'runs.%')
         SELECT count(*) FILTER (WHERE remaining < 0 OR held < 0 OR held > remaining)::text,
                (SELECT count(*) FROM credit_ledger.wallet_assets WHERE debt <> 0
                    AND wallet_id IN (SELECT id FROM w))::text
           FROM credit_ledger.grants WHERE wallet_id IN (SELECT id FROM w)",
        "grant bounds",
    )?;
    let neg_rows = d(&bad_rows[0][0])?;
    let debts = d(&bad_rows[0][1])?;
    if neg_rows != Decimal::ZERO || debts != Decimal::ZERO {
        overspend += 1;
        notes.push(format!(
            "OVERSPEND: {neg_rows} grants rows below zero or holding more than they have; {debts} wallets in debt"
        ));
    }
    // the member with a pool limit: drew at most its limit; with every run closed, its draw is
    // its net spend
    let draw = q(
        &mut c,
        "SELECT drawn_this_period::text FROM credit_ledger.pool_usage
          WHERE member = 'runs.m00' AND asset = 'credits'",
        "pool draw of runs.m00",
    )?;
    let m0_draw = draw
        .first()
        .map(|r| d(&r[0]))
        .transpose()?
        .unwrap_or_default();
    let m0_net = net_owner.get("runs.m00").copied().unwrap_or(0);
    if m0_draw > Decimal::from(m0_limit) {
        overspend += 1;
        notes.push(format!(
            "POOL LIMIT EXCEEDED: runs.m00 drew {m0_draw} with limit {m0_limit}"
        ));
    }
    if m0_draw != Decimal::from(m0_net) {
        notes.push(format!(
            "runs.m00: pool_usage drawn_this_period {m0_draw} != its net spend {m0_net} (client model) with every run closed"
        ));
    }
    let open_holds: i64 = c
        .query_one(
            "SELECT count(*) FROM credit_ledger.authorizations a
               JOIN credit_ledger.wallets w ON w.id = a.wallet_id
               LEFT JOIN credit_ledger.wallets o ON o.id = w.run_of
              WHERE a.status = 'held' AND coalesce(o.wallet, w.wallet) LIKE 'runs.%'",
            &[],
        )
        .map_err(|e| format!("open holds: {}", err_text(&e)))?
        .get(0);
    if open_holds != 0 {
        notes.push(format!("{open_holds} holds still open at the end"));
    }

    // keys: every committed one is on the server, no rolled-back one is; no rolled-back run
    key_notes(
        &mut c,
        "SELECT k FROM (SELECT idempotency_key AS k FROM credit_ledger.authorizations
                         UNION ALL SELECT close_key FROM credit_ledger.authorizations
                         UNION ALL SELECT idempotency_key FROM credit_ledger.runs
                         UNION ALL SELECT idempotency_key FROM credit_ledger.refunds) s
          WHERE k LIKE 'runs-%'",
        &t.committed_keys,
        &t.rolled_keys,
        &mut notes,
    )?;
    let names: Vec<String> = t
        .rolled_runs
        .iter()
        .map(|id| format!("~run.{id}"))
        .collect();
    let ghost = c
        .query_one(
            "SELECT (SELECT count(*) FROM credit_ledger.runs WHERE id = ANY($1))
                  + (SELECT count(*) FROM credit_ledger.wallets WHERE wallet = ANY($2))",
            &[&t.rolled_runs, &names],
        )
        .map_err(|e| format!("rolled-back runs: {}", err_text(&e)))?
        .get::<_, i64>(0);
    if ghost != 0 {
        notes.push(format!(
            "{ghost} runs rows or run wallets of rolled-back openings on the server"
        ));
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
    let dl = deadlocks.lock().unwrap();
    let w = wrong.lock().unwrap();
    if p.count > 0 {
        notes.push(format!("{} errors; first: {:?}", p.count, p.first));
    }
    // a 40P01 fails the run: every transaction here is one call (a call and the close of its
    // hold, an opening and a first call in the new run), in the documented lock order
    if dl.count > 0 {
        notes.push(format!(
            "{} transactions aborted with 40P01 (deadlock), {} of them with the credit_expire() session (backend {sweep_pid}) in the cycle; first: {:?}",
            dl.count,
            with_sweep.load(Ordering::Relaxed),
            dl.first
        ));
    }
    if w.count > 0 {
        notes.push(format!("{} wrong answers; first: {:?}", w.count, w.first));
    }
    if overspend > 0 && !notes.iter().any(|n| n.contains("OVERSPEND")) {
        notes.push(format!("{overspend} overspend findings"));
    }
    let cut_short = cut.load(Ordering::Relaxed);
    if cut_short == 0 && o.runs >= 200 && (expired == 0 || t.get("refunds_after_close") == 0) {
        notes.push(format!(
            "the scenario did not exercise what it should: {expired} runs expired, {} refunds after close",
            t.get("refunds_after_close")
        ));
    }

    let pass = notes.is_empty();
    let reasons: Vec<String> = t.reasons.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let line = format!(
        "stress scenario=runs sessions={sessions} runs={} roots={} sub_runs={} doomed={} attempts={} calls={} run_calls={} holds={} captures={} releases={} direct_calls={} declined={} calls_declined={} declines={} closed={closed_before} closes={} closes_with_children={} closes_child_alone={} final_closed={final_closed} expired={expired} transactions={} committed={} rolled_back={} failed={} slept={} refunds={} refunds_after_close={} deadlocks={} errors={} wrong={} pool_granted={pool_grant} solo_granted={solo_grant} net_team={net_team} net_solo={net_solo} team_balance={} solo_balance={} m00_draw={}/{m0_limit} overspend={overspend} stranded={} sweeps={sweeps} cut_short={cut_short} max_tx_ms={:.0} verify_rows={} elapsed_s={:.2} result={}",
        t.get("roots") + t.get("sub_runs"),
        t.get("roots"),
        t.get("sub_runs"),
        t.get("doomed"),
        t.get("attempts"),
        t.get("run_calls") + t.get("holds") + t.get("direct_calls"),
        t.get("run_calls"),
        t.get("holds"),
        t.get("captures"),
        t.get("releases"),
        t.get("direct_calls"),
        t.get("open_declined"),
        t.get("calls_declined"),
        if reasons.is_empty() { "none".to_string() } else { reasons.join(",") },
        t.get("closes"),
        t.get("closes_with_children"),
        t.get("closes_child_alone"),
        t.get("tx"),
        t.get("committed"),
        t.get("rolled_back"),
        t.get("failed_tx"),
        t.get("slept"),
        t.get("refunds"),
        t.get("refunds_after_close"),
        dl.count,
        p.count,
        w.count,
        bal_team.normalize(),
        bal_solo.normalize(),
        m0_draw.normalize(),
        stranded.normalize(),
        t.max_call_ms,
        verify.len(),
        elapsed,
        if pass { "pass" } else { "fail" }
    );
    Ok(Verdict { line, pass, notes })
}
