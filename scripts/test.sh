#!/usr/bin/env bash
# The README's test command (`npm test`): typecheck, lint, unit tests, then
# integration tests against a real Kafka broker (started here if it is not
# running), the embedded ClickHouse engine and the machine's PostgreSQL and
# MariaDB servers (the driver-hook tests) and headless Chromium from
# Debian's package (the HTML-report test; installed here if missing). Ends with one plain line
# "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p .cache
rm -f .cache/vitest-*.json

echo "== typecheck"
npx tsc -p tsconfig.json --noEmit
echo "== lint"
npx eslint . --max-warnings=0
echo "== unit tests"
status=0
npx vitest run --project unit --reporter=default --reporter=json --outputFile.json=.cache/vitest-unit.json || status=$?
if [ "$status" -eq 0 ]; then
  echo "== integration tests (real Kafka broker, embedded ClickHouse, the machine's PostgreSQL and MariaDB, headless Chromium)"
  bash scripts/kafka.sh start
  bash scripts/check-databases.sh
  bash scripts/ensure-chromium.sh
  npx vitest run --project integration --reporter=default --reporter=json --outputFile.json=.cache/vitest-integration.json || status=$?
fi
node scripts/test-summary.mjs .cache/vitest-unit.json .cache/vitest-integration.json
exit "$status"
