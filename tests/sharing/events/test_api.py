"""The replay API (GET /api/v1/events/): the events a caller may see, in sequence order,
as CloudEvents envelopes, cursor-paged; bad filters answered 400 with a message."""

import pytest
from knox.models import AuthToken

from portal.core.events import event_emit, events_sequence
from portal.models import Event
from products.choices import LifecycleStatus, MembershipRole
from tests.factories import DomainFactory, MembershipFactory, ProductFactory, UserFactory
from tests.sharing.events.positions import event_position as pos

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/"


@pytest.fixture
def events(domain, product, owner):
    """A published product's events, a draft's, an access request, another domain's."""
    draft = ProductFactory(domain=domain, slug="draft-one", status=LifecycleStatus.DRAFT)
    marketing = DomainFactory(name="Marketing", slug="marketing")
    campaigns = ProductFactory(domain=marketing, slug="campaigns", owners=[])
    requester = UserFactory(username="requester")
    emitted = {
        "published": event_emit("portal.product.published", product=product, data={"v": 1}),
        "draft": event_emit("portal.product.created", product=draft),
        "requested": event_emit("portal.access.requested", product=product, people=[requester]),
        "checked": event_emit("portal.check_run.finished", product=product, data={"failed": 0}),
        "campaigns": event_emit("portal.product.published", product=campaigns),
        "requester": requester,
    }
    events_sequence()  # what a reader does first
    return emitted


def sequences(body):
    return [int(envelope["sequence"]) for envelope in body["results"]]


def test_anonymous_callers_are_refused(api_client, events):
    assert api_client.get(URL).status_code in (401, 403)


def test_each_caller_sees_the_events_the_rule_allows_in_order(client_as, events, owner, outsider):
    owner_seen = client_as(owner).get(URL).json()
    expected = [pos(events[k]) for k in ("published", "draft", "requested", "checked", "campaigns")]
    assert sequences(owner_seen) == expected
    assert owner_seen["results"][0]["specversion"] == "1.0"
    assert owner_seen["results"][0]["type"] == "portal.product.published"
    assert owner_seen["results"][0]["subject"] == "sales.orders"
    assert owner_seen["results"][0]["data"] == {"v": 1}
    outsider_seen = client_as(outsider).get(URL).json()
    # Not the draft, not someone else's access request.
    assert sequences(outsider_seen) == [
        pos(events["published"]),
        pos(events["checked"]),
        pos(events["campaigns"]),
    ]
    requester_seen = client_as(events["requester"]).get(URL, {"type": "portal.access.*"}).json()
    assert sequences(requester_seen) == [pos(events["requested"])]


def test_a_token_reads_the_replay(api_client, events, owner):
    _, token = AuthToken.objects.create(owner)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert sequences(api_client.get(URL).json())[0] == pos(events["published"])


def test_filters_by_type_product_domain_and_after(client_as, events, owner):
    client = client_as(owner)
    both = client.get(
        URL, {"type": ["portal.product.published", "portal.check_run.finished"]}
    ).json()
    assert sequences(both) == [pos(events[k]) for k in ("published", "checked", "campaigns")]
    comma = client.get(URL, {"type": "portal.product.*,portal.check_run.finished"}).json()
    assert sequences(comma) == [
        pos(events[k]) for k in ("published", "draft", "checked", "campaigns")
    ]
    of_orders = client.get(URL, {"product": "sales.orders"}).json()
    assert sequences(of_orders) == [pos(events[k]) for k in ("published", "requested", "checked")]
    of_marketing = client.get(URL, {"domain": "marketing"}).json()
    assert sequences(of_marketing) == [pos(events["campaigns"])]
    after = client.get(URL, {"after": pos(events["requested"])}).json()
    assert sequences(after) == [pos(events["checked"]), pos(events["campaigns"])]


def test_pages_follow_next_until_it_is_null(
    client_as, events, owner, django_assert_max_num_queries
):
    client = client_as(owner)
    seen, url, pages = [], URL + "?limit=2", 0
    while url:
        with django_assert_max_num_queries(4):
            body = client.get(url).json()
        seen += sequences(body)
        assert len(body["results"]) <= 2
        assert body["last_sequence"] == (seen[-1] if seen else 0)
        url, pages = body["next"], pages + 1
    assert "count" not in body
    assert seen == [
        pos(events[k]) for k in ("published", "draft", "requested", "checked", "campaigns")
    ]
    assert pages == 3
    # Asking again after the last one: an empty page that still says where to resume.
    empty = client.get(URL, {"after": seen[-1]}).json()
    assert empty == {"next": None, "last_sequence": seen[-1], "results": []}


@pytest.mark.parametrize(
    "params, field, words",
    [
        ({"type": "portal.product.exploded"}, "type", "portal.product.published"),
        ({"type": "portal.nothing.*"}, "type", "Known types"),
        ({"after": "-1"}, "after", "non-negative whole number"),
        ({"after": "abc"}, "after", "non-negative whole number"),
        ({"after": "١٢"}, "after", "non-negative whole number"),
        ({"limit": "0"}, "limit", "from 1 to 500"),
        ({"limit": "501"}, "limit", "from 1 to 500"),
        ({"product": "sales"}, "product", "<domain>.<product>"),
        ({"domain": "nowhere"}, "domain", "no domain 'nowhere'"),
    ],
)
def test_bad_input_is_a_400_with_a_message(client_as, owner, params, field, words):
    response = client_as(owner).get(URL, params)
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])


def test_a_product_you_cannot_see_is_answered_as_one_that_does_not_exist(client_as, domain, events):
    draft_key = "sales.draft-one"
    other_steward = UserFactory(username="marketing-steward")
    MembershipFactory(
        domain=DomainFactory(name="Ops", slug="ops"),
        user=other_steward,
        role=MembershipRole.STEWARD,
    )
    hidden = client_as(other_steward).get(URL, {"product": draft_key})
    missing = client_as(other_steward).get(URL, {"product": "sales.no-such-thing"})
    assert hidden.status_code == missing.status_code == 400
    assert hidden.json()["product"][0].replace(draft_key, "X") == missing.json()["product"][
        0
    ].replace("sales.no-such-thing", "X")


def test_the_replay_and_stream_are_in_the_openapi_schema(client_as, owner):
    schema = client_as(owner).get("/api/v1/schema/", {"format": "json"}).json()
    assert "/api/v1/events/" in schema["paths"]
    assert "/api/v1/events/stream/" in schema["paths"]
    parameters = {p["name"] for p in schema["paths"]["/api/v1/events/"]["get"]["parameters"]}
    assert {"after", "type", "product", "domain", "limit"} <= parameters


def test_the_replay_serves_an_event_committed_late_after_the_others(client_as, product, owner):
    """An event whose transaction took its id first but committed last (its row given an
    older id and no position yet, as when that commit lands) comes after the others."""
    first = event_emit("portal.product.published", product=product)
    event_emit("portal.product.version_changed", product=product)
    client = client_as(owner)
    last = client.get(URL).json()["last_sequence"]
    late = event_emit("portal.product.deprecated", product=product)
    Event.objects.filter(pk=late.pk).update(id=first.pk - 1, position=None)
    after = client.get(URL, {"after": last}).json()
    assert [e["id"] for e in after["results"]] == [str(late.event_id)]
    assert sequences(after) == [last + 1]
