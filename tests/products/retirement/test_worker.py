"""The retirement's periodic tasks and its notifications on a real Celery worker (Redis):
the daily flag, the advance (deprecate, then retire and revoke), each notification task
claimed once, and the beat schedule declaring both."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from products.choices import LifecycleStatus
from products.models import DataProduct, RetirementEvent, RetirementProposal
from products.retirement.services import retirement_propose
from products.retirement.tasks import (
    retirement_advance_due,
    retirement_flag_unused_daily,
    retirement_notify,
)
from sharing.models import AccessGrant
from tests.conftest import wait_for
from tests.factories import ProductFactory, UserFactory


def test_beat_declares_the_retirement_tasks():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "products.tasks.retirement_flag_unused_daily",
        "products.tasks.retirement_advance_due",
    } <= tasks


def _all_told(product) -> bool:
    events = RetirementEvent.objects.filter(product=product).exclude(recipients=[])
    return events.exists() and not events.filter(notified_at__isnull=True).exists()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_tasks_flag_advance_and_notify_on_a_worker(celery_worker, domain, owner):
    product = ProductFactory(domain=domain, name="Legacy", slug="legacy", owners=[owner])
    long_ago = timezone.now() - timedelta(days=200)
    DataProduct.objects.filter(pk=product.pk).update(created_at=long_ago, published_at=long_ago)
    grantee = UserFactory(username="grantee")
    grant = AccessGrant.objects.create(
        product=product, user=grantee, expires_at=timezone.now() + timedelta(days=60), reason="x"
    )

    retirement_flag_unused_daily.delay()
    wait_for(
        lambda: RetirementEvent.objects.filter(product=product, notified_at__isnull=False).exists(),
        timeout=60,
        message="the worker did not flag the unused product and tell its owner",
    )

    # A proposal whose notice period ended yesterday (its emails go through the worker).
    proposal = retirement_propose(
        product=product,
        by=owner,
        reason="Replaced.",
        notice_days=7,
        now=timezone.now() - timedelta(days=8),
    )
    retirement_advance_due.delay()
    wait_for(
        lambda: RetirementProposal.objects.get(pk=proposal.pk).status == "deprecated",
        timeout=60,
        message="the worker did not deprecate the product",
    )
    # The grace period ends: the next advance retires it and revokes the grant.
    RetirementProposal.objects.filter(pk=proposal.pk).update(
        retire_at=timezone.now() - timedelta(minutes=1)
    )
    retirement_advance_due.delay()
    wait_for(
        lambda: RetirementProposal.objects.get(pk=proposal.pk).status == "retired",
        timeout=60,
        message="the worker did not retire the product",
    )
    product.refresh_from_db()
    assert product.status == LifecycleStatus.RETIRED
    grant.refresh_from_db()
    assert grant.revoked_at is not None and grant.revoked_by == owner
    wait_for(lambda: _all_told(product), timeout=60, message="some step was never told")

    # Redelivered tasks take no step twice and send nothing twice: the last task, queued
    # after the redeliveries, has run once its own effect is visible (solo pool, in order).
    steps = RetirementEvent.objects.filter(product=product).count()
    told = dict(RetirementEvent.objects.filter(product=product).values_list("pk", "notified_at"))
    for event_id in told:
        retirement_notify.delay(event_id)
    retirement_advance_due.delay()
    retirement_flag_unused_daily.delay()
    marker = ProductFactory(domain=domain, name="Marker", slug="marker", owners=[owner])
    DataProduct.objects.filter(pk=marker.pk).update(created_at=long_ago, published_at=long_ago)
    retirement_flag_unused_daily.delay()
    wait_for(
        lambda: RetirementEvent.objects.filter(product=marker).exists(),
        timeout=60,
        message="the marker task did not run",
    )
    assert RetirementEvent.objects.filter(product=product).count() == steps
    assert (
        dict(RetirementEvent.objects.filter(product=product).values_list("pk", "notified_at"))
        == told
    )
