"""Migrations: applied once, recorded, atomic, and safe when several processes start together."""

from __future__ import annotations

import multiprocessing
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from db.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations, discover_migrations


@pytest.fixture
def fresh_database(services):
    """An empty database on the test server, dropped afterwards."""
    name = f"mig_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(services["database_url"])
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(services["database_url"])._replace(path="/" + name))
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


def _schema(url: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("""SELECT table_name, column_name, data_type, is_nullable, column_default
                             FROM information_schema.columns WHERE table_schema = 'public'
                            ORDER BY table_name, column_name""")
            columns = cur.fetchall()
            cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")
            return columns + cur.fetchall()
    finally:
        conn.close()


def _versions(url: str) -> list[int]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version FROM schema_version ORDER BY version")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def test_applying_twice_changes_nothing(fresh_database):
    expected = [m.version for m in discover_migrations()]
    assert apply_migrations(fresh_database) == expected
    before = _schema(fresh_database)
    assert apply_migrations(fresh_database) == []
    assert _schema(fresh_database) == before
    assert _versions(fresh_database) == expected


def _apply_in_child(url: str, directory: str, go, queue) -> None:  # runs in a separate process
    go.wait(30)
    try:
        queue.put(("ok", apply_migrations(url, Path(directory))))
    except Exception as exc:
        queue.put(("error", repr(exc)))


def test_processes_applying_at_once_do_not_collide(fresh_database, tmp_path: Path):
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    # A slow migration keeps the others waiting on the lock; without it they would all run CREATE TABLE.
    (tmp_path / "9000_slow.sql").write_text("SELECT pg_sleep(0.5);\nCREATE TABLE slow_marker (x int);\n")
    ctx = multiprocessing.get_context("spawn")
    queue, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_apply_in_child, args=(fresh_database, str(tmp_path), go, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    go.set()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert all(kind == "ok" for kind, _ in results), results
    applied = sorted(v for _, versions in results for v in versions)
    assert applied == [m.version for m in discover_migrations(tmp_path)]  # each applied by exactly one process
    assert _versions(fresh_database) == applied


def test_failing_migration_is_rolled_back_and_not_recorded(fresh_database, tmp_path: Path):
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "9999_broken.sql").write_text("CREATE TABLE half_done (x int);\nSELECT no_such_function();\n")
    with pytest.raises(MigrationError, match="9999_broken failed"):
        apply_migrations(fresh_database, tmp_path)
    conn = psycopg2.connect(fresh_database)
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.half_done')")
        assert cur.fetchone()[0] is None
    conn.close()
    assert 9999 not in _versions(fresh_database)
    assert 1 in _versions(fresh_database)


def test_badly_named_migration_file_is_refused(tmp_path: Path):
    (tmp_path / "1_init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="is not NNNN_name.sql"):
        discover_migrations(tmp_path)


def test_building_the_app_has_no_side_effects_and_start_up_does_the_work(fresh_database, make_config):
    """create_app on an empty database migrates nothing, loads nothing, writes nothing and starts no thread;
    start_web_process applies the migrations, loads the (absent) index and starts the listener and reconciler."""
    import threading

    from app import create_app, start_web_process

    cfg = make_config(DATABASE_URL=fresh_database)
    threads_before = {t.name for t in threading.enumerate()}
    app = create_app(cfg)
    runtime = app.extensions["audiomuse"]
    try:
        assert {t.name for t in threading.enumerate()} - threads_before == set()  # no new thread
        assert _schema(fresh_database) == []  # not even schema_version
        assert runtime.index.state.index is None and runtime.index.last_error is None
        degraded = app.test_client().get("/api/health")  # it answers, and says what is missing
        assert degraded.status_code == 503 and degraded.get_json()["database"]["ok"] is False
        assert _schema(fresh_database) == []  # answering a request wrote no session key either

        start_web_process(app)
        names = {t.name for t in threading.enumerate()}
        assert {"index-reload", "task-reconciler"} <= names
        assert _versions(fresh_database) == [m.version for m in discover_migrations()]
        assert app.test_client().get("/api/health").get_json()["database"]["ok"] is True
    finally:
        runtime.stop_background.set()
        runtime.db.close()


def test_the_single_api_token_of_before_becomes_the_one_named_default(fresh_database, tmp_path: Path):
    """0034: the token stored before named tokens existed keeps working under the name 'default'."""
    import hashlib
    import shutil

    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:4]) < 34:
            shutil.copy(path, earlier / path.name)
    apply_migrations(fresh_database, earlier)
    old_hash = hashlib.sha256(b"the-old-token").hexdigest()
    conn = psycopg2.connect(fresh_database)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("INSERT INTO app_settings (key, value) VALUES ('api_token_sha256', %s)", (old_hash,))
        assert 34 in apply_migrations(fresh_database)
        with conn.cursor() as cur:
            cur.execute("SELECT name, sha256 FROM api_tokens")
            assert cur.fetchall() == [("default", old_hash)]
            cur.execute("SELECT count(*) FROM app_settings WHERE key = 'api_token_sha256'")
            assert cur.fetchone() == (0,)
    finally:
        conn.close()
