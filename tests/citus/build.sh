#!/usr/bin/env bash
# tests/citus/build.sh — make Citus available to PostgreSQL 15 for the scale-out work (issue 20),
# once per machine:
#
#   - citus.so already in $(pg_config --pkglibdir) (a user's package, or an earlier build): done;
#   - else build the vendored source ../shared/vendor/citus/citus-13.2.2.tar.gz (relative to the
#     repository, else /work/shared/vendor/citus; CL_CITUS_VENDOR overrides) with its PostgreSQL 15.20 patch, as its README says
#     (apt build dependencies, configure, make -j2, make install: about 3 minutes), in
#     build/citus-src;
#   - neither: print `citus: skipped (...)` and exit 0 — the tests that need Citus skip with that
#     line rather than fail.
#
# Prints one last line `citus: ready (<path of citus.so>)` or `citus: skipped (<why>)`.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
VENDOR="${CL_CITUS_VENDOR:-}"
if [ -z "$VENDOR" ]; then
  # next to the repository (the workplace layout), else the workplace's shared directory
  for v in "$REPO/../shared/vendor/citus" /work/shared/vendor/citus; do
    if [ -f "$v/citus-13.2.2.tar.gz" ]; then VENDOR="$v"; break; fi
  done
  VENDOR="${VENDOR:-$REPO/../shared/vendor/citus}"
fi
TARBALL="$VENDOR/citus-13.2.2.tar.gz"
PATCH="$VENDOR/pg15.20-have_createdb_privilege.patch"
lib="$("$PG_CONFIG" --pkglibdir)/citus.so"
if [ -f "$lib" ]; then echo "citus: ready ($lib)"; exit 0; fi
if [ ! -f "$TARBALL" ] || [ ! -f "$PATCH" ]; then
  echo "citus: skipped (not installed, and no source at $VENDOR)"
  exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq --no-install-recommends libcurl4-openssl-dev liblz4-dev libzstd-dev \
  libkrb5-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev postgresql-server-dev-15 >/dev/null
src="$REPO/build/citus-src"
rm -rf "$src" && mkdir -p "$src"
tar xzf "$TARBALL" -C "$src"
cd "$src/citus-13.2.2"
patch -p1 -s <"$PATCH"
./configure -q PG_CONFIG="$PG_CONFIG" >"$src/configure.log" 2>&1
make -s -j2 >"$src/make.log" 2>&1
$SUDO make -s install >"$src/install.log" 2>&1
[ -f "$lib" ] || { echo "citus: build finished but $lib is missing (logs in $src)" >&2; exit 1; }
echo "citus: ready ($lib)"
