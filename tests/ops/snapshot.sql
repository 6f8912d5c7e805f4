-- tests/ops/snapshot.sql — a normalized text picture of a credit_ledger database, one fact per
-- line, for comparing two databases with diff (dump/restore, upgrade). Run with psql -At under
-- PGTZ=UTC. Every row of every ledger table, in key order; the sequences; every wallet's
-- balance per asset; every report; credit_verify(). Nothing here writes.
\set ON_ERROR_STOP 1
SET TIME ZONE 'UTC';
SET extra_float_digits = 3;

SELECT 'journal.summary|' || count(*) || '|' || coalesce(sum(amount), 0) || '|' || coalesce(sum(held), 0)
       || '|' || md5(coalesce(string_agg(ROW(j.id, j.at, j.wallet_id, j.grant_id, j.asset, j.kind, j.amount, j.held, j.authorization_id, j.member_id, j.note)::text, E'\n' ORDER BY j.id), ''))
  FROM credit_ledger.journal j;
SELECT 'journal.by_kind|' || kind || '|' || asset || '|' || count(*) || '|' || sum(amount) || '|' || sum(held)
  FROM credit_ledger.journal GROUP BY kind, asset ORDER BY kind, asset;
SELECT 'authorizations.summary|' || count(*) || '|' || md5(coalesce(string_agg(ROW(a.id, a.wallet_id, a.kind, a.status, a.reason, a.action, a.variant, a.quantity, a.rate_id, a.asset, a.cost, a.vendor_cost, a.pool_amount, a.overdraft_amount, a.captured, a.captured_quantity, a.refunded, a.balance_after, a.idempotency_key, a.request_hash, a.close_key, a.close_hash, a.metadata, a.created_at, a.expires_at, a.closed_at)::text, E'\n' ORDER BY a.id), ''))
  FROM credit_ledger.authorizations a;

-- the built-in rows (asset credits, rate card default) are made by CREATE EXTENSION, not
-- restored from a dump: their created_at is the install time and is left out
SELECT 'assets|' || asset || '|' || scale || '|' || coalesce(description, '<null>') || '|'
       || CASE WHEN asset = 'credits' THEN 'built-in' ELSE created_at::text END
  FROM credit_ledger.assets ORDER BY asset;
SELECT 'rate_cards|' || rate_card || '|' || coalesce(description, '<null>') || '|'
       || CASE WHEN rate_card = 'default' THEN 'built-in' ELSE created_at::text END
  FROM credit_ledger.rate_cards ORDER BY rate_card;
-- wallets and grants: the columns of 0.3.0 on one line; the lane columns of 0.4.0 on lines of
-- their own, only where they differ from their defaults (an updated catalog that has no lanes
-- yet looks like the old one)
SELECT 'wallets|' || ROW(t.id, t.wallet, t.parent_id, t.rate_card, t.overdraft_limit, t.low_balance_threshold,
                         t.spend_cap, t.pool_limit, t.period, t.period_anchor, t.frozen, t.tracked,
                         t.metadata, t.created_at, t.updated_at)::text
  FROM credit_ledger.wallets t ORDER BY id;
SELECT pg_catalog.to_regclass('credit_ledger.lanes') IS NOT NULL AS has_lanes \gset
\if :has_lanes
SELECT 'wallets.lanes|' || t.id || '|' || t.lanes FROM credit_ledger.wallets t WHERE t.lanes <> 1 ORDER BY id;
SELECT 'grants.lane|' || t.id || '|' || t.lane || '|' || t.home_id FROM credit_ledger.grants t
 WHERE t.lane IS NOT NULL OR t.home_id IS NOT NULL ORDER BY id;
SELECT 'lanes|' || ROW(t.wallet_id, t.asset, t.lane, t.free)::text
  FROM credit_ledger.lanes t ORDER BY wallet_id, asset, lane;
\endif
-- the spend cap sliced over the lanes (since 0.10.0): lines of their own where set
SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute
                WHERE attrelid = pg_catalog.to_regclass('credit_ledger.lanes')
                  AND attname = 'cap_room' AND NOT attisdropped) AS has_lane_caps \gset
\if :has_lane_caps
SELECT 'lanes.cap|' || ROW(t.wallet_id, t.asset, t.lane, t.cap_period, t.cap_room, t.cap_spent)::text
  FROM credit_ledger.lanes t
 WHERE t.cap_period IS NOT NULL OR t.cap_room <> 0 OR t.cap_spent <> 0
 ORDER BY wallet_id, asset, lane;
\endif
-- a limited member's rooms (since 0.11.0)
SELECT pg_catalog.to_regclass('credit_ledger.member_rooms') IS NOT NULL AS has_member_rooms \gset
\if :has_member_rooms
SELECT 'member_rooms|' || (to_jsonb(t) - 'tenant')::text FROM credit_ledger.member_rooms t ORDER BY wallet_id, asset, lane;
\endif
-- agent runs (since 0.5.0): the run columns where set, and every run
SELECT pg_catalog.to_regclass('credit_ledger.runs') IS NOT NULL AS has_runs \gset
\if :has_runs
SELECT 'wallets.run_of|' || t.id || '|' || t.run_of FROM credit_ledger.wallets t WHERE t.run_of IS NOT NULL ORDER BY id;
SELECT 'grants.source|' || t.id || '|' || t.source_id FROM credit_ledger.grants t WHERE t.source_id IS NOT NULL ORDER BY id;
SELECT 'runs|' || (to_jsonb(t) - 'tenant')::text FROM credit_ledger.runs t ORDER BY id;
\endif
SELECT 'wallet_assets|' || (to_jsonb(t) - 'tenant')::text FROM credit_ledger.wallet_assets t ORDER BY wallet_id, asset;
-- rates: the columns of 0.6.0 (fallback, since 0.7.0, on a line of its own where set)
SELECT 'rates|' || ROW(t.id, t.rate_card, t.action, t.variant, t.credits, t.asset, t.unit, t.vendor_cost, t.effective_from, t.created_at)::text
  FROM credit_ledger.rates t ORDER BY id;
SELECT 'rates.fallback|' || t.id || '|' || (to_jsonb(t) ->> 'fallback') FROM credit_ledger.rates t WHERE to_jsonb(t) ->> 'fallback' IS NOT NULL ORDER BY id;
SELECT 'grants|' || ROW(t.id, t.wallet_id, t.asset, t.category, t.priority, t.amount, t.remaining, t.held,
                        t.live, t.effective_at, t.expires_at, t.unit_price, t.idempotency_key,
                        t.request_hash, t.metadata, t.source, t.created_at)::text
  FROM credit_ledger.grants t ORDER BY id;
-- authorizations and journal: the columns of 0.5.0 on one line (who wrote a row, since
-- 0.6.0, on lines of their own below)
SELECT 'authorizations|' || ROW(a.id, a.wallet_id, a.kind, a.status, a.reason, a.action, a.variant, a.quantity, a.rate_id, a.asset, a.cost, a.vendor_cost, a.pool_amount, a.overdraft_amount, a.captured, a.captured_quantity, a.refunded, a.balance_after, a.idempotency_key, a.request_hash, a.close_key, a.close_hash, a.metadata, a.created_at, a.expires_at, a.closed_at)::text FROM credit_ledger.authorizations a ORDER BY id;
SELECT 'journal|' || ROW(j.id, j.at, j.wallet_id, j.grant_id, j.asset, j.kind, j.amount, j.held, j.authorization_id, j.member_id, j.note)::text FROM credit_ledger.journal j ORDER BY id;
SELECT 'refunds|' || (to_jsonb(t) - 'tenant')::text FROM credit_ledger.refunds t ORDER BY id;
SELECT 'allowances|' || (to_jsonb(t) - 'tenant')::text FROM credit_ledger.allowances t ORDER BY id;
-- events (since 0.3.0)
SELECT pg_catalog.to_regclass('credit_ledger.events') IS NOT NULL AS has_events \gset
\if :has_events
SELECT 'events|' || ROW(t.id, t.at, t.kind, t.wallet_id, t.asset, t.payload)::text FROM credit_ledger.events t ORDER BY id;
\endif
-- corrections, transfers, closes, who, event stream (since 0.6.0): the new columns where set
-- (an updated catalog looks like the old one until they are used), and the new tables
SELECT pg_catalog.to_regclass('credit_ledger.operations') IS NOT NULL AS has_operations \gset
\if :has_operations
SELECT 'journal.who|' || j.id || '|' || ROW(j.operation_id, j.actor, j.db_user, j.db_session_user)::text
  FROM credit_ledger.journal j WHERE num_nonnulls(j.operation_id, j.actor, j.db_user, j.db_session_user) > 0 ORDER BY id;
SELECT 'authorizations.who|' || a.id || '|' || ROW(a.actor, a.db_user, a.db_session_user)::text
  FROM credit_ledger.authorizations a WHERE num_nonnulls(a.actor, a.db_user, a.db_session_user) > 0 ORDER BY id;
SELECT 'wallets.closed|' || t.id || '|' || t.closed_at FROM credit_ledger.wallets t WHERE t.closed_at IS NOT NULL ORDER BY id;
SELECT 'grants.transfer_of|' || t.id || '|' || t.transfer_of FROM credit_ledger.grants t WHERE t.transfer_of IS NOT NULL ORDER BY id;
SELECT 'events.seq|' || t.id || '|' || t.seq FROM credit_ledger.events t WHERE t.seq IS DISTINCT FROM t.id ORDER BY id;
SELECT 'operations|' || (to_jsonb(t) - 'tenant')::text FROM credit_ledger.operations t ORDER BY id;
SELECT 'event_consumers|' || t::text FROM credit_ledger.event_consumers t ORDER BY consumer;
\endif

-- sequences of the extension's schema (owned by its tables)
SELECT format('SELECT %L || last_value || ''|'' || is_called FROM %s',
              'sequence|' || c.relname || '|', c.oid::regclass)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'credit_ledger' AND c.relkind = 'S'
 ORDER BY c.relname
\gexec

-- balances of every wallet in every asset it has grants of, now (and detail)
SELECT 'balance|' || w.wallet || '|' || s.asset || '|' || credit_balance(w.wallet, s.asset)
  FROM credit_ledger.wallets w
  JOIN (SELECT DISTINCT wallet_id, asset FROM credit_ledger.grants) s ON s.wallet_id = w.id
 ORDER BY w.wallet, s.asset;
SELECT 'balance_detail|' || w.wallet || '|' || s.asset || '|' || d::text
  FROM credit_ledger.wallets w
  JOIN (SELECT DISTINCT wallet_id, asset FROM credit_ledger.grants) s ON s.wallet_id = w.id,
       LATERAL credit_balance_detail(w.wallet, s.asset) d
 ORDER BY w.wallet, s.asset;

-- reports
SELECT 'report.wallet_balances|' || t::text FROM credit_ledger.wallet_balances t ORDER BY t::text;
-- grant_status: its columns of 0.5.0 (voided and transferred_out, since 0.6.0, where not 0)
SELECT 'report.grant_status|' || ROW(t.grant_id, t.wallet, t.asset, t.category, t.priority, t.amount, t.remaining,
                                     t.held, t.spent, t.expired, t.rolled_over, t.unit_price, t.effective_at,
                                     t.expires_at, t.status, t.expiring_soon)::text
  FROM credit_ledger.grant_status t ORDER BY 1;
SELECT pg_catalog.to_regclass('credit_ledger.operations') IS NOT NULL AS has_operations \gset
\if :has_operations
SELECT 'report.grant_status.moved|' || t.grant_id || '|' || t.voided || '|' || t.transferred_out
  FROM credit_ledger.grant_status t WHERE t.voided <> 0 OR t.transferred_out <> 0 ORDER BY t.grant_id;
SELECT 'report.reversals|' || t::text FROM credit_ledger.reversals t ORDER BY t::text;
\endif
-- usage_daily: its columns of 0.6.0 (degraded_calls, since 0.7.0, where not 0)
SELECT 'report.usage_daily|' || ROW(t.day, t.wallet, t.action, t.variant, t.asset, t.quantity, t.credits, t.vendor_cost, t.calls, t.refunded)::text
  FROM credit_ledger.usage_daily t ORDER BY 1;
SELECT 'authorizations.degraded|' || a.id || '|' || coalesce(to_jsonb(a) ->> 'requested_variant', '') FROM credit_ledger.authorizations a WHERE to_jsonb(a) ->> 'degraded' = 'true' ORDER BY id;
SELECT pg_catalog.to_regclass('credit_ledger.wallet_overage') IS NOT NULL AS snap_has_overage \gset
\if :snap_has_overage
-- its columns of 0.7.0 (fair_use_limit, since 0.8.0, on a line of its own where set)
SELECT 'wallet_overage|' || ROW(t.wallet_id, t.asset, t.auto_topup_amount, t.topups, t.upgrade_at, t.updated_at)::text
  FROM credit_ledger.wallet_overage t ORDER BY wallet_id, asset;
SELECT 'wallet_overage.fair_use|' || t.wallet_id || '|' || t.asset || '|' || (to_jsonb(t) ->> 'fair_use_limit')
  FROM credit_ledger.wallet_overage t WHERE to_jsonb(t) ->> 'fair_use_limit' IS NOT NULL ORDER BY wallet_id, asset;
\endif
-- volume tiers and fair use (0.8.0 on)
SELECT 'rates.tiers|' || t.id || '|' || (to_jsonb(t) ->> 'tiers') FROM credit_ledger.rates t WHERE to_jsonb(t) -> 'tiers' <> 'null' ORDER BY id;
SELECT 'authorizations.fair_use|' || a.id FROM credit_ledger.authorizations a WHERE to_jsonb(a) ->> 'fair_use' = 'true' ORDER BY id;
SELECT pg_catalog.to_regclass('credit_ledger.fair_use_usage') IS NOT NULL AS snap_has_fair_use \gset
\if :snap_has_fair_use
SELECT 'tier_usage|' || (to_jsonb(t) - 'tenant')::text FROM credit_ledger.tier_usage t ORDER BY 1;
SELECT 'fair_use_usage|' || (to_jsonb(t) - 'tenant')::text FROM credit_ledger.fair_use_usage t ORDER BY 1;
\endif
SELECT 'report.margin_by_action|' || t::text FROM credit_ledger.margin_by_action t ORDER BY t::text;
SELECT 'report.liability|' || t::text FROM credit_ledger.liability t ORDER BY t::text;
SELECT 'report.breakage|' || t::text FROM credit_ledger.breakage t ORDER BY t::text;
SELECT 'report.declines_daily|' || t::text FROM credit_ledger.declines_daily t ORDER BY t::text;
SELECT 'report.pool_usage|' || t::text FROM credit_ledger.pool_usage t ORDER BY t::text;

-- integrity
-- tenants (0.12.0 on): how many rows of each table each tenant has, and each wallet's tenant
-- (lines of their own, none on an older catalog: the rows above leave the column out)
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = 'credit_ledger.wallets'::regclass
                AND attname = 'tenant' AND NOT attisdropped) AS has_tenants \gset
\if :has_tenants
SELECT 'tenants.wallets|' || t.wallet || '|' || (to_jsonb(t) ->> 'tenant')
  FROM credit_ledger.wallets t WHERE to_jsonb(t) ? 'tenant' ORDER BY t.id;
SELECT 'tenants.rows|' || x.tbl || '|' || x.tenant || '|' || count(*)
  FROM (SELECT 'grants' AS tbl, to_jsonb(t) ->> 'tenant' AS tenant FROM credit_ledger.grants t
        UNION ALL SELECT 'journal', to_jsonb(t) ->> 'tenant' FROM credit_ledger.journal t
        UNION ALL SELECT 'authorizations', to_jsonb(t) ->> 'tenant' FROM credit_ledger.authorizations t
        UNION ALL SELECT 'wallet_assets', to_jsonb(t) ->> 'tenant' FROM credit_ledger.wallet_assets t
        UNION ALL SELECT 'lanes', to_jsonb(t) ->> 'tenant' FROM credit_ledger.lanes t
        UNION ALL SELECT 'member_rooms', to_jsonb(t) ->> 'tenant' FROM credit_ledger.member_rooms t
        UNION ALL SELECT 'refunds', to_jsonb(t) ->> 'tenant' FROM credit_ledger.refunds t
        UNION ALL SELECT 'runs', to_jsonb(t) ->> 'tenant' FROM credit_ledger.runs t
        UNION ALL SELECT 'allowances', to_jsonb(t) ->> 'tenant' FROM credit_ledger.allowances t
        UNION ALL SELECT 'events', to_jsonb(t) ->> 'tenant' FROM credit_ledger.events t
        UNION ALL SELECT 'operations', to_jsonb(t) ->> 'tenant' FROM credit_ledger.operations t
        UNION ALL SELECT 'wallet_overage', to_jsonb(t) ->> 'tenant' FROM credit_ledger.wallet_overage t
        UNION ALL SELECT 'tier_usage', to_jsonb(t) ->> 'tenant' FROM credit_ledger.tier_usage t
        UNION ALL SELECT 'fair_use_usage', to_jsonb(t) ->> 'tenant' FROM credit_ledger.fair_use_usage t) x
 WHERE x.tenant IS NOT NULL
 GROUP BY x.tbl, x.tenant ORDER BY 1;
\endif
SELECT 'verify|' || t::text FROM credit_verify() t ORDER BY t::text;
SELECT 'verify.rows|' || count(*) FROM credit_verify();
