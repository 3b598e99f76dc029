"""The instant-playlist chat in the web process: ask the LLM for a query, check it (db.chat_sql), run it as the chat
role (db.chat_queries), and when there is no LLM, the LLM fails, or its answer is refused or finds nothing, build the
playlist from the request itself (discovery.chat_intent) — the same check and execution, and the page says why."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ai
from ai import call_delay, default_model, missing_key
from audio.musicnn import MSD_TAGS
from config import Config
from db import chat_queries
from db import versions as version_store
from db.chat_queries import ChatQueryFailed, ChatRole
from db.chat_sql import ChatQueryRejected, ValidatedQuery, validate_chat_query, with_limit
from db.pool import Database
from discovery.chat_intent import Intent, NameIndex, extract_intent, like_phrase
from discovery.chat_results import playlist_rows
from services.chat_prompt import ChatAnswerInvalid, chat_prompt, parse_llm_answer

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ChatRequest:
    user_input: str
    provider: str | None = None  # lower case; None: AI_MODEL_PROVIDER
    model: str | None = None
    ollama_server_url: str | None = None


class AiCallLog:
    """The last AI calls (time, provider, model, seconds, outcome), for the page; never prompts or keys."""

    def __init__(self, size: int = 50) -> None:
        self._calls: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, *, provider: str, model: str, seconds: float, outcome: str) -> None:
        with self._lock:
            self._calls.appendleft({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "provider": provider,
                                    "model": model, "seconds": round(seconds, 2), "outcome": outcome[:300]})

    def recent(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._calls)


class ProviderPacer:
    """Keeps GEMINI_API_CALL_DELAY_SECONDS / MISTRAL_API_CALL_DELAY_SECONDS between two calls to a provider."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def wait(self, provider: str, delay: float) -> None:
        if delay <= 0:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._last.get(provider, -delay) + delay)
            self._last[provider] = start
        if start > now:
            self._sleep(start - now)


@dataclass(frozen=True)
class LibraryNames:
    artists: NameIndex
    albums: NameIndex
    genres: NameIndex


class NameCache:
    """The library's names as NameIndex, read from PostgreSQL again when the library changes (`key`: the loaded
    index's hash) or after `max_age` seconds."""

    def __init__(self, max_age: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._entry: tuple[object, float, LibraryNames] | None = None

    def get(self, db: Database, key: object) -> LibraryNames:
        with self._lock:
            entry = self._entry
            if entry is not None and entry[0] == key and self._clock() - entry[1] < self.max_age:
                return entry[2]
            names = chat_queries.library_names(db)
            built = LibraryNames(NameIndex(names["artists"]), NameIndex(names["albums"], min_length=4),
                                 NameIndex(names["genres"]))
            self._entry = (key, self._clock(), built)
            return built


@dataclass
class ChatContext:
    config: Config
    db: Database
    role: ChatRole | None
    calls: AiCallLog
    pacer: ProviderPacer
    similar: Callable[[str, int], list[str]] | None = None  # item id, n → the most similar item ids
    names: NameCache = dataclasses.field(default_factory=NameCache)
    # text → [(source, key, weight)]: the text-search engine's reading (tag/mood/energy/tempo concepts)
    concepts: Callable[[str], list[tuple[str, str, float]]] | None = None
    library_key: object = None  # what changes when the library does (the loaded index's hash)
    # item id → whether the blocklists and scope allow it; None: everything is allowed
    allowed: Callable[[str], bool] | None = None


# How far the chat raises a query's LIMIT to make up for the rows the blocklists leave out (a multiple of it).
MAX_LIMIT_GROWTH = 64


def _run(ctx: ChatContext, query: ValidatedQuery) -> list[dict[str, Any]]:
    """The query's rows, without the ones the blocklists and scope leave out: the query runs again with a doubled
    LIMIT while some were left out and it may have more, so a request for n songs still gets n."""
    role = ctx.role.name if ctx.role and ctx.role.ready else None

    def rows_of(q: ValidatedQuery) -> list[dict[str, Any]]:
        return chat_queries.run_chat_query(ctx.db, q, role=role, timeout_ms=ctx.config.CHAT_STATEMENT_TIMEOUT_MS)

    rows = rows_of(query)
    if ctx.allowed is None:
        return rows
    allowed, limit = ctx.allowed, query.limit
    while True:
        kept = [r for r in rows if r.get("item_id") is None or allowed(str(r["item_id"]))]
        if len(kept) >= query.limit or len(rows) < limit or limit >= query.limit * MAX_LIMIT_GROWTH:
            return kept[:query.limit]
        limit = min(limit * 2, query.limit * MAX_LIMIT_GROWTH)
        rows = rows_of(with_limit(query, limit))


def _tracks(ctx: ChatContext, rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The playlist's songs (every field the page shows, whatever the query selected), versions and extra songs
    of one artist left out."""
    ids = [str(r["item_id"]) for r in rows if r.get("item_id")]
    if rows and all(f in rows[0] for f in chat_queries.RESULT_FIELDS):  # the fallback's own rows: no second read
        details = {str(r["item_id"]): {f: r[f] for f in chat_queries.RESULT_FIELDS} for r in rows}
    else:
        details = chat_queries.result_rows(ctx.db, ids)
    recording_of, song_of = version_store.group_ids(ctx.db, ids)
    shown = [song_of.get(i) or recording_of.get(i, i) for i in dict.fromkeys(ids)]  # a song by its shown file
    missing = [i for i in shown if i not in details]
    if missing:
        details.update(chat_queries.result_rows(ctx.db, missing))
    ordered = [details[i] for i in dict.fromkeys(shown) if i in details]
    return playlist_rows(ordered, max_per_artist=ctx.config.MAX_SONGS_PER_ARTIST, limit=limit,
                         song_of={**song_of, **{recording_of[i]: song_of[i] for i in recording_of if i in song_of}})


def _ask_llm(ctx: ChatContext, request: ChatRequest, provider: str, model: str, limit: int,
             cap: int) -> tuple[dict[str, Any] | None, str]:
    """(the LLM path's answer, "") or (None, why the fallback answers instead)."""
    config = ctx.config
    if provider == "ollama" and request.ollama_server_url:
        config = dataclasses.replace(config, OLLAMA_SERVER_URL=request.ollama_server_url)
    ctx.pacer.wait(provider, call_delay(config, provider))
    prompt = chat_prompt(request.user_input, tags=MSD_TAGS, max_limit=cap, default_limit=limit)
    started = time.monotonic()
    try:
        text = ai.complete(config, prompt, provider=provider, model=model, temperature=0.2)
    except ai.AIError as exc:
        ctx.calls.record(provider=provider, model=model, seconds=time.monotonic() - started, outcome=f"failed: {exc}")
        return None, f"the LLM could not be asked: {exc}"
    seconds = time.monotonic() - started
    try:
        plan = parse_llm_answer(text)
        query = validate_chat_query(plan.query, plan.params, max_limit=cap)
    except (ChatAnswerInvalid, ChatQueryRejected) as exc:
        ctx.calls.record(provider=provider, model=model, seconds=seconds, outcome=f"answer refused: {exc}")
        log.info("chat: the %s answer was refused (%s): %.500s", provider, exc, text)
        return None, f"the LLM's answer was refused: {exc}"
    try:
        results = _tracks(ctx, _run(ctx, query), cap)
    except ChatQueryFailed as exc:
        ctx.calls.record(provider=provider, model=model, seconds=seconds, outcome=f"query failed: {exc}")
        return None, f"the LLM's query failed: {exc}"
    if not results:
        ctx.calls.record(provider=provider, model=model, seconds=seconds, outcome="query found no songs")
        return None, "the LLM's query found no songs"
    ctx.calls.record(provider=provider, model=model, seconds=seconds, outcome=f"{len(results)} songs")
    return {"message": plan.message or f"{len(results)} songs for your request.", "executed_query": query.sql,
            "query_params": list(query.params), "query_results": results, "path": "llm"}, ""


def _well_matched(rows: list[dict[str, Any]], *, share: float = 0.5, keep: int = 5) -> list[dict[str, Any]]:
    """The rows scoring at least `share` of the best one (at least `keep` rows): a library with four blues songs
    answers "blues" with those, not with 21 others after them."""
    best = max((float(r.get("score") or 0) for r in rows), default=0.0)
    if best <= 0:
        return rows
    good = [r for r in rows if float(r.get("score") or 0) >= share * best]
    return good if len(good) >= keep else rows[:keep]


MIN_CONCEPT_WEIGHT = 0.15
NOT_RECOGNISED = ("Nothing in the request was recognised: no genre, mood, tag, artist, album, song title, tempo or "
                  "energy the library knows, so no playlist was made. Try e.g. “calm jazz”, “upbeat songs like "
                  "<a title>” or an artist's name.")


def _understand_with_concepts(ctx: ChatContext, text: str, intent: Intent, warnings: list[str]) -> None:
    """Tags, moods, energy and tempo for a request that names none the vocabulary knows, as the text-search engine
    reads it ("tranquil lullabies for a rainy afternoon" → mellow, relaxed); nothing when it reads nothing."""
    assert ctx.concepts is not None
    try:
        concepts = ctx.concepts(text)
    except Exception as exc:  # the model may be missing: the request is still answered
        warnings.append(f"the text-search model could not read the request: {exc}")
        return
    for source, key, weight in concepts:
        if weight < MIN_CONCEPT_WEIGHT:
            continue
        if source == "tag" and key not in intent.tags:
            intent.tags.append(key)
        elif source == "mood" and key not in intent.moods:
            intent.moods.append(key)
        elif source == "energy" and intent.energy is None:
            intent.energy = "high" if key == "energetic" else "low"
        elif source == "tempo" and intent.min_bpm is None and intent.max_bpm is None:
            intent.min_bpm, intent.max_bpm = (125.0, None) if key == "fast" else (None, 95.0)
    intent.read_by_model = bool(intent.tags or intent.moods or intent.energy or intent.min_bpm or intent.max_bpm)


def _fallback(ctx: ChatContext, request: ChatRequest, limit: int, cap: int,
              warnings: list[str]) -> dict[str, Any]:
    names = ctx.names.get(ctx.db, ctx.library_key)
    phrase = like_phrase(request.user_input)
    titles = chat_queries.titles_starting(ctx.db, phrase) if phrase else []
    intent: Intent = extract_intent(request.user_input, tags=MSD_TAGS, genres=names.genres, artists=names.artists,
                                    albums=names.albums, titles=titles)
    specific = intent.tags or intent.moods or intent.like_title or intent.artists or intent.albums or intent.genres
    if not specific and ctx.concepts is not None:
        _understand_with_concepts(ctx, request.user_input, intent, warnings)
    if intent.empty:  # no tag, mood or genre is invented for it: a random mix would answer another request
        return {"message": NOT_RECOGNISED, "executed_query": "", "query_params": [], "query_results": [],
                "path": "fallback", "understood": []}
    size = min(intent.count or limit, cap)
    similar_ids = None
    if intent.like_title and ctx.similar is not None:
        seed = chat_queries.item_id_by_title(ctx.db, intent.like_title)
        similar_ids = ctx.similar(seed, min(size + 1, cap)) if seed else None
        if not similar_ids:
            warnings.append(f"no similar songs could be found for {intent.like_title}")
    query, rows = None, []
    for strict in (True, False):
        wanted = min(size * 3, cap)
        among = None if similar_ids else _best_candidates(ctx, intent, strict, wanted)
        sql, params = chat_queries.fallback_query(intent, limit=wanted, similar_ids=similar_ids, strict=strict,
                                                  among_ids=among)
        query = validate_chat_query(sql, params, max_limit=cap)  # our own template passes the same check
        rows = _run(ctx, query)
        if rows or not strict:
            break
        warnings.append("nothing matched every filter (artist, album, genre, tempo, key); they were relaxed to a "
                        "ranking")
    rows = _well_matched(rows) if not similar_ids else rows
    if similar_ids and rows:
        order = {item_id: i for i, item_id in enumerate(similar_ids)}
        rows.sort(key=lambda r: order.get(str(r["item_id"]), len(order)))
    results = _tracks(ctx, rows, size)
    understood = intent.describe()
    how = " (as the text-search model reads the request)" if intent.read_by_model else ""
    message = f"{len(results)} songs for: {', '.join(understood)}{how}."
    assert query is not None
    return {"message": message if results else "No songs in the library match the request.",
            "executed_query": query.sql, "query_params": list(query.params), "query_results": results,
            "path": "fallback", "understood": understood}


def _best_candidates(ctx: ChatContext, intent: Intent, strict: bool, wanted: int) -> list[str] | None:
    """The tracks the fallback's query answers with, found in the narrow score table first (the chat view's rows
    are ~3x wider): the first `wanted` allowed tracks of its order (score, then item id), so the query over them
    alone gives what it would over the whole library; for a request with no score (tempo only), `wanted` allowed
    tracks in its range drawn at random, as the view would draw them. None when the table cannot say (a filter it
    does not hold, too many tracks left out by the blocklists, more ids than a query may name)."""
    if wanted > _MAX_CANDIDATES:
        return None
    positions = chat_queries.score_tag_positions(ctx.db)
    allowed = ctx.allowed or (lambda _: True)
    count = wanted
    while count <= wanted * _MAX_CANDIDATE_GROWTH:
        try:
            found = chat_queries.fallback_candidates(ctx.db, intent, strict=strict, count=count,
                                                     tag_positions=positions,
                                                     timeout_ms=ctx.config.CHAT_STATEMENT_TIMEOUT_MS)
        except chat_queries.ChatQueryFailed:
            log.warning("the chat's score table could not be read; the fallback reads the chat view", exc_info=True)
            return None
        if found is None:
            return None
        kept = [item_id for item_id in found if allowed(item_id)]
        if len(kept) >= wanted or len(found) < count:  # enough, or every matching track was read
            return kept[:wanted]
        count *= 2
    return None


# The candidates' bounds: 1,000 ids (the chat's query text is at most 10,000 characters), and reading up to 8x the
# rows asked for when the blocklists leave many out (then the view is ranked instead).
_MAX_CANDIDATES = 1000
_MAX_CANDIDATE_GROWTH = 8


def chat_playlist(ctx: ChatContext, request: ChatRequest) -> dict[str, Any]:
    """The answer to one request, in the reference's shape (`{"response": {...}}`)."""
    config = ctx.config
    cap = config.ALCHEMY_MAX_N_RESULTS
    limit = min(config.CHAT_DEFAULT_N_RESULTS, cap)
    provider = (request.provider or config.AI_MODEL_PROVIDER).strip().lower()
    model = request.model or default_model(config, provider) if provider != "none" else ""
    warnings: list[str] = []
    if ctx.role is not None and not ctx.role.ready:
        warnings.append(f"the chat's database role is not set up ({ctx.role.problem or 'not ready'}): queries run "
                        "read-only with a timeout, but without the role's second line of defence")
    answer: dict[str, Any] | None = None
    if provider == "none":
        reason = "no LLM is configured (AI_MODEL_PROVIDER=none)"
    elif missing_key(config, provider):
        reason = f"{provider} has no API key configured ({provider.upper()}_API_KEY)"
        warnings.append(reason)
    else:
        answer, reason = _ask_llm(ctx, request, provider, model, limit, cap)
    if answer is None:
        warnings.append(f"The playlist was made without the LLM: {reason}.")
        try:
            answer = _fallback(ctx, request, limit, cap, warnings)
        except (ChatQueryFailed, ChatQueryRejected) as exc:  # our own query failed: say so, never a 500
            log.warning("chat fallback failed: %s", exc)
            answer = {"message": f"No playlist could be made: {exc}", "executed_query": "", "query_params": [],
                      "query_results": [], "path": "fallback"}
    return {"response": {"original_request": request.user_input,
                         "ai_provider_used": provider.upper() if answer["path"] == "llm" else "NONE",
                         "ai_model_selected": model if answer["path"] == "llm" else "",
                         "warnings": warnings, **answer}}
