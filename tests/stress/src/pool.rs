//! Scenario `pool`: 16 members hammer one team pool (limits, overdraft floor), then the single-row UPDATE loop.
//! (See the crate documentation in main.rs for what it asserts.)

use super::*;

pub(crate) fn scenario_pool(base: &Config, o: &Opts, deadline: Instant) -> Result<Verdict, String> {
    let members = o.sessions;
    let limit = o.pool_limit;
    let limit_of = |i: usize| {
        if i.is_multiple_of(2) {
            limit
        } else {
            limit / 3
        }
    };
    let limits_total: u64 = (0..members).map(limit_of).sum();
    let own = o.pool_own;
    let od = o.pool_overdraft;
    let pool_grant = o.pool_grant.unwrap_or(limits_total * 3 / 4);
    let member_name = |i: usize| format!("pool.m{i:02}");
    {
        let mut c = connect(base, &o.database)?;
        // a fixed period (100 years from 2000) so that a run across a month boundary in UTC
        // cannot reset the members' pool draw halfway
        let mut sql = format!(
            "SELECT credit_wallet_create(wallet => 'pool', overdraft_limit => {od}); \
             SELECT credit_grant(wallet => 'pool', amount => {pool_grant});"
        );
        for i in 0..members {
            let m = member_name(i);
            let l = limit_of(i);
            sql.push_str(&format!(
                " SELECT credit_wallet_create(wallet => '{m}', parent => 'pool', pool_limit => {l}, \
                   period => '100 years', period_anchor => '2000-01-01 00:00:00+00'); \
                 SELECT credit_grant(wallet => '{m}', amount => {own});"
            ));
        }
        c.batch_execute(&sql)
            .map_err(|e| format!("setup team 'pool': {}", err_text(&e)))?;
    }

    #[derive(Default)]
    struct Tally {
        member_calls: u64,
        team_calls: u64,
        approved: u64,
        declined: u64,
        team_approved: u64,
        spent: Decimal,
        reasons: BTreeMap<String, u64>,
        bad_cost: u64,
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
        let calls = o.pool_calls;
        let member = member_name(i);
        let mut rng = o
            .seed
            .wrapping_mul(0x2545_F491_4F6C_DD1D)
            .wrapping_add(i as u64 * 104_729 + 7)
            | 1;
        handles.push(thread::spawn(move || {
            let sql = auth_sql(
                "credit_authorize(wallet => $1, action => $2, quantity => ($3::text)::numeric)",
            );
            let st = match c.prepare(&sql) {
                Ok(s) => s,
                Err(e) => {
                    problems
                        .lock()
                        .unwrap()
                        .add(format!("session {i}: prepare: {}", err_text(&e)));
                    barrier.wait();
                    return;
                }
            };
            let mut t = Tally::default();
            barrier.wait();
            for n in 0..calls {
                if Instant::now() > deadline {
                    problems
                        .lock()
                        .unwrap()
                        .add(format!("session {i}: deadline reached after {n} calls"));
                    break;
                }
                let as_team = xorshift(&mut rng).is_multiple_of(10);
                let q = 1 + xorshift(&mut rng) % 3;
                let wallet = if as_team { "pool" } else { member.as_str() };
                if as_team {
                    t.team_calls += 1;
                } else {
                    t.member_calls += 1;
                }
                match run_auth(&mut c, &st, &[&wallet, &"stress.call", &q.to_string()]) {
                    Ok(a) if a.approved => {
                        t.approved += 1;
                        if as_team {
                            t.team_approved += 1;
                        }
                        match dec(a.cost.as_deref(), "cost") {
                            Ok(cost) => {
                                if cost != Decimal::from(q) {
                                    t.bad_cost += 1;
                                }
                                t.spent += cost;
                            }
                            Err(e) => problems.lock().unwrap().add(format!("session {i}: {e}")),
                        }
                    }
                    Ok(a) => {
                        t.declined += 1;
                        let who = if as_team { "team" } else { "member" };
                        *t.reasons
                            .entry(format!(
                                "{who}:{}",
                                a.reason.unwrap_or_else(|| "<null>".into())
                            ))
                            .or_default() += 1;
                    }
                    Err(e) => problems.lock().unwrap().add(format!(
                        "session {i}: credit_authorize({wallet}): {}",
                        err_text(&e)
                    )),
                }
            }
            let mut g = tally.lock().unwrap();
            g.member_calls += t.member_calls;
            g.team_calls += t.team_calls;
            g.approved += t.approved;
            g.declined += t.declined;
            g.team_approved += t.team_approved;
            g.spent += t.spent;
            g.bad_cost += t.bad_cost;
            for (k, v) in t.reasons {
                *g.reasons.entry(k).or_default() += v;
            }
        }));
    }
    for h in handles {
        h.join()
            .map_err(|_| "a session thread panicked".to_string())?;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut c = connect(base, &o.database)?;
    let mut notes = Vec::new();
    let floor = -Decimal::from(od);

    // per member: pool draw from the journal (entries on the pool's grants attributed to the
    // member), from the authorizations' pool part, and from the pool_usage report
    let draws = text_rows(
        &mut c,
        "SELECT m.wallet,
                coalesce((SELECT -sum(j.amount) + sum(j.held) FROM credit_ledger.journal j
                           WHERE j.wallet_id = m.parent_id AND j.member_id = m.id
                             AND j.asset = 'credits'), 0)::text,
                coalesce((SELECT sum(a.pool_amount) FROM credit_ledger.authorizations a
                           WHERE a.wallet_id = m.id AND a.status = 'approved'), 0)::text,
                (SELECT u.drawn_this_period::text FROM credit_ledger.pool_usage u
                  WHERE u.member = m.wallet AND u.asset = 'credits'),
                m.pool_limit::text
           FROM credit_ledger.wallets m
          WHERE m.parent_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'pool')
          ORDER BY m.wallet",
        "member draws",
    )?;
    if draws.len() != members {
        notes.push(format!("{} members found, {members} expected", draws.len()));
    }
    let mut max_draw = Decimal::ZERO;
    let mut at_limit = 0;
    let mut member_draws = Decimal::ZERO;
    for (i, r) in draws.iter().enumerate() {
        let name = r[0].clone().unwrap_or_default();
        let journal = text_dec(&r[1], "journal draw")?;
        let auths = text_dec(&r[2], "pool_amount")?;
        let report = r[3].as_ref().map(|s| Decimal::from_str(s)).transpose();
        let lim = text_dec(&r[4], "pool_limit")?;
        if journal > lim || lim != Decimal::from(limit_of(i)) || name != member_name(i) {
            notes.push(format!(
                "POOL LIMIT EXCEEDED: {name} drew {journal} with limit {lim}"
            ));
        }
        if journal != auths {
            notes.push(format!(
                "{name}: journal draw {journal} != authorizations' pool part {auths}"
            ));
        }
        match report {
            Ok(Some(v)) if v == journal => {}
            other => notes.push(format!(
                "{name}: pool_usage drawn_this_period {other:?} != journal draw {journal}"
            )),
        }
        max_draw = max_draw.max(journal);
        if journal == lim {
            at_limit += 1;
        }
        member_draws += journal;
    }

    // the pool's balance after every journal entry, in id order. Entries of one wallet are
    // written under that wallet's row lock, held to commit, so id order is commit order; within
    // one call the entries only go down (a debit) or a grant comes before its settlement
    let run = text_rows(
        &mut c,
        "SELECT min(run)::text, (array_agg(run ORDER BY id DESC))[1]::text, count(*)::text,
                (SELECT credit_balance('pool'))::text,
                (SELECT coalesce(max(s.debt), 0) FROM credit_ledger.wallet_assets s
                  WHERE s.wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'pool'))::text
           FROM (SELECT j.id, sum(j.amount - j.held) OVER (ORDER BY j.id) AS run
                   FROM credit_ledger.journal j
                  WHERE j.wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'pool')
                    AND j.asset = 'credits') s",
        "pool running balance",
    )?;
    let r = run.first().ok_or("pool running balance: no row")?;
    let min_run = text_dec(&r[0], "min running balance")?;
    let last_run = text_dec(&r[1], "last running balance")?;
    let pool_entries = r[2].clone().unwrap_or_default();
    let pool_bal = text_dec(&r[3], "credit_balance('pool')")?;
    let pool_debt = text_dec(&r[4], "pool debt")?;
    if min_run < floor {
        notes.push(format!(
            "POOL BELOW FLOOR: the running balance reached {min_run} < -{od}"
        ));
    }
    if pool_bal < floor || pool_debt > Decimal::from(od) {
        notes.push(format!(
            "POOL BELOW FLOOR: final balance {pool_bal}, debt {pool_debt}, overdraft limit {od}"
        ));
    }
    if last_run != pool_bal {
        notes.push(format!(
            "pool journal sums to {last_run} but credit_balance('pool') = {pool_bal}"
        ));
    }

    // members have no overdraft: no member balance below 0
    let mb = text_rows(
        &mut c,
        "SELECT min(credit_balance(w.wallet))::text, sum(credit_balance(w.wallet))::text
           FROM credit_ledger.wallets w
          WHERE w.parent_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'pool')",
        "member balances",
    )?;
    let min_member = text_dec(&mb[0][0], "min member balance")?;
    let members_left = text_dec(&mb[0][1], "member balances")?;
    if min_member < Decimal::ZERO {
        notes.push(format!("a member balance is {min_member} < 0"));
    }

    // conservation over the team: granted = spent + remaining - debt
    let cons = text_rows(
        &mut c,
        "WITH team AS (SELECT id FROM credit_ledger.wallets
                        WHERE wallet = 'pool'
                           OR parent_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'pool'))
         SELECT (SELECT sum(g.amount) FROM credit_ledger.grants g WHERE g.wallet_id IN (SELECT id FROM team))::text,
                (SELECT sum(g.remaining) FROM credit_ledger.grants g WHERE g.wallet_id IN (SELECT id FROM team))::text,
                (SELECT coalesce(sum(a.cost), 0) FROM credit_ledger.authorizations a
                  WHERE a.wallet_id IN (SELECT id FROM team) AND a.status = 'approved')::text,
                (SELECT coalesce(sum(s.debt), 0) FROM credit_ledger.wallet_assets s
                  WHERE s.wallet_id IN (SELECT id FROM team))::text",
        "conservation",
    )?;
    let granted = text_dec(&cons[0][0], "granted")?;
    let remaining = text_dec(&cons[0][1], "remaining")?;
    let spent_db = text_dec(&cons[0][2], "spent")?;
    let debt = text_dec(&cons[0][3], "debt")?;
    let expect_granted = Decimal::from(pool_grant + members as u64 * own);
    if granted != expect_granted {
        notes.push(format!("granted {granted} != {expect_granted}"));
    }
    if granted != spent_db + remaining - debt {
        notes.push(format!(
            "CONSERVATION: granted {granted} != spent {spent_db} + remaining {remaining} - debt {debt}"
        ));
    }
    if granted - spent_db != pool_bal + members_left {
        notes.push(format!(
            "granted {granted} - spent {spent_db} != Σ balances {}",
            pool_bal + members_left
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
    {
        let t = tally.lock().unwrap();
        let p = problems.lock().unwrap();
        if p.count > 0 {
            notes.push(format!("{} errors; first: {:?}", p.count, p.first));
        }
        if t.spent != spent_db || t.bad_cost > 0 {
            notes.push(format!(
                "client-side spent {} != ledger {spent_db} ({} approvals with a wrong cost)",
                t.spent, t.bad_cost
            ));
        }
        let odd: Vec<_> = t
            .reasons
            .keys()
            .filter(|r| {
                ![
                    "member:insufficient_credits",
                    "member:pool_limit_reached",
                    "team:insufficient_credits",
                ]
                .contains(&r.as_str())
            })
            .collect();
        if !odd.is_empty() {
            notes.push(format!("unexpected decline reasons: {:?}", t.reasons));
        }
    }

    // the plain single-row UPDATE loop on the same cluster: same sessions, same count
    let loop_calls = o.pool_calls;
    c.batch_execute(
        "DROP TABLE IF EXISTS t; CREATE TABLE t (id int PRIMARY KEY, v bigint NOT NULL); \
         INSERT INTO t VALUES (1, 0)",
    )
    .map_err(|e| format!("create table t: {}", err_text(&e)))?;
    let loop_problems = Arc::new(Mutex::new(Problems::default()));
    let barrier = Arc::new(Barrier::new(o.sessions));
    let mut clients = Vec::new();
    for _ in 0..o.sessions {
        clients.push(connect(base, &o.database)?);
    }
    let loop_started = Instant::now();
    let mut handles = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        let (problems, barrier) = (loop_problems.clone(), barrier.clone());
        handles.push(thread::spawn(move || {
            let st = match c.prepare("UPDATE t SET v = v - 1 WHERE id = 1") {
                Ok(s) => s,
                Err(e) => {
                    problems
                        .lock()
                        .unwrap()
                        .add(format!("loop {i}: prepare: {}", err_text(&e)));
                    barrier.wait();
                    return;
                }
            };
            barrier.wait();
            for n in 0..loop_calls {
                if Instant::now() > deadline {
                    problems
                        .lock()
                        .unwrap()
                        .add(format!("loop {i}: deadline reached after {n} updates"));
                    break;
                }
                if let Err(e) = c.execute(&st, &[]) {
                    problems
                        .lock()
                        .unwrap()
                        .add(format!("loop {i}: UPDATE: {}", err_text(&e)));
                }
            }
        }));
    }
    for h in handles {
        h.join()
            .map_err(|_| "an update-loop thread panicked".to_string())?;
    }
    let loop_elapsed = loop_started.elapsed().as_secs_f64();
    let v: i64 = c
        .query_one("SELECT v FROM t WHERE id = 1", &[])
        .map_err(|e| format!("read t: {}", err_text(&e)))?
        .get(0);
    let _ = c.batch_execute("DROP TABLE IF EXISTS t");
    let updates = (o.sessions * loop_calls) as i64;
    {
        let lp = loop_problems.lock().unwrap();
        if lp.count > 0 {
            notes.push(format!(
                "update loop: {} errors; first: {:?}",
                lp.count, lp.first
            ));
        } else if v != -updates {
            notes.push(format!("update loop: v = {v}, expected {}", -updates));
        }
    }

    let t = tally.lock().unwrap();
    let p = problems.lock().unwrap();
    let calls = t.member_calls + t.team_calls;
    let pool_rate = calls as f64 / elapsed.max(1e-9);
    let loop_rate = updates as f64 / loop_elapsed.max(1e-9);
    let pass = notes.is_empty();
    let limit_odd = limit_of(1);
    let reasons: Vec<String> = t.reasons.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let line = format!(
        "stress scenario=pool sessions={} members={members} calls={calls} member_calls={} team_calls={} approved={} declined={} declines={} errors={} pool_granted={pool_grant} own_each={own} pool_limits={limit}/{limit_odd} overdraft_limit={od} member_pool_draws={} max_member_draw={} members_at_limit={at_limit} pool_balance={} pool_min_running={} pool_entries={pool_entries} granted={} spent={} remaining={} debt={} verify_rows={} elapsed_s={:.2} pool_calls_per_s={:.0} update_loop_updates={updates} update_loop_s={:.2} update_loop_per_s={:.0} ratio={:.2} result={}",
        o.sessions,
        t.member_calls,
        t.team_calls,
        t.approved,
        t.declined,
        if reasons.is_empty() { "none".to_string() } else { reasons.join(",") },
        p.count,
        member_draws.normalize(),
        max_draw.normalize(),
        pool_bal.normalize(),
        min_run.normalize(),
        granted.normalize(),
        spent_db.normalize(),
        remaining.normalize(),
        debt.normalize(),
        verify.len(),
        elapsed,
        pool_rate,
        loop_elapsed,
        loop_rate,
        pool_rate / loop_rate.max(1e-9),
        if pass { "pass" } else { "fail" }
    );
    Ok(Verdict { line, pass, notes })
}
