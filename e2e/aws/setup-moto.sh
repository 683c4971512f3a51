#!/usr/bin/env bash
# Installs moto_server (an EC2-compatible API server) into a project-local virtualenv for the aws
# provider tests. Idempotent: does nothing when the pinned version is already there.
set -euo pipefail
MOTO_VERSION="5.2.5"
venv="${PEERPODS_CACHE_DIR:-$HOME/.cache/peerpods}/moto-venv"
if [ -x "$venv/bin/moto_server" ] && [ "$("$venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" = "$MOTO_VERSION" ]; then
  exit 0
fi
command -v python3 >/dev/null || { echo "moto:setup needs python3 (3.9+) on PATH" >&2; exit 1; }
python3 -c 'import venv, ensurepip' 2>/dev/null || { echo "moto:setup needs python3's venv and ensurepip modules (Debian: apt-get install python3-venv)" >&2; exit 1; }
echo "installing moto[server]==$MOTO_VERSION into $venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
"$venv/bin/moto_server" --help >/dev/null
echo "moto_server $MOTO_VERSION ready: $venv/bin/moto_server"
