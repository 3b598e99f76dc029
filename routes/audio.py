"""Audio preview: a track's audio sent to the (signed-in) browser with HTTP Range so the player can seek: its file
when it is readable here, else relayed from the media server's stream."""

from __future__ import annotations

import mimetypes
import re
from typing import cast

from flask import Blueprint, request, send_file, stream_with_context
from werkzeug.wrappers import Response

from db import tracks as track_store
from db.app_settings import effective_config
from mediaserver import AudioStreamer, Capability, MediaServerError
from mediaservers.access import file_in_library
from routes.context import runtime
from routes.errors import ApiError
from routes.params import has_control_characters

bp = Blueprint("audio_api", __name__)

AUDIO_TYPES = {".flac": "audio/flac", ".ogg": "audio/ogg", ".opus": "audio/ogg", ".mp3": "audio/mpeg",
               ".m4a": "audio/mp4", ".wav": "audio/wav", ".aac": "audio/aac", ".wma": "audio/x-ms-wma"}
_RANGE = re.compile(r"bytes=\d*-\d*")  # one range, as audio elements ask; anything else is not passed on


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/api/tracks/<path:item_id>/audio")
def audio(item_id: str) -> Response:
    """The track's audio: its file when readable here (a local music folder, MPD's folder, or a media server's
    files under PATH_MAPPING) and inside the library; otherwise the media server's stream of it (Jellyfin, Emby,
    Navidrome/Subsonic, Lyrion), the browser's Range passed on. 404 when neither can be had, 502 when the server
    fails, saying why."""
    rt = runtime()
    if len(item_id) > 4096 or has_control_characters(item_id):
        raise ApiError(400, "invalid item id", parameter="item_id")
    row = track_store.track_rows(rt.db, [item_id]).get(item_id)
    if row is None:
        raise ApiError(404, f"track '{item_id}' is not in the analyzed library", parameter="item_id")
    cfg = effective_config(rt.config, rt.db)
    local_folder = {"local": cfg.MUSIC_DIR, "mpd": cfg.MPD_MUSIC_DIRECTORY or None}.get(cfg.MEDIASERVER_TYPE)
    path = file_in_library(row["file_path"], local_folder=local_folder, mapping=cfg.path_mapping)
    if path is not None:
        kind = AUDIO_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or \
            "application/octet-stream"
        return _private(send_file(path, mimetype=kind, conditional=True, max_age=0))
    try:
        server = rt.media_server()
    except MediaServerError as exc:
        raise ApiError(502, f"the media server cannot be used: {exc}") from None
    if Capability.STREAMS_AUDIO not in server.capabilities:
        where = "the music folder" if local_folder else "a folder PATH_MAPPING maps"
        raise ApiError(404, f"the audio of this track cannot be read here (it is not a file inside {where}) and "
                            f"{server.display_name} does not stream it", parameter="item_id")
    wanted = request.headers.get("Range", "").strip()
    try:
        stream = cast(AudioStreamer, server).stream_audio(item_id, byte_range=wanted if _RANGE.fullmatch(wanted)
                                                          else None)
    except MediaServerError as exc:
        raise ApiError(502, f"{server.display_name} did not stream this track: {exc}") from None
    headers = dict(stream.headers)
    headers.setdefault("Content-Type", "application/octet-stream")
    response = Response(stream_with_context(stream.chunks), status=stream.status, headers=headers,
                        direct_passthrough=True)
    response.call_on_close(stream.close)
    return _private(response)
