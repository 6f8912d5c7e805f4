//! Validation of caller input and request fingerprints (pure Rust).
//!
//! Every public function validates all of its arguments before it reads or writes anything,
//! so bad input raises a clear error and changes nothing.

use crate::amount;
use crate::error::{LedgerError, Result};
use rust_decimal::Decimal;

pub const MAX_KEY_LEN: usize = 255;
pub const MAX_NAME_LEN: usize = 255;

/// A required, non-empty name (wallet, action, asset, rate card, category).
pub fn name<'a>(value: Option<&'a str>, what: &str) -> Result<&'a str> {
    match value {
        None => Err(LedgerError::invalid(format!("{what} must not be null"))),
        Some(v) if v.trim().is_empty() => {
            Err(LedgerError::invalid(format!("{what} must not be empty")))
        }
        Some(v) if v.chars().count() > MAX_NAME_LEN => Err(LedgerError::invalid(format!(
            "{what} is longer than {MAX_NAME_LEN} characters"
        ))),
        Some(v) if v.contains('\0') => Err(LedgerError::invalid(format!(
            "{what} contains a NUL character"
        ))),
        Some(v) => Ok(v),
    }
}

/// An optional name: NULL allowed, empty not.
pub fn opt_name<'a>(value: Option<&'a str>, what: &str) -> Result<Option<&'a str>> {
    value.map(|v| name(Some(v), what)).transpose()
}

/// An optional idempotency key: at most 255 characters, not empty.
pub fn key(value: Option<&str>) -> Result<Option<&str>> {
    match value {
        None => Ok(None),
        Some("") => Err(LedgerError::invalid("idempotency_key must not be empty")),
        Some(k) if k.chars().count() > MAX_KEY_LEN => Err(LedgerError::invalid(format!(
            "idempotency_key is longer than {MAX_KEY_LEN} characters"
        ))
        .detail(format!("the key has {} characters", k.chars().count()))),
        Some(k) => Ok(Some(k)),
    }
}

/// Metadata must be a JSON object (or NULL).
pub fn metadata(value: Option<&serde_json::Value>) -> Result<()> {
    match value {
        None | Some(serde_json::Value::Object(_)) => Ok(()),
        Some(other) => Err(
            LedgerError::invalid("metadata must be a JSON object").detail(format!(
                "got a JSON {}",
                match other {
                    serde_json::Value::Array(_) => "array",
                    serde_json::Value::String(_) => "string",
                    serde_json::Value::Number(_) => "number",
                    serde_json::Value::Bool(_) => "boolean",
                    _ => "null",
                }
            )),
        ),
    }
}

/// A required quantity: finite and strictly positive.
pub fn quantity(text: Option<String>) -> Result<Decimal> {
    let t = text.ok_or_else(|| LedgerError::invalid("quantity must not be null"))?;
    amount::positive(amount::parse(&t, "quantity")?, "quantity")
}

/// FNV-1a 64-bit over the canonical request text: the fingerprint stored with an
/// idempotency key, compared when the key is reused.
pub fn fingerprint(parts: &[&str]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0x1f)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name(None, "wallet").is_err());
        assert!(name(Some(""), "wallet").is_err());
        assert!(name(Some("  "), "wallet").is_err());
        assert!(name(Some(&"x".repeat(256)), "wallet").is_err());
        assert_eq!(name(Some("cust_42"), "wallet").unwrap(), "cust_42");
    }

    #[test]
    fn keys() {
        assert!(key(Some(&"k".repeat(256))).is_err());
        assert!(key(Some(&"k".repeat(255))).is_ok());
        assert!(key(Some("")).is_err());
        assert_eq!(key(None).unwrap(), None);
    }

    #[test]
    fn fingerprints_separate_fields() {
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
        assert_eq!(fingerprint(&["x", "1"]), fingerprint(&["x", "1"]));
    }

    #[test]
    fn metadata_object_only() {
        assert!(metadata(Some(&serde_json::json!({"a": 1}))).is_ok());
        assert!(metadata(Some(&serde_json::json!([1]))).is_err());
        assert!(metadata(None).is_ok());
    }
}
