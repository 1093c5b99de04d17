"""One way to start background work (portal.core.task_queue): services ask for a task by
name; the request is saved in the same transaction (a queued run, or an outbox row for
work without one), sent after the commit, and sent again by a reaper when the broker was
down. Task names are explicit, so that beat rows and messages in flight keep resolving."""

import os
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import transaction
from django.utils import timezone

from portal.celery import app
from portal.core.task_queue import queued_tasks_redispatch
from portal.models import Notification, QueuedTask
from products.choices import FeedbackKind
from products.feedback.services.feedback import feedback_thread_create
from sharing.access.services.requests import access_request_create
from tests.conftest import wait_for
from tests.factories import UserFactory
from tests.processes import free_port

# Every task name the portal registers. Beat rows (CELERY_BEAT_SCHEDULE, the per-schedule
# rows of checks and exports) and messages already queued name tasks by these strings:
# moving a task's module must not change them.
TASK_NAMES = {
    "portal.tasks.queued_tasks_reaper",
    "products.tasks.announcement_deliver",
    "products.tasks.check_run",
    "products.tasks.check_run_reaper",
    "products.tasks.check_schedules_sync",
    "products.tasks.checks_run_scheduled",
    "products.tasks.contract_breaking_notify",
    "products.tasks.feedback_notify",
    "products.tasks.incident_notify",
    "products.tasks.monitor_observe",
    "products.tasks.monitors_observe_all",
    "products.tasks.retirement_advance_due",
    "products.tasks.retirement_flag_unused_daily",
    "products.tasks.retirement_notify",
    "products.tasks.schema_refresh_reaper",
    "products.tasks.schema_refresh_run",
    "products.tasks.slos_evaluate_all",
    "products.tasks.trust_score_recompute",
    "products.tasks.trust_scores_recompute_all",
    "products.tasks.usage_summaries_refresh_hourly",
    "sharing.events.tasks.events_publish_nats",
    "sharing.export_tasks.export_run",
    "sharing.export_tasks.export_runs_pruner",
    "sharing.export_tasks.export_runs_reaper",
    "sharing.export_tasks.export_schedule_fire",
    "sharing.lineage.tasks.openlineage_send",
    "sharing.syncs.tasks.sync_run",
    "sharing.syncs.tasks.sync_run_scheduled",
    "sharing.syncs.tasks.sync_runs_reaper",
    "sharing.syncs.tasks.syncs_after_check_run",
    "sharing.tasks.access_request_notify",
    "sharing.tasks.access_review_daily",
    "sharing.tasks.grant_expiry_notify",
    "sharing.tasks.grants_expire",
    "sharing.webhooks.tasks.webhook_deliver",
    "sharing.webhooks.tasks.webhooks_due_wake",
    "sharing.webhooks.tasks.webhooks_fan_out",
}


def registered_task_names() -> set[str]:
    app.loader.import_default_modules()  # what a worker imports when it starts
    # Celery's own, and probes that test modules register (tests.*), are not the portal's.
    return {name for name in app.tasks if not name.startswith(("celery.", "tests."))}


def test_every_registered_task_keeps_the_name_beat_rows_and_messages_use():
    assert registered_task_names() == TASK_NAMES
    beat = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert beat <= TASK_NAMES


@contextmanager
def broker_down():
    """This process's broker address points at a closed port, as when Redis is down (the
    CELERY_BROKER_URL environment variable wins over the settings in Celery)."""
    before = os.environ["CELERY_BROKER_URL"]

    def reconnect(url):
        os.environ["CELERY_BROKER_URL"] = url
        app._pool = None  # the connection and producer pools are built from the URL
        app.amqp._producer_pool = None

    reconnect(f"redis://127.0.0.1:{free_port()}/0")
    try:
        yield
    finally:
        reconnect(before)


@pytest.mark.django_db(transaction=True)
def test_feedback_requested_while_the_broker_is_down_is_delivered_when_it_is_back(
    celery_worker, product, owner, member
):
    with broker_down():
        # The request answers; the notification is saved, not lost.
        thread = feedback_thread_create(
            product=product,
            by=member,
            kind=FeedbackKind.QUESTION,
            title="Where is March?",
            body="The March orders are missing.",
        )
        queued = QueuedTask.objects.get(task="products.tasks.feedback_notify")
        assert queued.args == ["thread", thread.pk] and queued.sent_at is None
        # While the broker is still down the reaper leaves it for a later round.
        later = timezone.now() + settings.TASK_REDISPATCH_AFTER + timedelta(seconds=1)
        assert queued_tasks_redispatch(now=later) == 0

    assert not Notification.objects.filter(user=owner).exists()
    # The broker is back: the reaper sends it, and the worker delivers it.
    assert queued_tasks_redispatch(now=later) == 1
    notification = wait_for(
        lambda: Notification.objects.filter(user=owner, product=product).first(),
        message="the feedback notification was never delivered",
    )
    assert "Where is March?" in notification.title + notification.body
    queued.refresh_from_db()
    assert queued.sent_at is not None and queued.attempts == 2
    # Nothing is sent twice: the row is sent, the reaper has nothing left.
    assert queued_tasks_redispatch(now=later) == 0


def test_a_notification_without_a_claim_of_its_own_is_sent_once_when_delivered_twice(
    product, owner, django_capture_on_commit_callbacks, eager_tasks
):
    asker = UserFactory(username="asker")
    with django_capture_on_commit_callbacks(execute=True):
        request = access_request_create(product=product, by=asker, purpose="Churn study")
    assert len(mail.outbox) == 1 and "Churn study" in mail.outbox[0].body
    queued = QueuedTask.objects.get(task="sharing.tasks.access_request_notify")
    assert queued.args == [request.pk, "managers"] and queued.claimed_at is not None

    # The same message delivered again (a redelivery, or a reaper's second send).
    app.tasks[queued.task].apply(args=queued.args, kwargs={"outbox_id": queued.pk})
    assert len(mail.outbox) == 1


def test_work_asked_for_in_a_transaction_that_rolls_back_is_never_sent(product, member):
    with pytest.raises(RuntimeError), transaction.atomic():
        feedback_thread_create(
            product=product, by=member, kind=FeedbackKind.QUESTION, title="Q", body="B"
        )
        raise RuntimeError("the request fails after asking")
    assert not QueuedTask.objects.exists()
