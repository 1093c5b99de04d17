"""Access pages: the Access tab (request form; management for owners and stewards),
"My access", the audit page and its streamed CSV export; query counts pinned."""

import csv
import io
import json
import re

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


def _decision_form(html: str, request_id: int) -> str:
    """The decision form of one pending request, from its article to the next."""
    start = html.index(f'id="request-{request_id}"')
    return html[start : html.index("</article>", start)]


def test_invalid_filter_on_approve_keeps_everything_and_says_why_beside_it(
    client, product, outsider, owner
):
    request = access_request_create(product=product, by=outsider, purpose="Churn")
    login(client, owner)
    page = client.get(url("product-access", product)).content.decode()
    form = _decision_form(page, request.pk)
    assert "<details" not in form  # no disclosure triangles: the form is open
    assert '<button type="submit" class="button button-primary">Approve</button>' in form
    assert "formaction=" in form and ">Deny</button>" in form
    assert "data-filter-builder=" in form  # the builder's columns ride on the JSON field
    typed_filter = '[{"column": "order_id", "op": ">=", "value": "ten"}]'
    response = client.post(
        url("access-request-approve", product, request_id=request.pk),
        {
            f"r{request.pk}-columns": ["order_id", "country"],  # email unticked
            f"r{request.pk}-row_filter": typed_filter,
            f"r{request.pk}-duration_days": 7,
            f"r{request.pk}-reason": "Only recent orders",
        },
    )
    assert response.status_code == 400
    form = _decision_form(response.content.decode(), request.pk)
    # The error beside the filter field, in words, and everything as entered.
    filter_field = form[form.index(f'id="id_r{request.pk}-row_filter"') :]
    filter_field = filter_field[: filter_field.index('<div class="field')]
    assert "The filter on order_id needs a whole number (INTEGER); &#x27;ten&#x27; is not one." in (
        filter_field
    )
    assert "&quot;ten&quot;" in filter_field  # the JSON as typed
    boxes = re.findall(rf'<input type="checkbox" name="r{request.pk}-columns"[^>]*>', form)
    assert [re.search(r'value="(\w+)"', box)[1] for box in boxes] == [
        "order_id",
        "country",
        "email",
    ]
    assert [box.endswith(" checked>") for box in boxes] == [True, True, False]  # as they were
    assert 'value="Only recent orders"' in form and 'value="7"' in form
    assert not AccessGrant.objects.exists()
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING


def test_approve_with_no_column_ticked_is_refused(client, product, outsider, owner):
    request = access_request_create(product=product, by=outsider, purpose="Churn")
    login(client, owner)
    response = client.post(
        url("access-request-approve", product, request_id=request.pk),
        {f"r{request.pk}-duration_days": 7},
    )
    assert response.status_code == 400
    assert "Tick at least one column. To refuse the request, deny it." in (
        _decision_form(response.content.decode(), request.pk)
    )
    assert not AccessGrant.objects.exists()


def test_deny_without_a_reason_says_so_beside_the_note(client, product, outsider, owner):
    request = access_request_create(product=product, by=outsider, purpose="Churn")
    login(client, owner)
    response = client.post(
        url("access-request-deny", product, request_id=request.pk),
        {f"r{request.pk}-columns": ["order_id"], f"r{request.pk}-reason": ""},
    )
    assert response.status_code == 400
    form = _decision_form(response.content.decode(), request.pk)
    note = form[form.index(f'id="id_r{request.pk}-reason"') :]
    assert "Give a reason, so the requester knows what to change." in note
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING
    response = client.post(
        url("access-request-deny", product, request_id=request.pk),
        {f"r{request.pk}-reason": "Use the aggregated product"},
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == RequestStatus.DENIED
    assert request.decision_reason == "Use the aggregated product"


def test_approve_with_a_filter_shows_the_grant_in_words(client, product, outsider, owner):
    request = access_request_create(product=product, by=outsider, purpose="Churn")
    login(client, owner)
    response = client.post(
        url("access-request-approve", product, request_id=request.pk),
        {
            f"r{request.pk}-columns": ["order_id", "country"],
            f"r{request.pk}-row_filter": json.dumps(
                [
                    {"column": "country", "op": "in", "value": [32, 31]},
                    {"column": "order_id", "op": ">=", "value": 10},
                    {"column": "order_id", "op": "<=", "value": 99},
                ]
            ),
            f"r{request.pk}-duration_days": 7,
        },
    )
    assert response.status_code == 302
    words = "Rows where country is 32 or 31 and order_id is between 10 and 99"
    assert words in client.get(url("product-access", product)).content.decode()
    client.logout()
    login(client, outsider)
    assert words in client.get(reverse("sharing:my-access")).content.decode()
    assert words in client.get(url("product-access", product)).content.decode()


def test_access_request_names_its_columns_or_all_of_them(client, product, outsider):
    login(client, outsider)
    page = client.get(url("product-access", product)).content.decode()
    assert "All columns, including ones added later" in page
    refused = client.post(
        url("access-request-create", product),
        {"purpose": "Churn", "column_choice": "some", "duration_days": 30},
    )
    assert refused.status_code == 400
    assert "Tick the columns you need, or choose “All columns” above." in (refused.content.decode())
    assert 'value="Churn"' not in refused.content.decode()  # a textarea: its text
    assert "Churn</textarea>" in refused.content.decode()  # kept as typed
    # No choice and nothing ticked (a page or script from before): refused too.
    refused = client.post(
        url("access-request-create", product), {"purpose": "Churn", "duration_days": 30}
    )
    assert refused.status_code == 400 and not AccessRequest.objects.exists()
    ok = client.post(
        url("access-request-create", product),
        {"purpose": "Churn", "column_choice": "some", "columns": ["country"], "duration_days": 9},
    )
    assert ok.status_code == 302
    assert AccessRequest.objects.get().columns == ["country"]
    AccessRequest.objects.all().delete()
    ok = client.post(
        url("access-request-create", product),
        {"purpose": "Churn", "column_choice": "all", "duration_days": 9},
    )
    assert ok.status_code == 302 and AccessRequest.objects.get().columns == []
