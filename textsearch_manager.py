"""Text search in the web process: the per-library concept scores (a cache on the IndexHolder, rebuilt with the
index) and the text model, loaded on first use and unloaded CLAP_TEXT_SEARCH_WARMUP_DURATION seconds after its
last use, with the embeddings of recent queries kept so a repeated query costs no inference."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio.moods import MOODS
from audio.musicnn import MSD_TAGS
from config import Config
from db.pool import Database
from db.tracks import text_search_rows
from discovery.sentence_encoder import SentenceEncoder
from discovery.textsearch import Concept, ConceptScores, TextSearchEngine, build_concepts, concept_scores
from voyager_manager import LoadedIndex

log = logging.getLogger(__name__)

CACHE_NAME = "text_search"
CONCEPTS: tuple[Concept, ...] = build_concepts(MSD_TAGS, MOODS)
ENGINE_NAME = "concepts"
MODEL_NAME = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class SearchableLibrary:
    """The concept scores of the index's tracks that have analysis values; `positions[i]` is row i's index
    position."""

    positions: np.ndarray  # int64
    scores: ConceptScores

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def nbytes(self) -> int:
        return int(self.positions.nbytes) + self.scores.nbytes


def build_searchable_library(db: Database, loaded: LoadedIndex | None) -> SearchableLibrary:
    """The text-search cache for the tracks `loaded` holds (an IndexHolder cache builder)."""
    if loaded is None or len(loaded) == 0:
        return SearchableLibrary(np.zeros(0, dtype=np.int64), concept_scores(
            CONCEPTS, tags=[], moods=[], tempo=[], energy=[], scale=[]))
    catalog = loaded.catalog
    item_ids = [catalog.item_id(p) for p in range(len(loaded))]
    positions, tags, moods, tempo, energy, scale = [], [], [], [], [], []
    for position, (row_tags, row_moods, row_tempo, row_energy, row_scale) in enumerate(
            text_search_rows(db, item_ids)):
        if row_tags is None:
            continue  # not analyzed (or gone from the tracks table since the index was built)
        positions.append(position)
        tags.append(row_tags)
        moods.append(row_moods)
        tempo.append(row_tempo)
        energy.append(row_energy)
        scale.append(row_scale)
    return SearchableLibrary(np.asarray(positions, dtype=np.int64),
                             concept_scores(CONCEPTS, tags=tags, moods=moods, tempo=tempo, energy=energy,
                                            scale=scale))


class TextModel:
    """The sentence encoder and the engine on it, loaded lazily and unloaded after `idle_seconds` without use."""

    def __init__(self, model_dir: Path, *, idle_seconds: float, query_cache: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.model_dir = model_dir
        self.idle_seconds = idle_seconds
        self.query_cache = query_cache
        self._clock = clock
        self._lock = threading.Lock()
        self._engine: TextSearchEngine | None = None
        self._last_use = 0.0
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self.load_error: str | None = None

    def _touch(self) -> TextSearchEngine:
        """The engine (loading it if needed) with the idle timer reset. Raises DiscoveryError when the model
        cannot be loaded."""
        if self._engine is None:
            started = self._clock()
            try:
                encoder = SentenceEncoder(self.model_dir)
                self._engine = TextSearchEngine(encoder.encode, CONCEPTS)
            except Exception as exc:
                self.load_error = f"{type(exc).__name__}: {exc}"
                raise
            self.load_error = None
            log.info("text model %s loaded in %.2f s", MODEL_NAME, self._clock() - started)
        self._last_use = self._clock()
        return self._engine

    def warm_up(self) -> None:
        with self._lock:
            self._touch()

    def embed(self, query: str) -> tuple[TextSearchEngine, np.ndarray]:
        """The engine and the query's embedding (from the cache when it was asked recently)."""
        key = " ".join(query.lower().split())
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
                log.info("text model %s unloaded after %g s without use", MODEL_NAME, self.idle_seconds)
                return True
            return False

    def unload_when_idle(self, stop: threading.Event, *, every: float = 5.0) -> threading.Thread:
        def run() -> None:
            while not stop.wait(every):
                self.unload_if_idle()

        thread = threading.Thread(target=run, name="text-model-idle", daemon=True)
        thread.start()
        return thread


def text_model_for(config: Config) -> TextModel:
    return TextModel(Path(config.TEXT_MODEL_DIR), idle_seconds=config.CLAP_TEXT_SEARCH_WARMUP_DURATION,
                     query_cache=config.TEXT_SEARCH_QUERY_CACHE)


def search(model: TextModel, library: SearchableLibrary, query: str, *,
           limit: int) -> tuple[list[tuple[int, float, list[tuple[str, float]]]], dict[str, float]]:
    """[(index position, similarity, because)] of the best `limit` tracks for `query`, and the concept weights."""
    engine, vector = model.embed(query)
    hits, weights = engine.search(vector, library.scores, limit=limit)
    return [(int(library.positions[h.position]), h.similarity, h.because) for h in hits], weights
