"""The outbox of events (portal.core.events): an event commits with its change and only
then, consumers are woken once per transaction, and each event's audience follows what it
is about (sharing.events.selectors.events_visible_to)."""

import pytest
from django.db import transaction

from portal.celery import app as celery_app
from portal.core.events import (
    EVENT_TYPES,
    event_consumer_started,
    event_emit,
    event_envelope,
    events_sequence,
)
from portal.models import Event
from products.choices import LifecycleStatus, MembershipRole
from sharing.events.selectors import events_visible_to
from tests.factories import DomainFactory, MembershipFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_committed_change_has_its_event_and_a_rolled_back_one_none(product):
    with transaction.atomic():
        product.status = LifecycleStatus.DEPRECATED
        product.save(update_fields=["status"])
        event_emit("portal.product.deprecated", product=product, data={"reason": "v2"})

    with pytest.raises(RuntimeError), transaction.atomic():
        product.status = LifecycleStatus.RETIRED
        product.save(update_fields=["status"])
        event_emit("portal.product.retired", product=product)
        raise RuntimeError("the change fails after its event was written")

    assert list(Event.objects.values_list("type", "subject")) == [
        ("portal.product.deprecated", "sales.orders")
    ]


WAKE_UPS: list[int] = []


@celery_app.task(name="tests.sharing.events.wake_up_counted")
def wake_up_counted() -> None:
    WAKE_UPS.append(Event.objects.count())


@pytest.mark.usefixtures("eager_tasks")
def test_consumers_are_woken_once_per_transaction_after_the_commit(product, settings):
    settings.EVENT_CONSUMER_TASKS = ["tests.sharing.events.wake_up_counted"]
    WAKE_UPS.clear()
    with transaction.atomic():
        for _ in range(3):
            event_emit("portal.product.version_changed", product=product)
        assert WAKE_UPS == []  # not before the commit
    # Once, after the commit, seeing all three events.
    assert WAKE_UPS == [3]


@pytest.mark.usefixtures("eager_tasks")
def test_a_woken_consumer_is_not_woken_again_until_it_starts(product, settings):
    """At 50 commits a second, one queued wake-up per consumer is enough: the next
    commits find it still queued (its mark in the cache) until the consumer starts."""
    settings.EVENT_CONSUMER_TASKS = ["tests.sharing.events.wake_up_counted"]
    settings.EVENTS_WAKE_COALESCE_SECONDS = 10
    WAKE_UPS.clear()
    for _ in range(3):  # three commits; the task (eager: run at once) never says it started
        with transaction.atomic():
            event_emit("portal.product.version_changed", product=product)
    assert WAKE_UPS == [1]

    event_consumer_started("tests.sharing.events.wake_up_counted")
    with transaction.atomic():
        event_emit("portal.product.version_changed", product=product)
    assert WAKE_UPS == [1, 4]  # woken again, and it reads every event since


def test_the_envelope_is_cloudevents_1_0(product):
    event = event_emit("portal.product.published", product=product, data={"version": "1.0.0"})
    events_sequence()  # what every reader does first
    envelope = event_envelope(Event.objects.get(pk=event.pk))
    assert envelope["specversion"] == "1.0"
    assert envelope["id"] == str(event.event_id)
    assert envelope["type"] == "portal.product.published"
    assert envelope["subject"] == "sales.orders"
    assert envelope["time"].endswith("Z") and "T" in envelope["time"]
    assert envelope["sequence"] == "1"  # its position, given after the commit by a reader
    assert envelope["data"] == {"version": "1.0.0"}
    assert envelope["source"]


def test_an_unknown_type_is_refused(product):
    with pytest.raises(ValueError, match="Unknown event type"):
        event_emit("portal.product.exploded", product=product)
    assert "portal.product.published" in EVENT_TYPES


def test_who_sees_which_event(domain, owner, steward, member, outsider, admin_user):
    published = ProductFactory(domain=domain, slug="orders", owners=[owner])
    draft = ProductFactory(domain=domain, slug="draft-one", status=LifecycleStatus.DRAFT)
    other_domain = DomainFactory(name="Marketing", slug="marketing")
    other_steward = UserFactory(username="marketing-steward")
    MembershipFactory(domain=other_domain, user=other_steward, role=MembershipRole.STEWARD)
    requester = UserFactory(username="requester")

    public = event_emit("portal.product.published", product=published)
    drafted = event_emit("portal.product.created", product=draft)
    requested = event_emit("portal.access.requested", product=published, people=[requester])

    def seen(user):
        return set(events_visible_to(user).values_list("pk", flat=True))

    assert seen(admin_user) == {public.pk, drafted.pk, requested.pk}
    assert seen(owner) == {public.pk, drafted.pk, requested.pk}
    assert seen(steward) == {public.pk, drafted.pk, requested.pk}
    # A plain member sees the domain's draft, not someone else's access request.
    assert seen(member) == {public.pk, drafted.pk}
    assert seen(requester) == {public.pk, requested.pk}
    # A steward of another domain sees only what every signed-in person sees.
    assert seen(other_steward) == {public.pk}
    assert seen(outsider) == {public.pk}
    assert seen(None) == set()


def test_positions_follow_commits_not_inserts(product, postgres):
    """A transaction that inserts its event first but commits last gets the later
    position: a consumer past the first committed event still sees the late one."""
    import threading

    from django.db import connection

    from portal.core.events import events_sequenced

    inserted, release = threading.Event(), threading.Event()

    def slow_transaction():
        try:
            with transaction.atomic():
                event_emit("portal.product.version_changed", product=product, data={"n": "slow"})
                inserted.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    slow = threading.Thread(target=slow_transaction)
    slow.start()
    assert inserted.wait(timeout=30)
    fast = event_emit("portal.product.published", product=product, data={"n": "fast"})
    events_sequence()
    seen = [e.data["n"] for e in events_sequenced()]
    assert seen == ["fast"]
    cursor = events_sequenced().last().position
    release.set()
    slow.join(timeout=30)
    events_sequence()
    late = list(events_sequenced(after=cursor))
    assert [e.data["n"] for e in late] == ["slow"]
    assert late[0].id < fast.id and late[0].position > cursor
    # Sequencing again changes nothing; every event has exactly one position.
    assert events_sequence() == 0
    assert sorted(Event.objects.values_list("position", flat=True)) == [1, 2]
