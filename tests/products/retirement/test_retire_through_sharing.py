"""Retirement ends every way of reading a product through the services that own those
ways (sharing.services.*), so that a retired product's share links, grants and export
schedules end exactly as when a person ends them: with their audit events, and with the
export runs still waiting in the queue ended too. Time moves by passing `now=`."""

from datetime import UTC, datetime, timedelta

import pytest
from django_celery_beat.models import PeriodicTask

from products.choices import LifecycleStatus
from products.models import DataProduct
from products.retirement.services import retirement_advance, retirement_propose
from sharing.choices import AuditAction, ExportStatus
from sharing.models import AccessEvent, AccessGrant, ExportRun, ExportSchedule, ShareLink
from tests.factories import ProductFactory, UserFactory

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
REASON = "Replaced by sales.orders-v2; nobody has read this since March."

pytestmark = pytest.mark.usefixtures("eager_tasks")


@pytest.fixture
def product(domain, owner):
    product = ProductFactory(domain=domain, name="Orders v1", slug="orders-v1", owners=[owner])
    DataProduct.objects.filter(pk=product.pk).update(
        created_at=NOW - 200 * DAY, published_at=NOW - 200 * DAY
    )
    product.refresh_from_db()
    return product


@pytest.fixture
def grantee(product):
    user = UserFactory(username="grantee")
    AccessGrant.objects.create(
        product=product, user=user, expires_at=NOW + 365 * DAY, reason="test"
    )
    return user


@pytest.fixture
def link(product, grantee):
    return ShareLink.objects.create(
        token_hash="b" * 64,
        token_hint="bbbbbbbb",
        created_by=grantee,
        product=product,
        expires_at=NOW + 300 * DAY,
    )


@pytest.fixture
def schedule(product, grantee):
    return ExportSchedule.objects.create(
        product=product, name="Nightly", created_by=grantee, cron="0 2 * * *"
    )


def retire(product, owner, django_capture_on_commit_callbacks) -> None:
    """Propose, let the notice and the grace period pass, and retire."""
    with django_capture_on_commit_callbacks(execute=True):
        retirement_propose(product=product, by=owner, reason=REASON, notice_days=7, now=NOW)
        assert retirement_advance(now=NOW + 7 * DAY)["deprecated"] == 1
        assert retirement_advance(now=NOW + 60 * DAY)["retired"] == 1
    product.refresh_from_db()
    assert product.status == LifecycleStatus.RETIRED


def test_a_retired_products_share_link_revocation_is_audited_like_a_manual_one(
    product, owner, link, django_capture_on_commit_callbacks
):
    retire(product, owner, django_capture_on_commit_callbacks)

    link.refresh_from_db()
    assert link.revoked_at == NOW + 60 * DAY and link.revoked_by == owner
    revocation = AccessEvent.objects.get(
        product=product, action=AuditAction.REVOKE, detail__share_link=link.pk
    )
    assert revocation.user == owner and revocation.at == NOW + 60 * DAY
    assert "was retired" in revocation.detail["reason"]


def test_a_retired_products_queued_export_run_ends_instead_of_waiting_forever(
    product, owner, schedule, django_capture_on_commit_callbacks
):
    queued = ExportRun.objects.create(schedule=schedule, status=ExportStatus.QUEUED)
    done = ExportRun.objects.create(
        schedule=schedule, status=ExportStatus.SUCCEEDED, finished_at=NOW
    )

    retire(product, owner, django_capture_on_commit_callbacks)

    queued.refresh_from_db()
    assert queued.status == ExportStatus.FAILED and queued.finished_at == NOW + 60 * DAY
    assert "ended" in queued.error
    done.refresh_from_db()
    assert done.status == ExportStatus.SUCCEEDED  # a finished run keeps its file
    schedule.refresh_from_db()
    assert (schedule.enabled, schedule.ended_at) == (False, NOW + 60 * DAY)
    assert "was retired" in schedule.end_reason
    assert not PeriodicTask.objects.filter(name=f"exports:schedule:{schedule.pk}").exists()


def test_a_retired_products_grants_are_revoked_each_with_its_audit_event(
    product, owner, grantee, django_capture_on_commit_callbacks
):
    retire(product, owner, django_capture_on_commit_callbacks)

    grant = AccessGrant.objects.get(product=product, user=grantee)
    assert grant.revoked_by == owner and "was retired" in grant.revoke_reason
    event = AccessEvent.objects.get(product=product, action=AuditAction.REVOKE, grant=grant)
    assert event.detail["grantee"] == grantee.username
