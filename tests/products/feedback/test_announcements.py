"""Announcements: owners post them (information, maintenance, breaking change,
deprecation naming a replacement), they show as a banner while active, and each is
delivered once to current grantees (group grants through their members) and followers,
by in-portal notification and email; bad input is a 400 naming the field."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from portal.models import Notification
from products.choices import LifecycleStatus
from products.feedback.services.announcements import announcement_create, announcement_recipients
from products.feedback.services.follows import product_follow
from products.feedback.tasks import announcement_deliver
from products.models import Announcement
from sharing.access.services.grants import grant_create, grant_revoke
from sharing.models import AccessGrant
from tests.conftest import wait_for
from tests.factories import ProductFactory, UserFactory
from tests.products.feedback.helpers import login, product_url

pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture
def successor(domain, owner):
    return ProductFactory(domain=domain, name="Orders v2", slug="orders-v2", owners=[owner])


@pytest.fixture
def audience(product, owner, steward):
    """Who should hear about the product, and who should not."""
    people = {
        name: UserFactory(username=name)
        for name in (
            "grantee",
            "teammate",
            "inactive_teammate",
            "follower",
            "both",
            "expired",
            "revoked",
            "stranger",
        )
    }
    people["inactive_teammate"].is_active = False
    people["inactive_teammate"].save()
    team = Group.objects.create(name="analysts")
    for name in ("teammate", "inactive_teammate"):
        people[name].groups.add(team)
    grant_create(product=product, by=owner, user=people["grantee"], reason="study")
    grant_create(product=product, by=owner, group=team, reason="team")
    grant_create(product=product, by=owner, user=people["both"], reason="study")
    expired = grant_create(product=product, by=owner, user=people["expired"], reason="old")
    AccessGrant.objects.filter(pk=expired.pk).update(
        expires_at=datetime.now(UTC) - timedelta(days=1)
    )
    revoked = grant_create(product=product, by=owner, user=people["revoked"], reason="x")
    grant_revoke(grant=revoked, by=owner, reason="left")
    for name in ("follower", "both"):
        product_follow(product=product, by=people[name])
    product_follow(product=product, by=owner)  # the author never hears from themselves
    return people


EXPECTED = ["both", "follower", "grantee", "teammate"]


@pytest.mark.django_db
def test_a_deprecation_reaches_grantees_and_followers_once(
    client, product, successor, owner, audience, eager_tasks, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    login(client, owner)
    form = client.get(product_url("announcement-create", product)).content.decode()
    assert "Orders v2 (sales.orders-v2)" in form and "Orders (sales.orders)" not in form
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            product_url("announcement-create", product),
            {
                "kind": "deprecation",
                "title": "Orders retires on 1 June",
                "body": "Move to **Orders v2**.",
                "replacement": successor.pk,
            },
        )
    assert response.status_code == 302
    announcement = Announcement.objects.get()
    assert announcement.delivered_at is not None and announcement.recipient_count == 4

    key = f"announcement:{announcement.pk}"
    assert (
        sorted(Notification.objects.filter(key=key).values_list("user__username", flat=True))
        == EXPECTED
    )
    assert sorted(m.to[0] for m in mail.outbox) == [f"{n}@example.com" for n in EXPECTED]
    email = mail.outbox[0]
    assert email.subject == "[sales.orders] Deprecation on Orders: Orders retires on 1 June"
    assert "The replacement is Orders v2 (sales.orders-v2)" in email.body
    assert successor.get_absolute_url() in email.body

    # The task delivered again: nobody hears twice.
    announcement_deliver(announcement.pk)
    announcement_deliver.delay(announcement.pk)
    assert Notification.objects.filter(key=key).count() == 4 and len(mail.outbox) == 4

    # The banner on the product's pages links the replacement, for every reader.
    login(client, audience["stranger"])
    for url in (product.get_absolute_url(), product_url("feedback-list", product)):
        page = client.get(url).content.decode()
        assert 'data-announcement-banner="deprecation"' in page
        assert "Orders retires on 1 June" in page
        assert f'href="{successor.get_absolute_url()}"' in page
        assert "<strong>Orders v2</strong>" in page  # the body's Markdown, rendered


@pytest.mark.django_db
def test_recipients_leave_out_lapsed_grants_inactive_people_and_lost_visibility(
    product, owner, audience, domain
):
    announcement = Announcement(product=product, kind="info", title="x", created_by=owner)
    names = [user.username for user in announcement_recipients(announcement=announcement)]
    assert names == sorted(EXPECTED, key=lambda n: audience[n].pk)
    # A retired product: followers outside the domain no longer see it, grantees neither
    # read nor are told.
    retired = ProductFactory(domain=domain, status=LifecycleStatus.RETIRED)
    product_follow(product=retired, by=owner)
    from products.models import ProductFollow

    ProductFollow.objects.create(user=audience["stranger"], product=retired)
    later = Announcement(product=retired, kind="info", title="x", created_by=None)
    assert [u.username for u in announcement_recipients(announcement=later)] == ["owner"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"kind": "deprecation"}, "replacement", "A deprecation names the product"),
        ({"kind": "deprecation", "replacement": "self"}, "replacement", "cannot replace itself"),
        ({"kind": "deprecation", "replacement": "draft"}, "replacement", "published product"),
        ({"kind": "info", "replacement": "successor"}, "replacement", "Only a deprecation"),
        ({"kind": "info", "title": " "}, "title", "Give the announcement a title"),
        ({"kind": "info", "body": "b" * 20_001}, "body", "At most 20,000 characters"),
        ({"kind": "info", "ends_at": "past"}, "ends_at", "The end is in the past"),
        (
            {"kind": "maintenance", "starts_at": "+2d", "ends_at": "+1d"},
            "ends_at",
            "after the start",
        ),
        ({"kind": "gossip"}, "kind", "is not a valid choice"),
    ],
)
def test_bad_announcements_are_refused_naming_the_field(
    api_client, client, product, successor, owner, domain, fields, field, message
):
    draft = ProductFactory(domain=domain, slug="draft", status=LifecycleStatus.DRAFT)
    now = datetime.now(UTC)
    refs = {"self": product, "draft": draft, "successor": successor}
    times = {
        "past": now - timedelta(hours=1),
        "+1d": now + timedelta(days=1),
        "+2d": now + timedelta(days=2),
    }
    body = {"title": "Planned change", **fields}
    if "replacement" in body:
        body["replacement"] = refs[body["replacement"]].key
    for name in ("starts_at", "ends_at"):
        if name in body:
            body[name] = times[body[name]].isoformat()
    api_client.force_authenticate(owner)
    response = api_client.post(
        f"/api/v1/products/{product.key}/announcements/", body, format="json"
    )
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert Announcement.objects.count() == 0

    # The page says the same beside the field.
    if field != "kind":
        form = {**body}
        if "replacement" in form:
            form["replacement"] = refs[fields["replacement"]].pk
        for name in ("starts_at", "ends_at"):
            if name in form:
                form[name] = times[fields[name]].strftime("%Y-%m-%dT%H:%M")
        login(client, owner)
        page = client.post(product_url("announcement-create", product), form)
        # The form offers only valid replacements: another one is not a choice there.
        offered = fields.get("replacement") not in ("self", "draft")
        expected = message if offered else "Select a valid choice"
        assert page.status_code == 400 and expected in page.content.decode()
        assert Announcement.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["json", "multipart"])
def test_an_announcement_without_a_title_is_refused_naming_the_field(
    api_client, product, owner, encoding
):
    # Found by the API fuzz: a body without `title` reached the service without it (500).
    api_client.force_authenticate(owner)
    response = api_client.post(
        f"/api/v1/products/{product.key}/announcements/", {"kind": "info"}, format=encoding
    )
    assert response.status_code == 400
    assert response.json() == {"title": ["Give the announcement a title: what changes, in a line."]}
    assert Announcement.objects.count() == 0


@pytest.mark.django_db
def test_only_editors_post_and_end_announcements(
    client, api_client, product, owner, steward, outsider
):
    api_client.force_authenticate(outsider)
    url = f"/api/v1/products/{product.key}/announcements/"
    assert api_client.post(url, {"kind": "info", "title": "Hi"}, format="json").status_code == 403
    login(client, outsider)
    assert client.get(product_url("announcement-create", product)).status_code == 403
    assert (
        client.post(product_url("announcement-create", product), {"kind": "info"}).status_code
        == 403
    )
    assert (
        b"Post an announcement" not in client.get(product_url("announcement-list", product)).content
    )
    assert Announcement.objects.count() == 0

    api_client.force_authenticate(steward)
    created = api_client.post(
        url, {"kind": "breaking_change", "title": "amount becomes cents"}, format="json"
    )
    assert created.status_code == 201
    data = created.json()
    assert (
        data["active"] is True
        and data["kind"] == "breaking_change"
        and data["created_by"] == "steward"
    )
    api_client.force_authenticate(outsider)
    assert api_client.post(f"{url}{data['id']}/end/").status_code == 403
    api_client.force_authenticate(owner)
    ended = api_client.post(f"{url}{data['id']}/end/")
    assert ended.status_code == 200 and ended.json()["active"] is False
    assert api_client.post(f"{url}{data['id']}/end/").status_code == 400  # ended already


@pytest.mark.django_db
def test_the_banner_shows_only_active_announcements(client, api_client, product, owner, outsider):
    now = datetime.now(UTC)
    live = announcement_create(
        product=product,
        by=owner,
        kind="maintenance",
        title="Load paused tonight",
        ends_at=now + timedelta(hours=6),
    )
    announcement_create(
        product=product,
        by=owner,
        kind="info",
        title="Coming next week",
        starts_at=now + timedelta(days=7),
    )
    ended = announcement_create(product=product, by=owner, kind="info", title="Old news")
    Announcement.objects.filter(pk=ended.pk).update(
        starts_at=now - timedelta(days=3), ends_at=now - timedelta(days=1)
    )

    login(client, outsider)
    page = client.get(product.get_absolute_url()).content.decode()
    assert "Load paused tonight" in page
    assert "Coming next week" not in page and "Old news" not in page
    listing = client.get(product_url("announcement-list", product)).content.decode()
    for title in ("Load paused tonight", "Coming next week", "Old news"):
        assert title in listing
    assert "scheduled" in listing and "ended" in listing

    api_client.force_authenticate(outsider)
    url = f"/api/v1/products/{product.key}/announcements/"
    assert [a["title"] for a in api_client.get(url, {"active": "true"}).json()["results"]] == [
        "Load paused tonight"
    ]
    assert api_client.get(url).json()["count"] == 3

    # Ending it from the list page takes it off the banner.
    login(client, owner)
    assert (
        client.post(product_url("announcement-end", product, announcement_id=live.pk)).status_code
        == 302
    )
    page = client.get(product.get_absolute_url()).content.decode()
    assert "“Load paused tonight” is no longer shown." in page  # the message, not the banner
    assert "data-announcement-banner" not in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_delivery_runs_on_the_worker_after_commit(celery_worker, product, owner, audience):
    announcement = announcement_create(
        product=product, by=owner, kind="maintenance", title="Upgrade on Sunday"
    )
    key = f"announcement:{announcement.pk}"
    wait_for(
        lambda: Notification.objects.filter(key=key).count() == 4,
        message="the worker did not deliver the announcement",
    )
    announcement.refresh_from_db()
    assert announcement.delivered_at is not None and announcement.recipient_count == 4
    assert (
        sorted(Notification.objects.filter(key=key).values_list("user__username", flat=True))
        == EXPECTED
    )
