#!/usr/bin/env bash
# The driver-hook tests run against the PostgreSQL and MariaDB servers this
# machine runs (127.0.0.1:5432 as postgres with trust auth, 127.0.0.1:3306 as
# root with no password). Start them if they are installed but stopped, and
# fail with a clear message otherwise.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
maria_up() { mysqladmin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot --connect-timeout=3 ping >/dev/null 2>&1; }

try_start() {
  local name="$1"
  echo "databases: $name is not answering; trying to start it" >&2
  service "$name" start >/dev/null 2>&1 || systemctl start "$name" >/dev/null 2>&1 || true
}

if ! command -v pg_isready >/dev/null || ! command -v mysqladmin >/dev/null; then
  echo "databases: pg_isready and mysqladmin are needed (Debian: postgresql-client, mariadb-client)" >&2
  exit 1
fi
pg_up || { try_start postgresql; sleep 3; }
maria_up || { try_start mariadb; sleep 3; }
pg_up || { echo "databases: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
maria_up || { echo "databases: MariaDB does not answer on 127.0.0.1:3306 (user root, no password)" >&2; exit 1; }
echo "databases: PostgreSQL 127.0.0.1:5432 and MariaDB 127.0.0.1:3306 answer"
