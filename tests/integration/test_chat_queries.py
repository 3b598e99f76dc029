"""The chat's second line of defence on the real PostgreSQL: the chat role reads the view only, queries run
read-only with a statement timeout and bound parameters. Each hostile query is run here *without* the first line
(the parser check) to show that this line holds by itself, and the tables are unchanged afterwards."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pytest

from db.chat_queries import ChatQueryFailed, ensure_chat_role, run_chat_query
from db.chat_sql import CHAT_COLUMNS, CHAT_VIEW, CHAT_VIEW_COLUMNS, ValidatedQuery, validate_chat_query
from db.pool import Database
from tests.seeded_library import insert_track

ROLE = "audiomuse_chat_test"
TABLES = ("tracks", "embeddings", "app_settings", "playlists", "task_status")


def fingerprint(db) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Row count and md5 of every row of the tables the chat must never change."""
    return {table: db.fetch_one(f"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), "
                                f"'') AS f FROM {table} t")["f"] for table in TABLES}


@pytest.fixture
def library(db):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    for i in range(40):
        insert_track(db, item_id=f"t{i}", title=f"Song {i}", artist=f"Artist {i % 4}", vector=rng.normal(size=8),
                     bpm=80 + 3 * i, energy=i / 40)
    db.execute("UPDATE tracks SET tags = %s, moods = %s", (json.dumps({"jazz": 0.7, "rock": 0.1}),
                                                           json.dumps({"happy": 0.6, "sad": 0.2})))
    db.execute("INSERT INTO app_settings (key, value) VALUES ('secret_thing', '\"x\"')")
    role = ensure_chat_role(db, ROLE)
    assert role.ready, role
    return db


def run(db, sql: str, params=(), timeout_ms: int = 2000):  # type: ignore[no-untyped-def]
    return run_chat_query(db, ValidatedQuery(sql, tuple(params), 100), role=ROLE, timeout_ms=timeout_ms)


def test_a_validated_query_runs_as_the_chat_role_with_bound_parameters(library):
    query = validate_chat_query("SELECT item_id, title, tempo_bpm, happy, (tags->>'jazz')::float AS jazz "
                                "FROM chat_tracks WHERE tempo_bpm >= $1 AND artist = $2 ORDER BY tempo_bpm LIMIT 3",
                                [150, "Artist 1"], max_limit=100)
    rows = run_chat_query(library, query, role=ROLE, timeout_ms=2000)
    assert [r["item_id"] for r in rows] == ["t25", "t29", "t33"]
    assert rows[0]["happy"] == pytest.approx(0.6) and rows[0]["jazz"] == pytest.approx(0.7)
    # a value is a value: quotes in it never become SQL
    assert run(library, "SELECT item_id FROM chat_tracks WHERE artist = $1 LIMIT 5", ["x' OR '1'='1"]) == []
    assert run(library, "SELECT current_user AS who FROM chat_tracks LIMIT 1")[0]["who"] == ROLE
    assert ensure_chat_role(library, ROLE).ready  # set up again: nothing changes, still ready


@pytest.mark.parametrize(("sql", "error"), [
    ("SELECT key, value FROM app_settings LIMIT 5", "permission denied"),
    ("SELECT item_id FROM tracks LIMIT 5", "permission denied"),
    ("DELETE FROM tracks", "read-only transaction|permission denied"),
    ("UPDATE tracks SET title = 'gone'", "read-only transaction|permission denied"),
    ("INSERT INTO playlists (name) SELECT title FROM chat_tracks LIMIT 1", "read-only transaction|permission denied"),
    ("SELECT pg_read_file('/etc/passwd')", "permission denied"),
    ("SELECT set_config('statement_timeout', '0', false)", "read-only|permission denied|cannot"),
    ("SELECT usename, passwd FROM pg_shadow LIMIT 1", "permission denied"),
    ("SELECT lo_import('/etc/passwd')", "read-only transaction|permission denied"),
])
def test_without_the_parser_check_the_role_and_the_read_only_transaction_still_refuse(library, sql, error):
    before = fingerprint(library)
    try:
        rows = run(library, sql)
    except ChatQueryFailed as exc:
        assert re.search(error, str(exc)), exc
    else:  # set_config may succeed, inside a transaction that is rolled back (tested below)
        assert "set_config" in sql, rows
    assert fingerprint(library) == before


def test_the_validator_knows_the_chat_view_s_columns(db):
    rows = db.fetch_all("SELECT column_name FROM information_schema.columns WHERE table_name = %s", (CHAT_VIEW,))
    # the validator's names and the prompt's column list are one table in db/chat_sql
    assert {r["column_name"] for r in rows} == CHAT_COLUMNS == {name for name, _, _ in CHAT_VIEW_COLUMNS}


def test_session_settings_a_query_makes_are_undone_and_any_refusal_is_a_chat_failure(library, services):
    single = Database(services["database_url"], max_connections=1)  # the next query gets the same connection
    try:
        ensure_chat_role(single, ROLE)
        run_chat_query(single, ValidatedQuery("SELECT set_config('statement_timeout', '1', false) AS s", (), 1),
                       role=ROLE, timeout_ms=2000)
        assert single.fetch_one("SHOW statement_timeout")["statement_timeout"] != "1ms"
        many = ", ".join(["'a'"] * 101)  # more arguments than a function may take: an OperationalError
        with pytest.raises(ChatQueryFailed, match="more than 100 arguments"):
            run_chat_query(single, ValidatedQuery(f"SELECT concat({many}) AS item_id FROM chat_tracks LIMIT 1", (),
                                                  1), role=ROLE, timeout_ms=2000)
    finally:
        single.close()


def test_a_slow_query_is_stopped_by_the_statement_timeout(library):
    before = fingerprint(library)
    with pytest.raises(ChatQueryFailed, match="longer than 300 ms"):
        run(library, "SELECT pg_sleep(60)", timeout_ms=300)
    slow = validate_chat_query(  # passes the parser check: only the timeout stops it
        "SELECT a.item_id FROM chat_tracks a, chat_tracks b, chat_tracks c, chat_tracks d, chat_tracks e "
        "ORDER BY random() LIMIT 5", max_limit=100)
    with pytest.raises(ChatQueryFailed, match="longer than 300 ms"):
        run_chat_query(library, slow, role=ROLE, timeout_ms=300)
    assert fingerprint(library) == before
    # the connection is usable afterwards (the prepared statement left behind is dropped by the next query)
    assert len(run(library, "SELECT item_id FROM chat_tracks LIMIT 2")) == 2


def test_where_this_user_may_not_create_roles_the_operator_gets_the_sql(db, services):
    """An external server where AudioMuse's user is no superuser: the role is reported missing with the SQL."""
    plain = "audiomuse_plain_test"
    if db.fetch_one("SELECT 1 AS x FROM pg_roles WHERE rolname = %s", (plain,)) is None:
        db.execute(f'CREATE ROLE "{plain}" LOGIN NOSUPERUSER NOCREATEROLE')
    db.execute(f'GRANT SELECT ON chat_tracks TO "{plain}"')
    url = services["database_url"]
    parts = urlsplit(url)
    user_url = urlunsplit(parts._replace(netloc=f"{plain}@{parts.netloc.rpartition('@')[2]}"))  # host kept
    other = Database(user_url, max_connections=1)
    try:
        role = ensure_chat_role(other, "audiomuse_chat_elsewhere")
        assert role.ready is False and "may not set up the role audiomuse_chat_elsewhere" in role.problem
        assert 'GRANT SELECT ON chat_tracks TO "audiomuse_chat_elsewhere"' in role.operator_sql
        assert f'GRANT "audiomuse_chat_elsewhere" TO "{plain}"' in role.operator_sql
        # without the role the query still runs read-only (as this user, who may read the view)
        rows = run_chat_query(other, ValidatedQuery("SELECT count(*) AS n FROM chat_tracks LIMIT 1", (), 1),
                              role=None, timeout_ms=1000)
        assert rows == [{"n": 0}]
        with pytest.raises(ChatQueryFailed, match="read-only transaction"):
            run_chat_query(other, ValidatedQuery("SELECT lo_create(0)", (), 1), role=None, timeout_ms=1000)
    finally:
        other.close()
