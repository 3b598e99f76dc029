"""Smart playlist rules: the text form parses into conditions, formats back to itself, and bad rules say what and
where."""

from __future__ import annotations

import pytest

from discovery.smart_rules import Condition, RuleError, format_rule, parse_rule, rule_from_json


def test_the_issue_example_parses_and_round_trips():
    text = 'bpm 120-130 AND tag = electronic AND energy = high AND NOT artist = "Daft Punk"'
    rule = parse_rule(text)
    assert rule == (Condition("bpm", "range", (120.0, 130.0)), Condition("tag", "=", ("electronic",)),
                    Condition("energy", "=", ("high",)), Condition("artist", "=", ("Daft Punk",), negated=True))
    assert format_rule(rule) == text
    assert parse_rule(format_rule(rule)) == rule


@pytest.mark.parametrize("text, canonical", [
    ("BPM >= 120 and Key = 7a, 8A ,9a", "bpm >= 120 AND key = 7A,8A,9A"),
    ('  year 1960-1969   AND not genre = "Hip-Hop"', "year 1960-1969 AND NOT genre = Hip-Hop"),
    ('album = "AND then \\"some\\""', 'album = "AND then \\"some\\""'),
    ("duration < 240.5 AND mood = happy", "duration < 240.5 AND mood = happy"),
    ("artist = Björk", "artist = Björk"),
])
def test_forms_are_normalised(text, canonical):
    assert format_rule(parse_rule(text)) == canonical
    assert parse_rule(canonical) == parse_rule(text)


@pytest.mark.parametrize("text, says, position", [
    ("", "at least one condition", 0),
    ("tempo 120-130", "unknown field 'tempo'", 0),
    ("bpm 130-120", "goes downwards", 4),
    ("bpm fast", "takes a range", 4),
    ("bpm >= 9000", "from 1 to 400", 7),
    ("energy = loud", "high, medium or low", 9),
    ("key = 13A", "not a Camelot key", 6),
    ("key = 8A 9A", "separated by commas", 9),
    ("tag = electronic AND", "condition is missing", 20),
    ("tag = electronic OR tag = house", "OR is not supported", 17),
    ("artist = Daft Punk", "double quotes", 14),
    ("NOT NOT tag = rock", "NOT twice", 4),
    ('artist = "unclosed', "unexpected", 9),
    ("tag electronic", "takes = and a value", 4),
])
def test_bad_rules_say_what_and_where(text, says, position):
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    assert says in str(caught.value) and caught.value.position == position, (str(caught.value), caught.value.position)


def test_the_builder_json_is_checked_through_the_same_parser():
    built = rule_from_json([{"field": "bpm", "op": "range", "values": ["120", 130], "negated": False},
                            {"field": "artist", "op": "=", "values": ["X"], "negated": True}])
    assert format_rule(built) == "bpm 120-130 AND NOT artist = X"
    assert [c.as_json() for c in built][1] == {"field": "artist", "op": "=", "values": ["X"], "negated": True}
    for bad in ([], [{"field": "bpm", "op": "range", "values": ["a", "b"]}], [{"field": "energy", "values": ["x"]}],
                ["bpm"], [{"field": "colour", "op": "=", "values": ["red"]}]):
        with pytest.raises(RuleError):
            rule_from_json(bad)
