#!/usr/bin/env bash
# A private MariaDB instance with the server_audit plugin logging QUERY and
# TABLE events to a file: the input of readtrail's database-audit reader
# (producers/db-audit). It has its own data directory, port and socket; the
# machine's own server (3306) is never started, stopped or reconfigured.
#
# Usage: scripts/mariadb-audit.sh {start|stop|restart|status|reset|rotate}
#
#   start    mariadb-install-db once, start the server as the mysql user,
#            create the readtrail user; a no-op if already running
#   stop     shut this instance down (mariadb-admin shutdown)
#   restart  stop + start
#   status   exit 0 and print the address if running and answering, else 1
#   reset    stop + delete the instance directory
#   rotate   rotate the audit log now (SET GLOBAL server_audit_file_rotate_now = ON)
#
# The audit log holds, per statement touching a table, one TABLE line per
# table (READ, WRITE, ...) and then the QUERY line; both carry the
# connection id and query id the reader joins them on. server_audit writes
# the server's local time with no zone, so the server runs with TZ=UTC (and
# default_time_zone = '+00:00' for its sessions).
#
# Environment:
#   READTRAIL_MARIADB_AUDIT_PORT         port (default 53306)
#   READTRAIL_MARIADB_AUDIT_HOME         instance directory (default <repo>/.cache/mariadb-audit)
#   READTRAIL_MARIADB_AUDIT_ROTATE_SIZE  server_audit_file_rotate_size in bytes
#                                        (default 104857600; 0 never rotates on size)
#   READTRAIL_MARIADB_AUDIT_ROTATIONS    server_audit_file_rotations (default 9)
#
# `start` and `status` print exactly one line on stdout:
#   mariadb-audit: 127.0.0.1:53306 (pid N, user readtrail, audit log <file>)
# Progress and errors go to stderr.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

HOST=127.0.0.1
PORT="${READTRAIL_MARIADB_AUDIT_PORT:-53306}"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1024 || PORT > 65535)); then
  echo "mariadb-audit.sh: READTRAIL_MARIADB_AUDIT_PORT must be a port number from 1024 to 65535 (got '$PORT')" >&2
  exit 2
fi
if ((PORT == 3306)); then
  echo "mariadb-audit.sh: port 3306 belongs to the machine's own server; choose another" >&2
  exit 2
fi
ROTATE_SIZE="${READTRAIL_MARIADB_AUDIT_ROTATE_SIZE:-104857600}"
ROTATIONS="${READTRAIL_MARIADB_AUDIT_ROTATIONS:-9}"
[[ "$ROTATE_SIZE" =~ ^[0-9]+$ ]] || { echo "mariadb-audit.sh: READTRAIL_MARIADB_AUDIT_ROTATE_SIZE must be a byte count (got '$ROTATE_SIZE')" >&2; exit 2; }
[[ "$ROTATIONS" =~ ^[0-9]+$ ]] && ((ROTATIONS <= 999)) || { echo "mariadb-audit.sh: READTRAIL_MARIADB_AUDIT_ROTATIONS must be 0 to 999 (got '$ROTATIONS')" >&2; exit 2; }

MYHOME="${READTRAIL_MARIADB_AUDIT_HOME:-$REPO_ROOT/.cache/mariadb-audit}"
DATA="$MYHOME/data"
RUN="$MYHOME/run"
SOCKET="$RUN/mysqld.sock"
PIDFILE="$RUN/mysqld.pid"
LOGDIR="$MYHOME/log"
AUDIT_LOG="$LOGDIR/server_audit.log"
ERROR_LOG="$MYHOME/mysqld.err"
LOCKFILE="$MYHOME/.lock"
PLUGIN=/usr/lib/mysql/plugin/server_audit.so
APP_USER=readtrail

say() { echo "mariadb-audit: $*" >&2; }
die() { echo "mariadb-audit.sh: $*" >&2; exit 1; }

take_lock() {
  mkdir -p "$MYHOME"
  exec 9>"$LOCKFILE"
  flock -w 120 9 || die "timed out waiting for $LOCKFILE"
}

# Administrative statements go through this instance's socket as root
# (unix_socket authentication: we are root), never through TCP.
admin_sql() { mariadb --no-defaults -S "$SOCKET" -u root -N -B -e "$1"; }

need_binaries() {
  command -v mariadbd >/dev/null || die "mariadbd not found"
  command -v mariadb-install-db >/dev/null || die "mariadb-install-db not found"
  [[ -f "$PLUGIN" ]] || die "$PLUGIN is missing (package mariadb-server provides it)"
  id mysql >/dev/null 2>&1 || die "no 'mysql' system user"
}

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$PIDFILE")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *mariadbd* && "$cmd" == *"$DATA"* ]] || return 1
  echo "$pid"
}

answering() { mariadb-admin --no-defaults -S "$SOCKET" -u root --connect-timeout=2 ping >/dev/null 2>&1; }

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$PORT" 2>/dev/null; }

print_addr() { echo "mariadb-audit: $HOST:$PORT (pid $1, user $APP_USER, audit log $AUDIT_LOG)"; }

init_instance() {
  install -d -o mysql -g mysql -m 0700 "$MYHOME" "$RUN"
  install -d -o mysql -g mysql -m 0750 "$LOGDIR"
  chown mysql:mysql "$LOCKFILE"
  [[ -d "$DATA/mysql" ]] && return 0
  say "mariadb-install-db in $DATA"
  rm -rf "$DATA"
  install -d -o mysql -g mysql -m 0700 "$DATA"
  mariadb-install-db --no-defaults --user=mysql --datadir="$DATA" --auth-root-authentication-method=socket --skip-test-db >"$MYHOME/install.log" 2>&1 \
    || { tail -n 30 "$MYHOME/install.log" >&2; die "mariadb-install-db failed"; }
}

do_start() {
  need_binaries
  take_lock
  init_instance
  local pid
  if pid="$(running_pid)"; then
    if answering; then
      say "already running"
      print_addr "$pid"
      return 0
    fi
    die "pid $pid holds $DATA but does not answer (see $ERROR_LOG)"
  fi
  port_open && die "port $PORT on $HOST is already in use by another process"
  say "starting on $HOST:$PORT (audit log rotates at $ROTATE_SIZE bytes, keeps $ROTATIONS)"
  # TZ=UTC: server_audit stamps lines with the process's local time and no zone.
  # setsid + closed fds: the server outlives this script and holds none of its pipes or the lock.
  # The redirections are on the whole group: a background shell holding the
  # caller's stdout would keep a caller reading it to the end waiting forever.
  (cd / && TZ=UTC exec setsid runuser -u mysql -- /usr/sbin/mariadbd --no-defaults \
    --datadir="$DATA" --socket="$SOCKET" --pid-file="$PIDFILE" --port="$PORT" --bind-address="$HOST" \
    --log-error="$ERROR_LOG" --skip-name-resolve --innodb-buffer-pool-size=64M --max-connections=100 \
    --default-time-zone='+00:00' \
    --plugin-load-add=server_audit.so \
    --server-audit=FORCE_PLUS_PERMANENT \
    --server-audit-logging=ON \
    --server-audit-output-type=file \
    --server-audit-events=CONNECT,QUERY,TABLE \
    --server-audit-file-path="$AUDIT_LOG" \
    --server-audit-file-rotate-size="$ROTATE_SIZE" \
    --server-audit-file-rotations="$ROTATIONS" \
    --server-audit-query-log-limit=2147483647) </dev/null >/dev/null 2>&1 9>&- &
  local i
  for ((i = 0; i < 600; i++)); do
    answering && break
    sleep 0.1
  done
  answering || { tail -n 30 "$ERROR_LOG" >&2 2>/dev/null || true; die "server did not answer within 60 s"; }
  pid="$(running_pid)" || die "server answers but no pid file at $PIDFILE"
  admin_sql "CREATE USER IF NOT EXISTS '$APP_USER'@'127.0.0.1' IDENTIFIED BY '$APP_USER'; GRANT ALL ON *.* TO '$APP_USER'@'127.0.0.1' WITH GRANT OPTION;"
  print_addr "$pid"
}

do_stop() {
  take_lock
  local pid
  if ! pid="$(running_pid)"; then
    say "not running"
    return 0
  fi
  mariadb-admin --no-defaults -S "$SOCKET" -u root shutdown >&2 || kill "$pid"
  local i
  for ((i = 0; i < 600; i++)); do
    [[ -d "/proc/$pid" ]] || break
    sleep 0.1
  done
  [[ -d "/proc/$pid" ]] && die "pid $pid did not stop within 60 s"
  say "stopped"
}

do_status() {
  local pid
  if pid="$(running_pid)" && answering; then
    print_addr "$pid"
    return 0
  fi
  if [[ -n "${pid:-}" ]]; then say "pid $pid is running but not answering"; else say "not running"; fi
  return 1
}

do_reset() {
  do_stop
  say "deleting $MYHOME"
  rm -rf "$MYHOME"
}

do_rotate() {
  running_pid >/dev/null || die "not running"
  admin_sql "SET GLOBAL server_audit_file_rotate_now = ON"
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop && do_start ;;
  status) do_status ;;
  reset) do_reset ;;
  rotate) do_rotate ;;
  *)
    echo "usage: $0 {start|stop|restart|status|reset|rotate}" >&2
    exit 2
    ;;
esac
