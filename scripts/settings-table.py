"""Replace the settings table in README.md with the one config.py generates (`python config.py --markdown`)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from config import settings_table_markdown  # noqa: E402

readme = Path(__file__).resolve().parent.parent / "README.md"
lines = readme.read_text().splitlines(keepends=True)
start = next(i for i, line in enumerate(lines) if line.startswith("| Variable | Default |"))
end = start
while end < len(lines) and lines[end].startswith("|"):
    end += 1
table = settings_table_markdown()
readme.write_text("".join(lines[:start]) + table + ("" if table.endswith("\n") else "\n") + "".join(lines[end:]))
print(f"README.md: settings table rows {start + 1}-{end} replaced")
