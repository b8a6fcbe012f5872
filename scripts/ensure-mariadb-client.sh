#!/usr/bin/env bash
# Makes sure the `mariadb` command-line client (Debian's mariadb-client) is on the machine, for the
# test that runs a SQL script through it against tidemark's MySQL server: installed with apt-get when
# missing (as root, or through sudo without a password). Prints where it is.
set -euo pipefail

find_client() {
  for c in mariadb mysql; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}

if path=$(find_client); then
  echo "$path"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tidemark: no mariadb client, and no apt-get to install it: install mariadb-client" >&2
  exit 1
fi
sudo=""
if [[ "$(id -u)" != "0" ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "tidemark: the mariadb client is missing; install it with: sudo apt-get install -y mariadb-client" >&2
    exit 1
  fi
fi
echo "tidemark: installing mariadb-client (Debian package, for the MySQL protocol test)..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends mariadb-client >&2; then
  $sudo apt-get update >&2
  $sudo apt-get install -y --no-install-recommends mariadb-client >&2
fi
find_client
