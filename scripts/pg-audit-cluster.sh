#!/usr/bin/env bash
# A private PostgreSQL 15 cluster with pgAudit object auditing, whose log is
# the input of readtrail's database-audit reader (producers/db-audit). It has
# its own data directory and port; the machine's own server (5432) is never
# started, stopped or reconfigured by this script.
#
# Usage: scripts/pg-audit-cluster.sh {start|stop|restart|status|reset|rotate|audit DB TABLE...}
#
#   start    install postgresql-15-pgaudit if pgaudit.so is missing, initdb
#            once, (re)write the audit settings, start the server, create the
#            database and the audit role; a no-op if already running
#   stop     fast shutdown of this cluster only
#   restart  stop + start (settings rewritten)
#   status   exit 0 and print the address if running and answering, else 1
#   reset    stop + delete the cluster directory (next start is a fresh initdb)
#   rotate   switch to new log files now (pg_ctl logrotate)
#   audit DB TABLE...   audit reads of these tables (schema.table) in database
#            DB: GRANT SELECT on them to the audit role
#
# Why object auditing (pgaudit.role) rather than session auditing
# (pgaudit.log = 'read'): the server itself then logs only reads of the
# tables granted to the audit role, one line per table and statement, so the
# log grows with sensitive reads rather than with all traffic (catalog
# lookups included), and no session can switch it off (both settings are
# superuser-only). The reader still drops every entry whose table is not in
# its own --tables list, so a grant made by mistake publishes nothing.
#
# Environment:
#   READTRAIL_PG_AUDIT_PORT       port (default 55433)
#   READTRAIL_PG_AUDIT_HOME       cluster directory, owned by postgres
#                                 (default <repo>/.cache/pg-audit)
#   READTRAIL_PG_AUDIT_FORMAT     csvlog | jsonlog | both (default both: one
#                                 .csv and one .json file per log period)
#   READTRAIL_PG_AUDIT_ROTATION_SIZE  log_rotation_size, e.g. 0 (off), 1MB
#                                 (default 0)
#   READTRAIL_PG_AUDIT_DATABASE   database created at start (default readtrail_audit)
#
# `start` and `status` print exactly one line on stdout:
#   pg-audit: 127.0.0.1:55433 (pid N, database readtrail_audit, log dir <dir>)
# Progress and errors go to stderr.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

HOST=127.0.0.1
PORT="${READTRAIL_PG_AUDIT_PORT:-55433}"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1024 || PORT > 65535)); then
  echo "pg-audit-cluster.sh: READTRAIL_PG_AUDIT_PORT must be a port number from 1024 to 65535 (got '$PORT')" >&2
  exit 2
fi
# The machine's server: this script must never touch it.
if ((PORT == 5432)); then
  echo "pg-audit-cluster.sh: port 5432 belongs to the machine's own server; choose another" >&2
  exit 2
fi
FORMAT="${READTRAIL_PG_AUDIT_FORMAT:-both}"
case "$FORMAT" in
  csvlog | jsonlog) DESTINATION="$FORMAT" ;;
  both) DESTINATION='csvlog,jsonlog' ;;
  *) echo "pg-audit-cluster.sh: READTRAIL_PG_AUDIT_FORMAT must be csvlog, jsonlog or both (got '$FORMAT')" >&2; exit 2 ;;
esac
ROTATION_SIZE="${READTRAIL_PG_AUDIT_ROTATION_SIZE:-0}"
if ! [[ "$ROTATION_SIZE" =~ ^[0-9]+(kB|MB|GB)?$ ]]; then
  echo "pg-audit-cluster.sh: READTRAIL_PG_AUDIT_ROTATION_SIZE must be a size such as 0, 512kB or 1MB (got '$ROTATION_SIZE')" >&2
  exit 2
fi
DATABASE="${READTRAIL_PG_AUDIT_DATABASE:-readtrail_audit}"
if ! [[ "$DATABASE" =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; then
  echo "pg-audit-cluster.sh: READTRAIL_PG_AUDIT_DATABASE must be a lowercase identifier (got '$DATABASE')" >&2
  exit 2
fi
PGHOME="${READTRAIL_PG_AUDIT_HOME:-$REPO_ROOT/.cache/pg-audit}"
PGBIN=/usr/lib/postgresql/15/bin
PGLIB=/usr/lib/postgresql/15/lib
DATA="$PGHOME/data"
SOCKETS="$PGHOME/run"
LOGDIR="$PGHOME/log"
CTL_LOG="$PGHOME/pg_ctl.log"
CONF_FILE="$DATA/readtrail-audit.conf"
LOCKFILE="$PGHOME/.lock"
AUDIT_ROLE=readtrail_auditor

say() { echo "pg-audit: $*" >&2; }
die() { echo "pg-audit-cluster.sh: $*" >&2; exit 1; }

# PostgreSQL refuses to run as root; every server-side command runs as postgres
# from a directory postgres can read. fd 9 (the lock) is closed: a server
# started from here must not hold it.
as_pg() { (cd / && runuser -u postgres -- "$@" 9>&-); }
psql_admin() { as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKETS" -p "$PORT" -U postgres "$@"; }

take_lock() {
  mkdir -p "$PGHOME"
  exec 9>"$LOCKFILE"
  flock -w 120 9 || die "timed out waiting for $LOCKFILE"
}

need_binaries() {
  [[ -x "$PGBIN/initdb" && -x "$PGBIN/pg_ctl" ]] || die "PostgreSQL 15 binaries not found in $PGBIN"
  id postgres >/dev/null 2>&1 || die "no 'postgres' system user"
}

ensure_pgaudit() {
  [[ -f "$PGLIB/pgaudit.so" ]] && return 0
  say "installing postgresql-15-pgaudit (pgaudit.so missing)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15-pgaudit >&2; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15-pgaudit >&2
  fi
  [[ -f "$PGLIB/pgaudit.so" ]] || die "postgresql-15-pgaudit installed but $PGLIB/pgaudit.so is still missing"
}

# Prints the postmaster pid of this cluster if it is alive.
running_pid() {
  [[ -f "$DATA/postmaster.pid" ]] || return 1
  local pid
  pid="$(head -n1 "$DATA/postmaster.pid" | tr -dc '0-9')"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *postgres* && "$cmd" == *"$DATA"* ]] || return 1
  echo "$pid"
}

answering() { as_pg "$PGBIN/pg_isready" -q -h "$HOST" -p "$PORT" -t 2; }

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$PORT" 2>/dev/null; }

print_addr() { echo "pg-audit: $HOST:$PORT (pid $1, database $DATABASE, log dir $LOGDIR)"; }

init_cluster() {
  install -d -o postgres -g postgres -m 0700 "$PGHOME" "$SOCKETS"
  # The log directory is the reader's input: readable by group so a reader
  # running as another member of the postgres group can follow it.
  install -d -o postgres -g postgres -m 0750 "$LOGDIR"
  touch "$CTL_LOG"
  chown postgres:postgres "$LOCKFILE" "$CTL_LOG"
  [[ -f "$DATA/PG_VERSION" ]] && return 0
  say "initdb in $DATA"
  rm -rf "$DATA"
  # Trust is for this throwaway cluster only: it listens on 127.0.0.1 and a
  # socket directory only postgres can enter.
  as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$CTL_LOG" 2>&1 \
    || { tail -n 30 "$CTL_LOG" >&2; die "initdb failed"; }
  echo "include_if_exists = 'readtrail-audit.conf'" >>"$DATA/postgresql.conf"
}

# Rewritten on every start, so a changed port, format or rotation always applies.
write_conf() {
  cat >"$CONF_FILE" <<EOF
# Generated by scripts/pg-audit-cluster.sh; rewritten on every start.
port = $PORT
listen_addresses = '$HOST'
unix_socket_directories = '$SOCKETS'
max_connections = 60
shared_buffers = 128MB
shared_preload_libraries = 'pgaudit'
# Object auditing: reads of the tables granted to this role are logged
# (class READ, one line per table and statement). Session auditing stays off.
pgaudit.role = '$AUDIT_ROLE'
pgaudit.log = 'none'
# The statement on every line (the reader digests it), never its parameters
# (they are the data the audit log protects), no catalog noise.
pgaudit.log_statement_once = off
pgaudit.log_parameter = off
pgaudit.log_catalog = off
pgaudit.log_relation = on
pgaudit.log_level = 'log'
# A collector writing structured files the reader parses; UTC so the
# reader never guesses what a zone abbreviation means.
logging_collector = on
log_destination = '$DESTINATION'
log_directory = '$LOGDIR'
log_filename = 'postgresql-%Y%m%d-%H%M%S.log'
log_file_mode = 0640
log_rotation_age = 0
log_rotation_size = $ROTATION_SIZE
log_truncate_on_rotation = off
log_timezone = 'UTC'
timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  chown postgres:postgres "$CONF_FILE"
}

do_start() {
  need_binaries
  take_lock
  ensure_pgaudit
  init_cluster
  local pid
  if pid="$(running_pid)"; then
    if answering; then
      say "already running"
      print_addr "$pid"
      return 0
    fi
    die "pid $pid holds $DATA but $HOST:$PORT does not answer (see $CTL_LOG)"
  fi
  port_open && die "port $PORT on $HOST is already in use by another process"
  write_conf
  say "starting on $HOST:$PORT ($DESTINATION, rotation size $ROTATION_SIZE)"
  as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$CTL_LOG" -w -t 60 start >&2 \
    || { tail -n 30 "$CTL_LOG" >&2 2>/dev/null || true; die "pg_ctl start failed"; }
  pid="$(running_pid)" || die "server started but no postmaster.pid in $DATA"
  if [[ "$(psql_admin -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]]; then
    psql_admin -d postgres -c "CREATE DATABASE $DATABASE" >&2
  fi
  psql_admin -d postgres -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$AUDIT_ROLE') THEN CREATE ROLE $AUDIT_ROLE NOLOGIN; END IF; END \$\$" >&2
  psql_admin -d "$DATABASE" -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pgaudit" >&2
  print_addr "$pid"
}

do_stop() {
  take_lock
  if ! running_pid >/dev/null; then
    say "not running"
    return 0
  fi
  as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >&2
  say "stopped"
}

do_status() {
  local pid
  if pid="$(running_pid)" && answering; then
    print_addr "$pid"
    return 0
  fi
  if [[ -n "${pid:-}" ]]; then say "pid $pid is running but $HOST:$PORT is not answering"; else say "not running"; fi
  return 1
}

do_reset() {
  do_stop
  say "deleting $PGHOME"
  rm -rf "$PGHOME"
}

do_rotate() {
  running_pid >/dev/null || die "not running"
  as_pg "$PGBIN/pg_ctl" -D "$DATA" logrotate >&2
}

do_audit() {
  local db="${1:-}"
  shift || true
  [[ "$db" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "audit: DB must be a lowercase identifier (got '$db')"
  (($# > 0)) || die "audit: name at least one schema.table"
  running_pid >/dev/null || die "not running"
  local t
  for t in "$@"; do
    [[ "$t" =~ ^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$ ]] || die "audit: table must be schema.table in lowercase (got '$t')"
    psql_admin -d "$db" -c "GRANT SELECT ON $t TO $AUDIT_ROLE" >&2
  done
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop && do_start ;;
  status) do_status ;;
  reset) do_reset ;;
  rotate) do_rotate ;;
  audit) shift; do_audit "$@" ;;
  *)
    echo "usage: $0 {start|stop|restart|status|reset|rotate|audit DB TABLE...}" >&2
    exit 2
    ;;
esac
