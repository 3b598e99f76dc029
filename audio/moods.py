"""The six mood scores the UI offers, derived from the 50 MSD tag probabilities and two signal features.

No classifier is trained or invented here: each mood is the clipped sum of the probabilities of the tags that name
it, scaled by a signal factor where one is meaningful.

    mood = clip(Σ weight·p(tag), 0, 1) · factor

| mood       | tags (weight 1 unless noted)                                     | factor                    |
|------------|------------------------------------------------------------------|---------------------------|
| danceable  | dance, House, electro, funk, Hip-Hop, rnb                        | 0.5 + 0.5·tempo confidence|
| aggressive | metal, heavy metal, hard rock, punk                              | 0.5 + 0.5·energy          |
| happy      | happy, catchy, party, pop (0.5)                                  | 1                         |
| party      | party, dance, House, electro (0.5)                               | 0.5 + 0.5·energy          |
| relaxed    | chill, chillout, Mellow, easy listening, ambient, acoustic       | 1 − 0.5·energy            |
| sad        | sad, Mellow (0.5), beautiful (0.5)                               | 1                         |

The scores are relative (0..1, higher = more): good for ranking and filtering, not calibrated probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping

MOOD_TAGS: dict[str, dict[str, float]] = {
    "danceable": {"dance": 1, "House": 1, "electro": 1, "funk": 1, "Hip-Hop": 1, "rnb": 1},
    "aggressive": {"metal": 1, "heavy metal": 1, "hard rock": 1, "punk": 1},
    "happy": {"happy": 1, "catchy": 1, "party": 1, "pop": 0.5},
    "party": {"party": 1, "dance": 1, "House": 1, "electro": 0.5},
    "relaxed": {"chill": 1, "chillout": 1, "Mellow": 1, "easy listening": 1, "ambient": 1, "acoustic": 1},
    "sad": {"sad": 1, "Mellow": 0.5, "beautiful": 0.5},
}
MOODS = tuple(MOOD_TAGS)


def mood_scores(tags: Mapping[str, float], *, energy: float, tempo_confidence: float) -> dict[str, float]:
    """Mood name → score in [0, 1] from tag probabilities, energy (0..1) and tempo confidence (0..1)."""
    factors = {
        "danceable": 0.5 + 0.5 * tempo_confidence,
        "aggressive": 0.5 + 0.5 * energy,
        "happy": 1.0,
        "party": 0.5 + 0.5 * energy,
        "relaxed": 1.0 - 0.5 * energy,
        "sad": 1.0,
    }
    scores = {}
    for mood, weights in MOOD_TAGS.items():
        raw = sum(weight * float(tags.get(tag, 0.0)) for tag, weight in weights.items())
        scores[mood] = round(min(1.0, max(0.0, raw)) * factors[mood], 4)
    return scores
