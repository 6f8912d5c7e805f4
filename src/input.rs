//! Validation of caller input and request fingerprints (pure Rust).
//!
//! Every public function validates all of its arguments before it reads or writes anything,
//! so bad input raises a clear error and changes nothing.
//!
//! The size limits, the one place they are defined (the SQL functions in `sql/` repeat the
//! numbers; the "Errors" table of docs/reference.md documents them). Beyond a limit: SQLSTATE 22001
//! (string_data_right_truncation), the message naming the parameter and the limit.
//!
//! | what | limit |
//! |---|---|
//! | names: wallet, parent, team, action, variant, asset, rate card, category, unit | [`MAX_NAME_LEN`] = 255 characters |
//! | idempotency keys | [`MAX_KEY_LEN`] = 255 characters |
//! | free text: refund reason, asset and rate-card descriptions | [`MAX_TEXT_LEN`] = 1000 characters |
//! | metadata (`jsonb`) | [`MAX_METADATA_BYTES`] = 65,536 bytes of its text form (`metadata::text`) |
//! | nesting of metadata and rate-card documents | [`MAX_JSON_DEPTH`] = 128 levels (22023 beyond) |

use crate::amount;
use crate::error::{Kind, LedgerError, Result};
use rust_decimal::Decimal;

/// Names: wallet, parent, team, action, variant, asset, rate card, category, unit (characters).
pub const MAX_NAME_LEN: usize = 255;
/// Idempotency keys (characters).
pub const MAX_KEY_LEN: usize = 255;
/// Free text: a refund's reason, an asset's or a rate card's description (characters).
pub const MAX_TEXT_LEN: usize = 1000;
/// Metadata: bytes of its text form, as `octet_length(metadata::text)` counts them.
pub const MAX_METADATA_BYTES: usize = 65_536;

/// The 22001 error of a value beyond its limit.
pub fn too_long(what: &str, limit: usize, unit: &str, got: usize) -> LedgerError {
    LedgerError::new(
        Kind::TooLong,
        format!("{what} is longer than {limit} {unit}"),
    )
    .detail(format!("{what} has {got} {unit}"))
}

/// A required, non-empty name (wallet, action, asset, rate card, category).
pub fn name<'a>(value: Option<&'a str>, what: &str) -> Result<&'a str> {
    match value {
        None => Err(LedgerError::invalid(format!("{what} must not be null"))),
        Some(v) if v.trim().is_empty() => {
            Err(LedgerError::invalid(format!("{what} must not be empty")))
        }
        Some(v) if v.chars().count() > MAX_NAME_LEN => Err(too_long(
            what,
            MAX_NAME_LEN,
            "characters",
            v.chars().count(),
        )),
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
        Some(k) if k.chars().count() > MAX_KEY_LEN => Err(too_long(
            "idempotency_key",
            MAX_KEY_LEN,
            "characters",
            k.chars().count(),
        )),
        Some(k) => Ok(Some(k)),
    }
}

/// Optional free text (a reason, a description): at most [`MAX_TEXT_LEN`] characters.
pub fn text<'a>(value: Option<&'a str>, what: &str) -> Result<Option<&'a str>> {
    match value {
        Some(v) if v.chars().count() > MAX_TEXT_LEN => Err(too_long(
            what,
            MAX_TEXT_LEN,
            "characters",
            v.chars().count(),
        )),
        _ => Ok(value),
    }
}

/// Deepest nesting of arrays and objects a JSON argument (metadata, a rate-card document) may
/// have. The depth is measured on the text first, without recursion ([`json_depth`]), so the
/// parser never recurses deeper than this (serde_json's own limit, 127, made pgrx panic).
pub const MAX_JSON_DEPTH: usize = 128;

/// Nesting depth of JSON text (arrays and objects; strings skipped): a linear scan that stops
/// once the depth passes `MAX_JSON_DEPTH`.
pub fn json_depth(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in text.bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    if max > MAX_JSON_DEPTH {
                        break;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Parse JSON text (a `jsonb` argument's text form) named `what`: at most [`MAX_JSON_DEPTH`]
/// levels deep (22023 beyond), numbers with every digit (serde_json's `arbitrary_precision`:
/// never through f64).
pub fn json(text: &str, what: &str) -> Result<serde_json::Value> {
    let depth = json_depth(text);
    if depth > MAX_JSON_DEPTH {
        return Err(LedgerError::invalid(format!("{what} is nested too deeply"))
            .detail(format!(
                "{what} has more than {MAX_JSON_DEPTH} levels of nested arrays and objects"
            ))
            .hint(format!("nest at most {MAX_JSON_DEPTH} levels deep")));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    // bounded by the depth check above
    de.disable_recursion_limit();
    let value = <serde_json::Value as serde::Deserialize>::deserialize(&mut de)
        .and_then(|v| de.end().map(|_| v))
        .map_err(|e| LedgerError::invalid(format!("{what} is not valid JSON: {e}")))?;
    Ok(value)
}

/// Metadata (the text of a `jsonb` argument): NULL or a JSON object, at most
/// [`MAX_METADATA_BYTES`] as text and [`MAX_JSON_DEPTH`] levels deep. Returns the parsed value (for the request fingerprint).
pub fn metadata(text: Option<&str>) -> Result<Option<serde_json::Value>> {
    let Some(text) = text else { return Ok(None) };
    if text.len() > MAX_METADATA_BYTES {
        return Err(too_long(
            "metadata",
            MAX_METADATA_BYTES,
            "bytes as text",
            text.len(),
        ));
    }
    let value = json(text, "metadata")?;
    match value {
        serde_json::Value::Object(_) => Ok(Some(value)),
        other => Err(
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

/// The text a request fingerprint hashes for JSON metadata: serde_json's compact form (keys
/// sorted) with every number as 0.2.0 printed it, parsed as u64, i64 or else f64, so the
/// fingerprints 0.2.0 stored still match and an exact replay of an old request is still a
/// replay. (Numbers that differ only beyond f64's 17 digits hash alike, as they did; the
/// metadata itself is stored exactly.)
pub fn json_fingerprint(value: &Option<serde_json::Value>) -> String {
    fn legacy(v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::Number(n) => {
                let t = n.to_string();
                let n = if let Ok(u) = serde_json::from_str::<u64>(&t) {
                    u.into()
                } else if let Ok(i) = serde_json::from_str::<i64>(&t) {
                    i.into()
                } else {
                    serde_json::from_str::<f64>(&t)
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .unwrap_or_else(|| n.clone())
                };
                Value::Number(n)
            }
            Value::Array(a) => Value::Array(a.iter().map(legacy).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), legacy(v))).collect())
            }
            other => other.clone(),
        }
    }
    value
        .as_ref()
        .map(|v| legacy(v).to_string())
        .unwrap_or_default()
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
        let err = name(Some(&"x".repeat(256)), "wallet").unwrap_err();
        assert_eq!(err.kind, Kind::TooLong);
        assert_eq!(err.message, "wallet is longer than 255 characters");
        assert_eq!(err.detail.as_deref(), Some("wallet has 256 characters"));
        assert_eq!(name(Some("cust_42"), "wallet").unwrap(), "cust_42");
        // characters, not bytes: 255 four-byte characters are a valid name
        assert!(name(Some(&"💥".repeat(255)), "wallet").is_ok());
        assert_eq!(
            name(Some(&"é".repeat(256)), "wallet").unwrap_err().kind,
            Kind::TooLong
        );
    }

    #[test]
    fn keys() {
        assert_eq!(key(Some(&"k".repeat(256))).unwrap_err().kind, Kind::TooLong);
        assert!(key(Some(&"k".repeat(255))).is_ok());
        assert!(key(Some(&"ü".repeat(255))).is_ok());
        assert_eq!(key(Some("")).unwrap_err().kind, Kind::InvalidArgument);
        assert_eq!(key(None).unwrap(), None);
    }

    #[test]
    fn texts_and_metadata_sizes() {
        assert!(text(Some(&"r".repeat(1000)), "reason").is_ok());
        assert!(text(None, "reason").is_ok());
        let err = text(Some(&"ř".repeat(1001)), "reason").unwrap_err();
        assert_eq!(
            (err.kind, err.message.as_str()),
            (Kind::TooLong, "reason is longer than 1000 characters")
        );
        // {"a": "xxx..."} is 9 bytes of frame
        let at = |n: usize| format!(r#"{{"a": "{}"}}"#, "x".repeat(n - 9));
        assert_eq!(at(65_536).len(), 65_536);
        assert!(metadata(Some(&at(65_536))).is_ok());
        let err = metadata(Some(&at(65_537))).unwrap_err();
        assert_eq!(err.kind, Kind::TooLong);
        assert_eq!(err.message, "metadata is longer than 65536 bytes as text");
    }

    proptest::proptest! {
        #[test]
        fn validation_never_panics(s in "\\PC{0,300}") {
            let _ = name(Some(&s), "wallet");
            let _ = key(Some(&s));
            let _ = text(Some(&s), "reason");
            let _ = crate::error::clip(&s, 7);
            let _ = quantity(Some(s.clone()));
        }
    }

    #[test]
    fn fingerprints_separate_fields() {
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
        assert_eq!(fingerprint(&["x", "1"]), fingerprint(&["x", "1"]));
    }

    #[test]
    fn metadata_object_only() {
        assert!(metadata(Some(r#"{"a": 1}"#)).unwrap().is_some());
        assert!(metadata(Some("[1]")).is_err());
        assert!(metadata(Some("1")).is_err());
        assert!(metadata(None).unwrap().is_none());
    }

    fn nested(levels: usize) -> String {
        format!("{}{}", r#"{"a": "#.repeat(levels), "}".repeat(levels)).replace(r#"{"a": }"#, "{}")
    }

    #[test]
    fn json_depth_limit() {
        assert_eq!(json_depth("1"), 0);
        assert_eq!(json_depth(r#"{"a": "[[[{{{"}"#), 1);
        assert_eq!(json_depth(r#"["\\\"[", [[]]]"#), 3);
        assert_eq!(json_depth(&nested(128)), 128);
        assert!(metadata(Some(&nested(128))).unwrap().is_some());
        for levels in [129, 200, 500, 5_000] {
            let err = metadata(Some(&nested(levels))).unwrap_err();
            assert_eq!(err.kind, Kind::InvalidArgument);
            assert_eq!(err.message, "metadata is nested too deeply");
        }
        // a rate-card document has no size limit: a million levels are one linear scan
        let err = json(&nested(1_000_000), "rate card document").unwrap_err();
        assert_eq!(err.message, "rate card document is nested too deeply");
        let deep_array = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert!(json(&deep_array, "card")
            .unwrap_err()
            .message
            .contains("nested too deeply"));
        assert!(json(&format!("{}{}", "[".repeat(128), "]".repeat(128)), "card").is_ok());
    }

    #[test]
    fn json_numbers_are_exact() {
        let v = json(
            r#"{"a": 0.1234567890123456789, "b": 1e400, "c": 12345678901234567890.5}"#,
            "m",
        )
        .unwrap();
        assert_eq!(v["a"].to_string(), "0.1234567890123456789");
        assert_eq!(v["b"].to_string(), "1e+400");
        assert_eq!(v["c"].to_string(), "12345678901234567890.5");
    }

    #[test]
    fn fingerprints_as_0_2_0_printed_them() {
        // jsonb_out text in, 0.2.0's serde_json (f64) text out
        let fp = |t: &str| json_fingerprint(&metadata(Some(t)).unwrap());
        assert_eq!(fp(r#"{"b": 1, "a": "x"}"#), r#"{"a":"x","b":1}"#);
        assert_eq!(
            fp(r#"{"a": 1.10, "b": -5, "c": 1.0}"#),
            r#"{"a":1.1,"b":-5,"c":1.0}"#
        );
        assert_eq!(
            fp(r#"{"a": 0.12345678901234567891}"#),
            r#"{"a":0.12345678901234568}"#
        );
        assert_eq!(
            fp(r#"{"a": 123456789012345678901234567890}"#),
            r#"{"a":1.2345678901234568e+29}"#
        );
        assert_eq!(fp(r#"{"a": [1, {"b": 2.50}]}"#), r#"{"a":[1,{"b":2.5}]}"#);
        assert_eq!(json_fingerprint(&None), "");
    }

    proptest::proptest! {
        #[test]
        fn json_never_panics(s in "\\PC{0,60}") {
            let _ = json(&s, "metadata");
            let _ = metadata(Some(&s));
        }
    }
}
