#!/usr/bin/env bash
# Install the real media servers the adapter tests run against: Debian's MPD, and supysonic (a Subsonic API
# server from PyPI) in its own virtual environment, .venv-supysonic, because its pins differ from ours.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh mpd
SUPYSONIC_VERSION="0.7.9"
stamp=".venv-supysonic/.installed-$SUPYSONIC_VERSION"
if [ ! -f "$stamp" ]; then
  "${PYTHON:-python3}" -m venv .venv-supysonic
  .venv-supysonic/bin/python -m pip install --quiet --disable-pip-version-check "supysonic==$SUPYSONIC_VERSION" waitress
  touch "$stamp"
fi
