"""The one criteria vocabulary: its SQL (exact text, bound parameters), its evaluation on the facet table, the
energy-level rule both share, and the one text fold and number parser."""

from __future__ import annotations

import numpy as np
import pytest

from config import NumberError, parse_int, parse_number
from db.criteria_sql import criteria_sql
from db.smart_playlists import rule_sql
from discovery import chat_intent, chat_results, dedup, keyword_index
from discovery.criteria import ENERGY_RULE, Criterion, EnergyRule, bounds, facet_mask
from discovery.hybrid import FacetTable, Filters
from discovery.smart_rules import parse_rule
from discovery.textfold import fold, fold_words

ENERGY_LEVEL_SQL = (
    "CASE WHEN t.energy IS NULL THEN NULL "
    "WHEN t.energy + (coalesce(t.tempo_bpm, %(energy_pivot)s) - %(energy_pivot)s) / %(energy_scale)s "
    ">= %(energy_high)s THEN 'high' "
    "WHEN t.energy + (coalesce(t.tempo_bpm, %(energy_pivot)s) - %(energy_pivot)s) / %(energy_scale)s "
    "< %(energy_low)s THEN 'low' ELSE 'medium' END")


def test_criteria_sql_is_exact_and_binds_every_value():
    clauses, params = criteria_sql([
        Criterion("bpm", "range", (120.0, 130.0)), Criterion("energy", "=", ("high",)),
        Criterion("artist", "=", ("X",), negated=True), Criterion("key", "=", ("8A", "9B")),
        Criterion("genre", "=", ("Jazz",)), Criterion("year", "<", (2000.0,))])
    assert clauses == [
        "(t.tempo_bpm BETWEEN %(p0_low)s AND %(p0_high)s)",
        f"(({ENERGY_LEVEL_SQL}) = %(p1)s)",
        "NOT coalesce((lower(t.artist) = lower(%(p2)s)), false)",
        "(t.camelot = ANY(%(p3)s))",
        "(EXISTS (SELECT 1 FROM unnest(t.genres) AS g WHERE lower(g) = lower(%(p4)s)))",
        "(t.year < %(p5)s)",
    ]
    assert params == {"p0_low": 120.0, "p0_high": 130.0, "p1": "high", "energy_pivot": 120.0, "energy_scale": 500.0,
                      "energy_high": 0.80, "energy_low": 0.66, "p2": "X", "p3": ["8A", "9B"], "p4": "Jazz",
                      "p5": 2000.0}
    with pytest.raises(ValueError, match="no SQL"):
        criteria_sql([Criterion("colour", "=", ("red",))])


def test_smart_rule_sql_is_the_criteria_sql_over_analyzed_embedded_tracks():
    sql, params = rule_sql(parse_rule("tag = House AND NOT mood = sad"))
    assert sql == ("t.analyzed_at IS NOT NULL AND EXISTS (SELECT 1 FROM embeddings em WHERE em.item_id = t.item_id) "
                   "AND (t.top_tags @> ARRAY[lower(%(p0)s)]) AND NOT coalesce((t.top_mood = lower(%(p1)s)), false)")
    assert params == {"p0": "House", "p1": "sad"}


def test_library_table_criteria_with_half_open_plot_bins():
    where = [Criterion("text", "contains", ("50%_off",)), *bounds("bpm", 120, 125, high_inclusive=False),
             *bounds("energy_value", 0.5, None, high_inclusive=False),
             *bounds("loudness", None, -6, high_inclusive=False), Criterion("key", "=", ("8A",)),
             Criterion("tag", "=", ("Jazz",)), Criterion("mood", "=", ("happy",))]
    assert where[1:5] == [Criterion("bpm", ">=", (120,)), Criterion("bpm", "<", (125,)),
                          Criterion("energy_value", ">=", (0.5,)), Criterion("loudness", "<", (-6,))]
    clauses, params = criteria_sql(where)
    assert clauses == ["(t.title ILIKE %(p0)s OR t.artist ILIKE %(p0)s OR t.album ILIKE %(p0)s)",
                       "(t.tempo_bpm >= %(p1)s)", "(t.tempo_bpm < %(p2)s)", "(t.energy >= %(p3)s)",
                       "(t.loudness_lufs < %(p4)s)", "(t.camelot = ANY(%(p5)s))",
                       "(t.top_tags @> ARRAY[lower(%(p6)s)])", "(t.top_mood = lower(%(p7)s))"]
    assert params == {"p0": "%50\\%\\_off%", "p1": 120, "p2": 125, "p3": 0.5, "p4": -6, "p5": ["8A"], "p6": "Jazz",
                      "p7": "happy"}
    assert criteria_sql([]) == ([], {})


ROWS = [  # position, bpm, camelot, energy, year, duration, top tags
    (0, 124.0, "8A", 0.85, 1999, 240.0, ["electronic", "dance"]),
    (1, 62.0, "9A", 0.50, 1975, 300.0, ["jazz"]),
    (2, None, "8B", 0.79, 2010, 200.0, ["House"]),
    (3, 95.0, None, None, None, 180.0, []),
]


def test_facet_mask_evaluates_criteria_and_unknown_values_never_match():
    table = FacetTable.build(4, ROWS)

    def rows(*criteria: Criterion) -> list[int]:
        return np.flatnonzero(facet_mask(table, criteria)).tolist()

    assert rows(Criterion("bpm", "range", (60.0, 124.0))) == [0, 1, 3]
    assert rows(Criterion("bpm", ">", (100.0,))) == [0]  # 2 has no tempo
    assert rows(Criterion("bpm", ">", (100.0,), negated=True)) == [1, 2, 3]  # NOT keeps the unknown
    assert rows(Criterion("year", "<=", (2000.0,))) == [0, 1]  # 3's year is unknown
    assert rows(Criterion("duration", "=", (200.0,))) == [2]
    assert rows(Criterion("key", "=", ("8a", "8B"))) == [0, 2]
    assert rows(Criterion("tag", "=", ("house",))) == [2]
    assert rows(Criterion("tag", "=", ("polka",))) == []
    assert rows(Criterion("energy", "=", ("high",))) == [0]  # 2: 0.79 without a tempo is medium
    assert rows(Criterion("energy", "=", ("medium",))) == [2]
    assert rows(Criterion("energy", "=", ("low",))) == [1]
    assert rows(Criterion("bpm", ">=", (60.0,)), Criterion("key", "=", ("9A",))) == [1]
    with pytest.raises(ValueError, match="no 'mood'"):
        facet_mask(table, [Criterion("mood", "=", ("sad",))])


def test_search_filters_are_criteria():
    assert Filters(bpm_min=120, year_max=2000, camelot=(7, 19), energy="low", tag="jazz").criteria() == (
        Criterion("bpm", ">=", (120,)), Criterion("year", "<=", (2000,)), Criterion("key", "=", ("8A", "8B")),
        Criterion("energy", "=", ("low",)), Criterion("tag", "=", ("jazz",)))


def test_the_energy_rule_is_data():
    energy = np.array([0.80, 0.79, 0.70, 0.66, 0.65, np.nan], dtype=np.float32)
    bpm = np.array([120.0, np.nan, 170.0, 120.0, 120.0, 120.0], dtype=np.float32)
    assert ENERGY_RULE.levels(energy, bpm).tolist() == [0, 1, 0, 1, 2, -1]
    assert EnergyRule(high=0.9, low=0.5).levels(energy, bpm).tolist() == [1, 1, 1, 1, 1, -1]


def test_one_fold_everywhere_spells_out_the_letters_without_accents():
    assert fold("Straße ÆRØ Œuvre SWÏNG\x07") == "strasse aero oeuvre swing"
    assert fold("Plain ASCII\x00") == "plain ascii"
    assert fold_words("  Mötley  Crüe: Dr. Feelgood! R&B ") == "motley crue dr feelgood r&b"
    assert chat_intent.fold is fold_words and keyword_index.fold is fold
    assert dedup.song_key("Straße", "Sigur Rós") == dedup.song_key("STRASSE", "sigur ros") == ("strasse", "sigur ros")
    assert chat_intent.NameIndex(["Björk", "Mœbius"]).find(fold_words("play bjork and moebius")) == [
        (5, "Björk"), (15, "Mœbius")]


def test_one_song_key_a_remix_is_its_own_song():
    assert chat_results.song_key is dedup.song_key
    assert dedup.song_key("Song (Radio Edit)", "A") == dedup.song_key("Song - 2011 Remaster", "A feat. B")
    assert dedup.song_key("Song (Club Remix)", "A") != dedup.song_key("Song", "A")
    rows = [{"item_id": "1", "title": "Song", "artist": "A"}, {"item_id": "2", "title": "Song (Club Remix)",
                                                               "artist": "A"}]
    assert [r["item_id"] for r in chat_results.playlist_rows(rows, max_per_artist=0, limit=10)] == ["1", "2"]


@pytest.mark.parametrize(("raw", "minimum", "maximum", "value"), [
    (5, None, None, 5), ("12", 1, 12, 12), (" -3 ", None, None, -3), (7.0, None, None, 7)])
def test_parse_int_reads_integers(raw, minimum, maximum, value):
    assert parse_int(raw, minimum=minimum, maximum=maximum) == value


@pytest.mark.parametrize(("raw", "minimum", "maximum", "expected"), [
    (True, None, None, "an integer"), (2.5, None, None, "an integer"), ("2.0", None, None, "an integer"),
    ("ten", None, None, "an integer"), (None, None, None, "an integer"), (float("inf"), None, None, "an integer"),
    ([1], None, None, "an integer"), (0, 1, None, "at least 1"), ("51", 1, 50, "at most 50")])
def test_parse_int_says_what_it_expected(raw, minimum, maximum, expected):
    with pytest.raises(NumberError) as caught:
        parse_int(raw, minimum=minimum, maximum=maximum)
    assert caught.value.expected == expected


def test_parse_number():
    assert parse_number("1.5") == 1.5 and parse_number(3, minimum=0, maximum=3) == 3.0
    for raw, expected in ((False, "a number"), ("fast", "a number"), (None, "a number"), ("nan", "a finite number"),
                          (float("inf"), "a finite number")):
        with pytest.raises(NumberError) as caught:
            parse_number(raw)
        assert caught.value.expected == expected
    with pytest.raises(NumberError, match="between 1 and 400"):
        parse_number(0.5, minimum=1, maximum=400)
