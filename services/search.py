"""Hybrid library search in the web process: the facet table cache (built beside the index like the text-search
caches), and one search = keyword hits from PostgreSQL + semantic hits from the text-search engine, fused, filtered,
counted into facets and paged by cursor."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from audio.clap import ClapModelError
from db import search as search_store
from db.pool import Database
from discovery.catalog import Catalog
from discovery.exclusions import Exclusions
from discovery.hybrid import (
    CAMELOT_CODES,
    ENERGY_LEVELS,
    FacetTable,
    Filters,
    Fused,
    Fusion,
    apply_filters,
    decode_cursor,
    encode_cursor,
    energy_levels,
    facet_counts,
    fuse,
    query_digest,
)
from discovery.types import DiscoveryError
from services.text_search import TextModel, semantic_search
from voyager_manager import LibraryState, LoadedIndex

log = logging.getLogger(__name__)

CACHE_NAME = "search_facets"
_KEYWORD_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="keyword-search")
KEYWORD_CANDIDATES = 500
SEMANTIC_CANDIDATES = 500
Mode = Literal["hybrid", "semantic", "keyword"]


@dataclass(frozen=True)
class SearchFacets:
    table: FacetTable
    levels: np.ndarray  # energy level per row (discovery.hybrid.energy_levels)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def nbytes(self) -> int:
        return self.table.nbytes + int(self.levels.nbytes)


def build_search_facets(db: Database, loaded: LoadedIndex | None) -> SearchFacets:
    """The facet table of the tracks `loaded` holds (an IndexHolder cache builder)."""
    if loaded is None or len(loaded) == 0:
        table = FacetTable.build(0, [])
        return SearchFacets(table, energy_levels(table))
    catalog = loaded.catalog
    item_ids = [catalog.item_id(p) for p in range(len(loaded))]
    rows = ((catalog.position(r[0]), *r[1:]) for r in search_store.facet_rows(db, item_ids))
    table = FacetTable.build(len(loaded), ((p, *rest) for p, *rest in rows if p is not None))
    return SearchFacets(table, energy_levels(table))


def carry_search_facets(facets: SearchFacets, loaded: LoadedIndex) -> SearchFacets:
    """The facet table fitted to an index updated in place (an IndexHolder cache carrier): new tracks unknown, deleted
    ones left out, until it is built again."""
    if len(facets) == len(loaded) and len(loaded) == loaded.live:
        return facets
    table = facets.table.fitted(len(loaded), np.setdiff1d(np.arange(len(loaded)), loaded.catalog.live_positions()))
    return SearchFacets(table, energy_levels(table))


def move_search_facets(facets: SearchFacets, loaded: LoadedIndex, moved: np.ndarray) -> SearchFacets:
    """The facet table moved onto a new index (an IndexHolder cache mover): each track's row at its new position,
    new tracks unknown, until it is built again."""
    table = facets.table.moved(moved, len(loaded))
    return SearchFacets(table, energy_levels(table))


@dataclass(frozen=True)
class SearchRequest:
    query: str
    mode: Mode = "hybrid"
    semantic_weight: float = 0.3
    fusion: Fusion = "weighted"
    filters: Filters = Filters()
    limit: int = 25
    cursor: str | None = None

    def digest(self) -> str:
        return query_digest({"q": self.query, "m": self.mode, "w": self.semantic_weight, "f": self.fusion,
                             "filters": self.filters.as_query()})


@dataclass
class SearchAnswer:
    results: list[dict[str, Any]]
    total: int
    facets: dict[str, Any]
    next_cursor: str | None
    semantic_available: bool
    semantic_engine: str | None
    semantic_reason: str | None
    trigram: bool
    understood: bool | None = None  # the semantic side's reading of the words; None when it was not asked
    message: str | None = None  # why the words found no song that sounds like them


def run_search(db: Database, state: LibraryState, text_model: TextModel, clap_model: TextModel | None,
               request: SearchRequest, *, trigram: bool, exclusions: Exclusions | None = None) -> SearchAnswer:
    """One page of results for `request` against the index `state` holds; tracks `exclusions` (blocklists, scope)
    leave out are neither results nor counted in the facets. LookupError while the facet cache is not built yet;
    DiscoveryError for a bad cursor or filter."""
    facets: SearchFacets | None = state.caches.get(CACHE_NAME)
    if facets is None or state.index is None:
        raise LookupError("search is being prepared")
    table, catalog = facets.table, state.index.catalog
    allowed = apply_filters(table, request.filters, levels=facets.levels)
    permitted = state.index.exclusion_mask(exclusions).allowed if exclusions is not None and exclusions.active \
        else None
    if permitted is not None:
        allowed = allowed & permitted
    keyword: dict[int, float] = {}
    semantic: dict[int, float] = {}
    # the hits before the filters: each facet group is counted under every filter but its own
    unfiltered_keyword: dict[int, float] = {}
    unfiltered_semantic: dict[int, float] = {}
    semantic_available, engine, reason = True, None, None
    understood: bool | None = None
    message: str | None = None
    query = request.query.strip()
    # The keyword side waits on PostgreSQL while the semantic side computes: run them side by side.
    pending = _KEYWORD_POOL.submit(search_store.keyword_hits, db, query, limit=KEYWORD_CANDIDATES, trigram=trigram) \
        if query and request.mode in ("hybrid", "keyword") else None
    if query and request.mode in ("hybrid", "semantic"):
        try:
            answer = semantic_search(text_model, clap_model, state.caches, query, limit=SEMANTIC_CANDIDATES,
                                     allowed=permitted)
            engine = answer.engine
            understood, message = answer.understood, answer.message
            unfiltered_semantic = {p: s for p, s, _ in answer.hits if 0 <= p < len(allowed) and s > 0
                                   and (permitted is None or permitted[p])}
            semantic = {p: s for p, s in unfiltered_semantic.items() if allowed[p]}
        except (DiscoveryError, ClapModelError, LookupError, OSError) as exc:
            semantic_available, reason = False, f"{type(exc).__name__}: {exc}"
            log.warning("semantic side of a search failed: %s", reason)
    if pending is not None:
        for hit in pending.result():
            position = catalog.position(hit.item_id)
            if position is not None and (permitted is None or permitted[position]):
                unfiltered_keyword[position] = hit.score
        keyword = {p: s for p, s in unfiltered_keyword.items() if allowed[p]}
    if query:
        weight = request.semantic_weight if request.mode == "hybrid" else (1.0 if request.mode == "semantic" else 0.0)
        if not semantic_available and request.mode == "hybrid":
            weight = 0.0  # keyword results, ranked as keyword results
        ranked = fuse(keyword, semantic, semantic_weight=weight, fusion=request.fusion,
                      order_key={p: catalog.item_id(p) for p in set(keyword) | set(semantic)})
        candidates = np.asarray([f.position for f in fuse(unfiltered_keyword, unfiltered_semantic,
                                                          semantic_weight=weight, fusion=request.fusion)],
                                dtype=np.int64)
    else:  # browsing by filters: every track that passes, in a stable order
        positions = np.flatnonzero(allowed)  # index order: the same for the same library
        ranked = [Fused(int(p), 0.0, 0.0, 0.0, ["filter"]) for p in positions]
        candidates = np.arange(len(table), dtype=np.int64) if permitted is None else np.flatnonzero(permitted)
    songs = _one_row_per_song(ranked, catalog, allowed)
    digest = request.digest()
    offset = decode_cursor(request.cursor, digest) if request.cursor else 0
    page = songs[offset:offset + request.limit]
    following = offset + request.limit
    return SearchAnswer(
        results=[_result(f, catalog, facets, versions) for f, versions in page
                 if catalog.names(f.position) is not None],
        total=len(songs), facets=facet_counts(table, candidates, filters=request.filters,
                                                   levels=facets.levels),
        next_cursor=encode_cursor(following, digest) if following < len(songs) else None,
        semantic_available=semantic_available if request.mode != "keyword" else False,
        semantic_engine=engine, semantic_reason=reason if not semantic_available else
        ("mode is keyword" if request.mode == "keyword" else None), trigram=trigram,
        understood=understood, message=message)


def _one_row_per_song(ranked: list[Fused], catalog: Catalog, allowed: np.ndarray) -> list[tuple[Fused, list[int]]]:
    """One row per song (discovery/versions.py) in rank order: the song's best-ranked hit shown by its recording's
    kept copy (when that copy passes the filters too), and the positions of its other versions and copies."""
    rows: list[tuple[Fused, list[int]]] = []
    row_of: dict[tuple[str, str], int] = {}
    for fused in ranked:
        p = fused.position
        if catalog.names(p) is None:
            rows.append((fused, []))
            continue
        song = catalog.song_of(p)
        known = row_of.get(song)
        if known is None:
            kept = catalog.kept_copy(p)
            shown = kept if allowed[kept] else p
            row_of[song] = len(rows)
            rows.append((replace(fused, position=shown), [q for q in catalog.copies(shown) if q != shown]))
        else:
            shown_row, versions = rows[known]
            if p != shown_row.position and p not in versions:
                versions.append(p)
    return rows


def _version_json(catalog: Catalog, facets: SearchFacets, p: int) -> dict[str, Any]:
    title, artist, album = catalog.names(p) or ("", "", "")
    duration = float(facets.table.duration[p])
    return {"item_id": catalog.item_id(p), "title": title, "artist": artist, "album": album,
            "format": catalog.file_format(p),
            "duration_seconds": round(duration, 1) if np.isfinite(duration) else None}


def _result(fused: Fused, catalog: Catalog, facets: SearchFacets, versions: list[int]) -> dict[str, Any]:
    table, p = facets.table, fused.position
    title, artist, album = catalog.names(p)  # type: ignore[misc]  # rows without names are left out
    bpm, energy = float(table.bpm[p]), float(table.energy[p])
    return {
        "track": {"item_id": catalog.item_id(p), "title": title, "artist": artist, "album": album,
                  "bpm": round(bpm, 1) if np.isfinite(bpm) else None,
                  "camelot": CAMELOT_CODES[table.camelot[p]] if table.camelot[p] >= 0 else None,
                  "energy": round(energy, 3) if np.isfinite(energy) else None,
                  "energy_level": ENERGY_LEVELS[facets.levels[p]] if facets.levels[p] >= 0 else None,
                  "year": int(table.year[p]) or None,
                  "duration_seconds": round(float(table.duration[p]), 1) if np.isfinite(table.duration[p]) else None,
                  "top_tags": [table.tag_names[c] for c in table.top_tags[p] if c >= 0],
                  **catalog.copy_fields(p)},
        "score": fused.score, "keyword_score": fused.keyword_score, "semantic_score": fused.semantic_score,
        "match_reasons": fused.match_reasons,
        # the other files of this song: copies of the recording shown and its other versions ("4 versions")
        "version_count": 1 + len(versions),
        "versions": [_version_json(catalog, facets, q) for q in versions],
    }
