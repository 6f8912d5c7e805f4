//! Malformed-input fuzzing of every public function.
//!
//! Calls are generated from per-parameter value domains (typical values, boundaries and
//! malformed values: 0, negative, NaN, ±Infinity, huge numerics, too many decimals, NULL,
//! empty, whitespace and 10 kB strings, unknown names, wrong-state ids, fixture idempotency
//! keys reused with other arguments, JSON of the wrong shape). Every value carries a verdict:
//! `Valid`, `Invalid` (the docs say it must be rejected) or `Unknown` (not specified; either
//! outcome is accepted). Each call runs alone in its own transaction (autocommit) on one
//! connection; a digest of every `credit_ledger` table (md5 of the ordered rows) is taken after
//! every call and compared with the one before it whenever the call was rejected (or was an
//! exact idempotent replay, which must write nothing).
//!
//! The ledger is rebuilt every `--epoch` calls (DROP/CREATE EXTENSION + a fixture) so the
//! digest stays cheap and wrong-state ids stay plentiful.
//!
//! Violations: a rejection with an undocumented SQLSTATE (anything outside the documented error
//! table, XX000 included), a state change on rejection, a write by an exact replay, an
//! `Invalid` call that was accepted, a reused key that did not get 23505, a crashed backend.

mod fixture;
mod gen;
mod values;

use crate::common::{self, Outcome};
use fixture::Fixture;
use gen::{Call, Expect, Gen};
use postgres::Client;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::time::Instant;

fn call_sql(c: &Call) -> String {
    if c.func == "replay" {
        c.args[0].1.clone()
    } else {
        c.sql()
    }
}

fn digest_sql(c: &mut Client) -> Result<String, String> {
    // every table of the schema, ordered by its primary key (or the whole row when it has none)
    let rows = c
        .query(
            "SELECT c.relname::text,
                    coalesce((SELECT string_agg('x.' || quote_ident(a.attname), ', ' ORDER BY k.n)
                                FROM pg_catalog.pg_index i
                                CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, n)
                                JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.att
                               WHERE i.indrelid = c.oid AND i.indisprimary), 'x::text')
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'credit_ledger' AND c.relkind IN ('r', 'p') ORDER BY 1",
            &[],
        )
        .map_err(|e| common::err_text(&e))?;
    let parts: Vec<String> = rows
        .iter()
        .map(|r| {
            let t: String = r.get(0);
            let order: String = r.get(1);
            format!(
                "SELECT '{t}' AS n, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY {order}), '')) AS h FROM credit_ledger.\"{t}\" x"
            )
        })
        .collect();
    if parts.is_empty() {
        return Err("no credit_ledger tables".into());
    }
    Ok(format!(
        "SELECT md5(string_agg(n || ':' || h, ',' ORDER BY n)) FROM ({}) s",
        parts.join(" UNION ALL ")
    ))
}

fn digest(c: &mut Client, sql: &postgres::Statement) -> Result<String, String> {
    let t = Instant::now();
    let r = digest_inner(c, sql);
    DIGEST_NS.fetch_add(
        t.elapsed().as_nanos() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    r
}

static DIGEST_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn digest_inner(c: &mut Client, sql: &postgres::Statement) -> Result<String, String> {
    c.query_one(sql, &[])
        .map(|r| r.get::<_, String>(0))
        .map_err(|e| format!("digest: {}", common::err_text(&e)))
}

/// credit_verify() at the end of an epoch: every row is a violation.
fn epoch_verify(
    c: &mut Client,
    note: &mut impl FnMut(&'static str, &'static str, String, &str),
) -> u64 {
    match c.query(
        "SELECT check_name || ' ' || subject || ': ' || detail FROM credit_verify()",
        &[],
    ) {
        Ok(rows) => {
            for r in &rows {
                note(
                    "verify_row",
                    "credit_verify",
                    r.get::<_, String>(0),
                    "SELECT * FROM credit_verify()",
                );
            }
            rows.len() as u64
        }
        Err(e) => {
            note(
                "verify_failed",
                "credit_verify",
                common::err_text(&e),
                "SELECT * FROM credit_verify()",
            );
            1
        }
    }
}

struct Finding {
    kind: &'static str,
    func: &'static str,
    detail: String,
    sql: String,
    count: u64,
}

pub fn run(args: &[String]) -> Result<bool, String> {
    let a = common::Args::parse(
        args,
        &["calls", "epoch", "seed", "database", "statement-timeout-ms"],
        &["keep"],
    )?;
    let calls: u64 = a.get("calls", 20_000)?;
    let epoch_len: u64 = a.get("epoch", 500)?;
    let seed: u64 = a.get("seed", 1)?;
    let stmt_timeout: u64 = a.get("statement-timeout-ms", 5000)?;
    let db = a.string("database", "cl_rel_fuzz");
    common::check_db_name(&db)?;
    let base = common::base_config("credit_ledger_reliability_fuzz")?;
    common::recreate_db(&base, &db)?;
    let start = Instant::now();

    let mut gen = Gen {
        rng: StdRng::seed_from_u64(seed),
        n: 0,
        epoch: 0,
        lifecycle_muted: false,
    };
    let mut findings: BTreeMap<(String, String, String), Finding> = BTreeMap::new();
    let mut note = |kind: &'static str, func: &'static str, detail: String, sql: &str| {
        let norm: String = detail
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        let e = findings
            .entry((kind.to_string(), func.to_string(), norm))
            .or_insert(Finding {
                kind,
                func,
                detail,
                sql: common::clip(sql, 400),
                count: 0,
            });
        e.count += 1;
    };
    let (mut accepted, mut rejected, mut documented, mut undocumented, mut xx000) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let (
        mut state_changes,
        mut replay_writes,
        mut accepted_invalid,
        mut wrong_code,
        mut crashes,
        mut timeouts,
    ) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut per_func: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();

    let mut call_ns = 0u64;
    let mut verify_rows = 0u64;
    let mut client: Option<Client> = None;
    let mut dsql: Option<postgres::Statement> = None;
    let mut d0 = String::new();
    let mut fx = Fixture::default();
    let mut done = 0u64;
    while done < calls {
        if client.is_none() || done.is_multiple_of(epoch_len) {
            // the ledger the epoch leaves behind must be consistent
            if let Some(old) = client.as_mut() {
                verify_rows += epoch_verify(old, &mut note);
            }
            // a new epoch: fresh ledger and fixture
            let mut c = common::connect(&base, &db)?;
            c.batch_execute(&format!(
                "SET statement_timeout = {stmt_timeout}; SET synchronous_commit = off; SET search_path = public, pg_catalog;
                 DROP EXTENSION IF EXISTS credit_ledger CASCADE; DROP SCHEMA IF EXISTS credit_ledger CASCADE;
                 CREATE EXTENSION credit_ledger;"
            ))
            .map_err(|e| format!("epoch setup: {}", common::err_text(&e)))?;
            gen.epoch += 1;
            fx = fixture::fixture(&mut c)?;
            let text = digest_sql(&mut c)?;
            dsql = Some(
                c.prepare(&text)
                    .map_err(|e| format!("digest: {}", common::err_text(&e)))?,
            );
            d0 = digest(&mut c, dsql.as_ref().expect("prepared"))?;
            client = Some(c);
        }
        let c = client.as_mut().expect("connected");
        let call = gen.call(&fx);
        let sql = call_sql(&call);
        done += 1;
        let t_call = Instant::now();
        let out = common::outcome_of(c.batch_execute(&sql));
        call_ns += t_call.elapsed().as_nanos() as u64;
        let pf = per_func.entry(call.func).or_default();
        match out {
            Outcome::Ok => {
                accepted += 1;
                pf.0 += 1;
                let d1 = digest(c, dsql.as_ref().expect("prepared"))?;
                match call.expect {
                    Expect::Reject(code) => {
                        accepted_invalid += 1;
                        note(
                            "accepted_invalid",
                            call.func,
                            format!("accepted; expected {}", code.unwrap_or("an error")),
                            &sql,
                        );
                    }
                    Expect::Replay if d1 != d0 => {
                        replay_writes += 1;
                        note(
                            "replay_wrote",
                            call.func,
                            "exact replay changed the ledger".into(),
                            &sql,
                        );
                    }
                    _ => {}
                }
                d0 = d1;
            }
            Outcome::Db(code, msg) => {
                rejected += 1;
                pf.1 += 1;
                if code == "57014" {
                    timeouts += 1;
                    if timeouts >= 3 && (call.func == "credit_expire" || call.func == "credit_tick")
                    {
                        gen.lifecycle_muted = true;
                    }
                }
                // catching up years of short allowance periods is real work: the caller's
                // statement_timeout bounding it (and rolling it back) is a documented outcome
                let lifecycle_timeout =
                    code == "57014" && (call.func == "credit_expire" || call.func == "credit_tick");
                if common::documented(&code) || lifecycle_timeout {
                    documented += 1;
                } else {
                    undocumented += 1;
                    if code == "XX000" {
                        xx000 += 1;
                    }
                    note(
                        "undocumented_sqlstate",
                        call.func,
                        format!("{code}: {msg}"),
                        &sql,
                    );
                }
                match call.expect {
                    Expect::Reject(Some(want)) if want != code => {
                        wrong_code += 1;
                        note(
                            "wrong_sqlstate",
                            call.func,
                            format!("expected {want}, got {code}: {msg}"),
                            &sql,
                        );
                    }
                    Expect::Replay => {
                        wrong_code += 1;
                        note("replay_rejected", call.func, format!("{code}: {msg}"), &sql);
                    }
                    _ => {}
                }
                let d1 = digest(c, dsql.as_ref().expect("prepared"))?;
                if d1 != d0 {
                    state_changes += 1;
                    note(
                        "state_change_on_rejection",
                        call.func,
                        format!("{code}: {msg}"),
                        &sql,
                    );
                    d0 = d1;
                }
            }
            Outcome::Lost(e) => {
                crashes += 1;
                note("backend_crash", call.func, e, &sql);
                client = None;
                // give a crashed server time to restart, then continue in a fresh epoch
                let t = Instant::now();
                while t.elapsed().as_secs() < 30 {
                    if common::connect(&base, &db).is_ok() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            }
        }
    }
    if let Some(old) = client.as_mut() {
        verify_rows += epoch_verify(old, &mut note);
    }
    drop(client);
    if !a.flag("keep") {
        common::drop_db(&base, &db);
    }

    let elapsed = start.elapsed().as_secs_f64();
    for f in findings.values() {
        eprintln!(
            "fuzz finding: {} in {} ({}x): {}\n    e.g. {}",
            f.kind, f.func, f.count, f.detail, f.sql
        );
    }
    for (func, (ok, rej)) in &per_func {
        eprintln!("fuzz calls: {func}: {ok} accepted, {rej} rejected");
    }
    eprintln!(
        "fuzz timing: calls {:.1}s, digests {:.1}s",
        call_ns as f64 / 1e9,
        DIGEST_NS.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9
    );
    let pct = if rejected == 0 {
        100.0
    } else {
        documented as f64 * 100.0 / rejected as f64
    };
    let pass = undocumented == 0
        && state_changes == 0
        && replay_writes == 0
        && accepted_invalid == 0
        && wrong_code == 0
        && verify_rows == 0
        && crashes == 0;
    println!(
        "{}",
        common::figure(
            "fuzz",
            &[
                ("calls", done.to_string()),
                ("functions", per_func.len().to_string()),
                ("accepted", accepted.to_string()),
                ("rejected", rejected.to_string()),
                ("rejected_documented_pct", format!("{pct:.2}")),
                ("undocumented", undocumented.to_string()),
                ("xx000", xx000.to_string()),
                ("state_changes", state_changes.to_string()),
                ("replay_writes", replay_writes.to_string()),
                ("accepted_invalid", accepted_invalid.to_string()),
                ("wrong_sqlstate", wrong_code.to_string()),
                ("verify_rows", verify_rows.to_string()),
                ("timeouts", timeouts.to_string()),
                ("crashes", crashes.to_string()),
                ("distinct_findings", findings.len().to_string()),
                ("seed", seed.to_string()),
                ("elapsed_s", format!("{elapsed:.1}")),
            ],
            pass
        )
    );
    Ok(pass)
}
