"""Periodic tasks people schedule (scheduled exports, syncs): one django-celery-beat task
per schedule, kept in step with its cron and time zone."""

from __future__ import annotations

import json

from django.db.models import Q
from django_celery_beat.models import CrontabSchedule, PeriodicTask


def periodic_task_keep(
    *,
    name: str,
    active: bool,
    cron: str,
    timezone: str,
    task: str,
    kwargs: dict,
    description: str,
    current_id: int | None,
) -> PeriodicTask | None:
    """Keep the beat task `name` (and the one `current_id` names): firing `task` with
    `kwargs` on `cron` in `timezone` while `active`, gone otherwise. Idempotent. Returns
    the task, or None when there is none; the caller records it on its row."""
    if not active:
        PeriodicTask.objects.filter(Q(name=name) | Q(pk=current_id)).delete()
        return None
    minute, hour, day_of_month, month_of_year, day_of_week = cron.split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=timezone,
    )
    periodic, _ = PeriodicTask.objects.update_or_create(
        name=name,
        defaults={
            "task": task,
            "crontab": crontab,
            "interval": None,
            "kwargs": json.dumps(kwargs),
            "enabled": True,
            "description": description,
        },
    )
    return periodic
