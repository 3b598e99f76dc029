"""Scheduled tasks with real PostgreSQL, Redis and RQ: the /api/cron CRUD and its errors, each due run started once
by racing scheduler processes, skip when busy, one catch-up after downtime (or a recorded miss), run now, and the
scheduler thread of a real worker starting a real task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from db import schedules as schedule_store
from db import task_status as store
from tasks.catalog import ANALYSIS
from tasks.queues import start_main_task
from tasks.schedules import run_due
from tests.conftest import REPO_ROOT, wait_for

NIGHTLY = {"name": "Nightly analysis", "task_type": "analysis", "cron_expr": "0 3 * * *", "timezone": "Europe/Rome",
           "enabled": True, "params": {"num_recent_albums": 0}}


def make(client: Any, **changes: Any) -> dict[str, Any]:
    response = client.post("/api/cron", json={**NIGHTLY, **changes})
    assert response.status_code in (200, 201), response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def backdate(db: Any, schedule_id: int, moment: datetime) -> None:
    """As if the schedule had been saved at `moment` (its runs are counted from then)."""
    db.execute("UPDATE schedules SET updated_at = %s, created_at = %s WHERE schedule_id = %s",
               (moment, moment, schedule_id))


def runs_of(db: Any, schedule_id: int) -> list[dict[str, Any]]:
    return schedule_store.recent_runs(db, schedule_id, limit=100)


def test_crud_and_errors_that_name_the_field(client, db):
    created = client.post("/api/cron", json=NIGHTLY)
    assert created.status_code == 201
    body = created.get_json()
    assert body["description"] == "At 03:00" and body["task_label"] == "Analysis"
    assert len(body["next_runs"]) == 3 and all(t.endswith(("+01:00", "+02:00")) for t in body["next_runs"])
    assert body["params"] == {"num_recent_albums": 0, "top_n_moods": 5, "rebuild_index": False, "fast": None,
                              "upgrade_fast": False}  # defaults filled in
    again = client.post("/api/cron", json={**NIGHTLY, "cron_expr": "0 4 * * MON-FRI"})  # same name: an update
    assert again.status_code == 200 and again.get_json()["schedule_id"] == body["schedule_id"]
    assert again.get_json()["description"] == "At 04:00, Monday through Friday"

    for change, field in (({"cron_expr": "61 * * * *"}, "cron_expr"), ({"cron_expr": "0 0 * * * *"}, "cron_expr"),
                          ({"timezone": "Europe/Atlantis"}, "timezone"), ({"task_type": "reboot"}, "task_type"),
                          ({"params": {"top_n_moods": 99}}, "params.top_n_moods"), ({"name": ""}, "name"),
                          ({"enabled": "sometimes"}, "enabled"), ({"colour": "red"}, "colour"),
                          ({"task_type": "clustering", "params": {"clustering_method": "magic"}},
                           "params.clustering_method")):
        response = client.post("/api/cron", json={**NIGHTLY, "name": "Other", **change})
        error = response.get_json()
        assert response.status_code == 400 and error["parameter"] == field, (change, error)
        if field not in ("cron_expr", "timezone"):  # a valid expression and zone: the next run times come along
            assert len(error["next_runs"]) == 3, error
    listed = client.get("/api/cron").get_json()
    assert [s["name"] for s in listed] == ["Nightly analysis"]

    cleaning = make(client, name="Weekly cleaning", task_type="cleaning", cron_expr="@weekly", params={})
    sid = cleaning["schedule_id"]
    changed = client.put(f"/api/cron/{sid}", json={"enabled": False, "params": {"dry_run": True}})
    assert changed.status_code == 200
    assert (changed.get_json()["enabled"], changed.get_json()["params"]) == (False, {"dry_run": True})
    retyped = client.put(f"/api/cron/{sid}", json={"task_type": "map_projection"})  # the old params do not apply
    assert retyped.status_code == 200 and retyped.get_json()["params"] == {"full": False}
    client.put(f"/api/cron/{sid}", json={"task_type": "cleaning", "params": {"dry_run": True}})
    clash = client.put(f"/api/cron/{sid}", json={"name": "Nightly analysis"})
    assert clash.status_code == 409 and clash.get_json()["parameter"] == "name"
    assert client.put("/api/cron/999999", json={"enabled": True}).status_code == 404
    preview = client.get("/api/cron/preview?cron_expr=*/15+9-17+*+*+MON-FRI&timezone=UTC").get_json()
    assert preview["description"].startswith("Every 15 minutes") and len(preview["next_runs"]) == 3
    bad = client.get("/api/cron/preview?cron_expr=nonsense")
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "cron_expr"
    many = client.post("/api/cron", json=[{**NIGHTLY, "name": "A"}, {**NIGHTLY, "name": "B", "enabled": False}])
    assert many.status_code == 201 and [s["name"] for s in many.get_json()] == ["A", "B"]
    assert client.delete(f"/api/cron/{sid}").status_code == 200
    assert client.delete(f"/api/cron/{sid}").status_code == 404
    assert [s["name"] for s in client.get("/api/cron").get_json()] == ["A", "B", "Nightly analysis"]


def test_racing_scheduler_processes_start_a_due_run_once(client, db, services, tmp_path):
    schedule = make(client, cron_expr="*/5 * * * *", timezone="UTC")
    backdate(db, schedule["schedule_id"], datetime(2026, 12, 3, 10, 1, tzinfo=UTC))
    now = "2026-12-03T10:05:07+00:00"
    env = {**os.environ, "DATABASE_URL": services["database_url"], "REDIS_URL": services["redis_url"],
           "PYTHONPATH": str(REPO_ROOT), "LOG_LEVEL": "WARNING"}
    start_at = time.time() + 3  # every racer is up and connected before the moment
    racers = [subprocess.Popen([sys.executable, "-m", "tasks.schedules", "--once", "--now", now,
                                "--start-at", str(start_at)], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE) for _ in range(4)]
    outputs = []
    for racer in racers:
        out, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err.decode()
        outputs.append(json.loads(out.decode().strip().splitlines()[-1]))
    claimed = [run for output in outputs for run in output]
    assert len(claimed) == 1 and claimed[0]["outcome"] == "started", outputs
    assert claimed[0]["due_at"] == "2026-12-03T10:05:00+00:00" and claimed[0]["kind"] == "scheduled"
    runs = runs_of(db, schedule["schedule_id"])
    assert len(runs) == 1 and runs[0]["task_id"] == claimed[0]["task_id"]
    tasks = db.fetch_all("SELECT task_id FROM task_status WHERE task_type = 'main_analysis'")
    assert [t["task_id"] for t in tasks] == [claimed[0]["task_id"]]
    # the same moment again: nothing more is due
    assert run_due(db, client.application.extensions["audiomuse"].redis,
                   client.application.extensions["audiomuse"].config,
                   now=datetime.fromisoformat(now)) == []


def test_a_run_due_while_its_task_type_runs_is_skipped(client, db, redis, config):
    schedule = make(client, cron_expr="0 * * * *", timezone="UTC")
    backdate(db, schedule["schedule_id"], datetime(2026, 12, 3, 9, 30, tzinfo=UTC))
    running = start_main_task(ANALYSIS, kwargs={}, db=db, connection=redis, config=config)
    done = run_due(db, redis, config, now=datetime(2026, 12, 3, 10, 0, 30, tzinfo=UTC))
    assert [(r["outcome"], r["task_id"]) for r in done] == [("skipped", running)]
    assert "already running" in done[0]["message"]
    row = schedule_store.get_schedule(db, schedule["schedule_id"])
    assert (row["last_outcome"], row["last_task_id"]) == ("skipped", running)
    shown = client.get("/api/cron").get_json()[0]
    assert shown["last_outcome"] == "skipped" and running in shown["last_message"]
    # the next hour the analysis is over: that run starts
    db.execute("UPDATE task_status SET status = 'SUCCESS', finished_at = now() WHERE task_id = %s", (running,))
    later = run_due(db, redis, config, now=datetime(2026, 12, 3, 11, 0, 5, tzinfo=UTC))
    assert [r["outcome"] for r in later] == ["started"] and later[0]["task_id"] != running


def test_an_expression_that_never_fires_is_refused_and_a_stored_one_stops_no_other(client, db, redis, config):
    for answer in (client.post("/api/cron", json={**NIGHTLY, "cron_expr": "0 0 30 2 *"}),
                   client.get("/api/cron/preview", query_string={"cron_expr": "0 0 30 2 *", "timezone": "UTC"})):
        assert answer.status_code == 400 and answer.get_json()["parameter"] == "cron_expr"
        assert "never fires" in answer.get_json()["error"]
    leap = make(client, name="Leap day", cron_expr="0 0 29 2 *", timezone="UTC")  # fires, once in four years
    assert leap["next_runs"][0].startswith("2028-02-29")
    # one stored before the check, first in the list, beside a due one
    bad = make(client, name="A broken one", cron_expr="0 * * * *", timezone="UTC")
    db.execute("UPDATE schedules SET cron_expr = '0 0 30 2 *' WHERE schedule_id = %s", (bad["schedule_id"],))
    good = make(client, name="B hourly", cron_expr="0 * * * *", timezone="UTC", task_type="map_projection",
                params={})
    for schedule in (bad, good):
        backdate(db, schedule["schedule_id"], datetime(2026, 12, 3, 9, 30, tzinfo=UTC))
    listed = client.get("/api/cron")
    assert listed.status_code == 200
    assert {s["name"]: s["next_runs"] == [] for s in listed.get_json()} == {
        "Leap day": False, "A broken one": True, "B hourly": False}
    done = run_due(db, redis, config, now=datetime(2026, 12, 3, 10, 0, 30, tzinfo=UTC))
    assert [(r["schedule"], r["outcome"]) for r in done] == [("B hourly", "started")]


def test_after_downtime_one_catch_up_run_not_one_per_missed_time(client, db, redis, config):
    schedule = make(client, cron_expr="0 * * * *", timezone="UTC", task_type="map_projection", params={})
    sid = schedule["schedule_id"]
    backdate(db, sid, datetime(2026, 12, 3, 4, 30, tzinfo=UTC))
    now = datetime(2026, 12, 3, 9, 40, tzinfo=UTC)  # down since 04:30: 05:00 … 09:00 missed
    done = run_due(db, redis, config, now=now)
    assert [(r["outcome"], r["kind"], r["missed"]) for r in done] == [("started", "catch_up", 4)]
    assert done[0]["due_at"] == "2026-12-03T09:00:00+00:00"
    assert run_due(db, redis, config, now=now + timedelta(minutes=5)) == []
    on_time = run_due(db, redis, config, now=datetime(2026, 12, 3, 10, 0, 10, tzinfo=UTC))
    assert [(r["kind"], r["missed"]) for r in on_time] == [("scheduled", 0)]
    assert len(runs_of(db, sid)) == 2


def test_without_catch_up_missed_runs_are_recorded_as_missed(make_config, db, redis):
    from app import serve

    app = serve(make_config(CRON_CATCH_UP=False))
    try:
        client = app.test_client()
        schedule = make(client, cron_expr="0 * * * *", timezone="UTC", task_type="map_projection", params={})
        backdate(db, schedule["schedule_id"], datetime(2026, 12, 3, 4, 30, tzinfo=UTC))
        cfg = app.extensions["audiomuse"].config
        done = run_due(db, redis, cfg, now=datetime(2026, 12, 3, 9, 40, tzinfo=UTC))
        assert [(r["outcome"], r["task_id"]) for r in done] == [("missed", None)]
        assert "missed 5 run time(s)" in done[0]["message"]
        assert db.fetch_all("SELECT task_id FROM task_status") == []
        shown = client.get("/api/cron").get_json()[0]
        assert shown["last_outcome"] == "missed"
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_run_now_starts_the_task_and_a_busy_type_is_a_409(client, db):
    schedule = make(client, cron_expr="0 3 * * *", task_type="cleaning", params={"dry_run": True})
    started = client.post(f"/api/cron/{schedule['schedule_id']}/run")
    body = started.get_json()
    assert started.status_code == 202 and body["task_type"] == "cleaning" and body["status"] == "PENDING"
    assert store.get_task(db, body["task_id"])["params"] == {"dry_run": True, "preview_task_id": None}
    busy = client.post(f"/api/cron/{schedule['schedule_id']}/run")
    assert busy.status_code == 409 and busy.get_json()["task_id"] == body["task_id"]
    kinds = [(r["kind"], r["outcome"]) for r in client.get(f"/api/cron/{schedule['schedule_id']}/runs")
             .get_json()["runs"]]
    assert sorted(kinds) == [("manual", "skipped"), ("manual", "started")]
    clustering = make(client, name="Clusters", task_type="clustering", params={"preset": True})
    refused = client.post(f"/api/cron/{clustering['schedule_id']}/run")  # nothing analyzed
    assert refused.status_code == 422 and "analyzed tracks" in refused.get_json()["error"]


def test_a_worker_process_runs_the_scheduler_and_the_task(client, db, worker_processes, tmp_path: Path):
    music = tmp_path / "music"
    music.mkdir()
    schedule = make(client, name="Preview cleaning", task_type="cleaning", cron_expr="* * * * *", timezone="UTC",
                    params={"dry_run": True})
    # saved 50 s ago: one minute mark has passed since or comes within seconds, never two
    db.execute("UPDATE schedules SET updated_at = now() - interval '50 seconds' WHERE schedule_id = %s",
               (schedule["schedule_id"],))
    worker_processes("--queues", "high", env={"CRON_POLL_SECONDS": "1", "MUSIC_DIR": str(music)})
    run = wait_for(lambda: next((r for r in runs_of(db, schedule["schedule_id"]) if r["task_id"]), None),
                   timeout=90, what="the worker's scheduler to start the run")
    assert run["outcome"] == "started" and run["kind"] == "scheduled" and run["claimed_by"]
    task = wait_for(lambda: (t := store.get_task(db, run["task_id"])) and t["finished_at"] and t, timeout=60,
                    what="the scheduled cleaning to finish")
    assert task["task_type"] == "cleaning" and task["status"] == "SUCCESS", task
    assert task["result"]["dry_run"] is True and "listed no albums" in task["result"]["refused"]


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


def test_the_scheduled_sonic_fingerprint_playlist_is_made_from_the_play_history(make_config, db, redis,
                                                                               run_worker_burst, tmp_path):
    """The schedule's task type without an API route of its own: the play history of the configured account (a
    documented-shape Jellyfin server), the fingerprint mix on the stored index, the playlist on the server."""
    from app import serve
    from mediaserver import get_media_server
    from tests.cleaning_runs import seed_tracks
    from tests.fakes.jellyfin import API_KEY, FakeJellyfin
    from tests.library import make_library

    make_library(tmp_path / "media" / "Music", albums=3, tracks_per_album=3, seconds=1)
    with FakeJellyfin(tmp_path / "media") as fake:
        settings = {"MEDIASERVER_TYPE": "jellyfin", "JELLYFIN_URL": fake.url, "JELLYFIN_USER_ID": "Alice",
                    "JELLYFIN_TOKEN": API_KEY, "HTTP_RETRIES": 0, "TEMP_DIR": str(tmp_path / "tmp")}
        app = serve(make_config(**settings))
        try:
            config = app.extensions["audiomuse"].config
            server = get_media_server(config)
            tracks = [t for a in server.list_albums() for t in server.album_tracks(a.album_id)]
            seed_tracks(db, redis, config, tracks)
            for t in tracks[:2]:
                fake.set_played("Alice", t.item_id, 5)
            client = app.test_client()
            schedule = make(client, name="Fingerprint", task_type="sonic_fingerprint", cron_expr="0 6 * * *",
                            params={"n": 5, "playlist_name": "Morning"})
            started = client.post(f"/api/cron/{schedule['schedule_id']}/run").get_json()
            assert started["task_type"] == "sonic_fingerprint_playlist"
            run_worker_burst()
            row = store.get_task(db, started["task_id"])
            assert row["status"] == "SUCCESS", row
            assert row["result"]["playlist_name"] == "Morning_instant" and row["result"]["seeds"] == 2
            made = [p for p in fake.playlists.values() if p.name == "Morning_instant"]
            assert len(made) == 1 and len(made[0].item_ids) == row["result"]["tracks"] == 5
            assert {tracks[0].item_id, tracks[1].item_id} <= set(made[0].item_ids)
            # the blocklist saved on the Settings page: no song of Artist 1 (suggested before), still 5 songs
            artist_1 = {t.item_id for t in tracks if t.artist == "Artist 1"}
            assert artist_1 & set(made[0].item_ids)
            assert client.post("/api/settings/exclusions", json={"artists": ["artist 1"]}).status_code == 200
            again = client.post(f"/api/cron/{schedule['schedule_id']}/run").get_json()
            run_worker_burst()
            assert store.get_task(db, again["task_id"])["status"] == "SUCCESS"
            remade = next(p for p in fake.playlists.values() if p.name == "Morning_instant")
            assert len(remade.item_ids) == 5 and not artist_1 & set(remade.item_ids)
        finally:
            app.extensions["audiomuse"].stop_background.set()


def test_every_schedulable_task_type_is_saved_and_started_from_the_catalogue(make_config, db, tmp_path):
    """Each catalogued kind marked schedulable: saved with no parameters (its defaults filled in by the parser its
    start route uses) and started by "run now" as a task of the type the task panel shows."""
    from app import serve
    from tasks.catalog import CATALOG, schedulable
    from tests.style_library import seed_style_library

    app = serve(make_config(MUSIC_DIR=str(tmp_path / "music")))
    client = app.test_client()
    seed_style_library(db, tmp_path / "music", per_style=2)  # clustering needs analyzed tracks to start
    try:
        assert [k.name for k in CATALOG if k.schedulable] == list(schedulable())
        for kind in schedulable().values():
            schedule = make(client, name=f"every {kind.name}", task_type=kind.name, params={})
            assert schedule["task_label"] == kind.title
            started = client.post(f"/api/cron/{schedule['schedule_id']}/run")
            assert started.status_code == 202, (kind.name, started.get_json())
            assert started.get_json()["task_type"] == kind.task_type
            assert store.get_task(db, started.get_json()["task_id"])["task_type"] == kind.task_type
    finally:
        app.extensions["audiomuse"].stop_background.set()


def test_smart_playlist_refresh_and_playlist_matching_run_on_a_schedule(client, db, run_worker_burst):
    """The two task types that became schedulable by a catalogue entry: saved with their parameters checked, started
    by the scheduler when due, and run to the end by a real worker."""
    bad = client.post("/api/cron", json={**NIGHTLY, "name": "Refresh", "task_type": "smart_playlists_refresh",
                                         "params": {"smart_playlist_id": "three"}})
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "params.smart_playlist_id"
    bad = client.post("/api/cron", json={**NIGHTLY, "name": "Match", "task_type": "playlist_matching",
                                         "params": {"since": "yesterday"}})
    assert bad.status_code == 400 and bad.get_json()["parameter"] == "params.since"
    refresh = make(client, name="Refresh", task_type="smart_playlists_refresh", cron_expr="0 4 * * *",
                   timezone="UTC", params={})
    matching = make(client, name="Match", task_type="playlist_matching", cron_expr="0 4 * * *", timezone="UTC",
                    params={"full": True})
    assert refresh["params"] == {"smart_playlist_id": None}
    assert matching["params"] == {"full": True, "since": None}
    for schedule in (refresh, matching):
        backdate(db, schedule["schedule_id"], datetime(2026, 12, 1, 12, tzinfo=UTC))
    done = run_due(db, client.application.extensions["audiomuse"].redis,
                   client.application.extensions["audiomuse"].config, now=datetime(2026, 12, 2, 4, 0, 30, tzinfo=UTC))
    assert sorted((r["schedule"], r["outcome"]) for r in done) == [("Match", "started"), ("Refresh", "started")]
    run_worker_burst()
    for run in done:
        task = store.get_task(db, run["task_id"])
        assert task["status"] == "SUCCESS", task
        assert task["params"].get("reason", "schedule") == "schedule"
    types = {store.get_task(db, r["task_id"])["task_type"] for r in done}
    assert types == {"smart_playlists_refresh", "playlist_matching"}
