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
//!   `--lanes-pool` lanes and one grant, `--sessions` / 2 members `lanes.mNN` (two sessions
//!   each: two tabs of one user) without own grants
//!   (`lanes.m00` with a pool limit, `--lanes-limit`), and a standalone wallet `lanes.solo`
//!   with `--lanes-solo` lanes. Both have a spend cap sliced over their lanes: the pool's above
//!   its grant (never reached, its room is counted), the standalone wallet's below its grant
//!   (`--lanes-solo-cap`: it runs dry on the cap); the period's spend (the counter plus the
//!   lanes' part) must equal what was spent and stay within the cap. Session N runs `--lanes-tx` transactions `BEGIN; <one spend>;
//!   [pg_sleep 5–50 ms]; COMMIT|ROLLBACK`: a `credit_authorize` of 1–3 credits as member N mod (sessions / 2) (3 in
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
//! Layout: this file has the options, the shared helpers (connections, `credit_authorize` calls,
//! the verdict) and `main`; each scenario is a module of its own (`authorize.rs`, `holds.rs`,
//! `pool.rs`, `lanes.rs`, `runs.rs` + `runs/scenario.rs`, `corrections.rs` +
//! `corrections/scenario.rs`, `overage.rs`).
//!
//! Each scenario prints one machine-readable line
//! `stress scenario=<name> key=value ... result=pass|fail`.
//! Connection: PGHOST (a socket directory, or a loopback address), PGPORT, PGUSER; nothing else
//! is ever contacted. Bounded: fixed call counts, a per-statement timeout and an overall deadline.
//! Exit status: 0 all pass, 1 an invariant was violated, 2 the test could not run.

mod authorize;
mod corrections;
mod holds;
mod lanes;
mod overage;
mod pool;
mod runs;

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
  --lanes-solo-cap N  spend cap of 'lanes.solo' (default 3/4 of its grant; 0: none); the pool
                      'lanes.team' has a cap of 11/10 of its grant (sliced, never reached)
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
    lanes_solo_cap: Option<u64>,
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
        lanes_solo_cap: None,
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
            "--lanes-solo-cap" => o.lanes_solo_cap = Some(num("--lanes-solo-cap", val("--lanes-solo-cap")?)?),
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

/// The keys check of the scenarios that roll transactions back: `sql` lists the keys on the
/// server (one text column); every key of a committed transaction must be there, none of a
/// rolled-back one. Each breach adds a note.
fn key_notes(
    c: &mut Client,
    sql: &str,
    committed: &[String],
    rolled: &[String],
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let on_server: std::collections::HashSet<String> = text_rows(c, sql, "keys")?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    let missing: Vec<_> = committed
        .iter()
        .filter(|k| !on_server.contains(*k))
        .collect();
    let leaked: Vec<_> = rolled.iter().filter(|k| on_server.contains(*k)).collect();
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
    Ok(())
}

/// A random element of a non-empty slice.
fn pick<T: Clone>(v: &[T], rng: &mut u64) -> T {
    v[(xorshift(rng) % v.len() as u64) as usize].clone()
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
        ("authorize", authorize::scenario_authorize),
        ("holds", holds::scenario_holds),
        ("pool", pool::scenario_pool),
        ("lanes", lanes::scenario_lanes),
        ("runs", runs::scenario_runs),
        ("corrections", corrections::scenario_corrections),
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
