#!/usr/bin/env bash
# examples/portal/run.sh — the customer portal against the demo's database:
#
#   ./examples/demo.sh --keep          # the demo's cluster keeps running
#   examples/portal/run.sh             # http://127.0.0.1:8000/wallet/ada (also zoe, acme, acme.bob)
#
# Prepares examples/portal/.venv (pip) and node_modules (npm ci: Chart.js) when missing, creates
# the role `portal` with only the `reader` bundle in the demo's database (as postgres), and serves
# the portal as that role on 127.0.0.1:${PORTAL_PORT:-8000} until Ctrl-C. PORTAL_DSN (a libpq
# connection string) points it at another database instead.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
if [ ! -x "$HERE/.venv/bin/python" ]; then
  python3 -m venv "$HERE/.venv"
  "$HERE/.venv/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"
fi
[ -f "$HERE/node_modules/chart.js/dist/chart.umd.js" ] || (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
if [ -z "${PORTAL_DSN:-}" ]; then
  pid="$(ls "$REPO"/build/demo/data/postmaster.pid /tmp/credit_ledger-demo-*/data/postmaster.pid 2>/dev/null | head -n 1 || true)"
  [ -n "$pid" ] || { echo "no demo cluster: run ./examples/demo.sh --keep first (or set PORTAL_DSN)" >&2; exit 1; }
  port="$(sed -n 4p "$pid")" sock="$(sed -n 5p "$pid")"
  psql -X -q -h "$sock" -p "$port" -U postgres -d credit_demo -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SELECT 'CREATE ROLE portal LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portal') \gexec
SELECT count(*) FROM credit_ledger_grant('portal', 'reader');
SQL
  export PORTAL_DSN="host=$sock port=$port dbname=credit_demo user=portal sslmode=disable"
fi
echo "portal: http://127.0.0.1:${PORTAL_PORT:-8000}/wallet/ada"
exec "$HERE/.venv/bin/python" -m uvicorn app:app --app-dir "$HERE" --host 127.0.0.1 --port "${PORTAL_PORT:-8000}"
