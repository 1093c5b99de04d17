"""From the outbox to a real local receiver, in this process: the fan-out writes one
delivery per matching event the owner may see; the sender signs (verified with the
reference Standard Webhooks library), keeps order, retries with back-off (Retry-After
honoured), logs every try, dead-letters after the last, and pauses a subscription
failing for a day, telling its owner."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.core.events import event_emit
from portal.models import Event, Notification
from products.choices import LifecycleStatus
from products.models import DomainMembership
from sharing.models import WebhookAttempt, WebhookDelivery
from sharing.models.webhooks import DeliveryStatus, WebhookStatus
from sharing.webhooks.services import (
    retry_delay,
    webhook_deliveries_send,
    webhook_subscription_create,
    webhook_test_send,
    webhooks_due_wake,
    webhooks_fan_out,
)
from tests.factories import DomainFactory, ProductFactory, UserFactory
from tests.sharing.webhooks.receiver import Answer, verified

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_loopback")]


def _subscribe(owner, receiver, **filters):
    filters.setdefault("event_types", ["portal.product.*"])
    return webhook_subscription_create(
        owner=owner, name="receiver", target_url=receiver.url, **filters
    )


def _send_all(subscription, rounds: int = 50):
    for _ in range(rounds):
        outcome = webhook_deliveries_send(subscription_id=subscription.pk)
        if not outcome.sent:
            return


def test_events_arrive_signed_in_order_with_the_cloudevents_body(owner, product, receiver):
    created = _subscribe(owner, receiver)
    events = [
        event_emit("portal.product.version_changed", product=product, data={"version": str(n)})
        for n in range(5)
    ]
    event_emit("portal.incident.opened", product=product)  # not a type it asked for
    assert webhooks_fan_out() == 5
    assert webhooks_fan_out() == 0  # the cursor moved past them
    _send_all(created.subscription)

    got = receiver.delivered()
    assert [r.webhook_id for r in got] == [str(e.event_id) for e in events]
    for request, event in zip(got, events, strict=True):
        envelope = verified(created.secret, request)
        position = Event.objects.get(pk=event.pk).position  # given after the commit
        assert envelope["id"] == str(event.event_id) and envelope["sequence"] == str(position)
        assert envelope["type"] == "portal.product.version_changed"
        assert envelope["subject"] == "sales.orders"
        assert request.headers["content-type"] == "application/json"
    log = WebhookAttempt.objects.filter(delivery__subscription=created.subscription)
    assert log.count() == 5
    assert {(a.outcome, a.response_code) for a in log} == {("succeeded", 200)}


def test_a_round_keeps_one_connection_to_its_target(owner, product, receiver):
    created = _subscribe(owner, receiver)
    for n in range(4):
        event_emit("portal.product.version_changed", product=product, data={"version": str(n)})
    webhooks_fan_out()
    assert webhook_deliveries_send(subscription_id=created.subscription.pk).sent == 4
    # One TCP connection for the round's four requests, not a handshake each.
    assert len({r.client_port for r in receiver.delivered()}) == 1


def test_a_wrong_secret_does_not_verify(owner, product, receiver):
    created = _subscribe(owner, receiver)
    event_emit("portal.product.published", product=product)
    webhooks_fan_out()
    _send_all(created.subscription)
    request = receiver.delivered()[0]
    other = _subscribe(owner, receiver).secret
    with pytest.raises(Exception, match="(?i)signature"):
        verified(other, request)


def test_only_events_the_owner_may_see(owner, outsider, domain, receiver):
    """A draft's events stay in its domain: the outsider's subscription gets the
    published product's event only; the product filter narrows further."""
    draft = ProductFactory(domain=domain, slug="plans", status=LifecycleStatus.DRAFT)
    published = ProductFactory(domain=domain, slug="orders")
    other_domain = ProductFactory(domain=DomainFactory(slug="hr", name="HR"), slug="people")
    mine = _subscribe(outsider, receiver)
    by_product = _subscribe(owner, receiver, product="sales.orders")
    by_domain = _subscribe(owner, receiver, domain="hr")
    event_emit("portal.product.created", product=draft)
    seen = event_emit("portal.product.published", product=published)
    hr = event_emit("portal.product.published", product=other_domain)
    webhooks_fan_out()

    def delivered_to(created):
        return list(
            WebhookDelivery.objects.filter(subscription=created.subscription).values_list(
                "message_id", flat=True
            )
        )

    assert delivered_to(mine) == [seen.event_id, hr.event_id]
    assert delivered_to(by_product) == [seen.event_id]
    assert delivered_to(by_domain) == [hr.event_id]


def test_failure_is_retried_after_back_off_then_dead_lettered(owner, product, receiver, settings):
    settings.WEBHOOKS_MAX_ATTEMPTS = 3
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 0  # every retry due at once
    receiver.script = lambda n: Answer(status=500 if n < 3 else 200)
    created = _subscribe(owner, receiver)
    first = event_emit("portal.product.published", product=product)
    second = event_emit("portal.product.deprecated", product=product)
    webhooks_fan_out()
    _send_all(created.subscription)

    # Three 500s for the first (it waits at the head, the second behind it), then the next.
    ids = [(r.webhook_id, r.answered) for r in receiver.snapshot()]
    assert ids == [(str(first.event_id), 500)] * 3 + [(str(second.event_id), 200)]
    dead = WebhookDelivery.objects.get(message_id=first.event_id)
    assert dead.status == DeliveryStatus.DEAD and dead.attempts == 3
    assert dead.last_response_code == 500 and "500" in dead.last_error
    assert list(dead.log.values_list("number", "outcome")) == [
        (3, "failed"),
        (2, "failed"),
        (1, "failed"),
    ]
    created.subscription.refresh_from_db()
    assert created.subscription.failing_since is None  # the second succeeded


def test_retry_after_is_honoured_on_429(owner, product, receiver):
    receiver.script = lambda n: Answer(status=429, retry_after="120")
    created = _subscribe(owner, receiver)
    event_emit("portal.product.published", product=product)
    webhooks_fan_out()
    before = timezone.now()
    outcome = webhook_deliveries_send(subscription_id=created.subscription.pk)
    assert outcome.sent == 1 and outcome.retry_in == 120
    delivery = WebhookDelivery.objects.get(subscription=created.subscription)
    assert delivery.next_attempt_at >= before + timedelta(seconds=119)
    # Not due yet: another round sends nothing, and the periodic wake skips it.
    assert webhook_deliveries_send(subscription_id=created.subscription.pk).sent == 0
    assert webhooks_due_wake() == 0
    assert len(receiver.snapshot()) == 1


def test_back_off_grows_exponentially_with_jitter_and_a_cap(settings):
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 10
    settings.WEBHOOKS_RETRY_MAX_SECONDS = 100
    delays = {n: [retry_delay(n) for _ in range(50)] for n in (1, 2, 3, 6)}
    assert all(5 <= d <= 10 for d in delays[1])
    assert all(10 <= d <= 20 for d in delays[2])
    assert all(20 <= d <= 40 for d in delays[3])
    assert all(50 <= d <= 100 for d in delays[6])  # capped
    assert len(set(delays[3])) > 1  # jitter
    assert retry_delay(1, retry_after=7) == 7 and retry_delay(1, retry_after=999) == 100


def test_a_hanging_receiver_times_out_and_is_logged(owner, product, receiver, settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.5
    receiver.script = lambda n: Answer(hang_seconds=2)
    created = _subscribe(owner, receiver)
    event_emit("portal.product.published", product=product)
    webhooks_fan_out()
    webhook_deliveries_send(subscription_id=created.subscription.pk)
    attempt = WebhookAttempt.objects.get()
    assert attempt.outcome == "failed" and attempt.response_code is None
    assert "No answer within 0.5 s" in attempt.error and attempt.latency_ms >= 500


def test_a_day_of_failures_pauses_and_tells_the_owner(owner, product, receiver, settings):
    settings.WEBHOOKS_RETRY_BASE_SECONDS = 0
    receiver.script = lambda n: Answer(status=503)
    created = _subscribe(owner, receiver)
    subscription = created.subscription
    event_emit("portal.product.published", product=product)
    webhooks_fan_out()
    webhook_deliveries_send(subscription_id=subscription.pk)
    subscription.refresh_from_db()
    assert subscription.status == WebhookStatus.ACTIVE and subscription.failing_since
    subscription.failing_since -= timedelta(days=1)  # as if it had failed since yesterday
    subscription.save()
    webhook_deliveries_send(subscription_id=subscription.pk)
    subscription.refresh_from_db()
    assert subscription.status == WebhookStatus.PAUSED
    assert "failing since" in subscription.paused_reason
    note = Notification.objects.get(user=owner)
    assert "paused" in note.title and receiver.url in note.body
    # Paused: nothing more is sent, and new events wait for it.
    sent = len(receiver.snapshot())
    event_emit("portal.product.deprecated", product=product)
    webhooks_fan_out()
    assert webhook_deliveries_send(subscription_id=subscription.pk).sent == 0
    assert len(receiver.snapshot()) == sent
    assert subscription.deliveries.filter(status=DeliveryStatus.PENDING).count() == 2


def test_a_test_event_is_signed_and_queued_behind(owner, receiver):
    created = _subscribe(owner, receiver)
    delivery = webhook_test_send(subscription=created.subscription, by=owner)
    _send_all(created.subscription)
    envelope = verified(created.secret, receiver.delivered()[0])
    assert envelope["type"] == "portal.webhook.test" and envelope["id"] == str(delivery.message_id)


def test_the_target_is_checked_again_when_sending(owner, product, receiver, settings):
    """Allowed when written, refused when sent (the setting changed, or DNS now answers
    an inside address): nothing is sent and the try says why."""
    created = _subscribe(owner, receiver)
    event_emit("portal.product.published", product=product)
    webhooks_fan_out()
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    webhook_deliveries_send(subscription_id=created.subscription.pk)
    assert receiver.snapshot() == []
    assert "https://" in WebhookAttempt.objects.get().error


def test_an_event_committed_late_is_delivered_after_the_others(owner, product, receiver):
    """An event whose transaction took its id first but committed last (here: its row
    given an older id and no position yet, as it is when that commit lands) is delivered
    after the events already sent, never skipped: the fan-out follows positions."""
    created = _subscribe(owner, receiver)
    first = event_emit("portal.product.published", product=product)
    second = event_emit("portal.product.version_changed", product=product)
    assert webhooks_fan_out() == 2
    late = event_emit("portal.product.deprecated", product=product)
    Event.objects.filter(pk=late.pk).update(id=first.pk - 1, position=None)
    assert webhooks_fan_out() == 1
    assert list(
        WebhookDelivery.objects.filter(subscription=created.subscription)
        .order_by("id")
        .values_list("message_id", flat=True)
    ) == [first.event_id, second.event_id, late.event_id]


def test_access_events_go_to_the_people_involved_and_managers_only(
    owner, outsider, product, receiver
):
    """A grant to someone else is none of an outsider's business, even with a wildcard
    subscription; the grantee and the product's managers get it."""
    grantee = UserFactory(username="grantee")
    subscribed = {
        person.username: _subscribe(person, receiver, event_types=["portal.access.*"])
        for person in (owner, outsider, grantee)
    }
    granted = event_emit("portal.access.granted", product=product, people=[grantee])
    webhooks_fan_out()
    got = {
        name: list(
            WebhookDelivery.objects.filter(subscription=created.subscription).values_list(
                "message_id", flat=True
            )
        )
        for name, created in subscribed.items()
    }
    assert got == {"owner": [granted.event_id], "outsider": [], "grantee": [granted.event_id]}


def test_a_member_who_leaves_the_domain_stops_getting_its_drafts_events(member, domain, receiver):
    """Visibility is the owner's when each event is fanned out, not when they subscribed."""
    draft = ProductFactory(domain=domain, slug="plans", status=LifecycleStatus.DRAFT)
    created = _subscribe(member, receiver)
    before = event_emit("portal.product.created", product=draft)
    webhooks_fan_out()
    DomainMembership.objects.filter(user=member).delete()
    event_emit("portal.product.version_changed", product=draft)
    webhooks_fan_out()
    assert list(
        WebhookDelivery.objects.filter(subscription=created.subscription).values_list(
            "message_id", flat=True
        )
    ) == [before.event_id]
