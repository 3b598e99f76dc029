"""Fault drills on the suite's own PostgreSQL and Redis: every backend terminated (what a restart does to the
pooled connections) during and between runs, a job whose end was never written, Redis gone and back, garbage on
the reload channel, and index reloads under load."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import psycopg2
import pytest

from app import serve
from db import task_status as store
from tasks.hostid import host_identity
from tasks.reconcile import ENDED_JOB_GRACE_SECONDS, reconcile_dead_workers
from tests.analysis_runs import start_analysis_workers
from tests.conftest import wait_for
from tests.integration import jobs
from tests.library import make_library


def terminate_every_backend(database_url: str) -> int:
    """What a PostgreSQL restart does to every open connection; returns how many were cut."""
    admin = psycopg2.connect(database_url)
    try:
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("""SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                            WHERE datname = current_database() AND pid <> pg_backend_pid()""")
            return int(cur.fetchone()[0])
    finally:
        admin.close()


def test_pooled_connections_cut_by_the_server_are_replaced(config, db, client, services):
    for _ in range(3):
        db.fetch_one("SELECT 1")
    with db.transaction() as cur:
        cur.execute("SELECT 1")
    assert terminate_every_backend(services["database_url"]) >= 1
    assert db.fetch_one("SELECT 42 AS n") == {"n": 42}
    with db.transaction() as cur:  # a multi-statement transaction after the cut: a live connection too
        cur.execute("SELECT 1")
        cur.execute("SELECT 2 AS n")
        assert cur.fetchone()["n"] == 2
    terminate_every_backend(services["database_url"])
    answers = [client.get("/api/tracks").status_code for _ in range(12)]
    assert answers == [200] * 12


@pytest.mark.drill
def test_analysis_survives_backends_terminated_during_and_between_runs(make_config, db, worker_processes, services,
                                                                      drill_summary, tmp_path):
    music = tmp_path / "music"
    make_library(music, albums=3, tracks_per_album=3, seconds=10)
    env = {"MUSIC_DIR": str(music), "PLAYLIST_DIR": str(tmp_path / "playlists"), "AUDIO_LOAD_TIMEOUT": "60",
           "MAX_QUEUED_ANALYSIS_JOBS": "2"}
    app = serve(make_config(**env))
    client = app.test_client()
    try:
        start_analysis_workers(worker_processes, env)
        first = client.post("/api/analysis/start", json={})
        assert first.status_code == 202
        first_id = first.get_json()["task_id"]
        wait_for(lambda: store.get_task(db, first_id)["status"] == "PROGRESS", timeout=60, what="the run to start")
        cut = 0
        for _ in range(4):  # during the run
            time.sleep(0.8)
            cut += terminate_every_backend(services["database_url"])
        ended = wait_for(lambda: (row := store.get_task(db, first_id)) and row["finished_at"] and row, timeout=240,
                         what="the first run to end")
        assert ended["status"] in ("SUCCESS", "FAILURE") and ended["message"]

        terminate_every_backend(services["database_url"])  # between runs
        second = client.post("/api/analysis/start", json={})
        assert second.status_code == 202, second.get_json()
        second_id = second.get_json()["task_id"]
        done = wait_for(lambda: (row := store.get_task(db, second_id)) and row["finished_at"] and row, timeout=240,
                        what="the second run to end")
        assert done["status"] == "SUCCESS", done
        # the follow-up jobs (the map update, the playlist matching) of the run that analyzed the tracks end too (a
        # second run with nothing left to do starts none)
        follow_ups = [(run["result"] or {}).get(key) for run in (ended, done)
                      for key in ("map_task_id", "playlist_matching_task_id")]
        assert any(follow_ups), (ended["result"], done["result"])
        for follow_up in filter(None, follow_ups):
            wait_for(lambda: (row := store.get_task(db, follow_up)) and row["finished_at"], timeout=120,  # noqa: B023
                     what=f"the follow-up job {follow_up}")
        assert db.fetch_all("SELECT task_id, status FROM task_status WHERE finished_at IS NULL") == []
        counts = db.fetch_one("""SELECT count(*) AS tracks, count(e.item_id) AS embedded FROM tracks t
                                   LEFT JOIN embeddings e ON e.item_id = t.item_id""")
        assert counts == {"tracks": 9, "embedded": 9}  # no half track rows
        assert client.get("/api/analysis/summary").get_json()["failures"] == []
        drill_summary(f"postgresql restart (every backend cut) ×4 during an analysis, ×1 between runs — {cut} "
                      f"connections cut, {counts['embedded']}/9 analysed, 0 half rows, every task ended")
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_a_row_whose_job_ended_without_writing_its_end_is_failed(config, db, redis, run_worker_burst):
    """The end of a job was lost (PostgreSQL away when it finished): its worker lives on, but RQ knows the job
    ended; the reconciler fails the row and the one-run-per-type guard is free again."""
    task_id = jobs.start(jobs.count_to, {"n": 1}, config=config)
    run_worker_burst()
    db.execute("""UPDATE task_status SET status = 'PROGRESS', finished_at = NULL, worker_name = 'alive',
                         worker_host = %s, worker_pid = %s, worker_proc_started = NULL,
                         heartbeat_at = now() - make_interval(secs => %s) WHERE task_id = %s""",
               (host_identity(), os.getpid(), ENDED_JOB_GRACE_SECONDS + 5, task_id))
    assert reconcile_dead_workers(db, redis, dead_after_seconds=3600) == [task_id]
    row = store.get_task(db, task_id)
    assert row["status"] == "FAILURE" and "never recorded" in row["error"]
    jobs.start(jobs.count_to, {"n": 1}, config=config)  # the guard is released


def test_a_live_job_is_left_alone_by_the_ended_job_check(config, db, redis, worker_processes):
    task_id = jobs.start(jobs.count_to, {"n": 10000, "pause": 0.05}, config=config)
    worker_processes()
    wait_for(lambda: store.get_task(db, task_id)["status"] == "PROGRESS", what="the task to run")
    db.execute("UPDATE task_status SET heartbeat_at = now() - interval '10 minutes' WHERE task_id = %s", (task_id,))
    assert reconcile_dead_workers(db, redis, dead_after_seconds=3600) == []
    assert store.get_task(db, task_id)["status"] == "PROGRESS"


def _publish_until(redis, channel: str, payload: str, done, what: str) -> None:
    """Publish until `done()`: the listener may be between two subscriptions when a message goes out."""
    for _ in range(40):
        redis.publish(channel, payload)
        try:
            wait_for(done, timeout=1, what=what)
            return
        except AssertionError:
            continue
    raise AssertionError(f"timed out waiting for {what}")


def _store_index(db, config, n: int) -> None:
    import numpy as np

    from voyager_manager import build_index, store_index

    item_ids = [f"t{i}" for i in range(n)]
    store_index(db, config.INDEX_NAME, build_index(item_ids, np.eye(n, dtype=np.float32)), item_ids, model="test")


def test_the_reload_listener_survives_garbage_and_lost_redis_connections(config, db, redis, app):
    holder = app.extensions["audiomuse"].index
    _store_index(db, config, 3)
    _publish_until(redis, config.INDEX_RELOAD_CHANNEL, config.INDEX_NAME, lambda: holder.size == 3, "a first reload")
    redis.publish(config.INDEX_RELOAD_CHANNEL, b"\xff\xfe not text")  # killed the listener thread before
    redis.publish(config.INDEX_RELOAD_CHANNEL, "music_library:no-such-cache")
    _store_index(db, config, 4)
    _publish_until(redis, config.INDEX_RELOAD_CHANNEL, config.INDEX_NAME, lambda: holder.size == 4,
                   "a reload after garbage")
    assert any(t.name == "index-reload" for t in threading.enumerate())
    # Redis drops every client connection (as a restart does); the listener comes back and catches up
    _store_index(db, config, 5)
    redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    wait_for(lambda: holder.size == 5, timeout=20, what="the reload the listener does when it subscribes again")
    _store_index(db, config, 6)
    _publish_until(redis, config.INDEX_RELOAD_CHANNEL, config.INDEX_NAME, lambda: holder.size == 6,
                   "a reload after the listener came back")


def test_a_hung_redis_does_not_hold_a_web_thread(make_config):
    """A Redis that accepts connections and never answers: /api/health answers 503 within the timeout."""
    import socket

    from app import create_app

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    accepted = []
    threading.Thread(target=lambda: accepted.extend(silent.accept() for _ in range(8)), daemon=True).start()
    app = create_app(make_config(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
                                 REDIS_TIMEOUT_SECONDS=1))
    answers = []
    request = threading.Thread(target=lambda: answers.append(app.test_client().get("/api/health")), daemon=True)
    started = time.monotonic()
    request.start()
    request.join(20)
    try:
        assert not request.is_alive(), "the request is still waiting for Redis"
        assert time.monotonic() - started < 10
        body = answers[0].get_json()
        assert answers[0].status_code == 503 and body["redis"]["ok"] is False and body["database"]["ok"] is True
    finally:
        silent.close()


def test_similar_songs_under_load_while_the_index_is_rebuilt_and_reloaded_twice(make_config, db, redis, tmp_path):
    """8 clients ask for similar songs over real HTTP while the index is replaced and reloaded twice: no error,
    and every answer is the old index's or the new one's."""
    import numpy as np
    from werkzeug.serving import make_server

    from audio.musicnn import MODEL_NAME
    from tests.seeded_library import seed_arc_library
    from voyager_manager import rebuild_from_embeddings

    cfg = make_config(MUSIC_DIR=str(tmp_path / "music"), PLAYLIST_DIR=str(tmp_path / "playlists"))
    tracks = seed_arc_library(db, redis, cfg, tmp_path / "music")
    app = serve(cfg)
    holder = app.extensions["audiomuse"].index
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{http.server_port}/api/similar_tracks?item_id={tracks[0].item_id}&n=4"
    import requests

    def answer() -> tuple[str, ...]:
        response = requests.get(url, timeout=10)
        response.raise_for_status()
        return tuple(t["item_id"] for t in response.json())

    def layout(order) -> None:
        """Place the tracks on the arc in `order` and rebuild the index (without announcing it)."""
        for position, track in enumerate(order):
            angle = position * np.pi / 2 / (len(order) - 1)
            vector = np.zeros(16, dtype="<f4")
            vector[0], vector[1] = np.cos(angle), np.sin(angle)
            db.execute("UPDATE embeddings SET vector = %s WHERE item_id = %s", (vector.tobytes(), track.item_id))
        rebuild_from_embeddings(db, redis, name=cfg.INDEX_NAME, model=MODEL_NAME, channel="unused-channel", m=16,
                                ef_construction=100)

    shuffled = [tracks[0], *reversed(tracks[1:])]
    try:
        old = answer()
        layout(shuffled)
        assert holder.reload()
        new = answer()
        assert old != new
        layout(tracks)
        assert holder.reload() and answer() == old

        answers: list[tuple[str, ...]] = []
        errors: list[str] = []
        stop = threading.Event()

        def client_loop() -> None:
            while not stop.is_set():
                try:
                    answers.append(answer())
                except Exception as exc:  # every failure counts
                    errors.append(f"{type(exc).__name__}: {exc}")

        clients = [threading.Thread(target=client_loop) for _ in range(8)]
        for thread in clients:
            thread.start()
        for order, expected in ((shuffled, new), (tracks, old), (shuffled, new), (tracks, old)):
            time.sleep(0.3)
            layout(order)
            redis.publish(cfg.INDEX_RELOAD_CHANNEL, cfg.INDEX_NAME)
            wait_for(lambda e=expected: answer() == e, timeout=20, what="the reload to take effect")
        time.sleep(0.3)
        stop.set()
        for thread in clients:
            thread.join(20)
        assert errors == []
        assert len(answers) > 50 and set(answers) <= {old, new}, set(answers)
    finally:
        http.shutdown()
        app.extensions["audiomuse"].stop_background.set()


@pytest.mark.drill
def test_drill_redis_restarted_twice_during_an_analysis(make_config, db, worker_processes, drill_summary, tmp_path):
    """Issue 32: the Redis AudioMuse embeds (append-only file, snapshots) stopped and started again twice while an
    analysis runs, 3 s down each time: the run completes with every track analysed exactly once and the workers live
    on. A trigger counts the writes of each track's embedding."""
    from infra.embedded import EmbeddedRedis

    music = tmp_path / "music"
    make_library(music, albums=4, tracks_per_album=3, seconds=10)
    server = EmbeddedRedis(tmp_path / "redis-data")
    app = None
    workers: list[subprocess.Popen[bytes]] = []
    try:
        url = server.start()
        env = {"MUSIC_DIR": str(music), "PLAYLIST_DIR": str(tmp_path / "playlists"), "AUDIO_LOAD_TIMEOUT": "60",
               "MAX_QUEUED_ANALYSIS_JOBS": "2", "REDIS_URL": url}
        db.execute("CREATE TABLE drill_embedding_writes (item_id text NOT NULL)")
        db.execute("""CREATE FUNCTION drill_count_write() RETURNS trigger LANGUAGE plpgsql AS $$
                      BEGIN INSERT INTO drill_embedding_writes VALUES (NEW.item_id); RETURN NEW; END $$""")
        db.execute("""CREATE TRIGGER drill_count_write AFTER INSERT OR UPDATE ON embeddings
                      FOR EACH ROW EXECUTE FUNCTION drill_count_write()""")
        app = serve(make_config(**env))
        client = app.test_client()
        workers += start_analysis_workers(worker_processes, env)
        started = client.post("/api/analysis/start", json={})
        assert started.status_code == 202, started.get_json()
        task_id = started.get_json()["task_id"]

        def restart_when(condition, what: str, *, crash: bool) -> None:  # type: ignore[no-untyped-def]
            wait_for(condition, timeout=120, what=what)
            assert store.get_task(db, task_id)["finished_at"] is None, "the run ended before Redis went away"
            if crash:  # kill -9: only what the append-only file had synced (once a second) survives
                assert server.process is not None
                os.killpg(server.process.pid, signal.SIGKILL)
                server.process.wait()
                server.process = None
            else:
                server.stop()
            time.sleep(3)
            server.start(same_address=True)

        analysed = lambda: db.fetch_one("SELECT count(*) AS n FROM embeddings")["n"]  # noqa: E731
        restart_when(lambda: store.get_task(db, task_id)["status"] == "PROGRESS", "the run to start", crash=False)
        restart_when(lambda: analysed() >= 6, "half the tracks", crash=True)
        ended = wait_for(lambda: (row := store.get_task(db, task_id)) and row["finished_at"] and row, timeout=240,
                         what="the run to end")
        assert ended["status"] == "SUCCESS", ended
        result = ended["result"]
        assert (result["tracks_analyzed"], result["tracks_failed"]) == (12, 0), result
        writes = db.fetch_all("SELECT item_id, count(*) AS n FROM drill_embedding_writes GROUP BY item_id")
        assert len(writes) == 12 and {row["n"] for row in writes} == {1}, writes
        assert db.fetch_one("SELECT count(*) AS n FROM tracks WHERE analyzed_at IS NOT NULL")["n"] == 12
        assert all(worker.poll() is None for worker in workers)
        health = wait_for(lambda: (body := client.get("/api/health").get_json())["workers"]["count"] == 2 and body,
                          timeout=30, what="both workers in /api/health")
        assert health["redis"]["ok"]
        drill_summary(f"redis restart ×2 during analysis — {len(writes)}/12 analysed once each, 0 lost, "
                      f"{sum(worker.poll() is None for worker in workers)}/2 workers alive")
    finally:
        if app is not None:
            app.extensions["audiomuse"].stop_background.set()
        for worker in workers:  # before their Redis goes: they would wait for it to come back
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        server.stop()
        db.execute("DROP TRIGGER IF EXISTS drill_count_write ON embeddings")
        db.execute("DROP FUNCTION IF EXISTS drill_count_write()")
        db.execute("DROP TABLE IF EXISTS drill_embedding_writes")


def _bare_redis(port: int, data_dir) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    """A redis-server that keeps nothing across a restart (what an external Redis without persistence does)."""
    from infra.embedded import redis_server_binary

    server = subprocess.Popen([str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(data_dir)], stdout=subprocess.DEVNULL)
    wait_for(lambda: _answers_ping(port), timeout=10, what="redis-server")
    return server


def _answers_ping(port: int) -> bool:
    import redis as redis_lib

    try:
        return bool(redis_lib.Redis(port=port, socket_connect_timeout=0.5).ping())
    except redis_lib.ConnectionError:
        return False


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_worker_connection_waits_for_a_restarted_redis(make_config, tmp_path):
    """RQ's own writes (a job's end, heartbeats) raised on a lost connection and ended the worker mid-analysis: the
    worker's client retries connection errors for WORKER_REDIS_OUTAGE_SECONDS."""
    import redis as redis_lib

    from infra.connections import get_redis

    port = _free_port()
    first = _bare_redis(port, tmp_path)
    config = make_config(REDIS_URL=f"redis://127.0.0.1:{port}/0", REDIS_TIMEOUT_SECONDS=1)
    worker_side = get_redis(config, outage_seconds=30)
    assert worker_side.ping()
    first.kill()
    first.wait()
    servers: list[subprocess.Popen[bytes]] = []
    try:
        with pytest.raises(redis_lib.ConnectionError):
            get_redis(config, outage_seconds=0.5).set("lost", "yes")  # a short budget gives up
        restart = threading.Timer(2.0, lambda: servers.append(_bare_redis(port, tmp_path)))
        restart.start()
        worker_side.set("kept", "yes")  # waits for the restart instead of raising
        restart.join()
        assert servers and worker_side.get("kept") == b"yes"
    finally:
        for server in servers:
            server.kill()


def test_a_wrong_redis_password_is_not_waited_out_as_an_outage(make_config, tmp_path, caplog):
    import redis as redis_lib

    from infra.connections import get_redis
    from infra.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path)
    url = server.start()
    try:
        wrong = url.replace(server.password, "not-the-password")
        with pytest.raises(redis_lib.AuthenticationError):
            get_redis(make_config(REDIS_URL=wrong), outage_seconds=60).ping()
        assert "unreachable" not in caplog.text  # refused at once, not retried for a minute
    finally:
        server.stop()


def test_workers_register_again_after_redis_restarts_without_its_data(make_config, worker_processes, tmp_path):
    """/api/health counted 1 worker while 4 ran after an external Redis restarted: RQ registers a worker only when
    it starts, so each worker checks it is still registered."""
    port = _free_port()
    servers = [_bare_redis(port, tmp_path)]
    url = f"redis://127.0.0.1:{port}/0"
    app = serve(make_config(REDIS_URL=url))
    client = app.test_client()
    workers: list[subprocess.Popen[bytes]] = []
    try:
        workers += [worker_processes("--queues", queue, env={"REDIS_URL": url}) for queue in ("high", "default")]
        workers_counted = lambda: client.get("/api/health").get_json()["workers"]["count"]  # noqa: E731
        wait_for(lambda: workers_counted() == 2, timeout=60, what="both workers in /api/health")
        servers[0].kill()
        servers[0].wait()
        servers.append(_bare_redis(port, tmp_path))
        wait_for(lambda: workers_counted() == 2, timeout=60, what="both workers registered again")
        assert all(worker.poll() is None for worker in workers)
    finally:
        app.extensions["audiomuse"].stop_background.set()
        for worker in workers:  # before their Redis goes: they would wait for it to come back
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        for server in servers:
            server.kill()


@pytest.mark.drill
def test_drill_postgresql_restarted_twice_during_an_analysis(make_config, worker_processes, drill_summary, tmp_path):
    """A private PostgreSQL (the embedded one AudioMuse starts) stopped and started again twice while analysis runs,
    3 s down each time. A run it cuts short ends with its reason (none is left open); runs started again finish the
    work: every track analysed exactly once (a trigger counts each embedding's writes), no half rows, and the workers
    live on."""
    from db.migrate import apply_migrations
    from db.pool import Database
    from infra.embedded import SETTINGS, EmbeddedPostgres

    postgres = EmbeddedPostgres(tmp_path / "pg-data")
    url = postgres.start()
    apply_migrations(url)
    db = Database(url, max_connections=2)
    db.execute("CREATE TABLE drill_embedding_writes (item_id text NOT NULL)")
    db.execute("""CREATE FUNCTION drill_count_write() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN INSERT INTO drill_embedding_writes VALUES (NEW.item_id); RETURN NEW; END $$""")
    db.execute("""CREATE TRIGGER drill_count_write AFTER INSERT OR UPDATE ON embeddings
                  FOR EACH ROW EXECUTE FUNCTION drill_count_write()""")
    music = tmp_path / "music"
    make_library(music, albums=4, tracks_per_album=3, seconds=10)
    env = {"MUSIC_DIR": str(music), "PLAYLIST_DIR": str(tmp_path / "playlists"), "AUDIO_LOAD_TIMEOUT": "60",
           "MAX_QUEUED_ANALYSIS_JOBS": "2", "DATABASE_URL": url}
    app = serve(make_config(**env))
    client = app.test_client()
    workers = start_analysis_workers(worker_processes, env)

    def running_run() -> dict | None:  # type: ignore[type-arg]
        return db.fetch_one("""SELECT task_id FROM task_status WHERE task_type = 'main_analysis'
                                AND status = 'PROGRESS' AND finished_at IS NULL""")

    restarts: list[str] = []

    def restart_twice() -> None:
        for when in (lambda: running_run(), lambda: running_run() and db.fetch_one(
                "SELECT count(*) AS n FROM embeddings")["n"] >= 6):
            while not when():
                time.sleep(0.05)
            postgres.stop()
            time.sleep(3)
            postgres.start()
            restarts.append("during a run")

    restarter = threading.Thread(target=restart_twice, daemon=True)
    restarter.start()
    runs: list[dict] = []  # type: ignore[type-arg]
    try:
        analysed = lambda: _quietly(lambda: db.fetch_one("SELECT count(*) AS n FROM embeddings")["n"])  # noqa: E731
        while len(runs) < 5 and (restarter.is_alive() or analysed() != 12):
            started = wait_for(lambda: _post_quietly(client, "/api/analysis/start"), timeout=60, what="a run start")
            runs.append(wait_for(lambda: _ended_quietly(db, started), timeout=240,  # noqa: B023
                                 what="the run to end"))
        restarter.join(5)
        assert restarts == ["during a run"] * 2 and runs[-1]["status"] == "SUCCESS", (restarts, runs)
        assert all(run["message"] for run in runs)
        wait_for(lambda: _quietly(lambda: db.fetch_all("SELECT 1 FROM task_status WHERE finished_at IS NULL")) == [],
                 timeout=120, what="every task (the follow-up jobs too) to end")
        counts = db.fetch_one("""SELECT count(*) AS tracks, count(e.item_id) AS embedded FROM tracks t
                                   LEFT JOIN embeddings e ON e.item_id = t.item_id""")
        assert counts == {"tracks": 12, "embedded": 12}, (counts, [(r["status"], r["message"], r["result"])
                                                                  for r in runs])
        writes = db.fetch_all("SELECT item_id, count(*) AS n FROM drill_embedding_writes GROUP BY item_id")
        assert len(writes) == 12 and {row["n"] for row in writes} == {1}, writes
        assert all(worker.poll() is None for worker in workers)
        # the embedded server's own settings (infra.embedded.SETTINGS) from its first start and after each restart
        assert _quietly(lambda: db.fetch_one("SHOW shared_buffers")) == {"shared_buffers": SETTINGS["shared_buffers"]}
        outcomes = ", ".join(f"{run['status']} ({(run['result'] or {}).get('tracks_analyzed', 0)} analysed, "
                             f"albums failed: {(run['result'] or {}).get('albums_failed', 0)})" for run in runs)
        drill_summary(f"postgresql restart ×2 during analysis — runs: {outcomes}; 12/12 analysed once each, "
                      "0 half rows, every task ended, 2/2 workers alive")
    finally:
        app.extensions["audiomuse"].stop_background.set()
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
        db.close()
        postgres.stop()


def _quietly(read):  # type: ignore[no-untyped-def]
    """A read that may meet PostgreSQL restarting: None then."""
    try:
        return read()
    except psycopg2.OperationalError:
        return None


def _post_quietly(client, path: str) -> str | None:  # type: ignore[no-untyped-def]
    answer = client.post(path, json={})
    return answer.get_json()["task_id"] if answer.status_code == 202 else None


def _ended_quietly(db, task_id: str):  # type: ignore[no-untyped-def]
    row = _quietly(lambda: store.get_task(db, task_id))
    return row if row and row["finished_at"] else None
