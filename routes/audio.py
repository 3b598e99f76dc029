"""A track's audio sent to the (signed-in) browser with HTTP Range so the player can seek (its file when it is
readable here, else relayed from the media server's stream), and its cover art."""

from __future__ import annotations

import logging
import mimetypes
import re
import threading
import time
from pathlib import Path
from typing import cast

from flask import Blueprint, request, send_file, stream_with_context
from werkzeug.wrappers import Response

from db import tracks as track_store
from db.app_settings import effective_config
from mediaserver import AudioStreamer, Capability, CoverArtSource, CoverRequest, MediaServerError
from mediaservers.access import file_in_library
from routes.context import runtime
from routes.errors import ApiError, bad_parameter
from routes.params import has_control_characters, int_param
from services.cover_art import SIZES, Cover, CoverCache, resized

bp = Blueprint("audio_api", __name__)
log = logging.getLogger(__name__)

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
        # the name goes in Content-Disposition, where a newline (legal in a file name) is not
        name = "".join(c if c.isprintable() else " " for c in path.name)
        return _private(send_file(path, mimetype=kind, conditional=True, max_age=0, download_name=name))
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


PLACEHOLDER = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><rect width="100" height="100" rx="6"
fill="#8a94a6" fill-opacity=".25"/><circle cx="50" cy="50" r="26" fill="none" stroke="#8a94a6" stroke-width="4"/>
<circle cx="50" cy="50" r="6" fill="#8a94a6"/></svg>"""


@bp.get("/api/tracks/<path:item_id>/cover")
def cover(item_id: str) -> Response:
    """The song's cover art as a JPEG of at most `size` × `size` pixels (64, 128, 300 or 600; 128 by default) from
    the media server (the album folder's cover file or the picture in the file for a local folder; MPD's albumart
    and readpicture; Subsonic's getCoverArt; Jellyfin/Emby's and Lyrion's image APIs), resized and kept on disk; a
    neutral placeholder (SVG, `X-Cover: placeholder`) when there is none or the server cannot give it."""
    rt = runtime()
    if len(item_id) > 4096 or has_control_characters(item_id):
        raise ApiError(400, "invalid item id", parameter="item_id")
    size = int_param("size", default=128)
    if size not in SIZES:
        raise bad_parameter("size", size, f"one of {', '.join(map(str, SIZES))}")
    row = track_store.track_rows(rt.db, [item_id]).get(item_id)
    if row is None:
        raise ApiError(404, f"track '{item_id}' is not in the analyzed library", parameter="item_id")
    cfg = effective_config(rt.config, rt.db)
    cache = _cover_cache(rt.config.cover_dir, cfg.COVER_CACHE_MB)
    key = f"{cfg.MEDIASERVER_TYPE}|{item_id}|{size}"
    found = cache.get(key)
    reason = "none"
    if found is None and time.monotonic() < _server_quiet_until.get(cfg.MEDIASERVER_TYPE, 0.0):
        found, reason = False, "unavailable"  # the server failed a moment ago: not asked again for every cover
    elif found is None and not _fetching.acquire(timeout=COVER_WAIT_SECONDS):
        found, reason = False, "busy"  # the covers already being fetched hold the threads the pages need
    elif found is None:
        try:
            server = rt.media_server()
            raw = None
            if Capability.COVER_ART in server.capabilities:
                raw = cast(CoverArtSource, server).cover_art(
                    CoverRequest(item_id, path=row["file_path"], album_id=row.get("album_id")))
            found = cache.put(key, resized(raw, size) if raw else None) or False
        except MediaServerError as exc:  # not kept on disk: the server may answer in a minute
            log.info("cover art of %s: %s", item_id, exc)
            _server_quiet_until[cfg.MEDIASERVER_TYPE] = time.monotonic() + SERVER_QUIET_SECONDS
            found, reason = False, "unavailable"
        except ValueError as exc:
            log.info("cover art of %s is not a picture: %s", item_id, exc)
            found = cache.put(key, None) or False
        finally:
            _fetching.release()
    if not isinstance(found, Cover):
        response = Response(PLACEHOLDER, mimetype="image/svg+xml")
        response.headers["X-Cover"] = f"placeholder; {reason}"
        # "none" is known for a day (the cache says so too); a server that failed or was busy is asked again
        response.headers["Cache-Control"] = "private, max-age=3600" if reason == "none" else "no-store"
        return response
    response = Response(found.data, mimetype="image/jpeg")
    response.set_etag(found.etag)
    response.headers["Cache-Control"] = "private, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)


# Covers are fetched two at a time: a stalled media server ties up two of the web process's threads, not all of them
_fetching = threading.BoundedSemaphore(2)
COVER_WAIT_SECONDS = 5.0
SERVER_QUIET_SECONDS = 60.0
_server_quiet_until: dict[str, float] = {}
_cover_caches: dict[tuple[str, int], CoverCache] = {}


def _cover_cache(folder: Path, megabytes: int) -> CoverCache:
    key = (str(folder), megabytes)
    if key not in _cover_caches:
        _cover_caches[key] = CoverCache(folder, max_bytes=megabytes * 1024 * 1024)
    return _cover_caches[key]
