#!/usr/bin/env bash
# Makes sure the `mariadb` command-line client (Debian's mariadb-client) is on the machine, for the
# test that runs a SQL script through it against tidemark's MySQL server. Prints where it is.
set -euo pipefail
exec bash "$(dirname "$0")/ensure-debian-package.sh" mariadb-client "the MySQL protocol test" mariadb mysql
