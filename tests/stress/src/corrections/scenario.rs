//! The `corrections` scenario's driver: the closing session, the other sessions, then the checks.

use super::*;

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

pub(crate) fn scenario_corrections(
    base: &Config,
    o: &Opts,
    deadline: Instant,
) -> Result<Verdict, String> {
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
              GROUP BY o.id, o.tenant ORDER BY o.id"
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
    key_notes(
        &mut c,
        "SELECT k FROM (SELECT idempotency_key AS k FROM credit_ledger.authorizations
                         UNION ALL SELECT close_key FROM credit_ledger.authorizations
                         UNION ALL SELECT idempotency_key FROM credit_ledger.operations
                         UNION ALL SELECT idempotency_key FROM credit_ledger.refunds) s
          WHERE k LIKE 'corr-s%'",
        &t.committed_keys,
        &t.rolled_keys,
        &mut notes,
    )?;

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
