"""Background work of exports: runs, schedules, reaper, pruner."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from portal.core.task_queue import enqueue
from sharing.exports.services.runs import (
    export_run_execute,
    export_run_for_slot,
    export_runs_prune,
    export_runs_reap,
    periodic_task_name,
)
from sharing.models import ExportSchedule


@shared_task(
    name="sharing.export_tasks.export_run",
    acks_late=True,
    time_limit=settings.EXPORT_TIME_LIMIT_SECONDS + 60,
    soft_time_limit=settings.EXPORT_TIME_LIMIT_SECONDS,
)
def export_run(run_id: int) -> None:
    # Safe to deliver twice: the run is claimed once; a run already claimed or finished
    # returns quietly.
    export_run_execute(run_id=run_id)


@shared_task(name="sharing.export_tasks.export_schedule_fire")
def export_schedule_fire(schedule_id: int) -> None:
    """Beat fires this per schedule (see export_schedule_sync): one run per cron slot,
    however often the message is delivered."""
    schedule = ExportSchedule.objects.filter(pk=schedule_id).select_related("product").first()
    if schedule is None:
        # The schedule is gone: so should its beat task be.
        PeriodicTask.objects.filter(name=periodic_task_name(schedule_id)).delete()
        return
    run = export_run_for_slot(schedule=schedule, at=timezone.now())
    if run is not None:
        # A lost message leaves the run queued: the export-run reaper sends it again.
        enqueue("sharing.export_tasks.export_run", run.pk)


@shared_task(name="sharing.export_tasks.export_runs_reaper")
def export_runs_reaper() -> dict:
    return asdict(export_runs_reap())


@shared_task(name="sharing.export_tasks.export_runs_pruner")
def export_runs_pruner() -> int:
    return export_runs_prune()
