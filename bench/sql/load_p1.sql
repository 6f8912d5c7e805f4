-- Load a window of the plan into the PL/pgSQL peer through its functions, in plan order.
-- psql variables: :lo..:hi = window of plan.wallets / plan.grants (and rates) seq numbers;
-- :clo..:chi = window of plan.calls. The driver loads in windows so that no statement runs
-- for long and the planner sees the tables grow (ANALYZE after the first window).
SELECT count(*) AS p1_rates FROM (SELECT * FROM plan.rates WHERE seq BETWEEN :lo AND :hi ORDER BY seq) r,
    LATERAL p1.rate_set(r.action, r.credits, r.variant, r.rate_card, effective_from => r.effective_from) x;
SELECT count(*) AS p1_wallets FROM (SELECT * FROM plan.wallets WHERE seq BETWEEN :lo AND :hi ORDER BY seq) w,
    LATERAL p1.wallet_create(w.wallet) x;
SELECT count(*) AS p1_grants FROM (SELECT * FROM plan.grants WHERE seq BETWEEN :lo AND :hi ORDER BY seq) g,
    LATERAL p1.grant(g.wallet, g.amount, category => g.category, priority => g.priority,
                     expires_at => g.expires_at, effective_at => g.effective_at) x;
SELECT count(*) FILTER (WHERE x.approved) AS p1_calls_approved, count(*) AS p1_calls
  FROM (SELECT * FROM plan.calls WHERE seq BETWEEN :clo AND :chi ORDER BY seq) c,
    LATERAL p1.authorize(c.wallet, c.action, c.quantity, c.variant, c.key) x;
