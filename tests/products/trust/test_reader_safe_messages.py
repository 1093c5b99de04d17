"""An unreachable data source opens an availability incident that every reader of the
product sees (page, API, emails to followers and to the domain's owners): it names the
source, never its address (host, port, database) or the driver's error. The domain's
members and admins see that technical detail on the incident page and in the API.

The source is a real PostgreSQL address nobody listens on (127.0.0.1, port 1): the
connection is really refused."""

import html

import pytest
from django.urls import reverse

from products.choices import IncidentCause, SourceKind
from products.feedback.services.follows import product_follow
from products.models import Incident
from products.trust.notifications import incident_event_notify
from products.trust.services.checks import check_run_execute, check_run_request
from products.trust.services.evidence import trust_after_check_run, trust_after_observation
from products.trust.services.incidents import incident_detail_for
from products.trust.services.monitors import port_observe
from sharing.access.services.grants import grant_create
from tests.factories import DataSourceFactory, OutputPortFactory, UserFactory

DATABASE = "hidden_warehouse_db"
ADDRESS = "127.0.0.1:1"
SAFE = "Data source 'Warehouse' could not be reached or read."


def leaks(text: str) -> bool:
    return DATABASE in text or ADDRESS in text or "Connection refused" in text


@pytest.fixture
def port(product):
    source = DataSourceFactory(
        name="Warehouse",
        kind=SourceKind.POSTGRESQL,
        path="",
        host="127.0.0.1",
        port=1,
        database=DATABASE,
        username="portal_reader",
    )
    return OutputPortFactory(
        product=product, source=source, name="orders", schema_name="sales", table_name="orders"
    )


@pytest.fixture
def analyst(product, owner):
    """A grantee of the product who follows it: a reader of every incident channel."""
    user = UserFactory(username="analyst")
    grant_create(product=product, by=owner, user=user, reason="Weekly sales report")
    product_follow(product=product, by=user)
    return user


@pytest.fixture
def incident(port, analyst, owner, mailoutbox):
    observation = port_observe(port=port)
    assert not observation.available
    trust_after_observation(observation=observation)
    incident = Incident.objects.get(cause=IncidentCause.AVAILABILITY)
    opened = incident.events.get()
    mailoutbox.clear()
    assert incident_event_notify(event_id=opened.pk)
    return incident


def test_the_source_error_keeps_the_address_for_members_only(port, incident):
    observation = port.observations.get()
    # What the monitor recorded is the technical reason: kept, for the domain's members.
    assert DATABASE in observation.error and ADDRESS in observation.error
    assert DATABASE in incident.detail and ADDRESS in incident.detail
    assert incident.events.get().body == SAFE
    assert not leaks(incident.title)


def test_a_reader_sees_no_address_on_the_incident_page(client, incident, analyst, product):
    client.force_login(analyst)
    url = reverse(
        "products:incident-detail",
        kwargs={"domain_slug": "sales", "product_slug": "orders", "incident_id": incident.pk},
    )
    page = html.unescape(client.get(url).content.decode())
    assert SAFE in page
    assert not leaks(page)
    assert "Technical detail" not in page

    listing = html.unescape(client.get(product.get_absolute_url() + "quality/").content.decode())
    assert incident.title in listing
    assert not leaks(listing)


@pytest.mark.parametrize("who", ["member", "owner", "admin_user"])
def test_members_and_admins_see_the_address_on_the_page(request, client, incident, who):
    client.force_login(request.getfixturevalue(who))
    url = reverse(
        "products:incident-detail",
        kwargs={"domain_slug": "sales", "product_slug": "orders", "incident_id": incident.pk},
    )
    page = html.unescape(client.get(url).content.decode())
    assert "Technical detail" in page
    assert ADDRESS in page and DATABASE in page


def test_the_api_gives_the_detail_to_members_only(api_client, incident, analyst, member):
    url = f"/api/v1/products/sales.orders/incidents/{incident.pk}/"
    api_client.force_authenticate(analyst)
    body = api_client.get(url)
    assert body.status_code == 200, body.content
    assert body.json()["detail"] == ""
    assert [event["body"] for event in body.json()["events"]] == [SAFE]
    assert not leaks(body.content.decode())
    listing = api_client.get("/api/v1/products/sales.orders/incidents/")
    assert listing.status_code == 200 and not leaks(listing.content.decode())

    api_client.force_authenticate(member)
    answer = api_client.get(url).json()
    assert ADDRESS in answer["detail"] and DATABASE in answer["detail"]


def test_emails_and_notifications_carry_no_address(incident, mailoutbox, analyst, owner):
    recipients = {address for message in mailoutbox for address in message.to}
    assert {analyst.email, owner.email} <= recipients  # the follower and the owner
    for message in mailoutbox:
        assert not leaks(message.subject) and not leaks(message.body)
    owners_mail = next(message for message in mailoutbox if owner.email in message.to)
    assert SAFE in owners_mail.body
    notes = list(analyst.notifications.all())
    assert notes  # the follower's in-portal notification
    for note in notes:
        assert not leaks(note.title) and not leaks(note.body)


def test_a_check_run_on_the_source_opens_the_same_safe_incident(port, owner, analyst):
    run = check_run_execute(run_id=check_run_request(port=port, by=owner).pk)
    assert ADDRESS in run.error  # the run's reason: shown to owners and stewards only
    trust_after_check_run(run=run)
    incident = Incident.objects.get(cause=IncidentCause.AVAILABILITY)
    assert incident.events.get().body == SAFE
    assert incident_detail_for(incident=incident, user=analyst) == ""
    assert ADDRESS in incident_detail_for(incident=incident, user=owner)
