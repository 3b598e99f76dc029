"""Audio preview: a track's file sent to the (signed-in) browser, with HTTP Range so the player can seek."""

from __future__ import annotations

import mimetypes

from flask import Blueprint, send_file
from werkzeug.wrappers import Response

from db import tracks as track_store
from mediaservers.access import file_in_library
from routes.context import runtime
from routes.errors import ApiError
from routes.params import has_control_characters

bp = Blueprint("audio_api", __name__)

AUDIO_TYPES = {".flac": "audio/flac", ".ogg": "audio/ogg", ".opus": "audio/ogg", ".mp3": "audio/mpeg",
               ".m4a": "audio/mp4", ".wav": "audio/wav", ".aac": "audio/aac", ".wma": "audio/x-ms-wma"}


@bp.get("/api/tracks/<path:item_id>/audio")
def audio(item_id: str) -> Response:
    """The track's audio from its file when the file is readable here (a local music folder, MPD's folder, or a
    media server's files under PATH_MAPPING) and inside the library; 404 otherwise, saying why."""
    rt = runtime()
    if len(item_id) > 4096 or has_control_characters(item_id):
        raise ApiError(400, "invalid item id", parameter="item_id")
    row = track_store.track_rows(rt.db, [item_id]).get(item_id)
    if row is None:
        raise ApiError(404, f"track '{item_id}' is not in the analyzed library", parameter="item_id")
    cfg = rt.config
    local_folder = {"local": cfg.MUSIC_DIR, "mpd": cfg.MPD_MUSIC_DIRECTORY or None}.get(cfg.MEDIASERVER_TYPE)
    path = file_in_library(row["file_path"], local_folder=local_folder, mapping=cfg.path_mapping)
    if path is None:
        where = "the music folder" if local_folder else "a folder PATH_MAPPING maps"
        raise ApiError(404, f"the audio of this track cannot be read here (it is not a file inside {where}); "
                            "playing through the media server's stream is not built yet", parameter="item_id")
    kind = AUDIO_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    response = send_file(path, mimetype=kind, conditional=True, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
