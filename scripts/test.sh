#!/usr/bin/env bash
# Install the test tools and run the whole suite: ruff, mypy, pytest (unit, integration, browser).
# The suite starts its own PostgreSQL and Redis unless AUDIOMUSE_TEST_DATABASE_URL / AUDIOMUSE_TEST_REDIS_URL
# are set. Browser tests use Debian's Chromium (/usr/bin/chromium), installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test

if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's chromium for the browser tests..."
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/pytest "$@"
