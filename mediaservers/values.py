"""Reading loosely typed values from media servers: dates, integers, numbers at the start of tags and file names."""

from __future__ import annotations

import re
from datetime import UTC, datetime


def epoch_seconds(text: object) -> float | None:
    """Seconds since the epoch for an ISO 8601 date such as '2024-03-01T10:00:00.1234567Z' (None if absent or
    bad). Naive dates are taken as UTC, as Subsonic servers send them."""
    if not isinstance(text, str) or not text.strip():
        return None
    # .NET writes seven fractional digits; Python 3.11 reads at most six, which is plenty for ordering.
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", text.strip())
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def int_or_none(value: object) -> int | None:
    """An int, or a string of digits, as int; anything else (booleans included) as None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def genre_names(*values: object) -> tuple[str, ...]:
    """Distinct genre names, in order, from tag values that may be lists or "Rock; Pop" / "Rock, Pop" strings."""
    names: dict[str, str] = {}
    for value in values:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, dict):
                item = item.get("name") or item.get("Name")  # OpenSubsonic's [{name}], Jellyfin's GenreItems
            if not isinstance(item, str):
                continue
            for name in re.split(r"\s*[;,/]\s*|\x00", item):
                if name.strip() and name.strip().casefold() not in names:
                    names[name.strip().casefold()] = name.strip()
    return tuple(names.values())


_NUMBERED_STEM = re.compile(r"\s*(\d{1,3})[\s._-]+(.+)")


def leading_int(text: str) -> int | None:
    """The number a tag starts with: '2024-05-01' → 2024, '3/12' → 3, 'Live' → None."""
    match = re.match(r"\s*(\d+)", text)
    return int(match.group(1)) if match else None


def numbered_stem(stem: str) -> tuple[int | None, str]:
    """(track number, title) of an untagged file name such as '03 - Title': (3, 'Title'); (None, stem) otherwise."""
    match = _NUMBERED_STEM.match(stem)
    return (int(match.group(1)), match.group(2)) if match else (None, stem)
