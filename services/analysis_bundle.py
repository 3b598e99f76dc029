"""Analysis that moves between installs: export every analysed track's results (embedding, tags, moods, tempo, key,
energy, loudness, versions) keyed by the content fingerprint of its file, as one compressed bundle; import a bundle
into another install, where an analysis run gives each track whose file has the same content the imported results
instead of running the model (tasks/analysis.py).

A bundle is gzip-compressed JSON lines: a header (format, the model's name and the sha256 of its ONNX file, the
analysis version), then one track a line, its embedding as base64 of little-endian float32. Rows of another model,
model file or analysis version are refused on import, each with the reason.

    python -m services.analysis_bundle export FILE     # from this install's database
    python -m services.analysis_bundle import FILE     # into it; prints what was imported and what was refused
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import math
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from db import analysis_bundles as bundle_store
from db.pool import Database

FORMAT = "audiomuse-analysis-bundle"
FORMAT_VERSION = 1
_BATCH = 2000


class BundleError(ValueError):
    """A file that is not an analysis bundle this version can read; the message says why."""


@dataclass(frozen=True)
class Engine:
    """What this install analyses with: rows of anything else are refused."""

    model: str
    version: int
    model_sha256: str
    dimensions: int
    # the feature parts' versions (audio/parts.py): an older part is imported and computed again by the next run
    part_versions: dict[str, int] = field(default_factory=dict)


def model_file_sha256(path: str | Path) -> str:
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def this_engine(model_path: str | Path) -> Engine:
    from audio.musicnn import EMBEDDING_DIM, MODEL_NAME
    from audio.parts import FEATURE_PARTS, PART_VERSIONS

    return Engine(MODEL_NAME, PART_VERSIONS["model"], model_file_sha256(model_path), EMBEDDING_DIM,
                  {p: PART_VERSIONS[p] for p in FEATURE_PARTS})


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # reason → rows

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "imported": self.imported,
                "refused": [{"reason": r, "rows": n} for r, n in self.refused.most_common()]}


def export_bundle(db: Database, out: IO[bytes], engine: Engine) -> int:
    """Write this install's analyses of `engine.model` to `out` as a bundle; the number of tracks written."""
    counted = [0]
    for chunk in export_chunks(db, engine, counted=counted):
        out.write(chunk)
    return counted[0]


class _Sink:
    """Where the gzip stream writes: the bytes collected since they were last taken."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def export_chunks(db: Database, engine: Engine, *, counted: list[int] | None = None) -> Iterator[bytes]:
    """The bundle of this install's analyses of `engine.model`, as compressed chunks made while the rows stream
    from the database (a download starts at once, and a million tracks never sit in memory); `counted[0]` ends as
    the number of tracks."""
    sink = _Sink()
    packed = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": engine.model,
              "model_sha256": engine.model_sha256, "analysis_version": engine.version,
              "created_at": datetime.now(UTC).isoformat()}
    packed.write(json.dumps(header).encode() + b"\n")
    count = 0
    for row in bundle_store.analysed_rows(db, engine.model):
        line = {c: row[c] for c in bundle_store.ANALYSIS_COLUMNS}
        line["vector"] = base64.b64encode(row["vector"]).decode("ascii")
        packed.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
        count += 1
        if count % _BATCH == 0:
            yield sink.take()
    packed.close()
    if counted is not None:
        counted[0] = count
    yield sink.take()


# A track's line is ~1.2 KB; a longer one is not a row this format writes (and a line is read whole into memory).
MAX_LINE_BYTES = 1 << 20
_NUMBERS = ("duration_seconds", "tempo_bpm", "tempo_confidence", "key_confidence", "energy", "loudness_lufs")
_TEXTS = ("musical_key", "scale", "camelot")


def _lines(source: IO[bytes]) -> Iterator[bytes]:
    try:
        with gzip.GzipFile(fileobj=source, mode="rb") as packed:
            while True:
                line = packed.readline(MAX_LINE_BYTES + 1)
                if not line:
                    return
                if len(line) > MAX_LINE_BYTES:
                    raise BundleError(f"a line longer than {MAX_LINE_BYTES} bytes: not an analysis bundle")
                yield line
    except (OSError, EOFError) as exc:  # not gzip, or cut short
        raise BundleError(f"not a readable analysis bundle ({exc})") from None


def import_bundle(db: Database, source: IO[bytes], engine: Engine) -> ImportReport:
    """Keep the bundle's analyses that `engine` would have made (the same model file and analysis version) for the
    next analysis run, and count the others by the reason they were refused; all or nothing (one transaction).
    Raises BundleError for a file that is not a bundle."""
    lines = _lines(source)
    try:
        header = json.loads(next(lines))
    except BundleError:
        raise
    except (StopIteration, ValueError):
        raise BundleError("not an analysis bundle: no header line") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BundleError("not an analysis bundle: the header does not name the format")
    if header.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"bundle format version {header.get('format_version')!r}; this install reads "
                          f"{FORMAT_VERSION}")
    whole_file = None
    if header.get("model") != engine.model:
        whole_file = f"made with model {header.get('model')!r}; this install analyses with {engine.model!r}"
    elif header.get("model_sha256") != engine.model_sha256:
        whole_file = (f"made with another {engine.model} model file (sha256 {str(header.get('model_sha256'))[:12]}…; "
                      f"this install's is {engine.model_sha256[:12]}…)")
    report = ImportReport()
    with bundle_store.imported_writer(db) as writer:
        accepted: list[dict[str, Any]] = []
        for raw in lines:
            if not raw.strip():
                continue
            report.rows += 1
            row, reason = _checked(raw, engine)
            reason = whole_file or reason
            if reason:
                report.refused[reason] += 1
                continue
            assert row is not None
            accepted.append(row)
            if len(accepted) >= _BATCH:
                report.imported += writer.add(accepted)
                accepted = []
        report.imported += writer.add(accepted)
    return report


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _checked(raw: bytes, engine: Engine) -> tuple[dict[str, Any] | None, str | None]:
    """The row ready to store, or why it is refused: every value of the type the analysis writes, a finite vector
    of the model's length that is not all zeros, finite tag and mood scores."""
    try:
        line = json.loads(raw)
        # a bundle written before parts had versions holds each part's first version
        defaults = {f"{p}_version": 1 for p in engine.part_versions} | {"patch_stride": 1}
        row = {c: line.get(c, defaults[c]) if c in defaults else line[c] for c in bundle_store.ANALYSIS_COLUMNS}
        vector = base64.b64decode(line["vector"], validate=True)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, "unreadable row"
    if row["analysis_model"] != engine.model:
        return None, f"model {row['analysis_model']!r}; this install analyses with {engine.model!r}"
    if row["analysis_version"] != engine.version:
        return None, (f"analysis version {row['analysis_version']}; this install analyses with version "
                      f"{engine.version}")
    for part, version in engine.part_versions.items():
        if not isinstance(row[f"{part}_version"], int):
            return None, "unreadable row"
        if row[f"{part}_version"] > version:  # made by newer code than this install's: it cannot tell
            return None, f"{part} version {row[f'{part}_version']}; this install computes version {version}"
    scores = [row["tags"], row["moods"]]
    if not isinstance(row["content_fingerprint"], str) or not row["content_fingerprint"] or \
            any(not isinstance(d, dict) or not d or not all(isinstance(k, str) and _finite(v) for k, v in d.items())
                for d in scores) or \
            any(row[c] is not None and not _finite(row[c]) for c in _NUMBERS) or \
            any(row[c] is not None and not isinstance(row[c], str) for c in _TEXTS) or \
            not (row["patches_analyzed"] is None or isinstance(row["patches_analyzed"], int)) or \
            not isinstance(row["patch_stride"], int) or row["patch_stride"] < 1:
        return None, "unreadable row"
    if len(vector) != 4 * engine.dimensions:
        return None, "unreadable row"
    values = np.frombuffer(vector, dtype="<f4")
    if not np.all(np.isfinite(values)) or not np.any(values):
        return None, "an embedding that is not finite or all zeros"
    return dict(row, dimensions=engine.dimensions, vector=vector), None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.analysis_bundle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("export", "import"))
    parser.add_argument("file", type=Path)
    args = parser.parse_args(argv)

    import config as config_module
    from db.migrate import apply_migrations
    from infra.connections import get_db

    config = config_module.load_or_exit()
    apply_migrations(config.database_url)
    db = get_db(config)
    engine = this_engine(config.MODEL_PATH)
    if args.action == "export":
        with args.file.open("wb") as out:
            count = export_bundle(db, out, engine)
        print(f"exported {count} analysed tracks to {args.file}")
        return 0
    try:
        with args.file.open("rb") as source:
            report = import_bundle(db, source, engine)
    except BundleError as exc:
        print(f"audiomuse: {args.file}: {exc}", file=sys.stderr)
        return 2
    print(f"imported {report.imported} of {report.rows} analyses; an analysis run gives them to the tracks whose "
          "files have the same content")
    for reason, rows in report.refused.most_common():
        print(f"refused {rows}: {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
