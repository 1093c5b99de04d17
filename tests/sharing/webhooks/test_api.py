"""The webhooks API: your own subscriptions (admins see all), the secret shown once and
kept encrypted, filters and targets checked (400 naming the field), someone else's
subscription a 404, deliveries and dead letters with replay."""

from __future__ import annotations

import pytest

from portal.core.events import event_emit
from products.choices import LifecycleStatus
from sharing.models import WebhookDelivery, WebhookSubscription
from sharing.models.webhooks import DeliveryStatus
from sharing.webhooks.signing import secret_decrypt
from tests.factories import DomainFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks/"


def _body(**changes) -> dict:
    body = {
        "name": "Orders to the CRM",
        "target_url": "https://93.184.215.14/hooks",  # a public address: no DNS needed
        "event_types": ["portal.product.published", "portal.access.*"],
    }
    body.update(changes)
    return body


def test_anonymous_is_refused(client_as):
    assert client_as(None).get(URL).status_code in (401, 403)


def test_create_shows_the_secret_once_and_keeps_it_encrypted(client_as, owner, product):
    client = client_as(owner)
    answer = client.post(URL, _body(product="sales.orders", domain="sales"), format="json")
    assert answer.status_code == 201, answer.json()
    created = answer.json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert created["product"] == "sales.orders" and created["domain"] == "sales"
    assert created["active"] is True

    stored = WebhookSubscription.objects.get(pk=created["id"])
    assert secret not in stored.secret_encrypted
    assert secret_decrypt(stored.secret_encrypted) == secret
    # Never shown again: not in the detail, not in the list.
    assert "secret" not in client.get(created["url"]).json()
    assert "secret" not in client.get(URL).json()["results"][0]
    assert secret not in client.get(URL).content.decode()


def test_rotate_gives_a_new_secret_once(client_as, owner):
    client = client_as(owner)
    created = client.post(URL, _body(), format="json").json()
    rotated = client.post(f"{URL}{created['id']}/rotate-secret/").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    stored = WebhookSubscription.objects.get(pk=created["id"])
    assert secret_decrypt(stored.secret_encrypted) == rotated["secret"]


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"event_types": ["portal.product.teleported"]}, "event_types", "Unknown event type"),
        ({"event_types": ["portal.nothing.*"]}, "event_types", "Unknown event type"),
        ({"event_types": []}, "event_types", "at least one"),
        ({"target_url": "http://93.184.215.14/hooks"}, "target_url", "https://"),
        ({"target_url": "https://127.0.0.1/hooks"}, "target_url", "loopback"),
        ({"target_url": "https://10.1.2.3/hooks"}, "target_url", "private"),
        ({"target_url": "https://169.254.169.254/latest"}, "target_url", "public addresses"),
        ({"target_url": "https://[::1]:8443/"}, "target_url", "public addresses"),
        ({"target_url": "https://[::ffff:127.0.0.1]/"}, "target_url", "public addresses"),
        ({"target_url": "https://224.0.0.1/"}, "target_url", "public addresses"),
        ({"target_url": "https://user:pw@93.184.215.14/"}, "target_url", "password"),
        ({"target_url": "ftp://93.184.215.14/"}, "target_url", "https://"),
        ({"target_url": "https://no-such-host.invalid/"}, "target_url", "does not resolve"),
        ({"product": "sales.nothing"}, "product", "no product"),
        ({"domain": "nowhere"}, "domain", "no domain"),
        ({"name": "   "}, "name", ""),
        ({"colour": "blue"}, "colour", "cannot be set"),
    ],
)
def test_bad_input_is_400_naming_the_field(client_as, owner, product, changes, field, words):
    answer = client_as(owner).post(URL, _body(**changes), format="json")
    assert answer.status_code == 400
    messages = " ".join(answer.json()[field])
    assert words in messages
    assert not WebhookSubscription.objects.exists()


def test_loopback_and_http_allowed_when_the_portal_allows_private_targets(
    client_as, owner, allow_loopback
):
    answer = client_as(owner).post(URL, _body(target_url="http://127.0.0.1:9/hooks"), format="json")
    assert answer.status_code == 201


def test_a_product_you_cannot_see_is_answered_as_missing(client_as, outsider):
    """A draft of another domain: the same message as a product that does not exist."""
    hidden = ProductFactory(
        domain=DomainFactory(slug="hr", name="HR"), slug="salaries", status=LifecycleStatus.DRAFT
    )
    client = client_as(outsider)
    refused = client.post(URL, _body(product=hidden.key), format="json")
    missing = client.post(URL, _body(product="hr.bonuses"), format="json")
    assert refused.status_code == missing.status_code == 400
    assert refused.json()["product"] == [
        m.replace("hr.bonuses", hidden.key) for m in missing.json()["product"]
    ]


def test_you_see_and_change_only_your_own(client_as, owner, outsider, admin_user):
    created = client_as(owner).post(URL, _body(), format="json").json()
    detail = f"{URL}{created['id']}/"

    other = client_as(outsider)
    assert other.get(URL).json()["results"] == []
    assert other.get(detail).status_code == 404
    assert other.patch(detail, {"active": False}, format="json").status_code == 404
    assert other.delete(detail).status_code == 404
    assert other.post(f"{detail}rotate-secret/").status_code == 404
    assert other.post(f"{detail}dead-letters/replay-all/").status_code == 404
    assert other.get(f"{detail}deliveries/").status_code == 404

    admin = client_as(admin_user)
    assert [s["id"] for s in admin.get(URL).json()["results"]] == [created["id"]]
    assert admin.patch(detail, {"active": False}, format="json").json()["active"] is False


def test_update_pause_resume_and_delete(client_as, owner):
    client = client_as(owner)
    created = client.post(URL, _body(), format="json").json()
    detail = f"{URL}{created['id']}/"
    paused = client.patch(detail, {"active": False, "name": "CRM"}, format="json").json()
    assert paused["active"] is False and paused["status"] == "paused" and paused["name"] == "CRM"
    bad = client.patch(detail, {"event_types": ["nope"]}, format="json")
    assert bad.status_code == 400 and "event_types" in bad.json()
    resumed = client.patch(detail, {"active": True}, format="json").json()
    assert resumed["active"] is True and resumed["paused_reason"] == ""
    assert client.delete(detail).status_code == 204
    assert client.get(detail).status_code == 404


def test_dead_letters_listed_and_replayed(client_as, owner, product):
    client = client_as(owner)
    created = client.post(URL, _body(), format="json").json()
    subscription = WebhookSubscription.objects.get(pk=created["id"])
    subscription.status = "paused"  # nothing is sent while the test arranges the rows
    subscription.save()
    event = event_emit("portal.product.published", product=product, data={"version": "1"})
    dead = WebhookDelivery.objects.create(
        subscription=subscription,
        event=event,
        message_id=event.event_id,
        status=DeliveryStatus.DEAD,
        attempts=3,
        next_attempt_at=event.time,
        last_error="The receiver answered 500.",
    )
    listed = client.get(f"{URL}{created['id']}/dead-letters/").json()["results"]
    assert [(d["id"], d["event_type"], d["attempts"]) for d in listed] == [
        (dead.pk, "portal.product.published", 3)
    ]
    assert client.get(f"{URL}{created['id']}/deliveries/?status=weird").status_code == 400
    assert client.post(f"{URL}{created['id']}/dead-letters/999999/replay/").status_code == 404
    answer = client.post(f"{URL}{created['id']}/dead-letters/{dead.pk}/replay/")
    assert answer.status_code == 202 and answer.json() == {"replayed": 1}
    dead.refresh_from_db()
    assert dead.status == DeliveryStatus.PENDING and dead.attempts == 0
    assert client.get(f"{URL}{created['id']}/dead-letters/").json()["results"] == []


def test_one_person_has_a_bounded_number_of_subscriptions(client_as, settings):
    settings.WEBHOOKS_MAX_PER_OWNER = 2
    client = client_as(UserFactory(username="busy"))
    for _ in range(2):
        assert client.post(URL, _body(), format="json").status_code == 201
    refused = client.post(URL, _body(), format="json")
    assert refused.status_code == 400 and "delete one" in str(refused.json())
