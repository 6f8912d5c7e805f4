//! credit_ledger: a prepaid AI-credit ledger inside PostgreSQL.
//!
//! This file is the table of contents: the module list and the ordered SQL files.
//! See README.md for the product and `sql/` for tables, views and privileges.

::pgrx::pg_module_magic!(name, version);

// pure Rust (no PostgreSQL): amounts, allocation, input validation, UTC period arithmetic
pub mod allocation;
pub mod amount;
pub mod input;
pub mod period;

// the SQL boundary
pub mod catalog;
pub mod catalog_corrections;
pub mod catalog_overage;
pub mod catalog_runs;
pub mod error;
pub mod ledger;
pub mod spi;
pub mod subxact;
pub mod types;

// one domain noun per module
pub mod allowances;
pub mod authorize;
pub mod corrections;
pub mod counters;
pub mod events;
pub mod fair_use;
pub mod grants;
pub mod holds;
pub mod lanes;
pub mod lifecycle;
pub mod overage;
pub mod plan;
pub mod quote;
pub mod rate_cache;
pub mod rate_cards;
pub mod refunds;
pub mod runs;
pub mod spend_compat;
pub mod tiers;
pub mod wallet_close;
pub mod wallets;

// ---- settings ------------------------------------------------------------------------------

/// `credit_ledger.max_future_as_of` (seconds; superuser only, default 1 day): how far ahead of
/// now the `as_of` of a lifecycle write (`credit_expire`, `credit_tick`, `credit_allowance_set`)
/// may be. A later `as_of` would expire every tenant's valid grants early (issue 16).
pub static MAX_FUTURE_AS_OF: ::pgrx::GucSetting<i32> = ::pgrx::GucSetting::<i32>::new(86_400);

#[::pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    ::pgrx::GucRegistry::define_int_guc(
        c"credit_ledger.max_future_as_of",
        c"how far ahead of now the as_of of credit_expire, credit_tick and credit_allowance_set may be",
        c"A later as_of is rejected with 22023. Superuser only: a scheduler role cannot raise it.",
        &MAX_FUTURE_AS_OF,
        0,
        i32::MAX,
        ::pgrx::GucContext::Suset,
        ::pgrx::GucFlags::UNIT_S,
    );
}

::pgrx::extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
::pgrx::extension_sql_file!(
    "../sql/usage_trigger.sql",
    name = "usage_trigger",
    requires = [authorize::credit_authorize_v7]
);
::pgrx::extension_sql_file!(
    "../sql/pools.sql",
    name = "pools",
    requires = [grants::credit_grant]
);
::pgrx::extension_sql_file!(
    "../sql/reports.sql",
    name = "reports",
    requires = ["schema", lifecycle::period_start]
);
::pgrx::extension_sql_file!(
    "../sql/operations.sql",
    name = "operations",
    requires = ["reports"]
);
::pgrx::extension_sql_file!(
    "../sql/margins.sql",
    name = "margins",
    requires = ["reports"]
);
::pgrx::extension_sql_file!("../sql/health.sql", name = "health", requires = ["schema"]);
::pgrx::extension_sql_file!(
    "../sql/overage.sql",
    name = "overage",
    requires = ["reports"]
);
::pgrx::extension_sql_file!(
    "../sql/privileges.sql",
    name = "privileges",
    requires = [
        "usage_trigger",
        "pools",
        "reports",
        "operations",
        "margins",
        "health",
        "overage",
        lanes::credit_wallet_lanes,
        wallet_close::credit_wallet_close
    ]
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

/// The README's examples are tested files: its walk-through is the expected output of a
/// pg_regress test and its language snippets are cut from the example programs the suite runs.
#[cfg(test)]
mod readme_tests {
    fn read(path: &str) -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Every fenced code block of the README must appear verbatim in one of the tested files,
    /// unless the line before it marks it `<!-- illustration -->` (short sketches of syntax).
    #[test]
    fn readme_blocks_are_tested_files() {
        let readme = read("README.md");
        // every regress test's expected output, and the example programs
        let expected = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pg_regress/expected");
        let mut outs: Vec<String> = std::fs::read_dir(expected)
            .unwrap_or_else(|e| panic!("{expected}: {e}"))
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "out"))
            .map(|p| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .collect();
        assert!(outs.len() >= 5, "only {} expected outputs", outs.len());
        let mut sources = vec![
            read("examples/python/bill_image.py"),
            read("examples/node/bill_image.js"),
            read("examples/rust/src/main.rs"),
            read("examples/shell/bill_image.sh"),
        ];
        sources.append(&mut outs);
        let mut checked = 0;
        let mut in_block = false;
        let mut illustration = false;
        let mut previous = "";
        let mut block = String::new();
        for line in readme.lines() {
            if line.starts_with("```") {
                if !in_block {
                    illustration = previous.trim() == "<!-- illustration -->";
                } else {
                    if !illustration {
                        assert!(
                            sources.iter().any(|s| s.contains(block.trim_end())),
                            "README block not found in a tested file:\n{block}"
                        );
                        checked += 1;
                    }
                    block.clear();
                }
                in_block = !in_block;
            } else if in_block {
                block.push_str(line);
                block.push('\n');
            }
            previous = line;
        }
        assert!(checked >= 5, "only {checked} README blocks checked");
    }
}
