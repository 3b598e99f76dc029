"""MIREX-style tempo accuracy and weighted key score."""

from __future__ import annotations

import pytest

from discovery.analysis_eval import tempo_hits, weighted_key_score


@pytest.mark.parametrize("found, truth, expected", [
    (121.0, 120.0, (True, True)), (126.0, 120.0, (False, False)), (60.5, 120.0, (False, True)),
    (241.0, 120.0, (False, True)), (40.2, 120.0, (False, True)), (None, 120.0, (False, False))])
def test_tempo_accuracy_1_and_2(found, truth, expected):
    assert tempo_hits(found, truth) == expected


@pytest.mark.parametrize("found, truth, score", [
    ("C major", "C major", 1.0), ("G major", "C major", 0.5), ("F major", "C major", 0.5),
    ("A minor", "C major", 0.3), ("C major", "A minor", 0.3), ("C minor", "C major", 0.2),
    ("E minor", "A minor", 0.5), ("D major", "C major", 0.0), ("E minor", "C major", 0.0), (None, "C major", 0.0)])
def test_weighted_key_score(found, truth, score):
    assert weighted_key_score(found, truth) == score
