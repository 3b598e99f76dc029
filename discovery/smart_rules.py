"""Smart playlist rules: the text form (`bpm 120-130 AND tag = electronic AND energy = high AND NOT artist = "X"`),
its parse into conditions (what the page's rule builder edits), and back to canonical text, so the two forms
round-trip.

A rule is one or more conditions joined by AND; each may be preceded by NOT. A condition is `field op value`:

- `bpm`, `year`, `duration` (seconds): a range `a-b` (inclusive), or `=`, `<`, `<=`, `>`, `>=` a number;
- `energy`: `=` high, medium or low (the energy level of discovery.criteria);
- `key`: `=` a Camelot key or a list `7A,8A,9A`;
- `tag` (among a track's three strongest), `mood` (its strongest), `genre` (the media server's), `artist`,
  `album`: `=` a name (case-insensitive); names with spaces or symbols in double quotes.

The conditions are criteria of the library's one vocabulary (discovery.criteria); db/criteria_sql.py makes them SQL.
"""

from __future__ import annotations

import re
from typing import Any

from discovery.criteria import ENERGY_LEVELS, NAMED, Criterion

__all__ = ["FIELDS", "Condition", "RuleError", "format_rule", "parse_rule", "rule_from_json"]

NUMERIC = {"bpm": (1.0, 400.0), "year": (1000.0, 3000.0), "duration": (0.0, 36000.0)}
FIELDS = (*NUMERIC, "energy", "key", *NAMED)
ENERGY = ENERGY_LEVELS
OPERATORS = ("<=", ">=", "=", "<", ">")
MAX_CONDITIONS = 20
_CAMELOT = re.compile(r"^(1[0-2]|[1-9])[AB]$")
_TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(<=|>=|=|<|>|,)|([^\s"=<>,]+))')


class RuleError(ValueError):
    """A rule that cannot be used; `position` is the character where the problem starts (for the text box)."""

    def __init__(self, message: str, position: int = 0) -> None:
        super().__init__(message)
        self.position = position


# A rule's condition is a criterion; the rule language names fields as the vocabulary does.
Condition = Criterion


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, position): kind is "string" (quoted), "op" or "word"."""
    out, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            start = at + len(text[at:]) - len(text[at:].lstrip())
            raise RuleError(f"unexpected {text[start:start + 10]!r}", start)
        start = match.start(1) - 1 if match.group(1) is not None else match.start(2) if match.group(2) else \
            match.start(3)
        if match.group(1) is not None:
            out.append(("string", match.group(1).replace('\\"', '"').replace("\\\\", "\\"), start))
        elif match.group(2):
            out.append(("op", match.group(2), start))
        else:
            out.append(("word", match.group(3), start))
        at = match.end()
    return out


def _number(text: str, field: str, position: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RuleError(f"{field} needs a number, not {text!r}", position) from None
    low, high = NUMERIC[field]
    if not low <= value <= high:
        raise RuleError(f"{field} must be from {low:g} to {high:g}, not {text}", position)
    return value


def _condition(tokens: list[tuple[str, str, int]], negated: bool) -> Condition:
    kind, field, position = tokens[0]
    field = field.lower()
    if kind != "word" or field not in FIELDS:
        raise RuleError(f"unknown field {field!r} (fields: {', '.join(FIELDS)})", position)
    rest = tokens[1:]
    if not rest:
        raise RuleError(f"{field} needs a value", position)
    if field in NUMERIC:
        if rest[0][0] == "word" and len(rest) == 1 and re.fullmatch(r"\d+(\.\d+)?-\d+(\.\d+)?", rest[0][1]):
            low_text, high_text = rest[0][1].split("-")
            low, high = _number(low_text, field, rest[0][2]), _number(high_text, field, rest[0][2])
            if low > high:
                raise RuleError(f"{field} range {rest[0][1]} goes downwards", rest[0][2])
            return Condition(field, "range", (low, high), negated)
        if len(rest) != 2 or rest[0][0] != "op" or rest[0][1] == ",":
            raise RuleError(f"{field} takes a range (120-130) or an operator and a number (>= 120)", rest[0][2])
        return Condition(field, rest[0][1], (_number(rest[1][1], field, rest[1][2]),), negated)
    if rest[0][0] != "op" or rest[0][1] != "=" or len(rest) < 2:
        raise RuleError(f"{field} takes = and a value", rest[0][2])
    values = rest[1:]
    if field == "key":
        codes: list[str] = []
        expect_value = True
        for kind, text, at in values:
            if expect_value:
                code = text.upper()
                if not _CAMELOT.match(code):
                    raise RuleError(f"{text!r} is not a Camelot key (1A-12A, 1B-12B)", at)
                codes.append(code)
            elif (kind, text) != ("op", ","):
                raise RuleError("keys are separated by commas: key = 7A,8A", at)
            expect_value = not expect_value
        if expect_value:
            raise RuleError("a key list ends with a key", values[-1][2])
        return Condition(field, "=", tuple(dict.fromkeys(codes)), negated)
    if len(values) != 1:
        raise RuleError(f"put a {field} of several words in double quotes: {field} = \"…\"", values[1][2])
    value = values[0][1].strip()
    if not value or len(value) > 200:
        raise RuleError(f"{field} needs a name of 1-200 characters", values[0][2])
    if field == "energy":
        if value.lower() not in ENERGY:
            raise RuleError("energy is high, medium or low", values[0][2])
        value = value.lower()
    return Condition(field, "=", (value,), negated)


def parse_rule(text: str) -> tuple[Condition, ...]:
    """The conditions of a rule's text form; RuleError (with the position) when it is not a rule."""
    if not text or not text.strip():
        raise RuleError("a rule needs at least one condition, e.g. bpm 120-130 AND tag = electronic")
    if len(text) > 4000:
        raise RuleError("a rule is at most 4000 characters")
    tokens = _tokens(text)
    conditions: list[Condition] = []
    current: list[tuple[str, str, int]] = []
    negated = False
    for kind, word, position in [*tokens, ("end", "", len(text))]:
        if kind == "end" or (kind == "word" and word.upper() == "AND"):
            if not current:
                raise RuleError("a condition is missing" + (" after AND" if kind == "word" else ""), position)
            conditions.append(_condition(current, negated))
            current, negated = [], False
            continue
        if kind == "word" and word.upper() == "OR":
            raise RuleError("OR is not supported: a smart playlist's conditions must all hold (AND)", position)
        if kind == "word" and word.upper() == "NOT" and not current:
            if negated:
                raise RuleError("NOT twice", position)
            negated = True
            continue
        current.append((kind, word, position))
    if len(conditions) > MAX_CONDITIONS:
        raise RuleError(f"at most {MAX_CONDITIONS} conditions")
    return tuple(conditions)


def _quoted(value: str) -> str:
    return value if re.fullmatch(r"[\w.'&+-]+", value) and value.upper() not in ("AND", "NOT", "OR") else \
        '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _num(value: float) -> str:
    return f"{value:g}"


def format_rule(conditions: tuple[Condition, ...] | list[Condition]) -> str:
    """The canonical text form (what parse_rule reads back to the same conditions)."""
    parts = []
    for c in conditions:
        if c.op == "range":
            body = f"{c.field} {_num(c.values[0])}-{_num(c.values[1])}"
        elif c.field in NUMERIC:
            body = f"{c.field} {c.op} {_num(c.values[0])}"
        elif c.field == "key":
            body = f"key = {','.join(c.values)}"
        else:
            body = f"{c.field} = {_quoted(str(c.values[0]))}"
        parts.append(("NOT " if c.negated else "") + body)
    return " AND ".join(parts)


def rule_from_json(items: Any) -> tuple[Condition, ...]:
    """Conditions from the rule builder's JSON ([{field, op, values, negated}]), checked by formatting them and
    parsing the text back (one validation for both forms)."""
    if not isinstance(items, list) or not items:
        raise RuleError("conditions must be a non-empty list")
    conditions = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            raise RuleError("each condition is {field, op, values, negated}")
        values = tuple(item["values"])
        field, op = str(item.get("field", "")), str(item.get("op", ""))
        if field in NUMERIC:
            try:
                values = tuple(float(v) for v in values)
            except (TypeError, ValueError):
                raise RuleError(f"{field} needs numbers") from None
        conditions.append(Condition(field, op, values, bool(item.get("negated", False))))
    try:
        return parse_rule(format_rule(conditions))
    except (IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, RuleError):
            raise
        raise RuleError(f"a condition is incomplete: {exc}") from None
