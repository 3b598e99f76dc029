"""A smart playlist rule's SQL carries no value of the rule: every value is a bound parameter."""

from __future__ import annotations

import re

from db.smart_playlists import rule_sql
from discovery.smart_rules import parse_rule

HOSTILE = "x'); DROP TABLE tracks; --"


def test_values_are_bound_parameters_never_sql_text():
    rule = parse_rule(f'artist = "{HOSTILE}" AND NOT album = "{HOSTILE}" AND tag = "{HOSTILE}" AND genre = '
                      f'"{HOSTILE}" AND mood = "{HOSTILE}" AND bpm 120-130 AND year >= 1999 AND key = 8A,9B '
                      "AND energy = high")
    sql, params = rule_sql(rule)
    assert HOSTILE not in sql and "DROP" not in sql and "1999" not in sql and "8A" not in sql
    assert [params[f"p{i}"] for i in range(5)] == [HOSTILE] * 5
    assert (params["p5_low"], params["p5_high"], params["p6"], params["p7"], params["p8"]) == (
        120.0, 130.0, 1999.0, ["8A", "9B"], "high")
    placeholders = set(re.findall(r"%\((\w+)\)s", sql))
    assert placeholders == set(params)  # every value reaches PostgreSQL as a parameter, and only those
    assert "%" not in re.sub(r"%\(\w+\)s", "", sql)  # no other interpolation


def test_not_keeps_tracks_whose_value_is_unknown():
    sql, _ = rule_sql(parse_rule("NOT bpm 120-130"))
    assert "NOT coalesce((t.tempo_bpm BETWEEN %(p0_low)s AND %(p0_high)s), false)" in sql
