"""Cron expressions people type (check schedules, export schedules): parsed into a Celery
crontab with a reason when they are wrong, the next times they fire, and the schedule in
words for the people who read it ("every day at 06:00 UTC")."""

from __future__ import annotations

import re
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


# --- in words -----------------------------------------------------------------------------

DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
DAY_ABBREVIATIONS = {name[:3].lower(): index for index, name in enumerate(DAY_NAMES)}
_NUMBER = re.compile(r"\d{1,2}")
_EVERY = re.compile(r"\*/(\d{1,2})")


def cron_describe(expression: str, *, tz: str = "UTC") -> str:
    """The schedule in words for people who do not read cron: "every hour", "every day at
    06:00 UTC", "every weekday at 07:30 UTC", "on the 1st of every month at 06:00 UTC".
    Shapes it does not know (ranges of hours, months...) come back as the expression
    itself, so nothing is ever described wrongly."""
    fields = (expression or "").split()
    if len(fields) != 5:
        return expression
    minute, hour, day_of_month, month, day_of_week = fields
    if month != "*":
        return expression
    days = _days_in_words(day_of_month, day_of_week)
    if days is None:
        return expression
    times = _times_in_words(minute, hour)
    if times is None:
        return expression
    kind, text = times
    if kind == "clock":  # at given times of the day
        return f"{days} at {text} {tz}"
    if days != "every day":  # "every hour, on weekdays" reads oddly: leave those as cron
        return expression
    return text


def _times_in_words(minute: str, hour: str) -> tuple[str, str] | None:
    """("clock", "06:00 and 18:00") for fixed times, ("every", "every 2 hours") for a
    repetition, or None."""
    if minute == "*" and hour == "*":
        return "every", "every minute"
    step = _EVERY.fullmatch(minute)
    if step and hour == "*":
        n = int(step.group(1))
        if 0 < n < 60:
            return "every", "every minute" if n == 1 else f"every {n} minutes"
        return None
    if not _NUMBER.fullmatch(minute) or int(minute) > 59:
        return None
    at = int(minute)
    past = "" if at == 0 else f" at {at} minute{'s' if at != 1 else ''} past"
    if hour == "*":
        return "every", f"every hour{past}"
    step = _EVERY.fullmatch(hour)
    if step:
        n = int(step.group(1))
        if not 0 < n < 24:
            return None
        every = "every hour" if n == 1 else f"every {n} hours"
        return "every", every + (f", at {at} minute{'s' if at != 1 else ''} past" if at else "")
    hours = hour.split(",")
    if not all(_NUMBER.fullmatch(h) and int(h) < 24 for h in hours):
        return None
    clock = [f"{int(h):02d}:{at:02d}" for h in sorted(set(hours), key=int)]
    return "clock", _and(clock)


def _days_in_words(day_of_month: str, day_of_week: str) -> str | None:
    if day_of_month == "*" and day_of_week == "*":
        return "every day"
    if day_of_month != "*" and day_of_week != "*":
        return None  # cron fires on either: too subtle for one phrase
    if day_of_month != "*":
        days = day_of_month.split(",")
        if not all(_NUMBER.fullmatch(d) and 1 <= int(d) <= 31 for d in days):
            return None
        ordinals = [_ordinal(int(d)) for d in sorted(set(days), key=int)]
        return f"on the {_and(ordinals)} of every month"
    weekdays = _weekdays(day_of_week)
    if weekdays is None:
        return None
    if len(weekdays) == 7:
        return "every day"
    if set(weekdays) == {1, 2, 3, 4, 5}:
        return "every weekday"
    if set(weekdays) == {0, 6}:
        return "every Saturday and Sunday"
    return "every " + _and([DAY_NAMES[day] for day in weekdays])


def _weekdays(field: str) -> list[int] | None:
    """The days of week of a field ("1-5", "mon,thu", "0" for Sunday), sorted from
    Monday; None when it is not a plain list or range."""
    days: set[int] = set()
    for part in field.lower().split(","):
        bounds = part.split("-")
        if len(bounds) > 2:
            return None
        values = [_weekday(bound) for bound in bounds]
        if None in values:
            return None
        if len(values) == 1:
            days.add(values[0])
        else:
            first, last = values
            if first > last:
                return None
            days.update(range(first, last + 1))
    return sorted(days, key=lambda day: (day == 0, day))  # Monday first, Sunday last


def _weekday(value: str) -> int | None:
    if value in DAY_ABBREVIATIONS:
        return DAY_ABBREVIATIONS[value]
    if _NUMBER.fullmatch(value) and int(value) <= 6:  # Celery's crontab knows no 7
        return int(value)
    return None


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
