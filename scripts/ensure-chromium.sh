#!/usr/bin/env bash
# Makes sure a Chromium for the dashboard test is on the machine: the Debian package `chromium`,
# installed with apt-get when missing (scripts/ensure-debian-package.sh). Prints where it is.
# TIDEMARK_CHROMIUM, when set, names the executable to use instead.
set -euo pipefail
if [[ -n "${TIDEMARK_CHROMIUM:-}" && -x "${TIDEMARK_CHROMIUM}" ]]; then
  echo "$TIDEMARK_CHROMIUM"
  exit 0
fi
exec bash "$(dirname "$0")/ensure-debian-package.sh" chromium "the dashboard test" chromium chromium-browser
