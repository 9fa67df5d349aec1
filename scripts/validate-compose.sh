#!/usr/bin/env bash
# Validates docker-compose.yml with Debian's docker-compose (1.29) without a
# Docker engine: `config -q` only parses and interpolates the file.
# Installs the docker-compose package first if it is missing (needs root/apt);
# test/integration/compose-command.test.ts reads the file through it as well
# (and is skipped where docker-compose is missing).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "validate-compose: installing docker-compose (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker-compose >/dev/null
fi

docker-compose -f docker-compose.yml config -q
echo "docker-compose.yml: valid"
