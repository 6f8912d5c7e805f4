//! Building the named API types (`credit_wallet`, `credit_grant`, `credit_rate`,
//! `credit_authorization`) as composite values to return from Rust functions.
//!
//! Values are collected as a [`Record`] of owned Rust values while SPI is connected, and the
//! composite is formed by [`Record::build`] only after SPI has disconnected: a tuple formed in
//! SPI's memory context would be freed with it.

use crate::error::{Kind, LedgerError};
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::{AllocatedByRust, AnyNumeric, JsonB};

pub type Tuple = PgHeapTuple<'static, AllocatedByRust>;

/// One attribute value.
pub enum Field {
    I64(Option<i64>),
    I32(Option<i32>),
    Text(Option<String>),
    Num(Option<AnyNumeric>),
    Bool(Option<bool>),
    Ts(Option<TimestampWithTimeZone>),
    Json(Option<JsonB>),
    Interval(Option<Interval>),
}

macro_rules! field_from {
    ($t:ty, $v:ident) => {
        impl From<Option<$t>> for Field {
            fn from(x: Option<$t>) -> Self {
                Field::$v(x)
            }
        }
    };
}
field_from!(i64, I64);
field_from!(i32, I32);
field_from!(String, Text);
field_from!(AnyNumeric, Num);
field_from!(bool, Bool);
field_from!(TimestampWithTimeZone, Ts);
field_from!(JsonB, Json);
field_from!(Interval, Interval);

/// The values of one composite, in attribute order.
pub struct Record {
    type_name: &'static str,
    fields: Vec<Field>,
}

impl Record {
    pub fn new(type_name: &'static str) -> Self {
        Record {
            type_name,
            fields: Vec::with_capacity(20),
        }
    }

    /// Append the next attribute.
    pub fn push(&mut self, f: impl Into<Field>) {
        self.fields.push(f.into());
    }

    /// Form the composite (call outside SPI).
    pub fn build(self) -> Tuple {
        let mut t = PgHeapTuple::new_composite_type(self.type_name).unwrap_or_else(|e| {
            LedgerError::new(
                Kind::Internal,
                format!("type \"{}\" is not available: {e}", self.type_name),
            )
            .raise()
        });
        for (i, f) in self.fields.into_iter().enumerate() {
            let idx = std::num::NonZeroUsize::new(i + 1).unwrap_or(std::num::NonZeroUsize::MIN);
            let r = match f {
                Field::I64(v) => t.set_by_index(idx, v),
                Field::I32(v) => t.set_by_index(idx, v),
                Field::Text(v) => t.set_by_index(idx, v),
                Field::Num(v) => t.set_by_index(idx, v),
                Field::Bool(v) => t.set_by_index(idx, v),
                Field::Ts(v) => t.set_by_index(idx, v),
                Field::Json(v) => t.set_by_index(idx, v),
                Field::Interval(v) => t.set_by_index(idx, v),
            };
            if let Err(e) = r {
                LedgerError::new(
                    Kind::Internal,
                    format!("cannot set attribute {} of {}: {e}", i + 1, self.type_name),
                )
                .raise()
            }
        }
        t
    }
}
