"""The versions view: recordings the library holds as several files (an MP3 beside a FLAC, an album ripped twice,
an excerpt), with each file's format and size and the copy every list shows."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from db import versions as version_store
from discovery.versions import Copy, best_copy, file_format, kept_because
from routes.context import runtime
from routes.params import int_param

bp = Blueprint("versions_api", __name__)


@bp.get("/api/versions")
def versions() -> Response:
    """`{total, recordings: [{recording_id, title, artist, kept_because, files: [...]}]}`, largest groups first;
    `limit` (1-500, default 50) and `offset` page through them. Each file: item_id, title, artist, album,
    duration_seconds, file_path, size_bytes (when the media server reports it), format, kept."""
    limit = int_param("limit", 50, minimum=1, maximum=500)
    offset = int_param("offset", 0, minimum=0)
    total, groups = version_store.recordings(runtime().db, limit=limit, offset=offset)
    return jsonify({"total": total, "limit": limit, "offset": offset,
                    "recordings": [_recording(g["recording_id"], g["files"]) for g in groups]})


def _recording(recording_id: str, files: list[dict[str, Any]]) -> dict[str, Any]:
    copies = {f["item_id"]: Copy(f["item_id"], f["title"], f["artist"], f["duration_seconds"], f["file_path"],
                                 f["size_bytes"]) for f in files}
    kept = copies.get(recording_id) or best_copy(list(copies.values()))
    return {"recording_id": recording_id, "title": kept.title, "artist": kept.artist,
            "kept_because": kept_because(kept, [c for i, c in copies.items() if i != kept.item_id]),
            "files": [{**f, "format": file_format(f["file_path"]), "kept": f["item_id"] == kept.item_id}
                      for f in files]}
