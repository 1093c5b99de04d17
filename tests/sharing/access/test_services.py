"""The access workflow through its services: request, approve (narrowed), deny, cancel,
auto-approve, direct grants, revocation (single and bulk) taking effect on the next
read, the expiry notice sent once, and exactly one audit event per action."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from products.choices import LifecycleStatus
from sharing.access.selectors import grants_unused
from sharing.access.services.grants import (
    access_review,
    grant_create,
    grant_revoke,
    grants_revoke_for_user,
    grants_revoke_selected,
)
from sharing.access.services.requests import (
    access_request_approve,
    access_request_cancel,
    access_request_create,
    access_request_deny,
)
from sharing.choices import AuditAction, Channel, RequestStatus
from sharing.models import AccessEvent, AccessGrant, AccessRequest
from sharing.serving.reads import ReadRefused, read_plan, read_rows
from tests.factories import (
    ProductFactory,
    UserFactory,
    parquet_product,
)

ROWS = {
    "order_id": [1, 2, 3, 4],
    "country": ["BE", "NL", "BE", "FR"],
    "email": ["a@x", "b@x", None, "d@x"],
}

pytestmark = pytest.mark.usefixtures("eager_tasks")


@pytest.fixture
def product(domain, media_root, owner, steward):
    product = parquet_product(
        media_root=media_root,
        domain=domain,
        rows=ROWS,
        file_path="access/orders.parquet",
        access_max_days=30,
    )
    return product


def actions(**filters) -> list[str]:
    return list(
        AccessEvent.objects.filter(**filters).order_by("pk").values_list("action", flat=True)
    )


def test_request_approve_narrowed_then_read(
    product, outsider, steward, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request = access_request_create(
            product=product, by=outsider, purpose="Churn study", duration_days=20
        )
    assert request.status == RequestStatus.PENDING and request.columns == []
    assert [m.to for m in mail.outbox] == [["owner@example.com", "steward@example.com"]]
    assert "Churn study" in mail.outbox[0].body

    with django_capture_on_commit_callbacks(execute=True):
        grant = access_request_approve(
            request=request,
            by=steward,
            columns=["order_id", "country"],
            row_filter=[{"column": "country", "op": "=", "value": "BE"}],
            duration_days=10,
        )
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED and request.decided_by == steward
    assert grant.request == request and grant.granted_by == steward
    assert 9 <= (grant.expires_at - timezone.now()).days <= 10
    assert mail.outbox[-1].to == ["outsider@example.com"]
    assert "approved" in mail.outbox[-1].subject

    plan = read_plan(user=outsider, product=product, channel=Channel.API)
    assert read_rows(plan) == (["order_id", "country"], [(1, "BE"), (3, "BE")])
    assert actions() == ["request", "approve", "grant", "read"]
    approve = AccessEvent.objects.get(action=AuditAction.APPROVE)
    assert (approve.user, approve.request, approve.grant) == (steward, request, grant)
    assert approve.detail["requester"] == "outsider"


def test_request_validation(product, outsider, member):
    with pytest.raises(ValidationError) as error:
        access_request_create(
            product=product, by=outsider, purpose=" ", columns=["nope"], duration_days=31
        )
    assert set(error.value.message_dict) == {"purpose", "columns", "duration_days"}
    assert "nope" in error.value.message_dict["columns"][0]
    with pytest.raises(ValidationError, match="already have access"):
        access_request_create(product=product, by=member, purpose="x")
    access_request_create(product=product, by=outsider, purpose="x")
    with pytest.raises(ValidationError, match="pending request"):
        access_request_create(product=product, by=outsider, purpose="again")
    draft = ProductFactory(domain=product.domain, status=LifecycleStatus.DRAFT)
    with pytest.raises(PermissionDenied):  # a draft is invisible outside the domain
        access_request_create(product=draft, by=outsider, purpose="x")
    assert actions() == ["request"]


def test_approval_only_narrows(product, outsider, owner, member):
    request = access_request_create(
        product=product, by=outsider, purpose="x", columns=["order_id"], duration_days=5
    )
    with pytest.raises(PermissionDenied):
        access_request_approve(request=request, by=member)
    with pytest.raises(PermissionDenied):
        access_request_approve(request=request, by=outsider)
    with pytest.raises(ValidationError) as error:
        access_request_approve(
            request=request,
            by=owner,
            columns=["country"],
            row_filter=[{"column": "ghost", "op": "=", "value": 1}],
            duration_days=6,
        )
    assert set(error.value.message_dict) == {"columns", "row_filter", "duration_days"}
    with pytest.raises(ValidationError, match="not valid JSON"):
        access_request_approve(request=request, by=owner, row_filter="{nope")
    grant = access_request_approve(request=request, by=owner)
    assert grant.columns == ["order_id"]
    with pytest.raises(ValidationError, match="already approved"):
        access_request_deny(request=request, by=owner, reason="late")


def test_deny_and_cancel(product, outsider, owner, django_capture_on_commit_callbacks):
    request = access_request_create(product=product, by=outsider, purpose="x")
    with pytest.raises(ValidationError):
        access_request_deny(request=request, by=owner, reason="")
    with django_capture_on_commit_callbacks(execute=True):
        access_request_deny(request=request, by=owner, reason="Use the aggregate product")
    assert mail.outbox[-1].to == ["outsider@example.com"]
    assert "Use the aggregate product" in mail.outbox[-1].body
    second = access_request_create(product=product, by=outsider, purpose="y")
    with pytest.raises(PermissionDenied):
        access_request_cancel(request=second, by=owner)
    assert access_request_cancel(request=second, by=outsider).status == RequestStatus.CANCELLED
    assert not AccessGrant.objects.exists()
    assert actions() == ["request", "deny", "request", "cancel"]


def test_auto_approve_only_for_public_and_internal_columns(product, outsider):
    product.access_auto_approve = True
    product.save()
    request = access_request_create(
        product=product, by=outsider, purpose="x", columns=["order_id", "country"]
    )
    assert request.status == RequestStatus.APPROVED
    assert request.decision_reason == "Auto-approved: public and internal columns only"
    assert request.grant.granted_by is None and request.grant.columns == ["order_id", "country"]
    assert actions() == ["request", "approve", "grant"]
    other = UserFactory(username="other")
    all_columns = access_request_create(product=product, by=other, purpose="x")
    assert all_columns.status == RequestStatus.PENDING  # all includes the confidential email


def test_direct_grants_owners_and_admins_only(product, outsider, owner, steward, admin_user):
    with pytest.raises(PermissionDenied):
        grant_create(product=product, by=steward, user=outsider, reason="x")
    with pytest.raises(ValidationError) as error:
        grant_create(product=product, by=owner, reason="", duration_days=99)
    assert set(error.value.message_dict) == {"user", "reason", "duration_days"}
    grant = grant_create(product=product, by=owner, user=outsider, reason="Audit project")
    assert grant.granted_by == owner and grant.columns == []
    grant_create(product=product, by=admin_user, user=UserFactory(), reason="x", columns=["email"])
    assert actions() == ["grant", "grant"]


def test_revocation_takes_effect_on_the_next_read(product, outsider, owner, steward):
    grant = grant_create(product=product, by=owner, user=outsider, reason="x")
    read_plan(user=outsider, product=product, channel=Channel.API)
    with pytest.raises(ValidationError):
        grant_revoke(grant=grant, by=steward, reason="")
    with pytest.raises(PermissionDenied):
        grant_revoke(grant=grant, by=outsider, reason="mine")
    grant_revoke(grant=grant, by=steward, reason="Project over")
    with pytest.raises(ReadRefused, match="revoked"):
        read_plan(user=outsider, product=product, channel=Channel.API)
    with pytest.raises(ValidationError, match="already revoked"):
        grant_revoke(grant=grant, by=owner, reason="again")
    assert actions() == ["grant", "revoke"]
    revoke = AccessEvent.objects.get(action=AuditAction.REVOKE)
    assert revoke.user == steward and revoke.detail == {
        "grantee": "outsider",
        "reason": "Project over",
    }


def test_expiry_takes_effect_on_the_next_read(product, outsider, owner):
    grant = grant_create(product=product, by=owner, user=outsider, reason="x")
    read_plan(user=outsider, product=product, channel=Channel.API)
    AccessGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now())
    with pytest.raises(ReadRefused, match="expired"):
        read_plan(user=outsider, product=product, channel=Channel.API)


def test_bulk_revoke_for_a_person_who_left(product, outsider, owner, admin_user, steward):
    elsewhere = ProductFactory()  # another domain: the owner does not manage it
    grant_create(product=product, by=owner, user=outsider, reason="a")
    grant_create(product=product, by=owner, user=outsider, reason="b", columns=["order_id"])
    other = grant_create(product=elsewhere, by=admin_user, user=outsider, reason="c")
    untouched = grant_create(product=product, by=owner, user=UserFactory(), reason="d")
    with pytest.raises(PermissionDenied):
        grants_revoke_for_user(user=outsider, by=UserFactory(), reason="left")
    assert grants_revoke_for_user(user=outsider, by=owner, reason="Left the company") == 2
    assert actions(action="revoke") == ["revoke", "revoke"]
    assert AccessGrant.objects.get(pk=other.pk).revoked_at is None
    assert grants_revoke_for_user(user=outsider, by=admin_user, reason="Left") == 1
    assert grants_revoke_for_user(user=outsider, by=admin_user, reason="Left") == 0
    assert AccessGrant.objects.get(pk=untouched.pk).revoked_at is None
    assert AccessEvent.objects.filter(action="revoke").count() == 3


def test_revoke_selected_is_all_or_none(product, outsider, owner, steward, admin_user):
    """One grant outside the steward's domains refuses the whole selection; within them,
    every grant is revoked with the one reason, and one already revoked is skipped."""
    elsewhere = ProductFactory()  # another domain
    mine = grant_create(product=product, by=owner, user=outsider, reason="a")
    theirs = grant_create(product=elsewhere, by=admin_user, user=outsider, reason="b")
    with pytest.raises(PermissionDenied):
        grants_revoke_selected(grants=[mine, theirs], by=steward, reason="cleanup")
    assert not AccessGrant.objects.filter(revoked_at__isnull=False).exists()
    with pytest.raises(ValidationError, match="reason"):
        grants_revoke_selected(grants=[mine], by=steward, reason=" ")
    second = grant_create(product=product, by=owner, user=UserFactory(), reason="c")
    grant_revoke(grant=second, by=owner, reason="earlier")
    assert grants_revoke_selected(grants=[mine, second], by=steward, reason="cleanup") == 1
    mine.refresh_from_db()
    assert mine.revoke_reason == "cleanup" and mine.revoked_by == steward
    assert AccessEvent.objects.filter(action="revoke", grant=mine).count() == 1


def test_expiry_notice_sent_once(product, outsider, owner, django_capture_on_commit_callbacks):
    soon = grant_create(product=product, by=owner, user=outsider, reason="x", duration_days=10)
    grant_create(product=product, by=owner, user=UserFactory(username="later"), reason="x")
    with django_capture_on_commit_callbacks(execute=True):
        assert access_review() == 1
    assert sorted(m.to[0] for m in mail.outbox) == ["outsider@example.com", "owner@example.com"]
    soon.refresh_from_db()
    assert soon.expiry_notified_at is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert access_review() == 0
    assert len(mail.outbox) == 2
    assert actions(action="expiry_notice") == ["expiry_notice"]


def test_unused_grants_are_proposed_for_revocation(product, outsider, owner):
    fresh = grant_create(product=product, by=owner, user=outsider, reason="x")
    stale = grant_create(product=product, by=owner, user=UserFactory(), reason="x")
    used_long_ago = grant_create(product=product, by=owner, user=UserFactory(), reason="x")
    old = timezone.now() - timedelta(days=61)
    AccessGrant.objects.filter(pk__in=[stale.pk, used_long_ago.pk]).update(created_at=old)
    AccessGrant.objects.filter(pk=used_long_ago.pk).update(
        last_used_at=timezone.now() - timedelta(days=5)
    )
    assert list(grants_unused(product=product)) == [stale]
    assert fresh not in grants_unused(product=product)
    assert AccessRequest.objects.count() == 0


def test_daily_review_task_is_scheduled_and_idempotent(
    product, outsider, owner, settings, django_capture_on_commit_callbacks
):
    from sharing.access.tasks import access_review_daily

    entry = settings.CELERY_BEAT_SCHEDULE["access-review-daily"]
    assert entry["task"] == access_review_daily.name
    grant_create(product=product, by=owner, user=outsider, reason="x", duration_days=3)
    with django_capture_on_commit_callbacks(execute=True):
        assert access_review_daily.apply().get() == 1
        assert access_review_daily.apply().get() == 0
    assert len(mail.outbox) == 2
