-- tests/ops/fixture.sql — a small but realistic ledger, used by tests/ops/dump_restore.sh and
-- tests/upgrade/upgrade.sh (so it only uses the API of 0.1.0). Run with psql -f in a database
-- where credit_ledger is installed; every statement is its own transaction (autocommit), so
-- now() advances between statements. Takes about 3 s (it waits for a grant and a hold to expire).
-- Everything here must end in a ledger where credit_verify() is empty.
\set ON_ERROR_STOP 1

-- ---- assets, rate cards (one price versioned twice), plans -----------------------------------
SELECT credit_asset_define(asset => 'usd', scale => 2, description => 'money top-ups');
SELECT credit_rate_set(action => 'chat', variant => 'opus',  credits => 15, unit => '1k tokens', vendor_cost => 0.075);
SELECT credit_rate_set(action => 'chat', variant => 'haiku', credits => 1,  unit => '1k tokens', vendor_cost => 0.004);
SELECT credit_rate_set(action => 'chat', credits => 2, unit => '1k tokens', vendor_cost => 0.01);   -- any other variant
SELECT credit_rate_set(action => 'image.generate', credits => 40, vendor_cost => 0.2);
SELECT credit_rate_set(action => 'enrich', credits => 0.5, asset => 'usd', vendor_cost => 0.1);
SELECT credit_rate_set(action => 'chat', variant => 'opus', credits => 10, rate_card => 'pro', unit => '1k tokens', vendor_cost => 0.075);

-- ---- wallets: plain, pro plan, overdraft, spend cap, a team pool with members -----------------
SELECT credit_wallet_create(wallet => 'cust_1');
SELECT credit_wallet_create(wallet => 'cust_2', rate_card => 'pro', metadata => '{"plan": "pro"}');
SELECT credit_wallet_create(wallet => 'cust_3', overdraft_limit => 50, low_balance_threshold => 20);
SELECT credit_wallet_create(wallet => 'cust_4', spend_cap => 100);
SELECT credit_wallet_create(wallet => 'cust_5');
SELECT credit_wallet_create(wallet => 'team_a');
SELECT credit_wallet_create(wallet => 'team_a.alice', parent => 'team_a', pool_limit => 150);
SELECT credit_wallet_create(wallet => 'team_a.bob', parent => 'team_a');
SELECT credit_wallet_create(wallet => 'broke');

-- ---- grants of several categories, some expiring ----------------------------------------------
SELECT credit_grant(wallet => 'cust_1', amount => 500, category => 'purchased', unit_price => 0.01, idempotency_key => 'order-1001');
SELECT credit_grant(wallet => 'cust_1', amount => 100, category => 'promotional', expires_at => now() + interval '30 days');
SELECT credit_grant(wallet => 'cust_1', amount => 40, asset => 'usd', unit_price => 1);
SELECT credit_grant(wallet => 'cust_2', amount => 1000, category => 'purchased', unit_price => 0.008, expires_at => now() + interval '365 days');
SELECT credit_grant(wallet => 'cust_2', amount => 60, category => 'included', expires_at => now() + interval '20 days');
SELECT credit_grant(wallet => 'cust_3', amount => 30, category => 'purchased', unit_price => 0.01);
SELECT credit_grant(wallet => 'cust_4', amount => 1000, category => 'purchased', unit_price => 0.01);
SELECT credit_grant(wallet => 'cust_4', amount => 25, category => 'trial', priority => 200, unit_price => 0.002,
                    expires_at => now() + interval '1500 milliseconds');   -- spent last: expires unused (breakage)
SELECT credit_grant(wallet => 'cust_5', amount => 200, category => 'purchased', unit_price => 0.01);
SELECT credit_grant(wallet => 'broke', amount => 5, category => 'promotional');
SELECT * FROM credit_team_allocate(team => 'team_a', amount_per_member => 100, pooled_share => 0.2,
                                   unit_price => 0.01, idempotency_key => 'alloc-2024-01');
SELECT credit_grant(wallet => 'team_a', amount => 300, category => 'purchased', unit_price => 0.009);
SELECT * FROM credit_allowance_set(wallet => 'cust_5', amount => 300, period => '1 month', rollover_cap => 50);

-- ---- spending: approved (every card/variant), declined (every reason), idempotent -------------
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_1', action => 'chat', variant => 'opus', quantity => 2.5, idempotency_key => 'req-1');
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_1', action => 'chat', variant => 'opus', quantity => 2.5, idempotency_key => 'req-1');  -- retry: same result
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_1', action => 'chat', variant => 'haiku', quantity => 12);
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_1', action => 'chat', variant => 'gemini', quantity => 3);
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_1', action => 'enrich', quantity => 7, metadata => '{"source": "crm"}');
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_2', action => 'chat', variant => 'opus', quantity => 4);
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_2', action => 'image.generate', quantity => 2);
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_3', action => 'image.generate');       -- 40 > 30: overdraft 10
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_3', action => 'image.generate');       -- would exceed -50: declined
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_4', action => 'image.generate', quantity => 2);
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_4', action => 'image.generate', quantity => 2);   -- spend cap 100
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'broke', action => 'image.generate');        -- insufficient
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'team_a.alice', action => 'chat', variant => 'opus', quantity => 8);   -- own 80, then pool
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'team_a.alice', action => 'chat', variant => 'opus', quantity => 10);  -- pool limit 150
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'team_a.bob', action => 'image.generate', quantity => 3);
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_5', action => 'chat', quantity => 20);
SELECT credit_wallet_update(wallet => 'cust_5', frozen => true);
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_5', action => 'chat');                 -- frozen
SELECT credit_wallet_update(wallet => 'cust_5', frozen => false);
SELECT credit_grant(wallet => 'cust_3', amount => 100, category => 'purchased', unit_price => 0.01);   -- settles the debt first

-- ---- a new price version: later debits use it, earlier ones keep theirs ----------------------
SELECT credit_rate_set(action => 'chat', variant => 'opus', credits => 12, unit => '1k tokens', vendor_cost => 0.06);
SELECT authorization_id, approved, reason, cost FROM credit_authorize(wallet => 'cust_1', action => 'chat', variant => 'opus', quantity => 1);

-- ---- holds: captured less, captured more, released, expired, left open -----------------------
CREATE TABLE public.ops_holds (name text PRIMARY KEY, id bigint NOT NULL);
INSERT INTO public.ops_holds SELECT 'less', authorization_id FROM credit_hold(wallet => 'cust_2', action => 'chat', variant => 'opus', quantity => 4, ttl => '1 hour');
INSERT INTO public.ops_holds SELECT 'more', authorization_id FROM credit_hold(wallet => 'cust_1', action => 'chat', variant => 'haiku', quantity => 5, ttl => '1 hour');
INSERT INTO public.ops_holds SELECT 'released', authorization_id FROM credit_hold(wallet => 'team_a.bob', action => 'chat', variant => 'opus', quantity => 3);
INSERT INTO public.ops_holds SELECT 'expired', authorization_id FROM credit_hold(wallet => 'cust_5', action => 'chat', quantity => 2, ttl => '1 second');
INSERT INTO public.ops_holds SELECT 'open', authorization_id FROM credit_hold(wallet => 'cust_1', action => 'image.generate', quantity => 1, ttl => '1 day', idempotency_key => 'stream-77');
SELECT status, cost FROM credit_capture(authorization_id => (SELECT id FROM public.ops_holds WHERE name = 'less'), quantity => 2.75);
SELECT status, cost FROM credit_capture(authorization_id => (SELECT id FROM public.ops_holds WHERE name = 'more'), quantity => 8);
SELECT status FROM credit_release(authorization_id => (SELECT id FROM public.ops_holds WHERE name = 'released'));

-- ---- refunds: partial twice, full, and one of a captured hold ---------------------------------
SELECT amount, refunded_total FROM credit_refund(authorization_id => (SELECT id FROM credit_ledger.authorizations WHERE idempotency_key = 'req-1'), amount => 10, reason => 'bad answer');
SELECT amount, refunded_total FROM credit_refund(authorization_id => (SELECT id FROM credit_ledger.authorizations WHERE idempotency_key = 'req-1'), amount => 5, idempotency_key => 'refund-req-1-b');
SELECT amount, refunded_total FROM credit_refund(authorization_id => (SELECT max(id) FROM credit_ledger.authorizations a WHERE a.action = 'image.generate' AND a.status = 'approved' AND a.wallet_id = (SELECT id FROM credit_ledger.wallets WHERE wallet = 'team_a.bob')));
SELECT amount, refunded_total FROM credit_refund(authorization_id => (SELECT id FROM public.ops_holds WHERE name = 'less'), amount => 1);

-- ---- an app table billed by the usage trigger (single row, multi-row, INSERT..SELECT, COPY) ---
CREATE TABLE public.llm_calls (
    id          bigserial PRIMARY KEY,
    customer_id text NOT NULL,
    kind        text NOT NULL,
    model       text,
    tokens      numeric NOT NULL,
    request_id  text UNIQUE,
    auth_id     bigint,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER bill BEFORE INSERT ON public.llm_calls FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer_id', 'action=kind', 'quantity=tokens', 'variant=model',
                       'idempotency_key=request_id', 'authorization_id=auth_id');
INSERT INTO public.llm_calls (customer_id, kind, model, tokens, request_id) VALUES ('cust_1', 'chat', 'haiku', 3, 'r-1');
INSERT INTO public.llm_calls (customer_id, kind, model, tokens, request_id) VALUES
    ('cust_2', 'chat', 'opus', 1.5, 'r-2'), ('cust_2', 'chat', 'haiku', 7, 'r-3'), ('team_a.bob', 'chat', 'opus', 2, 'r-4');
INSERT INTO public.llm_calls (customer_id, kind, model, tokens, request_id)
    SELECT 'cust_5', 'chat', NULL, g, 'r-sel-' || g FROM generate_series(1, 5) g;
COPY public.llm_calls (customer_id, kind, model, tokens, request_id) FROM stdin;
cust_1	chat	haiku	2	r-copy-1
cust_4	chat	opus	1	r-copy-2
\.
-- a table billed with a constant action and an idempotency key but no authorization-id column
CREATE TABLE public.image_jobs (id bigserial PRIMARY KEY, customer text NOT NULL, job_key text NOT NULL, size int);
CREATE TRIGGER bill BEFORE INSERT ON public.image_jobs FOR EACH ROW EXECUTE FUNCTION
  credit_usage_trigger('wallet=customer', 'action_value=image.generate', 'idempotency_key=job_key');
INSERT INTO public.image_jobs (customer, job_key, size) VALUES ('cust_2', 'job-1', 1024), ('team_a.bob', 'job-2', 512);

-- a declined usage row fails the insert (and leaves nothing)
DO $$
BEGIN
    INSERT INTO public.llm_calls (customer_id, kind, model, tokens, request_id) VALUES ('broke', 'chat', 'opus', 100, 'r-broke');
    RAISE EXCEPTION 'the declined usage row was inserted';
EXCEPTION WHEN configuration_limit_exceeded THEN
    NULL;
END $$;

-- ---- lifecycle: let a grant and a hold pass their time, then sweep; a tick ---------------------
SELECT pg_sleep(2);
SELECT grants_expired, credits_expired, holds_expired FROM credit_expire();
SELECT boundaries FROM credit_tick();

CREATE TABLE public.ops_marks (name text PRIMARY KEY, at timestamptz NOT NULL);
INSERT INTO public.ops_marks VALUES ('after_fixture', now());
SELECT authorization_id, approved FROM credit_authorize(wallet => 'cust_1', action => 'chat', variant => 'haiku', quantity => 1);

-- ---- lanes (0.4.0 on; skipped on an older catalog: the upgrade test fills 0.1.0-0.3.0 with this)
SELECT pg_catalog.to_regclass('credit_ledger.lanes') IS NOT NULL AS has_lanes \gset
\if :has_lanes
SELECT credit_wallet_create(wallet => 'team_l');
SELECT credit_wallet_create(wallet => 'team_l.m1', parent => 'team_l');
SELECT credit_grant(wallet => 'team_l', amount => 500, category => 'purchased', unit_price => 0.01);
SELECT credit_wallet_lanes(wallet => 'team_l', lanes => 4);
SELECT credit_grant(wallet => 'team_l', amount => 99.5, category => 'promo', expires_at => now() + interval '30 days');
SELECT approved, cost FROM credit_authorize(wallet => 'team_l.m1', action => 'chat', variant => 'opus', quantity => 2);
SELECT approved, cost FROM credit_authorize(wallet => 'team_l.m1', action => 'chat', variant => 'opus', quantity => 30);  -- more than a lane: the exact path
INSERT INTO public.ops_holds SELECT 'lanes_open', authorization_id FROM credit_hold(wallet => 'team_l.m1', action => 'chat', variant => 'opus', quantity => 1, ttl => '1 day');
-- a capped wallet with lanes (its cap sliced over the lanes since 0.10.0; a counter before):
-- 40 spent and 40 held of a cap of 200
SELECT credit_wallet_create(wallet => 'capped_l', spend_cap => 200);
SELECT credit_grant(wallet => 'capped_l', amount => 1000);
SELECT credit_wallet_lanes(wallet => 'capped_l', lanes => 4);
SELECT approved, cost FROM credit_authorize(wallet => 'capped_l', action => 'image.generate');
INSERT INTO public.ops_holds SELECT 'capped_open', authorization_id FROM credit_hold(wallet => 'capped_l', action => 'image.generate', ttl => '1 day');
\endif
-- ---- a limited member (0.11.0 on: its pool limit sliced over the pool's lanes in
-- member_rooms): 40 drawn and 40 held of a limit of 200
SELECT pg_catalog.to_regclass('credit_ledger.member_rooms') IS NOT NULL AS has_member_rooms \gset
\if :has_member_rooms
SELECT credit_wallet_create(wallet => 'team_l.lim', parent => 'team_l', pool_limit => 200);
SELECT credit_grant(wallet => 'team_l', amount => 400, category => 'purchased', unit_price => 0.01);
SELECT approved, cost FROM credit_authorize(wallet => 'team_l.lim', action => 'image.generate');
INSERT INTO public.ops_holds SELECT 'limited_open', authorization_id FROM credit_hold(wallet => 'team_l.lim', action => 'image.generate', ttl => '1 day');
\endif

-- ---- agent runs (0.5.0 on; skipped on an older catalog)
SELECT pg_catalog.to_regclass('credit_ledger.runs') IS NOT NULL AS has_runs \gset
\if :has_runs
SELECT run_id AS ops_run FROM credit_run_open(wallet => 'cust_2', budget => 40, idempotency_key => 'ops-run') \gset
SELECT run_id AS ops_sub FROM credit_run_open(wallet => 'cust_2', budget => 15, parent_run => :ops_run) \gset
SELECT approved, cost FROM credit_authorize(wallet => 'cust_2', action => 'chat', variant => 'haiku', quantity => 1, run => :ops_sub);
SELECT approved, cost FROM credit_authorize(wallet => 'cust_2', action => 'chat', variant => 'haiku', quantity => 1, run => :ops_run);
SELECT run_id AS ops_closed FROM credit_run_open(wallet => 'team_l.m1', budget => 10) \gset
SELECT status, returned FROM credit_run_close(:ops_closed);
\endif

-- ---- corrections, transfers, closes, who, the event stream (0.6.0 on; skipped on an older catalog)
SELECT pg_catalog.to_regclass('credit_ledger.operations') IS NOT NULL AS has_operations \gset
\if :has_operations
SET credit_ledger.actor = 'ops:fixture';
SELECT credit_wallet_create(wallet => 'corr_a');
SELECT credit_wallet_create(wallet => 'corr_b');
SELECT id AS corr_grant FROM credit_grant(wallet => 'corr_a', amount => 300, unit_price => 0.01) \gset
SELECT credit_grant(wallet => 'corr_a', amount => 50, category => 'promo', expires_at => now() + interval '20 days');
SELECT kind, done FROM credit_transfer('corr_a', 'corr_b', 120, reason => 'ops', idempotency_key => 'ops-transfer');
SELECT kind, done FROM credit_adjust('corr_b', -10, reason => 'ops correction');
SELECT kind, done FROM credit_adjust('corr_b', 7, reason => 'ops goodwill');
INSERT INTO public.ops_holds SELECT 'corr_open', authorization_id FROM credit_hold(wallet => 'corr_a', action => 'chat', variant => 'haiku', quantity => 3, ttl => '1 day');
SELECT kind, done, pending FROM credit_grant_void(:corr_grant, reason => 'ops void');  -- pending: the open hold's credits
SELECT credit_wallet_create(wallet => 'corr_gone');
SELECT credit_grant(wallet => 'corr_gone', amount => 25, unit_price => 0.02);
SELECT asset, done FROM credit_wallet_close('corr_gone', 'transfer', 'corr_b');
SELECT count(*) AS events FROM credit_events(max_rows => 3);
SELECT credit_events_ack('ops', 2);
RESET credit_ledger.actor;
\endif
-- ---- the overage menu: degrade, auto top-up, upgrade tiers (0.7.0 on; skipped on an older catalog)
SELECT pg_catalog.to_regclass('credit_ledger.wallet_overage') IS NOT NULL AS has_overage \gset
\if :has_overage
SELECT credit_rate_set(action => 'summarize', variant => 'large', credits => 9, vendor_cost => 0.05, fallback => 'small');
SELECT credit_rate_set(action => 'summarize', variant => 'small', credits => 2, vendor_cost => 0.01);
SELECT credit_wallet_create(wallet => 'over_a');
SELECT credit_grant(wallet => 'over_a', amount => 20, unit_price => 0.01);
SELECT wallet, auto_topup_amount FROM credit_wallet_overage('over_a', auto_topup_threshold => 10, auto_topup_amount => 40, upgrade_at => '{15}');
SELECT approved, variant FROM credit_authorize('over_a', 'summarize', 1, 'large', degrade => true);
SELECT approved, variant FROM credit_authorize('over_a', 'summarize', 1, 'large', degrade => true);
SELECT count(*) AS topup_events FROM credit_ledger.events WHERE kind = 'auto_topup';
SELECT boundaries FROM credit_tick();
\endif
-- ---- volume tiers and fair use (0.8.0 on; skipped on an older catalog)
SELECT pg_catalog.to_regclass('credit_ledger.fair_use_usage') IS NOT NULL AS has_fair_use \gset
\if :has_fair_use
SELECT (credit_rate_set(action => 'embed.bulk', credits => 3, vendor_cost => 0.002,
                        tiers => '[{"from": 10, "credits": 2}, {"from": 20, "credits": "1.5"}]')).tiers;
SELECT credit_wallet_create(wallet => 'tier_a');
SELECT credit_grant(wallet => 'tier_a', amount => 200, unit_price => 0.01);
SELECT cost FROM credit_authorize('tier_a', 'embed.bulk', 15);  -- 10 x 3 + 5 x 2 = 40
INSERT INTO public.ops_holds SELECT 'tier_open', authorization_id FROM credit_hold(wallet => 'tier_a', action => 'embed.bulk', quantity => 10, ttl => '1 day');
SELECT credit_wallet_create(wallet => 'fair_a');
SELECT fair_use_limit FROM credit_wallet_overage('fair_a', fair_use_limit => 50);
SELECT cost, balance FROM credit_authorize('fair_a', 'chat', 2, 'haiku');
INSERT INTO public.ops_holds SELECT 'fair_open', authorization_id FROM credit_hold(wallet => 'fair_a', action => 'chat', variant => 'haiku', quantity => 3, ttl => '1 day');
\endif
