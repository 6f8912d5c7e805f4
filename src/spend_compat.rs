//! `credit_authorize` and `credit_hold` (and since 0.14.0 `credit_run_open` and
//! `credit_run_close`) as older catalogs declare them: their SQL keeps working with this library
//! until `ALTER EXTENSION credit_ledger UPDATE`. None of these is in the current SQL
//! (`sql = false`); each calls the current function.

/// `credit_authorize` as 0.7.0 to 0.11.0 declare it (without `tenant`; symbol
/// `credit_authorize_v7_wrapper`).
#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_authorize_v7(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    run: default!(Option<i64>, "NULL"),
    degrade: default!(Option<bool>, false),
) -> pgrx::composite_type!('static, "credit_authorization") {
    credit_authorize_v12(
        wallet,
        action,
        quantity,
        variant,
        idempotency_key,
        metadata,
        run,
        degrade,
        None,
    )
}

/// `credit_hold` as 0.7.0 to 0.11.0 declare it (without `tenant`; symbol
/// `credit_hold_v7_wrapper`).
#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_hold_v7(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    ttl: default!(Option<Interval>, "'10 minutes'"),
    run: default!(Option<i64>, "NULL"),
    degrade: default!(Option<bool>, false),
) -> pgrx::composite_type!('static, "credit_authorization") {
    credit_hold_v12(
        wallet,
        action,
        quantity,
        variant,
        idempotency_key,
        metadata,
        ttl,
        run,
        degrade,
        None,
    )
}

use crate::authorize::{credit_authorize_v12, credit_hold_v12};
use crate::types::JsonbText;
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::AnyNumeric;

/// `credit_authorize` as 0.5.0 and 0.6.0 declare it (with `run`, without `degrade`; symbol
/// `credit_authorize_v5_wrapper`): their SQL keeps working with this library until `ALTER
/// EXTENSION credit_ledger UPDATE`. Not in the 0.7.0 SQL.
#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_authorize_v5(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    run: default!(Option<i64>, "NULL"),
) -> pgrx::composite_type!('static, "credit_authorization") {
    credit_authorize_v12(
        wallet,
        action,
        quantity,
        variant,
        idempotency_key,
        metadata,
        run,
        None,
        None,
    )
}

/// `credit_authorize` as versions before 0.5.0 declare it (six arguments, symbol
/// `credit_authorize_wrapper`; see [`credit_authorize_v5`]).
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_authorize(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
) -> pgrx::composite_type!('static, "credit_authorization") {
    credit_authorize_v12(
        wallet,
        action,
        quantity,
        variant,
        idempotency_key,
        metadata,
        None,
        None,
        None,
    )
}

/// `credit_hold` as 0.5.0 and 0.6.0 declare it (see [`credit_authorize_v5`]).
#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_hold_v5(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    ttl: default!(Option<Interval>, "'10 minutes'"),
    run: default!(Option<i64>, "NULL"),
) -> pgrx::composite_type!('static, "credit_authorization") {
    credit_hold_v12(
        wallet,
        action,
        quantity,
        variant,
        idempotency_key,
        metadata,
        ttl,
        run,
        None,
        None,
    )
}

/// `credit_hold` as versions before 0.5.0 declare it (see [`credit_authorize`]).
#[allow(clippy::too_many_arguments)]
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_hold(
    wallet: Option<&str>,
    action: Option<&str>,
    quantity: default!(Option<AnyNumeric>, 1),
    variant: default!(Option<&str>, "NULL"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    ttl: default!(Option<Interval>, "'10 minutes'"),
) -> pgrx::composite_type!('static, "credit_authorization") {
    credit_hold_v12(
        wallet,
        action,
        quantity,
        variant,
        idempotency_key,
        metadata,
        ttl,
        None,
        None,
        None,
    )
}

/// `credit_run_open` as 0.5.0 to 0.13.0 declare it (without `tenant`; symbol
/// `credit_run_open_wrapper`).
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_run_open(
    wallet: Option<&str>,
    budget: Option<AnyNumeric>,
    asset: default!(Option<&str>, "'credits'"),
    parent_run: default!(Option<i64>, "NULL"),
    ttl: default!(Option<Interval>, "'1 hour'"),
    idempotency_key: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonbText>, "NULL"),
    max_calls: default!(Option<i32>, "NULL"),
    max_cost_per_call: default!(Option<AnyNumeric>, "NULL"),
    lanes: default!(Option<i32>, 1),
) -> TableIterator<
    'static,
    (
        name!(run_id, i64),
        name!(approved, bool),
        name!(reason, Option<String>),
        name!(budget, AnyNumeric),
        name!(balance, Option<AnyNumeric>),
        name!(asset, String),
        name!(status, String),
        name!(expires_at, TimestampWithTimeZone),
    ),
> {
    TableIterator::once(crate::runs::open_call(
        wallet,
        budget,
        asset,
        parent_run,
        ttl,
        idempotency_key,
        metadata,
        max_calls,
        max_cost_per_call,
        lanes,
        None,
    ))
}

/// `credit_run_close` as 0.5.0 to 0.13.0 declare it (without `tenant`; symbol
/// `credit_run_close_wrapper`).
#[allow(clippy::type_complexity)]
#[pg_extern(sql = false, volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, credit_ledger, pg_temp)]
fn credit_run_close(
    run_id: Option<i64>,
) -> TableIterator<
    'static,
    (
        name!(run_id, i64),
        name!(status, String),
        name!(budget, AnyNumeric),
        name!(spent, AnyNumeric),
        name!(spent_tree, AnyNumeric),
        name!(returned, AnyNumeric),
        name!(closed_at, Option<TimestampWithTimeZone>),
    ),
> {
    TableIterator::once(crate::runs::close_call(run_id, None))
}
