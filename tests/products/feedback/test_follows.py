"""Following a product (page and API), incident notifications reaching followers once,
and the in-portal notifications: the bell's count, the page, opening one, marking read,
the API; nobody sees another person's notifications."""

import pytest
from django.core import mail
from django.urls import reverse

from portal.core.notifications import (
    notification_create,
    notifications_create,
    notifications_mark_read,
    notifications_unread_count,
)
from portal.models import Notification
from products.choices import IncidentEventKind, LifecycleStatus
from products.feedback.services.follows import product_follow
from products.models import IncidentEvent, ProductFollow
from products.trust.services.incidents import incident_open, incident_resolve
from products.trust.tasks import incident_notify
from tests.factories import ProductFactory, UserFactory
from tests.products.feedback.helpers import login, product_url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords")]


# --- following ---------------------------------------------------------------------------------


def test_follow_and_unfollow_from_the_product_page(client, product, outsider):
    login(client, outsider)
    page = client.get(product.get_absolute_url()).content.decode()
    assert "Follow this product" in page and "0 followers" in page
    response = client.post(
        product_url("product-follow", product), {"next": product_url("feedback-list", product)}
    )
    assert response.status_code == 302
    assert response["Location"] == product_url("feedback-list", product)
    client.post(product_url("product-follow", product))  # twice: still one follow
    assert ProductFollow.objects.filter(user=outsider, product=product).count() == 1
    page = client.get(product.get_absolute_url()).content.decode()
    assert "Following" in page and "1 follower" in page

    # `next` must stay on this site.
    away = client.post(product_url("product-unfollow", product), {"next": "https://evil.example/"})
    assert away["Location"] == product.get_absolute_url()
    assert not ProductFollow.objects.filter(user=outsider).exists()


def test_follow_api(api_client, product, outsider, domain):
    api_client.force_authenticate(outsider)
    url = f"/api/v1/products/{product.key}/follow/"
    assert api_client.get(url).json() == {
        "product": product.key,
        "following": False,
        "followers": 0,
    }
    assert api_client.post(url).json()["following"] is True
    assert api_client.post(url).json()["followers"] == 1
    assert api_client.delete(url).json() == {
        "product": product.key,
        "following": False,
        "followers": 0,
    }
    draft = ProductFactory(domain=domain, status=LifecycleStatus.DRAFT)
    assert api_client.post(f"/api/v1/products/{draft.key}/follow/").status_code == 404
    api_client.force_authenticate(None)
    assert api_client.post(url).status_code in (401, 403)


# --- incidents reach followers ------------------------------------------------------------------


def test_followers_hear_of_incidents_once_and_managers_are_not_emailed_twice(
    product, owner, steward, outsider, eager_tasks, django_capture_on_commit_callbacks
):
    fan = UserFactory(username="fan")
    for user in (outsider, fan, owner):  # the owner follows too: emailed once, as manager
        product_follow(product=product, by=user)
    with django_capture_on_commit_callbacks(execute=True):
        incident, _ = incident_open(
            product=product, cause="slo", cause_key="slo:9", title="Orders are 6 hours late"
        )
    opened = IncidentEvent.objects.get(kind=IncidentEventKind.OPENED)
    key = f"incident-event:{opened.pk}"
    assert sorted(
        Notification.objects.filter(key=key).values_list("user__username", flat=True)
    ) == ["fan", "outsider", "owner"]
    to = sorted(address for message in mail.outbox for address in message.to)
    # One email to the managers (owner, steward), one to each follower outside them.
    assert to == [
        "fan@example.com",
        "outsider@example.com",
        "owner@example.com",
        "steward@example.com",
    ]
    follower_mail = [m for m in mail.outbox if m.to == ["fan@example.com"]][0]
    assert follower_mail.subject == (
        "[sales.orders] Incident opened on Orders: Orders are 6 hours late"
    )
    assert "because you follow this product" in follower_mail.body
    notification = Notification.objects.get(key=key, user=fan)
    assert notification.url == product_url("incident-detail", product, incident_id=incident.pk)

    incident_notify(opened.pk)  # delivered again
    assert Notification.objects.filter(key=key).count() == 3 and len(mail.outbox) == 3

    with django_capture_on_commit_callbacks(execute=True):
        incident_resolve(incident=incident, by=owner, note="Backfilled.")
    resolved = IncidentEvent.objects.get(kind=IncidentEventKind.RESOLVED)
    note = Notification.objects.get(key=f"incident-event:{resolved.pk}", user=fan)
    assert note.title.startswith("Incident resolved on Orders") and note.body == "Backfilled."


def test_a_follower_who_can_no_longer_see_the_product_hears_nothing(
    domain, owner, outsider, eager_tasks, django_capture_on_commit_callbacks
):
    retired = ProductFactory(domain=domain, status=LifecycleStatus.RETIRED)
    ProductFollow.objects.create(user=outsider, product=retired)
    with django_capture_on_commit_callbacks(execute=True):
        incident_open(product=retired, cause="slo", cause_key="slo:7", title="Late")
    assert not Notification.objects.filter(user=outsider).exists()
    assert all("outsider@example.com" not in m.to for m in mail.outbox)


# --- notifications --------------------------------------------------------------------------------


def test_notifications_are_created_once_per_key_and_marked_read(product, outsider, owner):
    first = notifications_create(
        users=[outsider, owner], title="Hello", url="/x/", product=product, key="k:1"
    )
    again = notifications_create(users=[outsider, owner], title="Hello", url="/x/", key="k:1")
    assert {u.username for u in first} == {"outsider", "owner"} and again == []
    assert notification_create(user=outsider, title="Other", key="k:2") is not None
    assert notification_create(user=outsider, title="Other", key="k:2") is None
    assert notifications_unread_count(user=outsider) == 2
    mine = Notification.objects.filter(user=outsider).values_list("pk", flat=True)
    theirs = Notification.objects.get(user=owner).pk
    # Someone else's id is ignored.
    assert notifications_mark_read(user=outsider, ids=[mine[0], theirs]) == 1
    assert notifications_unread_count(user=owner) == 1
    assert notifications_mark_read(user=outsider) == 1
    assert notifications_unread_count(user=outsider) == 0


def test_the_bell_the_page_and_opening_a_notification(
    client, product, outsider, owner, django_assert_max_num_queries
):
    login(client, outsider)
    home = client.get("/").content.decode()
    assert reverse("portal:notifications-badge") in home  # the bell loads its count
    badge = client.get(reverse("portal:notifications-badge")).content.decode()
    assert 'data-unread-count="0"' in badge
    empty = client.get(reverse("portal:notifications")).content.decode()
    assert "No notifications yet. Follow a product" in empty

    path = product_url("feedback-list", product)
    for n in range(3):
        notification_create(user=outsider, title=f"Reply {n}", url=path, product=product)
    notification_create(user=owner, title="Owner's own", url="/")
    badge = client.get(reverse("portal:notifications-badge")).content.decode()
    assert 'data-unread-count="3"' in badge and ">3<" in badge

    page = client.get(reverse("portal:notifications")).content.decode()
    assert "Reply 2" in page and "Owner&#x27;s own" not in page and "Mark all 3 read" in page
    first = Notification.objects.filter(user=outsider).order_by("pk").first()
    opened = client.get(reverse("portal:notification-open", args=[first.pk]))
    assert opened.status_code == 302 and opened["Location"] == path
    first.refresh_from_db()
    assert first.read_at is not None
    other = Notification.objects.get(user=owner)
    assert client.get(reverse("portal:notification-open", args=[other.pk])).status_code == 404
    unread = client.get(reverse("portal:notifications") + "?unread=1").content.decode()
    assert "Reply 0" not in unread and "Reply 1" in unread

    response = client.post(reverse("portal:notifications-read"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'data-unread-count="0"' in response.content.decode()
    assert notifications_unread_count(user=outsider) == 0
    assert notifications_unread_count(user=owner) == 1

    with django_assert_max_num_queries(5) as small:  # session, user, page, count, unread
        client.get(reverse("portal:notifications"))
    for n in range(20):
        notification_create(user=outsider, title=f"More {n}", url=path, product=product)
    with django_assert_max_num_queries(len(small)):
        assert client.get(reverse("portal:notifications")).status_code == 200


def test_a_notification_never_redirects_off_site(client, outsider):
    login(client, outsider)
    note = notification_create(user=outsider, title="Bad", url="https://evil.example/")
    response = client.get(reverse("portal:notification-open", args=[note.pk]))
    assert response["Location"] == reverse("portal:notifications")


def test_notifications_api(api_client, product, outsider, owner, django_assert_max_num_queries):
    for n in range(3):
        notification_create(user=outsider, title=f"N{n}", url="/x/", product=product)
    notification_create(user=owner, title="Not yours")
    api_client.force_authenticate(outsider)
    with django_assert_max_num_queries(3):  # notifications, count, unread
        data = api_client.get("/api/v1/notifications/").json()
    assert data["count"] == 3 and data["unread_count"] == 3
    assert [item["title"] for item in data["results"]] == ["N2", "N1", "N0"]
    assert data["results"][0]["product"] == product.key
    assert data["results"][0]["url"] == "http://testserver/x/"
    first = data["results"][0]["id"]

    marked = api_client.post("/api/v1/notifications/read/", {"ids": [first]}, format="json")
    assert marked.json() == {"marked": 1, "unread": 2}
    only_unread = api_client.get("/api/v1/notifications/", {"unread": "true"}).json()
    assert [item["title"] for item in only_unread["results"]] == ["N1", "N0"]
    bad = api_client.post("/api/v1/notifications/read/", {"ids": "all"}, format="json")
    assert bad.status_code == 400 and "ids" in bad.json()
    unknown = api_client.post("/api/v1/notifications/read/", {"every": True}, format="json")
    assert unknown.status_code == 400
    assert api_client.post("/api/v1/notifications/read/", {}, format="json").json() == {
        "marked": 2,
        "unread": 0,
    }
    api_client.force_authenticate(None)
    assert api_client.get("/api/v1/notifications/").status_code in (401, 403)
