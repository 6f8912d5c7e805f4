#!/usr/bin/env bash
# tests/ops/install_system.sh — install credit_ledger into an existing PostgreSQL 15, uninstall it,
# and test both.
#
#   tests/ops/install_system.sh --install     build the release package and copy it into the
#                                             PostgreSQL of $PG_CONFIG (run as root)
#   tests/ops/install_system.sh --uninstall   remove credit_ledger's files from that PostgreSQL
#   tests/ops/install_system.sh --package     only build the package (cargo pgrx package)
#   tests/ops/install_system.sh --deb         build a .deb from the package into build/ (not installed)
#   tests/ops/install_system.sh --test        the test below
#
# PG_CONFIG defaults to /usr/lib/postgresql/15/bin/pg_config (the Debian PostgreSQL 15).
#
# The package is what `cargo pgrx package --pg-config $PG_CONFIG` makes (run from the repository
# root; a release build, in target/release/credit_ledger-pg15/): credit_ledger.so, the control
# file, the install script credit_ledger--<version>.sql and the upgrade scripts
# credit_ledger--A--B.sql. --install copies them to `pg_config --pkglibdir` and
# `pg_config --sharedir`/extension, each through a temporary file and a rename, so backends that
# have the old library loaded keep running. --uninstall removes credit_ledger.so,
# credit_ledger.control and credit_ledger--*.sql there (DROP EXTENSION credit_ledger in every
# database first: a database that still has it cannot call its functions any more). Why plain
# copies and not a .deb: the developer and CI machines also install with `cargo pgrx install` into
# the same directories, outside dpkg; a .deb can still be built with --deb (dpkg-deb; package
# postgresql-15-credit-ledger) for machines managed with apt.
#
# --test (root; against its own throwaway cluster of that PostgreSQL, tests/cluster.sh, name
# ops-install; it does not use the cluster in PGHOST):
#   1. package: the files are there; the .deb builds and lists them;
#   2. saves the files the system has now (e.g. from cargo pgrx install), then --install: the
#      installed files equal the package's;
#   3. a cluster of that PostgreSQL: a user's database (owned by a non-superuser, who may not
#      create this untrusted extension himself), CREATE EXTENSION credit_ledger as the superuser;
#   4. the GRANT block of docs/security.md (section "Bundles", privilege bundles), run as written: role `app` authorizes,
#      holds, captures, releases, refunds, quotes, reads balances and grants; every direct
#      SELECT/INSERT/UPDATE/DELETE/TRUNCATE on credit_ledger.* and every back-office function
#      is denied with 42501; role `finance` reads the reports but cannot write; a role without
#      grants cannot authorize;
#   5. --uninstall: the files are gone, CREATE EXTENSION credit_ledger fails, the extension is
#      no longer available;
#   6. restores exactly the files saved in step 2 (or reinstalls the package when there were
#      none), also when the test fails or is interrupted.
# OPS_INSTALL_SANDBOX=<dir> runs --test against a private copy of the PostgreSQL tree under
# <dir> (PostgreSQL finds its share and lib directories relative to its binaries) instead of the
# system one: for machines where other people use the system PostgreSQL at the same time.
# Prints `install_system: N passed, M failed`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
export PATH="${HOME:-/root}/.cargo/bin:$PATH"
EXT=credit_ledger
BUILD_PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
TARGET_PG_CONFIG="$BUILD_PG_CONFIG"
BUILD_TIMEOUT="${OPS_BUILD_TIMEOUT:-2400}"

say() { printf '[install_system] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

pg_major() { "$1" --version | grep -oE '[0-9]+' | head -n 1; }
package_dir() { echo "${OPS_PACKAGE_DIR:-$REPO/target/release/$EXT-pg$(pg_major "$BUILD_PG_CONFIG")}"; }

# package — cargo pgrx package (release) into package_dir
do_package() {
  local out
  out="$(package_dir)"
  command -v cargo >/dev/null || die "cargo not found (run ./setup.sh)"
  [ -x "$BUILD_PG_CONFIG" ] || die "$BUILD_PG_CONFIG not found (apt-get install postgresql-server-dev-15)"
  say "cargo pgrx package --pg-config $BUILD_PG_CONFIG --out-dir $out"
  rm -rf "$out"
  (cd "$REPO" && timeout "$BUILD_TIMEOUT" cargo pgrx package --pg-config "$BUILD_PG_CONFIG" --out-dir "$out") >&2 \
    || die "cargo pgrx package failed"
  [ -n "$(find "$out" -name "$EXT.so" -print -quit)" ] || die "no $EXT.so in $out"
  echo "$out"
}

# package_files <dir> — the package's files: lib first, then control and SQL scripts
package_files() {
  find "$1" -type f -name "$EXT.so"
  find "$1" -type f \( -name "$EXT.control" -o -name "$EXT--*.sql" \) | sort
}

# dest_of <file> — where a package file goes in the target PostgreSQL
dest_of() {
  case "$(basename "$1")" in
    *.so) echo "$("$TARGET_PG_CONFIG" --pkglibdir)/$(basename "$1")" ;;
    *) echo "$("$TARGET_PG_CONFIG" --sharedir)/extension/$(basename "$1")" ;;
  esac
}

# put <src> <dest> — copy through a temporary file and rename (never rewrite a loaded library in place)
put() {
  local src="$1" dest="$2" tmp
  tmp="$(dirname "$dest")/.$(basename "$dest").tmp.$$"
  cp "$src" "$tmp"
  chmod 644 "$tmp"
  case "$dest" in *.so) chmod 755 "$tmp" ;; esac
  mv -f "$tmp" "$dest"
}

# installed_files — credit_ledger's files in the target PostgreSQL now
installed_files() {
  local lib share f
  lib="$("$TARGET_PG_CONFIG" --pkglibdir)"
  share="$("$TARGET_PG_CONFIG" --sharedir)/extension"
  [ -f "$lib/$EXT.so" ] && echo "$lib/$EXT.so"
  [ -f "$share/$EXT.control" ] && echo "$share/$EXT.control"
  for f in "$share/$EXT"--*.sql; do [ -f "$f" ] && echo "$f"; done
  return 0
}

do_install() {
  local pkg="$1" f d
  [ -w "$("$TARGET_PG_CONFIG" --pkglibdir)" ] || die "cannot write $("$TARGET_PG_CONFIG" --pkglibdir): run as root"
  while read -r f; do
    d="$(dest_of "$f")"
    put "$f" "$d"
    say "installed $d"
  done < <(package_files "$pkg")
}

do_uninstall() {
  local f n=0
  while read -r f; do
    [ -n "$f" ] || continue
    rm -f "$f"
    say "removed $f"
    n=$((n + 1))
  done < <(installed_files)
  [ "$n" -gt 0 ] || say "nothing to remove: $EXT is not installed in $("$TARGET_PG_CONFIG" --sharedir)"
  return 0
}

# build_deb <package dir> — postgresql-NN-credit-ledger_<version>_<arch>.deb in build/
build_deb() {
  local pkg="$1" major version arch root deb f rel
  major="$(pg_major "$BUILD_PG_CONFIG")"
  version="$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$(find "$pkg" -name "$EXT.control" | head -n 1)")"
  arch="$(dpkg --print-architecture)"
  root="$(mktemp -d /tmp/cl_deb.XXXXXX)"
  while read -r f; do
    case "$(basename "$f")" in
      *.so) rel="usr/lib/postgresql/$major/lib" ;;
      *) rel="usr/share/postgresql/$major/extension" ;;
    esac
    mkdir -p "$root/$rel"
    install -m 644 "$f" "$root/$rel/"
  done < <(package_files "$pkg")
  chmod 755 "$root/usr/lib/postgresql/$major/lib/$EXT.so"
  mkdir -p "$root/DEBIAN"
  cat >"$root/DEBIAN/control" <<EOF
Package: postgresql-$major-credit-ledger
Version: $version
Architecture: $arch
Maintainer: credit_ledger developers <noreply@example.invalid>
Depends: postgresql-$major
Section: database
Priority: optional
Description: prepaid AI-credit ledger extension for PostgreSQL $major
 Wallets, stacked credit grants, versioned rate cards and atomic
 authorize-and-debit inside PostgreSQL (credit_ledger, built with pgrx).
EOF
  mkdir -p "$REPO/build"
  deb="$REPO/build/postgresql-$major-credit-ledger_${version}_$arch.deb"
  dpkg-deb --root-owner-group --build "$root" "$deb" >&2
  rm -rf "$root"
  echo "$deb"
}

case "${1:-}" in
  --package) do_package; exit 0 ;;
  --install) pkg="$(do_package)"; do_install "$pkg"; say "done: CREATE EXTENSION $EXT; in your database (as a superuser)"; exit 0 ;;
  --uninstall) do_uninstall; exit 0 ;;
  --deb) pkg="$(package_dir)"; [ -d "$pkg" ] || pkg="$(do_package)"; build_deb "$pkg"; exit 0 ;;
  --test) ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac

# ================================================================ --test
# shellcheck source=tests/ops/lib.sh
source "$HERE/lib.sh"
ops_init install_system noconnect
[ "$(id -u)" -eq 0 ] || { fail "--test runs as root (it writes the PostgreSQL directories)"; ops_finish; }
WORK="$(mktemp -d /tmp/cl_ops_install.XXXXXX)"
ops_on_exit "rm -rf '$WORK'"

if [ -n "${OPS_INSTALL_SANDBOX:-}" ]; then
  major="$(pg_major "$BUILD_PG_CONFIG")"
  sb="$OPS_INSTALL_SANDBOX"
  rm -rf "$sb"
  mkdir -p "$sb/usr/lib/postgresql" "$sb/usr/share/postgresql"
  cp -a "$("$BUILD_PG_CONFIG" --pkglibdir)/.." "$sb/usr/lib/postgresql/$major"
  cp -a "$("$BUILD_PG_CONFIG" --sharedir)" "$sb/usr/share/postgresql/$major"
  chmod 755 "$sb" "$sb/usr" "$sb/usr/lib" "$sb/usr/share"
  TARGET_PG_CONFIG="$sb/usr/lib/postgresql/$major/bin/pg_config"
  ops_on_exit "rm -rf '$sb'"
  echo "sandbox: a private copy of PostgreSQL $major under $sb (pg_config $TARGET_PG_CONFIG)"
fi
TBIN="$("$TARGET_PG_CONFIG" --bindir)"
echo "target PostgreSQL: $TBIN (pkglibdir $("$TARGET_PG_CONFIG" --pkglibdir), sharedir $("$TARGET_PG_CONFIG" --sharedir))"

# ---------------------------------------------------------------- 1. package
t0=$SECONDS
if pkg="$(do_package 2>"$WORK/package.log")"; then
  ok "cargo pgrx package --pg-config $BUILD_PG_CONFIG ($((SECONDS - t0))s) -> ${pkg#"$REPO"/}"
else
  fail "cargo pgrx package" "$(tail -n 30 "$WORK/package.log")"
  ops_finish
fi
package_files "$pkg" | sed "s|^$pkg/|  package: |"
version="$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$(find "$pkg" -name "$EXT.control" | head -n 1)")"
check "the package has the library, the control file (default_version $version), $EXT--$version.sql and the upgrade scripts" \
  bash -c "[ -n \"\$(find '$pkg' -name '$EXT.so')\" ] && [ -n \"\$(find '$pkg' -name '$EXT--$version.sql')\" ] \
           && [ -n \"\$(find '$pkg' -name '$EXT--*--$version.sql')\" ]"
if deb="$(build_deb "$pkg" 2>"$WORK/deb.log")"; then
  contents="$(dpkg-deb --contents "$deb" | awk '{print $NF}' | grep -E "$EXT" | sed 's|^\./||' | sort | paste -sd' ' -)"
  ok "dpkg-deb builds ${deb#"$REPO"/}: $contents"
else
  fail "dpkg-deb builds a .deb" "$(cat "$WORK/deb.log")"
fi

# ---------------------------------------------------------------- 2. save what is there, install
mkdir -p "$WORK/saved"
installed_files >"$WORK/saved.list"
while read -r f; do [ -n "$f" ] && cp -p "$f" "$WORK/saved/$(basename "$f")"; done <"$WORK/saved.list"
echo "saved the $(wc -l <"$WORK/saved.list") credit_ledger files installed now (restored at exit)"
RESTORED=0
restore_saved() {
  local f
  [ "$RESTORED" = 0 ] || return 0
  RESTORED=1
  # remove whatever the test left, then put back exactly what was there
  while read -r f; do [ -n "$f" ] && rm -f "$f"; done < <(installed_files)
  if [ -s "$WORK/saved.list" ]; then
    while read -r f; do [ -n "$f" ] && put "$WORK/saved/$(basename "$f")" "$f"; done <"$WORK/saved.list"
  else
    do_install "$pkg" 2>/dev/null
  fi
}
ops_on_exit "restore_saved"

if do_install "$pkg" 2>"$WORK/install.log"; then
  ok "--install copied $(package_files "$pkg" | wc -l) files into the target PostgreSQL"
else
  fail "--install" "$(cat "$WORK/install.log")"
fi
same=1
while read -r f; do cmp -s "$f" "$(dest_of "$f")" || { same=0; echo "  differs: $(dest_of "$f")"; }; done < <(package_files "$pkg")
if [ "$same" = 1 ]; then ok "installed files equal the package's"; else fail "installed files equal the package's"; fi

# ---------------------------------------------------------------- 3. a cluster, a user's database
# shellcheck source=tests/cluster.sh
source "$REPO/tests/cluster.sh"
ops_on_exit "cluster_stop ops-install"
if cluster_start ops-install "$TBIN" 2>"$WORK/cluster.log"; then
  ok "a cluster of the target PostgreSQL ($("$TBIN/postgres" --version))"
else
  fail "start a cluster of $TBIN" "$(tail -n 20 "$WORK/cluster.log")"
  ops_finish
fi
check_eq "the cluster offers credit_ledger $version" "$version" \
  "$(q postgres "SELECT default_version FROM pg_available_extensions WHERE name = '$EXT'")"
q postgres "CREATE ROLE shop_owner LOGIN" >/dev/null
q postgres "CREATE DATABASE shop OWNER shop_owner" >/dev/null
check_sqlstate "the database owner (not a superuser) may not create the untrusted extension" 42501 shop \
  "CREATE EXTENSION credit_ledger" shop_owner
if q shop "CREATE EXTENSION $EXT" >"$WORK/create.log" 2>&1; then
  ok "CREATE EXTENSION credit_ledger; in the user's database (as the superuser)"
else
  fail "CREATE EXTENSION credit_ledger; in the user's database" "$(cat "$WORK/create.log")"
fi
check_eq "installed version" "$version" "$(q shop "SELECT extversion FROM pg_extension WHERE extname = '$EXT'")"
qf shop /dev/stdin >/dev/null <<'SQL'
SELECT credit_rate_set(action => 'chat', variant => 'opus', credits => 15, vendor_cost => 0.075);
SELECT credit_wallet_create(wallet => 'cust_42');
SELECT credit_grant(wallet => 'cust_42', amount => 500, unit_price => 0.01);
SQL

# ---------------------------------------------------------------- 4. the documented GRANTs
grants_sql="$(awk '
  /^## Bundles/ { insec = 1; next }
  insec && /^## / { exit }
  insec && /^```sql/ { inblock = 1; next }
  inblock && /^```/ { exit }
  inblock { print }' "$REPO/docs/security.md")"
if grep -q 'credit_ledger_grant' <<<"$grants_sql"; then
  ok "docs/security.md section 'Bundles' has the GRANT block ($(grep -c ';' <<<"$grants_sql") statements)"
else
  fail "docs/security.md section 'Bundles' has a GRANT block" "none found in $REPO/docs/security.md"
fi
printf '%s\n' "$grants_sql" | sed 's/^/  docs\/security.md: /'
q postgres "CREATE ROLE finance LOGIN" >/dev/null     # the docs grant to it without creating it
q postgres "CREATE ROLE nobody LOGIN" >/dev/null
if printf '%s\n' "$grants_sql" | "${OPS_PSQL[@]}" -d shop >"$WORK/grants.log" 2>&1; then
  ok "the documented GRANT block runs as written"
else
  fail "the documented GRANT block runs as written" "$(cat "$WORK/grants.log")"
fi

# as_app <sql> — run as role app over its own connection
as_role() { local role="$1"; shift; "${OPS_PSQL[@]}" -d shop -U "$role" -At -c "$1"; }
check_eq "app: credit_authorize approved" "true|37.5|462.5" \
  "$(as_role app "SELECT approved || '|' || cost || '|' || balance FROM credit_authorize(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 2.5, idempotency_key => 'req_8f3a')")"
check_eq "app: credit_quote" "true|15" \
  "$(as_role app "SELECT approved || '|' || cost FROM credit_quote(wallet => 'cust_42', action => 'chat', variant => 'opus')")"
check_eq "app: credit_hold then credit_capture" "captured|30" \
  "$(as_role app "SELECT status || '|' || cost FROM credit_capture(authorization_id => (SELECT authorization_id FROM credit_hold(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 4)), quantity => 2)")"
check_eq "app: credit_hold then credit_release" "released" \
  "$(as_role app "SELECT status FROM credit_release(authorization_id => (SELECT authorization_id FROM credit_hold(wallet => 'cust_42', action => 'chat', variant => 'opus', quantity => 1)))")"
check_eq "app: credit_refund" "10" \
  "$(as_role app "SELECT amount FROM credit_refund(authorization_id => (SELECT authorization_id FROM credit_authorize(wallet => 'cust_42', action => 'chat', variant => 'opus')), amount => 10)")"
check_eq "app: credit_balance and credit_grants (500 - 37.5 - 30 - 15 + 10)" "427.5|427.5" \
  "$(as_role app "SELECT credit_balance('cust_42') || '|' || (SELECT sum(remaining) FROM credit_grants('cust_42'))")"
for sql in "SELECT count(*) FROM credit_ledger.journal" \
           "SELECT * FROM credit_ledger.grants" \
           "UPDATE credit_ledger.grants SET remaining = 1000000" \
           "UPDATE credit_ledger.wallets SET frozen = false" \
           "INSERT INTO credit_ledger.journal (wallet_id, asset, kind, amount) VALUES (1, 'credits', 'grant', 1000)" \
           "DELETE FROM credit_ledger.authorizations" \
           "TRUNCATE credit_ledger.journal" \
           "SELECT * FROM credit_ledger.usage_daily" \
           "SELECT credit_ledger._balance(1, 'credits')" \
           "SELECT credit_grant(wallet => 'cust_42', amount => 1000000)" \
           "SELECT credit_wallet_create(wallet => 'mine')" \
           "SELECT credit_wallet_update(wallet => 'cust_42', overdraft_limit => 1000000)" \
           "SELECT credit_rate_set(action => 'chat', variant => 'opus', credits => 0)" \
           "SELECT * FROM credit_expire()" \
           "SELECT * FROM credit_verify()"; do
  check_sqlstate "app denied: $sql" 42501 shop "$sql" app
done
check_eq "finance: reads the reports" "1" \
  "$(as_role finance "SELECT count(*) FROM credit_ledger.usage_daily WHERE wallet = 'cust_42' AND action = 'chat'")"
check_sqlstate "finance denied: UPDATE credit_ledger.grants" 42501 shop "UPDATE credit_ledger.grants SET remaining = 0" finance
check_sqlstate "finance denied: credit_authorize" 42501 shop "SELECT credit_authorize(wallet => 'cust_42', action => 'chat')" finance
check_sqlstate "a role without grants cannot authorize (nothing granted to PUBLIC)" 42501 shop \
  "SELECT credit_authorize(wallet => 'cust_42', action => 'chat', variant => 'opus')" nobody
check_eq "credit_verify() empty" "0" "$(q shop 'SELECT count(*) FROM credit_verify()')"

# ---------------------------------------------------------------- 5. uninstall
# the documented command (PG_CONFIG names the target PostgreSQL: the sandbox's in sandbox mode)
PG_CONFIG="$TARGET_PG_CONFIG" "$0" --uninstall >"$WORK/uninstall.log" 2>&1 || fail "--uninstall exit status"
sed 's/^/  /' "$WORK/uninstall.log"
left="$(installed_files)"
if [ -z "$left" ]; then ok "--uninstall removed every credit_ledger file"; else fail "--uninstall removed every credit_ledger file" "$left"; fi
q postgres "CREATE DATABASE shop2" >/dev/null
out="$("${OPS_PSQL[@]}" -d shop2 -v VERBOSITY=verbose -c "CREATE EXTENSION $EXT" 2>&1 || true)"
if grep -q 'ERROR:' <<<"$out"; then
  ok "after --uninstall, CREATE EXTENSION credit_ledger fails: $(grep -m1 'ERROR:' <<<"$out" | sed 's/^.*ERROR: *//')"
else
  fail "after --uninstall, CREATE EXTENSION credit_ledger fails" "$out"
fi
check_eq "after --uninstall, credit_ledger is not in pg_available_extensions" "0" \
  "$(q postgres "SELECT count(*) FROM pg_available_extensions WHERE name = '$EXT'")"
cluster_stop ops-install 2>/dev/null

# ---------------------------------------------------------------- 6. restore the state found
restore_saved
same=1
while read -r f; do [ -n "$f" ] && { cmp -s "$f" "$WORK/saved/$(basename "$f")" || same=0; }; done <"$WORK/saved.list"
if [ -s "$WORK/saved.list" ]; then
  check_eq "restored the $(wc -l <"$WORK/saved.list") files installed before the test, byte for byte" "1|$(sort "$WORK/saved.list" | paste -sd' ' -)" \
    "$same|$(installed_files | sort | paste -sd' ' -)"
else
  check_eq "reinstalled the package (nothing was installed before the test)" "$(package_files "$pkg" | wc -l)" "$(installed_files | wc -l)"
fi
ops_finish
