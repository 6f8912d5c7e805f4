-- Load the plan into the extension through its public API, in plan order.
SELECT count(*) AS ext_rates FROM (SELECT * FROM plan.rates ORDER BY seq) r,
    LATERAL credit_rate_set(action => r.action, credits => r.credits, variant => r.variant,
                            rate_card => r.rate_card, effective_from => r.effective_from) x;
SELECT count(*) AS ext_wallets FROM (SELECT * FROM plan.wallets ORDER BY seq) w,
    LATERAL credit_wallet_create(wallet => w.wallet) x;
SELECT count(*) AS ext_grants FROM (SELECT * FROM plan.grants ORDER BY seq) g,
    LATERAL credit_grant(wallet => g.wallet, amount => g.amount, category => g.category,
                         priority => g.priority, expires_at => g.expires_at,
                         effective_at => g.effective_at) x;
SELECT count(*) FILTER (WHERE x.approved) AS ext_calls_approved, count(*) AS ext_calls
  FROM (SELECT * FROM plan.calls ORDER BY seq) c,
    LATERAL credit_authorize(wallet => c.wallet, action => c.action, quantity => c.quantity,
                             variant => c.variant, idempotency_key => c.key) x;
