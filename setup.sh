#!/usr/bin/env bash
# Idempotent set-up for credit_ledger on Debian 12: installs only what is missing.
#   apt: postgresql-15, postgresql-server-dev-15, libclang-dev, sudo, postgresql-15-cron
#   cargo: cargo-pgrx 0.18.0
#   pgrx: init against the system PostgreSQL 15 (never downloads PostgreSQL)
set -euo pipefail
PGRX_VERSION=0.18.0
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
log() { printf '[setup] %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_pkgs=()
for p in postgresql-15 postgresql-server-dev-15 libclang-dev sudo postgresql-15-cron; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "apt install ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
else
  log "apt packages present"
fi

export PATH="$HOME/.cargo/bin:$PATH"
if cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  log "cargo-pgrx $PGRX_VERSION present"
else
  log "cargo install cargo-pgrx $PGRX_VERSION (takes several minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

PGRX_HOME="${PGRX_HOME:-$HOME/.pgrx}"
if [ -f "$PGRX_HOME/config.toml" ] && grep -q "pg15 *= *\"$PG_CONFIG\"" "$PGRX_HOME/config.toml"; then
  log "pgrx already initialised for pg15"
else
  log "cargo pgrx init --pg15 $PG_CONFIG"
  cargo pgrx init --pg15 "$PG_CONFIG"
fi

# The PostgreSQL clusters of the demo, tests and bench run as the non-root user 'postgres'
# (initdb refuses root). The build tree must be reachable by it.
id postgres >/dev/null 2>&1 || { log "user postgres missing"; exit 1; }
log "done"
