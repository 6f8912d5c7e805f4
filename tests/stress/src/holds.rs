//! Scenario `holds`: hold → capture (less or more) or release, with short TTLs swept by `credit_expire()`.
//! (See the crate documentation in main.rs for what it asserts.)

use super::*;

pub(crate) fn scenario_holds(
    base: &Config,
    o: &Opts,
    deadline: Instant,
) -> Result<Verdict, String> {
    let grant = o.grant2;
    {
        let mut c = connect(base, &o.database)?;
        c.batch_execute(&format!(
            "SELECT credit_wallet_create(wallet => 'stress2'); \
             SELECT credit_grant(wallet => 'stress2', amount => {grant})"
        ))
        .map_err(|e| format!("setup wallet 'stress2': {}", err_text(&e)))?;
    }

    #[derive(Default)]
    struct Tally {
        holds: u64,
        hold_declined: u64,
        captured_n: u64,
        captured: Decimal,
        over_captures: u64,
        shortfalls: u64,
        capture_declined: u64,
        capture_errors: BTreeMap<String, u64>,
        released: u64,
        expired_first: u64,
        bad_cost: u64,
        expire_calls: u64,
        samples: BTreeMap<String, String>,
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let problems = Arc::new(Mutex::new(Problems::default()));
    let ambiguous = Arc::new(Mutex::new(Problems::default()));
    let barrier = Arc::new(Barrier::new(o.sessions + 1));
    let done = Arc::new(AtomicBool::new(false));

    let mut clients = Vec::new();
    for _ in 0..o.sessions {
        clients.push(connect(base, &o.database)?);
    }
    let mut expirer = connect(base, &o.database)?;

    // the expiry session: credit_expire() in a loop until the workers are done
    let exp_handle = {
        let (done, barrier, problems, tally) = (
            done.clone(),
            barrier.clone(),
            problems.clone(),
            tally.clone(),
        );
        thread::spawn(move || {
            barrier.wait();
            let mut n = 0u64;
            while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Err(e) = expirer.query("SELECT * FROM credit_expire()", &[]) {
                    problems
                        .lock()
                        .unwrap()
                        .add(format!("expirer: credit_expire(): {}", err_text(&e)));
                }
                n += 1;
                thread::sleep(Duration::from_millis(10));
            }
            tally.lock().unwrap().expire_calls = n;
        })
    };

    let started = Instant::now();
    let mut handles = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        let (tally, problems, ambiguous, barrier) = (
            tally.clone(),
            problems.clone(),
            ambiguous.clone(),
            barrier.clone(),
        );
        let iterations = o.holds;
        let mut rng = o
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(i as u64 * 7919 + 1)
            | 1;
        handles.push(thread::spawn(move || {
            let prep = |c: &mut Client, call: &str| c.prepare(&auth_sql(call));
            let sts = (|| -> Result<_, postgres::Error> {
                Ok((
                    prep(&mut c, "credit_hold(wallet => $1, action => $2, quantity => ($3::text)::numeric, ttl => ($4::text)::interval)")?,
                    prep(&mut c, "credit_capture(authorization_id => ($1::text)::bigint, quantity => ($2::text)::numeric)")?,
                    prep(&mut c, "credit_release(authorization_id => ($1::text)::bigint)")?,
                ))
            })();
            let (st_hold, st_capture, st_release) = match sts {
                Ok(s) => s,
                Err(e) => {
                    problems.lock().unwrap().add(format!("session {i}: prepare: {}", err_text(&e)));
                    barrier.wait();
                    return;
                }
            };
            let mut t = Tally::default();
            barrier.wait();
            for n in 0..iterations {
                if Instant::now() > deadline {
                    problems.lock().unwrap().add(format!("session {i}: deadline reached after {n} holds"));
                    break;
                }
                let q = 1 + xorshift(&mut rng) % 5;
                // one hold in ten is short-lived and finished late: races credit_expire()
                let short = xorshift(&mut rng).is_multiple_of(10);
                let ttl = if short { "100 milliseconds" } else { "10 minutes" };
                let hold = match run_auth(&mut c, &st_hold, &[&"stress2", &"stress.call", &q.to_string(), &ttl]) {
                    Ok(h) => h,
                    Err(e) => {
                        problems.lock().unwrap().add(format!("session {i}: credit_hold: {}", err_text(&e)));
                        continue;
                    }
                };
                if !hold.approved {
                    t.hold_declined += 1;
                    continue;
                }
                t.holds += 1;
                let Some(id) = hold.id else {
                    problems.lock().unwrap().add(format!("session {i}: approved hold without authorization_id: {hold:?}"));
                    continue;
                };
                let id_s = id.to_string();
                if short {
                    thread::sleep(Duration::from_millis(50 + xorshift(&mut rng) % 100));
                }
                let choice = xorshift(&mut rng) % 100;
                if choice < 30 {
                    // release
                    match run_auth(&mut c, &st_release, &[&id_s]) {
                        Ok(_) => t.released += 1,
                        Err(e) if short => {
                            t.expired_first += 1;
                            let k = format!("release {}", sqlstate(&e));
                            t.samples.entry(k.clone()).or_insert_with(|| err_text(&e));
                            *t.capture_errors.entry(k).or_default() += 1;
                        }
                        Err(e) => problems.lock().unwrap().add(format!("session {i}: credit_release({id}): {}", err_text(&e))),
                    }
                    continue;
                }
                // capture less/equal (45%) or more (25%) than held
                let q2 = if choice < 75 { 1 + xorshift(&mut rng) % q } else { q + 1 + xorshift(&mut rng) % 3 };
                if q2 > q {
                    t.over_captures += 1;
                }
                let outcome = run_auth(&mut c, &st_capture, &[&id_s, &q2.to_string()]);
                match outcome {
                    Ok(a) if a.approved => match dec(a.cost.as_deref(), "capture cost") {
                        Ok(cost) => {
                            // an over-capture the wallet cannot fully pay is captured at what
                            // it could pay (at least the held amount), flagged capture_shortfall
                            let shortfall = a.reason.as_deref() == Some("capture_shortfall");
                            if shortfall {
                                t.shortfalls += 1;
                            }
                            let ok = if shortfall {
                                q2 > q && cost >= Decimal::from(q) && cost < Decimal::from(q2)
                            } else {
                                cost == Decimal::from(q2)
                            };
                            if !ok {
                                t.bad_cost += 1;
                                problems.lock().unwrap().add(format!(
                                    "session {i}: capture of {q2} (held {q}) on {id} approved with cost {cost}: {a:?}"
                                ));
                            }
                            t.captured_n += 1;
                            t.captured += cost;
                        }
                        Err(e) => problems.lock().unwrap().add(format!("session {i}: {e}")),
                    },
                    other => {
                        // declined (approved = false) or an error: the hold must still be open
                        // (then release gives it back) or have expired (short TTL only)
                        let what = match &other {
                            Ok(a) => {
                                t.capture_declined += 1;
                                format!("declined ({})", a.reason.clone().unwrap_or_default())
                            }
                            Err(e) => {
                                let k = format!("capture {}", sqlstate(e));
                                t.samples.entry(k.clone()).or_insert_with(|| err_text(e));
                                *t.capture_errors.entry(k).or_default() += 1;
                                format!("error {}", err_text(e))
                            }
                        };
                        match run_auth(&mut c, &st_release, &[&id_s]) {
                            Ok(_) => t.released += 1,
                            // a short hold that credit_expire() took first
                            Err(_) if short => t.expired_first += 1,
                            Err(e) => ambiguous.lock().unwrap().add(format!(
                                "session {i}: capture {q2} of hold {id} (held {q}, ttl {ttl}) {what}; then release: {}",
                                err_text(&e)
                            )),
                        }
                    }
                }
            }
            let mut g = tally.lock().unwrap();
            g.holds += t.holds;
            g.hold_declined += t.hold_declined;
            g.captured_n += t.captured_n;
            g.captured += t.captured;
            g.over_captures += t.over_captures;
            g.shortfalls += t.shortfalls;
            g.capture_declined += t.capture_declined;
            g.released += t.released;
            g.expired_first += t.expired_first;
            g.bad_cost += t.bad_cost;
            for (k, v) in t.capture_errors {
                *g.capture_errors.entry(k).or_default() += v;
            }
            for (k, v) in t.samples {
                g.samples.entry(k).or_insert(v);
            }
        }));
    }
    let mut panicked = false;
    for h in handles {
        panicked |= h.join().is_err();
    }
    done.store(true, Ordering::Relaxed);
    panicked |= exp_handle.join().is_err();
    if panicked {
        return Err("a session thread panicked".into());
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut c = connect(base, &o.database)?;
    // a last sweep, so that a short hold nobody finished is expired too
    c.query("SELECT * FROM credit_expire()", &[])
        .map_err(|e| format!("final credit_expire(): {}", err_text(&e)))?;
    let bal = balance(&mut c, "stress2")?;
    let verify = verify_rows(&mut c)?;
    let t = tally.lock().unwrap();
    let p = problems.lock().unwrap();
    let a = ambiguous.lock().unwrap();
    let grant_d = Decimal::from(grant);

    let mut notes = Vec::new();
    if p.count > 0 {
        notes.push(format!("{} errors; first: {:?}", p.count, p.first));
    }
    if a.count > 0 {
        notes.push(format!(
            "{} ambiguous outcomes; first: {:?}",
            a.count, a.first
        ));
    }
    if t.captured > grant_d {
        notes.push(format!(
            "OVERSPEND: captured {} > granted {grant}",
            t.captured
        ));
    }
    if a.count == 0 && bal != grant_d - t.captured {
        notes.push(format!(
            "balance {bal} != granted {grant} - captured {}",
            t.captured
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
    for (k, v) in &t.samples {
        eprintln!("  holds: info: expected error {k}, e.g. {v}");
    }
    let errs: Vec<String> = t
        .capture_errors
        .iter()
        .map(|(k, v)| format!("{}:{v}", k.replace(' ', "_")))
        .collect();
    let line = format!(
        "stress scenario=holds sessions={} iterations={} granted={} holds={} hold_declined={} captures={} over_captures={} shortfalls={} capture_declined={} released={} expired_first={} captured={} balance={} errors={} ambiguous={} expire_calls={} expected_errors={} verify_rows={} elapsed_s={:.2} result={}",
        o.sessions,
        o.sessions * o.holds,
        grant,
        t.holds,
        t.hold_declined,
        t.captured_n,
        t.over_captures,
        t.shortfalls,
        t.capture_declined,
        t.released,
        t.expired_first,
        t.captured.normalize(),
        bal.normalize(),
        p.count,
        a.count,
        t.expire_calls,
        if errs.is_empty() { "none".to_string() } else { errs.join(",") },
        verify.len(),
        elapsed,
        if pass { "pass" } else { "fail" }
    );
    Ok(Verdict { line, pass, notes })
}
