"""What the keyword word table (migration 0035) costs a write: N tracks loaded with COPY through the search-document
triggers into a fresh embedded PostgreSQL at migration 34 (no word table) and at 35 (with it), taken in turn, twice.

    .venv/bin/python bench/search_write_cost.py [N]    # 100,000 by default
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.map import tag_json  # noqa: E402
from bench.similarity import load_library  # noqa: E402
from db.migrate import MIGRATIONS_DIR, apply_migrations  # noqa: E402
from db.pool import Database  # noqa: E402
from infra.embedded import EmbeddedPostgres  # noqa: E402


def load_seconds(n: int, up_to: int) -> float:
    """Seconds to COPY `n` tracks into a fresh database migrated up to migration `up_to`."""
    folder = Path(tempfile.mkdtemp(prefix="audiomuse-write-cost-"))
    migrations = folder / "migrations"
    migrations.mkdir()
    for migration in MIGRATIONS_DIR.glob("*.sql"):
        if int(migration.name[:4]) <= up_to:
            shutil.copy(migration, migrations / migration.name)
    postgres = EmbeddedPostgres(folder / "postgres")
    url = postgres.start()
    try:
        apply_migrations(url, migrations)
        rng = random.Random(7)
        labels = [rng.randrange(400) for _ in range(n)]
        started = time.perf_counter()
        load_library(Database(url), np.zeros((n, 4), dtype=np.float32), rng,
                     tags=lambda i: tag_json(labels[i], rng))
        return time.perf_counter() - started
    finally:
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for _ in range(2):
        for up_to in (34, 35):
            print(f"migration {up_to}: {n:,} tracks loaded in {load_seconds(n, up_to):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
