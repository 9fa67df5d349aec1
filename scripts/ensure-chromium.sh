#!/usr/bin/env bash
# Makes sure a headless Chromium is on PATH for the HTML-report integration
# test, from Debian's own package (the only browser source CI can reach: a
# browser build downloaded by a test tool would fail offline). Idempotent:
# does nothing but print the version when chromium is already there.
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1; then
  # Root (CI, the dev machines) needs no sudo; elsewhere ask for it rather
  # than fail half-way through apt.
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
  echo "ensure-chromium: installing chromium from the Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium
fi

# The version also proves the binary starts (missing shared libraries show here).
chromium --version
