#!/usr/bin/env bash
# tests/upgrade/upgrade.sh — ALTER EXTENSION credit_ledger UPDATE from every released version
# (0.1.0 to 0.14.0; their install scripts are frozen here) keeps every row and yields exactly the
# catalog of a fresh install of the current version. Steps 1-4 run once per released version.
#
# Against the running cluster in PGHOST/PGPORT/PGUSER (a superuser) whose PostgreSQL has the
# current extension installed (cargo pgrx install). Steps:
#   1. put tests/upgrade/credit_ledger--<old>.sql (the frozen install script) into
#      $(pg_config --sharedir)/extension/ when it is not there (pg_config: $PG_CONFIG, else the
#      running server's own); it is removed again at exit when this script put it there. An
#      installed copy that differs from the frozen one is a failure.
#   2. CREATE EXTENSION credit_ledger VERSION '<old>'; fill it (tests/ops/fixture.sql);
#      snapshot every row, sequence, balance and report (tests/ops/snapshot.sql).
#   3. ALTER EXTENSION credit_ledger UPDATE: the version is the control file's default_version;
#      the snapshot is unchanged; the next credit_authorize works; credit_verify() is empty.
#   4. the upgraded catalog (tests/upgrade/catalog.sql: members, functions with bodies and
#      settings, columns, constraints, indexes, triggers, views, sequences, types, comments,
#      ACLs, config tables) equals the catalog of a fresh CREATE EXTENSION in another database.
# Prints details, then `upgrade: N passed, M failed`; exit status 0 only without failures.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/ops/lib.sh
source "$HERE/../ops/lib.sh"
# five calls of 40 on the capped wallet with lanes of the fixture (one key each: a LATERAL call
# without one would be run once and its row repeated): approved|declined at the cap
CAPPED_CALLS="SELECT count(*) FILTER (WHERE x.approved) || '|' || count(*) FILTER (WHERE x.reason = 'spend_cap_reached')
                FROM generate_series(1, 5) i,
                     LATERAL credit_authorize(wallet => 'capped_l', action => 'image.generate', idempotency_key => 'capped-after-' || i) x"
ops_init upgrade

WORK="$(mktemp -d /tmp/cl_ops_upgrade.XXXXXX)"
ops_on_exit "rm -rf '$WORK'"

if [ -n "${PG_CONFIG:-}" ]; then PGC="$PG_CONFIG"; else PGC="$(ops_bindir)/pg_config"; fi
EXTDIR="$("$PGC" --sharedir)/extension"
echo "extension directory: $EXTDIR (from $PGC)"

# upgrade_from <old> — steps 1-4 from one released version
upgrade_from() {
  local OLD="$1" FROZEN="$HERE/credit_ledger--$1.sql"
  local installed default_version path up bal next hold fresh kind a b
  echo "==== from $OLD"
  # ---------------------------------------------------------------- 1. the frozen install script
  installed="$EXTDIR/credit_ledger--$OLD.sql"
  if [ ! -f "$installed" ]; then
    if cp "$FROZEN" "$installed" 2>"$WORK/$OLD.cp.err"; then
      chmod 644 "$installed"
      ops_on_exit "rm -f '$installed'"
      ok "copied the frozen $OLD install script into $EXTDIR (removed again at exit)"
    else
      fail "copy the frozen $OLD install script into $EXTDIR" "$(cat "$WORK/$OLD.cp.err")" "run as root, or install it first"
      return 0
    fi
  elif cmp -s "$FROZEN" "$installed"; then
    ok "the installed $OLD install script is the frozen one"
  else
    fail "the installed $OLD install script is the frozen one" "$installed differs from $FROZEN"
  fi
  default_version="$(q postgres "SELECT default_version FROM pg_available_extensions WHERE name = 'credit_ledger'")"
  echo "control file default_version: $default_version"
  path="$(q postgres "SELECT string_agg(version, ' -> ' ORDER BY ord)
                       FROM (SELECT v.version, v.ord FROM pg_extension_update_paths('credit_ledger') p,
                                    unnest(string_to_array(p.path, '--')) WITH ORDINALITY v(version, ord)
                              WHERE p.source = '$OLD' AND p.target = '$default_version') s")"
  if [ -n "$path" ]; then ok "an update path $OLD -> $default_version exists ($path)"; else fail "an update path $OLD -> $default_version exists"; fi

  # ---------------------------------------------------------------- 2. install the old version and fill it
  up="$(ops_new_db "upgraded_${OLD//./_}")"
  q "$up" "CREATE EXTENSION credit_ledger VERSION '$OLD'" >/dev/null
  check_eq "CREATE EXTENSION credit_ledger VERSION '$OLD'" "$OLD" "$(q "$up" "SELECT extversion FROM pg_extension WHERE extname = 'credit_ledger'")"
  qf "$up" "$OPS_DIR/fixture.sql" >"$WORK/$OLD.fixture.out"
  ops_ext_snapshot "$up" "$WORK/$OLD.before.snap"
  check_eq "the $OLD ledger is healthy after filling (credit_verify() empty)" "verify.rows|0" "$(grep '^verify.rows|' "$WORK/$OLD.before.snap")"
  echo "before: $(grep '^journal.summary|' "$WORK/$OLD.before.snap")"
  echo "before: $(grep '^authorizations.summary|' "$WORK/$OLD.before.snap")"

  # ---------------------------------------------------------------- 3. ALTER EXTENSION ... UPDATE
  if q "$up" "ALTER EXTENSION credit_ledger UPDATE" >"$WORK/$OLD.alter.out" 2>&1; then
    ok "ALTER EXTENSION credit_ledger UPDATE"
  else
    fail "ALTER EXTENSION credit_ledger UPDATE" "$(cat "$WORK/$OLD.alter.out")"
  fi
  check_eq "extension version after the update is $default_version" "$default_version" \
    "$(q "$up" "SELECT extversion FROM pg_extension WHERE extname = 'credit_ledger'")"
  ops_ext_snapshot "$up" "$WORK/$OLD.after.snap"
  echo "after:  $(grep '^journal.summary|' "$WORK/$OLD.after.snap")"
  check_eq "journal intact (count, sums, md5 of the ordered rows)" \
    "$(grep '^journal.summary|' "$WORK/$OLD.before.snap")" "$(grep '^journal.summary|' "$WORK/$OLD.after.snap")"
  check_eq "authorizations intact" \
    "$(grep '^authorizations.summary|' "$WORK/$OLD.before.snap")" "$(grep '^authorizations.summary|' "$WORK/$OLD.after.snap")"
  check_eq "credit_balance of every wallet and asset unchanged" \
    "$(grep '^balance|' "$WORK/$OLD.before.snap")" "$(grep '^balance|' "$WORK/$OLD.after.snap")"
  # what the update adds (a new table's rows, its sequence) is not in the old snapshot
  awk -F'|' 'NR == FNR { kind[$1] = 1; if ($1 == "sequence") seq[$2] = 1; next }
             ($1 in kind) && !($1 == "sequence" && !($2 in seq))' \
    "$WORK/$OLD.before.snap" "$WORK/$OLD.after.snap" >"$WORK/$OLD.after.old-objects"
  echo "new with the update: $(diff "$WORK/$OLD.after.old-objects" "$WORK/$OLD.after.snap" | sed -n 's/^> //p' | cut -d'|' -f1,2 | tr '\n' ' ')"
  check_diff "every ledger row, sequence, balance and report unchanged by the update" "$WORK/$OLD.before.snap" "$WORK/$OLD.after.old-objects"
  bal="$(grep '^balance|cust_2|credits|' "$WORK/$OLD.after.snap" | cut -d'|' -f4)"
  next="$(q "$up" "SELECT approved || '|' || cost || '|' || balance FROM credit_authorize(wallet => 'cust_2', action => 'chat', variant => 'opus', quantity => 1)")"
  check_eq "credit_authorize after the update (pro card: 10 credits/1k, from $bal)" "true|10|$(q "$up" "SELECT $bal - 10")" "$next"
  hold="$(q "$up" "SELECT status || '|' || cost FROM credit_capture(authorization_id => (SELECT id FROM public.ops_holds WHERE name = 'open'))")"
  check_eq "a hold opened on $OLD is captured after the update" "captured|40" "$hold"
  q "$up" "INSERT INTO public.llm_calls (customer_id, kind, model, tokens, request_id) VALUES ('cust_1', 'chat', 'haiku', 1, 'r-after-update')" >/dev/null
  check_eq "the usage trigger created on $OLD bills after the update" "approved" \
    "$(q "$up" "SELECT a.status FROM public.llm_calls l JOIN credit_ledger.authorizations a ON a.id = l.auth_id WHERE l.request_id = 'r-after-update'")"
  if [ "$(q "$up" "SELECT count(*) FROM public.ops_holds WHERE name = 'capped_open'")" = 1 ]; then
    # a capped wallet with lanes (40 spent, 40 held of 200): the hold released after the update
    # gives its 40 back, so exactly four more calls of 40 fit under the cap
    check_eq "a capped wallet with lanes from $OLD: its hold released, then exactly 4 calls fit the cap" \
      "released|4|1" "$(q "$up" "SELECT status FROM credit_release(authorization_id => (SELECT id FROM public.ops_holds WHERE name = 'capped_open'))")|$(q "$up" "$CAPPED_CALLS")"
  fi
  check_eq "credit_verify() empty after the update and the new calls" "0" "$(q "$up" 'SELECT count(*) FROM credit_verify()')"

  # ---------------------------------------------------------------- 4. upgraded catalog = fresh catalog
  fresh="$(ops_new_db "fresh_${OLD//./_}")"
  q "$fresh" "CREATE EXTENSION credit_ledger" >/dev/null
  qf "$up" "$HERE/catalog.sql" -At >"$WORK/$OLD.upgraded.catalog"
  qf "$fresh" "$HERE/catalog.sql" -At >"$WORK/$OLD.fresh.catalog"
  echo "catalog listing: $(wc -l <"$WORK/$OLD.fresh.catalog") lines ($(cut -d'|' -f1 "$WORK/$OLD.fresh.catalog" | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}' | sed 's/, $//'))"
  # one check per kind of line (every prefix found in either listing)
  while read -r kind; do
    a="$(grep "^$kind|" "$WORK/$OLD.upgraded.catalog" || true)"
    b="$(grep "^$kind|" "$WORK/$OLD.fresh.catalog" || true)"
    if [ "$a" == "$b" ]; then
      ok "upgraded = fresh: ${kind} ($(grep -c "^$kind|" "$WORK/$OLD.fresh.catalog" || true) lines)"
    else
      fail "upgraded = fresh: ${kind}" "$(diff -u --label fresh --label upgraded <(printf '%s\n' "$b") <(printf '%s\n' "$a") | head -n 40)"
    fi
  done < <(cut -d'|' -f1 "$WORK/$OLD.upgraded.catalog" "$WORK/$OLD.fresh.catalog" | sort -u)
  if [ -n "${OPS_CATALOG_OUT:-}" ]; then cp "$WORK/$OLD.fresh.catalog" "$OPS_CATALOG_OUT"; fi

}

for old in 0.1.0 0.2.0 0.3.0 0.4.0 0.5.0 0.6.0 0.7.0 0.8.0 0.9.0 0.10.0 0.11.0 0.12.0 0.13.0 0.14.0; do upgrade_from "$old"; done
ops_finish
