//! The one place that maps ledger errors to PostgreSQL SQLSTATEs.
//!
//! Business outcomes (a declined authorization) are data, not errors. Everything here is a
//! contract violation: the call changes nothing and raises with a standard SQLSTATE, a
//! lower-case message naming the value, and a DETAIL/HINT where useful.
//!
//! | kind | SQLSTATE | examples |
//! |---|---|---|
//! | `InvalidArgument` | 22023 | NULL/empty wallet, quantity <= 0, NaN, too many decimals, bad JSON |
//! | `TooLong` | 22001 | a name, key, reason or metadata beyond its documented size ([`crate::input`]) |
//! | `OutOfRange` | 22003 | an amount too large for the ledger (more than 28 significant digits) |
//! | `NotFound` | 42704 | unknown wallet, asset, rate card, action, authorization |
//! | `Duplicate` | 42710 | a wallet or asset that already exists |
//! | `KeyReused` | 23505 | an idempotency key reused with other arguments |
//! | `WrongState` | 55000 | capture after release, expired hold, frozen wallet on a grant move |
//! | `Declined` | 53400 | a usage-trigger row the wallet cannot pay (configuration_limit_exceeded) |
//! | `Internal` | XX000 | cannot happen |

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::SpiError;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    InvalidArgument,
    TooLong,
    OutOfRange,
    NotFound,
    Duplicate,
    KeyReused,
    WrongState,
    Declined,
    Internal,
    /// a call the ledger cannot carry out where it runs (0A000; a distributed ledger's limits)
    NotSupported,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LedgerError {
    pub kind: Kind,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

pub type Result<T> = std::result::Result<T, LedgerError>;

impl LedgerError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        LedgerError {
            kind,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }
    pub fn wrong_state(message: impl Into<String>) -> Self {
        Self::new(Kind::WrongState, message)
    }
    pub fn key_reused(key: &str) -> Self {
        Self::new(
            Kind::KeyReused,
            format!("idempotency key \"{key}\" was already used with other arguments"),
        )
        .hint("use a new idempotency key for a different request")
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn sqlstate(&self) -> PgSqlErrorCode {
        match self.kind {
            Kind::InvalidArgument => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            Kind::TooLong => PgSqlErrorCode::ERRCODE_STRING_DATA_RIGHT_TRUNCATION,
            Kind::OutOfRange => PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            Kind::NotFound => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            Kind::Duplicate => PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
            Kind::KeyReused => PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION,
            Kind::WrongState => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            Kind::Declined => PgSqlErrorCode::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
            Kind::Internal => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            Kind::NotSupported => PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
        }
    }

    /// Raise as a PostgreSQL ERROR; does not return.
    pub fn raise(self) -> ! {
        let mut report = ErrorReport::new(self.sqlstate(), self.message, "credit_ledger");
        if let Some(d) = self.detail {
            report = report.set_detail(d);
        }
        if let Some(h) = self.hint {
            report = report.set_hint(h);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }
}

impl From<SpiError> for LedgerError {
    fn from(e: SpiError) -> Self {
        LedgerError::new(Kind::Internal, format!("internal SPI error: {e}"))
    }
}

/// At most `max` characters of a caller's `text`, for quoting it in a message (an ellipsis
/// marks the cut; the cut is at a character boundary).
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", text.get(..i).unwrap_or_default()),
        None => text.to_string(),
    }
}

/// Unwrap a ledger result at the SQL boundary, raising the error.
pub fn or_raise<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => e.raise(),
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clips_at_characters() {
        assert_eq!(clip("abcdef", 3), "abc...");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("éé", 3), "éé");
        assert_eq!(clip("💥💥💥💥", 2), "💥💥...");
        assert_eq!(clip("", 0), "");
    }
}
