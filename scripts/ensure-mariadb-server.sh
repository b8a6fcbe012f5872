#!/usr/bin/env bash
# Makes sure the MariaDB server (Debian's mariadb-server) is on the machine, for the benchmark that
# compares tidemark's MySQL server with it. Prints where it is.
set -euo pipefail
exec bash "$(dirname "$0")/ensure-debian-package.sh" mariadb-server "the MySQL protocol benchmark" mariadbd mysqld
