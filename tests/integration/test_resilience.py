"""Fault drills on the suite's own PostgreSQL and Redis: every backend terminated (what a restart does to the
pooled connections) during and between runs, a job whose end was never written, Redis gone and back, garbage on
the reload channel, and index reloads under load."""

from __future__ import annotations

import os
import time

import psycopg2

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


def test_analysis_survives_backends_terminated_during_and_between_runs(make_config, db, worker_processes, services,
                                                                      tmp_path):
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
        for _ in range(4):  # during the run
            time.sleep(0.8)
            terminate_every_backend(services["database_url"])
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
        assert db.fetch_all("SELECT task_id, status FROM task_status WHERE finished_at IS NULL") == []
        counts = db.fetch_one("""SELECT count(*) AS tracks, count(e.item_id) AS embedded FROM tracks t
                                   LEFT JOIN embeddings e ON e.item_id = t.item_id""")
        assert counts == {"tracks": 9, "embedded": 9}  # no half track rows
        assert client.get("/api/analysis/summary").get_json()["failures"] == []
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
