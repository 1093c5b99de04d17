"""What starts a sync run besides a person: a passing check run of its product (the
trust feature asks by task name), and its schedule (a beat task per scheduled sync)."""

from __future__ import annotations

import json

from django_celery_beat.models import PeriodicTask

from portal.models import QueuedTask
from products.choices import CheckKind
from products.models import CheckRun
from products.trust.services.checks import check_create, check_run_execute
from products.trust.services.evidence import trust_after_check_run
from sharing.models import SyncRun
from sharing.models.syncs import SyncRunTrigger, SyncStatus
from sharing.syncs.services.syncs import sync_create, sync_pause, sync_update
from sharing.syncs.tasks import sync_run_scheduled, syncs_after_check_run

AFTER_CHECKS = "sharing.syncs.tasks.syncs_after_check_run"


def _sync(leads, crm, owner, **fields):
    return sync_create(
        by=owner,
        product=leads,
        destination=crm,
        name="Leads to CRM",
        columns=["lead_id", "score"],
        key_columns=["lead_id"],
        **fields,
    )


def _check_run(leads, owner, column: str) -> CheckRun:
    port = leads.ports.get()
    check_create(
        port=port, by=owner, name=f"{column} present", kind=CheckKind.NOT_NULL, column=column
    )
    run = check_run_execute(run_id=CheckRun.objects.create(port=port).pk)
    trust_after_check_run(run=run)
    return run


def test_a_passing_check_run_runs_the_syncs_that_wait_for_it(leads, crm, owner):
    waiting = _sync(leads, crm, owner, trigger="after_checks")
    by_hand = sync_create(
        by=owner,
        product=leads,
        destination=crm,
        name="By hand",
        columns=["lead_id"],
        key_columns=["lead_id"],
    )
    check_run = _check_run(leads, owner, "lead_id")
    (queued,) = QueuedTask.objects.filter(task=AFTER_CHECKS)
    assert queued.args == [check_run.pk]
    assert syncs_after_check_run(check_run.pk) == 1
    (run,) = SyncRun.objects.all()
    assert run.sync == waiting and run.trigger == SyncRunTrigger.AFTER_CHECKS
    assert not SyncRun.objects.filter(sync=by_hand).exists()


def test_a_failing_check_run_runs_nothing(leads, crm, owner):
    _sync(leads, crm, owner, trigger="after_checks")
    _check_run(leads, owner, "email")  # lead 3 has no email: the check fails
    assert not QueuedTask.objects.filter(task=AFTER_CHECKS).exists()


def test_a_scheduled_sync_has_one_beat_task_while_active(leads, crm, owner):
    sync = _sync(leads, crm, owner, trigger="schedule", cron="0 6 * * 1-5", timezone="Europe/Paris")
    task = PeriodicTask.objects.get(pk=sync.periodic_task_id)
    assert task.task == "sharing.syncs.tasks.sync_run_scheduled"
    assert json.loads(task.kwargs) == {"sync_id": sync.pk}
    assert str(task.crontab.timezone) == "Europe/Paris" and task.crontab.hour == "6"
    sync_run_scheduled(sync.pk)
    assert SyncRun.objects.get(sync=sync).trigger == SyncRunTrigger.SCHEDULE
    sync = sync_pause(sync=sync, by=owner, reason="CRM migration")
    assert sync.status == SyncStatus.PAUSED and not PeriodicTask.objects.exists()
    sync_run_scheduled(sync.pk)  # a beat message already sent: nothing runs while paused
    assert SyncRun.objects.filter(sync=sync).count() == 1
    sync_update(sync=sync, by=owner, trigger="manual")
    assert not PeriodicTask.objects.exists()
