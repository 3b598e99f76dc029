"""The chat's SQL check (PostgreSQL's own parser, pglast): the hostile and broken answers an LLM could give are
refused with a reason, plain SELECTs over the chat view pass with their parameters and LIMIT."""

from __future__ import annotations

import pytest

from db.chat_sql import ChatQueryRejected, validate_chat_query

CAP = 100


def check(sql: object, params: object = None):  # type: ignore[no-untyped-def]
    return validate_chat_query(sql, params, max_limit=CAP)


@pytest.mark.parametrize("sql", [
    "SELECT item_id, title, artist FROM chat_tracks WHERE tempo_bpm > $1 ORDER BY energy DESC LIMIT 25",
    "select item_id from CHAT_TRACKS t where lower(t.artist) like '%miles%' and (tags->>'jazz')::float > 0.3 "
    "order by random() limit 10;",
    "SELECT item_id FROM chat_tracks WHERE camelot IN ('8A', '9A') AND tempo_bpm BETWEEN 90 AND 110 "
    "AND artist NOT ILIKE '%abba%' AND album IS NOT NULL ORDER BY coalesce(energy, 0) DESC LIMIT 100",
    "SELECT item_id FROM chat_tracks WHERE item_id IN (SELECT item_id FROM chat_tracks WHERE happy > 0.5 LIMIT 5) "
    "LIMIT 5",
    "SELECT item_id, CASE WHEN energy > 0.5 THEN 'loud' ELSE 'soft' END AS feel FROM chat_tracks LIMIT 1",
    "SELECT t.item_id, (t.tags->>'jazz')::float AS jazz FROM chat_tracks t WHERE 'Jazz' = ANY(t.genres) "
    "ORDER BY jazz DESC LIMIT 5",
    "SELECT item_id FROM chat_tracks ORDER BY title FETCH FIRST 10 ROWS ONLY",
])
def test_plain_selects_over_the_chat_view_pass(sql):
    params = [100] if "$1" in sql else []
    query = check(sql, params)
    assert query.params == tuple(params) and 1 <= query.limit <= CAP and not query.sql.endswith(";")


@pytest.mark.parametrize(("sql", "reason"), [
    ("DROP TABLE tracks", "DROP, not a SELECT"),
    ("UPDATE tracks SET title = 'x'", "UPDATE, not a SELECT"),
    ("DELETE FROM tracks", "DELETE, not a SELECT"),
    ("INSERT INTO playlists (name) SELECT title FROM chat_tracks LIMIT 1", "INSERT, not a SELECT"),
    ("SELECT item_id FROM chat_tracks LIMIT 5; DROP TABLE tracks", "2 statements"),
    ("SELECT item_id FROM chat_tracks LIMIT 5 /* harmless */; -- hidden\nDELETE FROM tracks", "2 statements"),
    ("WITH gone AS (DELETE FROM tracks RETURNING item_id) SELECT item_id FROM gone LIMIT 5", "WITH"),
    ("WITH app_settings AS (SELECT * FROM app_settings) SELECT * FROM app_settings LIMIT 5", "WITH"),
    ("SELECT item_id INTO stolen FROM chat_tracks LIMIT 5", "SELECT INTO"),
    ("SELECT item_id FROM chat_tracks LIMIT 5 FOR UPDATE", "FOR UPDATE/SHARE"),
    ("SELECT pg_sleep(60) FROM chat_tracks LIMIT 1", "calls pg_sleep()"),
    ("SELECT pg_read_file('/etc/passwd') FROM chat_tracks LIMIT 1", "calls pg_read_file()"),
    ("SELECT set_config('role', 'postgres', false) FROM chat_tracks LIMIT 1", "calls set_config()"),
    ("SELECT lo_import('/etc/passwd') FROM chat_tracks LIMIT 1", "calls lo_import()"),
    ("SELECT pg_catalog.lower(title) FROM chat_tracks LIMIT 1", "calls pg_catalog.lower()"),
    ("COPY tracks TO '/tmp/x'", "COPY, not a SELECT"),
    ("SELECT key, value FROM app_settings LIMIT 5", "reads app_settings"),
    ("SELECT usename, passwd FROM pg_shadow LIMIT 5", "reads pg_shadow"),
    ("SELECT table_name FROM information_schema.tables LIMIT 5", "reads information_schema.tables"),
    ("SELECT item_id FROM chat_tracks WHERE item_id IN (SELECT item_id FROM tracks) LIMIT 5", "reads tracks"),
    ("SELECT * FROM chat_tracks, generate_series(1, 100000000) LIMIT 5", "a function in FROM"),
    ("SELECT item_id FROM chat_tracks", "no LIMIT"),
    ("SELECT item_id FROM chat_tracks LIMIT 100000", "LIMIT 100000 is not between 1 and 100"),
    ("SELECT item_id FROM chat_tracks LIMIT ALL", "no LIMIT"),
    ("SELECT item_id FROM chat_tracks LIMIT 0", "LIMIT 0 is not between"),
    ("SELECT item_id FROM chat_tracks LIMIT $1", "not a whole number"),
    ("SELECT item_id FROM chat_tracks WHERE title::regclass IS NULL LIMIT 5", "casts to regclass"),
    ("SELECT item_id FROM chat_tracks WHERE title ~ '(a+)+$' LIMIT 5", "operator ~"),
    ("SELECT row_number() OVER () FROM chat_tracks LIMIT 5", "window function"),
    ("SELECT 1 FROM chat_tracks UNION SELECT usename::text FROM pg_user LIMIT 5", "reads pg_user"),
    ("VALUES (1) LIMIT 1", "VALUES"),
    ("SHOW ALL", "not a SELECT"),
    ("SELECT * FROM chat_tracks ORDER BY true FETCH FIRST 1 ROWS WITH TIES", "WITH TIES"),
    ("SELECT item_id FROM chat_tracks WHERE title ~ ANY (SELECT title FROM chat_tracks) LIMIT 5",
     "operator ~ before a subquery"),
    ("SELECT item_id FROM chat_tracks WHERE title OPERATOR(public.===) ANY (SELECT title FROM chat_tracks) LIMIT 5",
     "operator public.==="),
    ("SELECT item_id FROM chat_tracks ORDER BY title USING ~<~ LIMIT 5", "USING"),
    ("SELECT c.json_agg AS j FROM chat_tracks c LIMIT 1", "names c.json_agg"),
    ("SELECT c.pg_typeof FROM chat_tracks c LIMIT 1", "names c.pg_typeof"),
    ("SELECT s.p.pg_read_file FROM chat_tracks LIMIT 1", "names s.p.pg_read_file"),
    ("SELECT item_id FROM chat_tracks WHERE title = 'x\\' /* ' ; COMMIT; DELETE FROM tracks; -- */ LIMIT 5",
     "backslash"),
    ("SELECT item_id FROM chat_tracks WHERE", "not valid SQL"),
    ("I would suggest some jazz!", "not valid SQL"),
    ("", "there is no query"),
    (None, "there is no query"),
])
def test_hostile_and_broken_queries_are_refused_saying_why(sql, reason):
    with pytest.raises(ChatQueryRejected) as refused:
        check(sql)
    assert reason in str(refused.value)


def test_parameters_are_a_list_matching_the_placeholders():
    sql = "SELECT item_id FROM chat_tracks WHERE tempo_bpm > $1 AND artist = $2 LIMIT 5"
    assert check(sql, [120, "Nina Simone"]).params == (120, "Nina Simone")
    for params, reason in (([120], "1 were given"), ({"a": 1}, "not named"), ([[1, 2], "x"], "a list of numbers")):
        with pytest.raises(ChatQueryRejected, match=reason):
            check(sql, params)
    with pytest.raises(ChatQueryRejected, match=r"parameters \[2\]"):
        check("SELECT item_id FROM chat_tracks WHERE artist = $2 LIMIT 5", ["x"])
