#!/usr/bin/env bash
# Makes sure moto_server (an S3-compatible server, Python) is on the machine for the object-storage
# tests, which start it on 127.0.0.1: installed with pip (`moto[server]`) when missing. Prints where
# it is.
set -euo pipefail
if command -v moto_server >/dev/null 2>&1; then
  command -v moto_server
  exit 0
fi
for pip in pip3 pip; do
  if command -v "$pip" >/dev/null 2>&1; then
    "$pip" install --quiet 'moto[server]>=5,<6' >&2 || "$pip" install --quiet --break-system-packages 'moto[server]>=5,<6' >&2
    break
  fi
done
if command -v moto_server >/dev/null 2>&1; then
  command -v moto_server
  exit 0
fi
echo "moto_server is missing and could not be installed: pip install 'moto[server]'" >&2
exit 1
