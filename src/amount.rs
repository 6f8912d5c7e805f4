//! Exact amounts (pure Rust, no PostgreSQL).
//!
//! Amounts cross the SQL boundary as `numeric` and are handled here as `rust_decimal::Decimal`
//! (96-bit mantissa, 28 significant digits): no floating point anywhere. Costs are rounded
//! *up* to the asset's scale (the ledger never undercharges by rounding); granted amounts must
//! already fit the scale.

use crate::error::{Kind, LedgerError, Result};
use rust_decimal::{Decimal, RoundingStrategy};

/// Parse the text form of a `numeric` (as PostgreSQL prints it).
/// NaN and ±Infinity are rejected; values beyond 28 significant digits are out of range.
pub fn parse(text: &str, what: &str) -> Result<Decimal> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    // the text may come from a rate-card document: quoted at most 64 characters long
    let shown = crate::error::clip(t, 64);
    if lower == "nan" || lower.contains("inf") {
        return Err(LedgerError::invalid(format!(
            "{what} must be a finite number, got {shown}"
        )));
    }
    if !looks_numeric(t) {
        return Err(LedgerError::invalid(format!(
            "{what} must be a number, got \"{shown}\""
        )));
    }
    // exact or nothing: a value that does not fit 28 significant digits is out of range,
    // never silently rounded
    let parsed = if lower.contains('e') {
        Decimal::from_scientific(t).ok().filter(|d| {
            // from_scientific rounds; accept only when the digits survive
            let digits = t
                .split(['e', 'E'])
                .next()
                .unwrap_or("")
                .trim_start_matches(['+', '-'])
                .replace('.', "");
            let digits = digits.trim_start_matches('0').trim_end_matches('0');
            let got = d.normalize().mantissa().unsigned_abs().to_string();
            let got = got.trim_end_matches('0');
            digits.is_empty() && d.is_zero() || digits == got
        })
    } else {
        Decimal::from_str_exact(t).ok()
    };
    parsed.ok_or_else(|| {
        LedgerError::new(Kind::OutOfRange, format!("{what} {shown} is out of range"))
            .detail("amounts are limited to 28 significant digits")
    })
}

/// Optional sign, digits with at most one decimal point, optional exponent.
fn looks_numeric(t: &str) -> bool {
    let (mantissa, exp) = match t.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (t, None),
    };
    let m = mantissa.strip_prefix(['+', '-']).unwrap_or(mantissa);
    let digits = m.chars().filter(|c| c.is_ascii_digit()).count();
    let dots = m.chars().filter(|c| *c == '.').count();
    let mantissa_ok = digits > 0 && dots <= 1 && m.chars().all(|c| c.is_ascii_digit() || c == '.');
    let exp_ok = match exp {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.len() <= 4 && e.chars().all(|c| c.is_ascii_digit())
        }
    };
    mantissa_ok && exp_ok
}

/// A strictly positive amount.
pub fn positive(value: Decimal, what: &str) -> Result<Decimal> {
    if value <= Decimal::ZERO {
        return Err(LedgerError::invalid(format!(
            "{what} must be greater than zero, got {value}"
        )));
    }
    Ok(value.normalize())
}

/// A non-negative amount.
pub fn non_negative(value: Decimal, what: &str) -> Result<Decimal> {
    if value < Decimal::ZERO {
        return Err(LedgerError::invalid(format!(
            "{what} must not be negative, got {value}"
        )));
    }
    Ok(value.normalize())
}

/// Reject amounts with more decimals than the asset's scale.
pub fn fits_scale(value: Decimal, scale: u32, what: &str, asset: &str) -> Result<Decimal> {
    let v = value.normalize();
    if v.scale() > scale {
        return Err(LedgerError::invalid(format!(
            "{what} {v} has more decimals than asset \"{asset}\" allows"
        ))
        .detail(format!("asset \"{asset}\" has scale {scale}"))
        .hint(format!("round the amount to {scale} decimal places")));
    }
    Ok(v)
}

/// Round a cost up (towards +infinity) to `scale` decimals.
pub fn round_up(value: Decimal, scale: u32) -> Decimal {
    value
        .round_dp_with_strategy(scale, RoundingStrategy::ToPositiveInfinity)
        .normalize()
}

/// The error of an amount or a total that does not fit the ledger's 28 significant digits.
pub fn out_of_range(what: impl std::fmt::Display) -> LedgerError {
    LedgerError::new(Kind::OutOfRange, format!("{what} is out of range"))
        .detail("amounts are limited to 28 significant digits and 28 decimal places")
}

/// cost = ceil(quantity × credits_per_unit) at the asset's scale, exactly: the product is never
/// rounded before the ceiling (it may have up to 56 decimals), so a cost is never rounded down.
/// A cost beyond 28 significant digits is out of range (22003).
pub fn cost(quantity: Decimal, per_unit: Decimal, scale: u32) -> Result<Decimal> {
    mul_round(quantity, per_unit, scale, Rounding::Up).ok_or_else(|| {
        out_of_range(format!(
            "cost of quantity {quantity} at {per_unit} per unit"
        ))
    })
}

/// `a + b`, exact or `None` (rust_decimal's `+` panics on overflow and its `checked_add` rounds
/// a sum that needs more than 28 significant digits). Both are aligned to the larger scale in
/// 256 bits and added there.
pub fn add(a: Decimal, b: Decimal) -> Option<Decimal> {
    let (a, b) = (a.normalize(), b.normalize());
    let scale = a.scale().max(b.scale());
    let (wa, wb) = (aligned(a, scale)?, aligned(b, scale)?);
    let (na, nb) = (
        a.is_sign_negative() && !a.is_zero(),
        b.is_sign_negative() && !b.is_zero(),
    );
    let (magnitude, neg) = if na == nb {
        (wide_add(wa, wb), na)
    } else if wide_lt(wa, wb) {
        (wide_sub(wb, wa), nb)
    } else {
        (wide_sub(wa, wb), na)
    };
    to_decimal(magnitude, scale, neg)
}

/// `a - b`, exact or `None`.
pub fn sub(a: Decimal, b: Decimal) -> Option<Decimal> {
    // negation is exact (the range is symmetric)
    add(a, -b)
}

/// The exact sum of `values`, or `None` when it does not fit.
pub fn sum(values: impl IntoIterator<Item = Decimal>) -> Option<Decimal> {
    values.into_iter().try_fold(Decimal::ZERO, add)
}

/// Which way [`mul_round`] rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rounding {
    /// towards +infinity (costs)
    Up,
    /// towards -infinity (amounts carried over)
    Down,
}

/// `a × b` exactly, or `None` when the product needs more than 28 significant digits or 28
/// decimal places (rust_decimal's `*` panics on overflow and its `checked_mul` rounds).
pub fn mul_exact(a: Decimal, b: Decimal) -> Option<Decimal> {
    let (mut p, mut s) = (wide_mul(a, b), a.scale() + b.scale());
    while s > 0 {
        let mut q = p;
        if div_small(&mut q, 10) != 0 {
            break;
        }
        p = q;
        s -= 1;
    }
    if s > Decimal::MAX_SCALE {
        return None;
    }
    to_decimal(p, s, negative(a, b))
}

/// `a × b` rounded to `scale` decimals in the direction `r`, computed exactly (the product is
/// formed in 256 bits and rounded once), or `None` when the result does not fit a `Decimal`.
pub fn mul_round(a: Decimal, b: Decimal, scale: u32, r: Rounding) -> Option<Decimal> {
    if scale > Decimal::MAX_SCALE {
        return None;
    }
    let neg = negative(a, b);
    let (mut p, s) = (wide_mul(a, b), a.scale() + b.scale());
    if s <= scale {
        return to_decimal(p, s, neg);
    }
    // divide by 10^(s - scale), at most 10^19 at a time (it fits a u64)
    let mut inexact = false;
    let mut k = s - scale;
    while k > 0 {
        let step = k.min(19);
        inexact |= div_small(&mut p, 10u64.pow(step)) != 0;
        k -= step;
    }
    // the magnitude was truncated: one unit more when rounding away from zero
    if inexact && ((r == Rounding::Up) != neg) {
        add_one(&mut p);
    }
    to_decimal(p, scale, neg)
}

fn negative(a: Decimal, b: Decimal) -> bool {
    !a.is_zero() && !b.is_zero() && (a.is_sign_negative() != b.is_sign_negative())
}

/// |a| × |b| in four 64-bit limbs, least significant first (each mantissa is below 2^96).
fn wide_mul(a: Decimal, b: Decimal) -> [u64; 4] {
    let (a, b) = (a.mantissa().unsigned_abs(), b.mantissa().unsigned_abs());
    // limb extraction: the truncating casts keep exactly the low 64 bits
    let (a, b) = ([a as u64, (a >> 64) as u64], [b as u64, (b >> 64) as u64]);
    let mut out = [0u64; 4];
    for i in 0..2 {
        let mut carry = 0u128;
        for j in 0..2 {
            let t = u128::from(a[i]) * u128::from(b[j]) + u128::from(out[i + j]) + carry;
            out[i + j] = t as u64;
            carry = t >> 64;
        }
        out[i + 2] = carry as u64;
    }
    out
}

/// |d| × 10^(scale - d.scale()) in four limbs (scale ≥ d.scale(), at most 28: below 2^190).
fn aligned(d: Decimal, scale: u32) -> Option<[u64; 4]> {
    let m = d.mantissa().unsigned_abs();
    // limb extraction: the truncating casts keep exactly the low 64 bits
    let mut n = [m as u64, (m >> 64) as u64, 0, 0];
    let mut k = scale.checked_sub(d.scale())?;
    while k > 0 {
        let step = k.min(19);
        let mut carry = 0u128;
        for limb in n.iter_mut() {
            let t = u128::from(*limb) * u128::from(10u64.pow(step)) + carry;
            *limb = t as u64;
            carry = t >> 64;
        }
        if carry != 0 {
            return None;
        }
        k -= step;
    }
    Some(n)
}

fn wide_add(a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
    let mut out = [0u64; 4];
    let mut carry = false;
    for i in 0..4 {
        let (v, c1) = a[i].overflowing_add(b[i]);
        let (v, c2) = v.overflowing_add(u64::from(carry));
        out[i] = v;
        carry = c1 || c2;
    }
    out
}

/// `a - b` for `a >= b`.
fn wide_sub(a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
    let mut out = [0u64; 4];
    let mut borrow = false;
    for i in 0..4 {
        let (v, b1) = a[i].overflowing_sub(b[i]);
        let (v, b2) = v.overflowing_sub(u64::from(borrow));
        out[i] = v;
        borrow = b1 || b2;
    }
    out
}

fn wide_lt(a: [u64; 4], b: [u64; 4]) -> bool {
    a.iter().rev().lt(b.iter().rev())
}

/// Divide in place by `d` (> 0); returns the remainder.
fn div_small(n: &mut [u64; 4], d: u64) -> u64 {
    let d = u128::from(d);
    let mut rem = 0u128;
    for limb in n.iter_mut().rev() {
        let cur = (rem << 64) | u128::from(*limb);
        *limb = (cur / d) as u64;
        rem = cur % d;
    }
    rem as u64
}

/// Add one in place (the value is a quotient, far below 2^256: no carry out).
fn add_one(n: &mut [u64; 4]) {
    for limb in n.iter_mut() {
        let (v, carry) = limb.overflowing_add(1);
        *limb = v;
        if !carry {
            return;
        }
    }
}

/// The `Decimal` of magnitude `n` × 10^-scale (trailing zeros dropped first), or `None` when
/// the magnitude needs more than 96 bits.
fn to_decimal(mut n: [u64; 4], mut scale: u32, neg: bool) -> Option<Decimal> {
    while scale > 0 {
        let mut q = n;
        if div_small(&mut q, 10) != 0 {
            break;
        }
        n = q;
        scale -= 1;
    }
    if n[2] != 0 || n[3] != 0 || n[1] >> 32 != 0 || scale > Decimal::MAX_SCALE {
        return None;
    }
    let m = i128::from(n[0]) | (i128::from(n[1]) << 64);
    Decimal::try_from_i128_with_scale(if neg { -m } else { m }, scale)
        .ok()
        .map(|d| d.normalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn parse_rejects_non_finite() {
        assert!(parse("NaN", "quantity").is_err());
        assert!(parse("Infinity", "quantity").is_err());
        assert!(parse("-Infinity", "quantity").is_err());
        assert_eq!(parse("1.50", "q").unwrap(), d("1.50"));
        assert_eq!(parse("1e3", "q").unwrap(), d("1000"));
        let huge = "1".repeat(40);
        assert_eq!(parse(&huge, "q").unwrap_err().kind, Kind::OutOfRange);
        // more digits than fit: out of range, never rounded
        assert_eq!(
            parse("1.00000000000000000000000000004", "q")
                .unwrap_err()
                .kind,
            Kind::OutOfRange
        );
        assert_eq!(
            parse("0.000000000000000000000000000001", "q")
                .unwrap_err()
                .kind,
            Kind::OutOfRange
        );
        assert_eq!(parse("lots", "q").unwrap_err().kind, Kind::InvalidArgument);
        assert_eq!(
            parse("1 credit", "q").unwrap_err().kind,
            Kind::InvalidArgument
        );
        assert_eq!(parse("1e400", "q").unwrap_err().kind, Kind::OutOfRange);
        assert_eq!(parse("1.5e2", "q").unwrap(), d("150"));
    }

    #[test]
    fn rounds_up_never_down() {
        assert_eq!(round_up(d("0.00001"), 4), d("0.0001"));
        assert_eq!(round_up(d("1.23450"), 4), d("1.2345"));
        assert_eq!(round_up(d("2"), 0), d("2"));
        assert_eq!(cost(d("1234"), d("0.003"), 4).unwrap(), d("3.702"));
        assert_eq!(cost(d("1"), d("0.00001"), 4).unwrap(), d("0.0001"));
    }

    #[test]
    fn scale_check() {
        assert!(fits_scale(d("1.2345"), 4, "amount", "credits").is_ok());
        assert!(fits_scale(d("1.23450000"), 4, "amount", "credits").is_ok());
        assert!(fits_scale(d("1.23456"), 4, "amount", "credits").is_err());
        assert!(positive(d("0"), "quantity").is_err());
        assert!(positive(d("-1"), "quantity").is_err());
    }

    #[test]
    fn costs_are_exact_beyond_28_decimals() {
        // 1e-14 x 1e-16 = 1e-30: rust_decimal's product rounds to 0; the cost is one unit
        assert_eq!(
            cost(d("0.00000000000001"), d("0.0000000000000001"), 4).unwrap(),
            d("0.0001")
        );
        assert_eq!(cost(d("0.5"), d("0.0001"), 4).unwrap(), d("0.0001"));
        assert_eq!(cost(d("0.5"), d("0.0002"), 4).unwrap(), d("0.0001"));
        // 28 decimals times 28 decimals: 56 decimals, rounded up once
        let tiny = d("0.0000000000000000000000000001");
        assert_eq!(cost(tiny, tiny, 12).unwrap(), d("0.000000000001"));
        assert_eq!(cost(d("1"), Decimal::ZERO, 4).unwrap(), Decimal::ZERO);
        // the largest values: exact when they fit, 22003 when they do not
        let max = Decimal::MAX;
        assert_eq!(cost(max, d("1"), 0).unwrap(), max);
        assert_eq!(cost(max, d("1"), 12).unwrap(), max);
        assert_eq!(
            cost(max, d("1.0000000000000000000000000001"), 0)
                .unwrap_err()
                .kind,
            Kind::OutOfRange
        );
        assert_eq!(
            cost(d("1e28"), d("10"), 4).unwrap_err().kind,
            Kind::OutOfRange
        );
        assert_eq!(
            cost(
                d("9999999999999999999999999999"),
                d("9999999999999999999999999999"),
                4
            )
            .unwrap_err()
            .kind,
            Kind::OutOfRange
        );
        // a product that needs more digits than fit at the asset's scale is out of range,
        // never rounded to fewer decimals
        assert_eq!(
            cost(d("1234567890123456789012345679"), d("1.5"), 4).unwrap(),
            d("1851851835185185183518518518.5")
        );
        assert_eq!(
            cost(d("7000000000000000000000000001"), d("1.5"), 4)
                .unwrap_err()
                .kind,
            Kind::OutOfRange
        );
        assert_eq!(
            cost(d("1234567890123456789012345678"), d("1.5"), 4).unwrap(),
            d("1851851835185185183518518517")
        );
    }

    #[test]
    fn exact_products_and_sums() {
        assert_eq!(mul_exact(d("0.5"), Decimal::MAX), None);
        assert_eq!(
            mul_exact(d("0.5"), d("79000000000000000000000000000")),
            Some(d("39500000000000000000000000000"))
        );
        assert_eq!(mul_exact(d("1e-14"), d("1e-14")), Some(d("1e-28")));
        assert_eq!(mul_exact(d("1e-14"), d("1e-15")), None);
        assert_eq!(
            mul_exact(
                d("1.0000000000000000000000000001"),
                d("1.0000000000000000000000000001")
            ),
            None
        );
        assert_eq!(mul_exact(d("-2.5"), d("4")), Some(d("-10")));
        assert_eq!(mul_exact(Decimal::ZERO, Decimal::MAX), Some(Decimal::ZERO));
        // a zero with a larger scale, cancellation, signs: exact (rust_decimal returns
        // 7.3 - 0.0000 with scale 1)
        assert_eq!(sub(d("7.3"), d("0.0000")), Some(d("7.3")));
        assert_eq!(add(d("0.0000"), d("7.3")), Some(d("7.3")));
        assert_eq!(sub(d("2.7"), d("2.70")), Some(Decimal::ZERO));
        assert_eq!(sub(d("0"), d("1.84")), Some(d("-1.84")));
        assert_eq!(add(d("-5"), d("2.5")), Some(d("-2.5")));
        assert_eq!(add(d("-5"), d("-2.5")), Some(d("-7.5")));
        assert_eq!(sub(Decimal::MAX, Decimal::MAX), Some(Decimal::ZERO));
        assert_eq!(add(Decimal::MIN, Decimal::MAX), Some(Decimal::ZERO));
        // needs 30 digits: not representable (rust_decimal rounds it back to MAX)
        assert_eq!(add(Decimal::MAX, d("-0.5")), None);
        assert_eq!(
            add(Decimal::MAX, d("-1")),
            Some(d("79228162514264337593543950334"))
        );
        assert_eq!(add(Decimal::MAX, d("1")), None);
        assert_eq!(
            add(d("1e27"), d("0.1")),
            Some(d("1000000000000000000000000000.1"))
        );
        assert_eq!(add(d("1e28"), d("0.1")), None);
        assert_eq!(sub(Decimal::MIN, d("1")), None);
        assert_eq!(sum([Decimal::MAX, d("1"), d("-1")]), None);
        assert_eq!(sum([d("1.5"), d("2.25")]), Some(d("3.75")));
        assert_eq!(
            mul_round(d("0.99999"), d("0.5"), 4, Rounding::Down),
            Some(d("0.4999"))
        );
        assert_eq!(
            mul_round(d("-0.99999"), d("0.5"), 4, Rounding::Up),
            Some(d("-0.4999"))
        );
        assert_eq!(
            mul_round(d("-0.99999"), d("0.5"), 4, Rounding::Down),
            Some(d("-0.5"))
        );
        assert_eq!(mul_round(d("1"), d("1"), 29, Rounding::Up), None);
    }

    /// ceil(a × b / 10^k) for mantissas below 2^63, in u128 (the reference).
    fn reference_ceil(ma: u64, sa: u32, mb: u64, sb: u32, scale: u32) -> Option<u128> {
        let p = u128::from(ma) * u128::from(mb);
        let s = sa + sb;
        if s <= scale {
            return p.checked_mul(10u128.checked_pow(scale - s)?);
        }
        let k = s - scale;
        match 10u128.checked_pow(k) {
            Some(div) => Some(p / div + u128::from(p % div != 0)),
            None => Some(u128::from(p != 0)),
        }
    }

    fn arb_decimal() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            (any::<i64>(), 0u32..=28).prop_map(|(m, s)| Decimal::new(m, s)),
            (
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<bool>(),
                0u32..=28
            )
                .prop_map(|(lo, mid, hi, neg, s)| Decimal::from_parts(lo, mid, hi, neg, s)),
            Just(Decimal::MAX),
            Just(Decimal::MIN),
            Just(Decimal::ZERO),
            Just(Decimal::new(1, 28)),
        ]
    }

    proptest! {
        #[test]
        fn cost_matches_the_reference(ma in 0u64..(1 << 62), sa in 0u32..=28, mb in 0u64..(1 << 62), sb in 0u32..=28, scale in 0u32..=12) {
            let (a, b) = (Decimal::new(ma as i64, sa), Decimal::new(mb as i64, sb));
            let want = reference_ceil(ma, sa, mb, sb, scale)
                .map(|mut m| {
                    // the same value with fewer decimals may fit where this one does not
                    let mut s = scale;
                    while s > 0 && m % 10 == 0 {
                        m /= 10;
                        s -= 1;
                    }
                    (m, s)
                })
                .filter(|(m, _)| *m < (1u128 << 96))
                .map(|(m, s)| Decimal::from_i128_with_scale(m as i128, s).normalize());
            match cost(a, b, scale) {
                Ok(got) => prop_assert_eq!(Some(got), want),
                // out of range at this scale: the reference does not fit either
                Err(e) => {
                    prop_assert_eq!(e.kind, Kind::OutOfRange);
                    prop_assert!(want.is_none());
                }
            }
        }

        #[test]
        fn arithmetic_never_panics(a in arb_decimal(), b in arb_decimal(), scale in 0u32..=30) {
            let _ = cost(a.abs(), b.abs(), scale);
            let up = mul_round(a, b, scale, Rounding::Up);
            let down = mul_round(a, b, scale, Rounding::Down);
            if let (Some(u), Some(d)) = (up, down) {
                prop_assert!(d <= u);
                prop_assert!(u - d <= Decimal::new(1, scale.min(28)));
            }
            if let Some(p) = mul_exact(a, b) {
                // an exact product is its own rounding at any scale it fits
                if p.scale() <= scale && scale <= 28 {
                    prop_assert_eq!(up, Some(p));
                    prop_assert_eq!(down, Some(p));
                }
                // and it agrees with rust_decimal where rust_decimal is exact
                if let Some(q) = a.checked_mul(b) {
                    if q.scale() == a.scale() + b.scale() {
                        prop_assert_eq!(p, q.normalize());
                    }
                }
            }
            // exact sums agree with rust_decimal wherever it kept every digit, and are
            // consistent with subtraction
            match add(a, b) {
                Some(s) => {
                    prop_assert_eq!(sub(s, b), Some(a.normalize()));
                    if let Some(r) = a.checked_add(b) {
                        prop_assert_eq!(s, r.normalize());
                    }
                }
                None => {
                    // rust_decimal could only have rounded or overflowed
                    if let Some(r) = a.checked_add(b) {
                        prop_assert!(r.scale() < a.normalize().scale().max(b.normalize().scale()));
                    }
                }
            }
            let _ = (sub(a, b), sum([a, b, a]));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = parse(&s, "q");
        }

        #[test]
        fn parse_numeric_text(int in "[0-9]{0,35}", frac in "[0-9]{0,35}", exp in prop::option::of(-40i32..40)) {
            let mut t = if frac.is_empty() { int.clone() } else { format!("{int}.{frac}") };
            if let Some(e) = exp { t = format!("{t}e{e}"); }
            match parse(&t, "q") {
                // exact or nothing: what was accepted prints back to the same number
                Ok(v) => {
                    let back = parse(&v.to_string(), "q");
                    prop_assert_eq!(back.ok(), Some(v));
                }
                Err(e) => prop_assert!(e.kind == Kind::OutOfRange || e.kind == Kind::InvalidArgument),
            }
        }

        #[test]
        fn round_up_is_minimal_upper_bound(mant in 0i64..1_000_000_000_000, exp in 0u32..12, scale in 0u32..8) {
            let v = Decimal::new(mant, exp);
            let r = round_up(v, scale);
            prop_assert!(r >= v);
            prop_assert!(r.scale() <= scale);
            // one unit of the scale less would be below v
            let unit = Decimal::new(1, scale);
            prop_assert!(r - unit < v);
        }
    }
}
