"""Faults, on a real Celery worker (Redis) and a real local receiver: the delivering
worker killed with SIGKILL mid-batch, and the receiver answering 500 for a while.
Afterwards: 0 events lost, 0 duplicates once de-duplicated by webhook-id, the order
kept, and the dead-letter list holds exactly what could not be delivered."""

from __future__ import annotations

import pytest
from django.db import transaction

from portal.celery import app
from portal.core.events import event_emit
from portal.core.task_queue import enqueue
from sharing.models import WebhookDelivery
from sharing.models.webhooks import DeliveryStatus
from sharing.webhooks.services import webhook_dead_letters_replay, webhook_subscription_create
from tests.conftest import subprocess_env, wait_for
from tests.processes import celery_worker, wait_until_ready
from tests.sharing.webhooks.receiver import Answer, verified

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("allow_loopback", "redis_broker_url"),
]


@pytest.fixture
def worker_env(media_root):
    """Loopback receivers and quick retries: what every worker tests start gets
    (tests/conftest.py subprocess_env)."""
    env = subprocess_env(media_root)
    app.control.purge()
    return env


def _start_worker(env, tmp_path, name):
    worker = celery_worker(env=env, log_dir=tmp_path, name=name).start()
    wait_until_ready(worker)
    return worker


def _emit(product, count: int) -> list:
    events = []
    for n in range(count):
        with transaction.atomic():  # one commit per event: one wake-up each, as in life
            events.append(
                event_emit(
                    "portal.product.version_changed", product=product, data={"version": str(n)}
                )
            )
    return events


def _first_receipts(receiver) -> list[str]:
    """The webhook-ids delivered (2xx), de-duplicated, in the order first received."""
    seen: list[str] = []
    for request in receiver.delivered():
        if request.webhook_id not in seen:
            seen.append(request.webhook_id)
    return seen


def test_sigkill_of_the_delivering_worker_loses_nothing(
    owner, product, receiver, worker_env, tmp_path
):
    receiver.script = lambda n: Answer(delay_seconds=0.15)  # slow enough to be killed mid-batch
    created = webhook_subscription_create(
        owner=owner, name="r", target_url=receiver.url, event_types=["portal.product.*"]
    )
    worker = _start_worker(worker_env, tmp_path, "webhooks-1")
    try:
        events = _emit(product, 30)
        wait_for(lambda: len(receiver.delivered()) >= 8, timeout=60, message=worker.log())
        worker.kill()
    finally:
        worker.kill()
    delivered_before = len(_first_receipts(receiver))
    assert delivered_before < 30, "the worker finished before it was killed"

    second = _start_worker(worker_env, tmp_path, "webhooks-2")
    try:
        enqueue("sharing.webhooks.tasks.webhooks_fan_out")  # what beat does every 5 s
        enqueue("sharing.webhooks.tasks.webhooks_due_wake")
        wait_for(lambda: len(_first_receipts(receiver)) == 30, timeout=90, message=second.log())
    finally:
        second.stop()

    expected = [str(event.event_id) for event in events]
    assert _first_receipts(receiver) == expected  # none lost, in order
    duplicates = len(receiver.delivered()) - 30
    assert duplicates <= 1  # at most the one in flight when the worker died
    for request in receiver.delivered():
        verified(created.secret, request)
    assert not WebhookDelivery.objects.filter(status=DeliveryStatus.DEAD).exists()
    assert not WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).exists()


def test_a_receiver_failing_for_a_while(owner, product, receiver, worker_env, tmp_path):
    """Six 500s: the first two events use their three tries each and are dead-lettered;
    the rest arrive in order. Replaying the dead letters delivers them too."""
    receiver.script = lambda n: Answer(status=500 if n < 6 else 200)
    created = webhook_subscription_create(
        owner=owner, name="r", target_url=receiver.url, event_types=["portal.product.*"]
    )
    worker = _start_worker(worker_env, tmp_path, "webhooks-500")
    try:
        events = _emit(product, 10)
        ids = [str(event.event_id) for event in events]
        wait_for(lambda: _first_receipts(receiver) == ids[2:], timeout=60, message=worker.log())
        dead = WebhookDelivery.objects.filter(status=DeliveryStatus.DEAD).order_by("id")
        assert [str(d.message_id) for d in dead] == ids[:2]
        assert all(d.attempts == 3 for d in dead)
        with transaction.atomic():
            replayed = webhook_dead_letters_replay(subscription=created.subscription, by=owner)
        assert replayed == 2
        wait_for(lambda: len(_first_receipts(receiver)) == 10, timeout=60, message=worker.log())
    finally:
        worker.stop()
    assert sorted(_first_receipts(receiver)) == sorted(ids)
    assert not WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists()
    # Each delivery's log: three failed tries for the two dead letters, then one success.
    first = WebhookDelivery.objects.get(message_id=events[0].event_id)
    assert list(first.log.order_by("id").values_list("outcome", flat=True)) == [
        "failed",
        "failed",
        "failed",
        "succeeded",
    ]
