"""Library search for DJs and curators: keyword and semantic rankings fused into one (weighted scores or reciprocal
rank fusion), filters on tempo, key, energy, tags, year and duration, and facet counts — over a table of per-track
values held in memory beside the index (rows are index positions).

The filters are criteria of the library's one vocabulary (discovery.criteria), energy levels included, evaluated on
the facet table.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from discovery import ranking
from discovery.criteria import (
    CAMELOT_CODES,
    ENERGY_LEVELS,
    ENERGY_RULE,
    Criterion,
    bounds,
    facet_mask,
    parse_camelot,
)
from discovery.types import DiscoveryError

__all__ = ["BPM_RANGES", "ENERGY_LEVELS", "FacetTable", "Filters", "Fused", "apply_filters", "decode_cursor",
           "encode_cursor", "energy_levels", "facet_counts", "fuse", "parse_camelot"]

BPM_RANGES = (("60-90", 60.0, 90.0), ("90-120", 90.0, 120.0), ("120-150", 120.0, 150.0), ("150+", 150.0, 1e9))


def _compatible_codes(code: int) -> list[int]:
    """Same key, one step around the wheel (same letter), and the relative key (same number, other letter)."""
    number, letter = code % 12, code // 12
    return [code, (number + 1) % 12 + 12 * letter, (number - 1) % 12 + 12 * letter, number + 12 * (1 - letter)]


@dataclass(frozen=True)
class FacetTable:
    """Per-track values by index position: NaN / -1 / 0 where unknown."""

    bpm: np.ndarray  # float32
    energy: np.ndarray  # float32
    camelot: np.ndarray  # int8, 0..23 or -1
    year: np.ndarray  # int16, 0 unknown
    duration: np.ndarray  # float32 seconds
    top_tags: np.ndarray  # int16 (n, 3) indices into `tag_names`, -1 none
    tag_names: tuple[str, ...]
    present: np.ndarray  # bool: the track has analysis values

    @classmethod
    def build(cls, n: int, rows: Iterable[tuple[int, Any, Any, Any, Any, Any, Sequence[str]]]) -> FacetTable:
        """From (position, bpm, camelot, energy, year, duration, top tags) rows; positions not given are absent."""
        bpm = np.full(n, np.nan, dtype=np.float32)
        energy = np.full(n, np.nan, dtype=np.float32)
        camelot = np.full(n, -1, dtype=np.int8)
        year = np.zeros(n, dtype=np.int16)
        duration = np.full(n, np.nan, dtype=np.float32)
        top = np.full((n, 3), -1, dtype=np.int16)
        present = np.zeros(n, dtype=bool)
        names: dict[str, int] = {}
        for position, row_bpm, row_camelot, row_energy, row_year, row_duration, row_tags in rows:
            present[position] = True
            if row_bpm is not None:
                bpm[position] = row_bpm
            if row_energy is not None:
                energy[position] = row_energy
            parsed = parse_camelot(row_camelot) if row_camelot else None
            if parsed is not None:
                camelot[position] = parsed
            if row_year and 0 < int(row_year) < 32768:
                year[position] = int(row_year)
            if row_duration is not None:
                duration[position] = row_duration
            for slot, tag in enumerate(list(row_tags)[:3]):
                top[position, slot] = names.setdefault(tag, len(names))
        return cls(bpm, energy, camelot, year, duration, top, tuple(names), present)

    def __len__(self) -> int:
        return len(self.bpm)

    def fitted(self, n: int, absent: np.ndarray) -> FacetTable:
        """This table grown to `n` rows (the new ones unknown) with the rows at `absent` (positions) left out: the
        table of an index updated in place until it is built again."""
        def grown(column: np.ndarray, fill: Any) -> np.ndarray:
            out = np.full((n, *column.shape[1:]), fill, dtype=column.dtype)
            out[:len(column)] = column
            return out

        present = grown(self.present, False)
        present[absent[absent < n]] = False
        return FacetTable(grown(self.bpm, np.nan), grown(self.energy, np.nan), grown(self.camelot, -1),
                          grown(self.year, 0), grown(self.duration, np.nan), grown(self.top_tags, -1),
                          self.tag_names, present)

    def moved(self, moved: np.ndarray, n: int) -> FacetTable:
        """This table on a new index of `n` positions: row p goes to row `moved[p]` (-1: left out); rows no track
        moved to are unknown."""
        kept = np.flatnonzero(moved[:len(self)] >= 0)
        to = moved[kept]

        def placed(column: np.ndarray, fill: Any) -> np.ndarray:
            out = np.full((n, *column.shape[1:]), fill, dtype=column.dtype)
            out[to] = column[kept]
            return out

        return FacetTable(placed(self.bpm, np.nan), placed(self.energy, np.nan), placed(self.camelot, -1),
                          placed(self.year, 0), placed(self.duration, np.nan), placed(self.top_tags, -1),
                          self.tag_names, placed(self.present, False))

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in (self.bpm, self.energy, self.camelot, self.year, self.duration,
                                          self.top_tags, self.present)))

    def tag_code(self, name: str) -> int | None:
        lowered = name.strip().lower()
        return next((i for i, t in enumerate(self.tag_names) if t.lower() == lowered), None)


def energy_levels(table: FacetTable) -> np.ndarray:
    """0 high, 1 medium, 2 low, -1 unknown, per row (discovery.criteria.ENERGY_RULE)."""
    return ENERGY_RULE.levels(table.energy, table.bpm)


@dataclass(frozen=True)
class Filters:
    """AND-combined; None / empty means no constraint."""

    bpm_min: float | None = None
    bpm_max: float | None = None
    camelot: tuple[int, ...] = ()
    mixable_with: int | None = None  # index position of the track to mix with
    energy: str | None = None
    tag: str | None = None
    year_min: int | None = None
    year_max: int | None = None
    duration_min: float | None = None
    duration_max: float | None = None
    bpm_tolerance: float = 3.0  # mixableWith: ± BPM on its scale, also at half or double time (as mixable.py)

    def as_query(self) -> dict[str, str]:
        """The filters as the query-string parameters that state them (shareable URLs, cursors)."""
        values = {"bpmMin": self.bpm_min, "bpmMax": self.bpm_max, "energy": self.energy, "tag": self.tag,
                  "yearMin": self.year_min, "yearMax": self.year_max, "durationMin": self.duration_min,
                  "durationMax": self.duration_max}
        out = {k: str(v) for k, v in values.items() if v is not None}
        if self.camelot:
            out["keyCamelot"] = ",".join(CAMELOT_CODES[c] for c in self.camelot)
        if self.mixable_with is not None:
            out["mixableWith"] = str(self.mixable_with)
        return out

    def criteria(self) -> tuple[Criterion, ...]:
        """The filters but `mixable_with` as criteria of the library's vocabulary (bounds inclusive)."""
        out = [*bounds("bpm", self.bpm_min, self.bpm_max), *bounds("year", self.year_min, self.year_max),
               *bounds("duration", self.duration_min, self.duration_max)]
        if self.camelot:
            out.append(Criterion("key", "=", tuple(CAMELOT_CODES[c] for c in self.camelot)))
        if self.energy is not None:
            out.append(Criterion("energy", "=", (self.energy,)))
        if self.tag is not None:
            out.append(Criterion("tag", "=", (self.tag,)))
        return tuple(out)


def apply_filters(table: FacetTable, filters: Filters, *, levels: np.ndarray | None = None) -> np.ndarray:
    """The rows (bool mask) that pass every filter; only rows with analysis values pass."""
    mask = table.present & facet_mask(table, filters.criteria(), levels=levels)
    if filters.mixable_with is not None:
        mask &= _mixable_mask(table, filters.mixable_with, filters.bpm_tolerance)
    return mask


def _mixable_mask(table: FacetTable, position: int, tolerance: float) -> np.ndarray:
    seed_key, seed_bpm = int(table.camelot[position]), float(table.bpm[position])
    if seed_key < 0 or not np.isfinite(seed_bpm) or seed_bpm <= 0:
        raise DiscoveryError("mixableWith", "that track has no key or tempo to mix by")
    keys = np.isin(table.camelot, np.asarray(_compatible_codes(seed_key), dtype=np.int8))
    # on the seed's scale, as discovery.mixable.tempo_match: same tempo, half time (2·bpm), double time (bpm/2)
    tempo = np.zeros(len(table), dtype=bool)
    for factor in (1.0, 2.0, 0.5):
        tempo |= np.abs(table.bpm * factor - seed_bpm) <= tolerance
    mask = keys & tempo
    mask[position] = False
    return mask


# the filters each facet group sets: its own counts leave them out
FACET_GROUPS: dict[str, dict[str, Any]] = {
    "bpm": {"bpm_min": None, "bpm_max": None},
    "camelot": {"camelot": ()},
    "energy": {"energy": None},
    "tags": {"tag": None},
}


def facet_counts(table: FacetTable, rows: np.ndarray, *, filters: Filters | None = None,
                 levels: np.ndarray | None = None, top_tags: int = 10) -> dict[str, Any]:
    """Counts over `rows` (index positions): BPM ranges, the 24 Camelot keys, energy levels, the top tags.

    With `filters`, `rows` are the candidates before filtering and each group is counted over the candidates that
    pass every filter but the group's own (disjunctive faceting): a count says how many songs choosing that option
    would give, so a picked key or tempo range leaves the group's other options counted, not zero."""
    rows = np.asarray(rows, dtype=np.int64)
    level_of = levels if levels is not None else energy_levels(table)

    def group_rows(group: str) -> np.ndarray:
        if filters is None:
            return rows
        mask = apply_filters(table, replace(filters, **FACET_GROUPS[group]), levels=level_of)
        return rows[mask[rows]]

    bpm = table.bpm[group_rows("bpm")]
    ranges = [{"range": name, "min": low, "max": None if high > 1e8 else high,
               "count": int(((bpm >= low) & (bpm < high)).sum())} for name, low, high in BPM_RANGES]
    camelot = table.camelot[group_rows("camelot")]
    keys = np.bincount(camelot[camelot >= 0].astype(np.int64), minlength=24)
    level = level_of[group_rows("energy")]
    tags = table.top_tags[group_rows("tags")].ravel()
    tag_counts = np.bincount(tags[tags >= 0].astype(np.int64), minlength=len(table.tag_names))
    order = sorted(range(len(tag_counts)), key=lambda i: (-int(tag_counts[i]), table.tag_names[i]))[:top_tags]
    return {
        "bpm": ranges,
        "camelot": [{"key": CAMELOT_CODES[i], "count": int(keys[i])} for i in range(24)],
        "energy": [{"level": name, "count": int((level == i).sum())} for i, name in enumerate(ENERGY_LEVELS)],
        "tags": [{"tag": table.tag_names[i], "count": int(tag_counts[i])} for i in order if tag_counts[i] > 0],
    }


Fusion = Literal["weighted", "rrf"]


@dataclass(frozen=True)
class Fused:
    position: int
    score: float
    keyword_score: float  # 0..1, normalised by the best keyword match; 0 when the keyword side did not find it
    semantic_score: float  # 0..1, normalised likewise
    match_reasons: list[str] = field(default_factory=list)


def fuse(keyword: Mapping[int, float], semantic: Mapping[int, float], *, semantic_weight: float,
         fusion: Fusion = "weighted", order_key: Mapping[int, str] | None = None) -> list[Fused]:
    """One ranking of the positions either side found, best first (ties by `order_key` then position, so the same
    query always gives the same order). Weighted: each side's scores divided by its best, mixed by the weights.
    RRF: Σ weight / (RRF_K + rank) over the sides that weigh anything (discovery.ranking fuses both)."""
    if not 0.0 <= semantic_weight <= 1.0:
        raise DiscoveryError("semanticWeight", "the weights must each be between 0 and 1 and sum to 1")
    keyword_weight = 1.0 - semantic_weight
    positions = sorted(set(keyword) | set(semantic))  # rows in position order: rank ties go by position
    sides = {"keyword": keyword, "semantic": semantic}
    found = {name: np.array([p in side for p in positions], dtype=bool) for name, side in sides.items()}
    values = {name: np.array([side.get(p, 0.0) for p in positions], dtype=np.float64) for name, side in sides.items()}
    normalised = {name: values[name] / (max(side.values(), default=0.0) or 1.0) for name, side in sides.items()}
    parts = normalised if fusion != "rrf" else \
        {name: ranking.reciprocal_ranks(values[name], found[name]) for name in sides}
    weights = {"keyword": keyword_weight, "semantic": semantic_weight}
    total = ranking.fuse(parts, weights, len(positions))
    scored = []
    for row, position in enumerate(positions):
        score = float(total[row])
        if score <= 0.0:
            continue
        reasons = [name for name in sides if found[name][row] and weights[name] > 0]
        scored.append(Fused(position, round(score, 9), round(float(normalised["keyword"][row]), 4),
                            round(float(normalised["semantic"][row]), 4), reasons))
    keys = order_key or {}
    scored.sort(key=lambda f: (-f.score, keys.get(f.position, ""), f.position))
    return scored


def query_digest(parts: Mapping[str, Any]) -> str:
    """A short fingerprint of a query's parameters: a cursor is only valid for the query that made it."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def encode_cursor(offset: int, digest: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset, "q": digest}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, digest: str) -> int:
    """The offset a cursor stands for; DiscoveryError naming `cursor` when it is malformed or from another query."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset, made_for = int(raw["o"]), str(raw["q"])
    except (ValueError, KeyError, TypeError):
        raise DiscoveryError("cursor", "not a cursor this search returned") from None
    if made_for != digest or offset < 0:
        raise DiscoveryError("cursor", "this cursor belongs to another query: start again without it")
    return offset
