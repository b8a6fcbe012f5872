#!/usr/bin/env bash
# Makes sure the MariaDB server (Debian's mariadb-server) is on the machine, for the differential
# SQL test (test/sql/differential.test.ts: MySQL's semantics as the reference) and the benchmark
# that compares tidemark's MySQL server with it. Prints where it is.
set -euo pipefail
exec bash "$(dirname "$0")/ensure-debian-package.sh" mariadb-server "the differential SQL test" mariadbd mysqld
