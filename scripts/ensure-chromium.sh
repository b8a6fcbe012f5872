#!/usr/bin/env bash
# Makes sure a Chromium for the dashboard test is on the machine: the Debian package `chromium`,
# installed with apt-get when missing (as root, or through sudo without a password). Prints where
# it is. TIDEMARK_CHROMIUM, when set, names the executable to use instead.
set -euo pipefail

find_chromium() {
  if [[ -n "${TIDEMARK_CHROMIUM:-}" && -x "${TIDEMARK_CHROMIUM}" ]]; then echo "$TIDEMARK_CHROMIUM"; return 0; fi
  for c in chromium chromium-browser; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}

if path=$(find_chromium); then
  echo "$path"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "tidemark: no chromium, and no apt-get to install it: install Chromium, or set TIDEMARK_CHROMIUM" >&2
  exit 1
fi
sudo=""
if [[ "$(id -u)" != "0" ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "tidemark: chromium is missing; install it with: sudo apt-get install -y chromium" >&2
    exit 1
  fi
fi
echo "tidemark: installing chromium (Debian package, for the dashboard test)..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends chromium >&2; then
  $sudo apt-get update >&2
  $sudo apt-get install -y --no-install-recommends chromium >&2
fi
find_chromium
