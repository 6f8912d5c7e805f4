//! Concurrency stress test for the credit_ledger extension.
//!
//! Two scenarios against one throwaway database (dropped and re-created at start):
//!
//! * `authorize` — `--sessions` sessions × `--calls` calls of
//!   `credit_authorize(wallet => 'stress', action => 'stress.call')` (1 credit each) on one wallet
//!   granted half of what is attempted. Asserts: no call errors; every decline says
//!   `insufficient_credits`; exactly `grant` calls approved (no overspend, no lost credit);
//!   credits spent = Σ approved cost = approved × 1; final `credit_balance` = grant − spent;
//!   `credit_verify()` empty.
//! * `holds` — `--sessions` sessions × `--holds` iterations of `credit_hold` → `credit_capture`
//!   (less or more than held) or `credit_release`; some holds get a short TTL and are finished
//!   late, racing one extra session that runs `credit_expire()` in a loop. Asserts: no unexpected
//!   error; every outcome is unambiguous; final balance = grant − Σ captured; `credit_verify()`
//!   empty.
//!
//! Each scenario prints one machine-readable line
//! `stress scenario=<name> key=value ... result=pass|fail`.
//! Connection: PGHOST (a socket directory, or a loopback address), PGPORT, PGUSER; nothing else
//! is ever contacted. Bounded: fixed call counts, a per-statement timeout and an overall deadline.
//! Exit status: 0 all pass, 1 an invariant was violated, 2 the test could not run.

use postgres::{Client, Config, NoTls, Statement};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: credit_ledger_stress [options]
  --scenario all|authorize|holds   (default all)
  --sessions N        concurrent sessions (default 16)
  --calls N           credit_authorize calls per session (default 500)
  --grant N           credits granted to 'stress' (default sessions*calls/2)
  --holds N           hold iterations per session (default 200)
  --grant2 N          credits granted to 'stress2' (default 5000)
  --seed N            random seed of the holds scenario (default 42)
  --database NAME     database to (re)create (default credit_ledger_stress)
  --keep              keep the database afterwards
  --timeout-secs N    overall deadline (default 600)
Connection from PGHOST / PGPORT / PGUSER (Unix socket or loopback only).";

#[derive(Clone, Debug)]
struct Opts {
    scenario: String,
    sessions: usize,
    calls: usize,
    grant: Option<u64>,
    holds: usize,
    grant2: u64,
    seed: u64,
    database: String,
    keep: bool,
    timeout: Duration,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        scenario: "all".into(),
        sessions: 16,
        calls: 500,
        grant: None,
        holds: 200,
        grant2: 5000,
        seed: 42,
        database: "credit_ledger_stress".into(),
        keep: false,
        timeout: Duration::from_secs(600),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        fn num<T: FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        }
        match a.as_str() {
            "--scenario" => o.scenario = val("--scenario")?,
            "--sessions" => o.sessions = num("--sessions", val("--sessions")?)?,
            "--calls" => o.calls = num("--calls", val("--calls")?)?,
            "--grant" => o.grant = Some(num("--grant", val("--grant")?)?),
            "--holds" => o.holds = num("--holds", val("--holds")?)?,
            "--grant2" => o.grant2 = num("--grant2", val("--grant2")?)?,
            "--seed" => o.seed = num("--seed", val("--seed")?)?,
            "--database" => o.database = val("--database")?,
            "--keep" => o.keep = true,
            "--timeout-secs" => {
                o.timeout = Duration::from_secs(num("--timeout-secs", val("--timeout-secs")?)?)
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if !["all", "authorize", "holds"].contains(&o.scenario.as_str()) {
        return Err(format!("bad --scenario {}", o.scenario));
    }
    if o.sessions == 0 || o.sessions > 64 {
        return Err("--sessions must be 1..=64".into());
    }
    if !o
        .database
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err("--database: letters, digits and _ only".into());
    }
    Ok(o)
}

/// Connection settings from the environment; refuses anything but a socket dir or loopback.
fn base_config() -> Result<Config, String> {
    let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
    let loopback =
        host.starts_with('/') || host == "localhost" || host.starts_with("127.") || host == "::1";
    if !loopback {
        return Err(format!(
            "PGHOST={host}: only a Unix socket directory or loopback is allowed"
        ));
    }
    let port: u16 = std::env::var("PGPORT")
        .unwrap_or_else(|_| "5432".into())
        .parse()
        .map_err(|_| "PGPORT is not a port number".to_string())?;
    let user = std::env::var("PGUSER").unwrap_or_else(|_| "postgres".into());
    let mut c = Config::new();
    c.host(&host)
        .port(port)
        .user(&user)
        .application_name("credit_ledger_stress")
        .connect_timeout(Duration::from_secs(10));
    Ok(c)
}

fn connect(base: &Config, db: &str) -> Result<Client, String> {
    let mut c = base.clone();
    c.dbname(db);
    let mut client = c
        .connect(NoTls)
        .map_err(|e| format!("connect to {db}: {}", err_text(&e)))?;
    client
        .batch_execute("SET statement_timeout = '60s'; SET lock_timeout = '30s'")
        .map_err(|e| err_text(&e))?;
    Ok(client)
}

/// "SQLSTATE: message" for a database error, the plain text otherwise.
fn err_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.code().code(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" (detail: {d})"));
            }
            s
        }
        None => e.to_string(),
    }
}

fn sqlstate(e: &postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| "-----".into())
}

fn dec(s: Option<&str>, what: &str) -> Result<Decimal, String> {
    let s = s.ok_or_else(|| format!("{what} is NULL"))?;
    Decimal::from_str(s).map_err(|e| format!("{what} = {s:?}: {e}"))
}

/// One row of credit_authorization, read by column name through to_jsonb so that it works
/// whatever the column order, composite or RETURNS TABLE; numerics come as exact text.
#[derive(Debug, Default, Clone)]
struct Auth {
    id: Option<i64>,
    approved: bool,
    cost: Option<String>,
    reason: Option<String>,
    status: Option<String>,
}

fn auth_sql(call: &str) -> String {
    format!(
        "SELECT j->>'approved', j->>'cost', j->>'reason', \
                coalesce(j->>'authorization_id', j->>'id'), j->>'status' \
         FROM (SELECT to_jsonb(r) AS j FROM {call} r) s"
    )
}

fn run_auth(
    c: &mut Client,
    st: &Statement,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Auth, postgres::Error> {
    let rows = c.query(st, params)?;
    let mut a = Auth::default();
    if let Some(r) = rows.first() {
        let approved: Option<String> = r.get(0);
        a.approved = approved.as_deref() == Some("true");
        a.cost = r.get(1);
        a.reason = r.get(2);
        let id: Option<String> = r.get(3);
        a.id = id.and_then(|s| s.parse().ok());
        a.status = r.get(4);
    }
    Ok(a)
}

/// Shared failure bookkeeping: counts and the first few messages.
#[derive(Default)]
struct Problems {
    count: usize,
    first: Vec<String>,
}

impl Problems {
    fn add(&mut self, msg: String) {
        self.count += 1;
        if self.first.len() < 20 {
            self.first.push(msg);
        }
    }
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

fn setup(base: &Config, o: &Opts) -> Result<(), String> {
    let mut admin = connect(base, "postgres")?;
    // two statements: DROP/CREATE DATABASE cannot run in the implicit transaction of a batch
    for sql in [
        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", o.database),
        format!("CREATE DATABASE {} TEMPLATE template0", o.database),
    ] {
        admin
            .batch_execute(&sql)
            .map_err(|e| format!("{sql}: {}", err_text(&e)))?;
    }
    let mut c = connect(base, &o.database)?;
    c.batch_execute("CREATE EXTENSION credit_ledger")
        .map_err(|e| format!("CREATE EXTENSION credit_ledger: {}", err_text(&e)))?;
    c.batch_execute("SELECT credit_rate_set(action => 'stress.call', credits => 1)")
        .map_err(|e| format!("credit_rate_set: {}", err_text(&e)))?;
    Ok(())
}

fn teardown(base: &Config, o: &Opts) {
    if o.keep {
        return;
    }
    if let Ok(mut admin) = connect(base, "postgres") {
        let _ = admin.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            o.database
        ));
    }
}

/// credit_verify() rows, as text lines.
fn verify_rows(c: &mut Client) -> Result<Vec<String>, String> {
    let rows = c
        .query("SELECT to_jsonb(v)::text FROM credit_verify() v", &[])
        .map_err(|e| format!("credit_verify(): {}", err_text(&e)))?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

fn balance(c: &mut Client, wallet: &str) -> Result<Decimal, String> {
    let row = c
        .query_one("SELECT credit_balance($1)::text", &[&wallet])
        .map_err(|e| format!("credit_balance: {}", err_text(&e)))?;
    dec(row.get::<_, Option<&str>>(0), "credit_balance")
}

struct Verdict {
    line: String,
    pass: bool,
    notes: Vec<String>,
}

// ---------------------------------------------------------------- scenario 1: authorize

fn scenario_authorize(base: &Config, o: &Opts, deadline: Instant) -> Result<Verdict, String> {
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

// ---------------------------------------------------------------- scenario 2: holds

fn scenario_holds(base: &Config, o: &Opts, deadline: Instant) -> Result<Verdict, String> {
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

fn main() {
    let o = match parse_opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("credit_ledger_stress: {e}");
            std::process::exit(2);
        }
    };
    let base = match base_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("credit_ledger_stress: {e}");
            std::process::exit(2);
        }
    };
    let deadline = Instant::now() + o.timeout;
    if let Err(e) = setup(&base, &o) {
        eprintln!("credit_ledger_stress: setup failed: {e}");
        std::process::exit(2);
    }
    let mut all_pass = true;
    let mut could_not_run = false;
    type Scenario = fn(&Config, &Opts, Instant) -> Result<Verdict, String>;
    let scenarios: Vec<(&str, Scenario)> =
        vec![("authorize", scenario_authorize), ("holds", scenario_holds)];
    for (name, f) in scenarios {
        if o.scenario != "all" && o.scenario != name {
            continue;
        }
        match f(&base, &o, deadline) {
            Ok(v) => {
                println!("{}", v.line);
                for n in &v.notes {
                    eprintln!("  {name}: {n}");
                }
                all_pass &= v.pass;
            }
            Err(e) => {
                println!("stress scenario={name} result=fail error={:?}", e);
                eprintln!("  {name}: could not run: {e}");
                could_not_run = true;
                all_pass = false;
            }
        }
    }
    teardown(&base, &o);
    std::process::exit(if all_pass {
        0
    } else if could_not_run {
        2
    } else {
        1
    });
}
