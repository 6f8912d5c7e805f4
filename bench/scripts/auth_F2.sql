-- F2 floor: conditional debit of wallet :w plus its journal row, one statement, one transaction
\set w random(1, :nw)
\set q random(1, 2000)
WITH u AS (
    UPDATE f2.wallet SET balance = balance - :q * 0.0008
     WHERE id = :w AND balance >= :q * 0.0008
    RETURNING id
)
INSERT INTO f2.journal (wallet_id, amount) SELECT id, -(:q * 0.0008) FROM u;
