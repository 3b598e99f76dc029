"""Hybrid search's pure parts on hand-made data: fusion (weighted and RRF), filters, facets, energy levels and
cursors."""

from __future__ import annotations

import numpy as np
import pytest

from discovery.hybrid import (
    FacetTable,
    Filters,
    apply_filters,
    decode_cursor,
    encode_cursor,
    energy_levels,
    facet_counts,
    fuse,
    parse_camelot,
)
from discovery.types import DiscoveryError

ROWS = [  # position, bpm, camelot, energy, year, duration, top tags
    (0, 124.0, "8A", 0.85, 1999, 240.0, ["electronic", "dance"]),
    (1, 62.0, "9A", 0.50, 1975, 300.0, ["jazz"]),
    (2, 128.0, "8B", 0.80, 2010, 200.0, ["electronic", "house"]),
    (3, 95.0, "3B", 0.70, None, 180.0, ["rock"]),
    (4, 160.0, "7A", 0.82, 2020, 150.0, ["electronic", "drum and bass"]),
    (5, 64.0, "8A", 0.66, 1980, 210.0, ["electronic"]),  # half time of 128
]


def table() -> FacetTable:
    return FacetTable.build(7, ROWS)  # position 6: indexed but never analyzed


def test_camelot_codes():
    assert [parse_camelot(c) for c in ("1A", "12a", "8B", "13A", "0B", "8C", "B", "")] == [0, 11, 19, None, None,
                                                                                         None, None, None]


def test_energy_levels_from_energy_and_tempo():
    # 0.85+0.008 high; 0.50-0.116 low; 0.80+0.016 high; 0.70-0.05 low; 0.82+0.08 high; 0.66-0.112 low
    assert energy_levels(table()).tolist() == [0, 2, 0, 2, 0, 2, -1]


def test_filters_are_and_combined():
    t = table()
    assert np.flatnonzero(apply_filters(t, Filters(bpm_min=120, bpm_max=130))).tolist() == [0, 2]
    assert np.flatnonzero(apply_filters(t, Filters(camelot=(parse_camelot("8A"), parse_camelot("9A"))))).tolist() \
        == [0, 1, 5]
    assert np.flatnonzero(apply_filters(t, Filters(tag="Electronic", energy="high"))).tolist() == [0, 2, 4]
    assert np.flatnonzero(apply_filters(t, Filters(year_min=1980, year_max=2010))).tolist() == [0, 2, 5]
    assert np.flatnonzero(apply_filters(t, Filters(duration_max=200))).tolist() == [2, 3, 4]
    assert np.flatnonzero(apply_filters(t, Filters(tag="polka"))).tolist() == []
    assert np.flatnonzero(apply_filters(t, Filters())).tolist() == [0, 1, 2, 3, 4, 5]  # not the unanalyzed one


def test_mixable_with_is_key_compatible_and_tempo_close_at_half_or_double_time():
    t = table()
    # from 2 (8B, 128): 8A relative key → 0 (124: 4 BPM off, out of ±3) and 5 (64 = half time) — 5 only
    assert np.flatnonzero(apply_filters(t, Filters(mixable_with=2))).tolist() == [5]
    assert np.flatnonzero(apply_filters(t, Filters(mixable_with=2, bpm_tolerance=5))).tolist() == [0, 5]
    with pytest.raises(DiscoveryError):
        apply_filters(t, Filters(mixable_with=6))


def test_facet_counts():
    t = table()
    facets = facet_counts(t, np.arange(6))
    assert [(b["range"], b["count"]) for b in facets["bpm"]] == [("60-90", 2), ("90-120", 1), ("120-150", 2),
                                                                ("150+", 1)]
    camelot = {c["key"]: c["count"] for c in facets["camelot"]}
    assert len(camelot) == 24 and camelot["8A"] == 2 and camelot["3B"] == 1 and camelot["12B"] == 0
    assert facets["energy"] == [{"level": "high", "count": 3}, {"level": "medium", "count": 0},
                                {"level": "low", "count": 3}]
    assert facets["tags"][0] == {"tag": "electronic", "count": 4}


def test_weighted_fusion_normalises_each_side_and_mixes_by_weight():
    keyword = {1: 0.4, 2: 0.2}
    semantic = {2: 0.9, 3: 0.45}
    fused = fuse(keyword, semantic, semantic_weight=0.3)
    assert [(f.position, f.score, f.keyword_score, f.semantic_score) for f in fused] == [
        (1, 0.7, 1.0, 0.0), (2, 0.65, 0.5, 1.0), (3, 0.15, 0.0, 0.5)]
    assert fused[1].match_reasons == ["keyword", "semantic"]
    only_semantic = fuse(keyword, semantic, semantic_weight=1.0)
    assert [f.position for f in only_semantic] == [2, 3]  # keyword-only tracks weigh nothing
    with pytest.raises(DiscoveryError):
        fuse(keyword, semantic, semantic_weight=1.2)


def test_rrf_uses_ranks_only():
    fused = fuse({1: 100.0, 2: 1.0}, {2: 0.9, 3: 0.1}, semantic_weight=0.5, fusion="rrf")
    assert [f.position for f in fused] == [2, 1, 3]
    assert fused[0].score == pytest.approx(0.5 / 62 + 0.5 / 61)


def test_ties_are_broken_by_the_order_key_so_the_order_is_stable():
    fused = fuse({5: 1.0, 3: 1.0, 4: 1.0}, {}, semantic_weight=0.0, order_key={5: "a", 3: "c", 4: "b"})
    assert [f.position for f in fused] == [5, 4, 3]


def test_cursors_belong_to_their_query():
    cursor = encode_cursor(50, "abc")
    assert decode_cursor(cursor, "abc") == 50
    for bad, digest in ((cursor, "other"), ("not-base64!!", "abc"), (encode_cursor(-1, "abc"), "abc")):
        with pytest.raises(DiscoveryError) as caught:
            decode_cursor(bad, digest)
        assert caught.value.parameter == "cursor"


def test_facet_counts_leave_out_their_own_group_filter():
    # disjunctive faceting: a group's counts say how many songs choosing that option would give
    t = table()
    candidates = np.arange(7)
    picked = Filters(camelot=(parse_camelot("8A"),), bpm_min=60, bpm_max=90)
    facets = facet_counts(t, candidates, filters=picked)
    camelot = {c["key"]: c["count"] for c in facets["camelot"]}
    # keys over the tempo filter only (1: 9A, 5: 8A): choosing 9A adds one song
    assert (camelot["8A"], camelot["9A"], camelot["8B"]) == (1, 1, 0)
    # tempo over the key filter only (0: 124, 5: 64)
    assert [(b["range"], b["count"]) for b in facets["bpm"]] == [("60-90", 1), ("90-120", 0), ("120-150", 1),
                                                                ("150+", 0)]
    # the groups with no choice count under every filter: only 5 passes both
    assert {e["level"]: e["count"] for e in facets["energy"]} == {"high": 0, "medium": 0, "low": 1}
    assert facets["tags"] == [{"tag": "electronic", "count": 1}]
    # a radio group: energy=high picked, the other levels still count what they would give
    energy = facet_counts(t, candidates, filters=Filters(energy="high"))
    assert {e["level"]: e["count"] for e in energy["energy"]} == {"high": 3, "medium": 0, "low": 3}
    assert {c["key"]: c["count"] for c in energy["camelot"]}["9A"] == 0  # 1 (9A) is low: other groups filter
    # the unanalyzed row never counts, and without filters the counts are those over the candidates
    assert facet_counts(t, candidates, filters=Filters()) == facet_counts(t, np.arange(6))
