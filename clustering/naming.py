"""Deterministic feature-based playlist names ("Rock_Fast_Happy"), used without an AI provider or as its fallback."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from clustering.errors import ClusteringError

__all__ = ["distinct_names", "feature_name", "names_clear_of", "profile_words", "unique_names"]

SLOW_BELOW_BPM = 90.0
FAST_FROM_BPM = 125.0
MOOD_WORDS = {"danceable": "Danceable", "aggressive": "Aggressive", "happy": "Happy", "party": "Party",
              "relaxed": "Relaxed", "sad": "Sad"}
FALLBACK_NAME = "Mixed"

_WORD_SPLIT = re.compile(r"[^0-9A-Za-z]+")


def _camel(tag: str) -> str:
    """"classic rock" → "ClassicRock", "Hip-Hop" → "HipHop": words capitalised, separators dropped."""
    return "".join(word.capitalize() for word in _WORD_SPLIT.split(tag))


def _top(profile: np.ndarray, allowed: np.ndarray) -> int | None:
    """Column of the highest positive value among the allowed ones (ties: lower column), or None."""
    scores = np.where(allowed, np.nan_to_num(profile, nan=0.0), 0.0)
    best = int(np.argmax(scores)) if scores.size else 0
    return best if scores.size and scores[best] > 0 else None


def feature_name(
    *,
    tag_profile: np.ndarray,
    tag_names: Sequence[str],
    tempo_bpm: float,
    mood_profile: np.ndarray,
    mood_names: Sequence[str],
    genre_tags: set[str],
) -> str:
    """Name from a playlist's features: top genre tag, tempo word, top mood word, joined by "_".

    tag_profile: (T,) mean tag probabilities, in `tag_names` order; genre_tags: which tag names are genres (case
    ignored); tempo_bpm: the playlist's median bpm (Slow < 90 ≤ Medium < 125 ≤ Fast; NaN leaves it out);
    mood_profile: (M,) mean mood scores in `mood_names` order. A part without a positive score is left out;
    with no part at all the name is "Mixed".
    """
    tag_profile = np.asarray(tag_profile, dtype=np.float64)
    mood_profile = np.asarray(mood_profile, dtype=np.float64)
    if tag_profile.shape != (len(tag_names),) or mood_profile.shape != (len(mood_names),):
        raise ClusteringError(f"profiles {tag_profile.shape}, {mood_profile.shape} do not match "
                              f"{len(tag_names)} tag names and {len(mood_names)} mood names")
    parts = []
    genres = {g.casefold() for g in genre_tags}
    genre = _top(tag_profile, np.array([name.casefold() in genres for name in tag_names], dtype=bool))
    if genre is not None:
        parts.append(_camel(tag_names[genre]))
    if math.isfinite(tempo_bpm):
        parts.append("Slow" if tempo_bpm < SLOW_BELOW_BPM else "Medium" if tempo_bpm < FAST_FROM_BPM else "Fast")
    mood = _top(mood_profile, np.ones(len(mood_names), dtype=bool))
    if mood is not None:
        parts.append(MOOD_WORDS.get(mood_names[mood].casefold(), _camel(mood_names[mood])))
    return "_".join(parts) or FALLBACK_NAME


def unique_names(names: Sequence[str]) -> list[str]:
    """Names made unique ignoring case: the second "X" becomes "X_2", the third "X_3" (skipping taken names)."""
    seen: dict[str, int] = {}
    used: set[str] = set()
    out = []
    for name in names:
        key = name.casefold()
        seen[key] = seen.get(key, 0) + 1
        unique = name
        if seen[key] > 1 or key in used:
            number = max(seen[key], 2)
            while f"{name}_{number}".casefold() in used:
                number += 1
            unique = f"{name}_{number}"
        used.add(unique.casefold())
        out.append(unique)
    return out


def profile_words(*, tag_profile: np.ndarray, tag_names: Sequence[str], mood_profile: np.ndarray,
                  mood_names: Sequence[str], limit: int = 12) -> list[str]:
    """Name words for a playlist's profile, strongest first: its tags, then its moods (positive scores only)."""
    words: list[str] = []
    for profile, names, is_mood in ((tag_profile, tag_names, False), (mood_profile, mood_names, True)):
        values = np.nan_to_num(np.asarray(profile, dtype=np.float64), nan=0.0)
        for i in np.argsort(-values, kind="stable"):
            if values[i] <= 0:
                break
            word = MOOD_WORDS.get(names[i].casefold(), _camel(names[i])) if is_mood else _camel(names[i])
            if word and word not in words:
                words.append(word)
    return words[:limit]


def distinct_names(names: Sequence[str], words: Sequence[Sequence[str]]) -> list[str]:
    """Names that tell playlists apart by what differs between them: playlists that share a name each get one more
    word from their own `words` (profile words, strongest first), preferring a word none of the others in the group
    has, then any word not yet in a name; numbers ("_2") only when nothing else separates them."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(name.casefold(), []).append(i)
    out = list(names)
    for members in groups.values():
        if len(members) < 2:
            continue
        for i in members:
            own = [w for w in words[i] if w.casefold() not in names[i].casefold().split("_")]
            others = {w.casefold() for j in members if j != i for w in words[j]}
            taken = {out[j].casefold() for j in members if j != i}
            pick = next((w for w in own if w.casefold() not in others), None)
            if pick is None or f"{names[i]}_{pick}".casefold() in taken:
                pick = next((w for w in own if f"{names[i]}_{w}".casefold() not in taken), None)
            if pick is not None:
                out[i] = f"{names[i]}_{pick}"
    return unique_names(out)


def names_clear_of(names: Sequence[str], taken: Sequence[str], *, suffix: str = "") -> list[str]:
    """`names` (distinct, without `suffix`) with `suffix` added, none equal to a `taken` name ignoring case: a name
    whose full form is taken (a pinned playlist) becomes "X_2", "X_3"… (the first free one, also clear of the other
    names), the others stay as they are."""
    used = {name.casefold() for name in taken}
    clear = [(name + suffix).casefold() not in used for name in names]
    used |= {(name + suffix).casefold() for name, ok in zip(names, clear, strict=True) if ok}
    out = []
    for name, ok in zip(names, clear, strict=True):
        number = 2
        full = name + suffix
        while not ok and full.casefold() in used:
            full = f"{name}_{number}{suffix}"
            number += 1
        used.add(full.casefold())
        out.append(full)
    return out
