"""Mood scores follow their documented formula."""

from __future__ import annotations

from audio.moods import MOODS, mood_scores
from audio.musicnn import MSD_TAGS


def test_every_mood_tag_is_a_real_msd_tag() -> None:
    from audio.moods import MOOD_TAGS

    assert {tag for weights in MOOD_TAGS.values() for tag in weights} <= set(MSD_TAGS)


def test_formula_and_range() -> None:
    tags = dict.fromkeys(MSD_TAGS, 0.0) | {"dance": 0.3, "House": 0.2, "metal": 0.9, "heavy metal": 0.8,
                                           "chill": 0.1, "sad": 0.05, "Mellow": 0.1}
    scores = mood_scores(tags, energy=0.8, tempo_confidence=0.5)
    assert set(scores) == set(MOODS)
    assert scores["danceable"] == round(0.5 * 0.75, 4)  # (0.3 + 0.2) × (0.5 + 0.5·0.5)
    assert scores["aggressive"] == round(1.0 * 0.9, 4)  # clipped to 1, × (0.5 + 0.5·0.8)
    assert scores["relaxed"] == round(0.2 * 0.6, 4)  # (0.1 chill + 0.1 Mellow) × (1 − 0.5·0.8)
    assert scores["sad"] == round(0.05 + 0.05, 4)
    assert all(0.0 <= v <= 1.0 for v in scores.values())
