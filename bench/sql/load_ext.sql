-- Load a window of the plan into the extension through its public API, in plan order.
-- psql variables: as in load_p1.sql.
SELECT count(*) AS ext_rates FROM (SELECT * FROM plan.rates WHERE seq BETWEEN :lo AND :hi ORDER BY seq) r,
    LATERAL credit_rate_set(action => r.action, credits => r.credits, variant => r.variant,
                            rate_card => r.rate_card, effective_from => r.effective_from) x;
SELECT count(*) AS ext_wallets FROM (SELECT * FROM plan.wallets WHERE seq BETWEEN :lo AND :hi ORDER BY seq) w,
    LATERAL credit_wallet_create(wallet => w.wallet) x;
SELECT count(*) AS ext_grants FROM (SELECT * FROM plan.grants WHERE seq BETWEEN :lo AND :hi ORDER BY seq) g,
    LATERAL credit_grant(wallet => g.wallet, amount => g.amount, category => g.category,
                         priority => g.priority, expires_at => g.expires_at,
                         effective_at => g.effective_at) x;
SELECT count(*) FILTER (WHERE x.approved) AS ext_calls_approved, count(*) AS ext_calls
  FROM (SELECT * FROM plan.calls WHERE seq BETWEEN :clo AND :chi ORDER BY seq) c,
    LATERAL credit_authorize(wallet => c.wallet, action => c.action, quantity => c.quantity,
                             variant => c.variant, idempotency_key => c.key) x;
