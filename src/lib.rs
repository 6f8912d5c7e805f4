//! credit_ledger: a prepaid AI-credit ledger inside PostgreSQL.
//!
//! This file is the table of contents: the module list and the ordered SQL files.
//! See README.md and docs/ for the product, docs/reference.md for every function, and `sql/`
//! for tables, views and privileges.

::pgrx::pg_module_magic!(name, version);

// pure Rust (no PostgreSQL): amounts, allocation, input validation, UTC period arithmetic
pub mod allocation;
pub mod amount;
pub mod input;
pub mod period;

// the SQL boundary
pub mod catalog;
pub mod catalog_corrections;
pub mod catalog_lane_caps;
pub mod catalog_member_rooms;
pub mod catalog_members;
pub mod catalog_overage;
pub mod catalog_runs;
pub mod catalog_tenants;
pub mod error;
pub mod ledger;
pub mod spi;
pub mod subxact;
pub mod tenant;
pub mod types;

// one domain noun per module
pub mod allowances;
pub mod authorize;
pub mod citus;
pub mod corrections;
pub mod counters;
pub mod events;
pub mod fair_use;
pub mod grants;
pub mod holds;
pub mod lane_caps;
pub mod lanes;
pub mod lifecycle;
pub mod member_rooms;
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
    requires = [authorize::credit_authorize_v12]
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
    "../sql/citus.sql",
    name = "citus",
    requires = [authorize::credit_authorize_v12, authorize::credit_hold_v12]
);
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

/// The README's and docs/'s examples are tested files: the walk-throughs are expected outputs of
/// pg_regress tests and the language snippets are cut from the example programs the suite runs;
/// docs/reference.md documents exactly the functions and views the catalog lists.
#[cfg(test)]
mod doc_tests {
    use std::collections::BTreeSet;

    fn read(path: &str) -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// README.md and every docs/*.md, as (path, text).
    fn pages() -> Vec<(String, String)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".md"))
            .collect();
        names.sort();
        let mut pages = vec![("README.md".to_string(), read("README.md"))];
        for n in names {
            let path = format!("docs/{n}");
            let text = read(&path);
            pages.push((path, text));
        }
        pages
    }

    /// The fenced code blocks of a page, each with whether the line before it marks it
    /// `<!-- illustration -->`.
    fn blocks(page: &str) -> Vec<(bool, String)> {
        let mut found = Vec::new();
        let mut in_block = false;
        let mut illustration = false;
        let mut previous = "";
        let mut block = String::new();
        for line in page.lines() {
            if line.starts_with("```") {
                if !in_block {
                    illustration = previous.trim() == "<!-- illustration -->";
                } else {
                    found.push((illustration, std::mem::take(&mut block)));
                }
                in_block = !in_block;
            } else if in_block {
                block.push_str(line);
                block.push('\n');
            }
            previous = line;
        }
        assert!(!in_block, "a code block is not closed");
        found
    }

    /// Every fenced code block of the README and of docs/ must appear verbatim in one of the
    /// tested files (a regress test's expected output, its SQL for a block of statements, an
    /// example program), unless the line before it marks it `<!-- illustration -->` (short sketches
    /// of syntax that show no output).
    #[test]
    fn doc_blocks_are_tested_files() {
        let expected = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pg_regress/expected");
        let mut sources: Vec<String> = std::fs::read_dir(expected)
            .unwrap_or_else(|e| panic!("{expected}: {e}"))
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "out"))
            .map(|p| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .collect();
        assert!(
            sources.len() >= 5,
            "only {} expected outputs",
            sources.len()
        );
        let sql = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pg_regress/sql");
        for entry in std::fs::read_dir(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .flatten()
        {
            let path = entry.path();
            sources.push(
                std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            );
        }
        for example in [
            "examples/python/bill_image.py",
            "examples/node/bill_image.js",
            "examples/rust/src/main.rs",
            "examples/shell/bill_image.sh",
        ] {
            sources.push(read(example));
        }
        let mut checked = 0;
        for (path, page) in pages() {
            for (illustration, block) in blocks(&page) {
                if illustration {
                    continue;
                }
                assert!(
                    sources.iter().any(|s| s.contains(block.trim_end())),
                    "{path}: block not found in a tested file:\n{block}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 100, "only {checked} blocks checked");
    }

    /// GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens.
    fn anchor(heading: &str) -> String {
        heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect()
    }

    /// Every relative link of the README and docs/ reaches an existing page and, with `#...`,
    /// one of its headings: the table of contents is one click from the answer.
    #[test]
    fn doc_links_resolve() {
        let pages = pages();
        let anchors = |text: &str| -> BTreeSet<String> {
            let mut in_block = false;
            let mut set = BTreeSet::new();
            for line in text.lines() {
                if line.starts_with("```") {
                    in_block = !in_block;
                } else if !in_block && line.starts_with('#') {
                    set.insert(anchor(line.trim_start_matches('#')));
                }
            }
            set
        };
        let mut links = 0;
        for (path, text) in &pages {
            let dir = if path.starts_with("docs/") {
                "docs/"
            } else {
                ""
            };
            let mut rest = text.as_str();
            while let Some(at) = rest.find("](") {
                rest = &rest[at + 2..];
                let Some(end) = rest.find(')') else { break };
                let target = &rest[..end];
                if target.starts_with("http") || target.contains(' ') {
                    continue;
                }
                let (file, frag) = target.split_once('#').unwrap_or((target, ""));
                let resolved = if file.is_empty() {
                    path.clone()
                } else if let Some(up) = file.strip_prefix("../") {
                    up.to_string()
                } else {
                    format!("{dir}{file}")
                };
                let full = concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + &resolved;
                assert!(
                    std::path::Path::new(&full).exists(),
                    "{path}: link to missing {resolved}"
                );
                if !frag.is_empty() {
                    let page = pages
                        .iter()
                        .find(|(p, _)| *p == resolved)
                        .unwrap_or_else(|| panic!("{path}: #{frag} into {resolved}, not a page"));
                    assert!(
                        anchors(&page.1).contains(frag),
                        "{path}: no heading #{frag} in {resolved}"
                    );
                }
                links += 1;
            }
        }
        assert!(links >= 20, "only {links} links checked");
    }

    /// docs/reference.md has one `### name` entry per public function and view that the catalog
    /// lists in tests/pg_regress/expected/reference.out (which pg_regress checks against the
    /// installed extension on every version), no other, and each entry opens with that object's
    /// signature block verbatim.
    #[test]
    fn reference_matches_catalog() {
        let out = read("tests/pg_regress/expected/reference.out");
        let lines: Vec<&str> = out.lines().collect();
        let mut catalog = BTreeSet::new();
        for pair in lines.windows(2) {
            if pair[0].starts_with("-- ") {
                let head = pair[1];
                let name: String = head
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                    .collect();
                if (name.starts_with("credit_") && head[name.len()..].starts_with('('))
                    || (name.starts_with("credit_ledger.") && head[name.len()..].starts_with(" ("))
                {
                    catalog.insert(name);
                }
            }
        }
        assert!(
            catalog.len() >= 60,
            "only {} catalog objects",
            catalog.len()
        );
        let reference = read("docs/reference.md");
        let mut documented = BTreeSet::new();
        let mut sections = reference.split("\n### ").skip(1);
        for section in sections.by_ref() {
            let name = section
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            let signature = blocks(section)
                .into_iter()
                .next()
                .map(|(_, b)| b)
                .unwrap_or_default();
            let first = signature.lines().nth(1).unwrap_or_default();
            assert!(
                first.starts_with(&format!("{name}(")) || first.starts_with(&format!("{name} (")),
                "docs/reference.md: the entry {name} does not open with its signature"
            );
            assert!(
                out.contains(signature.trim_end()),
                "docs/reference.md: {name}: signature differs from the catalog"
            );
            assert!(
                documented.insert(name.clone()),
                "docs/reference.md: {name} twice"
            );
        }
        let missing: Vec<_> = catalog.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&catalog).collect();
        assert!(
            missing.is_empty(),
            "not documented in docs/reference.md: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "documented but not in the catalog: {extra:?}"
        );
    }
}
