"""Cron expressions of the Schedules page: validation, the next run times in a named time zone, a description in
words, and which run is due now.

Standard 5-field cron (minute hour day-of-month month day-of-week) with ranges, lists, steps (`*/15`), names
(`MON-FRI`, `JAN`) and the macros `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`;
croniter computes the times. Times are wall-clock times of the schedule's time zone, as a person means them:

- on the spring-forward night a time that does not exist runs at the first existing time after it (02:30 → 03:00);
- on the fall-back night a time that occurs twice runs once, at its first occurrence — unless the hour field is a
  wildcard (`0 * * * *`, `*/20 * * * *`): such a schedule means "every so often" and keeps running by the clock.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cron_descriptor import (
    ExpressionDescriptor,
    FormatException,
    MissingFieldException,
    Options,
    WrongArgumentException,
)
from croniter import CroniterError, croniter

__all__ = ["CronError", "DueRun", "describe", "due_run", "next_runs", "normalize", "time_zone"]

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
MAX_LENGTH = 200


class CronError(ValueError):
    """An expression or time zone that cannot be used; `field` names the request field it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def normalize(expression: str) -> str:
    """The expression as stored (trimmed, single spaces, macros lower-case); CronError when it is not a valid
    5-field expression or macro."""
    text = " ".join(str(expression or "").split())
    if not text:
        raise CronError("cron_expr", "a cron expression is required, e.g. '0 3 * * *' (every day at 03:00)")
    if len(text) > MAX_LENGTH:
        raise CronError("cron_expr", f"at most {MAX_LENGTH} characters")
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise CronError("cron_expr", f"{text!r} is not one of {', '.join(MACROS)}")
        return text.lower()
    fields = text.split(" ")
    if len(fields) != 5:
        raise CronError("cron_expr", f"{text!r} has {len(fields)} fields; a cron expression has 5: minute hour "
                                     "day-of-month month day-of-week")
    try:
        croniter(text)
    except (CroniterError, ValueError, KeyError) as exc:
        raise CronError("cron_expr", f"{text!r} is not a valid cron expression: {exc}") from None
    try:  # valid fields can still name no date at all (30 February)
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterError, ValueError) as exc:
        raise CronError("cron_expr", f"{text!r} never fires: no date matches it ({exc})") from None
    return text


def _five_fields(expression: str) -> str:
    return MACROS.get(expression, expression)


def time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone `name`; CronError naming `timezone` otherwise."""
    try:
        return zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CronError("timezone", f"{name!r} is not a known time zone (an IANA name such as UTC or "
                                    "Europe/Rome)") from None


def describe(expression: str) -> str:
    """The expression in words ("At 03:00, Monday through Friday")."""
    options = Options()
    options.use_24hour_time_format = True
    try:
        return str(ExpressionDescriptor(_five_fields(expression), options).get_description())
    except (FormatException, MissingFieldException, WrongArgumentException):
        return expression


def _times(expression: str, zone: zoneinfo.ZoneInfo, after: datetime) -> Iterator[datetime]:
    """The run times after `after` (aware), in `zone`, with the fall-back rule of the module docstring."""
    five = _five_fields(expression)
    by_the_clock = five.split(" ")[1].startswith("*")
    try:
        times = croniter(five, after.astimezone(zone))
    except (CroniterError, ValueError, KeyError) as exc:  # stored before it was checked
        raise CronError("cron_expr", f"{expression!r} is not a valid cron expression: {exc}") from None
    while True:
        try:
            moment: datetime = times.get_next(datetime)
        except (CroniterError, ValueError) as exc:  # a stored expression no date matches
            raise CronError("cron_expr", f"{expression!r} never fires: no date matches it ({exc})") from None
        if not by_the_clock and moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset():
            continue  # the second occurrence of a wall-clock time on the fall-back night
        yield moment


def next_runs(expression: str, zone_name: str, *, after: datetime, count: int = 3) -> list[datetime]:
    """The next `count` run times after `after`, in the schedule's time zone."""
    zone = time_zone(zone_name)
    times = _times(expression, zone, after)
    return [next(times) for _ in range(count)]


@dataclass(frozen=True)
class DueRun:
    due_at: datetime  # the run time being claimed (the latest one not after now), UTC
    missed: int  # earlier run times that did not run and are past the grace period (downtime)
    late: bool  # due_at is further back than the grace period: the scheduler was not running then

    @property
    def catch_up(self) -> bool:
        return self.missed > 0 or self.late


def due_run(expression: str, zone_name: str, *, since: datetime, now: datetime, grace: timedelta,
            max_counted: int = 10_000) -> DueRun | None:
    """The run due now: the latest run time in (since, now], with how many earlier ones were missed (counted up to
    `max_counted`) and whether it is late; None when no run time falls in the window."""
    zone = time_zone(zone_name)
    latest: datetime | None = None
    missed = 0
    for moment in _times(expression, zone, since):
        if moment > now:
            break
        # an earlier run time still inside the grace period was not missed: a pass came a little late
        if latest is not None and now - latest > grace:
            missed += 1
            if missed >= max_counted:  # a long downtime of a frequent schedule: the count is a lower bound
                latest = _last_before(expression, zone, now)
                break
        latest = moment
    if latest is None:
        return None
    due = latest.astimezone(UTC)
    return DueRun(due_at=due, missed=missed, late=now - due > grace)


def _last_before(expression: str, zone: zoneinfo.ZoneInfo, now: datetime) -> datetime:
    try:
        moment: datetime = croniter(_five_fields(expression), now.astimezone(zone)).get_prev(datetime)
    except (CroniterError, ValueError) as exc:
        raise CronError("cron_expr", f"{expression!r} never fires: no date matches it ({exc})") from None
    return moment
