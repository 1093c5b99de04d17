"""The "My webhooks" pages: empty state, the form (bad input beside its field), the
secret shown once, a subscription's page with its log and dead letters, its buttons;
someone else's subscription a 404."""

from __future__ import annotations

import pytest

from portal.core.events import event_emit
from sharing.models import WebhookDelivery, WebhookSubscription
from sharing.models.webhooks import DeliveryStatus
from sharing.webhooks.services import webhook_subscription_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


def test_empty_state_says_what_to_do(signed_in, owner):
    page = signed_in(owner).get("/my/webhooks/").content.decode()
    assert "You have no webhook subscriptions" in page and "/my/webhooks/new/" in page


def test_anonymous_is_sent_to_sign_in(client):
    assert client.get("/my/webhooks/").status_code == 302


def test_create_shows_the_secret_once(signed_in, owner, product, allow_loopback):
    client = signed_in(owner)
    form = client.get("/my/webhooks/new/").content.decode()
    assert 'value="portal.access.*"' in form and 'value="portal.product.published"' in form
    answer = client.post(
        "/my/webhooks/new/",
        {
            "name": "CRM",
            "target_url": "http://127.0.0.1:9/hook",
            "event_types": ["portal.access.*", "portal.product.published"],
            "product": "sales.orders",
        },
    )
    body = answer.content.decode()
    assert answer.status_code == 200 and "shown only once" in body
    subscription = WebhookSubscription.objects.get()
    assert subscription.event_types == ["portal.access.*", "portal.product.published"]
    secret = body.split('id="webhook-secret" type="text" readonly value="')[1].split('"')[0]
    assert secret.startswith("whsec_")
    detail = client.get(f"/my/webhooks/{subscription.pk}/").content.decode()
    assert secret not in detail and "Nothing sent yet" in detail


def test_bad_input_is_shown_beside_the_field(signed_in, owner):
    answer = signed_in(owner).post(
        "/my/webhooks/new/",
        {
            "name": "CRM",
            "target_url": "https://127.0.0.1/hook",
            "event_types": ["portal.product.published"],
        },
    )
    assert answer.status_code == 200
    assert "loopback" in answer.content.decode()
    assert not WebhookSubscription.objects.exists()


def test_subscription_page_log_dead_letters_and_buttons(
    signed_in, owner, outsider, product, allow_loopback
):
    created = webhook_subscription_create(
        owner=owner,
        name="CRM",
        target_url="http://127.0.0.1:9/hook",
        event_types=["portal.product.*"],
    )
    subscription = created.subscription
    event = event_emit("portal.product.published", product=product)
    dead = WebhookDelivery.objects.create(
        subscription=subscription,
        event=event,
        message_id=event.event_id,
        status=DeliveryStatus.DEAD,
        attempts=3,
        next_attempt_at=event.time,
        last_error="The receiver answered 500.",
    )
    client = signed_in(owner)
    page = client.get(f"/my/webhooks/{subscription.pk}/").content.decode()
    assert "The receiver answered 500." in page and "Replay all" in page

    answer = client.post(f"/my/webhooks/{subscription.pk}/dead-letters/{dead.pk}/replay/")
    assert answer.status_code == 302
    dead.refresh_from_db()
    assert dead.status == DeliveryStatus.PENDING
    client.post(f"/my/webhooks/{subscription.pk}/pause/")
    subscription.refresh_from_db()
    assert subscription.status == "paused"
    rotated = client.post(f"/my/webhooks/{subscription.pk}/rotate-secret/").content.decode()
    assert "whsec_" in rotated

    other = signed_in(outsider)
    assert other.get(f"/my/webhooks/{subscription.pk}/").status_code == 404
    assert other.post(f"/my/webhooks/{subscription.pk}/delete/").status_code == 404
    assert signed_in(owner).post(f"/my/webhooks/{subscription.pk}/explode/").status_code == 404
    signed_in(owner).post(f"/my/webhooks/{subscription.pk}/delete/")
    assert not WebhookSubscription.objects.exists()


def test_the_list_pins_its_queries(signed_in, owner, allow_loopback, django_assert_max_num_queries):
    for n in range(5):
        webhook_subscription_create(
            owner=owner, name=f"s{n}", target_url="http://127.0.0.1:9/", event_types=["portal.*"]
        )
    client = signed_in(owner)
    client.get("/my/webhooks/")
    with django_assert_max_num_queries(12):
        page = client.get("/my/webhooks/").content.decode()
    assert page.count("/my/webhooks/") >= 5
