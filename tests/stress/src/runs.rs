//! Scenario `runs`: agent runs and sub-runs under concurrent calls and closes, against a model.
//! (See the crate documentation in main.rs for what it asserts.)

use super::*;

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

mod scenario;
pub(crate) use scenario::scenario_runs;
