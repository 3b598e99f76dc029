"""Text search in the web process: the per-library concept scores (a cache on the IndexHolder, rebuilt with the
index) and the text model, loaded on first use and unloaded CLAP_TEXT_SEARCH_WARMUP_DURATION seconds after its
last use, with the embeddings of recent queries kept so a repeated query costs no inference. With CLAP_ENABLED also
the CLAP embeddings (a second cache: one float32 matrix, searched by a matrix-vector product) and the CLAP text
encoder, kept the same way."""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from audio.moods import MOODS
from audio.musicnn import MSD_TAGS
from config import Config
from db import clap_embeddings as clap_store
from db.pool import Database
from db.tracks import text_search_rows
from discovery.catalog import Catalog
from discovery.clap_text import ClapTextEncoder
from discovery.keyword_index import KeywordIndex
from discovery.ranking import ordered, top_cosine
from discovery.sentence_encoder import SentenceEncoder
from discovery.text_search import (
    Concept,
    ConceptColumns,
    ConceptScores,
    TextSearchEngine,
    build_concepts,
    concept_scores,
)
from voyager_manager import LoadedIndex

log = logging.getLogger(__name__)

CACHE_NAME = "text_search"
CLAP_CACHE_NAME = "clap"
CLAP_ENGINE_NAME = "clap"
CONCEPTS: tuple[Concept, ...] = build_concepts(MSD_TAGS, MOODS)
ENGINE_NAME = "concepts"
MODEL_NAME = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class SearchableLibrary:
    """The concept scores of the index's tracks that have analysis values (`positions[i]` is row i's index
    position), and the keyword index of every indexed track's names (its rows are index positions)."""

    positions: np.ndarray  # int64; -1: a track the index no longer holds (a cache moved onto a new index)
    scores: ConceptScores
    top: np.ndarray  # int16 (n, 4): concept indices of each track's 3 highest tags and its strongest mood; -1 none
    keywords: KeywordIndex
    gone: int = 0  # rows at position -1

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def nbytes(self) -> int:
        return int(self.positions.nbytes) + self.scores.nbytes + int(self.top.nbytes) + self.keywords.nbytes


_CONCEPT_OF = {(c.source, c.key): i for i, c in enumerate(CONCEPTS)}


def top_concepts(tags: dict[str, float] | None, moods: dict[str, float] | None) -> list[int]:
    """Concept indices of the 3 highest tags (ties by name) and the strongest mood, -1 where there is none."""
    best_tags = sorted((tags or {}).items(), key=lambda kv: (-float(kv[1]), kv[0]))[:3]
    codes = [_CONCEPT_OF.get(("tag", name), -1) for name, _ in best_tags] + [-1] * (3 - len(best_tags))
    best_mood = min((moods or {}).items(), key=lambda kv: (-float(kv[1]), kv[0]), default=None)
    return codes + [_CONCEPT_OF.get(("mood", best_mood[0]), -1) if best_mood else -1]


def build_searchable_library(db: Database, loaded: LoadedIndex | None) -> SearchableLibrary:
    """The text-search cache for the tracks `loaded` holds (an IndexHolder cache builder)."""
    if loaded is None or len(loaded) == 0:
        return SearchableLibrary(np.zeros(0, dtype=np.int64), concept_scores(
            CONCEPTS, tags=[], moods=[], tempo=[], energy=[], scale=[]), np.zeros((0, 4), dtype=np.int16),
            KeywordIndex.build([]))
    catalog = loaded.catalog
    item_ids = [catalog.item_id(p) for p in range(len(loaded))]
    # Streamed into flat arrays: a tag dict per track would be gigabytes at a million tracks.
    positions = array("q")
    columns = ConceptColumns(CONCEPTS, len(item_ids))
    top = np.full((len(item_ids), 4), -1, dtype=np.int16)
    for position, (row_tags, row_moods, row_tempo, row_energy, row_scale) in enumerate(
            text_search_rows(db, item_ids)):
        if row_tags is None:
            continue  # not analyzed (or gone from the tracks table since the index was built)
        top[len(positions)] = top_concepts(row_tags, row_moods)
        positions.append(position)
        columns.add(row_tags, row_moods, row_tempo, row_energy, row_scale)
    return SearchableLibrary(np.frombuffer(positions, dtype=np.int64).copy() if positions else
                             np.zeros(0, dtype=np.int64), columns.scores(),
                             np.ascontiguousarray(top[:len(positions)]),
                             KeywordIndex.build([catalog.names(p) for p in range(len(loaded))]))


def move_searchable_library(library: SearchableLibrary, loaded: LoadedIndex,
                            moved: np.ndarray) -> SearchableLibrary:
    """The text-search cache moved onto a new index (an IndexHolder cache mover): rows renamed to their tracks'
    new positions, -1 for tracks the new index does not hold (never found); the scores are shared, not copied."""
    positions = moved_positions(library.positions, moved)
    return SearchableLibrary(positions, library.scores, library.top, library.keywords.moved(moved),
                             gone=int(np.count_nonzero(positions < 0)))


def moved_positions(positions: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """`positions` (int64, -1: none) renamed by `moved` (old position -> new, -1: gone); -1 stays -1."""
    return np.where(positions >= 0, moved[np.maximum(positions, 0)], -1).astype(np.int64)


class QueryEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class TextModel:
    """A text model (what `load` gives: the concept engine on the sentence encoder, or the CLAP text encoder),
    loaded lazily and unloaded after `idle_seconds` without use."""

    def __init__(self, load: Callable[[], QueryEncoder], *, name: str, idle_seconds: float, query_cache: int,
                 clock: Callable[[], float] = time.monotonic, lowercase: bool = True) -> None:
        self.lowercase = lowercase  # the sentence encoder is uncased; a CLAP tokenizer may not be
        self._load = load
        self.name = name
        self.idle_seconds = idle_seconds
        self.query_cache = query_cache
        self._clock = clock
        self._lock = threading.Lock()
        self._engine: QueryEncoder | None = None
        self._last_use = 0.0
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self.load_error: str | None = None

    def _touch(self) -> QueryEncoder:
        """The model (loading it if needed) with the idle timer reset. Raises what `load` raises (DiscoveryError,
        ClapModelError) when the model cannot be loaded."""
        if self._engine is None:
            started = self._clock()
            try:
                self._engine = self._load()
            except Exception as exc:
                self.load_error = f"{type(exc).__name__}: {exc}"
                raise
            self.load_error = None
            log.info("text model %s loaded in %.2f s", self.name, self._clock() - started)
        self._last_use = self._clock()
        return self._engine

    def warm_up(self) -> None:
        with self._lock:
            self._touch()

    def embed(self, query: str) -> tuple[Any, np.ndarray]:
        """The engine and the query's embedding (from the cache when it was asked recently)."""
        key = " ".join((query.lower() if self.lowercase else query).split())
        with self._lock:
            engine = self._touch()
            vector = self._queries.get(key)
            if vector is None:
                vector = engine.encode([key])[0]
                if self.query_cache:
                    self._queries[key] = vector
                    while len(self._queries) > self.query_cache:
                        self._queries.popitem(last=False)
            else:
                self._queries.move_to_end(key)
            return engine, vector

    def seconds_remaining(self) -> int:
        with self._lock:
            if self._engine is None:
                return 0
            return max(0, int(round(self.idle_seconds - (self._clock() - self._last_use))))

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def unload_if_idle(self) -> bool:
        """Drop the model when it has not been used for `idle_seconds`; True when it was dropped."""
        with self._lock:
            if self._engine is not None and self._clock() - self._last_use >= self.idle_seconds:
                self._engine = None
                log.info("text model %s unloaded after %g s without use", self.name, self.idle_seconds)
                return True
            return False

    def unload_when_idle(self, stop: threading.Event, *, every: float = 5.0) -> threading.Thread:
        def run() -> None:
            while not stop.wait(every):
                self.unload_if_idle()

        thread = threading.Thread(target=run, name="text-model-idle", daemon=True)
        thread.start()
        return thread


def tag_matches(library: SearchableLibrary, text: str, *, limit: int) -> list[tuple[int, str, float]]:
    """(index position, tag, percentile) of the tracks that have a tag the text names ("jazz", "heavy metal")
    among their three highest, or a mood it names as their strongest; highest in it first. For keyword search."""
    words = " ".join(text.lower().split())
    named = [i for i, c in enumerate(CONCEPTS) if c.source in ("tag", "mood") and len(c.name) >= 3
             and (c.name in words or (len(words) >= 3 and words in c.name))]
    best = np.full(len(library), -1, dtype=np.int16)  # each track's best named percentile (0-255), -1 none
    best_concept = np.full(len(library), -1, dtype=np.int16)
    for i in named:
        slots = library.top[:, :3] if CONCEPTS[i].source == "tag" else library.top[:, 3:]
        column = np.where((slots == i).any(axis=1), library.scores.matrix[:, i].astype(np.int16), -1)
        better = column > best
        best[better], best_concept[better] = column[better], i
    rows = np.flatnonzero((best >= 0) & (library.positions >= 0))
    rows = rows[ordered(best[rows])[:limit]]  # highest first, ties by row
    return [(int(library.positions[r]), CONCEPTS[int(best_concept[r])].name, round(float(best[r]) / 255, 3))
            for r in rows.tolist()]


SUGGESTIONS = (
    "calm piano", "dark ambient", "energetic rock guitar", "upbeat electronic dance", "sad songs", "happy pop",
    "relaxing acoustic guitar", "heavy metal", "smooth jazz", "orchestral film score", "chill lounge",
    "80s synthpop", "fast and loud", "slow and quiet", "blues", "folk songs", "party music", "hip-hop",
    "experimental sounds", "video game music", "female vocals", "country", "funk groove", "romantic music",
)


def suggested_queries(find: Callable[[str, int], set[int]], *, count: int = 8, top: int = 10,
                      overlap: float = 0.5) -> list[str]:
    """Queries from SUGGESTIONS whose results on this library differ: each kept one shares at most `overlap` of
    its `top` results (`find(query, top)`: the positions an engine matched) with every query kept before it (in
    the fixed order above, so the answer is stable)."""
    kept: list[tuple[str, set[int]]] = []
    for query in SUGGESTIONS:
        found = find(query, top)
        if found and all(len(found & other) <= overlap * top for _, other in kept):
            kept.append((query, found))
        if len(kept) == count:
            break
    return [query for query, _ in kept]


# The concepts' text vectors by model file (path, size, mtime): embedding the 84 wordings costs ~0.7 s of CPU
# (more on a busy box), and the model is loaded again after every idle unload; the vectors (~130 KB) are kept
# for the process's life.
_concept_vectors: dict[tuple[str, int, int], np.ndarray] = {}
_concept_vectors_lock = threading.Lock()


def concept_engine_loader(model_dir: Path) -> Callable[[], TextSearchEngine]:
    def load() -> TextSearchEngine:
        encoder = SentenceEncoder(model_dir)  # raises DiscoveryError when the model's files are missing
        weights = (model_dir / "model.safetensors").stat()
        key = (str(model_dir.resolve()), weights.st_size, weights.st_mtime_ns)
        with _concept_vectors_lock:
            engine = TextSearchEngine(encoder.encode, CONCEPTS, text_vectors=_concept_vectors.get(key))
            _concept_vectors[key] = engine.text_vectors
        return engine

    return load


def text_model_for(config: Config) -> TextModel:
    """The default engine's text model (the sentence encoder under the concept engine)."""
    return TextModel(concept_engine_loader(Path(config.TEXT_MODEL_DIR)), name=MODEL_NAME,
                     idle_seconds=config.CLAP_TEXT_SEARCH_WARMUP_DURATION, query_cache=config.TEXT_SEARCH_QUERY_CACHE)


def clap_text_encoder(config: Config) -> ClapTextEncoder:
    """The CLAP text encoder of the settings; raises ClapModelError naming the setting that is wrong."""
    return ClapTextEncoder(config.CLAP_TEXT_MODEL_PATH, config.CLAP_TOKENIZER_PATH,
                           dimension=config.CLAP_EMBEDDING_DIMENSION)


def clap_model_for(config: Config) -> TextModel | None:
    """With CLAP_ENABLED, the CLAP text model (checked now, loaded on first use), else None. Raises
    ClapModelError when the files are missing or not a CLAP text encoder and tokenizer."""
    if not config.CLAP_ENABLED:
        return None
    name = clap_text_encoder(config).name  # refuses a wrong model at start-up; the session is dropped again
    return TextModel(lambda: clap_text_encoder(config), name=name, lowercase=False,
                     idle_seconds=config.CLAP_TEXT_SEARCH_WARMUP_DURATION, query_cache=config.TEXT_SEARCH_QUERY_CACHE)


@dataclass(frozen=True)
class ClapLibrary:
    """The CLAP embeddings of the index's tracks made by one audio model (the one that made most of them):
    `positions[i]` is the index position of `matrix` row i."""

    positions: np.ndarray  # int64; -1: a track the index no longer holds (moved onto a new index)
    matrix: np.ndarray  # float32 (n, dimension), unit rows
    audio_model: str | None
    other_models: dict[str, int]  # embeddings left out: made by another model (a re-analysis is due)
    gone: int = 0  # rows at position -1

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def nbytes(self) -> int:
        return int(self.positions.nbytes + self.matrix.nbytes)


def clap_library_builder(dimension: int) -> Callable[[Database, LoadedIndex | None], ClapLibrary]:
    """The IndexHolder cache builder of the CLAP embeddings."""
    def build(db: Database, loaded: LoadedIndex | None) -> ClapLibrary:
        counts = clap_store.counts_by_model(db)
        if loaded is None or len(loaded) == 0 or not counts:
            return ClapLibrary(np.zeros(0, dtype=np.int64), np.zeros((0, dimension), dtype=np.float32), None, counts)
        model = next(iter(counts))
        item_ids, matrix = clap_store.load(db, model, dimension)
        catalog = loaded.catalog
        found = (catalog.position(i) for i in item_ids)
        positions = np.asarray([-1 if p is None else p for p in found], dtype=np.int64)
        keep = positions >= 0  # embedded tracks the index does not hold (no musicnn analysis) are left out
        others = {m: n for m, n in counts.items() if m != model}
        return ClapLibrary(positions[keep], np.ascontiguousarray(matrix[keep]), model, others)

    return build


def move_clap_library(library: ClapLibrary, loaded: LoadedIndex, moved: np.ndarray) -> ClapLibrary:
    """The CLAP embeddings moved onto a new index (an IndexHolder cache mover), as `move_searchable_library`: the
    matrix shared, not copied."""
    positions = moved_positions(library.positions, moved)
    return replace(library, positions=positions, gone=int(np.count_nonzero(positions < 0)))


def search_clap(model: TextModel, library: ClapLibrary, query: str, *, limit: int) -> list[tuple[int, float]]:
    """[(index position, cosine similarity)] of the `limit` tracks whose CLAP embedding is closest to the query's."""
    _, vector = model.embed(query)
    if len(library) == 0 or not np.any(vector):  # words the text encoder has no meaning for: no match
        return []
    best, similarities = top_cosine(library.matrix, vector, k=limit + library.gone, tie_key=library.positions)
    found = [(int(library.positions[i]), round(float(similarities[i]), 4)) for i in best.tolist()]
    return [hit for hit in found if hit[0] >= 0][:limit]


def query_concepts(model: TextModel, query: str) -> list[tuple[Concept, float]]:
    """The concepts the default engine reads in `query`, with their weights, heaviest first (the chat's fallback
    uses them when a request names no tag or mood it knows)."""
    engine, vector = model.embed(query)
    return [(CONCEPTS[i], w) for i, w in sorted(engine.weights(vector).items(), key=lambda kv: -kv[1])]


def search(model: TextModel, library: SearchableLibrary, query: str, *,
           limit: int) -> tuple[list[tuple[int, float, list[tuple[str, float]]]], dict[str, float]]:
    """[(index position, similarity, because)] of the best `limit` tracks for `query`, and the concept weights."""
    engine, vector = model.embed(query)
    hits, weights = engine.search(vector, library.scores, limit=limit + library.gone)
    found = [(int(library.positions[h.position]), h.similarity, h.because) for h in hits]
    return [hit for hit in found if hit[0] >= 0][:limit], weights


@dataclass(frozen=True)
class SemanticAnswer:
    """Which engine answered a query and its hits: (index position, similarity 0..1 or cosine, because)."""

    engine: str
    model: str
    hits: list[tuple[int, float, list[tuple[str, float]]]]
    concepts: dict[str, float] | None = None  # the default engine's concept weights
    audio_model: str | None = None  # CLAP's audio model
    understood: bool = True  # False: the query means nothing the engine knows (no concept near it)
    query: str = ""

    @property
    def message(self) -> str | None:
        """What to tell the user when the query was not understood."""
        return None if self.understood else not_understood(self.query)


def not_understood(query: str) -> str:
    """The answer to a query the concept engine does not understand, in a listener's words."""
    return (f"No song matches “{query}”: it names nothing the analysis knows (a genre, mood, instrument, tempo or "
            "energy), so no song sounds like it. Try words like “calm piano” or “upbeat electronic”.")


def active_clap_library(clap_model: TextModel | None, caches: Mapping[str, Any]) -> ClapLibrary | None:
    """The CLAP embeddings when CLAP answers: enabled, and some of the index's tracks embedded."""
    if clap_model is None:
        return None
    library: ClapLibrary | None = caches.get(CLAP_CACHE_NAME)
    return library if library is not None and len(library) > 0 else None


@dataclass(frozen=True)
class Engine:
    """The engine that answers text queries now: CLAP (its text model and the CLAP embeddings) when it is active,
    else the default engine (the concept model)."""

    name: str
    model: TextModel
    clap: ClapLibrary | None = None


def active_engine(text_model: TextModel, clap_model: TextModel | None, caches: Mapping[str, Any]) -> Engine:
    """The one choice of engine (`caches`: the index's caches, read together with the index)."""
    clap = active_clap_library(clap_model, caches)
    if clap is not None and clap_model is not None:
        return Engine(CLAP_ENGINE_NAME, clap_model, clap)
    return Engine(ENGINE_NAME, text_model)


def hit_positions(engine: Engine, library: SearchableLibrary, query: str, *, top: int) -> set[int]:
    """The positions among the engine's `top` for `query` that score above 0 (what the suggestions test)."""
    if engine.clap is not None:
        return {p for p, s in search_clap(engine.model, engine.clap, query, limit=top) if s > 0}
    return {p for p, s, _ in search(engine.model, library, query, limit=top)[0] if s > 0}


def semantic_search(text_model: TextModel, clap_model: TextModel | None, caches: Mapping[str, Any], query: str, *,
                    limit: int, allowed: np.ndarray | None = None, catalog: Catalog | None = None) -> SemanticAnswer:
    """The query answered by the active engine (see active_engine). With `allowed` (bool per index position: what
    the blocklists and scope allow) only allowed tracks; with the index's `catalog`, one hit per song (its best
    copy, `Catalog.one_per_song`); either way still `limit` hits when the library has them (the engine is asked
    for more, doubling). Raises DiscoveryError or ClapModelError when the model cannot answer, LookupError while
    the text-search cache is not built yet."""
    engine = active_engine(text_model, clap_model, caches)
    library: SearchableLibrary | None = caches.get(CACHE_NAME)
    if engine.clap is None and library is None:
        raise LookupError("text search is being prepared")
    size = len(engine.clap) if engine.clap is not None else len(library) if library is not None else 0
    ask = limit if catalog is None else limit + limit // 2 + 10  # copies and versions take a few places
    while True:
        if engine.clap is not None:
            clap_hits = search_clap(engine.model, engine.clap, query, limit=ask)
            hits: list[tuple[int, float, list[tuple[str, float]]]] = [(p, s, []) for p, s in clap_hits]
            weights: dict[str, float] | None = None
        else:
            assert library is not None
            hits, weights = search(text_model, library, query, limit=ask)
        found = len(hits)
        if allowed is not None:
            hits = [hit for hit in hits if 0 <= hit[0] < len(allowed) and allowed[hit[0]]]
        if catalog is not None:
            hits = [(shown, *hits[i][1:]) for i, shown in catalog.one_per_song(p for p, _, _ in hits)]
        if (allowed is None and catalog is None) or len(hits) >= limit or found < ask or ask >= size:
            hits = hits[:limit]
            break
        ask = min(size, ask * 2)
    if engine.clap is not None:
        return SemanticAnswer(CLAP_ENGINE_NAME, engine.model.name, hits, audio_model=engine.clap.audio_model)
    return SemanticAnswer(ENGINE_NAME, text_model.name, hits, concepts=weights, understood=bool(weights),
                          query=query)
