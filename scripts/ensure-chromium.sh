#!/usr/bin/env bash
# Makes sure a headless Chromium is on PATH for the HTML-report integration
# test, from Debian's own package (the only browser source CI can reach: a
# browser build downloaded by a test tool would fail offline), and poppler's
# pdftotext/pdfinfo, with which the same test reads back the PDF Chromium
# prints (page count, page numbers, case id). Idempotent: does nothing but
# print the versions when both are there.
set -euo pipefail

PACKAGES=()
command -v chromium >/dev/null 2>&1 || PACKAGES+=(chromium)
{ command -v pdftotext >/dev/null 2>&1 && command -v pdfinfo >/dev/null 2>&1; } || PACKAGES+=(poppler-utils)

if [ "${#PACKAGES[@]}" -gt 0 ]; then
  # Root (CI, the dev machines) needs no sudo; elsewhere ask for it rather
  # than fail half-way through apt.
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi
  echo "ensure-chromium: installing ${PACKAGES[*]} from the Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
fi

# The versions also prove the binaries start (missing shared libraries show here).
chromium --version
pdftotext -v 2>&1 | head -n 1
