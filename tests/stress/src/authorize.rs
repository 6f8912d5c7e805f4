//! Scenario `authorize`: many sessions spend one wallet; exactly the grant is approved.
//! (See the crate documentation in main.rs for what it asserts.)

use super::*;

pub(crate) fn scenario_authorize(
    base: &Config,
    o: &Opts,
    deadline: Instant,
) -> Result<Verdict, String> {
    let attempts = (o.sessions * o.calls) as u64;
    let grant = o.grant.unwrap_or(attempts / 2);
    {
        let mut c = connect(base, &o.database)?;
        c.batch_execute(&format!(
            "SELECT credit_wallet_create(wallet => 'stress'); \
             SELECT credit_grant(wallet => 'stress', amount => {grant})"
        ))
        .map_err(|e| format!("setup wallet 'stress': {}", err_text(&e)))?;
    }

    #[derive(Default)]
    struct Tally {
        approved: u64,
        declined: u64,
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
        let calls = o.calls;
        handles.push(thread::spawn(move || {
            let sql = auth_sql("credit_authorize(wallet => $1, action => $2)");
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
            let one = Decimal::ONE;
            let mut local = Tally::default();
            barrier.wait();
            for n in 0..calls {
                if Instant::now() > deadline {
                    problems
                        .lock()
                        .unwrap()
                        .add(format!("session {i}: deadline reached after {n} calls"));
                    break;
                }
                match run_auth(&mut c, &st, &[&"stress", &"stress.call"]) {
                    Ok(a) if a.approved => {
                        local.approved += 1;
                        match dec(a.cost.as_deref(), "cost") {
                            Ok(cost) => {
                                if cost != one {
                                    local.bad_cost += 1;
                                }
                                local.spent += cost;
                            }
                            Err(e) => problems.lock().unwrap().add(format!("session {i}: {e}")),
                        }
                    }
                    Ok(a) => {
                        local.declined += 1;
                        *local
                            .reasons
                            .entry(a.reason.unwrap_or_else(|| "<null>".into()))
                            .or_default() += 1;
                    }
                    Err(e) => problems
                        .lock()
                        .unwrap()
                        .add(format!("session {i}: credit_authorize: {}", err_text(&e))),
                }
            }
            let mut t = tally.lock().unwrap();
            t.approved += local.approved;
            t.declined += local.declined;
            t.spent += local.spent;
            t.bad_cost += local.bad_cost;
            for (k, v) in local.reasons {
                *t.reasons.entry(k).or_default() += v;
            }
        }));
    }
    for h in handles {
        h.join()
            .map_err(|_| "a session thread panicked".to_string())?;
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut c = connect(base, &o.database)?;
    let bal = balance(&mut c, "stress")?;
    let verify = verify_rows(&mut c)?;
    let t = tally.lock().unwrap();
    let p = problems.lock().unwrap();
    let grant_d = Decimal::from(grant);
    let expect_approved = grant.min(attempts);

    let mut notes = Vec::new();
    if p.count > 0 {
        notes.push(format!("{} errors; first: {:?}", p.count, p.first));
    }
    if t.approved != expect_approved {
        notes.push(format!(
            "approved {} != {} (granted {grant}, 1 credit per call, {attempts} attempts)",
            t.approved, expect_approved
        ));
    }
    if t.spent > grant_d {
        notes.push(format!("OVERSPEND: spent {} > granted {grant}", t.spent));
    }
    if t.spent != Decimal::from(t.approved) || t.bad_cost > 0 {
        notes.push(format!(
            "spent {} != approved {} × 1 ({} approvals with cost != 1)",
            t.spent, t.approved, t.bad_cost
        ));
    }
    if bal != grant_d - t.spent {
        notes.push(format!(
            "balance {bal} != granted {grant} - spent {}",
            t.spent
        ));
    }
    let odd: Vec<_> = t
        .reasons
        .keys()
        .filter(|r| r.as_str() != "insufficient_credits")
        .collect();
    if !odd.is_empty() {
        notes.push(format!("unexpected decline reasons: {:?}", t.reasons));
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
        "stress scenario=authorize sessions={} calls={} granted={} approved={} declined={} errors={} spent={} balance={} verify_rows={} elapsed_s={:.2} calls_per_s={:.0} result={}",
        o.sessions,
        attempts,
        grant,
        t.approved,
        t.declined,
        p.count,
        t.spent.normalize(),
        bal.normalize(),
        verify.len(),
        elapsed,
        (t.approved + t.declined) as f64 / elapsed.max(1e-9),
        if pass { "pass" } else { "fail" }
    );
    Ok(Verdict { line, pass, notes })
}
