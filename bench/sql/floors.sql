-- F1 and F2: the floors (psql variable :nw = number of F2 wallets).
--   F1: one hot row, `UPDATE f1.hot SET v = v - 1 WHERE id = 1` — the single-row ceiling.
--   F2: a bare conditional debit of a wallet row plus a journal INSERT, in one statement and one
--       transaction: no rates, no grants, no idempotency, no authorization record.
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS f1 CASCADE;
DROP SCHEMA IF EXISTS f2 CASCADE;
RESET client_min_messages;
CREATE SCHEMA f1;
CREATE TABLE f1.hot (id int PRIMARY KEY, v bigint NOT NULL);
INSERT INTO f1.hot VALUES (1, 0);

CREATE SCHEMA f2;
CREATE TABLE f2.wallet (id int PRIMARY KEY, balance numeric NOT NULL) WITH (fillfactor = 80);
INSERT INTO f2.wallet SELECT i, 1e12 FROM generate_series(1, :nw) i;
CREATE TABLE f2.journal (
    id        bigserial PRIMARY KEY,
    wallet_id int NOT NULL,
    amount    numeric NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);
