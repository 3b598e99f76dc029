"""The queue-aware mix (`POST /api/mix`, the bliss-mixer's vocabulary) and the switch of MPD's queue mode.

Unknown keys of a mix request are ignored, as the bliss-mixer's clients send their own extras.
"""

from __future__ import annotations

import random
from typing import Any

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from db.app_settings import effective_config
from discovery.mix import mix
from routes.common import ITEM_ID_MAX, discovery_errors, index_queries, queries_exclusions, track_json
from routes.context import runtime
from routes.errors import ApiError, bad_parameter
from routes.params import bool_param, float_param, int_param, json_body, raw_param
from tasks import mpd_queue

bp = Blueprint("mix_api", __name__)

MAX_SEEDS = 50
MAX_PREVIOUS = 10_000


def _ids(name: str, *, required: bool, limit: int) -> list[str]:
    """A list of item ids (a single id is a list of one); 400 naming `name` otherwise."""
    raw = raw_param(name)
    if raw is None or raw == [] or raw == "":
        if required:
            raise ApiError(400, f"'{name}' must name at least one item id", parameter=name)
        return []
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(
            isinstance(v, str) and v and len(v) <= ITEM_ID_MAX and "\x00" not in v for v in values):
        raise bad_parameter(name, raw if not isinstance(raw, list) else f"{len(raw)} values", "a list of item ids")
    if len(values) > limit:
        raise bad_parameter(name, f"{len(values)} ids", f"at most {limit}")
    return values


def _artists() -> list[str]:
    raw = raw_param("exclude_artists")
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list) or not all(isinstance(a, str) and len(a) <= 500 for a in raw) or len(raw) > 1000:
        raise bad_parameter("exclude_artists", raw, "a list of artist names or a comma-separated text")
    return [a.strip() for a in raw if a.strip()]


@bp.post("/api/mix")
def post_mix() -> Response:
    """The next songs after `tracks` (seeds) and `previous`, each with its reason."""
    rt = runtime()
    json_body()  # a body that is not a JSON object is a 400 naming it
    seeds_ids = _ids("tracks", required=True, limit=MAX_SEEDS)
    previous = _ids("previous", required=False, limit=MAX_PREVIOUS)
    count = int_param("count", 10, minimum=1, maximum=rt.config.MIX_MAX_COUNT)
    no_repeat_artist = int_param("no_repeat_artist", 0, minimum=0, maximum=1000)
    no_repeat_album = int_param("no_repeat_album", 0, minimum=0, maximum=1000)
    max_bpm_diff = float_param("max_bpm_diff", None, minimum=0.1, maximum=300)
    min_duration = float_param("min_duration", None, minimum=0, maximum=86400)
    max_duration = float_param("max_duration", None, minimum=0, maximum=86400)
    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        raise bad_parameter("min_duration", min_duration, f"at most max_duration={max_duration:g}")
    excluded = _artists()
    shuffle = bool_param("shuffle", False)
    seed = int_param("seed", random.randrange(1_000_000), minimum=0)
    library = index_queries(rt)
    found = library.lookup(seeds_ids)
    unknown = [i for i in seeds_ids if i not in found]
    if unknown:
        raise ApiError(404, f"track '{unknown[0]}' is not in the analyzed library", parameter="tracks")
    picks = discovery_errors(lambda: mix(
        [found[i] for i in seeds_ids], count=count, neighbours=library.neighbours, lookup=library.lookup,
        previous=previous, no_repeat_artist=no_repeat_artist, no_repeat_album=no_repeat_album,
        max_bpm_diff=max_bpm_diff, min_duration=min_duration, max_duration=max_duration, exclude_artists=excluded,
        shuffle=shuffle, seed=seed, duplicate_distance=rt.config.DUPLICATE_DISTANCE))
    body: dict[str, Any] = {
        "tracks": [track_json(p.track, reason=p.reason, seed_item_id=p.seed_item_id, distance=p.distance)
                   for p in picks],
        "count": len(picks),
        **queries_exclusions(library),
    }
    if shuffle:
        body["seed"] = seed
    return jsonify(body)


def _queue_mode() -> dict[str, Any]:
    rt = runtime()
    settings = effective_config(rt.config, rt.db)
    return {"enabled": mpd_queue.mode_on(rt.db, rt.config), "mediaserver_type": settings.MEDIASERVER_TYPE,
            "min_ahead": settings.MPD_QUEUE_MIN_AHEAD, "add": settings.MPD_QUEUE_ADD,
            **mpd_queue.status(rt.redis)}


@bp.get("/api/mix/mpd_queue")
def queue_mode() -> Response:
    """The switch of MPD's queue mode and what its driver last did."""
    return jsonify(_queue_mode())


@bp.post("/api/mix/mpd_queue")
def switch_queue_mode() -> Response:
    """`{enabled: true/false}`: a worker starts (or stops) driving MPD within a few seconds."""
    if raw_param("enabled") is None:
        raise ApiError(400, "missing 'enabled' (true or false)", parameter="enabled")
    mpd_queue.set_mode(runtime().db, bool_param("enabled", False))
    return jsonify(_queue_mode())
