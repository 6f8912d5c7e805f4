//! The call generator: one random call of a public function, its arguments drawn from the
//! value domains, and what it must do (be rejected, or write nothing when it is a replay).

use super::fixture::{Fixture, WALLETS};
use super::values::*;
use crate::common;
use rand::rngs::StdRng;
use rand::Rng;

/// What a call must do.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Expect {
    /// nothing is known: either outcome, but a rejection must be documented and change nothing
    Free,
    /// must be rejected (optionally with this SQLSTATE)
    Reject(Option<&'static str>),
    /// an exact idempotent replay: must succeed and write nothing
    Replay,
}

pub(super) struct Call {
    pub(super) func: &'static str,
    pub(super) args: Vec<(&'static str, String, &'static str)>,
    pub(super) expect: Expect,
}

impl Call {
    fn new(func: &'static str) -> Call {
        Call {
            func,
            args: Vec::new(),
            expect: Expect::Free,
        }
    }
    /// Add an argument; an Invalid verdict makes the call a must-reject.
    fn arg(&mut self, name: &'static str, sql: &str, ty: &'static str, v: V) -> &mut Self {
        if v == Invalid && self.expect == Expect::Free {
            self.expect = Expect::Reject(None);
        }
        if !sql.is_empty() {
            self.args.push((name, sql.to_string(), ty));
        }
        self
    }
    pub(super) fn sql(&self) -> String {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|(n, s, t)| format!("{n} => ({s})::{t}"))
            .collect();
        format!("SELECT * FROM {}({})", self.func, args.join(", "))
    }
}

pub(super) struct Gen {
    pub(super) rng: StdRng,
    pub(super) n: u64,
    pub(super) epoch: u64,
    /// after a few statement timeouts of the lifecycle functions (recorded as findings), stop
    /// generating far-future `as_of` values so the run stays bounded
    pub(super) lifecycle_muted: bool,
}

impl Gen {
    fn uniq(&mut self, prefix: &str) -> String {
        self.n += 1;
        format!("'{prefix}_{}_{}'", self.epoch, self.n)
    }
    fn wallet(&mut self) -> (String, V) {
        if self.rng.gen_bool(0.7) {
            (
                common::lit(WALLETS[self.rng.gen_range(0..WALLETS.len())]),
                Valid,
            )
        } else if self.rng.gen_bool(0.3) {
            let weird = [
                "nope",
                "ü💥'; DROP TABLE x; --",
                "%s%n",
                "a\tb",
                "Rich",
                " rich",
            ];
            (
                common::lit(weird[self.rng.gen_range(0..weird.len())]),
                Invalid,
            )
        } else {
            let (s, v) = choose(&mut self.rng, NUM_NAMES);
            (s.to_string(), v)
        }
    }
    fn action(&mut self) -> (String, V) {
        let r = self.rng.gen_range(0..10);
        match r {
            0..=4 => ("'chat'".into(), Valid),
            5 => (
                ["'img'", "'xtreme'"][self.rng.gen_range(0..2)].into(),
                Valid,
            ),
            6 => ("'nope'".into(), Invalid),
            _ => {
                let (s, v) = choose(&mut self.rng, NUM_NAMES);
                (s.to_string(), v)
            }
        }
    }
    /// An asset and its scale (None when unknown/invalid).
    fn asset(&mut self, optional: bool) -> (String, V, Option<i32>) {
        let r = self.rng.gen_range(0..12);
        match r {
            0..=2 if optional => (OMIT.into(), Valid, Some(4)),
            0..=5 => ("'credits'".into(), Valid, Some(4)),
            6 | 7 => ("'usd'".into(), Valid, Some(2)),
            8 => ("'nope'".into(), Invalid, None),
            _ => {
                let (s, v) = choose(&mut self.rng, NUM_NAMES);
                (s.to_string(), v, None)
            }
        }
    }
    fn amount(&mut self, scale: Option<i32>) -> (String, V) {
        let items: Vec<(u32, (&str, i32))> =
            AMOUNT.iter().map(|(w, s, k)| (*w, (*s, *k))).collect();
        let (s, k) = pick(&mut self.rng, &items);
        let v = if k < 0 {
            Invalid
        } else {
            match scale {
                Some(sc) if k > sc => Invalid,
                Some(_) => Valid,
                None => Unknown,
            }
        };
        (s.to_string(), v)
    }
    fn key(&mut self) -> (String, V) {
        let r = self.rng.gen_range(0..20);
        match r {
            0..=6 => (OMIT.into(), Valid),
            7..=12 => (self.uniq("key"), Valid),
            13 => ("NULL".into(), Valid),
            14 => ("''".into(), Invalid),
            15 => (
                ["repeat('k', 256)", "repeat('é', 256)"][self.rng.gen_range(0..2)].into(),
                Invalid,
            ),
            16 => ("repeat('k', 10000)".into(), Invalid),
            17 => {
                // 255 characters, multibyte ones included: accepted
                let u = self.uniq("k");
                let pad = ["'k'", "'ü'", "'💥'"][self.rng.gen_range(0..3)];
                (format!("rpad({u}, 255, {pad})"), Valid)
            }
            _ => {
                let keys = [
                    "'k-grant'",
                    "'k-auth'",
                    "'k-hold'",
                    "'k-refund'",
                    "'k-cap'",
                    "'k-rel'",
                    "'k-decl'",
                ];
                (keys[self.rng.gen_range(0..keys.len())].into(), Unknown)
            }
        }
    }
    fn ts(&mut self) -> (String, V, Option<i64>) {
        type Ts = (&'static str, V, Option<i64>);
        let items: Vec<(u32, Ts)> = TS.iter().map(|(w, s, v, o)| (*w, (*s, *v, *o))).collect();
        let (s, v, o) = pick(&mut self.rng, &items);
        (s.to_string(), v, o)
    }
    fn id(&mut self, f: &Fixture, kind: &str) -> (String, V) {
        let r = self.rng.gen_range(0..16);
        let unknown_ids = ["0", "-1", "9223372036854775807", "NULL", "123456789"];
        let open = f.open_holds[self.rng.gen_range(0..f.open_holds.len())];
        let pair = |rng: &mut StdRng, a: i64, b: i64| if rng.gen_bool(0.5) { a } else { b };
        let (id, v): (String, V) = if r <= 1 {
            (
                unknown_ids[self.rng.gen_range(0..unknown_ids.len())].into(),
                Invalid,
            )
        } else {
            match kind {
                "capture" => match r {
                    2..=7 => (open.to_string(), Unknown),
                    8 | 9 => (f.captured_hold.to_string(), Invalid),
                    10 => (f.released_hold.to_string(), Invalid),
                    11 => (f.expired_hold.to_string(), Invalid),
                    12 => (f.expired_unswept_hold.to_string(), Invalid),
                    _ => (
                        pair(&mut self.rng, f.debit_ok, f.declined).to_string(),
                        Invalid,
                    ),
                },
                "release" => match r {
                    2..=7 => (open.to_string(), Unknown),
                    8 | 9 => (f.captured_hold.to_string(), Invalid),
                    10 => (f.released_hold.to_string(), Unknown),
                    11 | 12 => (
                        pair(&mut self.rng, f.expired_hold, f.expired_unswept_hold).to_string(),
                        Unknown,
                    ),
                    _ => (
                        pair(&mut self.rng, f.debit_ok, f.declined).to_string(),
                        Invalid,
                    ),
                },
                _ => match r {
                    2..=8 => (
                        [f.debit_ok, f.debit_part, f.captured_hold][self.rng.gen_range(0..3)]
                            .to_string(),
                        Unknown,
                    ),
                    9 | 10 => (open.to_string(), Unknown),
                    11 => (f.declined.to_string(), Invalid),
                    12 => (f.released_hold.to_string(), Invalid),
                    13 => (f.expired_hold.to_string(), Invalid),
                    _ => (f.debit_full.to_string(), Invalid),
                },
            }
        };
        (id, v)
    }

    pub(super) fn call(&mut self, f: &Fixture) -> Call {
        // one in ten calls replays a fixture request, exactly or with other arguments
        if self.rng.gen_bool(0.1) {
            let (exact, altered, code) = &f.replays[self.rng.gen_range(0..f.replays.len())];
            let (sql, expect) = if altered.is_empty() || self.rng.gen_bool(0.4) {
                (exact.clone(), Expect::Replay)
            } else {
                (
                    altered[self.rng.gen_range(0..altered.len())].clone(),
                    Expect::Reject(Some(*code)),
                )
            };
            let mut c = Call::new("replay");
            c.args.push(("", sql, ""));
            c.expect = expect;
            return c;
        }
        let funcs = [
            "credit_asset_define",
            "credit_wallet_create",
            "credit_wallet_update",
            "credit_rate_set",
            "credit_rate_card_load",
            "credit_rate_card_export",
            "credit_grant",
            "credit_grants",
            "credit_quote",
            "credit_authorize",
            "credit_hold",
            "credit_capture",
            "credit_release",
            "credit_refund",
            "credit_balance",
            "credit_balance_detail",
            "credit_team_allocate",
            "credit_allowance_set",
            "credit_expire",
            "credit_tick",
            "credit_adjust",
            "credit_transfer",
            "credit_statement",
            "credit_quote_tiers",
            "credit_metrics",
        ];
        let func = funcs[self.rng.gen_range(0..funcs.len())];
        let mut c = Call::new(func);
        match func {
            "credit_asset_define" => {
                let r = self.rng.gen_range(0..10);
                let (asset, av, existing_scale) = match r {
                    0..=5 => (self.uniq("asset"), Valid, None),
                    6 => ("'credits'".to_string(), Valid, Some(4)),
                    7 => ("'usd'".to_string(), Valid, Some(2)),
                    _ => {
                        let (s, v) = choose(&mut self.rng, NUM_NAMES);
                        (s.to_string(), v, None)
                    }
                };
                c.arg("asset", &asset, "text", av);
                let scales: &[(u32, (&str, Option<i32>))] = &[
                    (3, (OMIT, Some(4))),
                    (3, ("2", Some(2))),
                    (2, ("0", Some(0))),
                    (2, ("12", Some(12))),
                    (1, ("-1", None)),
                    (1, ("13", None)),
                    (1, ("2147483647", None)),
                    (1, ("NULL", Some(-99))),
                ];
                let (s, sc) = pick(&mut self.rng, scales);
                let v = match (sc, existing_scale) {
                    (None, _) => Invalid,
                    (Some(-99), _) => Unknown,
                    (Some(a), Some(b)) if a != b => Invalid,
                    _ => Valid,
                };
                c.arg("scale", s, "int", v);
                let ds: &[Choice] = &[
                    (3, OMIT, Valid),
                    (3, "NULL", Valid),
                    (3, "'a description'", Valid),
                    (1, "repeat('ð', 1000)", Valid),
                    // descriptions: 1000 characters (22001 beyond)
                    (1, "repeat('d', 1001)", Invalid),
                    (1, "repeat('d', 10000)", Invalid),
                ];
                let (d, dv) = choose(&mut self.rng, ds);
                // the built-in asset's description cannot change (55000): only a new asset's
                let dv = if existing_scale.is_some() && dv == Valid && !d.is_empty() && d != "NULL"
                {
                    Unknown
                } else {
                    dv
                };
                c.arg("description", d, "text", dv);
            }
            "credit_wallet_create" => {
                let existing = self.rng.gen_bool(0.15);
                if existing {
                    c.arg("wallet", "'rich'", "text", Valid);
                    if self.rng.gen_bool(0.5) {
                        c.arg("overdraft_limit", "7", "numeric", Invalid);
                        c.expect = Expect::Reject(Some("42710"));
                    }
                } else {
                    let (w, v) = if self.rng.gen_bool(0.7) {
                        (self.uniq("w"), Valid)
                    } else if self.rng.gen_bool(0.5) {
                        // non-ASCII names, up to the 255-character limit (and one beyond)
                        let u = self.uniq("wü💥");
                        match self.rng.gen_range(0..3) {
                            0 => (u, Valid),
                            1 => (format!("rpad({u}, 255, 'ñ')"), Valid),
                            _ => (format!("rpad({u}, 256, 'ñ')"), Invalid),
                        }
                    } else {
                        let (s, v) = choose(&mut self.rng, NUM_NAMES);
                        (s.to_string(), v)
                    };
                    c.arg("wallet", &w, "text", v);
                    let parents: &[Choice] = &[
                        (8, OMIT, Valid),
                        (2, "NULL", Valid),
                        (3, "'team'", Valid),
                        (2, "'m1'", Invalid),
                        (2, "'nope'", Invalid),
                        (1, "''", Invalid),
                    ];
                    let (p, pv) = choose(&mut self.rng, parents);
                    c.arg("parent", p, "text", pv);
                    let cards: &[Choice] = &[
                        (8, OMIT, Valid),
                        (2, "NULL", Valid),
                        (2, "'pro'", Valid),
                        (1, "'nope'", Unknown),
                        (1, "''", Unknown),
                    ];
                    let (s, v) = choose(&mut self.rng, cards);
                    c.arg("rate_card", s, "text", v);
                    let (s, v) = choose(&mut self.rng, OPT_NONNEG);
                    c.arg(
                        "overdraft_limit",
                        s,
                        "numeric",
                        if s == "NULL" { Unknown } else { v },
                    );
                    let lbt: &[Choice] = &[
                        (6, OMIT, Valid),
                        (2, "10", Valid),
                        (1, "-5", Unknown),
                        (1, "'NaN'", Invalid),
                        (1, "1e40", Invalid),
                    ];
                    let (s, v) = choose(&mut self.rng, lbt);
                    c.arg("low_balance_threshold", s, "numeric", v);
                    let (s, v) = choose(&mut self.rng, META);
                    c.arg("metadata", s, "jsonb", v);
                    let (s, v) = choose(&mut self.rng, OPT_NONNEG);
                    c.arg("spend_cap", s, "numeric", v);
                    let (s, v) = choose(&mut self.rng, OPT_NONNEG);
                    c.arg(
                        "pool_limit",
                        s,
                        "numeric",
                        if p.is_empty() || p == "NULL" {
                            Unknown.min_with(v)
                        } else {
                            v
                        },
                    );
                    let (s, v) = choose(&mut self.rng, PERIOD);
                    c.arg("period", s, "interval", v);
                    if self.rng.gen_bool(0.2) {
                        let (s, _, _) = self.ts();
                        c.arg("period_anchor", &s, "timestamptz", Unknown);
                    }
                }
            }
            "credit_wallet_update" => {
                let (w, v) = self.wallet();
                c.arg("wallet", &w, "text", v);
                let cards: &[Choice] = &[
                    (8, OMIT, Valid),
                    (2, "'pro'", Valid),
                    (2, "'default'", Valid),
                    (1, "'nope'", Unknown),
                    (1, "''", Unknown),
                ];
                let (s, v) = choose(&mut self.rng, cards);
                c.arg("rate_card", s, "text", v);
                for p in ["overdraft_limit", "spend_cap", "pool_limit"] {
                    let (s, v) = choose(&mut self.rng, OPT_NONNEG);
                    c.arg(
                        p,
                        s,
                        "numeric",
                        if p == "pool_limit" {
                            Unknown.min_with(v)
                        } else {
                            v
                        },
                    );
                }
                let lbt: &[Choice] = &[
                    (6, OMIT, Valid),
                    (2, "10", Valid),
                    (1, "-5", Unknown),
                    (1, "'NaN'", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, lbt);
                c.arg("low_balance_threshold", s, "numeric", v);
                let fr: &[Choice] = &[
                    (6, OMIT, Valid),
                    (1, "true", Valid),
                    (2, "false", Valid),
                    (1, "NULL", Valid),
                ];
                let (s, v) = choose(&mut self.rng, fr);
                c.arg("frozen", s, "boolean", v);
                let (s, v) = choose(&mut self.rng, META);
                c.arg("metadata", s, "jsonb", v);
                let parents: &[Choice] = &[
                    (10, OMIT, Valid),
                    (1, "'team'", Unknown),
                    (1, "'nope'", Invalid),
                    (1, "''", Invalid),
                    (1, "'rich'", Unknown),
                ];
                let (s, v) = choose(&mut self.rng, parents);
                c.arg("parent", s, "text", v);
                let (s, v) = choose(&mut self.rng, PERIOD);
                c.arg("period", s, "interval", v);
                let clears: &[Choice] = &[
                    (8, OMIT, Valid),
                    (2, "'{spend_cap}'", Valid),
                    (1, "'{low_balance_threshold,pool_limit}'", Valid),
                    (1, "'{}'", Unknown),
                    (1, "'{nonsense}'", Invalid),
                    (1, "'{NULL}'", Unknown),
                    (1, "ARRAY[repeat('c', 10000)]", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, clears);
                c.arg("clear", s, "text[]", v);
            }
            "credit_rate_set" => {
                let acts: &[Choice] = &[
                    (4, "'chat'", Valid),
                    (2, "'img'", Valid),
                    (3, "'act_new'", Valid),
                    (1, "'чат_💥'", Valid),
                    (1, "repeat('ä', 255)", Valid),
                ];
                // extreme prices go to their own action, so the others stay usable
                let xtreme = self.rng.gen_bool(0.15);
                let (s, v) = if xtreme {
                    ("'xtreme'", Valid)
                } else if self.rng.gen_bool(0.8) {
                    choose(&mut self.rng, acts)
                } else {
                    choose(&mut self.rng, NUM_NAMES)
                };
                c.arg("action", s, "text", v);
                let extreme: &[Choice] = &[
                    (2, "79228162514264337593543950335", Valid),
                    (2, "79.228162514264337593543950335", Valid),
                    (2, "0.0000000000000000000000000001", Valid),
                    (1, "1e27", Valid),
                    (1, "79228162514264337593543950336", Invalid),
                    (1, "1e-29", Invalid),
                ];
                let credits: &[Choice] = &[
                    (5, "1.5", Valid),
                    (2, "0", Valid),
                    (1, "0.000000001", Unknown),
                    (2, "-1", Invalid),
                    (2, "'NaN'", Invalid),
                    (1, "'Infinity'", Invalid),
                    (1, "'-Infinity'", Invalid),
                    (1, "1e40", Invalid),
                    (2, "NULL", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, if xtreme { extreme } else { credits });
                c.arg("credits", s, "numeric", v);
                let (s, v) = choose(&mut self.rng, VARIANT);
                c.arg("variant", s, "text", v);
                let cards: &[Choice] = &[
                    (6, OMIT, Valid),
                    (2, "'pro'", Valid),
                    (2, "'card_new'", Valid),
                    (1, "''", Invalid),
                    (1, "NULL", Unknown),
                    (1, "repeat('c', 10000)", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, cards);
                c.arg("rate_card", s, "text", v);
                let (a, v, _) = self.asset(true);
                c.arg("asset", &a, "text", v);
                let units: &[Choice] = &[
                    (6, OMIT, Valid),
                    (2, "'1k tokens'", Valid),
                    (1, "'1k tökens 💥'", Valid),
                    (1, "''", Unknown),
                    (1, "NULL", Unknown),
                    (1, "repeat('u', 10000)", Invalid),
                    (1, "repeat('ü', 256)", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, units);
                c.arg("unit", s, "text", v);
                let vc: &[Choice] = &[
                    (6, OMIT, Valid),
                    (2, "0.075", Valid),
                    (1, "NULL", Valid),
                    (1, "-1", Invalid),
                    (1, "'NaN'", Invalid),
                    (1, "'Infinity'", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, if xtreme { extreme } else { vc });
                c.arg("vendor_cost", s, "numeric", v);
                if self.rng.gen_bool(0.3) {
                    let (s, v, _) = self.ts();
                    c.arg(
                        "effective_from",
                        &s,
                        "timestamptz",
                        if v == Valid { Valid } else { Unknown },
                    );
                }
                // volume tiers (0.8.0): each price at most the one before (so valid tiers
                // depend on `credits`: Unknown), `from` increasing, exactly two fields
                let tiers: &[Choice] = &[
                    (8, OMIT, Valid),
                    (1, "NULL", Valid),
                    (1, "'null'", Valid),
                    (2, r#"'[{"from": 100, "credits": 0}]'"#, Unknown),
                    (
                        1,
                        r#"'[{"from": "10", "credits": "1.25"}, {"from": 1000, "credits": 1}]'"#,
                        Unknown,
                    ),
                    (1, "'[]'", Invalid),
                    (1, r#"'{"from": 10, "credits": 1}'"#, Invalid),
                    (1, r#"'[{"from": 0, "credits": 0}]'"#, Invalid),
                    (
                        1,
                        r#"'[{"from": 10, "credits": 0}, {"from": 5, "credits": 0}]'"#,
                        Invalid,
                    ),
                    (1, r#"'[{"from": 10, "credits": 0, "to": 20}]'"#, Invalid),
                    (1, r#"'[{"from": 10, "credits": -1}]'"#, Invalid),
                    (1, r#"'[{"from": "NaN", "credits": 0}]'"#, Invalid),
                    (1, DEEP_129, Invalid),
                ];
                let (s, v) = choose(&mut self.rng, tiers);
                c.arg("tiers", s, "jsonb", v);
            }
            "credit_metrics" => {
                let parts: &[Choice] = &[
                    (3, OMIT, Valid),
                    (1, "NULL", Valid),
                    (2, "'holds'", Valid),
                    (2, "'calls'", Valid),
                    (2, "'credits'", Valid),
                    (2, "'liability'", Valid),
                    (1, "'nonsense'", Valid),
                ];
                let (s, v) = choose(&mut self.rng, parts);
                c.arg("part", s, "text", v);
            }
            "credit_rate_card_load" => {
                let docs: &[Choice] = &[
                    (6, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": "1.25"}]}'"#, Valid),
                    (3, r#"'{"name": "gen_card", "description": "x", "entries": [{"action": "chat", "variant": "opus", "credits": 12, "asset": "credits", "unit": "1k tokens", "vendor_cost": "0.05", "effective_from": "2026-01-01T00:00:00Z"}]}'"#, Valid),
                    (1, r#"'{"name": "pro", "entries": []}'"#, Unknown),
                    (1, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": 1, "extra": true}]}'"#, Unknown),
                    (2, "'null'", Invalid), (2, "'[]'", Invalid), (1, "'\"pro\"'", Invalid), (1, "'42'", Invalid),
                    (2, "'{}'", Invalid),
                    (2, r#"'{"name": 1, "entries": []}'"#, Invalid),
                    (2, r#"'{"name": "", "entries": []}'"#, Invalid),
                    (2, r#"'{"name": "pro", "entries": {}}'"#, Invalid),
                    (2, r#"'{"name": "pro", "entries": [1]}'"#, Invalid),
                    (2, r#"'{"name": "pro", "entries": [{"credits": 1}]}'"#, Invalid),
                    (2, r#"'{"name": "pro", "entries": [{"action": "chat"}]}'"#, Invalid),
                    (2, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": "abc"}]}'"#, Invalid),
                    (2, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": -1}]}'"#, Invalid),
                    (2, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": "NaN"}]}'"#, Invalid),
                    (1, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": "Infinity"}]}'"#, Invalid),
                    (2, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": 1e40}]}'"#, Invalid),
                    (1, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": 123456789012345678901234567890}]}'"#, Invalid),
                    (2, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": 1, "effective_from": "not a date"}]}'"#, Invalid),
                    (2, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": 1, "asset": "nope"}]}'"#, Invalid),
                    (1, r#"'{"name": "pro", "entries": [{"action": "", "credits": 1}]}'"#, Invalid),
                    (1, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": 1, "vendor_cost": -2}]}'"#, Invalid),
                    (1, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": 1}, {"action": "chat", "credits": 2}]}'"#, Unknown),
                    (1, "jsonb_build_object('name', repeat('n', 10000), 'entries', '[]'::jsonb)", Invalid),
                    (1, "jsonb_build_object('name', 'pro', 'entries', jsonb_build_array(jsonb_build_object('action', repeat('a', 10000), 'credits', 1)))", Invalid),
                    (1, "NULL", Invalid),
                    // non-ASCII text everywhere
                    (3, r#"'{"name": "prö_💥", "description": "Tarif für Ünïcödé ✓", "entries": [{"action": "chät", "variant": "日本語", "credits": "1.5", "unit": "1k tökens", "vendor_cost": "0.015", "effective_from": "2026-01-01T00:00:00Z"}]}'"#, Valid),
                    (1, "jsonb_build_object('name', repeat('ñ', 255), 'description', repeat('ð', 1000), 'entries', jsonb_build_array(jsonb_build_object('action', repeat('ä', 255), 'variant', repeat('💥', 255), 'unit', repeat('ü', 255), 'credits', 1)))", Valid),
                    // a multibyte character at each position the timestamp parser splits
                    (1, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": 1, "effective_from": "2026-01-0é"}]}'"#, Invalid),
                    (1, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": 1, "effective_from": "2026-01-01T00:00:00.12345é"}]}'"#, Invalid),
                    (1, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": 1, "effective_from": "2026-01-01T00:00:00+1é1"}]}'"#, Invalid),
                    (1, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": 1, "effective_from": "２０２６-01-01"}]}'"#, Invalid),
                    (1, r#"'{"name": "pro", "entries": [{"action": "chat", "credits": "１.５"}]}'"#, Invalid),
                    // exact numbers: kept digit for digit, or 22003
                    (2, r#"'{"name": "xtreme_card", "entries": [{"action": "xtreme", "credits": 0.1234567890123456789, "vendor_cost": 79228162514264337593543950335}, {"action": "xb", "credits": 12345678901234567890.5, "vendor_cost": 0.0000000000000000000000000001}]}'"#, Valid),
                    (1, r#"'{"name": "xtreme_card", "entries": [{"action": "xtreme", "credits": 0.12345678901234567890123456789}]}'"#, Invalid),
                    (1, r#"'{"name": "xtreme_card", "entries": [{"action": "xtreme", "credits": 79228162514264337593543950336}]}'"#, Invalid),
                    (1, r#"'{"name": "xtreme_card", "entries": [{"action": "xtreme", "credits": 1e-29}]}'"#, Invalid),
                    (1, r#"'{"name": "xtreme_card", "entries": [{"action": "xtreme", "credits": 1e400}]}'"#, Invalid),
                    // oversize names and descriptions: 22001
                    (1, "jsonb_build_object('name', repeat('ñ', 256), 'entries', '[]'::jsonb)", Invalid),
                    (1, "jsonb_build_object('name', 'pro', 'description', repeat('d', 1001), 'entries', '[]'::jsonb)", Invalid),
                    (1, "jsonb_build_object('name', 'pro', 'entries', jsonb_build_array(jsonb_build_object('action', 'chat', 'credits', 1, 'unit', repeat('ü', 256))))", Invalid),
                    // deep documents: 128 levels parse (then a wrong type), 129 and 500 are 22023
                    (1, "jsonb_build_object('name', 'pro', 'description', ('{\"a\": ' || repeat('[', 126) || repeat(']', 126) || '}')::jsonb, 'entries', '[]'::jsonb)", Invalid),
                    (1, "jsonb_build_object('name', 'pro', 'entries', jsonb_build_array(('{\"a\": ' || repeat('[', 127) || repeat(']', 127) || '}')::jsonb))", Invalid),
                    (1, "(repeat('[', 500) || repeat(']', 500))::jsonb", Invalid),
                    (1, DEEP_500, Invalid),
                ];
                let (s, v) = choose(&mut self.rng, docs);
                c.arg("card", s, "jsonb", v);
            }
            "credit_rate_card_export" => {
                let cards: &[Choice] = &[
                    (5, "'default'", Valid),
                    (3, "'pro'", Valid),
                    (2, "'nope'", Invalid),
                    (1, "''", Invalid),
                    (1, "NULL", Invalid),
                    (1, "repeat('c', 10000)", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, cards);
                c.arg("rate_card", s, "text", v);
            }
            "credit_grant" if self.rng.gen_bool(0.08) => {
                // extreme amounts go to the whale, so the other wallets' totals stay in range
                c.arg("wallet", "'whale'", "text", Valid);
                let amts: &[Choice] = &[
                    (3, "79228162514264337593543950335", Valid),
                    (2, "1e28", Valid),
                    (1, "0.0001", Valid),
                    (1, "0.0000000000000000000000000001", Invalid),
                    (1, "79228162514264337593543950336", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, amts);
                c.arg("amount", s, "numeric", v);
                let (k, v) = self.key();
                c.arg("idempotency_key", &k, "text", v);
                let (s, v) = choose(&mut self.rng, META);
                c.arg("metadata", s, "jsonb", v);
            }
            "credit_grant" => {
                let (w, v) = self.wallet();
                c.arg(
                    "wallet",
                    &w,
                    "text",
                    if w == "'frozen'" { Unknown } else { v },
                );
                let (a, av, scale) = self.asset(true);
                let (amt, mv) = self.amount(scale);
                c.arg("amount", &amt, "numeric", mv);
                c.arg("asset", &a, "text", av);
                let cats: &[Choice] = &[
                    (6, OMIT, Valid),
                    (2, "'promotional'", Valid),
                    (1, "'included'", Valid),
                    (1, "'bonus'", Valid),
                    (1, "'geschenk_🎁'", Valid),
                    (1, "repeat('ç', 255)", Valid),
                    (1, "''", Unknown),
                    (1, "NULL", Unknown),
                    (1, "repeat('c', 10000)", Invalid),
                    (1, "repeat('ç', 256)", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, cats);
                c.arg("category", s, "text", v);
                let prios: &[Choice] = &[
                    (8, OMIT, Valid),
                    (2, "NULL", Valid),
                    (2, "5", Valid),
                    (1, "-1", Unknown),
                    (1, "2147483647", Unknown),
                    (1, "-2147483648", Unknown),
                ];
                let (s, v) = choose(&mut self.rng, prios);
                c.arg("priority", s, "int", v);
                // effective_at / expires_at and their order
                let (eff, eff_off) = if self.rng.gen_bool(0.3) {
                    let (s, _, o) = self.ts();
                    (s, o)
                } else {
                    (OMIT.to_string(), Some(0))
                };
                let (exp, exp_v) = if self.rng.gen_bool(0.4) {
                    let (s, _, o) = self.ts();
                    let v = match (o, eff_off) {
                        (Some(x), Some(e)) if x <= e.max(0) => Invalid,
                        (Some(_), Some(_)) => Valid,
                        _ if s == "NULL" => Valid,
                        _ if s == "'-infinity'" => Invalid,
                        _ => Unknown,
                    };
                    (s, v)
                } else {
                    (OMIT.to_string(), Valid)
                };
                let eff_v = if eff.is_empty() || eff_off.is_some() {
                    Valid
                } else {
                    Unknown
                };
                c.arg("effective_at", &eff, "timestamptz", eff_v);
                c.arg("expires_at", &exp, "timestamptz", exp_v);
                let prices: &[Choice] = &[
                    (6, OMIT, Valid),
                    (2, "0.01", Valid),
                    (1, "0", Valid),
                    (1, "-1", Invalid),
                    (1, "'NaN'", Invalid),
                    (1, "'Infinity'", Invalid),
                    (1, "1e40", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, prices);
                c.arg("unit_price", s, "numeric", v);
                let (k, v) = self.key();
                c.arg("idempotency_key", &k, "text", v);
                let (s, v) = choose(&mut self.rng, META);
                c.arg("metadata", s, "jsonb", v);
            }
            "credit_grants" => {
                let (w, v) = self.wallet();
                c.arg("wallet", &w, "text", v);
                let assets: &[Choice] = &[
                    (5, OMIT, Valid),
                    (2, "NULL", Valid),
                    (2, "'credits'", Valid),
                    (1, "'nope'", Unknown),
                    (1, "''", Unknown),
                ];
                let (s, v) = choose(&mut self.rng, assets);
                c.arg("asset", s, "text", v);
            }
            "credit_quote" | "credit_quote_tiers" | "credit_authorize" | "credit_hold" => {
                let (w, v) = self.wallet();
                c.arg("wallet", &w, "text", v);
                let (a, v) = self.action();
                c.arg("action", &a, "text", v);
                let (s, v) = choose(&mut self.rng, QTY);
                c.arg("quantity", s, "numeric", v);
                let (s, v) = choose(&mut self.rng, VARIANT);
                c.arg("variant", s, "text", v);
                if !func.starts_with("credit_quote") {
                    let (k, v) = self.key();
                    c.arg("idempotency_key", &k, "text", v);
                    let (s, v) = choose(&mut self.rng, META);
                    c.arg("metadata", s, "jsonb", v);
                    // degrade (0.7.0): any boolean is valid
                    let degrade: &[Choice] = &[
                        (6, OMIT, Valid),
                        (2, "true", Valid),
                        (1, "false", Valid),
                        (1, "NULL", Valid),
                    ];
                    let (s, v) = choose(&mut self.rng, degrade);
                    c.arg("degrade", s, "boolean", v);
                }
                if func == "credit_hold" {
                    let (s, v) = choose(&mut self.rng, INTERVAL_TTL);
                    c.arg("ttl", s, "interval", v);
                }
            }
            "credit_capture" => {
                let (id, v) = self.id(f, "capture");
                c.arg("authorization_id", &id, "bigint", v);
                let qs: &[Choice] = &[
                    (6, OMIT, Valid),
                    (2, "NULL", Valid),
                    (3, "1", Unknown),
                    (2, "5", Unknown),
                    (1, "0", Unknown),
                    (2, "-1", Invalid),
                    (2, "'NaN'", Invalid),
                    (1, "'Infinity'", Invalid),
                    (1, "1e40", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, qs);
                c.arg("quantity", s, "numeric", v);
                let (k, v) = self.key();
                c.arg("idempotency_key", &k, "text", v);
                let (s, v) = choose(&mut self.rng, META);
                c.arg("metadata", s, "jsonb", v);
            }
            "credit_release" => {
                let (id, v) = self.id(f, "release");
                c.arg("authorization_id", &id, "bigint", v);
                let (k, v) = self.key();
                c.arg("idempotency_key", &k, "text", v);
                let (s, v) = choose(&mut self.rng, META);
                c.arg("metadata", s, "jsonb", v);
            }
            "credit_refund" => {
                let (id, v) = self.id(f, "refund");
                c.arg("authorization_id", &id, "bigint", v);
                let amts: &[Choice] = &[
                    (6, OMIT, Unknown),
                    (2, "NULL", Unknown),
                    (3, "0.0001", Unknown),
                    (2, "1", Unknown),
                    (2, "0", Invalid),
                    (2, "-1", Invalid),
                    (2, "'NaN'", Invalid),
                    (1, "'Infinity'", Invalid),
                    (2, "1000000", Invalid),
                    (1, "0.00001", Invalid),
                    (1, "1e40", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, amts);
                c.arg("amount", s, "numeric", v);
                let rs: &[Choice] = &[
                    (6, OMIT, Valid),
                    (2, "'customer complaint'", Valid),
                    (1, "'Kundenbeschwerde: zu teuer 💸'", Valid),
                    (1, "NULL", Valid),
                    // reasons: 1000 characters (22001 beyond)
                    (1, "repeat('ř', 1000)", Valid),
                    (1, "repeat('ř', 1001)", Invalid),
                    (1, "repeat('r', 10000)", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, rs);
                c.arg("reason", s, "text", v);
                let (k, v) = self.key();
                c.arg("idempotency_key", &k, "text", v);
                let (s, v) = choose(&mut self.rng, META);
                c.arg("metadata", s, "jsonb", v);
            }
            "credit_adjust" | "credit_transfer" => {
                // (0.6.0) a negative adjustment or a transfer may find too few credits (53400)
                let (w, v) = self.wallet();
                let from = if func == "credit_adjust" {
                    "wallet"
                } else {
                    "from_wallet"
                };
                c.arg(from, &w, "text", v);
                if func == "credit_transfer" {
                    let (t, tv) = self.wallet();
                    c.arg("to_wallet", &t, "text", if t == w { Invalid } else { tv });
                }
                let (a, av, scale) = self.asset(true);
                let (amt, mv) = self.amount(scale);
                // a negative literal is invalid for a grant, not for an adjustment (it takes
                // credits: it may find too few)
                let mv = if func == "credit_adjust" && amt.starts_with('-') {
                    Unknown
                } else {
                    mv
                };
                // a valid amount taken negative (an invalid one stays as it is)
                let negative = func == "credit_adjust" && mv == Valid && self.rng.gen_bool(0.4);
                let amt = if negative {
                    format!("-(({amt})::numeric)")
                } else {
                    amt
                };
                let mv = match (mv, negative || func == "credit_transfer") {
                    (Invalid, _) => Invalid,
                    (_, true) => Unknown,
                    (m, false) => m,
                };
                c.arg("amount", &amt, "numeric", mv);
                c.arg("asset", &a, "text", av);
                let rs: &[Choice] = if func == "credit_adjust" {
                    &[
                        (6, "'correction'", Valid),
                        (1, "'Korrektur 💸'", Valid),
                        (1, "repeat('ř', 1000)", Valid),
                        (1, OMIT, Invalid),
                        (1, "NULL", Invalid),
                        (1, "repeat('ř', 1001)", Invalid),
                    ]
                } else {
                    &[
                        (6, OMIT, Valid),
                        (2, "'merge'", Valid),
                        (1, "NULL", Valid),
                        (1, "repeat('r', 10000)", Invalid),
                    ]
                };
                let (s, v) = choose(&mut self.rng, rs);
                c.arg("reason", s, "text", v);
                let (k, v) = self.key();
                c.arg("idempotency_key", &k, "text", v);
                let (s, v) = choose(&mut self.rng, META);
                c.arg("metadata", s, "jsonb", v);
            }
            "credit_statement" => {
                let (w, v) = self.wallet();
                c.arg("wallet", &w, "text", v);
                let spans: &[Choice] = &[
                    (6, "now() - interval '1 day'", Valid),
                    (1, "'-infinity'", Invalid),
                    (1, "NULL", Invalid),
                    (1, "now() + interval '1 day'", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, spans);
                c.arg("from_at", s, "timestamptz", v);
                c.arg("to_at", "now()", "timestamptz", Valid);
                let (a, v, _) = self.asset(true);
                c.arg("asset", &a, "text", v);
            }
            "credit_balance" | "credit_balance_detail" => {
                let (w, v) = self.wallet();
                c.arg("wallet", &w, "text", v);
                let (a, v, _) = self.asset(true);
                c.arg("asset", &a, "text", v);
                if func == "credit_balance" {
                    if self.rng.gen_bool(0.4) {
                        let (s, v, _) = self.ts();
                        c.arg(
                            "as_of",
                            &s,
                            "timestamptz",
                            if s == "NULL" { Valid } else { v },
                        );
                    }
                } else {
                    let iv: &[Choice] = &[
                        (6, OMIT, Valid),
                        (2, "'1 day'", Valid),
                        (1, "'0'", Valid),
                        (1, "'-1 day'", Unknown),
                        (1, "NULL", Unknown),
                        (1, "'100000 years'", Unknown),
                    ];
                    let (s, v) = choose(&mut self.rng, iv);
                    c.arg("expiring_within", s, "interval", v);
                }
            }
            "credit_team_allocate" => {
                let teams: &[Choice] = &[
                    (6, "'team'", Valid),
                    (2, "'lonely_team'", Invalid),
                    // 'rich' has no members unless a credit_wallet_update(parent => 'rich')
                    // gave it one earlier in the run
                    (1, "'rich'", Unknown),
                    (1, "'nope'", Invalid),
                    (1, "NULL", Invalid),
                    (1, "''", Invalid),
                    (1, "repeat('t', 10000)", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, teams);
                c.arg("team", s, "text", v);
                if s == "'lonely_team'" {
                    c.expect = Expect::Reject(None);
                }
                let (a, av, scale) = self.asset(true);
                let (amt, mv) = self.amount(scale);
                c.arg("amount_per_member", &amt, "numeric", mv);
                let shares: &[Choice] = &[
                    (4, "0.2", Valid),
                    (2, "0", Valid),
                    (2, "1", Valid),
                    (1, "0.33333", Valid),
                    (2, "-0.1", Invalid),
                    (2, "1.1", Invalid),
                    (2, "'NaN'", Invalid),
                    (1, "'Infinity'", Invalid),
                    (1, "NULL", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, shares);
                c.arg("pooled_share", s, "numeric", v);
                c.arg("asset", &a, "text", av);
                if self.rng.gen_bool(0.3) {
                    let (s, _, o) = self.ts();
                    let v = match o {
                        Some(x) if x <= 0 => Invalid,
                        Some(_) => Valid,
                        None if s == "NULL" => Valid,
                        None => Unknown,
                    };
                    c.arg("expires_at", &s, "timestamptz", v);
                }
                let (k, v) = self.key();
                c.arg("idempotency_key", &k, "text", v);
                let (s, v) = choose(&mut self.rng, META);
                c.arg("metadata", s, "jsonb", v);
            }
            "credit_allowance_set" => {
                let (w, v) = self.wallet();
                c.arg("wallet", &w, "text", v);
                let (a, av, scale) = self.asset(true);
                let (amt, mv) = self.amount(scale);
                c.arg("amount", &amt, "numeric", mv);
                let (s, v) = choose(&mut self.rng, PERIOD);
                c.arg("period", s, "interval", v);
                if self.rng.gen_bool(0.3) {
                    let (s, v, _) = self.ts();
                    c.arg(
                        "anchor",
                        &s,
                        "timestamptz",
                        if v == Valid { Valid } else { Unknown },
                    );
                }
                c.arg("asset", &a, "text", av);
                let (s, v) = choose(&mut self.rng, NONNEG);
                let s = if self.rng.gen_bool(0.5) { OMIT } else { s };
                c.arg(
                    "rollover_cap",
                    s,
                    "numeric",
                    if s.is_empty() { Valid } else { v },
                );
                let shares: &[Choice] = &[
                    (6, OMIT, Valid),
                    (2, "'{1,0.5}'", Valid),
                    (1, "'{0.25}'", Valid),
                    (1, "'{-1}'", Invalid),
                    (1, "'{NaN}'", Invalid),
                    (1, "'{2}'", Unknown),
                    (1, "'{}'", Unknown),
                    (1, "'{NULL}'", Unknown),
                    (1, "'{Infinity}'", Invalid),
                ];
                let (s, v) = choose(&mut self.rng, shares);
                c.arg("rollover_shares", s, "numeric[]", v);
            }
            "credit_expire" | "credit_tick" => {
                if self.rng.gen_bool(0.7) {
                    let (mut s, v, _) = self.ts();
                    if self.lifecycle_muted
                        && !(s.contains("40 days") || s.contains("1 day") || s == "now()")
                    {
                        s = "now()".into();
                    }
                    // far-future ticks are legitimate simulations but may be slow: not asserted
                    c.arg(
                        "as_of",
                        &s,
                        "timestamptz",
                        if s.contains("40 days") || s == "now()" {
                            Valid
                        } else {
                            v.min_with(Unknown)
                        },
                    );
                }
                if func == "credit_expire" && self.rng.gen_bool(0.4) {
                    let mr: &[Choice] = &[
                        (4, "10000", Valid),
                        (2, "1", Valid),
                        (1, "0", Unknown),
                        (1, "-1", Unknown),
                        (1, "NULL", Unknown),
                        (1, "9223372036854775807", Unknown),
                    ];
                    let (s, v) = choose(&mut self.rng, mr);
                    c.arg("max_rows", s, "bigint", v);
                }
            }
            _ => unreachable!(),
        }
        c
    }
}
