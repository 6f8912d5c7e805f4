//! Scenario `corrections`: transfers, voids, adjustments, holds, refunds and wallet closes under load.
//! (See the crate documentation in main.rs for what it asserts.)

use super::*;

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

mod scenario;
pub(crate) use scenario::scenario_corrections;
