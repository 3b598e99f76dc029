#!/usr/bin/env bash
# Install the test tools and run the whole suite: ruff, mypy, pytest (unit, integration, browser).
# The suite starts its own PostgreSQL and Redis unless AUDIOMUSE_TEST_DATABASE_URL / AUDIOMUSE_TEST_REDIS_URL
# are set. Browser tests use Debian's Chromium (/usr/bin/chromium); Debian's ffmpeg makes and decodes test audio;
# both are installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test

bash scripts/system-packages.sh ffmpeg chromium
bash scripts/test-servers.sh
bash scripts/browser-tools.sh

echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# Two workers, a test file's tests kept together in one of them (module fixtures are built once); much of the
# suite waits on subprocesses, browsers and timeouts, so two streams fit two cores. PYTEST_WORKERS=0 runs serially.
exec .venv/bin/pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
