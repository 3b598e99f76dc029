"""Analysis bundles: export and import speed against analysis speed (issue 31), printed as markdown.

    .venv/bin/python bench/analysis_bundle.py [--tracks 100000]

A private PostgreSQL with `--tracks` synthetic analysed tracks (200-d embeddings, 50 tags, six moods, a content
fingerprint each; the rows of bench/similarity.py); the bundle exported from it (services/analysis_bundle.py, as the
CLI and the download do) and imported into a second database on the same server (as the CLI and the upload do):
seconds, tracks/s, bundle size. Then the analysis run's side of an import: the look-up of a track's imported
analysis by its fingerprint (one indexed query a track), median of 2,000.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psycopg2  # noqa: E402

from audio.analyze import ANALYSIS_VERSION  # noqa: E402
from audio.musicnn import MODEL_NAME  # noqa: E402
from bench.similarity import load_library  # noqa: E402
from bench.stack import embedded_services, print_figures  # noqa: E402
from config import PROJECT_ROOT  # noqa: E402
from db import analysis_bundles as bundle_store  # noqa: E402
from db.migrate import apply_migrations  # noqa: E402
from db.pool import Database  # noqa: E402
from services.analysis_bundle import export_bundle, import_bundle, this_engine  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=100_000)
    args = parser.parse_args()
    engine = this_engine(PROJECT_ROOT / "models" / "msd_musicnn.onnx")
    rows: list[tuple[str, str]] = []
    with embedded_services() as (work, database_url, _):
        db = Database(database_url, max_connections=2)
        rng = random.Random(3)
        for start in range(0, args.tracks, 50_000):
            count = min(50_000, args.tracks - start)
            vectors = np.random.default_rng(start).standard_normal((count, 200)).astype(np.float32)
            tags = {t: round(rng.random(), 4) for t in ("rock", "pop", "jazz", "ambient", "metal")}
            load_library(db, vectors, rng, start=start, tags=lambda i, t=tags: json.dumps(t))
        db.execute("UPDATE tracks SET content_fingerprint = md5(item_id) || md5(title), analysis_version = %s",
                   (ANALYSIS_VERSION,))
        db.execute("ANALYZE")
        bundle = work / "analysis.jsonl.gz"
        started = time.perf_counter()
        with bundle.open("wb") as out:
            exported = export_bundle(db, out, engine)
        export_s = time.perf_counter() - started
        rows.append(("export (rows streamed from PostgreSQL, gzip level 6)",
                     f"{export_s:.1f} s, {exported / export_s:,.0f} tracks/s"))
        rows.append(("bundle size", f"{bundle.stat().st_size / 1e6:.0f} MB ({bundle.stat().st_size / exported:.0f} "
                                    "bytes a track)"))

        def on(name: str) -> str:
            return urlunsplit(urlsplit(database_url)._replace(path="/" + name))

        admin = psycopg2.connect(on("postgres"))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE second")
        second_url = on("second")
        apply_migrations(second_url)
        second = Database(second_url, max_connections=2)
        started = time.perf_counter()
        with bundle.open("rb") as source:
            report = import_bundle(second, source, engine)
        import_s = time.perf_counter() - started
        assert report.imported == exported, report.as_dict()
        rows.append(("import (read, checked, stored by content fingerprint)",
                     f"{import_s:.1f} s, **{exported / import_s:,.0f} tracks/s**"))
        fingerprints = [r["content_fingerprint"] for r in second.fetch_all(
            "SELECT content_fingerprint FROM imported_analyses ORDER BY random() LIMIT 2000")]
        times = []
        for fingerprint in fingerprints:
            started = time.perf_counter()
            assert bundle_store.imported_analysis(second, fingerprint, model=MODEL_NAME, version=ANALYSIS_VERSION)
            times.append(time.perf_counter() - started)
        rows.append(("an analysis run's look-up of one track's imported analysis (median of 2,000)",
                     f"{statistics.median(times) * 1000:.2f} ms"))
        second.close()
        db.close()
        admin.close()
    print_figures(f"{args.tracks:,} analysed tracks", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
