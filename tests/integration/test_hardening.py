"""Issue 32's smaller audit findings, each checked against the real web app: pages cannot be framed by another
site, a newline in a request path or a tag cannot forge a log line, DATA_DIR is private to AudioMuse's user."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_every_answer_forbids_framing_by_another_site(client):
    for path in ("/", "/analysis", "/api/health", "/api/active_tasks", "/no-such-page"):
        answer = client.get(path)
        assert answer.headers["Content-Security-Policy"] == "frame-ancestors 'self'", path
        assert answer.headers["X-Frame-Options"] == "SAMEORIGIN", path


def test_control_characters_in_a_log_record_stay_on_its_line(app, caplog):
    # `app`: the web process's logging set up as it runs (serve() installs it)
    caplog.set_level(logging.INFO)
    forged = "abc\n2026-12-07 04:00:00 WARNING audiomuse: admin password changed"
    logging.getLogger("audiomuse.test").warning("no task %s; a title from a tag: %s", forged,
                                                "Song\r\nINFO forged\x1b[31m")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "audiomuse.test"]
    assert line == ("no task abc\\n2026-12-07 04:00:00 WARNING audiomuse: admin password changed; a title from a "
                    "tag: Song\\r\\nINFO forged\\x1b[31m")


def test_data_dir_is_created_private_and_an_open_one_is_narrowed(tmp_path):
    fresh, opened = tmp_path / "fresh" / "data", tmp_path / "opened"
    opened.mkdir(mode=0o755)
    opened.chmod(0o755)
    code = ("import sys; from infra.data_dir import private_data_dir; "
            "[private_data_dir(p) for p in sys.argv[1:]]")
    subprocess.run([sys.executable, "-c", code, str(fresh), str(opened)], cwd=REPO_ROOT, check=True,
                   env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    for folder in (fresh, opened):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_a_nul_byte_anywhere_in_a_request_is_a_400_naming_where(client):
    for answer, parameter in (
            (client.get("/api/status/ab%00cd"), "path"),
            (client.post("/api/cancel/ab%00cd"), "path"),
            (client.get("/api/similar_tracks", query_string={"item_id": "a\x00b", "n": 5}), "item_id"),
            (client.post("/api/cron", json={"name": "Night\x00ly", "task_type": "analysis",
                                            "cron_expr": "0 3 * * *"}), "name"),
            (client.post("/api/smart_playlists", json={"name": "x", "rules": [{"field": "tag\x00",
                                                                                "op": "is", "value": "rock"}]}),
             "field"),
            (client.post("/chat/api/chatPlaylist", json={"userInput": "jazz", "ai_provider": "ollama",
                                                         "ollama_model_name": "llama\x00"}), "ollama_model_name"),
            (client.post("/api/create_playlist", json={"playlist_name": "Mix\x00", "track_ids": ["a"]}),
             "playlist_name")):
        body = answer.get_json()
        assert answer.status_code == 400 and body["parameter"] == parameter, (parameter, answer.status_code, body)


def test_numbers_and_time_zones_out_of_range_are_400s(client):
    for answer, parameter in (
            (client.post("/api/clap/search", json={"query": "calm piano", "limit": "Infinity"}), "limit"),
            (client.post("/api/clap/search", json={"query": "calm piano", "limit": float("inf")}), "limit"),
            (client.get("/api/cron/preview",
                        query_string={"cron_expr": "0 3 * * *", "timezone": "Europe/" + "x" * 300}), "timezone")):
        body = answer.get_json()
        assert answer.status_code == 400 and body["parameter"] == parameter, (parameter, answer.status_code, body)


def test_a_request_while_the_database_is_away_is_a_503_with_retry_after(app, client):
    """Right after a PostgreSQL restart (or while it is down) a request gets 503 and Retry-After, not a 500; the
    database here is a real connection attempt to a port where no server answers."""
    from db.pool import Database

    runtime = app.extensions["audiomuse"]
    working = runtime.db
    runtime.db = Database("postgresql://audiomuse@127.0.0.1:9/audiomuse", max_connections=2)
    try:
        for path in ("/api/active_tasks", "/api/search_tracks?q=song", "/api/analysis/summary"):
            answer = client.get(path)
            assert answer.status_code == 503, (path, answer.status_code, answer.get_data(as_text=True)[:200])
            assert answer.headers["Retry-After"] == "5" and "try again" in answer.get_json()["error"]
        page = client.get("/analysis")
        assert page.status_code in (200, 503), page.status_code  # a page that reads nothing still renders
    finally:
        runtime.db = working
    assert client.get("/api/active_tasks").status_code == 200


def test_the_embedded_redis_keeps_queued_jobs_through_a_crash(tmp_path):
    """Its snapshot setting once reached redis-server as no save points at all, so a restart lost the queue; the
    append-only file now keeps every write, even through a kill -9 (fsync once a second)."""
    import signal as signals
    import time

    import redis as redis_lib

    from infra.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path)
    url = server.start()
    try:
        client = redis_lib.Redis.from_url(url)
        assert client.config_get("save") == {"save": "60 1"} and client.config_get("appendonly")["appendonly"] == "yes"
        client.rpush("rq:queue:default", "job-1", "job-2")
        time.sleep(1.5)  # past the once-a-second fsync
        assert server.process is not None
        os.killpg(server.process.pid, signals.SIGKILL)
        server.process.wait()
        server.process = None
        again = redis_lib.Redis.from_url(server.start())
        assert again.lrange("rq:queue:default", 0, -1) == [b"job-1", b"job-2"]
    finally:
        server.stop()
