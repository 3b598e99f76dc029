"""Cron expressions: validation, next run times in named time zones (both DST changes), descriptions, and which
run is due after a pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from config import Config
from schedules.cron import CronError, describe, due_run, next_runs, normalize
from tasks.schedules import ScheduleParamsError as ParamsError
from tasks.schedules import schedule_params

ROME = ZoneInfo("Europe/Rome")
GRACE = timedelta(seconds=120)


@pytest.mark.parametrize("text, stored", [("0 3 * * *", "0 3 * * *"),
                                          ("  */15   9-17 * * MON-FRI ", "*/15 9-17 * * MON-FRI"), ("@daily", "@daily"),
                                          ("@HOURLY", "@hourly"), ("0 0 1 JAN *", "0 0 1 JAN *")])
def test_valid_expressions_are_stored_tidy(text, stored):
    assert normalize(text) == stored


@pytest.mark.parametrize("text, says", [("", "required"), ("* * * *", "has 4 fields"), ("0 0 * * * *", "has 6 fields"),
                                        ("61 * * * *", "not a valid cron expression"), ("@reboot", "not one of"),
                                        ("0 25 * * *", "not a valid"), ("x y z a b", "not a valid"),
                                        ("0 0 30 2 *", "never fires"), ("0 0 31 4,6,9,11 *", "never fires")])
def test_invalid_expressions_name_the_field(text, says):
    with pytest.raises(CronError) as caught:
        normalize(text)
    assert caught.value.field == "cron_expr" and says in str(caught.value)


def test_unknown_time_zone():
    with pytest.raises(CronError) as caught:
        next_runs("0 3 * * *", "Mars/Olympus", after=datetime.now(UTC))
    assert caught.value.field == "timezone"


def test_next_runs_steps_names_and_macros():
    start = datetime(2026, 12, 4, 16, 50, tzinfo=UTC)  # a Friday
    assert [t.isoformat() for t in next_runs("*/15 9-17 * * MON-FRI", "UTC", after=start)] == [
        "2026-12-04T17:00:00+00:00", "2026-12-04T17:15:00+00:00", "2026-12-04T17:30:00+00:00"]
    assert [t.isoformat() for t in next_runs("0 9 * * MON-FRI", "UTC", after=start, count=2)] == [
        "2026-12-07T09:00:00+00:00", "2026-12-08T09:00:00+00:00"]  # the weekend is skipped
    assert [t.isoformat() for t in next_runs("@daily", "Europe/Rome", after=start, count=1)] == [
        "2026-12-05T00:00:00+01:00"]


def test_daily_runs_once_a_day_across_both_dst_changes_in_rome():
    spring = next_runs("30 2 * * *", "Europe/Rome", after=datetime(2026, 3, 27, 12, tzinfo=ROME), count=4)
    # 02:30 does not exist on 29 March: that day's run is at 03:00 local, still once
    assert [t.isoformat() for t in spring] == ["2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00",
                                               "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"]
    autumn = next_runs("30 2 * * *", "Europe/Rome", after=datetime(2026, 10, 24, 12, tzinfo=ROME), count=3)
    # 02:30 happens twice on 25 October: one run, at the first
    assert [t.isoformat() for t in autumn] == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00",
                                               "2026-10-27T02:30:00+01:00"]
    utc = [t.astimezone(UTC) for t in autumn]
    assert [t - s for s, t in zip(utc, utc[1:], strict=False)] == [timedelta(hours=25), timedelta(hours=24)]


def test_an_hourly_schedule_keeps_running_by_the_clock_through_the_fall_back_hour():
    runs = next_runs("0 * * * *", "Europe/Rome", after=datetime(2026, 10, 25, 0, 30, tzinfo=ROME), count=4)
    assert [t.astimezone(UTC).hour for t in runs] == [23, 0, 1, 2]  # every real hour, 02:00 twice on the wall
    assert [t.isoformat() for t in runs][1:3] == ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"]


def test_due_run_on_time_late_and_after_downtime():
    since = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    assert due_run("0 3 * * *", "UTC", since=since, now=datetime(2026, 12, 3, 2, 59, tzinfo=UTC), grace=GRACE) is None
    on_time = due_run("0 3 * * *", "UTC", since=since, now=datetime(2026, 12, 3, 3, 0, 20, tzinfo=UTC), grace=GRACE)
    assert on_time is not None and on_time.due_at == datetime(2026, 12, 3, 3, tzinfo=UTC)
    assert (on_time.missed, on_time.late, on_time.catch_up) == (0, False, False)
    late = due_run("0 3 * * *", "UTC", since=since, now=datetime(2026, 12, 3, 9, 0, tzinfo=UTC), grace=GRACE)
    assert late is not None and (late.missed, late.late, late.catch_up) == (0, True, True)
    # five days down: the latest run time is the one due, the four before it are counted as missed
    down = due_run("0 3 * * *", "UTC", since=since, now=datetime(2026, 12, 8, 3, 1, tzinfo=UTC), grace=GRACE)
    assert down is not None and down.due_at == datetime(2026, 12, 8, 3, tzinfo=UTC) and down.missed == 5
    assert down.catch_up
    # a month down for an every-minute schedule: counting stops, the due time is still the latest
    busy = due_run("* * * * *", "UTC", since=since, now=datetime(2027, 1, 3, 0, 0, 30, tzinfo=UTC), grace=GRACE,
                   max_counted=100)
    assert busy is not None and busy.due_at == datetime(2027, 1, 3, 0, 0, tzinfo=UTC) and busy.missed == 100


def test_descriptions():
    assert describe("0 3 * * *") == "At 03:00"
    assert describe("*/15 9-17 * * MON-FRI") == "Every 15 minutes, between 09:00 and 17:59, Monday through Friday"
    assert describe("@weekly") == "At 00:00, only on Sunday"


def check(task_type, params):
    config = Config.from_mapping({"TOP_N_MOODS": 5, "SONIC_FINGERPRINT_NEIGHBORS": 50, "SIMILAR_MAX_N": 500})
    return schedule_params(task_type, params, config)


def test_parameters_are_validated_like_the_matching_api():
    assert check("analysis", {}) == {"num_recent_albums": 0, "top_n_moods": 5, "rebuild_index": False, "fast": None,
                                     "upgrade_fast": False}
    assert check("cleaning", {"dry_run": "yes"}) == {"dry_run": True}
    assert check("map_projection", None) == {"full": False}
    assert check("clustering", {"preset": True}) == {"preset": True}
    assert check("clustering", {"clustering_method": "gmm"}) == {"clustering_method": "gmm"}
    assert check("sonic_fingerprint", {"n": 20}) == {"n": 20, "playlist_name": "Sonic Fingerprint"}
    for task_type, params, field in (("analysis", {"top_n_moods": 0}, "params.top_n_moods"),
                                     ("analysis", {"albums": 3}, "params.albums"),
                                     ("cleaning", {"dry_run": "perhaps"}, "params.dry_run"),
                                     ("clustering", {"clustering_method": "magic"}, "params.clustering_method"),
                                     ("clustering", {"preset": True, "num_clusters_min": 3}, "params.num_clusters_min"),
                                     ("sonic_fingerprint", {"n": 0}, "params.n"),
                                     ("analysis", [1], "params")):
        with pytest.raises(ParamsError) as caught:
            check(task_type, params)
        assert caught.value.field == field, (task_type, params)


def test_a_pass_a_little_late_misses_nothing():
    # every minute; the last claim at 10:00, the next pass at 10:02:01: 10:01 is still within the grace period
    since = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    due = due_run("* * * * *", "UTC", since=since, now=datetime(2026, 12, 3, 10, 2, 1, tzinfo=UTC), grace=GRACE)
    assert due is not None and due.due_at == datetime(2026, 12, 3, 10, 2, tzinfo=UTC)
    assert (due.missed, due.late, due.catch_up) == (0, False, False)


def test_the_start_parameters_read_as_the_routes_always_did():
    """What the analysis and clustering routes accepted before the catalogue stays accepted: a negative album count
    (0 or less: the whole library) and a preset flag given as 1 or 0."""
    assert check("analysis", {"num_recent_albums": -1})["num_recent_albums"] == -1
    assert check("clustering", {"preset": 1}) == {"preset": 1}
    assert check("clustering", {"preset": "0"}) == {"preset": "0"}
    with pytest.raises(ParamsError) as caught:
        check("clustering", {"preset": 2})
    assert caught.value.field == "params.preset"
