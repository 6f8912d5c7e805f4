//! Concurrency stress test for the credit_ledger extension.
//!
//! Seven scenarios against one throwaway database (dropped and re-created at start):
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
//! * `pool` — one team pool `pool` (a large grant, an overdraft limit) with `--sessions` member
//!   wallets `pool.mNN` (a small own grant each; a pool limit each, `--pool-limit` for even N
//!   and a third of it for odd N, so some members reach their limit); session N makes
//!   `--pool-calls` calls of 1–3 credits, as member N (9 in 10) or as the team itself (1 in 10;
//!   only the team's own debits may use the team's overdraft). Demand exceeds the pool, so the
//!   pool runs dry, members reach their limits and the team reaches its floor. Asserts: no call
//!   errors; declines only `insufficient_credits` / `pool_limit_reached`; no member drew more
//!   than its pool limit (journal, authorizations and `pool_usage` agree); the pool's running
//!   balance over its journal, in order, never went below −overdraft_limit (so not only the final
//!   balance); no member balance below 0; granted = spent + remaining − debt; `credit_verify()`
//!   empty. Then the same sessions run a plain `UPDATE t SET v = v - 1 WHERE id = 1` loop (same
//!   count, autocommit) on the same cluster, and the line prints both rates and their ratio
//!   (informational only, never a pass/fail condition).
//! * `lanes` — spending lanes with long transactions: a team pool `lanes.team` with
//!   `--lanes-pool` lanes and one grant, `--sessions` members `lanes.mNN` without own grants
//!   (`lanes.m00` with a pool limit, `--lanes-limit`), and a standalone wallet `lanes.solo`
//!   with `--lanes-solo` lanes. Session N runs `--lanes-tx` transactions `BEGIN; <one spend>;
//!   [pg_sleep 5–50 ms]; COMMIT|ROLLBACK`: a `credit_authorize` of 1–3 credits as member N (3 in
//!   4) or on `lanes.solo`, or a `credit_hold` closed (captured at most the held amount, or
//!   released) in the same transaction or left for a later one that closes it; 30 % sleep
//!   inside the transaction, 20 % roll back. One more session runs `credit_expire()` and
//!   `credit_tick()` in a loop. Demand exceeds supply, so the pool and the standalone wallet run
//!   dry (declines on the committed total, the exact path). Asserts: no error at all (a 40P01 is
//!   counted apart and fails the run: single calls must not deadlock); no overspend (balances >= 0, no debt, each journal's running
//!   balance >= 0); Σ approved costs of the committed transactions (the client's model) = the
//!   journal's spend = the authorizations'; balance = Σ remaining − held over every row (slices
//!   included) = `credit_grants()`; lanes.m00 drew at most its limit; every committed key is on
//!   the server, no rolled-back one is; no hold open after the final releases; lane hints
//!   exact; `credit_verify()` empty. Spend calls slower than 30 ms are counted (waits of the
//!   exact path).
//! * `runs` — agent runs (budget envelopes) three levels deep: a team pool `runs.team` (one grant)
//!   with `--sessions` members `runs.mNN` without own grants (`runs.m00` with a pool limit,
//!   `--runs-limit`) and a standalone wallet `runs.solo`. Session N runs episodes until it has
//!   opened its share of `--runs` runs (at most 3× as many openings tried): a root run as member
//!   N (3 in 4) or on `runs.solo`, budget 10–50 (1 in 10 asks 1,000,000: declined), 1 in 7 with a
//!   TTL of 100–300 ms ("doomed": left to the sweep); then 3–10 steps in its tree: sub-runs and
//!   sub-sub-runs (budget up to half the parent's, 1 in 6 more than the parent has: declined; 1 in
//!   8 with a short TTL), debits in a run, holds (captured at most the held amount or released in
//!   the same transaction, by a later one, or left to the run's close), debits on the wallet
//!   itself, refunds of any earlier call of the session (its run open, closed or expired), closes
//!   at a random level (a parent with open children, or a child alone); 1 in 15 calls or sub-run
//!   openings goes to a run the session closed, when there is one (must be declined
//!   `run_closed`); 19 in 20 roots are closed at the end of their episode, the others stay
//!   open. Every transaction is
//!   `BEGIN; <one operation>; [pg_sleep 2–15 ms]; COMMIT|ROLLBACK` (25 % sleep, 15 % roll back).
//!   One more session runs `credit_expire()` in a loop. The client's model keeps what committed
//!   (runs with parent, budget, doomed/closed; approved calls with state, cost, refunds). Then,
//!   after a last sweep, every run still open is closed. Asserts: no error at all (a 40P01 fails
//!   the run and says whether the sweep session was in the cycle); every answer as expected
//!   (statuses, costs, decline reasons in the expected set for where it was made); no overspend
//!   (no grants row below 0 or holding more than it has, no debt, for every run `spent_tree` <=
//!   budget on the server and in the model, runs.m00 within its pool limit); per run the
//!   server's status, budget, spent and spent_tree = the model's, returned = budget − spent_tree;
//!   per call the server's status, amount and refunded = the model's; closed/expired runs keep
//!   nothing in their slices (before and after the final close); conservation per group before
//!   the final close (granted − net spend − expired = Σ remaining over every row, run slices
//!   included) and after it (`credit_balance` = granted − Σ committed approved costs + refunds −
//!   expired, runs.m00's pool draw = its net spend); no hold left open; every committed key on
//!   the server, no rolled-back one, no row of a rolled-back opening; `credit_verify()` empty.
//!   `--runs-secs` (default 40) bounds the transactions (reported as cut_short).
//! * `corrections` — voids, adjustments, transfers and wallet closes among spends: a team pool
//!   `corr.team` (1,600 paid + 200 promotional credits) with members `corr.w00`..`corr.w03`
//!   (120 + 40 each) and standalone wallets `corr.w04`..`corr.w11` (400 + 100 each;
//!   `corr.w04` with 4 lanes); the odd wallets' promotional grants expire 1.5 s after the setup,
//!   the others' in 30 days; T = 6,440 granted. Session N runs `--corr-tx` transactions
//!   `BEGIN; <one operation>; [pg_sleep 2–15 ms]; COMMIT|ROLLBACK` (25 % sleep, 20 % roll back):
//!   `credit_transfer` of 1–25 credits (27 %: a member and its pool, both directions of two
//!   fixed pairs — one with the lanes wallet —, two members, any two wallets; each in a random
//!   direction), `credit_authorize` of 1–5 (18 %), `credit_hold` of 1–5 (12 %; captured at most
//!   the held amount or released in the same transaction, or left open) or the close of one of
//!   the session's open holds (8 %), `credit_refund` of part or all of one of its committed
//!   debits or captures (7 %), `credit_grant_void` of part (6 %; 1–10 of what a grant of the
//!   wallet had left, which may be less by the time the void holds it) or of all of a grant
//!   (2 %), `credit_adjust` of +1..20 (8 %) or −1..20 (9 %), the retry of one of its committed
//!   corrections with the same idempotency key (3 %: same operation, nothing written). One more
//!   session runs `credit_expire()` every 50 ms; another one, once 70 % of the transactions have
//!   started, closes `corr.w03` (transfer to its pool), `corr.w10` (expire) and `corr.w11`
//!   (transfer to `corr.w04`), one by one, each close kept open 20 ms, then retries it with its
//!   key, while the sessions still hit them. Expected refusals, counted and checked, not
//!   failures: 55000 naming a closed wallet of the operation, 55000 for the close of a hold the
//!   wallet's close released, 55000 for a void of an expired grant, 53400 for a transfer or
//!   negative adjustment larger than the wallet's spendable credits (the message's figures
//!   agree), 22023 for a partial void larger than what the grant still had. Asserts: no other
//!   error (a 40P01 fails the run: one call per transaction, pairs locked in a fixed order); a
//!   transaction that began after a close committed and touches that wallet fails with 55000
//!   (never approved, declined or written); declines only `insufficient_credits`; every answer as
//!   asked (a transfer or adjustment did its amount, a partial void's done + pending = amount, a
//!   retry returns the same operation); after releasing the holds still open: conservation over
//!   every grant row (slices included), Σ remaining = T + positive adjustments − negative
//!   adjustments − voided − spent (debits + captures − refunds) − expired, each term from the
//!   journal by kind and operation kind, checked against the committed transactions (granted =
//!   T + positive adjustments, negative adjustments, net spend, transfers; voided >= what the
//!   voids returned at once; `credit_expire()`'s total = its expiry entries); every operation's
//!   journal entries match its kind and done (transfers create and destroy nothing, a close's
//!   expiry + transfers out = its done); the operations on the server are the committed ones; no
//!   hold held, no debt, every balance >= 0 and = its grants' free credits; transferred grants
//!   keep their source's category, priority, price and expiry; each closed wallet is closed and
//!   frozen, keeps nothing and got no journal entry, authorization, operation or refund after its
//!   close; the holds it had are released with reason `wallet_closed`; every committed key on
//!   the server, no rolled-back one; `credit_verify()` empty. `--corr-secs` (default 30) bounds
//!   the transactions (reported as cut_short).
//!
//! * `overage` — volume tiers and fair use under concurrent transactions (see `overage.rs`).
//!
//! Each scenario prints one machine-readable line
//! `stress scenario=<name> key=value ... result=pass|fail`.
//! Connection: PGHOST (a socket directory, or a loopback address), PGPORT, PGUSER; nothing else
//! is ever contacted. Bounded: fixed call counts, a per-statement timeout and an overall deadline.
//! Exit status: 0 all pass, 1 an invariant was violated, 2 the test could not run.

mod overage;

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
  --scenario all|authorize|holds|pool|lanes|runs|corrections|overage   (default all)
  --sessions N        concurrent sessions (default 16)
  --calls N           credit_authorize calls per session (default 500)
  --grant N           credits granted to 'stress' (default sessions*calls/2)
  --holds N           hold iterations per session (default 200)
  --grant2 N          credits granted to 'stress2' (default 5000)
  --seed N            random seed of the holds and pool scenarios (default 42)
  --pool-calls N      credit_authorize calls per session in the pool scenario (default 300)
  --pool-own N        own credits granted to each member (default 20)
  --pool-limit N      pool limit of the even-numbered members; odd ones get a third (default 450)
  --pool-overdraft N  overdraft limit of the team pool (default 300)
  --pool-grant N      credits granted to the pool (default 3/4 of the members' limits)
  --lanes-tx N        transactions per session in the lanes scenario (default 200)
  --lanes-pool N      lanes of the team pool 'lanes.team' (default 16)
  --lanes-solo N      lanes of the standalone wallet 'lanes.solo' (default 8)
  --lanes-pool-grant N  credits granted to the pool (default sessions*lanes-tx/2)
  --lanes-solo-grant N  credits granted to 'lanes.solo' (default sessions*lanes-tx/8)
  --lanes-limit N     pool limit of member lanes.m00 (default 30)
  --lanes-same-tx PCT holds captured/released in the transaction that made them (default 30;
                      the others are closed by a later transaction of the same session)
  --lanes-secs N      time budget of the lanes transactions: sessions start no new one after it
                      (default 60; reported as cut_short, not a failure)
  --runs N            runs (and sub-runs) to open in the runs scenario, all sessions together
                      (default 1000; each session stops after 3x its share of openings tried)
  --runs-pool-grant N credits granted to the pool 'runs.team' (default 6*runs)
  --runs-solo-grant N credits granted to 'runs.solo' (default 2*runs)
  --runs-limit N      pool limit of member runs.m00 (default 150)
  --runs-secs N       time budget of the runs transactions (default 40; reported as cut_short)
  --corr-tx N         transactions per session in the corrections scenario (default 150)
  --corr-secs N       time budget of the corrections transactions (default 30; reported as cut_short)
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
    pool_calls: usize,
    pool_own: u64,
    pool_limit: u64,
    pool_overdraft: u64,
    pool_grant: Option<u64>,
    lanes_tx: usize,
    lanes_pool: i32,
    lanes_solo: i32,
    lanes_pool_grant: Option<u64>,
    lanes_solo_grant: Option<u64>,
    lanes_member_limit: u64,
    lanes_same_tx: u64,
    lanes_budget: Duration,
    runs: usize,
    runs_pool_grant: Option<u64>,
    runs_solo_grant: Option<u64>,
    runs_member_limit: u64,
    runs_budget: Duration,
    corr_tx: usize,
    corr_budget: Duration,
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
        pool_calls: 300,
        pool_own: 20,
        pool_limit: 450,
        pool_overdraft: 300,
        pool_grant: None,
        lanes_tx: 200,
        lanes_pool: 16,
        lanes_solo: 8,
        lanes_pool_grant: None,
        lanes_solo_grant: None,
        lanes_member_limit: 30,
        lanes_same_tx: 30,
        lanes_budget: Duration::from_secs(60),
        runs: 1000,
        runs_pool_grant: None,
        runs_solo_grant: None,
        runs_member_limit: 150,
        runs_budget: Duration::from_secs(40),
        corr_tx: 150,
        corr_budget: Duration::from_secs(30),
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
            "--pool-calls" => o.pool_calls = num("--pool-calls", val("--pool-calls")?)?,
            "--pool-own" => o.pool_own = num("--pool-own", val("--pool-own")?)?,
            "--pool-limit" => o.pool_limit = num("--pool-limit", val("--pool-limit")?)?,
            "--pool-overdraft" => {
                o.pool_overdraft = num("--pool-overdraft", val("--pool-overdraft")?)?
            }
            "--pool-grant" => o.pool_grant = Some(num("--pool-grant", val("--pool-grant")?)?),
            "--lanes-tx" => o.lanes_tx = num("--lanes-tx", val("--lanes-tx")?)?,
            "--lanes-pool" => o.lanes_pool = num("--lanes-pool", val("--lanes-pool")?)?,
            "--lanes-solo" => o.lanes_solo = num("--lanes-solo", val("--lanes-solo")?)?,
            "--lanes-pool-grant" => {
                o.lanes_pool_grant = Some(num("--lanes-pool-grant", val("--lanes-pool-grant")?)?)
            }
            "--lanes-solo-grant" => {
                o.lanes_solo_grant = Some(num("--lanes-solo-grant", val("--lanes-solo-grant")?)?)
            }
            "--lanes-same-tx" => o.lanes_same_tx = num("--lanes-same-tx", val("--lanes-same-tx")?)?,
            "--lanes-secs" => {
                o.lanes_budget = Duration::from_secs(num("--lanes-secs", val("--lanes-secs")?)?)
            }
            "--lanes-limit" => o.lanes_member_limit = num("--lanes-limit", val("--lanes-limit")?)?,
            "--runs" => o.runs = num("--runs", val("--runs")?)?,
            "--runs-pool-grant" => {
                o.runs_pool_grant = Some(num("--runs-pool-grant", val("--runs-pool-grant")?)?)
            }
            "--runs-solo-grant" => {
                o.runs_solo_grant = Some(num("--runs-solo-grant", val("--runs-solo-grant")?)?)
            }
            "--runs-limit" => o.runs_member_limit = num("--runs-limit", val("--runs-limit")?)?,
            "--runs-secs" => {
                o.runs_budget = Duration::from_secs(num("--runs-secs", val("--runs-secs")?)?)
            }
            "--corr-tx" => o.corr_tx = num("--corr-tx", val("--corr-tx")?)?,
            "--corr-secs" => {
                o.corr_budget = Duration::from_secs(num("--corr-secs", val("--corr-secs")?)?)
            }
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
    if ![
        "all",
        "authorize",
        "holds",
        "pool",
        "lanes",
        "runs",
        "corrections",
        "overage",
    ]
    .contains(&o.scenario.as_str())
    {
        return Err(format!("bad --scenario {}", o.scenario));
    }
    if !(2..=64).contains(&o.lanes_pool) || !(2..=64).contains(&o.lanes_solo) {
        return Err("--lanes-pool and --lanes-solo must be 2..=64".into());
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
                // a detail may carry the server's Rust backtrace after the first line of frames
                let d = d.split("\n   0: ").next().unwrap_or(d).trim_end();
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

// ---------------------------------------------------------------- scenario 3: pool

/// One query's rows as text columns (numerics cast to text in the SQL).
fn text_rows(c: &mut Client, sql: &str, what: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    let rows = c
        .query(sql, &[])
        .map_err(|e| format!("{what}: {}", err_text(&e)))?;
    Ok(rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<_, Option<String>>(i))
                .collect()
        })
        .collect())
}

fn text_dec(v: &Option<String>, what: &str) -> Result<Decimal, String> {
    dec(v.as_deref(), what)
}

fn scenario_pool(base: &Config, o: &Opts, deadline: Instant) -> Result<Verdict, String> {
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

// ---------------------------------------------------------------- scenario 4: lanes

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

fn scenario_lanes(base: &Config, o: &Opts, deadline: Instant) -> Result<Verdict, String> {
    let sessions = o.sessions;
    let members = sessions;
    let txs = o.lanes_tx;
    let pool_lanes = o.lanes_pool;
    let solo_lanes = o.lanes_solo;
    // demand: about 0.8 of the transactions commit a spend of 2 credits on average, 3 in 4 of
    // them on the team; the pool gets about a third of that, the standalone wallet less
    let total_tx = (sessions * txs) as u64;
    let pool_grant = o.lanes_pool_grant.unwrap_or((total_tx / 2).max(1));
    let solo_grant = o.lanes_solo_grant.unwrap_or((total_tx / 8).max(1));
    let m0_limit = o.lanes_member_limit;
    let member_name = |i: usize| format!("lanes.m{i:02}");
    {
        let mut c = connect(base, &o.database)?;
        // a fixed period (100 years from 2000): a run across a month boundary cannot reset the
        // limited member's pool draw halfway
        let mut sql = format!(
            "SELECT credit_wallet_create(wallet => 'lanes.team'); \
             SELECT credit_grant(wallet => 'lanes.team', amount => {pool_grant}); \
             SELECT credit_wallet_create(wallet => 'lanes.solo'); \
             SELECT credit_grant(wallet => 'lanes.solo', amount => {solo_grant});"
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
    let keys = q(
        &mut c,
        "SELECT k FROM (SELECT idempotency_key AS k FROM credit_ledger.authorizations
                         UNION ALL SELECT close_key FROM credit_ledger.authorizations) s
          WHERE k LIKE 'lanes-%'",
        "keys",
    )?;
    let on_server: std::collections::HashSet<String> =
        keys.into_iter().filter_map(|r| r[0].clone()).collect();
    let missing: Vec<_> = t
        .committed_keys
        .iter()
        .filter(|k| !on_server.contains(*k))
        .collect();
    let leaked: Vec<_> = t
        .rolled_keys
        .iter()
        .filter(|k| on_server.contains(*k))
        .collect();
    if !missing.is_empty() {
        notes.push(format!(
            "{} keys of committed transactions missing on the server, e.g. {:?}",
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        ));
    }
    if !leaked.is_empty() {
        notes.push(format!(
            "{} keys of rolled-back transactions on the server, e.g. {:?}",
            leaked.len(),
            leaked.iter().take(5).collect::<Vec<_>>()
        ));
    }
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
        "stress scenario=lanes sessions={sessions} members={members} pool_lanes={pool_lanes} solo_lanes={solo_lanes} transactions={} committed={} rolled_back={} failed={} slept={} sleep_ms={} spend_calls={} approved={} holds={} captures={} releases={} same_tx_closes={} later_closes={} final_releases={final_released} declined_team={} declined_solo={} declines={} slow_calls_over_30ms={} max_call_ms={:.0} deadlocks={} errors={} pool_granted={pool_grant} solo_granted={solo_grant} spent_team={} spent_solo={} team_balance={} solo_balance={} min_running={} m00_draw={}/{m0_limit} lane_rows={lane_rows} slices={slices} lane_hints_exact={hints_exact} sweeps={sweeps} cut_short={} verify_rows={} elapsed_s={:.2} calls_per_s={:.0} result={}",
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
        cut.load(Ordering::Relaxed),
        verify.len(),
        elapsed,
        t.spend_calls as f64 / elapsed.max(1e-9),
        if pass { "pass" } else { "fail" }
    );
    Ok(Verdict { line, pass, notes })
}

// ---------------------------------------------------------------- scenario 5: runs

/// A run the session's model knows (its opening committed).
#[derive(Clone, Debug)]
struct RunM {
    id: i64,
    parent: Option<i64>,
    depth: u32,
    budget: u64,
    owner: String,
    /// a short TTL on it or on a run above it: the sweep may close it at any moment
    doomed: bool,
    /// closed by this session (itself, or with a run above it)
    closed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum CallState {
    Debit,
    Held,
    Captured,
    Released,
}

/// An approved call (a debit or a hold) of a committed transaction, in a run or on the wallet.
#[derive(Clone, Debug)]
struct CallM {
    id: i64,
    run: Option<i64>,
    owner: String,
    state: CallState,
    /// credits debited, held, or (once captured) captured
    cost: u64,
    refunded: u64,
}

/// A change to the model, applied only once COMMIT returned.
enum RunEff {
    Opened(RunM),
    Call(CallM),
    Captured(i64, u64),
    Released(i64),
    Refunded(i64, u64),
    Closed(i64),
}

/// Decline reasons a spend or an opening may give.
const ROOT_OK: &[&str] = &["insufficient_credits", "pool_limit_reached"];
const RUN_OK: &[&str] = &["run_budget_exhausted"];
const DOOMED_OK: &[&str] = &["run_budget_exhausted", "run_closed"];
const CLOSED_OK: &[&str] = &["run_closed"];

/// One operation; every choice is made before its transaction starts.
#[derive(Clone, Debug)]
enum RunOp {
    /// open a run of `owner` (a root run when `parent` is None), maybe with a first debit in it
    Open {
        owner: String,
        parent: Option<i64>,
        depth: u32,
        budget: u64,
        ttl_ms: Option<u64>,
        doomed: bool,
        first_call: Option<u64>,
        ok: &'static [&'static str],
    },
    /// a debit or a hold in run `run` (None: on the wallet itself); `finish`: a hold closed in
    /// the same transaction (Some(Some(q)): captured at q, Some(None): released)
    Call {
        owner: String,
        run: Option<i64>,
        q: u64,
        hold: bool,
        finish: Option<Option<u64>>,
        ok: &'static [&'static str],
    },
    /// capture (Some) or release (None) a hold of an earlier transaction
    Finish {
        hold: i64,
        capture: Option<u64>,
    },
    Refund {
        call: i64,
        amount: u64,
        after_close: bool,
    },
    Close {
        run: i64,
        children: bool,
        sub: bool,
    },
}

/// What one transaction did.
#[derive(Default)]
struct RunTx {
    effs: Vec<RunEff>,
    keys: Vec<String>,
    /// keys of declined calls (a declined call may or may not leave a row): gone if undone
    soft_keys: Vec<String>,
    /// ids of the runs rows it wrote (openings, declined ones too)
    opened: Vec<i64>,
    reasons: Vec<String>,
    n: BTreeMap<&'static str, u64>,
}

impl RunTx {
    fn count(&mut self, what: &'static str) {
        *self.n.entry(what).or_default() += 1;
    }
}

/// A session's tally and model.
#[derive(Default)]
struct RunsTally {
    n: BTreeMap<&'static str, u64>,
    reasons: BTreeMap<String, u64>,
    committed_keys: Vec<String>,
    rolled_keys: Vec<String>,
    rolled_runs: Vec<i64>,
    max_call_ms: f64,
    runs: BTreeMap<i64, RunM>,
    calls: BTreeMap<i64, CallM>,
}

impl RunsTally {
    fn add(&mut self, what: &'static str, k: u64) {
        *self.n.entry(what).or_default() += k;
    }
    fn get(&self, what: &str) -> u64 {
        self.n.get(what).copied().unwrap_or(0)
    }
}

/// Mark run `id` and its sub-runs still open closed in the model; their open holds were released.
fn runs_model_close(runs: &mut BTreeMap<i64, RunM>, calls: &mut BTreeMap<i64, CallM>, id: i64) {
    if runs.get(&id).is_none_or(|r| r.closed) {
        return;
    }
    let mut closing = vec![id];
    loop {
        let more: Vec<i64> = runs
            .values()
            .filter(|r| !r.closed && !closing.contains(&r.id))
            .filter(|r| r.parent.is_some_and(|p| closing.contains(&p)))
            .map(|r| r.id)
            .collect();
        if more.is_empty() {
            break;
        }
        closing.extend(more);
    }
    for x in &closing {
        if let Some(r) = runs.get_mut(x) {
            r.closed = true;
        }
    }
    for call in calls.values_mut() {
        if call.state == CallState::Held && call.run.is_some_and(|r| closing.contains(&r)) {
            call.state = CallState::Released;
        }
    }
}

struct RunsStmts {
    open: Statement,
    close: Statement,
    auth: Statement,
    hold: Statement,
    capture: Statement,
    release: Statement,
    refund: Statement,
    sleep: Statement,
}

fn runs_prepare(c: &mut Client) -> Result<RunsStmts, postgres::Error> {
    Ok(RunsStmts {
        open: c.prepare(
            "SELECT j->>'run_id', j->>'approved', j->>'reason', j->>'status' \
             FROM (SELECT to_jsonb(r) AS j FROM credit_run_open(wallet => $1, \
                     budget => ($2::text)::numeric, parent_run => ($3::text)::bigint, \
                     ttl => ($4::text)::interval, idempotency_key => $5) r) s",
        )?,
        close: c.prepare(
            "SELECT j->>'status' FROM (SELECT to_jsonb(r) AS j \
               FROM credit_run_close(run_id => ($1::text)::bigint) r) s",
        )?,
        auth: c.prepare(&auth_sql(
            "credit_authorize(wallet => $1, action => 'stress.call', quantity => ($2::text)::numeric, \
             idempotency_key => $3, run => ($4::text)::bigint)",
        ))?,
        hold: c.prepare(&auth_sql(
            "credit_hold(wallet => $1, action => 'stress.call', quantity => ($2::text)::numeric, \
             idempotency_key => $3, run => ($4::text)::bigint)",
        ))?,
        capture: c.prepare(&auth_sql(
            "credit_capture(authorization_id => ($1::text)::bigint, \
             quantity => ($2::text)::numeric, idempotency_key => $3)",
        ))?,
        release: c.prepare(&auth_sql(
            "credit_release(authorization_id => ($1::text)::bigint, idempotency_key => $2)",
        ))?,
        refund: c.prepare(
            "SELECT j->>'amount' FROM (SELECT to_jsonb(r) AS j \
               FROM credit_refund(authorization_id => ($1::text)::bigint, \
                                  amount => ($2::text)::numeric, idempotency_key => $3) r) s",
        )?,
        sleep: c.prepare("SELECT pg_sleep(($1::text)::float8 / 1000)")?,
    })
}

/// A debit or a hold (and the same-transaction close of the hold), checked against `ok`.
#[allow(clippy::too_many_arguments)]
fn runs_call(
    c: &mut Client,
    s: &RunsStmts,
    eff: &mut RunTx,
    key: &mut dyn FnMut(&str) -> String,
    wrong: &mut Vec<String>,
    (owner, run, q, hold): (&str, Option<i64>, u64, bool),
    finish: Option<Option<u64>>,
    ok: &'static [&'static str],
) -> Result<(), postgres::Error> {
    let k = key(if hold { "hold" } else { "call" });
    let run_s = run.map(|r| r.to_string());
    let st = if hold { &s.hold } else { &s.auth };
    let a = run_auth(c, st, &[&owner, &q.to_string(), &k, &run_s])?;
    let what = match (run.is_some(), hold) {
        (true, true) => "hold_run",
        (true, false) => "call_run",
        (false, _) => "call_direct",
    };
    if !a.approved {
        eff.count("calls_declined");
        let reason = a.reason.clone().unwrap_or_else(|| "<null>".into());
        if !ok.contains(&reason.as_str()) {
            wrong.push(format!(
                "{what} of {q} on {owner} run {run:?} declined with {reason:?}, expected one of {ok:?}: {a:?}"
            ));
        }
        eff.reasons.push(format!("{what}:{reason}"));
        eff.soft_keys.push(k);
        return Ok(());
    }
    eff.keys.push(k);
    if ok == CLOSED_OK {
        wrong.push(format!(
            "{what} of {q} in run {run:?}, closed by this session, approved: {a:?}"
        ));
    }
    let want_status = if hold { "held" } else { "approved" };
    let cost = dec(a.cost.as_deref(), "cost").ok();
    let Some(id) = a.id else {
        wrong.push(format!(
            "{what}: approved without an authorization_id: {a:?}"
        ));
        return Ok(());
    };
    if cost != Some(Decimal::from(q)) || a.status.as_deref() != Some(want_status) {
        wrong.push(format!("{what} of {q} on {owner} run {run:?}: {a:?}"));
    }
    eff.count(match (run.is_some(), hold) {
        (true, true) => "holds",
        (true, false) => "run_calls",
        (false, _) => "direct_calls",
    });
    eff.effs.push(RunEff::Call(CallM {
        id,
        run,
        owner: owner.to_string(),
        state: if hold {
            CallState::Held
        } else {
            CallState::Debit
        },
        cost: q,
        refunded: 0,
    }));
    if let (true, Some(capture)) = (hold, finish) {
        runs_finish(c, s, eff, key, wrong, id, capture)?;
    }
    Ok(())
}

/// Capture (at `capture`) or release an open hold; the answer must say exactly that.
fn runs_finish(
    c: &mut Client,
    s: &RunsStmts,
    eff: &mut RunTx,
    key: &mut dyn FnMut(&str) -> String,
    wrong: &mut Vec<String>,
    id: i64,
    capture: Option<u64>,
) -> Result<(), postgres::Error> {
    let id_s = id.to_string();
    match capture {
        Some(q2) => {
            let k = key("capture");
            let a = run_auth(c, &s.capture, &[&id_s, &q2.to_string(), &k])?;
            eff.keys.push(k);
            let cost = dec(a.cost.as_deref(), "capture cost").ok();
            if a.status.as_deref() != Some("captured") || cost != Some(Decimal::from(q2)) {
                wrong.push(format!("capture of {q2} of hold {id}: {a:?}"));
            }
            eff.count("captures");
            eff.effs.push(RunEff::Captured(id, q2));
        }
        None => {
            let k = key("release");
            let a = run_auth(c, &s.release, &[&id_s, &k])?;
            eff.keys.push(k);
            if a.status.as_deref() != Some("released") {
                wrong.push(format!("release of hold {id}: {a:?}"));
            }
            eff.count("releases");
            eff.effs.push(RunEff::Released(id));
        }
    }
    Ok(())
}

/// Run one operation (inside the caller's transaction).
fn runs_exec(
    c: &mut Client,
    s: &RunsStmts,
    op: &RunOp,
    eff: &mut RunTx,
    key: &mut dyn FnMut(&str) -> String,
    wrong: &mut Vec<String>,
) -> Result<(), postgres::Error> {
    match op {
        RunOp::Open {
            owner,
            parent,
            depth,
            budget,
            ttl_ms,
            doomed,
            first_call,
            ok,
        } => {
            let k = key("open");
            eff.keys.push(k.clone());
            let parent_s = parent.map(|p| p.to_string());
            let ttl = ttl_ms
                .map(|ms| format!("{ms} milliseconds"))
                .unwrap_or_else(|| "1 hour".into());
            let rows = c.query(&s.open, &[owner, &budget.to_string(), &parent_s, &ttl, &k])?;
            let what = if parent.is_some() {
                "open_sub"
            } else {
                "open_root"
            };
            let Some(r) = rows.first() else {
                wrong.push(format!("{what}: credit_run_open returned no row"));
                return Ok(());
            };
            let id: Option<i64> = r.get::<_, Option<String>>(0).and_then(|v| v.parse().ok());
            let approved = r.get::<_, Option<String>>(1).as_deref() == Some("true");
            let reason: Option<String> = r.get(2);
            let status: Option<String> = r.get(3);
            let Some(id) = id else {
                wrong.push(format!(
                    "{what}: no run_id ({approved}, {reason:?}, {status:?})"
                ));
                return Ok(());
            };
            eff.opened.push(id);
            if !approved {
                eff.count("open_declined");
                let reason = reason.unwrap_or_else(|| "<null>".into());
                if !ok.contains(&reason.as_str()) || status.as_deref() != Some("declined") {
                    wrong.push(format!(
                        "{what} of {budget} for {owner} under {parent:?}: declined with {reason:?} (status {status:?}), expected one of {ok:?}"
                    ));
                }
                eff.reasons.push(format!("{what}:{reason}"));
                return Ok(());
            }
            if *ok == CLOSED_OK {
                wrong.push(format!(
                    "{what} of {budget} under run {parent:?}, closed by this session, approved: run {id}"
                ));
            }
            if status.as_deref() != Some("open") {
                wrong.push(format!("{what}: approved run {id} with status {status:?}"));
            }
            eff.count(if parent.is_some() {
                "sub_runs"
            } else {
                "roots"
            });
            if *doomed {
                eff.count("doomed");
            }
            eff.effs.push(RunEff::Opened(RunM {
                id,
                parent: *parent,
                depth: *depth,
                budget: *budget,
                owner: owner.clone(),
                doomed: *doomed,
                closed: false,
            }));
            if let Some(q) = first_call {
                // in the transaction that opened it: now() has not moved, the run is open
                runs_call(
                    c,
                    s,
                    eff,
                    key,
                    wrong,
                    (owner, Some(id), *q, false),
                    None,
                    RUN_OK,
                )?;
            }
        }
        RunOp::Call {
            owner,
            run,
            q,
            hold,
            finish,
            ok,
        } => runs_call(c, s, eff, key, wrong, (owner, *run, *q, *hold), *finish, ok)?,
        RunOp::Finish { hold, capture } => runs_finish(c, s, eff, key, wrong, *hold, *capture)?,
        RunOp::Refund {
            call,
            amount,
            after_close,
        } => {
            let k = key("refund");
            let rows = c.query(&s.refund, &[&call.to_string(), &amount.to_string(), &k])?;
            eff.keys.push(k);
            let got = rows
                .first()
                .and_then(|r| r.get::<_, Option<String>>(0))
                .and_then(|v| Decimal::from_str(&v).ok());
            if got != Some(Decimal::from(*amount)) {
                wrong.push(format!("refund of {amount} on call {call}: amount {got:?}"));
            }
            eff.count("refunds");
            if *after_close {
                eff.count("refunds_after_close");
            }
            eff.effs.push(RunEff::Refunded(*call, *amount));
        }
        RunOp::Close { run, children, sub } => {
            let rows = c.query(&s.close, &[&run.to_string()])?;
            let status = rows.first().and_then(|r| r.get::<_, Option<String>>(0));
            if status.as_deref() != Some("closed") {
                wrong.push(format!(
                    "credit_run_close({run}): status {status:?}, expected closed"
                ));
            }
            eff.count("closes");
            if *children {
                eff.count("closes_with_children");
            }
            if *sub {
                eff.count("closes_child_alone");
            }
            eff.effs.push(RunEff::Closed(*run));
        }
    }
    Ok(())
}

/// Where a session stands after one transaction.
enum RunsTxEnd {
    /// committed: the ids of the runs rows it wrote
    Committed(Vec<i64>),
    Undone,
    /// the deadline or the time budget: start nothing more
    Stop,
}

/// What a session needs besides its connection.
struct RunsCtx {
    i: usize,
    deadline: Instant,
    budget: Instant,
    problems: Arc<Mutex<Problems>>,
    deadlocks: Arc<Mutex<Problems>>,
    wrong: Arc<Mutex<Problems>>,
    cut: Arc<std::sync::atomic::AtomicUsize>,
    /// the backend of the credit_expire() session, and the deadlocks whose cycle includes it
    sweep_pid: i32,
    with_sweep: Arc<std::sync::atomic::AtomicUsize>,
}

/// One transaction `BEGIN; <op>; [pg_sleep]; COMMIT|ROLLBACK`, its effects applied to the model
/// only when COMMIT returned.
fn runs_tx(
    c: &mut Client,
    s: &RunsStmts,
    x: &RunsCtx,
    t: &mut RunsTally,
    rng: &mut u64,
    seq: &mut u64,
    op: RunOp,
) -> RunsTxEnd {
    if Instant::now() > x.deadline {
        x.problems
            .lock()
            .unwrap()
            .add(format!("session {}: deadline reached", x.i));
        return RunsTxEnd::Stop;
    }
    if Instant::now() > x.budget {
        // the scenario's time budget (--runs-secs): reported, not a failure
        x.cut.fetch_add(1, Ordering::Relaxed);
        return RunsTxEnd::Stop;
    }
    t.add("tx", 1);
    let sleep_ms = if xorshift(rng) % 100 < 25 {
        Some(2 + xorshift(rng) % 14)
    } else {
        None
    };
    let rollback = xorshift(rng) % 100 < 15;
    let mut eff = RunTx::default();
    let mut wrong = Vec::new();
    let i = x.i;
    let t0 = Instant::now();
    let res = (|| -> Result<(), postgres::Error> {
        c.batch_execute("BEGIN")?;
        let mut key = |what: &str| {
            *seq += 1;
            format!("runs-s{i}-{seq}-{what}")
        };
        runs_exec(c, s, &op, &mut eff, &mut key, &mut wrong)?;
        if let Some(ms) = sleep_ms {
            c.query(&s.sleep, &[&ms.to_string()])?;
        }
        c.batch_execute(if rollback { "ROLLBACK" } else { "COMMIT" })?;
        Ok(())
    })();
    let ms = t0.elapsed().as_secs_f64() * 1000.0 - sleep_ms.unwrap_or(0) as f64;
    t.max_call_ms = t.max_call_ms.max(ms);
    if let Some(ms) = sleep_ms {
        t.add("slept", 1);
        t.add("sleep_ms", ms);
    }
    if !wrong.is_empty() {
        let mut w = x.wrong.lock().unwrap();
        for m in wrong {
            w.add(format!("session {i}: {m} [{op:?}]"));
        }
    }
    match res {
        Ok(()) if rollback => {
            t.add("rolled_back", 1);
            t.rolled_keys.extend(eff.keys);
            t.rolled_keys.extend(eff.soft_keys);
            t.rolled_runs.extend(eff.opened);
            RunsTxEnd::Undone
        }
        Ok(()) => {
            t.add("committed", 1);
            for (k, v) in eff.n {
                t.add(k, v);
            }
            for r in eff.reasons {
                *t.reasons.entry(r).or_default() += 1;
            }
            t.committed_keys.extend(eff.keys);
            for e in eff.effs {
                match e {
                    RunEff::Opened(r) => {
                        t.runs.insert(r.id, r);
                    }
                    RunEff::Call(call) => {
                        t.calls.insert(call.id, call);
                    }
                    RunEff::Captured(id, q2) => {
                        if let Some(call) = t.calls.get_mut(&id) {
                            call.state = CallState::Captured;
                            call.cost = q2;
                        }
                    }
                    RunEff::Released(id) => {
                        if let Some(call) = t.calls.get_mut(&id) {
                            call.state = CallState::Released;
                        }
                    }
                    RunEff::Refunded(id, a) => {
                        if let Some(call) = t.calls.get_mut(&id) {
                            call.refunded += a;
                        }
                    }
                    RunEff::Closed(id) => runs_model_close(&mut t.runs, &mut t.calls, id),
                }
            }
            RunsTxEnd::Committed(eff.opened)
        }
        Err(e) => {
            t.add("failed_tx", 1);
            let _ = c.batch_execute("ROLLBACK");
            let msg = format!("session {i}: {} in {op:?}", err_text(&e));
            if sqlstate(&e) == "40P01" {
                t.add("deadlocks", 1);
                let lower = msg.to_lowercase();
                let pat = format!("process {}", x.sweep_pid);
                if lower.match_indices(&pat).any(|(at, _)| {
                    !lower[at + pat.len()..].starts_with(|ch: char| ch.is_ascii_digit())
                }) {
                    x.with_sweep.fetch_add(1, Ordering::Relaxed);
                }
                x.deadlocks.lock().unwrap().add(msg);
            } else {
                x.problems.lock().unwrap().add(msg);
            }
            // what a failed transaction wrote is gone like a rolled-back one's
            t.rolled_keys.extend(eff.keys);
            t.rolled_keys.extend(eff.soft_keys);
            t.rolled_runs.extend(eff.opened);
            RunsTxEnd::Undone
        }
    }
}

/// A random element of a non-empty slice.
fn pick<T: Clone>(v: &[T], rng: &mut u64) -> T {
    v[(xorshift(rng) % v.len() as u64) as usize].clone()
}

/// One session of the runs scenario: episodes (a root run, sub-runs and calls in its tree,
/// closes at random levels) until it has opened `quota` runs (at most 3 × `quota` tries).
fn runs_session(
    c: &mut Client,
    s: &RunsStmts,
    x: &RunsCtx,
    member: &str,
    quota: usize,
    mut rng: u64,
) -> RunsTally {
    let mut t = RunsTally::default();
    let mut seq = 0u64;
    let mut attempts = 0usize;
    let opened = |t: &RunsTally| (t.get("roots") + t.get("sub_runs")) as usize;
    'episodes: while opened(&t) < quota && attempts < 3 * quota {
        // the root: on the member (3 in 4, funded by the pool) or on the standalone wallet
        let owner = if xorshift(&mut rng).is_multiple_of(4) {
            "runs.solo".to_string()
        } else {
            member.to_string()
        };
        let huge = xorshift(&mut rng).is_multiple_of(10);
        let budget = if huge {
            1_000_000
        } else {
            10 + xorshift(&mut rng) % 41
        };
        let doomed = !huge && xorshift(&mut rng).is_multiple_of(7);
        let ttl_ms = doomed.then(|| 100 + xorshift(&mut rng) % 200);
        let first_call = xorshift(&mut rng)
            .is_multiple_of(2)
            .then(|| 1 + xorshift(&mut rng) % 3);
        attempts += 1;
        let op = RunOp::Open {
            owner: owner.clone(),
            parent: None,
            depth: 0,
            budget,
            ttl_ms,
            doomed,
            first_call,
            ok: ROOT_OK,
        };
        let root = match runs_tx(c, s, x, &mut t, &mut rng, &mut seq, op) {
            RunsTxEnd::Stop => break 'episodes,
            RunsTxEnd::Undone => continue,
            RunsTxEnd::Committed(ids) => match ids.first() {
                Some(id) if t.runs.contains_key(id) => *id,
                _ => continue,
            },
        };
        let mut tree = vec![root];
        let steps = 3 + xorshift(&mut rng) % 8;
        for _ in 0..steps {
            let runs_of = |f: &dyn Fn(&RunM) -> bool| -> Vec<RunM> {
                tree.iter()
                    .filter_map(|id| t.runs.get(id))
                    .filter(|r| f(r))
                    .cloned()
                    .collect()
            };
            let live = runs_of(&|r| !r.closed);
            if live.is_empty() {
                break;
            }
            // runs this session closed (never doomed ones: those may be closed or not)
            let dead = runs_of(&|r| r.closed && !r.doomed);
            let probe = !dead.is_empty() && xorshift(&mut rng).is_multiple_of(15);
            let roll = xorshift(&mut rng) % 100;
            let mut op = None;
            if roll < 18 && opened(&t) < quota {
                // a sub-run (3 levels at most), 1 in 6 asking more than the parent has
                let parents: Vec<RunM> = if probe {
                    dead.iter().filter(|r| r.depth < 2).cloned().collect()
                } else {
                    live.iter().filter(|r| r.depth < 2).cloned().collect()
                };
                if !parents.is_empty() {
                    let p = pick(&parents, &mut rng);
                    let budget = if xorshift(&mut rng).is_multiple_of(6) {
                        p.budget + 1
                    } else {
                        1 + xorshift(&mut rng) % (p.budget / 2).max(1)
                    };
                    let own_ttl = !p.doomed && xorshift(&mut rng).is_multiple_of(8);
                    attempts += 1;
                    op = Some(RunOp::Open {
                        owner: owner.clone(),
                        parent: Some(p.id),
                        depth: p.depth + 1,
                        budget,
                        ttl_ms: own_ttl.then(|| 100 + xorshift(&mut rng) % 200),
                        doomed: p.doomed || own_ttl,
                        first_call: xorshift(&mut rng)
                            .is_multiple_of(2)
                            .then(|| 1 + xorshift(&mut rng) % 3),
                        ok: if probe {
                            CLOSED_OK
                        } else if p.doomed {
                            DOOMED_OK
                        } else {
                            RUN_OK
                        },
                    });
                }
            } else if (52..66).contains(&roll) {
                // a hold: closed in the same transaction (2 in 5, never in a doomed run) or left
                let r = pick(&live, &mut rng);
                let q = 1 + xorshift(&mut rng) % 5;
                let finish = (!r.doomed && xorshift(&mut rng) % 5 < 2)
                    .then(|| (xorshift(&mut rng) % 5 < 3).then(|| 1 + xorshift(&mut rng) % q));
                op = Some(RunOp::Call {
                    owner: owner.clone(),
                    run: Some(r.id),
                    q,
                    hold: true,
                    finish,
                    ok: if r.doomed { DOOMED_OK } else { RUN_OK },
                });
            } else if (66..74).contains(&roll) {
                // finish a hold left open by an earlier transaction (its run open, not doomed)
                let open: Vec<i64> = t
                    .calls
                    .values()
                    .filter(|h| h.state == CallState::Held)
                    .filter(|h| {
                        h.run
                            .and_then(|r| t.runs.get(&r))
                            .is_some_and(|r| !r.closed && !r.doomed)
                    })
                    .map(|h| h.id)
                    .collect();
                if !open.is_empty() {
                    let h = pick(&open, &mut rng);
                    let q = t.calls.get(&h).map_or(1, |h| h.cost);
                    let capture = (xorshift(&mut rng) % 5 < 3).then(|| 1 + xorshift(&mut rng) % q);
                    op = Some(RunOp::Finish { hold: h, capture });
                }
            } else if (74..80).contains(&roll) {
                // a debit on the wallet itself, beside its runs
                op = Some(RunOp::Call {
                    owner: owner.clone(),
                    run: None,
                    q: 1 + xorshift(&mut rng) % 3,
                    hold: false,
                    finish: None,
                    ok: ROOT_OK,
                });
            } else if (80..88).contains(&roll) {
                // a refund of any earlier call of the session (its run may have closed since)
                let can: Vec<i64> = t
                    .calls
                    .values()
                    .filter(|c| matches!(c.state, CallState::Debit | CallState::Captured))
                    .filter(|c| c.cost > c.refunded)
                    .map(|c| c.id)
                    .collect();
                if !can.is_empty() {
                    let id = pick(&can, &mut rng);
                    if let Some(call) = t.calls.get(&id) {
                        let after_close = call
                            .run
                            .and_then(|r| t.runs.get(&r))
                            .is_some_and(|r| r.closed);
                        op = Some(RunOp::Refund {
                            call: id,
                            amount: 1 + xorshift(&mut rng) % (call.cost - call.refunded),
                            after_close,
                        });
                    }
                }
            } else if roll >= 88 {
                // close a run at a random level (not a doomed one: the sweep's)
                let can: Vec<RunM> = live.iter().filter(|r| !r.doomed).cloned().collect();
                if !can.is_empty() {
                    let r = pick(&can, &mut rng);
                    let children = t.runs.values().any(|c| c.parent == Some(r.id) && !c.closed);
                    op = Some(RunOp::Close {
                        run: r.id,
                        children,
                        sub: r.parent.is_some(),
                    });
                }
            }
            // otherwise (and when the choice above had nothing to act on): a debit in a run,
            // 1 in 15 in a run this session closed (must be declined run_closed)
            let op = op.unwrap_or_else(|| {
                let (r, ok) = if probe {
                    (pick(&dead, &mut rng), CLOSED_OK)
                } else {
                    let r = pick(&live, &mut rng);
                    let ok = if r.doomed { DOOMED_OK } else { RUN_OK };
                    (r, ok)
                };
                RunOp::Call {
                    owner: owner.clone(),
                    run: Some(r.id),
                    q: 1 + xorshift(&mut rng) % 4,
                    hold: false,
                    finish: None,
                    ok,
                }
            });
            match runs_tx(c, s, x, &mut t, &mut rng, &mut seq, op) {
                RunsTxEnd::Stop => break 'episodes,
                RunsTxEnd::Undone => {}
                RunsTxEnd::Committed(ids) => {
                    tree.extend(ids.iter().filter(|id| t.runs.contains_key(id)))
                }
            }
            if t.runs.get(&root).is_some_and(|r| r.closed) {
                break;
            }
        }
        // the end of the episode: the root closed (19 in 20) or left open until the end
        if let Some(r) = t.runs.get(&root).cloned() {
            if !r.closed && !r.doomed && xorshift(&mut rng) % 20 < 19 {
                let children = t.runs.values().any(|c| c.parent == Some(root) && !c.closed);
                let op = RunOp::Close {
                    run: root,
                    children,
                    sub: false,
                };
                if let RunsTxEnd::Stop = runs_tx(c, s, x, &mut t, &mut rng, &mut seq, op) {
                    break 'episodes;
                }
            }
        }
    }
    t.add("attempts", attempts as u64);
    t
}

fn scenario_runs(base: &Config, o: &Opts, deadline: Instant) -> Result<Verdict, String> {
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
    let keys = q(
        &mut c,
        "SELECT k FROM (SELECT idempotency_key AS k FROM credit_ledger.authorizations
                         UNION ALL SELECT close_key FROM credit_ledger.authorizations
                         UNION ALL SELECT idempotency_key FROM credit_ledger.runs
                         UNION ALL SELECT idempotency_key FROM credit_ledger.refunds) s
          WHERE k LIKE 'runs-%'",
        "keys",
    )?;
    let on_server: std::collections::HashSet<String> =
        keys.into_iter().filter_map(|r| r[0].clone()).collect();
    let missing: Vec<_> = t
        .committed_keys
        .iter()
        .filter(|k| !on_server.contains(*k))
        .collect();
    let leaked: Vec<_> = t
        .rolled_keys
        .iter()
        .filter(|k| on_server.contains(*k))
        .collect();
    if !missing.is_empty() {
        notes.push(format!(
            "{} keys of committed transactions missing on the server, e.g. {:?}",
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        ));
    }
    if !leaked.is_empty() {
        notes.push(format!(
            "{} keys of rolled-back transactions on the server, e.g. {:?}",
            leaked.len(),
            leaked.iter().take(5).collect::<Vec<_>>()
        ));
    }
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

// ---------------------------------------------------------------- scenario 6: corrections

/// The team pool of the corrections scenario; corr.w00..corr.w03 are its members.
const CORR_POOL: &str = "corr.team";
const CORR_MEMBERS: usize = 4;
/// corr.w00..corr.w11: the members, then standalone wallets (corr.w04 with 4 lanes).
const CORR_WALLETS: usize = 12;
const CORR_LANES_WALLET: &str = "corr.w04";
/// The wallets the closing session closes near the end: (wallet, None: disposition expire,
/// Some(to): disposition transfer to `to`). A member into its pool, a standalone wallet whose
/// credits expire, a standalone wallet into the wallet with lanes.
const CORR_CLOSES: [(&str, Option<&str>); 3] = [
    ("corr.w03", Some(CORR_POOL)),
    ("corr.w10", None),
    ("corr.w11", Some(CORR_LANES_WALLET)),
];
/// When the short-lived promotional grants expire, in ms after the setup.
const CORR_SHORT_EXPIRY_MS: u64 = 1500;

fn corr_wallet(i: usize) -> String {
    format!("corr.w{i:02}")
}

/// Every wallet of the scenario: the pool, then corr.w00..corr.w11.
fn corr_all() -> Vec<String> {
    let mut v = vec![CORR_POOL.to_string()];
    v.extend((0..CORR_WALLETS).map(corr_wallet));
    v
}

fn corr_closing(w: &str) -> bool {
    CORR_CLOSES.iter().any(|(c, _)| *c == w)
}

/// The grants of the setup: (wallet, amount, promotional, expires a few seconds in).
fn corr_setup_grants() -> Vec<(String, u64, bool, bool)> {
    let mut v = vec![
        (CORR_POOL.to_string(), 1600, false, false),
        (CORR_POOL.to_string(), 200, true, false),
    ];
    for i in 0..CORR_WALLETS {
        let (paid, promo) = if i < CORR_MEMBERS {
            (120, 40)
        } else {
            (400, 100)
        };
        v.push((corr_wallet(i), paid, false, false));
        v.push((corr_wallet(i), promo, true, i % 2 == 1));
    }
    v
}

/// A hold the session's model believes open.
#[derive(Clone, Debug)]
struct CorrHold {
    id: i64,
    wallet: String,
    qty: u64,
}

/// An approved debit or a captured hold of a committed transaction (refundable).
#[derive(Clone, Debug)]
struct CorrSpend {
    id: i64,
    wallet: String,
    amount: u64,
    refunded: u64,
}

/// A correction call, as made (kept to retry it with the same key).
#[derive(Clone, Debug)]
enum CorrCall {
    Transfer {
        from: String,
        to: String,
        amount: u64,
    },
    Adjust {
        wallet: String,
        amount: i64,
    },
    Void {
        grant: i64,
        amount: Option<u64>,
    },
}

/// A committed correction: its call, key, operation id and what it did at once.
#[derive(Clone, Debug)]
struct CorrDone {
    call: CorrCall,
    key: String,
    op_id: i64,
    done: Decimal,
}

/// One transaction's operation; chosen before the transaction starts (a void picks its grant
/// inside it, from what the wallet has then).
#[derive(Clone, Debug)]
enum CorrOp {
    Transfer {
        from: String,
        to: String,
        amount: u64,
    },
    Debit {
        wallet: String,
        q: u64,
    },
    /// `finish`: closed in the same transaction (Some(Some(q)): captured at q; Some(None):
    /// released) or left open for a later transaction (None)
    Hold {
        wallet: String,
        q: u64,
        finish: Option<Option<u64>>,
    },
    Finish {
        hold: CorrHold,
        capture: Option<u64>,
    },
    Refund {
        spend: CorrSpend,
        amount: u64,
    },
    Void {
        wallet: String,
        whole: bool,
    },
    Adjust {
        wallet: String,
        amount: i64,
    },
    /// the same call with the same idempotency key: the first result, nothing written
    Retry {
        prev: CorrDone,
    },
}

impl CorrOp {
    /// The wallets it writes to (a retry writes nothing).
    fn wallets(&self) -> Vec<&str> {
        match self {
            CorrOp::Transfer { from, to, .. } => vec![from, to],
            CorrOp::Debit { wallet, .. }
            | CorrOp::Hold { wallet, .. }
            | CorrOp::Void { wallet, .. }
            | CorrOp::Adjust { wallet, .. } => vec![wallet],
            CorrOp::Finish { hold, .. } => vec![&hold.wallet],
            CorrOp::Refund { spend, .. } => vec![&spend.wallet],
            CorrOp::Retry { .. } => vec![],
        }
    }
}

/// What one transaction did, applied to the session's tally only when COMMIT returned.
#[derive(Default)]
struct CorrTx {
    n: BTreeMap<&'static str, u64>,
    sums: BTreeMap<&'static str, Decimal>,
    new_holds: Vec<CorrHold>,
    closed_holds: Vec<i64>,
    new_spends: Vec<CorrSpend>,
    refunded: Vec<(i64, u64)>,
    done: Vec<CorrDone>,
    /// voids: (operation id, amount asked (None: whole), done and pending at once)
    voids: Vec<(i64, Option<u64>, Decimal, Decimal)>,
    keys: Vec<String>,
    reasons: Vec<String>,
    /// the grant a void picked
    void_grant: Option<i64>,
}

impl CorrTx {
    fn count(&mut self, what: &'static str) {
        *self.n.entry(what).or_default() += 1;
    }
    fn sum(&mut self, what: &'static str, x: Decimal) {
        *self.sums.entry(what).or_default() += x;
    }
}

/// A session's tally and model.
#[derive(Default)]
struct CorrTally {
    n: BTreeMap<&'static str, u64>,
    sums: BTreeMap<&'static str, Decimal>,
    reasons: BTreeMap<String, u64>,
    committed_keys: Vec<String>,
    rolled_keys: Vec<String>,
    holds: Vec<CorrHold>,
    spends: Vec<CorrSpend>,
    done: Vec<CorrDone>,
    voids: Vec<(i64, Option<u64>, Decimal, Decimal)>,
    /// holds whose capture or release said "it was released" (by a close)
    gone_holds: Vec<i64>,
    /// grants whose void said "has expired"
    expired_grants: Vec<i64>,
    /// wallets a 55000 said were closed
    closed_hits: Vec<String>,
    max_tx_ms: f64,
}

impl CorrTally {
    fn add(&mut self, what: &'static str, k: u64) {
        *self.n.entry(what).or_default() += k;
    }
    fn get(&self, what: &str) -> u64 {
        self.n.get(what).copied().unwrap_or(0)
    }
    fn sum(&self, what: &str) -> Decimal {
        self.sums.get(what).copied().unwrap_or_default()
    }
}

/// What the sessions share.
#[derive(Default)]
struct CorrShared {
    /// wallets whose close has committed (set by the closing session after its COMMIT)
    closed: Mutex<std::collections::BTreeSet<String>>,
    /// transactions started by all sessions
    progress: std::sync::atomic::AtomicUsize,
    cut: std::sync::atomic::AtomicUsize,
    problems: Mutex<Problems>,
    deadlocks: Mutex<Problems>,
    wrong: Mutex<Problems>,
}

struct CorrStmts {
    transfer: Statement,
    adjust: Statement,
    void: Statement,
    auth: Statement,
    hold: Statement,
    capture: Statement,
    release: Statement,
    refund: Statement,
    grants: Statement,
    sleep: Statement,
}

/// The rows of a correction function, read by column name (numerics as exact text).
fn op_sql(call: &str) -> String {
    format!(
        "SELECT j->>'operation_id', j->>'kind', j->>'asset', j->>'amount', j->>'done', j->>'pending' \
         FROM (SELECT to_jsonb(r) AS j FROM {call} r) s"
    )
}

#[derive(Clone, Debug, Default)]
struct OpRow {
    id: Option<i64>,
    kind: Option<String>,
    asset: Option<String>,
    amount: Option<Decimal>,
    done: Option<Decimal>,
    pending: Option<Decimal>,
}

fn run_op(
    c: &mut Client,
    st: &Statement,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Vec<OpRow>, postgres::Error> {
    let rows = c.query(st, params)?;
    let d = |s: Option<String>| s.and_then(|v| Decimal::from_str(&v).ok());
    Ok(rows
        .iter()
        .map(|r| OpRow {
            id: r.get::<_, Option<String>>(0).and_then(|v| v.parse().ok()),
            kind: r.get(1),
            asset: r.get(2),
            amount: d(r.get(3)),
            done: d(r.get(4)),
            pending: d(r.get(5)),
        })
        .collect())
}

/// The one row of an operation on credits: (operation id, done, pending); a wrong answer
/// otherwise. A close of a wallet that has no grant row left (all expired, voided or
/// transferred out) answers one row without an asset and done 0.
fn one_op(rows: &[OpRow], kind: &str, wrong: &mut Vec<String>) -> Option<(i64, Decimal, Decimal)> {
    let empty_close =
        |r: &OpRow| kind == "close" && r.asset.is_none() && r.done.is_some_and(|d| d.is_zero());
    match rows {
        [r] if r.kind.as_deref() == Some(kind)
            && (r.asset.as_deref() == Some("credits") || empty_close(r)) =>
        {
            match (r.id, r.done, r.pending) {
                (Some(id), Some(done), Some(pending)) => Some((id, done, pending)),
                _ => {
                    wrong.push(format!("{kind}: incomplete row {r:?}"));
                    None
                }
            }
        }
        _ => {
            wrong.push(format!("{kind}: expected one row on credits, got {rows:?}"));
            None
        }
    }
}

fn corr_prepare(c: &mut Client) -> Result<CorrStmts, postgres::Error> {
    Ok(CorrStmts {
        transfer: c.prepare(&op_sql(
            "credit_transfer(from_wallet => $1, to_wallet => $2, amount => ($3::text)::numeric, \
             reason => 'stress transfer', idempotency_key => $4)",
        ))?,
        adjust: c.prepare(&op_sql(
            "credit_adjust(wallet => $1, amount => ($2::text)::numeric, \
             reason => 'stress adjustment', idempotency_key => $3)",
        ))?,
        void: c.prepare(&op_sql(
            "credit_grant_void(grant_id => ($1::text)::bigint, amount => ($2::text)::numeric, \
             reason => 'stress void', idempotency_key => $3)",
        ))?,
        auth: c.prepare(&auth_sql(
            "credit_authorize(wallet => $1, action => 'stress.call', \
             quantity => ($2::text)::numeric, idempotency_key => $3)",
        ))?,
        hold: c.prepare(&auth_sql(
            "credit_hold(wallet => $1, action => 'stress.call', \
             quantity => ($2::text)::numeric, idempotency_key => $3)",
        ))?,
        capture: c.prepare(&auth_sql(
            "credit_capture(authorization_id => ($1::text)::bigint, \
             quantity => ($2::text)::numeric, idempotency_key => $3)",
        ))?,
        release: c.prepare(&auth_sql(
            "credit_release(authorization_id => ($1::text)::bigint, idempotency_key => $2)",
        ))?,
        refund: c.prepare(
            "SELECT j->>'amount' FROM (SELECT to_jsonb(r) AS j \
               FROM credit_refund(authorization_id => ($1::text)::bigint, \
                                  amount => ($2::text)::numeric, idempotency_key => $3) r) s",
        )?,
        // a wallet's grants a void may name (not lane slices), with their unspent credits
        // (slices included; held credits count: they are voided when the holds end)
        grants: c.prepare(
            "SELECT g.id::text, floor(g.remaining + coalesce((SELECT sum(x.remaining) \
                    FROM credit_ledger.grants x WHERE x.home_id = g.id), 0))::text \
               FROM credit_ledger.grants g JOIN credit_ledger.wallets w ON w.id = g.wallet_id \
              WHERE w.wallet = $1 AND g.home_id IS NULL AND g.source_id IS NULL ORDER BY g.id",
        )?,
        sleep: c.prepare("SELECT pg_sleep(($1::text)::float8 / 1000)")?,
    })
}

/// Capture (`Some(q2)`) or release (None) hold `h` inside the caller's transaction.
fn corr_finish(
    c: &mut Client,
    s: &CorrStmts,
    eff: &mut CorrTx,
    key: &mut dyn FnMut(&str) -> String,
    wrong: &mut Vec<String>,
    h: &CorrHold,
    capture: Option<u64>,
) -> Result<(), postgres::Error> {
    let id_s = h.id.to_string();
    match capture {
        Some(q2) => {
            let k = key("capture");
            eff.keys.push(k.clone());
            let a = run_auth(c, &s.capture, &[&id_s, &q2.to_string(), &k])?;
            let cost = dec(a.cost.as_deref(), "capture cost").ok();
            if a.status.as_deref() != Some("captured") || cost != Some(Decimal::from(q2)) {
                wrong.push(format!(
                    "capture of {q2} of hold {} ({} held): {a:?}",
                    h.id, h.qty
                ));
            }
            eff.count("captures");
            eff.sum("captured", Decimal::from(q2));
            eff.new_spends.push(CorrSpend {
                id: h.id,
                wallet: h.wallet.clone(),
                amount: q2,
                refunded: 0,
            });
        }
        None => {
            let k = key("release");
            eff.keys.push(k.clone());
            let a = run_auth(c, &s.release, &[&id_s, &k])?;
            if a.status.as_deref() != Some("released") {
                wrong.push(format!("release of hold {}: {a:?}", h.id));
            }
            eff.count("releases");
        }
    }
    eff.closed_holds.push(h.id);
    Ok(())
}

/// Run one operation inside the caller's transaction; answers are checked into `wrong`.
fn corr_exec(
    c: &mut Client,
    s: &CorrStmts,
    op: &CorrOp,
    eff: &mut CorrTx,
    key: &mut dyn FnMut(&str) -> String,
    rng: &mut u64,
    wrong: &mut Vec<String>,
) -> Result<(), postgres::Error> {
    match op {
        CorrOp::Transfer { from, to, amount } => {
            let k = key("transfer");
            eff.keys.push(k.clone());
            let rows = run_op(c, &s.transfer, &[from, to, &amount.to_string(), &k])?;
            if let Some((id, done, _)) = one_op(&rows, "transfer", wrong) {
                if done != Decimal::from(*amount) {
                    wrong.push(format!(
                        "transfer of {amount} from {from} to {to}: done {done}"
                    ));
                }
                eff.count("transfers");
                eff.sum("transferred", done);
                eff.done.push(CorrDone {
                    call: CorrCall::Transfer {
                        from: from.clone(),
                        to: to.clone(),
                        amount: *amount,
                    },
                    key: k,
                    op_id: id,
                    done,
                });
            }
        }
        CorrOp::Adjust { wallet, amount } => {
            let k = key("adjust");
            eff.keys.push(k.clone());
            let rows = run_op(c, &s.adjust, &[wallet, &amount.to_string(), &k])?;
            if let Some((id, done, _)) = one_op(&rows, "adjust", wrong) {
                if done != Decimal::from(*amount) {
                    wrong.push(format!("adjustment of {amount} on {wallet}: done {done}"));
                }
                if *amount > 0 {
                    eff.count("adjust_pos");
                    eff.sum("adjusted_pos", done);
                } else {
                    eff.count("adjust_neg");
                    eff.sum("adjusted_neg", -done);
                }
                eff.done.push(CorrDone {
                    call: CorrCall::Adjust {
                        wallet: wallet.clone(),
                        amount: *amount,
                    },
                    key: k,
                    op_id: id,
                    done,
                });
            }
        }
        CorrOp::Void { wallet, whole } => {
            let grants: Vec<(i64, u64)> = c
                .query(&s.grants, &[wallet])?
                .iter()
                .map(|r| {
                    let id: Option<String> = r.get(0);
                    let u: Option<String> = r.get(1);
                    (
                        id.and_then(|v| v.parse().ok()).unwrap_or(-1),
                        u.and_then(|v| v.parse().ok()).unwrap_or(0),
                    )
                })
                .collect();
            if grants.is_empty() {
                wrong.push(format!("void: {wallet} has no grants"));
                return Ok(());
            }
            // mostly a grant with credits left (a drained one is refused or voids nothing)
            let with_credits: Vec<(i64, u64)> =
                grants.iter().copied().filter(|g| g.1 > 0).collect();
            let (grant, unspent) = if !with_credits.is_empty() && xorshift(rng) % 100 < 80 {
                pick(&with_credits, rng)
            } else {
                pick(&grants, rng)
            };
            eff.void_grant = Some(grant);
            // a part: at most what it had unspent a moment ago (it may have less by the time
            // the void holds the wallet: 22023, counted); nothing left: ask 1-3 anyway
            let amount = (!whole).then(|| {
                if unspent == 0 {
                    1 + xorshift(rng) % 3
                } else {
                    1 + xorshift(rng) % unspent.min(10)
                }
            });
            let k = key("void");
            eff.keys.push(k.clone());
            let rows = run_op(
                c,
                &s.void,
                &[&grant.to_string(), &amount.map(|a| a.to_string()), &k],
            )?;
            if let Some((id, done, pending)) = one_op(&rows, "void", wrong) {
                let ok = match amount {
                    Some(a) => {
                        done >= Decimal::ZERO
                            && pending >= Decimal::ZERO
                            && done + pending == Decimal::from(a)
                    }
                    None => done >= Decimal::ZERO && pending >= Decimal::ZERO,
                };
                if !ok || rows[0].amount != amount.map(Decimal::from) {
                    wrong.push(format!(
                        "void of {amount:?} of grant {grant}: {:?}",
                        rows[0]
                    ));
                }
                eff.count(if *whole { "voids_whole" } else { "voids_part" });
                if pending > Decimal::ZERO {
                    eff.count("voids_pending");
                }
                eff.sum("voided_at_once", done);
                eff.voids.push((id, amount, done, pending));
                eff.done.push(CorrDone {
                    call: CorrCall::Void { grant, amount },
                    key: k,
                    op_id: id,
                    done,
                });
            }
        }
        CorrOp::Debit { wallet, q } | CorrOp::Hold { wallet, q, .. } => {
            let hold = matches!(op, CorrOp::Hold { .. });
            let k = key(if hold { "hold" } else { "debit" });
            eff.keys.push(k.clone());
            let st = if hold { &s.hold } else { &s.auth };
            let a = run_auth(c, st, &[wallet, &q.to_string(), &k])?;
            if !a.approved {
                let reason = a.reason.clone().unwrap_or_else(|| "<null>".into());
                if reason != "insufficient_credits" {
                    wrong.push(format!(
                        "{} of {q} on {wallet} declined: {a:?}",
                        if hold { "hold" } else { "debit" }
                    ));
                }
                eff.count("declines");
                eff.reasons.push(reason);
                return Ok(());
            }
            let cost = dec(a.cost.as_deref(), "cost").ok();
            let want = if hold { "held" } else { "approved" };
            let Some(id) = a.id else {
                wrong.push(format!("approved without an authorization_id: {a:?}"));
                return Ok(());
            };
            if cost != Some(Decimal::from(*q)) || a.status.as_deref() != Some(want) {
                wrong.push(format!("{want} {q} on {wallet}: {a:?}"));
            }
            let h = CorrHold {
                id,
                wallet: wallet.clone(),
                qty: *q,
            };
            if !hold {
                eff.count("debits");
                eff.sum("debited", Decimal::from(*q));
                eff.new_spends.push(CorrSpend {
                    id,
                    wallet: wallet.clone(),
                    amount: *q,
                    refunded: 0,
                });
            } else if let CorrOp::Hold {
                finish: Some(capture),
                ..
            } = op
            {
                eff.count("holds");
                eff.count("same_tx_closes");
                corr_finish(c, s, eff, key, wrong, &h, *capture)?;
            } else {
                eff.count("holds");
                eff.new_holds.push(h);
            }
        }
        CorrOp::Finish { hold, capture } => {
            eff.count("later_closes");
            corr_finish(c, s, eff, key, wrong, hold, *capture)?;
        }
        CorrOp::Refund { spend, amount } => {
            let k = key("refund");
            eff.keys.push(k.clone());
            let rows = c.query(&s.refund, &[&spend.id.to_string(), &amount.to_string(), &k])?;
            let got = rows
                .first()
                .and_then(|r| r.get::<_, Option<String>>(0))
                .and_then(|v| Decimal::from_str(&v).ok());
            if got != Some(Decimal::from(*amount)) {
                wrong.push(format!(
                    "refund of {amount} of authorization {}: {got:?}",
                    spend.id
                ));
            }
            eff.count("refunds");
            eff.sum("refunded", Decimal::from(*amount));
            eff.refunded.push((spend.id, *amount));
        }
        CorrOp::Retry { prev } => {
            let rows = match &prev.call {
                CorrCall::Transfer { from, to, amount } => {
                    run_op(c, &s.transfer, &[from, to, &amount.to_string(), &prev.key])?
                }
                CorrCall::Adjust { wallet, amount } => {
                    run_op(c, &s.adjust, &[wallet, &amount.to_string(), &prev.key])?
                }
                CorrCall::Void { grant, amount } => run_op(
                    c,
                    &s.void,
                    &[
                        &grant.to_string(),
                        &amount.map(|a| a.to_string()),
                        &prev.key,
                    ],
                )?,
            };
            let kind = match prev.call {
                CorrCall::Transfer { .. } => "transfer",
                CorrCall::Adjust { .. } => "adjust",
                CorrCall::Void { .. } => "void",
            };
            if let Some((id, done, _)) = one_op(&rows, kind, wrong) {
                // a void's done may have grown since (credits given back to its grant)
                let same = match prev.call {
                    CorrCall::Void { .. } => done >= prev.done,
                    _ => done == prev.done,
                };
                if id != prev.op_id || !same {
                    wrong.push(format!(
                        "retry of operation {} ({kind}, done {}) returned operation {id}, done {done}",
                        prev.op_id, prev.done
                    ));
                }
            }
            eff.count("retries");
        }
    }
    Ok(())
}

/// The number after `pat` in `msg`.
fn num_after(msg: &str, pat: &str) -> Option<Decimal> {
    let at = msg.find(pat)? + pat.len();
    let n: String = msg[at..]
        .chars()
        .take_while(|ch| ch.is_ascii_digit() || *ch == '.' || *ch == '-')
        .collect();
    Decimal::from_str(n.trim_end_matches('.')).ok()
}

/// An error that the scenario expects for `op`.
enum CorrRefusal {
    /// 55000: a wallet of the operation is closed
    Closed(String),
    /// 55000: the hold was released by its wallet's close
    HoldGone(i64),
    /// 55000: a void of an expired grant
    GrantExpired(i64),
    /// 53400: a transfer or a negative adjustment larger than what the wallet can spend
    Short,
    /// 22023: a partial void larger than what the grant had left when the void got the wallet
    VoidShort,
}

fn corr_classify(e: &postgres::Error, op: &CorrOp, void_grant: Option<i64>) -> Option<CorrRefusal> {
    let db = e.as_db_error()?;
    let msg = db.message();
    match db.code().code() {
        "55000" => {
            if let Some(rest) = msg.strip_prefix("wallet \"") {
                let w = rest.strip_suffix("\" is closed")?;
                return (corr_closing(w) && op.wallets().contains(&w))
                    .then(|| CorrRefusal::Closed(w.to_string()));
            }
            if let CorrOp::Finish { hold, .. } = op {
                let ok = (msg.starts_with("cannot capture hold")
                    || msg.starts_with("cannot release hold"))
                    && msg.ends_with("it was released")
                    && corr_closing(&hold.wallet);
                return ok.then_some(CorrRefusal::HoldGone(hold.id));
            }
            if let (CorrOp::Void { .. }, Some(g)) = (op, void_grant) {
                return (msg == format!("grant {g} has expired"))
                    .then_some(CorrRefusal::GrantExpired(g));
            }
            None
        }
        "53400" => {
            let applies = match op {
                CorrOp::Transfer { .. } => msg.ends_with(" to transfer"),
                CorrOp::Adjust { amount, .. } => *amount < 0 && msg.ends_with(" to take"),
                _ => false,
            };
            let has = num_after(msg, "\" has ")?;
            let want = num_after(msg, "less than the ")?;
            (applies && has < want).then_some(CorrRefusal::Short)
        }
        "22023" => {
            let CorrOp::Void { whole: false, .. } = op else {
                return None;
            };
            let a = num_after(msg, "amount ")?;
            let u = num_after(msg, "more than the ")?;
            (msg.contains("unspent credits of grant") && u < a).then_some(CorrRefusal::VoidShort)
        }
        _ => None,
    }
}

/// What a session needs besides its connection.
struct CorrCtx {
    i: usize,
    deadline: Instant,
    budget: Instant,
    sh: Arc<CorrShared>,
}

/// One transaction `BEGIN; <op>; [pg_sleep]; COMMIT|ROLLBACK`, its effects applied to the model
/// only when COMMIT returned. False: start nothing more (deadline or time budget).
fn corr_tx(
    c: &mut Client,
    s: &CorrStmts,
    x: &CorrCtx,
    t: &mut CorrTally,
    rng: &mut u64,
    seq: &mut u64,
    op: CorrOp,
) -> bool {
    if Instant::now() > x.deadline {
        x.sh.problems
            .lock()
            .unwrap()
            .add(format!("session {}: deadline reached", x.i));
        return false;
    }
    if Instant::now() > x.budget {
        // the scenario's time budget (--corr-secs): reported, not a failure
        x.sh.cut.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    x.sh.progress.fetch_add(1, Ordering::Relaxed);
    t.add("tx", 1);
    // the wallets of this operation whose close had committed before it began: it must fail
    // with 55000 (a retry writes nothing and names no wallet)
    let closed_before: Vec<String> = {
        let closed = x.sh.closed.lock().unwrap();
        op.wallets()
            .into_iter()
            .filter(|w| closed.contains(*w))
            .map(str::to_string)
            .collect()
    };
    let sleep_ms = if xorshift(rng) % 100 < 25 {
        Some(2 + xorshift(rng) % 14)
    } else {
        None
    };
    let rollback = xorshift(rng) % 100 < 20;
    let mut eff = CorrTx::default();
    let mut wrong = Vec::new();
    let i = x.i;
    let t0 = Instant::now();
    let res = (|| -> Result<(), postgres::Error> {
        c.batch_execute("BEGIN")?;
        let mut key = |what: &str| {
            *seq += 1;
            format!("corr-s{i}-{seq}-{what}")
        };
        corr_exec(c, s, &op, &mut eff, &mut key, rng, &mut wrong)?;
        if let Some(ms) = sleep_ms {
            c.query(&s.sleep, &[&ms.to_string()])?;
        }
        c.batch_execute(if rollback { "ROLLBACK" } else { "COMMIT" })?;
        Ok(())
    })();
    let ms = t0.elapsed().as_secs_f64() * 1000.0 - sleep_ms.unwrap_or(0) as f64;
    t.max_tx_ms = t.max_tx_ms.max(ms);
    if let Some(ms) = sleep_ms {
        t.add("slept", 1);
        t.add("sleep_ms", ms);
    }
    let retry = matches!(op, CorrOp::Retry { .. });
    match res {
        Ok(()) => {
            if !closed_before.is_empty() {
                wrong.push(format!(
                    "accepted (no 55000) although {closed_before:?} had been closed before the transaction began"
                ));
            }
            if rollback {
                t.add("rolled_back", 1);
                if !retry {
                    t.rolled_keys.extend(eff.keys);
                }
            } else {
                t.add("committed", 1);
                for (k, v) in eff.n {
                    t.add(k, v);
                }
                for (k, v) in eff.sums {
                    *t.sums.entry(k).or_default() += v;
                }
                for r in eff.reasons {
                    *t.reasons.entry(r).or_default() += 1;
                }
                if !retry {
                    t.committed_keys.extend(eff.keys);
                }
                t.holds.retain(|h| !eff.closed_holds.contains(&h.id));
                t.holds.extend(eff.new_holds);
                t.spends.extend(eff.new_spends);
                for (id, a) in eff.refunded {
                    if let Some(sp) = t.spends.iter_mut().find(|sp| sp.id == id) {
                        sp.refunded += a;
                    }
                }
                t.done.extend(eff.done);
                t.voids.extend(eff.voids);
            }
        }
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK");
            if !retry {
                t.rolled_keys.extend(eff.keys);
            }
            let refusal = corr_classify(&e, &op, eff.void_grant);
            if !closed_before.is_empty()
                && !matches!(
                    refusal,
                    Some(CorrRefusal::Closed(_) | CorrRefusal::HoldGone(_))
                )
            {
                wrong.push(format!(
                    "{} although {closed_before:?} had been closed before the transaction began (55000 expected)",
                    err_text(&e)
                ));
            }
            match refusal {
                Some(CorrRefusal::Closed(w)) => {
                    t.add("refused_closed", 1);
                    // a refund or a later close of a hold of a closed wallet: no use trying again
                    if let CorrOp::Refund { spend, .. } = &op {
                        t.spends.retain(|sp| sp.id != spend.id);
                    }
                    if let CorrOp::Finish { hold, .. } = &op {
                        t.holds.retain(|h| h.id != hold.id);
                        t.gone_holds.push(hold.id);
                    }
                    t.closed_hits.push(w);
                }
                Some(CorrRefusal::HoldGone(id)) => {
                    t.add("refused_released", 1);
                    t.holds.retain(|h| h.id != id);
                    t.gone_holds.push(id);
                }
                Some(CorrRefusal::GrantExpired(g)) => {
                    t.add("refused_expired", 1);
                    t.expired_grants.push(g);
                }
                Some(CorrRefusal::Short) => t.add("refused_short", 1),
                Some(CorrRefusal::VoidShort) => t.add("refused_void_short", 1),
                None => {
                    t.add("failed_tx", 1);
                    let msg = format!("session {i}: {} in {op:?}", err_text(&e));
                    if sqlstate(&e) == "40P01" {
                        t.add("deadlocks", 1);
                        x.sh.deadlocks.lock().unwrap().add(msg);
                    } else {
                        x.sh.problems.lock().unwrap().add(msg);
                    }
                }
            }
        }
    }
    if !wrong.is_empty() {
        let mut w = x.sh.wrong.lock().unwrap();
        for m in wrong {
            w.add(format!("session {i}: {m} [{op:?}]"));
        }
    }
    true
}

/// Two distinct wallets for a transfer, in a random direction: a member and its pool (20 %),
/// one of two fixed pairs (30 %: both directions between the same wallets, one pair with the
/// lanes wallet), two members (10 %), any two (40 %).
fn corr_pair(rng: &mut u64, all: &[String]) -> (String, String) {
    let r = xorshift(rng) % 100;
    let two = |rng: &mut u64, v: &[String]| {
        let a = pick(v, rng);
        let mut b = pick(v, rng);
        while b == a {
            b = pick(v, rng);
        }
        (a, b)
    };
    let (a, b) = match r {
        0..=19 => (
            corr_wallet((xorshift(rng) % CORR_MEMBERS as u64) as usize),
            CORR_POOL.to_string(),
        ),
        20..=34 => ("corr.w05".to_string(), "corr.w06".to_string()),
        35..=49 => (CORR_LANES_WALLET.to_string(), "corr.w07".to_string()),
        50..=59 => {
            let members: Vec<String> = (0..CORR_MEMBERS).map(corr_wallet).collect();
            two(rng, &members)
        }
        _ => two(rng, all),
    };
    if xorshift(rng).is_multiple_of(2) {
        (a, b)
    } else {
        (b, a)
    }
}

/// The next operation of a session, from its model.
fn corr_pick(rng: &mut u64, t: &CorrTally, all: &[String]) -> CorrOp {
    let roll = xorshift(rng) % 100;
    let wallet = pick(all, rng);
    let q = 1 + xorshift(rng) % 5;
    let refundable: Vec<&CorrSpend> = t
        .spends
        .iter()
        .filter(|sp| sp.refunded < sp.amount)
        .collect();
    match roll {
        0..=26 => {
            let (from, to) = corr_pair(rng, all);
            CorrOp::Transfer {
                from,
                to,
                amount: 1 + xorshift(rng) % 25,
            }
        }
        27..=44 => CorrOp::Debit { wallet, q },
        45..=56 => {
            let finish = (xorshift(rng) % 100 < 40)
                .then(|| (xorshift(rng) % 100 < 60).then(|| 1 + xorshift(rng) % q));
            CorrOp::Hold { wallet, q, finish }
        }
        57..=64 if !t.holds.is_empty() => {
            let hold = pick(&t.holds, rng);
            let capture = (xorshift(rng) % 100 < 60).then(|| 1 + xorshift(rng) % hold.qty);
            CorrOp::Finish { hold, capture }
        }
        65..=71 if !refundable.is_empty() => {
            let spend = refundable[(xorshift(rng) % refundable.len() as u64) as usize].clone();
            let left = spend.amount - spend.refunded;
            let amount = if xorshift(rng).is_multiple_of(2) {
                left
            } else {
                1 + xorshift(rng) % left
            };
            CorrOp::Refund { spend, amount }
        }
        72..=77 => CorrOp::Void {
            wallet,
            whole: false,
        },
        78..=79 => CorrOp::Void {
            wallet,
            whole: true,
        },
        80..=87 => CorrOp::Adjust {
            wallet,
            amount: 1 + (xorshift(rng) % 20) as i64,
        },
        88..=96 => CorrOp::Adjust {
            wallet,
            amount: -1 - (xorshift(rng) % 20) as i64,
        },
        97..=99 if !t.done.is_empty() => CorrOp::Retry {
            prev: pick(&t.done, rng),
        },
        _ => CorrOp::Debit { wallet, q },
    }
}

/// A close made by the closing session: what it returned, and the last ids of the journal,
/// authorizations, operations and refunds once it had committed.
#[derive(Clone, Debug)]
struct CorrClose {
    wallet: String,
    to: Option<String>,
    op_id: i64,
    done: Decimal,
    after: [i64; 4],
}

fn scenario_corrections(base: &Config, o: &Opts, deadline: Instant) -> Result<Verdict, String> {
    let sessions = o.sessions;
    let txs = o.corr_tx;
    let all = corr_all();
    let grants = corr_setup_grants();
    let granted: u64 = grants.iter().map(|g| g.1).sum();
    {
        let mut c = connect(base, &o.database)?;
        let mut sql = format!("SELECT credit_wallet_create(wallet => '{CORR_POOL}');");
        for i in 0..CORR_WALLETS {
            let w = corr_wallet(i);
            if i < CORR_MEMBERS {
                sql.push_str(&format!(
                    " SELECT credit_wallet_create(wallet => '{w}', parent => '{CORR_POOL}');"
                ));
            } else {
                sql.push_str(&format!(" SELECT credit_wallet_create(wallet => '{w}');"));
            }
        }
        sql.push_str(&format!(
            " SELECT credit_wallet_lanes(wallet => '{CORR_LANES_WALLET}', lanes => 4);"
        ));
        for (w, amount, promo, short) in &grants {
            if *promo {
                let expiry = if *short {
                    format!("now() + interval '{CORR_SHORT_EXPIRY_MS} milliseconds'")
                } else {
                    "now() + interval '30 days'".to_string()
                };
                sql.push_str(&format!(
                    " SELECT credit_grant(wallet => '{w}', amount => {amount}, \
                       category => 'promotional', expires_at => {expiry});"
                ));
            } else {
                sql.push_str(&format!(
                    " SELECT credit_grant(wallet => '{w}', amount => {amount}, unit_price => 0.01);"
                ));
            }
        }
        c.batch_execute(&sql)
            .map_err(|e| format!("setup of the corrections wallets: {}", err_text(&e)))?;
    }

    let sh = Arc::new(CorrShared::default());
    let tallies = Arc::new(Mutex::new(Vec::<CorrTally>::new()));
    let barrier = Arc::new(Barrier::new(sessions + 2));
    let done = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..sessions {
        clients.push(connect(base, &o.database)?);
    }
    let mut sweeper = connect(base, &o.database)?;
    let mut closer = connect(base, &o.database)?;

    // the sweep session: credit_expire() in a loop; what it expired, summed
    let sweep_handle = {
        let (done, barrier, sh) = (done.clone(), barrier.clone(), sh.clone());
        thread::spawn(move || -> (u64, Decimal) {
            barrier.wait();
            let mut n = 0u64;
            let mut expired = Decimal::ZERO;
            while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                match sweeper.query("SELECT credits_expired::text FROM credit_expire()", &[]) {
                    Ok(rows) => {
                        for r in rows {
                            let v: Option<String> = r.get(0);
                            expired += v
                                .and_then(|v| Decimal::from_str(&v).ok())
                                .unwrap_or_default();
                        }
                    }
                    Err(e) => {
                        let msg = format!("sweeper: credit_expire(): {}", err_text(&e));
                        if sqlstate(&e) == "40P01" {
                            sh.deadlocks.lock().unwrap().add(msg);
                        } else {
                            sh.problems.lock().unwrap().add(msg);
                        }
                    }
                }
                n += 1;
                thread::sleep(Duration::from_millis(50));
            }
            (n, expired)
        })
    };

    // the closing session: once 70 % of the transactions have started (or the sessions are
    // done), closes the wallets of CORR_CLOSES one by one, each in a transaction kept open
    // 20 ms, while the other sessions still hit them
    let close_handle = {
        let (done, barrier, sh) = (done.clone(), barrier.clone(), sh.clone());
        let target = sessions * txs * 7 / 10;
        thread::spawn(move || -> Vec<CorrClose> {
            let mut out = Vec::new();
            barrier.wait();
            while sh.progress.load(Ordering::Relaxed) < target
                && !done.load(Ordering::Relaxed)
                && Instant::now() < deadline
            {
                thread::sleep(Duration::from_millis(5));
            }
            let st = match closer.prepare(&op_sql(
                "credit_wallet_close(wallet => $1, disposition => $2, to_wallet => $3, \
                 reason => 'stress close', idempotency_key => $4)",
            )) {
                Ok(st) => st,
                Err(e) => {
                    sh.problems
                        .lock()
                        .unwrap()
                        .add(format!("closer: prepare: {}", err_text(&e)));
                    return out;
                }
            };
            for (n, (w, to)) in CORR_CLOSES.iter().enumerate() {
                let key = format!("corr-close-{n}");
                let disposition = if to.is_some() { "transfer" } else { "expire" };
                let to_s = to.map(str::to_string);
                let res = (|| -> Result<Vec<OpRow>, postgres::Error> {
                    closer.batch_execute("BEGIN")?;
                    let rows = run_op(&mut closer, &st, &[w, &disposition, &to_s, &key])?;
                    closer.batch_execute("SELECT pg_sleep(0.02); COMMIT")?;
                    Ok(rows)
                })();
                let rows = match res {
                    Ok(rows) => rows,
                    Err(e) => {
                        let _ = closer.batch_execute("ROLLBACK");
                        let msg = format!("closer: close of {w}: {}", err_text(&e));
                        if sqlstate(&e) == "40P01" {
                            sh.deadlocks.lock().unwrap().add(msg);
                        } else {
                            sh.problems.lock().unwrap().add(msg);
                        }
                        continue;
                    }
                };
                let mut wrong = Vec::new();
                let Some((op_id, done_c, _)) = one_op(&rows, "close", &mut wrong) else {
                    for m in wrong {
                        sh.wrong.lock().unwrap().add(format!("closer: {w}: {m}"));
                    }
                    continue;
                };
                let after = closer.query_one(
                    "SELECT (SELECT coalesce(max(id), 0) FROM credit_ledger.journal),
                            (SELECT coalesce(max(id), 0) FROM credit_ledger.authorizations),
                            (SELECT coalesce(max(id), 0) FROM credit_ledger.operations),
                            (SELECT coalesce(max(id), 0) FROM credit_ledger.refunds)",
                    &[],
                );
                let after = match after {
                    Ok(r) => [r.get(0), r.get(1), r.get(2), r.get(3)],
                    Err(e) => {
                        sh.problems
                            .lock()
                            .unwrap()
                            .add(format!("closer: last ids: {}", err_text(&e)));
                        [i64::MAX; 4]
                    }
                };
                sh.closed.lock().unwrap().insert(w.to_string());
                // the same close again with its key: the first result, nothing written
                match run_op(&mut closer, &st, &[w, &disposition, &to_s, &key]) {
                    Ok(again) => {
                        if again.len() != 1
                            || again[0].id != Some(op_id)
                            || again[0].done != Some(done_c)
                        {
                            sh.wrong.lock().unwrap().add(format!(
                                "closer: the retry of the close of {w} (operation {op_id}, done {done_c}) returned {again:?}"
                            ));
                        }
                    }
                    Err(e) => sh.wrong.lock().unwrap().add(format!(
                        "closer: the retry of the close of {w}: {}",
                        err_text(&e)
                    )),
                }
                out.push(CorrClose {
                    wallet: w.to_string(),
                    to: to_s,
                    op_id,
                    done: done_c,
                    after,
                });
                thread::sleep(Duration::from_millis(150));
            }
            out
        })
    };

    let started = Instant::now();
    let mut handles = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        let x = CorrCtx {
            i,
            deadline,
            budget: started + o.corr_budget,
            sh: sh.clone(),
        };
        let (tallies, barrier, all) = (tallies.clone(), barrier.clone(), all.clone());
        let mut rng = o
            .seed
            .wrapping_mul(0xE703_7ED1_A0B4_28DB)
            .wrapping_add(i as u64 * 2_654_435_761 + 23)
            | 1;
        handles.push(thread::spawn(move || {
            let s = match corr_prepare(&mut c) {
                Ok(s) => s,
                Err(e) => {
                    x.sh.problems
                        .lock()
                        .unwrap()
                        .add(format!("session {i}: prepare: {}", err_text(&e)));
                    barrier.wait();
                    return;
                }
            };
            let mut t = CorrTally::default();
            let mut seq = 0u64;
            barrier.wait();
            for _ in 0..txs {
                let op = corr_pick(&mut rng, &t, &all);
                if !corr_tx(&mut c, &s, &x, &mut t, &mut rng, &mut seq, op) {
                    break;
                }
            }
            tallies.lock().unwrap().push(t);
        }));
    }
    let mut panicked = false;
    for h in handles {
        panicked |= h.join().is_err();
    }
    done.store(true, Ordering::Relaxed);
    let closes = close_handle.join();
    let sweeps = sweep_handle.join();
    panicked |= closes.is_err() || sweeps.is_err();
    if panicked {
        return Err("a session thread panicked".into());
    }
    let closes = closes.unwrap_or_default();
    let (sweeps, mut swept) = sweeps.unwrap_or_default();
    let elapsed = started.elapsed().as_secs_f64();

    // one model: the sessions' tallies added up
    let mut t = CorrTally::default();
    for s in std::mem::take(&mut *tallies.lock().unwrap()) {
        for (k, v) in s.n {
            t.add(k, v);
        }
        for (k, v) in s.sums {
            *t.sums.entry(k).or_default() += v;
        }
        for (k, v) in s.reasons {
            *t.reasons.entry(k).or_default() += v;
        }
        t.committed_keys.extend(s.committed_keys);
        t.rolled_keys.extend(s.rolled_keys);
        t.holds.extend(s.holds);
        t.spends.extend(s.spends);
        t.done.extend(s.done);
        t.voids.extend(s.voids);
        t.gone_holds.extend(s.gone_holds);
        t.expired_grants.extend(s.expired_grants);
        t.closed_hits.extend(s.closed_hits);
        t.max_tx_ms = t.max_tx_ms.max(s.max_tx_ms);
    }

    let mut c = connect(base, &o.database)?;
    let mut notes = Vec::new();
    let q = |c: &mut Client, sql: &str, what: &str| text_rows(c, sql, what);
    let d = |v: &Option<String>| text_dec(v, "figure");
    let closed: Vec<String> = closes.iter().map(|x| x.wallet.clone()).collect();
    if closed.len() != CORR_CLOSES.len() {
        notes.push(format!(
            "only {} of the {} closes went through: {closed:?}",
            closed.len(),
            CORR_CLOSES.len()
        ));
    }

    // the system is quiet: release every hold the model believes open (those of a closed
    // wallet were released by the close: checked below with the holds whose finish said so)
    let st_release = c
        .prepare(&auth_sql(
            "credit_release(authorization_id => ($1::text)::bigint)",
        ))
        .map_err(|e| err_text(&e))?;
    let mut final_released = 0u64;
    let mut gone = std::mem::take(&mut t.gone_holds);
    for h in &t.holds {
        if closed.contains(&h.wallet) {
            gone.push(h.id);
            continue;
        }
        match run_auth(&mut c, &st_release, &[&h.id.to_string()]) {
            Ok(a) if a.status.as_deref() == Some("released") => final_released += 1,
            Ok(a) => notes.push(format!("final release of hold {}: {a:?}", h.id)),
            Err(e) => notes.push(format!("final release of hold {}: {}", h.id, err_text(&e))),
        }
    }
    if !gone.is_empty() {
        let ids: Vec<String> = gone.iter().map(|x| x.to_string()).collect();
        let bad = q(
            &mut c,
            &format!(
                "SELECT a.id::text, a.status, a.reason FROM credit_ledger.authorizations a
                  WHERE a.id IN ({}) AND (a.status <> 'released' OR a.reason IS DISTINCT FROM 'wallet_closed')
                  ORDER BY a.id",
                ids.join(",")
            ),
            "holds released by a close",
        )?;
        if !bad.is_empty() {
            notes.push(format!(
                "{} holds of closed wallets not released by the close (id, status, reason): {:?}",
                bad.len(),
                bad.iter().take(8).collect::<Vec<_>>()
            ));
        }
    }
    // the 55000s: the wallets named were closed, the grants named had expired
    for w in &t.closed_hits {
        if !closed.contains(w) {
            notes.push(format!("a 55000 said {w} was closed; it was never closed"));
            break;
        }
    }
    if !t.expired_grants.is_empty() {
        let ids: Vec<String> = t.expired_grants.iter().map(|x| x.to_string()).collect();
        let bad = q(
            &mut c,
            &format!(
                "SELECT g.id::text FROM credit_ledger.grants g
                  WHERE g.id IN ({}) AND (g.expires_at IS NULL OR g.expires_at > now())",
                ids.join(",")
            ),
            "expired grants",
        )?;
        if !bad.is_empty() {
            notes.push(format!(
                "voids refused with 'has expired' on grants that have not expired: {bad:?}"
            ));
        }
    }
    // a last sweep (bounded): what has expired by now is breakage
    for _ in 0..20 {
        let r = c
            .query_one(
                "SELECT coalesce(sum(credits_expired), 0)::text, bool_or(more) FROM credit_expire()",
                &[],
            )
            .map_err(|e| format!("final credit_expire(): {}", err_text(&e)))?;
        swept += text_dec(&r.get::<_, Option<String>>(0), "credits_expired")?;
        if r.get::<_, Option<bool>>(1) != Some(true) {
            break;
        }
    }

    let wallets_sql = "(SELECT id FROM credit_ledger.wallets WHERE wallet LIKE 'corr.%')";
    // the journal of the scenario's wallets by kind, by the kind of operation that wrote it
    // and whether an authorization did
    let journal = q(
        &mut c,
        &format!(
            "SELECT j.kind, coalesce(o.kind, '-'), CASE WHEN j.authorization_id IS NULL THEN '-' ELSE 'a' END,
                    sum(j.amount)::text, sum(j.held)::text, count(*)::text,
                    count(*) FILTER (WHERE j.grant_id IS NULL)::text
               FROM credit_ledger.journal j LEFT JOIN credit_ledger.operations o ON o.id = j.operation_id
              WHERE j.wallet_id IN {wallets_sql}
              GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ),
        "journal by kind",
    )?;
    let mut jsum: BTreeMap<(String, String, String), Decimal> = BTreeMap::new();
    let mut debt_rows = 0u64;
    let mut j_total = Decimal::ZERO;
    let mut j_held = Decimal::ZERO;
    for r in &journal {
        let k = (
            r[0].clone().unwrap_or_default(),
            r[1].clone().unwrap_or_default(),
            r[2].clone().unwrap_or_default(),
        );
        let amount = d(&r[3])?;
        j_total += amount;
        j_held += d(&r[4])?;
        debt_rows += r[6].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
        jsum.insert(k, amount);
    }
    let js = |kind: &str, op: Option<&str>, auth: Option<&str>| -> Decimal {
        jsum.iter()
            .filter(|((k, o, a), _)| {
                k == kind && op.is_none_or(|x| x == o) && auth.is_none_or(|x| x == a)
            })
            .map(|(_, v)| *v)
            .sum()
    };
    let known = [
        "grant",
        "debit",
        "hold",
        "capture",
        "release",
        "refund",
        "adjustment",
        "expiry",
        "transfer",
        "lane",
    ];
    let odd: Vec<_> = jsum
        .iter()
        .filter(|((k, _, _), v)| !known.contains(&k.as_str()) && **v != Decimal::ZERO)
        .collect();
    if !odd.is_empty() {
        notes.push(format!("journal entries of unexpected kinds: {odd:?}"));
    }
    if debt_rows != 0 {
        notes.push(format!(
            "{debt_rows} journal entries without a grant (debt): no wallet has an overdraft"
        ));
    }
    let j_grant = js("grant", None, None);
    let j_grant_adj = js("grant", Some("adjust"), None);
    let j_spent = -(js("debit", None, None) + js("capture", None, None) + js("refund", None, None));
    let j_adj_neg = -js("adjustment", Some("adjust"), None);
    let j_void = -js("adjustment", Some("void"), None);
    let j_adj_other = js("adjustment", None, None) + j_adj_neg + j_void;
    let j_expired = -js("expiry", None, None);
    let j_exp_close = -js("expiry", Some("close"), None);
    let j_exp_sweep = -js("expiry", Some("-"), Some("-"));
    let j_exp_holds = -js("expiry", Some("-"), Some("a"));
    let j_transfer = js("transfer", None, None);
    let j_lane = js("lane", None, None);

    // grants: Σ remaining and held over every row (lane slices included)
    let g = q(
        &mut c,
        &format!(
            "SELECT coalesce(sum(remaining), 0)::text, coalesce(sum(held), 0)::text, count(*)::text,
                    count(*) FILTER (WHERE transfer_of IS NOT NULL)::text,
                    (SELECT coalesce(sum(debt), 0) FROM credit_ledger.wallet_assets WHERE wallet_id IN {wallets_sql})::text,
                    (SELECT min(credit_balance(wallet)) FROM credit_ledger.wallets WHERE wallet LIKE 'corr.%')::text
               FROM credit_ledger.grants WHERE wallet_id IN {wallets_sql}"
        ),
        "grants",
    )?;
    let remaining = d(&g[0][0])?;
    let held = d(&g[0][1])?;
    let grant_rows = g[0][2].clone().unwrap_or_default();
    let transfer_grants = g[0][3].clone().unwrap_or_default();
    let debt = d(&g[0][4])?;
    let min_balance = d(&g[0][5])?;

    // the client's figures (committed transactions only)
    let granted_d = Decimal::from(granted);
    let adj_pos = t.sum("adjusted_pos");
    let adj_neg = t.sum("adjusted_neg");
    let spent = t.sum("debited") + t.sum("captured") - t.sum("refunded");
    let voided_at_once = t.sum("voided_at_once");

    if remaining != j_total {
        notes.push(format!(
            "Σ remaining over every grant row {remaining} != Σ of the journal's amounts {j_total}"
        ));
    }
    if held != Decimal::ZERO || j_held != Decimal::ZERO {
        notes.push(format!(
            "{held} still held ({j_held} by the journal) after every hold was released"
        ));
    }
    if debt != Decimal::ZERO || min_balance < Decimal::ZERO {
        notes.push(format!(
            "OVERSPEND: debt {debt}, lowest balance {min_balance}"
        ));
    }
    if j_grant != granted_d + adj_pos || j_grant_adj != adj_pos {
        notes.push(format!(
            "granted by the journal {j_grant} ({j_grant_adj} by adjustments) != setup {granted} + positive adjustments {adj_pos} (client)"
        ));
    }
    if j_adj_neg != adj_neg {
        notes.push(format!(
            "negative adjustments: journal {j_adj_neg}, client {adj_neg}"
        ));
    }
    if j_adj_other != Decimal::ZERO {
        notes.push(format!(
            "adjustment entries of neither an adjustment nor a void: {j_adj_other}"
        ));
    }
    if j_spent != spent {
        notes.push(format!(
            "spent (debits + captures - refunds): journal {j_spent}, client {spent} ({} + {} - {})",
            t.sum("debited"),
            t.sum("captured"),
            t.sum("refunded")
        ));
    }
    if j_transfer != Decimal::ZERO || j_lane != Decimal::ZERO {
        notes.push(format!(
            "transfer entries net {j_transfer}, lane moves net {j_lane} (both must be 0)"
        ));
    }
    if j_exp_sweep != swept {
        notes.push(format!(
            "expiry by credit_expire(): journal {j_exp_sweep}, credit_expire() returned {swept}"
        ));
    }
    if j_void < voided_at_once {
        notes.push(format!(
            "voided by the journal {j_void} < what the committed voids returned {voided_at_once}"
        ));
    }
    let expect = granted_d + adj_pos - adj_neg - j_void - spent - j_expired;
    if remaining != expect {
        notes.push(format!(
            "CONSERVATION: Σ remaining {remaining} != granted {granted} + adjusted {adj_pos} - {adj_neg} - voided {j_void} - spent {spent} - expired {j_expired} = {expect}"
        ));
    }

    // operations: the committed ones of the model, and each one's journal entries
    let ops = q(
        &mut c,
        &format!(
            "SELECT o.id::text, o.kind, o.amount::text, o.done::text, o.pending::text, o.open::text,
                    coalesce(sum(j.amount) FILTER (WHERE j.kind = 'transfer' AND j.amount > 0), 0)::text,
                    coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'transfer' AND j.amount < 0), 0)::text,
                    coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'adjustment'), 0)::text,
                    coalesce(-sum(j.amount) FILTER (WHERE j.kind = 'expiry'), 0)::text,
                    coalesce(sum(j.amount) FILTER (WHERE j.kind = 'grant'), 0)::text,
                    coalesce(sum(j.amount) FILTER (WHERE j.kind NOT IN ('transfer', 'adjustment', 'expiry', 'grant', 'lane')), 0)::text
               FROM credit_ledger.operations o LEFT JOIN credit_ledger.journal j ON j.operation_id = o.id
              WHERE o.wallet_id IN {wallets_sql}
              GROUP BY o.id ORDER BY o.id"
        ),
        "operations",
    )?;
    let model: BTreeMap<i64, &CorrDone> = t.done.iter().map(|x| (x.op_id, x)).collect();
    let voids_m: BTreeMap<i64, (Option<u64>, Decimal, Decimal)> =
        t.voids.iter().map(|v| (v.0, (v.1, v.2, v.3))).collect();
    let mut op_notes = Problems::default();
    let mut ops_by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut server_void_done = Decimal::ZERO;
    let mut server_transfer_done = Decimal::ZERO;
    let mut void_pending = Decimal::ZERO;
    let mut stale_pending = Decimal::ZERO;
    let mut seen = std::collections::HashSet::new();
    for r in &ops {
        let id: i64 = r[0].as_deref().and_then(|v| v.parse().ok()).unwrap_or(-1);
        let kind = r[1].clone().unwrap_or_default();
        let amount = r[2].as_deref().and_then(|v| Decimal::from_str(v).ok());
        let (done_s, pending) = (d(&r[3])?, d(&r[4])?);
        let open = r[5].as_deref() == Some("true");
        let (t_in, t_out, adj, exp, gr, other) = (
            d(&r[6])?,
            d(&r[7])?,
            d(&r[8])?,
            d(&r[9])?,
            d(&r[10])?,
            d(&r[11])?,
        );
        *ops_by_kind.entry(kind.clone()).or_default() += 1;
        seen.insert(id);
        let z = Decimal::ZERO;
        let entries_ok = other == z
            && match kind.as_str() {
                "transfer" => t_in == done_s && t_out == done_s && adj == z && exp == z && gr == z,
                "void" => adj == done_s && t_in == z && t_out == z && exp == z && gr == z,
                "adjust" if done_s > z => gr == done_s && adj == z && t_in == z && t_out == z,
                "adjust" => adj == -done_s && gr == z && t_in == z && t_out == z,
                "close" => exp + t_out == done_s && t_in == t_out && adj == z && gr == z,
                _ => false,
            };
        if !entries_ok {
            op_notes.add(format!(
                "operation {id} ({kind}, done {done_s}): journal transfer in {t_in} out {t_out}, adjustment {adj}, expiry {exp}, grant {gr}, other {other}"
            ));
        }
        if kind == "transfer" {
            server_transfer_done += done_s;
        }
        if kind == "void" {
            server_void_done += done_s;
            if amount.is_some() {
                void_pending += pending;
            } else {
                stale_pending += pending;
            }
            match voids_m.get(&id) {
                Some((asked, at_once, _)) => {
                    let ok = match asked {
                        // no hold is open any more: a void waits for nothing (what the holds
                        // captured never came back, what they released was voided), so a
                        // partial void did at most what it asked and is done
                        Some(a) => {
                            amount == Some(Decimal::from(*a))
                                && done_s >= *at_once
                                && done_s <= Decimal::from(*a)
                                && pending == z
                                && !open
                        }
                        // a whole void stays open for good, waiting for nothing now
                        None => amount.is_none() && done_s >= *at_once && open && pending == z,
                    };
                    if !ok {
                        op_notes.add(format!(
                            "void {id} (asked {asked:?}, done {at_once} at once): now amount {amount:?} done {done_s} pending {pending} open {open}"
                        ));
                    }
                }
                None => op_notes.add(format!("void {id} on the server, not in the model")),
            }
        } else if kind != "close" {
            match model.get(&id) {
                Some(m) if m.done == done_s => {}
                Some(m) => op_notes.add(format!(
                    "operation {id} ({kind}): done {done_s}, the model {}",
                    m.done
                )),
                None => op_notes.add(format!(
                    "operation {id} ({kind}) on the server, not in the model"
                )),
            }
        } else {
            match closes.iter().find(|x| x.op_id == id) {
                Some(x) => {
                    let exp_ok = x.to.is_some() || exp == done_s;
                    if x.done != done_s || !exp_ok {
                        op_notes.add(format!(
                            "close {id} of {}: returned done {}, now {done_s}, expired {exp}",
                            x.wallet, x.done
                        ));
                    }
                }
                None => op_notes.add(format!(
                    "close {id} on the server, not made by the closing session"
                )),
            }
        }
    }
    for (kind, n) in [
        ("transfer", t.get("transfers")),
        ("adjust", t.get("adjust_pos") + t.get("adjust_neg")),
        ("void", t.get("voids_part") + t.get("voids_whole")),
        ("close", closes.len() as u64),
    ] {
        let on_server = ops_by_kind.get(kind).copied().unwrap_or(0);
        if on_server != n {
            op_notes.add(format!(
                "{on_server} {kind} operations on the server, {n} committed by the sessions"
            ));
        }
    }
    let missing: Vec<_> = model.keys().filter(|id| !seen.contains(*id)).collect();
    if !missing.is_empty() {
        op_notes.add(format!(
            "{} committed operations missing on the server, e.g. {:?}",
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        ));
    }
    if server_void_done != j_void {
        op_notes.add(format!(
            "voids: Σ done {server_void_done} != the journal's {j_void}"
        ));
    }
    let voided_later = j_void - voided_at_once;
    let close_expired: Decimal = closes
        .iter()
        .filter(|x| x.to.is_none())
        .map(|x| x.done)
        .sum();
    if j_exp_close < close_expired {
        op_notes.add(format!(
            "expired by closes: journal {j_exp_close} < what the expire close returned {close_expired}"
        ));
    }
    if server_transfer_done != t.sum("transferred") {
        op_notes.add(format!(
            "transfers: Σ done on the server {server_transfer_done}, client {}",
            t.sum("transferred")
        ));
    }
    if op_notes.count > 0 {
        notes.push(format!(
            "{} operation findings; first: {:?}",
            op_notes.count, op_notes.first
        ));
    }

    // every wallet's balance is what its grants have free (closed wallets: 0)
    let bal = q(
        &mut c,
        "SELECT w.wallet, credit_balance(w.wallet)::text,
                (SELECT coalesce(sum(g.remaining - g.held), 0) FROM credit_grants(w.wallet) g)::text
           FROM credit_ledger.wallets w WHERE w.wallet LIKE 'corr.%' ORDER BY w.wallet",
        "balances",
    )?;
    for r in &bal {
        let (b, free) = (d(&r[1])?, d(&r[2])?);
        if b != free || b < Decimal::ZERO {
            notes.push(format!(
                "{:?}: credit_balance {b}, its grants have {free} free",
                r[0]
            ));
        }
    }

    // transferred grants keep the provenance of the grant they came from
    let prov = q(
        &mut c,
        &format!(
            "SELECT count(*)::text FROM credit_ledger.grants g JOIN credit_ledger.grants s ON s.id = g.transfer_of
              WHERE g.wallet_id IN {wallets_sql}
                AND (g.category <> s.category OR g.priority <> s.priority OR g.unit_price <> s.unit_price
                     OR g.expires_at IS DISTINCT FROM s.expires_at OR s.home_id IS NOT NULL)"
        ),
        "provenance",
    )?;
    if prov[0][0].as_deref() != Some("0") {
        notes.push(format!(
            "{:?} transferred grants without the category, priority, price or expiry of their source",
            prov[0][0]
        ));
    }

    // closed wallets: closed, frozen, nothing left, nothing written after the close
    for x in &closes {
        let r = q(
            &mut c,
            &format!(
                "SELECT (w.closed_at IS NOT NULL AND w.frozen)::text,
                        (SELECT coalesce(sum(g.remaining), 0) FROM credit_ledger.grants g WHERE g.wallet_id = w.id)::text,
                        (SELECT coalesce(sum(g.held), 0) FROM credit_ledger.grants g WHERE g.wallet_id = w.id)::text,
                        credit_balance(w.wallet)::text,
                        (SELECT count(*) FROM credit_ledger.journal j WHERE j.wallet_id = w.id AND j.id > {}
                            AND (j.amount <> 0 OR j.held <> 0))::text,
                        (SELECT count(*) FROM credit_ledger.authorizations a WHERE a.wallet_id = w.id AND a.id > {})::text,
                        (SELECT count(*) FROM credit_ledger.operations o
                          WHERE (o.wallet_id = w.id OR o.to_wallet_id = w.id) AND o.id > {})::text,
                        (SELECT count(*) FROM credit_ledger.refunds f WHERE f.wallet_id = w.id AND f.id > {})::text,
                        (SELECT count(*) FROM credit_ledger.authorizations a WHERE a.wallet_id = w.id AND a.status = 'held')::text
                   FROM credit_ledger.wallets w WHERE w.wallet = '{}'",
                x.after[0], x.after[1], x.after[2], x.after[3], x.wallet
            ),
            "closed wallet",
        )?;
        let r = r.first().ok_or("closed wallet: no row")?;
        let writes: Vec<&str> = r[4..8]
            .iter()
            .map(|v| v.as_deref().unwrap_or("?"))
            .collect();
        if r[0].as_deref() != Some("true")
            || d(&r[1])? != Decimal::ZERO
            || d(&r[2])? != Decimal::ZERO
            || d(&r[3])? != Decimal::ZERO
            || writes.iter().any(|v| *v != "0")
            || r[8].as_deref() != Some("0")
        {
            notes.push(format!(
                "closed wallet {}: closed and frozen {:?}, remaining {:?}, held {:?}, balance {:?}, written after the close (journal, authorizations, operations, refunds) {writes:?}, open holds {:?}",
                x.wallet, r[0], r[1], r[2], r[3], r[8]
            ));
        }
    }

    // keys: every committed one on the server, no rolled-back one
    let keys = q(
        &mut c,
        "SELECT k FROM (SELECT idempotency_key AS k FROM credit_ledger.authorizations
                         UNION ALL SELECT close_key FROM credit_ledger.authorizations
                         UNION ALL SELECT idempotency_key FROM credit_ledger.operations
                         UNION ALL SELECT idempotency_key FROM credit_ledger.refunds) s
          WHERE k LIKE 'corr-s%'",
        "keys",
    )?;
    let on_server: std::collections::HashSet<String> =
        keys.into_iter().filter_map(|r| r[0].clone()).collect();
    let missing: Vec<_> = t
        .committed_keys
        .iter()
        .filter(|k| !on_server.contains(*k))
        .collect();
    let leaked: Vec<_> = t
        .rolled_keys
        .iter()
        .filter(|k| on_server.contains(*k))
        .collect();
    if !missing.is_empty() {
        notes.push(format!(
            "{} keys of committed transactions missing on the server, e.g. {:?}",
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        ));
    }
    if !leaked.is_empty() {
        notes.push(format!(
            "{} keys of rolled-back transactions on the server, e.g. {:?}",
            leaked.len(),
            leaked.iter().take(5).collect::<Vec<_>>()
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
    let p = sh.problems.lock().unwrap();
    let dl = sh.deadlocks.lock().unwrap();
    let w = sh.wrong.lock().unwrap();
    if p.count > 0 {
        notes.push(format!("{} errors; first: {:?}", p.count, p.first));
    }
    // a 40P01 fails the run: every transaction here is one call (a hold and its close at
    // most), and transfers lock their two wallets in a fixed order
    if dl.count > 0 {
        notes.push(format!(
            "{} transactions aborted with 40P01 (deadlock); first: {:?}",
            dl.count, dl.first
        ));
    }
    if w.count > 0 {
        notes.push(format!("{} wrong answers; first: {:?}", w.count, w.first));
    }
    let odd: Vec<_> = t
        .reasons
        .keys()
        .filter(|r| r.as_str() != "insufficient_credits")
        .collect();
    if !odd.is_empty() {
        notes.push(format!("unexpected decline reasons: {:?}", t.reasons));
    }
    let cut_short = sh.cut.load(Ordering::Relaxed);
    if cut_short == 0 && txs >= 100 && sessions >= 4 && t.get("refused_closed") == 0 {
        notes.push("no operation ever hit a closed wallet: the closes came too late".into());
    }

    let pass = notes.is_empty();
    let line = format!(
        "stress scenario=corrections sessions={sessions} wallets={} transactions={} committed={} rolled_back={} failed={} slept={} transfers={} transferred={} debits={} holds={} captures={} releases={} same_tx_closes={} later_closes={} final_releases={final_released} refunds={} voids_part={} voids_whole={} voids_pending={} adjust_pos={} adjust_neg={} retries={} closes={} declines={} refused_55000_closed={} refused_55000_released={} refused_55000_expired={} refused_53400={} refused_22023_void={} deadlocks={} errors={} wrong={} granted={granted} adjusted=+{}/-{} spent={} voided={} voided_later={} expired={} expired_close={} expired_sweep={} expired_holds={} part_void_pending={} whole_void_stale_pending={} remaining={} grant_rows={grant_rows} transfer_grants={transfer_grants} sweeps={sweeps} cut_short={cut_short} max_tx_ms={:.0} verify_rows={} elapsed_s={:.2} result={}",
        all.len(),
        t.get("tx"),
        t.get("committed"),
        t.get("rolled_back"),
        t.get("failed_tx"),
        t.get("slept"),
        t.get("transfers"),
        t.sum("transferred").normalize(),
        t.get("debits"),
        t.get("holds"),
        t.get("captures"),
        t.get("releases"),
        t.get("same_tx_closes"),
        t.get("later_closes"),
        t.get("refunds"),
        t.get("voids_part"),
        t.get("voids_whole"),
        t.get("voids_pending"),
        t.get("adjust_pos"),
        t.get("adjust_neg"),
        t.get("retries"),
        closes.len(),
        t.get("declines"),
        t.get("refused_closed"),
        t.get("refused_released"),
        t.get("refused_expired"),
        t.get("refused_short"),
        t.get("refused_void_short"),
        dl.count,
        p.count,
        w.count,
        adj_pos.normalize(),
        adj_neg.normalize(),
        spent.normalize(),
        j_void.normalize(),
        voided_later.normalize(),
        j_expired.normalize(),
        j_exp_close.normalize(),
        j_exp_sweep.normalize(),
        j_exp_holds.normalize(),
        void_pending.normalize(),
        stale_pending.normalize(),
        remaining.normalize(),
        t.max_tx_ms,
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
    let scenarios: Vec<(&str, Scenario)> = vec![
        ("authorize", scenario_authorize),
        ("holds", scenario_holds),
        ("pool", scenario_pool),
        ("lanes", scenario_lanes),
        ("runs", scenario_runs),
        ("corrections", scenario_corrections),
        ("overage", overage::scenario_overage),
    ];
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
