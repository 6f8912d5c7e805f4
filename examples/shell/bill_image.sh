#!/usr/bin/env bash
# credit_ledger from the shell (psql): pay for the work in the script's own transaction.
#
#     ./bill_image.sh        # connects with PGHOST / PGPORT / PGUSER / PGDATABASE
#
# The pattern: in one transaction, credit_authorize() first; only when it is approved does the
# script do the work and INSERT its own row. A decline writes no app row (and debits nothing);
# with ON_ERROR_STOP an app error after the authorization ends psql with exit status 3 and the
# server rolls the open transaction back, debit included.
# Every outcome is checked; exit status 1 on a failure.
set -uo pipefail

# generate_image <customer> <prompt> <request id>: prints the new images row id, or
# "declined <reason>"; exit status 3 when the app's part fails.
generate_image() {
  psql -X -q -At -v ON_ERROR_STOP=1 -v customer="$1" -v prompt="$2" -v request_id="$3" <<'SQL'
BEGIN;
SELECT approved, authorization_id AS auth_id, coalesce(reason, '') AS reason
  FROM credit_authorize(wallet => :'customer', action => 'image.generate', idempotency_key => :'request_id') \gset
\if :approved
  \set url `echo "https://cdn.example.com/$(date +%s%N).png"`
  INSERT INTO images (customer, prompt, url, authorization_id)
  VALUES (:'customer', :'prompt', :'url', :auth_id) RETURNING id;
\else
  \echo declined :reason
\endif
COMMIT;
SQL
}

# ------------------------------------------------------------------ checks

customer="cust_sh_$$_${RANDOM}"
fails=0
# sql: run SQL from stdin with :'customer' set; prints unaligned results
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -v customer="$customer"; }
check() {  # <got> <want> <what>
  if [ "$1" = "$2" ]; then
    echo "  ok   $3"
  else
    echo "  FAIL $3 (got '$1', want '$2')"
    fails=$((fails + 1))
  fi
}
state() { sql <<<"SELECT credit_balance(:'customer')::numeric(20,1) || ' credits, ' || (SELECT count(*) FROM images WHERE customer = :'customer') || ' rows'"; }

sql <<'SQL' >/dev/null || { echo "shell: set-up failed"; exit 1; }
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS images (
    id bigserial PRIMARY KEY, customer text NOT NULL,
    prompt text NOT NULL CHECK (prompt <> ''), url text NOT NULL,
    authorization_id bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
SELECT credit_rate_set(action => 'image.generate', credits => 4, unit => 'image');
SELECT credit_wallet_create(wallet => :'customer');
SELECT credit_grant(wallet => :'customer', amount => 10, category => 'promotional');
SQL
echo "shell: wallet $customer has $(state | cut -d, -f1); an image costs 4"

out="$(generate_image "$customer" "a red fox in the snow" req-1)"; rc=$?
check "$rc:$(grep -c '^[0-9][0-9]*$' <<<"$out")" "0:1" "image 1 approved, images row $out"
check "$(state)" "6.0 credits, 1 rows" "balance 10 -> 6, one images row"

out="$(generate_image "$customer" "" req-2 2>&1)"; rc=$?
check "$rc" "3" "app error after authorizing: psql exit 3: $(grep -o 'violates check constraint "[a-z_]*"' <<<"$out")"
check "$(state)" "6.0 credits, 1 rows" "ROLLBACK: balance still 6, still one row"

generate_image "$customer" "a lighthouse at dusk" req-3 >/dev/null
check "$(state)" "2.0 credits, 2 rows" "image 2 approved: balance 2, two rows"

out="$(generate_image "$customer" "a third picture" req-4)"; rc=$?
check "$rc:$out" "0:declined insufficient_credits" "image 3 declined: ${out#declined }"
check "$(state)" "2.0 credits, 2 rows" "declined: nothing debited, no app row"

check "$(sql <<<"SELECT count(*) FROM credit_verify()")" "0" "credit_verify() is empty"

if [ "$fails" -gt 0 ]; then
  echo "shell: $fails check(s) FAILED"
  exit 1
fi
echo "shell: all checks passed"
