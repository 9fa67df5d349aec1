#!/usr/bin/env bash
# The README's test command: typecheck, unit tests, then integration tests
# against a real Kafka broker (started here if it is not running) and the
# embedded ClickHouse engine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
npx tsc -p tsconfig.json --noEmit
npx vitest run --project unit
bash scripts/kafka.sh start
npm run build --silent
npx vitest run --project integration
