"""In-portal notifications of access (the bell), beside the emails that stay as they were:
a request to the domain's owners and stewards, the decision to the requester, a revocation
to the grantee, an approaching expiry to the grantee and the owners. Written with the
change (a refused change notifies nobody), once per person and event."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from portal.models import Notification
from products.choices import Classification, MembershipRole
from sharing.access.services.grants import (
    access_review,
    grant_create,
    grant_revoke,
    grants_revoke_for_user,
)
from sharing.access.services.requests import (
    access_request_approve,
    access_request_create,
    access_request_deny,
)
from sharing.models import AccessGrant
from tests.factories import (
    ColumnFactory,
    DomainFactory,
    MembershipFactory,
    OutputPortFactory,
    ProductFactory,
    UserFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


@pytest.fixture
def product(domain, owner, steward, member):
    product = ProductFactory(domain=domain, name="Customer orders", slug="customer-orders")
    port = OutputPortFactory(product=product)
    ColumnFactory(port=port, name="order_id", classification=Classification.INTERNAL)
    ColumnFactory(port=port, name="email", classification=Classification.CONFIDENTIAL)
    return product


@pytest.fixture
def other_steward(db):
    user = UserFactory(username="other-steward")
    MembershipFactory(
        domain=DomainFactory(name="Marketing", slug="marketing"),
        user=user,
        role=MembershipRole.STEWARD,
    )
    return user


def received(user) -> list[Notification]:
    return list(Notification.objects.filter(user=user).order_by("pk"))


def access_tab(product) -> str:
    return reverse("sharing:product-access", args=[product.domain.slug, product.slug])


def test_a_request_notifies_the_domains_deciders_only(
    product, owner, steward, member, outsider, other_steward, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request = access_request_create(product=product, by=outsider, purpose="**Churn** study")
    for person in (owner, steward):
        [notice] = received(person)
        assert notice.title == "outsider asks to read Customer orders"
        assert "**Churn** study" in notice.body
        assert notice.url == access_tab(product) + "#pending"
        assert notice.product == product and notice.key == f"access-request:{request.pk}"
    for person in (member, outsider, other_steward):
        assert received(person) == []
    # The email goes as before.
    assert [m.to for m in mail.outbox] == [["owner@example.com", "steward@example.com"]]


def test_an_approval_tells_the_requester_where_to_read(
    product, steward, outsider, django_capture_on_commit_callbacks
):
    request = access_request_create(product=product, by=outsider, purpose="x", duration_days=20)
    with django_capture_on_commit_callbacks(execute=True):
        grant = access_request_approve(request=request, by=steward, reason="For Q3 only")
    [notice] = received(outsider)
    assert notice.title == "Your access to Customer orders is approved"
    assert f"until {grant.expires_at:%Y-%m-%d}" in notice.body and "For Q3 only" in notice.body
    assert notice.url == reverse("sharing:product-data", args=["sales", "customer-orders"])
    assert mail.outbox[-1].to == ["outsider@example.com"]


def test_a_denial_tells_the_requester_why(product, owner, outsider):
    request = access_request_create(product=product, by=outsider, purpose="x")
    access_request_deny(request=request, by=owner, reason="Ask for the anonymised product")
    [notice] = received(outsider)
    assert notice.title == "Your request to read Customer orders was denied"
    assert notice.body == "Reason: Ask for the anonymised product"
    assert notice.url == access_tab(product) + "#your-access"


def test_a_refused_decision_notifies_nobody(product, owner, member, outsider):
    request = access_request_create(product=product, by=outsider, purpose="x")
    with pytest.raises(ValidationError):
        access_request_deny(request=request, by=owner, reason=" ")
    with pytest.raises(ValidationError):
        access_request_approve(request=request, by=owner, columns=["ghost"])
    assert received(outsider) == []


def test_an_auto_approval_tells_the_requester_and_bothers_no_decider(
    product, owner, steward, outsider
):
    product.access_auto_approve = True
    product.save(update_fields=["access_auto_approve"])
    access_request_create(product=product, by=outsider, purpose="x", columns=["order_id"])
    assert [n.title for n in received(outsider)] == ["Your access to Customer orders is approved"]
    assert received(owner) == [] and received(steward) == []


def test_a_revocation_tells_the_grantee(product, owner, steward, outsider, admin_user):
    grant = grant_create(product=product, by=owner, user=outsider, reason="Audit")
    grant_revoke(grant=grant, by=steward, reason="The audit is over")
    [notice] = received(outsider)
    assert notice.title == "Your access to Customer orders was revoked"
    assert notice.body == "Reason: The audit is over"
    assert notice.key == f"grant-revoked:{grant.pk}"
    with pytest.raises(ValidationError):  # revoking twice: refused, not notified again
        grant_revoke(grant=grant, by=steward, reason="again")
    assert len(received(outsider)) == 1

    second = grant_create(product=product, by=owner, user=outsider, reason="Again")
    assert grants_revoke_for_user(user=outsider, by=admin_user, reason="Left the company") == 1
    assert [n.key for n in received(outsider)] == [
        f"grant-revoked:{grant.pk}",
        f"grant-revoked:{second.pk}",
    ]


def test_a_team_revocation_tells_each_member(product, owner):
    team = Group.objects.create(name="Finance")
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    team.user_set.add(alice, bob)
    grant = grant_create(product=product, by=owner, group=team, reason="Close")
    grant_revoke(grant=grant, by=owner, reason="Closed")
    assert [n.title for n in received(alice)] == ["Your access to Customer orders was revoked"]
    assert len(received(bob)) == 1


def test_an_expiry_notice_reaches_grantee_and_owners_once(
    product, owner, steward, outsider, django_capture_on_commit_callbacks
):
    soon = grant_create(product=product, by=owner, user=outsider, reason="x", duration_days=10)
    with django_capture_on_commit_callbacks(execute=True):
        assert access_review() == 1
    [mine] = received(outsider)
    assert mine.title == f"Your access to Customer orders ends on {soon.expires_at:%Y-%m-%d}"
    assert mine.url == access_tab(product) + "#your-access"
    [owners] = received(owner)
    assert owners.title.startswith("Access of outsider to Customer orders ends on")
    assert owners.url == access_tab(product) + "#grants"
    assert received(steward) == []  # owners renew (direct grants), as the email says
    assert sorted(m.to[0] for m in mail.outbox) == ["outsider@example.com", "owner@example.com"]

    # The daily review runs again, and the claimed notice is not sent twice.
    AccessGrant.objects.filter(pk=soon.pk).update(expiry_notified_at=None)
    later = timezone.now() + timedelta(hours=1)
    assert access_review(now=later) == 1  # claimed again (reset above), yet notified once
    assert len(received(outsider)) == 1 and len(received(owner)) == 1
