"""The analysis API: start a run, the last run's summary, the analyzed library, nearest neighbours."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, jsonify, request, stream_with_context
from werkzeug.wrappers import Response

from audio.parts import FEATURE_PARTS, PART_VERSIONS
from db import task_status as task_store
from db import tracks as track_store
from discovery.criteria import Criterion, bounds
from routes.context import runtime
from routes.errors import ApiError
from routes.params import float_param, int_param, str_param
from routes.task_start import start_response
from services import analysis_bundle as bundle
from tasks.catalog import ANALYSIS

bp = Blueprint("analysis_api", __name__)


@bp.post("/api/analysis/start")
def start() -> tuple[Response, int]:
    """Start an analysis run (`num_recent_albums`: 0 for the whole library; `top_n_moods`)."""
    return start_response(ANALYSIS)


@bp.get("/api/analysis/summary")
def summary() -> Response:
    """The most recent analysis run (status and totals), the tracks that failed analysis, and those being analyzed
    now (listed apart: a track in the middle of its analysis has not failed)."""
    rt = runtime()
    last = task_store.last_main_task_of_type(rt.db, ANALYSIS.task_type)
    failures = track_store.list_failures(rt.db)
    analyzing = track_store.analyzing_now(rt.db)
    return jsonify({
        "last_run": last,
        "analyzed_tracks": track_store.count_analyzed(rt.db),
        # tracks whose tempo, key or energy an older version of that code made: the next run computes them again
        "outdated_parts": track_store.outdated_parts(rt.db, {p: PART_VERSIONS[p] for p in FEATURE_PARTS},
                                                     model_version=PART_VERSIONS["model"]),
        # tracks analysed fast (every n-th patch): a run with upgrade_fast analyses them again in full
        "fast_tracks": track_store.count_fast(rt.db),
        "failures": [dict(f, failed_at=f["failed_at"].isoformat()) for f in failures],
        "analyzing_now": [dict(a, started_at=a["started_at"].isoformat()) for a in analyzing],
    })


# A bundle of a million tracks is ~1 GB; the app's 4 MB request limit is for everything else.
_BUNDLE_MAX_BYTES = 4 * 1024 ** 3


@bp.get("/api/analysis/export")
def export_analysis() -> Response:
    """This install's analyses as a bundle (services/analysis_bundle.py), streamed as a download."""
    rt = runtime()
    engine = bundle.this_engine(rt.config.MODEL_PATH)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Response(stream_with_context(bundle.export_chunks(rt.db, engine)), mimetype="application/gzip",
                    headers={"Content-Disposition": f'attachment; filename="audiomuse-analysis-{stamp}.jsonl.gz"'})


@bp.post("/api/analysis/import")
def import_analysis() -> tuple[Response, int]:
    """Import a bundle (the request body, or the form file `bundle`): the analyses of this model file and version
    are kept for the next analysis run, the others counted by the reason they were refused."""
    rt = runtime()
    request.max_content_length = _BUNDLE_MAX_BYTES
    upload = request.files.get("bundle") if request.mimetype == "multipart/form-data" else None
    source = upload.stream if upload is not None else request.stream
    try:
        report = bundle.import_bundle(rt.db, source, bundle.this_engine(rt.config.MODEL_PATH))
    except bundle.BundleError as exc:
        raise ApiError(400, str(exc), parameter="bundle") from None
    return jsonify(report.as_dict()), 200


def _track_json(row: dict[str, Any], top_n: int) -> dict[str, Any]:
    tags = row.pop("tags") or {}
    row["top_tags"] = [[name, round(p, 3)] for name, p in sorted(tags.items(), key=lambda kv: -kv[1])[:top_n]]
    row["analyzed_at"] = row["analyzed_at"].isoformat() if row["analyzed_at"] else None
    return row


@bp.get("/api/tracks")
def tracks() -> Response:
    """Analyzed tracks matching `q` in title, artist or album and the plot filters (`min_bpm`/`max_bpm`,
    `min_energy`/`max_energy`, `min_loudness`/`max_loudness`, `camelot`, `tag`, `mood`); paged with `limit` and
    `offset`."""
    rt = runtime()
    query = str_param("q", max_length=200)
    where = [Criterion("text", "contains", (query,))] if query else []
    for field, low, high in (("bpm", "min_bpm", "max_bpm"), ("energy_value", "min_energy", "max_energy"),
                             ("loudness", "min_loudness", "max_loudness")):
        # a plot's bin: inclusive low, exclusive high
        where += bounds(field, float_param(low, None), float_param(high, None), high_inclusive=False)
    for field, name, length in (("key", "camelot", 3), ("tag", "tag", 100), ("mood", "mood", 100)):
        if value := str_param(name, max_length=length):
            where.append(Criterion(field, "=", (value,)))
    limit = int_param("limit", 50, minimum=1, maximum=500)
    offset = int_param("offset", 0, minimum=0)
    top_n = int_param("top_n", rt.config.TOP_N_MOODS, minimum=1, maximum=50)
    total, rows = track_store.search_library(rt.db, limit=limit, offset=offset, where=where)
    return jsonify({"total": total, "limit": limit, "offset": offset, "tracks": [_track_json(r, top_n) for r in rows]})


@bp.get("/api/analysis/library_stats")
def library_stats() -> Response:
    """The analyzed library at a glance, for the Analysis page's plots: histograms of tempo (5 BPM), energy (0.05)
    and loudness (1 LU), tracks per Camelot key, the most frequent top tags and the top moods."""
    return jsonify(track_store.library_stats(runtime().db, bpm_bin=5.0, energy_bin=0.05, loudness_bin=1.0,
                                             top=int_param("top", 15, minimum=1, maximum=50)))
