//! search_path and object-capture attacks.
//!
//! An unprivileged role (`cl_rel_attacker`, LOGIN, EXECUTE on the extension's functions as an
//! app role would have, and — for this test — CREATE on schema public) plants objects that
//! the SECURITY DEFINER functions could resolve by name (`sql/plant.sql`): exact-typed
//! operators where pg_catalog only matches through casts or polymorphism (`public.>(numeric,
//! integer)`, `public.||(text, bigint)`, ...), exact-typed overloads of the pg_catalog
//! functions and aggregates the extension calls (`format`, `jsonb_build_object`, `unnest`,
//! `jsonb_object_agg`, `to_jsonb(<its own row type>)`, ...), tables and views named like the
//! ledger's tables in public and in its temp schema (`public.wallets`, `pg_temp.grants`), and
//! domains named like the types they use (`pg_temp.text`, `pg_temp.credit_authorization`).
//! Then, with search_path set to put public and/or pg_temp first, it calls every SECURITY
//! DEFINER function (a scripted walk through every code path, plus a NULL-argument call of
//! any that the walk does not cover). Each planted object raises the notice
//! `CL_ATTACK_FIRED user=<current_user> obj=<what>` and logs a row when it runs: a firing
//! with a current_user other than the attacker is a hijack (code running with the definer's
//! rights). A step whose outcome differs from the same walk in a database without plants is
//! reported as disrupted.
//!
//! Also `CREATE EXTENSION credit_ledger` in fresh databases over pre-planted objects: with
//! the generic plants it must succeed without firing anything; with objects of the
//! extension's own names and signatures it must fail cleanly (a conflict), firing nothing.

use crate::common::{self, Notices};
use postgres::Client;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

const ATTACKER: &str = "cl_rel_attacker";
const PLANT: &str = include_str!("../sql/plant.sql");

const MARK: &str = "
CREATE TABLE IF NOT EXISTS public.cl_attack_log (obj text, usr text, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.cl_attack_log TO PUBLIC;
CREATE OR REPLACE FUNCTION public.cl_attack_mark(obj text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    RAISE NOTICE 'CL_ATTACK_FIRED user=% obj=%', current_user, obj;
    BEGIN
        INSERT INTO public.cl_attack_log (obj, usr) VALUES (obj, current_user::text);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END $f$;
GRANT EXECUTE ON FUNCTION public.cl_attack_mark(text) TO PUBLIC;
CREATE TABLE IF NOT EXISTS public.atk_usage (customer text, kind text, tokens numeric, model text, req text, auth_id bigint);
";

fn plant_sql(schema: &str, full: bool) -> String {
    PLANT
        .replace("@S@", schema)
        .replace("@FULL@", if full { "true" } else { "false" })
        .replace("@DEBUG@", "false")
}

/// The scripted walk: (step, the function it targets, SQL, variable to store the first column in).
fn suite(n: &str) -> Vec<(&'static str, &'static str, String, Option<&'static str>)> {
    let w = format!("atk_{n}");
    let m = format!("atk_m_{n}");
    vec![
        ("asset_define", "credit_asset_define", format!("SELECT credit_asset_define(asset => 'atk_tok_{n}', scale => 2, description => 'x')"), None),
        ("wallet_create", "credit_wallet_create", format!("SELECT credit_wallet_create(wallet => '{w}', overdraft_limit => 5, low_balance_threshold => 50, spend_cap => 1000, metadata => '{{\"k\": 1}}')"), None),
        ("wallet_create_member", "credit_wallet_create", format!("SELECT credit_wallet_create(wallet => '{m}', parent => 'team', pool_limit => 100, period => '30 days', period_anchor => now() - interval '1 day')"), None),
        ("wallet_create_again", "credit_wallet_create", format!("SELECT credit_wallet_create(wallet => '{w}', overdraft_limit => 5, low_balance_threshold => 50, spend_cap => 1000, metadata => '{{\"k\": 1}}')"), None),
        ("wallet_update", "credit_wallet_update", format!("SELECT credit_wallet_update(wallet => '{w}', spend_cap => 2000, frozen => false, metadata => '{{\"a\": 1}}', clear => '{{low_balance_threshold}}')"), None),
        ("wallet_update_threshold", "credit_wallet_update", format!("SELECT credit_wallet_update(wallet => '{w}', low_balance_threshold => 50, rate_card => 'default')"), None),
        ("rate_set", "credit_rate_set", format!("SELECT credit_rate_set(action => 'atk.call.{n}', credits => 2, variant => 'v', vendor_cost => 0.01, unit => '1k tokens')"), None),
        ("rate_card_load", "credit_rate_card_load", format!("SELECT credit_rate_card_load('{{\"name\": \"atk_card_{n}\", \"description\": \"d\", \"entries\": [{{\"action\": \"chat\", \"variant\": \"v\", \"credits\": \"1.25\", \"vendor_cost\": 0.01, \"effective_from\": \"2026-01-01T00:00:00Z\"}}]}}')"), None),
        ("rate_card_export", "credit_rate_card_export", format!("SELECT credit_rate_card_export('atk_card_{n}')"), None),
        ("grant", "credit_grant", format!("SELECT id FROM credit_grant(wallet => '{w}', amount => 100, category => 'promotional', expires_at => now() + interval '1 day', unit_price => 0.01, idempotency_key => 'atk-g-{n}', metadata => '{{\"x\": 1}}')"), None),
        ("grant_replay", "credit_grant", format!("SELECT id FROM credit_grant(wallet => '{w}', amount => 100, category => 'promotional', expires_at => now() + interval '1 day', unit_price => 0.01, idempotency_key => 'atk-g-{n}', metadata => '{{\"x\": 1}}')"), None),
        ("grant_altered", "credit_grant", format!("SELECT id FROM credit_grant(wallet => '{w}', amount => 101, idempotency_key => 'atk-g-{n}')"), None),
        ("grant_member", "credit_grant", format!("SELECT id FROM credit_grant(wallet => '{m}', amount => 5, priority => 1)"), None),
        ("grants", "credit_grants", format!("SELECT count(*) FROM credit_grants('{w}')"), None),
        ("wallet", "credit_wallet", format!("SELECT credit_wallet('{w}')"), None),
        ("quote", "credit_quote", format!("SELECT * FROM credit_quote(wallet => '{w}', action => 'chat', quantity => 2.5)"), None),
        ("quote_member", "credit_quote", format!("SELECT * FROM credit_quote(wallet => '{m}', action => 'chat', quantity => 20)"), None),
        ("authorize", "credit_authorize", format!("SELECT authorization_id FROM credit_authorize(wallet => '{w}', action => 'chat', quantity => 2, idempotency_key => 'atk-a-{n}', metadata => '{{\"m\": 1}}')"), Some("a1")),
        ("authorize_replay", "credit_authorize", format!("SELECT authorization_id FROM credit_authorize(wallet => '{w}', action => 'chat', quantity => 2, idempotency_key => 'atk-a-{n}', metadata => '{{\"m\": 1}}')"), None),
        ("authorize_decline", "credit_authorize", format!("SELECT approved FROM credit_authorize(wallet => '{w}', action => 'chat', quantity => 100000)"), None),
        ("authorize_overdraft_alert", "credit_authorize", format!("SELECT approved FROM credit_authorize(wallet => '{w}', action => 'chat', quantity => 99.5)"), None),
        ("grant_settles_debt", "credit_grant", format!("SELECT id FROM credit_grant(wallet => '{w}', amount => 50)"), None),
        ("authorize_pool", "credit_authorize", format!("SELECT approved FROM credit_authorize(wallet => '{m}', action => 'chat', quantity => 10)"), None),
        ("hold", "credit_hold", format!("SELECT authorization_id FROM credit_hold(wallet => '{m}', action => 'chat', quantity => 3, ttl => '1 hour', idempotency_key => 'atk-h-{n}')"), Some("h1")),
        ("capture_less", "credit_capture", "SELECT status FROM credit_capture(authorization_id => {h1}, quantity => 1, idempotency_key => 'atk-c-{n}')".replace("{n}", n), None),
        ("capture_replay", "credit_capture", "SELECT status FROM credit_capture(authorization_id => {h1}, quantity => 1, idempotency_key => 'atk-c-{n}')".replace("{n}", n), None),
        ("hold2", "credit_hold", format!("SELECT authorization_id FROM credit_hold(wallet => '{w}', action => 'chat', quantity => 2)"), Some("h2")),
        ("capture_more", "credit_capture", "SELECT status FROM credit_capture(authorization_id => {h2}, quantity => 4)".into(), None),
        ("hold3", "credit_hold", format!("SELECT authorization_id FROM credit_hold(wallet => '{w}', action => 'chat', quantity => 2)"), Some("h3")),
        ("release", "credit_release", "SELECT status FROM credit_release(authorization_id => {h3}, idempotency_key => 'atk-r-{n}')".replace("{n}", n), None),
        ("release_again", "credit_release", "SELECT status FROM credit_release(authorization_id => {h3})".into(), None),
        ("hold_short", "credit_hold", format!("SELECT authorization_id FROM credit_hold(wallet => '{w}', action => 'chat', quantity => 1, ttl => '1 millisecond')"), Some("h4")),
        ("sleep", "", "SELECT pg_catalog.pg_sleep(0.01)".into(), None),
        ("capture_expired", "credit_capture", "SELECT status FROM credit_capture(authorization_id => {h4})".into(), None),
        ("expire", "credit_expire", "SELECT * FROM credit_expire()".into(), None),
        ("refund_partial", "credit_refund", "SELECT refund_id FROM credit_refund(authorization_id => {a1}, amount => 1, reason => 'r', idempotency_key => 'atk-f-{n}')".replace("{n}", n), None),
        ("refund_rest", "credit_refund", "SELECT refund_id FROM credit_refund(authorization_id => {a1})".into(), None),
        ("refund_too_much", "credit_refund", "SELECT refund_id FROM credit_refund(authorization_id => {a1}, amount => 1)".into(), None),
        ("refund_capture", "credit_refund", "SELECT refund_id FROM credit_refund(authorization_id => {h1}, amount => 0.5)".into(), None),
        ("balance", "credit_balance", format!("SELECT credit_balance('{w}')"), None),
        ("balance_as_of", "credit_balance", format!("SELECT credit_balance('{w}', 'credits', now() - interval '1 second')"), None),
        ("balance_detail", "credit_balance_detail", format!("SELECT * FROM credit_balance_detail('{m}', expiring_within => '2 days')"), None),
        ("balance_detail_own", "credit_balance_detail", format!("SELECT * FROM credit_balance_detail('{w}')"), None),
        ("team_allocate", "credit_team_allocate", format!("SELECT * FROM credit_team_allocate(team => 'team', amount_per_member => 10, pooled_share => 0.2, idempotency_key => 'atk-t-{n}', metadata => '{{}}')"), None),
        ("allowance_capped", "credit_allowance_set", format!("SELECT * FROM credit_allowance_set(wallet => '{w}', amount => 10, period => '1 day', anchor => now() - interval '12 hours', rollover_cap => 5)"), None),
        ("allowance_declining", "credit_allowance_set", format!("SELECT * FROM credit_allowance_set(wallet => '{m}', amount => 10, period => '1 day', anchor => now() - interval '12 hours', rollover_shares => '{{1,0.5}}')"), None),
        ("tick", "credit_tick", "SELECT * FROM credit_tick(now() + interval '23 hours')".into(), None),
        ("verify", "credit_verify", "SELECT count(*) FROM credit_verify()".into(), None),
        ("authorization", "credit_authorization", "SELECT credit_authorization({a1})".into(), None),
        ("authorization_history", "credit_authorization_history", "SELECT count(*) FROM credit_authorization_history({a1})".into(), None),
        // agent runs (0.5.0), corrections, events and statements (0.6.0)
        ("run_open", "credit_run_open", format!("SELECT run_id FROM credit_run_open(wallet => '{w}', budget => 5, ttl => '1 hour', idempotency_key => 'atk-run-{n}', metadata => '{{}}', max_calls => 3, max_cost_per_call => 4)"), Some("r1")),
        ("run_call", "credit_authorize", format!("SELECT approved FROM credit_authorize(wallet => '{w}', action => 'chat', quantity => 1, run => {{r1}})"), None),
        ("run", "credit_run", "SELECT count(*) FROM credit_run({r1})".into(), None),
        ("run_tree", "credit_run_tree", "SELECT count(*) FROM credit_run_tree({r1})".into(), None),
        ("run_close", "credit_run_close", "SELECT status FROM credit_run_close({r1})".into(), None),
        ("adjust_up", "credit_adjust", format!("SELECT done FROM credit_adjust(wallet => '{w}', amount => 6, reason => 'atk', idempotency_key => 'atk-adj-{n}', metadata => '{{\"k\": 1}}')"), None),
        ("adjust_down", "credit_adjust", format!("SELECT done FROM credit_adjust(wallet => '{w}', amount => -1, reason => 'atk')"), None),
        ("transfer", "credit_transfer", format!("SELECT done FROM credit_transfer(from_wallet => '{w}', to_wallet => '{m}', amount => 2, reason => 'atk', idempotency_key => 'atk-tr-{n}', metadata => '{{}}')"), None),
        ("grant_to_void", "credit_grant", format!("SELECT id FROM credit_grant(wallet => '{w}', amount => 3, unit_price => 0.5)"), Some("g1")),
        ("void_part", "credit_grant_void", "SELECT done FROM credit_grant_void(grant_id => {g1}, amount => 1, reason => 'atk', idempotency_key => 'atk-v-{n}')".replace("{n}", n), None),
        ("void_rest", "credit_grant_void", "SELECT done FROM credit_grant_void(grant_id => {g1})".into(), None),
        ("statement", "credit_statement", format!("SELECT count(*) FROM credit_statement('{w}', now() - interval '1 day', now() + interval '1 day')"), None),
        ("close_wallet_create", "credit_wallet_create", format!("SELECT credit_wallet_create(wallet => 'atk_c_{n}')"), None),
        ("close_wallet_grant", "credit_grant", format!("SELECT id FROM credit_grant(wallet => 'atk_c_{n}', amount => 4)"), None),
        ("wallet_close", "credit_wallet_close", format!("SELECT done FROM credit_wallet_close(wallet => 'atk_c_{n}', disposition => 'transfer', to_wallet => '{w}', reason => 'atk', idempotency_key => 'atk-cl-{n}')"), None),
        ("events", "credit_events", "SELECT count(*) FROM credit_events(max_rows => 5)".into(), None),
        ("events_consumer", "credit_events", format!("SELECT count(*) FROM credit_events(consumer => 'atk_{n}', max_rows => 5)"), None),
        ("events_ack", "credit_events_ack", format!("SELECT credit_events_ack('atk_{n}', 1)"), None),
        ("event", "credit_event", "SELECT count(*) FROM credit_event(1)".into(), None),
        ("usage_trigger", "credit_usage_trigger",
         "CREATE OR REPLACE TRIGGER bill BEFORE INSERT ON public.atk_usage FOR EACH ROW EXECUTE FUNCTION credit_usage_trigger('wallet=customer', 'action=kind', 'quantity=tokens', 'variant=model', 'idempotency_key=req', 'authorization_id=auth_id')".into(), None),
        ("usage_insert", "credit_usage_trigger", format!("INSERT INTO public.atk_usage VALUES ('{w}', 'chat', 1, NULL, 'atk-u-{n}', NULL)"), None),
        ("usage_insert_replay", "credit_usage_trigger", format!("INSERT INTO public.atk_usage VALUES ('{w}', 'chat', 1, NULL, 'atk-u-{n}', NULL)"), None),
        ("usage_decline", "credit_usage_trigger", format!("INSERT INTO public.atk_usage VALUES ('{w}', 'chat', 1000000, NULL, NULL, NULL)"), None),
        ("usage_bad_column", "credit_usage_trigger",
         "CREATE OR REPLACE TRIGGER bill BEFORE INSERT ON public.atk_usage FOR EACH ROW EXECUTE FUNCTION credit_usage_trigger('wallet=nope', 'action_value=chat')".into(), None),
        ("usage_insert_bad", "credit_usage_trigger", format!("INSERT INTO public.atk_usage VALUES ('{w}', 'chat', 1, NULL, NULL, NULL)"), None),
        ("usage_drop", "", "DROP TRIGGER bill ON public.atk_usage".into(), None),
    ]
}

struct Walk {
    outcomes: Vec<(String, String)>,
    steps: usize,
    covered: Vec<&'static str>,
}

/// Run the walk (plus NULL calls of uncovered SECURITY DEFINER functions) as the attacker.
fn walk(c: &mut Client, n: &str, extra: &[(String, String)]) -> Walk {
    let mut vars: HashMap<&str, String> = HashMap::new();
    let mut out = Walk {
        outcomes: Vec::new(),
        steps: 0,
        covered: Vec::new(),
    };
    for (name, func, sql, var) in suite(n) {
        let mut sql = sql;
        for (k, v) in &vars {
            sql = sql.replace(&format!("{{{k}}}"), v);
        }
        // a step whose id came from a step that failed
        if ["{a1}", "{h1}", "{h2}", "{h3}", "{h4}"]
            .iter()
            .any(|p| sql.contains(p))
        {
            out.outcomes.push((name.to_string(), "skipped".into()));
            continue;
        }
        out.steps += 1;
        if !func.is_empty() {
            out.covered.push(func);
        }
        let r = match var {
            Some(v) => c.query_one(sql.as_str(), &[]).map(|row| {
                vars.insert(v, row.get::<_, i64>(0).to_string());
            }),
            None => c.batch_execute(&sql),
        };
        let o = match r {
            Ok(()) => "ok".to_string(),
            Err(e) => match e.as_db_error() {
                Some(db) => db.code().code().to_string(),
                None => format!("lost: {e}"),
            },
        };
        out.outcomes.push((name.to_string(), o));
    }
    for (name, sql) in extra {
        out.steps += 1;
        let o = match c.batch_execute(sql) {
            Ok(()) => "ok".to_string(),
            Err(e) => e
                .as_db_error()
                .map(|d| d.code().code().to_string())
                .unwrap_or_else(|| format!("lost: {e}")),
        };
        out.outcomes.push((format!("null_call:{name}"), o));
    }
    out
}

/// SECURITY DEFINER functions of the extension: (name, NULL-argument call).
fn secdef(c: &mut Client) -> Result<Vec<(String, String)>, String> {
    let rows = c
        .query(
            "SELECT p.proname::text,
                    format('SELECT %I(%s)', p.proname,
                           coalesce((SELECT string_agg('NULL::' || pg_catalog.format_type(t, NULL), ', ')
                                       FROM unnest(string_to_array(p.proargtypes::text, ' ')::oid[]) t), '')),
                    p.prorettype = 'pg_catalog.trigger'::regtype
               FROM pg_catalog.pg_proc p
               JOIN pg_catalog.pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
               JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'credit_ledger'
              WHERE p.prosecdef ORDER BY 1",
            &[],
        )
        .map_err(|e| common::err_text(&e))?;
    Ok(rows
        .iter()
        .map(|r| {
            let trig: bool = r.get(2);
            (
                r.get::<_, String>(0),
                if trig {
                    String::new()
                } else {
                    r.get::<_, String>(1)
                },
            )
        })
        .collect())
}

fn fired(notices: &Notices) -> Vec<(String, String)> {
    let v = std::mem::take(&mut *notices.lock().unwrap());
    v.iter()
        .filter_map(|m| m.strip_prefix("CL_ATTACK_FIRED user="))
        .map(|rest| {
            let (u, o) = rest.split_once(" obj=").unwrap_or((rest, ""));
            (u.to_string(), o.to_string())
        })
        .collect()
}

fn planted_count(notices: &Notices) -> u64 {
    let v = notices.lock().unwrap();
    let mut total = 0u64;
    for m in v.iter().filter(|m| m.starts_with("CL_PLANTED")) {
        for part in m.split_whitespace() {
            if let Some((k, val)) = part.split_once('=') {
                if k != "schema" && k != "failed" {
                    total += val.parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    total
}

fn exec(c: &mut Client, sql: &str, what: &str) -> Result<(), String> {
    c.batch_execute(sql)
        .map_err(|e| format!("{what}: {}", common::err_text(&e)))
}

/// A database with the extension, a team wallet and the attacker's grants.
fn prepare_db(base: &postgres::Config, db: &str, with_extension: bool) -> Result<(), String> {
    common::recreate_db(base, db)?;
    let mut c = common::connect(base, db)?;
    exec(
        &mut c,
        &format!("GRANT CREATE ON SCHEMA public TO {ATTACKER}"),
        "grant create",
    )?;
    if with_extension {
        fixture(&mut c)?;
    }
    Ok(())
}

fn fixture(c: &mut Client) -> Result<(), String> {
    exec(
        c,
        &format!(
            "SET search_path = pg_catalog, public;
             CREATE EXTENSION IF NOT EXISTS credit_ledger SCHEMA public;
             SELECT credit_rate_set(action => 'chat', credits => 1);
             SELECT credit_wallet_create(wallet => 'team');
             SELECT credit_grant(wallet => 'team', amount => 1000);
             GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {ATTACKER};"
        ),
        "fixture",
    )
}

pub fn run(args: &[String]) -> Result<bool, String> {
    let a = common::Args::parse(args, &["database"], &["keep"])?;
    let db_prefix = a.string("database", "cl_rel_attack");
    common::check_db_name(&db_prefix)?;
    let base = common::base_config("credit_ledger_reliability_attack")?;
    let start = Instant::now();
    {
        let mut admin = common::connect(&base, "postgres")?;
        exec(
            &mut admin,
            &format!("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ATTACKER}') THEN CREATE ROLE {ATTACKER} LOGIN; END IF; END $$"),
            "create role",
        )?;
        let su: bool = admin
            .query_one(
                &format!("SELECT rolsuper FROM pg_roles WHERE rolname = '{ATTACKER}'"),
                &[],
            )
            .map_err(|e| common::err_text(&e))?
            .get(0);
        if su {
            return Err(format!("role {ATTACKER} is a superuser"));
        }
    }
    let variants = [
        "public, pg_temp",
        "pg_temp, public, pg_catalog",
        "\"$user\", public",
    ];
    let mut hijacks: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    let mut disrupted: Vec<String> = Vec::new();
    let mut attempts = 0usize;
    let mut planted = 0u64;
    let mut self_fired = 0usize;

    // A. the walk in a database without plants: the reference outcomes
    let db_base = format!("{db_prefix}_base");
    prepare_db(&base, &db_base, true)?;
    let (mut c, _n) = common::connect_with_notices(&base, &db_base, Some(ATTACKER))?;
    exec(&mut c, MARK, "marker")?;
    let sd = secdef(&mut c)?;
    let reference = walk(&mut c, "b0", &[]);
    let covered: Vec<&str> = reference.covered.clone();
    let extra: Vec<(String, String)> = sd
        .iter()
        .filter(|(name, sql)| !sql.is_empty() && !covered.contains(&name.as_str()))
        .cloned()
        .collect();
    let reference = walk(&mut c, "b1", &extra);
    drop(c);
    let refmap: HashMap<String, String> = reference.outcomes.iter().cloned().collect();

    // B. plants in public and pg_temp, then the walk under each search_path
    let db_atk = format!("{db_prefix}_main");
    prepare_db(&base, &db_atk, true)?;
    let (mut c, notices) = common::connect_with_notices(&base, &db_atk, Some(ATTACKER))?;
    exec(&mut c, MARK, "marker")?;
    exec(&mut c, &plant_sql("public", true), "plant public")?;
    exec(&mut c, &plant_sql("pg_temp", false), "plant pg_temp")?;
    planted += planted_count(&notices);
    notices.lock().unwrap().clear();
    // the plants are live: the attacker's own use of them fires (as the attacker)
    exec(
        &mut c,
        "SET search_path = public, pg_temp; SELECT 1.5 > 1, '{}'::jsonb ? 'x'",
        "self test",
    )?;
    let armed = fired(&notices)
        .iter()
        .filter(|(u, _)| u == ATTACKER)
        .count();
    if armed == 0 {
        return Err(
            "planted operators did not fire for the attacker itself: the test is not armed".into(),
        );
    }
    for (i, sp) in variants.iter().enumerate() {
        exec(
            &mut c,
            &format!("SET search_path = {sp}"),
            "set search_path",
        )?;
        notices.lock().unwrap().clear();
        let w = walk(&mut c, &format!("v{i}"), &extra);
        attempts += w.steps;
        for (step, o) in &w.outcomes {
            let want = refmap.get(step).cloned().unwrap_or_default();
            if *o != want {
                disrupted.push(format!(
                    "search_path {sp}: step {step}: {o} (without plants: {want})"
                ));
            }
        }
        for (u, obj) in fired(&notices) {
            if u == ATTACKER {
                self_fired += 1;
            } else {
                let e = hijacks
                    .entry(format!("{obj} ran as {u}"))
                    .or_insert((0, BTreeSet::new()));
                e.0 += 1;
                e.1.insert(format!("search_path {sp}"));
            }
        }
    }
    // the log agrees with the notices
    let logged: i64 = c
        .query_one(
            &format!("SELECT count(*) FROM public.cl_attack_log WHERE usr <> '{ATTACKER}'"),
            &[],
        )
        .map_err(|e| common::err_text(&e))?
        .get(0);
    drop(c);
    // which walk step fired what: re-run step by step once, to name the functions hijacked
    let mut by_function: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if !hijacks.is_empty() {
        let (mut c, notices) = common::connect_with_notices(&base, &db_atk, Some(ATTACKER))?;
        exec(
            &mut c,
            "SET search_path = public, pg_temp",
            "set search_path",
        )?;
        let mut vars: HashMap<&str, String> = HashMap::new();
        for (name, func, sql, var) in suite("x") {
            let mut sql = sql;
            for (k, v) in &vars {
                sql = sql.replace(&format!("{{{k}}}"), v);
            }
            notices.lock().unwrap().clear();
            match var {
                Some(v) => {
                    if let Ok(row) = c.query_one(sql.as_str(), &[]) {
                        vars.insert(v, row.get::<_, i64>(0).to_string());
                    }
                }
                None => {
                    let _ = c.batch_execute(&sql);
                }
            }
            let mut objs: Vec<String> = fired(&notices)
                .into_iter()
                .filter(|(u, _)| u != ATTACKER)
                .map(|(_, o)| o)
                .collect();
            objs.sort();
            objs.dedup();
            if !objs.is_empty() {
                by_function
                    .entry(format!("{func} ({name})"))
                    .or_default()
                    .extend(objs);
            }
        }
        for (name, sql) in &extra {
            notices.lock().unwrap().clear();
            let _ = c.batch_execute(sql);
            let mut objs: Vec<String> = fired(&notices)
                .into_iter()
                .filter(|(u, _)| u != ATTACKER)
                .map(|(_, o)| o)
                .collect();
            objs.sort();
            objs.dedup();
            if !objs.is_empty() {
                by_function
                    .entry(format!("{name} (NULL arguments)"))
                    .or_default()
                    .extend(objs);
            }
        }
    }

    // C1. CREATE EXTENSION over generic plants: must succeed and fire nothing
    let db_ext = format!("{db_prefix}_ext");
    prepare_db(&base, &db_ext, false)?;
    let mut create_ext = String::new();
    {
        let (mut c, notices) = common::connect_with_notices(&base, &db_ext, Some(ATTACKER))?;
        exec(&mut c, MARK, "marker")?;
        exec(&mut c, &plant_sql("public", true), "plant public")?;
        planted += planted_count(&notices);
        drop(c);
        let (mut su, su_notices) = common::connect_with_notices(&base, &db_ext, None)?;
        attempts += 1;
        match su.batch_execute("CREATE EXTENSION credit_ledger") {
            Ok(()) => create_ext.push_str("created"),
            Err(e) => {
                create_ext.push_str("failed");
                disrupted.push(format!(
                    "CREATE EXTENSION over generic plants failed: {}",
                    common::err_text(&e)
                ));
            }
        }
        for (u, obj) in fired(&su_notices) {
            let e = hijacks
                .entry(format!("{obj} ran as {u} during CREATE EXTENSION"))
                .or_insert((0, BTreeSet::new()));
            e.0 += 1;
            e.1.insert("CREATE EXTENSION".to_string());
        }
        if create_ext == "created" {
            fixture(&mut su)?;
            drop(su);
            // the walk again, in a database whose plants predate the extension
            let (mut c, notices) = common::connect_with_notices(&base, &db_ext, Some(ATTACKER))?;
            exec(
                &mut c,
                "SET search_path = public, pg_temp",
                "set search_path",
            )?;
            let w = walk(&mut c, "e0", &extra);
            attempts += w.steps;
            for (u, obj) in fired(&notices) {
                if u != ATTACKER {
                    let e = hijacks
                        .entry(format!("{obj} ran as {u}"))
                        .or_insert((0, BTreeSet::new()));
                    e.0 += 1;
                    e.1.insert("plants made before CREATE EXTENSION".to_string());
                }
            }
        }
    }

    // C2. CREATE EXTENSION over objects with the extension's own names: a clean conflict
    let db_conf = format!("{db_prefix}_conflict");
    prepare_db(&base, &db_conf, false)?;
    {
        let (mut c, _n) = common::connect_with_notices(&base, &db_conf, Some(ATTACKER))?;
        exec(&mut c, MARK, "marker")?;
        exec(
            &mut c,
            "CREATE FUNCTION public.credit_authorize(wallet text, action text, quantity numeric DEFAULT 1, variant text DEFAULT NULL,
                 idempotency_key text DEFAULT NULL, metadata jsonb DEFAULT NULL) RETURNS int LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM public.cl_attack_mark('function public.credit_authorize'); RETURN 0; END $$;
             CREATE DOMAIN public.credit_wallet AS text CHECK (public.cl_attack_mark('domain public.credit_wallet'));
             CREATE FUNCTION public.credit_verify() RETURNS TABLE (check_name text, subject text, detail text) LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM public.cl_attack_mark('function public.credit_verify'); END $$;",
            "plant conflicts",
        )?;
        drop(c);
        let (mut su, su_notices) = common::connect_with_notices(&base, &db_conf, None)?;
        attempts += 1;
        match su.batch_execute("CREATE EXTENSION credit_ledger") {
            Ok(()) => {
                create_ext.push_str(",conflict_accepted");
                disrupted.push(
                    "CREATE EXTENSION succeeded over same-named objects of another owner".into(),
                );
            }
            Err(e) => create_ext.push_str(&format!(
                ",conflict_rejected:{}",
                e.as_db_error()
                    .map(|d| d.code().code().to_string())
                    .unwrap_or_default()
            )),
        }
        for (u, obj) in fired(&su_notices) {
            let e = hijacks
                .entry(format!(
                    "{obj} ran as {u} during CREATE EXTENSION (conflicts)"
                ))
                .or_insert((0, BTreeSet::new()));
            e.0 += 1;
            e.1.insert("CREATE EXTENSION".to_string());
        }
    }

    if !a.flag("keep") {
        for db in [&db_base, &db_atk, &db_ext, &db_conf] {
            common::drop_db(&base, db);
        }
        if let Ok(mut admin) = common::connect(&base, "postgres") {
            let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {ATTACKER}"));
        }
    }

    for (k, (n, ctx)) in &hijacks {
        let ctx: Vec<&str> = ctx.iter().map(|c| c.as_str()).collect();
        eprintln!("attack HIJACK: {k} ({n}x; {})", ctx.join(", "));
    }
    for (f, objs) in &by_function {
        eprintln!("attack hijacked by the walk step {f}: {}", objs.join("; "));
    }
    for d in &disrupted {
        eprintln!("attack disrupted: {d}");
    }
    let hijack_count: u64 = hijacks.values().map(|(n, _)| n).sum();
    let pass = hijack_count == 0 && logged == 0;
    println!(
        "{}",
        common::figure(
            "attack",
            &[
                ("attempts", attempts.to_string()),
                ("search_paths", variants.len().to_string()),
                ("secdef_functions", sd.len().to_string()),
                (
                    "secdef_covered_by_walk",
                    sd.iter()
                        .filter(|(n, _)| covered.contains(&n.as_str()))
                        .count()
                        .to_string()
                ),
                ("planted_objects", planted.to_string()),
                ("armed_self_fires", (armed + self_fired).to_string()),
                ("hijacks", hijack_count.to_string()),
                ("hijacked_objects", hijacks.len().to_string()),
                ("hijacked_functions", by_function.len().to_string()),
                ("logged_as_definer", logged.to_string()),
                ("disrupted", disrupted.len().to_string()),
                ("create_extension", create_ext),
                ("elapsed_s", format!("{:.1}", start.elapsed().as_secs_f64())),
            ],
            pass
        )
    );
    Ok(pass)
}
