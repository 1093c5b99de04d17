"""The access API: every endpoint for anonymous (401), outsider, member, steward, owner
and admin; an invisible product is a 404; bad input is a 400 per field; lists have a
pinned number of queries."""

import pytest
from django.contrib.auth.models import Group

from products.choices import Classification, LifecycleStatus
from sharing.access.services.grants import grant_create
from sharing.access.services.requests import access_request_create
from sharing.choices import RequestStatus
from sharing.models import AccessEvent, AccessGrant, AccessRequest
from tests.factories import ColumnFactory, OutputPortFactory, ProductFactory, UserFactory

BASE = "/api/v1"


@pytest.fixture
def product(domain, owner, steward):
    product = ProductFactory(domain=domain, name="Orders", slug="orders")
    port = OutputPortFactory(product=product, slug="orders")
    for position, name in enumerate(["order_id", "country", "email"]):
        ColumnFactory(
            port=port,
            name=name,
            position=position,
            data_type="bigint" if name == "order_id" else "text",  # row filters are typed
            classification=Classification.CONFIDENTIAL
            if name == "email"
            else Classification.INTERNAL,
        )
    return product


@pytest.fixture
def people(outsider, member, steward, owner, admin_user):
    return {
        "outsider": outsider,
        "member": member,
        "steward": steward,
        "owner": owner,
        "admin": admin_user,
    }


def as_user(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def test_anonymous_gets_401_everywhere(api_client, product):
    request = access_request_create(product=product, by=UserFactory(), purpose="x")
    for method, path in [
        ("get", "/products/sales.orders/access-requests/"),
        ("post", "/products/sales.orders/access-requests/"),
        ("post", f"/products/sales.orders/access-requests/{request.pk}/approve/"),
        ("get", "/products/sales.orders/grants/"),
        ("post", "/grants/revoke-for-user/"),
        ("get", "/me/access/"),
        ("get", "/audit/events/"),
    ]:
        assert getattr(api_client, method)(BASE + path, {}, format="json").status_code == 401


def test_invisible_product_is_404(api_client, outsider, domain):
    draft = ProductFactory(domain=domain, slug="secret", status=LifecycleStatus.DRAFT)
    as_user(api_client, outsider)
    for path in ("access-requests/", "grants/"):
        assert api_client.get(f"{BASE}/products/{draft.key}/{path}").status_code == 404
        assert api_client.post(f"{BASE}/products/sales.nope/{path}", {}).status_code == 404


@pytest.mark.parametrize(
    "who, status",
    [("outsider", 201), ("member", 400), ("steward", 400), ("owner", 400), ("admin", 400)],
)
def test_create_request(api_client, product, people, who, status):
    response = as_user(api_client, people[who]).post(
        f"{BASE}/products/sales.orders/access-requests/",
        {"purpose": "Churn", "columns": ["order_id"], "duration_days": 10},
        format="json",
    )
    assert response.status_code == status, response.content
    if status == 201:
        assert response.json()["status"] == "pending"
        assert response.json()["columns"] == ["order_id"]
    else:
        assert "already have access" in str(response.json())


def test_create_request_bad_input_per_field(api_client, product, outsider):
    response = as_user(api_client, outsider).post(
        f"{BASE}/products/sales.orders/access-requests/",
        {"purpose": "", "columns": ["ghost"], "duration_days": 999},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()) == {"purpose", "columns", "duration_days"}
    assert "ghost" in response.json()["columns"][0]


def test_auto_approve_through_the_api(api_client, product, outsider):
    product.access_auto_approve = True
    product.save()
    response = as_user(api_client, outsider).post(
        f"{BASE}/products/sales.orders/access-requests/",
        {"purpose": "x", "columns": ["order_id", "country"]},
        format="json",
    )
    assert response.json()["status"] == "approved"
    assert AccessGrant.objects.get().columns == ["order_id", "country"]


@pytest.mark.parametrize(
    "who, status",
    [("outsider", 403), ("member", 403), ("steward", 201), ("owner", 201), ("admin", 201)],
)
def test_approve(api_client, product, people, who, status):
    request = access_request_create(product=product, by=UserFactory(username="asker"), purpose="x")
    response = as_user(api_client, people[who]).post(
        f"{BASE}/products/sales.orders/access-requests/{request.pk}/approve/",
        {
            "columns": ["order_id"],
            "row_filter": [{"column": "country", "op": "=", "value": "BE"}],
            "duration_days": 5,
        },
        format="json",
    )
    assert response.status_code == status
    if status == 201:
        assert response.json()["user"] == "asker"
        assert response.json()["row_filter"] == [{"column": "country", "op": "=", "value": "BE"}]


def test_approve_bad_input_and_deny_and_cancel(api_client, product, owner, outsider):
    request = access_request_create(product=product, by=outsider, purpose="x", duration_days=5)
    url = f"{BASE}/products/sales.orders/access-requests/{request.pk}"
    as_user(api_client, owner)
    bad = api_client.post(
        url + "/approve/",
        {"columns": ["ghost"], "row_filter": "nope", "duration_days": 6, "extra": 1},
        format="json",
    )
    assert bad.status_code == 400 and set(bad.json()) == {"extra"}
    bad = api_client.post(
        url + "/approve/",
        {"columns": ["ghost"], "row_filter": "nope", "duration_days": 6},
        format="json",
    )
    assert bad.status_code == 400 and set(bad.json()) == {"columns", "row_filter", "duration_days"}
    assert api_client.post(url + "/deny/", {"reason": ""}, format="json").status_code == 400
    assert api_client.post(url + "/cancel/").status_code == 403  # only the requester
    denied = api_client.post(url + "/deny/", {"reason": "Use the aggregate"}, format="json")
    assert denied.status_code == 200 and denied.json()["status"] == "denied"
    again = access_request_create(product=product, by=outsider, purpose="y")
    as_user(api_client, outsider)
    cancelled = api_client.post(f"{BASE}/products/sales.orders/access-requests/{again.pk}/cancel/")
    assert cancelled.json()["status"] == RequestStatus.CANCELLED


def test_request_list_editors_see_all_others_their_own(api_client, product, outsider, steward):
    access_request_create(product=product, by=outsider, purpose="mine")
    access_request_create(product=product, by=UserFactory(), purpose="theirs")
    mine = as_user(api_client, outsider).get(f"{BASE}/products/sales.orders/access-requests/")
    assert [r["purpose"] for r in mine.json()["results"]] == ["mine"]
    everyone = as_user(api_client, steward).get(f"{BASE}/products/sales.orders/access-requests/")
    assert everyone.json()["count"] == 2


@pytest.mark.parametrize(
    "who, list_status, create_status",
    [
        ("outsider", 403, 403),
        ("member", 403, 403),
        ("steward", 200, 403),
        ("owner", 200, 201),
        ("admin", 200, 201),
    ],
)
def test_grants_list_and_create(api_client, product, people, who, list_status, create_status):
    UserFactory(username="grantee")
    as_user(api_client, people[who])
    assert api_client.get(f"{BASE}/products/sales.orders/grants/").status_code == list_status
    response = api_client.post(
        f"{BASE}/products/sales.orders/grants/",
        {"username": "grantee", "reason": "Project", "columns": ["email"], "duration_days": 7},
        format="json",
    )
    assert response.status_code == create_status
    if create_status == 201:
        assert response.json()["columns"] == ["email"] and response.json()["user"] == "grantee"


def test_grant_create_bad_input(api_client, product, owner):
    Group.objects.create(name="analysts")
    as_user(api_client, owner)
    url = f"{BASE}/products/sales.orders/grants/"
    assert set(
        api_client.post(url, {"username": "ghost", "reason": "x"}, format="json").json()
    ) == {"username"}
    both = api_client.post(
        url, {"username": "owner", "group": "analysts", "reason": ""}, format="json"
    )
    assert both.status_code == 400 and set(both.json()) == {"user", "reason"}
    team = api_client.post(url, {"group": "analysts", "reason": "team"}, format="json")
    assert team.status_code == 201 and team.json()["group"] == "analysts"


@pytest.mark.parametrize(
    "who, status",
    [("outsider", 403), ("member", 403), ("steward", 200), ("owner", 200), ("admin", 200)],
)
def test_revoke(api_client, product, people, owner, who, status):
    grant = grant_create(product=product, by=owner, user=UserFactory(), reason="x")
    url = f"{BASE}/products/sales.orders/grants/{grant.pk}/revoke/"
    response = as_user(api_client, people[who]).post(url, {"reason": "Done"}, format="json")
    assert response.status_code == status
    if status == 200:
        assert response.json()["revoked_at"] is not None
        again = api_client.post(url, {"reason": "Done"}, format="json")
        assert again.status_code == 400 and "already revoked" in str(again.json())
        assert AccessEvent.objects.filter(action="revoke").count() == 1


@pytest.mark.parametrize(
    "who, status, revoked",
    [
        ("outsider", 403, 0),
        ("member", 403, 0),
        ("steward", 403, 0),  # bulk revocation: admins and domain owners only
        ("owner", 200, 1),
        ("admin", 200, 2),
    ],
)
def test_bulk_revoke(api_client, product, people, owner, admin_user, who, status, revoked):
    leaver = UserFactory(username="leaver")
    grant_create(product=product, by=owner, user=leaver, reason="x")
    grant_create(product=ProductFactory(), by=admin_user, user=leaver, reason="x")
    response = as_user(api_client, people[who]).post(
        f"{BASE}/grants/revoke-for-user/", {"username": "leaver", "reason": "Left"}, format="json"
    )
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"username": "leaver", "revoked": revoked}
    assert AccessGrant.objects.filter(revoked_at__isnull=False).count() == revoked
    bad = api_client.post(
        f"{BASE}/grants/revoke-for-user/", {"username": "ghost", "reason": ""}, format="json"
    )
    assert bad.status_code == 400


def test_my_access(api_client, product, owner, outsider, django_assert_max_num_queries):
    for _ in range(5):
        other = ProductFactory(domain=product.domain)
        grant_create(product=other, by=owner, user=outsider, reason="x")
        access_request_create(product=other, by=outsider, purpose="x")
    revoked = grant_create(product=product, by=owner, user=outsider, reason="x")
    AccessGrant.objects.filter(pk=revoked.pk).update(revoked_at=revoked.created_at)
    as_user(api_client, outsider)
    with django_assert_max_num_queries(3):  # grants, requests
        body = api_client.get(f"{BASE}/me/access/").json()
    assert len(body["grants"]) == 5 and len(body["requests"]) == 5
    assert all(grant["expires_at"] for grant in body["grants"])


@pytest.mark.parametrize(
    "who, status",
    [("outsider", 403), ("member", 403), ("steward", 403), ("owner", 200), ("admin", 200)],
)
def test_audit_events(api_client, product, people, owner, admin_user, who, status):
    grant_create(product=product, by=owner, user=UserFactory(), reason="x")
    grant_create(product=ProductFactory(), by=admin_user, user=UserFactory(), reason="x")
    response = as_user(api_client, people[who]).get(f"{BASE}/audit/events/")
    assert response.status_code == status
    if status == 200:
        keys = {event["product"] for event in response.json()["results"]}
        assert (product.key in keys) and (len(keys) == (2 if who == "admin" else 1))


def test_audit_filters_and_query_count(
    api_client, product, owner, admin_user, django_assert_max_num_queries
):
    for _ in range(10):
        grant_create(product=product, by=owner, user=UserFactory(), reason="x")
    access_request_create(product=product, by=UserFactory(), purpose="x")
    as_user(api_client, admin_user)
    with django_assert_max_num_queries(4):
        body = api_client.get(f"{BASE}/audit/events/", {"action": "grant", "page_size": 50}).json()
    assert len(body["results"]) == 10 and {e["action"] for e in body["results"]} == {"grant"}
    assert body["next"] is None and body["previous"] is None
    assert body["results"][0]["summary"].startswith("Granted ")
    assert (
        api_client.get(f"{BASE}/audit/events/", {"product": "sales.nope"}).json()["results"] == []
    )
    # The product by part of its name, any case; the person by part of their username.
    assert len(api_client.get(f"{BASE}/audit/events/", {"product": "ORDE"}).json()["results"]) == 11
    assert {
        e["user"]
        for e in api_client.get(f"{BASE}/audit/events/", {"person": "wne"}).json()["results"]
    } == {"owner"}
    bad = api_client.get(f"{BASE}/audit/events/", {"date_from": "yesterday"})
    assert bad.status_code == 400 and "date_from" in bad.json()
    bad = api_client.get(f"{BASE}/audit/events/", {"after": "not-a-cursor"})
    assert bad.status_code == 400 and "after" in bad.json()


def test_audit_events_paged_by_cursor(api_client, product, owner, admin_user):
    for _ in range(5):
        grant_create(product=product, by=owner, user=UserFactory(), reason="x")
    AccessEvent.objects.update(at=AccessEvent.objects.first().at)  # one timestamp for all
    as_user(api_client, admin_user)
    first = api_client.get(f"{BASE}/audit/events/", {"page_size": 2}).json()
    second = api_client.get(first["next"]).json()
    third = api_client.get(second["next"]).json()
    ids = [e["id"] for page in (first, second, third) for e in page["results"]]
    assert ids == sorted(AccessEvent.objects.values_list("pk", flat=True), reverse=True)
    assert third["next"] is None and first["previous"] is None
    back = api_client.get(second["previous"]).json()
    assert [e["id"] for e in back["results"]] == [e["id"] for e in first["results"]]
    assert first["results"][0]["at"].endswith(("Z", "+00:00"))  # ISO 8601


def test_list_query_counts_are_pinned(api_client, product, owner, django_assert_max_num_queries):
    for _ in range(10):
        grant_create(product=product, by=owner, user=UserFactory(), reason="x")
        access_request_create(product=product, by=UserFactory(), purpose="x")
    as_user(api_client, owner)
    with django_assert_max_num_queries(8):
        assert api_client.get(f"{BASE}/products/sales.orders/grants/").json()["count"] == 10
    with django_assert_max_num_queries(8):
        assert (
            api_client.get(f"{BASE}/products/sales.orders/access-requests/").json()["count"] == 10
        )
    assert AccessRequest.objects.count() == 10
