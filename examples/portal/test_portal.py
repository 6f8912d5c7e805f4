"""examples/portal/test_portal.py: the portal in a real headless browser (issue 24).

Run by examples/run_all.sh (example `portal`) in a fresh database with the extension, as the
server's superuser (PGHOST, PGPORT, PGUSER, PGDATABASE). It writes a known workload, creates a
role that holds only the `reader` bundle, starts the portal (uvicorn) on a loopback port as that
role, and loads the page of four wallets in Debian's chromium (headless, --dump-dom after the
scripts ran): a customer with lots, usage, declines and an open hold; a member of a team with a
pool limit (and the team's own page); a wallet in overdraft; an empty wallet. Every number on the
page is checked against credit_balance_detail, usage_daily, call_log and pool_usage read here
directly; the charts must have been drawn by Chart.js. A screenshot of the customer's page is kept
as build/examples/portal.png (and of the member's, portal-member.png).
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ARTIFACTS = REPO / "build" / "examples"
CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
ROLE = f"cl_portal_reader_{os.getpid()}"
failures = 0


def ok(cond, what, detail=""):
    global failures
    if cond:
        print(f"  ok   {what}")
    else:
        failures += 1
        print(f"  FAIL {what} {detail}")


def norm(v):
    return format(Decimal(str(v)).normalize(), "f") if v is not None else None


WORKLOAD = """
SELECT credit_rate_set(action => 'chat', variant => 'opus', credits => 5);
SELECT credit_rate_set(action => 'chat', variant => 'haiku', credits => 0.25);
SELECT credit_rate_set(action => 'image', credits => 4);
-- cust: a paid pack and a promo that expires in 3 days; usage, a decline, an open hold
SELECT credit_wallet_create(wallet => 'cust');
SELECT credit_grant(wallet => 'cust', amount => 500, unit_price => 0.01);
SELECT credit_grant(wallet => 'cust', amount => 30, category => 'promotional', expires_at => now() + interval '3 days');
SELECT credit_authorize('cust', 'chat', 8, 'opus');
SELECT credit_authorize('cust', 'chat', 12, 'haiku');
SELECT credit_authorize('cust', 'image', 5);
SELECT credit_authorize('cust', 'image', 500);
SELECT credit_hold('cust', 'chat', 2, 'opus');
-- a team with a limited member and an unlimited one
SELECT credit_wallet_create(wallet => 'team');
SELECT credit_grant(wallet => 'team', amount => 1000, unit_price => 0.008);
SELECT credit_wallet_create(wallet => 'team.m1', parent => 'team', pool_limit => 100);
SELECT credit_wallet_create(wallet => 'team.m2', parent => 'team');
SELECT credit_grant(wallet => 'team.m1', amount => 10);
SELECT credit_authorize('team.m1', 'chat', 6, 'opus');
SELECT credit_authorize('team.m1', 'image', 30);
SELECT credit_authorize('team.m2', 'image', 3);
-- a wallet in overdraft
SELECT credit_wallet_create(wallet => 'od', overdraft_limit => 50);
SELECT credit_grant(wallet => 'od', amount => 10);
SELECT credit_authorize('od', 'image', 5);
-- an empty wallet
SELECT credit_wallet_create(wallet => 'empty');
"""


class Page(HTMLParser):
    """The values the test reads: elements by id (text and data-value), rows of tables."""

    def __init__(self):
        super().__init__()
        self.ids, self.values, self.rows, self.body = {}, {}, [], {}
        self._id, self._row, self._cell, self._table = None, None, None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "table":
            self._table.append(a.get("id"))
        if tag == "tr":
            self._row = {"table": self._table[-1] if self._table else None, "attrs": a, "cells": []}
        if tag == "td" and self._row is not None:
            self._cell = [a.get("class") or "", ""]
        if "id" in a:
            self._id = a["id"]
            self.ids[a["id"]] = ""
            if "data-value" in a:
                self.values[a["id"]] = a["data-value"]

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row["cells"].append((self._cell[0], self._cell[1].strip()))
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        if tag == "table" and self._table:
            self._table.pop()
        self._id = None

    def handle_data(self, data):
        if self._id is not None and self._id in self.ids:
            self.ids[self._id] += data
        if self._cell is not None:
            self._cell[1] += data

    def table(self, name):
        return [r for r in self.rows if r["table"] == name and r["cells"]]


def chromium(args, url):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--hide-scrollbars", "--virtual-time-budget=5000", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    db = psycopg.connect("", autocommit=True)
    db.execute(WORKLOAD)
    db.execute(f"CREATE ROLE {ROLE} LOGIN")
    db.execute("SELECT count(*) FROM credit_ledger_grant(%s, 'reader')", (ROLE,))
    env = dict(os.environ)
    params = db.info.get_parameters()
    env["PORTAL_DSN"] = (f"host={db.info.host} port={db.info.port} dbname={params['dbname']} "
                         f"user={ROLE} sslmode=disable")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
         "--app-dir", str(HERE), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/wallet/empty", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        ok(server.poll() is None, f"the portal serves on 127.0.0.1:{port} as a reader-only role")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for wallet in ("cust", "team.m1", "team", "od", "empty"):
            check_wallet(db, base, wallet)
        for wallet, name in (("cust", "portal.png"), ("team.m1", "portal-member.png")):
            shot = ARTIFACTS / name
            shot.unlink(missing_ok=True)
            r = chromium([f"--screenshot={shot}", "--window-size=1200,2200"], f"{base}/wallet/{wallet}")
            ok(shot.exists() and shot.stat().st_size > 20000,
               f"screenshot of {wallet}'s page: {shot.relative_to(REPO)}", r.stderr[-300:])
        try:
            urllib.request.urlopen(base + "/wallet/nobody", timeout=5)
            ok(False, "an unknown wallet is a 404")
        except urllib.error.HTTPError as e:
            ok(e.code == 404, "an unknown wallet is a 404", str(e.code))
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        db.execute(f"DROP OWNED BY {ROLE}")
        db.execute(f"DROP ROLE {ROLE}")
    print(f"portal: {'ok' if failures == 0 else f'{failures} failed'}")
    sys.exit(1 if failures else 0)


def check_wallet(db, base, wallet):
    r = chromium(["--dump-dom"], f"{base}/wallet/{wallet}")
    page = Page()
    page.feed(r.stdout)
    ok(page.body.get("data-charts") == "drawn", f"{wallet}: the page's scripts ran and Chart.js drew both charts",
       r.stderr[-300:])
    cur = db.cursor()
    d = cur.execute("SELECT balance, held, debt, pool_access, spendable, expiring_soon"
                    " FROM credit_balance_detail(%s)", (wallet,)).fetchone()
    expect = dict(zip(("balance", "held", "debt", "pool_access", "spendable", "expiring_soon"), map(norm, d)))
    shown = {k: v for k, v in page.values.items() if k in expect}
    member = cur.execute("SELECT parent_id IS NOT NULL FROM credit_ledger.wallets WHERE wallet = %s",
                         (wallet,)).fetchone()[0]
    want = {k: v for k, v in expect.items()
            if k in ("balance", "held", "spendable", "expiring_soon")
            or (k == "debt" and v != "0") or (k == "pool_access" and member)}
    ok(shown == want, f"{wallet}: balance, held, spendable{', debt' if 'debt' in want else ''}"
       f"{', pool access' if member else ''} = credit_balance_detail ({want})", f"page {shown}")
    usage = dict(cur.execute(
        "SELECT action || coalesce(' (' || variant || ')', ''), sum(credits)::text FROM credit_ledger.usage_daily"
        " WHERE wallet = %s AND asset = 'credits' AND day > current_date - 30 GROUP BY 1", (wallet,)).fetchall())
    rows = {r["attrs"].get("data-name"): dict(r["cells"]).get("n credits") for r in page.table("usage-table")}
    ok(rows == {k: norm(v) for k, v in usage.items()}, f"{wallet}: usage by action and model = usage_daily {rows}",
       f"usage_daily {usage}")
    lots = [norm(x[0]) for x in cur.execute("SELECT remaining FROM credit_grants(%s, 'credits')", (wallet,))]
    shown_lots = [dict(r["cells"]).get("n remaining") for r in page.table("lots")]
    ok(shown_lots == lots, f"{wallet}: credit lots in consumption order = credit_grants {lots}", f"page {shown_lots}")
    calls = cur.execute("SELECT status, coalesce(reason, '') FROM credit_ledger.call_log WHERE wallet = %s"
                        " ORDER BY at DESC, authorization_id DESC LIMIT 15", (wallet,)).fetchall()
    shown_calls = [(r["attrs"].get("data-status"), re.sub(r"^[a-z]+(: )?", "", dict(r["cells"]).get("status", "")))
                   for r in page.table("calls")]
    ok(shown_calls == [(s, reason) for s, reason in calls],
       f"{wallet}: latest calls with their decline reasons = call_log ({len(calls)} calls)", f"page {shown_calls}")
    pool = dict(cur.execute("SELECT member, drawn_this_period::text FROM credit_ledger.pool_usage"
                            " WHERE (team = %s OR member = %s) AND coalesce(asset, 'credits') = 'credits'",
                            (wallet, wallet)).fetchall())
    shown_pool = {r["attrs"].get("data-member"): dict(r["cells"]).get("n drawn") for r in page.table("pool")}
    ok(shown_pool == {k: norm(v) for k, v in pool.items()}, f"{wallet}: pool draws = pool_usage {shown_pool}",
       f"pool_usage {pool}")


if __name__ == "__main__":
    main()
