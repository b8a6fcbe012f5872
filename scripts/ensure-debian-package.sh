#!/usr/bin/env bash
# ensure-debian-package.sh PACKAGE PURPOSE COMMAND [COMMAND...]
# Makes sure one of the COMMANDs is on the machine (sbin directories included), installing the
# Debian package PACKAGE with apt-get when none is (as root, or through sudo without a password).
# Prints the command's path. PURPOSE says in messages what it is for.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/usr/local/sbin"
package="$1"
purpose="$2"
shift 2

find_command() {
  for c in "$@"; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}

if path=$(find_command "$@"); then
  echo "$path"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tidemark: no $package, and no apt-get to install it: install $package ($purpose)" >&2
  exit 1
fi
sudo=""
if [[ "$(id -u)" != "0" ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "tidemark: $package is missing; install it with: sudo apt-get install -y $package" >&2
    exit 1
  fi
fi
echo "tidemark: installing $package (Debian package, for $purpose)..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends "$package" >&2; then
  $sudo apt-get update >&2
  $sudo apt-get install -y --no-install-recommends "$package" >&2
fi
find_command "$@"
