-- 0.2.0: every public function documents itself (\df+); pool reports find a member's draws by
-- index; the hot tables drop their foreign keys and enum CHECKs (each cost every debit a trigger
-- query or an expression parse); credit_verify() checks the same rules instead.
ALTER TABLE credit_ledger.journal
    DROP CONSTRAINT journal_wallet_id_fkey, DROP CONSTRAINT journal_grant_id_fkey,
    DROP CONSTRAINT journal_authorization_id_fkey, DROP CONSTRAINT journal_member_id_fkey,
    DROP CONSTRAINT journal_kind_check;
ALTER TABLE credit_ledger.authorizations
    DROP CONSTRAINT authorizations_wallet_id_fkey, DROP CONSTRAINT authorizations_rate_id_fkey,
    DROP CONSTRAINT authorizations_kind_check, DROP CONSTRAINT authorizations_status_check,
    DROP CONSTRAINT authorizations_refunded_check;
CREATE INDEX journal_member ON credit_ledger.journal (member_id, wallet_id) WHERE member_id IS NOT NULL;
COMMENT ON FUNCTION credit_asset_define(text, integer, text) IS 'define an asset (unit of value) with a fixed decimal scale';
COMMENT ON FUNCTION credit_wallet_create(text, text, text, numeric, numeric, jsonb, numeric, numeric, interval, timestamptz) IS 'create a wallet (idempotent on the wallet key); parent makes it a team-pool member';
COMMENT ON FUNCTION credit_wallet_update(text, text, numeric, numeric, numeric, numeric, boolean, jsonb, text, interval, timestamptz, text[]) IS 'change wallet settings; NULL leaves a setting unchanged, clear resets named settings';
COMMENT ON FUNCTION credit_rate_set(text, numeric, text, text, text, text, numeric, timestamptz) IS 'set the credits per unit of an action (and variant) on a rate card from effective_from: a new version';
COMMENT ON FUNCTION credit_rate_card_load(jsonb) IS 'load a whole rate card document; one new version per changed entry; all or nothing';
COMMENT ON FUNCTION credit_rate_card_export(text) IS 'the current version of every entry of a rate card as one JSON document';
COMMENT ON FUNCTION credit_grant(text, numeric, text, text, integer, timestamptz, timestamptz, numeric, text, jsonb) IS 'grant a lot of credits to a wallet; settles overdraft debt first; idempotent with a key';
COMMENT ON FUNCTION credit_quote(text, text, numeric, text) IS 'price an action for a wallet: cost, spendable, whether it would be approved; no side effects';
COMMENT ON FUNCTION credit_authorize(text, text, numeric, text, text, jsonb) IS 'atomically price, check limits and debit an action before the work runs; a decline is a row';
COMMENT ON FUNCTION credit_hold(text, text, numeric, text, text, jsonb, interval) IS 'reserve credits for work of unknown final size (streaming); capture or release later';
COMMENT ON FUNCTION credit_capture(bigint, numeric, text, jsonb) IS 'spend a hold: the actual quantity (NULL = as held); the rest returns to the grants it came from';
COMMENT ON FUNCTION credit_release(bigint, text, jsonb) IS 'give a hold back to the grants it came from';
COMMENT ON FUNCTION credit_refund(bigint, numeric, text, text, jsonb) IS 'refund credits of a debit or captured hold to the grants that paid, in reverse consumption order';
COMMENT ON FUNCTION credit_expire(timestamptz, bigint) IS 'journal expiry of grants past expires_at (breakage) and finalize holds past their TTL; bounded, idempotent';
COMMENT ON FUNCTION credit_tick(timestamptz) IS 'run all due lifecycle work: missed allowance boundaries in order with rollover, then expiry';
COMMENT ON FUNCTION credit_allowance_set(text, numeric, interval, timestamptz, text, numeric, numeric[]) IS 'give a wallet a recurring included allowance with a rollover policy (none, capped, declining)';
