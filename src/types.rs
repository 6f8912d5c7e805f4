//! Building the named API types (`credit_wallet`, `credit_grant`, `credit_rate`,
//! `credit_authorization`) as composite values to return from Rust functions, and
//! [`JsonbText`], the form every `jsonb` argument and stored `jsonb` column takes in Rust.
//!
//! Values are collected as a [`Record`] of owned Rust values while SPI is connected, and the
//! composite is formed by [`Record::build`] only after SPI has disconnected: a tuple formed in
//! SPI's memory context would be freed with it.

use crate::error::{Kind, LedgerError};
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::datum::Interval;
use pgrx::nullable::Nullable;
use pgrx::prelude::*;
use pgrx::{direct_function_call, direct_function_call_as_datum};
use pgrx::{AllocatedByRust, AnyNumeric, PgTupleDesc};
use std::ffi::{CStr, CString};

/// A `jsonb` value as its text (`jsonb_out`), unparsed.
///
/// pgrx's `JsonB` parses that text with serde_json inside the argument conversion, before the
/// function body runs, and panics there (XX000, with no way for the ledger to answer) on a
/// document nested 128 levels deep. The ledger takes the text and parses it itself where it
/// must ([`crate::input::json`], [`crate::input::metadata`]: depth and size limits, exact
/// numbers); stored values go back through `jsonb_in` unchanged, never through serde.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonbText(pub String);

impl FromDatum for JsonbText {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a non-null jsonb datum (jsonb_out detoasts it); the result is a palloc'd
        // C string, copied and freed here
        unsafe {
            let out = direct_function_call::<&CStr>(pg_sys::jsonb_out, &[Some(datum)])?;
            let text = out.to_string_lossy().into_owned();
            pg_sys::pfree(out.as_ptr() as *mut std::ffi::c_void);
            Some(JsonbText(text))
        }
    }
}

impl IntoDatum for JsonbText {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // jsonb_out never writes a NUL byte (JSON escapes it, and jsonb rejects \u0000)
        let text = CString::new(self.0).ok()?;
        // SAFETY: jsonb_in takes a C string and returns a jsonb datum in the current context
        unsafe { direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(text.as_ptr().into())]) }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: the argument is a jsonb datum, converted by `FromDatum` above
unsafe impl<'fcx> ArgAbi<'fcx> for JsonbText {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        // SAFETY: the caller's contract (the argument has this type)
        unsafe { arg.unbox_arg_using_from_datum() }.unwrap_or_else(|| {
            LedgerError::invalid(format!("argument {index} must not be null")).raise()
        })
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        // SAFETY: the caller's contract (the argument has this type)
        unsafe { arg.unbox_arg_using_from_datum() }.into()
    }
}

pgrx::impl_sql_translatable!(JsonbText, "jsonb");

pub type Tuple = PgHeapTuple<'static, AllocatedByRust>;

/// One attribute value.
pub enum Field {
    I64(Option<i64>),
    I32(Option<i32>),
    Text(Option<String>),
    Num(Option<AnyNumeric>),
    Bool(Option<bool>),
    Ts(Option<TimestampWithTimeZone>),
    Json(Option<JsonbText>),
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
field_from!(JsonbText, Json);
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

    /// Form the composite (call outside SPI): one `heap_form_tuple` with the type's descriptor.
    pub fn build(self) -> Tuple {
        let tupdesc = PgTupleDesc::for_composite_type_by_oid(type_oid(self.type_name))
            .unwrap_or_else(|| {
                LedgerError::new(
                    Kind::Internal,
                    format!("type \"{}\" is not available", self.type_name),
                )
                .raise()
            });
        if tupdesc.len() != self.fields.len() {
            LedgerError::new(
                Kind::Internal,
                format!(
                    "type \"{}\" has {} attributes, {} given",
                    self.type_name,
                    tupdesc.len(),
                    self.fields.len()
                ),
            )
            .raise()
        }
        let datums = self.fields.into_iter().map(|f| match f {
            Field::I64(v) => v.into_datum(),
            Field::I32(v) => v.into_datum(),
            Field::Text(v) => v.into_datum(),
            Field::Num(v) => v.into_datum(),
            Field::Bool(v) => v.into_datum(),
            Field::Ts(v) => v.into_datum(),
            Field::Json(v) => v.into_datum(),
            Field::Interval(v) => v.into_datum(),
        });
        // SAFETY: each datum is of the Rust type mapped to the attribute's SQL type in the
        // Record's producer (the attribute order of the SQL type in sql/schema.sql)
        unsafe { PgHeapTuple::from_datums(tupdesc, datums) }.unwrap_or_else(|e| {
            LedgerError::new(
                Kind::Internal,
                format!("cannot form {}: {e}", self.type_name),
            )
            .raise()
        })
    }
}

thread_local! {
    static TYPE_OIDS: std::cell::RefCell<std::collections::HashMap<&'static str, pg_sys::Oid>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The OID of one of the extension's composite types, resolved once per backend in the
/// extension's schema (never through the caller's search_path) and re-resolved if it vanished
/// (the extension was dropped and created again in this session).
fn type_oid(name: &'static str) -> pg_sys::Oid {
    let cached = TYPE_OIDS.with(|m| m.borrow().get(name).copied());
    if let Some(oid) = cached {
        // SAFETY: a syscache probe; returns InvalidOid for a type that no longer exists
        if unsafe { pg_sys::get_typ_typrelid(oid) } != pg_sys::InvalidOid {
            return oid;
        }
    }
    let schema = Spi::get_one::<String>(
        "SELECT n.nspname::text FROM pg_catalog.pg_extension e \
           JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace \
          WHERE e.extname OPERATOR(pg_catalog.=) 'credit_ledger'",
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| "public".to_string());
    let qualified = format!("{}.{}", pgrx::spi::quote_identifier(schema), name);
    let oid = PgTupleDesc::for_composite_type(&qualified)
        .map(|d| d.oid())
        .unwrap_or(pg_sys::InvalidOid);
    if oid != pg_sys::InvalidOid {
        TYPE_OIDS.with(|m| m.borrow_mut().insert(name, oid));
    }
    oid
}
