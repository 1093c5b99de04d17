"""Background work of syncs: runs, schedules, runs after a passing check run, the reaper."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from products.models import CheckRun
from sharing.models import Sync
from sharing.models.syncs import SyncRunTrigger, SyncStatus, SyncTrigger
from sharing.syncs.services.runs import sync_run_execute, sync_run_request, sync_runs_reap
from sharing.syncs.services.syncs import periodic_task_name


@shared_task(
    name="sharing.syncs.tasks.sync_run",
    acks_late=True,
    time_limit=settings.SYNC_TIME_LIMIT_SECONDS + 60,
    soft_time_limit=settings.SYNC_TIME_LIMIT_SECONDS,
)
def sync_run(run_id: int) -> None:
    # Safe to deliver twice: the run is claimed once; a second delivery returns quietly.
    sync_run_execute(run_id=run_id)


@shared_task(name="sharing.syncs.tasks.sync_run_scheduled")
def sync_run_scheduled(sync_id: int) -> None:
    """Beat fires this per scheduled sync (see sync_schedule_sync)."""
    sync = Sync.objects.filter(pk=sync_id).first()
    if sync is None:
        PeriodicTask.objects.filter(name=periodic_task_name(sync_id)).delete()
        return
    if sync.status == SyncStatus.ACTIVE and sync.trigger == SyncTrigger.SCHEDULE:
        sync_run_request(sync=sync, by=None, trigger=SyncRunTrigger.SCHEDULE)


@shared_task(name="sharing.syncs.tasks.syncs_after_check_run")
def syncs_after_check_run(check_run_id: int) -> int:
    """A check run passed (products.trust asks by name): run the product's active syncs
    that wait for it. Returns how many runs were requested."""
    check_run = CheckRun.objects.filter(pk=check_run_id).select_related("port").first()
    if check_run is None:
        return 0
    syncs = Sync.objects.filter(
        product_id=check_run.port.product_id,
        trigger=SyncTrigger.AFTER_CHECKS,
        status=SyncStatus.ACTIVE,
    )
    for sync in syncs:
        sync_run_request(sync=sync, by=None, trigger=SyncRunTrigger.AFTER_CHECKS)
    return len(syncs)


@shared_task(name="sharing.syncs.tasks.sync_runs_reaper")
def sync_runs_reaper() -> int:
    return sync_runs_reap()
