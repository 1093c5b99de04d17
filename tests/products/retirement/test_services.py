"""Retiring unused products: the unused rule, flags to owners (once per period), the
proposal and its audience, objections, withdrawal, the automatic advance (deprecated at
the end of the notice, retired at the end of the grace period, ending grants, share links
and export schedules in one transaction), every step recorded and every email sent once.
Time moves by passing `now=` to the services."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from products.catalog.services.products import product_publish
from products.choices import LifecycleStatus, MembershipRole
from products.models import DataProduct, DomainMembership, RetirementEvent, RetirementProposal
from products.retirement.notifications import retirement_event_notify
from products.retirement.services import (
    retirement_advance,
    retirement_audience,
    retirement_flag_unused,
    retirement_object,
    retirement_proceed,
    retirement_propose,
    retirement_withdraw,
)
from products.usage.selectors import products_unused
from sharing.choices import AuditAction, Channel
from sharing.models import AccessEvent, AccessGrant, ExportSchedule, ShareLink
from tests.factories import DomainFactory, OutputPortFactory, ProductFactory, UserFactory

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
REASON = "Replaced by sales.orders-v2; nobody has read this since March."

pytestmark = pytest.mark.usefixtures("eager_tasks")


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Call a service the way a request or task does: its emails go out after commit."""

    def call(service, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return service(**kwargs)

    return call


def backdate(product, days: int, now=NOW):
    DataProduct.objects.filter(pk=product.pk).update(
        created_at=now - timedelta(days=days), published_at=now - timedelta(days=days)
    )
    product.refresh_from_db()
    return product


def read(product, user, at):
    return AccessEvent.objects.create(
        at=at,
        action=AuditAction.READ,
        user=user,
        product=product,
        product_key=product.key,
        channel=Channel.DOWNLOAD,
    )


def grant(product, *, user=None, group=None, expires_at=NOW + 365 * DAY, **fields):
    return AccessGrant.objects.create(
        product=product, user=user, group=group, expires_at=expires_at, reason="test", **fields
    )


@pytest.fixture
def product(domain, owner):
    product = ProductFactory(domain=domain, name="Orders v1", slug="orders-v1", owners=[owner])
    return backdate(product, 200)


@pytest.fixture
def grantee(product):
    user = UserFactory(username="grantee")
    grant(product, user=user)
    return user


@pytest.fixture
def team(product):
    """A team (group) holding a grant: each active member is in the audience."""
    group = Group.objects.create(name="analysts")
    members = [UserFactory(username="ann"), UserFactory(username="ben")]
    gone = UserFactory(username="gone", is_active=False)
    group.user_set.add(*members, gone)
    grant(product, group=group)
    return members


@pytest.fixture
def sharing(product, grantee, owner):
    """A share link and an export schedule with its beat entry, made with the models."""
    link = ShareLink.objects.create(
        token_hash="a" * 64,
        token_hint="aaaaaaaa",
        created_by=grantee,
        product=product,
        expires_at=NOW + 300 * DAY,
    )
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="days")
    task = PeriodicTask.objects.create(
        name="exports:test", task="sharing.tasks.export_scheduled", interval=interval
    )
    schedule = ExportSchedule.objects.create(
        product=product, name="Nightly", created_by=grantee, cron="0 2 * * *", periodic_task=task
    )
    return link, schedule, task


def kinds(product) -> list[str]:
    return list(
        RetirementEvent.objects.filter(product=product)
        .order_by("at", "pk")
        .values_list("kind", flat=True)
    )


def sent_to(subject_part: str) -> list[str]:
    return sorted(to for m in mail.outbox if subject_part in m.subject for to in m.to)


# --- the unused rule and the flag ------------------------------------------------------


def test_unused_means_out_for_90_days_and_unread_for_90(domain, outsider):
    unused = backdate(ProductFactory(domain=domain, name="Unread"), 200)
    read_89_days_ago = backdate(ProductFactory(domain=domain, name="Read"), 200)
    read(read_89_days_ago, outsider, NOW - 89 * DAY)
    read_long_ago = backdate(ProductFactory(domain=domain, name="Read long ago"), 400)
    read(read_long_ago, outsider, NOW - 200 * DAY)
    backdate(ProductFactory(domain=domain, name="New"), 30)
    # Created long ago but published last month: new to its consumers.
    late = ProductFactory(domain=domain, name="Published late")
    DataProduct.objects.filter(pk=late.pk).update(
        created_at=NOW - 300 * DAY, published_at=NOW - 20 * DAY
    )
    draft = ProductFactory(domain=domain, name="Draft", status=LifecycleStatus.DRAFT)
    backdate(draft, 200)
    deprecated = ProductFactory(domain=domain, name="Old", status=LifecycleStatus.DEPRECATED)
    backdate(deprecated, 200)
    assert set(products_unused(now=NOW).values_list("name", flat=True)) == {
        "Unread",
        "Read long ago",
        "Old",
    }
    assert unused in products_unused(now=NOW)


def test_owners_are_flagged_once_per_period(run, product, owner, domain):
    backdate(ProductFactory(domain=domain, name="Orphan", slug="orphan"), 200)
    steward = UserFactory(username="steward")
    DomainMembership.objects.create(domain=domain, user=steward, role=MembershipRole.STEWARD)

    assert run(retirement_flag_unused, now=NOW) == 2
    assert sent_to("orders-v1] No data read") == ["owner@example.com"]
    # A product naming no owner: its domain's owners and stewards.
    assert sent_to("orphan] No data read") == ["owner@example.com", "steward@example.com"]
    assert "propose its retirement" in mail.outbox[0].body.lower()

    mail.outbox.clear()
    assert run(retirement_flag_unused, now=NOW + DAY) == 0  # the next day: nothing new
    assert run(retirement_flag_unused, now=NOW + 60 * DAY) == 0
    assert mail.outbox == []
    assert kinds(product) == ["flagged"]
    event = RetirementEvent.objects.get(product=product)
    assert event.notified_at is not None and event.detail["last_read_at"] is None
    # A redelivered notification sends nothing.
    assert retirement_event_notify(event_id=event.pk) == 0

    # A period later, still unread: flagged again.
    assert run(retirement_flag_unused, now=NOW + 91 * DAY) == 2
    assert kinds(product) == ["flagged", "flagged"]


def test_a_product_with_a_proposal_is_not_flagged(run, product, owner):
    run(retirement_propose, product=product, by=owner, reason=REASON, now=NOW)
    assert run(retirement_flag_unused, now=NOW + DAY) == 0


# --- proposing -------------------------------------------------------------------------


def test_audience_is_active_grantees_and_team_members(product, grantee, team):
    expired = UserFactory(username="expired")
    grant(product, user=expired, expires_at=NOW - DAY)
    revoked = UserFactory(username="revoked")
    grant(product, user=revoked, revoked_at=NOW - DAY)
    grant(ProductFactory(domain=product.domain), user=UserFactory(username="elsewhere"))
    audience = retirement_audience(product=product, now=NOW)
    assert sorted(audience.values_list("username", flat=True)) == ["ann", "ben", "grantee"]


def test_proposal_validation(product, owner, steward, member, outsider, admin_user):
    cases = [
        ({"notice_days": 6}, "notice_days"),
        ({"notice_days": "soon"}, "notice_days"),
        ({"notice_days": 400}, "notice_days"),
        ({"reason": "  "}, "reason"),
    ]
    for change, field in cases:
        kwargs = {"product": product, "by": owner, "reason": REASON, "notice_days": 30}
        with pytest.raises(ValidationError) as caught:
            retirement_propose(**{**kwargs, **change}, now=NOW)
        assert field in caught.value.message_dict, change
    draft = ProductFactory(domain=product.domain, status=LifecycleStatus.DRAFT)
    with pytest.raises(ValidationError) as caught:
        retirement_propose(product=draft, by=owner, reason=REASON, now=NOW)
    assert "draft" in caught.value.message_dict["product"][0]
    for user in (member, outsider):
        with pytest.raises(PermissionDenied):
            retirement_propose(product=product, by=user, reason=REASON, now=NOW)
    assert not RetirementProposal.objects.exists() and not RetirementEvent.objects.exists()

    proposal = retirement_propose(product=product, by=steward, reason=REASON, now=NOW)
    assert (proposal.notice_days, proposal.notice_ends_at) == (30, NOW + 30 * DAY)
    with pytest.raises(ValidationError) as caught:
        retirement_propose(product=product, by=admin_user, reason=REASON, notice_days=7)
    assert "already has a retirement proposal" in caught.value.message_dict["product"][0]


def test_proposing_tells_the_audience_once(run, product, owner, grantee, team):
    proposal = run(
        retirement_propose, product=product, by=owner, reason=REASON, notice_days=14, now=NOW
    )
    assert sent_to("Retirement proposed") == [
        "ann@example.com",
        "ben@example.com",
        "grantee@example.com",
    ]
    # One message per person: grantees never see each other's addresses.
    assert all(len(m.to) == 1 for m in mail.outbox)
    assert REASON in mail.outbox[0].body and "2025-06-29" in mail.outbox[0].body
    event = proposal.events.get()
    assert event.kind == "proposed" and len(event.recipients) == 3
    assert retirement_event_notify(event_id=event.pk) == 0
    assert len(mail.outbox) == 3


# --- the whole way to retirement ------------------------------------------------------


def test_without_objection_deprecated_then_retired_ending_every_way_in(
    run, product, owner, grantee, team, sharing, settings
):
    settings.RETIREMENT_GRACE_DAYS = 30
    link, schedule, task = sharing
    other_product = ProductFactory(domain=product.domain)
    untouched = grant(other_product, user=grantee)
    run(retirement_propose, product=product, by=owner, reason=REASON, notice_days=14, now=NOW)
    mail.outbox.clear()

    # Before the notice ends nothing happens.
    assert run(retirement_advance, now=NOW + 13 * DAY)["deprecated"] == 0
    product.refresh_from_db()
    assert product.status == LifecycleStatus.PUBLISHED

    # Notice over, no objection: deprecated, once.
    assert run(retirement_advance, now=NOW + 14 * DAY)["deprecated"] == 1
    assert run(retirement_advance, now=NOW + 15 * DAY) == {
        "deprecated": 0,
        "retired": 0,
        "waiting": 0,
        "withdrawn": 0,
    }
    product.refresh_from_db()
    proposal = RetirementProposal.objects.get()
    assert product.status == LifecycleStatus.DEPRECATED
    assert (proposal.status, proposal.retire_at) == ("deprecated", NOW + 44 * DAY)
    assert sent_to("is deprecated") == [
        "ann@example.com",
        "ben@example.com",
        "grantee@example.com",
    ]
    assert AccessGrant.objects.filter(product=product, revoked_at__isnull=True).count() == 2
    mail.outbox.clear()

    # Grace period over: retired, and everything that served its data ends with it.
    assert run(retirement_advance, now=NOW + 43 * DAY)["retired"] == 0
    assert run(retirement_advance, now=NOW + 44 * DAY)["retired"] == 1
    assert run(retirement_advance, now=NOW + 45 * DAY)["retired"] == 0
    product.refresh_from_db()
    proposal.refresh_from_db()
    assert product.status == LifecycleStatus.RETIRED and proposal.status == "retired"
    grants = AccessGrant.objects.filter(product=product)
    assert grants.count() == 2 and not grants.filter(revoked_at__isnull=True).exists()
    assert all("was retired" in g.revoke_reason and g.revoked_by == owner for g in grants)
    assert AccessGrant.objects.get(pk=untouched.pk).revoked_at is None
    revocations = AccessEvent.objects.filter(product=product, action=AuditAction.REVOKE)
    # The access audit records each revocation too: the two grants and the share link.
    assert revocations.filter(grant__isnull=False).count() == 2
    assert revocations.filter(detail__share_link=link.pk).count() == 1
    link.refresh_from_db()
    assert link.revoked_at == NOW + 44 * DAY and link.revoked_by == owner
    assert "was retired" in link.revoke_reason
    schedule.refresh_from_db()
    assert (schedule.enabled, schedule.ended_at) == (False, NOW + 44 * DAY)
    assert "was retired" in schedule.end_reason
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    # The grantees were told the product is retired, though their grants are gone now.
    assert sent_to("is retired") == ["ann@example.com", "ben@example.com", "grantee@example.com"]

    assert kinds(product) == [
        "proposed",
        "deprecated",
        "grants_revoked",
        "share_links_revoked",
        "schedules_ended",
        "retired",
    ]
    counts = {
        e.kind: e.detail.get("count")
        for e in RetirementEvent.objects.filter(product=product)
        if "count" in e.detail
    }
    assert counts == {"grants_revoked": 2, "share_links_revoked": 1, "schedules_ended": 1}
    # Every email once, over the whole flow; steps that tell nobody are never "told".
    for event in RetirementEvent.objects.filter(product=product):
        assert retirement_event_notify(event_id=event.pk) == 0
        assert (event.notified_at is None) == (event.recipients == [])


def test_an_objection_stops_the_advance_until_the_owners_decide(
    run, product, owner, grantee, team, outsider
):
    proposal = run(
        retirement_propose, product=product, by=owner, reason=REASON, notice_days=7, now=NOW
    )
    mail.outbox.clear()
    with pytest.raises(PermissionDenied):  # no access, no follow: not the audience
        retirement_object(proposal=proposal, by=outsider, reason="I like it", now=NOW + DAY)
    with pytest.raises(ValidationError) as caught:
        retirement_object(proposal=proposal, by=grantee, reason=" ", now=NOW + DAY)
    assert "reason" in caught.value.message_dict

    run(
        retirement_object,
        proposal=proposal,
        by=grantee,
        reason="The monthly close still reads it.",
        now=NOW + DAY,
    )
    proposal.refresh_from_db()
    assert proposal.status == "objected"
    assert sent_to("Objection") == ["owner@example.com"]
    with pytest.raises(ValidationError):  # once each
        retirement_object(proposal=proposal, by=grantee, reason="Again", now=NOW + 2 * DAY)
    with pytest.raises(ValidationError):  # the notice period is over
        retirement_object(proposal=proposal, by=team[0], reason="Late", now=NOW + 8 * DAY)

    assert run(retirement_advance, now=NOW + 60 * DAY)["deprecated"] == 0
    product.refresh_from_db()
    assert product.status == LifecycleStatus.PUBLISHED

    # The owners decide: not before the notice ends, and only with a reason.
    with pytest.raises(ValidationError):
        retirement_proceed(proposal=proposal, by=owner, reason="Go", now=NOW + 3 * DAY)
    with pytest.raises(ValidationError):
        retirement_proceed(proposal=proposal, by=owner, reason="", now=NOW + 8 * DAY)
    with pytest.raises(PermissionDenied):
        retirement_proceed(proposal=proposal, by=grantee, reason="Go", now=NOW + 8 * DAY)
    mail.outbox.clear()
    run(
        retirement_proceed,
        proposal=proposal,
        by=owner,
        reason="The close moves to orders-v2 this month.",
        now=NOW + 8 * DAY,
    )
    proposal.refresh_from_db()
    product.refresh_from_db()
    assert (proposal.status, product.status) == ("deprecated", LifecycleStatus.DEPRECATED)
    assert "grantee@example.com" in sent_to("goes ahead")
    assert kinds(product) == ["proposed", "objected", "proceeded", "deprecated"]


def test_withdrawing(run, product, owner, grantee, outsider):
    proposal = run(retirement_propose, product=product, by=owner, reason=REASON, now=NOW)
    run(retirement_object, proposal=proposal, by=grantee, reason="Needed", now=NOW + DAY)
    mail.outbox.clear()
    with pytest.raises(PermissionDenied):
        retirement_withdraw(proposal=proposal, by=grantee, now=NOW + DAY)
    run(
        retirement_withdraw,
        proposal=proposal,
        by=owner,
        reason="Fair enough, it stays.",
        now=NOW + 2 * DAY,
    )
    proposal.refresh_from_db()
    assert (proposal.status, proposal.closed_by, proposal.close_reason) == (
        "withdrawn",
        owner,
        "Fair enough, it stays.",
    )
    assert sent_to("withdrawn") == ["grantee@example.com"]
    with pytest.raises(ValidationError):
        retirement_withdraw(proposal=proposal, by=owner, now=NOW + 3 * DAY)
    assert run(retirement_advance, now=NOW + 90 * DAY)["deprecated"] == 0
    # A new proposal may follow.
    assert retirement_propose(product=product, by=owner, reason=REASON, now=NOW + 4 * DAY)


def test_published_again_during_the_grace_period_keeps_the_product(run, product, owner):
    run(retirement_propose, product=product, by=owner, reason=REASON, notice_days=7, now=NOW)
    run(retirement_advance, now=NOW + 7 * DAY)
    product.refresh_from_db()
    assert product.status == LifecycleStatus.DEPRECATED
    OutputPortFactory(product=product)  # publishing needs a port
    product_publish(product=product, by=owner)
    assert run(retirement_advance, now=NOW + 60 * DAY)["withdrawn"] == 1
    product.refresh_from_db()
    assert product.status == LifecycleStatus.PUBLISHED
    assert RetirementProposal.objects.get().status == "withdrawn"


def test_a_proposer_who_left_makes_the_step_wait(run, product, owner, domain):
    steward = UserFactory(username="steward")
    DomainMembership.objects.create(domain=domain, user=steward, role=MembershipRole.STEWARD)
    run(retirement_propose, product=product, by=steward, reason=REASON, notice_days=7, now=NOW)
    DomainMembership.objects.filter(user=steward).delete()
    assert run(retirement_advance, now=NOW + 8 * DAY)["waiting"] == 1
    assert run(retirement_advance, now=NOW + 9 * DAY)["waiting"] == 1
    product.refresh_from_db()
    assert product.status == LifecycleStatus.PUBLISHED
    assert kinds(product) == ["proposed", "blocked"]  # recorded once
    assert sent_to("is waiting") == ["owner@example.com"]
    proposal = RetirementProposal.objects.get()
    retirement_withdraw(proposal=proposal, by=owner, now=NOW + 10 * DAY)


def test_a_retired_product_leaves_the_catalog_for_consumers(run, product, owner, grantee):
    run(retirement_propose, product=product, by=owner, reason=REASON, notice_days=7, now=NOW)
    run(retirement_advance, now=NOW + 7 * DAY)
    run(retirement_advance, now=NOW + 60 * DAY)
    assert not DataProduct.objects.visible_to(grantee).filter(pk=product.pk).exists()
    assert DataProduct.objects.visible_to(owner).filter(pk=product.pk).exists()


def test_other_domains_cannot_propose(product, db):
    stranger_owner = UserFactory()
    DomainMembership.objects.create(
        domain=DomainFactory(slug="hr"), user=stranger_owner, role=MembershipRole.OWNER
    )
    with pytest.raises(PermissionDenied):
        retirement_propose(product=product, by=stranger_owner, reason=REASON)
