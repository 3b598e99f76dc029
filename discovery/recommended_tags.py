"""Tags to suggest for a track: the analysis's strongest predictions that its media-server genres do not already
say ("jazz" for a track tagged only "Easy Listening"; not "rock" for one already in "Alternative Rock")."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["MIN_SCORE", "recommended_tags"]

MIN_SCORE = 0.1  # musicnn's probabilities are small on real music; below this a tag is noise, not a prediction


def _words(name: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9]+", name.casefold().replace("&", " and ")))


def _said_by(tag: str, genres: Sequence[tuple[str, ...]]) -> bool:
    words = _words(tag)
    joined = "".join(words)
    return any(joined == "".join(g) or (words and set(words) <= set(g)) for g in genres)


def recommended_tags(tags: Mapping[str, float], genres: Sequence[str], *, limit: int,
                     min_score: float = MIN_SCORE) -> list[tuple[str, float]]:
    """(tag, score) of up to `limit` tags scoring at least `min_score`, highest first (ties by name), leaving out
    the ones a genre already names: same words ignoring case and punctuation ("Hip-Hop" = "hip hop"), or all of
    the tag's words inside one genre ("rock" in "Alternative Rock")."""
    genre_words = [w for w in (_words(g) for g in genres) if w]
    ranked = sorted(((name, float(score)) for name, score in tags.items() if float(score) >= min_score),
                    key=lambda kv: (-kv[1], kv[0]))
    return [(name, round(score, 4)) for name, score in ranked if not _said_by(name, genre_words)][:limit]
