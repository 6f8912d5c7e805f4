"""examples/portal: a customer's balance and usage page over the credit_ledger SQL API (issue 24).

One read-only page per wallet, GET /wallet/<key>: balance, held, spendable (and pool access for a
team member), the credit lots in consumption order with their expiry, a 30-day burn-down of the
balance and the usage of the last 30 days by action and model (Chart.js, from npm), the latest
calls with their decline reasons, and, for a team or a member, each member's pool draw against
its limit. Every value comes from the extension's functions and views, as a role that holds only
the `reader` bundle: credit_balance_detail, credit_grants, credit_balance(as_of),
credit_ledger.usage_daily, credit_ledger.call_log and credit_ledger.pool_usage. The app only
arranges them (fills the days without usage with zeros for the chart).

Run it (the demo's database, kept with ./examples/demo.sh --keep):

    examples/portal/run.sh            # then open http://127.0.0.1:8000/wallet/ada

Connection: PORTAL_DSN (a libpq connection string), else the PG* environment variables.
"""

import datetime
import json
import os
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
DSN = os.environ.get("PORTAL_DSN", "")
DAYS = 30
templates = Jinja2Templates(directory=str(HERE / "templates"))


def rows(conn, sql, params=()):
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def number(v):
    """A numeric for the page: exact text without trailing zeros (None stays None)."""
    if v is None:
        return None
    v = Decimal(v).normalize()
    return format(v, "f")


def wallet_page(wallet):
    """Everything the page shows for one wallet, from the extension's functions and views."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        detail = rows(conn, "SELECT * FROM credit_balance_detail(%s)", (wallet,))[0]
        lots = rows(
            conn,
            "SELECT id, category, priority, amount, remaining, held, effective_at, expires_at,"
            " unit_price FROM credit_grants(%s, 'credits')",
            (wallet,),
        )
        today = rows(conn, "SELECT (now() AT TIME ZONE 'UTC')::date AS d")[0]["d"]
        days = [today - datetime.timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
        # the balance at the end of each of the last 30 days (today: now)
        burn = rows(
            conn,
            "SELECT d::date AS day, credit_balance(%s, 'credits',"
            " least(now(), (d + interval '1 day') AT TIME ZONE 'UTC')) AS balance"
            " FROM generate_series(%s::date, %s::date, interval '1 day') d ORDER BY d",
            (wallet, days[0], days[-1]),
        )
        usage = rows(
            conn,
            "SELECT day, action, variant, quantity, credits, calls FROM credit_ledger.usage_daily"
            " WHERE wallet = %s AND asset = 'credits' AND day >= %s ORDER BY day, action, variant",
            (wallet, days[0]),
        )
        calls = rows(
            conn,
            "SELECT authorization_id, at, kind, status, reason, action, variant, quantity, cost,"
            " captured, refunded, degraded, requested_variant, fair_use, run_wallet"
            " FROM credit_ledger.call_log WHERE wallet = %s ORDER BY at DESC, authorization_id DESC"
            " LIMIT 15",
            (wallet,),
        )
        pool = rows(
            conn,
            "SELECT member, team, pool_limit, drawn_this_period FROM credit_ledger.pool_usage"
            " WHERE (team = %s OR member = %s) AND coalesce(asset, 'credits') = 'credits'"
            " ORDER BY member",
            (wallet, wallet),
        )
    series = {}
    for u in usage:
        name = u["action"] + (f" ({u['variant']})" if u["variant"] else "")
        series.setdefault(name, {})[u["day"]] = u["credits"]
    chart = {
        "days": [d.isoformat() for d in days],
        "usage": [
            {"label": name, "data": [float(by_day.get(d, 0)) for d in days]}
            for name, by_day in sorted(series.items())
        ],
        "balance": [float(b["balance"]) for b in burn],
    }
    totals = {}
    for u in usage:
        name = u["action"] + (f" ({u['variant']})" if u["variant"] else "")
        t = totals.setdefault(name, {"credits": Decimal(0), "calls": 0})
        t["credits"] += u["credits"]
        t["calls"] += u["calls"]
    return {
        "wallet": wallet,
        "detail": {k: number(v) for k, v in detail.items() if k != "by_category"},
        "member_of": pool[0]["team"] if pool and pool[0]["member"] == wallet else None,
        "lots": lots,
        "usage_totals": [
            {"name": n, "credits": number(t["credits"]), "calls": t["calls"]}
            for n, t in sorted(totals.items())
        ],
        "calls": calls,
        "pool": [p for p in pool if p["team"] == wallet or p["member"] == wallet],
        "chart_json": json.dumps(chart),
        "number": number,
    }


async def wallet(request: Request):
    key = request.path_params["wallet"]
    try:
        data = wallet_page(key)
    except psycopg.errors.UndefinedObject:
        return HTMLResponse(f"<h1>No wallet {key!r}</h1>", status_code=404)
    return templates.TemplateResponse(request, "wallet.html", data)


async def home(request: Request):
    return RedirectResponse(f"/wallet/{request.query_params.get('wallet', 'ada')}")


app = Starlette(
    routes=[
        Route("/", home),
        Route("/wallet/{wallet:path}", wallet),
        Mount("/static", StaticFiles(directory=str(HERE / "node_modules" / "chart.js" / "dist")), name="static"),
    ]
)
