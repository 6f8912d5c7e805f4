//! Value domains of the fuzzer: every value an argument can take, with its verdict.

use rand::rngs::StdRng;
use rand::Rng;

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum V {
    Valid,
    Invalid,
    Unknown,
}
pub(super) use V::*;

/// (weight, SQL expression, verdict). An empty expression means "omit the argument".
pub(super) type Choice = (u32, &'static str, V);

pub(super) const OMIT: &str = "";

pub(super) const NUM_NAMES: &[Choice] = &[
    (3, "NULL", Invalid),
    (3, "''", Invalid),
    (2, "'   '", Invalid),
    (2, "repeat('x', 10000)", Invalid),
    (1, "repeat('x', 256)", Invalid),
    // names are limited in characters (22001 beyond 255), multibyte included
    (1, "repeat('ü', 256)", Invalid),
    (1, "repeat('💥', 10000)", Invalid),
];

/// Deep JSON: 128 levels are accepted, more are not (22023, never a panic).
pub(super) const DEEP_128: &str =
    "('{\"a\": ' || repeat('[', 127) || repeat(']', 127) || '}')::jsonb";
pub(super) const DEEP_129: &str =
    "('{\"a\": ' || repeat('[', 128) || repeat(']', 128) || '}')::jsonb";
pub(super) const DEEP_500: &str = "(repeat('{\"ü\": ', 500) || '1' || repeat('}', 500))::jsonb";

pub(super) const QTY: &[Choice] = &[
    // extreme decimals: the largest amount, 28 decimals, 1e27 (costs exact, or 22003)
    (1, "79228162514264337593543950335", Unknown),
    (1, "7.9228162514264337593543950335", Unknown),
    (1, "0.0000000000000000000000000001", Unknown),
    (1, "1e27", Unknown),
    (1, "79228162514264337593543950336", Invalid),
    (6, "1", Valid),
    (3, "2.5", Valid),
    (2, "0.0001", Valid),
    (2, "1000", Valid),
    (1, "1.123456789", Valid),
    (2, "0", Invalid),
    (2, "-1", Invalid),
    (1, "-0.0001", Invalid),
    (2, "'NaN'", Invalid),
    (2, "'Infinity'", Invalid),
    (2, "'-Infinity'", Invalid),
    (1, "1e40", Invalid),
    (1, "123456789012345678901234567890", Invalid),
    (1, "'1e-30'", Unknown),
    (1, "9999999999999999999999999999", Unknown),
    (2, "NULL", Invalid),
];

/// Amounts: (weight, sql, class) where the class is the number of decimals (>= 0) of a
/// positive finite amount, or a negative code for a malformed one.
pub(super) const AMOUNT: &[(u32, &str, i32)] = &[
    (6, "100", 0),
    (3, "12.5", 1),
    (2, "0.01", 2),
    (2, "0.0001", 4),
    (2, "1.00001", 5),
    (1, "0.000000000001", 12),
    (1, "1e20", 0),
    (2, "0", -1),
    (2, "-5", -1),
    (1, "-0.0001", -1),
    (2, "'NaN'", -1),
    (2, "'Infinity'", -1),
    (2, "'-Infinity'", -1),
    (1, "1e40", -1),
    (1, "123456789012345678901234567890", -1),
    (2, "NULL", -1),
];

pub(super) const NONNEG: &[Choice] = &[
    (4, "0", Valid),
    (4, "50", Valid),
    (2, "0.5", Valid),
    (2, "-1", Invalid),
    (2, "'NaN'", Invalid),
    (1, "'Infinity'", Unknown),
    (1, "'-Infinity'", Invalid),
    (1, "1e40", Invalid),
];

pub(super) const OPT_NONNEG: &[Choice] = &[
    (6, OMIT, Valid),
    (3, "NULL", Valid),
    (3, "0", Valid),
    (3, "100", Valid),
    (2, "-1", Invalid),
    (2, "'NaN'", Invalid),
    (1, "'Infinity'", Unknown),
    (1, "'-Infinity'", Invalid),
    (1, "1e40", Invalid),
];

pub(super) const META: &[Choice] = &[
    (10, OMIT, Valid),
    (4, "NULL", Valid),
    (3, "'{}'", Valid),
    (3, "'{\"a\": 1, \"b\": \"ü💥\"}'", Valid),
    (1, "'{\"n\": {\"x\": [1, 2, {\"y\": null}]}}'", Valid),
    (1, "jsonb_build_object('big', repeat('m', 10000))", Valid),
    // non-ASCII keys and values, numbers beyond any float (kept digit for digit)
    (2, "'{\"ü💥\": \"日本語\", \"n\": 1e400, \"p\": 0.12345678901234567890123456789, \"q\": 1.10}'", Valid),
    // 65,536 bytes as text: accepted (credit_team_allocate adds keys: may pass the limit)
    (1, "jsonb_build_object('a', repeat('m', 65527))", Unknown),
    // beyond 64 kB: 22001
    (1, "jsonb_build_object('a', repeat('m', 65528))", Invalid),
    (1, "jsonb_build_object('ü', repeat('💥', 70000))", Invalid),
    // 128 levels deep: accepted; 129 and 500: 22023
    (1, DEEP_128, Valid),
    (1, DEEP_129, Invalid),
    (1, DEEP_500, Invalid),
    (2, "'[]'", Invalid),
    (2, "'[1, 2]'", Invalid),
    (2, "'\"text\"'", Invalid),
    (2, "'1'", Invalid),
    (2, "'null'", Invalid),
    (1, "'true'", Invalid),
];

pub(super) const VARIANT: &[Choice] = &[
    (8, OMIT, Valid),
    (3, "NULL", Valid),
    (3, "'opus'", Valid),
    (2, "'unknown-model'", Valid),
    (1, "'日本語-модель'", Valid),
    (1, "repeat('ü', 255)", Valid),
    (1, "''", Unknown),
    (1, "repeat('v', 10000)", Invalid),
    (1, "repeat('💥', 256)", Invalid),
];

pub(super) const INTERVAL_TTL: &[Choice] = &[
    (6, OMIT, Valid),
    (3, "'10 minutes'", Valid),
    (2, "'1 day'", Valid),
    (1, "'1 microsecond'", Unknown),
    (2, "'0'", Unknown),
    (2, "'-1 minute'", Invalid),
    (1, "'100000 years'", Unknown),
    (1, "'1 month'", Valid),
    (2, "NULL", Unknown),
];

pub(super) const PERIOD: &[Choice] = &[
    (4, OMIT, Valid),
    (3, "'1 month'", Valid),
    (3, "'1 day'", Valid),
    (2, "'7 days'", Valid),
    (2, "'0'", Invalid),
    (2, "'-1 day'", Invalid),
    (1, "'1 microsecond'", Unknown),
    (1, "'1 second'", Unknown),
    (1, "'10000 years'", Unknown),
    (2, "NULL", Unknown),
];

/// Timestamps: (weight, sql, verdict as an "as of" value, offset in seconds from now when finite).
pub(super) const TS: &[(u32, &str, V, Option<i64>)] = &[
    (5, "now()", Valid, Some(0)),
    (3, "now() - interval '1 day'", Valid, Some(-86400)),
    (3, "now() + interval '1 day'", Valid, Some(86400)),
    (2, "now() + interval '40 days'", Valid, Some(40 * 86400)),
    (
        1,
        "now() + interval '5 years'",
        Unknown,
        Some(5 * 365 * 86400),
    ),
    (2, "'infinity'", Unknown, None),
    (2, "'-infinity'", Unknown, None),
    (1, "'0001-01-01 00:00:00+00'", Unknown, None),
    (1, "'294276-12-31 00:00:00+00'", Unknown, None),
    (2, "NULL", Unknown, None),
];

pub(super) fn pick<T: Copy>(rng: &mut StdRng, items: &[(u32, T)]) -> T {
    let total: u32 = items.iter().map(|(w, _)| w).sum();
    let mut x = rng.gen_range(0..total);
    for (w, t) in items {
        if x < *w {
            return *t;
        }
        x -= w;
    }
    items[0].1
}

pub(super) fn choose(rng: &mut StdRng, c: &[Choice]) -> (&'static str, V) {
    let items: Vec<(u32, (&'static str, V))> = c.iter().map(|(w, s, v)| (*w, (*s, *v))).collect();
    pick(rng, &items)
}

pub(super) trait MinWith {
    fn min_with(self, other: V) -> V;
}
impl MinWith for V {
    /// Invalid dominates, then Unknown.
    fn min_with(self, other: V) -> V {
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Valid,
        }
    }
}
