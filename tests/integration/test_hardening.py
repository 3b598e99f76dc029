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
    finally:
        runtime.db = working
    assert client.get("/api/active_tasks").status_code == 200


def test_a_request_while_redis_is_away_is_a_503_with_retry_after(app, client):
    """A web thread does not wait for a restarting Redis (workers do): starting a task is a 503 and Retry-After,
    and the failed start does not stand in the way of the next one. The client is made as the web process makes
    its own (infra.connections.get_redis), on a port where no Redis answers."""
    from infra.connections import get_redis

    runtime = app.extensions["audiomuse"]
    working = runtime.redis
    runtime.redis = get_redis(runtime.config.with_overrides(REDIS_URL="redis://127.0.0.1:9/0", REDIS_TIMEOUT_SECONDS=1))
    try:
        answer = client.post("/api/analysis/start", json={})
        assert answer.status_code == 503, answer.get_data(as_text=True)[:300]
        assert answer.headers["Retry-After"] == "5" and "Redis" in answer.get_json()["error"]
    finally:
        runtime.redis = working
    assert client.post("/api/analysis/start", json={}).status_code == 202


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


def test_metrics_for_operators_behind_the_token(make_config, db, redis, tmp_path):
    """/metrics in Prometheus's text format: refused without the token, and with it the README's metric names, the
    requests just made counted per route pattern, and the library's figures."""
    from prometheus_client.parser import text_string_to_metric_families

    from app import serve
    from tests.seeded_library import seed_groups

    cfg = make_config(ADMIN_PASSWORD="correct horse battery", API_TOKEN="metrics-token-123456",
                      MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"))
    tracks = seed_groups(db, redis, cfg, tmp_path / "music")
    app = serve(cfg)
    try:
        client = app.test_client()
        bearer = {"Authorization": "Bearer metrics-token-123456"}
        from tests.conftest import wait_for

        holder = app.extensions["audiomuse"].index
        # the caches are built one after another once the index is in: their sizes are counted when all are built
        wait_for(lambda: holder.size == len(tracks) and set(holder.cache_states().values()) == {"ready"},
                 what="the index and its caches")
        assert client.get("/metrics").status_code == 401
        db.execute("""INSERT INTO task_status (task_id, task_type, status, started_at, finished_at)
                      VALUES ('metrics-1', 'metrics_drill', 'SUCCESS', now() - interval '3 seconds', now())""")
        for track in tracks[:3]:
            assert client.get(f"/api/similar_tracks?item_id={track.item_id}&n=3", headers=bearer).status_code == 200
        answer = client.get("/metrics", headers=bearer)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
        families = list(text_string_to_metric_families(answer.get_data(as_text=True)))
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in families for s in family.samples}
        assert {"audiomuse_http_requests", "audiomuse_http_request_seconds", "audiomuse_tasks",
                "audiomuse_task_seconds", "audiomuse_queue_length", "audiomuse_workers", "audiomuse_tracks_analyzed",
                "audiomuse_index_tracks", "audiomuse_index_age_seconds",
                "audiomuse_cache_bytes"} <= {family.name for family in families}
        assert samples[("audiomuse_tasks_total", (("status", "SUCCESS"), ("type", "metrics_drill")))] == 1
        assert samples[("audiomuse_task_seconds_total", (("status", "SUCCESS"), ("type", "metrics_drill")))] > 0
        cache_bytes = {dict(labels)["cache"]: v for (name, labels), v in samples.items()
                       if name == "audiomuse_cache_bytes"}
        assert set(cache_bytes) == set(holder.cache_states()) and all(v > 0 for v in cache_bytes.values())
        assert samples[("audiomuse_http_requests_total", (("method", "GET"), ("route", "/api/similar_tracks"),
                                                          ("status", "200")))] == 3
        assert samples[("audiomuse_tracks_analyzed", ())] == len(tracks)
        assert samples[("audiomuse_index_tracks", ())] == len(tracks)
        assert samples[("audiomuse_queue_length", (("queue", "default"),))] == 0
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_log_format_json_writes_one_object_a_line(tmp_path):
    import json

    code = ("import logging; from infra.logs import configure_logging; configure_logging('INFO', 'json'); "
            "log = logging.getLogger('audiomuse.drill'); "
            "log.warning('fetched %s', 'http://nav/rest/ping?u=me&t=secret123&s=salt\\nforged'); "
            "exec('try:\\n 1/0\\nexcept ZeroDivisionError:\\n log.exception(\"it failed\")')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    first, second = (json.loads(line) for line in lines)
    assert set(first) == {"time", "level", "logger", "message"} and first["level"] == "WARNING"
    assert first["logger"] == "audiomuse.drill" and "secret123" not in first["message"]
    assert "\\n" in first["message"] and first["time"].endswith("+00:00")
    assert second["message"] == "it failed" and "ZeroDivisionError" in second["exception"]
