"""credit_ledger from Python (psycopg 3): deliver the ledger's events to a webhook, at least once,
in order, and resume after a crash.

    python event_webhook.py     # connects with PGHOST / PGPORT / PGUSER / PGDATABASE
    python event_webhook.py --consume NAME URL   # only the consumer (what you would deploy)

The consumer is a loop: read the next events of its stream with credit_events(consumer =>
NAME) in a transaction of its own (autocommit), POST each one to the webhook in seq order
(retrying with a backoff until the webhook answers 2xx, never skipping ahead), then record its
position with credit_events_ack(NAME, last seq delivered). When the stream is empty it waits on
LISTEN credit_ledger (the NOTIFY carries only an event id: a hint to read) with a poll timeout
as the fallback. Its position lives in the database, so a consumer that crashes resumes after
the last acknowledged seq: what it delivered but had not acknowledged yet is delivered again
(at least once; the receiver drops duplicates by event id, sent as the Idempotency-Key). Run
one process per consumer name (two would both deliver every event); the consumer's role needs
only EXECUTE on credit_events and credit_events_ack (the `cron` bundle).

The demo (no arguments) starts a webhook on 127.0.0.1 and runs the consumer as a separate
process: events of several kinds from concurrent transactions, a rolled-back one, a transaction
that commits its event after a later transaction's event was already delivered and
acknowledged, a webhook that fails (HTTP 500) for a few requests, and a SIGKILL of the consumer
while a delivery is in flight, before its ack; then a restart that drains the stream. Every
outcome is checked (against credit_ledger.events, read as the superuser); exit status 1 on a
failure.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from psycopg.rows import namedtuple_row

BATCH = 4            # events per credit_events() read, acknowledged together
POLL = 2.0           # s: read again after this long without a NOTIFY (the fallback)
LIFETIME = 90.0      # s: the demo's consumers exit after this long, whatever happens
WAIT = 10.0          # s: the demo waits at most this long for anything
BUDGET = 45.0        # s: and all its waits together end by then (a failing run ends too)
WRITERS = 6          # concurrent writer transactions
HOLD_AT = 3          # the crash: SIGKILL while the 3rd delivery of a burst of 6 is in flight


def connect():
    return psycopg.connect("", autocommit=True, row_factory=namedtuple_row)


# ------------------------------------------------------------------ the consumer

def say(msg):
    print(f"    consumer[{os.getpid()}]: {msg}", flush=True)


def post(opener, url, body, timeout=10.0):
    """One POST; returns the HTTP status, or the error's text when there is no answer."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json",
        "Idempotency-Key": f"credit_ledger-event-{body['event_id']}"})
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError) as e:
        return str(e)


def deliver(opener, url, name, ev, stopping, deadline):
    """POST one event until the webhook answers 2xx (backoff 0.05 s doubling to 1 s).
    False only when the consumer is told to stop first: the event stays unacknowledged.
    Any other answer is retried too: in order means an event the receiver keeps refusing holds
    the stream back (a real consumer alerts, or parks it elsewhere and acknowledges it)."""
    body = {"consumer": name, "seq": ev.seq, "event_id": ev.event_id, "at": ev.at.isoformat(),
            "kind": ev.kind, "wallet": ev.wallet, "asset": ev.asset, "payload": ev.payload}
    backoff = 0.05
    while True:
        status = post(opener, url, body)
        if isinstance(status, int) and 200 <= status < 300:
            return True
        say(f"seq {ev.seq} ({ev.kind}): webhook answered {status}, again in {backoff:.2f}s")
        if stopping or time.monotonic() > deadline:
            return False
        time.sleep(backoff)
        backoff = min(backoff * 2, 1.0)


def wait_for_notify(listen, poll, stopping):
    """Wait for a NOTIFY on credit_ledger, at most `poll` seconds (in short slices, so that a
    SIGTERM is seen quickly). Returns what woke it."""
    end = time.monotonic() + poll
    while not stopping and time.monotonic() < end:
        got = list(listen.notifies(timeout=min(0.25, max(0.0, end - time.monotonic())), stop_after=1))
        if got:
            return f"NOTIFY of event id {got[0].payload}"
    return "stop" if stopping else f"poll timeout ({poll:g}s)"


def consume(name, url, batch=BATCH, poll=POLL, lifetime=0.0, until_idle=False):
    """Deliver consumer `name`'s stream to `url` until SIGTERM (or, with until_idle, until the
    stream is empty). Exit status 0 on a stop, 3 when `lifetime` seconds (if > 0) are over."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    deadline = time.monotonic() + lifetime if lifetime > 0 else float("inf")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for the webhook
    with connect() as conn, connect() as listen:
        # LISTEN before the first read: an event committed between a read and the wait still
        # wakes the wait (a notification that arrives meanwhile is kept until it is consumed)
        listen.execute("LISTEN credit_ledger")
        # acknowledging 0 never moves the position back: it returns where the consumer stands
        pos = conn.execute("SELECT credit_events_ack(%s, 0)", (name,)).fetchone()[0]
        say(f"listening on credit_ledger; resuming after seq {pos}")
        while not stopping:
            if time.monotonic() > deadline:
                say(f"lifetime of {lifetime:g}s over, exiting")
                return 3
            events = conn.execute("SELECT * FROM credit_events(consumer => %s, max_rows => %s)",
                                  (name, batch)).fetchall()
            if not events:
                if until_idle:
                    say(f"nothing after seq {pos}, exiting")
                    return 0
                say(f"woken by {wait_for_notify(listen, poll, stopping)}")
                continue
            last = None
            for ev in events:  # in seq order; an event not delivered stops the batch
                if stopping or not deliver(opener, url, name, ev, stopping, deadline):
                    break
                last = ev.seq
            if last is not None:
                pos = conn.execute("SELECT credit_events_ack(%s, %s)", (name, last)).fetchone()[0]
                say(f"delivered seq {events[0].seq}..{last}"
                    f" ({', '.join(e.kind for e in events if e.seq <= last)}), acknowledged {pos}")
    say("stopped")
    return 0


# ------------------------------------------------------------------ the webhook (the receiver)

class Webhook:
    """An HTTP server on 127.0.0.1 that records every POSTed event. fail(n): answer the next n
    requests with HTTP 500. hold(n): record the n-th delivery from now but keep its answer
    back until released, so the consumer can be killed with its request in flight."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempts = []   # (seq, event_id, status) of every POST, in arrival order
        self.received = []   # the bodies answered 2xx, in arrival order (what the receiver got)
        self.fail_next = 0
        self.hold_at = None
        self.held = threading.Event()
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with hook.lock:
                    hold = False
                    if hook.fail_next > 0:
                        hook.fail_next -= 1
                        status = 500
                    else:
                        status = 200
                        hook.received.append(body)
                        hold = len(hook.received) == hook.hold_at
                    hook.attempts.append((body["seq"], body["event_id"], status))
                if hold:
                    hook.held.set()
                    hook.release.wait(WAIT)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the consumer is gone (killed while this request was held)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fail(self, n):
        with self.lock:
            self.fail_next = n

    def hold(self, n):
        with self.lock:
            self.hold_at = len(self.received) + n

    def seq_of(self, event_id):
        with self.lock:
            return next((b["seq"] for b in self.received if b["event_id"] == event_id), None)

    def snapshot(self):
        with self.lock:
            return list(self.received), list(self.attempts)

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


# ------------------------------------------------------------------ the demo

class ConsumerProcess:
    """This file run with --consume, in a process of its own (so that it can be SIGKILLed)."""

    def __init__(self, name, url, *extra):
        self.lines = []
        self.proc = subprocess.Popen(
            [sys.executable, "-u", os.path.abspath(__file__), "--consume", name, url,
             "--lifetime", str(LIFETIME), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            print(line, end="", flush=True)

    def wait(self, timeout=WAIT):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(5)
        self.reader.join(5)
        return rc

    def kill(self):  # the crash
        self.proc.send_signal(signal.SIGKILL)
        return self.wait()

    def stop(self):  # a graceful stop
        self.proc.send_signal(signal.SIGTERM)
        return self.wait()


failures = []


def check(ok, what):
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


DEADLINE = time.monotonic() + BUDGET


def wait_until(pred, timeout=WAIT):
    end = min(time.monotonic() + timeout, DEADLINE)
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def acked(db, name):
    row = db.execute("SELECT acked_up_to FROM credit_ledger.event_consumers WHERE consumer = %s",
                     (name,)).fetchone()
    return row and row.acked_up_to


def drained(db, hook, name):
    """Every committed event was delivered and the consumer acknowledged the last seq."""
    ids = {r.id for r in db.execute("SELECT id FROM credit_ledger.events")}
    got = {b["event_id"] for b in hook.snapshot()[0]}
    last = db.execute("SELECT max(seq) AS s FROM credit_ledger.events").fetchone().s
    return ids <= got and acked(db, name) == last


def event_of(conn, wallet, kind):
    """The id of `wallet`'s event of `kind`, as `conn` sees it (its own uncommitted one too)."""
    row = conn.execute("SELECT e.id FROM credit_ledger.events e JOIN credit_ledger.wallets w"
                       " ON w.id = e.wallet_id WHERE w.wallet = %s AND e.kind = %s ORDER BY e.id DESC",
                       (wallet, kind)).fetchone()
    return row and row.id


def wallet(conn, name, grant=100, threshold=None):
    conn.execute("SELECT credit_wallet_create(wallet => %s, low_balance_threshold => %s)",
                 (name, threshold))
    conn.execute("SELECT credit_grant(wallet => %s, amount => %s)", (name, grant))


def spend(conn, name, calls):
    for _ in range(calls):  # each call in its own transaction, like an app's
        auth = conn.execute("SELECT * FROM credit_authorize(wallet => %s, action => 'hook.chat',"
                            " quantity => 1)", (name,)).fetchone()
        assert auth.approved, auth


def run_closed(conn, name):
    run = conn.execute("SELECT * FROM credit_run_open(wallet => %s, budget => 10)", (name,)).fetchone()
    conn.execute("SELECT * FROM credit_run_close(%s)", (run.run_id,))


def main():
    t0 = time.monotonic()
    tag = uuid.uuid4().hex[:6]
    name = f"webhook_{tag}"

    def w(s):
        return f"hook_{tag}_{s}"

    hook = Webhook()
    consumers = []
    try:
        with connect() as db:
            db.execute("SELECT credit_rate_set(action => 'hook.chat', credits => 10)")
            before = db.execute("SELECT count(*) AS n FROM credit_ledger.events").fetchone().n
            print(f"python events: webhook at {hook.url}; consumer {name!r} (batches of {BATCH});"
                  f" {before} events already in the stream")

            # 1. the consumer starts from the beginning of the stream (a new consumer's position is 0)
            first = ConsumerProcess(name, hook.url)
            consumers.append(first)
            check(wait_until(lambda: drained(db, hook, name)), f"consumer pid {first.proc.pid} started"
                  f" and caught up with the {before} events already there")

            # 2. concurrent writers, a webhook that fails 3 requests, a rolled-back event
            for i in range(WRITERS):
                wallet(db, w(f"c{i}"), threshold=50)
            wallet(db, w("rolled_back"))
            hook.fail(3)
            barrier = threading.Barrier(WRITERS + 1)

            def writer(i):
                with connect() as c:
                    barrier.wait(WAIT)
                    spend(c, w(f"c{i}"), 6)  # 100 -> 40 credits: one low_balance (below 50)
                    if i % 3 == 0:
                        c.execute("SELECT credit_wallet_update(wallet => %s, frozen => true)", (w(f"c{i}"),))
                    elif i % 3 == 1:
                        run_closed(c, w(f"c{i}"))
                    else:
                        c.execute("SELECT * FROM credit_wallet_close(wallet => %s)", (w(f"c{i}"),))

            def rolled_back():
                eid = None
                with connect() as c:
                    barrier.wait(WAIT)
                    try:
                        with c.transaction():
                            c.execute("SELECT credit_wallet_update(wallet => %s, frozen => true)",
                                      (w("rolled_back"),))
                            eid = event_of(c, w("rolled_back"), "wallet_frozen")
                            raise RuntimeError("the app fails after the freeze")
                    except RuntimeError:
                        return eid

            with ThreadPoolExecutor(max_workers=WRITERS + 1) as pool:
                writes = [pool.submit(writer, i) for i in range(WRITERS)]
                rb = pool.submit(rolled_back)
                for f in writes:
                    f.result()
                rolled_back_id = rb.result()
            ours = db.execute("SELECT kind, count(*) AS n FROM credit_ledger.events e"
                              " JOIN credit_ledger.wallets w ON w.id = e.wallet_id"
                              " WHERE w.wallet = ANY(%s) GROUP BY kind ORDER BY kind",
                              ([w(f"c{i}") for i in range(WRITERS)],)).fetchall()
            kinds = {r.kind: r.n for r in ours}
            check(kinds.get("low_balance") == WRITERS and {"wallet_frozen", "run_closed",
                                                           "wallet_closed"} <= set(kinds),
                  f"{WRITERS} concurrent writers committed "
                  + ", ".join(f"{n} {k}" for k, n in kinds.items()))
            check(wait_until(lambda: drained(db, hook, name)),
                  "all of them delivered and acknowledged")
            _, attempts = hook.snapshot()
            failed = [i for i, a in enumerate(attempts) if a[2] == 500]
            check(len(failed) == 3 and all(i + 1 < len(attempts) and attempts[i + 1][0] == attempts[i][0]
                                           for i in failed),
                  f"the webhook failed {len(failed)} requests (HTTP 500); each was retried with the"
                  " same event, nothing skipped ahead")
            check(rolled_back_id is not None and hook.seq_of(rolled_back_id) is None
                  and db.execute("SELECT count(*) AS n FROM credit_ledger.events WHERE id = %s",
                                 (rolled_back_id,)).fetchone().n == 0,
                  f"a transaction that rolled back left no event (id {rolled_back_id} was never"
                  " committed, never delivered)")

            # 3. a late commit: event x written first but committed after event y was delivered
            wallet(db, w("late"))
            wallet(db, w("early"))
            with connect() as late:
                with late.transaction():  # stays open until the end of this block
                    late.execute("SELECT credit_wallet_update(wallet => %s, frozen => true)", (w("late"),))
                    x = event_of(late, w("late"), "wallet_frozen")
                    db.execute("SELECT credit_wallet_update(wallet => %s, frozen => true)", (w("early"),))
                    y = event_of(db, w("early"), "wallet_frozen")
                    ok = wait_until(lambda: hook.seq_of(y) is not None
                                    and (acked(db, name) or 0) >= hook.seq_of(y))
                    check(ok and x < y and hook.seq_of(x) is None,
                          f"event {y} (committed) delivered as seq {hook.seq_of(y)} and acknowledged while"
                          f" event {x} (a lower id) is still uncommitted")
                # COMMIT of the late transaction
            check(wait_until(lambda: hook.seq_of(x) is not None) and hook.seq_of(x) > hook.seq_of(y),
                  f"event {x}, committed late, is still delivered: seq {hook.seq_of(x)} >"
                  f" {hook.seq_of(y)} (reading by id, a consumer past {y} would skip it)")
            check(wait_until(lambda: drained(db, hook, name)), "the stream is drained again")

            # 4. the crash: six events in one transaction; SIGKILL while the 3rd delivery is in flight
            burst = [w(f"b{i}") for i in range(6)]
            for bw in burst:
                wallet(db, bw)
            runs = [db.execute("SELECT run_id FROM credit_run_open(wallet => %s, budget => 10)",
                               (bw,)).fetchone().run_id for bw in burst[2:4]]
            hook.hold(HOLD_AT)
            with db.transaction():
                for bw in burst[:2]:
                    db.execute("SELECT credit_wallet_update(wallet => %s, frozen => true)", (bw,))
                for r in runs:
                    db.execute("SELECT * FROM credit_run_close(%s)", (r,))
                for bw in burst[4:]:
                    db.execute("SELECT * FROM credit_wallet_close(wallet => %s)", (bw,))
            held = wait_until(hook.held.is_set)
            rc = first.kill()
            ack_at_crash = acked(db, name)
            received, _ = hook.snapshot()
            tail = [b["seq"] for b in received if b["seq"] > ack_at_crash]
            hook.release.set()
            check(held and rc == -signal.SIGKILL, f"consumer pid {first.proc.pid} SIGKILLed while the"
                  f" webhook held delivery {HOLD_AT} of the burst")
            check(len(tail) >= 2 and tail == sorted(tail) and tail[-1] == received[-1]["seq"],
                  f"at the crash: seq {tail[:-1]} answered 2xx and seq {tail[-1:]} in flight, none of them"
                  f" acknowledged (the position is still {ack_at_crash})")

            # 5. restart (the webhook fails 2 requests again), more events while it runs, drain
            hook.fail(2)
            second = ConsumerProcess(name, hook.url)
            consumers.append(second)
            wallet(db, w("after"), threshold=50)
            spend(db, w("after"), 6)
            run_closed(db, w("after"))
            check(wait_until(lambda: drained(db, hook, name)),
                  f"consumer pid {second.proc.pid} resumed after seq {ack_at_crash} and drained the stream")
            rc = second.stop()
            check(rc == 0, f"SIGTERM: consumer pid {second.proc.pid} stopped cleanly (exit status {rc})")

            # 6. the checks over the whole stream
            received, attempts = hook.snapshot()
            table = db.execute("SELECT id, kind, seq FROM credit_ledger.events ORDER BY seq").fetchall()
            seqs = [b["seq"] for b in received]
            firsts = list(dict.fromkeys(seqs))  # each seq once, at its first delivery
            dups = {s: n for s, n in Counter(seqs).items() if n > 1}
            check({e.id for e in table} <= {b["event_id"] for b in received},
                  f"every one of the {len(table)} events of credit_ledger.events was delivered at least once")
            check(firsts == [e.seq for e in table]
                  and all(b["event_id"] == e.id and b["kind"] == e.kind == b["payload"]["event"]
                          and b["wallet"] == b["payload"]["wallet"]
                          for b, e in zip([received[seqs.index(s)] for s in firsts], table)),
                  f"without duplicates the webhook got them in seq order, each with its event id and kind"
                  f" (seq {firsts[0]}..{firsts[-1]})")
            check(set(dups) == set(tail) and set(dups.values()) == {2},
                  f"duplicates: {len(dups)}, exactly the tail delivered before the crash but not"
                  f" acknowledged (seq {sorted(dups)})")
            try:  # where the restarted consumer's deliveries begin: tail[0] again, after tail[-1]
                restart = seqs.index(tail[0], seqs.index(tail[-1]) + 1)
            except (IndexError, ValueError):
                restart = -1
            check(restart > 0 and seqs[:restart] == sorted(seqs[:restart])
                  and seqs[restart:] == sorted(seqs[restart:]),
                  f"the restarted consumer began at seq {tail[0] if tail else '?'}, the first after its"
                  f" position {ack_at_crash}; each run delivered in seq order")
            last = table[-1].seq
            check(acked(db, name) == last == seqs[-1],
                  f"the consumer's acknowledged position is {acked(db, name)}, the last seq")
            stale = db.execute("SELECT credit_events_ack(%s, %s) AS pos", (name, ack_at_crash)).fetchone().pos
            check(stale == last, f"a stale ack (of seq {ack_at_crash}) does not move it back: {stale}")
            check(sum(1 for a in attempts if a[2] == 500) == 5,
                  "5 failed requests in all, every one retried")
            woken = [ln for cp in consumers for ln in cp.lines if "woken by NOTIFY" in ln]
            check(woken, f"the idle consumer was woken by NOTIFY {len(woken)} times (not only by its poll)")

            # 7. a restart with nothing new delivers nothing
            n_attempts = len(attempts)
            idle = ConsumerProcess(name, hook.url, "--until-idle")
            consumers.append(idle)
            rc = idle.wait()
            check(rc == 0 and len(hook.snapshot()[1]) == n_attempts and acked(db, name) == last,
                  f"a restart with nothing new: exit status {rc}, no request, position still {last}")
    finally:
        for cp in consumers:
            if cp.proc.poll() is None:
                cp.kill()
        hook.stop()

    if failures:
        print(f"python events: {len(failures)} check(s) FAILED")
        return 1
    print(f"python events: all checks passed: {len(table)} events delivered to the webhook in order"
          f" ({len(received)} deliveries, {len(dups)} again after the crash, 5 retried),"
          f" in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1:
        p = argparse.ArgumentParser(description="deliver credit_ledger events to a webhook")
        p.add_argument("--consume", nargs=2, metavar=("NAME", "URL"), required=True,
                       help="the consumer's name (its position in credit_ledger) and the webhook URL")
        p.add_argument("--batch", type=int, default=BATCH, help="events per read (default %(default)s)")
        p.add_argument("--poll", type=float, default=POLL, help="s without a NOTIFY before reading again")
        p.add_argument("--lifetime", type=float, default=0.0,
                       help="exit after this many s (default 0: run until SIGTERM)")
        p.add_argument("--until-idle", action="store_true", help="exit when the stream is empty")
        args = p.parse_args()
        sys.exit(consume(*args.consume, batch=args.batch, poll=args.poll, lifetime=args.lifetime,
                         until_idle=args.until_idle))
    sys.exit(main())
