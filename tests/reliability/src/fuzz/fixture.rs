//! The fixture of one fuzzing epoch: wallets in every interesting state, authorizations and
//! holds in every state, and keyed requests whose exact and altered replays are generated.

use crate::common;
use postgres::Client;

/// Ids and keys of one epoch's fixture.
#[derive(Default)]
pub(super) struct Fixture {
    pub(super) open_holds: Vec<i64>,
    pub(super) captured_hold: i64,
    pub(super) released_hold: i64,
    pub(super) expired_hold: i64,
    pub(super) expired_unswept_hold: i64,
    pub(super) debit_ok: i64,
    pub(super) debit_part: i64,
    pub(super) debit_full: i64,
    pub(super) declined: i64,
    /// (exact replay SQL, altered replays, the SQLSTATE the altered ones must get)
    pub(super) replays: Vec<(String, Vec<String>, &'static str)>,
}

pub(super) const WALLETS: &[&str] = &[
    "rich",
    "poor",
    "od",
    "capped",
    "frozen",
    "team",
    "m1",
    "m2",
    "pro_cust",
    "whale",
    "wället_💥",
];

pub(super) fn fixture(c: &mut Client) -> Result<Fixture, String> {
    let q = |c: &mut Client, sql: &str| -> Result<i64, String> {
        let row = c
            .query_one(sql, &[])
            .map_err(|e| format!("fixture `{sql}`: {}", common::err_text(&e)))?;
        Ok(row.get::<_, i64>(0))
    };
    let setup = "
        SET search_path = public, pg_catalog;
        SELECT credit_asset_define('usd', 2, 'money');
        SELECT credit_rate_set(action => 'chat', credits => 1.5);
        SELECT credit_rate_set(action => 'chat', variant => 'opus', credits => 15, vendor_cost => 0.075);
        SELECT credit_rate_set(action => 'img', credits => 0.0001);
        SELECT credit_rate_set(action => 'pay', credits => 1, asset => 'usd');
        SELECT credit_rate_set(action => 'chat', credits => 1, rate_card => 'pro');
        SELECT credit_rate_set(action => 'xtreme', credits => 0.0000000000000000000000000001, vendor_cost => 1e20);
        SELECT credit_wallet_create(wallet => 'rich');
        SELECT credit_wallet_create(wallet => 'poor');
        SELECT credit_wallet_create(wallet => 'od', overdraft_limit => 50, low_balance_threshold => 10);
        SELECT credit_wallet_create(wallet => 'capped', spend_cap => 10);
        SELECT credit_wallet_create(wallet => 'frozen');
        SELECT credit_wallet_update(wallet => 'frozen', frozen => true);
        SELECT credit_wallet_create(wallet => 'team');
        SELECT credit_wallet_create(wallet => 'm1', parent => 'team');
        SELECT credit_wallet_create(wallet => 'm2', parent => 'team', pool_limit => 5);
        SELECT credit_wallet_create(wallet => 'lonely_team');
        SELECT credit_wallet_create(wallet => 'pro_cust', rate_card => 'pro');
        SELECT credit_wallet_create(wallet => 'whale');
        SELECT credit_grant(wallet => 'whale', amount => 79228162514264337593543950335);
        SELECT credit_wallet_create(wallet => 'wället_💥', metadata => '{\"ü\": \"日本語\", \"n\": 1e400}');
        SELECT credit_grant(wallet => 'wället_💥', amount => 1000, category => 'geschenk_🎁',
                            idempotency_key => 'k-meta-ü💥', metadata => '{\"p\": 0.12345678901234567890123456789, \"q\": 1.10}');
        SELECT credit_grant(wallet => 'rich', amount => 100000, idempotency_key => 'k-grant');
        SELECT credit_grant(wallet => 'rich', amount => 500, asset => 'usd');
        SELECT credit_grant(wallet => 'rich', amount => 50, category => 'promotional', expires_at => now() + interval '1 hour');
        SELECT credit_grant(wallet => 'poor', amount => 1);
        SELECT credit_grant(wallet => 'team', amount => 1000);
        SELECT credit_grant(wallet => 'm1', amount => 10);
        SELECT credit_grant(wallet => 'capped', amount => 100);
        SELECT credit_grant(wallet => 'od', amount => 20);
        SELECT credit_grant(wallet => 'pro_cust', amount => 100);
        SELECT credit_allowance_set(wallet => 'rich', amount => 100);
        SELECT credit_team_allocate(team => 'team', amount_per_member => 10, pooled_share => 0.2, idempotency_key => 'k-alloc');
    ";
    c.batch_execute(setup)
        .map_err(|e| format!("fixture: {}", common::err_text(&e)))?;
    let mut f = Fixture {
        debit_ok: q(
            c,
            "SELECT authorization_id FROM credit_authorize(wallet => 'rich', action => 'chat', quantity => 2, idempotency_key => 'k-auth')",
        )?,
        declined: q(
            c,
            "SELECT authorization_id FROM credit_authorize(wallet => 'poor', action => 'chat', quantity => 100, idempotency_key => 'k-decl')",
        )?,
        debit_full: q(
            c,
            "SELECT authorization_id FROM credit_authorize(wallet => 'rich', action => 'chat', quantity => 1)",
        )?,
        debit_part: q(
            c,
            "SELECT authorization_id FROM credit_authorize(wallet => 'rich', action => 'chat', quantity => 4)",
        )?,
        ..Default::default()
    };
    q(
        c,
        &format!(
            "SELECT refund_id FROM credit_refund(authorization_id => {})",
            f.debit_full
        ),
    )?;
    q(
        c,
        &format!(
            "SELECT refund_id FROM credit_refund(authorization_id => {}, amount => 1, idempotency_key => 'k-refund')",
            f.debit_part
        ),
    )?;
    for i in 0..8 {
        let key = if i == 0 {
            ", idempotency_key => 'k-hold'"
        } else {
            ""
        };
        let w = ["rich", "m1", "od", "rich"][i % 4];
        f.open_holds.push(q(
            c,
            &format!("SELECT authorization_id FROM credit_hold(wallet => '{w}', action => 'chat', quantity => 2, ttl => '1 day'{key})"),
        )?);
    }
    f.captured_hold = q(c, "SELECT authorization_id FROM credit_hold(wallet => 'rich', action => 'chat', quantity => 3)")?;
    q(
        c,
        &format!(
            "SELECT authorization_id FROM credit_capture(authorization_id => {}, quantity => 2, idempotency_key => 'k-cap')",
            f.captured_hold
        ),
    )?;
    f.released_hold = q(c, "SELECT authorization_id FROM credit_hold(wallet => 'rich', action => 'chat', quantity => 3)")?;
    q(
        c,
        &format!(
            "SELECT authorization_id FROM credit_release(authorization_id => {}, idempotency_key => 'k-rel')",
            f.released_hold
        ),
    )?;
    f.expired_hold = q(c, "SELECT authorization_id FROM credit_hold(wallet => 'rich', action => 'chat', quantity => 1, ttl => '1 millisecond')")?;
    c.batch_execute("SELECT pg_sleep(0.01); SELECT * FROM credit_expire()")
        .map_err(|e| format!("fixture: {}", common::err_text(&e)))?;
    f.expired_unswept_hold = q(c, "SELECT authorization_id FROM credit_hold(wallet => 'rich', action => 'chat', quantity => 1, ttl => '1 millisecond')")?;
    c.batch_execute("SELECT pg_sleep(0.01)")
        .map_err(|e| format!("fixture: {}", common::err_text(&e)))?;

    let (cap, rel, part) = (f.captured_hold, f.released_hold, f.debit_part);
    f.replays = vec![
        (
            "SELECT * FROM credit_grant(wallet => 'rich', amount => 100000, idempotency_key => 'k-grant')".into(),
            vec![
                "SELECT * FROM credit_grant(wallet => 'rich', amount => 100001, idempotency_key => 'k-grant')".into(),
                "SELECT * FROM credit_grant(wallet => 'rich', amount => 100000, category => 'promotional', idempotency_key => 'k-grant')".into(),
                "SELECT * FROM credit_grant(wallet => 'rich', amount => 100000, metadata => '{\"x\": 1}', idempotency_key => 'k-grant')".into(),
            ],
            "23505"
        ),
        (
            "SELECT * FROM credit_authorize(wallet => 'rich', action => 'chat', quantity => 2, idempotency_key => 'k-auth')".into(),
            vec![
                "SELECT * FROM credit_authorize(wallet => 'rich', action => 'chat', quantity => 3, idempotency_key => 'k-auth')".into(),
                "SELECT * FROM credit_authorize(wallet => 'rich', action => 'chat', variant => 'opus', quantity => 2, idempotency_key => 'k-auth')".into(),
                "SELECT * FROM credit_authorize(wallet => 'rich', action => 'img', quantity => 2, idempotency_key => 'k-auth')".into(),
            ],
            "23505"
        ),
        (
            "SELECT * FROM credit_authorize(wallet => 'poor', action => 'chat', quantity => 100, idempotency_key => 'k-decl')".into(),
            vec!["SELECT * FROM credit_authorize(wallet => 'poor', action => 'chat', quantity => 0.5, idempotency_key => 'k-decl')".into()],
            "23505"
        ),
        (
            "SELECT * FROM credit_hold(wallet => 'rich', action => 'chat', quantity => 2, ttl => '1 day', idempotency_key => 'k-hold')".into(),
            vec![
                "SELECT * FROM credit_hold(wallet => 'rich', action => 'chat', quantity => 5, ttl => '1 day', idempotency_key => 'k-hold')".into(),
                "SELECT * FROM credit_authorize(wallet => 'rich', action => 'chat', quantity => 2, idempotency_key => 'k-hold')".into(),
            ],
            "23505"
        ),
        (
            format!("SELECT * FROM credit_capture(authorization_id => {cap}, quantity => 2, idempotency_key => 'k-cap')"),
            vec![format!("SELECT * FROM credit_capture(authorization_id => {cap}, quantity => 1, idempotency_key => 'k-cap')")],
            "23505"
        ),
        (
            format!("SELECT * FROM credit_release(authorization_id => {rel}, idempotency_key => 'k-rel')"),
            vec![],
            "23505"
        ),
        (
            format!("SELECT * FROM credit_refund(authorization_id => {part}, amount => 1, idempotency_key => 'k-refund')"),
            vec![
                format!("SELECT * FROM credit_refund(authorization_id => {part}, amount => 2, idempotency_key => 'k-refund')"),
                format!("SELECT * FROM credit_refund(authorization_id => {part}, amount => 1, reason => 'other', idempotency_key => 'k-refund')"),
            ],
            "23505"
        ),
        (
            "SELECT * FROM credit_team_allocate(team => 'team', amount_per_member => 10, pooled_share => 0.2, idempotency_key => 'k-alloc')".into(),
            vec!["SELECT * FROM credit_team_allocate(team => 'team', amount_per_member => 20, pooled_share => 0.2, idempotency_key => 'k-alloc')".into()],
            "23505"
        ),
        (
            // non-ASCII key, category and metadata with numbers beyond any float
            "SELECT * FROM credit_grant(wallet => 'wället_💥', amount => 1000, category => 'geschenk_🎁', idempotency_key => 'k-meta-ü💥', metadata => '{\"p\": 0.12345678901234567890123456789, \"q\": 1.10}')".into(),
            vec![
                "SELECT * FROM credit_grant(wallet => 'wället_💥', amount => 1000, category => 'geschenk_🎁', idempotency_key => 'k-meta-ü💥', metadata => '{\"p\": 0.12345678901234567890123456789, \"q\": 1.2}')".into(),
                "SELECT * FROM credit_grant(wallet => 'wället_💥', amount => 1000, category => 'geschenk', idempotency_key => 'k-meta-ü💥', metadata => '{\"p\": 0.12345678901234567890123456789, \"q\": 1.10}')".into(),
            ],
            "23505"
        ),
        (
            "SELECT * FROM credit_wallet_create(wallet => 'lonely_team')".into(),
            vec!["SELECT * FROM credit_wallet_create(wallet => 'lonely_team', overdraft_limit => 7)".into()],
            "42710"
        ),
    ];
    Ok(f)
}
