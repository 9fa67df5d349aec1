#!/usr/bin/env bash
# A private redis-server for tests that stop Redis mid-run (the extraction
# guard's onStoreDown policies). Its own port, directory and pid file; the
# machine's Redis (6379) is never started, stopped or reconfigured here.
#
# Usage: scripts/redis.sh {start|stop|status}
#
#   start   start it (no persistence, bound to 127.0.0.1); a no-op if it
#           already answers
#   stop    shut down this instance only (by its own pid file), no save
#   status  exit 0 and print the address if it answers, else 1
#
# Environment:
#   READTRAIL_REDIS_PORT  port (default 56379; never 6379)
#   READTRAIL_REDIS_HOME  directory for its pid and log
#                         (default ${TMPDIR:-/tmp}/readtrail-redis-<port>)
#
# `start` and `status` print one line on stdout: redis: 127.0.0.1:<port> (pid N)
set -euo pipefail

HOST=127.0.0.1
PORT="${READTRAIL_REDIS_PORT:-56379}"
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1024 || PORT > 65535)); then
  echo "redis.sh: READTRAIL_REDIS_PORT must be a port number from 1024 to 65535 (got '$PORT')" >&2
  exit 2
fi
if ((PORT == 6379)); then
  echo "redis.sh: port 6379 belongs to the machine's own Redis; choose another" >&2
  exit 2
fi
HOME_DIR="${READTRAIL_REDIS_HOME:-${TMPDIR:-/tmp}/readtrail-redis-$PORT}"
PIDFILE="$HOME_DIR/redis.pid"

answers() { redis-cli -h "$HOST" -p "$PORT" ping 2>/dev/null | grep -q PONG; }
pid_of() { [[ -s "$PIDFILE" ]] && cat "$PIDFILE"; }

case "${1:-}" in
  start)
    if answers; then
      echo "redis: $HOST:$PORT (pid $(pid_of || echo '?'))"
      exit 0
    fi
    mkdir -p "$HOME_DIR"
    chmod 700 "$HOME_DIR"
    redis-server --port "$PORT" --bind "$HOST" --protected-mode yes --daemonize yes \
      --pidfile "$PIDFILE" --dir "$HOME_DIR" --logfile "$HOME_DIR/redis.log" \
      --save '' --appendonly no >&2
    for _ in $(seq 1 100); do
      if answers; then
        echo "redis: $HOST:$PORT (pid $(pid_of))"
        exit 0
      fi
      sleep 0.05
    done
    echo "redis.sh: redis-server did not answer on $HOST:$PORT within 5 s; see $HOME_DIR/redis.log" >&2
    exit 1
    ;;
  stop)
    pid="$(pid_of || true)"
    if [[ -z "$pid" ]]; then
      exit 0
    fi
    # Only the process this script started: its pid file, and it must be a redis-server on our port.
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "redis-server.*:$PORT"; then
      kill "$pid"
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
      done
    fi
    rm -f "$PIDFILE"
    ;;
  status)
    if answers; then
      echo "redis: $HOST:$PORT (pid $(pid_of || echo '?'))"
      exit 0
    fi
    exit 1
    ;;
  *)
    echo "usage: scripts/redis.sh {start|stop|status}" >&2
    exit 2
    ;;
esac
