#!/usr/bin/env bash
# Makes sure the MariaDB server (Debian's mariadb-server) is on the machine, for the
# benchmark that compares tidemark's MySQL server with it: installed with apt-get when
# missing (as root, or through sudo without a password). Prints where it is.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/usr/local/sbin"

find_server() {
  for c in mariadbd mysqld; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}

if path=$(find_server); then
  echo "$path"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "tidemark: no MariaDB server, and no apt-get to install it: install mariadb-server" >&2
  exit 1
fi
sudo=""
if [[ "$(id -u)" != "0" ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "tidemark: the MariaDB server is missing; install it with: sudo apt-get install -y mariadb-server" >&2
    exit 1
  fi
fi
echo "tidemark: installing mariadb-server (Debian package, for the MySQL protocol benchmark)..." >&2
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends mariadb-server >&2; then
  $sudo apt-get update >&2
  $sudo apt-get install -y --no-install-recommends mariadb-server >&2
fi
find_server
