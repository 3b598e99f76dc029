"""Text search API: the reference's CLAP routes and the semantic-search route of the search seeds. They are answered
by CLAP when CLAP_ENABLED and tracks have CLAP embeddings, otherwise by the default engine (the query mapped onto
what the analysis measures, services.text_search)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from audio.clap import ClapModelError
from config import NumberError, parse_int
from db import tracks as track_store
from discovery.recommended_tags import recommended_tags
from discovery.types import DiscoveryError
from routes.common import exclusions_json, request_exclusions
from routes.context import Runtime, runtime
from routes.errors import ApiError, bad_parameter
from routes.params import has_control_characters, json_body, raw_param
from services.text_search import (
    CACHE_NAME,
    CLAP_CACHE_NAME,
    CLAP_ENGINE_NAME,
    ENGINE_NAME,
    ClapLibrary,
    Engine,
    SearchableLibrary,
    active_engine,
    hit_positions,
    semantic_search,
    suggested_queries,
    tag_matches,
)

bp = Blueprint("textsearch_api", __name__)

MIN_QUERY, MAX_QUERY = 3, 200
MAX_LIMIT = 500


def _query(value: Any, name: str) -> str:
    if not isinstance(value, str) or not MIN_QUERY <= len(value.strip()) <= MAX_QUERY:
        raise bad_parameter(name, value, f"text of {MIN_QUERY} to {MAX_QUERY} characters")
    return value.strip()


def _limit(value: Any, name: str) -> int:
    if value is None or value == "":
        return 100
    try:
        return parse_int(value, minimum=1, maximum=MAX_LIMIT)
    except NumberError:
        raise bad_parameter(name, value, f"a whole number from 1 to {MAX_LIMIT}") from None


def _library(rt: Runtime) -> SearchableLibrary:
    library = rt.index.cache(CACHE_NAME)
    if library is None:
        raise ApiError(503, "text search is being prepared; try again in a moment", retry_after=2)
    return library


def _active(rt: Runtime) -> Engine:
    return active_engine(rt.text_model, rt.clap_model, rt.index.state.caches)


def _unavailable(engine: str, exc: Exception) -> ApiError:
    return ApiError(503, f"the text model is not available: {exc}", engine=engine)


def _results(rt: Runtime, query: str, limit: int) -> dict[str, Any]:
    state = rt.index.state  # the index and the caches built against it, read together
    library: SearchableLibrary | None = state.caches.get(CACHE_NAME)
    if library is None:
        raise ApiError(503, "text search is being prepared; try again in a moment", retry_after=2)
    if len(library) == 0 or state.index is None:
        return {"query": query, "results": [], "count": 0, "engine": ENGINE_NAME,
                "message": "Nothing has been analyzed yet: run an analysis first."}
    catalog = state.index.catalog
    engine = active_engine(rt.text_model, rt.clap_model, state.caches).name
    exclusions = request_exclusions(rt)
    mask = state.index.exclusion_mask(exclusions) if exclusions.active else None
    try:
        answer = semantic_search(rt.text_model, rt.clap_model, state.caches, query, limit=limit,
                                 allowed=mask.allowed if mask is not None else None, catalog=catalog)
    except (DiscoveryError, ClapModelError) as exc:
        raise _unavailable(engine, exc) from None
    results = []
    for position, similarity, because in answer.hits:
        names = catalog.names(position)
        if names is None:
            continue
        title, artist, album = names
        results.append({"item_id": catalog.item_id(position), "title": title, "author": artist, "album": album,
                        "similarity": similarity, "matched": [{"concept": c, "percentile": p} for c, p in because],
                        **catalog.copy_fields(position)})
    body: dict[str, Any] = {"query": query, "results": results, "count": len(results), "engine": answer.engine,
                            "model": answer.model}
    if answer.audio_model is not None or answer.engine == CLAP_ENGINE_NAME:
        body["audio_model"] = answer.audio_model
    if answer.concepts is not None:
        body["concepts"] = answer.concepts
    body["understood"] = answer.understood
    if answer.message is not None:
        body["message"] = answer.message
    body.update(exclusions_json(exclusions, mask))
    return body


def _allowed_first(find: Any, limit: int, allowed: Any) -> list[Any]:
    """The first `limit` of `find(k)`'s hits (tuples starting with an index position) that `allowed` allows (None:
    all), asking `find` for more (doubling) while allowed ones are missing and it has more."""
    if allowed is None:
        return list(find(limit))
    ask = limit
    while True:
        hits = find(ask)
        kept = [hit for hit in hits if allowed[hit[0]]]
        if len(kept) >= limit or len(hits) < ask:
            return kept[:limit]
        ask *= 2


@bp.get("/api/search/keyword")
def keyword() -> Response:
    """`q` (2-200 characters), `limit` → {query, results: [{item_id, title, author, album, matched}], count}: title,
    artist and album containing the text (case and accents ignored; title matches first), then tracks high in a tag
    or mood the text names (matched "tag: jazz"). Searched in memory; in PostgreSQL while the cache is prepared."""
    rt = runtime()
    raw = raw_param("q")
    if not isinstance(raw, str) or not 2 <= len(raw.strip()) <= MAX_QUERY:
        raise bad_parameter("q", raw, f"text of 2 to {MAX_QUERY} characters")
    query, limit = raw.strip(), _limit(raw_param("limit"), "limit")
    exclusions = request_exclusions(rt)
    state = rt.index.state
    library: SearchableLibrary | None = state.caches.get(CACHE_NAME)
    if library is None or state.index is None:
        results = [{"item_id": r["item_id"], "title": r["title"], "author": r["artist"], "album": r["album"],
                    "matched": r["matched"]} for r in track_store.keyword_search(rt.db, query, limit=limit)]
        return jsonify({"query": query, "results": results, "count": len(results)})
    catalog = state.index.catalog
    mask = state.index.exclusion_mask(exclusions) if exclusions.active else None
    allowed = mask.allowed if mask is not None else None
    results = []
    for position, field in _allowed_first(lambda k: library.keywords.search(query, limit=k), limit, allowed):
        names = catalog.names(position)
        if names is not None:
            results.append({"item_id": catalog.item_id(position), "title": names[0], "author": names[1],
                            "album": names[2], "matched": field})
    if len(results) < limit:
        seen = {r["item_id"] for r in results}
        for position, tag, percentile in _allowed_first(lambda k: tag_matches(library, query, limit=k), limit,
                                                        allowed):
            names = catalog.names(position)
            item_id = catalog.item_id(position)
            if names is None or item_id in seen:
                continue
            results.append({"item_id": item_id, "title": names[0], "author": names[1], "album": names[2],
                            "matched": f"tag: {tag}", "percentile": percentile})
            if len(results) >= limit:
                break
    return jsonify({"query": query, "results": results, "count": len(results), **exclusions_json(exclusions, mask)})


@bp.post("/api/clap/search")
def clap_search() -> Response:
    """{query, limit} → {query, results: [{item_id, title, author, album, similarity, matched}], count, engine}."""
    body = json_body()
    return jsonify(_results(runtime(), _query(body.get("query"), "query"), _limit(body.get("limit"), "limit")))


@bp.get("/search/semantic")
def semantic() -> Response:
    """`q`, `limit` → {results, query, available}: available is false only when no engine can answer."""
    rt = runtime()
    query, limit = _query(raw_param("q"), "q"), _limit(raw_param("limit"), "limit")
    try:
        answer = _results(rt, query, limit)
    except ApiError as exc:
        if exc.status != 503:
            raise
        return jsonify({"results": [], "query": query, "available": False, "reason": exc.message})
    return jsonify({"results": answer["results"], "query": query, "available": True, "engine": answer["engine"],
                    **({"message": answer["message"]} if "message" in answer else {})})


def _warmup_state(rt: Runtime) -> dict[str, Any]:
    active = _active(rt)
    engine, model = active.name, active.model
    remaining = model.seconds_remaining()
    return {"active": model.loaded and remaining > 0, "seconds_remaining": remaining,
            "engine": engine, "model": model.name, "error": model.load_error}


@bp.post("/api/clap/warmup")
def warmup() -> Response:
    """Load the active engine's text model now (and keep it for CLAP_TEXT_SEARCH_WARMUP_DURATION seconds after the
    last use)."""
    rt = runtime()
    active = _active(rt)
    engine, model = active.name, active.model
    try:
        model.warm_up()
    except (DiscoveryError, ClapModelError) as exc:
        raise _unavailable(engine, exc) from None
    return jsonify(_warmup_state(rt))


@bp.get("/api/clap/warmup/status")
def warmup_status() -> Response:
    return jsonify(_warmup_state(runtime()))


@bp.get("/api/clap/stats")
def stats() -> Response:
    """Songs searchable, memory of the scores, the engine answering and its model; with CLAP_ENABLED, the CLAP
    embeddings too (songs, memory, audio model, text model, embeddings by other models left out)."""
    rt = runtime()
    library = rt.index.cache(CACHE_NAME)
    active = _active(rt)
    engine, model = active.name, active.model
    answer: dict[str, Any] = {
        "songs": len(library) if library is not None else 0,
        "memory_bytes": library.nbytes if library is not None else 0,
        "engine": engine, "model": model.name, "model_loaded": model.loaded,
        "cache_error": rt.index.cache_errors.get(CACHE_NAME)}
    if rt.clap_model is not None:
        clap: ClapLibrary | None = rt.index.cache(CLAP_CACHE_NAME)
        answer["clap"] = {"enabled": True, "songs": len(clap) if clap is not None else 0,
                          "memory_bytes": clap.nbytes if clap is not None else 0,
                          "audio_model": clap.audio_model if clap is not None else None,
                          "text_model": rt.clap_model.name, "model_loaded": rt.clap_model.loaded,
                          "other_models": clap.other_models if clap is not None else {},
                          "cache_error": rt.index.cache_errors.get(CLAP_CACHE_NAME)}
    else:
        answer["clap"] = {"enabled": False}
    return jsonify(answer)


_suggested: dict[str, Any] = {}  # the cache the suggestions were computed on, and them


@bp.get("/api/clap/top_queries")
def top_queries() -> Response:
    """Suggested queries: ones that give distinct, non-empty results on this library (computed once per cache)."""
    rt = runtime()
    library = _library(rt)
    engine = _active(rt)
    if _suggested.get("library") is not library or _suggested.get("clap") is not engine.clap:
        try:
            queries = [] if engine.clap is None and len(library) == 0 else suggested_queries(
                lambda q, top: hit_positions(engine, library, q, top=top))
        except (DiscoveryError, ClapModelError) as exc:
            raise _unavailable(engine.name, exc) from None
        _suggested.update(library=library, clap=engine.clap, queries=queries)
    return jsonify({"queries": _suggested["queries"], "engine": engine.name})


@bp.post("/api/clap/cache/refresh")
def refresh() -> Response:
    """Rebuild the text-search scores (and the CLAP embeddings) from the database now (they are also rebuilt with
    every index)."""
    rt = runtime()
    rt.index.reload_cache(CACHE_NAME)
    answer: dict[str, Any] = {}
    if rt.clap_model is not None:
        rt.index.reload_cache(CLAP_CACHE_NAME)
        clap: ClapLibrary | None = rt.index.cache(CLAP_CACHE_NAME)
        answer["clap_songs"] = len(clap) if clap is not None else 0
    library = _library(rt)
    return jsonify({"songs": len(library), "cache_error": rt.index.cache_errors.get(CACHE_NAME), **answer})


@bp.get("/api/tracks/<path:item_id>/recommended-tags")
def track_recommended_tags(item_id: str) -> Response:
    """`limit` (1-50, default 5) → {track_id, tags: [{name, score}], available, genres}: the tags the analysis
    predicts for the track that its media-server genres do not already name; available is false (and tags empty)
    while the track has no analysis."""
    rt = runtime()
    if len(item_id) > 4096 or has_control_characters(item_id):
        raise ApiError(400, "invalid item id", parameter="item_id")
    raw = raw_param("limit")
    try:
        limit = 5 if raw in (None, "") else parse_int(raw, minimum=1, maximum=50)
    except NumberError:
        raise bad_parameter("limit", raw, "a whole number from 1 to 50") from None
    row = track_store.recommendation_row(rt.db, item_id)
    if row is None:
        raise ApiError(404, f"track '{item_id}' is not in the library", parameter="item_id")
    available = row["analyzed_at"] is not None and bool(row["tags"])
    tags = recommended_tags(row["tags"] or {}, row["genres"] or [], limit=limit) if available else []
    return jsonify({"track_id": item_id, "tags": [{"name": n, "score": s} for n, s in tags],
                    "available": available, "genres": list(row["genres"] or [])})
