"""credit_ledger from Python (psycopg 3): an agent run with a budget, parallel calls, a sub-agent.

    python agent_run.py         # connects with PGHOST / PGPORT / PGUSER / PGDATABASE

One user request starts an agent run: credit_run_open() reserves a budget (200 of the wallet's
500 credits) that every model call of the run spends with run => id, locking only the run and
never the wallet. Eight workers call the model in parallel, each on its own connection, each call
authorized inside the app's own transaction (BEGIN; credit_authorize; work; INSERT; COMMIT). A
sub-agent gets a sub-run of 50 credits carved out of the run and calls until it is declined with
run_budget_exhausted (a row, not an exception). A call whose work fails rolls back, and its
credits go back to the run. Closing the run closes the sub-run and gives every unspent credit
back to the wallet. Every outcome is checked; exit status 1 on a failure.
"""

import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg.rows import namedtuple_row

GRANT, BUDGET, SUB_BUDGET = 500, 200, 50
WORKERS, CALLS_PER_WORKER, WORKER_QTY = 8, 5, 3  # 8 x 5 calls x 3 credits = 120 credits
SUB_QTY = 7  # the sub-agent's calls: 7 x 7 = 49 credits, the 8th cannot be paid from 1 left


def connect():
    return psycopg.connect("", autocommit=True, row_factory=namedtuple_row)


def call_model(prompt):
    """Stands in for the model: the expensive call the credits pay for."""
    time.sleep(0.01)
    return f"answer to {prompt!r}"


def model_call(conn, wallet, run_id, agent, prompt, quantity, key, work=call_model):
    """One call of the run: pay for it in the same transaction as the app's row.

    The run's row stays locked from credit_authorize to COMMIT, so the calls of one run take
    turns: keep the work in the transaction short (for a slow, streaming model call, hold in a
    short transaction of its own and capture afterwards, as bill_image.py does, or give each
    worker a sub-run of its own)."""
    with conn.transaction():  # COMMIT at the end, ROLLBACK on any exception
        auth = conn.execute("SELECT * FROM credit_authorize(wallet => %s, action => 'llm.call',"
                            " quantity => %s, idempotency_key => %s, run => %s)",
                            (wallet, quantity, key, run_id)).fetchone()
        if auth.approved:  # declined: nothing spent, no model call, no app row
            answer = work(prompt)
            conn.execute("INSERT INTO agent_calls (run_id, agent, prompt, answer, cost,"
                         " authorization_id) VALUES (%s, %s, %s, %s, %s, %s)",
                         (run_id, agent, prompt, answer, auth.cost, auth.authorization_id))
        return auth


def worker(wallet, run_id, n):
    """One of the agent's parallel workers: a few calls, each on this worker's own connection."""
    with connect() as conn:
        return [model_call(conn, wallet, run_id, f"worker-{n}", f"step {i}", WORKER_QTY, f"w{n}-{i}")
                for i in range(CALLS_PER_WORKER)]


def sub_agent(wallet, parent_run, request_id):
    """A sub-agent with a budget of its own, carved out of the parent run: calls until declined."""
    with connect() as conn:
        sub = conn.execute("SELECT * FROM credit_run_open(wallet => %s, budget => %s, parent_run => %s,"
                           " idempotency_key => %s)",
                           (wallet, SUB_BUDGET, parent_run, f"{request_id}/sub")).fetchone()
        calls = []
        if sub.approved:
            while len(calls) < 100:  # (a guard; the budget ends it long before)
                auth = model_call(conn, wallet, sub.run_id, "sub-agent", f"sub step {len(calls)}",
                                  SUB_QTY, f"sub-{len(calls)}")
                calls.append(auth)
                if not auth.approved:
                    break
        return sub, calls


# ------------------------------------------------------------------ checks

failures = []


def check(ok, what):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def balance(conn, wallet):
    return conn.execute("SELECT credit_balance(%s)", (wallet,)).fetchone()[0]


def run_info(conn, run_id):
    return conn.execute("SELECT * FROM credit_run(%s)", (run_id,)).fetchone()


def app_rows(conn, run_id):
    return conn.execute("SELECT count(*), coalesce(sum(cost), 0) FROM agent_calls WHERE run_id = %s",
                        (run_id,)).fetchone()


def main():
    t0 = time.monotonic()
    wallet = f"agent_user_{uuid.uuid4().hex[:8]}"
    request_id = f"req-{uuid.uuid4().hex[:8]}"  # the user request that starts the run
    with connect() as conn:
        conn.execute("""
            CREATE TABLE IF NOT EXISTS agent_calls (
                id bigserial PRIMARY KEY, run_id bigint NOT NULL, agent text NOT NULL,
                prompt text NOT NULL, answer text NOT NULL, cost numeric NOT NULL,
                authorization_id bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())""")
        conn.execute("SELECT credit_rate_set(action => 'llm.call', credits => 1, unit => 'call unit')")
        conn.execute("SELECT credit_wallet_create(wallet => %s)", (wallet,))
        conn.execute("SELECT credit_grant(wallet => %s, amount => %s)", (wallet, GRANT))
        print(f"python agent: wallet {wallet} has {balance(conn, wallet)} credits;"
              " llm.call costs 1 credit per unit")

        # 1. open the run: the budget leaves the wallet at once; a retry with the same key is the same run
        open_sql = "SELECT * FROM credit_run_open(wallet => %s, budget => %s, idempotency_key => %s)"
        run = conn.execute(open_sql, (wallet, BUDGET, request_id)).fetchone()
        run_id = run.run_id
        check(run.approved and run.status == "open" and run.budget == BUDGET,
              f"run {run_id} opened with a budget of {run.budget}")
        check(balance(conn, wallet) == GRANT - BUDGET,
              f"wallet {GRANT} -> {GRANT - BUDGET} (the budget is reserved)")
        again = conn.execute(open_sql, (wallet, BUDGET, request_id)).fetchone()
        check(again.run_id == run_id and balance(conn, wallet) == GRANT - BUDGET,
              "opening again with the same idempotency key: the same run, nothing reserved twice")

        # 2. eight workers in parallel and a sub-agent beside them, each on its own connection
        t_work = time.monotonic()
        with ThreadPoolExecutor(max_workers=WORKERS + 1) as pool:
            sub_future = pool.submit(sub_agent, wallet, run_id, request_id)
            work = [pool.submit(worker, wallet, run_id, n) for n in range(WORKERS)]
            worker_calls = [auth for f in work for auth in f.result()]
            sub, sub_calls = sub_future.result()
        t_work = time.monotonic() - t_work

        worker_spent = sum(a.cost for a in worker_calls if a.approved)
        check(len(worker_calls) == WORKERS * CALLS_PER_WORKER and all(a.approved for a in worker_calls),
              f"{len(worker_calls)} calls of {WORKERS} parallel workers approved,"
              f" {worker_spent} credits ({t_work:.2f}s)")
        check(all(a.wallet == wallet for a in worker_calls), "every call's row names the owner's wallet")
        n_rows, app_cost = app_rows(conn, run_id)
        check(n_rows == len(worker_calls) and app_cost == worker_spent,
              f"{n_rows} agent_calls rows of the run, {app_cost} credits")

        check(sub.approved and sub.budget == SUB_BUDGET,
              f"sub-run {sub.run_id} opened with {sub.budget} of the run's budget")
        approved_sub = [a for a in sub_calls if a.approved]
        sub_spent = sum(a.cost for a in approved_sub)
        last = sub_calls[-1] if sub_calls else None
        check(last is not None and not last.approved and last.reason == "run_budget_exhausted",
              f"sub-agent: {len(approved_sub)} calls approved ({sub_spent} credits), then declined with"
              f" {last and last.reason} (a row, not an exception), {last and last.balance} left")
        check(sub_spent <= SUB_BUDGET and run_info(conn, sub.run_id).spent == sub_spent
              and app_rows(conn, sub.run_id) == (len(approved_sub), sub_spent),
              f"the sub-run spent {sub_spent} <= its budget of {SUB_BUDGET}, one app row per approved call")
        check(balance(conn, wallet) == GRANT - BUDGET,
              f"the wallet is still {GRANT - BUDGET}: the calls spent the runs, never the wallet")

        # 3. a call whose work fails: the transaction rolls back, the run gets its credits back
        before = run_info(conn, run_id)
        during = []

        def failing_model(prompt):
            during.append(run_info(conn, run_id).remaining)  # inside the call's transaction
            raise TimeoutError("model timed out")

        try:
            model_call(conn, wallet, run_id, "worker-0", "this one fails", WORKER_QTY, "w0-fail",
                       work=failing_model)
            check(False, "the failing model call should raise")
        except TimeoutError:
            pass
        after = run_info(conn, run_id)
        check(during == [before.remaining - WORKER_QTY],
              f"a call approved: the run has {before.remaining} -> {during and during[0]} left,"
              " then the model fails")
        check(after.remaining == before.remaining and after.spent == before.spent
              and after.calls == before.calls and app_rows(conn, run_id)[0] == n_rows,
              f"ROLLBACK: the run has {after.remaining} left again, calls and spent unchanged, no app row")

        # 4. close the run: the sub-run closes with it, unspent credits go back to the wallet
        closed = conn.execute("SELECT * FROM credit_run_close(%s)", (run_id,)).fetchone()
        total_spent = worker_spent + sub_spent
        info = run_info(conn, run_id)
        tree = conn.execute("SELECT * FROM credit_run_tree(%s)", (run_id,)).fetchall()
        check(closed.status == "closed" and info.status == "closed", f"run {run_id} closed")
        check(info.spent_tree == total_spent and info.held == 0 and info.remaining == 0,
              f"the run's tree spent {info.spent_tree} = {worker_spent} (workers) + {sub_spent} (sub-agent)")
        check(info.returned == info.budget - info.spent_tree,
              f"credit_run: returned {info.returned} = budget {info.budget} - spent_tree {info.spent_tree}")
        check(len(tree) == 2 and all(n.status == "closed" for n in tree),
              "closing the run closed its sub-run (credit_run_tree: both closed)")
        check(all(n.returned == n.budget - n.spent_tree and n.remaining == 0 for n in tree),
              "every node returned budget - spent_tree: "
              + ", ".join(f"run {n.run_id} {n.returned} = {n.budget} - {n.spent_tree}" for n in tree))
        final_balance = balance(conn, wallet)
        check(final_balance == GRANT - total_spent,
              f"wallet balance {final_balance} = {GRANT} - {total_spent} spent")
        late = model_call(conn, wallet, run_id, "worker-0", "too late", WORKER_QTY, "w0-late")
        check(not late.approved and late.reason == "run_closed",
              f"a call after the close is declined with {late.reason}")
        twice = conn.execute("SELECT * FROM credit_run_close(%s)", (run_id,)).fetchone()
        check(twice == closed, "closing again returns the same row")
        problems = conn.execute("SELECT * FROM credit_verify()").fetchall()
        check(not problems, "credit_verify() is empty" + (f": {problems}" if problems else ""))

    if failures:
        print(f"python agent: {len(failures)} check(s) FAILED")
        return 1
    print(f"python agent: all checks passed: run {run_id} spent {total_spent} of {BUDGET}"
          f" ({len(worker_calls)} worker calls + {len(approved_sub)} sub-agent calls),"
          f" returned {info.returned}; wallet {GRANT} -> {final_balance} in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
