"""credit_ledger from Python (psycopg 3): pay for the work in the app's own transaction.

    python bill_image.py        # connects with PGHOST / PGPORT / PGUSER / PGDATABASE

The pattern: in one transaction, credit_authorize() first; only when it is approved does the
app do the work and INSERT its own row. A decline writes no app row (and debits nothing); an
app error after the authorization rolls back the debit with everything else. A streaming call
holds the worst case, streams with no transaction open, then captures what it really used.
Every outcome is checked; exit status 1 on a failure.
"""

import sys
import uuid
from decimal import Decimal

import psycopg
from psycopg.rows import namedtuple_row


def render(prompt):
    """Stands in for the image model: the expensive call the credits pay for."""
    return f"https://cdn.example.com/{uuid.uuid4().hex}.png"


def generate_image(conn, customer, prompt, request_id):
    with conn.transaction():  # COMMIT at the end, ROLLBACK on any exception
        auth = conn.execute("SELECT * FROM credit_authorize(wallet => %s,"
                            " action => 'image.generate', idempotency_key => %s)",
                            (customer, request_id)).fetchone()
        if auth.approved:  # declined: nothing debited, no model call, no app row
            url = render(prompt)
            conn.execute("INSERT INTO images (customer, prompt, url, authorization_id)"
                         " VALUES (%s, %s, %s, %s)", (customer, prompt, url, auth.authorization_id))
        return auth


def stream_chat(conn, customer, max_tokens, stream):
    # 1. reserve the worst case, in its own short transaction (no lock held while streaming)
    hold = conn.execute("SELECT * FROM credit_hold(wallet => %s, action => 'chat',"
                        " quantity => %s)", (customer, Decimal(max_tokens) / 1000)).fetchone()
    if not hold.approved:
        return hold
    try:
        used_tokens = stream()  # 2. the model streams; the hold keeps the credits aside
    except Exception:
        conn.execute("SELECT credit_release(%s)", (hold.authorization_id,))
        raise
    with conn.transaction():  # 3. spend what was used, with the app's row
        done = conn.execute("SELECT * FROM credit_capture(%s, quantity => %s)",
                            (hold.authorization_id, Decimal(used_tokens) / 1000)).fetchone()
        conn.execute("INSERT INTO chats (customer, tokens, authorization_id) VALUES (%s, %s, %s)",
                     (customer, used_tokens, hold.authorization_id))
    return done


# ------------------------------------------------------------------ checks

failures = []


def check(ok, what):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def balance(conn, customer):
    return conn.execute("SELECT credit_balance(%s)", (customer,)).fetchone()[0]


def rows(conn, table, customer):
    return conn.execute(f"SELECT count(*) FROM {table} WHERE customer = %s", (customer,)).fetchone()[0]


def main():
    customer = f"cust_py_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("", autocommit=True, row_factory=namedtuple_row) as conn:
        conn.execute("""
            CREATE TABLE IF NOT EXISTS images (
                id bigserial PRIMARY KEY, customer text NOT NULL,
                prompt text NOT NULL CHECK (prompt <> ''), url text NOT NULL,
                authorization_id bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())""")
        conn.execute("""
            CREATE TABLE IF NOT EXISTS chats (
                id bigserial PRIMARY KEY, customer text NOT NULL, tokens int NOT NULL,
                authorization_id bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())""")
        conn.execute("SELECT credit_rate_set(action => 'image.generate', credits => 4, unit => 'image')")
        conn.execute("SELECT credit_rate_set(action => 'chat', credits => 1, unit => '1k tokens')")
        conn.execute("SELECT credit_wallet_create(wallet => %s)", (customer,))
        conn.execute("SELECT credit_grant(wallet => %s, amount => 10, category => 'promotional')", (customer,))
        print(f"python: wallet {customer} has {balance(conn, customer)} credits; an image costs 4")

        auth = generate_image(conn, customer, "a red fox in the snow", "req-1")
        check(auth.approved and auth.cost == 4, f"image 1 approved, cost {auth.cost}")
        check(balance(conn, customer) == 6 and rows(conn, "images", customer) == 1,
              "balance 10 -> 6, one images row")

        try:
            generate_image(conn, customer, "", "req-2")  # the app's INSERT violates its CHECK
            check(False, "an empty prompt should fail the app's insert")
        except psycopg.errors.CheckViolation:
            pass
        check(balance(conn, customer) == 6 and rows(conn, "images", customer) == 1,
              "app error after authorizing: ROLLBACK, balance still 6, still one row")

        generate_image(conn, customer, "a lighthouse at dusk", "req-3")
        check(balance(conn, customer) == 2 and rows(conn, "images", customer) == 2,
              "image 2 approved: balance 2, two rows")

        auth = generate_image(conn, customer, "a third picture", "req-4")
        check(not auth.approved and auth.reason == "insufficient_credits", f"image 3 declined: {auth.reason}")
        check(balance(conn, customer) == 2 and rows(conn, "images", customer) == 2,
              "declined: nothing debited, no app row")

        during = []

        def fake_stream():
            during.append(balance(conn, customer))  # what another request would see meanwhile
            return 1500

        done = stream_chat(conn, customer, max_tokens=2000, stream=fake_stream)
        check(during == [0], "chat: 2,000 tokens max = 2 credits held while streaming (balance 0 meanwhile)")
        check(done.status == "captured" and done.captured == Decimal("1.5"),
              f"chat: captured {done.captured} credits for the 1,500 tokens used")
        check(balance(conn, customer) == Decimal("0.5") and rows(conn, "chats", customer) == 1,
              "balance 2 -> 0.5, one chats row")

        def broken_stream():
            raise ConnectionError("model connection lost")

        try:
            stream_chat(conn, customer, max_tokens=500, stream=broken_stream)
            check(False, "the broken stream should raise")
        except ConnectionError:
            pass
        check(balance(conn, customer) == Decimal("0.5") and rows(conn, "chats", customer) == 1,
              "stream failed: hold released, balance still 0.5, no chats row")

        problems = conn.execute("SELECT count(*) FROM credit_verify()").fetchone()[0]
        check(problems == 0, "credit_verify() is empty")

    if failures:
        print(f"python: {len(failures)} check(s) FAILED")
        return 1
    print("python: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
