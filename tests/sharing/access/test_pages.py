"""Access pages: the Access tab (request form; management for owners and stewards),
"My access", the audit page and its streamed CSV export; query counts pinned."""

import csv
import io

import pytest
from django.urls import reverse

from products.choices import Classification
from sharing.access.services.grants import grant_create
from sharing.access.services.requests import access_request_create
from sharing.choices import RequestStatus
from sharing.models import AccessEvent, AccessGrant, AccessRequest
from tests.factories import PASSWORD, ColumnFactory, OutputPortFactory, ProductFactory, UserFactory


@pytest.fixture
def product(domain, owner, steward):
    product = ProductFactory(domain=domain, name="Orders", slug="orders")
    port = OutputPortFactory(product=product, slug="orders")
    for position, name in enumerate(["order_id", "country", "email"]):
        ColumnFactory(
            port=port,
            name=name,
            position=position,
            classification=Classification.RESTRICTED if name == "email" else Classification.PUBLIC,
        )
    return product


def url(name, product, **kwargs):
    return reverse(
        f"sharing:{name}",
        kwargs={"domain_slug": product.domain.slug, "product_slug": product.slug, **kwargs},
    )


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)


def test_anonymous_is_sent_to_sign_in(client, product):
    for path in (
        url("product-access", product),
        reverse("sharing:my-access"),
        reverse("sharing:audit"),
    ):
        response = client.get(path)
        assert response.status_code == 302 and "login" in response["Location"]


def test_outsider_requests_access_from_the_tab(client, product, outsider):
    login(client, outsider)
    page = client.get(url("product-access", product))
    assert page.status_code == 200
    assert b"Request access" in page.content and b"Pending requests" not in page.content
    bad = client.post(url("access-request-create", product), {"purpose": "", "duration_days": 500})
    assert bad.status_code == 400 and b"At most 90 days" in bad.content
    response = client.post(
        url("access-request-create", product),
        {"purpose": "Churn", "columns": ["order_id", "country", "email"], "duration_days": 30},
    )
    assert response.status_code == 302
    request = AccessRequest.objects.get()
    assert request.columns == [] and request.duration_days == 30  # every column ticked: all
    page = client.get(url("product-access", product))
    assert b"is waiting for" in page.content and b"Cancel my request" in page.content
    mine = client.get(reverse("sharing:my-access"))
    assert b"Orders" in mine.content and b"Pending" in mine.content


def test_member_sees_they_read_everything(client, product, member):
    login(client, member)
    page = client.get(url("product-access", product))
    assert b"you are on the Sales team" in page.content and b"Approve" not in page.content


def test_steward_approves_and_owner_revokes(client, product, outsider, owner, steward):
    request = access_request_create(product=product, by=outsider, purpose="Churn")
    login(client, steward)
    page = client.get(url("product-access", product))
    assert b"Pending requests" in page.content and b"Churn" in page.content
    assert b"Grant access directly" not in page.content  # stewards approve, owners grant
    response = client.post(
        url("access-request-approve", product, request_id=request.pk),
        {f"r{request.pk}-columns": ["order_id"], f"r{request.pk}-duration_days": 7},
    )
    assert response.status_code == 302
    grant = AccessGrant.objects.get()
    assert grant.columns == ["order_id"]
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    client.logout()
    login(client, owner)
    page = client.get(url("product-access", product))
    assert b"Grant access directly" in page.content and b"outsider" in page.content
    client.post(url("grant-revoke", product, grant_id=grant.pk), {"reason": "Done"})
    grant.refresh_from_db()
    assert grant.revoked_at is not None and grant.revoke_reason == "Done"


def test_outsider_cannot_decide_or_revoke(client, product, outsider, owner):
    other = UserFactory(username="other")
    request = access_request_create(product=product, by=other, purpose="x")
    grant = grant_create(product=product, by=owner, user=other, reason="x")
    login(client, outsider)
    assert (
        client.post(url("access-request-approve", product, request_id=request.pk)).status_code
        == 403
    )
    assert (
        client.post(
            url("access-request-deny", product, request_id=request.pk), {"reason": "no"}
        ).status_code
        == 403
    )
    assert (
        client.post(url("grant-revoke", product, grant_id=grant.pk), {"reason": "x"}).status_code
        == 403
    )
    assert (
        client.post(
            url("grant-create", product),
            {"username": "outsider", "reason": "x", "duration_days": 5},
        ).status_code
        == 403
    )
    assert client.get(reverse("sharing:audit")).status_code == 403


def test_owner_grants_directly_with_errors_beside_fields(client, product, owner, outsider):
    login(client, owner)
    every = ["order_id", "country", "email"]
    bad = client.post(
        url("grant-create", product),
        {"username": "ghost", "reason": "x", "duration_days": 5, "columns": every},
    )
    assert bad.status_code == 400 and b"No user with this username" in bad.content
    bad = client.post(
        url("grant-create", product),
        {
            "username": "outsider",
            "reason": "x",
            "duration_days": 5,
            "columns": every,
            "row_filter": '[{"column": "nope", "op": "=", "value": 1}]',
        },
    )
    assert bad.status_code == 400
    assert b"The filter names unknown column(s): nope." in bad.content
    none_ticked = client.post(
        url("grant-create", product), {"username": "outsider", "reason": "x", "duration_days": 5}
    )
    assert none_ticked.status_code == 400 and b"Tick at least one column." in none_ticked.content
    assert not AccessGrant.objects.exists()
    ok = client.post(
        url("grant-create", product),
        {"username": "outsider", "reason": "x", "duration_days": 5, "columns": every},
    )
    assert ok.status_code == 302 and AccessGrant.objects.get().user == outsider


def test_access_tab_query_count_does_not_grow(
    client, product, owner, django_assert_max_num_queries
):
    login(client, owner)
    for _n in range(3):
        user = UserFactory()
        grant_create(product=product, by=owner, user=user, reason="x")
        access_request_create(product=product, by=UserFactory(), purpose="x")
    with django_assert_max_num_queries(30):
        assert client.get(url("product-access", product)).status_code == 200
    for _n in range(10):
        grant_create(product=product, by=owner, user=UserFactory(), reason="x")
        access_request_create(product=product, by=UserFactory(), purpose="x")
    with django_assert_max_num_queries(30):
        assert client.get(url("product-access", product)).status_code == 200


def test_my_access_query_count(client, product, owner, outsider, django_assert_max_num_queries):
    for _n in range(5):
        other = ProductFactory(domain=product.domain)
        grant_create(product=other, by=owner, user=outsider, reason="x")
        access_request_create(
            product=ProductFactory(domain=product.domain), by=outsider, purpose="x"
        )
    login(client, outsider)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("sharing:my-access"))
    assert page.status_code == 200 and page.content.count(b"All columns") == 5


def test_audit_page_scoping_and_csv_export(
    client, product, owner, admin_user, outsider, django_assert_max_num_queries
):
    grant_create(product=product, by=owner, user=outsider, reason="x")
    elsewhere = ProductFactory()
    grant_create(product=elsewhere, by=admin_user, user=outsider, reason="y")
    login(client, owner)
    page = client.get(reverse("sharing:audit"))
    assert product.key.encode() in page.content and elsewhere.key.encode() not in page.content
    response = client.get(reverse("sharing:audit-export"), {"action": "grant"})
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["action"], r["user"], r["product"]) for r in rows] == [
        ("grant", "owner", product.key)
    ]
    client.logout()
    login(client, admin_user)
    with django_assert_max_num_queries(6):
        page = client.get(reverse("sharing:audit"), {"user": "admin"})
    assert elsewhere.key.encode() in page.content and product.key.encode() not in page.content
    body = b"".join(client.get(reverse("sharing:audit-export")).streaming_content).decode()
    assert len(list(csv.DictReader(io.StringIO(body)))) == AccessEvent.objects.count() == 2
