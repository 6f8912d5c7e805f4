//! credit_ledger: a prepaid AI-credit ledger inside PostgreSQL.
//!
//! This file is the table of contents: the module list and the ordered SQL files.
//! See README.md for the product and `sql/` for tables, views and privileges.

::pgrx::pg_module_magic!(name, version);

// pure Rust (no PostgreSQL): amounts, allocation, input validation
pub mod allocation;
pub mod amount;
pub mod input;

// the SQL boundary
pub mod catalog;
pub mod error;
pub mod ledger;
pub mod spi;
pub mod types;

// one domain noun per module
pub mod allowances;
pub mod authorize;
pub mod grants;
pub mod holds;
pub mod lifecycle;
pub mod rate_cards;
pub mod refunds;
pub mod wallets;

::pgrx::extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
::pgrx::extension_sql_file!(
    "../sql/usage_trigger.sql",
    name = "usage_trigger",
    requires = [authorize::credit_authorize]
);
::pgrx::extension_sql_file!(
    "../sql/pools.sql",
    name = "pools",
    requires = [grants::credit_grant]
);
::pgrx::extension_sql_file!(
    "../sql/reports.sql",
    name = "reports",
    requires = ["schema"]
);
::pgrx::extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
