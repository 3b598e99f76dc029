"""Criteria of the library's one vocabulary (discovery.criteria) as SQL over `tracks t`: a WHERE clause of bound
parameters only (no value of a criterion is ever part of the statement's text), in Navidrome's manner of
model/criteria → persistence/criteria_sql. Used by smart playlists and the library table; the chat keeps its own
compiler (its SQL must pass the chat validator) but takes the energy level's expression from here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from discovery.criteria import ENERGY_RULE, Criterion, EnergyRule

__all__ = ["criteria_sql", "energy_value_sql", "escape_like"]

_COLUMN = {"bpm": "t.tempo_bpm", "year": "t.year", "duration": "t.duration_seconds", "loudness": "t.loudness_lufs",
           "energy_value": "t.energy"}
_COMPARE = {"=": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}  # the only operators that reach SQL


def escape_like(text: str) -> str:
    """`text` with LIKE's wildcards and escape character escaped, to be matched literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def energy_value_sql(*, energy: str, bpm: str, pivot: str, scale: str) -> str:
    """The value an energy level is read from (EnergyRule), over the columns `energy` and `bpm`, with `pivot` and
    `scale` the caller's placeholders for the rule's pivot tempo and BPM per unit."""
    return f"{energy} + (coalesce({bpm}, {pivot}) - {pivot}) / {scale}"


def _energy_level(rule: EnergyRule, params: dict[str, Any]) -> str:
    params.update({"energy_pivot": rule.pivot_bpm, "energy_scale": rule.bpm_per_unit, "energy_high": rule.high,
                   "energy_low": rule.low})
    value = energy_value_sql(energy="t.energy", bpm="t.tempo_bpm", pivot="%(energy_pivot)s",
                             scale="%(energy_scale)s")
    return (f"CASE WHEN t.energy IS NULL THEN NULL WHEN {value} >= %(energy_high)s THEN 'high' "
            f"WHEN {value} < %(energy_low)s THEN 'low' ELSE 'medium' END")


def _one(c: Criterion, name: str, params: dict[str, Any], rule: EnergyRule) -> str:
    if c.field in _COLUMN:
        column = _COLUMN[c.field]
        if c.op == "range":
            params[f"{name}_low"], params[f"{name}_high"] = c.values
            return f"{column} BETWEEN %({name}_low)s AND %({name}_high)s"
        params[name] = c.values[0]
        return f"{column} {_COMPARE[c.op]} %({name})s"
    if c.field == "text" and c.op == "contains":
        params[name] = "%" + escape_like(str(c.values[0])) + "%"
        return f"t.title ILIKE %({name})s OR t.artist ILIKE %({name})s OR t.album ILIKE %({name})s"
    if c.field == "energy":
        params[name] = c.values[0]
        return f"({_energy_level(rule, params)}) = %({name})s"
    if c.field == "key":
        params[name] = list(c.values)
        return f"t.camelot = ANY(%({name})s)"
    if c.field in ("tag", "mood", "genre", "artist", "album"):
        params[name] = c.values[0]
    if c.field == "tag":  # top_tags: the three strongest, lower-case (migration 0015)
        return f"t.top_tags @> ARRAY[lower(%({name})s)]"
    if c.field == "mood":
        return f"t.top_mood = lower(%({name})s)"
    if c.field == "genre":
        return f"EXISTS (SELECT 1 FROM unnest(t.genres) AS g WHERE lower(g) = lower(%({name})s))"
    if c.field in ("artist", "album"):
        return f"lower(t.{c.field}) = lower(%({name})s)"
    raise ValueError(f"no SQL for the field {c.field!r} with {c.op!r}")


def criteria_sql(criteria: Sequence[Criterion], *, rule: EnergyRule = ENERGY_RULE) -> tuple[list[str], dict[str, Any]]:
    """One parenthesised clause per criterion, to be AND-ed (NOT keeps tracks whose value is unknown), and their
    parameters: criterion i's are `p<i>` (`p<i>_low`/`p<i>_high` for a range), the energy rule's `energy_*`."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for number, c in enumerate(criteria):
        sql = _one(c, f"p{number}", params, rule)
        clauses.append(f"NOT coalesce(({sql}), false)" if c.negated else f"({sql})")
    return clauses, params
