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
    if lower == "nan" || lower.contains("inf") {
        return Err(LedgerError::invalid(format!(
            "{what} must be a finite number, got {t}"
        )));
    }
    if !looks_numeric(t) {
        return Err(LedgerError::invalid(format!(
            "{what} must be a number, got \"{t}\""
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
        LedgerError::new(Kind::OutOfRange, format!("{what} {t} is out of range"))
            .detail("amounts are limited to 28 significant digits")
    })
}

/// Optional sign, digits with at most one decimal point, optional exponent.
fn looks_numeric(t: &str) -> bool {
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
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

/// cost = ceil(quantity × credits_per_unit) at the asset's scale.
pub fn cost(quantity: Decimal, per_unit: Decimal, scale: u32) -> Result<Decimal> {
    let raw = quantity.checked_mul(per_unit).ok_or_else(|| {
        LedgerError::new(
            Kind::OutOfRange,
            format!("cost of quantity {quantity} at {per_unit} per unit is out of range"),
        )
    })?;
    Ok(round_up(raw, scale))
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

    proptest! {
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
