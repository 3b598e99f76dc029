"""MIREX-style scores of the analysis against known tempo and key: tempo accuracy 1 (within 4 %) and 2 (also at
double, triple, half or a third of the tempo), and the weighted key score."""

from __future__ import annotations

__all__ = ["tempo_hits", "weighted_key_score"]

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
TOLERANCE = 0.04


def tempo_hits(found: float | None, truth: float) -> tuple[bool, bool]:
    """(accuracy 1, accuracy 2) of one estimate; an estimate of None misses both."""
    if not found:
        return False, False
    first = abs(found - truth) / truth <= TOLERANCE
    return first, first or any(abs(found * f - truth) / truth <= TOLERANCE for f in (2, 3, 0.5, 1 / 3))


def weighted_key_score(found: str | None, truth: str) -> float:
    """1 for the key itself, 0.5 a perfect fifth away in the same mode, 0.3 its relative, 0.2 its parallel, else
    0 (keys as "C major", "F# minor")."""
    if not found:
        return 0.0
    (f_name, f_mode), (t_name, t_mode) = found.split(), truth.split()
    f, t = PITCH_CLASSES.index(f_name), PITCH_CLASSES.index(t_name)
    if (f, f_mode) == (t, t_mode):
        return 1.0
    if f_mode == t_mode and (f - t) % 12 in (5, 7):
        return 0.5
    if f_mode != t_mode and (f - t) % 12 == (9 if t_mode == "major" else 3):
        return 0.3
    if f == t:
        return 0.2
    return 0.0
