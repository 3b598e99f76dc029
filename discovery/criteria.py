"""The one vocabulary of track criteria, shared by smart playlists, the library table's plot filters and the
search filters: a criterion is (field, operator, values), possibly negated, and a list of them is AND-ed. The SQL of
criteria is db/criteria_sql.py; `facet_mask` evaluates them in memory on the search's facet table.

Fields and what they compare:

- numbers: `bpm`, `year`, `duration` (seconds), `loudness` (LUFS), `energy_value` (the measured energy, 0-1), with
  `=`, `<`, `<=`, `>`, `>=` or `range` (low and high, both inclusive);
- `energy`: `=` an energy level, high, medium or low (`ENERGY_RULE`);
- `key`: `=` any of one or more Camelot keys;
- `tag` (among a track's three strongest), `mood` (its strongest), `genre` (any of the media server's), `artist`,
  `album`: `=` a name, case ignored;
- `text`: `contains`, in the title, the artist or the album, case ignored.

A value that is unknown never satisfies a criterion, and so always satisfies its negation.

Energy level is what a DJ means by it, from loudness and tempo together: `level = energy + (bpm − 120) / 500`
(energy alone when the tempo is unknown); **high** ≥ 0.80, **low** < 0.66, **medium** between. Mastered pop and rock
at 120 BPM (energy 0.67–0.87) thus spans medium to high; quiet or slow music is low; a loud track at 140 BPM is high.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

__all__ = ["CAMELOT_CODES", "ENERGY_LEVELS", "ENERGY_RULE", "FIELDS", "NAMED", "NUMERIC", "OPERATORS", "Criterion",
           "EnergyRule", "FacetColumns", "bounds", "facet_mask", "parse_camelot"]

NUMERIC = ("bpm", "year", "duration", "loudness", "energy_value")
NAMED = ("tag", "mood", "genre", "artist", "album")
FIELDS = (*NUMERIC, "energy", "key", *NAMED, "text")
OPERATORS = ("=", "<", "<=", ">", ">=", "range", "contains")
ENERGY_LEVELS = ("high", "medium", "low")
CAMELOT_CODES = tuple(f"{n}{letter}" for letter in "AB" for n in range(1, 13))


@dataclass(frozen=True)
class EnergyRule:
    """The energy level of a track: its energy, moved by 1 per `bpm_per_unit` BPM away from `pivot_bpm` (not moved
    when the tempo is unknown), is high from `high`, low below `low`, medium between."""

    high: float = 0.80
    low: float = 0.66
    pivot_bpm: float = 120.0
    bpm_per_unit: float = 500.0

    def levels(self, energy: np.ndarray, bpm: np.ndarray) -> np.ndarray:
        """Per track (float arrays of the same shape, NaN unknown): 0 high, 1 medium, 2 low, -1 energy unknown."""
        value = energy + np.where(np.isnan(bpm), 0.0, (bpm - self.pivot_bpm) / self.bpm_per_unit)
        out = np.where(value >= self.high, 0, np.where(value < self.low, 2, 1)).astype(np.int8)
        return np.where(np.isnan(energy), -1, out).astype(np.int8)


ENERGY_RULE = EnergyRule()


def parse_camelot(code: str) -> int | None:
    """0..23 for "1A".."12A", "1B".."12B" (any case); None otherwise."""
    text = code.strip().upper()
    if len(text) < 2 or text[-1] not in "AB" or not text[:-1].isdigit():
        return None
    number = int(text[:-1])
    if not 1 <= number <= 12:
        return None
    return (number - 1) + (12 if text[-1] == "B" else 0)


@dataclass(frozen=True)
class Criterion:
    """One condition on a track: `field` `op` `values` (range: (low, high); key: Camelot codes; otherwise one
    value), negated when `negated`."""

    field: str
    op: str
    values: tuple[Any, ...]
    negated: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op, "values": list(self.values), "negated": self.negated}


def bounds(field: str, low: Any, high: Any, *, high_inclusive: bool = True) -> list[Criterion]:
    """`low` ≤ field and field ≤ `high` (< `high` unless `high_inclusive`: a plot's bin), leaving out a None bound."""
    return [Criterion(field, op, (value,)) for op, value in ((">=", low), ("<=" if high_inclusive else "<", high))
            if value is not None]


class FacetColumns(Protocol):
    """What `facet_mask` reads: per-track columns by index position (NaN / -1 / 0 where unknown)."""

    @property
    def bpm(self) -> np.ndarray: ...  # float32

    @property
    def energy(self) -> np.ndarray: ...  # float32

    @property
    def camelot(self) -> np.ndarray: ...  # int8 0..23, -1 unknown

    @property
    def year(self) -> np.ndarray: ...  # int16, 0 unknown

    @property
    def duration(self) -> np.ndarray: ...  # float32 seconds

    @property
    def top_tags(self) -> np.ndarray: ...  # int16 (n, 3) codes into the table's tag names, -1 none

    def tag_code(self, name: str) -> int | None:
        """The code of a tag name (case ignored), None when no track has it among its top tags."""


def _compare(values: np.ndarray, op: str, operands: tuple[Any, ...]) -> np.ndarray:
    if op == "range":
        return (values >= operands[0]) & (values <= operands[1])
    operand = operands[0]
    comparisons = {"=": np.equal, "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
    if op not in comparisons:
        raise ValueError(f"the operator {op!r} does not compare numbers")
    return np.asarray(comparisons[op](values, operand), dtype=bool)


def _facet_criterion(table: FacetColumns, c: Criterion, levels: np.ndarray | None) -> np.ndarray:
    if c.field == "bpm":
        return _compare(table.bpm, c.op, c.values)
    if c.field == "duration":
        return _compare(table.duration, c.op, c.values)
    if c.field == "year":
        return _compare(np.where(table.year > 0, table.year.astype(np.float32), np.nan), c.op, c.values)
    if c.field == "energy":
        level = levels if levels is not None else ENERGY_RULE.levels(table.energy, table.bpm)
        return np.asarray(level == ENERGY_LEVELS.index(c.values[0]), dtype=bool)
    if c.field == "key":
        codes = [code for code in (parse_camelot(str(v)) for v in c.values) if code is not None]
        return np.isin(table.camelot, np.asarray(codes, dtype=np.int8))
    if c.field == "tag":
        code = table.tag_code(str(c.values[0]))
        if code is None:
            return np.zeros(len(table.bpm), dtype=bool)
        return np.asarray((table.top_tags == code).any(axis=1), dtype=bool)
    raise ValueError(f"the facet table has no {c.field!r} to filter by")


def facet_mask(table: FacetColumns, criteria: tuple[Criterion, ...] | list[Criterion], *,
               levels: np.ndarray | None = None) -> np.ndarray:
    """The rows (bool mask) of the facet table that meet every criterion (bpm, year, duration, energy, key and tag
    only); `levels` is `ENERGY_RULE.levels` of the table when the caller has it already."""
    mask = np.ones(len(table.bpm), dtype=bool)
    for c in criteria:
        met = _facet_criterion(table, c, levels)
        mask &= ~met if c.negated else met
    return mask
