-- examples/demo.sql: the credit_ledger story, played by examples/demo.sh.
--
-- "Lumen" is an AI app that sells credits. Chat is priced per 1k tokens and per model, images
-- per image, video exports per minute. Every call is priced and paid *before* the model runs.
-- Run it on a fresh database:  psql -X -d credit_demo -f examples/demo.sql
--
-- Two small display helpers (lots, demo_try) are defined first; everything else is the public
-- credit_ledger API as an application would call it.

\set ON_ERROR_STOP on
\set QUIET on
\pset footer off
\pset null ''
SET client_min_messages = warning;

CREATE EXTENSION IF NOT EXISTS credit_ledger;

-- "in 3 days" / "in 7 hours" / "never"
CREATE FUNCTION demo_when(t timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN t IS NULL THEN 'never'
        WHEN t - now() >= interval '1 day' THEN 'in ' || round(extract(epoch FROM t - now()) / 86400) || ' days'
        WHEN t > now() THEN 'in ' || ceil(extract(epoch FROM t - now()) / 3600) || ' hours'
        ELSE 'expired' END
$$;

-- A wallet's credit lots: credit_grants() with the columns a person wants to read.
CREATE FUNCTION lots(w text) RETURNS TABLE (wallet text, lot bigint, category text, priority int,
        expires text, unit_price numeric, amount numeric, remaining numeric, held numeric)
LANGUAGE sql STABLE AS $$
    SELECT g.wallet, g.id, g.category, g.priority, demo_when(g.expires_at), trim_scale(g.unit_price),
           trim_scale(g.amount), trim_scale(g.remaining), trim_scale(g.held)
      FROM credit_grants(w) g
$$;

-- Run a statement that is expected to fail; show its SQLSTATE and message instead of stopping.
-- (The EXCEPTION block is a savepoint: whatever the statement did is rolled back.)
CREATE FUNCTION demo_try(stmt text) RETURNS TABLE (sqlstate text, error text) LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN QUERY SELECT '00000'::text, 'no error'::text;
EXCEPTION WHEN OTHERS THEN
    RETURN QUERY SELECT SQLSTATE::text, SQLERRM::text;
END $$;

\echo
\echo '=================================================================================='
\echo ' credit_ledger demo: "Lumen", an AI app that sells credits'
\echo '=================================================================================='

\echo
\echo '--- 1. Rate cards: model-aware prices, with what each unit costs us at the vendor (USD)'
\echo '    default: credit_rate_set() per entry.  pro: one JSON document, credit_rate_card_load().'
\echo '    pro lists no video.export: pro wallets fall back to the default price for it.'
\echo '    Each chat model names a cheaper fallback (opus -> sonnet -> haiku) for calls that'
\echo '    would rather degrade than be declined (section 8).'

SELECT count(*) AS default_entries_set FROM (VALUES
        ('chat',           'opus',   5.00, '1k tokens', 0.0300, 'sonnet'),
        ('chat',           'sonnet', 1.00, '1k tokens', 0.0060, 'haiku'),
        ('chat',           'haiku',  0.25, '1k tokens', 0.0015, NULL),
        ('image.generate', NULL,     4.00, 'image',     0.0200, NULL),
        ('video.export',   NULL,    20.00, 'minute',    0.1200, NULL)
    ) AS r(action, variant, credits, unit, vendor_cost, fallback),
    LATERAL credit_rate_set(action => r.action, variant => r.variant, credits => r.credits,
                            unit => r.unit, vendor_cost => r.vendor_cost, fallback => r.fallback) \g /dev/null

SELECT credit_rate_card_load('{
  "name": "pro",
  "description": "Pro plan: cheaper chat and images",
  "entries": [
    {"action": "chat", "variant": "opus",   "credits": "4.00", "unit": "1k tokens", "vendor_cost": "0.0300"},
    {"action": "chat", "variant": "sonnet", "credits": "0.80", "unit": "1k tokens", "vendor_cost": "0.0060"},
    {"action": "chat", "variant": "haiku",  "credits": "0.20", "unit": "1k tokens", "vendor_cost": "0.0015"},
    {"action": "image.generate",            "credits": "3.00", "unit": "image",     "vendor_cost": "0.0200"}
  ]}') AS pro_entries_loaded \g /dev/null

SELECT c.card, e.action, coalesce(e.variant, '(any)') AS variant, trim_scale(e.credits) AS credits,
       e.unit AS per, trim_scale(e.vendor_cost) AS vendor_cost_usd, coalesce(e.fallback, '') AS fallback
  FROM unnest(ARRAY['default', 'pro']) AS c(card),
       jsonb_to_recordset(credit_rate_card_export(c.card) -> 'entries')
         AS e(action text, variant text, credits numeric, unit text, vendor_cost numeric, fallback text)
 ORDER BY c.card, e.action, e.credits DESC;

\echo
\echo '--- 2. Ada signs up (default plan). Her wallet gets three stacked grants:'
\echo '    included monthly credits (reset at the end of the month), a welcome promo that'
\echo '    expires in 3 days, and a pack she bought: 500 credits for $5 (unit price $0.01).'

SELECT wallet, coalesce(rate_card, 'default') AS rate_card FROM credit_wallet_create(wallet => 'ada');
SELECT id AS grant_id, category, priority, amount
  FROM credit_grant(wallet => 'ada', amount => 100, category => 'included',
                    expires_at => date_trunc('month', now()) + interval '1 month') \g /dev/null
SELECT id AS grant_id FROM credit_grant(wallet => 'ada', amount => 50, category => 'promotional',
                    expires_at => now() + interval '3 days') \g /dev/null
SELECT id AS grant_id FROM credit_grant(wallet => 'ada', amount => 500, category => 'purchased',
                    unit_price => 0.01, idempotency_key => 'stripe:pi_3Qx9') \g /dev/null

\echo 'credit_grants(''ada''), in consumption order (priority, then soonest expiry, then oldest):'
SELECT * FROM lots('ada');
SELECT trim_scale(balance) AS balance, trim_scale(expiring_soon) AS expiring_within_7_days, by_category
  FROM credit_balance_detail('ada');

\echo
\echo '--- 3. Ada works. Each call is authorized (priced and debited) before the model runs.'
\echo '    Watch the lots drain in order: promotional, then included, then purchased.'
\echo
\echo '  a) chat with sonnet, 12,500 tokens = 12.5 x 1 credit'
SELECT authorization_id, approved, trim_scale(cost) AS cost, trim_scale(balance) AS balance
  FROM credit_authorize(wallet => 'ada', action => 'chat', quantity => 12.5, variant => 'sonnet');
SELECT * FROM lots('ada');

\echo
\echo '  b) chat with opus, 8,000 tokens = 8 x 5 credits: the promo pays 37.5, included the rest'
SELECT authorization_id, approved, trim_scale(cost) AS cost, trim_scale(balance) AS balance
  FROM credit_authorize(wallet => 'ada', action => 'chat', quantity => 8, variant => 'opus');
SELECT * FROM lots('ada');

\echo
\echo '--- 4. Price before acting: credit_quote() shows the cost and whether it would pass.'
\echo '    No side effects. Ada wants to export a 4-minute video, and asks about a 30-minute one.'
SELECT q.minutes, trim_scale(c.cost) AS cost, trim_scale(c.spendable) AS spendable, c.approved, c.reason
  FROM (VALUES (4), (30)) AS q(minutes),
       LATERAL credit_quote(wallet => 'ada', action => 'video.export', quantity => q.minutes) AS c;

\echo
\echo '  c) she exports the 4-minute video: 80 credits from the included lot'
SELECT authorization_id, approved, trim_scale(cost) AS cost, trim_scale(balance) AS balance
  FROM credit_authorize(wallet => 'ada', action => 'video.export', quantity => 4);
SELECT * FROM lots('ada');

\echo
\echo '  d) 5 images = 20 credits: the included lot runs out, the purchased pack pays the rest'
SELECT authorization_id AS img_auth
  FROM credit_authorize(wallet => 'ada', action => 'image.generate', quantity => 5) \gset
SELECT authorization_id, approved, trim_scale(cost) AS cost, trim_scale(balance) AS balance
  FROM credit_authorization(:img_auth);
SELECT * FROM lots('ada');

\echo
\echo '--- 5. An idempotent retry. The app sends every call with its own request id; a network'
\echo '    timeout makes it send the same call again. Same key, same arguments: the first'
\echo '    result comes back and nothing more is charged.'
SELECT 'first try' AS attempt, authorization_id, approved, trim_scale(cost) AS cost, trim_scale(balance) AS balance
  FROM credit_authorize(wallet => 'ada', action => 'chat', quantity => 40, variant => 'haiku',
                        idempotency_key => 'req_01HZX3');
SELECT 'retry' AS attempt, authorization_id, approved, trim_scale(cost) AS cost, trim_scale(balance) AS balance
  FROM credit_authorize(wallet => 'ada', action => 'chat', quantity => 40, variant => 'haiku',
                        idempotency_key => 'req_01HZX3');
\echo 'The same key with other arguments is a bug in the caller, and an error:'
SELECT * FROM demo_try($$ SELECT credit_authorize(wallet => 'ada', action => 'chat', quantity => 400,
                                                  variant => 'opus', idempotency_key => 'req_01HZX3') $$);

\echo
\echo '--- 6. Streaming: the final token count is unknown until the stream ends. Hold the'
\echo '    worst case (max_tokens 4,000 with opus = 20 credits), stream, then capture what'
\echo '    was really used (2,700 tokens = 13.5 credits). The rest goes back at once.'
SELECT authorization_id AS hold_auth
  FROM credit_hold(wallet => 'ada', action => 'chat', quantity => 4, variant => 'opus',
                   ttl => interval '5 minutes') \gset
SELECT authorization_id, status, trim_scale(cost) AS held, trim_scale(balance) AS balance
  FROM credit_authorization(:hold_auth);
SELECT * FROM lots('ada');
\echo '... the stream ends after 2,700 tokens:'
SELECT authorization_id, status, trim_scale(captured) AS captured, trim_scale(balance) AS balance
  FROM credit_capture(authorization_id => :hold_auth, quantity => 2.7);
SELECT * FROM lots('ada');

\echo
\echo '--- 7. A refund: one of the 5 images came back blank. 4 credits go back to the lots that'
\echo '    paid for that call (last paid, first refunded): the purchased pack, then included.'
SELECT trim_scale(amount) AS refunded, trim_scale(refunded_total) AS refunded_total, trim_scale(balance) AS balance
  FROM credit_refund(authorization_id => :img_auth, amount => 4, reason => 'image 3 was blank');
SELECT * FROM lots('ada');
\echo 'The whole life of that image call, from the journal (credit_authorization_history):'
SELECT kind, grant_id AS lot, category, trim_scale(amount) AS amount, note
  FROM credit_authorization_history(:img_auth);

\echo
\echo '--- 8. Zoe is on a free trial: 10 promotional credits. She uses them all, then the next'
\echo '    call is declined: approved = false with a reason, nothing debited, the app does not'
\echo '    call the model (and can show an upgrade prompt). The decline is recorded too.'
SELECT wallet FROM credit_wallet_create(wallet => 'zoe') \g /dev/null
SELECT id FROM credit_grant(wallet => 'zoe', amount => 10, category => 'promotional',
                            expires_at => now() + interval '14 days') \g /dev/null
SELECT r.call, a.authorization_id, a.approved, a.reason, trim_scale(a.cost) AS cost, trim_scale(a.balance) AS balance
  FROM (VALUES (1, 'image.generate', 1, NULL), (2, 'image.generate', 1, NULL),
               (3, 'chat', 8, 'haiku'), (4, 'image.generate', 1, NULL))
         AS r(call, action, quantity, variant),
       LATERAL credit_authorize(wallet => 'zoe', action => r.action, quantity => r.quantity,
                                variant => r.variant) AS a
 ORDER BY r.call;
SELECT * FROM lots('zoe');
\echo
\echo '    Degrade instead of decline. Zoe gets 1.5 credits back as goodwill and asks opus about'
\echo '    2,000 tokens (10 credits). The app passes degrade => true: opus (10) and sonnet (2)'
\echo '    are unaffordable, haiku (0.5) is not: she gets an answer from haiku, and the call says so.'
SELECT id FROM credit_grant(wallet => 'zoe', amount => 1.5, category => 'promotional') \g /dev/null
\echo '    Before the call, the app can show her which model she would get (credit_quote, degrade => true):'
SELECT q.priced_variant AS would_answer, trim_scale(q.cost) AS cost, q.approved
  FROM credit_quote(wallet => 'zoe', action => 'chat', quantity => 2, variant => 'opus', degrade => true) AS q;
SELECT a.approved, a.variant AS answered_by, trim_scale(a.cost) AS cost, trim_scale(a.balance) AS balance
  FROM credit_authorize(wallet => 'zoe', action => 'chat', quantity => 2, variant => 'opus',
                        degrade => true) AS a;
SELECT requested_variant, variant, degraded
  FROM credit_ledger.authorizations WHERE degraded ORDER BY id;

\echo
\echo '--- 9. A team pool. Acme is on the pro plan and buys 2,000 credits for the team'
\echo '    ($16, unit price $0.008). Bob and Eve are members: a member spends its own'
\echo '    credits first, then the pool. Bob may draw at most 300 credits a month from it.'
SELECT wallet FROM credit_wallet_create(wallet => 'acme', rate_card => 'pro') \g /dev/null
SELECT id FROM credit_grant(wallet => 'acme', amount => 2000, category => 'purchased', unit_price => 0.008) \g /dev/null
SELECT wallet, parent, rate_card, trim_scale(pool_limit) AS pool_limit
  FROM credit_wallet_create(wallet => 'acme.bob', parent => 'acme', rate_card => 'pro', pool_limit => 300)
UNION ALL
SELECT wallet, parent, rate_card, trim_scale(pool_limit)
  FROM credit_wallet_create(wallet => 'acme.eve', parent => 'acme', rate_card => 'pro');
SELECT id FROM credit_grant(wallet => 'acme.bob', amount => 50, category => 'included',
                            expires_at => date_trunc('month', now()) + interval '1 month') \g /dev/null
\echo
\echo 'Bob: opus chat, 20,000 tokens at the pro price = 80 credits (50 his own, 30 from the pool).'
\echo 'Eve: 10 images at the pro price = 30 credits, all from the pool.'
\echo 'Bob: a 15-minute video export (not on pro: default price, 300 credits) would take him'
\echo 'past his pool limit: declined.'
SELECT a.wallet, a.action, a.variant, a.approved, a.reason, trim_scale(a.cost) AS cost, trim_scale(a.balance) AS own_balance
  FROM credit_authorize(wallet => 'acme.bob', action => 'chat', quantity => 20, variant => 'opus') a
UNION ALL
SELECT a.wallet, a.action, a.variant, a.approved, a.reason, trim_scale(a.cost), trim_scale(a.balance)
  FROM credit_authorize(wallet => 'acme.eve', action => 'image.generate', quantity => 10) a
UNION ALL
SELECT a.wallet, a.action, a.variant, a.approved, a.reason, trim_scale(a.cost), trim_scale(a.balance)
  FROM credit_authorize(wallet => 'acme.bob', action => 'video.export', quantity => 15) a;
SELECT * FROM lots('acme.bob') UNION ALL SELECT * FROM lots('acme');
\echo 'What Bob can still spend (credit_balance_detail): his own balance plus his pool access.'
SELECT trim_scale(balance) AS own_balance, trim_scale(pool_access) AS pool_access, trim_scale(spendable) AS spendable
  FROM credit_balance_detail('acme.bob');
\echo 'Acme''s agents keep their transaction open during each model call (authorize, call,'
\echo 'record, commit). With one lane, every member''s draw would wait for the one before it to'
\echo 'commit; with 8 lanes up to 8 members spend from the pool at once (docs/performance.md "Lanes").'
SELECT credit_wallet_lanes(wallet => 'acme', lanes => 8) AS lanes;
SELECT a.wallet, a.approved, trim_scale(a.cost) AS cost
  FROM credit_authorize(wallet => 'acme.eve', action => 'image.generate', quantity => 2) a;

\echo
\echo '--- 10. Bad input is an error with a standard SQLSTATE, and changes nothing.'
SELECT t.call, e.sqlstate, e.error
  FROM (VALUES
        (1, 'credit_authorize(''nobody'', ''chat'', 1, ''opus'')',
            $$ SELECT credit_authorize('nobody', 'chat', 1, 'opus') $$),
        (2, 'credit_authorize(''ada'', ''music.generate'')',
            $$ SELECT credit_authorize('ada', 'music.generate') $$),
        (3, 'credit_authorize(''ada'', ''chat'', -5, ''opus'')',
            $$ SELECT credit_authorize('ada', 'chat', -5, 'opus') $$),
        (4, 'credit_grant(''ada'', 10.00001)',
            $$ SELECT credit_grant('ada', 10.00001) $$)
       ) AS t(n, call, stmt),
       LATERAL demo_try(t.stmt) AS e
 ORDER BY t.n;

\echo
\echo '--- 11. What finance sees: usage per wallet, action and model (credits net of refunds;'
\echo '    the vendor cost of what was really used, from the rate version each call recorded).'
SELECT w.wallet, a.action, coalesce(a.variant, '') AS variant,
       count(*) FILTER (WHERE a.status IN ('approved', 'captured')) AS calls,
       count(*) FILTER (WHERE a.status = 'declined') AS declined,
       trim_scale(sum(coalesce(a.captured, a.cost) - a.refunded) FILTER (WHERE a.status IN ('approved', 'captured'))) AS credits,
       trim_scale(sum(r.vendor_cost * coalesce(a.captured_quantity, a.quantity))
                  FILTER (WHERE a.status IN ('approved', 'captured'))) AS vendor_cost_usd
  FROM credit_ledger.authorizations a
  JOIN credit_ledger.wallets w ON w.id = a.wallet_id
  LEFT JOIN credit_ledger.rates r ON r.id = a.rate_id
 GROUP BY w.wallet, a.action, a.variant
 ORDER BY w.wallet, a.action, a.variant;

\echo
\echo '    Margin headroom: what a unit sells for (credits x the average price of paid credits)'
\echo '    against the vendor cost, and the vendor price rise each action can absorb.'
SELECT rate_card, action, coalesce(variant, '') AS variant, trim_scale(revenue_per_unit) AS revenue_per_unit_usd,
       trim_scale(vendor_cost_per_unit) AS vendor_cost_usd, trim_scale(ratio) AS ratio,
       trim_scale(headroom) AS headroom
  FROM credit_ledger.margin_headroom ORDER BY headroom NULLS LAST, rate_card, action, variant;
\echo 'What if the providers raise their prices by 20%? The actions that would lose money on'
\echo 'the last 30 days of usage, at the rates in effect (credit_margin_whatif):'
\pset footer on
SELECT rate_card, action, coalesce(variant, '') AS variant, trim_scale(units) AS units,
       trim_scale(revenue) AS revenue_usd, trim_scale(vendor_cost_after) AS vendor_cost_after_usd,
       trim_scale(margin_after) AS margin_after_usd, negative_now
  FROM credit_margin_whatif(vendor_cost_change => 0.2);
\pset footer off

\echo
\echo '--- 12. Final balances, and the integrity check.'
SELECT w AS wallet, trim_scale(credit_balance(w)) AS balance, trim_scale(d.held) AS held,
       trim_scale(d.pool_access) AS pool_access, trim_scale(d.spendable) AS spendable
  FROM unnest(ARRAY['ada', 'zoe', 'acme', 'acme.bob', 'acme.eve']) AS w,
       LATERAL credit_balance_detail(w) AS d;

\echo
\echo 'credit_verify(): one row per broken invariant; no rows means the ledger is consistent.'
\pset footer on
SELECT * FROM credit_verify();
