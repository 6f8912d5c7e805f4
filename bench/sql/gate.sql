-- Correctness gate, run after the benchmark on every database (psql variables :p1, :ext, :f2 = 0/1).
-- Every row is one invariant and its number of violations; the script fails if any is non-zero.
--   * no grant remaining below 0 or above its amount, held within [0, remaining]
--   * conservation per grant: remaining = sum of its journal amounts, held = sum of journal held
--   * every authorization's journal rows match it: approved debit = -cost, declined = no rows,
--     open hold = +cost held, captured = -captured spent and nothing held, released/expired = 0
--     (so journal rows exist for exactly the approved calls)
--   * no duplicate from retried keys: one authorization per (wallet, idempotency key)
--   * the extension: credit_verify() returns no rows
--   * F2: what the wallets lost equals what the journal recorded, no negative balance
CREATE TEMP TABLE gate (peer text, invariant text, violations bigint);

\if :p1
INSERT INTO gate SELECT 'P1', 'grant amounts in range', count(*) FROM p1.grants
 WHERE remaining < 0 OR remaining > amount OR held < 0 OR held > remaining;
INSERT INTO gate SELECT 'P1', 'grant = sum of its journal', count(*)
  FROM p1.grants g LEFT JOIN (SELECT grant_id, sum(amount) a, sum(held) h FROM p1.journal GROUP BY grant_id) j
    ON j.grant_id = g.id
 WHERE j.a IS DISTINCT FROM g.remaining OR j.h IS DISTINCT FROM g.held;
INSERT INTO gate SELECT 'P1', 'authorization = its journal rows', count(*)
  FROM p1.authorizations au
  FULL JOIN (SELECT authorization_id, sum(amount) a, sum(held) h FROM p1.journal
              WHERE authorization_id IS NOT NULL GROUP BY 1) j ON j.authorization_id = au.id
 WHERE au.id IS NULL OR NOT coalesce(CASE au.status
        WHEN 'approved' THEN coalesce(j.a, 0) = -au.cost AND coalesce(j.h, 0) = 0
        WHEN 'declined' THEN j.authorization_id IS NULL
        WHEN 'held'     THEN coalesce(j.a, 0) = 0 AND coalesce(j.h, 0) = au.cost
        WHEN 'captured' THEN coalesce(j.a, 0) = -au.captured AND coalesce(j.h, 0) = 0
        END, false);
INSERT INTO gate SELECT 'P1', 'one authorization per (wallet, key)',
       count(*) - count(DISTINCT (wallet_id, idempotency_key))
  FROM p1.authorizations WHERE idempotency_key IS NOT NULL;
\endif

\if :ext
INSERT INTO gate SELECT 'EXT', 'credit_verify() rows', count(*) FROM credit_verify();
INSERT INTO gate SELECT 'EXT', 'grant amounts in range', count(*) FROM credit_ledger.grants
 WHERE remaining < 0 OR remaining > amount OR held < 0 OR held > remaining;
INSERT INTO gate SELECT 'EXT', 'grant = sum of its journal', count(*)
  FROM credit_ledger.grants g
  LEFT JOIN (SELECT grant_id, sum(amount) a, sum(held) h FROM credit_ledger.journal
              WHERE grant_id IS NOT NULL GROUP BY grant_id) j ON j.grant_id = g.id
 WHERE j.a IS DISTINCT FROM g.remaining OR j.h IS DISTINCT FROM g.held;
INSERT INTO gate SELECT 'EXT', 'authorization = its journal rows', count(*)
  FROM credit_ledger.authorizations au
  FULL JOIN (SELECT authorization_id, sum(amount) a, sum(held) h FROM credit_ledger.journal
              WHERE authorization_id IS NOT NULL AND kind <> 'refund' GROUP BY 1) j
    ON j.authorization_id = au.id
 WHERE au.id IS NULL OR NOT coalesce(CASE au.status
        WHEN 'approved' THEN coalesce(j.a, 0) = -au.cost AND coalesce(j.h, 0) = 0
        WHEN 'declined' THEN j.authorization_id IS NULL
        WHEN 'held'     THEN coalesce(j.a, 0) = 0 AND coalesce(j.h, 0) = au.cost
        WHEN 'captured' THEN coalesce(j.a, 0) = -au.captured AND coalesce(j.h, 0) = 0
        WHEN 'released' THEN coalesce(j.a, 0) = 0 AND coalesce(j.h, 0) = 0
        WHEN 'expired'  THEN coalesce(j.a, 0) = 0 AND coalesce(j.h, 0) = 0
        END, false);
INSERT INTO gate SELECT 'EXT', 'one authorization per (wallet, key)',
       count(*) - count(DISTINCT (wallet_id, idempotency_key))
  FROM credit_ledger.authorizations WHERE idempotency_key IS NOT NULL;
\endif

\if :f2
INSERT INTO gate SELECT 'F2', 'wallet loss = journal', count(*)
  FROM (SELECT (SELECT sum(1e12 - balance) FROM f2.wallet) AS lost,
               (SELECT coalesce(-sum(amount), 0) FROM f2.journal) AS journaled) x
 WHERE lost <> journaled;
INSERT INTO gate SELECT 'F2', 'no negative balance', count(*) FROM f2.wallet WHERE balance < 0;
\endif

\pset footer off
SELECT peer, invariant, violations FROM gate ORDER BY peer, invariant;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM gate WHERE violations <> 0) THEN
        RAISE EXCEPTION 'correctness gate failed';
    END IF;
END $$;
