"""Library search API of the search seed: hybrid keyword + semantic search with facets, filters and cursors
(`/api/v1/search`, `/api/v1/search/semantic`), and the track-centred similar / mixable routes in the seed's shape
(thin over the same code as /api/similar_tracks and /api/mixable_tracks, which keep their own shapes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from config import NumberError, parse_number
from discovery.hybrid import ENERGY_LEVELS, Filters, parse_camelot
from discovery.mixable import Mode, camelot_compatible, mixable_tracks
from discovery.similar import similar_songs
from discovery.types import DiscoveryError, TrackInfo
from routes.common import (
    ITEM_ID_MAX,
    discovery_errors,
    exclusions_json,
    index_queries,
    queries_exclusions,
    request_exclusions,
    track_json,
    track_or_404,
)
from routes.context import Runtime, runtime
from routes.errors import ApiError, bad_parameter
from routes.params import has_control_characters, int_param, json_body, str_param
from services.search import SearchAnswer, SearchRequest, run_search

bp = Blueprint("search_api", __name__)

MAX_LIMIT = 200
def _number(values: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    raw = values.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_number(raw, minimum=low, maximum=high)
    except NumberError:
        raise bad_parameter(name, raw, f"a number from {low:g} to {high:g}") from None


def _filters(rt: Runtime, values: Mapping[str, Any]) -> Filters:
    """The filters of a request (query-string or JSON names), 400 naming the parameter that is wrong."""
    camelot: list[int] = []
    raw_keys = values.get("keyCamelot")
    if raw_keys not in (None, ""):
        parts = raw_keys if isinstance(raw_keys, list) else str(raw_keys).split(",")
        for part in parts:
            code = parse_camelot(str(part))
            if code is None:
                raise bad_parameter("keyCamelot", raw_keys, "Camelot keys such as 8A or 7A,8A,9A")
            camelot.append(code)
    energy = values.get("energy")
    if energy not in (None, "") and energy not in ENERGY_LEVELS:
        raise bad_parameter("energy", energy, "high, medium or low")
    tag = values.get("tag")
    if tag not in (None, "") and (not isinstance(tag, str) or len(tag) > 100 or has_control_characters(tag)):
        raise bad_parameter("tag", tag, "a tag name")
    mixable = None
    raw_mix = values.get("mixableWith")
    if raw_mix not in (None, ""):
        state = rt.index.state
        position = state.index.catalog.position(str(raw_mix)) if state.index is not None else None
        if position is None:
            raise ApiError(404, f"track '{raw_mix}' is not in the analyzed library", parameter="mixableWith")
        mixable = position
    bpm_min, bpm_max = _number(values, "bpmMin", 1, 400), _number(values, "bpmMax", 1, 400)
    if bpm_min is not None and bpm_max is not None and bpm_min > bpm_max:
        raise bad_parameter("bpmMin", values.get("bpmMin"), "not above bpmMax")
    year_min, year_max = _number(values, "yearMin", 1000, 3000), _number(values, "yearMax", 1000, 3000)
    if year_min is not None and year_max is not None and year_min > year_max:
        raise bad_parameter("yearMin", values.get("yearMin"), "not above yearMax")
    duration_min = _number(values, "durationMin", 0, 36000)
    duration_max = _number(values, "durationMax", 0, 36000)
    if duration_min is not None and duration_max is not None and duration_min > duration_max:
        raise bad_parameter("durationMin", values.get("durationMin"), "not above durationMax")
    return Filters(bpm_min=bpm_min, bpm_max=bpm_max, camelot=tuple(camelot), mixable_with=mixable,
                   energy=str(energy) if energy else None, tag=str(tag) if tag else None,
                   year_min=int(year_min) if year_min is not None else None,
                   year_max=int(year_max) if year_max is not None else None,
                   duration_min=duration_min, duration_max=duration_max)


def _weights(values: Mapping[str, Any], *, semantic_name: str, keyword_name: str, default_semantic: float) -> float:
    """The semantic weight; both given must sum to 1 (400 naming the keyword weight otherwise)."""
    semantic = _number(values, semantic_name, 0, 1)
    keyword = _number(values, keyword_name, 0, 1)
    if semantic is not None and keyword is not None and abs(semantic + keyword - 1.0) > 1e-6:
        raise ApiError(400, f"{keyword_name} + {semantic_name} must sum to 1 (got {keyword:g} + {semantic:g})",
                       parameter=keyword_name)
    if semantic is not None:
        return semantic
    if keyword is not None:
        return round(1.0 - keyword, 6)
    return default_semantic


def _answer(rt: Runtime, search: SearchRequest) -> Response:
    exclusions = request_exclusions(rt)
    state = rt.index.state
    try:
        answer: SearchAnswer = run_search(rt.db, state, rt.text_model, rt.clap_model, search,
                                          trigram=rt.trigram, exclusions=exclusions)
    except LookupError:
        raise ApiError(503, "search is being prepared; try again in a moment", retry_after=2) from None
    except DiscoveryError as exc:
        raise ApiError(400, str(exc), parameter=exc.parameter) from None
    body: dict[str, Any] = {
        "query": search.query, "mode": search.mode, "fusion": search.fusion,
        "semanticWeight": search.semantic_weight, "results": answer.results, "totalMatches": answer.total,
        "facets": answer.facets, "nextCursor": answer.next_cursor, "semantic_available": answer.semantic_available,
        "semantic_engine": answer.semantic_engine,
        "keyword_engine": {"ranking": "PostgreSQL full text (ts_rank_cd)", "trigram": answer.trigram},
        "filters": search.filters.as_query(),
        **exclusions_json(exclusions, state.index.exclusion_mask(exclusions)
                          if state.index is not None and exclusions.active else None),
    }
    if answer.semantic_reason:
        body["semantic_reason"] = answer.semantic_reason
    if answer.understood is not None:
        body["understood"] = answer.understood
    if answer.message is not None:
        body["message"] = answer.message
    return jsonify(body)


def _text(value: Any, name: str, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > 200 or has_control_characters(value):
        raise bad_parameter(name, value, "text of at most 200 characters")
    if required and not value.strip():
        raise ApiError(400, f"missing '{name}'", parameter=name)
    return value.strip()


def _fusion(value: Any) -> str:
    fusion = value or "weighted"
    if fusion not in ("weighted", "rrf"):
        raise bad_parameter("fusion", value, "weighted or rrf")
    return str(fusion)


def _cursor(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 200:
        raise bad_parameter("cursor", value, "a nextCursor this search returned")
    return value


@bp.get("/api/v1/search")
def search_get() -> Response:
    """`q`, `semantic` (default true: hybrid; false: keyword only), `keyword_weight` (default 0.7) or
    `semantic_weight`, `fusion` (weighted / rrf), `limit`, `cursor`, and the filters."""
    rt = runtime()
    args = request.args
    semantic = str_param("semantic", "true", max_length=5).lower()
    if semantic not in ("true", "false", "1", "0"):
        raise bad_parameter("semantic", semantic, "true or false")
    weight = _weights(args, semantic_name="semantic_weight", keyword_name="keyword_weight", default_semantic=0.3)
    search = SearchRequest(query=_text(args.get("q"), "q", required=False),
                           mode="hybrid" if semantic in ("true", "1") else "keyword", semantic_weight=weight,
                           fusion=cast(Any, _fusion(args.get("fusion"))), filters=_filters(rt, args),
                           limit=int_param("limit", 25, minimum=1, maximum=MAX_LIMIT),
                           cursor=_cursor(args.get("cursor")))
    return _answer(rt, search)


@bp.post("/api/v1/search/semantic")
def search_post() -> Response:
    """`{query, mode: hybrid|semantic|keyword, semanticWeight (0.3), keywordWeight?, fusion?, filters, limit,
    cursor}`."""
    rt = runtime()
    body = json_body()
    mode = body.get("mode") or "hybrid"
    if mode not in ("hybrid", "semantic", "keyword"):
        raise bad_parameter("mode", mode, "hybrid, semantic or keyword")
    filters = body.get("filters") or {}
    if not isinstance(filters, dict):
        raise bad_parameter("filters", filters, "an object of filters (bpmMin, keyCamelot, energy, …)")
    limit = body.get("limit", 25)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise bad_parameter("limit", limit, f"a whole number from 1 to {MAX_LIMIT}")
    search = SearchRequest(
        query=_text(body.get("query"), "query", required=mode != "keyword" or not filters),
        mode=cast(Any, mode),
        semantic_weight=_weights(body, semantic_name="semanticWeight", keyword_name="keywordWeight",
                                 default_semantic=0.3),
        fusion=cast(Any, _fusion(body.get("fusion"))), filters=_filters(rt, filters), limit=limit,
        cursor=_cursor(body.get("cursor")))
    return _answer(rt, search)


# --- track-centred routes in the seed's shape -------------------------------------------------------------------
def _seed_track(rt: Runtime, item_id: str) -> tuple[TrackInfo, Any]:
    queries = index_queries(rt)
    if len(item_id) > ITEM_ID_MAX:
        raise bad_parameter("id", item_id[:40], "a track id")
    return track_or_404(queries.lookup, item_id, "id"), queries


def _similar_json(seed: TrackInfo, track: TrackInfo, distance: float, reasons: list[str]) -> dict[str, Any]:
    bpm_diff = round(track.tempo_bpm - seed.tempo_bpm) if track.tempo_bpm and seed.tempo_bpm else None
    compatible = bool(seed.camelot and track.camelot and camelot_compatible(seed.camelot, track.camelot))
    return {"track": track_json(track), "similarity": round(max(0.0, min(1.0, 1.0 - distance)), 4),
            "bpmDiff": bpm_diff, "keyCompatible": compatible, "matchReasons": reasons}


@bp.get("/api/v1/tracks/<path:item_id>/similar")
def similar(item_id: str) -> Response:
    """`n`, `scope` (library: every track; other_artists: not the source's artist) → the seed's shape."""
    rt = runtime()
    seed, queries = _seed_track(rt, item_id)
    n = int_param("n", 10, minimum=1, maximum=rt.config.SIMILAR_MAX_N)
    scope = str_param("scope", "library", max_length=20) or "library"
    if scope not in ("library", "other_artists"):
        raise bad_parameter("scope", scope, "library or other_artists")
    results = discovery_errors(lambda: similar_songs(
        seed, n=n, neighbours=queries.neighbours, lookup=queries.lookup, max_per_artist=rt.config.MAX_SONGS_PER_ARTIST,
        duplicate_distance=rt.config.DUPLICATE_DISTANCE,
        exclude_artists=[seed.artist] if scope == "other_artists" else ()))
    similar_tracks = []
    for r in results:
        reasons = ["semantic"]
        body = _similar_json(seed, r.track, r.distance, reasons)
        if body["bpmDiff"] is not None and abs(body["bpmDiff"]) <= 5:
            reasons.append("bpm")
        if body["keyCompatible"]:
            reasons.append("key")
        similar_tracks.append(body)
    return jsonify({"sourceTrack": track_json(seed), "similar": similar_tracks, "totalMatches": len(similar_tracks),
                    **queries_exclusions(queries)})


@bp.get("/api/v1/tracks/<path:item_id>/mixable")
def mixable(item_id: str) -> Response:
    """`mode` (harmonic / energy / vibe), `n`, `bpm_tolerance` → the seed's shape with `matchReasons`."""
    rt = runtime()
    seed, queries = _seed_track(rt, item_id)
    n = int_param("n", 20, minimum=1, maximum=rt.config.SIMILAR_MAX_N)
    mode = str_param("mode", "harmonic", max_length=20) or "harmonic"
    results = discovery_errors(lambda: mixable_tracks(
        seed, n=n, neighbours=queries.neighbours, lookup=queries.lookup, mode=cast(Mode, mode),
        max_per_artist=rt.config.MAX_SONGS_PER_ARTIST, duplicate_distance=rt.config.DUPLICATE_DISTANCE))
    tracks = [_similar_json(seed, r.track, r.distance, list(r.reasons)) for r in results]
    return jsonify({"sourceTrack": track_json(seed), "mode": mode, "similar": tracks, "totalMatches": len(tracks),
                    **queries_exclusions(queries)})
