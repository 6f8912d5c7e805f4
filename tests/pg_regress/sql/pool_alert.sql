-- The low-balance alert of a team wallet: a member's draw from the pool that takes the team
-- below its threshold sends the team's alert (once per crossing, like the team's own debits).
-- psql prints the sending backend's PID with a notification; sed masks it.
CREATE EXTENSION credit_ledger;
SELECT action FROM credit_rate_set('call', 1);
SELECT wallet, low_balance_threshold FROM credit_wallet_create('team', low_balance_threshold => 50);
SELECT wallet FROM credit_wallet_create('team.m', parent => 'team');
SELECT amount FROM credit_grant('team', 100);
LISTEN credit_ledger;
\o | sed -e 's/PID [0-9][0-9]*/PID <pid>/'
-- the member draws 60 from the pool: team 100 -> 40 < 50: one alert for "team", balance 40
SELECT 'member draws 60' AS step, approved FROM credit_authorize('team.m', 'call', 60);
-- still below: no second alert, neither for another member draw (40 -> 35) ...
SELECT 'member draws 5' AS step, approved FROM credit_authorize('team.m', 'call', 5);
-- ... nor for the team's own debit (35 -> 34)
SELECT 'team debits 1' AS step, approved, balance FROM credit_authorize('team', 'call', 1);
-- a grant re-arms it (34 + 100 = 134 >= 50 on the next debit), a member draw crosses again
SELECT 'team granted 100' AS step, amount FROM credit_grant('team', 100);
SELECT 'member draws 10' AS step, approved FROM credit_authorize('team.m', 'call', 10);
SELECT 'member draws 80' AS step, approved FROM credit_authorize('team.m', 'call', 80);
\o
-- the NOTIFY carries only the event's id (any role can LISTEN: issue 16); the event itself is
-- read with credit_event, which only granted roles may call. An unknown id (a NOTIFY anyone
-- can send) has no event.
SELECT event_id, kind, wallet, asset, payload FROM credit_event(1);
SELECT event_id, kind, wallet, asset, payload FROM credit_event(2);
SELECT count(*) AS forged FROM credit_event(999);
SELECT count(*) AS violations FROM credit_verify();
