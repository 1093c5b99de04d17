"""Cron expressions people type (check schedules, export schedules): parsed into a Celery
crontab with a reason when they are wrong, and the next times they fire."""

from __future__ import annotations

from datetime import datetime, timedelta

from celery.schedules import crontab
from django.utils import timezone

# The five fields in order: crontab's argument and what it accepts, in words.
CRON_FIELDS = (
    ("minute", "0 to 59, * or a list, range or step such as 0,30 or */15"),
    ("hour", "0 to 23, * or a list, range or step such as 6-18 or */2"),
    ("day_of_month", "1 to 31, * or a list, range or step such as 1,15"),
    ("month_of_year", "1 to 12, * or a list, range or step such as 1-6"),
    ("day_of_week", "0 to 6 (0 is Sunday), names such as mon-fri, or *"),
)


def cron_parse(expression: str) -> crontab:
    """A 5-field cron expression (minute hour day-of-month month day-of-week) as a
    Celery crontab. Raises ValueError with a reason."""
    fields = (expression or "").split()
    if len(fields) != 5:
        raise ValueError(
            "Write 5 fields: minute hour day-of-month month day-of-week, e.g. '0 6 * * *'."
        )
    # Each field alone first, so the message names the field that is wrong and its range
    # instead of the parser's "Invalid end range: 61 > 59".
    for value, (name, allowed) in zip(fields, CRON_FIELDS, strict=True):
        try:
            crontab(**{name: value})
        except Exception:  # celery raises ValueError or its own ParseException
            label = name.replace("_", " ").replace("of year", "")
            raise ValueError(
                f"The {label.strip()} field {value!r} is not valid: use {allowed}."
            ) from None
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        return crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            day_of_week=day_of_week,
        )
    except Exception as exc:  # celery raises ValueError or its own ParseException
        raise ValueError(f"The schedule {expression!r} is not a valid cron expression.") from exc


def cron_next_runs(expression: str, *, count: int = 3, after: datetime | None = None):
    """The next `count` times (UTC) the cron expression fires, for people to check their
    expression by."""
    schedule = cron_parse(expression)
    moment = (after or timezone.now()).replace(second=0, microsecond=0)
    times: list[datetime] = []
    while len(times) < count:
        moment = _next_fire(schedule, moment)
        times.append(moment)
    return times


def cron_fires_at(schedule: crontab, moment: datetime, *, any_minute: bool = False) -> bool:
    """Whether the schedule fires at `moment` (a minute), or in its hour at all."""
    return (
        (any_minute or moment.minute in schedule.minute)
        and moment.hour in schedule.hour
        and moment.day in schedule.day_of_month
        and moment.month in schedule.month_of_year
        and (moment.isoweekday() % 7) in schedule.day_of_week  # crontab: Sunday is 0
    )


def _next_fire(schedule: crontab, after: datetime) -> datetime:
    """The first time after `after` (a minute boundary) that the schedule fires."""
    candidate = after + timedelta(minutes=1)
    # Skip whole hours that cannot match, then walk the minutes of a matching hour.
    for _ in range(366 * 24 * 60):
        if cron_fires_at(schedule, candidate):
            return candidate
        if not cron_fires_at(schedule, candidate.replace(minute=0), any_minute=True):
            candidate = (candidate + timedelta(hours=1)).replace(minute=0)
        else:
            candidate += timedelta(minutes=1)
    raise ValueError("The cron expression never fires.")
